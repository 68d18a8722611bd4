// SPDX-License-Identifier: MPL-2.0
//! Audio → model windows: downmix, sample-exact resampling to the model's rate, and
//! windowing with exact times.
//!
//! Times are derived from sample counts only: model-rate sample `m` of a stream that
//! starts at `base` ns lies at `base + m · 10⁹ / rate` (rounded down), so a window's pts
//! and duration never drift, whatever the input buffer sizes.

use std::collections::VecDeque;

/// Time of sample `n` at `rate` Hz after `base_ns`, rounded down to the nanosecond.
pub fn sample_time_ns(base_ns: u64, n: u64, rate: u32) -> u64 {
    base_ns + ((n as u128 * 1_000_000_000u128) / rate.max(1) as u128) as u64
}

/// Averages interleaved `f32` frames of `channels` channels into mono, appended to `out`.
pub fn downmix_f32(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    let c = channels.max(1);
    if c == 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    let k = 1.0 / c as f32;
    out.extend(
        interleaved
            .chunks_exact(c)
            .map(|f| f.iter().sum::<f32>() * k),
    );
}

/// Averages interleaved `i16` frames into mono `f32` in [-1, 1] (`x / 32768`), appended to `out`.
pub fn downmix_s16(interleaved: &[i16], channels: usize, out: &mut Vec<f32>) {
    let c = channels.max(1);
    let k = 1.0 / (32768.0 * c as f32);
    out.extend(
        interleaved
            .chunks_exact(c)
            .map(|f| f.iter().map(|&v| v as f32).sum::<f32>() * k),
    );
}

fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term) = (1.0, 1.0);
    let y = x * x / 4.0;
    for k in 1..60 {
        term *= y / (k as f64 * k as f64);
        sum += term;
        if term < 1e-14 * sum {
            break;
        }
    }
    sum
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Streaming rational resampler (polyphase Kaiser-windowed sinc), aligned in time:
/// output sample `m` is the input signal at time `m / out_rate` (no group delay), so
/// sample counts give exact times. Outputs are produced as soon as the filter's
/// look-ahead is available; [`Resampler::flush`] produces the rest (zero look-ahead).
///
/// Equal rates pass samples through unchanged. Down-sampling low-passes at
/// 0.45 · out_rate (Kaiser β 8, 16 zero crossings per side at the output rate: about
/// −80 dB of aliasing).
#[derive(Debug, Clone)]
pub struct Resampler {
    in_rate: u32,
    out_rate: u32,
    /// Up factor L and down factor M (out/in = L/M, reduced).
    up: u64,
    down: u64,
    /// Half width of the filter in input samples.
    half: i64,
    /// `up` phases × `2·half` taps.
    taps: Vec<f32>,
    /// Inputs kept, the first being input sample `start`.
    buf: VecDeque<f32>,
    start: u64,
    /// Inputs seen.
    n_in: u64,
    /// Outputs produced.
    n_out: u64,
}

impl Resampler {
    /// A resampler from `in_rate` to `out_rate` Hz.
    pub fn new(in_rate: u32, out_rate: u32) -> Self {
        let (i, o) = (in_rate.max(1) as u64, out_rate.max(1) as u64);
        let g = gcd(i, o);
        let (up, down) = (o / g, i / g);
        let mut r = Resampler {
            in_rate,
            out_rate,
            up,
            down,
            half: 0,
            taps: Vec::new(),
            buf: VecDeque::new(),
            start: 0,
            n_in: 0,
            n_out: 0,
        };
        if up != down {
            // Cut-off relative to the input rate.
            let ratio = (o as f64 / i as f64).min(1.0);
            let fc = 0.45 * ratio;
            let zeros = 16.0;
            let half = (zeros / ratio).ceil() as i64;
            let beta = 8.0;
            let i0b = bessel_i0(beta);
            let n = 2 * half as usize;
            let mut taps = Vec::with_capacity(up as usize * n);
            for p in 0..up {
                let frac = p as f64 / up as f64;
                let mut h: Vec<f64> = (0..n)
                    .map(|t| {
                        // input offset k = t − half + 1 ∈ [−half+1, half]; distance d = frac − k
                        let k = t as i64 - half + 1;
                        let d = frac - k as f64;
                        let x = 2.0 * fc * d;
                        let sinc = if x.abs() < 1e-12 {
                            1.0
                        } else {
                            (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                        };
                        let r = d / half as f64;
                        let w = if r.abs() >= 1.0 {
                            0.0
                        } else {
                            bessel_i0(beta * (1.0 - r * r).sqrt()) / i0b
                        };
                        sinc * w
                    })
                    .collect();
                let s: f64 = h.iter().sum();
                h.iter_mut().for_each(|v| *v /= s);
                taps.extend(h.into_iter().map(|v| v as f32));
            }
            r.half = half;
            r.taps = taps;
        }
        r
    }

    /// Input rate in Hz.
    pub fn in_rate(&self) -> u32 {
        self.in_rate
    }

    /// Output rate in Hz.
    pub fn out_rate(&self) -> u32 {
        self.out_rate
    }

    /// True when the rates are equal (samples pass unchanged).
    pub fn is_identity(&self) -> bool {
        self.up == self.down
    }

    /// Inputs fed since the last reset.
    pub fn inputs(&self) -> u64 {
        self.n_in
    }

    /// Outputs produced since the last reset.
    pub fn outputs(&self) -> u64 {
        self.n_out
    }

    /// Back to the initial state (sample 0 next).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.n_in = 0;
        self.n_out = 0;
    }

    fn at(&self, j: i64) -> f32 {
        if j < self.start as i64 {
            return 0.0;
        }
        self.buf
            .get((j - self.start as i64) as usize)
            .copied()
            .unwrap_or(0.0)
    }

    fn produce(&mut self, out: &mut Vec<f32>, limit_inputs: Option<u64>) {
        // One slice: every filter window is then read in place (no wrap-around).
        self.buf.make_contiguous();
        let n = 2 * self.half as usize;
        loop {
            let pos = self.n_out * self.down; // input position × up
            let i = (pos / self.up) as i64;
            let phase = (pos % self.up) as usize;
            match limit_inputs {
                // Streaming: need inputs up to i + half.
                None if i + self.half >= self.n_in as i64 => break,
                // Flush: every output whose time lies before the end of the input.
                Some(end) if pos >= end * self.up => break,
                _ => {}
            }
            let h = &self.taps[phase * n..(phase + 1) * n];
            let first = i - self.half + 1;
            let mut acc = 0.0f32;
            if first >= self.start as i64
                && (first as u64 + n as u64) <= self.start + self.buf.len() as u64
            {
                let off = (first as u64 - self.start) as usize;
                let (a, b) = self.buf.as_slices();
                if off + n <= a.len() {
                    acc = crate::audio::dot(&a[off..off + n], h);
                } else if off >= a.len() {
                    let o = off - a.len();
                    acc = crate::audio::dot(&b[o..o + n], h);
                } else {
                    for (t, c) in h.iter().enumerate() {
                        acc += self.at(first + t as i64) * c;
                    }
                }
            } else {
                for (t, c) in h.iter().enumerate() {
                    acc += self.at(first + t as i64) * c;
                }
            }
            out.push(acc);
            self.n_out += 1;
        }
        // Drop inputs no later output needs.
        let pos = self.n_out * self.down;
        let keep_from = ((pos / self.up) as i64 - self.half + 1).max(0) as u64;
        while self.start < keep_from && !self.buf.is_empty() {
            self.buf.pop_front();
            self.start += 1;
        }
    }

    /// Feeds mono input samples; appends the outputs now known to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if self.is_identity() {
            out.extend_from_slice(input);
            self.n_in += input.len() as u64;
            self.n_out += input.len() as u64;
            return;
        }
        self.buf.extend(input.iter().copied());
        self.n_in += input.len() as u64;
        self.produce(out, None);
    }

    /// End of stream: produces every output whose time lies before the end of the input
    /// (the missing look-ahead is taken as silence).
    pub fn flush(&mut self, out: &mut Vec<f32>) {
        if self.is_identity() {
            return;
        }
        let end = self.n_in;
        self.produce(out, Some(end));
    }
}

/// One window cut from the model-rate stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Index of the window's first sample in the model-rate stream.
    pub start: u64,
    /// The samples (`window` of them).
    pub samples: Vec<f32>,
}

impl Window {
    /// Pts and duration of the window in ns, for a stream whose sample 0 is at `base_ns`.
    pub fn times(&self, base_ns: u64, rate: u32) -> (u64, u64) {
        let pts = sample_time_ns(base_ns, self.start, rate);
        let end = sample_time_ns(base_ns, self.start + self.samples.len() as u64, rate);
        (pts, end - pts)
    }
}

/// Cuts windows of `window` samples every `hop` samples from a stream pushed in pieces
/// of any size: window `k` covers samples `[k·hop, k·hop + window)`; none is lost or
/// repeated across pushes. A partial window at the end of a stream is not emitted.
#[derive(Debug, Clone)]
pub struct Windower {
    window: usize,
    hop: usize,
    buf: VecDeque<f32>,
    /// Stream index of `buf[0]`.
    start: u64,
    /// Samples pushed.
    total: u64,
    /// Start of the next window.
    next: u64,
}

impl Windower {
    /// A windower; `window` and `hop` are at least 1.
    pub fn new(window: usize, hop: usize) -> Self {
        Windower {
            window: window.max(1),
            hop: hop.max(1),
            buf: VecDeque::new(),
            start: 0,
            total: 0,
            next: 0,
        }
    }

    /// Samples per window.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Samples between window starts.
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// Samples pushed since the last reset.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Forgets everything (the next sample is stream sample 0).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.total = 0;
        self.next = 0;
    }

    /// Appends samples and returns every window they complete, in order.
    pub fn push(&mut self, samples: &[f32]) -> Vec<Window> {
        let mut out = Vec::new();
        for &s in samples {
            let idx = self.total;
            self.total += 1;
            if idx >= self.next {
                // Only samples at or after the next window's start are kept.
                if self.buf.is_empty() {
                    self.start = idx;
                }
                self.buf.push_back(s);
            }
            if self.next + self.window as u64 <= self.total {
                let off = (self.next - self.start) as usize;
                out.push(Window {
                    start: self.next,
                    samples: self.buf.range(off..off + self.window).copied().collect(),
                });
                self.next += self.hop as u64;
                while self.start < self.next && !self.buf.is_empty() {
                    self.buf.pop_front();
                    self.start += 1;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32)
            .collect()
    }

    #[test]
    fn windows_are_exact_for_any_chunking() {
        let x: Vec<f32> = (0..10_000).map(|i| i as f32).collect();
        for (window, hop) in [(400, 160), (100, 100), (50, 120), (1, 1)] {
            let mut all = Windower::new(window, hop).push(&x);
            let expect = if x.len() >= window {
                (x.len() - window) / hop + 1
            } else {
                0
            };
            assert_eq!(all.len(), expect, "{window}/{hop}");
            for (k, w) in all.iter().enumerate() {
                assert_eq!(w.start, (k * hop) as u64);
                assert_eq!(w.samples[0], (k * hop) as f32);
                assert_eq!(w.samples.len(), window);
                assert_eq!(*w.samples.last().unwrap(), (k * hop + window - 1) as f32);
            }
            for chunk in [1, 7, 159, 1000, 4097] {
                let mut wd = Windower::new(window, hop);
                let got: Vec<Window> = x.chunks(chunk).flat_map(|c| wd.push(c)).collect();
                assert_eq!(got, all, "{window}/{hop} chunk {chunk}");
            }
            all.clear();
        }
    }

    #[test]
    fn times_do_not_drift() {
        let w = Window {
            start: 1280 * 1000,
            samples: vec![0.0; 12512],
        };
        assert_eq!(w.times(5, 16000), (5 + 80_000_000_000, 782_000_000));
        assert_eq!(sample_time_ns(0, 44100, 44100), 1_000_000_000);
    }

    #[test]
    fn resampler_is_aligned_and_chunking_free() {
        for in_rate in [44_100u32, 48_000, 22_050, 8_000] {
            let x = tone(440.0, in_rate, in_rate as usize);
            let mut r = Resampler::new(in_rate, 16_000);
            let mut a = Vec::new();
            r.push(&x, &mut a);
            r.flush(&mut a);
            assert_eq!(a.len(), 16_000, "{in_rate}");
            let y = tone(440.0, 16_000, 16_000);
            for m in 200..15_800 {
                assert!(
                    (a[m] - y[m]).abs() < 5e-3,
                    "{in_rate} m={m}: {} vs {}",
                    a[m],
                    y[m]
                );
            }
            let mut r = Resampler::new(in_rate, 16_000);
            let mut b = Vec::new();
            for c in x.chunks(333) {
                r.push(c, &mut b);
            }
            r.flush(&mut b);
            assert_eq!(a, b);
        }
        // Aliases are removed: 10 kHz at 44.1 kHz would fold to 6 kHz.
        let x = tone(10_000.0, 44_100, 44_100);
        let mut r = Resampler::new(44_100, 16_000);
        let mut y = Vec::new();
        r.push(&x, &mut y);
        let rms = (y[200..15_000].iter().map(|v| v * v).sum::<f32>() / 14_800.0).sqrt();
        assert!(20.0 * rms.log10() < -60.0, "{} dB", 20.0 * rms.log10());
        let mut id = Resampler::new(16_000, 16_000);
        let mut o = Vec::new();
        id.push(&[1.0, 2.0], &mut o);
        assert_eq!(o, [1.0, 2.0]);
    }

    #[test]
    fn downmix() {
        let mut o = Vec::new();
        downmix_f32(&[1.0, 3.0, -1.0, 1.0], 2, &mut o);
        assert_eq!(o, [2.0, 0.0]);
        o.clear();
        downmix_s16(&[16384, 16384], 2, &mut o);
        assert_eq!(o, [0.5]);
    }
}
