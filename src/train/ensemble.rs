// SPDX-License-Identifier: MPL-2.0
//! Decision-level ensembles (the SUN team's entry): several exported fusion models, one
//! weight per model found by Dirichlet random search on the validation split, written as
//! one ONNX graph — the members' graphs (names prefixed `m<i>/`) reading the shared
//! contract inputs, and `va = Σ wᵢ·vaᵢ`, `expr = Σ wᵢ·exprᵢ` (weights sum to 1, so `va`
//! stays in [-1, 1]).

use crate::dataset::synth::Rng;
use crate::onnx::{Dim, GraphBuilder};
use crate::train::export::{FusionMeta, fusion_meta, mul, op, scalar};

/// What can go wrong building an ensemble.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnsembleError {
    /// Fewer than one member, or weights that do not match the members.
    #[error("{0}")]
    Members(String),
    /// A member cannot be embedded.
    #[error("member {index}: {message}")]
    Member {
        /// 0-based member index.
        index: usize,
        /// Why.
        message: String,
    },
}

/// A draw from the flat Dirichlet distribution over `k` weights (normalised
/// exponential variates).
pub fn dirichlet(rng: &mut Rng, k: usize) -> Vec<f64> {
    let e: Vec<f64> = (0..k).map(|_| -(1.0 - rng.uniform()).ln()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// Random search: evaluates `score(weights)` for the uniform weights, each member alone
/// (so the result is never worse than the best member) and `trials` Dirichlet draws
/// (seeded); returns the best weights and their score (higher is better). Scores that
/// are not finite never win.
pub fn search_weights(
    k: usize,
    trials: usize,
    seed: u64,
    mut score: impl FnMut(&[f64]) -> f64,
) -> (Vec<f64>, f64) {
    let mut rng = Rng::new(seed);
    let uniform = vec![1.0 / k.max(1) as f64; k];
    let mut best = (uniform.clone(), score(&uniform));
    if !best.1.is_finite() {
        best.1 = f64::NEG_INFINITY;
    }
    let one_hot = (0..k).map(|i| (0..k).map(|j| f64::from(u8::from(i == j))).collect());
    let draws: Vec<Vec<f64>> = (0..trials).map(|_| dirichlet(&mut rng, k)).collect();
    for w in one_hot.chain(draws) {
        let s = score(&w);
        if s.is_finite() && s > best.1 {
            best = (w, s);
        }
    }
    best
}

/// One ONNX graph: the `members` (serialised fusion models with the same contract
/// inputs) weighted by `weights`, with the fusion contract of `meta`.
pub fn ensemble_graph(
    members: &[Vec<u8>],
    weights: &[f32],
    meta: &FusionMeta,
) -> Result<GraphBuilder, EnsembleError> {
    if members.is_empty() || members.len() != weights.len() {
        return Err(EnsembleError::Members(format!(
            "{} members and {} weights",
            members.len(),
            weights.len()
        )));
    }
    if weights.iter().any(|w| !w.is_finite()) {
        return Err(EnsembleError::Members("a weight is not finite".into()));
    }
    let mut g = GraphBuilder::new(&meta.name);
    let t = meta.window as i64;
    let b = || Dim::from("batch");
    g.input("visual", &[b(), t.into(), (meta.visual_dim as i64).into()])
        .input("audio", &[b(), t.into(), (meta.audio_dim as i64).into()])
        .input("visual_mask", &[b(), t.into()])
        .input("audio_mask", &[b(), t.into()])
        .output("va", &[b(), t.into(), 2.into()])
        .output("expr", &[b(), t.into(), 8.into()]);
    let (mut vas, mut exprs) = (Vec::new(), Vec::new());
    for (i, (bytes, &w)) in members.iter().zip(weights).enumerate() {
        let outs = g
            .embed(bytes, &format!("m{i}"))
            .map_err(|message| EnsembleError::Member { index: i, message })?;
        let find = |n: &str| {
            outs.iter()
                .find(|o| o.rsplit('/').next() == Some(n))
                .cloned()
                .ok_or_else(|| EnsembleError::Member {
                    index: i,
                    message: format!("no output `{n}`"),
                })
        };
        let (va, expr) = (find("va")?, find("expr")?);
        let w = scalar(&mut g, w);
        vas.push(mul(&mut g, &va, &w));
        exprs.push(mul(&mut g, &expr, &w));
    }
    let va_refs: Vec<&str> = vas.iter().map(String::as_str).collect();
    let va = op(&mut g, "Sum", &va_refs, &[]);
    let expr_refs: Vec<&str> = exprs.iter().map(String::as_str).collect();
    let expr = op(&mut g, "Sum", &expr_refs, &[]);
    g.node("Identity", &[&va], &["va"], &[])
        .node("Identity", &[&expr], &["expr"], &[]);
    fusion_meta(&mut g, meta);
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::export::{export_fusion, ort_run};
    use crate::train::models::{ModelKind, ModelSpec};

    fn meta(t: usize) -> FusionMeta {
        FusionMeta {
            name: "ensemble-test".into(),
            window: t,
            lookahead: 0,
            visual_dim: 6,
            audio_dim: 5,
            visual_input: None,
            audio_mask: None,
            visual_model: None,
            audio_model: None,
            source: "test".into(),
            license: "MPL-2.0".into(),
        }
    }

    #[test]
    fn ensemble_output_is_the_weighted_sum_of_the_members() {
        let _rng = crate::train::models::testing::rng_lock();
        let (b, t) = (2, 8);
        let d = crate::train::cpu_device();
        let members: Vec<Vec<u8>> = [ModelKind::Attention, ModelKind::Tcn, ModelKind::Transformer]
            .iter()
            .map(|&k| {
                let spec = ModelSpec {
                    hidden: 8,
                    window: t,
                    layers: 1,
                    heads: 2,
                    lookahead: 0,
                    ..ModelSpec::seed(k, 6, 5)
                };
                export_fusion(&spec.init(&d), &meta(t)).to_bytes()
            })
            .collect();
        let weights = [0.5f32, 0.2, 0.3];
        let g = ensemble_graph(&members, &weights, &meta(t)).unwrap();
        let mut rng = Rng::new(9);
        let mut r = |n: usize| (0..n).map(|_| rng.normal() as f32).collect::<Vec<_>>();
        let inputs = [
            ("visual", vec![b, t, 6], r(b * t * 6)),
            ("audio", vec![b, t, 5], r(b * t * 5)),
            ("visual_mask", vec![b, t], vec![1.0; b * t]),
            (
                "audio_mask",
                vec![b, t],
                (0..b * t).map(|i| (i % 3 != 0) as u8 as f32).collect(),
            ),
        ];
        let outs: Vec<_> = members.iter().map(|m| ort_run::run(m, &inputs)).collect();
        let ens = ort_run::run(&g.to_bytes(), &inputs);
        for name in ["va", "expr"] {
            let got = &ens[name];
            let mut worst = 0.0f32;
            for (j, g) in got.iter().enumerate() {
                let want: f32 = outs
                    .iter()
                    .zip(&weights)
                    .map(|(o, w)| w * o[name].as_slice().unwrap()[j])
                    .sum();
                worst = worst.max((g - want).abs());
            }
            assert!(worst < 1e-5, "{name}: {worst}");
            // Not trivially one member.
            let m0 = outs[0][name].as_slice().unwrap();
            assert!(got.iter().zip(m0).any(|(a, b)| (a - b).abs() > 1e-4));
        }
        let props = crate::onnx::read_metadata(&g.to_bytes()).unwrap();
        assert!(props.contains(&("affect.role".into(), "fusion".into())));
    }

    #[test]
    fn search_finds_the_best_mixture_and_rejects_bad_input() {
        let _rng = crate::train::models::testing::rng_lock();
        // Score peaks at w = (0.7, 0.3): the search must come close, beating uniform.
        let (w, s) = search_weights(2, 400, 1, |w| -((w[0] - 0.7).powi(2)));
        assert!((w[0] - 0.7).abs() < 0.02 && s > -0.04 * 0.04, "{w:?} {s}");
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // NaN scores never win.
        let (w, _) = search_weights(
            3,
            10,
            2,
            |w| if w[0] == 1.0 / 3.0 { f64::NAN } else { w[1] },
        );
        assert!(w[1] > 1.0 / 3.0);
        let e = ensemble_graph(&[], &[], &meta(4)).unwrap_err();
        assert!(e.to_string().contains("0 members"));
        let e = ensemble_graph(&[vec![1, 2, 3]], &[1.0], &meta(4)).unwrap_err();
        assert!(e.to_string().starts_with("member 0"), "{e}");
    }
}
