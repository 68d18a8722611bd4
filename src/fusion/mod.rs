// SPDX-License-Identifier: MPL-2.0
//! The default fusion model, `fusion-baseline`: a fixed, documented mapping written with
//! [`crate::onnx::GraphBuilder`] — **not a learned model**.
//!
//! No valence/arousal model exists on any registry this project can reach (DESIGN §5), so
//! the model that `avfuse` loads by default is this baseline; trained models from
//! `affect-train` replace it.
//!
//! Per frame (`T` may be anything; `affect.fusion.window` = [`vocal::WINDOW`], the history
//! of the running speaker reference; frame `t` reads frames `0..=t` only):
//!
//! - **Visual**: `visual` holds 8 expression probabilities in Aff-Wild2 order
//!   ([`crate::EXPRESSIONS`]: Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise,
//!   Other) — what `featextract` attaches as `probabilities` for the face model
//!   `fer-mini-xception`, whose 7 FER classes it reorders by the model's
//!   `affect.output.affwild2-map` ([`FER_TO_AFFWILD2`]), leaving `Other` at 0. Hence the
//!   contract key `affect.fusion.visual-input = probabilities`. They are cleaned (NaN → 0,
//!   clipped to \[0, 1\], renormalised) and blended with a one-hot Neutral by the visual
//!   mask (`m·p + (1-m)·neutral`; an all-zero vector counts as masked).
//!   `expr = log(p + 1e-6)`, with the `Other` logit fixed at [`OTHER_LOGIT`] (whatever
//!   probability `Other` has: the face model has no such class).
//!   Valence/arousal = `Σ p_k · c_k` with the circumplex coordinates [`CIRCUMPLEX`].
//! - **Audio** ([`vocal`]): `audio` holds the 164 `voice-prosody` features of the frame's
//!   audio window. `arousal += g · clip(Σ cues)`: F0 level against a register reference
//!   refined by the speaker's running level, F0 range, speaking rate, vocal effort
//!   (energy above vs below 1 kHz, spectral slope) and loudness changes against the
//!   stream's running level — cues independent of the microphone gain — gated by voice
//!   activity (`affect.fusion.audio-mask = speech`) and voicing. Valence is untouched; a
//!   face without a visual vector still gets the voice's arousal.
//! - `va` is clipped to [-1, 1]; every output is finite for any finite or non-finite input.
//!
//! # Circumplex coordinates (source)
//!
//! Russell, J. A. (1980). *A circumplex model of affect.* Journal of Personality and
//! Social Psychology, 39(6), 1161–1178. Table 3 ("direct circular scaling") places 28
//! affect words on a circle, pleasure at 0° and arousal at 90°. Each expression takes the
//! angle of its word, on the unit circle: valence = cos θ, arousal = sin θ.
//!
//! | Aff-Wild2 class | Russell (1980) word | angle | valence | arousal |
//! |---|---|---|---|---|
//! | Neutral | — (the circle's centre) | — | 0 | 0 |
//! | Anger | angry | 99.0° | −0.1564 | 0.9877 |
//! | Disgust | frustrated (disgust is not among the 28 words; nearest unpleasant, moderately aroused word — a judgement call) | 141.0° | −0.7771 | 0.6293 |
//! | Fear | afraid | 116.0° | −0.4384 | 0.8988 |
//! | Happiness | happy | 7.8° | 0.9907 | 0.1357 |
//! | Sadness | sad | 207.5° | −0.8870 | −0.4617 |
//! | Surprise | astonished | 69.8° | 0.3453 | 0.9385 |
//! | Other | — (the face model has none) | — | 0 | 0 |

pub mod post;
pub mod vocal;

use std::path::Path;

use crate::onnx::{Attr, Dim, GraphBuilder};
use crate::runtime::FeatureModelRef;
use crate::weights::Manifest;

/// `affect.name` of the baseline.
pub const BASELINE_NAME: &str = "fusion-baseline";
/// Visual input dimension: the 8 Aff-Wild2 expression probabilities.
pub const VISUAL_DIM: usize = 8;
/// Audio input dimension: the 164 features of `voice-prosody`.
pub const AUDIO_DIM: usize = vocal::AUDIO_DIM;
/// The face model whose probabilities the baseline reads (its MANIFEST file).
pub const VISUAL_MODEL_FILE: &str = "fer-mini-xception.onnx";
/// The audio model whose embeddings the baseline reads (its MANIFEST file).
pub const AUDIO_MODEL_FILE: &str = "voice-prosody.onnx";
/// For each FER class (Anger, Disgust, Fear, Happiness, Sadness, Surprise, Neutral), its
/// index in [`crate::EXPRESSIONS`]; equals the face model's `affect.output.affwild2-map`.
/// The graph no longer uses it (`featextract` reorders); `make_baseline` checks that the
/// face model's map still says this, so the circumplex table keeps meaning what it says.
pub const FER_TO_AFFWILD2: [usize; 7] = [1, 2, 3, 4, 5, 6, 0];
/// Index of Neutral among the FER classes.
pub const FER_NEUTRAL: usize = 6;
/// Index of Neutral in the visual input ([`crate::EXPRESSIONS`] order).
pub const NEUTRAL: usize = 0;
/// Index of Other in the visual input and `expr`.
pub const OTHER: usize = 7;
/// The `Other` logit (the face model has no such class): softmax weight e^-30 ≈ 1e-13.
pub const OTHER_LOGIT: f32 = -30.0;
/// Added to probabilities before the log of `expr`.
pub const LOG_EPS: f32 = 1e-6;
/// Sums of visual probabilities at or below this count as "no face vector" (masked).
pub const MIN_PROB_SUM: f32 = 1e-6;

/// (valence, arousal) of each Aff-Wild2 class ([`crate::EXPRESSIONS`] order) from
/// Russell (1980), Table 3; see the module documentation for the words and angles.
pub const CIRCUMPLEX: [[f32; 2]; 8] = [
    [0.0, 0.0],         // Neutral: centre
    [-0.1564, 0.9877],  // Anger: "angry" 99.0°
    [-0.7771, 0.6293],  // Disgust: "frustrated" 141.0° (substitute)
    [-0.4384, 0.8988],  // Fear: "afraid" 116.0°
    [0.9907, 0.1357],   // Happiness: "happy" 7.8°
    [-0.8870, -0.4617], // Sadness: "sad" 207.5°
    [0.3453, 0.9385],   // Surprise: "astonished" 69.8°
    [0.0, 0.0],         // Other: the centre (fer-mini-xception gives it probability 0)
];

/// Russell (1980) angles in degrees behind [`CIRCUMPLEX`] (`None`: the centre).
pub const RUSSELL_ANGLES_DEG: [Option<f32>; 8] = [
    None,
    Some(99.0),
    Some(141.0),
    Some(116.0),
    Some(7.8),
    Some(207.5),
    Some(69.8),
    None,
];

/// What can go wrong when generating the baseline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FusionError {
    /// The weights folder's MANIFEST.toml cannot be read.
    #[error("cannot read the weights manifest: {0}")]
    Manifest(String),
    /// A feature model the baseline reads is not listed.
    #[error("MANIFEST.toml has no entry for {0}")]
    MissingModel(String),
}

/// The feature models the baseline reads, with their sha256 from `MANIFEST.toml` in
/// `weights_dir`: (visual = fer-mini-xception, audio = voice-prosody).
pub fn feature_refs(weights_dir: &Path) -> Result<(FeatureModelRef, FeatureModelRef), FusionError> {
    let manifest = Manifest::load(weights_dir).map_err(FusionError::Manifest)?;
    let find = |file: &str| {
        manifest
            .model
            .iter()
            .find(|m| m.file == file)
            .map(|m| FeatureModelRef {
                name: file.trim_end_matches(".onnx").to_owned(),
                sha256: m.sha256.trim().to_ascii_lowercase(),
            })
            .ok_or_else(|| FusionError::MissingModel(file.to_owned()))
    };
    Ok((find(VISUAL_MODEL_FILE)?, find(AUDIO_MODEL_FILE)?))
}

/// The visual part of one frame in plain Rust (same math as the graph, f32): `visual` 8
/// probabilities in [`crate::EXPRESSIONS`] order, `visual_mask` in \[0, 1\]. Returns
/// (`va` before the voice, `expr` logits).
pub fn visual_frame(visual: &[f32], visual_mask: f32) -> ([f32; 2], [f32; 8]) {
    let clean = |v: f32| if v.is_nan() { 0.0 } else { v };
    let mut p = [0.0f32; VISUAL_DIM];
    for (d, s) in p.iter_mut().zip(visual) {
        *d = clean(*s).clamp(0.0, 1.0);
    }
    let sum: f32 = p.iter().sum();
    let valid = if sum > MIN_PROB_SUM { 1.0 } else { 0.0 };
    let m = clean(visual_mask).clamp(0.0, 1.0) * valid;
    let mut p8 = [0.0f32; 8];
    for (k, &q) in p.iter().enumerate() {
        let neutral = if k == NEUTRAL { 1.0 } else { 0.0 };
        p8[k] = m * (q / sum.max(MIN_PROB_SUM) - neutral) + neutral;
    }
    let mut va = [0.0f32; 2];
    let mut expr = [0.0f32; 8];
    for k in 0..8 {
        va[0] += p8[k] * CIRCUMPLEX[k][0];
        va[1] += p8[k] * CIRCUMPLEX[k][1];
        expr[k] = (p8[k] + LOG_EPS).ln();
    }
    expr[OTHER] = OTHER_LOGIT;
    (va, expr)
}

/// Reference of the whole graph in plain Rust for one window (oldest frame first):
/// per frame `visual` (8 probabilities), `visual_mask`, `audio` (a `voice-prosody`
/// vector) and `audio_mask`. Returns (`va`, `expr`) per frame; frame `t` reads frames
/// `0..=t` only. Used by the tests; also usable where ONNX Runtime is not.
pub fn baseline_window(
    visual: &[&[f32]],
    visual_mask: &[f32],
    audio: &[&[f32]],
    audio_mask: &[f32],
) -> Vec<([f32; 2], [f32; 8])> {
    let voice = vocal::arousal_shifts(audio, audio_mask, vocal::WINDOW);
    visual
        .iter()
        .zip(visual_mask)
        .zip(voice)
        .map(|((v, &m), shift)| {
            let (mut va, expr) = visual_frame(v, m);
            va[1] += shift;
            (va.map(|v| v.clamp(-1.0, 1.0)), expr)
        })
        .collect()
}

/// Adds nodes computing `out = clip(x with NaN → 0, lo, hi)` (`lo`, `hi` and a constant
/// `zero` must exist in `g`).
pub(crate) fn clean_node(g: &mut GraphBuilder, x: &str, lo: &str, hi: &str, out: &str) {
    let isnan = format!("{out}_isnan");
    let nonan = format!("{out}_nonan");
    g.node("IsNaN", &[x], &[&isnan], &[])
        .node("Where", &[&isnan, "zero", x], &[&nonan], &[])
        .node("Clip", &[&nonan, lo, hi], &[out], &[]);
}

/// Builds the `fusion-baseline` graph with its contract metadata. `visual_model` and
/// `audio_model` are recorded as `affect.fusion.*-model` / `-sha256`
/// (see [`feature_refs`]). The result is deterministic: the same arguments give the
/// same bytes.
pub fn build_baseline(
    visual_model: &FeatureModelRef,
    audio_model: &FeatureModelRef,
) -> GraphBuilder {
    let mut g = GraphBuilder::new(BASELINE_NAME);
    let bt = |d: i64| [Dim::from("batch"), Dim::from("time"), Dim::Fixed(d)];
    let bt2 = [Dim::from("batch"), Dim::from("time")];
    g.input("visual", &bt(VISUAL_DIM as i64))
        .input("audio", &bt(AUDIO_DIM as i64))
        .input("visual_mask", &bt2)
        .input("audio_mask", &bt2)
        .output("va", &bt(2))
        .output("expr", &bt(8));

    // Shared constants.
    g.constant("zero", &[], &[0.0]);
    g.constant("one", &[], &[1.0]);
    g.constant_i64("last_axis", &[1], &[-1]);

    let clean = clean_node;

    // --- visual: cleaned, renormalised, masked probabilities (Aff-Wild2 order) ---
    clean(&mut g, "visual", "zero", "one", "p_clip");
    g.node(
        "ReduceSum",
        &["p_clip", "last_axis"],
        &["p_sum"],
        &[("keepdims", Attr::Int(1))],
    );
    g.constant("min_sum", &[], &[MIN_PROB_SUM]);
    g.node("Max", &["p_sum", "min_sum"], &["p_den"], &[])
        .node("Div", &["p_clip", "p_den"], &["p_norm"], &[])
        .node("Greater", &["p_sum", "min_sum"], &["p_valid_b"], &[])
        .node(
            "Cast",
            &["p_valid_b"],
            &["p_valid"],
            &[("to", Attr::Int(1))],
        );
    clean(&mut g, "visual_mask", "zero", "one", "vm_clip");
    g.node("Unsqueeze", &["vm_clip", "last_axis"], &["vm_3d"], &[])
        .node("Mul", &["vm_3d", "p_valid"], &["vm_eff"], &[]);
    let mut neutral = [0.0f32; VISUAL_DIM];
    neutral[NEUTRAL] = 1.0;
    g.constant("neutral8", &[VISUAL_DIM as i64], &neutral);
    // p8 = m·(p − neutral) + neutral
    g.node("Sub", &["p_norm", "neutral8"], &["p_minus_n"], &[])
        .node("Mul", &["vm_eff", "p_minus_n"], &["p_masked"], &[])
        .node("Add", &["p_masked", "neutral8"], &["p8"], &[]);

    // expr = log(p8 + eps)·keep + other: the Other logit is replaced by OTHER_LOGIT.
    g.constant("log_eps", &[], &[LOG_EPS]);
    let mut keep = [1.0f32; 8];
    keep[OTHER] = 0.0;
    let mut other = [0.0f32; 8];
    other[OTHER] = OTHER_LOGIT;
    g.constant("other_keep", &[8], &keep);
    g.constant("other_logit", &[8], &other);
    g.node("Add", &["p8", "log_eps"], &["p8_eps"], &[])
        .node("Log", &["p8_eps"], &["log_p8"], &[])
        .node("Mul", &["log_p8", "other_keep"], &["log_p8_kept"], &[])
        .node("Add", &["log_p8_kept", "other_logit"], &["expr"], &[]);

    // VA from the circumplex.
    let circ: Vec<f32> = CIRCUMPLEX.iter().flatten().copied().collect();
    g.constant("circumplex", &[8, 2], &circ);
    g.node("MatMul", &["p8", "circumplex"], &["va_visual"], &[]);

    // --- audio: arousal += gate · clip(Σ cues) (see `vocal`) ---
    vocal::graph(&mut g);
    g.node(
        "Unsqueeze",
        &["voice_shift", "last_axis"],
        &["voice_3d"],
        &[],
    );
    g.constant("arousal_only", &[2], &[0.0, 1.0]);
    g.node("Mul", &["voice_3d", "arousal_only"], &["va_audio"], &[]);

    g.constant("va_lo", &[], &[-1.0]);
    g.node("Add", &["va_visual", "va_audio"], &["va_sum"], &[])
        .node("Clip", &["va_sum", "va_lo", "one"], &["va"], &[]);

    // --- contract ---
    g.meta("affect.contract", "1")
        .meta("affect.role", "fusion")
        .meta("affect.name", BASELINE_NAME)
        .meta("affect.fusion.window", vocal::WINDOW.to_string())
        .meta("affect.fusion.audio-mask", "speech")
        .meta("affect.fusion.visual-dim", VISUAL_DIM.to_string())
        .meta("affect.fusion.audio-dim", AUDIO_DIM.to_string())
        .meta("affect.fusion.visual-input", "probabilities")
        .meta("affect.fusion.visual-model", visual_model.name.clone())
        .meta("affect.fusion.visual-sha256", visual_model.sha256.clone())
        .meta("affect.fusion.audio-model", audio_model.name.clone())
        .meta("affect.fusion.audio-sha256", audio_model.sha256.clone())
        .meta("affect.output.names", "va,expr")
        .meta("affect.output.labels", crate::EXPRESSIONS.join(","))
        .meta("affect.license", "MPL-2.0")
        .meta(
            "affect.source",
            format!(
                "gst-affect {} src/fusion/ (generated by examples/make_baseline.rs): not a learned model; Aff-Wild2-ordered expression probabilities, VA from Russell (1980) circumplex angles, arousal from voice prosody (F0 level and range, speaking rate, vocal effort, loudness changes) while speech is present",
                env!("CARGO_PKG_VERSION"),
            ),
        );
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_reads_the_bundled_default_feature_models() {
        // `model=auto` in featextract must give what the default fusion model reads.
        use crate::features::{DEFAULT_AUDIO_MODEL, DEFAULT_FACE_MODEL};
        assert_eq!(VISUAL_MODEL_FILE, format!("{DEFAULT_FACE_MODEL}.onnx"));
        assert_eq!(AUDIO_MODEL_FILE, format!("{DEFAULT_AUDIO_MODEL}.onnx"));
    }

    #[test]
    fn circumplex_matches_russell_angles() {
        for (k, angle) in RUSSELL_ANGLES_DEG.iter().enumerate() {
            let want = angle.map_or([0.0, 0.0], |a| {
                let r = (a as f64).to_radians();
                [r.cos() as f32, r.sin() as f32]
            });
            for d in 0..2 {
                assert!((CIRCUMPLEX[k][d] - want[d]).abs() < 1e-4, "{k} {d}");
            }
        }
        // The map is a permutation onto the 7 non-Other classes.
        let mut seen = FER_TO_AFFWILD2.to_vec();
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(crate::EXPRESSIONS[FER_TO_AFFWILD2[FER_NEUTRAL]], "Neutral");
    }

    #[test]
    fn reference_frame_numbers() {
        let silence = vec![0.0f32; AUDIO_DIM];
        let mut happy = [0.0; 8];
        happy[4] = 1.0;
        let one =
            |p: &[f32], vm: f32, a: &[f32], am: f32| baseline_window(&[p], &[vm], &[a], &[am])[0];
        let (va, expr) = one(&happy, 1.0, &silence, 1.0);
        assert_eq!(va, CIRCUMPLEX[4]);
        assert!((expr[4] - (1.0f32 + LOG_EPS).ln()).abs() < 1e-6);
        assert_eq!(expr[7], OTHER_LOGIT);
        // Masked: neutral.
        let (va, expr) = one(&happy, 0.0, &silence, 0.0);
        assert_eq!(va, [0.0, 0.0]);
        assert!(expr[0] > expr[4]);
        // Garbage stays finite.
        let (va, expr) = one(
            &[f32::NAN; 8],
            f32::NAN,
            &[f32::INFINITY; AUDIO_DIM],
            f32::NAN,
        );
        assert!(va.iter().chain(&expr).all(|v| v.is_finite()));
    }
}
