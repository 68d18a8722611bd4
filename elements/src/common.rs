// SPDX-License-Identifier: MPL-2.0
//! What every model-running element shares: the `execution-provider` enum and the
//! `model`, `execution-provider`, `device-id`, `threads`, `ort-library` properties,
//! implemented once here, and the mapping of runtime errors to element errors.

use std::path::PathBuf;

use affect::features::FeatureModelError;
use affect::runtime::{Model, Role, RuntimeError, SessionConfig};
use gst::glib;
use gst::prelude::*;

/// Where models run (the `execution-provider` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstAffectExecutionProvider")]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU provider.
    #[default]
    #[enum_value(name = "CPU", nick = "cpu")]
    Cpu = 0,
    /// NVIDIA CUDA; an error if it cannot start (never a silent CPU fallback).
    #[enum_value(name = "CUDA (error if unavailable)", nick = "cuda")]
    Cuda = 1,
    /// NVIDIA TensorRT; an error if it cannot start.
    #[enum_value(name = "TensorRT (error if unavailable)", nick = "tensorrt")]
    TensorRt = 2,
    /// CUDA when it starts, else CPU (the choice is logged).
    #[enum_value(name = "Best available (logged)", nick = "auto")]
    Auto = 3,
}

impl From<ExecutionProvider> for affect::runtime::ExecutionProvider {
    fn from(p: ExecutionProvider) -> Self {
        match p {
            ExecutionProvider::Cpu => Self::Cpu,
            ExecutionProvider::Cuda => Self::Cuda,
            ExecutionProvider::TensorRt => Self::TensorRt,
            ExecutionProvider::Auto => Self::Auto,
        }
    }
}

/// The model settings of an element; lives inside the element's `Settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSettings {
    /// `model`: a path, or the name of a model in the default weights folder.
    pub model: String,
    /// `execution-provider`.
    pub provider: ExecutionProvider,
    /// `device-id`.
    pub device_id: i32,
    /// `threads` (0 = ONNX Runtime's default).
    pub threads: u32,
    /// `ort-library` (empty = `ORT_DYLIB_PATH`, then the `make setup` cache).
    pub ort_library: String,
    /// `share-session`: use the process-wide session of the model.
    pub share_session: bool,
    /// `max-batch` (0 = auto: 1, i.e. off, on CPU; [`GPU_MAX_BATCH`] on cuda/tensorrt).
    pub max_batch: u32,
    /// `max-batch-latency` in ns.
    pub max_batch_latency: u64,
}

/// `max-batch=0` (auto) on a GPU provider: requests of up to this many items gathered.
pub const GPU_MAX_BATCH: u32 = 8;
/// Default `max-batch-latency`: 5 ms.
pub const DEFAULT_MAX_BATCH_LATENCY: u64 = 5_000_000;

impl ModelSettings {
    /// Settings with `default_model` (a name in `weights/` or a path).
    pub fn new(default_model: &str) -> Self {
        ModelSettings {
            model: default_model.to_owned(),
            provider: ExecutionProvider::Cpu,
            device_id: 0,
            threads: 1,
            ort_library: String::new(),
            share_session: true,
            max_batch: 0,
            max_batch_latency: DEFAULT_MAX_BATCH_LATENCY,
        }
    }

    /// The property specs, to chain into an element's `properties()`.
    pub fn properties(default_model: &str) -> Vec<glib::ParamSpec> {
        Self::properties_with(
            default_model,
            "ONNX model: a file path, or the name of a bundled model in the weights folder (AFFECT_WEIGHTS_DIR)",
        )
    }

    /// The cross-stream batching properties (`max-batch`, `max-batch-latency`), for the
    /// elements whose model runs take a batch axis (facecrop, featextract, avfuse).
    pub fn batch_properties() -> Vec<glib::ParamSpec> {
        vec![
            glib::ParamSpecUInt::builder("max-batch")
                .nick("Max batch")
                .blurb("Cross-stream batching on the shared session: requests of every element sharing it are gathered into one run of up to this many items (0 = auto: off on CPU, where batching across streams does not pay, 8 on cuda/tensorrt; 1 = off); each request waits at most max-batch-latency, which is added to the element's latency")
                .maximum(256)
                .default_value(0)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt64::builder("max-batch-latency")
                .nick("Max batch latency")
                .blurb("Longest a request waits for others to fill a batch, in ns (only with batching on)")
                .maximum(1_000_000_000)
                .default_value(DEFAULT_MAX_BATCH_LATENCY)
                .mutable_ready()
                .build(),
        ]
    }

    /// The `max-batch` in effect: `max-batch`, or for 0 (auto) 1 on CPU and
    /// [`GPU_MAX_BATCH`] on cuda/tensorrt. Exclusive sessions never batch.
    pub fn effective_max_batch(&self) -> u32 {
        if !self.share_session {
            return 1;
        }
        match (self.max_batch, self.provider) {
            (0, ExecutionProvider::Cuda | ExecutionProvider::TensorRt) => GPU_MAX_BATCH,
            (0, _) => 1,
            (n, _) => n,
        }
    }

    /// The latency cross-stream batching may add to each run (0 when it is off).
    pub fn batch_latency(&self) -> gst::ClockTime {
        if self.effective_max_batch() > 1 {
            gst::ClockTime::from_nseconds(self.max_batch_latency)
        } else {
            gst::ClockTime::ZERO
        }
    }

    /// [`properties`](Self::properties) with the element's own description of `model`
    /// (which bundled models it can run, and their licences).
    pub fn properties_with(default_model: &str, model_blurb: &str) -> Vec<glib::ParamSpec> {
        vec![
            glib::ParamSpecString::builder("model")
                .nick("Model")
                .blurb(model_blurb)
                .default_value(Some(default_model))
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("execution-provider", ExecutionProvider::Cpu)
                .nick("Execution provider")
                .blurb("Where the model runs; cuda/tensorrt fail at start if they cannot run, auto picks the best and logs it")
                .mutable_ready()
                .build(),
            glib::ParamSpecInt::builder("device-id")
                .nick("Device id")
                .blurb("GPU index for cuda/tensorrt")
                .minimum(0)
                .maximum(255)
                .default_value(0)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("threads")
                .nick("Threads")
                .blurb("Intra-op threads of the model (0 = one per core); more than the cores available are capped to them, with a warning")
                .maximum(256)
                .default_value(1)
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("ort-library")
                .nick("ONNX Runtime library")
                .blurb("Path of libonnxruntime.so (empty: ORT_DYLIB_PATH, then the make setup cache); a path that cannot be loaded is an error, never a fall-back; one library per process")
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("share-session")
                .nick("Share session")
                .blurb("Use the one session of this model that every element of the process with the same model file, provider, device, threads and library shares (weights and ONNX Runtime memory once; runs take turns); false: a session of its own, whose runs may overlap other elements' on other cores")
                .default_value(true)
                .mutable_ready()
                .build(),
        ]
    }

    /// Sets one of the shared properties; returns false if `pspec` is not one of them.
    pub fn set_property(&mut self, value: &glib::Value, pspec: &glib::ParamSpec) -> bool {
        match pspec.name() {
            "model" => self.model = string_property(value),
            "execution-provider" => self.provider = value.get().expect("type checked upstream"),
            "device-id" => self.device_id = value.get().expect("type checked upstream"),
            "threads" => self.threads = value.get().expect("type checked upstream"),
            "ort-library" => self.ort_library = string_property(value),
            "share-session" => self.share_session = value.get().expect("type checked upstream"),
            "max-batch" => self.max_batch = value.get().expect("type checked upstream"),
            "max-batch-latency" => {
                self.max_batch_latency = value.get().expect("type checked upstream")
            }
            _ => return false,
        }
        true
    }

    /// Reads one of the shared properties; `None` if `pspec` is not one of them.
    pub fn property(&self, pspec: &glib::ParamSpec) -> Option<glib::Value> {
        Some(match pspec.name() {
            "model" => self.model.to_value(),
            "execution-provider" => self.provider.to_value(),
            "device-id" => self.device_id.to_value(),
            "threads" => self.threads.to_value(),
            "ort-library" => self.ort_library.to_value(),
            "share-session" => self.share_session.to_value(),
            "max-batch" => self.max_batch.to_value(),
            "max-batch-latency" => self.max_batch_latency.to_value(),
            _ => return None,
        })
    }

    /// The runtime-layer session settings.
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            provider: self.provider.into(),
            device_id: self.device_id,
            threads: self.threads as usize,
            ort_library: (!self.ort_library.is_empty()).then(|| PathBuf::from(&self.ort_library)),
            exclusive: !self.share_session,
            batch: affect::runtime::BatchConfig {
                max_batch: self.effective_max_batch() as usize,
                max_latency: std::time::Duration::from_nanos(self.max_batch_latency),
            },
        }
    }

    /// When `threads` asks for more than the cores available: the warning an element
    /// posts at start, saying the value asked and the value used (sessions are capped in
    /// [`SessionConfig::effective_threads`]).
    pub fn threads_warning(&self) -> Option<String> {
        let used = self.session_config().effective_threads();
        (self.threads as usize > used).then(|| {
            format!(
                "threads={} is more than the {} cores available: using threads={}",
                self.threads,
                affect::runtime::available_cores(),
                used
            )
        })
    }

    /// Loads the model for `role`; every failure is an element error a user can act on.
    pub fn load(&self, role: Role) -> Result<Model, gst::ErrorMessage> {
        if self.model.trim().is_empty() {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("property `model` is empty: give a path or the name of a bundled model")
            ));
        }
        let path = affect::weights::resolve_model(&self.model);
        Model::load(&path, Some(role), &self.session_config()).map_err(|e| e.to_error_message())
    }
}

/// Adds `extra` to the answer of an answered LATENCY query (min, and max when bounded);
/// other queries are left alone. For elements whose own processing adds latency, e.g.
/// cross-stream batching ([`ModelSettings::batch_latency`]).
pub fn add_latency(query: &mut gst::QueryRef, extra: gst::ClockTime) {
    if extra.is_zero() {
        return;
    }
    if let gst::QueryViewMut::Latency(q) = query.view_mut() {
        let (live, min, max) = q.result();
        q.set(live, min + extra, max.map(|m| m + extra));
    }
}

/// Element metadata the way `gst-inspect-1.0` and the documentation expect it: a
/// one-line `description`, and the example pipeline under the extra key `example`
/// (listed by `gst-inspect-1.0 <element>`; the long text is in the element's
/// `SECTION:element-…` documentation block).
pub fn element_metadata(
    long_name: &str,
    classification: &str,
    description: &str,
    example: &str,
) -> gst::subclass::ElementMetadata {
    gst::subclass::ElementMetadata::with_additional(
        long_name,
        classification,
        description,
        "gst-affect developers",
        &[("example", example)],
    )
}

/// A string property's value (`None` as the empty string).
pub fn string_property(value: &glib::Value) -> String {
    value
        .get::<Option<String>>()
        .expect("type checked upstream")
        .unwrap_or_default()
}

/// The `src` and `sink` always-pad templates of a filter whose pads share `caps`.
pub fn filter_pad_templates(caps: &gst::Caps) -> Vec<gst::PadTemplate> {
    [
        ("src", gst::PadDirection::Src),
        ("sink", gst::PadDirection::Sink),
    ]
    .into_iter()
    .filter_map(|(name, dir)| gst::PadTemplate::new(name, dir, gst::PadPresence::Always, caps).ok())
    .collect()
}

/// Adds the `running-time` and `stream-time` (ns) of `t` to a message structure, each
/// when `segment` defines it.
pub fn with_segment_times(
    mut b: gst::structure::Builder,
    segment: Option<&gst::FormattedSegment<gst::ClockTime>>,
    t: gst::ClockTime,
) -> gst::structure::Builder {
    if let Some(rt) = segment.and_then(|seg| seg.to_running_time(t)) {
        b = b.field("running-time", rt.nseconds());
    }
    if let Some(st) = segment.and_then(|seg| seg.to_stream_time(t)) {
        b = b.field("stream-time", st.nseconds());
    }
    b
}

/// A typed error that knows its GStreamer error domain: every error of the core crate
/// an element can meet is mapped here, once, so the same failure is the same element
/// error whichever element meets it.
pub trait ElementError: std::fmt::Display {
    /// The element error a user expects (domain, code and this error's message).
    fn to_error_message(&self) -> gst::ErrorMessage;
}

impl ElementError for RuntimeError {
    fn to_error_message(&self) -> gst::ErrorMessage {
        match self {
            RuntimeError::LibraryNotFound { .. }
            | RuntimeError::LibraryUnusable { .. }
            | RuntimeError::LibraryConflict { .. }
            | RuntimeError::Environment { .. } => {
                gst::error_msg!(gst::LibraryError::Init, ("{}", self))
            }
            RuntimeError::ModelFile { .. } => {
                gst::error_msg!(gst::ResourceError::NotFound, ("{}", self))
            }
            RuntimeError::NotOnnx { .. }
            | RuntimeError::ModelLoad { .. }
            | RuntimeError::Contract { .. } => {
                gst::error_msg!(gst::ResourceError::Settings, ("{}", self))
            }
            RuntimeError::Provider { .. } => {
                gst::error_msg!(gst::LibraryError::Settings, ("{}", self))
            }
            RuntimeError::Run { .. } => gst::error_msg!(gst::StreamError::Failed, ("{}", self)),
        }
    }
}

impl ElementError for FeatureModelError {
    fn to_error_message(&self) -> gst::ErrorMessage {
        match self {
            FeatureModelError::Run(e) => e.to_error_message(),
            e if e.is_configuration() => {
                gst::error_msg!(gst::ResourceError::Settings, ("{}", e))
            }
            e => gst::error_msg!(gst::StreamError::Failed, ("{}", e)),
        }
    }
}

/// Posts an element message with `structure` from `element`; false if the element has
/// no bus (not in a pipeline), which is not an error for a message nobody can read.
pub fn post_element_message(element: &impl IsA<gst::Element>, structure: gst::Structure) -> bool {
    let msg = gst::message::Element::builder(structure)
        .src(element.upcast_ref::<gst::Element>())
        .build();
    element.post_message(msg).is_ok()
}

/// Locking the elements' mutexes. A mutex is poisoned only when a panic unwound while it
/// was held; GStreamer's panic guards then mark the element as failed, and its data is
/// still what stop/cleanup need, so the guard is taken either way.
pub trait LockExt<T> {
    /// The guard, poisoned or not.
    fn locked(&self) -> std::sync::MutexGuard<'_, T>;
}

impl<T> LockExt<T> for std::sync::Mutex<T> {
    fn locked(&self) -> std::sync::MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_round_trip_and_map_to_session_config() {
        gst::init().unwrap();
        let pspecs = ModelSettings::properties("blazeface-full");
        let names: Vec<&str> = pspecs.iter().map(|p| p.name()).collect();
        assert_eq!(
            names,
            [
                "model",
                "execution-provider",
                "device-id",
                "threads",
                "ort-library",
                "share-session"
            ]
        );
        let mut s = ModelSettings::new("blazeface-full");
        for (p, v) in pspecs.iter().zip([
            "/tmp/m.onnx".to_value(),
            ExecutionProvider::Cuda.to_value(),
            2i32.to_value(),
            4u32.to_value(),
            "/opt/libonnxruntime.so".to_value(),
            false.to_value(),
        ]) {
            assert!(s.set_property(&v, p));
            assert_eq!(
                s.property(p).unwrap().serialize().unwrap(),
                v.serialize().unwrap()
            );
        }
        let cfg = s.session_config();
        assert_eq!(cfg.provider, affect::runtime::ExecutionProvider::Cuda);
        assert_eq!((cfg.device_id, cfg.threads, cfg.exclusive), (2, 4, true));
        assert_eq!(
            cfg.ort_library.unwrap(),
            PathBuf::from("/opt/libonnxruntime.so")
        );
        let other = glib::ParamSpecBoolean::builder("post-messages").build();
        assert!(!s.set_property(&true.to_value(), &other));
        assert!(s.property(&other).is_none());
    }

    #[test]
    fn load_errors_are_element_errors() {
        gst::init().unwrap();
        let mut s = ModelSettings::new("");
        let e = s.load(Role::FaceDetector).unwrap_err();
        assert!(e.to_string().contains("`model` is empty"), "{e}");
        s.model = "/nonexistent/detector.onnx".into();
        let e = s.load(Role::FaceDetector).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/detector.onnx"), "{e}");
    }
}
