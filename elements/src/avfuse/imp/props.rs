// SPDX-License-Identifier: MPL-2.0
//! Properties of `avfuse` and its construction (the always-present video_sink).

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::*;
use crate::common::{LockExt, string_property};

impl ObjectImpl for AvFuse {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut v = ModelSettings::properties(DEFAULT_MODEL);
            v.extend(ModelSettings::batch_properties());
            v.extend([
                glib::ParamSpecEnum::builder_with_default("mode", FusionMode::Lookahead)
                    .nick("Alignment mode")
                    .blurb("lookahead: interpolate audio features onto frame times, waiting `lookahead` ns of audio (reported as latency); causal: latest finished audio window, no latency")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("lookahead")
                    .nick("Lookahead")
                    .blurb("ns: audio vectors further than this from a frame are not used (audio mask 0); in mode=lookahead also how long a frame waits for audio (the latency)")
                    .minimum(1)
                    .maximum(10_000_000_000)
                    .default_value(DEFAULT_LOOKAHEAD_NS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("audio-timeout")
                    .nick("Audio timeout")
                    .blurb("ns, non-live pipelines: when a linked audio_sink has received nothing while a video frame waited this long (a file without audio, a blocked or never-linked audio branch), warn and treat the audio as absent (audio mask 0); 0 = wait forever")
                    .default_value(DEFAULT_AUDIO_TIMEOUT_NS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("audio-attribution", AudioAttribution::Speaker)
                    .nick("Audio attribution")
                    .blurb("Which faces get the voice. speaker: the face(s) whose mouth moves in sync with the voice (active-speaker detection from facecrop mesh=true; a lone face keeps the voice unless it is clearly not speaking, e.g. a still face under an off-screen narrator; without meshes it falls back to all, with a warning); the others get audio mask 0. all: every face. none: audio is ignored")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post an `affect` element message per output frame")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("location")
                    .nick("NDJSON location")
                    .blurb("Write one JSON line per face per frame to this file (empty: none)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("csv-location")
                    .nick("CSV prefix")
                    .blurb("Write Aff-Wild2 style CSV files PREFIX_track<id>.va.csv and PREFIX_track<id>.expr.csv (empty: none)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("dump-location")
                    .nick("Feature dump location")
                    .blurb("Path template with %u = track id (e.g. dump/track%u.safetensors): per face track, the exact row the fusion model read for each video frame since the segment start (the newest frame of the track's window: aligned visual vector, audio vector, both masks, pts, face box; zeros and masks 0 where the track has no window), written atomically at EOS or stop in the safetensors feature format of affect::dataset::features, readable from Python (empty: none)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("smoothing")
                    .nick("Smoothing")
                    .blurb("Exponential smoothing of valence/arousal and probabilities per track: y = s*y_prev + (1-s)*x (0 = off)")
                    .minimum(0.0)
                    .maximum(0.99)
                    .default_value(0.0)
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
        // GObject checked the value's type against the ParamSpec before calling us.
        const CHECKED: &str = "type checked upstream";
        match pspec.name() {
            "mode" => s.mode = value.get().expect(CHECKED),
            "lookahead" => s.lookahead = value.get().expect(CHECKED),
            "audio-timeout" => s.audio_timeout = value.get().expect(CHECKED),
            "post-messages" => s.post_messages = value.get().expect(CHECKED),
            "location" => s.location = string_property(value),
            "csv-location" => s.csv_location = string_property(value),
            "smoothing" => s.smoothing = value.get().expect(CHECKED),
            "dump-location" => s.dump_location = string_property(value),
            "audio-attribution" => {
                s.attribution = value.get::<AudioAttribution>().expect(CHECKED).into()
            }
            other => unimplemented!("property {other}"),
        }
        drop(s);
        if matches!(pspec.name(), "mode" | "lookahead") {
            self.update_latency();
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.locked();
        if let Some(v) = s.model.property(pspec) {
            return v;
        }
        match pspec.name() {
            "mode" => s.mode.to_value(),
            "lookahead" => s.lookahead.to_value(),
            "audio-timeout" => s.audio_timeout.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "location" => s.location.to_value(),
            "csv-location" => s.csv_location.to_value(),
            "smoothing" => s.smoothing.to_value(),
            "dump-location" => s.dump_location.to_value(),
            "audio-attribution" => match s.attribution {
                affect::speaker::Attribution::Speaker => AudioAttribution::Speaker,
                affect::speaker::Attribution::All => AudioAttribution::All,
                affect::speaker::Attribution::None => AudioAttribution::None,
            }
            .to_value(),
            other => unimplemented!("property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        if let Some(templ) = obj.class().pad_template("video_sink") {
            let pad = gst::PadBuilder::<gst_base::AggregatorPad>::from_template(&templ)
                .name("video_sink")
                .build();
            if obj.add_pad(&pad).is_err() {
                gst::error!(CAT, imp = self, "cannot add the video_sink pad");
            }
        }
        // Not `ignore-inactive-pads`: with it a live pipeline whose audio never arrives
        // would count as ready and spin on NEED_DATA instead of waiting for the deadline.
        self.update_latency();
    }
}
