// SPDX-License-Identifier: MPL-2.0
//! Many streams in one process: 8 full audio-visual pipelines on the sample clip, running
//! at the same time, hold one ONNX Runtime session per model (counted), and give the same
//! results as a pipeline whose elements have sessions of their own.
//!
//! Its own test binary: the count is of the whole process.

mod common;

use std::path::Path;

use affect::results::AffectRecord;
use gst::prelude::*;

/// The README's pipeline (file → facecrop → featextract, audiodenoise → featextract →
/// avfuse), every model-running element with `share-session=share`, NDJSON to `out`.
fn pipeline(out: &Path, share: bool) -> gst::Pipeline {
    let s = format!("share-session={share}");
    let desc = format!(
        "filesrc location={} ! decodebin name=d \
         d. ! queue ! videoconvert ! facecrop {s} ! queue ! featextract {s} ! queue \
         ! avfuse name=f {s} location={} ! fakesink \
         d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
         ! audiodenoise vad=silero {s} ! featextract {s} ! queue ! f.audio_sink",
        common::media("sample.mp4").display(),
        out.display()
    );
    gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap()
}

fn records(path: &Path) -> Vec<AffectRecord> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| AffectRecord::from_json_line(l).unwrap())
        .collect()
}

#[test]
fn eight_pipelines_share_one_session_per_model_and_give_the_same_results() {
    common::init();
    let dir = common::scratch("shared-sessions");
    // Reference: one pipeline with sessions of its own.
    let reference = dir.join("exclusive.ndjson");
    let p = pipeline(&reference, false);
    p.set_state(gst::State::Playing).unwrap();
    assert!(common::wait_eos(&p.bus().unwrap(), 120), "reference run");
    assert!(
        affect::runtime::shared_sessions().is_empty(),
        "exclusive sessions are not shared"
    );
    p.set_state(gst::State::Null).unwrap();
    let want = records(&reference);
    assert!(want.len() >= 60, "{} records", want.len());

    // 8 pipelines at once; count the sessions while all of them are loaded.
    let outs: Vec<_> = (0..8)
        .map(|i| dir.join(format!("shared-{i}.ndjson")))
        .collect();
    let pipes: Vec<_> = outs.iter().map(|o| pipeline(o, true)).collect();
    for p in &pipes {
        p.set_state(gst::State::Paused).unwrap();
    }
    for p in &pipes {
        let (r, _, _) = p.state(gst::ClockTime::from_seconds(60));
        r.expect("prerolled");
    }
    let sessions = affect::runtime::shared_sessions();
    let names: Vec<(&str, usize)> = sessions
        .iter()
        .map(|s| (s.name.as_str(), s.users))
        .collect();
    // facecrop, audiodenoise, avfuse: one each per pipeline; featextract: two per
    // pipeline, one per model.
    assert_eq!(
        names,
        [
            ("blazeface-full", 8),
            ("fer-mini-xception", 8),
            ("fusion-baseline", 8),
            ("silero-vad", 8),
            ("voice-prosody", 8),
        ],
        "{sessions:?}"
    );
    for p in &pipes {
        p.set_state(gst::State::Playing).unwrap();
    }
    for p in &pipes {
        assert!(
            common::wait_eos(&p.bus().unwrap(), 300),
            "a shared run ended"
        );
    }
    for p in &pipes {
        p.set_state(gst::State::Null).unwrap();
    }
    drop(pipes);
    assert!(
        affect::runtime::shared_sessions().is_empty(),
        "the sessions go with the elements"
    );
    for o in &outs {
        let got = records(o);
        assert_eq!(got.len(), want.len(), "{}", o.display());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((g.pts, g.face.track_id), (w.pts, w.face.track_id));
            assert!(
                (g.face.valence - w.face.valence).abs() <= 1e-5
                    && (g.face.arousal - w.face.arousal).abs() <= 1e-5,
                "{} pts {}: ({}, {}) vs ({}, {})",
                o.display(),
                g.pts,
                g.face.valence,
                g.face.arousal,
                w.face.valence,
                w.face.arousal
            );
            for (a, b) in g.face.probabilities.iter().zip(&w.face.probabilities) {
                assert!((a - b).abs() <= 1e-5);
            }
        }
    }
}
