// SPDX-License-Identifier: MPL-2.0
//! Feature streams on the video frame clock: alignment of an audio feature stream onto
//! frame times ([`AudioAligner`]) and per-track sliding windows of `T` frames
//! ([`TrackWindows`]) that give the `[T, D]` arrays a fusion model reads.
//!
//! Everything here is pure (no GStreamer): times are nanoseconds (`u64`), vectors are
//! `f32` slices. The `avfuse` element feeds audio vectors as they arrive, asks for the
//! aligned audio vector of each video frame, and pushes one frame per face track. For
//! fusion models that gate audio by voice activity (`affect.fusion.audio-mask =
//! speech`) it also keeps the voice activity ([`SpeechTimeline`]) and weighs each audio
//! vector by the speech in its span: the aligned mask is then a value in `[0, 1]`.
//!
//! NaN safety: a vector that holds NaN or ±∞ is never passed on. An audio vector like
//! that is dropped on arrival (its time counts as a gap); a visual vector like that is
//! stored as zeros with mask 0.

mod align;
mod level;
mod lookahead;
mod speech;
mod window;

pub use align::{AlignConfig, AlignMode, Aligned, Anchor, AudioAligner};
pub use level::frame_levels;
pub use lookahead::{Lookahead, Ready};
pub use speech::{SPEECH_FRAME_NS, SpeechTimeline};
pub use window::{
    AudioStep, FrameWindow, FusionBatch, TrackWindows, WindowArrays, WindowConfig, stack,
};

/// What the timeline refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimelineError {
    /// A vector does not have the configured dimension.
    #[error("{stream} vector has {got} values, expected {expected}")]
    Dimension {
        /// `audio` or `visual`.
        stream: &'static str,
        /// The configured dimension.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// An audio vector is earlier than one already pushed (call `reset()` after a flush or seek).
    #[error(
        "audio vector at {time} ns is earlier than the last one at {last} ns (reset after a flush or seek)"
    )]
    NotMonotonic {
        /// The new vector's time.
        time: u64,
        /// The latest stored time.
        last: u64,
    },
    /// A configuration value cannot be used.
    #[error("bad timeline configuration: {0}")]
    Config(&'static str),
}

/// A mask value in `[0, 1]`: clamped, NaN → 0.
pub fn unit_mask(m: f32) -> f32 {
    if m.is_nan() { 0.0 } else { m.clamp(0.0, 1.0) }
}

/// `true` when every value is finite.
pub fn is_finite(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// The middle of `[pts, pts + duration)`, the time a frame or feature vector stands for
/// when it has a duration.
pub fn midpoint(pts: u64, duration: Option<u64>) -> u64 {
    pts.saturating_add(duration.unwrap_or(0) / 2)
}
