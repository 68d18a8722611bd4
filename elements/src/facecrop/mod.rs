// SPDX-License-Identifier: MPL-2.0
//! `facecrop`: detects, aligns, crops and tracks every face in a video stream.
//!
//! The element's documentation is on [`FaceCrop`].

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
/**
 * SECTION:element-facecrop
 *
 * A video filter that passes frames through untouched and attaches, per face, a
 * `GstVideoRegionOfInterestMeta` of type `face` (param `face`: score, landmarks,
 * track-id) and a [`FaceCropMeta`](crate::meta::FaceCropMeta) holding the aligned RGB
 * crop (shared, never copied). With `post-messages=true` it posts a `facecrop` element
 * message per frame.
 *
 * Detector: BlazeFace full range (`model=blazeface-full`, default: small and distant
 * faces, broadcast footage) or short range (`model=blazeface-short`: one or a few
 * large faces within ~2 m, selfie and webcam) or MTCNN (`model=mtcnn`: three stages,
 * five landmarks for better alignment, about 15× slower: pair it with
 * `detect-interval`). With `detect-interval=N` the detector
 * runs every N frames and the tracker carries faces in between.
 * `detect-interval=0` is adaptive: the detector runs when the picture changed (a cut,
 * a camera move), a tracked face's region changed (it moved, turned or left) or a small
 * part of the picture changed a lot (someone walking in), judged on a 48×27 grey
 * thumbnail, and at least every `max-detect-interval` frames (15); each `facecrop`
 * message says whether it ran (`detected`). On the test clips it runs on 1 frame in 5
 * to 6 with boxes at mean IoU 0.97 to per-frame detection.
 *
 * `mesh=true` adds MediaPipe's 468-point face mesh (`mesh-model`, bundled `face-mesh`,
 * Apache-2.0) to every tracked face: all faces of a frame in one model run, on the
 * rotated square crop MediaPipe uses (1.5 × the box, eyes level), mapped back to frame
 * pixels; `mesh` (3 × 468 doubles: x, y, z) and `mesh-score` on the ROI's `face` param and
 * on the crop meta. `mesh-interval=N` runs it every N frames per face (the mesh moves
 * with the box in between). Faces under 32 pixels (too small for lips to show) and meshes
 * whose face-presence score is under 0.5 get no mesh. On `single_face.mp4` the mesh's eye
 * and mouth centres lie within 0.03 face widths of BlazeFace's keypoints. `avfuse
 * audio-attribution=speaker` (its default) reads the meshes to tell which face speaks.
 *
 * ```bash
 * gst-launch-1.0 -m videotestsrc num-buffers=30 ! video/x-raw,width=640,height=360 ! \
 *   facecrop post-messages=true ! fakesink
 * ```
 */
    pub struct FaceCrop(ObjectSubclass<imp::FaceCrop>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `facecrop` with the plugin.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "facecrop",
        gst::Rank::NONE,
        FaceCrop::static_type(),
    )
}
