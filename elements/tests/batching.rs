// SPDX-License-Identifier: MPL-2.0
//! Cross-stream batching on CPU (`max-batch=8`): several pipelines' requests share runs
//! (counted), the results equal those of unbatched sessions within 1e-5, a pipeline that
//! stops (paused mid-stream) does not hold the others, and the batching latency is in the
//! LATENCY answer.
//!
//! Its own test binary: the session counters are the whole process's.

mod common;

use gst::prelude::*;

const BATCH: &str = "max-batch=8 max-batch-latency=20000000";

fn run_to_eos(p: &gst::Pipeline, what: &str) {
    common::play_all_to_eos(std::slice::from_ref(p), 180, what);
    p.set_state(gst::State::Null).unwrap();
}

#[test]
fn batched_runs_give_unbatched_results_and_a_stopped_stream_holds_nobody() {
    let dir = common::scratch("batching");
    let reference = dir.join("exclusive.ndjson");
    run_to_eos(
        &common::sample_av_pipeline(&reference, "share-session=false"),
        "reference",
    );
    let want = common::ndjson_records(&reference);
    assert!(want.len() >= 60);

    // Four batched pipelines at once.
    let outs: Vec<_> = (0..4).map(|i| dir.join(format!("b{i}.ndjson"))).collect();
    let pipes: Vec<_> = outs
        .iter()
        .map(|o| common::sample_av_pipeline(o, BATCH))
        .collect();
    common::play_all_to_eos(&pipes, 180, "a batched run");
    let sessions = affect::runtime::shared_sessions();
    for p in &pipes {
        p.set_state(gst::State::Null).unwrap();
    }
    drop(pipes);
    // Requests of several pipelines did share runs.
    let shared: Vec<_> = sessions
        .iter()
        .filter(|s| s.batched_runs < s.batched_requests)
        .map(|s| s.name.as_str())
        .collect();
    assert!(!shared.is_empty(), "no run held two requests: {sessions:?}");
    for o in &outs {
        common::assert_same_records(
            &common::ndjson_records(o),
            &want,
            1e-5,
            &o.display().to_string(),
        );
    }

    // A pipeline that stops (paused after its first frames, so it never asks again)
    // beside one that runs to the end: the running one is not held.
    let stopped = common::sample_av_pipeline(&dir.join("stopped.ndjson"), BATCH);
    stopped.set_state(gst::State::Paused).unwrap();
    let (r, _, _) = stopped.state(gst::ClockTime::from_seconds(60));
    r.expect("prerolled");
    let running_out = dir.join("running.ndjson");
    run_to_eos(
        &common::sample_av_pipeline(&running_out, BATCH),
        "beside a stopped pipeline",
    );
    stopped.set_state(gst::State::Null).unwrap();
    common::assert_same_records(
        &common::ndjson_records(&running_out),
        &want,
        1e-5,
        "beside a stopped pipeline",
    );
}

/// The minimum latency `el` (with `props`) answers behind a live 30 fps source.
fn min_latency(el: &str, props: &str) -> u64 {
    let desc = format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! {el} {props} name=e ! fakesink"
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let (r, _, _) = p.state(gst::ClockTime::from_seconds(30));
    r.unwrap();
    let e = p.by_name("e").unwrap();
    let mut q = gst::query::Latency::new();
    assert!(
        e.static_pad("src").unwrap().query(&mut q),
        "{el}: latency query"
    );
    let (live, min, _) = q.result();
    p.set_state(gst::State::Null).unwrap();
    assert!(live);
    min.nseconds()
}

#[test]
fn batching_latency_is_reported() {
    common::init();
    for el in ["facecrop", "featextract"] {
        // The source's own latency (one frame), then the same plus the batching wait.
        let base = min_latency(el, "");
        assert_eq!(base, 33_333_333, "{el}");
        assert_eq!(min_latency(el, BATCH), base + 20_000_000, "{el}");
        // max-batch=0 (auto) on CPU: batching off, nothing added.
        assert_eq!(min_latency(el, "max-batch-latency=20000000"), base, "{el}");
    }
}
