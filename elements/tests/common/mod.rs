// SPDX-License-Identifier: MPL-2.0
//! Shared set-up for the element tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Once;

/// Initialises GStreamer and registers the plugin statically (no GST_PLUGIN_PATH needed).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstaffect::plugin_register_static().expect("plugin registers");
    });
}

/// Waits for EOS on `bus` (true) or `secs` seconds (false, a bound against a hang);
/// panics on an error message.
pub fn wait_eos(bus: &gst::Bus, secs: u64) -> bool {
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(secs)) {
        match msg.view() {
            gst::MessageView::Eos(_) => return true,
            gst::MessageView::Error(e) => panic!("{} {:?}", e.error(), e.debug()),
            _ => {}
        }
    }
    false
}

/// Runs `desc` (a pipeline whose sink is named `out`) to EOS, at most `secs` seconds,
/// and returns what `read` made of each buffer reaching `out`.
pub fn collect<T: Send + 'static>(
    desc: &str,
    secs: u64,
    read: impl Fn(&gst::BufferRef) -> T + Send + Sync + 'static,
) -> Vec<T> {
    use gst::prelude::*;
    init();
    let pipe = gst::parse::launch(desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let g2 = got.clone();
    pipe.by_name("out")
        .expect("a sink named out")
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                g2.lock().unwrap().push(read(b));
            }
            gst::PadProbeReturn::Ok
        });
    pipe.set_state(gst::State::Playing).unwrap();
    let bus = pipe.bus().unwrap();
    assert!(wait_eos(&bus, secs), "no EOS within {secs} s");
    pipe.set_state(gst::State::Null).unwrap();
    std::mem::take(&mut *got.lock().unwrap())
}

/// The workspace root (the repository).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The python of a pinned test venv: runs `tests/python/<script>` (creates the venv in
/// the cache folder once, checks its pins) and returns the path it prints; panics with
/// the script's output when it fails.
pub fn venv_python(script: &str) -> PathBuf {
    let out = std::process::Command::new("bash")
        .arg(root().join("tests/python").join(script))
        .env("AFFECT_CACHE_DIR", affect::runtime::cache_dir())
        .output()
        .expect("runs bash");
    assert!(
        out.status.success(),
        "tests/python/{script} failed (needs Debian's python3-venv and the package registry once):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A fresh scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gst-affect-{}-{}", name, std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The folder holding `libgstaffect.so` (target/<profile>), found from the test binary's path.
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target/<profile>
    exe.parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .expect("target dir")
}

/// A file of the test media cache (`make setup` fills it); panics with the fix if missing.
pub fn media(name: &str) -> PathBuf {
    let p = affect::runtime::cache_dir().join("media").join(name);
    assert!(
        p.exists(),
        "test media {} is missing: run `make setup`",
        p.display()
    );
    p
}

/// What a sink saw on one buffer.
#[derive(Debug, Clone)]
pub struct SeenFrame {
    /// Buffer pts.
    pub pts: Option<gst::ClockTime>,
    /// Face ROIs.
    pub rois: Vec<gstaffect::meta::FaceRoi>,
    /// (track id, width, height, bytes) of each face crop meta.
    pub crops: Vec<(u64, u32, u32, usize)>,
}

/// Reads the metas of a buffer.
pub fn seen(buf: &gst::BufferRef) -> SeenFrame {
    SeenFrame {
        pts: buf.pts(),
        rois: gstaffect::meta::face_rois(buf),
        crops: buf
            .iter_meta::<gstaffect::meta::FaceCropMeta>()
            .map(|m| {
                let d = m.data();
                (d.track_id, d.width, d.height, d.rgb.len())
            })
            .collect(),
    }
}

/// Runs a `gst-launch` style pipeline ending in a sink named `out` (fakesink: appsink holds EOS until drained) to EOS and returns
/// every buffer's metas plus the element messages named `message` (if any), or the error.
pub fn run_pipeline(
    desc: &str,
    message: Option<&str>,
) -> Result<(Vec<SeenFrame>, Vec<gst::Structure>), String> {
    use gst::prelude::*;
    init();
    let pipe = gst::parse::launch(desc)
        .map_err(|e| format!("parse: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let sink = pipe.by_name("out").ok_or("no appsink named out")?;
    let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let f2 = frames.clone();
    let sink_pad = sink.static_pad("sink").ok_or("no sink pad")?;
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buf) = info.buffer() {
            f2.lock().unwrap().push(seen(buf));
        }
        gst::PadProbeReturn::Ok
    });
    let bus = pipe.bus().ok_or("no bus")?;
    if pipe.set_state(gst::State::Playing).is_err() {
        // The element error that made the state change fail is on the bus (read it
        // before going to NULL, which flushes the bus).
        let err = bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
            .and_then(|m| match m.view() {
                gst::MessageView::Error(e) => {
                    Some(format!("{} ({})", e.error(), e.debug().unwrap_or_default()))
                }
                _ => None,
            })
            .unwrap_or_else(|| "state change failed without an error message".into());
        let _ = pipe.set_state(gst::State::Null);
        return Err(err);
    }
    let mut msgs = Vec::new();
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(format!("{} ({})", e.error(), e.debug().unwrap_or_default()));
                break;
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure()
                    && Some(s.name().as_str()) == message
                {
                    msgs.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    pipe.set_state(gst::State::Null)
        .map_err(|e| format!("state: {e}"))?;
    result?;
    let frames = std::mem::take(&mut *frames.lock().unwrap());
    Ok((frames, msgs))
}

/// Intersection over union of two boxes given as (x0, y0, x1, y1).
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: [f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

/// A face ROI's box as (x0, y0, x1, y1).
pub fn corners(r: &gstaffect::meta::FaceRoi) -> [f32; 4] {
    [
        r.bbox.x,
        r.bbox.y,
        r.bbox.x + r.bbox.width,
        r.bbox.y + r.bbox.height,
    ]
}

/// A still face at `fps` frames per second for `seconds` (`single_face.jpg` frozen),
/// through `facecrop ! featextract ! queue`: the video branch of an `avfuse` pipeline
/// whose face never changes.
pub fn still_face_branch(seconds: f64, fps: u32) -> String {
    format!(
        "filesrc location={} ! jpegdec ! imagefreeze num-buffers={} ! video/x-raw,framerate={fps}/1 \
         ! videoconvert ! facecrop ! featextract ! queue",
        media("single_face.jpg").display(),
        (seconds * f64::from(fps)).round() as u64
    )
}

/// The README's audio-visual pipeline on the sample clip (file → facecrop → featextract;
/// audiodenoise → featextract → avfuse), with `props` added to every model-running
/// element and NDJSON written to `out`.
pub fn sample_av_pipeline(out: &std::path::Path, props: &str) -> gst::Pipeline {
    use gst::prelude::*;
    init();
    let desc = format!(
        "filesrc location={} ! decodebin name=d \
         d. ! queue ! videoconvert ! facecrop {props} ! queue ! featextract {props} ! queue \
         ! avfuse name=f {props} location={} ! fakesink \
         d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
         ! audiodenoise vad=silero {} ! featextract {props} ! queue ! f.audio_sink",
        media("sample.mp4").display(),
        out.display(),
        // audiodenoise's Silero model has no batch axis (its state is per stream).
        props
            .split_whitespace()
            .filter(|p| !p.starts_with("max-batch"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap()
}

/// The records of an NDJSON file `avfuse` wrote.
pub fn ndjson_records(path: &std::path::Path) -> Vec<affect::results::AffectRecord> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| affect::results::AffectRecord::from_json_line(l).unwrap())
        .collect()
}

/// Asserts two runs gave the same records, values within `tol`.
pub fn assert_same_records(
    got: &[affect::results::AffectRecord],
    want: &[affect::results::AffectRecord],
    tol: f32,
    what: &str,
) {
    assert_eq!(got.len(), want.len(), "{what}: record count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.pts, g.face.track_id), (w.pts, w.face.track_id), "{what}");
        let diffs = [
            (g.face.valence - w.face.valence).abs(),
            (g.face.arousal - w.face.arousal).abs(),
        ];
        let probs = g
            .face
            .probabilities
            .iter()
            .zip(&w.face.probabilities)
            .map(|(a, b)| (a - b).abs());
        let worst = diffs.into_iter().chain(probs).fold(0.0f32, f32::max);
        assert!(worst <= tol, "{what} pts {}: differs by {worst}", g.pts);
    }
}

/// Sets every pipeline of `pipes` PLAYING, then waits for each one's EOS (`secs` each);
/// the pipelines stay PLAYING (the caller may look at them before stopping them).
pub fn play_all_to_eos(pipes: &[gst::Pipeline], secs: u64, what: &str) {
    use gst::prelude::*;
    for p in pipes {
        p.set_state(gst::State::Playing).unwrap();
    }
    for p in pipes {
        assert!(wait_eos(&p.bus().unwrap(), secs), "{what}: no EOS");
    }
}
