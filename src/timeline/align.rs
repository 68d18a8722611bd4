// SPDX-License-Identifier: MPL-2.0
//! Aligning an audio feature stream onto video frame times.

use std::collections::VecDeque;

use super::{TimelineError, is_finite, unit_mask};

/// How an audio vector is chosen for a frame time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlignMode {
    /// Linear interpolation between the nearest audio vector at or before the frame time
    /// and the nearest one after it (the method of the ABAW papers). Needs audio up to
    /// `max_gap_ns` after the frame: [`AudioAligner::lookahead_ns`].
    #[default]
    Interpolate,
    /// The latest audio vector at or before the frame time; never looks ahead (no latency).
    NearestPast,
}

/// Which instant of its `[pts, pts + duration)` span an audio vector stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anchor {
    /// `pts`.
    Start,
    /// `pts + duration / 2` (the centre of the window the vector was computed on).
    #[default]
    Centre,
    /// `pts + duration` (the instant the vector's whole window is known: strictly causal).
    End,
}

impl Anchor {
    /// The time a vector with this span stands for.
    pub fn time(self, pts: u64, duration: u64) -> u64 {
        match self {
            Anchor::Start => pts,
            Anchor::Centre => pts.saturating_add(duration / 2),
            Anchor::End => pts.saturating_add(duration),
        }
    }
}

/// Settings of an [`AudioAligner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlignConfig {
    /// Audio feature dimension (Da); vectors of another length are refused.
    pub dim: usize,
    /// Interpolation or causal nearest-past.
    pub mode: AlignMode,
    /// An audio vector further than this from the frame time is not used; a frame with
    /// no usable vector gets mask 0.
    pub max_gap_ns: u64,
    /// Which instant of a vector's span is its time.
    pub anchor: Anchor,
    /// Vectors older than this behind the newest one are forgotten on push (a memory
    /// bound for callers that never call [`AudioAligner::prune`]).
    pub retain_ns: u64,
}

impl AlignConfig {
    /// Defaults for `dim`-dimensional vectors: interpolation, centre anchor, 200 ms max
    /// gap (2.5 hops of an 80 ms speech embedding), 10 s retention.
    pub fn new(dim: usize) -> Self {
        AlignConfig {
            dim,
            mode: AlignMode::Interpolate,
            max_gap_ns: 200_000_000,
            anchor: Anchor::Centre,
            retain_ns: 10_000_000_000,
        }
    }
}

/// An audio vector aligned to a frame time, with its mask (1 = valid, 0 = no audio,
/// in between = a vector of partial weight, see [`AudioAligner::push_weighted`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Aligned {
    /// The vector (zeros when `mask` is 0); never NaN.
    pub vector: Vec<f32>,
    /// In `[0, 1]`, never NaN: 0 when no audio vector lies within the max gap, else the
    /// weight of the vectors used (interpolated like them); 1 for vectors pushed with
    /// [`AudioAligner::push`].
    pub mask: f32,
}

impl Aligned {
    /// A masked (missing) vector of `dim` zeros.
    pub fn missing(dim: usize) -> Self {
        Aligned {
            vector: vec![0.0; dim],
            mask: 0.0,
        }
    }

    /// The vector when valid, `None` when masked.
    pub fn as_option(&self) -> Option<&[f32]> {
        (self.mask > 0.0).then_some(self.vector.as_slice())
    }

    /// The vector and its mask when the mask is above 0, `None` when masked: what
    /// [`TrackWindows::push_frame`](super::TrackWindows::push_frame) takes.
    pub fn as_input(&self) -> Option<(&[f32], f32)> {
        (self.mask > 0.0).then_some((self.vector.as_slice(), self.mask))
    }
}

#[derive(Debug, Clone)]
struct Entry {
    time: u64,
    vector: Vec<f32>,
    weight: f32,
}

/// Holds the recent vectors of one audio feature stream and aligns them onto frame times.
///
/// Vectors must arrive in time order (equal times replace); after a flush or seek call
/// [`AudioAligner::reset`]. A vector holding NaN/∞ is dropped on arrival: its time is a
/// gap, bridged only by neighbours within the max gap.
#[derive(Debug, Clone)]
pub struct AudioAligner {
    cfg: AlignConfig,
    entries: VecDeque<Entry>,
    last_time: Option<u64>,
    known_until: Option<u64>,
    ended: bool,
    dropped: u64,
}

impl AudioAligner {
    /// An empty aligner; refuses a zero dimension.
    pub fn new(cfg: AlignConfig) -> Result<Self, TimelineError> {
        if cfg.dim == 0 {
            return Err(TimelineError::Config("audio dimension must be positive"));
        }
        Ok(AudioAligner {
            cfg,
            entries: VecDeque::new(),
            last_time: None,
            known_until: None,
            ended: false,
            dropped: 0,
        })
    }

    /// The settings.
    pub fn config(&self) -> &AlignConfig {
        &self.cfg
    }

    /// How far past a frame time audio must be known before the frame's alignment is
    /// final: `max_gap_ns` when interpolating, 0 in nearest-past mode. `avfuse` adds
    /// this to its reported latency.
    pub fn lookahead_ns(&self) -> u64 {
        match self.cfg.mode {
            AlignMode::Interpolate => self.cfg.max_gap_ns,
            AlignMode::NearestPast => 0,
        }
    }

    /// Adds the vector computed on `[pts, pts + duration)` with weight 1. Returns
    /// `Ok(false)` when the vector was dropped because it holds NaN or ∞ (the time still
    /// advances).
    pub fn push(&mut self, pts: u64, duration: u64, vector: &[f32]) -> Result<bool, TimelineError> {
        self.push_weighted(pts, duration, vector, 1.0)
    }

    /// [`push`](Self::push) with a weight in `[0, 1]` (clamped; NaN counts as 0) that
    /// becomes the aligned mask: interpolated between two vectors like the vectors
    /// (`Interpolate`), the chosen vector's (`NearestPast`). A vector of weight 0 is
    /// stored (it is the nearest vector for the frames around it) and gives mask 0.
    pub fn push_weighted(
        &mut self,
        pts: u64,
        duration: u64,
        vector: &[f32],
        weight: f32,
    ) -> Result<bool, TimelineError> {
        if vector.len() != self.cfg.dim {
            return Err(TimelineError::Dimension {
                stream: "audio",
                expected: self.cfg.dim,
                got: vector.len(),
            });
        }
        let time = self.cfg.anchor.time(pts, duration);
        if let Some(last) = self.last_time
            && time < last
        {
            return Err(TimelineError::NotMonotonic { time, last });
        }
        self.last_time = Some(time);
        self.known_until = Some(self.known_until.map_or(time, |k| k.max(time)));
        if self.entries.back().is_some_and(|e| e.time == time) {
            self.entries.pop_back();
        }
        if !is_finite(vector) {
            self.dropped += 1;
            return Ok(false);
        }
        self.entries.push_back(Entry {
            time,
            vector: vector.to_vec(),
            weight: unit_mask(weight),
        });
        let horizon = time.saturating_sub(self.cfg.retain_ns);
        while self.entries.front().is_some_and(|e| e.time < horizon) {
            self.entries.pop_front();
        }
        Ok(true)
    }

    /// Declares that no audio vector will have a time before `time` (a GAP event, or
    /// audio known to be silent without features): frames before `time - max_gap` become
    /// final with whatever is stored.
    pub fn advance(&mut self, time: u64) {
        self.known_until = Some(self.known_until.map_or(time, |k| k.max(time)));
    }

    /// The audio stream has ended (EOS): every frame time is final from now on, and
    /// frames more than `max_gap_ns` after the last vector get mask 0.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// Whether [`AudioAligner::end`] was called since the last reset.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Forgets every vector and the end-of-stream state (flush, seek, new segment).
    pub fn reset(&mut self) {
        self.entries.clear();
        self.last_time = None;
        self.known_until = None;
        self.ended = false;
    }

    /// Vectors currently stored.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when no vector is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Vectors dropped for holding NaN/∞ since creation.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether the alignment at frame time `t` is final: no vector that could still
    /// arrive would change it.
    pub fn is_ready(&self, t: u64) -> bool {
        if self.ended {
            return true;
        }
        let known = self.known_until;
        match self.cfg.mode {
            AlignMode::NearestPast => known.is_some_and(|k| k >= t),
            AlignMode::Interpolate => {
                self.last_time.is_some_and(|l| l >= t)
                    || known.is_some_and(|k| k >= t.saturating_add(self.cfg.max_gap_ns))
            }
        }
    }

    /// Forgets vectors that no frame at or after `t` needs (keeps the latest at or before `t`).
    pub fn prune(&mut self, t: u64) {
        while self.entries.len() >= 2 && self.entries[1].time <= t {
            self.entries.pop_front();
        }
    }

    /// The audio vector for frame time `t` and its mask. Never NaN; zeros when the mask
    /// is 0.
    pub fn align(&self, t: u64) -> Aligned {
        let gap = self.cfg.max_gap_ns;
        let i = self.entries.partition_point(|e| e.time <= t);
        let before = i
            .checked_sub(1)
            .map(|j| &self.entries[j])
            .filter(|e| t - e.time <= gap);
        let after = match self.cfg.mode {
            AlignMode::NearestPast => None,
            AlignMode::Interpolate => self.entries.get(i).filter(|e| e.time - t <= gap),
        };
        let aligned = match (before, after) {
            (Some(a), Some(b)) => {
                let w = ((t - a.time) as f64 / (b.time - a.time) as f64) as f32;
                Aligned {
                    vector: a
                        .vector
                        .iter()
                        .zip(&b.vector)
                        .map(|(&x, &y)| x + w * (y - x))
                        .collect(),
                    mask: unit_mask(a.weight + w * (b.weight - a.weight)),
                }
            }
            (Some(e), None) | (None, Some(e)) => Aligned {
                vector: e.vector.clone(),
                mask: e.weight,
            },
            (None, None) => Aligned::missing(self.cfg.dim),
        };
        if aligned.mask > 0.0 {
            aligned
        } else {
            Aligned::missing(self.cfg.dim)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// A 2-d linear signal v(t) = (1 + 2·t_s, -3·t_s) sampled every 80 ms, pts = time (Start anchor).
    fn linear(mode: AlignMode) -> AudioAligner {
        let mut cfg = AlignConfig::new(2);
        cfg.mode = mode;
        cfg.anchor = Anchor::Start;
        let mut a = AudioAligner::new(cfg).unwrap();
        for k in 0..10u64 {
            let t = k * 80 * MS;
            let s = t as f32 / 1e9;
            assert!(a.push(t, 80 * MS, &[1.0 + 2.0 * s, -3.0 * s]).unwrap());
        }
        a
    }

    #[test]
    fn interpolation_of_a_linear_signal_is_exact() {
        let a = linear(AlignMode::Interpolate);
        for t_ms in [0u64, 33, 40, 80, 117, 500, 719, 720] {
            let t = t_ms * MS;
            let s = t as f32 / 1e9;
            let got = a.align(t);
            assert_eq!(got.mask, 1.0, "{t_ms}");
            assert!(
                (got.vector[0] - (1.0 + 2.0 * s)).abs() < 1e-6,
                "{t_ms}: {got:?}"
            );
            assert!((got.vector[1] + 3.0 * s).abs() < 1e-6, "{t_ms}: {got:?}");
        }
        // Exactly on a sample: that sample, bit for bit.
        let s = (160 * MS) as f32 / 1e9;
        assert_eq!(a.align(160 * MS).vector, vec![1.0 + 2.0 * s, -3.0 * s]);
    }

    #[test]
    fn gaps_and_stream_ends_give_mask_zero() {
        let mut cfg = AlignConfig::new(1);
        cfg.anchor = Anchor::Start;
        cfg.max_gap_ns = 100 * MS;
        let mut a = AudioAligner::new(cfg).unwrap();
        // Audio starts at 1 s, has a hole between 1.16 s and 2 s.
        for t in [1000u64, 1080, 1160, 2000, 2080] {
            a.push(t * MS, 80 * MS, &[t as f32]).unwrap();
        }
        // Before audio starts (more than 100 ms before the first vector).
        assert_eq!(a.align(850 * MS), Aligned::missing(1));
        // Within the max gap before the first vector: held.
        assert_eq!(a.align(950 * MS).vector, vec![1000.0]);
        // In the hole: within 100 ms of a side, that side only (no interpolation across the hole).
        let near = a.align(1200 * MS);
        assert_eq!((near.vector[0], near.mask), (1160.0, 1.0));
        assert_eq!(a.align(1950 * MS).vector, vec![2000.0]);
        // Further than 100 ms from both sides: masked, zeros.
        let hole = a.align(1500 * MS);
        assert_eq!((hole.vector[0], hole.mask), (0.0, 0.0));
        // After the stream stopped.
        a.end();
        assert!(a.is_ready(5000 * MS));
        assert_eq!(a.align(2150 * MS).vector, vec![2080.0]);
        assert_eq!(a.align(2181 * MS).mask, 0.0);
    }

    #[test]
    fn causal_mode_never_looks_ahead() {
        let a = linear(AlignMode::NearestPast);
        assert_eq!(a.lookahead_ns(), 0);
        let at = |a: &AudioAligner, ms: u64| a.align(ms * MS);
        assert_eq!(at(&a, 79).vector, at(&a, 0).vector);
        assert_eq!(at(&a, 159).vector, at(&a, 80).vector);
        // Results are the same whether or not later vectors exist.
        let mut short = AudioAligner::new(a.config().clone()).unwrap();
        for k in 0..3u64 {
            let s = (k * 80 * MS) as f32 / 1e9;
            short
                .push(k * 80 * MS, 80 * MS, &[1.0 + 2.0 * s, -3.0 * s])
                .unwrap();
        }
        for ms in [0u64, 50, 160, 200, 239] {
            assert_eq!(at(&a, ms), at(&short, ms), "{ms}");
        }
        // Before the first vector: nothing in the past, masked (even though one is 10 ms ahead).
        let mut late = AudioAligner::new(a.config().clone()).unwrap();
        late.push(100 * MS, 80 * MS, &[5.0, 5.0]).unwrap();
        assert_eq!(late.align(90 * MS).mask, 0.0);
        assert!(late.is_ready(100 * MS) && !late.is_ready(101 * MS));
    }

    #[test]
    fn nan_vectors_are_dropped_and_never_returned() {
        let mut cfg = AlignConfig::new(2);
        cfg.anchor = Anchor::Start;
        cfg.max_gap_ns = 50 * MS;
        let mut a = AudioAligner::new(cfg).unwrap();
        a.push(0, 80 * MS, &[1.0, 1.0]).unwrap();
        assert!(!a.push(80 * MS, 80 * MS, &[f32::NAN, 0.0]).unwrap());
        assert!(!a.push(160 * MS, 80 * MS, &[f32::INFINITY, 0.0]).unwrap());
        a.push(240 * MS, 80 * MS, &[3.0, 3.0]).unwrap();
        assert_eq!(a.dropped(), 2);
        for ms in 0..=240u64 {
            let v = a.align(ms * MS);
            assert!(v.vector.iter().all(|x| x.is_finite()));
        }
        assert_eq!(a.align(120 * MS).mask, 0.0);
        assert_eq!(a.align(40 * MS).vector, vec![1.0, 1.0]);
    }

    #[test]
    fn weights_are_interpolated_like_the_vectors() {
        // Start anchor, vectors at 0, 80, 160, 240 ms with weights 0, 1, 0.5, NaN (→ 0).
        let mut cfg = AlignConfig::new(1);
        cfg.anchor = Anchor::Start;
        let mut a = AudioAligner::new(cfg.clone()).unwrap();
        for (k, w) in [0.0, 1.0, 0.5, f32::NAN].into_iter().enumerate() {
            let t = k as u64 * 80 * MS;
            assert!(a.push_weighted(t, 80 * MS, &[k as f32 + 1.0], w).unwrap());
        }
        // 20 ms: a quarter of the way from weight 0 to 1 → 0.25; vector 1 + 0.25 = 1.25.
        let v = a.align(20 * MS);
        assert!((v.mask - 0.25).abs() < 1e-6 && (v.vector[0] - 1.25).abs() < 1e-6);
        // 140 ms: 3/4 from 1 to 0.5 → 0.625.
        assert!((a.align(140 * MS).mask - 0.625).abs() < 1e-6);
        // 200 ms: half way from 0.5 to 0 → 0.25.
        assert!((a.align(200 * MS).mask - 0.25).abs() < 1e-6);
        // On a weight-0 vector: masked, zeros (not the vector).
        assert_eq!(a.align(0), Aligned::missing(1));
        assert_eq!(a.align(240 * MS), Aligned::missing(1));
        assert_eq!(a.align(80 * MS).as_input(), Some((&[2.0][..], 1.0)));

        // Nearest past: the chosen vector's weight, clamped to [0, 1].
        cfg.mode = AlignMode::NearestPast;
        let mut c = AudioAligner::new(cfg).unwrap();
        c.push_weighted(0, 80 * MS, &[1.0], 0.3).unwrap();
        c.push_weighted(80 * MS, 80 * MS, &[2.0], 7.0).unwrap();
        c.push_weighted(160 * MS, 80 * MS, &[3.0], -1.0).unwrap();
        assert_eq!(c.align(79 * MS).mask, 0.3);
        assert_eq!(c.align(79 * MS).vector, vec![1.0]);
        assert_eq!(c.align(159 * MS).mask, 1.0);
        assert_eq!(c.align(170 * MS), Aligned::missing(1));
        assert_eq!(c.align(170 * MS).as_input(), None);
        // Plain pushes weigh 1.
        c.push(240 * MS, 80 * MS, &[4.0]).unwrap();
        assert_eq!(c.align(250 * MS).mask, 1.0);
    }

    #[test]
    fn readiness_pruning_order_and_dims() {
        let mut cfg = AlignConfig::new(1);
        cfg.anchor = Anchor::Centre;
        cfg.max_gap_ns = 100 * MS;
        let mut a = AudioAligner::new(cfg).unwrap();
        assert!(!a.is_ready(0));
        a.push(0, 80 * MS, &[0.0]).unwrap(); // time 40 ms
        assert!(a.is_ready(40 * MS) && !a.is_ready(41 * MS));
        a.advance(200 * MS);
        assert!(a.is_ready(100 * MS) && !a.is_ready(101 * MS));
        assert!(matches!(
            a.push(0, 0, &[1.0]),
            Err(TimelineError::NotMonotonic { .. })
        ));
        assert!(matches!(
            a.push(400 * MS, 80 * MS, &[1.0, 2.0]),
            Err(TimelineError::Dimension {
                expected: 1,
                got: 2,
                ..
            })
        ));
        for k in 1..5u64 {
            a.push(k * 80 * MS, 80 * MS, &[k as f32]).unwrap();
        }
        a.prune(200 * MS); // times 40, 120, 200, 280, 360 → keeps 200 onwards
        assert_eq!(a.len(), 3);
        assert_eq!(a.align(200 * MS).vector, vec![2.0]);
        a.reset();
        assert!(a.is_empty() && !a.is_ready(0));
        a.push(0, 80 * MS, &[7.0]).unwrap(); // earlier times are fine after a reset
        assert!(AudioAligner::new(AlignConfig::new(0)).is_err());
    }
}
