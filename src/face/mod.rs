// SPDX-License-Identifier: MPL-2.0
//! Face detection post-processing, pre-processing, alignment and tracking: the numeric
//! core of the `facecrop` element, free of GStreamer and of ONNX Runtime.
//!
//! One frame goes through these steps:
//!
//! 1. [`Preprocessor::prepare`] letterboxes the frame into the detector's square input
//!    (aspect ratio kept, black padding, bilinear resampling, `(x - mean) / std`) and
//!    returns the [`Letterbox`] geometry used.
//! 2. The detector model runs (see [`crate::runtime::Model::run_f32`]).
//! 3. [`BlazeFaceDecoder::decode`] turns the raw outputs into [`Detection`]s in
//!    normalised input coordinates; [`weighted_nms`] (or [`nms`]) merges duplicates;
//!    [`Detection::to_frame`] maps them to frame pixels; [`filter_detections`] applies
//!    `min-face-size` and `max-faces`. [`postprocess`] does these three steps at once.
//! 4. [`Tracker::update`] gives every face a stable track id ([`Tracker::predict`] holds
//!    boxes on frames where the detector does not run).
//! 5. [`AlignTemplate`] + [`similarity_transform`] compute the similarity that maps the
//!    face's landmarks onto a canonical template, and [`warp_rgb`] cuts the aligned crop.
//!
//! Coordinates are continuous pixel coordinates: pixel `(i, j)` covers
//! `[i, i + 1) × [j, j + 1)` and its centre is `(i + 0.5, j + 0.5)`. Normalised
//! coordinates are fractions of the model input (`0..1` across the letterboxed square).

mod align;
mod anchors;
mod decode;
mod frame;
mod letterbox;
pub mod mesh;
mod mtcnn;
mod nms;
mod schedule;
mod track;
mod warp;
mod yuv;

pub use align::{
    ARCFACE_112, AlignTemplate, BLAZEFACE_ALIGN_INDICES, Similarity, blazeface_arcface_112,
    similarity_transform,
};
pub use anchors::{Anchor, SsdAnchorOptions, ssd_anchors};
pub use decode::{BlazeFaceDecoder, DetectorKind};
pub use frame::{Frame, PixelFormat};
pub use letterbox::{Letterbox, Preprocessor, Resample, TensorSpec};
pub use mesh::{FaceMesh, MeshResult, MeshRoi};
pub use mtcnn::{MtcnnConfig, MtcnnDetector, scale_pyramid};
pub use nms::{
    PostProcess, SuppressionKind, filter_detections, iou, nms, postprocess, weighted_nms,
};
pub use schedule::{DetectReason, DetectSchedule, ScheduleConfig, Thumbnail};
pub use track::{Motion, TrackedFace, Tracker, TrackerConfig};
pub use warp::{warp_rgb, warp_rgb_into};
pub use yuv::{Yuv420, YuvMatrix};

use crate::results::FaceBox;

/// Errors of the face pipeline. Each says what is wrong with which input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaceError {
    /// A frame or tensor size is zero, too large, or does not match its buffer.
    #[error("invalid size: {0}")]
    Size(String),
    /// A model output is missing or has the wrong shape.
    #[error("detector output: {0}")]
    Output(String),
    /// A parameter is out of range (NaN, negative, …).
    #[error("invalid parameter: {0}")]
    Parameter(String),
    /// The detector kind is unknown or not supported by this code path.
    #[error("unsupported detector kind `{0}` (expected blazeface-short, blazeface-full or mtcnn)")]
    DetectorKind(String),
    /// Landmarks cannot be aligned (too few, degenerate, not finite).
    #[error("alignment: {0}")]
    Alignment(String),
}

/// An axis-aligned box given by its corners (`x0 <= x1`, `y0 <= y1`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BBox {
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge.
    pub x1: f32,
    /// Bottom edge.
    pub y1: f32,
}

impl BBox {
    /// A box from its corners.
    pub fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Self {
        BBox { x0, y0, x1, y1 }
    }

    /// A box from its centre and size.
    pub fn from_centre(cx: f32, cy: f32, w: f32, h: f32) -> Self {
        BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
    }

    /// Width (may be negative for an invalid box).
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }

    /// Height (may be negative for an invalid box).
    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }

    /// Area, 0 for empty or invalid boxes.
    pub fn area(&self) -> f32 {
        let a = self.width().max(0.0) * self.height().max(0.0);
        if a.is_finite() { a } else { 0.0 }
    }

    /// Centre point.
    pub fn centre(&self) -> [f32; 2] {
        [(self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0]
    }

    /// Whether every coordinate is finite and the box has positive width and height.
    pub fn is_valid(&self) -> bool {
        [self.x0, self.y0, self.x1, self.y1]
            .iter()
            .all(|v| v.is_finite())
            && self.x1 > self.x0
            && self.y1 > self.y0
    }

    /// The box as [`FaceBox`] (top-left corner and size).
    pub fn to_face_box(&self) -> FaceBox {
        FaceBox {
            x: self.x0,
            y: self.y0,
            width: self.width(),
            height: self.height(),
        }
    }

    /// A box from a [`FaceBox`].
    pub fn from_face_box(b: &FaceBox) -> Self {
        BBox::new(b.x, b.y, b.x + b.width, b.y + b.height)
    }
}

/// One detected face: box, landmarks and score, in one coordinate system (normalised
/// model input coordinates straight from the decoder, frame pixels after
/// [`Detection::to_frame`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The face box.
    pub bbox: BBox,
    /// Landmarks in the detector's order. BlazeFace: right eye, left eye, nose tip, mouth
    /// centre, right ear tragion, left ear tragion ("right" is the subject's right, which
    /// is on the image's left for a frontal face). MTCNN: the five ArcFace points.
    pub keypoints: Vec<[f32; 2]>,
    /// Confidence in `[0, 1]`.
    pub score: f32,
}

impl Detection {
    /// Maps box and landmarks from normalised model-input coordinates to frame pixels.
    pub fn to_frame(&self, letterbox: &Letterbox) -> Detection {
        let [x0, y0] = letterbox.normalised_to_frame([self.bbox.x0, self.bbox.y0]);
        let [x1, y1] = letterbox.normalised_to_frame([self.bbox.x1, self.bbox.y1]);
        Detection {
            bbox: BBox::new(x0, y0, x1, y1),
            keypoints: self
                .keypoints
                .iter()
                .map(|&p| letterbox.normalised_to_frame(p))
                .collect(),
            score: self.score,
        }
    }

    /// The box as a [`FaceBox`].
    pub fn face_box(&self) -> FaceBox {
        self.bbox.to_face_box()
    }
}
