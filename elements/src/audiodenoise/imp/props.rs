// SPDX-License-Identifier: MPL-2.0
//! Properties of `audiodenoise`: the settings, their defaults and the engine configuration
//! they make; the sink-pad probe that explains refused caps is set up at construction.

use std::sync::LazyLock;

use affect::audio::engine::{self, EngineConfig, VadKind};
use affect::audio::{HysteresisConfig, RATE};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;

use super::AudioDenoise;
use crate::audiodenoise::{Gate, Vad};
use crate::common::{LockExt, ModelSettings};

const DEFAULT_MODEL: &str = "silero-vad";
const DEFAULT_VAD: Vad = Vad::Silero;
const DEFAULT_GATE: Gate = Gate::None;
const DEFAULT_GATE_ATTENUATION: f64 = -20.0;
const DEFAULT_SPEECH_THRESHOLD: f64 = 0.5;
const DEFAULT_MIN_SPEECH_MS: u32 = 250;
const DEFAULT_MIN_SILENCE_MS: u32 = 300;
/// Default Silero look-ahead (ms): two 32 ms chunks.
const DEFAULT_VAD_LOOKAHEAD_MS: u32 = 64;
const DEFAULT_ENABLED: bool = true;
const DEFAULT_STRENGTH: f64 = 1.0;
const DEFAULT_POST_MESSAGES: bool = true;
const DEFAULT_NATIVE: bool = true;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) model: ModelSettings,
    pub(super) vad: Vad,
    gate: Gate,
    gate_attenuation: f64,
    threshold: f64,
    min_speech_ms: u32,
    min_silence_ms: u32,
    vad_lookahead_ms: u32,
    enabled: bool,
    strength: f64,
    pub(super) post_messages: bool,
    pub(super) native: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: ModelSettings::new(DEFAULT_MODEL),
            vad: DEFAULT_VAD,
            gate: DEFAULT_GATE,
            gate_attenuation: DEFAULT_GATE_ATTENUATION,
            threshold: DEFAULT_SPEECH_THRESHOLD,
            min_speech_ms: DEFAULT_MIN_SPEECH_MS,
            min_silence_ms: DEFAULT_MIN_SILENCE_MS,
            vad_lookahead_ms: DEFAULT_VAD_LOOKAHEAD_MS,
            enabled: DEFAULT_ENABLED,
            strength: DEFAULT_STRENGTH,
            post_messages: DEFAULT_POST_MESSAGES,
            native: DEFAULT_NATIVE,
        }
    }
}

impl Settings {
    /// The engine configuration for `channels` interleaved channels.
    pub(super) fn engine_config(&self, channels: usize) -> EngineConfig {
        let ms = |v: u32| v as u64 * RATE as u64 / 1000;
        EngineConfig {
            channels,
            vad: match self.vad {
                Vad::Rnnoise => VadKind::Rnnoise,
                Vad::Silero => VadKind::Silero,
            },
            enabled: self.enabled,
            strength: self.strength as f32,
            gate: match self.gate {
                Gate::None => engine::Gate::None,
                Gate::Attenuate => engine::Gate::Attenuate,
                Gate::Silence => engine::Gate::Silence,
            },
            attenuation_db: self.gate_attenuation as f32,
            hysteresis: HysteresisConfig {
                threshold: self.threshold as f32,
                min_speech: ms(self.min_speech_ms),
                min_silence: ms(self.min_silence_ms),
                ..Default::default()
            },
            silero_lookahead: ms(self.vad_lookahead_ms),
            ..Default::default()
        }
    }
}

impl ObjectImpl for AudioDenoise {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut v = vec![
                glib::ParamSpecEnum::builder_with_default("vad", DEFAULT_VAD)
                    .nick("VAD")
                    .blurb("Speech probability source: silero (Silero VAD, recommended; computed natively on the CPU, see native, else through ONNX Runtime) or rnnoise (RNNoise's own, weaker in noise; no model loaded)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("gate", DEFAULT_GATE)
                    .nick("Gate")
                    .blurb("What happens to non-speech audio")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("gate-attenuation")
                    .nick("Gate attenuation")
                    .blurb("Gain in dB applied to non-speech with gate=attenuate")
                    .minimum(-100.0)
                    .maximum(0.0)
                    .default_value(DEFAULT_GATE_ATTENUATION)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("speech-threshold")
                    .nick("Speech threshold")
                    .blurb("Probability at which speech starts (it ends below threshold - 0.15)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_SPEECH_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-speech-ms")
                    .nick("Minimum speech")
                    .blurb("Speech shorter than this (ms) is ignored")
                    .maximum(60_000)
                    .default_value(DEFAULT_MIN_SPEECH_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-silence-ms")
                    .nick("Minimum silence")
                    .blurb("Pauses shorter than this (ms) do not end speech")
                    .maximum(60_000)
                    .default_value(DEFAULT_MIN_SILENCE_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("vad-lookahead-ms")
                    .nick("VAD look-ahead")
                    .blurb("With vad=silero: each 10 ms frame takes the speech probability this many ms after its centre, which puts Silero's late speech boundaries back in place but adds the same to the latency. 0 for the lowest latency (live, causal pipelines), 64 for the most accurate boundaries")
                    .maximum(256)
                    .default_value(DEFAULT_VAD_LOOKAHEAD_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("enabled")
                    .nick("Enabled")
                    .blurb("Denoise; when false the audio passes unchanged and the VAD still runs")
                    .default_value(DEFAULT_ENABLED)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("strength")
                    .nick("Strength")
                    .blurb("Mix of denoised (1) and original (0) audio")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_STRENGTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post speech-start / speech-end element messages")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("native")
                    .nick("Native Silero")
                    .blurb("With vad=silero on the CPU: compute Silero's 16 kHz graph in Rust from the model file's own weights (checked against ONNX Runtime when the element starts; several times cheaper a chunk). false always runs the model through ONNX Runtime")
                    .default_value(DEFAULT_NATIVE)
                    .mutable_ready()
                    .build(),
            ];
            v.extend(ModelSettings::properties(DEFAULT_MODEL));
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
            "vad" => s.vad = value.get().expect("type checked upstream"),
            "gate" => s.gate = value.get().expect("type checked upstream"),
            "gate-attenuation" => s.gate_attenuation = value.get().expect("type checked upstream"),
            "speech-threshold" => s.threshold = value.get().expect("type checked upstream"),
            "min-speech-ms" => s.min_speech_ms = value.get().expect("type checked upstream"),
            "min-silence-ms" => s.min_silence_ms = value.get().expect("type checked upstream"),
            "vad-lookahead-ms" => s.vad_lookahead_ms = value.get().expect("type checked upstream"),
            "enabled" => s.enabled = value.get().expect("type checked upstream"),
            "strength" => s.strength = value.get().expect("type checked upstream"),
            "post-messages" => s.post_messages = value.get().expect("type checked upstream"),
            "native" => s.native = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.locked();
        if let Some(v) = s.model.property(pspec) {
            return v;
        }
        match pspec.name() {
            "vad" => s.vad.to_value(),
            "gate" => s.gate.to_value(),
            "gate-attenuation" => s.gate_attenuation.to_value(),
            "speech-threshold" => s.threshold.to_value(),
            "min-speech-ms" => s.min_speech_ms.to_value(),
            "min-silence-ms" => s.min_silence_ms.to_value(),
            "vad-lookahead-ms" => s.vad_lookahead_ms.to_value(),
            "enabled" => s.enabled.to_value(),
            "strength" => s.strength.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "native" => s.native.to_value(),
            _ => unimplemented!(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        // A CAPS event this element cannot take is refused by the pad itself (through
        // ACCEPT_CAPS) before the base class sees it, so upstream would only report
        // "not-negotiated". Probes run before that check: say what to do there, for real
        // caps events only — ACCEPT_CAPS queries are routine negotiation probes and get a
        // plain `false` from the base class.
        self.obj()
            .sink_pad()
            .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |pad, info| {
                if let Some(gst::EventView::Caps(c)) = info.event().map(|e| e.view())
                    && (!c.caps().is_subset(&pad.pad_template_caps())
                        || gst_audio::AudioInfo::from_caps(c.caps()).is_err())
                    && let Some(this) = pad
                        .parent_element()
                        .and_then(|e| e.downcast::<crate::audiodenoise::AudioDenoise>().ok())
                {
                    this.imp().refuse_caps(c.caps());
                }
                gst::PadProbeReturn::Ok
            });
    }
}
