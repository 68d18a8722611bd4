// SPDX-License-Identifier: MPL-2.0
//! One input through the audio-visual pipeline of `make demo`, built in-process from the
//! streams the input actually has.
//!
//! `uridecodebin` opens the input; when it has exposed every stream (`no-more-pads`,
//! before any data flows) the branches are added:
//!
//! ```text
//! video: queue ! videoconvert ! facecrop mesh=true ! queue ! featextract ! queue ! avfuse ! (affectoverlay ! openh264enc ! mp4mux ! filesink | fakesink)
//! audio: queue ! audioconvert ! audioresample ! audiodenoise ! featextract ! queue ! avfuse.audio_sink   (or ! fakesink without video)
//! ```
//!
//! Anything else (subtitles, data) goes to a `fakesink`. An input with neither video nor
//! audio is an error.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

/// How the pipeline of every input is built.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Run `facecrop` with the face mesh (who speaks), as `make demo` does.
    pub mesh: bool,
    /// Extra `key=value` properties for every model-running element (provider, threads…).
    pub props: String,
    /// Write an annotated H.264 video (`annotated.mp4`).
    pub video: bool,
    /// Live source: causal fusion, no VAD look-ahead, no truncation check.
    pub live: bool,
    /// An input that delivers no buffer for this long fails (files) or restarts (live).
    pub stall_timeout: Duration,
}

impl PipelineOptions {
    /// The settings that change results (part of every manifest key).
    pub fn settings_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mesh": self.mesh,
            "props": self.props,
            "video": self.video,
            "live": self.live,
        })
    }
}

/// What a pipeline is doing, read by the progress display and the health endpoint.
#[derive(Debug, Default)]
pub struct Live {
    /// Video frames out of `avfuse`.
    pub frames: AtomicU64,
    /// Furthest media time reached by any decoded stream (ns).
    pub decoded_ns: AtomicU64,
    /// Media time processed: the end of the last buffer out of the pipeline (ns).
    pub position_ns: AtomicU64,
    /// The input's duration (ns), 0 while unknown.
    pub duration_ns: AtomicU64,
    /// Milliseconds since `epoch` of the last buffer at the end of the pipeline.
    pub last_buffer_ms: AtomicU64,
    /// Whether a buffer was ever seen.
    pub flowing: AtomicBool,
    /// When this pipeline started.
    pub epoch: Mutex<Option<Instant>>,
}

impl Live {
    /// Records a buffer at the end of the pipeline.
    fn tick(&self, buffer: Option<&gst::BufferRef>) {
        if let Some(b) = buffer
            && let Some(pts) = b.pts()
        {
            let end = pts + b.duration().unwrap_or(gst::ClockTime::ZERO);
            self.position_ns
                .fetch_max(end.nseconds(), Ordering::Relaxed);
        }
        if let Some(e) = *self.epoch.lock().unwrap_or_else(|p| p.into_inner()) {
            self.last_buffer_ms
                .store(e.elapsed().as_millis() as u64, Ordering::Relaxed);
            self.flowing.store(true, Ordering::Relaxed);
        }
    }

    /// Time since the last buffer (None before the first one).
    pub fn since_last_buffer(&self) -> Option<Duration> {
        if !self.flowing.load(Ordering::Relaxed) {
            return None;
        }
        let e = (*self.epoch.lock().unwrap_or_else(|p| p.into_inner()))?;
        let last = Duration::from_millis(self.last_buffer_ms.load(Ordering::Relaxed));
        Some(e.elapsed().saturating_sub(last))
    }
}

/// A speech boundary heard by `audiodenoise`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SpeechEvent {
    /// `speech-start` or `speech-end`.
    pub event: &'static str,
    /// Media time of the boundary (ns).
    pub timestamp: Option<u64>,
}

/// What one run of a pipeline saw.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// The input has a video stream.
    pub has_video: bool,
    /// The input has an audio stream.
    pub has_audio: bool,
    /// Video frames out of `avfuse`.
    pub frames: u64,
    /// Media time covered (ns).
    pub media_ns: u64,
    /// Speech boundaries.
    pub speech: Vec<SpeechEvent>,
    /// Warnings posted on the bus.
    pub warnings: Vec<String>,
}

/// Where one run writes.
pub struct RunFiles {
    /// NDJSON of every face in every frame.
    pub ndjson: PathBuf,
    /// Prefix of the Aff-Wild2 CSV files.
    pub csv_prefix: PathBuf,
    /// Annotated video, if asked for.
    pub video: Option<PathBuf>,
}

impl RunFiles {
    /// The standard layout in `dir`.
    pub fn in_dir(dir: &Path, video: bool) -> RunFiles {
        RunFiles {
            ndjson: dir.join("affect.ndjson"),
            csv_prefix: dir.join("affect"),
            video: video.then(|| dir.join("annotated.mp4")),
        }
    }
}

fn error_text(src: Option<&gst::Object>, err: &glib::Error, debug: Option<&str>) -> String {
    // The factory name (`qtdemux`), not the instance name (`qtdemux3`): the same input
    // fails with the same text in every run.
    let who = src
        .map(|s| {
            s.downcast_ref::<gst::Element>()
                .and_then(|e| e.factory())
                .map(|f| f.name().to_string())
                .unwrap_or_else(|| s.name().to_string())
        })
        .unwrap_or_default();
    let first_debug = debug
        .and_then(|d| d.lines().last())
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    if who.is_empty() {
        format!("{err}{first_debug}")
    } else {
        format!("{who}: {err}{first_debug}")
    }
}

/// The pipeline of one input, built and waiting for the decoder's streams.
pub struct AnnotatePipeline {
    pipeline: gst::Pipeline,
    live: Arc<Live>,
    streams: Arc<Mutex<(bool, bool)>>,
    opened: Arc<AtomicBool>,
}

impl AnnotatePipeline {
    /// Builds the pipeline for `uri`: the decoder now, the branches when its streams are known.
    pub fn new(
        uri: &str,
        files: RunFiles,
        opts: &PipelineOptions,
        live: Arc<Live>,
    ) -> Result<AnnotatePipeline, String> {
        let pipeline = gst::Pipeline::new();
        let dec = gst::ElementFactory::make("uridecodebin")
            .property("uri", uri)
            .build()
            .map_err(|e| format!("uridecodebin: {e}"))?;
        pipeline
            .add(&dec)
            .map_err(|e| format!("uridecodebin: {e}"))?;
        let pads: Arc<Mutex<Vec<gst::Pad>>> = Arc::default();
        let streams: Arc<Mutex<(bool, bool)>> = Arc::default();
        let opened: Arc<AtomicBool> = Arc::default();
        {
            let pads = pads.clone();
            let live = live.clone();
            dec.connect_pad_added(move |_, pad| {
                let live = live.clone();
                // Media time reached, for progress and the truncation check.
                pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                    if let Some(b) = info.buffer()
                        && let Some(pts) = b.pts()
                    {
                        let end = pts + b.duration().unwrap_or(gst::ClockTime::ZERO);
                        live.decoded_ns.fetch_max(end.nseconds(), Ordering::Relaxed);
                    }
                    gst::PadProbeReturn::Ok
                });
                pads.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(pad.clone());
            });
        }
        {
            let pipe_weak = pipeline.downgrade();
            let opts = opts.clone();
            let streams = streams.clone();
            let live = live.clone();
            let opened = opened.clone();
            let files = Mutex::new(Some(files));
            dec.connect_no_more_pads(move |_| {
                let Some(pipe) = pipe_weak.upgrade() else {
                    return;
                };
                opened.store(true, Ordering::Relaxed);
                let pads = std::mem::take(&mut *pads.lock().unwrap_or_else(|p| p.into_inner()));
                let Some(files) = files.lock().unwrap_or_else(|p| p.into_inner()).take() else {
                    return;
                };
                match link_branches(&pipe, &pads, &files, &opts, &live) {
                    Ok(s) => *streams.lock().unwrap_or_else(|p| p.into_inner()) = s,
                    Err(e) => {
                        let msg = gst::message::Error::builder(gst::StreamError::Failed, &e)
                            .src(&pipe)
                            .build();
                        let _ = pipe.post_message(msg);
                    }
                }
            });
        }
        Ok(AnnotatePipeline {
            pipeline,
            live,
            streams,
            opened,
        })
    }

    /// Plays to EOS (files) or until an error, a stall or `stop` (live). `on_element`
    /// sees every element message. The pipeline is stopped (NULL) on return, so every
    /// file it wrote is closed.
    pub fn run(
        &self,
        opts: &PipelineOptions,
        stop: &AtomicBool,
        mut on_element: impl FnMut(&gst::StructureRef),
    ) -> Result<RunOutcome, String> {
        *self.live.epoch.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let result = self.play(opts, stop, &mut on_element);
        let _ = self.pipeline.set_state(gst::State::Null);
        let (has_video, has_audio) = *self.streams.lock().unwrap_or_else(|p| p.into_inner());
        result.map(|(speech, warnings)| RunOutcome {
            has_video,
            has_audio,
            frames: self.live.frames.load(Ordering::Relaxed),
            media_ns: self.live.decoded_ns.load(Ordering::Relaxed),
            speech,
            warnings,
        })
    }

    #[allow(clippy::type_complexity)]
    fn play(
        &self,
        opts: &PipelineOptions,
        stop: &AtomicBool,
        on_element: &mut impl FnMut(&gst::StructureRef),
    ) -> Result<(Vec<SpeechEvent>, Vec<String>), String> {
        let bus = self.pipeline.bus().ok_or("pipeline without a bus")?;
        let mut speech = Vec::new();
        let mut warnings = Vec::new();
        if self.pipeline.set_state(gst::State::Playing).is_err() {
            let err = bus
                .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
                .and_then(|m| match m.view() {
                    gst::MessageView::Error(e) => {
                        Some(error_text(e.src(), &e.error(), e.debug().as_deref()))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| "the pipeline cannot start".into());
            return Err(err);
        }
        let started = Instant::now();
        let mut last_seen = (0u64, 0u64);
        let mut last_change = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err("stopped".into());
            }
            let msg = bus.timed_pop(gst::ClockTime::from_mseconds(200));
            let now = (
                self.live.frames.load(Ordering::Relaxed),
                self.live.decoded_ns.load(Ordering::Relaxed)
                    + self.live.position_ns.load(Ordering::Relaxed),
            );
            if now != last_seen
                || (opts.live
                    && self
                        .live
                        .since_last_buffer()
                        .is_some_and(|d| d < Duration::from_millis(500)))
            {
                last_seen = now;
                last_change = Instant::now();
            }
            if last_change.elapsed() > opts.stall_timeout {
                return Err(format!(
                    "no data for {} s (stalled after {:.1} s of media)",
                    opts.stall_timeout.as_secs(),
                    self.live.position_ns.load(Ordering::Relaxed) as f64 / 1e9
                ));
            }
            if self.live.duration_ns.load(Ordering::Relaxed) == 0
                && started.elapsed() > Duration::from_millis(300)
                && let Some(d) = self.pipeline.query_duration::<gst::ClockTime>()
            {
                self.live.duration_ns.store(d.nseconds(), Ordering::Relaxed);
            }
            if !self.opened.load(Ordering::Relaxed)
                && started.elapsed() > Duration::from_millis(500)
                && let Some(demuxer) = self.demuxer_gave_up()
            {
                return Err(format!(
                    "{demuxer}: no playable stream found (a truncated, damaged or unsupported file?)"
                ));
            }
            let Some(msg) = msg else { continue };
            if std::env::var_os("AA_DEBUG").is_some() {
                eprintln!(
                    "msg {:?} from {:?}",
                    msg.type_(),
                    msg.src().map(|s| s.name())
                );
            }
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => {
                    return Err(error_text(e.src(), &e.error(), e.debug().as_deref()));
                }
                gst::MessageView::Warning(w) => {
                    warnings.push(error_text(w.src(), &w.error(), w.debug().as_deref()))
                }
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure() {
                        if let Ok(m) = gstaffect::meta::SpeechMessage::try_from(s) {
                            speech.push(SpeechEvent {
                                event: if m.start {
                                    "speech-start"
                                } else {
                                    "speech-end"
                                },
                                timestamp: m.timestamp.map(|t| t.nseconds()),
                            });
                        }
                        on_element(s);
                    }
                }
                _ => {}
            }
        }
        if !opts.live {
            self.check_complete()?;
        }
        Ok((speech, warnings))
    }

    /// A demuxer whose streaming task stopped before the decoder exposed any stream: it
    /// hit an error that `decodebin` swallowed (GStreamer 1.22 drops errors posted while it
    /// is still bringing the demuxer up, e.g. qtdemux's "no playable streams" on a file cut
    /// before its index).
    fn demuxer_gave_up(&self) -> Option<String> {
        for e in self.pipeline.iterate_recurse().into_iter().flatten() {
            let is_demuxer = e
                .factory()
                .and_then(|f| f.metadata("klass").map(|k| k.contains("Demux")))
                .unwrap_or(false);
            if !is_demuxer {
                continue;
            }
            for pad in e.sink_pads() {
                if pad.mode() == gst::PadMode::Pull && pad.task_state() == gst::TaskState::Paused {
                    return Some(
                        e.factory()
                            .map(|f| f.name().to_string())
                            .unwrap_or_else(|| e.name().to_string()),
                    );
                }
            }
        }
        None
    }

    /// A file whose streams end well before its declared duration was cut short.
    fn check_complete(&self) -> Result<(), String> {
        let reached = self.live.decoded_ns.load(Ordering::Relaxed);
        let declared = self
            .pipeline
            .query_duration::<gst::ClockTime>()
            .map(|d| d.nseconds())
            .unwrap_or_else(|| self.live.duration_ns.load(Ordering::Relaxed));
        if declared > 0 && reached + 1_000_000_000 < declared {
            return Err(format!(
                "truncated input: the streams end at {:.2} s of a declared {:.2} s",
                reached as f64 / 1e9,
                declared as f64 / 1e9
            ));
        }
        Ok(())
    }
}

/// Which kind of stream a decoder pad carries.
fn media_kind(pad: &gst::Pad) -> &'static str {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    match caps.structure(0).map(|s| s.name().to_string()) {
        Some(n) if n.starts_with("video/") => "video",
        Some(n) if n.starts_with("audio/") => "audio",
        _ => "other",
    }
}

/// Adds and links the branches for the decoder's pads; returns (video, audio).
fn link_branches(
    pipe: &gst::Pipeline,
    pads: &[gst::Pad],
    files: &RunFiles,
    opts: &PipelineOptions,
    live: &Arc<Live>,
) -> Result<(bool, bool), String> {
    let video_pad = pads.iter().find(|p| media_kind(p) == "video");
    let audio_pad = pads.iter().find(|p| media_kind(p) == "audio");
    if video_pad.is_none() && audio_pad.is_none() {
        return Err("the input has neither a video nor an audio stream".into());
    }
    let props = &opts.props;
    // audiodenoise runs a per-stream model: no batching properties.
    let audio_props: String = props
        .split_whitespace()
        .filter(|p| !p.starts_with("max-batch"))
        .collect::<Vec<_>>()
        .join(" ");
    let mesh = if opts.mesh { "mesh=true" } else { "" };
    let fusion_mode = if opts.live { "mode=causal" } else { "" };
    let vad_live = if opts.live { "vad-lookahead-ms=0" } else { "" };
    let mut desc = String::new();
    if video_pad.is_some() {
        let tail = if files.video.is_some() {
            "affectoverlay ! videoconvert ! openh264enc bitrate=4000000 ! h264parse ! mp4mux ! filesink name=vfile"
        } else {
            "fakesink name=vout sync=false"
        };
        desc += &format!(
            "queue name=vq ! videoconvert ! facecrop {mesh} {props} ! queue ! featextract {props} ! queue \
             ! avfuse name=f {fusion_mode} {props} ! {tail} "
        );
    }
    if audio_pad.is_some() {
        let tail = if video_pad.is_some() {
            "f.audio_sink"
        } else {
            "fakesink name=aout sync=false"
        };
        desc += &format!(
            "queue name=aq ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
             ! audiodenoise post-messages=true {vad_live} {audio_props} ! featextract {props} ! queue ! {tail}"
        );
    }
    let bin = gst::parse::bin_from_description(&desc, false)
        .map_err(|e| format!("cannot build the pipeline: {e}"))?;
    if let Some(f) = bin.by_name("f") {
        f.set_property("location", files.ndjson.to_string_lossy().as_ref());
        f.set_property("csv-location", files.csv_prefix.to_string_lossy().as_ref());
        if opts.live {
            f.set_property("post-messages", true);
        }
        let live = live.clone();
        if let Some(src) = f.static_pad("src") {
            src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                live.frames.fetch_add(1, Ordering::Relaxed);
                live.tick(info.buffer().map(|b| b.as_ref()));
                gst::PadProbeReturn::Ok
            });
        }
    } else if let Some(aout) = bin.by_name("aout")
        && let Some(sink) = aout.static_pad("sink")
    {
        let live = live.clone();
        sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            live.tick(info.buffer().map(|b| b.as_ref()));
            gst::PadProbeReturn::Ok
        });
    }
    if let (Some(v), Some(path)) = (bin.by_name("vfile"), &files.video) {
        v.set_property("location", path.to_string_lossy().as_ref());
    }
    pipe.add(&bin)
        .map_err(|e| format!("cannot add the branches: {e}"))?;
    let link = |pad: &gst::Pad, head: &str| -> Result<(), String> {
        let target = bin
            .by_name(head)
            .and_then(|e| e.static_pad("sink"))
            .ok_or_else(|| format!("no {head}"))?;
        let ghost = gst::GhostPad::builder_with_target(&target)
            .map_err(|e| e.to_string())?
            .name(head)
            .build();
        bin.add_pad(&ghost).map_err(|e| e.to_string())?;
        pad.link(&ghost)
            .map(|_| ())
            .map_err(|e| format!("cannot link the {head} branch: {e:?}"))
    };
    if let Some(p) = video_pad {
        link(p, "vq")?;
    }
    if let Some(p) = audio_pad {
        link(p, "aq")?;
    }
    // Streams this pipeline does not read (a second video, subtitles) are dropped.
    for p in pads {
        if p.is_linked() {
            continue;
        }
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
            .map_err(|e| e.to_string())?;
        pipe.add(&sink).map_err(|e| e.to_string())?;
        sink.sync_state_with_parent().map_err(|e| e.to_string())?;
        if let Some(s) = sink.static_pad("sink") {
            let _ = p.link(&s);
        }
    }
    bin.sync_state_with_parent()
        .map_err(|e| format!("cannot start the branches: {e}"))?;
    Ok((video_pad.is_some(), audio_pad.is_some()))
}
