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

pub mod audio;
pub mod image;
pub mod output;

pub use audio::{Resampler, Window, Windower, downmix_f32, downmix_s16, sample_time_ns};
pub use image::CropPreprocessor;
pub use output::{OutputError, affwild2_map, parse_affwild2_map, split_batch};
