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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Detector confidence in [0, 1].
    pub score: f32,
    /// Landmarks in frame pixels, in the detector's order.
    pub landmarks: Vec<[f32; 2]>,
    /// Crop width in pixels.
    pub width: u32,
    /// Crop height in pixels.
    pub height: u32,
    /// Packed RGB bytes, `width * height * 3`.
    pub rgb: Vec<u8>,
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
