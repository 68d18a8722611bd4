// SPDX-License-Identifier: MPL-2.0
//! Speech results of `audiodenoise`: the `GstAffectSpeechMeta` custom meta and the
//! `speech-start` / `speech-end` element messages.
//!
//! `GstAffectSpeechMeta` (a registered `GstCustomMeta`, readable from C and Python with
//! `buf.get_custom_meta("GstAffectSpeechMeta").get_structure()`) holds a structure
//! `speech` with:
//! - `probability` (gdouble): the **maximum** speech probability over the buffer's 10 ms
//!   frames (from the VAD selected by the element's `vad` property);
//! - `speech` (gboolean): the hysteresis was in confirmed speech during at least one of
//!   the buffer's frames;
//! - `probabilities` (GstValueArray of gdouble): one probability per 10 ms frame (480
//!   samples, the last one possibly shorter), in order.
//!
//! Messages `speech-start` / `speech-end`: `timestamp`, `running-time`, `stream-time`
//! (guint64 ns, the position of the boundary itself, not of the buffer that confirmed
//! it; absent when unknown) and `probability` (gdouble, that of the confirming frame).

/// Name under which the custom meta is registered.
pub const SPEECH_META_NAME: &str = "GstAffectSpeechMeta";
/// Name of the meta's structure.
pub const SPEECH_STRUCTURE_NAME: &str = "speech";

/// Registers the `GstAffectSpeechMeta` custom meta (idempotent).
pub fn register_speech_meta() {
    if !gst::meta::CustomMeta::is_registered(SPEECH_META_NAME) {
        gst::meta::CustomMeta::register(SPEECH_META_NAME, &[]);
    }
}

/// The speech information of one buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechInfo {
    /// Maximum probability over the buffer's frames.
    pub probability: f64,
    /// Confirmed speech in at least one frame.
    pub speech: bool,
    /// Per 10 ms frame.
    pub probabilities: Vec<f64>,
}

/// Adds the `GstAffectSpeechMeta` to `buffer`.
pub fn add_speech_meta(
    buffer: &mut gst::BufferRef,
    info: &SpeechInfo,
) -> Result<(), gst::glib::BoolError> {
    let mut meta = gst::meta::CustomMeta::add(buffer, SPEECH_META_NAME)?;
    let s = meta.mut_structure();
    s.set_name(SPEECH_STRUCTURE_NAME);
    s.set("probability", info.probability);
    s.set("speech", info.speech);
    s.set(
        "probabilities",
        gst::Array::new(info.probabilities.iter().copied()),
    );
    Ok(())
}

/// Reads a buffer's `GstAffectSpeechMeta`, if it has one.
pub fn speech_meta(buffer: &gst::BufferRef) -> Option<Result<SpeechInfo, String>> {
    let meta = gst::meta::CustomMeta::from_buffer(buffer, SPEECH_META_NAME).ok()?;
    let s = meta.structure();
    Some((|| {
        let probs = s
            .get::<gst::Array>("probabilities")
            .map_err(|e| format!("probabilities: {e}"))?;
        Ok(SpeechInfo {
            probability: s
                .get::<f64>("probability")
                .map_err(|e| format!("probability: {e}"))?,
            speech: s
                .get::<bool>("speech")
                .map_err(|e| format!("speech: {e}"))?,
            probabilities: probs
                .iter()
                .map(|v| v.get::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("probabilities: {e}"))?,
        })
    })())
}

/// A `speech-start` or `speech-end` message.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechMessage {
    /// True for `speech-start`, false for `speech-end`.
    pub start: bool,
    /// Position of the boundary (buffer time).
    pub timestamp: Option<gst::ClockTime>,
    /// Running time of the boundary.
    pub running_time: Option<gst::ClockTime>,
    /// Stream time of the boundary.
    pub stream_time: Option<gst::ClockTime>,
    /// Probability of the frame that confirmed the boundary.
    pub probability: f64,
}

impl SpeechMessage {
    /// Name of the start message.
    pub const START: &'static str = "speech-start";
    /// Name of the end message.
    pub const END: &'static str = "speech-end";

    /// The message structure.
    pub fn to_structure(&self) -> gst::Structure {
        let mut b = gst::Structure::builder(if self.start { Self::START } else { Self::END });
        for (k, v) in [
            ("timestamp", self.timestamp),
            ("running-time", self.running_time),
            ("stream-time", self.stream_time),
        ] {
            if let Some(v) = v {
                b = b.field(k, v.nseconds());
            }
        }
        b.field("probability", self.probability).build()
    }
}

impl TryFrom<&gst::StructureRef> for SpeechMessage {
    type Error = String;

    fn try_from(s: &gst::StructureRef) -> Result<Self, String> {
        let start = match s.name().as_str() {
            Self::START => true,
            Self::END => false,
            n => return Err(format!("structure is `{n}`, not a speech message")),
        };
        let t = |k: &str| s.get::<u64>(k).ok().map(gst::ClockTime::from_nseconds);
        Ok(SpeechMessage {
            start,
            timestamp: t("timestamp"),
            running_time: t("running-time"),
            stream_time: t("stream-time"),
            probability: s.get::<f64>("probability").unwrap_or(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_and_message_round_trip() {
        gst::init().unwrap();
        register_speech_meta();
        let info = SpeechInfo {
            probability: 0.9,
            speech: true,
            probabilities: vec![0.1, 0.9],
        };
        let mut buf = gst::Buffer::with_size(8).unwrap();
        add_speech_meta(buf.get_mut().unwrap(), &info).unwrap();
        assert_eq!(speech_meta(&buf).unwrap().unwrap(), info);
        assert!(speech_meta(&gst::Buffer::new()).is_none());
        let m = SpeechMessage {
            start: false,
            timestamp: Some(gst::ClockTime::from_mseconds(10)),
            running_time: Some(gst::ClockTime::from_mseconds(10)),
            stream_time: None,
            probability: 0.2,
        };
        let s = m.to_structure();
        assert_eq!(s.name(), "speech-end");
        assert_eq!(SpeechMessage::try_from(s.as_ref()).unwrap(), m);
    }
}
