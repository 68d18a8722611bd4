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
pub mod silero_native;
pub mod synth;

/// The sample rate RNNoise (and therefore the engine) works at.
pub const RATE: u32 = 48_000;
/// RNNoise frame: 480 samples = 10 ms at 48 kHz.
pub const FRAME: usize = 480;

/// Dot product of the common length of `a` and `b`.
///
/// On x86-64 CPUs with AVX2 and FMA (checked at run time, like the face code's SIMD
/// paths) it runs [`dot_avx2_fma`]: 32 partial sums in four 8-lane registers with fused
/// multiply-adds. Elsewhere [`dot_portable`]. The FIR filters of the audio paths
/// (Silero's decimator, featextract's resampler) and the native Silero VAD spend their
/// time here. Results differ from a serial sum, and between the two paths, by float
/// rounding only.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { dot_avx2_fma(a, b) };
        }
    }
    dot_portable(a, b)
}

/// [`dot`] in 16 interleaved partial sums so the compiler can keep them in vector
/// registers (a plain iterator `sum` is one serial chain of float additions, about 4
/// cycles per tap).
#[inline]
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
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

/// [`dot`] for CPUs with AVX2 and FMA: four 8-lane accumulators of fused multiply-adds
/// (32 products a step), then the lanes added pairwise.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (all loads): i + 32 <= n (then i + 8 <= n) keeps every 8-float load inside
    // both slices.
    while i + 32 <= n {
        for (k, acc) in acc.iter_mut().enumerate() {
            let x = unsafe { _mm256_loadu_ps(pa.add(i + 8 * k)) };
            let y = unsafe { _mm256_loadu_ps(pb.add(i + 8 * k)) };
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        let x = unsafe { _mm256_loadu_ps(pa.add(i)) };
        let y = unsafe { _mm256_loadu_ps(pb.add(i)) };
        acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        i += 8;
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    let mut sum = _mm_cvtss_f32(s);
    for j in i..n {
        sum = a[j].mul_add(b[j], sum);
    }
    sum
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
        for n in [0usize, 1, 7, 16, 17, 31, 32, 33, 145, 200, 387] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n + 3).map(|i| (i as f32 * 0.11).cos()).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((super::dot(&a, &b) as f64 - want).abs() < 1e-5, "{n}");
            assert!(
                (super::dot_portable(&a, &b) as f64 - want).abs() < 1e-5,
                "{n}"
            );
        }
    }
}
