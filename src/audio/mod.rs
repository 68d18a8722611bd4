// SPDX-License-Identifier: MPL-2.0
//! Audio numeric code: framing, anti-alias decimation, RNNoise denoising with delay
//! compensation, the Silero VAD runner, speech hysteresis, and the quality metrics
//! (SNR, SI-SDR, ROC AUC, balanced accuracy) used by tests and benchmarks.
//!
//! Nothing here knows GStreamer: the `audiodenoise` element is glue around
//! [`engine::SpeechEngine`], which takes interleaved `f32` samples at 48 kHz and gives
//! back the same number of samples, aligned with the input (RNNoise's 480-sample delay
//! is compensated), with a speech probability per 10 ms frame and speech boundary
//! events in samples.

pub mod decimate;
pub mod denoise;
pub mod engine;
pub mod frame;
pub mod hysteresis;
pub mod metrics;
pub mod silero;
pub mod synth;

/// The sample rate RNNoise (and therefore the engine) works at.
pub const RATE: u32 = 48_000;
/// RNNoise frame: 480 samples = 10 ms at 48 kHz.
pub const FRAME: usize = 480;

pub use decimate::Decimator;
pub use denoise::Denoiser;
pub use engine::{EngineConfig, Gate, SpeechEngine, VadKind};
pub use frame::Framer;
pub use hysteresis::{Hysteresis, HysteresisConfig, SpeechEvent, SpeechEventKind};
pub use silero::SileroVad;
