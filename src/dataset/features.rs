// SPDX-License-Identifier: MPL-2.0
//! The per-subject feature file: what `avfuse` feeds its fusion model, per video frame.
//!
//! Written by `avfuse dump-location=…` (one file per face track) and by
//! `affect-train extract` (one file per annotated subject, `<root>/features/<name>.safetensors`);
//! read by the trainer and `affect-train eval`.
//!
//! # Format
//!
//! A [safetensors](https://huggingface.co/docs/safetensors) file (little-endian,
//! row-major); row `i` of every tensor is video frame `i` of the clip, counted from the
//! start of the stream (segment):
//!
//! | tensor | dtype | shape | meaning |
//! |---|---|---|---|
//! | `visual` | F32 | \[N, Dv\] | the visual vector of the face (zeros where masked) |
//! | `audio` | F32 | \[N, Da\] | the audio vector aligned onto the frame (zeros where masked) |
//! | `visual_mask` | F32 | \[N\] | 1 where `visual` holds a face vector, else 0 |
//! | `audio_mask` | F32 | \[N\] | 1 where `audio` holds an aligned speech vector, else 0 |
//! | `pts` | I64 | \[N\] | the frame's presentation timestamp, ns (-1 if unknown) |
//! | `box` | F32 | \[N, 4\] | face box x, y, width, height in frame pixels; 0 where no face |
//! | `active` | F32 | \[N\] | optional: 1 where `avfuse` kept a window for the track (the face is seen, or absent for at most 15 frames), 0 where it had none; absent = all 1 |
//!
//! `__metadata__` (all strings): `affect.fusion.visual-model`,
//! `affect.fusion.visual-sha256`, `affect.fusion.audio-model`,
//! `affect.fusion.audio-sha256` (the feature models that made the vectors, as a fusion
//! model declares them), `affect.fusion.visual-input` (`features` or `probabilities`),
//! `fps` (frames per second, decimal), `source` (the video), `track` (the face track id,
//! or the subject name). Python:
//!
//! ```python
//! from safetensors.numpy import load_file
//! from safetensors import safe_open
//! t = load_file("features/video1.safetensors")      # dict of numpy arrays
//! meta = safe_open("features/video1.safetensors", "np").metadata()
//! visual, vmask = t["visual"], t["visual_mask"]     # (N, Dv) float32, (N,) float32
//! ```

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::{DataError, write_atomic};
use crate::runtime::AudioMaskKind;

/// Metadata keys.
pub mod keys {
    /// Name of the face-feature model.
    pub const VISUAL_MODEL: &str = "affect.fusion.visual-model";
    /// sha256 of the face-feature model file.
    pub const VISUAL_SHA256: &str = "affect.fusion.visual-sha256";
    /// Name of the audio-feature model.
    pub const AUDIO_MODEL: &str = "affect.fusion.audio-model";
    /// sha256 of the audio-feature model file.
    pub const AUDIO_SHA256: &str = "affect.fusion.audio-sha256";
    /// `features` or `probabilities`.
    pub const VISUAL_INPUT: &str = "affect.fusion.visual-input";
    /// What `audio_mask` holds: `present` (1 where an aligned audio vector exists) or
    /// `speech` (that times the voice-activity probability); absent in older files.
    pub const AUDIO_MASK: &str = "affect.fusion.audio-mask";
    /// Frames per second.
    pub const FPS: &str = "fps";
    /// The source video.
    pub const SOURCE: &str = "source";
    /// Track id or subject name.
    pub const TRACK: &str = "track";
}

/// The `__metadata__` of a feature file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeatureMetadata {
    /// Face-feature model name (`affect.fusion.visual-model`).
    pub visual_model: String,
    /// Its sha256.
    pub visual_sha256: String,
    /// Audio-feature model name.
    pub audio_model: String,
    /// Its sha256.
    pub audio_sha256: String,
    /// `features` or `probabilities`.
    pub visual_input: String,
    /// What `audio_mask` holds: `present` or `speech` (see [`keys::AUDIO_MASK`]); empty
    /// = `present` (files written before the key existed).
    pub audio_mask: String,
    /// Frames per second (0 if unknown).
    pub fps: f64,
    /// The source video.
    pub source: String,
    /// Track id or subject name.
    pub track: String,
}

impl FeatureMetadata {
    /// What the file's `audio_mask` holds ([`keys::AUDIO_MASK`]; empty, in files written
    /// before the key existed, is `present`); an unknown value is an error naming it.
    pub fn audio_mask_kind(&self) -> Result<AudioMaskKind, String> {
        match self.audio_mask.as_str() {
            "" => Ok(AudioMaskKind::Present),
            k => k.parse().map_err(|()| {
                format!(
                    "{}: unknown audio mask `{k}` (present or speech)",
                    keys::AUDIO_MASK
                )
            }),
        }
    }
}

/// Per-frame aligned features of one subject (one face track of one video).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeatureFile {
    /// Visual vector dimension (Dv).
    pub visual_dim: usize,
    /// Audio vector dimension (Da).
    pub audio_dim: usize,
    /// \[N, Dv\].
    pub visual: Vec<f32>,
    /// \[N, Da\].
    pub audio: Vec<f32>,
    /// \[N\].
    pub visual_mask: Vec<f32>,
    /// \[N\].
    pub audio_mask: Vec<f32>,
    /// \[N\], ns, -1 if unknown.
    pub pts: Vec<i64>,
    /// \[N\] x, y, width, height.
    pub boxes: Vec<[f32; 4]>,
    /// \[N\]: 1 where `avfuse` had a window for the track (see the module doc).
    pub active: Vec<f32>,
    /// Metadata.
    pub meta: FeatureMetadata,
}

/// The same safetensors bytes with the JSON header's keys sorted (the `safetensors`
/// crate writes `__metadata__` from a `HashMap`, in a different order on every run), so
/// one feature file is always the same bytes. Tensor offsets are relative to the end of
/// the header and do not change; the header stays padded with spaces to 8 bytes.
fn sorted_header(bytes: Vec<u8>) -> Vec<u8> {
    let Some(n) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
    else {
        return bytes;
    };
    let Some(Ok(header)) = bytes
        .get(8..8 + n)
        .map(serde_json::from_slice::<serde_json::Value>)
    else {
        return bytes;
    };
    // serde_json's maps are ordered by key.
    let Ok(mut text) = serde_json::to_vec(&header) else {
        return bytes;
    };
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl FeatureFile {
    /// An empty file of the given dimensions.
    pub fn new(visual_dim: usize, audio_dim: usize, meta: FeatureMetadata) -> Self {
        FeatureFile {
            visual_dim,
            audio_dim,
            meta,
            ..Default::default()
        }
    }

    /// Number of frames (N).
    pub fn frames(&self) -> usize {
        self.pts.len()
    }

    /// Appends one frame. `visual` / `audio` of the wrong length (or `None`) are stored
    /// as zeros with mask 0, like a non-finite value; masks are clamped to \[0, 1\].
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        visual: Option<&[f32]>,
        visual_mask: f32,
        audio: Option<&[f32]>,
        audio_mask: f32,
        pts: Option<u64>,
        bbox: [f32; 4],
        active: bool,
    ) {
        fn put(out: &mut Vec<f32>, v: Option<&[f32]>, dim: usize, mask: f32) -> f32 {
            match v {
                Some(v) if v.len() == dim && v.iter().all(|x| x.is_finite()) && mask > 0.0 => {
                    out.extend_from_slice(v);
                    mask.min(1.0)
                }
                _ => {
                    out.extend(std::iter::repeat_n(0.0, dim));
                    0.0
                }
            }
        }
        let vm = put(&mut self.visual, visual, self.visual_dim, visual_mask);
        self.visual_mask.push(vm);
        let am = put(&mut self.audio, audio, self.audio_dim, audio_mask);
        self.audio_mask.push(am);
        self.pts
            .push(pts.and_then(|p| i64::try_from(p).ok()).unwrap_or(-1));
        let b = if bbox.iter().all(|x| x.is_finite()) {
            bbox
        } else {
            [0.0; 4]
        };
        self.boxes.push(b);
        self.active.push(if active { 1.0 } else { 0.0 });
    }

    /// Appends a frame where the subject is absent: zeros, masks 0, `active` 0.
    pub fn push_absent(&mut self, pts: Option<u64>) {
        self.push(None, 0.0, None, 0.0, pts, [0.0; 4], false);
    }

    /// Keeps the first `n` frames (no-op if there are fewer).
    pub fn truncate(&mut self, n: usize) {
        if n >= self.frames() {
            return;
        }
        self.visual.truncate(n * self.visual_dim);
        self.audio.truncate(n * self.audio_dim);
        self.visual_mask.truncate(n);
        self.audio_mask.truncate(n);
        self.pts.truncate(n);
        self.boxes.truncate(n);
        self.active.truncate(n);
    }

    /// Row `i` of `visual`.
    pub fn visual_row(&self, i: usize) -> &[f32] {
        &self.visual[i * self.visual_dim..(i + 1) * self.visual_dim]
    }

    /// Row `i` of `audio`.
    pub fn audio_row(&self, i: usize) -> &[f32] {
        &self.audio[i * self.audio_dim..(i + 1) * self.audio_dim]
    }

    /// Checks that every tensor has N rows of the right width and that the masks are in
    /// \[0, 1\] and the vectors finite. `path` names the file in the error.
    pub fn validate(&self, path: &Path) -> Result<(), DataError> {
        let err = |message: String| DataError::Features {
            path: path.to_owned(),
            message,
        };
        let n = self.frames();
        if self.visual_dim == 0 || self.audio_dim == 0 {
            return Err(err(format!(
                "zero feature dimension (visual {}, audio {})",
                self.visual_dim, self.audio_dim
            )));
        }
        let checks = [
            ("visual", self.visual.len(), n * self.visual_dim),
            ("audio", self.audio.len(), n * self.audio_dim),
            ("visual_mask", self.visual_mask.len(), n),
            ("audio_mask", self.audio_mask.len(), n),
            ("box", self.boxes.len(), n),
            ("active", self.active.len(), n),
        ];
        for (name, got, want) in checks {
            if got != want {
                return Err(err(format!(
                    "tensor `{name}` has {got} values, expected {want} for {n} frames"
                )));
            }
        }
        for (name, v) in [
            ("visual", &self.visual),
            ("audio", &self.audio),
            ("visual_mask", &self.visual_mask),
            ("audio_mask", &self.audio_mask),
            ("active", &self.active),
        ] {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(err(format!(
                    "tensor `{name}` holds a non-finite value at {i}"
                )));
            }
        }
        for (name, m) in [
            ("visual_mask", &self.visual_mask),
            ("audio_mask", &self.audio_mask),
            ("active", &self.active),
        ] {
            if let Some(i) = m.iter().position(|x| !(0.0..=1.0).contains(x)) {
                return Err(err(format!(
                    "tensor `{name}` frame {i} is {} (masks are in [0, 1])",
                    m[i]
                )));
            }
        }
        Ok(())
    }

    /// The safetensors bytes. Errors if the file is inconsistent ([`Self::validate`]).
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>, DataError> {
        self.validate(path)?;
        let n = self.frames();
        let err = |e: safetensors::SafeTensorError| DataError::Features {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let boxes: Vec<f32> = self.boxes.iter().flatten().copied().collect();
        let owned: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
            (
                "visual",
                Dtype::F32,
                vec![n, self.visual_dim],
                f32_bytes(&self.visual),
            ),
            (
                "audio",
                Dtype::F32,
                vec![n, self.audio_dim],
                f32_bytes(&self.audio),
            ),
            (
                "visual_mask",
                Dtype::F32,
                vec![n],
                f32_bytes(&self.visual_mask),
            ),
            (
                "audio_mask",
                Dtype::F32,
                vec![n],
                f32_bytes(&self.audio_mask),
            ),
            ("active", Dtype::F32, vec![n], f32_bytes(&self.active)),
            ("box", Dtype::F32, vec![n, 4], f32_bytes(&boxes)),
            (
                "pts",
                Dtype::I64,
                vec![n],
                self.pts.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        ];
        let mut views = Vec::with_capacity(owned.len());
        for (name, dtype, shape, data) in &owned {
            views.push((
                *name,
                TensorView::new(*dtype, shape.clone(), data).map_err(err)?,
            ));
        }
        let m = &self.meta;
        let meta: HashMap<String, String> = [
            (keys::VISUAL_MODEL, m.visual_model.clone()),
            (keys::VISUAL_SHA256, m.visual_sha256.clone()),
            (keys::AUDIO_MODEL, m.audio_model.clone()),
            (keys::AUDIO_SHA256, m.audio_sha256.clone()),
            (keys::VISUAL_INPUT, m.visual_input.clone()),
            (keys::AUDIO_MASK, m.audio_mask.clone()),
            (keys::FPS, m.fps.to_string()),
            (keys::SOURCE, m.source.clone()),
            (keys::TRACK, m.track.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let bytes = safetensors::serialize(views, Some(meta)).map_err(err)?;
        Ok(sorted_header(bytes))
    }

    /// Parses safetensors bytes (`path` names the file in errors). `active` may be
    /// missing (all 1); every other tensor is required, with the dtype and shape of the
    /// format table.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, DataError> {
        let err = |message: String| DataError::Features {
            path: path.to_owned(),
            message,
        };
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| err(format!("not a safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| err(format!("not a safetensors file: {e}")))?;
        let tensor = |name: &str, dtype: Dtype, rank: usize| {
            let t = st
                .tensor(name)
                .map_err(|_| err(format!("no tensor `{name}`")))?;
            if t.dtype() != dtype || t.shape().len() != rank {
                return Err(err(format!(
                    "tensor `{name}` is {:?} {:?}, expected {dtype:?} of rank {rank}",
                    t.dtype(),
                    t.shape()
                )));
            }
            Ok(t)
        };
        let f32s = |t: &TensorView<'_>| -> Vec<f32> {
            t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let visual = tensor("visual", Dtype::F32, 2)?;
        let audio = tensor("audio", Dtype::F32, 2)?;
        let n = visual.shape()[0];
        let visual_mask = tensor("visual_mask", Dtype::F32, 1)?;
        let audio_mask = tensor("audio_mask", Dtype::F32, 1)?;
        let pts = tensor("pts", Dtype::I64, 1)?;
        let bx = tensor("box", Dtype::F32, 2)?;
        for (name, t, shape) in [
            ("audio", &audio, vec![n, audio.shape()[1]]),
            ("visual_mask", &visual_mask, vec![n]),
            ("audio_mask", &audio_mask, vec![n]),
            ("pts", &pts, vec![n]),
            ("box", &bx, vec![n, 4]),
        ] {
            if t.shape() != shape.as_slice() {
                return Err(err(format!(
                    "tensor `{name}` has shape {:?}, expected {shape:?} ({n} frames from `visual`)",
                    t.shape()
                )));
            }
        }
        let active = match st.tensor("active") {
            Ok(_) => {
                let t = tensor("active", Dtype::F32, 1)?;
                if t.shape() != [n] {
                    return Err(err(format!(
                        "tensor `active` has shape {:?}, expected [{n}]",
                        t.shape()
                    )));
                }
                f32s(&t)
            }
            Err(_) => vec![1.0; n],
        };
        let meta_map = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| meta_map.get(k).cloned().unwrap_or_default();
        let fps_text = get(keys::FPS);
        let fps = if fps_text.trim().is_empty() {
            0.0
        } else {
            fps_text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .ok_or_else(|| err(format!("metadata fps `{fps_text}` is not a frame rate")))?
        };
        let boxes_flat = f32s(&bx);
        let file = FeatureFile {
            visual_dim: visual.shape()[1],
            audio_dim: audio.shape()[1],
            visual: f32s(&visual),
            audio: f32s(&audio),
            visual_mask: f32s(&visual_mask),
            audio_mask: f32s(&audio_mask),
            pts: pts
                .data()
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            boxes: boxes_flat
                .chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect(),
            active,
            meta: FeatureMetadata {
                visual_model: get(keys::VISUAL_MODEL),
                visual_sha256: get(keys::VISUAL_SHA256),
                audio_model: get(keys::AUDIO_MODEL),
                audio_sha256: get(keys::AUDIO_SHA256),
                visual_input: get(keys::VISUAL_INPUT),
                audio_mask: get(keys::AUDIO_MASK),
                fps,
                source: get(keys::SOURCE),
                track: get(keys::TRACK),
            },
        };
        file.validate(path)?;
        Ok(file)
    }

    /// Reads a feature file.
    pub fn read(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Writes the file atomically (temporary file + rename).
    pub fn write(&self, path: &Path) -> Result<(), DataError> {
        write_atomic(path, &self.to_bytes(path)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audio_mask_kind_defaults_to_present_and_refuses_unknown_values() {
        let mut m = FeatureMetadata::default();
        assert_eq!(m.audio_mask_kind(), Ok(AudioMaskKind::Present));
        m.audio_mask = "speech".into();
        assert_eq!(m.audio_mask_kind(), Ok(AudioMaskKind::Speech));
        m.audio_mask = "vad".into();
        assert!(m.audio_mask_kind().unwrap_err().contains("`vad`"));
    }

    fn sample() -> FeatureFile {
        let meta = FeatureMetadata {
            visual_model: "fer-mini-xception".into(),
            visual_sha256: "ab".repeat(32),
            audio_model: "oww-speech-embedding".into(),
            audio_sha256: "cd".repeat(32),
            visual_input: "probabilities".into(),
            audio_mask: "speech".into(),
            fps: 29.97,
            source: "clip.mp4".into(),
            track: "3".into(),
        };
        let mut f = FeatureFile::new(3, 2, meta);
        f.push(
            Some(&[0.1, 0.2, 0.7]),
            1.0,
            Some(&[1.5, -2.0]),
            1.0,
            Some(0),
            [10.0, 20.0, 30.0, 40.0],
            true,
        );
        f.push(
            Some(&[0.3, f32::NAN, 0.7]),
            1.0,
            None,
            1.0,
            Some(33_366_667),
            [11.0, 20.0, 30.0, 40.0],
            true,
        );
        f.push_absent(Some(66_733_333));
        f.push(
            Some(&[1.0, 0.0]),
            1.0,
            Some(&[0.25, 0.5]),
            0.5,
            None,
            [f32::NAN; 4],
            true,
        );
        f
    }

    #[test]
    fn push_masks_bad_vectors() {
        let f = sample();
        assert_eq!(f.frames(), 4);
        assert_eq!(f.visual_mask, vec![1.0, 0.0, 0.0, 0.0]);
        assert_eq!(f.audio_mask, vec![1.0, 0.0, 0.0, 0.5]);
        assert_eq!(f.visual_row(1), &[0.0, 0.0, 0.0]);
        assert_eq!(f.audio_row(3), &[0.25, 0.5]);
        assert_eq!(f.pts, vec![0, 33_366_667, 66_733_333, -1]);
        assert_eq!(f.boxes[3], [0.0; 4]);
        assert_eq!(f.active, vec![1.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn round_trip_bytes_and_file() {
        let f = sample();
        let p = Path::new("x.safetensors");
        let bytes = f.to_bytes(p).unwrap();
        let g = FeatureFile::from_bytes(&bytes, p).unwrap();
        assert_eq!(f, g);
        // Always the same bytes (the metadata map is written in key order), which the
        // safetensors reader accepts: header padded to 8 bytes.
        for _ in 0..5 {
            assert_eq!(f.to_bytes(p).unwrap(), bytes);
        }
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        assert!(
            header.starts_with("{\"__metadata__\":{\"affect."),
            "{header}"
        );
        let dir = std::env::temp_dir().join(format!("affect-feat-{}", std::process::id()));
        let path = dir.join("features").join("v.safetensors");
        f.write(&path).unwrap();
        assert_eq!(FeatureFile::read(&path).unwrap(), f);
        let mut t = f.clone();
        t.truncate(2);
        assert_eq!(t.frames(), 2);
        assert_eq!(t.visual.len(), 6);
        t.validate(p).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn malformed_files_are_errors() {
        let p = Path::new("bad.safetensors");
        let e = FeatureFile::from_bytes(b"not at all", p).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bad.safetensors: not a safetensors file"),
            "{e}"
        );
        // Missing tensor.
        let data = f32_bytes(&[0.0; 6]);
        let v = TensorView::new(Dtype::F32, vec![2, 3], &data).unwrap();
        let bytes = safetensors::serialize([("visual", v)], None).unwrap();
        let e = FeatureFile::from_bytes(&bytes, p).unwrap_err();
        assert!(e.to_string().contains("no tensor `audio`"), "{e}");
        // Rows that disagree.
        let mut f = sample();
        f.visual_mask.pop();
        let e = f.to_bytes(p).unwrap_err();
        assert!(
            e.to_string()
                .contains("`visual_mask` has 3 values, expected 4"),
            "{e}"
        );
        let mut f = sample();
        f.audio_mask[0] = 2.0;
        let e = f.validate(p).unwrap_err();
        assert!(e.to_string().contains("masks are in [0, 1]"), "{e}");
        let mut f = sample();
        f.visual[0] = f32::INFINITY;
        assert!(f.validate(p).is_err());
        // Without `active`: all ones.
        let f = sample();
        let n = f.frames();
        let parts: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
            ("visual", Dtype::F32, vec![n, 3], f32_bytes(&f.visual)),
            ("audio", Dtype::F32, vec![n, 2], f32_bytes(&f.audio)),
            (
                "visual_mask",
                Dtype::F32,
                vec![n],
                f32_bytes(&f.visual_mask),
            ),
            ("audio_mask", Dtype::F32, vec![n], f32_bytes(&f.audio_mask)),
            ("box", Dtype::F32, vec![n, 4], f32_bytes(&[0.0; 16])),
            ("pts", Dtype::I64, vec![n], vec![0u8; 8 * n]),
        ];
        let views: Vec<_> = parts
            .iter()
            .map(|(k, d, s, b)| (*k, TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        let bytes = safetensors::serialize(views, None).unwrap();
        let g = FeatureFile::from_bytes(&bytes, p).unwrap();
        assert_eq!(g.active, vec![1.0; n]);
        assert_eq!(g.meta, FeatureMetadata::default());
        // pts of the wrong dtype.
        let mut parts = parts;
        parts[5] = ("pts", Dtype::F32, vec![n], vec![0u8; 4 * n]);
        let views: Vec<_> = parts
            .iter()
            .map(|(k, d, s, b)| (*k, TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        let bytes = safetensors::serialize(views, None).unwrap();
        let e = FeatureFile::from_bytes(&bytes, p).unwrap_err();
        assert!(e.to_string().contains("tensor `pts` is F32"), "{e}");
    }
}
