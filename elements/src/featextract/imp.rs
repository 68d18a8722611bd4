// SPDX-License-Identifier: MPL-2.0
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use affect::features::{
    CropPreprocessor, Resampler, Window, Windower, affwild2_map, downmix_f32, downmix_s16,
    parse_affwild2_map, sample_time_ns, split_batch,
};
use affect::results::{FaceCrop, FeatureVector};
use affect::runtime::{InputSpec, Model, ModelContract, Role};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use ndarray::{ArrayViewD, IxDyn};

use crate::common::LockExt;
use crate::common::{ModelSettings, error_message};
use crate::meta::{FaceCropMeta, FeatureMeta, FeaturesDeclaration};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "featextract",
        gst::DebugColorFlags::empty(),
        Some("Feature extraction from face crops and audio windows"),
    )
});

/// `model=auto`: the bundled default for the stream's media type.
const AUTO: &str = "auto";
const DEFAULT_VIDEO_MODEL: &str = "fer-mini-xception";
const DEFAULT_AUDIO_MODEL: &str = "oww-speech-embedding";
const DEFAULT_BATCH_SIZE: u32 = 16;
const DEFAULT_INTERVAL: u32 = 1;
/// A DISCONT buffer further than this from where the samples say it should be
/// restarts the windows.
const DISCONT_TOLERANCE_NS: u64 = 1_000_000;

#[derive(Debug, Clone)]
struct Settings {
    model: ModelSettings,
    batch_size: u32,
    interval: u32,
    window: u32,
    hop: u32,
    output: String,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: ModelSettings::new(AUTO),
            batch_size: DEFAULT_BATCH_SIZE,
            interval: DEFAULT_INTERVAL,
            window: 0,
            hop: 0,
            output: String::new(),
            post_messages: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Video,
    Audio,
}

impl Mode {
    fn role(self) -> Role {
        match self {
            Mode::Video => Role::FaceFeature,
            Mode::Audio => Role::AudioFeature,
        }
    }
}

/// What the model reads, prepared from its contract and the settings.
enum Input {
    Image(CropPreprocessor),
    Audio {
        rate: u32,
        window: usize,
        hop: usize,
    },
}

/// A loaded model and how to read it.
struct Loaded {
    model: Model,
    /// The `model` value it was loaded for (`auto` resolved).
    name: String,
    input_name: String,
    input: Input,
    feature_output: String,
    dim: usize,
    /// Probability output and its class count.
    probs_output: Option<(String, usize)>,
    /// Model classes → Aff-Wild2 index.
    map: Option<Vec<usize>>,
    labels: Arc<[String]>,
    /// Items per run (batch-size, or the graph's fixed batch).
    max_batch: usize,
    buf: Vec<f32>,
}

/// One result before it becomes a `FeatureVector`.
struct ItemResult {
    vector: Vec<f32>,
    probabilities: Vec<f32>,
    valid: bool,
}

impl Loaded {
    fn new(model: Model, name: &str, s: &Settings) -> Result<Self, gst::ErrorMessage> {
        let settings_err = |m: String| gst::error_msg!(gst::ResourceError::Settings, ("{}", m));
        let c = model.contract().clone();
        let path = model.path().display().to_string();
        if !matches!(c.role, Role::FaceFeature | Role::AudioFeature) {
            return Err(settings_err(format!(
                "model {path} has affect.role `{}`: featextract needs a `face-feature` or `audio-feature` model",
                c.role
            )));
        }
        let graph_out = |n: &str| model.outputs().iter().find(|t| t.name == n);
        // Feature output: the `output` property, else the last one the contract names.
        let feature_output = if s.output.trim().is_empty() {
            c.outputs.last().cloned().unwrap_or_default()
        } else {
            s.output.trim().to_owned()
        };
        let Some(info) = graph_out(&feature_output) else {
            return Err(settings_err(format!(
                "model {path} has no output `{feature_output}` (property `output`); its outputs are [{}]",
                model
                    .outputs()
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let static_dim = (info.shape.len() >= 2 && info.shape[1..].iter().all(|&d| d > 0))
            .then(|| info.shape[1..].iter().product::<i64>() as usize);
        let dim = if Some(&feature_output) == c.outputs.last() {
            c.output_dim.or(static_dim)
        } else {
            static_dim.or(c.output_dim)
        }
        .ok_or_else(|| {
            settings_err(format!(
                "model {path}: the dimension of output `{feature_output}` is unknown (metadata key `affect.output.dim`)"
            ))
        })?;
        if let Some(sd) = static_dim
            && sd != dim
        {
            return Err(settings_err(format!(
                "model {path}: output `{feature_output}` has {sd} values per item, affect.output.dim says {dim}"
            )));
        }

        let n_labels = c.labels.len();
        let last_dim = |n: &str| graph_out(n).and_then(|t| t.shape.last().copied());
        let probs_output = if n_labels == 0 {
            None
        } else {
            c.outputs
                .iter()
                .filter(|o| **o != feature_output)
                .find(|o| last_dim(o) == Some(n_labels as i64))
                .cloned()
                .or_else(|| (dim == n_labels).then(|| feature_output.clone()))
                .map(|o| (o, n_labels))
        };
        let map = match c.prop("affect.output.affwild2-map") {
            Some(v) if probs_output.is_some() => Some(parse_affwild2_map(v, n_labels).ok_or_else(|| {
                settings_err(format!(
                    "model {path}: metadata key `affect.output.affwild2-map` has value `{v}`, expected {n_labels} distinct indices in 0..8"
                ))
            })?),
            _ => None,
        };
        let labels: Arc<[String]> = if map.is_some() {
            affect::EXPRESSIONS.iter().map(|s| s.to_string()).collect()
        } else if probs_output.is_some() {
            c.labels.iter().cloned().collect()
        } else {
            Arc::from(Vec::<String>::new())
        };

        // A `window` other than the contract's, on a graph whose window axis is dynamic:
        // tried once below, so that a window the graph cannot take fails here (at the
        // state change) instead of at the first buffer.
        let mut probe_window = None;
        let (input_name, input) = match &c.input {
            InputSpec::Image(img) => (img.name.clone(), Input::Image(CropPreprocessor::new(img))),
            InputSpec::Audio(a) => {
                let window = if s.window > 0 {
                    s.window as usize
                } else {
                    a.window
                };
                let hop = if s.hop > 0 { s.hop as usize } else { a.hop };
                let fixed = model
                    .inputs()
                    .iter()
                    .find(|t| t.name == a.name)
                    .and_then(|t| t.shape.last().copied())
                    .filter(|&d| d > 0);
                if let Some(d) = fixed
                    && d as usize != window
                {
                    return Err(settings_err(format!(
                        "model {path} takes windows of exactly {d} samples; property `window` is {window}"
                    )));
                }
                if fixed.is_none() && window != a.window {
                    probe_window = Some((window, a.window));
                }
                (
                    a.name.clone(),
                    Input::Audio {
                        rate: a.sample_rate,
                        window,
                        hop,
                    },
                )
            }
            InputSpec::Fusion(_) => {
                return Err(settings_err(format!(
                    "model {path} is a fusion model: featextract needs a face-feature or audio-feature model"
                )));
            }
        };
        let graph_batch = model
            .inputs()
            .iter()
            .find(|t| t.name == input_name)
            .and_then(|t| t.shape.first().copied())
            .filter(|&b| b > 0);
        let max_batch = match graph_batch {
            Some(b) => b as usize,
            None => s.batch_size.max(1) as usize,
        };
        let mut loaded = Loaded {
            model,
            name: name.to_owned(),
            input_name,
            input,
            feature_output,
            dim,
            probs_output,
            map,
            labels,
            max_batch,
            buf: Vec::new(),
        };
        if let Some((window, contract_window)) = probe_window {
            loaded.buf.clear();
            loaded.buf.resize(window, 0.0);
            let probe = loaded.run(&[1, window], 1);
            loaded.buf.clear();
            if let Err(why) = probe {
                return Err(settings_err(format!(
                    "property `window` is {window}, but model `{}` ({path}) cannot work on {window}-sample windows ({why}); it is made for {contract_window}-sample windows (affect.input.window; window=0 uses it)",
                    c.name
                )));
            }
        }
        Ok(loaded)
    }

    fn mode(&self) -> Mode {
        match self.input {
            Input::Image(_) => Mode::Video,
            Input::Audio { .. } => Mode::Audio,
        }
    }

    fn model_name(&self) -> &str {
        &self.model.contract().name
    }

    /// What this model's vectors are, for the `affect-features` event.
    fn declaration(&self) -> FeaturesDeclaration {
        FeaturesDeclaration {
            model: self.model_name().to_owned(),
            sha256: self.model.sha256().to_owned(),
            faces: self.mode() == Mode::Video,
            dimension: self.dim as u32,
            classes: self.probs_output.as_ref().map_or(0, |(_, n)| *n as u32),
        }
    }

    /// Runs `n` items already laid out in `self.buf` with `shape`.
    fn run(&mut self, shape: &[usize], n: usize) -> Result<Vec<ItemResult>, String> {
        let view = ArrayViewD::from_shape(IxDyn(shape), &self.buf).map_err(|e| e.to_string())?;
        let out = self
            .model
            .run_f32(&[(self.input_name.as_str(), view)])
            .map_err(|e| e.to_string())?;
        let get = |name: &str| {
            out.get(name)
                .ok_or_else(|| format!("the model did not return output `{name}` as float32"))
        };
        let feats = split_batch(
            &self.feature_output,
            get(&self.feature_output)?,
            n,
            self.dim,
        )
        .map_err(|e| e.to_string())?;
        let probs = match &self.probs_output {
            Some((name, k)) => {
                Some(split_batch(name, get(name)?, n, *k).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        Ok(feats
            .into_iter()
            .enumerate()
            .map(|(i, vector)| {
                let p = probs.as_ref().map(|p| p[i].clone()).unwrap_or_default();
                let valid = vector.iter().chain(&p).all(|v| v.is_finite());
                if !valid {
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
                    valid,
                }
            })
            .collect())
    }

    /// Runs face crops in batches of at most `max_batch`.
    fn run_crops(&mut self, crops: &[Arc<FaceCrop>]) -> Result<Vec<ItemResult>, String> {
        let mut results = Vec::with_capacity(crops.len());
        for chunk in crops.chunks(self.max_batch.max(1)) {
            let Input::Image(pre) = &mut self.input else {
                return Err("not an image model".into());
            };
            let item = pre.item_len();
            let shape = pre.batch_shape(chunk.len());
            self.buf.clear();
            self.buf.resize(item * chunk.len(), 0.0);
            for (i, c) in chunk.iter().enumerate() {
                pre.prepare(
                    &c.rgb,
                    c.width as usize,
                    c.height as usize,
                    &mut self.buf[i * item..(i + 1) * item],
                )
                .map_err(|e| format!("track {}: {e}", c.track_id))?;
            }
            results.extend(self.run(&shape, chunk.len())?);
        }
        Ok(results)
    }

    /// Runs audio windows in batches of at most `max_batch`.
    fn run_windows(&mut self, windows: &[Window]) -> Result<Vec<ItemResult>, String> {
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
}

/// Audio stream state: format, resampler, windows, sample clock.
struct AudioState {
    rate: u32,
    channels: usize,
    s16: bool,
    resampler: Resampler,
    windower: Windower,
    /// Time of input sample 0 (first buffer after a reset).
    base: Option<u64>,
    /// Input samples (per channel) since `base`.
    samples_in: u64,
    mono: Vec<f32>,
    resampled: Vec<f32>,
}

impl AudioState {
    fn reset(&mut self) {
        self.resampler.reset();
        self.windower.reset();
        self.base = None;
        self.samples_in = 0;
    }

    /// End of a continuous stretch: the windows the resampler's look-ahead held back.
    fn drain(&mut self) -> Vec<Window> {
        self.resampled.clear();
        self.resampler.flush(&mut self.resampled);
        let out = std::mem::take(&mut self.resampled);
        let w = self.windower.push(&out);
        self.resampled = out;
        w
    }
}

#[derive(Default)]
struct State {
    loaded: Option<Loaded>,
    audio: Option<AudioState>,
    frames: u64,
    /// Last result per track (video, `interval` > 1).
    last: HashMap<u64, Arc<FeatureVector>>,
    masked: u64,
    warned: bool,
    /// New caps: the `affect-features` event goes out before the next buffer.
    declare: bool,
}

/// Results of one call, to attach, post and warn about with no lock held.
#[derive(Default)]
struct Produced {
    vectors: Vec<Arc<FeatureVector>>,
    new_masked: u64,
    first_warning: bool,
}

#[derive(Default)]
pub struct FeatExtract {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for FeatExtract {
    const NAME: &'static str = "GstAffectFeatExtract";
    type Type = super::FeatExtract;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for FeatExtract {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut v = ModelSettings::properties(AUTO);
            v.extend([
                glib::ParamSpecUInt::builder("batch-size")
                    .nick("Batch size")
                    .blurb("Most face crops (video) or windows (audio) per model run; all faces of a frame run together up to this many")
                    .minimum(1)
                    .maximum(1024)
                    .default_value(DEFAULT_BATCH_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb("Video: run the model every N frames; in between each face carries its last result marked reused (new faces always run)")
                    .minimum(1)
                    .maximum(10_000)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("window")
                    .nick("Window")
                    .blurb("Audio: samples per model run at the model's rate (0 = affect.input.window of the model)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("hop")
                    .nick("Hop")
                    .blurb("Audio: samples between window starts at the model's rate (0 = affect.input.hop of the model)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("output")
                    .nick("Output")
                    .blurb("Graph output used as the feature vector (empty = the last output named by affect.output.names)")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post a `features` element message per frame (video) or window (audio) with vectors and probabilities")
                    .default_value(false)
                    .mutable_playing()
                    .build(),
            ]);
            v
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.locked();
        if s.model.set_property(value, pspec) {
            return;
        }
        match pspec.name() {
            "batch-size" => s.batch_size = value.get().unwrap_or(DEFAULT_BATCH_SIZE),
            "interval" => s.interval = value.get().unwrap_or(DEFAULT_INTERVAL),
            "window" => s.window = value.get().unwrap_or(0),
            "hop" => s.hop = value.get().unwrap_or(0),
            "output" => {
                s.output = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            }
            "post-messages" => s.post_messages = value.get().unwrap_or(false),
            other => gst::warning!(CAT, imp = self, "unknown property {}", other),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.locked();
        if let Some(v) = s.model.property(pspec) {
            return v;
        }
        match pspec.name() {
            "batch-size" => s.batch_size.to_value(),
            "interval" => s.interval.to_value(),
            "window" => s.window.to_value(),
            "hop" => s.hop.to_value(),
            "output" => s.output.to_value(),
            "post-messages" => s.post_messages.to_value(),
            _ => pspec.default_value().clone(),
        }
    }
}

impl GstObjectImpl for FeatExtract {}

impl ElementImpl for FeatExtract {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Feature extraction",
                "Filter/Analyzer/Video/Audio",
                "Runs a feature / classifier ONNX model (ONNX Runtime) on every face crop of a frame \
                 (video after facecrop, batched) or on audio windows (window/hop at the model's rate, \
                 exact timestamps) and attaches a feature meta per face / per window (vector, class \
                 probabilities, labels). Media passes through unchanged. model=auto (default) uses \
                 fer-mini-xception on video and oww-speech-embedding on audio.\n\
                 Example: gst-launch-1.0 -m videotestsrc num-buffers=10 ! facecrop ! featextract post-messages=true ! fakesink",
                "gst-affect developers",
            )
        });
        Some(&*META)
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        // A bin takes all its children through NULL→READY before any of them through
        // READY→PAUSED, where sessions are created (here and in avfuse, which loads its
        // fusion model then): a model file that cannot work is refused now, so that its
        // error is the first one.
        if transition == gst::StateChange::NullToReady {
            let settings = self.settings.locked().clone();
            if let Err(e) = self.check_model_file(&settings) {
                gst::error!(CAT, imp = self, "{}", e);
                self.post_error_message(e);
                return Err(gst::StateChangeError);
            }
        }
        self.parent_change_state(transition)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let mut caps = gst::Caps::new_empty_simple("video/x-raw");
            caps.merge(
                gst::Caps::builder("audio/x-raw")
                    .field("format", gst::List::new(["F32LE", "S16LE"]))
                    .field("rate", gst::IntRange::new(1000, 384_000))
                    .field("channels", gst::IntRange::new(1, i32::MAX))
                    .field("layout", "interleaved")
                    .build(),
            );
            crate::common::filter_pad_templates(&caps)
        });
        TEMPLATES.as_ref()
    }
}

impl FeatExtract {
    /// Checks an explicit `model` file without a session (it is an ONNX model with a
    /// feature contract); `auto` is checked when the caps pick the model.
    fn check_model_file(&self, s: &Settings) -> Result<(), gst::ErrorMessage> {
        let requested = s.model.model.trim();
        if requested.eq_ignore_ascii_case(AUTO) {
            return Ok(());
        }
        if requested.is_empty() {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("property `model` is empty: give a path, a bundled model name, or auto")
            ));
        }
        let path = affect::weights::resolve_model(requested);
        let contract = ModelContract::read_file(&path).map_err(|e| error_message(&e))?;
        if !matches!(contract.role, Role::FaceFeature | Role::AudioFeature) {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "model {} has affect.role `{}`: featextract needs a `face-feature` or `audio-feature` model",
                    path.display(),
                    contract.role
                )
            ));
        }
        Ok(())
    }

    /// Loads `model` (or the default for `mode` when it is `auto`).
    fn load(&self, s: &Settings, mode: Option<Mode>) -> Result<Loaded, gst::ErrorMessage> {
        let requested = s.model.model.trim();
        let mut ms = s.model.clone();
        let role = if requested.eq_ignore_ascii_case(AUTO) {
            let Some(mode) = mode else {
                return Err(gst::error_msg!(
                    gst::CoreError::Negotiation,
                    ("model=auto needs caps to pick a model")
                ));
            };
            ms.model = match mode {
                Mode::Video => DEFAULT_VIDEO_MODEL,
                Mode::Audio => DEFAULT_AUDIO_MODEL,
            }
            .into();
            Some(mode.role())
        } else {
            mode.map(Mode::role)
        };
        let model = match role {
            Some(r) => ms.load(r)?,
            None => {
                if ms.model.trim().is_empty() {
                    return Err(gst::error_msg!(
                        gst::ResourceError::Settings,
                        ("property `model` is empty: give a path, a bundled model name, or auto")
                    ));
                }
                let path = affect::weights::resolve_model(&ms.model);
                Model::load(&path, None, &ms.session_config()).map_err(|e| error_message(&e))?
            }
        };
        gst::info!(
            CAT,
            imp = self,
            "model {} ({}), {}",
            model.contract().name,
            model.path().display(),
            model.provider_note()
        );
        Loaded::new(model, requested, s)
    }

    fn post(&self, structure: gst::Structure) {
        let obj = self.obj();
        let msg = gst::message::Element::builder(structure).src(&*obj).build();
        let _ = obj.post_message(msg);
    }

    fn message(
        &self,
        pts: u64,
        duration: u64,
        model: &str,
        vectors: &[Arc<FeatureVector>],
    ) -> gst::Structure {
        let obj = self.obj();
        let segment = obj.segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let t = gst::ClockTime::from_nseconds(pts);
        let list = gst::List::new(vectors.iter().map(|v| {
            let mut b = gst::Structure::builder("feature");
            if let Some(id) = v.track_id {
                b = b.field("track-id", id);
            }
            b.field("timestamp", v.pts)
                .field("duration", v.duration)
                .field("valid", v.valid)
                .field("reused", v.reused)
                .field(
                    "vector",
                    gst::Array::new(v.vector.iter().map(|&x| x as f64)),
                )
                .field(
                    "probabilities",
                    gst::Array::new(v.probabilities.iter().map(|&x| x as f64)),
                )
                .field(
                    "labels",
                    gst::Array::new(v.labels.iter().map(|l| l.as_str())),
                )
                .build()
        }));
        let s = gst::Structure::builder("features")
            .field("timestamp", pts)
            .field("duration", duration)
            .field("model", model);
        crate::common::with_segment_times(s, segment, t)
            .field("features", list)
            .build()
    }

    fn warn_masked(&self, p: &Produced) {
        if p.new_masked == 0 {
            return;
        }
        gst::warning!(
            CAT,
            imp = self,
            "{} result(s) with NaN/infinity masked (valid=false, empty vector)",
            p.new_masked
        );
        if p.first_warning {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Decode,
                ("the feature model produced NaN or infinite values; those results are masked (valid=false)")
            );
        }
    }

    fn count_masked(state: &mut State, p: &mut Produced) {
        p.new_masked = p.vectors.iter().filter(|v| !v.valid && !v.reused).count() as u64;
        if p.new_masked > 0 {
            state.masked += p.new_masked;
            p.first_warning = !state.warned;
            state.warned = true;
        }
    }

    fn video(
        &self,
        state: &mut State,
        s: &Settings,
        buf: &gst::BufferRef,
    ) -> Result<Produced, String> {
        let crops: Vec<Arc<FaceCrop>> = buf
            .iter_meta::<FaceCropMeta>()
            .map(|m| m.data().clone())
            .collect();
        let mut p = Produced::default();
        if crops.is_empty() {
            return Ok(p);
        }
        let State {
            loaded,
            frames,
            last,
            ..
        } = &mut *state;
        let Some(loaded) = loaded.as_mut() else {
            return Err("no model loaded".into());
        };
        let pts = buf.pts().map(|t| t.nseconds()).unwrap_or(0);
        let duration = buf.duration().map(|t| t.nseconds()).unwrap_or(0);
        let run_all = *frames % s.interval.max(1) as u64 == 0;
        *frames += 1;
        let mut slots: Vec<Option<Arc<FeatureVector>>> = vec![None; crops.len()];
        let mut to_run = Vec::new();
        let mut to_run_idx = Vec::new();
        for (i, c) in crops.iter().enumerate() {
            match last.get(&c.track_id) {
                Some(last) if !run_all => {
                    let mut v = (**last).clone();
                    v.pts = pts;
                    v.duration = duration;
                    v.reused = true;
                    slots[i] = Some(Arc::new(v));
                }
                _ => {
                    to_run.push(c.clone());
                    to_run_idx.push(i);
                }
            }
        }
        if run_all {
            last.clear();
        }
        let results = loaded.run_crops(&to_run)?;
        let model = loaded.model_name().to_owned();
        for ((i, c), r) in to_run_idx.into_iter().zip(&to_run).zip(results) {
            let v = Arc::new(FeatureVector {
                track_id: Some(c.track_id),
                pts,
                duration,
                model: model.clone(),
                vector: r.vector,
                probabilities: r.probabilities,
                labels: loaded.labels.clone(),
                valid: r.valid,
                reused: false,
            });
            last.insert(c.track_id, v.clone());
            slots[i] = Some(v);
        }
        p.vectors = slots.into_iter().flatten().collect();
        Self::count_masked(state, &mut p);
        Ok(p)
    }

    fn windows_to_vectors(
        loaded: &mut Loaded,
        base: u64,
        rate: u32,
        windows: &[Window],
    ) -> Result<Vec<Arc<FeatureVector>>, String> {
        let results = loaded.run_windows(windows)?;
        let model = loaded.model_name().to_owned();
        Ok(windows
            .iter()
            .zip(results)
            .map(|(w, r)| {
                let (pts, duration) = w.times(base, rate);
                Arc::new(FeatureVector {
                    track_id: None,
                    pts,
                    duration,
                    model: model.clone(),
                    vector: r.vector,
                    probabilities: r.probabilities,
                    labels: loaded.labels.clone(),
                    valid: r.valid,
                    reused: false,
                })
            })
            .collect())
    }

    fn audio(&self, state: &mut State, buf: &gst::BufferRef) -> Result<Produced, String> {
        let State { loaded, audio, .. } = &mut *state;
        let (Some(loaded), Some(a)) = (loaded.as_mut(), audio.as_mut()) else {
            return Err("no caps or model before the first buffer".into());
        };
        let Input::Audio {
            rate: model_rate, ..
        } = loaded.input
        else {
            return Err("not an audio model".into());
        };
        let mut vectors = Vec::new();
        let pts = buf.pts().map(|t| t.nseconds());
        // Restart on a real discontinuity (a DISCONT buffer away from where it should be).
        if let (Some(base), Some(pts)) = (a.base, pts)
            && buf.flags().contains(gst::BufferFlags::DISCONT)
        {
            let expected = sample_time_ns(base, a.samples_in, a.rate);
            if expected.abs_diff(pts) > DISCONT_TOLERANCE_NS {
                gst::debug!(
                    CAT,
                    imp = self,
                    "discontinuity: {expected} → {pts} ns, windows restart"
                );
                let held = a.drain();
                vectors.extend(Self::windows_to_vectors(loaded, base, model_rate, &held)?);
                a.reset();
            }
        }
        if a.base.is_none() {
            a.base = Some(pts.unwrap_or(0));
        }
        let map = buf
            .map_readable()
            .map_err(|_| "cannot map the audio buffer".to_string())?;
        a.mono.clear();
        if a.s16 {
            let v: Vec<i16> = map
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            downmix_s16(&v, a.channels, &mut a.mono);
        } else {
            let v: Vec<f32> = map
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            downmix_f32(&v, a.channels, &mut a.mono);
        }
        drop(map);
        a.samples_in += a.mono.len() as u64;
        a.resampled.clear();
        a.resampler.push(&a.mono, &mut a.resampled);
        let windows = a.windower.push(&a.resampled);
        let base = a.base.unwrap_or(0);
        vectors.extend(Self::windows_to_vectors(
            loaded, base, model_rate, &windows,
        )?);
        let mut p = Produced {
            vectors,
            ..Default::default()
        };
        Self::count_masked(state, &mut p);
        Ok(p)
    }

    fn attach_and_post(&self, buf: &mut gst::BufferRef, p: &Produced, post: bool, audio: bool) {
        for v in &p.vectors {
            FeatureMeta::add(buf, v.clone());
        }
        self.warn_masked(p);
        if post && !p.vectors.is_empty() {
            if audio {
                for v in &p.vectors {
                    self.post(self.message(v.pts, v.duration, &v.model, std::slice::from_ref(v)));
                }
            } else {
                let pts = buf.pts().map(|t| t.nseconds()).unwrap_or(0);
                let d = buf.duration().map(|t| t.nseconds()).unwrap_or(0);
                self.post(self.message(pts, d, &p.vectors[0].model, &p.vectors));
            }
        }
    }

    /// EOS: windows held back by the resampler's look-ahead, on an empty buffer.
    fn drain_audio(&self) {
        let post = self.settings.locked().post_messages;
        let mut guard = self.state.locked();
        let Some(state) = guard.as_mut() else {
            return;
        };
        let State { loaded, audio, .. } = &mut *state;
        let (Some(loaded), Some(a)) = (loaded.as_mut(), audio.as_mut()) else {
            return;
        };
        let Input::Audio { rate, .. } = loaded.input else {
            return;
        };
        let Some(base) = a.base else {
            return;
        };
        let windows = a.drain();
        let end = sample_time_ns(base, a.samples_in, a.rate);
        a.reset();
        if windows.is_empty() {
            return;
        }
        let vectors = match Self::windows_to_vectors(loaded, base, rate, &windows) {
            Ok(v) => v,
            Err(e) => {
                drop(guard);
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
                return;
            }
        };
        let mut p = Produced {
            vectors,
            ..Default::default()
        };
        Self::count_masked(state, &mut p);
        drop(guard);
        gst::debug!(
            CAT,
            imp = self,
            "EOS: {} held-back window(s)",
            p.vectors.len()
        );
        let mut buf = gst::Buffer::new();
        {
            let b = buf.get_mut().expect("new buffer is writable");
            b.set_pts(gst::ClockTime::from_nseconds(end));
            b.set_duration(gst::ClockTime::ZERO);
            self.attach_and_post(b, &p, post, true);
        }
        let _ = self.obj().src_pad().push(buf);
    }

    fn reset_stream(&self) {
        if let Some(state) = self.state.locked().as_mut() {
            if let Some(a) = state.audio.as_mut() {
                a.reset();
            }
            state.frames = 0;
            state.last.clear();
        }
    }
}

impl BaseTransformImpl for FeatExtract {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.locked().clone();
        // An explicit model is checked now (READY→PAUSED); `auto` waits for the caps.
        let loaded = if settings.model.model.trim().eq_ignore_ascii_case(AUTO) {
            None
        } else {
            Some(
                self.load(&settings, None)
                    .inspect_err(|e| gst::error!(CAT, imp = self, "{}", e))?,
            )
        };
        *self.state.locked() = Some(State {
            loaded,
            ..Default::default()
        });
        if let Some(w) = settings.model.threads_warning() {
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", w));
        }
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(s) = self.state.locked().take() {
            gst::debug!(
                CAT,
                imp = self,
                "{} frames, {} masked results",
                s.frames,
                s.masked
            );
        }
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let settings = self.settings.locked().clone();
        let Some(st) = incaps.structure(0) else {
            return Err(gst::loggable_error!(CAT, "empty caps"));
        };
        let mode = if st.name().starts_with("audio/") {
            Mode::Audio
        } else {
            Mode::Video
        };
        let mut guard = self.state.locked();
        let Some(state) = guard.as_mut() else {
            return Err(gst::loggable_error!(CAT, "not started"));
        };
        let auto = settings.model.model.trim().eq_ignore_ascii_case(AUTO);
        let fits = state.loaded.as_ref().is_some_and(|l| l.mode() == mode);
        if !fits {
            if auto {
                match self.load(&settings, Some(mode)) {
                    Ok(l) => state.loaded = Some(l),
                    Err(e) => {
                        drop(guard);
                        self.obj().post_error_message(e);
                        return Err(gst::loggable_error!(CAT, "cannot load the default model"));
                    }
                }
            } else {
                let (what, role) = match mode {
                    Mode::Video => ("video", Role::FaceFeature),
                    Mode::Audio => ("audio", Role::AudioFeature),
                };
                let name = state
                    .loaded
                    .as_ref()
                    .map(|l| format!("{} ({})", l.model_name(), l.name))
                    .unwrap_or_default();
                drop(guard);
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    (
                        "model {} cannot read {} (it needs a `{}` model): use model=auto or a matching model",
                        name,
                        what,
                        role
                    )
                );
                return Err(gst::loggable_error!(CAT, "model does not fit the caps"));
            }
        }
        state.audio = None;
        state.declare = true;
        if mode == Mode::Audio {
            let info = gst_audio::AudioInfo::from_caps(incaps)
                .map_err(|_| gst::loggable_error!(CAT, "invalid audio caps {}", incaps))?;
            let Some(Input::Audio { rate, window, hop }) = state.loaded.as_ref().map(|l| &l.input)
            else {
                return Err(gst::loggable_error!(CAT, "no audio model"));
            };
            gst::debug!(
                CAT,
                imp = self,
                "audio {} Hz × {} → model {} Hz, window {}, hop {}",
                info.rate(),
                info.channels(),
                rate,
                window,
                hop
            );
            state.audio = Some(AudioState {
                rate: info.rate(),
                channels: info.channels() as usize,
                s16: info.format() == gst_audio::AudioFormat::S16le,
                resampler: Resampler::new(info.rate(), *rate),
                windower: Windower::new(*window, *hop),
                base: None,
                samples_in: 0,
                mono: Vec::new(),
                resampled: Vec::new(),
            });
        }
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::FlushStop(_) | gst::EventView::Segment(_) => self.reset_stream(),
            gst::EventView::Eos(_) => self.drain_audio(),
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let s = self.settings.locked().clone();
        let mut guard = self.state.locked();
        let Some(state) = guard.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        let audio = state.audio.is_some();
        let declaration = std::mem::take(&mut state.declare)
            .then(|| state.loaded.as_ref().map(Loaded::declaration))
            .flatten();
        let produced = if audio {
            self.audio(state, buf)
        } else if state.loaded.is_some() {
            self.video(state, &s, buf)
        } else {
            Err("no caps before the first buffer".into())
        };
        drop(guard);
        // After caps and segment, before the buffer: what the vectors are (sticky).
        if let Some(d) = declaration
            && !self.obj().src_pad().push_event(d.to_event())
        {
            gst::debug!(
                CAT,
                imp = self,
                "downstream refused the affect-features event"
            );
        }
        let produced = produced.map_err(|e| {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", e));
            gst::FlowError::Error
        })?;
        self.attach_and_post(buf, &produced, s.post_messages, audio);
        Ok(gst::FlowSuccess::Ok)
    }
}
