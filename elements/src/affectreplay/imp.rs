// SPDX-License-Identifier: MPL-2.0
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::{LazyLock, Mutex};

use affect::results::{AffectRecord, FaceAffect};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use crate::common::LockExt;
use crate::meta::{AffectMessage, FaceParams, add_affect_meta, add_face_roi};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "affectreplay",
        gst::DebugColorFlags::empty(),
        Some("Replays recorded affect results as metas"),
    )
});

const DEFAULT_POST_MESSAGES: bool = false;

#[derive(Debug, Clone)]
struct Settings {
    location: Option<String>,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: None,
            post_messages: DEFAULT_POST_MESSAGES,
        }
    }
}

#[derive(Default)]
struct State {
    /// Records by pts.
    frames: BTreeMap<u64, Vec<FaceAffect>>,
    info: Option<gst_video::VideoInfo>,
    attached: u64,
}

#[derive(Default)]
pub struct AffectReplay {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for AffectReplay {
    const NAME: &'static str = "GstAffectReplay";
    type Type = super::AffectReplay;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for AffectReplay {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb("NDJSON file of affect records (one line per frame per face, as avfuse writes)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post an `affect` element message for every frame that has records")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.locked();
        match pspec.name() {
            "location" => s.location = value.get().expect("type checked upstream"),
            "post-messages" => s.post_messages = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.locked();
        match pspec.name() {
            "location" => s.location.to_value(),
            "post-messages" => s.post_messages.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for AffectReplay {}

impl ElementImpl for AffectReplay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            crate::common::element_metadata(
                "Affect replay",
                "Filter/Analyzer/Video",
                "Attaches affect results recorded in an NDJSON file to video buffers",
                "gst-launch-1.0 videotestsrc num-buffers=50 ! affectreplay location=affect.ndjson post-messages=true ! fakesink",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::builder("video/x-raw").build();
            crate::common::filter_pad_templates(&caps)
        });
        TEMPLATES.as_ref()
    }
}

impl AffectReplay {
    fn read_records(path: &str) -> Result<BTreeMap<u64, Vec<FaceAffect>>, gst::ErrorMessage> {
        let file = std::fs::File::open(path).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("cannot open {}: {}", path, e)
            )
        })?;
        let mut frames: BTreeMap<u64, Vec<FaceAffect>> = BTreeMap::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| {
                gst::error_msg!(gst::ResourceError::Read, ("{}:{}: {}", path, i + 1, e))
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let rec = AffectRecord::from_json_line(&line).map_err(|e| {
                gst::error_msg!(gst::StreamError::Format, ("{}:{}: {}", path, i + 1, e))
            })?;
            frames.entry(rec.pts).or_default().push(rec.face);
        }
        Ok(frames)
    }
}

impl BaseTransformImpl for AffectReplay {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let location = self.settings.locked().location.clone();
        let Some(location) = location.filter(|l| !l.is_empty()) else {
            return Err(gst::error_msg!(
                gst::ResourceError::NotFound,
                ("property `location` is not set")
            ));
        };
        let frames = Self::read_records(&location)?;
        gst::info!(
            CAT,
            imp = self,
            "{} frames with records in {}",
            frames.len(),
            location
        );
        *self.state.locked() = Some(State {
            frames,
            ..Default::default()
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(s) = self.state.locked().take() {
            gst::debug!(CAT, imp = self, "attached records to {} frames", s.attached);
        }
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "invalid video caps {}", incaps))?;
        if let Some(s) = self.state.locked().as_mut() {
            s.info = Some(info);
        }
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(pts) = buf.pts() else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let start = pts.nseconds();
        let end = start + buf.duration().map_or(1, |d| d.nseconds().max(1));
        let (faces, frame) = {
            let mut guard = self.state.locked();
            let Some(state) = guard.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            let faces: Vec<FaceAffect> = state
                .frames
                .range(start..end)
                .flat_map(|(_, v)| v.iter().cloned())
                .collect();
            if !faces.is_empty() {
                state.attached += 1;
            }
            (faces, state.info.as_ref().map(|i| (i.width(), i.height())))
        };
        if faces.is_empty() {
            return Ok(gst::FlowSuccess::Ok);
        }
        for f in &faces {
            add_face_roi(
                buf,
                frame,
                f.track_id,
                &f.bbox,
                &FaceParams::default(),
                Some(f),
            );
        }
        if let Err(e) = add_affect_meta(buf, &faces) {
            gst::warning!(CAT, imp = self, "cannot add GstAffectMeta: {}", e);
        }
        let post = self.settings.locked().post_messages;
        if post {
            let obj = self.obj();
            let segment = obj.segment();
            let segment = segment.downcast_ref::<gst::ClockTime>();
            let msg = AffectMessage {
                timestamp: Some(pts),
                running_time: segment.and_then(|s| s.to_running_time(pts)),
                stream_time: segment.and_then(|s| s.to_stream_time(pts)),
                duration: buf.duration(),
                faces,
            };
            crate::common::post_element_message(&*obj, msg.to_structure());
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
