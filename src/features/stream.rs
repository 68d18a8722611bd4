// SPDX-License-Identifier: MPL-2.0
//! Streams into a [`FeatureModel`]: the per-stream state the `featextract` element keeps
//! between buffers, without GStreamer.
//!
//! - [`AudioStream`]: interleaved S16LE / F32LE bytes at any rate and channel count →
//!   mono → the model's rate → windows, timed from the sample count since the first
//!   buffer (a discontinuity further than [`DISCONT_TOLERANCE_NS`] from where the samples
//!   say the stream should be restarts the windows).
//! - [`FaceFeatures`]: face crops of one frame → one vector per face, running the model
//!   every `interval` frames and reusing each track's last vector in between; with
//!   `interval` 0, per track, only when its aligned crop changed (mean absolute
//!   difference over [`CROP_CHANGE`] grey levels) or [`AUTO_MAX_INTERVAL`] frames passed.

use std::collections::HashMap;
use std::sync::Arc;

use super::audio::{Resampler, Window, Windower, downmix_f32, downmix_s16, sample_time_ns};
use super::model::{FeatureModel, FeatureModelError};
use crate::results::{FaceCrop, FeatureVector};

/// `interval` 0: a track's crop whose mean absolute difference (0..255, over every
/// byte) to the crop the model last read is above this runs the model again.
pub const CROP_CHANGE: f32 = 4.0;
/// `interval` 0: a track's model result is reused for at most this many frames.
pub const AUTO_MAX_INTERVAL: u32 = 10;

/// A discontinuity further than this from where the samples say the stream should be
/// restarts the windows.
pub const DISCONT_TOLERANCE_NS: u64 = 1_000_000;

/// Sample format of the interleaved input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// Signed 16-bit little-endian (`x / 32768`).
    S16Le,
    /// 32-bit float little-endian.
    F32Le,
}

/// Windows cut from the stream, all timed from `base` (ns of model-rate sample 0).
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWindows {
    /// Time of the stretch's sample 0.
    pub base: u64,
    /// The windows.
    pub windows: Vec<Window>,
}

/// One audio stream on its way to a model: format, resampler, windows, sample clock.
#[derive(Debug, Clone)]
pub struct AudioStream {
    rate: u32,
    channels: usize,
    format: SampleFormat,
    resampler: Resampler,
    windower: Windower,
    /// Time of input sample 0 (first buffer after a reset).
    base: Option<u64>,
    /// Input samples (per channel) since `base`.
    samples_in: u64,
    /// The buffer's samples decoded (reused between buffers).
    decoded_s16: Vec<i16>,
    decoded: Vec<f32>,
    mono: Vec<f32>,
    resampled: Vec<f32>,
}

impl AudioStream {
    /// A stream of `channels` channels at `rate` Hz for a model that reads `window`
    /// samples every `hop` samples at `model_rate` Hz.
    pub fn new(
        rate: u32,
        channels: usize,
        format: SampleFormat,
        model_rate: u32,
        window: usize,
        hop: usize,
    ) -> Self {
        AudioStream {
            rate,
            channels: channels.max(1),
            format,
            resampler: Resampler::new(rate, model_rate),
            windower: Windower::new(window, hop),
            base: None,
            samples_in: 0,
            decoded_s16: Vec::new(),
            decoded: Vec::new(),
            mono: Vec::new(),
            resampled: Vec::new(),
        }
    }

    /// Input rate (Hz).
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Forgets the stream: the next buffer starts a new one (flush, new segment).
    pub fn reset(&mut self) {
        self.resampler.reset();
        self.windower.reset();
        self.base = None;
        self.samples_in = 0;
    }

    /// Time just after the last input sample, if the stream has started.
    pub fn end_time(&self) -> Option<u64> {
        self.base
            .map(|b| sample_time_ns(b, self.samples_in, self.rate))
    }

    /// End of a continuous stretch: the windows the resampler's look-ahead held back.
    fn drain(&mut self) -> Vec<Window> {
        self.resampled.clear();
        self.resampler.flush(&mut self.resampled);
        self.windower.push(&self.resampled)
    }

    /// Ends the stream (EOS): the held-back windows and the end time, then resets.
    /// `None` if no buffer came since the last reset.
    pub fn finish(&mut self) -> Option<(TimedWindows, u64)> {
        let base = self.base?;
        let windows = self.drain();
        let end = sample_time_ns(base, self.samples_in, self.rate);
        self.reset();
        Some((TimedWindows { base, windows }, end))
    }

    /// Pushes one buffer of interleaved bytes starting at `pts` (`discont`: the buffer
    /// is marked as a discontinuity). Returns the windows of the stretch a real
    /// discontinuity ended, if any, and the new windows.
    pub fn push(
        &mut self,
        pts: Option<u64>,
        discont: bool,
        bytes: &[u8],
    ) -> (Option<TimedWindows>, TimedWindows) {
        let mut ended = None;
        if let (Some(base), Some(pts), true) = (self.base, pts, discont) {
            let expected = sample_time_ns(base, self.samples_in, self.rate);
            if expected.abs_diff(pts) > DISCONT_TOLERANCE_NS {
                let windows = self.drain();
                self.reset();
                ended = Some(TimedWindows { base, windows });
            }
        }
        let base = *self.base.get_or_insert(pts.unwrap_or(0));
        self.mono.clear();
        match self.format {
            SampleFormat::S16Le => {
                self.decoded_s16.clear();
                self.decoded_s16.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]])),
                );
                downmix_s16(&self.decoded_s16, self.channels, &mut self.mono);
            }
            SampleFormat::F32Le => {
                self.decoded.clear();
                self.decoded.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                downmix_f32(&self.decoded, self.channels, &mut self.mono);
            }
        }
        self.samples_in += self.mono.len() as u64;
        self.resampled.clear();
        self.resampler.push(&self.mono, &mut self.resampled);
        let windows = self.windower.push(&self.resampled);
        (ended, TimedWindows { base, windows })
    }
}

/// Face crops of successive frames → feature vectors, the model run every `interval`
/// frames (with faces) and each track's last vector reused (`reused = true`) between.
#[derive(Debug, Default)]
pub struct FaceFeatures {
    /// Frames with faces seen.
    frames: u64,
    /// Last result per track.
    last: HashMap<u64, Arc<FeatureVector>>,
    /// `interval` 0: per track, the crop the model last read and the frames since.
    read: HashMap<u64, (Arc<FaceCrop>, u32)>,
    /// Model runs per face (for the log and the tests).
    runs: u64,
}

impl FaceFeatures {
    /// Forgets the tracks and restarts the interval count.
    pub fn reset(&mut self) {
        self.frames = 0;
        self.last.clear();
        self.read.clear();
    }

    /// Faces the model ran on since construction.
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// `interval` 0: whether track `c`'s crop needs a model run (and the bookkeeping).
    fn crop_changed(&mut self, c: &Arc<FaceCrop>) -> bool {
        let changed = match self.read.get_mut(&c.track_id) {
            Some((old, since)) if old.rgb.len() == c.rgb.len() => {
                *since += 1;
                let diff = old
                    .rgb
                    .iter()
                    .zip(&c.rgb)
                    .map(|(a, b)| a.abs_diff(*b) as u64)
                    .sum::<u64>() as f32
                    / c.rgb.len().max(1) as f32;
                *since >= AUTO_MAX_INTERVAL || diff > CROP_CHANGE
            }
            _ => true,
        };
        if changed {
            self.read.insert(c.track_id, (c.clone(), 0));
        }
        changed
    }

    /// Frames with faces seen since the last reset.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The vectors of one frame's `crops` (same order), at `pts` for `duration` ns.
    /// A frame without faces does not count towards `interval`; `interval` 0 decides per
    /// track from its crop (see the module docs).
    pub fn process(
        &mut self,
        model: &mut FeatureModel,
        crops: &[Arc<FaceCrop>],
        pts: u64,
        duration: u64,
        interval: u32,
    ) -> Result<Vec<Arc<FeatureVector>>, FeatureModelError> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let auto = interval == 0;
        let run_all = !auto && self.frames.is_multiple_of(interval as u64);
        self.frames += 1;
        let mut slots: Vec<Option<Arc<FeatureVector>>> = vec![None; crops.len()];
        let mut to_run = Vec::new();
        let mut to_run_idx = Vec::new();
        for (i, c) in crops.iter().enumerate() {
            let reuse = if auto {
                !self.crop_changed(c)
            } else {
                !run_all
            };
            match self.last.get(&c.track_id) {
                Some(last) if reuse => {
                    let mut v = (**last).clone();
                    v.pts = pts;
                    v.duration = duration;
                    v.reused = true;
                    slots[i] = Some(Arc::new(v));
                }
                _ => {
                    to_run.push(c.clone());
                    to_run_idx.push(i);
                }
            }
        }
        if run_all {
            self.last.clear();
        }
        if auto {
            // Tracks not in this frame are forgotten (a long stream of passing faces
            // must not grow the maps); one that comes back runs the model again.
            self.last
                .retain(|id, _| crops.iter().any(|c| c.track_id == *id));
            self.read
                .retain(|id, _| crops.iter().any(|c| c.track_id == *id));
        }
        let results = model.run_crops(&to_run)?;
        self.runs += to_run.len() as u64;
        for ((i, c), r) in to_run_idx.into_iter().zip(&to_run).zip(results) {
            let v = Arc::new(model.vector(Some(c.track_id), pts, duration, r));
            self.last.insert(c.track_id, v.clone());
            slots[i] = Some(v);
        }
        Ok(slots.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn windows_are_timed_by_samples_whatever_the_buffer_sizes() {
        // 16 kHz mono straight through: window 400, hop 160.
        let mut s = AudioStream::new(16_000, 1, SampleFormat::F32Le, 16_000, 400, 160);
        let signal: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.01).sin()).collect();
        let mut all = Vec::new();
        let mut pos = 0;
        for (k, len) in [1000usize, 37, 5000, 963, 9000].into_iter().enumerate() {
            let pts = 1_000_000_000 + pos as u64 * 1_000_000_000 / 16_000;
            let (ended, w) = s.push(Some(pts), k == 0, &f32_bytes(&signal[pos..pos + len]));
            assert!(ended.is_none());
            assert_eq!(w.base, 1_000_000_000);
            all.extend(w.windows);
            pos += len;
        }
        // (16000 - 400) / 160 + 1 = 98 windows, k at sample 160·k, same samples.
        assert_eq!(all.len(), 98);
        for (k, w) in all.iter().enumerate() {
            assert_eq!(w.start, 160 * k as u64);
            assert_eq!(w.samples, signal[160 * k..160 * k + 400]);
        }
        let (pts, dur) = all[97].times(1_000_000_000, 16_000);
        assert_eq!((pts, dur), (1_000_000_000 + 970_000_000, 25_000_000));
        assert_eq!(s.end_time(), Some(2_000_000_000));
        let (rest, end) = s.finish().unwrap();
        assert!(rest.windows.is_empty());
        assert_eq!(end, 2_000_000_000);
        assert!(s.finish().is_none(), "reset after finish");
    }

    #[test]
    fn a_real_discontinuity_restarts_the_windows_a_small_one_does_not() {
        let mut s = AudioStream::new(16_000, 2, SampleFormat::S16Le, 16_000, 400, 400);
        // Stereo S16: left 16384, right 0 → mono 0.25.
        let frames = |n: usize| -> Vec<u8> {
            (0..n)
                .flat_map(|_| [16384i16, 0].into_iter().flat_map(|v| v.to_le_bytes()))
                .collect()
        };
        let (_, w) = s.push(Some(0), true, &frames(800));
        assert_eq!(w.windows.len(), 2);
        assert!(w.windows[0].samples.iter().all(|&x| x == 0.25));
        // 800 samples = 50 ms; a DISCONT 0.5 ms off is jitter, not a restart.
        let (ended, w) = s.push(Some(50_500_000), true, &frames(400));
        assert!(ended.is_none());
        assert_eq!((w.base, w.windows[0].start), (0, 800));
        // 2 s later: the stretch ends and a new one starts there.
        let (ended, w) = s.push(Some(2_000_000_000), true, &frames(400));
        let ended = ended.expect("restart");
        assert_eq!(ended.base, 0);
        assert_eq!(
            (w.base, w.windows.len(), w.windows[0].start),
            (2_000_000_000, 1, 0)
        );
    }
}
