// SPDX-License-Identifier: MPL-2.0
//! Properties of `facecrop`.

use gst::glib;
use gst::prelude::*;

use super::*;

impl ObjectImpl for FaceCrop {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut v = ModelSettings::properties(DEFAULT_MODEL);
            v.extend(ModelSettings::batch_properties());
            v.extend([
                glib::ParamSpecFloat::builder("score-threshold")
                    .nick("Score threshold")
                    .blurb("Minimum detector confidence (0.65 holds on real footage: at 0.5 full-range BlazeFace takes title-card letters for faces)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_SCORE_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("nms-threshold")
                    .nick("NMS threshold")
                    .blurb("IoU above which two detections are merged into one face (weighted NMS)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_NMS_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-faces")
                    .nick("Max faces")
                    .blurb("Keep at most this many faces per frame, best first (0 = no limit)")
                    .default_value(DEFAULT_MAX_FACES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-face-size")
                    .nick("Min face size")
                    .blurb("Ignore faces whose box is smaller than this many pixels (longer side)")
                    .maximum(16384)
                    .default_value(DEFAULT_MIN_FACE_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("crop-size")
                    .nick("Crop size")
                    .blurb("Side of the aligned square RGB face crop in pixels")
                    .minimum(16)
                    .maximum(1024)
                    .default_value(DEFAULT_CROP_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFloat::builder("crop-margin")
                    .nick("Crop margin")
                    .blurb("Extra context around the aligned face, as a fraction (0 = the standard ArcFace crop)")
                    .minimum(0.0)
                    .maximum(2.0)
                    .default_value(DEFAULT_CROP_MARGIN)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("detect-interval")
                    .nick("Detect interval")
                    .blurb("Run the detector every N frames and follow faces with the tracker in between; 0 = auto: only when the picture or a tracked face changed, at least every max-detect-interval frames")
                    .minimum(0)
                    .maximum(1000)
                    .default_value(DEFAULT_DETECT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-detect-interval")
                    .nick("Max detect interval")
                    .blurb("detect-interval=0 (auto): run the detector at least every N frames")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_MAX_DETECT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-age")
                    .nick("Max age")
                    .blurb("Frames a face may go undetected before its track ends (at least 2 x detect-interval is used)")
                    .minimum(1)
                    .maximum(10000)
                    .default_value(DEFAULT_MAX_AGE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("mesh")
                    .nick("Face mesh")
                    .blurb("Run the 468-point face mesh (mesh-model) on every tracked face, all faces in one batch, and attach it to the face ROI (`mesh`, `mesh-score`) and the crop meta; faces under 32 pixels and meshes with a face-presence score under 0.5 get none. Needed by avfuse audio-attribution=speaker")
                    .default_value(DEFAULT_MESH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("mesh-interval")
                    .nick("Mesh interval")
                    .blurb("Run the mesh on a face every N frames (a new face at once); in between its last mesh moves with its box")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_MESH_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("mesh-model")
                    .nick("Mesh model")
                    .blurb("Face-mesh ONNX model (role face-mesh): a path or a bundled name; the bundled face-mesh is MediaPipe FaceMesh, Apache-2.0")
                    .default_value(Some(DEFAULT_MESH_MODEL))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post a `facecrop` element message per frame (timestamp, faces: box, score, track-id, landmarks)")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
            ]);
            v
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.locked();
        if s.model.set_property(value, pspec) {
            return;
        }
        match pspec.name() {
            "score-threshold" => s.score_threshold = value.get().expect("type checked upstream"),
            "nms-threshold" => s.nms_threshold = value.get().expect("type checked upstream"),
            "max-faces" => s.max_faces = value.get().expect("type checked upstream"),
            "min-face-size" => s.min_face_size = value.get().expect("type checked upstream"),
            "crop-size" => s.crop_size = value.get().expect("type checked upstream"),
            "crop-margin" => s.crop_margin = value.get().expect("type checked upstream"),
            "detect-interval" => s.detect_interval = value.get().expect("type checked upstream"),
            "mesh" => s.mesh = value.get().expect("type checked upstream"),
            "mesh-interval" => s.mesh_interval = value.get().expect("type checked upstream"),
            "mesh-model" => s.mesh_model = crate::common::string_property(value),
            "max-detect-interval" => {
                s.max_detect_interval = value.get().expect("type checked upstream")
            }
            "max-age" => s.max_age = value.get().expect("type checked upstream"),
            "post-messages" => s.post_messages = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.locked();
        if let Some(v) = s.model.property(pspec) {
            return v;
        }
        match pspec.name() {
            "score-threshold" => s.score_threshold.to_value(),
            "nms-threshold" => s.nms_threshold.to_value(),
            "max-faces" => s.max_faces.to_value(),
            "min-face-size" => s.min_face_size.to_value(),
            "crop-size" => s.crop_size.to_value(),
            "crop-margin" => s.crop_margin.to_value(),
            "detect-interval" => s.detect_interval.to_value(),
            "mesh" => s.mesh.to_value(),
            "mesh-interval" => s.mesh_interval.to_value(),
            "mesh-model" => s.mesh_model.to_value(),
            "max-detect-interval" => s.max_detect_interval.to_value(),
            "max-age" => s.max_age.to_value(),
            "post-messages" => s.post_messages.to_value(),
            _ => unimplemented!(),
        }
    }
}
