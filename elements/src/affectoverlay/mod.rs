// SPDX-License-Identifier: MPL-2.0
//! `affectoverlay`: draws faces and their affect on the video.
//!
//! The element's documentation is on [`AffectOverlay`].

use gst::glib;
use gst::prelude::*;

mod imp;
mod render;

glib::wrapper! {
/**
 * SECTION:element-affectoverlay
 *
 * For every face ROI of type `face` on a buffer (see [`crate::meta::face_rois`]) it
 * draws, each part switched by a property:
 *
 * - `draw-boxes`: the face box, in a colour picked by track id (a thin dark outline
 *   keeps it visible on bright pictures);
 * - `draw-labels`: a label above the box (inside it when the box touches the top of
 *   the frame) with the track id, and, when the face has an `affect` param, the top
 *   expression and its probability: `#3 Happiness 86%`;
 * - `draw-va`: below the box (inside it at the bottom of the frame), a small dark
 *   panel with two horizontal bars that grow from their centre tick, to the left for
 *   negative values and to the right for positive ones, over half the bar width at
 *   ±1: `V` valence, coloured red (−1) → yellow (0) → green (+1), and `A` arousal,
 *   coloured blue (−1) → orange (+1);
 * - `draw-landmarks`: the landmark points (off by default).
 *
 * Faces without an `affect` param (straight after `facecrop`) get the box and the
 * track id only. Text uses `font-desc` (a Pango font description, default `Sans 12`);
 * the font size and the automatic line width (`line-width=0`) are meant for a 480-line
 * frame and scale with the frame height.
 *
 * Rendering: cairo and Pango draw into one premultiplied ARGB surface that covers the
 * faces, wrapped in a `GstVideoOverlayComposition`. On plain raw video the composition
 * is blended into the frame (any format `gst_video_overlay_composition_blend`
 * handles: RGB/BGR with or without alpha, I420, YV12, NV12, NV21, Y42B, Y444, YUY2,
 * UYVY, AYUV); when downstream negotiates the caps feature
 * `meta:GstVideoOverlayComposition` (a compositor or sink that draws overlays itself;
 * ask for it with a caps filter) the frame stays untouched and the composition is
 * attached as a `GstVideoOverlayCompositionMeta`. Frames without faces pass unchanged,
 * and the composition is reused while the faces and the properties stay the same.
 *
 * ```bash
 * gst-launch-1.0 filesrc location=talk.mp4 ! decodebin ! videoconvert ! \
 *   affectreplay location=affect.ndjson ! affectoverlay ! videoconvert ! autovideosink
 * ```
 */
    pub struct AffectOverlay(ObjectSubclass<imp::AffectOverlay>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `affectoverlay` with the plugin.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "affectoverlay",
        gst::Rank::NONE,
        AffectOverlay::static_type(),
    )
}
