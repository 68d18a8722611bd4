// SPDX-License-Identifier: MPL-2.0
//! # affect — the core of gst-affect
//!
//! Everything in gst-affect that is not GStreamer glue lives here, so it can be
//! unit-tested without a pipeline and shared with the trainer (see `ARCHITECTURE.md` in
//! the repository for the data flow through the elements):
//!
//! - [`runtime`]: loading ONNX Runtime, sessions with execution providers, and the
//!   `affect.*` model contract every model carries.
//! - [`face`]: face detection decoding, NMS, letterboxing, alignment (crops) and
//!   tracking (`facecrop`).
//! - [`audio`]: framing, resampling, RNNoise denoising, voice activity, speech hysteresis
//!   and audio quality metrics (`audiodenoise`).
//! - [`features`]: feature-model pre- and post-processing (`featextract` and the trainer).
//! - [`timeline`]: audio features aligned onto video frame times, per-track windows
//!   (`avfuse`).
//! - [`fusion`]: the baseline fusion model and the post-processing of any fusion model's
//!   outputs (`avfuse`).
//! - [`results`]: the public result types (affect per face per frame) shared by the bus
//!   messages, NDJSON and CSV files (whole lines only) and metas.
//! - [`dataset`]: Aff-Wild2 annotations, feature files and dumps, splits, sequences, the
//!   synthetic data set.
//! - [`metrics`]: CCC, macro-F1 and confusion matrices.
//! - [`onnx`]: a small ONNX writer (protobuf messages declared with prost) for the
//!   baseline, test and exported models.
//! - [`weights`]: the bundled default models and their `MANIFEST.toml`.
//! - `train` (feature `train`): models, losses, the training loop and ONNX export of
//!   `affect-train`.
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod audio;
pub mod dataset;
pub mod face;
pub mod features;
pub mod fusion;
pub mod metrics;
pub mod onnx;
pub mod results;
pub mod runtime;
pub mod speaker;
pub mod timeline;
#[cfg(feature = "train")]
pub mod train;
pub mod weights;

/// The Aff-Wild2 / ABAW expression classes, in the order every fusion model outputs them.
pub const EXPRESSIONS: [&str; 8] = [
    "Neutral",
    "Anger",
    "Disgust",
    "Fear",
    "Happiness",
    "Sadness",
    "Surprise",
    "Other",
];
