// SPDX-License-Identifier: MPL-2.0
//! Feature-model preprocessing and postprocessing, shared by the `featextract` element
//! and the trainer so both compute the same numbers.
//!
//! - [`image`]: an aligned RGB face crop → the tensor a face-feature model reads
//!   (resize, colour order / grey, `(x - mean) / std`, NCHW or NHWC), as the model's
//!   contract ([`crate::runtime::ImageInput`]) says.
//! - [`audio`]: interleaved audio at any rate → mono at the model's rate
//!   ([`audio::Resampler`], sample-exact, delay compensated) → windows of `window`
//!   samples every `hop` samples ([`audio::Windower`]) with their exact times.
//! - [`output`]: splitting a batched model output into per-item vectors, masking
//!   non-finite results, and mapping class probabilities to the Aff-Wild2 order.
//! - [`model`]: [`FeatureModel`], a feature model read through its contract (which
//!   output, dimension, class map, window, batch size) that runs batches of crops or
//!   windows into [`crate::results::FeatureVector`]s; the `auto` defaults.
//! - [`prosody`]: the `voice-prosody` features computed natively frame by frame (once
//!   per 10 ms frame instead of once per window that holds it), for models that declare
//!   them (`affect.native = voice-prosody/1`).
//! - [`stream`]: the per-stream state between buffers ([`AudioStream`] from bytes to
//!   timed windows, [`FaceFeatures`] with the `interval` reuse).

pub mod audio;
pub mod image;
pub mod model;
pub mod output;
pub mod prosody;
pub mod stream;

pub use audio::{Resampler, Window, Windower, downmix_f32, downmix_s16, sample_time_ns};
pub use image::CropPreprocessor;
pub use model::{
    AUTO, DEFAULT_AUDIO_MODEL, DEFAULT_BATCH_SIZE, DEFAULT_FACE_MODEL, FeatureInput, FeatureModel,
    FeatureModelError, FeatureOptions, ItemResult, default_model, is_auto,
};
pub use output::{OutputError, affwild2_map, parse_affwild2_map, split_batch};
pub use stream::{AudioStream, FaceFeatures, SampleFormat, TimedWindows};
