// SPDX-License-Identifier: MPL-2.0
//! The README's full audio-visual pipeline (decode → facecrop → featextract → avfuse →
//! affectoverlay → H.264, audio → audiodenoise → featextract) under GStreamer's `leaks`
//! tracer: no GStreamer object (buffer, memory, event, overlay rectangle, element…) is
//! still alive when `gst-launch-1.0` exits.

mod common;

#[test]
fn full_pipeline_leaks_no_gstreamer_object() {
    let dir = common::scratch("leaks");
    let desc = format!(
        "filesrc location={} ! decodebin name=d \
         d. ! queue ! videoconvert ! facecrop ! queue ! featextract ! queue \
         ! avfuse name=f location={} ! affectoverlay ! videoconvert ! openh264enc ! h264parse ! mp4mux \
         ! filesink location={} \
         d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
         ! audiodenoise ! featextract ! queue ! f.audio_sink",
        common::media("sample.mp4").display(),
        dir.join("out.ndjson").display(),
        dir.join("out.mp4").display()
    );
    let out = std::process::Command::new("gst-launch-1.0")
        .arg("-q")
        .args(desc.split_whitespace())
        .env("GST_PLUGIN_PATH", common::plugin_dir())
        .env("GST_TRACERS", "leaks")
        .env("GST_DEBUG", "GST_TRACER:7")
        .env("GST_DEBUG_NO_COLOR", "1")
        .output()
        .expect("gst-launch-1.0 (make setup)");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    // The tracer ran: it declared its record type.
    assert!(log.contains("object-alive.class"), "leaks tracer inactive");
    let alive: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("object-alive, type-name=(string)") && !l.contains("format string"))
        .collect();
    assert!(
        alive.is_empty(),
        "{} GStreamer object(s) alive at exit, e.g. {:?}",
        alive.len(),
        &alive[..alive.len().min(3)]
    );
    let records = std::fs::read_to_string(dir.join("out.ndjson")).unwrap();
    assert!(records.lines().count() >= 65, "the pipeline ran");
}
