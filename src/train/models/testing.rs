// SPDX-License-Identifier: MPL-2.0
//! Test support for the recurrent models: export parity through ONNX Runtime, a small
//! training loop and the held-out metrics.

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Tensor, TensorData};

use crate::dataset::sequences::SequenceSet;
use crate::dataset::synth::Rng;
use crate::train::export::{FusionMeta, export_fusion, ort_run};
use crate::train::fit::Batch;
use crate::train::loss::{ccc_loss, cross_entropy};
use crate::train::model::FusionNet;
use crate::train::models::mfn::{Mfn, MfnConfig};

/// burn's random generator is global per device, so tests running in parallel would
/// interleave their draws and get different weights, dropout masks and numbers from run
/// to run. Every test of the trainer that seeds or draws holds this lock for its whole
/// body, so each sees exactly the stream its seed gives.
pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Masks with missing frames: sequence `i` misses visual frames `i, i+1, i+2` and audio
/// frames `t−1−i, t−2−i, t−3−i` (mod t), so frame 0 and spans are covered; the last
/// sequence of a batch (b > 1) has every frame.
pub fn test_masks(b: usize, t: usize) -> (Vec<f32>, Vec<f32>) {
    let mut vm = vec![1.0; b * t];
    let mut am = vec![1.0; b * t];
    for i in 0..b.saturating_sub(1).max(1) {
        for k in 0..3 {
            vm[i * t + (i + k) % t] = 0.0;
            am[i * t + (t - 1) - (i + k) % t] = 0.0;
        }
    }
    (vm, am)
}

/// A small MFN (visual 5, audio 4, hidden 8, memory 6) for the model's own tests and
/// the fused LSTM / memory ops' comparisons with the composed steps.
pub fn small_mfn(device: &burn::tensor::Device, dropout: f64) -> Mfn {
    MfnConfig {
        hidden: 8,
        memory: 6,
        dropout,
        ..MfnConfig::new(5, 4)
    }
    .init(device)
}

/// Largest |ORT − burn| an export may show (the bound).
pub const EXPORT_TOLERANCE: f32 = 1e-4;

/// Runs `model` (inference mode, plain CPU device) in burn and its export in ONNX Runtime
/// on random inputs with masks containing zeros, checks the output shapes and asserts
/// that max |ORT − burn| over `va` and `expr` is within [`EXPORT_TOLERANCE`]; returns it.
/// `what` names the case in the failure message.
pub fn assert_export_parity<M: FusionNet>(
    what: &str,
    model: &M,
    b: usize,
    t: usize,
    dv: usize,
    da: usize,
) -> f32 {
    let device = crate::train::cpu_device();
    let mut rng = Rng::new(7);
    let visual: Vec<f32> = (0..b * t * dv).map(|_| rng.normal() as f32).collect();
    let audio: Vec<f32> = (0..b * t * da).map(|_| rng.normal() as f32).collect();
    let (vm, am) = test_masks(b, t);
    let meta = FusionMeta {
        name: "parity-test".into(),
        window: t,
        lookahead: 0,
        visual_dim: dv,
        audio_dim: da,
        visual_input: None,
        audio_mask: None,
        visual_model: None,
        audio_model: None,
        source: "test".into(),
        license: "MPL-2.0".into(),
    };
    let bytes = export_fusion(model, &meta).to_bytes();
    let ort = ort_run::run(
        &bytes,
        &[
            ("visual", vec![b, t, dv], visual.clone()),
            ("audio", vec![b, t, da], audio.clone()),
            ("visual_mask", vec![b, t], vm.clone()),
            ("audio_mask", vec![b, t], am.clone()),
        ],
    );
    let out = model.forward(
        Tensor::from_data(TensorData::new(visual, [b, t, dv]), &device),
        Tensor::from_data(TensorData::new(audio, [b, t, da]), &device),
        Tensor::from_data(TensorData::new(vm, [b, t]), &device),
        Tensor::from_data(TensorData::new(am, [b, t]), &device),
    );
    let mut worst = 0.0f32;
    for (name, want, k) in [("va", out.va, 2), ("expr", out.expr, 8)] {
        let got = &ort[name];
        assert_eq!(got.shape(), &[b, t, k], "{name} shape");
        let want: Vec<f32> = want.into_data().iter::<f32>().collect();
        for (g, w) in got.iter().zip(&want) {
            assert!(g.is_finite() && w.is_finite(), "{name}: {g} vs {w}");
            worst = worst.max((g - w).abs());
        }
    }
    eprintln!("{what}: max |ORT − burn| = {worst:e}");
    assert!(
        worst <= EXPORT_TOLERANCE,
        "{what}: max |ORT − burn| = {worst}"
    );
    worst
}

/// Trains `model` on both tasks at once (CCC loss, cross-entropy with label smoothing 0.1
/// and the model's auxiliary loss) with AdamW (lr `lr`, gradient norm clipped at 0.8),
/// batch 16, for `epochs` passes over `set` in a seeded shuffled order.
pub fn train<M: FusionNet + Module>(mut model: M, set: &SequenceSet, epochs: usize, lr: f64) -> M {
    let device = crate::train::train_device();
    let mut optim = AdamWConfig::new()
        .with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(0.8)))
        .init();
    let mut rng = Rng::new(3);
    let mut order: Vec<usize> = (0..set.n).collect();
    for _ in 0..epochs {
        for i in (1..order.len()).rev() {
            let j = rng.range(0, i + 1);
            order.swap(i, j);
        }
        for chunk in order.chunks(16) {
            let b = Batch::new(set, chunk, &device);
            let out = model.forward(b.visual, b.audio, b.visual_mask, b.audio_mask);
            let mut loss = ccc_loss(out.va, b.va, b.va_valid)
                + cross_entropy(out.expr, b.expr, b.expr_valid, 0.1);
            if let Some(aux) = out.aux_loss {
                loss = loss + aux;
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
        }
    }
    model
}

/// Trains `model` on `train_set` ([`train`]) and asserts that it learned: held-out VA CCC
/// and macro-F1 on `val_set` both ≥ 0.9. Returns the trained model.
pub fn assert_learns<M: FusionNet + Module>(
    name: &str,
    model: M,
    train_set: &SequenceSet,
    val_set: &SequenceSet,
    epochs: usize,
    lr: f64,
) -> M {
    let model = train(model, train_set, epochs, lr);
    let (ccc, f1) = evaluate(&model, val_set);
    eprintln!("{name} held-out: VA CCC {ccc:.4}, macro-F1 {f1:.4}");
    assert!(ccc >= 0.9, "{name}: held-out VA CCC {ccc}");
    assert!(f1 >= 0.9, "{name}: held-out macro-F1 {f1}");
    model
}

/// Held-out metrics of `model` (inference mode) on `set`: (mean VA CCC, macro-F1).
pub fn evaluate<M: FusionNet + Module>(model: &M, set: &SequenceSet) -> (f64, f64) {
    let model = model.valid();
    let device = crate::train::cpu_device();
    let idx: Vec<usize> = (0..set.n).collect();
    let b = Batch::new(set, &idx, &device);
    let out = model.forward(b.visual, b.audio, b.visual_mask, b.audio_mask);
    let va: Vec<f32> = out.va.into_data().iter::<f32>().collect();
    let pred: Vec<i64> = out.expr.argmax(2).into_data().iter::<i64>().collect();
    let (mut pv, mut tv, mut pe, mut te) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for f in 0..set.n * set.t {
        if set.va_valid[f] > 0.5 {
            pv.push([va[2 * f], va[2 * f + 1]]);
            tv.push([set.va[2 * f], set.va[2 * f + 1]]);
        }
        if set.expr[f] >= 0 {
            pe.push(pred[f]);
            te.push(set.expr[f]);
        }
    }
    let ccc = crate::metrics::va_ccc(&pv, &tv)
        .expect("valid VA frames")
        .mean;
    let f1 = crate::metrics::macro_f1(&pe, &te).expect("valid expression frames");
    (ccc, f1)
}
