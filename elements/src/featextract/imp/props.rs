// SPDX-License-Identifier: MPL-2.0
//! Properties of `featextract`.

use gst::glib;
use gst::prelude::*;

use super::*;

impl ObjectImpl for FeatExtract {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut v = ModelSettings::properties_with(
                AUTO,
                "ONNX feature model: auto = fer-mini-xception (MIT) on video, voice-prosody (MPL-2.0) on audio; oww-speech-embedding is offered on audio (CC BY-NC-SA 4.0: non-commercial use only); or a path, or the name of a bundled model in the weights folder (AFFECT_WEIGHTS_DIR)",
            );
            v.extend(ModelSettings::batch_properties());
            v.extend([
                glib::ParamSpecUInt::builder("batch-size")
                    .nick("Batch size")
                    .blurb("Most face crops (video) or windows (audio) per model run; all faces of a frame run together up to this many")
                    .minimum(1)
                    .maximum(1024)
                    .default_value(DEFAULT_BATCH_SIZE as u32)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb("Video: run the model every N frames; in between each face carries its last result marked reused (new faces always run). 0 = auto: per face, only when its aligned crop changed (mean absolute difference over 4 grey levels) or 10 frames passed")
                    .minimum(0)
                    .maximum(10_000)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("window")
                    .nick("Window")
                    .blurb("Audio: samples per model run at the model's rate (0 = affect.input.window of the model)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("hop")
                    .nick("Hop")
                    .blurb("Audio: samples between window starts at the model's rate (0 = affect.input.hop of the model)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("output")
                    .nick("Output")
                    .blurb("Graph output used as the feature vector (empty = the last output named by affect.output.names)")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("native")
                    .nick("Native")
                    .blurb("Compute the output natively when the model's contract declares a computation this plugin implements (affect.native, e.g. voice-prosody/1: each 10 ms frame once instead of once per window); false always runs the ONNX graph")
                    .default_value(DEFAULT_NATIVE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post a `features` element message per frame (video) or window (audio) with vectors and probabilities")
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
            "batch-size" => s.batch_size = value.get().expect("type checked upstream"),
            "interval" => s.interval = value.get().expect("type checked upstream"),
            "window" => s.window = value.get().expect("type checked upstream"),
            "hop" => s.hop = value.get().expect("type checked upstream"),
            "output" => s.output = string_property(value),
            "native" => s.native = value.get().expect("type checked upstream"),
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
            "batch-size" => s.batch_size.to_value(),
            "interval" => s.interval.to_value(),
            "window" => s.window.to_value(),
            "hop" => s.hop.to_value(),
            "output" => s.output.to_value(),
            "native" => s.native.to_value(),
            "post-messages" => s.post_messages.to_value(),
            _ => unimplemented!(),
        }
    }
}
