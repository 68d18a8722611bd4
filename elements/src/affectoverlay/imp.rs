// SPDX-License-Identifier: MPL-2.0
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::VideoOverlayCompositionMeta;

use super::render::{DrawOptions, render};
use crate::common::LockExt;
use crate::meta::{FaceRoi, face_rois};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "affectoverlay",
        gst::DebugColorFlags::empty(),
        Some("Draws faces, track ids, expressions and valence/arousal bars"),
    )
});

const DEFAULT_DRAW_BOXES: bool = true;
const DEFAULT_DRAW_LABELS: bool = true;
const DEFAULT_DRAW_VA: bool = true;
const DEFAULT_DRAW_LANDMARKS: bool = false;
const DEFAULT_FONT_DESC: &str = "Sans 12";
const DEFAULT_LINE_WIDTH: f64 = 0.0;

/// Formats `gst_video_overlay_composition_blend` handles (the blend path).
const FORMATS: [&str; 19] = [
    "RGBx", "BGRx", "xRGB", "xBGR", "RGBA", "BGRA", "ARGB", "ABGR", "RGB", "BGR", "I420", "YV12",
    "NV12", "NV21", "Y42B", "Y444", "YUY2", "UYVY", "AYUV",
];

#[derive(Debug, Clone, PartialEq)]
struct Settings {
    draw_boxes: bool,
    draw_labels: bool,
    draw_va: bool,
    draw_landmarks: bool,
    font_desc: String,
    line_width: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            draw_boxes: DEFAULT_DRAW_BOXES,
            draw_labels: DEFAULT_DRAW_LABELS,
            draw_va: DEFAULT_DRAW_VA,
            draw_landmarks: DEFAULT_DRAW_LANDMARKS,
            font_desc: DEFAULT_FONT_DESC.into(),
            line_width: DEFAULT_LINE_WIDTH,
        }
    }
}

impl Settings {
    fn draw_options(&self) -> DrawOptions {
        DrawOptions {
            boxes: self.draw_boxes,
            labels: self.draw_labels,
            va: self.draw_va,
            landmarks: self.draw_landmarks,
            font_desc: self.font_desc.clone(),
            line_width: self.line_width,
        }
    }
}

/// The last rendered overlay and what it was rendered from.
struct Cached {
    faces: Vec<FaceRoi>,
    options: DrawOptions,
    size: (u32, u32),
    composition: Option<gst_video::VideoOverlayComposition>,
}

#[derive(Default)]
struct State {
    info: Option<gst_video::VideoInfo>,
    /// Downstream negotiated `meta:GstVideoOverlayComposition`: attach, don't blend.
    attach_meta: bool,
    cache: Option<Cached>,
    rendered: u64,
    reused: u64,
}

#[derive(Default)]
pub struct AffectOverlay {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for AffectOverlay {
    const NAME: &'static str = "GstAffectOverlay";
    type Type = super::AffectOverlay;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for AffectOverlay {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecBoolean::builder("draw-boxes")
                    .nick("Draw boxes")
                    .blurb("Draw each face box, in a colour picked by track id")
                    .default_value(DEFAULT_DRAW_BOXES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("draw-labels")
                    .nick("Draw labels")
                    .blurb("Draw a label above each face: track id, and the top expression with its probability when the face has affect results")
                    .default_value(DEFAULT_DRAW_LABELS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("draw-va")
                    .nick("Draw valence/arousal")
                    .blurb("Draw two bars below each face that grow from their centre: V valence (-1 red .. +1 green), A arousal (-1 blue .. +1 orange)")
                    .default_value(DEFAULT_DRAW_VA)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("draw-landmarks")
                    .nick("Draw landmarks")
                    .blurb("Draw the face landmark points")
                    .default_value(DEFAULT_DRAW_LANDMARKS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("font-desc")
                    .nick("Font description")
                    .blurb("Pango font description of the labels; the size is for a 480-line frame and scales with the frame height")
                    .default_value(Some(DEFAULT_FONT_DESC))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("line-width")
                    .nick("Line width")
                    .blurb("Width of the box lines in pixels (0 = 2 px at 480 lines, scaled with the frame height)")
                    .minimum(0.0)
                    .maximum(100.0)
                    .default_value(DEFAULT_LINE_WIDTH)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.locked();
        match pspec.name() {
            "draw-boxes" => s.draw_boxes = value.get().expect("type checked upstream"),
            "draw-labels" => s.draw_labels = value.get().expect("type checked upstream"),
            "draw-va" => s.draw_va = value.get().expect("type checked upstream"),
            "draw-landmarks" => s.draw_landmarks = value.get().expect("type checked upstream"),
            "font-desc" => {
                s.font_desc = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|f| !f.trim().is_empty())
                    .unwrap_or_else(|| DEFAULT_FONT_DESC.into())
            }
            "line-width" => s.line_width = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.locked();
        match pspec.name() {
            "draw-boxes" => s.draw_boxes.to_value(),
            "draw-labels" => s.draw_labels.to_value(),
            "draw-va" => s.draw_va.to_value(),
            "draw-landmarks" => s.draw_landmarks.to_value(),
            "font-desc" => s.font_desc.to_value(),
            "line-width" => s.line_width.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for AffectOverlay {}

fn raw_caps(features: Option<&[&str]>) -> gst::Caps {
    let b = gst_video::VideoCapsBuilder::new().format_list(
        FORMATS
            .iter()
            .map(|f| gst_video::VideoFormat::from_string(f)),
    );
    match features {
        Some(f) => b.features(f.iter().copied()).build(),
        None => b.build(),
    }
}

/// Plain system-memory raw video, then the same with the overlay composition meta (with
/// and without `memory:SystemMemory` spelled out: caps features only match when equal).
fn src_caps() -> gst::Caps {
    let mut caps = raw_caps(None);
    caps.merge(raw_caps(Some(&[
        gst::CAPS_FEATURE_MEMORY_SYSTEM_MEMORY.as_str(),
        overlay_feature().as_str(),
    ])));
    caps.merge(raw_caps(Some(&[overlay_feature().as_str()])));
    caps
}

impl ElementImpl for AffectOverlay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            crate::common::element_metadata(
                "Affect overlay",
                "Filter/Editor/Video",
                "Draws face boxes, expressions and valence/arousal bars on the video",
                "gst-launch-1.0 videotestsrc num-buffers=10 ! video/x-raw,width=640,height=360 ! affectreplay location=affect.ndjson ! affectoverlay ! videoconvert ! fakesink",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        // Not `common::filter_pad_templates`: only the source pad offers the meta feature.
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            [
                ("src", gst::PadDirection::Src, src_caps()),
                ("sink", gst::PadDirection::Sink, raw_caps(None)),
            ]
            .into_iter()
            .filter_map(|(name, dir, caps)| {
                gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &caps).ok()
            })
            .collect()
        });
        TEMPLATES.as_ref()
    }
}

fn overlay_feature() -> &'static glib::GStr {
    gst_video::CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION
}

/// Whether caps (their first structure) carry the overlay composition meta feature.
fn has_overlay_feature(caps: &gst::CapsRef) -> bool {
    caps.features(0)
        .is_some_and(|f| f.contains(overlay_feature()))
}

impl AffectOverlay {
    /// The overlay of `faces`, from the cache when nothing changed.
    fn composition(
        &self,
        state: &mut State,
        faces: Vec<FaceRoi>,
        options: DrawOptions,
        size: (u32, u32),
    ) -> Option<gst_video::VideoOverlayComposition> {
        if let Some(c) = &state.cache
            && c.size == size
            && c.options == options
            && c.faces == faces
        {
            state.reused += 1;
            return c.composition.clone();
        }
        let composition = match render(&faces, &options, size.0, size.1) {
            Ok(c) => c,
            Err(e) => {
                // A frame without its drawing is better than a stopped pipeline.
                gst::warning!(CAT, imp = self, "cannot draw the overlay: {}", e);
                state.cache = None;
                return None;
            }
        };
        state.rendered += 1;
        state.cache = Some(Cached {
            faces,
            options,
            size,
            composition: composition.clone(),
        });
        composition
    }
}

impl BaseTransformImpl for AffectOverlay {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.locked() = Some(State::default());
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(s) = self.state.locked().take() {
            gst::debug!(
                CAT,
                imp = self,
                "rendered {} overlays, reused {}",
                s.rendered,
                s.reused
            );
        }
        Ok(())
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let out = if caps.is_any() {
            caps.clone()
        } else {
            // Without the meta feature: all of the sink side, and what the source side
            // offers once the feature is removed.
            let mut plain = gst::Caps::new_empty();
            for (s, f) in caps.iter_with_features() {
                let mut features = f.to_owned();
                features.remove(overlay_feature());
                let features = (!features.is_empty()).then_some(features);
                plain.merge_structure_full(s.to_owned(), features);
            }
            if direction == gst::PadDirection::Sink {
                // Sink caps → source caps: plain first (blend), then the same with the
                // meta feature, which only a downstream that asks for it gets.
                let mut with = gst::Caps::new_empty();
                for (s, f) in plain.iter_with_features() {
                    let mut features = f.to_owned();
                    features.add(overlay_feature());
                    with.merge_structure_full(s.to_owned(), Some(features));
                    // System memory may also be spelled with the meta feature alone.
                    if f.is_equal(&gst::CAPS_FEATURES_MEMORY_SYSTEM_MEMORY) {
                        with.merge_structure_full(
                            s.to_owned(),
                            Some(gst::CapsFeatures::new([overlay_feature()])),
                        );
                    }
                }
                plain.merge(with);
            }
            plain
        };
        gst::trace!(
            CAT,
            imp = self,
            "transformed {:?} caps {} into {}",
            direction,
            caps,
            out
        );
        Some(match filter {
            Some(f) => f.intersect_with_mode(&out, gst::CapsIntersectMode::First),
            None => out,
        })
    }

    fn set_caps(&self, incaps: &gst::Caps, outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "invalid video caps {}", incaps))?;
        let attach_meta = has_overlay_feature(outcaps);
        gst::debug!(
            CAT,
            imp = self,
            "{} the overlay on {}",
            if attach_meta { "attaching" } else { "blending" },
            outcaps
        );
        if let Some(s) = self.state.locked().as_mut() {
            s.info = Some(info);
            s.attach_meta = attach_meta;
            s.cache = None;
        }
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let faces = face_rois(buf);
        if faces.is_empty() {
            return Ok(gst::FlowSuccess::Ok);
        }
        let options = self.settings.locked().draw_options();
        let (composition, info, attach_meta) = {
            let mut guard = self.state.locked();
            let Some(state) = guard.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            let Some(info) = state.info.clone() else {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("no caps before the first buffer")
                );
                return Err(gst::FlowError::NotNegotiated);
            };
            let size = (info.width(), info.height());
            let attach_meta = state.attach_meta;
            (
                self.composition(state, faces, options, size),
                info,
                attach_meta,
            )
        };
        let Some(composition) = composition else {
            return Ok(gst::FlowSuccess::Ok);
        };

        if attach_meta {
            if let Some(mut meta) = buf.meta_mut::<VideoOverlayCompositionMeta>() {
                // Keep what upstream already put there, ours on top.
                let rects: Vec<gst_video::VideoOverlayRectangle> =
                    meta.overlay().iter().chain(composition.iter()).collect();
                match gst_video::VideoOverlayComposition::new(&rects) {
                    Ok(c) => meta.set_overlay(&c),
                    Err(e) => gst::warning!(CAT, imp = self, "cannot merge overlays: {}", e),
                }
            } else {
                VideoOverlayCompositionMeta::add(buf, &composition);
            }
            return Ok(gst::FlowSuccess::Ok);
        }

        let mut frame =
            gst_video::VideoFrameRef::from_buffer_ref_writable(buf, &info).map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ("cannot map the video frame for writing")
                );
                gst::FlowError::Error
            })?;
        if let Err(e) = composition.blend(&mut frame) {
            gst::warning!(CAT, imp = self, "cannot blend the overlay: {}", e);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
