// SPDX-License-Identifier: MPL-2.0
//! The loudness envelope of an audio stream on the voice-activity frame clock: the RMS of
//! each 10 ms frame, for active-speaker detection ([`crate::speaker`]), kept in a
//! [`SpeechTimeline`](super::SpeechTimeline) like the voice activity itself.

/// RMS level of each `frame_len`-sample frame of interleaved audio (`channels` samples
/// per frame step, mixed as the mean of their squares), from the first sample; the last
/// frame may be shorter. Samples that are NaN or ±∞ count as 0; levels are clamped to
/// `[0, 1]` (full scale).
pub fn frame_levels(samples: &[f32], channels: usize, frame_len: usize) -> Vec<f32> {
    let channels = channels.max(1);
    let step = frame_len.max(1) * channels;
    samples
        .chunks(step)
        .map(|chunk| {
            let sum: f64 = chunk
                .iter()
                .map(|&x| {
                    if x.is_finite() {
                        (x as f64).powi(2)
                    } else {
                        0.0
                    }
                })
                .sum();
            ((sum / chunk.len() as f64).sqrt() as f32).clamp(0.0, 1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_per_frame_mixes_channels_and_survives_garbage() {
        // A full-scale square wave is RMS 1, a half-scale one 0.5; stereo mixes.
        let mut x = Vec::new();
        for i in 0..480 {
            x.push(if i % 2 == 0 { 1.0 } else { -1.0 });
            x.push(0.0);
        }
        for i in 0..200 {
            x.push(if i % 2 == 0 { 0.5 } else { -0.5 });
            x.push(if i % 2 == 0 { 0.5 } else { -0.5 });
        }
        let l = frame_levels(&x, 2, 480);
        assert_eq!(l.len(), 2);
        assert!((l[0] - (0.5f32).sqrt()).abs() < 1e-6, "{l:?}");
        assert!((l[1] - 0.5).abs() < 1e-6, "{l:?}");
        let bad = frame_levels(&[f32::NAN, f32::INFINITY, 1e30, 0.0], 1, 2);
        assert_eq!(bad, vec![0.0, 1.0]);
        assert!(frame_levels(&[], 1, 480).is_empty());
    }
}
