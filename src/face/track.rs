// SPDX-License-Identifier: MPL-2.0
//! A small multi-face tracker: stable ids from frame to frame.
//!
//! Association is greedy by cost over (track, detection) pairs, where the cost mixes
//! `1 - IoU` with the centre distance relative to the face size, using each track's
//! predicted box (held or constant-velocity). Unmatched detections open new tracks with
//! fresh ids; a track not matched for more than `max_age` frames is dropped.

use super::nms::iou;
use super::{BBox, Detection};

/// How a track's box moves on frames where it is not observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Motion {
    /// Keep the last observed box.
    Hold,
    /// Move the box's centre by its estimated per-frame velocity (size held).
    #[default]
    ConstantVelocity,
}

/// Tracker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Frames a track may go unobserved before it is dropped (its face then gets a new id
    /// when it returns).
    pub max_age: u32,
    /// A pair can match when its IoU is at least this …
    pub min_iou: f32,
    /// … or when the centre distance is at most this many mean box sizes.
    pub max_centre_distance: f32,
    /// How unobserved tracks move.
    pub motion: Motion,
    /// Weight of the new velocity measurement in the running estimate, `0..=1`.
    pub velocity_smoothing: f32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_age: 15,
            min_iou: 0.1,
            max_centre_distance: 0.5,
            motion: Motion::ConstantVelocity,
            velocity_smoothing: 0.5,
        }
    }
}

/// A face with its track id, as the tracker reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedFace {
    /// Stable identity (starts at 1 after construction or [`Tracker::reset`]).
    pub track_id: u64,
    /// The detection (frame pixels); on predicted frames, the last detection with its
    /// box (and landmarks) moved to the predicted position.
    pub detection: Detection,
    /// Frames since the face was last observed by the detector (0 = observed now).
    pub frames_since_seen: u32,
    /// Number of detections matched to this track so far.
    pub hits: u32,
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    last: Detection,
    /// Predicted box for the current frame.
    bbox: BBox,
    /// Centre velocity in pixels per frame.
    velocity: [f32; 2],
    frames_since_seen: u32,
    hits: u32,
    /// Matched (or opened) by the last `update`.
    seen_at_last_update: bool,
}

impl Track {
    fn advance(&mut self, motion: Motion) {
        self.frames_since_seen = self.frames_since_seen.saturating_add(1);
        if motion == Motion::ConstantVelocity {
            let [vx, vy] = self.velocity;
            self.bbox = BBox::new(
                self.bbox.x0 + vx,
                self.bbox.y0 + vy,
                self.bbox.x1 + vx,
                self.bbox.y1 + vy,
            );
        }
    }

    fn report(&self) -> TrackedFace {
        let mut detection = self.last.clone();
        let [lx, ly] = self.last.bbox.centre();
        let [cx, cy] = self.bbox.centre();
        let (dx, dy) = (cx - lx, cy - ly);
        detection.bbox = self.bbox;
        for p in &mut detection.keypoints {
            p[0] += dx;
            p[1] += dy;
        }
        TrackedFace {
            track_id: self.id,
            detection,
            frames_since_seen: self.frames_since_seen,
            hits: self.hits,
        }
    }
}

/// Assigns stable ids to detections across frames.
#[derive(Debug, Clone)]
pub struct Tracker {
    config: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// The settings.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Forgets every track; ids restart at 1 (e.g. on a flush or a new stream).
    pub fn reset(&mut self) {
        self.tracks.clear();
        self.next_id = 1;
    }

    /// Number of live tracks (observed now or recently).
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Whether there are no live tracks.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// A frame where the detector ran: advances every track by one frame, matches the
    /// detections (frame pixels) to tracks, opens tracks for the unmatched ones and drops
    /// tracks unobserved for more than `max_age` frames.
    ///
    /// Returns one [`TrackedFace`] per valid detection, in the order given (detections
    /// with an invalid box or a non-finite score are ignored).
    pub fn update(&mut self, detections: &[Detection]) -> Vec<TrackedFace> {
        let motion = self.config.motion;
        for t in &mut self.tracks {
            t.advance(motion);
            t.seen_at_last_update = false;
        }

        // candidate pairs with their cost
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (di, d) in detections.iter().enumerate() {
                if !valid(d) {
                    continue;
                }
                let overlap = iou(&t.bbox, &d.bbox);
                let [tx, ty] = t.bbox.centre();
                let [dx, dy] = d.bbox.centre();
                let size =
                    (t.bbox.width() + t.bbox.height() + d.bbox.width() + d.bbox.height()) / 4.0;
                let dist = (tx - dx).hypot(ty - dy) / size.max(1e-6);
                if overlap >= self.config.min_iou || dist <= self.config.max_centre_distance {
                    let cost = (1.0 - overlap) + dist;
                    if cost.is_finite() {
                        pairs.push((cost, ti, di));
                    }
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));

        let mut track_of: Vec<Option<usize>> = vec![None; detections.len()];
        let mut track_used = vec![false; self.tracks.len()];
        for (_, ti, di) in pairs {
            if track_used[ti] || track_of[di].is_some() {
                continue;
            }
            track_used[ti] = true;
            track_of[di] = Some(ti);
        }

        let alpha = self.config.velocity_smoothing.clamp(0.0, 1.0);
        let mut out = Vec::with_capacity(detections.len());
        for (di, d) in detections.iter().enumerate() {
            if !valid(d) {
                continue;
            }
            let ti = match track_of[di] {
                Some(ti) => {
                    let t = &mut self.tracks[ti];
                    let [ox, oy] = t.last.bbox.centre();
                    let [nx, ny] = d.bbox.centre();
                    let frames = t.frames_since_seen.max(1) as f32;
                    let v = [(nx - ox) / frames, (ny - oy) / frames];
                    t.velocity = if t.hits <= 1 {
                        v
                    } else {
                        [
                            alpha * v[0] + (1.0 - alpha) * t.velocity[0],
                            alpha * v[1] + (1.0 - alpha) * t.velocity[1],
                        ]
                    };
                    t.hits = t.hits.saturating_add(1);
                    t.last = d.clone();
                    t.bbox = d.bbox;
                    t.frames_since_seen = 0;
                    t.seen_at_last_update = true;
                    ti
                }
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        last: d.clone(),
                        bbox: d.bbox,
                        velocity: [0.0, 0.0],
                        frames_since_seen: 0,
                        hits: 1,
                        seen_at_last_update: true,
                    });
                    self.next_id += 1;
                    self.tracks.len() - 1
                }
            };
            out.push(self.tracks[ti].report());
        }
        let max_age = self.config.max_age;
        self.tracks.retain(|t| t.frames_since_seen <= max_age);
        out
    }

    /// A frame where the detector did not run: advances every track by one frame and
    /// returns the predicted faces of the tracks observed at the last detection run, by
    /// track id. Tracks are not dropped here (only [`update`](Self::update) drops them).
    pub fn predict(&mut self) -> Vec<TrackedFace> {
        let motion = self.config.motion;
        let mut out = Vec::new();
        for t in &mut self.tracks {
            t.advance(motion);
            if t.seen_at_last_update {
                out.push(t.report());
            }
        }
        out.sort_by_key(|f| f.track_id);
        out
    }
}

fn valid(d: &Detection) -> bool {
    d.bbox.is_valid() && d.score.is_finite()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(cx: f32, cy: f32, size: f32) -> Detection {
        Detection {
            bbox: BBox::from_centre(cx, cy, size, size),
            keypoints: vec![[cx - 10.0, cy], [cx + 10.0, cy]],
            score: 0.9,
        }
    }

    fn ids(faces: &[TrackedFace]) -> Vec<u64> {
        faces.iter().map(|f| f.track_id).collect()
    }

    #[test]
    fn stable_ids_and_new_faces() {
        let mut t = Tracker::new(TrackerConfig::default());
        assert_eq!(ids(&t.update(&[face(100.0, 100.0, 80.0)])), [1]);
        for k in 1..20 {
            let x = 100.0 + 3.0 * k as f32;
            let out = t.update(&[face(400.0, 100.0, 80.0), face(x, 100.0, 80.0)]);
            // the second face appears at k = 1 and keeps id 2
            assert_eq!(ids(&out), [2, 1]);
        }
        assert!(t.update(&[]).is_empty());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn crossing_faces_keep_ids() {
        let mut t = Tracker::new(TrackerConfig::default());
        // A moves right, B moves left, 20 px apart vertically: at the crossing their
        // boxes overlap with IoU 0.6; constant velocity keeps them apart.
        let mut first = None;
        for k in 0..60 {
            let a = face(100.0 + 4.0 * k as f32, 200.0, 80.0);
            let b = face(340.0 - 4.0 * k as f32, 220.0, 80.0);
            // the detector's order varies
            let (dets, swap) = if k % 2 == 0 {
                (vec![a, b], false)
            } else {
                (vec![b, a], true)
            };
            let out = t.update(&dets);
            let got = if swap {
                (out[1].track_id, out[0].track_id)
            } else {
                (out[0].track_id, out[1].track_id)
            };
            assert_eq!(*first.get_or_insert(got), got, "frame {k}");
        }
    }

    #[test]
    fn slow_crossing_keeps_ids_with_hold() {
        let mut t = Tracker::new(TrackerConfig {
            motion: Motion::Hold,
            ..TrackerConfig::default()
        });
        let mut first = None;
        for k in 0..120 {
            let a = face(100.0 + 2.0 * k as f32, 200.0, 80.0);
            let b = face(340.0 - 2.0 * k as f32, 260.0, 80.0);
            let out = t.update(&[a, b]);
            let got = (out[0].track_id, out[1].track_id);
            assert_eq!(*first.get_or_insert(got), got, "frame {k}");
        }
    }

    #[test]
    fn leaving_face_gets_new_id_after_max_age() {
        let cfg = TrackerConfig {
            max_age: 5,
            ..TrackerConfig::default()
        };
        let mut t = Tracker::new(cfg);
        let f = face(200.0, 200.0, 100.0);
        for _ in 0..10 {
            assert_eq!(ids(&t.update(std::slice::from_ref(&f))), [1]);
        }
        // gone for max_age frames: same id when back
        for _ in 0..5 {
            assert!(t.update(&[]).is_empty());
        }
        assert_eq!(ids(&t.update(std::slice::from_ref(&f))), [1]);
        // gone for max_age + 1 frames: new id
        for _ in 0..6 {
            t.update(&[]);
        }
        assert!(t.is_empty());
        assert_eq!(ids(&t.update(std::slice::from_ref(&f))), [2]);
        t.reset();
        assert_eq!(ids(&t.update(&[f])), [1]);
    }

    #[test]
    fn predict_between_detections() {
        let mut t = Tracker::new(TrackerConfig::default());
        for k in 0..5 {
            t.update(&[face(100.0 + 10.0 * k as f32, 100.0, 50.0)]);
        }
        // last seen at x = 140, moving 10 px / frame
        let p = t.predict();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].frames_since_seen, 1);
        let [cx, _] = p[0].detection.bbox.centre();
        assert!((cx - 150.0).abs() < 1e-3, "{cx}");
        assert!((p[0].detection.keypoints[0][0] - 140.0).abs() < 1e-3);
        let p = t.predict();
        assert!((p[0].detection.bbox.centre()[0] - 160.0).abs() < 1e-3);
        // next detection after 3 frames at the extrapolated place: same id
        let out = t.update(&[face(170.0, 100.0, 50.0)]);
        assert_eq!(ids(&out), [1]);
        assert_eq!(out[0].frames_since_seen, 0);
        // hold: boxes do not move
        let mut h = Tracker::new(TrackerConfig {
            motion: Motion::Hold,
            ..TrackerConfig::default()
        });
        h.update(&[face(100.0, 100.0, 50.0)]);
        h.update(&[face(110.0, 100.0, 50.0)]);
        assert!((h.predict()[0].detection.bbox.centre()[0] - 110.0).abs() < 1e-3);
        // tracks not seen at the last update are not reported
        h.update(&[]);
        assert!(h.predict().is_empty());
    }

    #[test]
    fn invalid_detections_ignored() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut bad = face(10.0, 10.0, 10.0);
        bad.score = f32::NAN;
        let mut empty = face(10.0, 10.0, 10.0);
        empty.bbox.x1 = empty.bbox.x0;
        assert!(t.update(&[bad, empty]).is_empty());
        assert!(t.is_empty());
    }
}
