// SPDX-License-Identifier: MPL-2.0
//! ONNX Runtime layer: library discovery, sessions, execution providers and model contracts.
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic`), from the first of:
//! 1. an explicit path (the elements' `ort-library` property),
//! 2. the `ORT_DYLIB_PATH` environment variable,
//! 3. the cache that `make setup` fills (`.cache/onnxruntime/` in the source tree).
//!
//! A library the user names (1 or 2) must load: if it does not, [`runtime()`] returns
//! [`RuntimeError::LibraryUnusable`] naming the setting and the path, and never falls
//! back to the cache. The cache is tried only when nothing is set; if it fails too, the
//! error is [`RuntimeError::LibraryNotFound`] naming all three places. The library can
//! be loaded once per process: naming another file afterwards is
//! [`RuntimeError::LibraryConflict`]. Every file is checked before `ort` sees it, so
//! `ort` never gets the chance to panic on a missing library.

mod batch;
mod contract;
mod library;
mod session;

pub use batch::BatchConfig;
pub use contract::{
    AudioInput, AudioMaskKind, CONTRACT_VERSION, ContractError, FeatureModelRef, FusionSpec,
    ImageInput, InputSpec, Layout, ModelContract, PixelColour, Role,
};
pub use library::{
    ENV_CACHE_DIR, ENV_DYLIB_PATH, LibraryCandidate, PLACE_CACHE, PLACE_PROPERTY, Runtime,
    cache_dir, default_cache_library, runtime,
};
pub use session::{
    ExecutionProvider, Model, SessionConfig, SharedSessionInfo, TensorInfo, available_cores,
    shared_sessions,
};

use std::path::PathBuf;

/// How an error message names a [`LibraryCandidate::place`].
fn setting(place: &str) -> String {
    match place {
        PLACE_PROPERTY => "the element's ort-library property".into(),
        ENV_DYLIB_PATH => format!("the environment variable {ENV_DYLIB_PATH}"),
        other => format!("the {other}"),
    }
}

/// Errors of the runtime layer. Every message is meant to be read by a user who can act on it.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No place held a loadable ONNX Runtime library.
    #[error(
        "ONNX Runtime library not found or not loadable; tried: {}. Run `make setup` to fill the cache, set ORT_DYLIB_PATH, or set the element's ort-library property",
        .tried.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("; ")
    )]
    LibraryNotFound {
        /// Every place that was tried, with why it did not work.
        tried: Vec<LibraryCandidate>,
    },
    /// The library a setting names (the `ort-library` property or `ORT_DYLIB_PATH`)
    /// cannot be loaded; the cache is not tried instead.
    #[error(
        "ONNX Runtime library {} given by {} cannot be loaded: {reason}. Fix the path, or leave the setting empty to use the library of `make setup`",
        .path.display(),
        setting(place)
    )]
    LibraryUnusable {
        /// The setting: `ort-library property` or `ORT_DYLIB_PATH`.
        place: &'static str,
        /// The path it names.
        path: PathBuf,
        /// Why it cannot be loaded.
        reason: String,
    },
    /// ONNX Runtime is already loaded from another file, and a process can load it only once.
    #[error(
        "{} names ONNX Runtime library {}, but this process already loaded ONNX Runtime from {} and can load it only once: name the same library everywhere, or leave the setting empty",
        setting(place),
        .path.display(),
        .loaded.display()
    )]
    LibraryConflict {
        /// The setting: `ort-library property` or `ORT_DYLIB_PATH`.
        place: &'static str,
        /// The path it names.
        path: PathBuf,
        /// The library in use.
        loaded: PathBuf,
    },
    /// The runtime library loaded but creating the ONNX Runtime environment failed.
    #[error("ONNX Runtime environment could not be created from {path}: {message}")]
    Environment {
        /// The library in use.
        path: PathBuf,
        /// ONNX Runtime's message.
        message: String,
    },
    /// The model file does not exist or cannot be read.
    #[error("cannot read model {path}: {source}")]
    ModelFile {
        /// The model path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The model file is not an ONNX model at all (checked without ONNX Runtime).
    #[error("{} is not an ONNX model: {reason}", .path.display())]
    NotOnnx {
        /// The model path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// ONNX Runtime refused the model (not ONNX, unsupported operator, …).
    #[error("ONNX Runtime cannot load model {path}: {message}")]
    ModelLoad {
        /// The model path.
        path: PathBuf,
        /// ONNX Runtime's message.
        message: String,
    },
    /// The model's `affect.*` contract is missing, malformed or does not match its graph.
    #[error("model {path} has an unusable contract: {source}")]
    Contract {
        /// The model path.
        path: PathBuf,
        /// What is wrong.
        source: ContractError,
    },
    /// An explicitly requested execution provider cannot run here.
    #[error("execution provider {provider} cannot be used: {message}")]
    Provider {
        /// The provider asked for.
        provider: ExecutionProvider,
        /// Why it cannot be used.
        message: String,
    },
    /// Running the model failed.
    #[error("running model {name} failed: {message}")]
    Run {
        /// The model's name.
        name: String,
        /// ONNX Runtime's or the wrapper's message.
        message: String,
    },
}
