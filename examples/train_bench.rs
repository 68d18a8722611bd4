// SPDX-License-Identifier: MPL-2.0
//! Training throughput of the recurrent fusion models (`mfn`, `mctn`) in burn on the CPU:
//! sequences per second for full training steps (forward, backward, AdamW with gradient
//! clipping), on fixed random data. `bench/train/run.sh` runs it next to the same
//! architectures in PyTorch (`bench/train/bench.py`) and prints the ratio.
//!
//! ```text
//! cargo run --release --features train --example train_bench -- mfn [steps] [warmup]
//! ```
//!
//! Sizes from the environment (defaults = the seed's): `BENCH_HIDDEN` 256, `BENCH_T` 64,
//! `BENCH_BATCH` 16, `BENCH_DV` 128, `BENCH_DA` 96. Prints one JSON line.

use std::time::Instant;

use affect::dataset::synth::Rng;
use affect::train::loss::{ccc_loss, cross_entropy};
use affect::train::models::mctn::MctnConfig;
use affect::train::models::mfn::MfnConfig;
use affect::train::{FusionNet, train_device};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Data {
    visual: Tensor<3>,
    audio: Tensor<3>,
    mask: Tensor<2>,
    va: Tensor<3>,
    expr: Tensor<3>,
}

fn data(b: usize, t: usize, dv: usize, da: usize, device: &Device) -> Data {
    let mut rng = Rng::new(5);
    let mut normal = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.normal() as f32).collect() };
    let visual = normal(b * t * dv);
    let audio = normal(b * t * da);
    let va: Vec<f32> = normal(b * t * 2).iter().map(|x| x.tanh()).collect();
    let mut expr = vec![0.0f32; b * t * 8];
    for f in 0..b * t {
        expr[f * 8 + (f * 7 + f / 5) % 8] = 1.0;
    }
    Data {
        visual: Tensor::from_data(TensorData::new(visual, [b, t, dv]), device),
        audio: Tensor::from_data(TensorData::new(audio, [b, t, da]), device),
        mask: Tensor::ones([b, t], device),
        va: Tensor::from_data(TensorData::new(va, [b, t, 2]), device),
        expr: Tensor::from_data(TensorData::new(expr, [b, t, 8]), device),
    }
}

/// Runs `warmup + steps` training steps; returns the seconds the last `steps` took and
/// the last loss.
fn run<M: FusionNet + Module>(mut model: M, d: &Data, steps: usize, warmup: usize) -> (f64, f32) {
    let mut optim = AdamWConfig::new()
        .with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(0.8)))
        .init();
    let mut start = Instant::now();
    let mut last = f32::NAN;
    for i in 0..warmup + steps {
        if i == warmup {
            start = Instant::now();
        }
        let t0 = Instant::now();
        let out = model.forward(
            d.visual.clone(),
            d.audio.clone(),
            d.mask.clone(),
            d.mask.clone(),
        );
        let mut loss = ccc_loss(out.va, d.va.clone(), d.mask.clone())
            + cross_entropy(out.expr, d.expr.clone(), d.mask.clone(), 0.1);
        if let Some(aux) = out.aux_loss {
            loss = loss + aux;
        }
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let t2 = Instant::now();
        model = optim.step(1e-3, model, grads);
        last = loss.into_scalar::<f32>();
        if std::env::var_os("BENCH_PHASES").is_some() {
            eprintln!(
                "forward {:.3}s backward {:.3}s step {:.3}s",
                (t1 - t0).as_secs_f64(),
                (t2 - t1).as_secs_f64(),
                t2.elapsed().as_secs_f64()
            );
        }
    }
    (start.elapsed().as_secs_f64(), last)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("mfn");
    let steps: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(5);
    let warmup: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(1);
    let (h, t, b) = (
        env("BENCH_HIDDEN", 256),
        env("BENCH_T", 64),
        env("BENCH_BATCH", 16),
    );
    let (dv, da) = (env("BENCH_DV", 128), env("BENCH_DA", 96));
    let device = train_device();
    device.seed(0);
    let d = data(b, t, dv, da, &device);
    let (secs, loss) = match which {
        "mfn" => {
            let cfg = MfnConfig {
                hidden: h,
                memory: h,
                ..MfnConfig::new(dv, da)
            };
            run(cfg.init(&device), &d, steps, warmup)
        }
        "mctn" => {
            let cfg = MctnConfig {
                hidden: h,
                ..MctnConfig::new(dv, da)
            };
            run(cfg.init(&device), &d, steps, warmup)
        }
        other => {
            eprintln!("unknown model `{other}` (mfn or mctn)");
            std::process::exit(2);
        }
    };
    println!(
        "{{\"framework\":\"burn-flex\",\"model\":\"{which}\",\"hidden\":{h},\"t\":{t},\"batch\":{b},\"dv\":{dv},\"da\":{da},\"steps\":{steps},\"seconds\":{secs:.4},\"seq_per_s\":{:.3},\"loss\":{loss:.5}}}",
        (b * steps) as f64 / secs
    );
}
