// SPDX-License-Identifier: MPL-2.0
//! Many streams in one process: 8 full audio-visual pipelines on the sample clip, running
//! at the same time, hold one ONNX Runtime session per model (counted), and give the same
//! results as a pipeline whose elements have sessions of their own.
//!
//! Its own test binary: the count is of the whole process.

mod common;

use gst::prelude::*;

#[test]
fn eight_pipelines_share_one_session_per_model_and_give_the_same_results() {
    let dir = common::scratch("shared-sessions");
    // Reference: one pipeline with sessions of its own.
    let reference = dir.join("exclusive.ndjson");
    let p = common::sample_av_pipeline(&reference, "share-session=false");
    common::play_all_to_eos(std::slice::from_ref(&p), 120, "reference run");
    assert!(
        affect::runtime::shared_sessions().is_empty(),
        "exclusive sessions are not shared"
    );
    p.set_state(gst::State::Null).unwrap();
    let want = common::ndjson_records(&reference);
    assert!(want.len() >= 60, "{} records", want.len());

    // 8 pipelines at once; count the sessions while all of them are loaded.
    let outs: Vec<_> = (0..8)
        .map(|i| dir.join(format!("shared-{i}.ndjson")))
        .collect();
    let pipes: Vec<_> = outs
        .iter()
        .map(|o| common::sample_av_pipeline(o, ""))
        .collect();
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
    common::play_all_to_eos(&pipes, 300, "a shared run");
    for p in &pipes {
        p.set_state(gst::State::Null).unwrap();
    }
    drop(pipes);
    assert!(
        affect::runtime::shared_sessions().is_empty(),
        "the sessions go with the elements"
    );
    for o in &outs {
        let got = common::ndjson_records(o);
        common::assert_same_records(&got, &want, 1e-5, &o.display().to_string());
    }
}
