use std::sync::{LazyLock, Mutex};

use affect::dataset::{FeatureMetadata, TrackDump};
use affect::fusion::post::{NonFinite, PostProcessor};
use affect::results::{AffWild2Csv, AffectRecord, FaceAffect, FaceBox, ResultFile};
use affect::runtime::{FeatureModelRef, InputSpec, Model, Role};
use affect::timeline::{
    AlignConfig, AlignMode, Anchor, AudioAligner, TimelineError, TrackWindows, WindowConfig,
    midpoint, stack,
};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use ndarray::Array3;

use crate::common::ModelSettings;
use crate::meta::{
    AffectMessage, FaceCropMeta, FeatureMeta, FeaturesDeclaration, add_affect_meta, add_face_roi,
    face_affect_structure, face_rois,
};

mod audio_wait;
mod features;
mod latency;
mod timer;

use timer::Timer;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "avfuse",
        gst::DebugColorFlags::empty(),
        Some("Audio-visual fusion of face and speech features into affect"),
    )
});

const DEFAULT_MODEL: &str = "fusion-baseline";
const DEFAULT_LOOKAHEAD_NS: u64 = 200_000_000;
const DEFAULT_POST_MESSAGES: bool = true;
/// A track absent from more than this many consecutive frames is dropped.
const DROP_AFTER_FRAMES: u32 = 15;
/// How long a non-live video waits for an audio branch that has delivered nothing.
const DEFAULT_AUDIO_TIMEOUT_NS: u64 = 5_000_000_000;

/// How audio features are aligned onto video frames (the `mode` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstAffectAvFuseMode")]
pub enum FusionMode {
    /// Linear interpolation between the audio vectors around the frame (vector time =
    /// window centre); waits for `lookahead` ns of audio after the frame.
    #[default]
    #[enum_value(
        name = "Interpolate, waits for lookahead ns of audio",
        nick = "lookahead"
    )]
    Lookahead = 0,
    /// The latest audio vector whose window ended at or before the frame; no latency.
    #[enum_value(name = "Nearest past vector, no latency", nick = "causal")]
    Causal = 1,
}

#[derive(Debug, Clone)]
struct Settings {
    model: ModelSettings,
    mode: FusionMode,
    lookahead: u64,
    post_messages: bool,
    location: String,
    csv_location: String,
    smoothing: f64,
    dump_location: String,
    audio_timeout: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: ModelSettings::new(DEFAULT_MODEL),
            mode: FusionMode::default(),
            lookahead: DEFAULT_LOOKAHEAD_NS,
            post_messages: DEFAULT_POST_MESSAGES,
            location: String::new(),
            csv_location: String::new(),
            smoothing: 0.0,
            dump_location: String::new(),
            audio_timeout: DEFAULT_AUDIO_TIMEOUT_NS,
        }
    }
}

impl Settings {
    /// The latency this element adds (LATENCY query, live deadline).
    fn latency(&self) -> gst::ClockTime {
        match self.mode {
            FusionMode::Lookahead => gst::ClockTime::from_nseconds(self.lookahead),
            FusionMode::Causal => gst::ClockTime::ZERO,
        }
    }
}

struct State {
    model: Model,
    window: usize,
    visual_dim: usize,
    audio_dim: usize,
    use_probabilities: bool,
    visual_ref: Option<FeatureModelRef>,
    audio_ref: Option<FeatureModelRef>,
    aligner: AudioAligner,
    tracks: TrackWindows,
    post: PostProcessor,
    ndjson: Option<ResultFile>,
    csv: Option<AffWild2Csv>,
    frames_out: u64,
    /// What the upstream `featextract`s declared (video_sink, audio_sink).
    video_features: Option<FeaturesDeclaration>,
    audio_features: Option<FeaturesDeclaration>,
    /// The audio pad has received a buffer or a gap since start.
    audio_started: bool,
    names_checked: (bool, bool),
    warned_nan: bool,
    warned_dims: bool,
    dump: Option<TrackDump>,
}

/// What one output frame produced, posted/written after the state lock is released.
struct Output {
    faces: Vec<FaceAffect>,
}

#[derive(Default)]
pub struct AvFuse {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// Pending retry of the upstream latency query (`latency` module).
    latency_retry: Timer,
    /// Pending check of a silent non-live audio branch (`audio_wait` module).
    audio_wait: Timer,
}

#[glib::object_subclass]
impl ObjectSubclass for AvFuse {
    const NAME: &'static str = "GstAffectAvFuse";
    type Type = super::AvFuse;
    type ParentType = gst_base::Aggregator;
}

impl ObjectImpl for AvFuse {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut v = ModelSettings::properties(DEFAULT_MODEL);
            v.extend([
                glib::ParamSpecEnum::builder_with_default("mode", FusionMode::Lookahead)
                    .nick("Alignment mode")
                    .blurb("lookahead: interpolate audio features onto frame times, waiting `lookahead` ns of audio (reported as latency); causal: latest finished audio window, no latency")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("lookahead")
                    .nick("Lookahead")
                    .blurb("ns: audio vectors further than this from a frame are not used (audio mask 0); in mode=lookahead also how long a frame waits for audio (the latency)")
                    .minimum(1)
                    .maximum(10_000_000_000)
                    .default_value(DEFAULT_LOOKAHEAD_NS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("audio-timeout")
                    .nick("Audio timeout")
                    .blurb("ns, non-live pipelines: when a linked audio_sink has received nothing while a video frame waited this long (a file without audio, a blocked or never-linked audio branch), warn and treat the audio as absent (audio mask 0); 0 = wait forever")
                    .default_value(DEFAULT_AUDIO_TIMEOUT_NS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post an `affect` element message per output frame")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("location")
                    .nick("NDJSON location")
                    .blurb("Write one JSON line per face per frame to this file (empty: none)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("csv-location")
                    .nick("CSV prefix")
                    .blurb("Write Aff-Wild2 style CSV files PREFIX_track<id>.va.csv and PREFIX_track<id>.expr.csv (empty: none)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("dump-location")
                    .nick("Feature dump location")
                    .blurb("Path template with %u = track id (e.g. dump/track%u.safetensors): per face track, the exact row the fusion model read for each video frame since the segment start (the newest frame of the track's window: aligned visual vector, audio vector, both masks, pts, face box; zeros and masks 0 where the track has no window), written atomically at EOS or stop in the safetensors feature format of affect::dataset::features, readable from Python (empty: none)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("smoothing")
                    .nick("Smoothing")
                    .blurb("Exponential smoothing of valence/arousal and probabilities per track: y = s*y_prev + (1-s)*x (0 = off)")
                    .minimum(0.0)
                    .maximum(0.99)
                    .default_value(0.0)
                    .mutable_playing()
                    .build(),
            ]);
            v
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        if s.model.set_property(value, pspec) {
            return;
        }
        let string = |v: &glib::Value| v.get::<Option<String>>().ok().flatten().unwrap_or_default();
        match pspec.name() {
            "mode" => s.mode = value.get().unwrap_or_default(),
            "lookahead" => s.lookahead = value.get().unwrap_or(DEFAULT_LOOKAHEAD_NS),
            "audio-timeout" => s.audio_timeout = value.get().unwrap_or(DEFAULT_AUDIO_TIMEOUT_NS),
            "post-messages" => s.post_messages = value.get().unwrap_or(DEFAULT_POST_MESSAGES),
            "location" => s.location = string(value),
            "csv-location" => s.csv_location = string(value),
            "smoothing" => s.smoothing = value.get().unwrap_or(0.0),
            "dump-location" => s.dump_location = string(value),
            _ => {}
        }
        let latency = s.latency();
        drop(s);
        if matches!(pspec.name(), "mode" | "lookahead") {
            self.obj().set_latency(latency, Some(latency));
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = s.model.property(pspec) {
            return v;
        }
        match pspec.name() {
            "mode" => s.mode.to_value(),
            "lookahead" => s.lookahead.to_value(),
            "audio-timeout" => s.audio_timeout.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "location" => s.location.to_value(),
            "csv-location" => s.csv_location.to_value(),
            "smoothing" => s.smoothing.to_value(),
            "dump-location" => s.dump_location.to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        if let Some(templ) = obj.class().pad_template("video_sink") {
            let pad = gst::PadBuilder::<gst_base::AggregatorPad>::from_template(&templ)
                .name("video_sink")
                .build();
            if obj.add_pad(&pad).is_err() {
                gst::error!(CAT, imp = self, "cannot add the video_sink pad");
            }
        }
        // Not `ignore-inactive-pads`: with it a live pipeline whose audio never arrives
        // would count as ready and spin on NEED_DATA instead of waiting for the deadline.
        let latency = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .latency();
        obj.set_latency(latency, Some(latency));
    }
}

impl GstObjectImpl for AvFuse {}

impl ElementImpl for AvFuse {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Audio-visual affect fusion",
                "Filter/Analyzer/Video/Audio",
                "Aligns audio features (request pad audio_sink, from featextract) onto the video frames \
                 (video_sink, after facecrop ! featextract), keeps a window per face track and runs a fusion \
                 ONNX model: valence, arousal and 8 expression probabilities per face per frame, attached as \
                 ROI param `affect` and GstAffectMeta, posted as `affect` messages, written as NDJSON/CSV. \
                 Frames pass through unchanged. The default model fusion-baseline is a BASELINE, not a \
                 learned model: a circumplex mapping of the face model's expression probabilities plus a \
                 small speech-presence arousal term; train real models with affect-train.\n\
                 Example: gst-launch-1.0 videotestsrc num-buffers=10 ! video/x-raw,width=640,height=360 ! facecrop ! featextract ! avfuse ! fakesink",
                "gst-affect developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let video = gst::Caps::builder("video/x-raw").build();
            let audio = gst::Caps::builder("audio/x-raw").build();
            [
                (
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &video,
                ),
                (
                    "video_sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &video,
                ),
                (
                    "audio_sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Request,
                    &audio,
                ),
            ]
            .into_iter()
            .filter_map(|(name, dir, presence, caps)| {
                gst::PadTemplate::with_gtype(
                    name,
                    dir,
                    presence,
                    caps,
                    gst_base::AggregatorPad::static_type(),
                )
                .ok()
            })
            .collect()
        });
        TEMPLATES.as_ref()
    }

    fn release_pad(&self, pad: &gst::Pad) {
        if pad.name() == "audio_sink"
            && let Some(state) = self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
        {
            state.aligner.reset();
        }
        self.parent_release_pad(pad);
    }
}

impl AvFuse {
    /// Between start and stop.
    fn is_running(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Checks and keeps what an upstream `featextract` declares on a sink pad.
    fn take_declaration(&self, video: bool, d: FeaturesDeclaration) -> Result<(), String> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(state) = guard.as_mut() else {
            return Ok(());
        };
        let want = if video {
            state.visual_ref.as_ref()
        } else {
            state.audio_ref.as_ref()
        };
        features::check(&state.model.contract().name, video, want, &d)?;
        gst::debug!(
            CAT,
            imp = self,
            "{} features: model {} (sha256 {}), {} values",
            d.media(),
            d.model,
            d.sha256,
            d.dimension
        );
        if video {
            state.video_features = Some(d);
        } else {
            state.audio_features = Some(d);
        }
        Ok(())
    }

    fn video_pad(&self) -> Option<gst_base::AggregatorPad> {
        self.obj()
            .static_pad("video_sink")
            .and_then(|p| p.downcast::<gst_base::AggregatorPad>().ok())
    }

    fn audio_pad(&self) -> Option<gst_base::AggregatorPad> {
        self.obj()
            .static_pad("audio_sink")
            .and_then(|p| p.downcast::<gst_base::AggregatorPad>().ok())
    }

    /// A requested `audio_sink` that is still unlinked when the video starts (its segment
    /// arrives) is absent: it gets an EOS, so that the aggregator, which waits for data on
    /// every sink pad when not live, does not hold the video back (audio mask 0 instead).
    /// Called from the aggregator's src thread, which holds none of the pad locks.
    fn end_unlinked_audio(&self) {
        if let Some(audio) = self.audio_pad()
            && audio.peer().is_none()
            && !audio.is_eos()
        {
            gst::info!(
                CAT,
                imp = self,
                "audio_sink requested but not linked: treated as absent (audio mask 0)"
            );
            if !audio.send_event(gst::event::Eos::new()) {
                gst::warning!(CAT, imp = self, "could not end the unlinked audio_sink");
            }
        }
    }

    fn running_time(seg: &gst::Segment, t: gst::ClockTime) -> Option<u64> {
        seg.downcast_ref::<gst::ClockTime>()
            .and_then(|s| s.to_running_time(t))
            .map(|t| t.nseconds())
    }

    /// Moves queued audio buffers' feature vectors into the aligner, one buffer at a
    /// time, until the alignment at `until` (a frame time) is final; every queued buffer
    /// when `until` is `None` (the video has ended, or the pipeline is live). Audio is
    /// taken no faster than the video needs it: what is not needed yet stays queued on
    /// the pad, which holds the audio branch back (in a non-live pipeline it would
    /// otherwise run ahead of a slower video branch by any amount, beyond what the
    /// aligner keeps).
    fn drain_audio(
        &self,
        state: &mut State,
        pad: &gst_base::AggregatorPad,
        until: Option<u64>,
    ) -> Result<(), String> {
        let seg = pad.segment();
        while until.is_none_or(|t| !state.aligner.is_ready(t))
            && let Some(buf) = pad.pop_buffer()
        {
            state.audio_started = true;
            if state.audio_features.is_none() && !buf.flags().contains(gst::BufferFlags::GAP) {
                return Err(features::missing(false));
            }
            for m in buf.iter_meta::<FeatureMeta>() {
                let v = m.data();
                if v.track_id.is_some() {
                    continue;
                }
                if !state.names_checked.1 {
                    state.names_checked.1 = true;
                    if let Some(r) = &state.audio_ref
                        && r.name != v.model
                    {
                        return Err(format!(
                            "the audio features come from model {}, the fusion model was made for {} (sha256 {})",
                            v.model, r.name, r.sha256
                        ));
                    }
                }
                let Some(rt) = Self::running_time(&seg, gst::ClockTime::from_nseconds(v.pts))
                else {
                    continue;
                };
                if !v.valid || v.vector.len() != state.audio_dim {
                    if v.valid && !state.warned_dims {
                        state.warned_dims = true;
                        gst::warning!(
                            CAT,
                            imp = self,
                            "audio vector of {} values, the fusion model wants {}: ignored",
                            v.vector.len(),
                            state.audio_dim
                        );
                    }
                    continue;
                }
                match state.aligner.push(rt, v.duration, &v.vector) {
                    Ok(_) => {}
                    Err(TimelineError::NotMonotonic { .. }) => {
                        gst::debug!(
                            CAT,
                            imp = self,
                            "audio went back in time: alignment restarts"
                        );
                        state.aligner.reset();
                        let _ = state.aligner.push(rt, v.duration, &v.vector);
                    }
                    Err(e) => gst::warning!(CAT, imp = self, "audio vector ignored: {e}"),
                }
            }
        }
        Ok(())
    }

    /// Runs the fusion on one video frame, adds the metas to `buf`; returns the faces.
    fn process_frame(
        &self,
        state: &mut State,
        settings: &Settings,
        buf: &mut gst::BufferRef,
        frame_time: Option<u64>,
    ) -> Result<Output, gst::ErrorMessage> {
        let audio = frame_time.map(|t| state.aligner.align(t));
        if let Some(t) = frame_time {
            // Keep the vectors a later frame may still need.
            state
                .aligner
                .prune(t.saturating_sub(settings.lookahead.saturating_mul(2)));
        }
        // Faces: the frame's ROIs and per-face feature metas, by track id.
        let rois = face_rois(buf);
        if !rois.is_empty() && state.video_features.is_none() {
            return Err(gst::error_msg!(
                gst::CoreError::Negotiation,
                ("{}", features::missing(true))
            ));
        }
        let mut faces: Vec<(u64, FaceBox, Option<Vec<f32>>)> = Vec::new();
        for r in &rois {
            if !faces.iter().any(|f| f.0 == r.track_id) {
                faces.push((r.track_id, r.bbox, None));
            }
        }
        for m in buf.iter_meta::<FeatureMeta>() {
            let v = m.data();
            let Some(id) = v.track_id else { continue };
            if !state.names_checked.0 {
                state.names_checked.0 = true;
                if let Some(r) = &state.visual_ref
                    && r.name != v.model
                {
                    return Err(gst::error_msg!(
                        gst::StreamError::WrongType,
                        (
                            "the face features come from model {}, the fusion model was made for {} (sha256 {})",
                            v.model,
                            r.name,
                            r.sha256
                        )
                    ));
                }
            }
            let src = if state.use_probabilities {
                &v.probabilities
            } else {
                &v.vector
            };
            let vector = if !v.valid {
                None
            } else if src.len() != state.visual_dim {
                return Err(gst::error_msg!(
                    gst::StreamError::WrongType,
                    (
                        "face {} from model {}: {} {} values, the fusion model wants {}",
                        id,
                        v.model,
                        src.len(),
                        if state.use_probabilities {
                            "probabilities"
                        } else {
                            "feature"
                        },
                        state.visual_dim
                    )
                ));
            } else {
                Some(src.clone())
            };
            match faces.iter_mut().find(|f| f.0 == id) {
                Some(f) => {
                    if f.2.is_none() {
                        f.2 = vector;
                    }
                }
                None => {
                    let bbox = buf
                        .iter_meta::<FaceCropMeta>()
                        .find(|c| c.data().track_id == id)
                        .map(|c| c.data().bbox)
                        .unwrap_or_default();
                    faces.push((id, bbox, vector));
                }
            }
        }
        let audio_vec = audio.as_ref().and_then(|a| a.as_option());
        let entries: Vec<(u64, Option<&[f32]>)> =
            faces.iter().map(|(id, _, v)| (*id, v.as_deref())).collect();
        let dropped = state
            .tracks
            .push_frame(&entries, audio_vec)
            .map_err(|e| gst::error_msg!(gst::StreamError::Failed, ("{}", e)))?;
        for id in dropped {
            state.post.forget(id);
        }
        if let Some(dump) = state.dump.as_mut() {
            let boxes: Vec<(u64, [f32; 4])> = faces
                .iter()
                .map(|(id, b, _)| (*id, [b.x, b.y, b.width, b.height]))
                .collect();
            dump.record(&state.tracks, &boxes, buf.pts().map(|t| t.nseconds()));
        }
        let mut out = Vec::with_capacity(faces.len());
        if !faces.is_empty() {
            let windows: Vec<_> = faces
                .iter()
                .filter_map(|(id, _, _)| state.tracks.arrays(*id))
                .collect();
            let batch = stack(&windows).ok_or_else(|| {
                gst::error_msg!(gst::StreamError::Failed, ("cannot stack the face windows"))
            })?;
            let (va, expr) = self.run_model(state, batch)?;
            let last = state.window - 1;
            for (i, (id, bbox, _)) in faces.iter().enumerate() {
                let va = [va[[i, last, 0]], va[[i, last, 1]]];
                let logits: Vec<f32> = (0..8).map(|k| expr[[i, last, k]]).collect();
                match state.post.face(*id, *bbox, va, &logits, settings.smoothing) {
                    Ok(Some(face)) => out.push(face),
                    Ok(None) => {}
                    Err(NonFinite) => {
                        if !state.warned_nan {
                            state.warned_nan = true;
                            gst::warning!(
                                CAT,
                                imp = self,
                                "the fusion model gave non-finite values for track {id}: face skipped (warned once)"
                            );
                        }
                    }
                }
            }
        }
        // Metas: the ROI param on the face's ROI (added when missing), one custom meta.
        let (w, h) = self.frame_size();
        for f in &out {
            let mut done = false;
            for mut roi in buf.iter_meta_mut::<gst_video::VideoRegionOfInterestMeta>() {
                let same = roi.roi_type() == crate::meta::FACE_ROI_TYPE
                    && roi
                        .param("face")
                        .and_then(|s| s.get::<u64>("track-id").ok())
                        == Some(f.track_id);
                if same && roi.param("affect").is_none() {
                    roi.add_param(face_affect_structure(f));
                    done = true;
                    break;
                }
            }
            if !done {
                add_face_roi(buf, w.zip(h), f.track_id, &f.bbox, None, &[], Some(f));
            }
        }
        if let Err(e) = add_affect_meta(buf, &out) {
            gst::warning!(CAT, imp = self, "cannot add GstAffectMeta: {e}");
        }
        Ok(Output { faces: out })
    }

    /// Frames per second of the video caps (0 if unknown or variable).
    fn frame_rate(&self) -> f64 {
        let caps = self.video_pad().and_then(|p| p.current_caps());
        caps.as_ref()
            .and_then(|c| c.structure(0))
            .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
            .filter(|f| f.numer() > 0 && f.denom() > 0)
            .map_or(0.0, |f| f.numer() as f64 / f.denom() as f64)
    }

    fn frame_size(&self) -> (Option<u32>, Option<u32>) {
        let caps = self.video_pad().and_then(|p| p.current_caps());
        let s = caps.as_ref().and_then(|c| c.structure(0));
        (
            s.and_then(|s| s.get::<i32>("width").ok()).map(|v| v as u32),
            s.and_then(|s| s.get::<i32>("height").ok())
                .map(|v| v as u32),
        )
    }

    fn run_model(
        &self,
        state: &mut State,
        batch: affect::timeline::FusionBatch,
    ) -> Result<(Array3<f32>, Array3<f32>), gst::ErrorMessage> {
        let (v, a, vm, am) = (
            batch.visual.into_dyn(),
            batch.audio.into_dyn(),
            batch.visual_mask.into_dyn(),
            batch.audio_mask.into_dyn(),
        );
        let outputs = state.model.contract().outputs.clone();
        let mut res = state
            .model
            .run_f32(&[
                ("visual", v.view()),
                ("audio", a.view()),
                ("visual_mask", vm.view()),
                ("audio_mask", am.view()),
            ])
            .map_err(|e| crate::common::error_message(&e))?;
        let b = v.shape()[0];
        let t = state.window;
        let mut take = |name: &str, d: usize| -> Result<Array3<f32>, gst::ErrorMessage> {
            let arr = res.remove(name).ok_or_else(|| {
                gst::error_msg!(
                    gst::StreamError::Failed,
                    ("the fusion model has no output `{name}`")
                )
            })?;
            let shape = arr.shape().to_vec();
            arr.into_shape_with_order((b, t, d)).map_err(|_| {
                gst::error_msg!(
                    gst::StreamError::Failed,
                    ("fusion output `{name}` has shape {shape:?}, expected [{b}, {t}, {d}]")
                )
            })
        };
        let va_name = outputs.first().map(String::as_str).unwrap_or("va");
        let expr_name = outputs.get(1).map(String::as_str).unwrap_or("expr");
        Ok((take(va_name, 2)?, take(expr_name, 8)?))
    }

    /// Posts the message and writes the files for one frame (no lock held by the caller).
    fn emit(&self, settings: &Settings, buf: &gst::BufferRef, faces: &[FaceAffect]) {
        let pts = buf.pts();
        let seg = self.video_pad().map(|p| p.segment());
        let seg = seg
            .as_ref()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>());
        let running = pts.and_then(|t| seg.and_then(|s| s.to_running_time(t)));
        let stream = pts.and_then(|t| seg.and_then(|s| s.to_stream_time(t)));
        // Files (state lock only around the writes; nothing is pushed or posted under it).
        {
            let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(state) = guard.as_mut() {
                let mut failed = None;
                if let Some(file) = state.ndjson.as_mut() {
                    let records: Vec<AffectRecord> = faces
                        .iter()
                        .map(|f| {
                            let mut r =
                                AffectRecord::new(pts.map_or(0, |t| t.nseconds()), f.clone());
                            r.duration = buf.duration().map(|d| d.nseconds());
                            r.running_time = running.map(|t| t.nseconds());
                            r.stream_time = stream.map(|t| t.nseconds());
                            r
                        })
                        .collect();
                    // One write per frame; a failed one leaves the file at a line end.
                    if let Err(e) = file.write_records(&records) {
                        failed = Some(format!("NDJSON: {e}"));
                    }
                }
                if failed.is_none()
                    && let Some(csv) = state.csv.as_mut()
                    && let Err(e) = csv.write_frame(state.frames_out, faces)
                {
                    failed = Some(e);
                }
                state.frames_out += 1;
                drop(guard);
                if let Some(e) = failed {
                    gst::element_imp_error!(self, gst::ResourceError::Write, ("{}", e));
                }
            }
        }
        if settings.post_messages {
            let msg = AffectMessage {
                timestamp: pts,
                running_time: running,
                stream_time: stream,
                duration: buf.duration(),
                faces: faces.to_vec(),
            };
            let obj = self.obj();
            let m = gst::message::Element::builder(msg.to_structure())
                .src(&*obj)
                .build();
            let _ = obj.post_message(m);
        }
    }

    fn reset(&self) {
        if let Some(state) = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            state.aligner.reset();
            state.tracks.reset();
            state.post.reset();
            if let Some(d) = state.dump.as_mut() {
                d.clear();
            }
        }
    }
}

impl AggregatorImpl for AvFuse {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let model = settings.model.load(Role::Fusion)?;
        let c = model.contract();
        let InputSpec::Fusion(spec) = c.input.clone() else {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("model {} is not a fusion model", c.name)
            ));
        };
        let use_probabilities = c.prop("affect.fusion.visual-input") == Some("probabilities");
        let fusion_name = c.name.clone();
        let mut align = AlignConfig::new(spec.audio_dim);
        align.max_gap_ns = settings.lookahead;
        (align.mode, align.anchor) = match settings.mode {
            FusionMode::Lookahead => (AlignMode::Interpolate, Anchor::Centre),
            FusionMode::Causal => (AlignMode::NearestPast, Anchor::End),
        };
        let aligner = AudioAligner::new(align)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{}", e)))?;
        let tracks = TrackWindows::new(WindowConfig {
            frames: spec.window,
            visual_dim: spec.visual_dim,
            audio_dim: spec.audio_dim,
            drop_after: DROP_AFTER_FRAMES,
        })
        .map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::Settings,
                ("model {}: {}", fusion_name, e)
            )
        })?;
        let ndjson = if settings.location.is_empty() {
            None
        } else {
            Some(
                ResultFile::create(&settings.location)
                    .map_err(|e| gst::error_msg!(gst::ResourceError::OpenWrite, ("{}", e)))?,
            )
        };
        let csv =
            (!settings.csv_location.is_empty()).then(|| AffWild2Csv::new(&settings.csv_location));
        let dump = if settings.dump_location.is_empty() {
            None
        } else {
            let r = |m: &Option<FeatureModelRef>| {
                m.as_ref()
                    .map(|m| (m.name.clone(), m.sha256.clone()))
                    .unwrap_or_default()
            };
            let (visual_model, visual_sha256) = r(&spec.visual_model);
            let (audio_model, audio_sha256) = r(&spec.audio_model);
            let meta = FeatureMetadata {
                visual_model,
                visual_sha256,
                audio_model,
                audio_sha256,
                visual_input: if use_probabilities {
                    "probabilities"
                } else {
                    "features"
                }
                .into(),
                fps: 0.0,
                source: format!("avfuse {}", self.obj().name()),
                track: String::new(),
            };
            Some(
                TrackDump::new(
                    &settings.dump_location,
                    meta,
                    spec.visual_dim,
                    spec.audio_dim,
                )
                .map_err(|e| {
                    gst::error_msg!(gst::ResourceError::Settings, ("dump-location {}", e))
                })?,
            )
        };
        gst::info!(
            CAT,
            imp = self,
            "fusion model {} ({}), window {}, visual {} ({}), audio {}, {}",
            fusion_name,
            model.path().display(),
            spec.window,
            spec.visual_dim,
            if use_probabilities {
                "probabilities"
            } else {
                "features"
            },
            spec.audio_dim,
            model.provider_note()
        );
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(State {
            model,
            window: spec.window,
            visual_dim: spec.visual_dim,
            audio_dim: spec.audio_dim,
            use_probabilities,
            visual_ref: spec.visual_model,
            audio_ref: spec.audio_model,
            aligner,
            tracks,
            post: PostProcessor::new(),
            ndjson,
            csv,
            frames_out: 0,
            video_features: None,
            audio_features: None,
            audio_started: false,
            names_checked: (false, false),
            warned_nan: false,
            warned_dims: false,
            dump,
        });
        if let Some(w) = settings.model.threads_warning() {
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", w));
        }
        let latency = settings.latency();
        self.obj().set_latency(latency, Some(latency));
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.latency_retry.cancel();
        self.audio_wait.cancel();
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner()).take();
        // Stopped before EOS: the dump still gets written.
        if let Some(mut dump) = state.and_then(|s| s.dump)
            && !dump.is_written()
            && dump.frames() > 0
            && let Err(e) = dump.write(self.frame_rate())
        {
            gst::element_imp_warning!(self, gst::ResourceError::Write, ("dump-location: {}", e));
        }
        Ok(())
    }

    fn flush(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        gst::debug!(CAT, imp = self, "flush: tracks and audio alignment reset");
        self.reset();
        self.parent_flush()
    }

    fn create_new_pad(
        &self,
        templ: &gst::PadTemplate,
        _req_name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst_base::AggregatorPad> {
        if templ.name_template() != "audio_sink" || self.obj().static_pad("audio_sink").is_some() {
            gst::warning!(CAT, imp = self, "only one audio_sink pad can be requested");
            return None;
        }
        Some(
            gst::PadBuilder::<gst_base::AggregatorPad>::from_template(templ)
                .name("audio_sink")
                .build(),
        )
    }

    fn sink_event(&self, pad: &gst_base::AggregatorPad, event: gst::Event) -> bool {
        let is_video = pad.name() == "video_sink";
        if let Some(declaration) = FeaturesDeclaration::from_event(&event) {
            return match declaration.and_then(|d| self.take_declaration(is_video, d)) {
                Ok(()) => self.parent_sink_event(pad, event),
                Err(e) => {
                    gst::element_imp_error!(self, gst::CoreError::Negotiation, ("{}", e));
                    false
                }
            };
        }
        match event.view() {
            gst::EventView::Caps(c) if is_video => {
                let caps = c.caps_owned();
                gst::debug!(CAT, imp = self, "video caps {caps}");
                self.obj().set_src_caps(&caps);
            }
            gst::EventView::Segment(s) if is_video => {
                let seg = s.segment().clone();
                self.obj().update_segment(&seg);
                self.end_unlinked_audio();
                self.schedule_latency_retry();
                self.schedule_audio_wait();
            }
            gst::EventView::Gap(g) if !is_video => {
                if let Some(state) = self
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                {
                    state.audio_started = true;
                }
                let (ts, d) = g.get();
                let seg = pad.segment();
                if let Some(end) = Self::running_time(&seg, ts + d.unwrap_or(gst::ClockTime::ZERO))
                    && let Some(state) = self
                        .state
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .as_mut()
                {
                    state.aligner.advance(end);
                }
            }
            _ => {}
        }
        self.parent_sink_event(pad, event)
    }

    fn sink_query(&self, pad: &gst_base::AggregatorPad, query: &mut gst::QueryRef) -> bool {
        if pad.name() == "video_sink" {
            match query.view_mut() {
                gst::QueryViewMut::Caps(_) | gst::QueryViewMut::AcceptCaps(_) => {
                    return self.obj().src_pad().peer_query(query);
                }
                _ => {}
            }
        }
        self.parent_sink_query(pad, query)
    }

    fn negotiate(&self) -> bool {
        // The src caps are the video caps (set on the video CAPS event).
        true
    }

    fn next_time(&self) -> Option<gst::ClockTime> {
        // Live deadline: the running time of the waiting video frame (+ latency, added
        // by the aggregator).
        let pad = self.video_pad()?;
        let Some(buf) = pad.peek_buffer() else {
            // Video ended: time out at once so that a silent live audio pad cannot hold
            // EOS back.
            return pad.is_eos().then_some(gst::ClockTime::ZERO);
        };
        let seg = pad.segment();
        let pts = buf.pts()?;
        Self::running_time(&seg, pts).map(gst::ClockTime::from_nseconds)
    }

    fn aggregate(&self, timeout: bool) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(video) = self.video_pad() else {
            return Err(gst::FlowError::Error);
        };
        let audio = self.audio_pad();
        let settings = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(state) = guard.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        let audio_active = audio.as_ref().filter(|a| a.peer().is_some());
        let video_buf = video.peek_buffer();
        let seg = video.segment();
        let frame_time = video_buf.as_ref().and_then(|buf| {
            buf.pts()
                .and_then(|pts| Self::running_time(&seg, pts))
                .map(|rt| midpoint(rt, buf.duration().map(|d| d.nseconds())))
        });
        // Live: all audio as it comes (a live source must not be held back; the video
        // keeps its deadlines). Not live: no faster than the waiting frame needs it.
        let live = self.obj().latency().is_some();
        if let Some(a) = audio_active
            && (live || frame_time.is_some() || video.is_eos())
            && let Err(e) = self.drain_audio(state, a, frame_time.filter(|_| !live))
        {
            drop(guard);
            gst::element_imp_error!(self, gst::StreamError::WrongType, ("{}", e));
            return Err(gst::FlowError::Error);
        }
        let audio_eos = audio_active.is_none_or(|a| a.is_eos());
        if audio_eos && !state.aligner.is_ended() {
            state.aligner.end();
        }

        let Some(buf) = video_buf else {
            if video.is_eos() {
                gst::debug!(CAT, imp = self, "video EOS");
                if state.dump.as_ref().is_some_and(|d| !d.is_written()) {
                    let mut dump = state.dump.take();
                    drop(guard);
                    let res = dump.as_mut().map(|d| d.write(self.frame_rate()));
                    if let Some(s) = self
                        .state
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .as_mut()
                    {
                        s.dump = dump;
                    }
                    match res {
                        Some(Err(e)) => {
                            gst::element_imp_error!(
                                self,
                                gst::ResourceError::Write,
                                ("dump-location: {}", e)
                            );
                            return Err(gst::FlowError::Error);
                        }
                        Some(Ok(n)) => {
                            gst::info!(CAT, imp = self, "dump-location: {n} track file(s) written")
                        }
                        None => {}
                    }
                }
                return Err(gst::FlowError::Eos);
            }
            return Err(gst_base::AGGREGATOR_FLOW_NEED_DATA);
        };
        drop(buf);
        if let Some(t) = frame_time
            && !timeout
            && !state.aligner.is_ready(t)
        {
            // Wait for more audio (live: at most until the deadline).
            return Err(gst_base::AGGREGATOR_FLOW_NEED_DATA);
        }
        let Some(buf) = video.pop_buffer() else {
            return Err(gst_base::AGGREGATOR_FLOW_NEED_DATA);
        };
        let mut buf = buf;
        let out = {
            let b = buf.make_mut();
            self.process_frame(state, &settings, b, frame_time)
        };
        drop(guard);
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                self.post_error_message(e);
                return Err(gst::FlowError::Error);
            }
        };
        self.emit(&settings, &buf, &out.faces);
        if let Some(pts) = buf.pts() {
            self.obj()
                .set_position(pts + buf.duration().unwrap_or(gst::ClockTime::ZERO));
        }
        gst::trace!(
            CAT,
            imp = self,
            "frame {:?}: {} face(s){}",
            buf.pts(),
            out.faces.len(),
            if timeout { " (timeout)" } else { "" }
        );
        self.obj().finish_buffer(buf)
    }
}
