// SPDX-License-Identifier: MPL-2.0
//! BlazeFace raw outputs → scored boxes with 6 landmarks.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::anchors::{Anchor, SsdAnchorOptions, ssd_anchors};
use super::{BBox, Detection, FaceError};
use crate::runtime::ModelContract;

/// The detector families the `affect.detector.kind` contract key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetectorKind {
    /// MediaPipe BlazeFace short range (128x128, 896 anchors).
    BlazeFaceShort,
    /// MediaPipe BlazeFace full range (192x192, 2304 anchors).
    BlazeFaceFull,
    /// MTCNN (P-Net / R-Net / O-Net cascade), 5 landmarks.
    Mtcnn,
}

impl DetectorKind {
    /// The contract value (`blazeface-short`, `blazeface-full`, `mtcnn`).
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorKind::BlazeFaceShort => "blazeface-short",
            DetectorKind::BlazeFaceFull => "blazeface-full",
            DetectorKind::Mtcnn => "mtcnn",
        }
    }

    /// Reads `affect.detector.kind` from a model contract.
    pub fn from_contract(contract: &ModelContract) -> Result<Self, FaceError> {
        contract
            .prop("affect.detector.kind")
            .ok_or_else(|| {
                FaceError::DetectorKind("(affect.detector.kind missing from the model)".into())
            })?
            .parse()
    }

    /// Number of landmarks per detection.
    pub fn num_keypoints(self) -> usize {
        match self {
            DetectorKind::Mtcnn => 5,
            _ => 6,
        }
    }
}

impl FromStr for DetectorKind {
    type Err = FaceError;
    fn from_str(s: &str) -> Result<Self, FaceError> {
        match s.trim() {
            "blazeface-short" => Ok(DetectorKind::BlazeFaceShort),
            "blazeface-full" => Ok(DetectorKind::BlazeFaceFull),
            "mtcnn" => Ok(DetectorKind::Mtcnn),
            other => Err(FaceError::DetectorKind(other.to_owned())),
        }
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decodes BlazeFace `regressors [1,N,16]` and `classificators [1,N,1]` with the
/// model's anchors (MediaPipe `TensorsToDetectionsCalculator` settings).
#[derive(Debug, Clone)]
pub struct BlazeFaceDecoder {
    kind: DetectorKind,
    anchors: Vec<Anchor>,
    scale: f32,
}

/// Values per regressor row: box (4) + 6 keypoints (12).
const ROW: usize = 16;
/// Landmarks per BlazeFace detection.
const KEYPOINTS: usize = 6;
/// Logits are clamped to ±this before the sigmoid.
const LOGIT_CLIP: f32 = 80.0;

impl BlazeFaceDecoder {
    /// A decoder for `kind` (BlazeFace only; MTCNN has its own cascade).
    pub fn new(kind: DetectorKind) -> Result<Self, FaceError> {
        let opts = match kind {
            DetectorKind::BlazeFaceShort => SsdAnchorOptions::blazeface_short(),
            DetectorKind::BlazeFaceFull => SsdAnchorOptions::blazeface_full(),
            DetectorKind::Mtcnn => return Err(FaceError::DetectorKind("mtcnn".into())),
        };
        Ok(BlazeFaceDecoder {
            kind,
            anchors: ssd_anchors(&opts),
            scale: opts.input_width as f32,
        })
    }

    /// The detector kind.
    pub fn kind(&self) -> DetectorKind {
        self.kind
    }

    /// The anchors, in output row order.
    pub fn anchors(&self) -> &[Anchor] {
        &self.anchors
    }

    /// Model input size in pixels (square): 128 or 192. Regressor values are in these pixels.
    pub fn input_size(&self) -> usize {
        self.scale as usize
    }

    /// Decodes flat `regressors` (N×16) and `classificators` (N logits) into detections
    /// in normalised input coordinates, keeping `sigmoid(clamp(logit, ±80)) > score_threshold`.
    ///
    /// Rows with a NaN score, a non-finite or empty box are dropped. The result is in
    /// anchor order; run [`super::weighted_nms`] next.
    pub fn decode(
        &self,
        regressors: &[f32],
        classificators: &[f32],
        score_threshold: f32,
    ) -> Result<Vec<Detection>, FaceError> {
        let n = self.anchors.len();
        if classificators.len() != n {
            return Err(FaceError::Output(format!(
                "{} classificators, {} expects {n}",
                classificators.len(),
                self.kind
            )));
        }
        if regressors.len() != n * ROW {
            return Err(FaceError::Output(format!(
                "{} regressor values, {} expects {n}x{ROW}",
                regressors.len(),
                self.kind
            )));
        }
        if score_threshold.is_nan() {
            return Err(FaceError::Parameter("score threshold is NaN".into()));
        }
        let s = self.scale;
        let mut out = Vec::new();
        for ((anchor, &logit), reg) in self
            .anchors
            .iter()
            .zip(classificators)
            .zip(regressors.chunks_exact(ROW))
        {
            let score = sigmoid(logit);
            // a NaN score is dropped too
            if score.is_nan() || score <= score_threshold {
                continue;
            }
            let cx = reg[0] / s + anchor.x;
            let cy = reg[1] / s + anchor.y;
            let bbox = BBox::from_centre(cx, cy, reg[2] / s, reg[3] / s);
            if !bbox.is_valid() {
                continue;
            }
            let keypoints = (0..KEYPOINTS)
                .map(|k| [reg[4 + 2 * k] / s + anchor.x, reg[5 + 2 * k] / s + anchor.y])
                .collect();
            out.push(Detection {
                bbox,
                keypoints,
                score,
            });
        }
        Ok(out)
    }

    /// [`decode`](Self::decode) on the outputs of
    /// [`Model::run_f32`](crate::runtime::Model::run_f32): reads `regressors` and
    /// `classificators` and checks their shapes (`[1,N,16]`, `[1,N,1]`).
    pub fn decode_outputs<S: ndarray::Data<Elem = f32>>(
        &self,
        outputs: &BTreeMap<String, ndarray::ArrayBase<S, ndarray::IxDyn>>,
        score_threshold: f32,
    ) -> Result<Vec<Detection>, FaceError> {
        let n = self.anchors.len();
        let get = |name: &str, last: usize| -> Result<Cow<'_, [f32]>, FaceError> {
            let a = outputs.get(name).ok_or_else(|| {
                FaceError::Output(format!(
                    "output `{name}` missing (have: {})",
                    outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            if a.shape() != [1, n, last] {
                return Err(FaceError::Output(format!(
                    "output `{name}` has shape {:?}, {} expects [1, {n}, {last}]",
                    a.shape(),
                    self.kind
                )));
            }
            Ok(match a.as_slice() {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(a.iter().copied().collect()),
            })
        };
        let reg = get("regressors", ROW)?;
        let cls = get("classificators", 1)?;
        self.decode(&reg, &cls, score_threshold)
    }
}

/// `1 / (1 + exp(-clamp(x, ±80)))`; NaN stays NaN.
fn sigmoid(x: f32) -> f32 {
    let x = x.clamp(-LOGIT_CLIP, LOGIT_CLIP);
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    fn empty(dec: &BlazeFaceDecoder) -> (Vec<f32>, Vec<f32>) {
        let n = dec.anchors().len();
        (vec![0.0; n * ROW], vec![-100.0; n])
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(
            "blazeface-full".parse::<DetectorKind>().unwrap(),
            DetectorKind::BlazeFaceFull
        );
        assert!("yolo".parse::<DetectorKind>().is_err());
        assert!(BlazeFaceDecoder::new(DetectorKind::Mtcnn).is_err());
    }

    #[test]
    fn decodes_synthetic_row() {
        let dec = BlazeFaceDecoder::new(DetectorKind::BlazeFaceShort).unwrap();
        let (mut reg, mut cls) = empty(&dec);
        // anchor 520: 8x8 group, cell index (520-512)/6 = 1 → x = 1.5/8, y = 0.5/8
        let i = 520;
        let a = dec.anchors()[i];
        assert!((a.x - 1.5 / 8.0).abs() < 1e-6 && (a.y - 0.5 / 8.0).abs() < 1e-6);
        let row = &mut reg[i * ROW..(i + 1) * ROW];
        row[0] = 12.8; // +0.1
        row[1] = -6.4; // -0.05
        row[2] = 32.0; // 0.25
        row[3] = 64.0; // 0.5
        for k in 0..6 {
            row[4 + 2 * k] = k as f32 * 12.8;
            row[5 + 2 * k] = -(k as f32) * 6.4;
        }
        cls[i] = 2.0;
        let d = dec.decode(&reg, &cls, 0.5).unwrap();
        assert_eq!(d.len(), 1);
        let d = &d[0];
        let (cx, cy) = (a.x + 0.1, a.y - 0.05);
        let close = |p: f32, q: f32| (p - q).abs() < 1e-6;
        assert!(close(d.bbox.x0, cx - 0.125) && close(d.bbox.x1, cx + 0.125));
        assert!(close(d.bbox.y0, cy - 0.25) && close(d.bbox.y1, cy + 0.25));
        assert!(close(d.score, 1.0 / (1.0 + (-2.0f32).exp())));
        for k in 0..6 {
            assert!(close(d.keypoints[k][0], a.x + k as f32 * 0.1));
            assert!(close(d.keypoints[k][1], a.y - k as f32 * 0.05));
        }
    }

    #[test]
    fn threshold_nan_and_invalid_boxes() {
        let dec = BlazeFaceDecoder::new(DetectorKind::BlazeFaceFull).unwrap();
        let (mut reg, mut cls) = empty(&dec);
        for i in 0..4 {
            reg[i * ROW + 2] = 10.0;
            reg[i * ROW + 3] = 10.0;
        }
        cls[0] = 0.1; // 0.525 > 0.5
        cls[1] = -0.1; // below
        cls[2] = f32::NAN;
        cls[3] = 1000.0; // clamped, fine
        reg[3 * ROW + 2] = 0.0; // empty box
        let d = dec.decode(&reg, &cls, 0.5).unwrap();
        assert_eq!(d.len(), 1);
        assert!(d[0].score > 0.5);
        assert!(dec.decode(&reg, &cls[1..], 0.5).is_err());
        assert!(dec.decode(&reg[1..], &cls, 0.5).is_err());
        assert!(dec.decode(&reg, &cls, f32::NAN).is_err());
    }

    #[test]
    fn decode_outputs_checks_shapes() {
        let dec = BlazeFaceDecoder::new(DetectorKind::BlazeFaceShort).unwrap();
        let mut out = BTreeMap::new();
        out.insert(
            "regressors".to_string(),
            ArrayD::<f32>::zeros(vec![1, 896, 16]),
        );
        assert!(dec.decode_outputs(&out, 0.5).is_err());
        out.insert(
            "classificators".to_string(),
            ArrayD::<f32>::zeros(vec![1, 896, 2]),
        );
        assert!(dec.decode_outputs(&out, 0.5).is_err());
        out.insert(
            "classificators".to_string(),
            ArrayD::<f32>::zeros(vec![1, 896, 1]),
        );
        // sigmoid(0) = 0.5, not > 0.5
        assert!(dec.decode_outputs(&out, 0.5).unwrap().is_empty());
    }
}
