// SPDX-License-Identifier: MPL-2.0
//! `affect-train ensemble`: several exported fusion models → one ONNX graph whose
//! outputs are their weighted sum, the weights found by Dirichlet random search on the
//! validation split (see `affect::train::ensemble`).

use std::path::PathBuf;

use affect::dataset::Labels;
use affect::dataset::layout::{Split, Subject};
use affect::runtime::{ExecutionProvider, InputSpec, Model, Role, SessionConfig};
use affect::train::ensemble::{ensemble_graph, search_weights};
use affect::train::export::FusionMeta;
use affect::train::fit::TaskName;

use crate::eval::Predictions;
use crate::fit::{DataArgs, load_split_subjects};

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

/// Per-member streamed predictions on the validation subjects, frames of all subjects
/// in order: va \[frames\] and expression logits \[frames\].
fn run_member(m: &mut Model, subjects: &[Subject], window: usize) -> Result<Predictions, String> {
    let mut all = Predictions {
        va: Vec::new(),
        expr: Vec::new(),
    };
    let bar = indicatif::ProgressBar::hidden();
    for s in subjects {
        let p = crate::eval::predict(m, s, window, crate::eval::Mode::Stream, 256, &bar)?;
        all.va.extend(p.va);
        all.expr.extend(p.expr);
    }
    Ok(all)
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
        let s = (f.window, f.lookahead, f.visual_dim, f.audio_dim);
        if let Some(first) = shape
            && first != s
        {
            return Err(format!(
                "{}: window/lookahead/visual/audio dimensions {s:?} differ from {first:?} of {}",
                p.display(),
                a.members[0].display()
            ));
        }
        shape = Some(s);
        models.push(m);
    }
    let Some((window, lookahead, dv, da)) = shape else {
        return Err("no member".into());
    };
    a.data.window = window;
    // Weights are fitted on what avfuse will output: every member streamed, one window
    // per frame (not the chunks training reads).
    let (_, _, subjects, _) = load_split_subjects(&a.data, Split::Validation)?;
    if let Some(s) = subjects.first()
        && (s.features.visual_dim, s.features.audio_dim) != (dv, da)
    {
        return Err(format!(
            "the validation features have Dv={}, Da={}; the members want {dv}, {da}",
            s.features.visual_dim, s.features.audio_dim
        ));
    }
    let bar = indicatif::ProgressBar::new(models.len() as u64).with_message("running members");
    let mut outs = Vec::new();
    for m in &mut models {
        outs.push(run_member(m, &subjects, window)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let task = TaskName::from(a.data.task);
    let (mut va_true, mut expr_true) = (Vec::new(), Vec::new());
    for s in &subjects {
        match &s.labels {
            Labels::Va(l) => va_true.extend_from_slice(l),
            Labels::Expr(l) => expr_true.extend_from_slice(l),
        }
    }
    let score = |w: &[f64]| -> f64 {
        match task {
            TaskName::Va => {
                let p: Vec<[f32; 2]> = (0..va_true.len())
                    .map(|f| {
                        let mut v = [0.0f32; 2];
                        for (o, &wi) in outs.iter().zip(w) {
                            v[0] += wi as f32 * o.va[f][0];
                            v[1] += wi as f32 * o.va[f][1];
                        }
                        v.map(|x| x.clamp(-1.0, 1.0))
                    })
                    .collect();
                affect::metrics::va_ccc(&p, &va_true).map_or(f64::NAN, |c| c.mean)
            }
            TaskName::Expr => {
                let (mut p, mut y) = (Vec::new(), Vec::new());
                for f in (0..expr_true.len()).filter(|&f| expr_true[f] >= 0) {
                    let mut l = [0.0f32; 8];
                    for (o, &wi) in outs.iter().zip(w) {
                        for (k, lk) in l.iter_mut().enumerate() {
                            *lk += wi as f32 * o.expr[f][k];
                        }
                    }
                    p.push(affect::metrics::argmax(&l).map_or(-1, |c| c as i64));
                    y.push(expr_true[f]);
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
    // Members read the same audio mask (their training data's), or the ensemble could not
    // declare one.
    for (m, p) in models.iter().zip(&a.members) {
        if let InputSpec::Fusion(g) = &m.contract().input
            && g.audio_mask != f.audio_mask
        {
            return Err(format!(
                "{} reads affect.fusion.audio-mask = {}, {} reads {}: members must be trained on the same kind of audio mask",
                p.display(),
                g.audio_mask.as_str(),
                a.members[0].display(),
                f.audio_mask.as_str()
            ));
        }
    }
    let meta = FusionMeta {
        name: a.name.clone(),
        window,
        lookahead,
        visual_dim: dv,
        audio_dim: da,
        visual_input: first.prop("affect.fusion.visual-input").map(str::to_owned),
        audio_mask: f.audio_mask.declared(),
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
