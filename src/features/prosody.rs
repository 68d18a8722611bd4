// SPDX-License-Identifier: MPL-2.0
//! The `voice-prosody` features computed natively, frame by frame: the same 164 numbers
//! as the graph of `weights/voice-prosody.onnx` (written by
//! `weights/convert/voice_prosody.py`, described in `weights/CONTRACT.md`), for a model
//! that declares them with [`NATIVE_KEY`] = [`VOICE_PROSODY_V1`].
//!
//! Why: the graph sees every 1 s window on its own, so with the 80 ms hop each 10 ms
//! frame's spectrum and YIN difference function are computed about 12 times, and its
//! DFTs are dense matrix products (ONNX Runtime's `DFT` is slower still for these
//! non-power-of-two lengths). Here the per-frame values are computed once per frame
//! with real FFTs (`realfft`: 400 points for the spectrum, 1024 points for the YIN
//! autocorrelation) and kept with the window's samples; the next window reuses the
//! frames that lie in its overlap with the previous one, checked bit for bit on the
//! cleaned samples, so a reused frame is exactly the frame it would compute. Only the
//! per-window parts run per window: the 5-frame voicing majority, flux, the syllable
//! peaks and the functionals.
//!
//! Numbers agree with the graph to float rounding (both are `f32`; sums of many terms
//! are accumulated in `f64` here). Threshold decisions of YIN (the trough below 0.15,
//! voicing below 0.5) can flip on a frame whose value lies within rounding of the
//! threshold; `tests/voice_prosody_native.rs` bounds how often on speech.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// The contract key by which a model declares that its output is a computation this
/// crate implements natively (value: the computation and its version).
pub const NATIVE_KEY: &str = "affect.native";
/// [`NATIVE_KEY`] value of `voice-prosody.onnx`: the computation of this module.
pub const VOICE_PROSODY_V1: &str = "voice-prosody/1";

/// Sample rate (Hz).
pub const SR: u32 = 16_000;
/// Samples per window (1 s).
pub const WINDOW: usize = 16_000;
/// Spectral frame (25 ms).
pub const FRAME: usize = 400;
/// Frame step (10 ms).
pub const STEP: usize = 160;
/// Spectral frames per window.
pub const N_FRAMES: usize = (WINDOW - FRAME) / STEP + 1; // 98
const N_BINS: usize = FRAME / 2 + 1; // 201
/// Mel bands.
pub const N_MELS: usize = 64;
const YIN_WIN: usize = 560;
const YIN_TAU_MIN: usize = 32; // 500 Hz
const YIN_TAU_MAX: usize = 267; // 60 Hz
const YIN_FRAME: usize = YIN_WIN + YIN_TAU_MAX; // 827
/// YIN frames per window.
pub const YIN_FRAMES: usize = (WINDOW - YIN_FRAME) / STEP + 1; // 95
const YIN_FFT: usize = 1024; // ≥ 827: the correlation for lags ≤ 267 does not wrap
const YIN_THRESHOLD: f32 = 0.15;
const VOICED_MAX_CMND: f32 = 0.5;
const VOICED_MEDIAN: usize = 5;
const VOICED_MIN_POWER: f32 = 1e-7;
const POWER_FLOOR: f32 = 1e-10;
const PEAK_SMOOTH: usize = 9;
const PEAK_REL_DB: f32 = 20.0;
const PEAK_PROM_DB: f32 = 3.0;
const PEAK_SIDE: usize = 10;
const PERCENTILES: [f32; 3] = [20.0, 50.0, 80.0];
/// Feature dimension.
pub const DIM: usize = 6 * 5 + 6 + 2 * N_MELS; // 164

const CONTOURS: [(&str, &str); 6] = [
    ("loudness", "db"),
    ("f0", "hz"),
    ("centroid", "hz"),
    ("flux", "db"),
    ("slope", "db_per_khz"),
    ("zcr", "ratio"),
];

/// The feature names, in output order (as `affect.output.feature-names` lists them).
pub fn feature_names() -> Vec<String> {
    let mut n = Vec::with_capacity(DIM);
    for (c, u) in CONTOURS {
        n.push(format!("{c}_mean_{u}"));
        n.push(format!("{c}_std_{u}"));
        for p in PERCENTILES {
            n.push(format!("{c}_p{}_{u}", p as u32));
        }
    }
    for s in [
        "loudness_rise_db_per_s",
        "loudness_fall_db_per_s",
        "f0_rise_hz_per_s",
        "f0_fall_hz_per_s",
        "voiced_fraction",
        "syllable_rate_per_s",
    ] {
        n.push(s.to_owned());
    }
    n.extend((0..N_MELS).map(|b| format!("logmel_mean_{b:02}_db")));
    n.extend((0..N_MELS).map(|b| format!("logmel_std_{b:02}_db")));
    n
}

fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, min_log_mel, logstep) = (1000.0, 1000.0 / f_sp, 6.4f64.ln() / 27.0);
    if f >= min_log_hz {
        min_log_mel + (f.max(1e-10) / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, min_log_mel, logstep) = (1000.0, 1000.0 / f_sp, 6.4f64.ln() / 27.0);
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// One mel band: its first bin and its (non-zero) weights.
#[derive(Debug, Clone)]
struct Band {
    first: usize,
    weights: Vec<f32>,
}

/// Slaney mel filter bank (`librosa.filters.mel(sr=16000, n_fft=400, n_mels=64, fmin=0,
/// fmax=8000, norm="slaney")`) as sparse bands, and the band centres (Hz).
fn mel_bands() -> (Vec<Band>, Vec<f64>) {
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(SR as f64 / 2.0));
    let mel_f: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let bands = (0..N_MELS)
        .map(|i| {
            let (f0, f1, f2) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
            let enorm = 2.0 / (f2 - f0);
            let w: Vec<f32> = (0..N_BINS)
                .map(|k| {
                    let f = k as f64 * SR as f64 / FRAME as f64;
                    let lower = (f - f0) / (f1 - f0);
                    let upper = (f2 - f) / (f2 - f1);
                    (lower.min(upper).max(0.0) * enorm) as f32
                })
                .collect();
            let first = w.iter().position(|&v| v != 0.0).unwrap_or(0);
            let last = w.iter().rposition(|&v| v != 0.0).map_or(first, |l| l + 1);
            Band {
                first,
                weights: w[first..last.max(first)].to_vec(),
            }
        })
        .collect();
    (bands, mel_f[1..=N_MELS].to_vec())
}

/// The values of one 25 ms frame.
#[derive(Debug, Clone, Copy)]
struct Spectral {
    logmel: [f32; N_MELS],
    loudness: f32,
    centroid: f32,
    slope: f32,
    zcr: f32,
}

/// The values of one YIN frame.
#[derive(Debug, Clone, Copy, Default)]
struct Pitch {
    /// Hz, before voicing.
    f0: f32,
    /// Periodic and loud enough (before the 5-frame majority).
    raw_voiced: bool,
}

/// The last window: its first sample, cleaned samples and frame values.
#[derive(Debug, Clone)]
struct Last {
    start: u64,
    samples: Vec<f32>,
    spectral: Vec<Spectral>,
    pitch: Vec<Pitch>,
}

/// Counters of frame reuse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Windows computed.
    pub windows: u64,
    /// Spectral + YIN frames computed.
    pub computed: u64,
    /// Spectral + YIN frames reused from the previous window.
    pub reused: u64,
}

/// The native `voice-prosody/1` computation with its frame cache.
pub struct VoiceProsody {
    fft_frame: Arc<dyn RealToComplex<f32>>,
    fft_yin: Arc<dyn RealToComplex<f32>>,
    ifft_yin: Arc<dyn ComplexToReal<f32>>,
    scratch: Vec<Complex<f32>>,
    hann: Vec<f32>,
    bands: Vec<Band>,
    slope_w: Vec<f32>,
    frame_in: Vec<f32>,
    frame_spec: Vec<Complex<f32>>,
    power: Vec<f32>,
    yin_a: Vec<f32>,
    yin_b: Vec<f32>,
    spec_a: Vec<Complex<f32>>,
    spec_b: Vec<Complex<f32>>,
    acf: Vec<f32>,
    cs: Vec<f64>,
    cmnd: Vec<f32>,
    clean: Vec<f32>,
    last: Option<Last>,
    stats: FrameStats,
}

impl std::fmt::Debug for VoiceProsody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceProsody")
            .field("stats", &self.stats)
            .finish()
    }
}

impl Default for VoiceProsody {
    fn default() -> Self {
        Self::new()
    }
}

impl VoiceProsody {
    /// Plans the FFTs and builds the constants.
    pub fn new() -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let fft_frame = planner.plan_fft_forward(FRAME);
        let fft_yin = planner.plan_fft_forward(YIN_FFT);
        let ifft_yin = planner.plan_fft_inverse(YIN_FFT);
        let scratch_len = fft_frame
            .get_scratch_len()
            .max(fft_yin.get_scratch_len())
            .max(ifft_yin.get_scratch_len());
        // periodic Hann (scipy's fftbins=True)
        let hann = (0..FRAME)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / FRAME as f64).cos()) as f32
            })
            .collect();
        let (bands, centres) = mel_bands();
        let fc: Vec<f64> = centres.iter().map(|c| c / 1000.0).collect();
        let mean = fc.iter().sum::<f64>() / fc.len() as f64;
        let ss: f64 = fc.iter().map(|c| (c - mean) * (c - mean)).sum();
        let slope_w = fc.iter().map(|c| ((c - mean) / ss) as f32).collect();
        VoiceProsody {
            scratch: vec![Complex::default(); scratch_len],
            frame_in: vec![0.0; FRAME],
            frame_spec: vec![Complex::default(); N_BINS],
            power: vec![0.0; N_BINS],
            yin_a: vec![0.0; YIN_FFT],
            yin_b: vec![0.0; YIN_FFT],
            spec_a: vec![Complex::default(); YIN_FFT / 2 + 1],
            spec_b: vec![Complex::default(); YIN_FFT / 2 + 1],
            acf: vec![0.0; YIN_FFT],
            cs: vec![0.0; YIN_FRAME + 1],
            cmnd: vec![0.0; YIN_TAU_MAX - YIN_TAU_MIN + 1],
            clean: Vec::with_capacity(WINDOW),
            fft_frame,
            fft_yin,
            ifft_yin,
            hann,
            bands,
            slope_w,
            last: None,
            stats: FrameStats::default(),
        }
    }

    /// Frame reuse since construction.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    /// Forgets the cached window.
    pub fn reset(&mut self) {
        self.last = None;
    }

    fn spectral(&mut self, x: &[f32]) -> Spectral {
        let ms = x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / FRAME as f64;
        let loudness = (10.0 * (ms + POWER_FLOOR as f64).log10()) as f32;
        let crossings = x.windows(2).filter(|p| p[1] * p[0] < 0.0).count();
        let zcr = crossings as f32 / (FRAME - 1) as f32;
        for ((d, &v), &h) in self.frame_in.iter_mut().zip(x).zip(&self.hann) {
            *d = v * h;
        }
        self.fft_frame
            .process_with_scratch(&mut self.frame_in, &mut self.frame_spec, &mut self.scratch)
            .expect("buffer lengths match the plan");
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for (k, (p, c)) in self.power.iter_mut().zip(&self.frame_spec).enumerate() {
            *p = c.re * c.re + c.im * c.im;
            let mag = (*p as f64).sqrt();
            num += mag * (k as f64 * SR as f64 / FRAME as f64);
            den += mag;
        }
        let centroid = (num / (den + POWER_FLOOR as f64)) as f32;
        let mut logmel = [0.0f32; N_MELS];
        let mut slope = 0.0f64;
        for ((l, b), &w) in logmel.iter_mut().zip(&self.bands).zip(&self.slope_w) {
            let e: f32 = self.power[b.first..b.first + b.weights.len()]
                .iter()
                .zip(&b.weights)
                .map(|(p, w)| p * w)
                .sum();
            *l = 10.0 * e.max(POWER_FLOOR).log10();
            slope += (*l as f64) * (w as f64);
        }
        Spectral {
            logmel,
            loudness,
            centroid,
            slope: slope as f32,
            zcr,
        }
    }

    fn pitch(&mut self, x: &[f32]) -> Pitch {
        // r(τ) = Σ_{j<560} x_j x_{j+τ} as irfft(conj(B)·A): no wrap for τ ≤ 267 at 1024 points
        self.yin_a[..YIN_FRAME].copy_from_slice(x);
        self.yin_a[YIN_FRAME..].iter_mut().for_each(|v| *v = 0.0);
        self.yin_b[..YIN_WIN].copy_from_slice(&x[..YIN_WIN]);
        self.yin_b[YIN_WIN..].iter_mut().for_each(|v| *v = 0.0);
        self.fft_yin
            .process_with_scratch(&mut self.yin_a, &mut self.spec_a, &mut self.scratch)
            .expect("buffer lengths match the plan");
        self.fft_yin
            .process_with_scratch(&mut self.yin_b, &mut self.spec_b, &mut self.scratch)
            .expect("buffer lengths match the plan");
        for (a, b) in self.spec_a.iter_mut().zip(&self.spec_b) {
            *a *= b.conj();
        }
        let last = self.spec_a.len() - 1;
        self.spec_a[0].im = 0.0;
        self.spec_a[last].im = 0.0;
        self.ifft_yin
            .process_with_scratch(&mut self.spec_a, &mut self.acf, &mut self.scratch)
            .expect("buffer lengths match the plan");
        let scale = 1.0 / YIN_FFT as f32;
        // energies of the 560-sample windows at each lag
        self.cs[0] = 0.0;
        for (j, &v) in x.iter().enumerate() {
            self.cs[j + 1] = self.cs[j] + (v as f64) * (v as f64);
        }
        let e0 = self.cs[YIN_WIN] as f32;
        let d = |t: usize, cs: &[f64], acf: &[f32]| -> f32 {
            let e = (cs[YIN_WIN + t] - cs[t]) as f32;
            (e0 + e - 2.0 * acf[t] * scale).max(0.0)
        };
        // cumulative mean normalised difference for τ = 32..=267
        let mut cum = 0.0f64;
        for t in 1..=YIN_TAU_MAX {
            let dt = d(t, &self.cs, &self.acf);
            cum += dt as f64;
            if t >= YIN_TAU_MIN {
                let cmean = (cum / t as f64) as f32;
                self.cmnd[t - YIN_TAU_MIN] = dt / (cmean + 1e-12);
            }
        }
        let c = &self.cmnd;
        let n = c.len();
        // the first trough below the threshold, else the global minimum (first of equals)
        let trough = (0..n).find(|&i| {
            let left = if i == 0 { f32::INFINITY } else { c[i - 1] };
            i + 1 < n && c[i] < left && c[i] <= c[i + 1] && c[i] < YIN_THRESHOLD
        });
        let idx = trough.unwrap_or_else(|| {
            let mut best = 0;
            for i in 1..n {
                if c[i] < c[best] {
                    best = i;
                }
            }
            best
        });
        let (pa, pb, pc) = (c[idx.saturating_sub(1)], c[idx], c[(idx + 1).min(n - 1)]);
        let den = pa - 2.0 * pb + pc;
        let shift = if den.abs() > 1e-12 {
            (0.5 * (pa - pc) / den).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let period = idx as f32 + YIN_TAU_MIN as f32 + shift;
        Pitch {
            f0: SR as f32 / period,
            raw_voiced: pb < VOICED_MAX_CMND && e0 > VOICED_MIN_POWER * YIN_WIN as f32,
        }
    }

    /// The 164 features of one window of [`WINDOW`] samples whose first sample is sample
    /// `start` of its stream (used only to find the frames shared with the previous
    /// window; a wrong or repeated `start` costs time, never correctness). `None` when
    /// `samples` is not [`WINDOW`] long.
    pub fn window(&mut self, start: u64, samples: &[f32]) -> Option<Vec<f32>> {
        if samples.len() != WINDOW {
            return None;
        }
        let mut clean = std::mem::take(&mut self.clean);
        clean.clear();
        clean.extend(samples.iter().map(|&v| {
            if v.is_finite() {
                v.clamp(-1.0, 1.0)
            } else {
                0.0
            }
        }));
        // frames of the previous window that this one shares
        let shift = self.last.as_ref().and_then(|l| {
            let d = usize::try_from(start.checked_sub(l.start)?).ok()?;
            (d > 0 && d.is_multiple_of(STEP) && d < WINDOW).then_some(())?;
            let same = l.samples[d..]
                .iter()
                .zip(&clean[..WINDOW - d])
                .all(|(a, b)| a.to_bits() == b.to_bits());
            same.then_some(d / STEP)
        });
        let last = self.last.take();
        let mut spectral = Vec::with_capacity(N_FRAMES);
        let mut pitch = Vec::with_capacity(YIN_FRAMES);
        for i in 0..N_FRAMES {
            match (&last, shift) {
                (Some(l), Some(s)) if i + s < N_FRAMES => {
                    spectral.push(l.spectral[i + s]);
                    self.stats.reused += 1;
                }
                _ => {
                    let f = self.spectral(&clean[i * STEP..i * STEP + FRAME]);
                    spectral.push(f);
                    self.stats.computed += 1;
                }
            }
        }
        for i in 0..YIN_FRAMES {
            match (&last, shift) {
                (Some(l), Some(s)) if i + s < YIN_FRAMES => {
                    pitch.push(l.pitch[i + s]);
                    self.stats.reused += 1;
                }
                _ => {
                    let p = self.pitch(&clean[i * STEP..i * STEP + YIN_FRAME]);
                    pitch.push(p);
                    self.stats.computed += 1;
                }
            }
        }
        self.stats.windows += 1;
        let out = functionals(&spectral, &pitch);
        // keep this window (reusing the old one's allocation for the next clean copy)
        let old = last.map(|l| l.samples).unwrap_or_default();
        self.last = Some(Last {
            start,
            samples: clean,
            spectral,
            pitch,
        });
        self.clean = old;
        Some(out)
    }
}

/// mean, population std and the 20/50/80th percentiles (numpy 'linear') of `v`; zeros
/// when `v` is empty.
fn five(v: &mut [f32], out: &mut Vec<f32>) {
    let n = v.len();
    if n == 0 {
        out.extend([0.0; 5]);
        return;
    }
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let var = v
        .iter()
        .map(|&x| (x as f64 - mean) * (x as f64 - mean))
        .sum::<f64>()
        / n as f64;
    out.push(mean as f32);
    out.push(var.sqrt() as f32);
    v.sort_unstable_by(f32::total_cmp);
    let nm1 = (n - 1) as f32;
    for p in PERCENTILES {
        let pos = nm1 * (p / 100.0);
        let lo = pos.floor();
        let hi = (lo + 1.0).min(nm1);
        let frac = pos - lo;
        let (a, b) = (v[lo as usize], v[hi as usize]);
        out.push(a + frac * (b - a));
    }
}

/// Mean positive and mean |negative| change between consecutive values where `pair(i)`
/// holds for both, per second.
fn rise_fall(v: &[f32], pair: impl Fn(usize) -> bool) -> (f32, f32) {
    let per_s = SR as f32 / STEP as f32;
    let (mut up, mut nu, mut down, mut nd) = (0.0f64, 0u32, 0.0f64, 0u32);
    for i in 0..v.len().saturating_sub(1) {
        if !pair(i) {
            continue;
        }
        let d = (v[i + 1] - v[i]) * per_s;
        if d > 0.0 {
            up += d as f64;
            nu += 1;
        } else if d < 0.0 {
            down -= d as f64;
            nd += 1;
        }
    }
    (
        (up / nu.max(1) as f64) as f32,
        (down / nd.max(1) as f64) as f32,
    )
}

/// Loudness peaks per second (syllable nuclei), see `weights/CONTRACT.md`.
fn syllable_rate(loud: &[f32]) -> f32 {
    let n = loud.len();
    let m = PEAK_SMOOTH + 2;
    let mut k: Vec<f64> = (1..=PEAK_SMOOTH)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (m - 1) as f64).cos())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    let k: Vec<f32> = k.into_iter().map(|v| v as f32).collect();
    let half = PEAK_SMOOTH / 2;
    let at = |i: isize| loud[i.clamp(0, n as isize - 1) as usize];
    let sm: Vec<f32> = (0..n as isize)
        .map(|i| {
            k.iter()
                .enumerate()
                .map(|(j, w)| w * at(i + j as isize - half as isize))
                .sum()
        })
        .collect();
    let top = sm.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut peaks = 0u32;
    for i in 1..n.saturating_sub(1) {
        let is_max = sm[i] > sm[i - 1] && sm[i] >= sm[i + 1];
        if !is_max || sm[i] <= top - PEAK_REL_DB {
            continue;
        }
        let lmin = sm[i.saturating_sub(PEAK_SIDE)..=i]
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min);
        let rmin = sm[i..=(i + PEAK_SIDE).min(n - 1)]
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min);
        if sm[i] - lmin.max(rmin) >= PEAK_PROM_DB {
            peaks += 1;
        }
    }
    peaks as f32 / (WINDOW as f32 / SR as f32)
}

fn functionals(spectral: &[Spectral], pitch: &[Pitch]) -> Vec<f32> {
    let mut out = Vec::with_capacity(DIM);
    let loud: Vec<f32> = spectral.iter().map(|f| f.loudness).collect();
    // voicing: periodic and loud, then the majority over 5 frames (fewer at the edges)
    let np = pitch.len();
    let half = VOICED_MEDIAN / 2;
    let voiced: Vec<bool> = (0..np)
        .map(|i| {
            let r = i.saturating_sub(half)..(i + half + 1).min(np);
            let len = r.len();
            let yes = pitch[r].iter().filter(|p| p.raw_voiced).count();
            yes as f32 / len as f32 > 0.5
        })
        .collect();
    let f0: Vec<f32> = pitch
        .iter()
        .zip(&voiced)
        .map(|(p, &v)| if v { p.f0 } else { 0.0 })
        .collect();
    let flux: Vec<f32> = spectral
        .windows(2)
        .map(|w| {
            let s: f32 = w[1]
                .logmel
                .iter()
                .zip(&w[0].logmel)
                .map(|(b, a)| (b - a).max(0.0))
                .sum();
            s / N_MELS as f32
        })
        .collect();
    five(&mut loud.clone(), &mut out);
    let mut f0v: Vec<f32> = f0
        .iter()
        .zip(&voiced)
        .filter(|(_, v)| **v)
        .map(|(f, _)| *f)
        .collect();
    five(&mut f0v, &mut out);
    five(
        &mut spectral.iter().map(|f| f.centroid).collect::<Vec<_>>(),
        &mut out,
    );
    five(&mut flux.clone(), &mut out);
    five(
        &mut spectral.iter().map(|f| f.slope).collect::<Vec<_>>(),
        &mut out,
    );
    five(
        &mut spectral.iter().map(|f| f.zcr).collect::<Vec<_>>(),
        &mut out,
    );
    let (r, f) = rise_fall(&loud, |_| true);
    out.extend([r, f]);
    let (r, f) = rise_fall(&f0, |i| voiced[i] && voiced[i + 1]);
    out.extend([r, f]);
    out.push(voiced.iter().filter(|v| **v).count() as f32 / np.max(1) as f32);
    out.push(syllable_rate(&loud));
    let nf = spectral.len().max(1) as f64;
    let mut mean = [0.0f64; N_MELS];
    for f in spectral {
        for (m, &l) in mean.iter_mut().zip(&f.logmel) {
            *m += l as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= nf);
    let mut var = [0.0f64; N_MELS];
    for f in spectral {
        for ((v, &l), m) in var.iter_mut().zip(&f.logmel).zip(&mean) {
            *v += (l as f64 - m) * (l as f64 - m);
        }
    }
    out.extend(mean.iter().map(|&m| m as f32));
    out.extend(var.iter().map(|&v| (v / nf).sqrt() as f32));
    for v in &mut out {
        if v.is_nan() {
            *v = 0.0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(f: f32, amp: f32, n: usize, phase: usize) -> Vec<f32> {
        (phase..phase + n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * f * i as f32 / SR as f32).sin())
            .collect()
    }

    fn idx(name: &str) -> usize {
        feature_names().iter().position(|n| n == name).unwrap()
    }

    #[test]
    fn names_and_dimension() {
        let n = feature_names();
        assert_eq!(n.len(), DIM);
        assert_eq!(n[0], "loudness_mean_db");
        assert_eq!(n[35], "syllable_rate_per_s");
        assert_eq!(n[163], "logmel_std_63_db");
    }

    #[test]
    fn mel_bank_is_slaney_normalised() {
        let (bands, centres) = mel_bands();
        assert_eq!(bands.len(), N_MELS);
        // Slaney norm: each triangle has unit area in Hz·(1/Hz) → Σ w · 40 Hz ≈ 1
        for b in &bands[8..] {
            let area: f32 = b.weights.iter().sum::<f32>() * 40.0;
            assert!((area - 1.0).abs() < 0.2, "{area}");
        }
        assert!(centres.windows(2).all(|w| w[1] > w[0]));
        assert!(centres[N_MELS - 1] < 8000.0);
    }

    #[test]
    fn a_tone_gives_its_loudness_and_pitch() {
        let mut vp = VoiceProsody::new();
        // 200 Hz at −20 dBFS RMS
        let x = tone(200.0, 0.1 * 2f32.sqrt(), WINDOW, 0);
        let f = vp.window(0, &x).unwrap();
        assert_eq!(f.len(), DIM);
        assert!((f[idx("loudness_mean_db")] + 20.0).abs() < 0.05, "{}", f[0]);
        assert!((f[idx("f0_p50_hz")] - 200.0).abs() < 1.0);
        assert_eq!(f[idx("voiced_fraction")], 1.0);
        let c = f[idx("centroid_mean_hz")];
        assert!((150.0..300.0).contains(&c), "{c}");
    }

    #[test]
    fn silence_and_bad_samples_are_finite() {
        let mut vp = VoiceProsody::new();
        let f = vp.window(0, &vec![0.0; WINDOW]).unwrap();
        assert!(vp.window(0, &[0.0; 100]).is_none());
        assert_eq!(f[idx("loudness_mean_db")], -100.0);
        assert_eq!(f[idx("voiced_fraction")], 0.0);
        assert_eq!(f[idx("f0_mean_hz")], 0.0);
        assert!(f.iter().all(|v| v.is_finite()));
        let mut x = tone(120.0, 0.3, WINDOW, 0);
        for (i, v) in x.iter_mut().enumerate() {
            match i % 97 {
                0 => *v = f32::NAN,
                5 => *v = f32::INFINITY,
                9 => *v = 1e30,
                _ => {}
            }
        }
        let f = vp.window(0, &x).unwrap();
        assert!(f.iter().all(|v| v.is_finite()), "{f:?}");
    }

    #[test]
    fn reused_frames_give_the_same_numbers_as_fresh_ones() {
        let n = WINDOW + 40 * STEP;
        let x: Vec<f32> = tone(180.0, 0.2, n, 0)
            .iter()
            .zip(tone(2300.0, 0.05, n, 7))
            .enumerate()
            .map(|(i, (a, b))| a * (1.0 + (i as f32 / 900.0).sin()) + b)
            .collect();
        let mut cached = VoiceProsody::new();
        for (k, s) in (0..=40 * STEP).step_by(1280).enumerate() {
            let a = cached.window(s as u64, &x[s..s + WINDOW]).unwrap();
            let b = VoiceProsody::new()
                .window(s as u64, &x[s..s + WINDOW])
                .unwrap();
            assert_eq!(a, b, "window {k}");
        }
        let st = cached.stats();
        assert_eq!(st.windows, 6);
        assert!(st.reused > 4 * st.computed / 3, "{st:?}");
        // a start that lies about the samples is caught by the content check
        let a = cached
            .window(40 * STEP as u64 + 1280, &x[..WINDOW])
            .unwrap();
        let b = VoiceProsody::new().window(0, &x[..WINDOW]).unwrap();
        assert_eq!(a, b);
    }
}
