// SPDX-License-Identifier: MPL-2.0
use std::sync::{Arc, LazyLock, Mutex};

use affect::features::{
    AUTO, AudioStream, DEFAULT_BATCH_SIZE, FaceFeatures, FeatureInput, FeatureModel,
    FeatureModelError, FeatureOptions, SampleFormat, TimedWindows, default_model, is_auto,
};
use affect::results::{FaceCrop, FeatureVector};
use affect::runtime::{Model, ModelContract, Role};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use crate::common::{ElementError, LockExt, ModelSettings, post_element_message, string_property};
use crate::meta::{FaceCropMeta, FeatureMeta, FeaturesDeclaration};

mod props;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "featextract",
        gst::DebugColorFlags::empty(),
        Some("Feature extraction from face crops and audio windows"),
    )
});

const DEFAULT_INTERVAL: u32 = 1;
const DEFAULT_POST_MESSAGES: bool = false;
const DEFAULT_NATIVE: bool = true;

#[derive(Debug, Clone)]
struct Settings {
    model: ModelSettings,
    batch_size: u32,
    interval: u32,
    window: u32,
    hop: u32,
    output: String,
    native: bool,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: ModelSettings::new(AUTO),
            batch_size: DEFAULT_BATCH_SIZE as u32,
            interval: DEFAULT_INTERVAL,
            window: 0,
            hop: 0,
            output: String::new(),
            native: DEFAULT_NATIVE,
            post_messages: DEFAULT_POST_MESSAGES,
        }
    }
}

impl Settings {
    fn feature_options(&self) -> FeatureOptions {
        let nonzero = |v: u32| (v > 0).then_some(v as usize);
        FeatureOptions {
            output: Some(self.output.clone()),
            window: nonzero(self.window),
            hop: nonzero(self.hop),
            batch_size: self.batch_size as usize,
            native: self.native,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Video,
    Audio,
}

impl Mode {
    fn of(model: &FeatureModel) -> Self {
        if model.is_audio() {
            Mode::Audio
        } else {
            Mode::Video
        }
    }

    fn role(self) -> Role {
        match self {
            Mode::Video => Role::FaceFeature,
            Mode::Audio => Role::AudioFeature,
        }
    }
}

/// A loaded model and the `model` value it was loaded for.
struct Loaded {
    model: FeatureModel,
    /// The `model` property as set (`auto` not resolved).
    requested: String,
}

impl Loaded {
    /// What this model's vectors are, for the `affect-features` event.
    fn declaration(&self) -> FeaturesDeclaration {
        let m = &self.model;
        FeaturesDeclaration {
            model: m.name().to_owned(),
            sha256: m.model().sha256().to_owned(),
            faces: !m.is_audio(),
            dimension: m.dim() as u32,
            classes: m.classes() as u32,
        }
    }
}

#[derive(Default)]
struct State {
    loaded: Option<Loaded>,
    audio: Option<AudioStream>,
    faces: FaceFeatures,
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

impl GstObjectImpl for FeatExtract {}

impl ElementImpl for FeatExtract {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            crate::common::element_metadata(
                "Feature extraction",
                "Filter/Analyzer/Video/Audio",
                "Runs an ONNX feature model on face crops or audio windows and attaches the vectors",
                "gst-launch-1.0 -m videotestsrc num-buffers=10 ! facecrop ! featextract post-messages=true ! fakesink",
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
        if is_auto(requested) {
            return Ok(());
        }
        if requested.is_empty() {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("property `model` is empty: give a path, a bundled model name, or auto")
            ));
        }
        let path = affect::weights::resolve_model(requested);
        let contract = ModelContract::read_file(&path).map_err(|e| e.to_error_message())?;
        if !matches!(contract.role, Role::FaceFeature | Role::AudioFeature) {
            return Err(FeatureModelError::Role {
                path: path.display().to_string(),
                role: contract.role,
            }
            .to_error_message());
        }
        Ok(())
    }

    /// Loads `model` (or the default for `mode` when it is `auto`).
    fn load(&self, s: &Settings, mode: Option<Mode>) -> Result<Loaded, gst::ErrorMessage> {
        let requested = s.model.model.trim();
        let mut ms = s.model.clone();
        let role = if is_auto(requested) {
            let Some(mode) = mode else {
                return Err(gst::error_msg!(
                    gst::CoreError::Negotiation,
                    ("model=auto needs caps to pick a model")
                ));
            };
            ms.model = default_model(mode.role()).unwrap_or_default().into();
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
                Model::load(&path, None, &ms.session_config()).map_err(|e| e.to_error_message())?
            }
        };
        gst::info!(CAT, imp = self, "model {}", model.summary());
        let model =
            FeatureModel::new(model, &s.feature_options()).map_err(|e| e.to_error_message())?;
        if let Some(native) = model.native() {
            gst::info!(
                CAT,
                imp = self,
                "the model declares {native}: computed natively, frame by frame"
            );
        }
        Ok(Loaded {
            model,
            requested: requested.to_owned(),
        })
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

    /// The results of one call, with the masked ones counted.
    fn produced(state: &mut State, vectors: Vec<Arc<FeatureVector>>) -> Produced {
        let mut p = Produced {
            vectors,
            ..Default::default()
        };
        p.new_masked = p.vectors.iter().filter(|v| !v.valid && !v.reused).count() as u64;
        if p.new_masked > 0 {
            state.masked += p.new_masked;
            p.first_warning = !state.warned;
            state.warned = true;
        }
        p
    }

    fn video(
        state: &mut State,
        interval: u32,
        buf: &gst::BufferRef,
    ) -> Result<Produced, FeatureModelError> {
        let crops: Vec<Arc<FaceCrop>> = buf
            .iter_meta::<FaceCropMeta>()
            .map(|m| m.data().clone())
            .collect();
        let Some(loaded) = state.loaded.as_mut() else {
            return Ok(Produced::default());
        };
        let pts = buf.pts().map(|t| t.nseconds()).unwrap_or(0);
        let duration = buf.duration().map(|t| t.nseconds()).unwrap_or(0);
        let vectors = state
            .faces
            .process(&mut loaded.model, &crops, pts, duration, interval)?;
        Ok(Self::produced(state, vectors))
    }

    fn window_vectors(
        model: &mut FeatureModel,
        w: Option<TimedWindows>,
    ) -> Result<Vec<Arc<FeatureVector>>, FeatureModelError> {
        match w {
            Some(w) if !w.windows.is_empty() => model.window_vectors(w.base, &w.windows),
            _ => Ok(Vec::new()),
        }
    }

    fn audio(
        &self,
        state: &mut State,
        buf: &gst::BufferRef,
    ) -> Result<Produced, gst::ErrorMessage> {
        let State { loaded, audio, .. } = &mut *state;
        let (Some(loaded), Some(a)) = (loaded.as_mut(), audio.as_mut()) else {
            return Err(gst::error_msg!(
                gst::CoreError::Negotiation,
                ("no caps or model before the first buffer")
            ));
        };
        let map = buf.map_readable().map_err(|_| {
            gst::error_msg!(gst::ResourceError::Read, ("cannot map the audio buffer"))
        })?;
        let discont = buf.flags().contains(gst::BufferFlags::DISCONT);
        let (ended, windows) = a.push(buf.pts().map(|t| t.nseconds()), discont, &map);
        drop(map);
        if let Some(e) = &ended {
            gst::debug!(
                CAT,
                imp = self,
                "discontinuity at {:?} (stretch from {} ns), windows restart",
                buf.pts(),
                e.base
            );
        }
        let mut vectors =
            Self::window_vectors(&mut loaded.model, ended).map_err(|e| e.to_error_message())?;
        vectors.extend(
            Self::window_vectors(&mut loaded.model, Some(windows))
                .map_err(|e| e.to_error_message())?,
        );
        Ok(Self::produced(state, vectors))
    }

    fn attach_and_post(&self, buf: &mut gst::BufferRef, p: &Produced, post: bool, audio: bool) {
        for v in &p.vectors {
            FeatureMeta::add(buf, v.clone());
        }
        self.warn_masked(p);
        if post && !p.vectors.is_empty() {
            let obj = self.obj();
            if audio {
                for v in &p.vectors {
                    let m = self.message(v.pts, v.duration, &v.model, std::slice::from_ref(v));
                    post_element_message(&*obj, m);
                }
            } else {
                let pts = buf.pts().map(|t| t.nseconds()).unwrap_or(0);
                let d = buf.duration().map(|t| t.nseconds()).unwrap_or(0);
                let m = self.message(pts, d, &p.vectors[0].model, &p.vectors);
                post_element_message(&*obj, m);
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
        let Some((windows, end)) = a.finish() else {
            return;
        };
        if windows.windows.is_empty() {
            return;
        }
        let vectors = match Self::window_vectors(&mut loaded.model, Some(windows)) {
            Ok(v) => v,
            Err(e) => {
                drop(guard);
                self.post_error_message(e.to_error_message());
                return;
            }
        };
        let p = Self::produced(state, vectors);
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
            state.faces.reset();
        }
    }
}

impl BaseTransformImpl for FeatExtract {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        let latency = matches!(query.view(), gst::QueryView::Latency(_));
        let ok = BaseTransformImplExt::parent_query(self, direction, query);
        if ok && latency && direction == gst::PadDirection::Src {
            // Cross-stream batching may hold each run up to max-batch-latency.
            let extra = self.settings.locked().model.batch_latency();
            crate::common::add_latency(query, extra);
        }
        ok
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.locked().clone();
        // An explicit model is checked now (READY→PAUSED); `auto` waits for the caps.
        let loaded = if is_auto(&settings.model.model) {
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
                "{} frames with faces, model run on {} faces, {} masked results",
                s.faces.frames(),
                s.faces.runs(),
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
        let fits = state
            .loaded
            .as_ref()
            .is_some_and(|l| Mode::of(&l.model) == mode);
        if !fits {
            if is_auto(&settings.model.model) {
                match self.load(&settings, Some(mode)) {
                    Ok(l) => state.loaded = Some(l),
                    Err(e) => {
                        drop(guard);
                        self.post_error_message(e);
                        return Err(gst::loggable_error!(CAT, "cannot load the default model"));
                    }
                }
            } else {
                let what = match mode {
                    Mode::Video => "video",
                    Mode::Audio => "audio",
                };
                let name = state
                    .loaded
                    .as_ref()
                    .map(|l| format!("{} ({})", l.model.name(), l.requested))
                    .unwrap_or_default();
                drop(guard);
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    (
                        "model {} cannot read {} (it needs a `{}` model): use model=auto or a matching model",
                        name,
                        what,
                        mode.role()
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
            let Some(&FeatureInput::Audio { rate, window, hop }) =
                state.loaded.as_ref().map(|l| l.model.input())
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
            let format = if info.format() == gst_audio::AudioFormat::S16le {
                SampleFormat::S16Le
            } else {
                SampleFormat::F32Le
            };
            state.audio = Some(AudioStream::new(
                info.rate(),
                info.channels() as usize,
                format,
                rate,
                window,
                hop,
            ));
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
            Self::video(state, s.interval, buf).map_err(|e| e.to_error_message())
        } else {
            Err(gst::error_msg!(
                gst::CoreError::Negotiation,
                ("no caps before the first buffer")
            ))
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
            self.post_error_message(e);
            gst::FlowError::Error
        })?;
        self.attach_and_post(buf, &produced, s.post_messages, audio);
        Ok(gst::FlowSuccess::Ok)
    }
}
