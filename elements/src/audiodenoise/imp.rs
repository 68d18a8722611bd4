// SPDX-License-Identifier: MPL-2.0
//! `audiodenoise` on [`gst_audio::AudioFilter`]: the base class negotiates the caps,
//! answers ACCEPT_CAPS and handles the pads; this element feeds each input buffer to the
//! [`SpeechEngine`] (which holds back the frames it has not finished) and gives back what
//! comes out, drains it at EOS and DISCONT, resets it on FLUSH and adds its latency.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};

use affect::audio::denoise::MAX_ABS;
use affect::audio::engine::{self, EngineOutput, SpeechEngine};
use affect::audio::{RATE, SileroVad};
use affect::runtime::Role;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_audio::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;

use super::Vad;
use crate::common::{ElementError, LockExt};

mod props;
mod state;

use props::Settings;
use state::{Produced, State};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "audiodenoise",
        gst::DebugColorFlags::empty(),
        Some("Noise suppression and voice activity"),
    )
});

const CAPS_HINT: &str = "audiodenoise takes F32LE, 48000 Hz, interleaved audio (any number of channels): put `audioconvert ! audioresample` before it";

#[derive(Default)]
pub struct AudioDenoise {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    caps_error_posted: AtomicBool,
}

#[glib::object_subclass]
impl ObjectSubclass for AudioDenoise {
    const NAME: &'static str = "GstAffectAudioDenoise";
    type Type = super::AudioDenoise;
    type ParentType = gst_audio::AudioFilter;
}

impl GstObjectImpl for AudioDenoise {}

impl ElementImpl for AudioDenoise {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            crate::common::element_metadata(
                "Audio denoise and voice activity",
                "Filter/Effect/Audio",
                "Removes noise from 48 kHz audio and marks speech",
                "gst-launch-1.0 audiotestsrc wave=pink-noise num-buffers=50 ! audioconvert ! audioresample ! audiodenoise vad=silero gate=attenuate ! fakesink",
            )
        });
        Some(&*META)
    }
}

impl AudioFilterImpl for AudioDenoise {
    fn allowed_caps() -> &'static gst::Caps {
        static CAPS: LazyLock<gst::Caps> = LazyLock::new(|| {
            gst::Caps::builder("audio/x-raw")
                .field("format", "F32LE")
                .field("rate", RATE as i32)
                .field("channels", gst::IntRange::new(1, i32::MAX))
                .field("layout", "interleaved")
                .build()
        });
        &CAPS
    }

    /// New caps: a new engine when the number of channels changes (the old one drained
    /// first, its output under the old caps); the Silero runner moves to the new engine.
    fn setup(&self, info: &gst_audio::AudioInfo) -> Result<(), gst::LoggableError> {
        let channels = info.channels() as usize;
        let settings = self.settings.locked().clone();
        let mut produced = Produced::default();
        {
            let mut guard = self.state.locked();
            let state = guard
                .as_mut()
                .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
            if state
                .engine
                .as_ref()
                .is_some_and(|e| e.config().channels == channels)
            {
                return Ok(());
            }
            state.drain(self, settings.post_messages, &mut produced);
            let silero = match state.engine.take() {
                Some(e) => e.into_silero(),
                None => state.silero.take(),
            };
            state.engine = Some(SpeechEngine::new(settings.engine_config(channels), silero));
            gst::info!(
                CAT,
                imp = self,
                "{} channel(s), vad {:?}",
                channels,
                settings.vad
            );
        }
        let _ = self.deliver(produced);
        Ok(())
    }
}

impl BaseTransformImpl for AudioDenoise {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    /// Loads the Silero runner when `vad=silero` (a missing model fails the state change).
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.locked().clone();
        let silero = if settings.vad == Vad::Silero {
            let model = settings.model.load(Role::Vad)?;
            gst::info!(CAT, imp = self, "VAD model {}", model.summary());
            if let Some(w) = settings.model.threads_warning() {
                gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", w));
            }
            let vad = if settings.native {
                SileroVad::new(model)
            } else {
                SileroVad::onnx_runtime(model)
            }
            .map_err(|e| e.to_error_message())?;
            if vad.is_native() {
                gst::info!(CAT, imp = self, "Silero computed natively (native=true)");
            } else if settings.native {
                gst::info!(
                    CAT,
                    imp = self,
                    "Silero through ONNX Runtime: {}",
                    vad.native_note()
                );
            }
            Some(vad)
        } else {
            None
        };
        *self.state.locked() = Some(State::new(silero));
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.locked() = None;
        self.caps_error_posted.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// LATENCY: upstream's plus the engine's.
    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        if direction == gst::PadDirection::Src
            && let gst::QueryViewMut::Latency(q) = query.view_mut()
        {
            let mut upstream = gst::query::Latency::new();
            if !self.obj().sink_pad().peer_query(&mut upstream) {
                return false;
            }
            let (live, min, max) = upstream.result();
            let ours = self.latency();
            gst::debug!(CAT, imp = self, "latency {} + ours {}", min, ours);
            q.set(live, min + ours, max.map(|m| m + ours));
            return true;
        }
        BaseTransformImplExt::parent_query(self, direction, query)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Segment(s) => {
                if let Ok(seg) = s.segment().clone().downcast::<gst::ClockTime>()
                    && let Some(state) = self.state.locked().as_mut()
                {
                    state.segment = seg;
                }
            }
            EventView::Eos(_) => {
                let post = self.settings.locked().post_messages;
                let mut produced = Produced::default();
                if let Some(state) = self.state.locked().as_mut() {
                    state.drain(self, post, &mut produced);
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
            }
            EventView::FlushStop(_) => {
                if let Some(state) = self.state.locked().as_mut() {
                    state.reset();
                }
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    /// A buffer before any caps: the base class would refuse it without a word; say what
    /// to do.
    fn submit_input_buffer(
        &self,
        is_discont: bool,
        inbuf: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let negotiated = match self.state.locked().as_ref() {
            Some(state) => state.engine.is_some(),
            None => return Err(gst::FlowError::Flushing),
        };
        if !negotiated {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("no caps before the first buffer; {}", CAPS_HINT)
            );
            return Err(gst::FlowError::NotNegotiated);
        }
        // The base class's `qos` would drop late input buffers, and the output times come
        // from sample counts: dropped samples would shift every later timestamp. Audio
        // denoising is cheap enough never to fall behind; the property is turned back off.
        let obj = self.obj();
        if obj.is_qos() {
            obj.set_qos(false);
            gst::element_imp_warning!(
                self,
                gst::CoreError::NotImplemented,
                ("qos=true is not supported (output times are derived from sample counts; a dropped buffer would shift them): turned off")
            );
        }
        self.parent_submit_input_buffer(is_discont, inbuf)
    }

    /// One input buffer in, what the engine has finished out (often nothing for small
    /// buffers: the engine works in 10 ms frames and holds back its latency). A DISCONT
    /// drains the engine first; that output is pushed here, with the old timing.
    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        let Some(buffer) = self.take_queued_buffer() else {
            return Ok(GenerateOutputSuccess::NoOutput);
        };
        let settings = self.settings.locked().clone();
        let mut drained = Produced::default();
        let mut produced = Produced::default();
        {
            let mut guard = self.state.locked();
            let Some(state) = guard.as_mut() else {
                return Err(gst::FlowError::Flushing);
            };
            if buffer.flags().contains(gst::BufferFlags::DISCONT) {
                state.drain(self, settings.post_messages, &mut drained);
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
            let Some(engine) = state.engine.as_mut() else {
                return Err(gst::FlowError::NotNegotiated);
            };
            let channels = engine.config().channels;
            engine.set_config(settings.engine_config(channels));
            let first = engine.samples_out();
            let map = buffer.map_readable().map_err(|_| {
                gst::error!(CAT, imp = self, "cannot map input buffer");
                gst::FlowError::Error
            })?;
            let mut out = EngineOutput::default();
            if let Err(e) = state.push(&map, &mut out) {
                drop(guard);
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                return Err(gst::FlowError::Error);
            }
            state.produce(
                self,
                out,
                first,
                channels,
                settings.post_messages,
                &mut produced,
            );
        }
        let drained = self.deliver(drained);
        let buffer = self.post(produced);
        drained?;
        Ok(match buffer {
            Some(b) => GenerateOutputSuccess::Buffer(b),
            None => GenerateOutputSuccess::NoOutput,
        })
    }
}

impl AudioDenoise {
    /// The engine's latency (before caps: that of a mono engine with the current settings).
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
}
