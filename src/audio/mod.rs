// SPDX-License-Identifier: MPL-2.0
//! Audio numeric code: framing, anti-alias decimation, RNNoise denoising with delay
//! compensation, the Silero VAD runner, speech hysteresis, and the quality metrics
//! (SNR, SI-SDR, ROC AUC, balanced accuracy) used by tests and benchmarks.
//!
//! Nothing here knows GStreamer: the `audiodenoise` element is glue around
//! [`engine::SpeechEngine`], which takes interleaved `f32` samples at 48 kHz and gives
//! back the same number of samples, aligned with the input (RNNoise's 480-sample delay
//! is compensated), with a speech probability per 10 ms frame and speech boundary
//! events in samples.

pub mod decimate;
pub mod denoise;
pub mod engine;
pub mod frame;
pub mod hysteresis;
pub mod metrics;
pub mod silero;
pub mod synth;

/// The sample rate RNNoise (and therefore the engine) works at.
pub const RATE: u32 = 48_000;
/// RNNoise frame: 480 samples = 10 ms at 48 kHz.
pub const FRAME: usize = 480;

/// Dot product of the common length of `a` and `b`, summed in 16 interleaved partial
/// sums so the compiler can keep them in vector registers (a plain iterator `sum` is one
/// serial chain of float additions, about 4 cycles per tap). The FIR filters of the audio
/// paths (Silero's decimator, featextract's resampler) spend their time here. The result
/// differs from the serial sum by float rounding only.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 16;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    let mut acc = [0.0f32; L];
    for (x, y) in ca.zip(cb) {
        for i in 0..L {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    let mut w = L;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            acc[i] += acc[i + w];
        }
    }
    acc[0] + tail
}

pub use decimate::Decimator;
pub use denoise::Denoiser;
pub use engine::{EngineConfig, Gate, SpeechEngine, VadKind};
pub use frame::Framer;
pub use hysteresis::{Hysteresis, HysteresisConfig, SpeechEvent, SpeechEventKind};
pub use silero::SileroVad;

#[cfg(test)]
mod tests {
    #[test]
    fn dot_is_the_dot_product() {
        for n in [0usize, 1, 7, 16, 17, 145, 200] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n + 3).map(|i| (i as f32 * 0.11).cos()).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((super::dot(&a, &b) as f64 - want).abs() < 1e-5, "{n}");
        }
    }
}
