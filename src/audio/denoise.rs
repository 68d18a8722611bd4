// SPDX-License-Identifier: MPL-2.0
//! Multi-channel RNNoise (the `nnnoiseless` crate) with its one-frame delay compensated.
//!
//! RNNoise analyses a 960-sample window (the previous and the current 480-sample frame)
//! and synthesises by overlap-add, so the frame it returns for input frame `k` is the
//! denoised input frame `k − 1`: a fixed 480-sample (10 ms) delay. [`Denoiser::process`]
//! pairs that output with the original frame `k − 1`, so the caller gets frames aligned
//! with the input (and pays one more frame of latency instead of a time shift).

use nnnoiseless::DenoiseState;

use super::FRAME;

/// RNNoise works on 16-bit-scaled samples.
const SCALE: f32 = 32768.0;

/// Largest magnitude RNNoise is given (before `SCALE`): 60 dB above full scale.
///
/// RNNoise computes band energies in `f32`; samples around 1e15 overflow them to
/// infinity, and the NaN that follows trips an unchecked branch in its FFT (an abort in
/// debug builds, undefined behaviour in release). Anything louder than this is clipped
/// first ([`sanitize`] does it for whole frames and counts).
pub const MAX_ABS: f32 = 1000.0;

/// What [`sanitize`] changed in a frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sanitized {
    /// NaN / ±inf samples replaced by 0.
    pub replaced: u64,
    /// Finite samples beyond ±[`MAX_ABS`] clipped to it.
    pub clipped: u64,
}

/// Makes samples safe for RNNoise in place: NaN and ±inf become 0, finite samples
/// beyond ±[`MAX_ABS`] are clipped to it.
pub fn sanitize(samples: &mut [f32]) -> Sanitized {
    let mut n = Sanitized::default();
    for v in samples.iter_mut() {
        if !v.is_finite() {
            *v = 0.0;
            n.replaced += 1;
        } else if v.abs() > MAX_ABS {
            *v = MAX_ABS.copysign(*v);
            n.clipped += 1;
        }
    }
    n
}

/// Independent RNNoise states for each channel, plus the previous input frame.
pub struct Denoiser {
    channels: usize,
    states: Vec<Box<DenoiseState<'static>>>,
    prev: Vec<f32>,
    primed: bool,
    in_buf: [f32; FRAME],
    out_buf: [f32; FRAME],
}

impl std::fmt::Debug for Denoiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Denoiser")
            .field("channels", &self.channels)
            .field("primed", &self.primed)
            .finish()
    }
}

impl Denoiser {
    /// A denoiser for `channels` interleaved channels (at least 1).
    pub fn new(channels: usize) -> Self {
        let channels = channels.max(1);
        Denoiser {
            channels,
            states: (0..channels).map(|_| DenoiseState::new()).collect(),
            prev: vec![0.0; FRAME * channels],
            primed: false,
            in_buf: [0.0; FRAME],
            out_buf: [0.0; FRAME],
        }
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Fresh RNNoise states, no previous frame.
    pub fn reset(&mut self) {
        for s in &mut self.states {
            *s = DenoiseState::new();
        }
        self.prev.iter_mut().for_each(|v| *v = 0.0);
        self.primed = false;
    }

    /// Processes input frame `k` (`480 · channels` interleaved samples, nominally in
    /// [-1, 1]; see [`sanitize`]: RNNoise itself is only ever given finite samples within
    /// ±[`MAX_ABS`], whatever the frame holds).
    ///
    /// For `k ≥ 1` writes the frame aligned with input frame `k − 1` into `out` and returns
    /// RNNoise's voice probability for it (the maximum over channels); returns `None` for
    /// the first frame after a reset. `strength` mixes denoised (1) and original (0)
    /// samples; `None` bypasses denoising (the original frame `k − 1`). With `run_rnnoise`
    /// false and no denoising, RNNoise is skipped and the probability is 0.
    pub fn process(
        &mut self,
        frame: &[f32],
        out: &mut [f32],
        strength: Option<f32>,
        run_rnnoise: bool,
    ) -> Option<f32> {
        let ch = self.channels;
        debug_assert_eq!(frame.len(), FRAME * ch);
        let mut prob = 0.0f32;
        let run = run_rnnoise || strength.is_some();
        let primed = self.primed;
        if run {
            let s = strength.unwrap_or(0.0).clamp(0.0, 1.0);
            for c in 0..ch {
                for i in 0..FRAME {
                    let v = frame[i * ch + c];
                    // `clamp` keeps NaN: replace non-finite samples first.
                    let v = if v.is_finite() {
                        v.clamp(-MAX_ABS, MAX_ABS)
                    } else {
                        0.0
                    };
                    self.in_buf[i] = v * SCALE;
                }
                let p = self.states[c].process_frame(&mut self.out_buf, &self.in_buf);
                prob = prob.max(if p.is_finite() { p } else { 0.0 });
                if primed {
                    for i in 0..FRAME {
                        let orig = self.prev[i * ch + c];
                        let den = self.out_buf[i] / SCALE;
                        out[i * ch + c] = if strength.is_some() {
                            s * den + (1.0 - s) * orig
                        } else {
                            orig
                        };
                    }
                }
            }
        } else if primed {
            out.copy_from_slice(&self.prev);
        }
        self.prev.copy_from_slice(frame);
        self.primed = true;
        primed.then_some(prob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bypass_is_exact_and_delay_compensated() {
        let x = crate::audio::synth::white_noise(FRAME * 10, 1);
        let mut d = Denoiser::new(1);
        let mut out = vec![0.0; FRAME];
        let mut y = Vec::new();
        for f in x.chunks_exact(FRAME) {
            if d.process(f, &mut out, None, false).is_some() {
                y.extend_from_slice(&out);
            }
        }
        assert_eq!(&y[..], &x[..FRAME * 9]);
    }

    #[test]
    fn strength_zero_gives_the_original_and_silence_stays_silent() {
        let mut d = Denoiser::new(2);
        let z = vec![0.0f32; FRAME * 2];
        let mut out = vec![1.0; FRAME * 2];
        assert!(d.process(&z, &mut out, Some(1.0), true).is_none());
        let p = d.process(&z, &mut out, Some(1.0), true).unwrap();
        assert!(out.iter().all(|&v| v == 0.0));
        assert!(p < 0.5);
        let x = crate::audio::synth::white_noise(FRAME * 2, 2);
        let mut d = Denoiser::new(2);
        d.process(&x, &mut out, Some(0.0), true);
        d.process(&z, &mut out, Some(0.0), true).unwrap();
        for (a, b) in out.iter().zip(&x) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}
