// SPDX-License-Identifier: MPL-2.0
//! The baseline's audio path: a speech-presence arousal term on the 96-d speech
//! embedding of `oww-speech-embedding` — not a vocal-arousal estimate.
//!
//! # What was measured (`cargo run --example make_baseline -- --calibrate`)
//!
//! Embeddings of one 12512-sample window per run (as `featextract` runs the model),
//! 16 kHz, every 80 ms; deviation `d = ‖e − r‖₂ / √96` from the embedding `r` of
//! digital silence ([`SILENCE_EMBEDDING`]; every silent window gives `r` to 4e-6):
//!
//! | input | d |
//! |---|---|
//! | white noise −80 … −10 dBFS, pink noise −30 / −10 dBFS | mean 2.7–3.7, max ≤ 4.4 |
//! | espeak-ng speech, windows inside the utterance, 2 sentences × 100/175/300 wpm × peak −40/−26/−12/−1 dBFS | 10th percentile 7.0–12.3, median 11.4–13.3, max 16.6 |
//!
//! Across a 39 dB change of level the median `d` of a sentence moves by ≤ 0.3 (and
//! slightly *down* as level rises); across 100 → 300 wpm by ≤ 1.2, not monotonically
//! over the two sentences. Loudness and speaking rate — the acoustic correlates of vocal
//! arousal — are therefore not visible in this distance (the embedding front end
//! normalises level per window), while speech vs. non-speech is separated by a wide
//! margin. So the only thing this path claims is **speech presence**:
//! `gate = clip((d − 5) / (9 − 5), 0, 1)` (5 lies above every non-speech window, 9 below
//! the 10th percentile of most sentences; 82–100 % of the windows inside an utterance open
//! it fully), and
//! `arousal += AROUSAL_WEIGHT · audio_mask · gate` with [`AROUSAL_WEIGHT`] = 0.1, a chosen
//! small constant (a person who is speaking is taken to be slightly more activated than
//! one who is not), not a learned or measured value. Non-speech sounds that the
//! embedding does not tell from speech (music, babble) can open the gate; feed an
//! `audio_mask` from a VAD where that matters.

/// Dimension of the speech embedding.
pub const AUDIO_DIM: usize = 96;
/// Embedding values are clipped to ±this before use (keeps garbage finite).
pub const INPUT_LIMIT: f32 = 1e4;
/// Deviation at or below which the gate is closed.
pub const GATE_LO: f32 = 5.0;
/// Deviation at or above which the gate is fully open.
pub const GATE_HI: f32 = 9.0;
/// Arousal added when speech is present (gate 1, audio mask 1).
pub const AROUSAL_WEIGHT: f32 = 0.1;

/// `oww-speech-embedding` output for a window of digital silence (12512 zero samples),
/// measured with ONNX Runtime 1.31.1 by `make_baseline --calibrate`.
pub const SILENCE_EMBEDDING: [f32; AUDIO_DIM] = [
    -4.936722, 19.387598, 8.662572, -3.0795128, 4.8746505, 25.96702, 10.267291, -15.02655,
    -1.1008981, 11.771115, -26.499859, -1.8499563, 9.192388, -5.9763837, -5.400809, -3.4060464,
    7.080231, -5.844442, 3.9858708, -13.363791, 4.440429, 18.841406, -8.178738, -9.440124,
    -7.6183023, 13.860627, -20.480137, -2.9983876, 4.3329067, 2.646652, -10.251681, 18.191353,
    -21.826746, -3.7858427, -12.356353, -1.3432461, 38.230156, 18.310575, -8.144444, 26.286665,
    -9.480195, 2.8964798, 37.79485, -16.30124, -13.52892, -7.998279, -8.230912, 6.217335,
    15.473968, -7.4716954, -9.008851, 3.0909019, 11.819297, -1.0332241, -20.816809, -17.792488,
    -1.2086641, 28.54443, -15.447296, 0.3564981, 6.248525, 8.138706, 11.195828, -3.0411994,
    25.106752, 14.92096, 8.97165, -13.144224, -10.940308, 3.8171442, 0.65748703, 9.037536,
    8.665454, -6.888184, 12.278726, 6.5706773, 3.5194802, 7.5434527, -22.791742, -36.776493,
    11.589969, 17.173128, 8.118748, -11.019925, 13.788208, -5.869899, 13.466281, -10.365207,
    10.326647, 37.467663, 5.6385283, 21.887426, 28.54492, -30.54724, 7.677815, 27.278812,
];

/// RMS deviation of an embedding from [`SILENCE_EMBEDDING`] (NaN → 0, values clipped
/// to ±[`INPUT_LIMIT`]; missing trailing values count as 0).
pub fn deviation(embedding: &[f32]) -> f32 {
    let ss: f32 = SILENCE_EMBEDDING
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let v = embedding.get(i).copied().unwrap_or(0.0);
            let v = if v.is_nan() {
                0.0
            } else {
                v.clamp(-INPUT_LIMIT, INPUT_LIMIT)
            };
            (v - r) * (v - r)
        })
        .sum();
    (ss * (1.0 / AUDIO_DIM as f32)).sqrt()
}

/// Speech gate in \[0, 1\] from a deviation.
pub fn gate(deviation: f32) -> f32 {
    ((deviation - GATE_LO) * (1.0 / (GATE_HI - GATE_LO))).clamp(0.0, 1.0)
}

/// The arousal added for one frame: `AROUSAL_WEIGHT · mask · gate(deviation(embedding))`.
pub fn arousal_shift(embedding: &[f32], mask: f32) -> f32 {
    gate(deviation(embedding)) * mask * AROUSAL_WEIGHT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_is_closed_on_silence_and_open_far_from_it() {
        assert_eq!(deviation(&SILENCE_EMBEDDING), 0.0);
        assert_eq!(arousal_shift(&SILENCE_EMBEDDING, 1.0), 0.0);
        let far: Vec<f32> = SILENCE_EMBEDDING.iter().map(|v| v + 12.0).collect();
        assert!((deviation(&far) - 12.0).abs() < 1e-3);
        assert_eq!(arousal_shift(&far, 1.0), AROUSAL_WEIGHT);
        assert_eq!(arousal_shift(&far, 0.0), 0.0);
        let mid: Vec<f32> = SILENCE_EMBEDDING.iter().map(|v| v + 7.0).collect();
        assert!((gate(deviation(&mid)) - 0.5).abs() < 1e-3);
        assert!(arousal_shift(&[f32::INFINITY; AUDIO_DIM], 1.0).is_finite());
    }
}
