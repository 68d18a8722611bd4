// SPDX-License-Identifier: MPL-2.0
//! `affect-train ensemble`: several exported fusion models → one ONNX graph whose
//! outputs are their weighted sum, the weights found by Dirichlet random search on the
//! validation split (see `affect::train::ensemble`).

use std::path::PathBuf;

use affect::dataset::SequenceSet;
use affect::dataset::layout::Split;
use affect::runtime::{ExecutionProvider, InputSpec, Model, Role, SessionConfig};
use affect::train::ensemble::{ensemble_graph, search_weights};
use affect::train::export::FusionMeta;
use affect::train::fit::TaskName;
use ndarray::{ArrayD, IxDyn};

use crate::fit::{DataArgs, load_split};

/// Arguments of `affect-train ensemble`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An exported fusion model (repeat: at least two).
    #[arg(long = "member", required = true)]
    members: Vec<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// Dirichlet draws besides the uniform weights.
    #[arg(long, default_value_t = 500)]
    trials: usize,
    /// Seed of the search.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output `.onnx` file.
    #[arg(long)]
    out: PathBuf,
    /// `affect.name` of the ensemble.
    #[arg(long, default_value = "affect-ensemble")]
    name: String,
}

/// Per-member outputs on the validation set: va [n·t·2], expr [n·t·8].
fn run_member(m: &mut Model, set: &SequenceSet) -> Result<(Vec<f32>, Vec<f32>), String> {
    let (t, dv, da) = (set.t, set.dv, set.da);
    let (mut va, mut expr) = (Vec::new(), Vec::new());
    let chunk = 64;
    for start in (0..set.n).step_by(chunk) {
        let b = chunk.min(set.n - start);
        let r = |v: &[f32], w: usize| {
            ArrayD::from_shape_vec(
                IxDyn(&if w == 0 { vec![b, t] } else { vec![b, t, w] }),
                v[start * t * w.max(1)..(start + b) * t * w.max(1)].to_vec(),
            )
            .map_err(|e| e.to_string())
        };
        let (v, a) = (r(&set.visual, dv)?, r(&set.audio, da)?);
        let (vm, am) = (r(&set.visual_mask, 0)?, r(&set.audio_mask, 0)?);
        let out = m
            .run_f32(&[
                ("visual", v.view()),
                ("audio", a.view()),
                ("visual_mask", vm.view()),
                ("audio_mask", am.view()),
            ])
            .map_err(|e| e.to_string())?;
        let get = |n: &str| out.get(n).ok_or_else(|| format!("no output {n}"));
        va.extend(get("va")?.iter().copied());
        expr.extend(get("expr")?.iter().copied());
    }
    Ok((va, expr))
}

/// Runs `affect-train ensemble`.
pub fn run(mut a: Args) -> Result<(), String> {
    if a.members.len() < 2 {
        return Err("an ensemble needs at least two --member models".into());
    }
    let config = SessionConfig {
        provider: ExecutionProvider::Cpu,
        ..Default::default()
    };
    let mut models = Vec::new();
    let mut shape = None;
    for p in &a.members {
        let m = Model::load(p, Some(Role::Fusion), &config).map_err(|e| e.to_string())?;
        let InputSpec::Fusion(f) = &m.contract().input else {
            return Err(format!("{}: not a fusion model", p.display()));
        };
        let s = (f.window, f.visual_dim, f.audio_dim);
        if let Some(first) = shape
            && first != s
        {
            return Err(format!(
                "{}: window/visual/audio dimensions {s:?} differ from {first:?} of {}",
                p.display(),
                a.members[0].display()
            ));
        }
        shape = Some(s);
        models.push(m);
    }
    let Some((window, dv, da)) = shape else {
        return Err("no member".into());
    };
    a.data.window = window;
    let (val, _) = load_split(&a.data, Split::Validation)?;
    if (val.dv, val.da) != (dv, da) {
        return Err(format!(
            "the validation features have Dv={}, Da={}; the members want {dv}, {da}",
            val.dv, val.da
        ));
    }
    let bar = indicatif::ProgressBar::new(models.len() as u64).with_message("running members");
    let mut outs = Vec::new();
    for m in &mut models {
        outs.push(run_member(m, &val)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let task = TaskName::from(a.data.task);
    let frames = val.n * val.t;
    let score = |w: &[f64]| -> f64 {
        match task {
            TaskName::Va => {
                let (mut p, mut y) = (Vec::new(), Vec::new());
                for f in (0..frames).filter(|&f| val.va_valid[f] > 0.5) {
                    let mut v = [0.0f32; 2];
                    for (o, &wi) in outs.iter().zip(w) {
                        v[0] += wi as f32 * o.0[2 * f];
                        v[1] += wi as f32 * o.0[2 * f + 1];
                    }
                    p.push(v);
                    y.push([val.va[2 * f], val.va[2 * f + 1]]);
                }
                affect::metrics::va_ccc(&p, &y).map_or(f64::NAN, |c| c.mean)
            }
            TaskName::Expr => {
                let (mut p, mut y) = (Vec::new(), Vec::new());
                for f in (0..frames).filter(|&f| val.expr[f] >= 0) {
                    let mut l = [0.0f32; 8];
                    for (o, &wi) in outs.iter().zip(w) {
                        for (k, lk) in l.iter_mut().enumerate() {
                            *lk += wi as f32 * o.1[8 * f + k];
                        }
                    }
                    p.push(affect::metrics::argmax(&l).map_or(-1, |c| c as i64));
                    y.push(val.expr[f]);
                }
                affect::metrics::macro_f1(&p, &y).unwrap_or(f64::NAN)
            }
        }
    };
    for (i, p) in a.members.iter().enumerate() {
        let mut w = vec![0.0; a.members.len()];
        w[i] = 1.0;
        println!("member {i} ({}): {:.4}", p.display(), score(&w));
    }
    let (weights, best) = search_weights(a.members.len(), a.trials, a.seed, score);
    if !best.is_finite() {
        return Err("no valid validation frame to score the ensemble on".into());
    }
    println!("weights {weights:.3?}: validation metric {best:.4}");
    let first = models[0].contract();
    let InputSpec::Fusion(f) = &first.input else {
        return Err("not a fusion model".into());
    };
    let meta = FusionMeta {
        name: a.name.clone(),
        window,
        visual_dim: dv,
        audio_dim: da,
        visual_input: first.prop("affect.fusion.visual-input").map(str::to_owned),
        visual_model: f.visual_model.clone(),
        audio_model: f.audio_model.clone(),
        source: format!(
            "affect-train {} ensemble of {}",
            env!("CARGO_PKG_VERSION"),
            a.members
                .iter()
                .zip(&weights)
                .map(|(p, w)| format!("{} ×{w:.3}", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        license: "MPL-2.0".into(),
    };
    let bytes: Vec<Vec<u8>> = a
        .members
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())))
        .collect::<Result<_, _>>()?;
    let w32: Vec<f32> = weights.iter().map(|&w| w as f32).collect();
    let g = ensemble_graph(&bytes, &w32, &meta).map_err(|e| e.to_string())?;
    affect::dataset::write_atomic(&a.out, &g.to_bytes()).map_err(|e| e.to_string())?;
    // The result must load like any fusion model.
    Model::load(&a.out, Some(Role::Fusion), &config).map_err(|e| e.to_string())?;
    println!("wrote {}", a.out.display());
    Ok(())
}
