// SPDX-License-Identifier: MPL-2.0
//! [`FeatureModel`]: a face-feature or audio-feature ONNX model read through its
//! contract. It decides once, when loaded, which output is the feature vector and which
//! holds class probabilities, the vector's dimension, the Aff-Wild2 class map, the audio
//! window and hop and the batch size; then it runs batches of face crops or audio
//! windows and returns one [`FeatureVector`] per item, with non-finite results masked
//! (`valid = false`, empty vectors). The `featextract` element, the trainer and the
//! benchmarks all run feature models through it, so they compute the same numbers.

use std::sync::Arc;

use ndarray::{ArrayViewD, IxDyn};

use super::audio::Window;
use super::image::{CropError, CropPreprocessor};
use super::output::{OutputError, affwild2_map, parse_affwild2_map, split_batch};
use super::prosody::{self, NATIVE_KEY, VOICE_PROSODY_V1, VoiceProsody};
use crate::results::{FaceCrop, FeatureVector};
use crate::runtime::{InputSpec, Model, Role, RuntimeError};

/// The `model` value that picks the bundled default for the stream's media.
pub const AUTO: &str = "auto";
/// Bundled default face-feature model (`model=auto` on video).
pub const DEFAULT_FACE_MODEL: &str = "fer-mini-xception";
/// Bundled default audio-feature model (`model=auto` on audio).
pub const DEFAULT_AUDIO_MODEL: &str = "voice-prosody";
/// Default items per model run when the graph's batch axis is dynamic.
pub const DEFAULT_BATCH_SIZE: usize = 16;

/// Whether a `model` value is [`AUTO`] (any case, surrounding blanks ignored).
pub fn is_auto(model: &str) -> bool {
    model.trim().eq_ignore_ascii_case(AUTO)
}

/// The bundled default model for feature `role`; `None` for other roles.
pub fn default_model(role: Role) -> Option<&'static str> {
    match role {
        Role::FaceFeature => Some(DEFAULT_FACE_MODEL),
        Role::AudioFeature => Some(DEFAULT_AUDIO_MODEL),
        _ => None,
    }
}

/// Choices a user may make over the contract's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureOptions {
    /// The output to read as the feature vector (`None`: the last output the contract
    /// names).
    pub output: Option<String>,
    /// Audio window in model-rate samples (`None`: the contract's `affect.input.window`).
    pub window: Option<usize>,
    /// Audio hop in model-rate samples (`None`: the contract's `affect.input.hop`).
    pub hop: Option<usize>,
    /// Items per run when the graph's batch axis is dynamic.
    pub batch_size: usize,
    /// Compute the output natively when the model declares a computation this crate
    /// implements ([`NATIVE_KEY`]); false always runs the graph.
    pub native: bool,
}

impl Default for FeatureOptions {
    fn default() -> Self {
        FeatureOptions {
            output: None,
            window: None,
            hop: None,
            batch_size: DEFAULT_BATCH_SIZE,
            native: true,
        }
    }
}

/// Why a feature model cannot be used as configured, or a run failed.
#[derive(Debug, thiserror::Error)]
pub enum FeatureModelError {
    /// The model is not a feature model.
    #[error(
        "model {path} has affect.role `{role}`: featextract needs a `face-feature` or `audio-feature` model"
    )]
    Role {
        /// Model file.
        path: String,
        /// Its role.
        role: Role,
    },
    /// The requested feature output does not exist.
    #[error("model {path} has no output `{output}` (property `output`); its outputs are [{}]", .outputs.join(", "))]
    NoOutput {
        /// Model file.
        path: String,
        /// The output asked for.
        output: String,
        /// The graph's outputs.
        outputs: Vec<String>,
    },
    /// Neither the graph nor the contract gives the vector's dimension.
    #[error(
        "model {path}: the dimension of output `{output}` is unknown (metadata key `affect.output.dim`)"
    )]
    UnknownDim {
        /// Model file.
        path: String,
        /// The feature output.
        output: String,
    },
    /// The graph and the contract disagree on the vector's dimension.
    #[error(
        "model {path}: output `{output}` has {graph} values per item, affect.output.dim says {contract}"
    )]
    DimMismatch {
        /// Model file.
        path: String,
        /// The feature output.
        output: String,
        /// Values per item in the graph.
        graph: usize,
        /// `affect.output.dim`.
        contract: usize,
    },
    /// `affect.output.affwild2-map` is malformed.
    #[error(
        "model {path}: metadata key `affect.output.affwild2-map` has value `{value}`, expected {classes} distinct indices in 0..8"
    )]
    BadMap {
        /// Model file.
        path: String,
        /// The value.
        value: String,
        /// The model's class count.
        classes: usize,
    },
    /// The graph takes a fixed window other than the one asked.
    #[error("model {path} takes windows of exactly {fixed} samples; property `window` is {window}")]
    FixedWindow {
        /// Model file.
        path: String,
        /// The graph's window.
        fixed: usize,
        /// The window asked.
        window: usize,
    },
    /// A window other than the contract's fails on a graph with a dynamic window axis.
    #[error(
        "property `window` is {window}, but model `{name}` ({path}) cannot work on {window}-sample windows ({reason}); it is made for {contract}-sample windows (affect.input.window; window=0 uses it)"
    )]
    Window {
        /// Model name.
        name: String,
        /// Model file.
        path: String,
        /// The window asked.
        window: usize,
        /// The contract's window.
        contract: usize,
        /// Why the probe run failed.
        reason: String,
    },
    /// A fusion model was given.
    #[error(
        "model {path} is a fusion model: featextract needs a face-feature or audio-feature model"
    )]
    Fusion {
        /// Model file.
        path: String,
    },
    /// Face crops were given to an audio model or windows to an image model.
    #[error("model `{name}` reads {reads}, not {given}")]
    WrongMedia {
        /// Model name.
        name: String,
        /// What it reads.
        reads: &'static str,
        /// What it was given.
        given: &'static str,
    },
    /// A crop could not be prepared.
    #[error("track {track}: {source}")]
    Crop {
        /// The crop's track.
        track: u64,
        /// Why.
        source: CropError,
    },
    /// ONNX Runtime failed to run the model.
    #[error(transparent)]
    Run(#[from] RuntimeError),
    /// The model ran but its output is not what the contract says.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The model did not return an output it declares.
    #[error("the model did not return output `{0}` as float32")]
    MissingOutput(String),
    /// The model declares a native computation ([`NATIVE_KEY`]) its contract does not fit.
    #[error("model {path} declares {key} = {value}, but {reason}")]
    Native {
        /// Model file.
        path: String,
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What does not fit.
        reason: String,
    },
}

impl FeatureModelError {
    /// True for errors of the model or the settings (found when the model is loaded),
    /// false for errors while running it.
    pub fn is_configuration(&self) -> bool {
        !matches!(
            self,
            Self::Crop { .. } | Self::Run(_) | Self::Output(_) | Self::MissingOutput(_)
        )
    }
}

/// What a feature model reads.
#[derive(Debug, Clone)]
pub enum FeatureInput {
    /// Face crops, prepared by a [`CropPreprocessor`].
    Image(CropPreprocessor),
    /// Mono audio windows.
    Audio {
        /// Model sample rate (Hz).
        rate: u32,
        /// Window length (samples).
        window: usize,
        /// Hop between windows (samples).
        hop: usize,
    },
}

/// One item's result: the vector and class probabilities (Aff-Wild2 order when the
/// model maps its classes), both empty when the model gave NaN or infinity.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemResult {
    /// The feature vector.
    pub vector: Vec<f32>,
    /// Class probabilities.
    pub probabilities: Vec<f32>,
    /// False when the model's values were not finite.
    pub valid: bool,
}

/// A feature model, loaded and interpreted through its contract.
pub struct FeatureModel {
    model: Model,
    input_name: String,
    input: FeatureInput,
    feature_output: String,
    dim: usize,
    /// Probability output and its class count.
    probs_output: Option<(String, usize)>,
    /// Model classes → Aff-Wild2 index.
    map: Option<Vec<usize>>,
    labels: Arc<[String]>,
    max_batch: usize,
    buf: Vec<f32>,
    /// The native computation of the output, when the contract declares one and it fits.
    native: Option<VoiceProsody>,
}

impl std::fmt::Debug for FeatureModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureModel")
            .field("model", &self.model)
            .field("feature_output", &self.feature_output)
            .field("dim", &self.dim)
            .field("probs_output", &self.probs_output)
            .field("max_batch", &self.max_batch)
            .field("native", &self.native)
            .finish()
    }
}

impl FeatureModel {
    /// Interprets `model`'s contract with `opts`. A window other than the contract's,
    /// on a graph whose window axis is dynamic, is tried once here, so that a window the
    /// graph cannot take fails now instead of at the first buffer.
    pub fn new(model: Model, opts: &FeatureOptions) -> Result<Self, FeatureModelError> {
        let c = model.contract().clone();
        let path = model.path().display().to_string();
        if !matches!(c.role, Role::FaceFeature | Role::AudioFeature) {
            return Err(FeatureModelError::Role { path, role: c.role });
        }
        let graph_out = |n: &str| model.outputs().iter().find(|t| t.name == n);
        let feature_output = match opts.output.as_deref().map(str::trim) {
            Some(o) if !o.is_empty() => o.to_owned(),
            _ => c.outputs.last().cloned().unwrap_or_default(),
        };
        let Some(info) = graph_out(&feature_output) else {
            return Err(FeatureModelError::NoOutput {
                path,
                output: feature_output,
                outputs: model.outputs().iter().map(|t| t.name.clone()).collect(),
            });
        };
        let static_dim = (info.shape.len() >= 2 && info.shape[1..].iter().all(|&d| d > 0))
            .then(|| info.shape[1..].iter().product::<i64>() as usize);
        let dim = if Some(&feature_output) == c.outputs.last() {
            c.output_dim.or(static_dim)
        } else {
            static_dim.or(c.output_dim)
        };
        let Some(dim) = dim else {
            return Err(FeatureModelError::UnknownDim {
                path,
                output: feature_output,
            });
        };
        if let Some(graph) = static_dim
            && graph != dim
        {
            return Err(FeatureModelError::DimMismatch {
                path,
                output: feature_output,
                graph,
                contract: dim,
            });
        }

        let classes = c.labels.len();
        let last_dim = |n: &str| graph_out(n).and_then(|t| t.shape.last().copied());
        let probs_output = if classes == 0 {
            None
        } else {
            c.outputs
                .iter()
                .filter(|o| **o != feature_output)
                .find(|o| last_dim(o) == Some(classes as i64))
                .cloned()
                .or_else(|| (dim == classes).then(|| feature_output.clone()))
                .map(|o| (o, classes))
        };
        let map = match c.prop("affect.output.affwild2-map") {
            Some(value) if probs_output.is_some() => {
                Some(parse_affwild2_map(value, classes).ok_or_else(|| {
                    FeatureModelError::BadMap {
                        path: path.clone(),
                        value: value.to_owned(),
                        classes,
                    }
                })?)
            }
            _ => None,
        };
        let labels: Arc<[String]> = if map.is_some() {
            crate::EXPRESSIONS.iter().map(|s| s.to_string()).collect()
        } else if probs_output.is_some() {
            c.labels.iter().cloned().collect()
        } else {
            Arc::from(Vec::<String>::new())
        };

        let mut probe_window = None;
        let (input_name, input) = match &c.input {
            InputSpec::Image(img) => (
                img.name.clone(),
                FeatureInput::Image(CropPreprocessor::new(img)),
            ),
            InputSpec::Audio(a) => {
                let window = opts.window.filter(|&w| w > 0).unwrap_or(a.window);
                let hop = opts.hop.filter(|&h| h > 0).unwrap_or(a.hop);
                let fixed = model
                    .inputs()
                    .iter()
                    .find(|t| t.name == a.name)
                    .and_then(|t| t.shape.last().copied())
                    .filter(|&d| d > 0);
                if let Some(d) = fixed
                    && d as usize != window
                {
                    return Err(FeatureModelError::FixedWindow {
                        path,
                        fixed: d as usize,
                        window,
                    });
                }
                if fixed.is_none() && window != a.window {
                    probe_window = Some((window, a.window));
                }
                let (rate, name) = (a.sample_rate, a.name.clone());
                (name, FeatureInput::Audio { rate, window, hop })
            }
            InputSpec::Fusion(_) => return Err(FeatureModelError::Fusion { path }),
        };
        let graph_batch = model
            .inputs()
            .iter()
            .find(|t| t.name == input_name)
            .and_then(|t| t.shape.first().copied())
            .filter(|&b| b > 0);
        let max_batch = match graph_batch {
            Some(b) => b as usize,
            None => opts.batch_size.max(1),
        };
        let native = match c.prop(NATIVE_KEY) {
            Some(value) if opts.native && value.trim() == VOICE_PROSODY_V1 => {
                let reason = voice_prosody_misfit(&c, &input, &feature_output, dim, classes);
                if let Some(reason) = reason {
                    return Err(FeatureModelError::Native {
                        path,
                        key: NATIVE_KEY,
                        value: value.to_owned(),
                        reason,
                    });
                }
                Some(VoiceProsody::new())
            }
            // unknown computations, or native computing turned off: the graph runs
            _ => None,
        };
        let mut fm = FeatureModel {
            model,
            input_name,
            input,
            feature_output,
            dim,
            probs_output,
            map,
            labels,
            max_batch,
            buf: Vec::new(),
            native,
        };
        if let Some((window, contract)) = probe_window {
            fm.buf.clear();
            fm.buf.resize(window, 0.0);
            let probe = fm.run(&[1, window], 1);
            fm.buf.clear();
            if let Err(why) = probe {
                return Err(FeatureModelError::Window {
                    name: c.name,
                    path,
                    window,
                    contract,
                    reason: why.to_string(),
                });
            }
        }
        Ok(fm)
    }

    /// The model underneath.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model's `affect.name`.
    pub fn name(&self) -> &str {
        &self.model.contract().name
    }

    /// What it reads.
    pub fn input(&self) -> &FeatureInput {
        &self.input
    }

    /// True for an audio model, false for a face model.
    pub fn is_audio(&self) -> bool {
        matches!(self.input, FeatureInput::Audio { .. })
    }

    /// The output read as the feature vector.
    pub fn feature_output(&self) -> &str {
        &self.feature_output
    }

    /// Values per feature vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of class probabilities per item (0 when the model does not classify).
    pub fn classes(&self) -> usize {
        self.probs_output.as_ref().map_or(0, |(_, n)| *n)
    }

    /// Labels of the probabilities (the Aff-Wild2 expressions when the model maps its
    /// classes to them).
    pub fn labels(&self) -> &Arc<[String]> {
        &self.labels
    }

    /// Items per model run.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// The computation run natively instead of the graph ([`NATIVE_KEY`]'s value), if
    /// any.
    pub fn native(&self) -> Option<&'static str> {
        self.native.as_ref().map(|_| VOICE_PROSODY_V1)
    }

    /// Frames computed and reused by the native computation (`None` when the graph runs).
    pub fn native_stats(&self) -> Option<prosody::FrameStats> {
        self.native.as_ref().map(VoiceProsody::stats)
    }

    /// Runs `n` items already laid out in `self.buf` with `shape`.
    fn run(&mut self, shape: &[usize], n: usize) -> Result<Vec<ItemResult>, FeatureModelError> {
        let view =
            ArrayViewD::from_shape(IxDyn(shape), &self.buf).map_err(|e| RuntimeError::Run {
                name: self.model.contract().name.clone(),
                message: e.to_string(),
            })?;
        let out = self.model.run_f32(&[(self.input_name.as_str(), view)])?;
        let get = |name: &str| {
            out.get(name)
                .ok_or_else(|| FeatureModelError::MissingOutput(name.to_owned()))
        };
        let feats = split_batch(
            &self.feature_output,
            get(&self.feature_output)?,
            n,
            self.dim,
        )?;
        let probs = match &self.probs_output {
            Some((name, k)) => Some(split_batch(name, get(name)?, n, *k)?),
            None => None,
        };
        Ok(feats
            .into_iter()
            .enumerate()
            .map(|(i, vector)| {
                let p = probs.as_ref().map(|p| p[i].clone()).unwrap_or_default();
                if !vector.iter().chain(&p).all(|v| v.is_finite()) {
                    return ItemResult {
                        vector: Vec::new(),
                        probabilities: Vec::new(),
                        valid: false,
                    };
                }
                let probabilities = match &self.map {
                    Some(m) => affwild2_map(&p, m),
                    None => p,
                };
                ItemResult {
                    vector,
                    probabilities,
                    valid: true,
                }
            })
            .collect())
    }

    fn wrong_media(&self, given: &'static str) -> FeatureModelError {
        FeatureModelError::WrongMedia {
            name: self.name().to_owned(),
            reads: if self.is_audio() {
                "audio windows"
            } else {
                "face crops"
            },
            given,
        }
    }

    /// Runs face crops in batches of at most [`max_batch`](Self::max_batch).
    pub fn run_crops<C: AsRef<FaceCrop>>(
        &mut self,
        crops: &[C],
    ) -> Result<Vec<ItemResult>, FeatureModelError> {
        if self.is_audio() {
            return Err(self.wrong_media("face crops"));
        }
        let mut results = Vec::with_capacity(crops.len());
        for chunk in crops.chunks(self.max_batch.max(1)) {
            let FeatureInput::Image(pre) = &mut self.input else {
                unreachable!("checked above");
            };
            let item = pre.item_len();
            let shape = pre.batch_shape(chunk.len());
            self.buf.clear();
            self.buf.resize(item * chunk.len(), 0.0);
            for (i, c) in chunk.iter().map(AsRef::as_ref).enumerate() {
                pre.prepare(
                    &c.rgb,
                    c.width as usize,
                    c.height as usize,
                    &mut self.buf[i * item..(i + 1) * item],
                )
                .map_err(|source| FeatureModelError::Crop {
                    track: c.track_id,
                    source,
                })?;
            }
            results.extend(self.run(&shape, chunk.len())?);
        }
        Ok(results)
    }

    /// Runs audio windows (model-rate mono samples) in batches of at most
    /// [`max_batch`](Self::max_batch).
    pub fn run_windows(
        &mut self,
        windows: &[Window],
    ) -> Result<Vec<ItemResult>, FeatureModelError> {
        if !self.is_audio() {
            return Err(self.wrong_media("audio windows"));
        }
        if let Some(native) = self.native.as_mut() {
            let mut results = Vec::with_capacity(windows.len());
            for w in windows {
                let Some(vector) = native.window(w.start, &w.samples) else {
                    return Err(FeatureModelError::Run(RuntimeError::Run {
                        name: self.model.contract().name.clone(),
                        message: format!(
                            "a window of {} samples; {VOICE_PROSODY_V1} reads {}",
                            w.samples.len(),
                            prosody::WINDOW
                        ),
                    }));
                };
                let valid = vector.iter().all(|v| v.is_finite());
                results.push(ItemResult {
                    vector: if valid { vector } else { Vec::new() },
                    probabilities: Vec::new(),
                    valid,
                });
            }
            return Ok(results);
        }
        let mut results = Vec::with_capacity(windows.len());
        for chunk in windows.chunks(self.max_batch.max(1)) {
            let Some(w) = chunk.first().map(|w| w.samples.len()) else {
                continue;
            };
            self.buf.clear();
            for win in chunk {
                self.buf.extend_from_slice(&win.samples);
            }
            results.extend(self.run(&[chunk.len(), w], chunk.len())?);
        }
        Ok(results)
    }

    /// A result as the [`FeatureVector`] the elements attach.
    pub fn vector(
        &self,
        track_id: Option<u64>,
        pts: u64,
        duration: u64,
        r: ItemResult,
    ) -> FeatureVector {
        FeatureVector {
            track_id,
            pts,
            duration,
            model: self.name().to_owned(),
            vector: r.vector,
            probabilities: r.probabilities,
            labels: self.labels.clone(),
            valid: r.valid,
            reused: false,
        }
    }

    /// Runs audio windows of a stream whose model-rate sample 0 lies at `base` ns: one
    /// vector per window, timed by its samples.
    pub fn window_vectors(
        &mut self,
        base: u64,
        windows: &[Window],
    ) -> Result<Vec<Arc<FeatureVector>>, FeatureModelError> {
        let FeatureInput::Audio { rate, .. } = self.input else {
            return Err(self.wrong_media("audio windows"));
        };
        let results = self.run_windows(windows)?;
        Ok(windows
            .iter()
            .zip(results)
            .map(|(w, r)| {
                let (pts, duration) = w.times(base, rate);
                Arc::new(self.vector(None, pts, duration, r))
            })
            .collect())
    }
}

/// Why a model that declares [`VOICE_PROSODY_V1`] cannot be computed natively as
/// configured (`None`: it can): the computation reads 1 s windows at 16 kHz and writes
/// the 164 named features as its only output.
fn voice_prosody_misfit(
    c: &crate::runtime::ModelContract,
    input: &FeatureInput,
    feature_output: &str,
    dim: usize,
    classes: usize,
) -> Option<String> {
    let FeatureInput::Audio { rate, window, .. } = *input else {
        return Some("it is not an audio model".into());
    };
    if rate != prosody::SR || window != prosody::WINDOW {
        return Some(format!(
            "it reads {window} samples at {rate} Hz, the computation {} at {} Hz",
            prosody::WINDOW,
            prosody::SR
        ));
    }
    if c.outputs.last().map(String::as_str) != Some(feature_output) || classes > 0 {
        return Some(format!(
            "the output read (`{feature_output}`) is not its only feature output"
        ));
    }
    let names = c.prop("affect.output.feature-names").unwrap_or_default();
    if dim != prosody::DIM || names.split(',').map(str::trim).ne(prosody::feature_names()) {
        return Some(
            "its affect.output.dim / affect.output.feature-names are not the computation's".into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_and_defaults() {
        assert!(is_auto(" Auto "));
        assert!(!is_auto("fer-mini-xception"));
        assert_eq!(default_model(Role::FaceFeature), Some(DEFAULT_FACE_MODEL));
        assert_eq!(default_model(Role::AudioFeature), Some(DEFAULT_AUDIO_MODEL));
        assert_eq!(default_model(Role::Fusion), None);
        let o = FeatureOptions::default();
        assert_eq!((o.window, o.hop, o.batch_size), (None, None, 16));
    }

    #[test]
    fn configuration_errors_are_told_apart_from_run_errors() {
        let e = FeatureModelError::Fusion { path: "m".into() };
        assert!(e.is_configuration());
        assert!(e.to_string().contains("fusion model"), "{e}");
        let e = FeatureModelError::MissingOutput("probs".into());
        assert!(!e.is_configuration());
        let e = FeatureModelError::NoOutput {
            path: "m.onnx".into(),
            output: "logits".into(),
            outputs: vec!["probs".into(), "features".into()],
        };
        assert_eq!(
            e.to_string(),
            "model m.onnx has no output `logits` (property `output`); its outputs are [probs, features]"
        );
    }
}
