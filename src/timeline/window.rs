// SPDX-License-Identifier: MPL-2.0
//! Per-track sliding windows of `T` frames: the `[T, D]` arrays a fusion model reads.

use std::collections::{BTreeMap, VecDeque};

use ndarray::{Array1, Array2, Array3, s};

use super::{TimelineError, is_finite, unit_mask};

/// Settings of [`TrackWindows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowConfig {
    /// Frames per window (T, the fusion model's `affect.fusion.window`).
    pub frames: usize,
    /// Visual vector dimension (Dv).
    pub visual_dim: usize,
    /// Audio vector dimension (Da).
    pub audio_dim: usize,
    /// A track absent from more than this many consecutive frames is dropped (its
    /// absent frames are pushed with visual mask 0 until then).
    pub drop_after: u32,
}

/// One frame slot of a window.
#[derive(Debug, Clone)]
struct Slot {
    visual: Vec<f32>,
    visual_mask: f32,
    audio: Vec<f32>,
    audio_mask: f32,
}

/// The arrays of one window, oldest frame first (row `T-1` is the newest frame). Slots
/// not filled yet (a young track) are zeros with mask 0 at the start.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowArrays {
    /// `[T, Dv]`.
    pub visual: Array2<f32>,
    /// `[T]`, 1 where a face vector was present.
    pub visual_mask: Array1<f32>,
    /// `[T, Da]`.
    pub audio: Array2<f32>,
    /// `[T]`, in `[0, 1]`: the aligned audio mask (1 where an aligned audio vector was
    /// present, its speech weight when the fusion model gates audio by voice activity).
    pub audio_mask: Array1<f32>,
}

/// Windows stacked into a batch: the four inputs of a fusion model.
#[derive(Debug, Clone, PartialEq)]
pub struct FusionBatch {
    /// `visual` `[B, T, Dv]`.
    pub visual: Array3<f32>,
    /// `visual_mask` `[B, T]`.
    pub visual_mask: Array2<f32>,
    /// `audio` `[B, T, Da]`.
    pub audio: Array3<f32>,
    /// `audio_mask` `[B, T]`.
    pub audio_mask: Array2<f32>,
}

/// Stacks windows of equal shape into a batch (B = `windows.len()`); `None` when
/// `windows` is empty or the shapes differ.
pub fn stack(windows: &[WindowArrays]) -> Option<FusionBatch> {
    let first = windows.first()?;
    let (t, dv) = first.visual.dim();
    let da = first.audio.dim().1;
    let b = windows.len();
    let mut out = FusionBatch {
        visual: Array3::zeros((b, t, dv)),
        visual_mask: Array2::zeros((b, t)),
        audio: Array3::zeros((b, t, da)),
        audio_mask: Array2::zeros((b, t)),
    };
    for (i, w) in windows.iter().enumerate() {
        if w.visual.dim() != (t, dv) || w.audio.dim() != (t, da) || w.visual_mask.len() != t {
            return None;
        }
        out.visual.slice_mut(s![i, .., ..]).assign(&w.visual);
        out.visual_mask.slice_mut(s![i, ..]).assign(&w.visual_mask);
        out.audio.slice_mut(s![i, .., ..]).assign(&w.audio);
        out.audio_mask.slice_mut(s![i, ..]).assign(&w.audio_mask);
    }
    Some(out)
}

/// A sliding window of the last `T` frames of one track.
#[derive(Debug, Clone)]
pub struct FrameWindow {
    frames: usize,
    visual_dim: usize,
    audio_dim: usize,
    slots: VecDeque<Slot>,
}

/// An audio step of a frame: the aligned vector and its mask in `[0, 1]`
/// ([`Aligned::as_input`](super::Aligned::as_input)); `None` for a masked frame.
pub type AudioStep<'a> = Option<(&'a [f32], f32)>;

fn take(
    v: Option<(&[f32], f32)>,
    dim: usize,
    stream: &'static str,
) -> Result<(Vec<f32>, f32), TimelineError> {
    match v {
        Some((v, _)) if v.len() != dim => Err(TimelineError::Dimension {
            stream,
            expected: dim,
            got: v.len(),
        }),
        Some((v, m)) if is_finite(v) && unit_mask(m) > 0.0 => Ok((v.to_vec(), unit_mask(m))),
        _ => Ok((vec![0.0; dim], 0.0)),
    }
}

impl FrameWindow {
    /// An empty window of `frames` frames; refuses zero sizes.
    pub fn new(frames: usize, visual_dim: usize, audio_dim: usize) -> Result<Self, TimelineError> {
        if frames == 0 || visual_dim == 0 || audio_dim == 0 {
            return Err(TimelineError::Config(
                "window frames and vector dimensions must be positive",
            ));
        }
        Ok(FrameWindow {
            frames,
            visual_dim,
            audio_dim,
            slots: VecDeque::with_capacity(frames),
        })
    }

    fn check(&self, visual: Option<&[f32]>, audio: AudioStep<'_>) -> Result<(), TimelineError> {
        take(
            visual
                .filter(|v| v.len() != self.visual_dim)
                .map(|v| (v, 1.0)),
            self.visual_dim,
            "visual",
        )?;
        take(
            audio.filter(|(v, _)| v.len() != self.audio_dim),
            self.audio_dim,
            "audio",
        )?;
        Ok(())
    }

    /// Appends a frame, dropping the oldest one when full. The visual vector gets mask
    /// 1; the audio vector the mask given with it, clamped to `[0, 1]` (NaN → 0). `None`,
    /// a vector holding NaN/∞ or an audio mask of 0 is stored as zeros with mask 0; a
    /// wrong length is an error (nothing stored).
    pub fn push(
        &mut self,
        visual: Option<&[f32]>,
        audio: AudioStep<'_>,
    ) -> Result<(), TimelineError> {
        let (visual, visual_mask) = take(visual.map(|v| (v, 1.0)), self.visual_dim, "visual")?;
        let (audio, audio_mask) = take(audio, self.audio_dim, "audio")?;
        if self.slots.len() == self.frames {
            self.slots.pop_front();
        }
        self.slots.push_back(Slot {
            visual,
            visual_mask,
            audio,
            audio_mask,
        });
        Ok(())
    }

    /// Frames pushed and still in the window (at most T).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// `true` before the first push (or after a reset).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// `true` once T frames have been pushed.
    pub fn is_full(&self) -> bool {
        self.slots.len() == self.frames
    }

    /// T.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Empties the window.
    pub fn reset(&mut self) {
        self.slots.clear();
    }

    /// The window as `[T, D]` arrays, oldest first, unfilled slots at the start masked.
    pub fn arrays(&self) -> WindowArrays {
        let t = self.frames;
        let mut w = WindowArrays {
            visual: Array2::zeros((t, self.visual_dim)),
            visual_mask: Array1::zeros(t),
            audio: Array2::zeros((t, self.audio_dim)),
            audio_mask: Array1::zeros(t),
        };
        let pad = t - self.slots.len();
        for (k, slot) in self.slots.iter().enumerate() {
            let row = pad + k;
            w.visual
                .row_mut(row)
                .iter_mut()
                .zip(&slot.visual)
                .for_each(|(d, s)| *d = *s);
            w.audio
                .row_mut(row)
                .iter_mut()
                .zip(&slot.audio)
                .for_each(|(d, s)| *d = *s);
            w.visual_mask[row] = slot.visual_mask;
            w.audio_mask[row] = slot.audio_mask;
        }
        w
    }
}

#[derive(Debug, Clone)]
struct Track {
    window: FrameWindow,
    missing: u32,
}

/// One [`FrameWindow`] per face track: created when a track appears, fed a frame (visual
/// mask 0) while it is absent, dropped after [`WindowConfig::drop_after`] absent frames
/// or on [`TrackWindows::end_track`].
#[derive(Debug, Clone)]
pub struct TrackWindows {
    cfg: WindowConfig,
    tracks: BTreeMap<u64, Track>,
}

impl TrackWindows {
    /// No tracks yet; refuses zero sizes.
    pub fn new(cfg: WindowConfig) -> Result<Self, TimelineError> {
        FrameWindow::new(cfg.frames, cfg.visual_dim, cfg.audio_dim)?;
        Ok(TrackWindows {
            cfg,
            tracks: BTreeMap::new(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &WindowConfig {
        &self.cfg
    }

    /// Pushes one video frame: `faces` are the tracks seen in it with their visual vector
    /// (`None` when the face has no usable vector), `audio` the frame's aligned audio
    /// vector and its mask in `[0, 1]` (`None` when masked). Tracks not in `faces` get a frame with visual mask 0
    /// and are dropped once absent for more than `drop_after` frames. A track id given
    /// twice uses its first entry. Returns the ids of the tracks dropped by this frame.
    ///
    /// Dimensions are checked before anything changes: on error no window is touched.
    pub fn push_frame(
        &mut self,
        faces: &[(u64, Option<&[f32]>)],
        audio: AudioStep<'_>,
    ) -> Result<Vec<u64>, TimelineError> {
        Ok(self
            .push_frame_keeping(faces, audio)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// [`push_frame`](Self::push_frame) that also returns each dropped track's last
    /// window (ending at the previous frame), for frames still waiting for it
    /// ([`crate::timeline::Lookahead`]).
    pub fn push_frame_keeping(
        &mut self,
        faces: &[(u64, Option<&[f32]>)],
        audio: AudioStep<'_>,
    ) -> Result<Vec<(u64, WindowArrays)>, TimelineError> {
        self.push_frame_attributed(faces, audio, |_| 1.0)
    }

    /// [`push_frame_keeping`](Self::push_frame_keeping) where each track's audio mask is
    /// the frame's mask times `weight(track id)` (clamped to `[0, 1]`, NaN → 0): who the
    /// voice belongs to ([`crate::speaker::audio_weight`]). Absent tracks are weighed
    /// too. A weight of 0 stores the audio step as zeros with mask 0.
    pub fn push_frame_attributed(
        &mut self,
        faces: &[(u64, Option<&[f32]>)],
        audio: AudioStep<'_>,
        weight: impl Fn(u64) -> f32,
    ) -> Result<Vec<(u64, WindowArrays)>, TimelineError> {
        let weighed = |id: u64| audio.map(|(v, m)| (v, unit_mask(m) * unit_mask(weight(id))));
        let probe = FrameWindow::new(self.cfg.frames, self.cfg.visual_dim, self.cfg.audio_dim)?;
        for (_, v) in faces {
            probe.check(*v, audio)?;
        }
        probe.check(None, audio)?;
        let mut seen = Vec::with_capacity(faces.len());
        for &(id, visual) in faces {
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            let track = match self.tracks.entry(id) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(Track {
                    window: probe.clone(),
                    missing: 0,
                }),
            };
            track.missing = 0;
            track.window.push(visual, weighed(id))?;
        }
        let mut dropped = Vec::new();
        for (&id, track) in self.tracks.iter_mut() {
            if seen.contains(&id) {
                continue;
            }
            track.missing = track.missing.saturating_add(1);
            if track.missing > self.cfg.drop_after {
                dropped.push(id);
            } else {
                track.window.push(None, weighed(id))?;
            }
        }
        Ok(dropped
            .into_iter()
            .filter_map(|id| self.tracks.remove(&id).map(|t| (id, t.window.arrays())))
            .collect())
    }

    /// Drops a track now (the tracker said it ended). Returns whether it existed.
    pub fn end_track(&mut self, id: u64) -> bool {
        self.tracks.remove(&id).is_some()
    }

    /// The window of a track.
    pub fn window(&self, id: u64) -> Option<&FrameWindow> {
        self.tracks.get(&id).map(|t| &t.window)
    }

    /// The arrays of a track's window.
    pub fn arrays(&self, id: u64) -> Option<WindowArrays> {
        self.window(id).map(FrameWindow::arrays)
    }

    /// Ids of the live tracks, ascending.
    pub fn track_ids(&self) -> Vec<u64> {
        self.tracks.keys().copied().collect()
    }

    /// Number of live tracks.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// `true` when no track is live.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Drops every track (flush, seek, stream restart).
    pub fn reset(&mut self) {
        self.tracks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_fills_and_slides() {
        let mut w = FrameWindow::new(3, 2, 1).unwrap();
        assert!(w.is_empty());
        w.push(Some(&[1.0, 1.5]), Some((&[10.0][..], 1.0))).unwrap();
        let a = w.arrays();
        // Young window: left-padded with masked zeros, newest frame last.
        assert_eq!(a.visual_mask.to_vec(), vec![0.0, 0.0, 1.0]);
        assert_eq!(a.visual.row(2).to_vec(), vec![1.0, 1.5]);
        assert_eq!(a.visual.row(0).to_vec(), vec![0.0, 0.0]);
        assert_eq!(a.audio.column(0).to_vec(), vec![0.0, 0.0, 10.0]);
        w.push(None, Some((&[20.0][..], 1.0))).unwrap();
        w.push(Some(&[3.0, 3.5]), None).unwrap();
        assert!(w.is_full());
        let a = w.arrays();
        assert_eq!(a.visual_mask.to_vec(), vec![1.0, 0.0, 1.0]);
        assert_eq!(a.audio_mask.to_vec(), vec![1.0, 1.0, 0.0]);
        assert_eq!(a.audio.column(0).to_vec(), vec![10.0, 20.0, 0.0]);
        // Slides: the oldest frame falls out.
        w.push(Some(&[4.0, 4.5]), Some((&[40.0][..], 1.0))).unwrap();
        let a = w.arrays();
        assert_eq!(a.visual.column(0).to_vec(), vec![0.0, 3.0, 4.0]);
        assert_eq!(a.visual_mask.to_vec(), vec![0.0, 1.0, 1.0]);
        assert_eq!(a.audio.column(0).to_vec(), vec![20.0, 0.0, 40.0]);
        assert_eq!(w.len(), 3);
        w.reset();
        assert!(w.is_empty());
        assert_eq!(w.arrays().visual_mask.sum(), 0.0);
    }

    #[test]
    fn nan_vectors_are_masked_and_wrong_sizes_refused() {
        let mut w = FrameWindow::new(2, 2, 1).unwrap();
        w.push(Some(&[f32::NAN, 1.0]), Some((&[f32::INFINITY][..], 1.0)))
            .unwrap();
        let a = w.arrays();
        assert_eq!(a.visual_mask[1], 0.0);
        assert_eq!(a.audio_mask[1], 0.0);
        assert!(a.visual.iter().chain(a.audio.iter()).all(|v| *v == 0.0));
        assert!(matches!(
            w.push(Some(&[1.0]), None),
            Err(TimelineError::Dimension {
                stream: "visual",
                expected: 2,
                got: 1
            })
        ));
        assert_eq!(w.len(), 1);
        assert!(FrameWindow::new(0, 1, 1).is_err());
    }

    #[test]
    fn audio_masks_between_0_and_1_are_kept_and_sanitised() {
        let mut w = FrameWindow::new(5, 1, 1).unwrap();
        for m in [0.25, 1.5, f32::NAN, 0.0, -2.0] {
            w.push(Some(&[1.0]), Some((&[3.0][..], m))).unwrap();
        }
        let a = w.arrays();
        // 0.25 kept, 1.5 clamped to 1; NaN, 0 and negative masks store zeros, mask 0.
        assert_eq!(a.audio_mask.to_vec(), vec![0.25, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(a.audio.column(0).to_vec(), vec![3.0, 3.0, 0.0, 0.0, 0.0]);
        assert_eq!(a.visual_mask.to_vec(), vec![1.0; 5]);
        // Through the track windows too, absent tracks included.
        let mut tw = TrackWindows::new(WindowConfig {
            frames: 2,
            visual_dim: 1,
            audio_dim: 1,
            drop_after: 3,
        })
        .unwrap();
        tw.push_frame(&[(1, Some(&[1.0]))], Some((&[2.0][..], 0.4)))
            .unwrap();
        tw.push_frame(&[], Some((&[2.0][..], 0.7))).unwrap();
        assert_eq!(tw.arrays(1).unwrap().audio_mask.to_vec(), vec![0.4, 0.7]);
    }

    #[test]
    fn attributed_audio_reaches_only_the_weighted_tracks() {
        let mut tw = TrackWindows::new(WindowConfig {
            frames: 2,
            visual_dim: 1,
            audio_dim: 1,
            drop_after: 3,
        })
        .unwrap();
        let weight = |id: u64| match id {
            1 => 1.0,
            2 => 0.0,
            _ => f32::NAN,
        };
        tw.push_frame_attributed(
            &[(1, Some(&[1.0])), (2, Some(&[1.0])), (3, None)],
            Some((&[2.0][..], 0.5)),
            weight,
        )
        .unwrap();
        // Track 2 absent in the next frame: weighed all the same.
        tw.push_frame_attributed(&[(1, Some(&[1.0]))], Some((&[3.0][..], 1.0)), weight)
            .unwrap();
        let a = |id| tw.arrays(id).unwrap();
        assert_eq!(a(1).audio_mask.to_vec(), vec![0.5, 1.0]);
        assert_eq!(a(1).audio.column(0).to_vec(), vec![2.0, 3.0]);
        for id in [2, 3] {
            assert_eq!(a(id).audio_mask.to_vec(), vec![0.0, 0.0]);
            assert_eq!(a(id).audio.column(0).to_vec(), vec![0.0, 0.0]);
        }
    }

    #[test]
    fn tracks_appear_go_missing_and_end() {
        let cfg = WindowConfig {
            frames: 2,
            visual_dim: 1,
            audio_dim: 1,
            drop_after: 1,
        };
        let mut tw = TrackWindows::new(cfg).unwrap();
        assert!(
            tw.push_frame(&[(7, Some(&[1.0]))], Some((&[0.5][..], 1.0)))
                .unwrap()
                .is_empty()
        );
        assert_eq!(tw.track_ids(), vec![7]);
        // Track 9 appears; track 7 is absent once (kept, visual masked).
        let dropped = tw
            .push_frame(&[(9, Some(&[2.0]))], Some((&[0.6][..], 1.0)))
            .unwrap();
        assert!(dropped.is_empty());
        let a7 = tw.arrays(7).unwrap();
        assert_eq!(a7.visual_mask.to_vec(), vec![1.0, 0.0]);
        assert_eq!(a7.audio.column(0).to_vec(), vec![0.5, 0.6]);
        let a9 = tw.arrays(9).unwrap();
        assert_eq!(a9.visual_mask.to_vec(), vec![0.0, 1.0]);
        // Absent twice: dropped.
        let dropped = tw.push_frame(&[(9, Some(&[3.0]))], None).unwrap();
        assert_eq!(dropped, vec![7]);
        assert_eq!(tw.track_ids(), vec![9]);
        assert!(tw.arrays(7).is_none());
        // A reappearing id starts a fresh window.
        tw.push_frame(&[(7, Some(&[5.0])), (9, None)], Some((&[0.8][..], 1.0)))
            .unwrap();
        assert_eq!(tw.arrays(7).unwrap().visual_mask.to_vec(), vec![0.0, 1.0]);
        assert_eq!(
            tw.arrays(9).unwrap().visual.column(0).to_vec(),
            vec![3.0, 0.0]
        );
        // Errors change nothing.
        assert!(tw.push_frame(&[(9, Some(&[1.0, 2.0]))], None).is_err());
        assert!(
            tw.push_frame(&[(9, Some(&[1.0]))], Some((&[1.0, 2.0][..], 1.0)))
                .is_err()
        );
        assert_eq!(
            tw.arrays(9).unwrap().visual.column(0).to_vec(),
            vec![3.0, 0.0]
        );
        // Stacking for the model.
        let b = stack(&[tw.arrays(7).unwrap(), tw.arrays(9).unwrap()]).unwrap();
        assert_eq!(b.visual.shape(), &[2, 2, 1]);
        assert_eq!(b.visual_mask.shape(), &[2, 2]);
        assert_eq!(b.audio[[1, 1, 0]], 0.8);
        assert!(stack(&[]).is_none());
        assert!(tw.end_track(9));
        assert!(!tw.end_track(9));
        tw.reset();
        assert!(tw.is_empty());
    }
}
