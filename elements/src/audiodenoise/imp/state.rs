// SPDX-License-Identifier: MPL-2.0
//! The streaming state of `audiodenoise` and what turns engine output into buffers,
//! metas and messages: samples are read in place from the input buffer and the engine
//! writes its output straight into the memory the output buffer then owns.

use affect::audio::denoise::MAX_ABS;
use affect::audio::engine::{EngineOutput, SpeechEngine};
use affect::audio::{RATE, SileroVad, SpeechEventKind};
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;

use super::{AudioDenoise, CAT};
use crate::meta::{SpeechInfo, SpeechMessage, add_speech_meta};

/// Built at start (with the Silero runner when `vad=silero`); the engine comes with the
/// caps.
pub(super) struct State {
    pub(super) engine: Option<SpeechEngine>,
    /// The Silero runner while no engine holds it.
    pub(super) silero: Option<SileroVad>,
    pub(super) segment: gst::FormattedSegment<gst::ClockTime>,
    /// Time of the engine's sample 0 (set by the first buffer after a reset).
    pub(super) base: Option<gst::ClockTime>,
    /// The next output buffer starts a new timeline.
    pub(super) discont: bool,
    warned_nonfinite: bool,
    pub(super) replaced: u64,
    warned_clipped: bool,
    pub(super) clipped: u64,
    /// Input samples decoded when a buffer cannot be read in place.
    scratch: Vec<f32>,
}

impl State {
    pub(super) fn new(silero: Option<SileroVad>) -> Self {
        State {
            engine: None,
            silero,
            segment: gst::FormattedSegment::new(),
            base: None,
            discont: true,
            warned_nonfinite: false,
            replaced: 0,
            warned_clipped: false,
            clipped: 0,
            scratch: Vec::new(),
        }
    }

    fn time_of(&self, sample: u64) -> gst::ClockTime {
        let base = self.base.unwrap_or(gst::ClockTime::ZERO);
        base + gst::ClockTime::from_nseconds(
            sample
                .mul_div_floor(gst::ClockTime::SECOND.nseconds(), RATE as u64)
                .unwrap_or(0),
        )
    }

    /// Forgets the stream (FLUSH): pending audio is dropped, the next buffer starts a new
    /// timeline.
    pub(super) fn reset(&mut self) {
        if let Some(e) = self.engine.as_mut() {
            e.reset();
        }
        self.base = None;
        self.discont = true;
    }

    /// Feeds one input buffer to the engine (after a DISCONT drain and timing setup done by
    /// the caller). The F32LE samples are read in place when the memory allows it (aligned,
    /// little-endian machine), else decoded once into a reused scratch vector.
    pub(super) fn push(
        &mut self,
        map: &gst::BufferMap<'_, gst::buffer::Readable>,
        out: &mut EngineOutput,
    ) -> Result<(), affect::runtime::RuntimeError> {
        let Some(engine) = self.engine.as_mut() else {
            return Ok(());
        };
        let in_place = if cfg!(target_endian = "little") {
            bytemuck::try_cast_slice::<u8, f32>(map).ok()
        } else {
            None
        };
        let samples = match in_place {
            Some(s) => s,
            None => {
                self.scratch.clear();
                self.scratch.extend(
                    map.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                &self.scratch
            }
        };
        // Every sample the engine gives back for this call fits: it never gets ahead of
        // its input, so the output vector is allocated once, at its final size.
        let channels = engine.config().channels;
        let ahead = engine.samples_in() - engine.samples_out();
        out.samples = Vec::with_capacity(ahead as usize * channels + samples.len());
        engine.push(samples, out)
    }

    /// Drains the engine (EOS, DISCONT, channel change); output keeps the old timing.
    pub(super) fn drain(&mut self, imp: &AudioDenoise, post: bool, produced: &mut Produced) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        if engine.samples_in() == 0 {
            return;
        }
        let first = engine.samples_out();
        let channels = engine.config().channels;
        let mut out = EngineOutput {
            samples: Vec::with_capacity((engine.samples_in() - first) as usize * channels),
            ..Default::default()
        };
        if let Err(e) = engine.finish(&mut out) {
            gst::warning!(CAT, imp = imp, "VAD failed while draining: {}", e);
        }
        self.produce(imp, out, first, channels, post, produced);
        self.base = None;
        self.discont = true;
    }

    /// Turns engine output starting at engine sample `first` into a buffer (taking over
    /// the output samples' memory), a speech meta and messages.
    pub(super) fn produce(
        &mut self,
        imp: &AudioDenoise,
        out: EngineOutput,
        first: u64,
        channels: usize,
        post: bool,
        produced: &mut Produced,
    ) {
        let events = if post { &out.events[..] } else { &[] };
        for (i, e) in events.iter().enumerate() {
            let ts = self.time_of(e.sample);
            let prob = out.event_probabilities.get(i).copied().unwrap_or(0.0) as f64;
            let m = SpeechMessage {
                start: e.kind == SpeechEventKind::Start,
                timestamp: Some(ts),
                running_time: self.segment.to_running_time(ts),
                stream_time: self.segment.to_stream_time(ts),
                probability: prob,
            };
            produced.messages.push(m.to_structure());
        }
        if out.replaced > 0 {
            self.replaced += out.replaced;
            if !self.warned_nonfinite {
                self.warned_nonfinite = true;
                produced.warn_replaced = Some(out.replaced);
            }
        }
        if out.clipped > 0 {
            self.clipped += out.clipped;
            if !self.warned_clipped {
                self.warned_clipped = true;
                produced.warn_clipped = Some(out.clipped);
            }
        }
        let n = out.samples.len() / channels.max(1);
        if n == 0 {
            return;
        }
        let mut buf = gst::Buffer::from_mut_slice(Samples::new(out.samples));
        let b = buf.get_mut().expect("new buffer is writable");
        let pts = self.time_of(first);
        let end = self.time_of(first + n as u64);
        b.set_pts(pts);
        b.set_duration(end - pts);
        b.set_offset(first);
        b.set_offset_end(first + n as u64);
        if self.discont {
            b.set_flags(gst::BufferFlags::DISCONT);
            self.discont = false;
        }
        let probs: Vec<f64> = out.frames.iter().map(|f| f.probability as f64).collect();
        let info = SpeechInfo {
            probability: probs.iter().cloned().fold(0.0, f64::max),
            speech: out.frames.iter().any(|f| f.speech),
            probabilities: probs,
        };
        if let Err(e) = add_speech_meta(b, &info) {
            gst::warning!(CAT, imp = imp, "cannot add speech meta: {}", e);
        }
        produced.buffer = Some(buf);
    }
}

/// Interleaved samples as the memory of an output buffer, F32LE.
struct Samples(Vec<f32>);

impl Samples {
    fn new(mut samples: Vec<f32>) -> Self {
        if cfg!(target_endian = "big") {
            for s in bytemuck::cast_slice_mut::<f32, u32>(&mut samples) {
                *s = s.swap_bytes();
            }
        }
        Samples(samples)
    }
}

impl AsRef<[u8]> for Samples {
    fn as_ref(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
}

impl AsMut<[u8]> for Samples {
    fn as_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.0)
    }
}

/// What one step produced, to push and post with no lock held.
#[derive(Default)]
pub(super) struct Produced {
    pub(super) buffer: Option<gst::Buffer>,
    pub(super) messages: Vec<gst::Structure>,
    warn_replaced: Option<u64>,
    warn_clipped: Option<u64>,
}

impl AudioDenoise {
    /// Posts the warnings and messages of `produced` and hands its buffer back.
    pub(super) fn post(&self, produced: Produced) -> Option<gst::Buffer> {
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
        let obj = self.obj();
        for s in produced.messages {
            crate::common::post_element_message(&*obj, s);
        }
        produced.buffer
    }

    /// Pushes what a drain produced (outside the base class's output loop: EOS, DISCONT,
    /// channel change) and posts its messages.
    pub(super) fn deliver(
        &self,
        mut produced: Produced,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let buffer = produced.buffer.take();
        let messages = std::mem::take(&mut produced.messages);
        let _ = self.post(produced);
        let result = match buffer {
            Some(b) => self.obj().src_pad().push(b),
            None => Ok(gst::FlowSuccess::Ok),
        };
        self.post(Produced {
            messages,
            ..Default::default()
        });
        result
    }
}
