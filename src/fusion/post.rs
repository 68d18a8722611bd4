// SPDX-License-Identifier: MPL-2.0
//! What `avfuse` does with the fusion model's outputs for one face: softmax of the
//! expression logits, valence/arousal clamped to [-1, 1], optional exponential smoothing
//! per track, validation. No value it returns is NaN.

use std::collections::BTreeMap;

use crate::results::{FaceAffect, FaceBox};

/// The fusion model gave NaN or ∞ for a face: the face is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonFinite;

/// Valence and arousal as avfuse reports them: clamped to [-1, 1]; a non-finite value
/// stays as it is (avfuse skips such a face, the metrics refuse it).
pub fn clip_va(va: [f32; 2]) -> [f32; 2] {
    va.map(|v| if v.is_finite() { v.clamp(-1.0, 1.0) } else { v })
}

/// Numerically stable softmax of 8 logits (non-finite logits are ignored for the
/// maximum; the caller checks the result for finiteness).
pub fn softmax8(logits: &[f32]) -> [f32; 8] {
    let mut out = [0.0f32; 8];
    let max = logits
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = (l - max).exp();
        sum += *o;
    }
    for o in &mut out {
        *o /= sum;
    }
    out
}

/// Smoothed values of one track.
#[derive(Debug, Clone, Copy)]
struct Smoothed {
    va: [f32; 2],
    probs: [f32; 8],
}

/// Per-track post-processing state (the smoothing memory).
#[derive(Debug, Clone, Default)]
pub struct PostProcessor {
    smoothed: BTreeMap<u64, Smoothed>,
}

impl PostProcessor {
    /// No track known.
    pub fn new() -> Self {
        Self::default()
    }

    /// The result for one face from the model's `va` and 8 expression `logits` at the
    /// newest frame. `smoothing` (clamped to [0, 0.99]) weighs the track's previous
    /// result: `s = α·previous + (1-α)·new`, for valence, arousal and each probability.
    /// `Err(NonFinite)` when the model gave NaN/∞ (nothing is remembered), `Ok(None)`
    /// when the result fails [`FaceAffect::validated`].
    pub fn face(
        &mut self,
        track_id: u64,
        bbox: FaceBox,
        va: [f32; 2],
        logits: &[f32],
        smoothing: f64,
    ) -> Result<Option<FaceAffect>, NonFinite> {
        let probs = softmax8(logits);
        if !(va.iter().chain(&probs).all(|x| x.is_finite())) {
            return Err(NonFinite);
        }
        let alpha = smoothing.clamp(0.0, 0.99) as f32;
        let v = clip_va(va);
        let s = match self.smoothed.get(&track_id) {
            Some(prev) if alpha > 0.0 => {
                let mix = |p: f32, x: f32| alpha * p + (1.0 - alpha) * x;
                let mut probs_s = [0.0f32; 8];
                for k in 0..8 {
                    probs_s[k] = mix(prev.probs[k], probs[k]);
                }
                Smoothed {
                    va: [mix(prev.va[0], v[0]), mix(prev.va[1], v[1])],
                    probs: probs_s,
                }
            }
            _ => Smoothed { va: v, probs },
        };
        self.smoothed.insert(track_id, s);
        Ok(FaceAffect {
            track_id,
            bbox,
            valence: s.va[0],
            arousal: s.va[1],
            probabilities: s.probs,
            ..Default::default()
        }
        .validated()
        .ok())
    }

    /// Forgets a track (it ended).
    pub fn forget(&mut self, track_id: u64) {
        self.smoothed.remove(&track_id);
    }

    /// Forgets every track (flush, new segment).
    pub fn reset(&mut self) {
        self.smoothed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: FaceBox = FaceBox {
        x: 0.0,
        y: 0.0,
        width: 1.0,
        height: 1.0,
    };

    #[test]
    fn softmax_clamp_smoothing_and_non_finite() {
        let p = softmax8(&[0.0, 0.0, 0.0, 0.0, 2.0f32.ln() + 1000.0, 0.0, 0.0, 0.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(p[4], 1.0, "a huge logit takes all the mass, no overflow");
        let mut post = PostProcessor::new();
        let flat = [0.0f32; 8];
        let f = post.face(1, B, [3.0, -0.5], &flat, 0.0).unwrap().unwrap();
        assert_eq!((f.valence, f.arousal), (1.0, -0.5), "clamped");
        assert!(f.probabilities.iter().all(|&q| (q - 0.125).abs() < 1e-7));
        // Smoothing 0.75: a quarter of the new value.
        let f = post.face(1, B, [0.0, 0.5], &flat, 0.75).unwrap().unwrap();
        assert!((f.valence - 0.75).abs() < 1e-6 && (f.arousal + 0.25).abs() < 1e-6);
        // Other tracks, and forgotten ones, start afresh.
        let f = post.face(2, B, [0.0, 0.5], &flat, 0.75).unwrap().unwrap();
        assert_eq!(f.valence, 0.0);
        post.forget(1);
        let f = post.face(1, B, [0.2, 0.2], &flat, 0.75).unwrap().unwrap();
        assert_eq!(f.valence, 0.2);
        assert_eq!(post.face(3, B, [f32::NAN, 0.0], &flat, 0.0), Err(NonFinite));
        let mut inf = flat;
        inf[0] = f32::INFINITY;
        assert_eq!(post.face(3, B, [0.0, 0.0], &inf, 0.0), Err(NonFinite));
    }
}
