// SPDX-License-Identifier: MPL-2.0
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};

use affect::audio::denoise::MAX_ABS;
use affect::audio::engine::{self, EngineConfig, EngineOutput, SpeechEngine, VadKind};
use affect::audio::{HysteresisConfig, RATE, SileroVad, SpeechEventKind};
use affect::runtime::Role;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{Gate, Vad};
use crate::common::LockExt;
use crate::common::{ModelSettings, error_message};
use crate::meta::{SpeechInfo, SpeechMessage, add_speech_meta};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "audiodenoise",
        gst::DebugColorFlags::empty(),
        Some("Noise suppression and voice activity"),
    )
});

const DEFAULT_MODEL: &str = "silero-vad";
/// Default Silero look-ahead (ms): two 32 ms chunks.
const DEFAULT_VAD_LOOKAHEAD_MS: u32 = 64;
const CAPS_HINT: &str = "audiodenoise takes F32LE, 48000 Hz, interleaved audio (any number of channels): put `audioconvert ! audioresample` before it";

#[derive(Debug, Clone)]
struct Settings {
    model: ModelSettings,
    vad: Vad,
    gate: Gate,
    gate_attenuation: f64,
    threshold: f64,
    min_speech_ms: u32,
    min_silence_ms: u32,
    vad_lookahead_ms: u32,
    enabled: bool,
    strength: f64,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: ModelSettings::new(DEFAULT_MODEL),
            vad: Vad::Silero,
            gate: Gate::None,
            gate_attenuation: -20.0,
            threshold: 0.5,
            min_speech_ms: 250,
            min_silence_ms: 300,
            vad_lookahead_ms: DEFAULT_VAD_LOOKAHEAD_MS,
            enabled: true,
            strength: 1.0,
            post_messages: true,
        }
    }
}

impl Settings {
    fn engine_config(&self, channels: usize) -> EngineConfig {
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

struct State {
    engine: Option<SpeechEngine>,
    silero: Option<SileroVad>,
    segment: gst::FormattedSegment<gst::ClockTime>,
    /// Time of the engine's sample 0 (set by the first buffer after a reset).
    base: Option<gst::ClockTime>,
    discont: bool,
    warned_nonfinite: bool,
    replaced: u64,
    warned_clipped: bool,
    clipped: u64,
}

impl State {
    fn time_of(&self, sample: u64) -> gst::ClockTime {
        let base = self.base.unwrap_or(gst::ClockTime::ZERO);
        base + gst::ClockTime::from_nseconds(
            sample
                .mul_div_floor(gst::ClockTime::SECOND.nseconds(), RATE as u64)
                .unwrap_or(0),
        )
    }
}

/// What one call produced, to push and post with no lock held.
#[derive(Default)]
struct Produced {
    buffers: Vec<gst::Buffer>,
    messages: Vec<gst::Structure>,
    warn_replaced: Option<u64>,
    warn_clipped: Option<u64>,
}

pub struct AudioDenoise {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    caps_error_posted: AtomicBool,
}

#[glib::object_subclass]
impl ObjectSubclass for AudioDenoise {
    const NAME: &'static str = "GstAffectAudioDenoise";
    type Type = super::AudioDenoise;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("sink").expect("sink template");
        let sinkpad = gst::Pad::builder_from_template(&templ)
            .chain_function(|pad, parent, buffer| {
                AudioDenoise::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.sink_chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                AudioDenoise::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                AudioDenoise::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.sink_query(pad, query),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS)
            .build();
        let templ = klass.pad_template("src").expect("src template");
        let srcpad = gst::Pad::builder_from_template(&templ)
            .query_function(|pad, parent, query| {
                AudioDenoise::catch_panic_pad_function(
                    parent,
                    || false,
                    |this| this.src_query(pad, query),
                )
            })
            .flags(gst::PadFlags::PROXY_CAPS)
            .build();
        AudioDenoise {
            sinkpad,
            srcpad,
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(None),
            caps_error_posted: AtomicBool::new(false),
        }
    }
}

impl ObjectImpl for AudioDenoise {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut v = vec![
                glib::ParamSpecEnum::builder_with_default("vad", Vad::Silero)
                    .nick("VAD")
                    .blurb("Speech probability source: silero (Silero VAD through ONNX Runtime, recommended) or rnnoise (RNNoise's own, weaker in noise; no model loaded)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("gate", Gate::None)
                    .nick("Gate")
                    .blurb("What happens to non-speech audio")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("gate-attenuation")
                    .nick("Gate attenuation")
                    .blurb("Gain in dB applied to non-speech with gate=attenuate")
                    .minimum(-100.0)
                    .maximum(0.0)
                    .default_value(-20.0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("speech-threshold")
                    .nick("Speech threshold")
                    .blurb("Probability at which speech starts (it ends below threshold - 0.15)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(0.5)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-speech-ms")
                    .nick("Minimum speech")
                    .blurb("Speech shorter than this (ms) is ignored")
                    .maximum(60_000)
                    .default_value(250)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-silence-ms")
                    .nick("Minimum silence")
                    .blurb("Pauses shorter than this (ms) do not end speech")
                    .maximum(60_000)
                    .default_value(300)
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
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("strength")
                    .nick("Strength")
                    .blurb("Mix of denoised (1) and original (0) audio")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(1.0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post speech-start / speech-end element messages")
                    .default_value(true)
                    .mutable_playing()
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
            "vad" => s.vad = value.get().unwrap_or_default(),
            "gate" => s.gate = value.get().unwrap_or_default(),
            "gate-attenuation" => s.gate_attenuation = value.get().unwrap_or(-20.0),
            "speech-threshold" => s.threshold = value.get().unwrap_or(0.5),
            "min-speech-ms" => s.min_speech_ms = value.get().unwrap_or(250),
            "min-silence-ms" => s.min_silence_ms = value.get().unwrap_or(300),
            "vad-lookahead-ms" => {
                s.vad_lookahead_ms = value.get().unwrap_or(DEFAULT_VAD_LOOKAHEAD_MS)
            }
            "enabled" => s.enabled = value.get().unwrap_or(true),
            "strength" => s.strength = value.get().unwrap_or(1.0),
            "post-messages" => s.post_messages = value.get().unwrap_or(true),
            _ => unreachable!("unknown property {}", pspec.name()),
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
            _ => unreachable!("unknown property {}", pspec.name()),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("add sink pad");
        obj.add_pad(&self.srcpad).expect("add src pad");
        // A CAPS event this element cannot take is refused by the pad itself (through
        // ACCEPT_CAPS) before the event function sees it, so upstream would only report
        // "not-negotiated". Probes run before that check: say what to do there, for real
        // caps events only — ACCEPT_CAPS queries are routine negotiation probes and get a
        // plain `false`.
        self.sinkpad
            .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |pad, info| {
                if let Some(gst::EventView::Caps(c)) = info.event().map(|e| e.view())
                    && !c.caps().is_subset(&pad.pad_template_caps())
                    && let Some(this) = pad
                        .parent_element()
                        .and_then(|e| e.downcast::<super::AudioDenoise>().ok())
                {
                    this.imp().refuse_caps(c.caps());
                }
                gst::PadProbeReturn::Ok
            });
    }
}

impl GstObjectImpl for AudioDenoise {}

impl ElementImpl for AudioDenoise {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Audio denoise and voice activity",
                "Filter/Effect/Audio",
                "Removes noise with RNNoise (F32LE 48 kHz, any number of channels), marks speech with \
                 Silero VAD or RNNoise's probability (GstAffectSpeechMeta per buffer, speech-start / \
                 speech-end messages) and optionally gates non-speech. Output is sample-aligned with the \
                 input; latency 20 ms (vad=rnnoise) or 120 ms (vad=silero).\n\
                 Example: gst-launch-1.0 audiotestsrc num-buffers=50 ! audio/x-raw,format=F32LE,rate=48000,channels=1 ! audiodenoise vad=silero ! fakesink",
                "gst-affect developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::builder("audio/x-raw")
                .field("format", "F32LE")
                .field("rate", RATE as i32)
                .field("channels", gst::IntRange::new(1, i32::MAX))
                .field("layout", "interleaved")
                .build();
            crate::common::filter_pad_templates(&caps)
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused
            && let Err(e) = self.start()
        {
            self.post_error_message(e);
            return Err(gst::StateChangeError);
        }
        let r = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            *self.state.locked() = None;
            self.caps_error_posted.store(false, Ordering::Relaxed);
        }
        Ok(r)
    }
}

impl AudioDenoise {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.locked().clone();
        let silero = if settings.vad == Vad::Silero {
            let model = settings.model.load(Role::Vad)?;
            gst::info!(
                CAT,
                imp = self,
                "Silero VAD {} ({})",
                model.path().display(),
                model.provider_note()
            );
            if let Some(w) = settings.model.threads_warning() {
                gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", w));
            }
            Some(SileroVad::new(model).map_err(|e| error_message(&e))?)
        } else {
            None
        };
        *self.state.locked() = Some(State {
            engine: None,
            silero,
            segment: gst::FormattedSegment::new(),
            base: None,
            discont: true,
            warned_nonfinite: false,
            replaced: 0,
            warned_clipped: false,
            clipped: 0,
        });
        Ok(())
    }

    fn latency(&self) -> gst::ClockTime {
        let settings = self.settings.locked().clone();
        let samples = {
            let guard = self.state.locked();
            match guard.as_ref().and_then(|s| s.engine.as_ref()) {
                Some(e) => e.latency_samples(),
                None => {
                    engine::latency_samples(&settings.engine_config(1), settings.vad == Vad::Silero)
                }
            }
        };
        gst::ClockTime::from_nseconds(
            samples
                .mul_div_ceil(gst::ClockTime::SECOND.nseconds(), RATE as u64)
                .unwrap_or(0),
        )
    }

    /// Turns engine output starting at engine sample `first` into a buffer, metas and
    /// messages.
    fn produce(
        &self,
        state: &mut State,
        out: &EngineOutput,
        first: u64,
        channels: usize,
        post: bool,
        produced: &mut Produced,
    ) {
        for e in &out.events {
            if !post {
                break;
            }
            let ts = state.time_of(e.sample);
            let prob = out
                .frames
                .iter()
                .rev()
                .find(|f| f.start <= e.sample)
                .map_or(0.0, |f| f.probability as f64);
            let m = SpeechMessage {
                start: e.kind == SpeechEventKind::Start,
                timestamp: Some(ts),
                running_time: state.segment.to_running_time(ts),
                stream_time: state.segment.to_stream_time(ts),
                probability: prob,
            };
            produced.messages.push(m.to_structure());
        }
        if out.replaced > 0 {
            state.replaced += out.replaced;
            if !state.warned_nonfinite {
                state.warned_nonfinite = true;
                produced.warn_replaced = Some(out.replaced);
            }
        }
        if out.clipped > 0 {
            state.clipped += out.clipped;
            if !state.warned_clipped {
                state.warned_clipped = true;
                produced.warn_clipped = Some(out.clipped);
            }
        }
        let n = out.samples.len() / channels.max(1);
        if n == 0 {
            return;
        }
        let mut bytes = Vec::with_capacity(out.samples.len() * 4);
        for s in &out.samples {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        let mut buf = gst::Buffer::from_mut_slice(bytes);
        {
            let b = buf.get_mut().expect("new buffer is writable");
            let pts = state.time_of(first);
            let end = state.time_of(first + n as u64);
            b.set_pts(pts);
            b.set_duration(end - pts);
            b.set_offset(first);
            b.set_offset_end(first + n as u64);
            if state.discont {
                b.set_flags(gst::BufferFlags::DISCONT);
                state.discont = false;
            }
            let probs: Vec<f64> = out.frames.iter().map(|f| f.probability as f64).collect();
            let info = SpeechInfo {
                probability: probs.iter().cloned().fold(0.0, f64::max),
                speech: out.frames.iter().any(|f| f.speech),
                probabilities: probs,
            };
            if let Err(e) = add_speech_meta(b, &info) {
                gst::warning!(CAT, imp = self, "cannot add speech meta: {}", e);
            }
        }
        produced.buffers.push(buf);
    }

    fn deliver(&self, produced: Produced) -> Result<gst::FlowSuccess, gst::FlowError> {
        if let Some(n) = produced.warn_replaced {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                (
                    "{} NaN/Inf input samples replaced by silence (further ones are counted in the debug log)",
                    n
                )
            );
        }
        if let Some(n) = produced.warn_clipped {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                (
                    "{} input samples beyond ±{} clipped to it: the denoiser cannot process such values (further ones are counted in the debug log)",
                    n,
                    MAX_ABS
                )
            );
        }
        let mut result = Ok(gst::FlowSuccess::Ok);
        for b in produced.buffers {
            result = self.srcpad.push(b);
            if result.is_err() {
                break;
            }
        }
        let obj = self.obj();
        for s in produced.messages {
            let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
        }
        result
    }

    /// Drains the engine (EOS, DISCONT, caps change); output keeps the old timing.
    fn drain_locked(&self, state: &mut State, post: bool, produced: &mut Produced) {
        let Some(engine) = state.engine.as_mut() else {
            return;
        };
        if engine.samples_in() == 0 {
            return;
        }
        let first = engine.samples_out();
        let channels = engine.config().channels;
        let mut out = EngineOutput::default();
        if let Err(e) = engine.finish(&mut out) {
            gst::warning!(CAT, imp = self, "VAD failed while draining: {}", e);
        }
        self.produce(state, &out, first, channels, post, produced);
        state.base = None;
        state.discont = true;
    }

    fn sink_chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings.locked().clone();
        let mut produced = Produced::default();
        {
            let mut guard = self.state.locked();
            let Some(state) = guard.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            if state.engine.is_none() {
                drop(guard);
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("no caps before the first buffer; {}", CAPS_HINT)
                );
                return Err(gst::FlowError::NotNegotiated);
            }
            if buffer.flags().contains(gst::BufferFlags::DISCONT) {
                self.drain_locked(state, settings.post_messages, &mut produced);
            }
            if state.base.is_none() {
                state.base = Some(
                    buffer
                        .pts()
                        .or(state.segment.start())
                        .unwrap_or(gst::ClockTime::ZERO),
                );
                state.discont = true;
            }
            let map = buffer.map_readable().map_err(|_| {
                gst::error!(CAT, imp = self, "cannot map input buffer");
                gst::FlowError::Error
            })?;
            let samples: Vec<f32> = map
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            drop(map);
            let Some(engine) = state.engine.as_mut() else {
                return Err(gst::FlowError::NotNegotiated);
            };
            let channels = engine.config().channels;
            engine.set_config(settings.engine_config(channels));
            let first = engine.samples_out();
            let mut out = EngineOutput::default();
            if let Err(e) = engine.push(&samples, &mut out) {
                drop(guard);
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                return Err(gst::FlowError::Error);
            }
            self.produce(
                state,
                &out,
                first,
                channels,
                settings.post_messages,
                &mut produced,
            );
        }
        self.deliver(produced)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "event {:?}", event.type_());
        let post = self.settings.locked().post_messages;
        match event.view() {
            EventView::Caps(c) => {
                let caps = c.caps_owned();
                let Ok(info) = gst_audio::AudioInfo::from_caps(&caps) else {
                    gst::element_imp_error!(
                        self,
                        gst::CoreError::Negotiation,
                        ("invalid audio caps {}; {}", caps, CAPS_HINT)
                    );
                    return false;
                };
                let channels = info.channels() as usize;
                let settings = self.settings.locked().clone();
                let mut produced = Produced::default();
                {
                    let mut guard = self.state.locked();
                    let Some(state) = guard.as_mut() else {
                        return false;
                    };
                    let same = state
                        .engine
                        .as_ref()
                        .is_some_and(|e| e.config().channels == channels);
                    if !same {
                        self.drain_locked(state, post, &mut produced);
                        let silero = match state.engine.take() {
                            Some(e) => e.into_silero(),
                            None => state.silero.take(),
                        };
                        state.engine =
                            Some(SpeechEngine::new(settings.engine_config(channels), silero));
                        gst::info!(
                            CAT,
                            imp = self,
                            "{} channel(s), vad {:?}",
                            channels,
                            settings.vad
                        );
                    }
                }
                let _ = self.deliver(produced);
                self.srcpad.push_event(event)
            }
            EventView::Segment(s) => {
                if let Ok(seg) = s.segment().clone().downcast::<gst::ClockTime>()
                    && let Some(state) = self.state.locked().as_mut()
                {
                    state.segment = seg;
                }
                self.srcpad.push_event(event)
            }
            EventView::Eos(_) => {
                let mut produced = Produced::default();
                if let Some(state) = self.state.locked().as_mut() {
                    self.drain_locked(state, post, &mut produced);
                    if state.replaced > 0 {
                        gst::debug!(
                            CAT,
                            imp = self,
                            "{} non-finite samples replaced",
                            state.replaced
                        );
                    }
                    if state.clipped > 0 {
                        gst::debug!(
                            CAT,
                            imp = self,
                            "{} samples beyond ±{} clipped",
                            state.clipped,
                            MAX_ABS
                        );
                    }
                }
                let _ = self.deliver(produced);
                self.srcpad.push_event(event)
            }
            EventView::FlushStop(_) => {
                if let Some(state) = self.state.locked().as_mut() {
                    if let Some(e) = state.engine.as_mut() {
                        e.reset();
                    }
                    state.base = None;
                    state.discont = true;
                }
                self.srcpad.push_event(event)
            }
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    /// A caps event with caps this element cannot take: an element error that says what
    /// to do (once per start).
    fn refuse_caps(&self, caps: &gst::CapsRef) {
        if !self.caps_error_posted.swap(true, Ordering::Relaxed) {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("unsupported caps {}; {}", caps, CAPS_HINT)
            );
        }
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::AcceptCaps(q) = query.view_mut() {
            let caps = q.caps_owned();
            let ok = caps.is_subset(&pad.pad_template_caps());
            if !ok {
                gst::debug!(CAT, imp = self, "not accepted: {caps}; {CAPS_HINT}");
            }
            q.set_result(ok);
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let mut upstream = gst::query::Latency::new();
            if !self.sinkpad.peer_query(&mut upstream) {
                return false;
            }
            let (live, min, max) = upstream.result();
            let ours = self.latency();
            gst::debug!(CAT, imp = self, "latency {} + ours {}", min, ours);
            q.set(live, min + ours, max.map(|m| m + ours));
            return true;
        }
        gst::Pad::query_default(pad, Some(&*self.obj()), query)
    }
}
