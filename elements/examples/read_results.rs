// SPDX-License-Identifier: MPL-2.0
//! An application that runs gst-affect on a media file and reads its results the three
//! ways a Rust program can: typed metas on the buffers (face ROIs with their `affect`
//! param, and the `GstAffectMeta` custom meta), via a pad probe, and the `affect`
//! element messages on the bus. Prints one summary line per frame and checks that the
//! metas and the message of each frame agree.
//!
//! ```sh
//! cargo run -p gst-plugin-affect --example read_results -- .cache/media/sample.mp4
//! cargo run -p gst-plugin-affect --example read_results -- --no-audio clip-without-sound.mp4
//! ```
//!
//! ```text
//! frame 0.067 s: 1 face [track 1 Neutral v=-0.062 a=+0.041 at 201,110 190x190] rois=1 meta=1 message=1
//! …
//! summary: frames=72 frames-with-faces=72 face-records=72 messages=72 mismatches=0 tracks=[1]
//! ```
//!
//! The plugin is registered into the process (it is a dependency of this example); an
//! application built against the installed plugin would find it on `GST_PLUGIN_PATH`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use affect::results::FaceAffect;
use gst::prelude::*;
use gstaffect::meta::{AffectMessage, FaceRoi, affect_meta_faces, face_rois};

/// What one video buffer carried out of `avfuse`.
#[derive(Debug, Default)]
struct BufferResults {
    /// Face ROIs (each with its `affect` param when fusion ran for it).
    rois: Vec<FaceRoi>,
    /// The faces of the `GstAffectMeta` custom meta (none if the buffer has no such meta).
    meta: Vec<FaceAffect>,
}

/// Everything seen for one frame, keyed by its pts.
#[derive(Debug, Default)]
struct Frame {
    buffer: Option<BufferResults>,
    message: Option<AffectMessage>,
}

/// Totals over the run.
#[derive(Debug, Default)]
struct Summary {
    frames: usize,
    frames_with_faces: usize,
    face_records: usize,
    messages: usize,
    mismatches: usize,
    tracks: BTreeSet<u64>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (audio, input) = match args.as_slice() {
        [flag, input] if flag == "--no-audio" => (false, input),
        [input] if !input.starts_with('-') => (true, input),
        _ => {
            eprintln!("usage: read_results [--no-audio] INPUT");
            return ExitCode::from(2);
        }
    };
    match run(Path::new(input), audio) {
        Ok(s) if s.mismatches == 0 => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!(
                "read_results: {} frames where metas and messages disagree",
                s.mismatches
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("read_results: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The pipeline: decode → facecrop → featextract → avfuse → fakesink, audio into avfuse.
fn pipeline(input: &Path, audio: bool) -> Result<gst::Pipeline, String> {
    let mut desc = String::from(
        "filesrc name=src ! decodebin name=d \
         d. ! video/x-raw ! queue ! videoconvert ! facecrop ! featextract ! queue \
         ! avfuse name=f ! fakesink name=out sync=false",
    );
    if audio {
        desc.push_str(
            " d. ! audio/x-raw ! queue ! audioconvert ! audioresample \
             ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
             ! audiodenoise ! featextract ! queue ! f.audio_sink",
        );
    }
    let pipe = gst::parse::launch(&desc)
        .map_err(|e| format!("pipeline: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let src = pipe.by_name("src").ok_or("no filesrc")?;
    src.set_property("location", input.to_string_lossy().as_ref());
    Ok(pipe)
}

/// Runs the pipeline to the end of the file, printing a line per frame.
fn run(input: &Path, audio: bool) -> Result<Summary, String> {
    if !input.is_file() {
        return Err(format!("no such file: {}", input.display()));
    }
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    // Use an installed plugin if GST_PLUGIN_PATH has one, else the one built in.
    if gst::ElementFactory::find("avfuse").is_none() {
        gstaffect::plugin_register_static().map_err(|e| format!("plugin: {e}"))?;
    }
    let pipe = pipeline(input, audio)?;

    // Buffer metas, read in the streaming thread; printed from the main thread.
    let frames: Arc<Mutex<BTreeMap<u64, Frame>>> = Arc::default();
    let sink_pad = pipe
        .by_name("out")
        .and_then(|s| s.static_pad("sink"))
        .ok_or("no sink pad")?;
    let probe_frames = frames.clone();
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buf) = info.buffer() {
            let results = BufferResults {
                rois: face_rois(buf),
                meta: affect_meta_faces(buf)
                    .and_then(Result::ok)
                    .unwrap_or_default(),
            };
            let pts = buf.pts().map_or(u64::MAX, |t| t.nseconds());
            if let Ok(mut f) = probe_frames.lock() {
                f.entry(pts).or_default().buffer = Some(results);
            }
        }
        gst::PadProbeReturn::Ok
    });

    let bus = pipe.bus().ok_or("no bus")?;
    pipe.set_state(gst::State::Playing)
        .map_err(|_| first_error(&bus).unwrap_or_else(|| "cannot start the pipeline".into()))?;
    let mut summary = Summary::default();
    let mut result = Ok(());
    let mut idle = std::time::Duration::ZERO;
    loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            idle += std::time::Duration::from_millis(100);
            if idle > std::time::Duration::from_secs(60) {
                result = Err("no message for 60 s".to_string());
                break;
            }
            print_ready(&frames, &mut summary, false);
            continue;
        };
        idle = std::time::Duration::ZERO;
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(format!("{} ({})", e.error(), e.debug().unwrap_or_default()));
                break;
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure()
                    && s.name() == AffectMessage::NAME
                {
                    let m = AffectMessage::try_from(s)
                        .map_err(|e| format!("bad affect message: {e}"))?;
                    summary.messages += 1;
                    let pts = m.timestamp.map_or(u64::MAX, |t| t.nseconds());
                    if let Ok(mut f) = frames.lock() {
                        f.entry(pts).or_default().message = Some(m);
                    }
                }
            }
            _ => {}
        }
        print_ready(&frames, &mut summary, false);
    }
    let _ = pipe.set_state(gst::State::Null);
    result?;
    print_ready(&frames, &mut summary, true);
    println!(
        "summary: frames={} frames-with-faces={} face-records={} messages={} mismatches={} tracks={:?}",
        summary.frames,
        summary.frames_with_faces,
        summary.face_records,
        summary.messages,
        summary.mismatches,
        summary.tracks.iter().collect::<Vec<_>>()
    );
    Ok(summary)
}

/// Prints (and forgets) every frame whose buffer and message have both been seen, in
/// pts order; with `all`, the rest too.
fn print_ready(frames: &Mutex<BTreeMap<u64, Frame>>, summary: &mut Summary, all: bool) {
    let Ok(mut frames) = frames.lock() else {
        return;
    };
    let ready: Vec<u64> = frames
        .iter()
        .filter(|(_, f)| all || (f.buffer.is_some() && f.message.is_some()))
        .map(|(pts, _)| *pts)
        .collect();
    for pts in ready {
        if let Some(frame) = frames.remove(&pts) {
            print_frame(pts, &frame, summary);
        }
    }
}

/// One line per frame; counts a mismatch when the ROI params, the custom meta and the
/// message do not say the same about the frame's faces.
fn print_frame(pts: u64, frame: &Frame, summary: &mut Summary) {
    let empty = BufferResults::default();
    let buffer = frame.buffer.as_ref().unwrap_or(&empty);
    let message_faces = frame.message.as_ref().map_or(&[][..], |m| &m.faces[..]);
    // The three sources, each in track order (ROIs keep the order facecrop found faces in).
    let roi_faces = by_track(
        buffer
            .rois
            .iter()
            .filter_map(|r| r.affect.as_ref())
            .collect(),
    );
    let meta_faces = by_track(buffer.meta.iter().collect());
    let agree = frame.buffer.is_some()
        && frame.message.is_some()
        && meta_faces == by_track(message_faces.iter().collect())
        && roi_faces == meta_faces;
    if !agree {
        summary.mismatches += 1;
    }
    summary.frames += 1;
    summary.face_records += buffer.meta.len();
    if !buffer.meta.is_empty() {
        summary.frames_with_faces += 1;
    }
    let faces: Vec<String> = buffer
        .meta
        .iter()
        .map(|f| {
            summary.tracks.insert(f.track_id);
            format!(
                "[track {} {} v={:+.3} a={:+.3} at {:.0},{:.0} {:.0}x{:.0}]",
                f.track_id,
                f.expression(),
                f.valence,
                f.arousal,
                f.bbox.x,
                f.bbox.y,
                f.bbox.width,
                f.bbox.height
            )
        })
        .collect();
    println!(
        "frame {:.3} s: {} face{}{} rois={} meta={} message={}{}",
        pts as f64 / 1e9,
        buffer.meta.len(),
        if buffer.meta.len() == 1 { "" } else { "s" },
        faces.iter().map(|f| format!(" {f}")).collect::<String>(),
        buffer.rois.len(),
        buffer.meta.len(),
        message_faces.len(),
        if agree { "" } else { " MISMATCH" }
    );
}

/// Faces in track order.
fn by_track(mut faces: Vec<&FaceAffect>) -> Vec<&FaceAffect> {
    faces.sort_by_key(|f| f.track_id);
    faces
}

/// The first error message on the bus, if one comes within a second.
fn first_error(bus: &gst::Bus) -> Option<String> {
    bus.timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error])
        .and_then(|m| match m.view() {
            gst::MessageView::Error(e) => {
                Some(format!("{} ({})", e.error(), e.debug().unwrap_or_default()))
            }
            _ => None,
        })
}
