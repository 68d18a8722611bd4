// SPDX-License-Identifier: MPL-2.0
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};

use affect::dataset::{FeatureMetadata, TrackDump};
use affect::fusion::post::{NonFinite, PostProcessor};
use affect::results::{AffWild2Csv, AffectRecord, FaceAffect, FaceBox, ResultFile};
use affect::runtime::{AudioMaskKind, FeatureModelRef, InputSpec, Model, Role};
use affect::timeline::{
    AlignConfig, AlignMode, Anchor, AudioAligner, Lookahead, Ready, SPEECH_FRAME_NS,
    SpeechTimeline, TimelineError, TrackWindows, WindowConfig, midpoint, stack,
};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use ndarray::Array3;

use crate::common::{ElementError, ModelSettings};
use crate::meta::{
    AffectMessage, FaceCropMeta, FeatureMeta, FeaturesDeclaration, add_affect_meta, add_face_roi,
    face_affect_structure, face_rois,
};

mod audio_wait;
mod features;
mod frame;
mod latency;
mod props;
mod speaker;
mod state;
mod timer;

use crate::common::LockExt;
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

/// Which faces get the voice (the `audio-attribution` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstAffectAvFuseAudioAttribution")]
pub enum AudioAttribution {
    /// The face(s) judged speaking (mouth in sync with the voice; needs `facecrop
    /// mesh=true`); a lone face unless it is clearly not speaking.
    #[default]
    #[enum_value(
        name = "The face(s) judged speaking (needs facecrop mesh=true)",
        nick = "speaker"
    )]
    Speaker = 0,
    /// Every face.
    #[enum_value(name = "Every face", nick = "all")]
    All = 1,
    /// No face: audio is ignored.
    #[enum_value(name = "No face: audio ignored", nick = "none")]
    None = 2,
}

impl From<AudioAttribution> for affect::speaker::Attribution {
    fn from(a: AudioAttribution) -> Self {
        match a {
            AudioAttribution::Speaker => Self::Speaker,
            AudioAttribution::All => Self::All,
            AudioAttribution::None => Self::None,
        }
    }
}

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
    attribution: affect::speaker::Attribution,
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
            attribution: affect::speaker::Attribution::Speaker,
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
    /// What the fusion model's `audio_mask` holds (`affect.fusion.audio-mask`).
    audio_mask: AudioMaskKind,
    /// Voice activity of the audio branch (`GstAffectSpeechMeta`), with `audio_mask`
    /// `speech`.
    speech: SpeechTimeline,
    /// A `GstAffectSpeechMeta` has been seen since start.
    speech_seen: bool,
    /// The missing voice activity has been warned about since start.
    warned_no_vad: bool,
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
    warned_nan: bool,
    warned_dims: bool,
    dump: Option<TrackDump>,
    /// Frames waiting for the `affect.fusion.lookahead-frames` later frames.
    held: Lookahead<HeldFrame>,
    /// Video frame duration from the caps (ns), for the latency of `held`.
    frame_duration: Option<u64>,
    /// Active-speaker detection (`audio-attribution=speaker`).
    speaker: speaker::SpeakerState,
}

/// What one output frame produced, posted/written after the state lock is released.
struct Output {
    faces: Vec<FaceAffect>,
    /// The flagged speakers changed at this frame: (now, before).
    speaker_change: Option<(Vec<u64>, Vec<u64>)>,
}

/// A video frame taken into the track windows, waiting for its result.
struct HeldFrame {
    buf: gst::Buffer,
    /// Its faces: track id and box, in ROI order.
    faces: Vec<(u64, FaceBox)>,
    /// Its faces' speaking states, when scored.
    speaking: Option<Vec<(u64, affect::speaker::Speaking)>>,
}

#[derive(Default)]
pub struct AvFuse {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// Pending retry of the upstream latency query (`latency` module).
    latency_retry: Timer,
    /// Pending check of a silent non-live audio branch (`audio_wait` module).
    audio_wait: Timer,
    /// The fusion model gates audio by voice activity but the audio carries none: a
    /// warning to post once no lock is held.
    no_vad_warning: AtomicBool,
    /// `audio-attribution=speaker` but the faces carry no mesh: a warning to post once
    /// no lock is held.
    no_mesh_warning: AtomicBool,
}

#[glib::object_subclass]
impl ObjectSubclass for AvFuse {
    const NAME: &'static str = "GstAffectAvFuse";
    type Type = super::AvFuse;
    type ParentType = gst_base::Aggregator;
}

impl GstObjectImpl for AvFuse {}

impl ElementImpl for AvFuse {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            crate::common::element_metadata(
                "Audio-visual affect fusion",
                "Filter/Analyzer/Video/Audio",
                "Aligns face and audio features and runs a fusion ONNX model: valence, arousal and expressions per face",
                "gst-launch-1.0 videotestsrc num-buffers=10 ! video/x-raw,width=640,height=360 ! facecrop ! featextract ! avfuse ! fakesink",
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
            && let Some(state) = self.state.locked().as_mut()
        {
            state.aligner.reset();
            state.speech.reset();
            state.speaker.levels.reset();
        }
        self.parent_release_pad(pad);
    }
}

impl AvFuse {
    /// Between start and stop.
    fn is_running(&self) -> bool {
        self.state.locked().is_some()
    }

    /// Checks and keeps what an upstream `featextract` declares on a sink pad.
    fn take_declaration(
        &self,
        video: bool,
        d: FeaturesDeclaration,
    ) -> Result<(), features::FeatureCheckError> {
        let mut guard = self.state.locked();
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

    fn reset(&self) {
        if let Some(state) = self.state.locked().as_mut() {
            state.aligner.reset();
            state.speech.reset();
            state.speaker.reset();
            state.tracks.reset();
            state.held.clear();
            state.post.reset();
            if let Some(d) = state.dump.as_mut() {
                d.clear();
            }
        }
    }
}

impl AggregatorImpl for AvFuse {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.locked().clone();
        let state = self.build_state(&settings)?;
        *self.state.locked() = Some(state);
        if let Some(w) = settings.model.threads_warning() {
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", w));
        }
        self.update_latency();
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.latency_retry.cancel();
        self.audio_wait.cancel();
        let state = self.state.locked().take();
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
            let checked = declaration
                .map_err(features::FeatureCheckError::BadEvent)
                .and_then(|d| self.take_declaration(is_video, d));
            return match checked {
                Ok(()) => self.parent_sink_event(pad, event),
                Err(e) => {
                    self.post_error_message(e.to_error_message());
                    false
                }
            };
        }
        match event.view() {
            gst::EventView::Caps(c) if is_video => {
                let caps = c.caps_owned();
                gst::debug!(CAT, imp = self, "video caps {caps}");
                let duration = caps
                    .structure(0)
                    .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
                    .filter(|f| f.numer() > 0 && f.denom() > 0)
                    .map(|f| {
                        gst::ClockTime::SECOND
                            .mul_div_ceil(f.denom() as u64, f.numer() as u64)
                            .map_or(0, |d| d.nseconds())
                    });
                if let Some(state) = self.state.locked().as_mut() {
                    state.frame_duration = duration;
                }
                self.update_latency();
                self.obj().set_src_caps(&caps);
            }
            gst::EventView::Segment(s) if is_video => {
                let seg = s.segment().clone();
                self.obj().update_segment(&seg);
                self.end_unlinked_audio();
                // One latency query for both: is the video branch live?
                let video_live = self.video_is_live();
                self.schedule_latency_retry(video_live);
                self.schedule_audio_wait(video_live);
            }
            gst::EventView::Gap(g) if !is_video => {
                let (ts, d) = g.get();
                let end = Self::running_time(&pad.segment(), ts + d.unwrap_or_default());
                if let Some(state) = self.state.locked().as_mut() {
                    state.audio_started = true;
                    if let Some(end) = end {
                        state.aligner.advance(end);
                    }
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
        let settings = self.settings.locked().clone();
        let mut guard = self.state.locked();
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
            self.post_error_message(e.to_error_message());
            return Err(gst::FlowError::Error);
        }
        let audio_eos = audio_active.is_none_or(|a| a.is_eos());
        if audio_eos && !state.aligner.is_ended() {
            state.aligner.end();
        }

        if video_buf.is_none() {
            if video.is_eos() && !state.held.is_empty() {
                // Frames held for the model's lookahead get the context that exists.
                let ready = state.held.drain(&state.tracks);
                let out = self.resolve_all(state, &settings, ready);
                drop(guard);
                return self.finish_frames(&settings, out, timeout);
            }
            if video.is_eos() {
                gst::debug!(CAT, imp = self, "video EOS");
                if state.dump.as_ref().is_some_and(|d| !d.is_written()) {
                    let mut dump = state.dump.take();
                    drop(guard);
                    let res = dump.as_mut().map(|d| d.write(self.frame_rate()));
                    if let Some(s) = self.state.locked().as_mut() {
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
        }
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
        let out = self.process_frame(state, &settings, buf, frame_time);
        drop(guard);
        self.finish_frames(&settings, out, timeout)
    }
}
