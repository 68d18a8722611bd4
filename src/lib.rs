//! # affect — the core of gst-affect
//!
//! Everything in gst-affect that is not GStreamer glue lives here, so it can be
//! unit-tested without a pipeline and shared with the trainer:
//!
//! - [`runtime`]: loading ONNX Runtime, sessions with execution providers, and the
//!   `affect.*` model contract every model carries.
//! - [`onnx`]: a small ONNX writer (protobuf messages declared with prost), used to
//!   generate baseline and test models and, later, to export trained models.
//! - [`weights`]: the bundled default models and their `MANIFEST.toml`.
//! - [`results`]: the public result types (affect per face per frame) shared by the
//!   bus messages, NDJSON files and metas.
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
