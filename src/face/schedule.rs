// SPDX-License-Identifier: MPL-2.0
//! When to run the face detector (`facecrop detect-interval=0`, adaptive): the tracker
//! carries faces between detector runs, and the detector runs again only when the
//! picture says the tracked boxes may be wrong.
//!
//! A grey thumbnail of every frame ([`Thumbnail`]; `THUMB_W`×`THUMB_H` cells, each the
//! mean of a grid of samples) is compared with the one of the last detector run:
//! - **scene change**: the mean absolute difference over the whole picture is above
//!   [`ScheduleConfig::scene_change`] (a cut, a camera move, someone walking in — new faces
//!   appear where the picture changes);
//! - **face change**: in the cells of any tracked face (its box grown by a quarter), the
//!   mean absolute difference is above [`ScheduleConfig::face_change`] (the face moved,
//!   turned or left: its box is stale);
//! - **local change**: in any block of `BLOCK`×`BLOCK` cells (a ninth of the picture's
//!   height), the mean absolute difference is above [`ScheduleConfig::local_change`] —
//!   someone walking in at the border changes a small part of the picture a lot, too
//!   little for the scene-change mean;
//! - **age**: [`ScheduleConfig::max_interval`] frames since the last run.
//!
//! Differences are on 0..255 grey levels.

use super::{BBox, Frame};

/// Thumbnail width in cells.
pub const THUMB_W: usize = 48;
/// Thumbnail height in cells.
pub const THUMB_H: usize = 27;
/// Samples per cell side.
const SAMPLES: usize = 3;
/// Cells per block side for the local-change rule.
const BLOCK: usize = 3;

/// Settings of [`DetectSchedule`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleConfig {
    /// Run the detector at least every this many frames.
    pub max_interval: u32,
    /// Mean absolute grey difference over the picture that counts as a scene change.
    pub scene_change: f32,
    /// Mean absolute grey difference within a tracked face that makes its box stale.
    pub face_change: f32,
    /// Mean absolute grey difference within any block of the picture that counts as
    /// something new (a face walking in).
    pub local_change: f32,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            max_interval: 15,
            scene_change: 8.0,
            face_change: 4.0,
            local_change: 24.0,
        }
    }
}

/// A small grey picture of a frame, for cheap frame-to-frame comparisons.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    cells: Vec<f32>,
    /// Frame size it was taken from.
    width: usize,
    height: usize,
}

impl Thumbnail {
    /// The thumbnail of `frame`: per cell, the mean BT.601 luma of `SAMPLES`² pixels
    /// spread over the cell.
    pub fn of(frame: &Frame<'_>) -> Self {
        let (w, h) = (frame.width(), frame.height());
        let mut cells = Vec::with_capacity(THUMB_W * THUMB_H);
        for cy in 0..THUMB_H {
            for cx in 0..THUMB_W {
                let mut sum = 0.0f32;
                for sy in 0..SAMPLES {
                    for sx in 0..SAMPLES {
                        let x = ((cx * SAMPLES + sx) * 2 + 1) * w / (THUMB_W * SAMPLES * 2);
                        let y = ((cy * SAMPLES + sy) * 2 + 1) * h / (THUMB_H * SAMPLES * 2);
                        let [r, g, b] = frame.rgb(x.min(w - 1), y.min(h - 1)).unwrap_or([0; 3]);
                        sum += 0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32;
                    }
                }
                cells.push(sum / (SAMPLES * SAMPLES) as f32);
            }
        }
        Thumbnail {
            cells,
            width: w,
            height: h,
        }
    }

    /// Mean absolute difference to `other` over the cells `[x0, x1) × [y0, y1)`.
    fn diff(&self, other: &Thumbnail, x0: usize, x1: usize, y0: usize, y1: usize) -> f32 {
        let mut sum = 0.0f32;
        let mut n = 0usize;
        for y in y0..y1 {
            for x in x0..x1 {
                let i = y * THUMB_W + x;
                sum += (self.cells[i] - other.cells[i]).abs();
                n += 1;
            }
        }
        if n == 0 { 0.0 } else { sum / n as f32 }
    }

    /// Mean absolute difference over the whole picture.
    pub fn scene_diff(&self, other: &Thumbnail) -> f32 {
        self.diff(other, 0, THUMB_W, 0, THUMB_H)
    }

    /// The largest mean absolute difference over the `BLOCK`×`BLOCK` blocks of cells
    /// (non-overlapping, the picture tiled).
    pub fn local_diff(&self, other: &Thumbnail) -> f32 {
        let mut worst = 0.0f32;
        for y in (0..THUMB_H).step_by(BLOCK) {
            for x in (0..THUMB_W).step_by(BLOCK) {
                let d = self.diff(
                    other,
                    x,
                    (x + BLOCK).min(THUMB_W),
                    y,
                    (y + BLOCK).min(THUMB_H),
                );
                worst = worst.max(d);
            }
        }
        worst
    }

    /// Mean absolute difference over the cells of `b` (frame pixels) grown by a quarter
    /// of its size on each side.
    pub fn box_diff(&self, other: &Thumbnail, b: &BBox) -> f32 {
        let (bw, bh) = (b.x1 - b.x0, b.y1 - b.y0);
        let cell = |v: f32, size: usize, cells: usize| -> usize {
            ((v.max(0.0) * cells as f32 / size.max(1) as f32) as usize).min(cells)
        };
        let x0 = cell(b.x0 - bw / 4.0, self.width, THUMB_W);
        let x1 = cell(b.x1 + bw / 4.0, self.width, THUMB_W)
            .max(x0 + 1)
            .min(THUMB_W);
        let y0 = cell(b.y0 - bh / 4.0, self.height, THUMB_H);
        let y1 = cell(b.y1 + bh / 4.0, self.height, THUMB_H)
            .max(y0 + 1)
            .min(THUMB_H);
        self.diff(other, x0.min(x1 - 1), x1, y0.min(y1 - 1), y1)
    }
}

/// Why the detector runs on a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectReason {
    /// First frame, or after a reset.
    Start,
    /// `max_interval` frames since the last run.
    Age,
    /// The picture changed.
    Scene,
    /// Part of the picture changed a lot (something new came in).
    Local,
    /// A tracked face's region changed.
    Face,
}

/// Decides, frame by frame, whether the detector runs.
#[derive(Debug, Clone)]
pub struct DetectSchedule {
    config: ScheduleConfig,
    reference: Option<Thumbnail>,
    since: u32,
}

impl DetectSchedule {
    /// A schedule that detects on the first frame.
    pub fn new(config: ScheduleConfig) -> Self {
        DetectSchedule {
            config,
            reference: None,
            since: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// Forgets the reference (flush, new stream): the next frame detects.
    pub fn reset(&mut self) {
        self.reference = None;
        self.since = 0;
    }

    /// Whether the detector runs on the frame of `thumb`, with `tracked` the boxes the
    /// tracker carries (frame pixels). When it returns a reason, `thumb` becomes the
    /// reference of the following frames.
    pub fn decide(&mut self, thumb: Thumbnail, tracked: &[BBox]) -> Option<DetectReason> {
        let reason = match &self.reference {
            None => Some(DetectReason::Start),
            Some(r) if r.width != thumb.width || r.height != thumb.height => {
                Some(DetectReason::Start)
            }
            Some(_) if self.since + 1 >= self.config.max_interval.max(1) => Some(DetectReason::Age),
            Some(r) if thumb.scene_diff(r) > self.config.scene_change => Some(DetectReason::Scene),
            Some(r)
                if tracked
                    .iter()
                    .any(|b| thumb.box_diff(r, b) > self.config.face_change) =>
            {
                Some(DetectReason::Face)
            }
            Some(r) if thumb.local_diff(r) > self.config.local_change => Some(DetectReason::Local),
            Some(_) => None,
        };
        match reason {
            Some(_) => {
                self.reference = Some(thumb);
                self.since = 0;
            }
            None => self.since += 1,
        }
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::PixelFormat;

    /// A 320×180 RGB frame: grey 100 with a bright square of side 40 at (x, y).
    fn frame(x: usize, y: usize) -> Vec<u8> {
        let (w, h) = (320, 180);
        let mut d = vec![100u8; w * h * 3];
        for yy in y..(y + 40).min(h) {
            for xx in x..(x + 40).min(w) {
                d[(yy * w + xx) * 3..(yy * w + xx) * 3 + 3].copy_from_slice(&[220, 220, 220]);
            }
        }
        d
    }

    fn thumb(data: &[u8]) -> Thumbnail {
        Thumbnail::of(&Frame::packed(data, 320, 180, PixelFormat::Rgb).unwrap())
    }

    fn sq(x: f32, y: f32) -> BBox {
        BBox {
            x0: x,
            y0: y,
            x1: x + 40.0,
            y1: y + 40.0,
        }
    }

    #[test]
    fn a_still_picture_detects_only_by_age() {
        let mut s = DetectSchedule::new(ScheduleConfig::default());
        let f = frame(100, 60);
        let runs: Vec<_> = (0..31)
            .map(|_| s.decide(thumb(&f), &[sq(100.0, 60.0)]))
            .collect();
        assert_eq!(runs[0], Some(DetectReason::Start));
        assert_eq!(runs[15], Some(DetectReason::Age));
        assert_eq!(runs[30], Some(DetectReason::Age));
        assert_eq!(runs.iter().filter(|r| r.is_some()).count(), 3);
    }

    #[test]
    fn a_moving_face_or_a_cut_detects_at_once() {
        let mut s = DetectSchedule::new(ScheduleConfig::default());
        s.decide(thumb(&frame(100, 60)), &[]);
        // The square moves 12 px: its region changes, the picture as a whole little.
        let moved = thumb(&frame(112, 60));
        assert!(moved.scene_diff(&thumb(&frame(100, 60))) < 8.0);
        assert_eq!(
            s.decide(moved, &[sq(100.0, 60.0)]),
            Some(DetectReason::Face)
        );
        // Flicker (every pixel 2 grey levels brighter) does not.
        let mut flicker = frame(112, 60);
        flicker.iter_mut().for_each(|v| *v += 2);
        assert_eq!(s.decide(thumb(&flicker), &[sq(112.0, 60.0)]), None);
        // Something new at the border, away from the tracked face: a local change.
        let mut entering = frame(112, 60);
        for yy in 60..100 {
            for xx in 0..24 {
                entering[(yy * 320 + xx) * 3..(yy * 320 + xx) * 3 + 3].copy_from_slice(&[0, 0, 0]);
            }
        }
        let t = thumb(&entering);
        assert!(t.scene_diff(&thumb(&frame(112, 60))) < 8.0);
        assert_eq!(s.decide(t, &[sq(112.0, 60.0)]), Some(DetectReason::Local));
        // A cut: a new picture.
        let mut cut = frame(0, 0);
        cut.iter_mut().for_each(|v| *v = v.wrapping_add(60));
        assert_eq!(s.decide(thumb(&cut), &[]), Some(DetectReason::Scene));
        // A new frame size restarts.
        let small = vec![100u8; 160 * 90 * 3];
        let t = Thumbnail::of(&Frame::packed(&small, 160, 90, PixelFormat::Rgb).unwrap());
        assert_eq!(s.decide(t, &[]), Some(DetectReason::Start));
        s.reset();
        assert_eq!(
            s.decide(thumb(&frame(0, 0)), &[]),
            Some(DetectReason::Start)
        );
    }
}
