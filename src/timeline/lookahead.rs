// SPDX-License-Identifier: MPL-2.0
//! Frames held back for a fusion model that reads future frames
//! (`affect.fusion.lookahead-frames = K`): the result of frame `i` is the newest step of
//! the track's window ending at frame `i + K`, so frame `i` waits until `K` later frames
//! are in. At the end of the stream (or of a track) the frames still held get the
//! context that exists: the window shifted, padded past the last frame with zeros and
//! masks 0 — the numbers `affect::dataset::layout::frame_windows_ahead` gives `eval`.

use std::collections::{BTreeMap, VecDeque};

use ndarray::s;

use super::window::{TrackWindows, WindowArrays};

struct Held<F> {
    frame: F,
    index: u64,
    tracks: Vec<u64>,
}

/// A frame whose `K` later frames are in (or whose stream ended), with the window of
/// each of its tracks.
pub struct Ready<F> {
    /// The held frame.
    pub frame: F,
    /// Per track of the frame (in the order given to [`Lookahead::push`]), the window
    /// whose newest step is the frame's result.
    pub windows: Vec<(u64, WindowArrays)>,
    /// Tracks no held frame needs any more since they were dropped: their per-track
    /// state (smoothing) may go.
    pub forget: Vec<u64>,
}

/// The frames waiting for `K` later ones (with `K` = 0, every frame is ready at once).
pub struct Lookahead<F> {
    k: usize,
    /// Index of the next frame pushed.
    next: u64,
    held: VecDeque<Held<F>>,
    /// Dropped tracks a held frame still needs: their last window and its frame index.
    gone: BTreeMap<u64, (WindowArrays, u64)>,
}

impl<F> Lookahead<F> {
    /// Holds frames for `k` later frames.
    pub fn new(k: usize) -> Self {
        Lookahead {
            k,
            next: 0,
            held: VecDeque::new(),
            gone: BTreeMap::new(),
        }
    }

    /// `K`.
    pub fn lookahead(&self) -> usize {
        self.k
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// No frame held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Adds the frame just pushed into `TrackWindows` with its faces' `tracks`, and the
    /// tracks that push dropped with their last windows
    /// ([`TrackWindows::push_frame_keeping`]). Returns the dropped tracks no held frame
    /// needs (to forget now).
    pub fn push(
        &mut self,
        frame: F,
        tracks: Vec<u64>,
        dropped: Vec<(u64, WindowArrays)>,
    ) -> Vec<u64> {
        let index = self.next;
        self.next += 1;
        let mut forget = Vec::new();
        for (id, w) in dropped {
            if self.held.iter().any(|h| h.tracks.contains(&id)) {
                // Its last window ended at the previous frame.
                self.gone.insert(id, (w, index.saturating_sub(1)));
            } else {
                forget.push(id);
            }
        }
        self.held.push_back(Held {
            frame,
            index,
            tracks,
        });
        forget
    }

    /// The oldest held frame once `K` later frames are in.
    pub fn pop_ready(&mut self, windows: &TrackWindows) -> Option<Ready<F>> {
        let last = self.next.checked_sub(1)?;
        let front = self.held.front()?;
        (front.index + self.k as u64 <= last).then(|| self.pop(windows))?
    }

    /// End of stream: every held frame, oldest first, with the context that exists.
    pub fn drain(&mut self, windows: &TrackWindows) -> Vec<Ready<F>> {
        let mut out = Vec::with_capacity(self.held.len());
        while let Some(r) = self.pop(windows) {
            out.push(r);
        }
        out
    }

    /// Forgets every held frame and dropped track (flush, seek).
    pub fn clear(&mut self) {
        self.held.clear();
        self.gone.clear();
        self.next = 0;
    }

    fn pop(&mut self, windows: &TrackWindows) -> Option<Ready<F>> {
        let h = self.held.pop_front()?;
        let last = self.next.saturating_sub(1);
        let end = h.index + self.k as u64;
        let windows = h
            .tracks
            .iter()
            .filter_map(|&id| {
                let (w, at) = match windows.arrays(id) {
                    Some(w) => (w, last),
                    None => {
                        let (w, at) = self.gone.get(&id)?;
                        (w.clone(), *at)
                    }
                };
                Some((id, shift_back(w, end.saturating_sub(at) as usize)))
            })
            .collect();
        let forget: Vec<u64> = self
            .gone
            .keys()
            .copied()
            .filter(|id| !self.held.iter().any(|h| h.tracks.contains(id)))
            .collect();
        for id in &forget {
            self.gone.remove(id);
        }
        Some(Ready {
            frame: h.frame,
            windows,
            forget,
        })
    }
}

/// The window `n` frames later with nothing known after its end: rows move `n` up, the
/// last `n` rows become zeros with masks 0.
fn shift_back(mut w: WindowArrays, n: usize) -> WindowArrays {
    if n == 0 {
        return w;
    }
    let t = w.visual_mask.len();
    let n = n.min(t);
    let keep = t - n;
    if keep > 0 {
        let v = w.visual.slice(s![n.., ..]).to_owned();
        w.visual.slice_mut(s![..keep, ..]).assign(&v);
        let a = w.audio.slice(s![n.., ..]).to_owned();
        w.audio.slice_mut(s![..keep, ..]).assign(&a);
        let vm = w.visual_mask.slice(s![n..]).to_owned();
        w.visual_mask.slice_mut(s![..keep]).assign(&vm);
        let am = w.audio_mask.slice(s![n..]).to_owned();
        w.audio_mask.slice_mut(s![..keep]).assign(&am);
    }
    w.visual.slice_mut(s![keep.., ..]).fill(0.0);
    w.audio.slice_mut(s![keep.., ..]).fill(0.0);
    w.visual_mask.slice_mut(s![keep..]).fill(0.0);
    w.audio_mask.slice_mut(s![keep..]).fill(0.0);
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::WindowConfig;

    fn tracks() -> TrackWindows {
        TrackWindows::new(WindowConfig {
            frames: 4,
            visual_dim: 1,
            audio_dim: 1,
            drop_after: 1,
        })
        .unwrap()
    }

    /// Pushes frame `i` (visual value i + 1 for each track in `ids`, audio -(i + 1)).
    fn push(w: &mut TrackWindows, la: &mut Lookahead<usize>, i: usize, ids: &[u64]) -> Vec<u64> {
        let x = [i as f32 + 1.0];
        let a = [-(i as f32) - 1.0];
        let faces: Vec<(u64, Option<&[f32]>)> = ids.iter().map(|&id| (id, Some(&x[..]))).collect();
        let dropped = w.push_frame_keeping(&faces, Some((&a[..], 1.0))).unwrap();
        la.push(i, ids.to_vec(), dropped)
    }

    #[test]
    fn without_lookahead_every_frame_is_ready_at_once_with_its_own_window() {
        let (mut w, mut la) = (tracks(), Lookahead::new(0));
        for i in 0..3 {
            push(&mut w, &mut la, i, &[7]);
            let r = la.pop_ready(&w).unwrap();
            assert_eq!(r.frame, i);
            assert_eq!(r.windows[0].1, w.arrays(7).unwrap());
            assert!(la.pop_ready(&w).is_none());
        }
    }

    #[test]
    fn frames_wait_for_k_later_ones_and_drain_padded() {
        let (mut w, mut la) = (tracks(), Lookahead::new(2));
        push(&mut w, &mut la, 0, &[1]);
        push(&mut w, &mut la, 1, &[1]);
        assert!(
            la.pop_ready(&w).is_none(),
            "frame 0 waits for frames 1 and 2"
        );
        push(&mut w, &mut la, 2, &[1]);
        let r = la.pop_ready(&w).unwrap();
        // Frame 0's window ends at frame 2: [pad, 1, 2, 3].
        assert_eq!(r.frame, 0);
        assert_eq!(
            r.windows[0].1.visual.column(0).to_vec(),
            vec![0., 1., 2., 3.]
        );
        assert_eq!(r.windows[0].1.visual_mask.to_vec(), vec![0., 1., 1., 1.]);
        // EOS after frame 2: frames 1 and 2, padded past frame 2.
        let rest = la.drain(&w);
        assert_eq!(rest.iter().map(|r| r.frame).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(
            rest[0].windows[0].1.visual.column(0).to_vec(),
            vec![1., 2., 3., 0.]
        );
        assert_eq!(
            rest[1].windows[0].1.visual.column(0).to_vec(),
            vec![2., 3., 0., 0.]
        );
        assert_eq!(
            rest[1].windows[0].1.audio.column(0).to_vec(),
            vec![-2., -3., 0., 0.]
        );
        assert_eq!(
            rest[1].windows[0].1.audio_mask.to_vec(),
            vec![1., 1., 0., 0.]
        );
        assert!(la.is_empty());
    }

    #[test]
    fn a_track_dropped_while_frames_wait_keeps_its_last_window_padded() {
        // drop_after 1: absent in frames 1 and 2 → dropped by frame 2.
        let (mut w, mut la) = (tracks(), Lookahead::new(3));
        push(&mut w, &mut la, 0, &[5, 6]);
        push(&mut w, &mut la, 1, &[6]);
        let forget = push(&mut w, &mut la, 2, &[6]);
        assert!(forget.is_empty(), "frame 0 still needs track 5");
        push(&mut w, &mut la, 3, &[6]);
        let r = la.pop_ready(&w).unwrap();
        assert_eq!(r.frame, 0);
        let (id, w5) = &r.windows[0];
        assert_eq!(*id, 5);
        // Track 5's last window ended at frame 1 ([pad, pad, 1, absent]); frame 0's
        // window ends at frame 3: two rows later, padded.
        assert_eq!(w5.visual.column(0).to_vec(), vec![1., 0., 0., 0.]);
        assert_eq!(w5.visual_mask.to_vec(), vec![1., 0., 0., 0.]);
        assert_eq!(w5.audio_mask.to_vec(), vec![1., 1., 0., 0.]);
        assert_eq!(r.forget, vec![5]);
        assert_eq!(r.windows[1].1, w.arrays(6).unwrap());
        // A dropped track no held frame needs is forgotten at once.
        let (mut w, mut la) = (tracks(), Lookahead::new(0));
        push(&mut w, &mut la, 0, &[9]);
        la.pop_ready(&w).unwrap();
        push(&mut w, &mut la, 1, &[]);
        la.pop_ready(&w).unwrap();
        assert_eq!(push(&mut w, &mut la, 2, &[]), vec![9]);
    }
}
