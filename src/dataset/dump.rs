// SPDX-License-Identifier: MPL-2.0
//! Per-track dumps of what a windowed fusion model read, frame by frame: `avfuse
//! dump-location`, the way `affect-train extract` gets training features through the
//! same pipeline as inference.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{FeatureFile, FeatureMetadata};
use crate::timeline::TrackWindows;

/// For every track, the newest row of its window (what the model read for that frame)
/// for every frame since the segment start; written as one [`FeatureFile`] per track.
#[derive(Debug, Clone)]
pub struct TrackDump {
    template: String,
    meta: FeatureMetadata,
    visual_dim: usize,
    audio_dim: usize,
    /// Frames recorded so far.
    frames: usize,
    files: BTreeMap<u64, FeatureFile>,
    written: bool,
}

impl TrackDump {
    /// The marker of the track id in the path template.
    pub const TRACK_MARK: &'static str = "%u";

    /// A dump to files named by `template` (with [`Self::TRACK_MARK`] for the track id);
    /// `meta` goes into every file (its `track` set per file).
    pub fn new(
        template: &str,
        meta: FeatureMetadata,
        visual_dim: usize,
        audio_dim: usize,
    ) -> Result<Self, String> {
        if !template.contains(Self::TRACK_MARK) {
            return Err(format!(
                "`{template}` has no {}: the template needs the track id, e.g. dump/track{}.safetensors",
                Self::TRACK_MARK,
                Self::TRACK_MARK
            ));
        }
        Ok(TrackDump {
            template: template.to_owned(),
            meta,
            visual_dim,
            audio_dim,
            frames: 0,
            files: BTreeMap::new(),
            written: false,
        })
    }

    /// Frames recorded since the last [`TrackDump::clear`].
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Whether [`TrackDump::write`] ran since the last clear.
    pub fn is_written(&self) -> bool {
        self.written
    }

    /// Records one frame: every track the windows hold gets its newest slot (`active` 1)
    /// with its box from `boxes` (zeros when absent), every other track seen since the
    /// segment start a zero row (masks 0, `active` 0). A track seen first now gets zero
    /// rows for the frames before.
    pub fn record(&mut self, tracks: &TrackWindows, boxes: &[(u64, [f32; 4])], pts: Option<u64>) {
        for id in tracks.track_ids() {
            if !self.files.contains_key(&id) {
                let mut meta = self.meta.clone();
                meta.track = id.to_string();
                let mut f = FeatureFile::new(self.visual_dim, self.audio_dim, meta);
                for _ in 0..self.frames {
                    f.push_absent(None);
                }
                self.files.insert(id, f);
            }
        }
        for (id, file) in self.files.iter_mut() {
            let Some(w) = tracks.arrays(*id) else {
                file.push_absent(pts);
                continue;
            };
            let last = w.visual_mask.len() - 1;
            let bbox = boxes.iter().find(|b| b.0 == *id).map_or([0.0; 4], |b| b.1);
            let v = w.visual.row(last).to_vec();
            let a = w.audio.row(last).to_vec();
            file.push(
                Some(&v),
                w.visual_mask[last],
                Some(&a),
                w.audio_mask[last],
                pts,
                bbox,
                true,
            );
        }
        self.frames += 1;
    }

    /// Forgets the rows (a new segment starts).
    pub fn clear(&mut self) {
        self.files.clear();
        self.frames = 0;
        self.written = false;
    }

    /// Writes every track's file (atomically) with `fps` in its metadata; the first error
    /// is returned after all were tried. Returns the number of files.
    pub fn write(&mut self, fps: f64) -> Result<usize, String> {
        self.written = true;
        let mut first_err = None;
        for (id, f) in self.files.iter_mut() {
            f.meta.fps = fps;
            let path = PathBuf::from(self.template.replace(Self::TRACK_MARK, &id.to_string()));
            if let Err(e) = f.write(&path)
                && first_err.is_none()
            {
                first_err = Some(e.to_string());
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(self.files.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::WindowConfig;

    #[test]
    fn rows_per_track_with_absent_frames_and_files() {
        let dir = std::env::temp_dir().join(format!("affect-dump-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(TrackDump::new("x.safetensors", FeatureMetadata::default(), 2, 1).is_err());
        let template = dir.join("t%u.safetensors");
        let mut dump =
            TrackDump::new(template.to_str().unwrap(), FeatureMetadata::default(), 2, 1).unwrap();
        let mut tracks = TrackWindows::new(WindowConfig {
            frames: 2,
            visual_dim: 2,
            audio_dim: 1,
            drop_after: 15,
        })
        .unwrap();
        // Frame 0: no track. Frame 1: track 7 appears. Frame 2: track 7 again.
        tracks.push_frame(&[], Some((&[0.5][..], 1.0))).unwrap();
        dump.record(&tracks, &[], Some(0));
        for (k, pts) in [(1.0f32, 40), (2.0, 80)] {
            tracks
                .push_frame(&[(7, Some(&[k, -k][..]))], Some((&[k * 10.0][..], 1.0)))
                .unwrap();
            dump.record(&tracks, &[(7, [1.0, 2.0, 3.0, 4.0])], Some(pts));
        }
        assert_eq!(dump.frames(), 3);
        assert_eq!(dump.write(25.0).unwrap(), 1);
        assert!(dump.is_written());
        let f = FeatureFile::read(&dir.join("t7.safetensors")).unwrap();
        assert_eq!(f.frames(), 3);
        assert_eq!(f.visual_mask, vec![0.0, 1.0, 1.0]);
        assert_eq!(f.audio_mask, vec![0.0, 1.0, 1.0]);
        assert_eq!(&f.visual[4..6], &[2.0, -2.0]);
        assert_eq!(f.audio[2], 20.0);
        assert_eq!(f.meta.track, "7");
        assert_eq!(f.meta.fps, 25.0);
        dump.clear();
        assert_eq!((dump.frames(), dump.is_written()), (0, false));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
