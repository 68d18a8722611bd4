// SPDX-License-Identifier: MPL-2.0
//! Public result types: what gst-affect says about a face in a frame.
//!
//! The same values travel as metas on video buffers, as `affect` bus messages and as
//! NDJSON lines ([`AffectRecord`], one per frame per face). Valence and arousal are in
//! `[-1, 1]`; `probabilities` follow [`crate::EXPRESSIONS`]; no value is ever NaN.

use serde::{Deserialize, Serialize};

use crate::EXPRESSIONS;

/// A face box in frame pixels (top-left corner, size).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct FaceBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

/// Affect of one face in one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FaceAffect {
    /// Tracker identity, stable while the face stays in view.
    pub track_id: u64,
    /// Where the face is.
    #[serde(rename = "box")]
    pub bbox: FaceBox,
    /// Valence in [-1, 1] (negative … positive).
    pub valence: f32,
    /// Arousal in [-1, 1] (calm … excited).
    pub arousal: f32,
    /// Probabilities of the 8 expressions, in [`EXPRESSIONS`] order, summing to 1.
    pub probabilities: [f32; 8],
    /// Probability in [0, 1] that this face is the one speaking (active-speaker
    /// detection: mouth motion in sync with the voice); `None` when not computed (no face
    /// mesh, no audio branch, or `audio-attribution` other than `speaker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaking: Option<f32>,
    /// The active-speaker decision (`speaking` with hysteresis and minimum durations):
    /// the voice is this face's. `None` when not computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<bool>,
}

/// Why an affect value was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResultError {
    /// A value is NaN or infinite.
    #[error("{field} is not a finite number")]
    NotFinite {
        /// The field.
        field: &'static str,
    },
    /// An expression name is not one of the 8 classes.
    #[error(
        "unknown expression `{0}` (expected one of Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise, Other)"
    )]
    UnknownExpression(String),
}

impl FaceAffect {
    /// Checks that every value is finite and clamps valence/arousal to [-1, 1].
    pub fn validated(mut self) -> Result<Self, ResultError> {
        let check = |v: f32, field| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(ResultError::NotFinite { field })
            }
        };
        check(self.valence, "valence")?;
        check(self.arousal, "arousal")?;
        for p in self.probabilities {
            check(p, "probabilities")?;
        }
        for v in [self.bbox.x, self.bbox.y, self.bbox.width, self.bbox.height] {
            check(v, "box")?;
        }
        if let Some(p) = self.speaking {
            check(p, "speaking")?;
            self.speaking = Some(p.clamp(0.0, 1.0));
        }
        self.valence = self.valence.clamp(-1.0, 1.0);
        self.arousal = self.arousal.clamp(-1.0, 1.0);
        Ok(self)
    }

    /// Index of the most probable expression (the first one on ties).
    pub fn top_index(&self) -> usize {
        let mut best = 0;
        for (i, p) in self.probabilities.iter().enumerate() {
            if *p > self.probabilities[best] {
                best = i;
            }
        }
        best
    }

    /// Name of the most probable expression.
    pub fn expression(&self) -> &'static str {
        EXPRESSIONS[self.top_index()]
    }
}

/// Index of an expression name in [`EXPRESSIONS`].
pub fn expression_index(name: &str) -> Result<usize, ResultError> {
    EXPRESSIONS
        .iter()
        .position(|e| e.eq_ignore_ascii_case(name))
        .ok_or_else(|| ResultError::UnknownExpression(name.to_owned()))
}

/// One NDJSON line: one face in one frame, with the frame's times in nanoseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AffectRecord {
    /// Buffer timestamp of the video frame.
    pub pts: u64,
    /// Frame duration, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    /// Running time of the frame, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_time: Option<u64>,
    /// Stream time of the frame, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_time: Option<u64>,
    /// The face and its affect.
    #[serde(flatten)]
    pub face: FaceAffect,
    /// The top expression's name (redundant with `probabilities`, for readers of the file).
    pub expression: String,
}

impl AffectRecord {
    /// Builds a record, filling `expression` from the probabilities.
    pub fn new(pts: u64, face: FaceAffect) -> Self {
        let expression = face.expression().to_owned();
        AffectRecord {
            pts,
            duration: None,
            running_time: None,
            stream_time: None,
            face,
            expression,
        }
    }

    /// Parses and validates one NDJSON line.
    pub fn from_json_line(line: &str) -> Result<Self, String> {
        let mut r: AffectRecord = serde_json::from_str(line).map_err(|e| e.to_string())?;
        expression_index(&r.expression).map_err(|e| e.to_string())?;
        r.face = r.face.validated().map_err(|e| e.to_string())?;
        Ok(r)
    }

    /// The record as one JSON line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        // Serialising plain numbers and strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face() -> FaceAffect {
        FaceAffect {
            track_id: 3,
            bbox: FaceBox {
                x: 10.0,
                y: 20.0,
                width: 30.0,
                height: 40.0,
            },
            valence: 0.5,
            arousal: -0.25,
            probabilities: [0.1, 0.0, 0.0, 0.0, 0.7, 0.1, 0.1, 0.0],
            ..Default::default()
        }
    }

    #[test]
    fn top_expression_and_validation() {
        let f = face();
        assert_eq!(f.top_index(), 4);
        assert_eq!(f.expression(), "Happiness");
        let mut g = face();
        g.valence = 1.5;
        assert_eq!(g.validated().unwrap().valence, 1.0);
        let mut n = face();
        n.arousal = f32::NAN;
        assert_eq!(
            n.validated(),
            Err(ResultError::NotFinite { field: "arousal" })
        );
        assert_eq!(expression_index("surprise"), Ok(6));
        assert!(expression_index("Joy").is_err());
    }

    #[test]
    fn ndjson_round_trip() {
        let mut r = AffectRecord::new(40_000_000, face());
        r.duration = Some(40_000_000);
        let line = r.to_json_line();
        assert!(line.contains("\"box\":{\"x\":10.0"), "{line}");
        assert!(line.contains("\"expression\":\"Happiness\""), "{line}");
        assert!(!line.contains('\n'));
        assert_eq!(AffectRecord::from_json_line(&line).unwrap(), r);
        assert!(AffectRecord::from_json_line("{\"pts\":1}").is_err());
        let bad = line.replace("Happiness", "Joy");
        assert!(
            AffectRecord::from_json_line(&bad)
                .unwrap_err()
                .contains("Joy")
        );
    }
}

/// An aligned face crop and what the detector said about the face (shared by `Arc`
/// between the face meta on the buffer and whoever reads it; never copied).
#[derive(Debug, Clone, PartialEq)]
pub struct FaceCrop {
    /// Tracker identity.
    pub track_id: u64,
    /// Box in frame pixels.
    pub bbox: FaceBox,
    /// Detector confidence in \[0, 1\].
    pub score: f32,
    /// Landmarks in frame pixels, in the detector's order.
    pub landmarks: Vec<[f32; 2]>,
    /// Crop width in pixels.
    pub width: u32,
    /// Crop height in pixels.
    pub height: u32,
    /// Packed RGB bytes, `width * height * 3`.
    pub rgb: Vec<u8>,
    /// The 468-point face mesh (`facecrop mesh=true`), in frame pixels.
    pub mesh: Option<std::sync::Arc<crate::face::MeshResult>>,
}

/// A feature vector computed from a face crop or an audio window.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureVector {
    /// The face's track id, or `None` for audio.
    pub track_id: Option<u64>,
    /// Start of what the vector describes (ns, buffer clock).
    pub pts: u64,
    /// Duration of what it describes (ns).
    pub duration: u64,
    /// The feature model's `affect.name`.
    pub model: String,
    /// The features; empty when `valid` is false.
    pub vector: Vec<f32>,
    /// Class probabilities, when the model classifies.
    pub probabilities: Vec<f32>,
    /// Labels of `probabilities`.
    pub labels: std::sync::Arc<[String]>,
    /// False when the model produced unusable numbers (NaN) and the result is masked.
    pub valid: bool,
    /// True when this is an earlier result reused (the element's `interval` > 1).
    pub reused: bool,
}

/// Where a [`ResultFile`] writes: a byte sink that can also be cut back to a length.
///
/// Implemented for [`std::fs::File`]; tests implement it for sinks that fail part-way.
pub trait LineSink: std::io::Write {
    /// Shortens the sink to `len` bytes and puts the write position there.
    fn truncate_to(&mut self, len: u64) -> std::io::Result<()>;
}

impl LineSink for std::fs::File {
    fn truncate_to(&mut self, len: u64) -> std::io::Result<()> {
        use std::io::Seek;
        self.set_len(len)?;
        self.seek(std::io::SeekFrom::Start(len))?;
        Ok(())
    }
}

/// Why a [`ResultFile`] could not create its file or write to it. Every variant names
/// the file.
#[derive(Debug, thiserror::Error)]
pub enum ResultFileError {
    /// The file cannot be created.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A write or flush failed (full disk, file size limit, I/O error). Nothing of the
    /// lines being written is in the file: it ends after its last complete line, at byte
    /// `len`, and later writes may be tried again.
    #[error(
        "cannot write {}: {source} (the file keeps its {len} bytes of complete lines)",
        path.display()
    )]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The length of the file, all complete lines.
        len: u64,
        /// The OS error of the write.
        source: std::io::Error,
    },
    /// A write failed and cutting the partial line off failed too: the file may end in a
    /// partial line. The writer refuses every later write.
    #[error(
        "cannot write {}: {source}; cutting the partial line off (back to byte {len}) failed too: {truncate}",
        path.display()
    )]
    Truncate {
        /// The file.
        path: std::path::PathBuf,
        /// The length the file should have had.
        len: u64,
        /// The OS error of the write.
        source: std::io::Error,
        /// The OS error of the truncation.
        truncate: std::io::Error,
    },
    /// An earlier [`ResultFileError::Truncate`] left the file in an unknown state.
    #[error("{}: not written, an earlier write left a partial line", path.display())]
    Broken {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The text handed to the writer is not a sequence of complete lines (a line holds a
    /// newline, or the text does not end with one).
    #[error("{}: not written, {what}", path.display())]
    NotLines {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with the text.
        what: &'static str,
    },
}

/// A line-oriented result file (NDJSON, CSV) that never ends in a partial line.
///
/// Each call writes its complete lines as one buffer with one `write_all` (one frame's
/// lines together: all of them or none). When a write or flush fails — a full disk, a
/// file size limit, an I/O error — the file is cut back ([`LineSink::truncate_to`],
/// `File::set_len`) to the length it had before the call, so a reader never sees a
/// partial line, and the error ([`ResultFileError::Write`]) names the file and the OS
/// error. The writer stays usable: a later call tries again (the disk may have room by
/// then). If the truncation fails too ([`ResultFileError::Truncate`]) the writer
/// refuses every later write ([`ResultFileError::Broken`]).
///
/// There is no buffering inside: each call reaches the OS before it returns (a reader
/// following the file sees whole frames as they are written).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("affect-doc-resultfile-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// use affect::results::{AffectRecord, FaceAffect, FaceBox, ResultFile};
/// let path = dir.join("out.ndjson");
/// let mut file = ResultFile::create(&path)?;
/// let face = FaceAffect {
///     track_id: 1,
///     bbox: FaceBox::default(),
///     valence: 0.2,
///     arousal: -0.1,
///     probabilities: [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
///     ..Default::default()
/// };
/// file.write_records(&[AffectRecord::new(0, face)])?; // one frame, one write
/// file.write_line("valence,arousal")?; // any line, newline added
/// file.write_text("-5,-5\n-5,-5\n")?; // complete lines, as they are
/// assert!(std::fs::read_to_string(&path)?.ends_with("-5,-5\n"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ResultFile<W: LineSink = std::fs::File> {
    sink: W,
    path: std::path::PathBuf,
    /// Bytes of complete lines in the sink.
    len: u64,
    broken: bool,
}

impl ResultFile<std::fs::File> {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: impl AsRef<std::path::Path>) -> Result<Self, ResultFileError> {
        let path = path.as_ref();
        let file = std::fs::File::create(path).map_err(|source| ResultFileError::Create {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::with_sink(file, path, 0))
    }

    /// Flushes and asks the OS to put the file on disk (`fsync`); for EOS / stop.
    pub fn sync(&mut self) -> Result<(), ResultFileError> {
        self.check()?;
        self.sink
            .sync_all()
            .map_err(|source| ResultFileError::Write {
                path: self.path.clone(),
                len: self.len,
                source,
            })
    }
}

impl<W: LineSink> ResultFile<W> {
    /// A writer on any [`LineSink`] that already holds `len` bytes of complete lines;
    /// `path` names it in errors.
    pub fn with_sink(sink: W, path: impl Into<std::path::PathBuf>, len: u64) -> Self {
        ResultFile {
            sink,
            path: path.into(),
            len,
            broken: false,
        }
    }

    /// The file's path (as given).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Bytes written so far, all of them complete lines.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sink (for tests and for closing it explicitly).
    pub fn into_inner(self) -> W {
        self.sink
    }

    /// Writes one line; the newline is added. Fails with
    /// [`ResultFileError::NotLines`] when `line` holds a newline.
    pub fn write_line(&mut self, line: &str) -> Result<(), ResultFileError> {
        self.write_lines(std::iter::once(line))
    }

    /// Writes several lines (one frame's) as one buffer: all of them or none. Newlines
    /// are added; a line holding a newline fails with [`ResultFileError::NotLines`]
    /// before anything is written.
    pub fn write_lines<I, S>(&mut self, lines: I) -> Result<(), ResultFileError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut buf = String::new();
        for l in lines {
            let l = l.as_ref();
            if l.contains(['\n', '\r']) {
                return Err(self.not_lines("a line holds a line break"));
            }
            buf.push_str(l);
            buf.push('\n');
        }
        self.commit(buf.as_bytes())
    }

    /// Writes `text`, which must be complete lines (empty, or ending with `\n`), as
    /// one buffer: all of it or none.
    pub fn write_text(&mut self, text: &str) -> Result<(), ResultFileError> {
        if !text.is_empty() && !text.ends_with('\n') {
            return Err(self.not_lines("the text does not end with a newline"));
        }
        self.commit(text.as_bytes())
    }

    /// Writes the NDJSON lines of one frame's records as one buffer: all or none.
    pub fn write_records(&mut self, records: &[AffectRecord]) -> Result<(), ResultFileError> {
        self.write_lines(records.iter().map(AffectRecord::to_json_line))
    }

    fn not_lines(&self, what: &'static str) -> ResultFileError {
        ResultFileError::NotLines {
            path: self.path.clone(),
            what,
        }
    }

    fn check(&self) -> Result<(), ResultFileError> {
        if self.broken {
            Err(ResultFileError::Broken {
                path: self.path.clone(),
            })
        } else {
            Ok(())
        }
    }

    /// One `write_all` + `flush` of `bytes`; on failure the sink is cut back to `len`.
    fn commit(&mut self, bytes: &[u8]) -> Result<(), ResultFileError> {
        self.check()?;
        if bytes.is_empty() {
            return Ok(());
        }
        match self.sink.write_all(bytes).and_then(|()| self.sink.flush()) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(source) => match self.sink.truncate_to(self.len) {
                Ok(()) => Err(ResultFileError::Write {
                    path: self.path.clone(),
                    len: self.len,
                    source,
                }),
                Err(truncate) => {
                    self.broken = true;
                    Err(ResultFileError::Truncate {
                        path: self.path.clone(),
                        len: self.len,
                        source,
                        truncate,
                    })
                }
            },
        }
    }
}

/// Aff-Wild2-style annotation files of a run, per face track: `PREFIX_track<id>.va.csv`
/// (`valence,arousal` header, one `v,a` line per frame, `-5,-5` where the track has no
/// result) and `PREFIX_track<id>.expr.csv` (the 8 expression names, one index per frame,
/// `-1` where absent). A track seen first at frame `n` gets `n` absent lines. Every file
/// is a [`ResultFile`]: only whole lines, even on a full disk.
#[derive(Debug)]
pub struct AffWild2Csv {
    prefix: std::path::PathBuf,
    tracks: std::collections::BTreeMap<u64, CsvTrack>,
    speaker: bool,
}

/// The files of one track.
#[derive(Debug)]
struct CsvTrack {
    va: ResultFile,
    expr: ResultFile,
    speaker: Option<ResultFile>,
}

impl AffWild2Csv {
    /// Files named from `prefix` (nothing is created before the first track).
    pub fn new(prefix: impl Into<std::path::PathBuf>) -> Self {
        AffWild2Csv {
            prefix: prefix.into(),
            tracks: std::collections::BTreeMap::new(),
            speaker: false,
        }
    }

    /// Also writes `PREFIX_trackN.speaker.csv` per track (header `speaking,speaker`: the
    /// active-speaker probability and the 0/1 decision per frame; `-1,-1` where the
    /// track is absent or was not scored). Not part of the Aff-Wild2 layout, so a
    /// separate file: the `va` and `expr` files stay exactly that format.
    pub fn with_speaker(mut self, on: bool) -> Self {
        self.speaker = on;
        self
    }

    /// The path of one track's file (`ext`: `va`, `expr` or `speaker`).
    pub fn path(&self, track: u64, ext: &str) -> std::path::PathBuf {
        let mut p = self.prefix.clone().into_os_string();
        p.push(format!("_track{track}.{ext}.csv"));
        p.into()
    }

    /// Writes frame number `frame` (0-based, since the start): one line per known track
    /// into each of its two files; tracks of `faces` not seen before get their files.
    pub fn write_frame(&mut self, frame: u64, faces: &[FaceAffect]) -> Result<(), String> {
        for f in faces {
            if self.tracks.contains_key(&f.track_id) {
                continue;
            }
            // The header, then invalid markers for the frames before the track appeared.
            let open = |p: std::path::PathBuf, header: &str, missing: &str| {
                let mut file = ResultFile::create(p)?;
                file.write_line(header)?;
                file.write_text(&missing.repeat(frame as usize))?;
                Ok::<_, ResultFileError>(file)
            };
            let va = open(self.path(f.track_id, "va"), "valence,arousal", "-5,-5\n")
                .map_err(|e| e.to_string())?;
            let expr = open(
                self.path(f.track_id, "expr"),
                &EXPRESSIONS.join(","),
                "-1\n",
            )
            .map_err(|e| e.to_string())?;
            let speaker = if self.speaker {
                Some(
                    open(
                        self.path(f.track_id, "speaker"),
                        "speaking,speaker",
                        "-1,-1\n",
                    )
                    .map_err(|e| e.to_string())?,
                )
            } else {
                None
            };
            self.tracks
                .insert(f.track_id, CsvTrack { va, expr, speaker });
        }
        for (id, t) in self.tracks.iter_mut() {
            let face = faces.iter().find(|f| f.track_id == *id);
            let (va, expr) = match face {
                Some(f) => (
                    format!("{},{}\n", f.valence, f.arousal),
                    format!("{}\n", f.top_index()),
                ),
                None => ("-5,-5\n".to_owned(), "-1\n".to_owned()),
            };
            let speaker = match face.and_then(|f| f.speaking.zip(f.speaker)) {
                Some((p, on)) => format!("{p},{}\n", u8::from(on)),
                None => "-1,-1\n".to_owned(),
            };
            t.va.write_text(&va)
                .and_then(|_| t.expr.write_text(&expr))
                .and_then(|_| match t.speaker.as_mut() {
                    Some(file) => file.write_text(&speaker),
                    None => Ok(()),
                })
                .map_err(|e| format!("CSV track {id}: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod csv_tests {
    use super::*;

    #[test]
    fn tracks_appearing_and_leaving_get_invalid_markers() {
        let dir = std::env::temp_dir().join(format!("affect-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let face = |id, v: f32| FaceAffect {
            track_id: id,
            bbox: FaceBox {
                x: 0.0,
                y: 0.0,
                width: 1.0,
                height: 1.0,
            },
            valence: v,
            arousal: -v,
            probabilities: [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
            ..Default::default()
        };
        let mut csv = AffWild2Csv::new(dir.join("clip"));
        csv.write_frame(0, &[face(1, 0.5)]).unwrap();
        csv.write_frame(1, &[face(2, -0.25)]).unwrap();
        csv.write_frame(2, &[]).unwrap();
        let read = |id, ext| std::fs::read_to_string(csv.path(id, ext)).unwrap();
        assert_eq!(read(1, "va"), "valence,arousal\n0.5,-0.5\n-5,-5\n-5,-5\n");
        assert_eq!(read(2, "va"), "valence,arousal\n-5,-5\n-0.25,0.25\n-5,-5\n");
        let header = EXPRESSIONS.join(",");
        assert_eq!(read(2, "expr"), format!("{header}\n-1\n4\n-1\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_speaker_file_holds_probability_and_decision_and_markers() {
        let dir = std::env::temp_dir().join(format!("affect-csv-spk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let face = |id, speaking: Option<(f32, bool)>| FaceAffect {
            track_id: id,
            speaking: speaking.map(|s| s.0),
            speaker: speaking.map(|s| s.1),
            ..Default::default()
        };
        let mut csv = AffWild2Csv::new(dir.join("clip")).with_speaker(true);
        csv.write_frame(0, &[face(1, Some((0.75, true)))]).unwrap();
        csv.write_frame(1, &[face(1, None), face(2, Some((0.125, false)))])
            .unwrap();
        csv.write_frame(2, &[]).unwrap();
        let read = |id, ext| std::fs::read_to_string(csv.path(id, ext)).unwrap();
        assert_eq!(
            read(1, "speaker"),
            "speaking,speaker\n0.75,1\n-1,-1\n-1,-1\n"
        );
        assert_eq!(
            read(2, "speaker"),
            "speaking,speaker\n-1,-1\n0.125,0\n-1,-1\n"
        );
        // Without `with_speaker` no such file is made.
        let mut plain = AffWild2Csv::new(dir.join("plain"));
        plain.write_frame(0, &[face(1, Some((0.5, true)))]).unwrap();
        assert!(!plain.path(1, "speaker").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod result_file_tests {
    use super::*;
    use std::io::{Read, Write};

    fn scratch(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "affect-resultfile-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A real file that accepts `room` more bytes, then fails like a full disk: the
    /// write that crosses the limit puts its first bytes in the file (a partial write)
    /// and `write_all` gets ENOSPC on the rest.
    struct FullDisk {
        file: std::fs::File,
        room: usize,
        fail_truncate: bool,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
            }
            let n = buf.len().min(self.room).min(7); // short writes, like the OS's
            let n = self.file.write(&buf[..n])?;
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }

    impl LineSink for FullDisk {
        fn truncate_to(&mut self, len: u64) -> std::io::Result<()> {
            if self.fail_truncate {
                return Err(std::io::Error::other("truncate refused"));
            }
            self.file.truncate_to(len)
        }
    }

    fn record(pts: u64, track: u64) -> AffectRecord {
        AffectRecord::new(
            pts,
            FaceAffect {
                track_id: track,
                bbox: FaceBox::default(),
                valence: 0.25,
                arousal: -0.5,
                probabilities: [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
                ..Default::default()
            },
        )
    }

    fn content(path: &std::path::Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn full_disk_leaves_only_complete_lines() {
        let dir = scratch("full");
        let path = dir.join("out.ndjson");
        let file = std::fs::File::create(&path).unwrap();
        let first = vec![record(0, 1), record(0, 2)];
        let room = first
            .iter()
            .map(|r| r.to_json_line().len() + 1)
            .sum::<usize>()
            + 30;
        let mut w = ResultFile::with_sink(
            FullDisk {
                file,
                room,
                fail_truncate: false,
            },
            &path,
            0,
        );
        w.write_records(&first).unwrap();
        let good = content(&path);
        assert_eq!(good.lines().count(), 2);
        // The next frame fits 30 bytes, then the disk is full.
        let e = w
            .write_records(&[record(40, 1), record(40, 2)])
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, ResultFileError::Write { len, .. } if len == good.len() as u64),
            "{e:?}"
        );
        assert!(
            msg.contains("out.ndjson") && msg.contains("os error 28"),
            "{msg}"
        );
        // No partial line: the file is what the first frame wrote.
        assert_eq!(content(&path), good);
        for l in content(&path).lines() {
            AffectRecord::from_json_line(l).unwrap();
        }
        // Room again: the same writer goes on at the line boundary.
        w.sink.room = usize::MAX;
        w.write_records(&[record(80, 1)]).unwrap();
        let text = content(&path);
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with('\n'));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn retry_after_failure_continues_at_the_boundary() {
        let dir = scratch("retry");
        let path = dir.join("out.csv");
        let file = std::fs::File::create(&path).unwrap();
        let mut w = ResultFile::with_sink(
            FullDisk {
                file,
                room: 20,
                fail_truncate: false,
            },
            &path,
            0,
        );
        w.write_line("valence,arousal").unwrap();
        assert!(w.write_text("0.5,0.25\n-5,-5\n").is_err());
        assert_eq!(content(&path), "valence,arousal\n");
        // The disk has room again: the same writer appends after the last whole line.
        w.sink.room = 100;
        w.write_text("0.5,0.25\n-5,-5\n").unwrap();
        assert_eq!(content(&path), "valence,arousal\n0.5,0.25\n-5,-5\n");
        assert_eq!(w.len(), content(&path).len() as u64);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn failed_truncation_is_reported_and_stops_the_writer() {
        let dir = scratch("trunc");
        let path = dir.join("out.ndjson");
        let file = std::fs::File::create(&path).unwrap();
        let mut w = ResultFile::with_sink(
            FullDisk {
                file,
                room: 5,
                fail_truncate: true,
            },
            &path,
            0,
        );
        let e = w.write_line("abcdefgh").unwrap_err();
        assert!(matches!(e, ResultFileError::Truncate { .. }), "{e:?}");
        assert!(e.to_string().contains("partial line"), "{e}");
        w.sink.room = 100;
        assert!(matches!(
            w.write_line("x").unwrap_err(),
            ResultFileError::Broken { .. }
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_complete_lines_are_accepted() {
        let dir = scratch("lines");
        let path = dir.join("a.csv");
        let mut w = ResultFile::create(&path).unwrap();
        assert!(matches!(
            w.write_line("a\nb").unwrap_err(),
            ResultFileError::NotLines { .. }
        ));
        assert!(matches!(
            w.write_lines(["a", "b\r"]).unwrap_err(),
            ResultFileError::NotLines { .. }
        ));
        assert!(w.write_text("x,y").is_err());
        assert!(w.is_empty());
        w.write_lines(["a", "b"]).unwrap();
        w.write_text("").unwrap();
        w.write_records(&[]).unwrap();
        w.sync().unwrap();
        let mut s = String::new();
        std::fs::File::open(&path)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "a\nb\n");
        assert_eq!(w.len(), 4);
        let e = ResultFile::create(dir.join("no/such/dir.ndjson")).unwrap_err();
        assert!(e.to_string().contains("cannot create"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The real thing: the kernel's own partial write. A child process (this test binary
    /// again) runs under a 4 KiB file size limit (`ulimit -f 4`, SIGXFSZ ignored), so a
    /// write crossing 4096 bytes writes up to the limit and then fails with EFBIG.
    #[test]
    fn file_size_limit_partial_write_is_cut_back() {
        const CHILD: &str = "AFFECT_RESULTFILE_FSIZE_CHILD";
        if let Some(dir) = std::env::var_os(CHILD) {
            let dir = std::path::PathBuf::from(dir);
            // Control: a plain File write_all (what a naive writer does) keeps a partial line.
            let plain = dir.join("plain.ndjson");
            let mut f = std::fs::File::create(&plain).unwrap();
            let line = format!("{}\n", record(1, 1).to_json_line());
            let mut res = Ok(());
            while res.is_ok() {
                res = f.write_all(line.as_bytes());
            }
            // ResultFile: frames of 3 lines until the limit refuses one.
            let path = dir.join("out.ndjson");
            let mut w = ResultFile::create(&path).unwrap();
            let mut frames = 0u64;
            let err = loop {
                let recs: Vec<_> = (0..3).map(|t| record(frames * 40, t)).collect();
                match w.write_records(&recs) {
                    Ok(()) => frames += 1,
                    Err(e) => break e,
                }
            };
            println!("child: {frames} frames; {err}");
            std::fs::write(dir.join("frames"), frames.to_string()).unwrap_or_default();
            return;
        }
        let dir = scratch("fsize");
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 4; exec \"$0\" --exact results::result_file_tests::file_size_limit_partial_write_is_cut_back --nocapture --test-threads=1")
            .arg(&exe)
            .env(CHILD, &dir)
            .output()
            .unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{log}");
        assert!(log.contains("File too large"), "{log}");
        let plain = std::fs::read(dir.join("plain.ndjson")).unwrap();
        assert_eq!(plain.len(), 4096, "the limit is hit: {log}");
        assert_ne!(
            plain.last(),
            Some(&b'\n'),
            "a plain write leaves a partial line"
        );
        let text = content(&dir.join("out.ndjson"));
        let frames: usize = content(&dir.join("frames")).parse().unwrap();
        assert!(frames > 0 && text.len() <= 4096, "{log}");
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), 3 * frames, "whole frames only");
        for l in text.lines() {
            AffectRecord::from_json_line(l).unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
