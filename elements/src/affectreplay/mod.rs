// SPDX-License-Identifier: MPL-2.0
//! `affectreplay`: attaches affect results recorded in an NDJSON file back onto video.
//!
//! The element's documentation is on [`AffectReplay`].

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
/**
 * SECTION:element-affectreplay
 *
 * Reads the NDJSON that `avfuse location=…` writes (one line per frame per face, see
 * [`affect::results::AffectRecord`]) and, for each video buffer, attaches the records
 * whose `pts` falls inside the buffer (`[pts, pts + duration)`, or exactly `pts` when
 * the buffer has no duration) as face ROI metas (`face` + `affect` params), the
 * `GstAffectMeta` custom meta, and optionally an `affect` bus message — exactly what a
 * live `avfuse` attaches. Use it to overlay results computed offline, to re-annotate a
 * recording without re-running models, or to feed an app the same metas from a file.
 *
 * ```bash
 * gst-launch-1.0 filesrc location=talk.mp4 ! decodebin ! videoconvert ! \
 *   affectreplay location=affect.ndjson ! fakesink
 * ```
 */
    pub struct AffectReplay(ObjectSubclass<imp::AffectReplay>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `affectreplay` with the plugin.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "affectreplay",
        gst::Rank::NONE,
        AffectReplay::static_type(),
    )
}
