// SPDX-License-Identifier: MPL-2.0
//! Face regions of interest: `GstVideoRegionOfInterestMeta` with roi type `face`.
//!
//! Param structures on each face ROI:
//! - `face`: `score` (gdouble), `landmarks` (GstValueArray of gdouble, x0,y0,x1,y1,… in
//!   frame pixels), `track-id` (guint64); with `facecrop mesh=true` also `mesh`
//!   (GstValueArray of 3 × 468 gdouble: x0,y0,z0,x1,… — x, y in frame pixels, z a relative
//!   depth in the same units, smaller = nearer; MediaPipe's canonical face-mesh order) and
//!   `mesh-score` (gdouble, face presence in \[0, 1\]) and `mesh-age` (guint: frames
//!   since the mesh was computed, 0 = on this frame; with `mesh-interval` > 1 the mesh
//!   of the frames in between is the last one moved with the box).
//! - `affect` (after `avfuse`): see [`super::face_affect_structure`].

use affect::face::MeshResult;
use affect::results::{FaceAffect, FaceBox};
use gst_video::VideoRegionOfInterestMeta;

use super::affect::{face_affect_from_structure, face_affect_structure};

/// The ROI type of faces.
pub const FACE_ROI_TYPE: &str = "face";

/// A face ROI as read back from a buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceRoi {
    /// The ROI meta's id (unique per buffer).
    pub id: i32,
    /// Track id from the `face` param.
    pub track_id: u64,
    /// The ROI rectangle in frame pixels.
    pub bbox: FaceBox,
    /// Detector score, if known.
    pub score: Option<f32>,
    /// Landmarks in frame pixels.
    pub landmarks: Vec<[f32; 2]>,
    /// The 468-point mesh (x, y in frame pixels, z), empty without one.
    pub mesh: Vec<[f32; 3]>,
    /// The mesh's face-presence score, with a mesh.
    pub mesh_score: Option<f32>,
    /// Frames since the mesh was computed (0: this frame), with a mesh.
    pub mesh_age: Option<u32>,
    /// The `affect` param, if present and valid.
    pub affect: Option<FaceAffect>,
}

fn to_rect(b: &FaceBox, frame: Option<(u32, u32)>) -> (u32, u32, u32, u32) {
    let clamp = |v: f32| {
        if v.is_finite() {
            v.max(0.0).round() as u32
        } else {
            0
        }
    };
    let (mut x, mut y, mut w, mut h) = (clamp(b.x), clamp(b.y), clamp(b.width), clamp(b.height));
    if let Some((fw, fh)) = frame {
        x = x.min(fw);
        y = y.min(fh);
        w = w.min(fw - x);
        h = h.min(fh - y);
    }
    (x, y, w, h)
}

/// What the `face` param of a face ROI says besides the track id.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaceParams<'a> {
    /// Detector score.
    pub score: Option<f32>,
    /// Detector landmarks in frame pixels.
    pub landmarks: &'a [[f32; 2]],
    /// The face mesh.
    pub mesh: Option<&'a MeshResult>,
    /// Frames since the mesh was computed (0: on this frame; more with `facecrop
    /// mesh-interval`, the mesh then moved with the box).
    pub mesh_age: u32,
}

/// Adds a face ROI with its `face` param (and `affect` param, if given). Returns the ROI id.
///
/// The rectangle is rounded and clipped to the frame when `frame` (width, height) is given.
pub fn add_face_roi(
    buffer: &mut gst::BufferRef,
    frame: Option<(u32, u32)>,
    track_id: u64,
    bbox: &FaceBox,
    params: &FaceParams<'_>,
    affect: Option<&FaceAffect>,
) -> i32 {
    let FaceParams {
        score,
        landmarks,
        mesh,
        mesh_age,
    } = *params;
    let id = buffer.iter_meta::<VideoRegionOfInterestMeta>().count() as i32;
    let mut roi = VideoRegionOfInterestMeta::add(buffer, FACE_ROI_TYPE, to_rect(bbox, frame));
    roi.set_id(id);
    let mut face = gst::Structure::builder("face").field("track-id", track_id);
    if let Some(s) = score {
        face = face.field("score", s as f64);
    }
    let lm = gst::Array::new(landmarks.iter().flat_map(|p| [p[0] as f64, p[1] as f64]));
    face = face.field("landmarks", lm);
    if let Some(m) = mesh {
        let pts = gst::Array::new(m.points.iter().flat_map(|p| p.map(|v| v as f64)));
        face = face
            .field("mesh", pts)
            .field("mesh-score", m.score as f64)
            .field("mesh-age", mesh_age);
    }
    roi.add_param(face.build());
    if let Some(a) = affect {
        roi.add_param(face_affect_structure(a));
    }
    id
}

/// Reads every face ROI of a buffer.
pub fn face_rois(buffer: &gst::BufferRef) -> Vec<FaceRoi> {
    buffer
        .iter_meta::<VideoRegionOfInterestMeta>()
        .filter(|m| m.roi_type() == FACE_ROI_TYPE)
        .map(|m| {
            let (x, y, w, h) = m.rect();
            let face = m.param("face");
            let landmarks = face
                .and_then(|s| s.get::<gst::Array>("landmarks").ok())
                .map(|a| {
                    let v: Vec<f32> = a
                        .iter()
                        .filter_map(|v| v.get::<f64>().ok())
                        .map(|v| v as f32)
                        .collect();
                    v.chunks_exact(2).map(|c| [c[0], c[1]]).collect()
                })
                .unwrap_or_default();
            let floats = |name: &str| -> Vec<f32> {
                face.and_then(|s| s.get::<gst::Array>(name).ok())
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.get::<f64>().ok())
                            .map(|v| v as f32)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mesh = floats("mesh")
                .chunks_exact(3)
                .map(|c| [c[0], c[1], c[2]])
                .collect();
            FaceRoi {
                id: m.id(),
                track_id: face
                    .and_then(|s| s.get::<u64>("track-id").ok())
                    .unwrap_or(0),
                bbox: FaceBox {
                    x: x as f32,
                    y: y as f32,
                    width: w as f32,
                    height: h as f32,
                },
                score: face
                    .and_then(|s| s.get::<f64>("score").ok())
                    .map(|s| s as f32),
                landmarks,
                mesh,
                mesh_score: face
                    .and_then(|s| s.get::<f64>("mesh-score").ok())
                    .map(|s| s as f32),
                mesh_age: face.and_then(|s| s.get::<u32>("mesh-age").ok()),
                affect: m
                    .param("affect")
                    .and_then(|s| face_affect_from_structure(s).ok()),
            }
        })
        .collect()
}
