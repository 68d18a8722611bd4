// SPDX-License-Identifier: MPL-2.0
//! `audiodenoise`: real-time noise suppression and speech marking with exact timestamps.
//!
//! The element's documentation is on [`AudioDenoise`].

use gst::glib;
use gst::prelude::*;

mod imp;

/// Where the speech probability comes from (`vad` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstAffectVad")]
pub enum Vad {
    /// RNNoise's own voice probability (no model to load; weak in noise).
    #[enum_value(
        name = "RNNoise's voice probability (weaker in noise)",
        nick = "rnnoise"
    )]
    Rnnoise = 0,
    /// Silero VAD at 16 kHz through ONNX Runtime (the one to trust).
    #[default]
    #[enum_value(name = "Silero VAD, 16 kHz (recommended)", nick = "silero")]
    Silero = 1,
}

/// What happens to non-speech audio (`gate` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstAffectGate")]
pub enum Gate {
    /// Audio passes.
    #[default]
    #[enum_value(name = "No gating", nick = "none")]
    None = 0,
    /// Non-speech is attenuated by `gate-attenuation` dB.
    #[enum_value(name = "Attenuate non-speech", nick = "attenuate")]
    Attenuate = 1,
    /// Non-speech becomes silence.
    #[enum_value(name = "Silence non-speech", nick = "silence")]
    Silence = 2,
}

glib::wrapper! {
/**
 * SECTION:element-audiodenoise
 *
 * `audiodenoise` removes noise from speech with RNNoise and marks where speech is, with
 * exact timestamps.
 *
 * - Denoising: RNNoise (the pure-Rust `nnnoiseless`, embedded weights) on F32LE 48 kHz
 *   interleaved audio, 1..N channels, each with its own state. Buffers of any size in, the
 *   same samples out; output timestamps are derived from sample counts (segment position
 *   of the first buffer + samples / 48000), so there is no drift. Other formats and rates
 *   are refused with an error that says to put `audioconvert ! audioresample` before it.
 * - **Alignment and latency**: RNNoise returns each 10 ms frame one frame late; the
 *   element compensates that delay, so output sample *n* is the denoised input sample *n*
 *   with the same timestamp. The price is latency, answered in the LATENCY query:
 *   20 ms with `vad=rnnoise` (10 ms framing + RNNoise's 10 ms look-ahead), 120 ms with
 *   `vad=silero` (its 32 ms chunks, the decimator's look-ahead and `vad-lookahead-ms`,
 *   default 64 ms, that puts Silero's late-reacting probability back on the speech
 *   boundaries). Live causal pipelines set `vad-lookahead-ms=0`: 50 ms with Silero.
 * - Voice activity: `vad=silero` (weights/silero-vad.onnx through ONNX Runtime, on the
 *   denoised mono mix decimated 48k→16k with a 145-tap anti-alias FIR) or `vad=rnnoise`
 *   (RNNoise's own probability: free but clearly weaker in noise — trust `silero`).
 *   Every output buffer carries a `GstAffectSpeechMeta` (see `gstaffect::meta::speech`); a
 *   hysteresis (`speech-threshold`, `min-speech-ms`, `min-silence-ms`) posts
 *   `speech-start` / `speech-end` element messages whose timestamps are the boundaries
 *   themselves (posted once confirmed, so up to `min-speech-ms` / `min-silence-ms` after).
 * - `gate` attenuates or silences non-speech (opens on the first frame over the
 *   threshold, closes when an end is confirmed; 2.5 ms ramps).
 * - EOS drains (the last partial frame is padded and cut back); FLUSH and DISCONT reset
 *   the state (a DISCONT drains first). NaN/Inf input samples become 0 with a warning.
 *
 * ## Example launch line
 * ```bash
 * gst-launch-1.0 audiotestsrc wave=pink-noise num-buffers=50 ! audioconvert ! audioresample ! \
 *   audiodenoise vad=silero gate=attenuate ! fakesink
 * ```
 *
 * A recording denoised and played, non-speech 20 dB down, the speech marks printed (`-m`):
 * ```bash
 * gst-launch-1.0 -m filesrc location=talk.wav ! decodebin ! audioconvert ! audioresample ! \
 *   audiodenoise vad=silero gate=attenuate ! autoaudiosink
 * ```
 */
    pub struct AudioDenoise(ObjectSubclass<imp::AudioDenoise>) @extends gst_audio::AudioFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `audiodenoise` (and the `GstAffectSpeechMeta` it attaches) with the plugin.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    crate::meta::register_speech_meta();
    #[cfg(feature = "doc")]
    {
        Vad::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
        Gate::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    }
    gst::Element::register(
        Some(plugin),
        "audiodenoise",
        gst::Rank::NONE,
        AudioDenoise::static_type(),
    )
}
