// SPDX-License-Identifier: MPL-2.0
//! Voice activity over time: the per-10-ms speech probabilities `audiodenoise` puts on
//! its buffers, kept long enough to weigh each audio feature vector by how much of the
//! audio it was computed on is speech (`affect.fusion.audio-mask = speech`).

use std::collections::VecDeque;

use super::unit_mask as unit;

/// Length of one voice activity frame: 480 samples at 48 kHz (the frame of
/// `audiodenoise`'s `GstAffectSpeechMeta`).
pub const SPEECH_FRAME_NS: u64 = 10_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Frame {
    start: u64,
    end: u64,
    probability: f32,
}

/// Recent voice activity frames, in time order, and the mean probability over a span.
///
/// A frame belongs to a span `[start, end)` when its centre does; each frame counts once
/// whatever its length (the last frame of a buffer may be shorter). Times are
/// nanoseconds on one clock (avfuse: running time).
#[derive(Debug, Clone)]
pub struct SpeechTimeline {
    frames: VecDeque<Frame>,
    retain_ns: u64,
}

impl SpeechTimeline {
    /// An empty timeline that forgets frames ending more than `retain_ns` before the
    /// newest one.
    pub fn new(retain_ns: u64) -> Self {
        SpeechTimeline {
            frames: VecDeque::new(),
            retain_ns,
        }
    }

    /// Adds the probabilities of one buffer: frame `i` covers
    /// `[start + i·frame_ns, start + (i+1)·frame_ns)`, cut at `end` when given (the
    /// buffer's end: its last frame may be shorter); frames starting at or after `end`
    /// are ignored. Probabilities are clamped to `[0, 1]`, NaN counts as 0. Stored frames
    /// starting at or after `start` are replaced (a buffer that goes back in time after
    /// a seek overwrites what it covers).
    pub fn push(&mut self, start: u64, frame_ns: u64, end: Option<u64>, probabilities: &[f32]) {
        let frame_ns = frame_ns.max(1);
        while self.frames.back().is_some_and(|f| f.start >= start) {
            self.frames.pop_back();
        }
        for (i, &p) in probabilities.iter().enumerate() {
            let s = start.saturating_add((i as u64).saturating_mul(frame_ns));
            let mut e = s.saturating_add(frame_ns);
            if let Some(end) = end {
                if s >= end {
                    break;
                }
                e = e.min(end);
            }
            self.frames.push_back(Frame {
                start: s,
                end: e,
                probability: unit(p),
            });
        }
        if let Some(newest) = self.frames.back().map(|f| f.end) {
            let horizon = newest.saturating_sub(self.retain_ns);
            while self.frames.front().is_some_and(|f| f.end < horizon) {
                self.frames.pop_front();
            }
        }
    }

    /// The mean probability of the frames whose centre lies in `[start, end)`; `None`
    /// when no stored frame does.
    pub fn mean(&self, start: u64, end: u64) -> Option<f32> {
        let first = self.frames.partition_point(|f| centre(f) < start);
        let (sum, n) = self
            .frames
            .range(first..)
            .take_while(|f| centre(f) < end)
            .fold((0f64, 0u32), |(s, n), f| {
                (s + f64::from(f.probability), n + 1)
            });
        (n > 0).then(|| unit((sum / f64::from(n)) as f32))
    }

    /// Forgets frames ending at or before `t`.
    pub fn prune(&mut self, t: u64) {
        while self.frames.front().is_some_and(|f| f.end <= t) {
            self.frames.pop_front();
        }
    }

    /// Frames stored.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// `true` when no frame is stored.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Forgets every frame (flush, seek).
    pub fn reset(&mut self) {
        self.frames.clear();
    }
}

fn centre(f: &Frame) -> u64 {
    f.start + (f.end - f.start) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn mean_over_a_span_takes_the_frames_centred_in_it() {
        let mut s = SpeechTimeline::new(10_000 * MS);
        // Buffer 1 at 0: frames 0-10, 10-20, 20-30, 30-40 ms.
        s.push(0, SPEECH_FRAME_NS, Some(40 * MS), &[0.0, 0.2, 0.4, 1.0]);
        // Buffer 2 at 40 ms, 25 ms long: frames 40-50, 50-60, 60-65 (cut), a fourth
        // probability past the end is ignored.
        s.push(
            40 * MS,
            SPEECH_FRAME_NS,
            Some(65 * MS),
            &[0.6, 0.8, 0.5, 0.9],
        );
        assert_eq!(s.len(), 7);
        // [0, 40): (0 + 0.2 + 0.4 + 1) / 4 = 0.4.
        assert!((s.mean(0, 40 * MS).unwrap() - 0.4).abs() < 1e-6);
        // [15, 45): centres 15, 25, 35 → frames 2..4 of buffer 1 → (0.2 + 0.4 + 1) / 3;
        // the frame centred at 45 is out (half-open).
        let m = s.mean(15 * MS, 45 * MS).unwrap();
        assert!((m - 1.6 / 3.0).abs() < 1e-6, "{m}");
        // [45, 100): centres 45, 55, 62.5 → (0.6 + 0.8 + 0.5) / 3 = 0.6333.
        let m = s.mean(45 * MS, 100 * MS).unwrap();
        assert!((m - 1.9 / 3.0).abs() < 1e-6, "{m}");
        // Partly covered spans use the covered frames: [50, 1000) → (0.8 + 0.5) / 2.
        assert!((s.mean(50 * MS, 1000 * MS).unwrap() - 0.65).abs() < 1e-6);
        // Nothing centred in the span.
        assert_eq!(s.mean(66 * MS, 1000 * MS), None);
        assert_eq!(s.mean(16 * MS, 24 * MS), None);
    }

    #[test]
    fn probabilities_are_clamped_and_never_nan() {
        let mut s = SpeechTimeline::new(10_000 * MS);
        s.push(
            0,
            SPEECH_FRAME_NS,
            None,
            &[f32::NAN, 2.0, -1.0, f32::INFINITY],
        );
        // NaN → 0, 2 → 1, -1 → 0, ∞ → 1: mean 0.5.
        assert_eq!(s.mean(0, 40 * MS), Some(0.5));
        assert_eq!(s.mean(0, 10 * MS), Some(0.0));
    }

    #[test]
    fn retention_pruning_rewrites_and_reset() {
        // Keeps frames ending at most 50 ms before the newest end.
        let mut s = SpeechTimeline::new(50 * MS);
        s.push(0, SPEECH_FRAME_NS, None, &[1.0; 10]); // 0 .. 100 ms
        // Newest end 100 → horizon 50: frames ending before 50 ms go (0-10 .. 30-40).
        assert_eq!(s.len(), 6);
        assert_eq!(s.mean(0, 40 * MS), None);
        s.prune(70 * MS);
        assert_eq!(s.len(), 3);
        // A buffer going back to 80 ms replaces the frames from 80 on.
        s.push(80 * MS, SPEECH_FRAME_NS, Some(90 * MS), &[0.0]);
        assert_eq!(s.len(), 2);
        assert_eq!(s.mean(70 * MS, 100 * MS), Some(0.5));
        s.reset();
        assert!(s.is_empty());
        assert_eq!(s.mean(0, u64::MAX), None);
    }
}
