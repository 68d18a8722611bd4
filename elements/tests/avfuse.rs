// SPDX-License-Identifier: MPL-2.0
//! `avfuse`: end to end on real media (one record per frame per face, pts, ranges, track
//! ids, metas, messages), video-only, a requested but unlinked audio pad, late (1 s,
//! 2 s) / early-ending audio (audio mask through a probe fusion model), live with a
//! blocked audio branch (each frame out exactly at its running time + the reported
//! latency, on a test clock; a real live pipeline ends with every frame), EOS, flushing
//! seek, feature-model mismatch, CSV and smoothing, and the audio mask gated by voice
//! activity (`affect.fusion.audio-mask = speech`) on espeak-ng speech between silences.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use affect::EXPRESSIONS;
use affect::onnx::{Attr, Dim, GraphBuilder};
use affect::results::AffectRecord;
use gst::prelude::*;
use gstaffect::meta::{AffectMessage, affect_meta_faces};

/// A fusion model whose output shows its inputs: valence = audio mask, arousal = visual
/// mask of the newest frame; `expr` = the visual probabilities. Window `t`, no declared
/// feature models (the model check is skipped).
fn probe_model(dir: &Path, t: usize) -> PathBuf {
    mask_probe(dir, t, 96, None)
}

/// [`probe_model`] for `audio_dim`-d audio features, declaring
/// `affect.fusion.audio-mask = audio_mask` when given.
fn mask_probe(dir: &Path, t: usize, audio_dim: i64, audio_mask: Option<&str>) -> PathBuf {
    let mut g = GraphBuilder::new("mask-probe");
    let bt = |d: i64| [Dim::from("batch"), Dim::from("time"), Dim::Fixed(d)];
    let bt2 = [Dim::from("batch"), Dim::from("time")];
    g.input("visual", &bt(8))
        .input("audio", &bt(audio_dim))
        .input("visual_mask", &bt2)
        .input("audio_mask", &bt2)
        .output("va", &bt(2))
        .output("expr", &bt(8));
    g.constant_i64("last_axis", &[1], &[-1]);
    g.node("Unsqueeze", &["audio_mask", "last_axis"], &["am3"], &[])
        .node("Unsqueeze", &["visual_mask", "last_axis"], &["vm3"], &[])
        .node(
            "Concat",
            &["am3", "vm3"],
            &["va"],
            &[("axis", Attr::Int(-1))],
        )
        .node("Identity", &["visual"], &["expr"], &[]);
    g.meta("affect.contract", "1")
        .meta("affect.role", "fusion")
        .meta("affect.name", "mask-probe")
        .meta("affect.fusion.window", t.to_string())
        .meta("affect.fusion.visual-dim", "8")
        .meta("affect.fusion.audio-dim", audio_dim.to_string())
        .meta("affect.fusion.visual-input", "probabilities")
        .meta("affect.output.names", "va,expr")
        .meta("affect.output.labels", EXPRESSIONS.join(","));
    if let Some(m) = audio_mask {
        g.meta("affect.fusion.audio-mask", m);
    }
    let p = dir.join(format!(
        "mask-probe-{t}-{audio_dim}-{}.onnx",
        audio_mask.unwrap_or("default")
    ));
    g.write(&p).unwrap();
    p
}

fn read_records(path: &Path) -> Vec<AffectRecord> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "unterminated line");
    text.lines()
        .map(|l| AffectRecord::from_json_line(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn video_branch(file: &Path) -> String {
    format!(
        "filesrc location={} ! decodebin name=d d. ! queue ! videoconvert ! facecrop ! featextract ! queue",
        file.display()
    )
}

#[test]
fn end_to_end_one_record_per_frame_per_face() {
    let dir = common::scratch("avfuse-e2e");
    let ndjson = dir.join("out.ndjson");
    let media = common::media("single_face.mp4");
    let desc = format!(
        "{} ! avfuse name=f location={} ! fakesink name=out \
         d. ! queue ! audioconvert ! audioresample ! featextract ! queue ! f.audio_sink",
        video_branch(&media),
        ndjson.display()
    );
    let (frames, msgs) = common::run_pipeline(&desc, Some("affect")).unwrap();
    let records = read_records(&ndjson);
    assert!(frames.len() >= 60, "{} frames", frames.len());
    assert_eq!(msgs.len(), frames.len(), "one message per frame");
    let faces: usize = frames.iter().map(|f| f.rois.len()).sum();
    assert!(
        faces >= frames.len() * 9 / 10,
        "{faces} faces in {} frames",
        frames.len()
    );
    assert_eq!(records.len(), faces, "one record per face per frame");
    // Records follow the frames in order, with their pts and facecrop's track ids.
    let mut it = records.iter();
    for f in &frames {
        for roi in &f.rois {
            let r = it.next().unwrap();
            assert_eq!(Some(r.pts), f.pts.map(|t| t.nseconds()));
            assert_eq!(r.face.track_id, roi.track_id);
            let a = roi.affect.as_ref().expect("ROI has an affect param");
            assert_eq!(a.track_id, roi.track_id);
            assert!((a.valence - r.face.valence).abs() < 1e-6);
        }
    }
    for r in &records {
        assert!((-1.0..=1.0).contains(&r.face.valence) && (-1.0..=1.0).contains(&r.face.arousal));
        assert!(EXPRESSIONS.contains(&r.expression.as_str()));
        let sum: f32 = r.face.probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
        assert!(r.running_time.is_some() && r.duration.is_some());
    }
    // A smiling face: the baseline says Happiness, positive valence (most frames).
    let happy = records
        .iter()
        .filter(|r| r.expression == "Happiness")
        .count();
    assert!(happy * 2 > records.len(), "{happy}/{}", records.len());
    // Messages carry the same faces.
    for (m, f) in msgs.iter().zip(&frames) {
        let m = AffectMessage::try_from(m.as_ref()).unwrap();
        assert_eq!(m.timestamp, f.pts);
        assert_eq!(m.faces.len(), f.rois.len());
    }
}

/// Runs `desc` (ending in `fakesink name=out`) and returns, per output buffer, its pts
/// and the faces of its GstAffectMeta.
fn run_with_meta(desc: &str) -> Vec<(u64, Vec<affect::results::FaceAffect>)> {
    common::collect(desc, 120, |b| {
        let faces = affect_meta_faces(b)
            .expect("GstAffectMeta on every frame")
            .unwrap();
        (b.pts().map_or(0, |t| t.nseconds()), faces)
    })
}

#[test]
fn video_only_works_and_audio_is_masked() {
    let dir = common::scratch("avfuse-video-only");
    let probe = probe_model(&dir, 3);
    let media = common::media("single_face.mp4");
    let desc = format!(
        "{} ! avfuse model={} ! fakesink name=out",
        video_branch(&media),
        probe.display()
    );
    let out = run_with_meta(&desc);
    assert!(out.len() >= 60);
    let faces: Vec<_> = out.iter().flat_map(|(_, f)| f).collect();
    assert!(!faces.is_empty());
    for f in faces {
        assert_eq!(f.valence, 0.0, "audio mask 0 without audio");
        assert_eq!(f.arousal, 1.0, "visual mask 1");
    }
}

#[test]
fn requested_but_unlinked_audio_pad_does_not_stall_a_non_live_pipeline() {
    common::init();
    let dir = common::scratch("avfuse-unlinked-audio");
    let probe = probe_model(&dir, 3);
    let media = common::media("single_face.mp4");
    let desc = format!(
        "{} ! avfuse name=f model={} ! fakesink name=out sync=false",
        video_branch(&media),
        probe.display()
    );
    let pipe = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    // Requested (as an app that might add an audio branch would), never linked.
    let f = pipe.by_name("f").unwrap();
    let audio = f.request_pad_simple("audio_sink").unwrap();
    assert!(audio.peer().is_none());
    let run = run_collected(pipe);
    assert_eq!(
        run.outcome,
        Ok(()),
        "no EOS within 60 s: the unlinked audio pad stalled the video"
    );
    // single_face.mp4: 72 frames, one face in (nearly) every one.
    assert_eq!(run.frames.len(), 72, "every frame came out");
    let faces: Vec<_> = run.frames.iter().flatten().collect();
    assert!(faces.len() >= 65, "{} faces", faces.len());
    for f in faces {
        assert_eq!(f.valence, 0.0, "audio mask 0 for an unlinked audio pad");
        assert_eq!(f.arousal, 1.0, "visual mask 1");
    }
}

/// Runs single_face.mp4 through `avfuse` with the probe model (its valence is the audio
/// mask) and a pink-noise audio branch of `buffers` × 10 ms at 16 kHz starting
/// `start_s` seconds in; returns the audio mask of every face in frames whose pts lies
/// in each of `spans` (seconds, half-open), and the number of frames out.
fn audio_masks_with_audio_span(
    tag: &str,
    start_s: u64,
    buffers: u32,
    spans: &[(f64, f64)],
) -> (Vec<Vec<f32>>, usize) {
    let dir = common::scratch(tag);
    let probe = probe_model(&dir, 1);
    let media = common::media("single_face.mp4");
    let desc = format!(
        "{} ! avfuse name=f model={} ! fakesink name=out \
         audiotestsrc wave=pink-noise timestamp-offset={} samplesperbuffer=160 num-buffers={buffers} \
         ! audio/x-raw,rate=16000,channels=1 ! featextract model=oww-speech-embedding ! queue ! f.audio_sink",
        video_branch(&media),
        probe.display(),
        start_s * 1_000_000_000
    );
    let out = run_with_meta(&desc);
    let masks = spans
        .iter()
        .map(|&(lo, hi)| {
            out.iter()
                .filter(|(pts, _)| (lo..hi).contains(&(*pts as f64 / 1e9)))
                .flat_map(|(_, f)| f.iter().map(|f| f.valence))
                .collect()
        })
        .collect();
    (masks, out.len())
}

#[test]
fn late_and_early_ending_audio_give_mask_zero_there() {
    // Audio from 1.0 s to 2.0 s only (16 kHz, 100 buffers of 160 samples).
    // Window 0.78 s: vectors centred at 1.39 s .. ~1.61 s; lookahead 0.2 s.
    let (masks, n) = audio_masks_with_audio_span(
        "avfuse-late-audio",
        1,
        100,
        &[(0.0, 1.1), (1.4, 1.6), (1.9, 10.0)],
    );
    assert!(n >= 60, "{n}");
    let [before, during, after] = &masks[..] else {
        unreachable!()
    };
    assert!(!before.is_empty() && !during.is_empty() && !after.is_empty());
    assert!(before.iter().all(|m| *m == 0.0), "{before:?}");
    assert!(during.iter().all(|m| *m == 1.0), "{during:?}");
    assert!(after.iter().all(|m| *m == 0.0), "{after:?}");
}

#[test]
fn audio_starting_two_seconds_late_is_masked_until_its_first_vector() {
    // Audio from 2.0 s to 3.5 s (16 kHz, 150 buffers of 160 samples): the first speech
    // vector covers 2.0 .. 2.782 s (window 12512 samples), centre 2.391 s; with the
    // 0.2 s lookahead, frames whose centre is before 2.191 s have no audio vector in
    // reach (mask 0), later ones have (mask 1).
    let (masks, n) =
        audio_masks_with_audio_span("avfuse-audio-2s-late", 2, 150, &[(0.0, 2.1), (2.25, 10.0)]);
    assert_eq!(n, 72, "every frame came out");
    let [before, after] = &masks[..] else {
        unreachable!()
    };
    assert!(
        before.len() >= 55 && !after.is_empty(),
        "{} / {}",
        before.len(),
        after.len()
    );
    assert!(before.iter().all(|m| *m == 0.0), "{before:?}");
    assert!(after.iter().all(|m| *m == 1.0), "{after:?}");
}

/// The lookahead avfuse adds to the upstream latency by default (`mode=lookahead`).
const LOOKAHEAD: gst::ClockTime = gst::ClockTime::from_mseconds(200);
/// What the harnessed branches answer to LATENCY queries: live, with one 30 fps frame
/// (video) and 40 ms (audio) of minimum latency.
const VIDEO_UPSTREAM: gst::ClockTime = gst::ClockTime::from_nseconds(33_333_333);
const AUDIO_UPSTREAM: gst::ClockTime = gst::ClockTime::from_mseconds(40);
/// avfuse's live latency: the larger upstream minimum (the silent audio branch's) plus
/// the lookahead.
const LIVE_LATENCY: gst::ClockTime = gst::ClockTime::from_mseconds(240);
const LIVE_FRAMES: u64 = 45;

/// The pts (= running time: the segment starts at 0) of live frame `i` at 30 fps.
fn live_pts(i: u64) -> gst::ClockTime {
    gst::ClockTime::SECOND.mul_div_floor(i, 30).unwrap()
}

/// What `element` answers to a LATENCY query on its src pad: (live, min), or `None`.
fn latency_of(element: &gst::Element) -> Option<(bool, gst::ClockTime)> {
    let mut q = gst::query::Latency::new();
    element.static_pad("src").unwrap().query(&mut q).then(|| {
        let (live, min, _) = q.result();
        (live, min)
    })
}

/// avfuse on a `gst::TestClock`, its `video_sink`/`src` on one harness and its requested
/// `audio_sink` on a second one that never sends anything (a blocked audio branch). Both
/// harnesses answer LATENCY queries as live ([`VIDEO_UPSTREAM`], [`AUDIO_UPSTREAM`]).
///
/// Time moves only when the test releases a clock wait, so every deadline is checked
/// exactly: `out` holds, per buffer leaving avfuse, its pts and the clock's time then.
struct LiveAvFuse {
    avfuse: gst::Element,
    audio_pad: gst::Pad,
    clock: gst_check::TestClock,
    video: gst_check::Harness,
    _audio: gst_check::Harness,
    out: Arc<Mutex<Vec<(gst::ClockTime, gst::ClockTime)>>>,
}

impl LiveAvFuse {
    /// Starts avfuse and sends the video's stream start, caps and segment.
    ///
    /// `deny_audio_latency_until`: LATENCY queries into the audio branch fail until the
    /// clock reaches that time, as for a live source that has not negotiated yet.
    ///
    /// The harnesses are made empty and get their latency before they are linked, so no
    /// query ever sees another answer: `Harness::with_element` would start the element
    /// (and the aggregator's thread, which asks at once and keeps the answer) before
    /// `set_upstream_latency` could be called. For the same reason the test clock is set
    /// on the element here rather than with `use_testclock`, which needs the element in
    /// the harness. Without a denial the pads are linked before the element starts: the
    /// aggregator knows the live latency from its first query. With one, the element
    /// starts while nothing is linked, so its first answer is "not live" and its own
    /// thread does not ask again before the first video buffer: only avfuse's retry asks
    /// upstream while the answer changes. (In GstAggregator 1.22 a query that succeeds
    /// in another thread while the aggregator's thread is inside a failing one of its
    /// own does not wake that thread; never seen here, but a test that lets both ask at
    /// that moment would depend on thread timing.)
    fn new(deny_audio_latency_until: Option<gst::ClockTime>) -> Self {
        common::init();
        let avfuse = gst::ElementFactory::make("avfuse").build().unwrap();
        let audio_pad = avfuse.request_pad_simple("audio_sink").unwrap();
        let mut video = gst_check::Harness::new_empty();
        video.set_upstream_latency(VIDEO_UPSTREAM);
        let mut audio = gst_check::Harness::new_empty();
        audio.set_upstream_latency(AUDIO_UPSTREAM);
        let clock = video.testclock().unwrap();
        if let Some(until) = deny_audio_latency_until {
            let clock = clock.clone();
            audio_pad.add_probe(gst::PadProbeType::QUERY_UPSTREAM, move |_, info| {
                let is_latency = matches!(
                    info.query().map(|q| q.view()),
                    Some(gst::QueryView::Latency(_))
                );
                // A dropped query fails.
                if is_latency && clock.time() < until {
                    gst::PadProbeReturn::Drop
                } else {
                    gst::PadProbeReturn::Ok
                }
            });
        }
        let link = |video: &mut gst_check::Harness, audio: &mut gst_check::Harness| {
            // Audio first: once it is linked, a denied audio answer fails every query.
            audio.add_element_sink_pad(&audio_pad);
            video.add_element_sink_pad(&avfuse.static_pad("video_sink").unwrap());
            video.add_element_src_pad(&avfuse.static_pad("src").unwrap());
        };
        avfuse.set_clock(Some(&clock)).unwrap();
        if deny_audio_latency_until.is_none() {
            link(&mut video, &mut audio);
            avfuse.set_state(gst::State::Playing).unwrap();
        } else {
            avfuse.set_state(gst::State::Playing).unwrap();
            assert_eq!(
                latency_of(&avfuse),
                Some((false, LOOKAHEAD)),
                "nothing linked yet: not live"
            );
            link(&mut video, &mut audio);
        }
        let out = Arc::new(Mutex::new(Vec::new()));
        let (o2, c2) = (out.clone(), clock.clone());
        avfuse
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(b) = info.buffer() {
                    o2.lock().unwrap().push((b.pts().unwrap(), c2.time()));
                }
                gst::PadProbeReturn::Ok
            });
        assert!(video.push_event(gst::event::StreamStart::new("live-video")));
        video.set_src_caps(
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", 64i32)
                .field("height", 48i32)
                .field("framerate", gst::Fraction::new(30, 1))
                .build(),
        );
        LiveAvFuse {
            avfuse,
            audio_pad,
            clock,
            video,
            _audio: audio,
            out,
        }
    }

    /// Waits (up to 30 s of real time, against a hang) until exactly one wait is pending
    /// on the test clock, and returns the clock time it waits for.
    fn pending_wait(&self) -> gst::ClockTime {
        let (exactly_one, ids) = self.clock.timed_wait_for_multiple_pending_ids(1, 30_000);
        assert!(
            exactly_one,
            "{} clock waits pending, one expected",
            ids.len()
        );
        ids[0].time()
    }

    /// Pushes live frame `i` (no faces) and checks that avfuse holds it until exactly its
    /// running time + [`LIVE_LATENCY`] on the clock: its one clock wait is for that time
    /// and nothing has left before it is released. Then releases the wait (the clock
    /// moves to that time if it is not past it yet) and takes the frame.
    fn frame_through(&mut self, i: u64) {
        let mut buf = gst::Buffer::with_size(64 * 48 * 3 / 2).unwrap();
        {
            let b = buf.get_mut().unwrap();
            b.set_pts(live_pts(i));
            b.set_duration(live_pts(i + 1) - live_pts(i));
        }
        assert_eq!(self.video.push(buf), Ok(gst::FlowSuccess::Ok));
        let base = self.avfuse.base_time().unwrap();
        assert_eq!(
            self.pending_wait(),
            base + live_pts(i) + LIVE_LATENCY,
            "deadline of frame {i}"
        );
        assert!(self.video.try_pull().is_none(), "frame {i} left early");
        self.video.crank_single_clock_wait().unwrap();
        assert_eq!(self.video.pull().unwrap().pts(), Some(live_pts(i)));
    }

    /// Ends the video: avfuse must not wait for the silent audio (its one clock wait is
    /// for the latency past running time 0, long past) and sends EOS.
    fn finish(&mut self) {
        assert!(self.video.push_event(gst::event::Eos::new()));
        let base = self.avfuse.base_time().unwrap();
        assert_eq!(self.pending_wait(), base + LIVE_LATENCY, "EOS timeout");
        self.video.crank_single_clock_wait().unwrap();
        while self.video.pull_event().unwrap().type_() != gst::EventType::Eos {}
    }

    /// (pts, clock time) of every buffer that left avfuse.
    fn out(&self) -> Vec<(gst::ClockTime, gst::ClockTime)> {
        self.out.lock().unwrap().clone()
    }
}

impl Drop for LiveAvFuse {
    fn drop(&mut self) {
        let _ = self.avfuse.set_state(gst::State::Null);
        // The audio harness has no element to release its request pad with.
        self.avfuse.release_request_pad(&self.audio_pad);
    }
}

#[test]
fn live_blocked_audio_never_stalls_video_beyond_latency() {
    // The audio branch is linked and live but sends nothing. Each frame must leave
    // avfuse exactly when its running time + the reported latency is reached.
    let mut f = LiveAvFuse::new(None);
    let reported = latency_of(&f.avfuse);
    assert_eq!(reported, Some((true, LIVE_LATENCY)));
    assert_eq!(VIDEO_UPSTREAM.max(AUDIO_UPSTREAM) + LOOKAHEAD, LIVE_LATENCY);
    for i in 0..LIVE_FRAMES {
        f.frame_through(i);
    }
    f.finish();
    let base = f.avfuse.base_time().unwrap();
    let want: Vec<_> = (0..LIVE_FRAMES)
        .map(|i| (live_pts(i), base + live_pts(i) + LIVE_LATENCY))
        .collect();
    assert_eq!(f.out(), want, "(pts, clock time when it left avfuse)");
}

#[test]
fn live_audio_answering_latency_late_does_not_stall_video() {
    // The audio branch cannot tell its latency for the first 0.6 s (a live source before
    // it negotiates) and then sends nothing. The aggregator, unable to learn the latency
    // while the video starts, would wait for audio as if not live; avfuse must ask again
    // (after 0.1 s, then at doubling intervals, on the element's clock) and live
    // deadlines apply from the answer on. Before, the video stayed stuck until the state
    // change (seen on a loaded 2-core CI machine).
    let answers_from = gst::ClockTime::from_mseconds(600);
    let mut f = LiveAvFuse::new(Some(answers_from));
    let base = f.avfuse.base_time().unwrap();
    for retry_ms in [100, 300, 700] {
        assert_eq!(
            latency_of(&f.avfuse),
            None,
            "before the {retry_ms} ms retry"
        );
        assert_eq!(
            f.pending_wait(),
            base + gst::ClockTime::from_mseconds(retry_ms),
            "latency retry"
        );
        f.video.crank_single_clock_wait().unwrap();
    }
    let answered = base + gst::ClockTime::from_mseconds(700);
    assert_eq!(f.clock.time(), answered);
    assert_eq!(latency_of(&f.avfuse), Some((true, LIVE_LATENCY)));
    // Frames pushed from now on: those whose deadline has passed leave at once, the
    // others exactly at their deadline.
    for i in 0..LIVE_FRAMES {
        f.frame_through(i);
    }
    f.finish();
    let want: Vec<_> = (0..LIVE_FRAMES)
        .map(|i| {
            let deadline = base + live_pts(i) + LIVE_LATENCY;
            (live_pts(i), deadline.max(answered))
        })
        .collect();
    // Frames 0-13 had missed their deadline at 0.7 s; 14-44 leave on it.
    assert_eq!(f.out(), want, "(pts, clock time when it left avfuse)");
}

/// A real live pipeline whose audio branch sends nothing (a closed valve holds back even
/// its caps) and cannot tell its latency for its first 0.6 s: the stream ends, every one
/// of 45 frames comes out and avfuse reports a live latency that holds the 200 ms
/// lookahead. Nothing here depends on how fast the machine is; the exact deadlines are
/// checked on a test clock above.
#[test]
fn live_pipeline_with_a_silent_audio_branch_ends_with_every_frame() {
    common::init();
    let desc = "videotestsrc is-live=true num-buffers=45 ! video/x-raw,width=320,height=240,framerate=30/1 \
                ! avfuse name=f ! fakesink name=out sync=true \
                audiotestsrc is-live=true ! valve name=v drop=true ! f.audio_sink";
    let pipe = gst::parse::launch(desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let frames = Arc::new(Mutex::new(0usize));
    let f2 = frames.clone();
    pipe.by_name("out")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            *f2.lock().unwrap() += 1;
            gst::PadProbeReturn::Ok
        });
    let t0 = std::time::Instant::now();
    pipe.by_name("v")
        .unwrap()
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::QUERY_UPSTREAM, move |_, info| {
            let is_latency = matches!(
                info.query().map(|q| q.view()),
                Some(gst::QueryView::Latency(_))
            );
            // A dropped query fails.
            if is_latency && t0.elapsed() < std::time::Duration::from_millis(600) {
                gst::PadProbeReturn::Drop
            } else {
                gst::PadProbeReturn::Ok
            }
        });
    pipe.set_state(gst::State::Playing).unwrap();
    let bus = pipe.bus().unwrap();
    // A bound against a hang, not a timing check.
    let eos = common::wait_eos(&bus, 60);
    let reported = latency_of(&pipe.by_name("f").unwrap());
    pipe.set_state(gst::State::Null).unwrap();
    assert!(eos, "EOS with the audio branch blocked");
    assert_eq!(*frames.lock().unwrap(), 45, "every frame came out");
    let (live, min) = reported.expect("avfuse answers the latency query");
    assert!(live);
    assert!(min >= LOOKAHEAD, "lookahead not in the latency: {min}");
}

#[test]
fn pads_and_properties() {
    common::init();
    let e = gst::ElementFactory::make("avfuse")
        .property_from_str("mode", "causal")
        .build()
        .unwrap();
    assert_eq!(e.property::<u64>("lookahead"), 200_000_000);
    let p = e.request_pad_simple("audio_sink").unwrap();
    assert_eq!(p.name(), "audio_sink");
    assert!(e.static_pad("video_sink").is_some() && e.static_pad("src").is_some());
}

#[test]
fn eos_with_no_faces_and_flushing_seek() {
    common::init();
    let dir = common::scratch("avfuse-seek");
    let ndjson = dir.join("seek.ndjson");
    let media = common::media("single_face.mp4");
    let desc = format!(
        "{} ! avfuse name=f location={} ! fakesink name=out sync=false \
         d. ! queue ! audioconvert ! audioresample ! featextract ! queue ! f.audio_sink",
        video_branch(&media),
        ndjson.display()
    );
    let pipe = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipe.by_name("out").unwrap();
    let count = Arc::new(Mutex::new(0usize));
    let c2 = count.clone();
    sink.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            *c2.lock().unwrap() += 1;
            gst::PadProbeReturn::Ok
        });
    pipe.set_state(gst::State::Paused).unwrap();
    let bus = pipe.bus().unwrap();
    let _ = pipe.state(gst::ClockTime::from_seconds(30));
    pipe.set_state(gst::State::Playing).unwrap();
    // Let some frames through, then seek back to the start.
    let start = std::time::Instant::now();
    while *count.lock().unwrap() < 20 && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let before = *count.lock().unwrap();
    pipe.seek_simple(
        gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
        gst::ClockTime::ZERO,
    )
    .unwrap();
    let eos = common::wait_eos(&bus, 120);
    pipe.set_state(gst::State::Null).unwrap();
    assert!(eos);
    let total = *count.lock().unwrap();
    assert!(total >= before + 60, "{before} then {total}");
    // The records restart at pts 0 after the seek and stay well-formed.
    let records = read_records(&ndjson);
    let restarts = records.windows(2).filter(|w| w[1].pts < w[0].pts).count();
    assert!(restarts >= 1, "no pts restart in {} records", records.len());
}

#[test]
fn fusion_feature_model_mismatch_is_an_error_naming_both() {
    let dir = common::scratch("avfuse-mismatch");
    let (visual, audio) = affect::fusion::feature_refs(&affect::weights::weights_dir()).unwrap();
    let mut wrong = visual.clone();
    wrong.sha256 = "0".repeat(64);
    let path = dir.join("fusion-wrong.onnx");
    affect::fusion::build_baseline(&wrong, &audio)
        .write(&path)
        .unwrap();
    let desc = format!(
        "videotestsrc num-buffers=5 ! video/x-raw,width=320,height=240 ! facecrop ! featextract ! avfuse model={} ! fakesink name=out",
        path.display()
    );
    let err = common::run_pipeline(&desc, None).unwrap_err();
    assert!(err.contains(&"0".repeat(64)), "{err}");
    assert!(err.contains(&visual.sha256), "{err}");
    assert!(err.contains("fer-mini-xception"), "{err}");
    // A fusion model without declared feature models is not checked.
    let probe = probe_model(&dir, 1);
    let desc = format!(
        "videotestsrc num-buffers=5 ! video/x-raw,width=320,height=240 ! facecrop ! featextract ! avfuse model={} ! fakesink name=out",
        probe.display()
    );
    common::run_pipeline(&desc, None).unwrap();
    // The same for the audio side: featextract with another audio model file.
    let other = dir.join("other-audio.onnx");
    let mut bytes = std::fs::read(affect::weights::resolve_model("voice-prosody")).unwrap();
    // Another file (another sha256) that still loads: an unknown protobuf field appended
    // (field 1000, varint 0), which parsers skip.
    bytes.extend_from_slice(&[0xc0, 0x3e, 0x00]);
    std::fs::write(&other, &bytes).unwrap();
    let desc = format!(
        "videotestsrc num-buffers=5 ! video/x-raw,width=320,height=240 ! avfuse name=f ! fakesink name=out \
         audiotestsrc num-buffers=5 ! featextract model={} ! f.audio_sink",
        other.display()
    );
    let err = common::run_pipeline(&desc, None).unwrap_err();
    assert!(
        err.contains("voice-prosody") && err.contains(&audio.sha256),
        "{err}"
    );
}

#[test]
fn csv_files_and_smoothing() {
    let dir = common::scratch("avfuse-csv");
    let prefix = dir.join("clip");
    let ndjson = dir.join("smooth.ndjson");
    let raw = dir.join("raw.ndjson");
    let media = common::media("single_face.mp4");
    let run = |extra: &str, out: &Path| {
        let desc = format!(
            "{} ! avfuse location={} {extra} ! fakesink name=out",
            video_branch(&media),
            out.display()
        );
        common::run_pipeline(&desc, None).unwrap().0
    };
    let frames = run(&format!("csv-location={}", prefix.display()), &raw);
    run("smoothing=0.9", &ndjson);
    let mut ids: BTreeMap<u64, usize> = BTreeMap::new();
    for f in &frames {
        for r in &f.rois {
            *ids.entry(r.track_id).or_default() += 1;
        }
    }
    assert!(!ids.is_empty());
    for (id, n) in &ids {
        let va = std::fs::read_to_string(format!("{}_track{id}.va.csv", prefix.display())).unwrap();
        let expr =
            std::fs::read_to_string(format!("{}_track{id}.expr.csv", prefix.display())).unwrap();
        let va: Vec<&str> = va.lines().collect();
        let expr: Vec<&str> = expr.lines().collect();
        assert_eq!(va[0], "valence,arousal");
        assert_eq!(expr[0], EXPRESSIONS.join(","));
        assert_eq!(va.len() - 1, frames.len(), "one line per frame");
        assert_eq!(expr.len() - 1, frames.len());
        let valid = va[1..].iter().filter(|l| **l != "-5,-5").count();
        assert_eq!(valid, *n);
        for l in &expr[1..] {
            let k: i32 = l.parse().unwrap();
            assert!((-1..8).contains(&k));
        }
    }
    // Smoothing: the same values on average, smaller frame-to-frame steps.
    let step = |r: &[AffectRecord]| {
        r.windows(2)
            .filter(|w| w[0].face.track_id == w[1].face.track_id)
            .map(|w| (w[1].face.valence - w[0].face.valence).abs())
            .sum::<f32>()
    };
    let (a, b) = (read_records(&raw), read_records(&ndjson));
    assert_eq!(a.len(), b.len());
    assert!(step(&b) <= step(&a) + 1e-6, "{} vs {}", step(&b), step(&a));
}

/// The demo's sample clip (2.4 s, a face and speech) looped `passes` times without
/// re-encoding, as `bench/pipeline` does.
fn looped_sample(dir: &Path, passes: usize) -> PathBuf {
    let out = dir.join(format!("sample-x{passes}.mp4"));
    let media = common::media("sample.mp4");
    let srcs: String = (0..passes)
        .map(|i| {
            format!(
                " filesrc location={} ! qtdemux name=d{i} d{i}.video_0 ! queue ! cv. d{i}.audio_0 ! queue ! ca.",
                media.display()
            )
        })
        .collect();
    let desc = format!(
        "concat name=cv ! h264parse ! queue ! mp4mux name=m ! filesink name=out location={} \
         concat name=ca ! aacparse ! queue ! m.{srcs}",
        out.display()
    );
    common::run_pipeline(&desc, None).expect("looping the sample clip");
    out
}

/// The README's full audio-visual pipeline on `clip` with the mask probe (valence = the
/// audio mask of the frame), `video_delay_us` of sleep per frame on the video branch and
/// `audio_delay_us` per buffer on the audio branch; returns the NDJSON it wrote.
fn full_pipeline_ndjson(
    clip: &Path,
    probe: &Path,
    out: &Path,
    video_delay_us: u32,
    audio_delay_us: u32,
) -> String {
    let desc = format!(
        "filesrc location={} ! decodebin name=d \
         d. ! queue ! videoconvert ! facecrop ! queue ! featextract ! identity sleep-time={video_delay_us} ! queue \
         ! avfuse name=f model={} location={} ! fakesink name=out \
         d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
         ! identity sleep-time={audio_delay_us} ! audiodenoise ! featextract model=oww-speech-embedding ! queue ! f.audio_sink",
        clip.display(),
        probe.display(),
        out.display()
    );
    common::run_pipeline(&desc, None).expect("full pipeline");
    std::fs::read_to_string(out).unwrap()
}

/// A minute of media whatever the speed of each branch: audio on every frame after the
/// first speech window (the audio branch, which runs far ahead of the video one when
/// nothing holds it, once lost every vector more than 10 s ahead of the video), and the
/// same bytes whether the video or the audio branch is the slow one.
#[test]
fn a_minute_of_media_keeps_its_audio_on_every_frame_whatever_branch_is_slower() {
    let dir = common::scratch("avfuse-long");
    let probe = probe_model(&dir, 1);
    let clip = looped_sample(&dir, 25);
    let fast = full_pipeline_ndjson(&clip, &probe, &dir.join("fast.ndjson"), 0, 0);
    let records: Vec<AffectRecord> = fast
        .lines()
        .map(|l| AffectRecord::from_json_line(l).unwrap())
        .collect();
    // 25 × 72 frames, one face in (nearly) every one.
    assert!(records.len() >= 1700, "{} records", records.len());
    assert!(records.last().unwrap().pts > 59_000_000_000);
    // The first speech vector is centred 0.39 s into the audio (window 0.78 s); with the
    // 0.2 s lookahead the frames of the first 0.25 s (running time 0.18 s: the video's
    // segment starts 67 ms in) are out of its reach, every later frame has audio.
    let masked: Vec<f64> = records
        .iter()
        .filter(|r| r.pts >= 250_000_000 && r.face.valence != 1.0)
        .map(|r| r.pts as f64 / 1e9)
        .collect();
    assert!(
        masked.is_empty(),
        "{} of {} frames lost their audio, at {:?} s …",
        masked.len(),
        records.len(),
        &masked[..masked.len().min(10)]
    );
    let slow_video = full_pipeline_ndjson(&clip, &probe, &dir.join("slow-video.ndjson"), 3000, 0);
    assert!(
        fast == slow_video,
        "a slower video branch changed the output"
    );
    let slow_audio = full_pipeline_ndjson(&clip, &probe, &dir.join("slow-audio.ndjson"), 0, 1500);
    assert!(
        fast == slow_audio,
        "a slower audio branch changed the output"
    );
}

/// What a non-live run gave: EOS seen (else the error), the faces of every frame out
/// (GstAffectMeta) and the warnings posted.
struct Run {
    outcome: Result<(), String>,
    frames: Vec<Vec<affect::results::FaceAffect>>,
    warnings: Vec<String>,
}

impl Run {
    /// The valence of every face: the audio mask with the probe model.
    fn audio_masks(&self) -> Vec<f32> {
        self.frames.iter().flatten().map(|f| f.valence).collect()
    }
}

fn run_collecting(desc: &str) -> Run {
    common::init();
    run_collected(
        gst::parse::launch(desc)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap(),
    )
}

/// Runs `pipe` (with a sink named `out`) to EOS, an error or 60 s.
fn run_collected(pipe: gst::Pipeline) -> Run {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    pipe.by_name("out")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                let faces = affect_meta_faces(b).expect("GstAffectMeta").unwrap();
                s2.lock().unwrap().push(faces);
            }
            gst::PadProbeReturn::Ok
        });
    let mut warnings = Vec::new();
    let mut outcome = Err("no EOS within 60 s".to_string());
    if pipe.set_state(gst::State::Playing).is_ok() {
        for msg in pipe
            .bus()
            .unwrap()
            .iter_timed(gst::ClockTime::from_seconds(60))
        {
            match msg.view() {
                gst::MessageView::Eos(_) => {
                    outcome = Ok(());
                    break;
                }
                gst::MessageView::Error(e) => {
                    outcome = Err(e.error().to_string());
                    break;
                }
                gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
                _ => {}
            }
        }
    } else {
        outcome = Err("state change failed".into());
    }
    pipe.set_state(gst::State::Null).unwrap();
    let frames = std::mem::take(&mut *seen.lock().unwrap());
    Run {
        outcome,
        frames,
        warnings,
    }
}

/// Non-live audio branches that never deliver (a file without audio behind decodebin,
/// an idle appsrc, a closed valve) end the wait after `audio-timeout`: a warning, audio
/// mask 0 on every frame, every frame out, EOS.
#[test]
fn a_silent_non_live_audio_branch_ends_with_a_warning_not_a_hang() {
    let dir = common::scratch("avfuse-silent-audio");
    let probe = probe_model(&dir, 1);
    let video_only = dir.join("video-only.mp4");
    common::run_pipeline(
        &format!(
            "filesrc location={} ! qtdemux name=q q.video_0 ! h264parse ! mp4mux ! filesink name=out location={}",
            common::media("sample.mp4").display(),
            video_only.display()
        ),
        None,
    )
    .unwrap();
    let audio_branch = "audio/x-raw,format=F32LE,rate=48000,channels=1 ! audiodenoise ! featextract ! queue ! f.audio_sink";
    let cases = [
        // The README's pipeline on a file without audio, default timeout: decodebin never
        // links the audio branch.
        (
            "video-only file",
            video_only.clone(),
            String::new(),
            format!("d. ! queue ! audioconvert ! audioresample ! {audio_branch}"),
        ),
        (
            "idle appsrc",
            common::media("single_face.mp4"),
            " audio-timeout=1000000000".into(),
            format!(
                "appsrc is-live=false caps=audio/x-raw,format=F32LE,rate=48000,channels=1,layout=interleaved ! {audio_branch}"
            ),
        ),
        (
            "closed valve",
            common::media("single_face.mp4"),
            " audio-timeout=1000000000".into(),
            format!("audiotestsrc ! valve drop=true ! {audio_branch}"),
        ),
    ];
    for (what, clip, timeout, audio) in cases {
        let run = run_collecting(&format!(
            "filesrc location={} ! decodebin name=d d. ! queue ! videoconvert ! facecrop ! featextract ! queue \
             ! avfuse name=f model={}{timeout} ! fakesink name=out {audio}",
            clip.display(),
            probe.display()
        ));
        assert_eq!(run.outcome, Ok(()), "{what}");
        assert_eq!(run.frames.len(), 72, "{what}: every frame came out");
        let masks = run.audio_masks();
        assert!(masks.len() >= 65, "{what}");
        assert!(masks.iter().all(|m| *m == 0.0), "{what}");
        assert!(
            run.warnings
                .iter()
                .any(|w| w.contains("audio_sink received nothing") && w.contains("audio mask 0")),
            "{what}: {:?}",
            run.warnings
        );
    }
}

/// Pipelines missing a `featextract` are refused instead of inventing results: faces
/// without face features, raw audio without audio features. A wrong feature model is
/// found inside a bin and behind a tee too (the `affect-features` event travels through
/// both).
#[test]
fn a_pipeline_without_featextract_or_with_the_wrong_one_is_an_error() {
    let media = common::media("sample.mp4");
    let run = run_collecting(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! facecrop ! avfuse ! fakesink name=out",
        media.display()
    ));
    let err = run.outcome.unwrap_err();
    assert!(
        err.contains("faces without face features") && err.contains("facecrop ! featextract"),
        "{err}"
    );
    assert!(run.frames.is_empty(), "no invented results");

    let run = run_collecting(&format!(
        "{} ! avfuse name=f ! fakesink name=out d. ! queue ! audioconvert ! audioresample ! queue ! f.audio_sink",
        video_branch(&media)
    ));
    let err = run.outcome.unwrap_err();
    assert!(err.contains("audio without audio features"), "{err}");

    // The audio featextract on the video branch (and the face one missing).
    let run = run_collecting(
        "videotestsrc num-buffers=5 ! video/x-raw,width=320,height=240 ! avfuse name=f ! fakesink name=out \
         audiotestsrc num-buffers=5 ! featextract ! tee name=t ! queue ! fakesink t. ! queue ! f.audio_sink",
    );
    assert_eq!(run.outcome, Ok(()), "the right model behind a tee");

    let dir = common::scratch("avfuse-wrong-in-bin");
    let (visual, _) = affect::fusion::feature_refs(&affect::weights::weights_dir()).unwrap();
    let other = dir.join("other-face.onnx");
    let mut bytes = std::fs::read(affect::weights::resolve_model("fer-mini-xception")).unwrap();
    bytes.extend_from_slice(&[0xc0, 0x3e, 0x00]); // another sha256, still loadable
    std::fs::write(&other, &bytes).unwrap();
    let run = run_collecting(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! facecrop \
         ! bin.( featextract model={} ) ! tee name=t ! queue ! fakesink t. ! queue ! avfuse ! fakesink name=out",
        media.display(),
        other.display()
    ));
    let err = run.outcome.unwrap_err();
    assert!(
        err.contains("fusion-baseline")
            && err.contains(&visual.sha256)
            && err.contains("fer-mini-xception"),
        "{err}"
    );
}

/// A full disk (here a file-size limit on `gst-launch-1.0`, which makes the kernel write
/// part of a line and then refuse): a clear error naming the file, and an NDJSON file
/// that ends at a line end, every line whole.
#[test]
fn a_full_disk_leaves_only_whole_lines_in_the_ndjson() {
    let dir = common::scratch("avfuse-full-disk");
    let ndjson = dir.join("out.ndjson");
    let out = std::process::Command::new("bash")
        .arg("-c")
        // 6 KiB: ~18 lines of ~340 bytes, the limit falls inside a line.
        .arg("trap '' XFSZ; ulimit -f 6; exec gst-launch-1.0 \"$@\"")
        .arg("gst-launch-1.0")
        .args(
            format!(
                "filesrc location={} ! decodebin ! videoconvert ! facecrop ! featextract ! avfuse location={} ! fakesink",
                common::media("sample.mp4").display(),
                ndjson.display()
            )
            .split(' '),
        )
        .env("GST_PLUGIN_PATH", common::plugin_dir())
        .output()
        .expect("gst-launch-1.0 (make setup)");
    let log =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("NDJSON")
            && log.contains(&ndjson.display().to_string())
            && log.contains("File too large"),
        "{log}"
    );
    let text = std::fs::read_to_string(&ndjson).unwrap();
    assert!(text.len() > 4096 && text.len() <= 6144, "{}", text.len());
    assert!(text.ends_with('\n'), "a partial last line");
    for l in text.lines() {
        AffectRecord::from_json_line(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
}

/// Silence before and after the espeak-ng speech of [`speech_between_silences`] (s).
const LEAD_S: f64 = 2.0;
const TRAIL_S: f64 = 2.5;

/// espeak-ng speech with `LEAD_S` s of digital silence before it and `TRAIL_S` s after
/// (22050 Hz mono WAV); returns the file and the speech's end (s).
fn speech_between_silences(dir: &Path) -> (PathBuf, f64) {
    let speech = dir.join("speech.wav");
    let st = std::process::Command::new("espeak-ng")
        .args(["-w"])
        .arg(&speech)
        .arg("Hello there. How are you doing today? I am fine, thank you very much.")
        .status()
        .expect("espeak-ng runs (make setup installs it)");
    assert!(st.success());
    let wav = affect::audio::synth::parse_wav(&std::fs::read(&speech).unwrap()).unwrap();
    let speech_s = wav.samples.len() as f64 / f64::from(wav.rate);
    let padded = dir.join("padded.wav");
    let st = std::process::Command::new("sox")
        .arg(&speech)
        .arg(&padded)
        .args(["pad", &LEAD_S.to_string(), &TRAIL_S.to_string()])
        .status()
        .expect("sox runs (make setup installs it)");
    assert!(st.success());
    (padded, LEAD_S + speech_s)
}

/// The padded speech through `audio` (elements between `audioresample` and
/// `featextract model=voice-prosody`) into avfuse with a mask probe declaring
/// `audio_mask`; the pipeline, ending in `fakesink name=out`, and the speech's end (s).
fn gated_pipeline(tag: &str, audio: &str, audio_mask: Option<&str>) -> (String, f64) {
    let dir = common::scratch(tag);
    let probe = mask_probe(&dir, 1, 164, audio_mask);
    let (wav, speech_end) = speech_between_silences(&dir);
    let desc = format!(
        "{} ! avfuse name=f model={} ! fakesink name=out \
         filesrc location={} ! wavparse ! audioconvert ! audioresample {audio} \
         ! featextract model=voice-prosody ! queue ! f.audio_sink",
        common::still_face_branch(speech_end + TRAIL_S, 10),
        probe.display(),
        wav.display()
    );
    (desc, speech_end)
}

/// The audio mask (probe valence) of every face in frames whose pts lies in each of
/// `spans` (s, half-open).
fn masks_in(
    out: &[(u64, Vec<affect::results::FaceAffect>)],
    spans: &[(f64, f64)],
) -> Vec<Vec<f32>> {
    spans
        .iter()
        .map(|&(lo, hi)| {
            out.iter()
                .filter(|(pts, _)| (lo..hi).contains(&(*pts as f64 / 1e9)))
                .flat_map(|(_, f)| f.iter().map(|f| f.valence))
                .collect()
        })
        .collect()
}

/// `affect.fusion.audio-mask = speech`: the audio mask follows the voice activity of
/// `audiodenoise` — high on frames whose 1 s prosody window lies in the speech, near
/// 0 in the silences around it — while a `present` model (the default) sees mask 1
/// wherever audio features exist, speech or not.
#[test]
fn a_speech_gated_model_sees_the_audio_mask_follow_voice_activity() {
    let denoise = "! audio/x-raw,format=F32LE,rate=48000 ! audiodenoise vad=silero";
    let (desc, end) = gated_pipeline("avfuse-gate-speech", denoise, Some("speech"));
    let out = run_with_meta(&desc);
    assert!(
        out.len() as f64 >= (end + TRAIL_S) * 10.0 - 2.0,
        "{} frames",
        out.len()
    );
    // Vector windows are 1 s, centred on their time: frames 0.5 s into the speech see
    // only speech; frames more than 0.5 s (+ one 80 ms hop) from it see only silence.
    let spans = [
        (0.3, LEAD_S - 0.6),
        (LEAD_S + 0.5, end - 0.5),
        (end + 0.6, end + TRAIL_S - 0.3),
    ];
    let masks = masks_in(&out, &spans);
    let [before, during, after] = &masks[..] else {
        unreachable!()
    };
    assert!(before.len() >= 10 && during.len() >= 10 && after.len() >= 10);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(before.iter().all(|m| *m < 0.05), "{before:?}");
    assert!(after.iter().all(|m| *m < 0.05), "{after:?}");
    // Speech windows also hold espeak-ng's pauses between sentences: 0.66 .. 0.97 here.
    assert!(mean(during) > 0.7, "{during:?}");
    assert!(during.iter().all(|m| *m > 0.5), "{during:?}");
    // Never outside [0, 1], and values in between at the speech's edges.
    let all: Vec<f32> = out
        .iter()
        .flat_map(|(_, f)| f.iter().map(|f| f.valence))
        .collect();
    assert!(all.iter().all(|m| (0.0..=1.0).contains(m)), "{all:?}");
    assert!(all.iter().any(|m| (0.2..0.8).contains(m)), "{all:?}");

    // The same audio, a model without the key: mask 1 wherever a vector is in reach.
    let (desc, end) = gated_pipeline("avfuse-gate-present", denoise, None);
    let out = run_with_meta(&desc);
    let masks = masks_in(&out, &[(0.4, end + TRAIL_S - 0.6)]);
    assert!(masks[0].len() >= 50, "{}", masks[0].len());
    assert!(masks[0].iter().all(|m| *m == 1.0), "{:?}", masks[0]);
}

/// A speech-gated model on an audio branch without `audiodenoise`: one warning that
/// says where to put it, and the audio used ungated (mask 1).
#[test]
fn a_speech_gated_model_without_voice_activity_warns_once_and_stays_ungated() {
    let (desc, _) = gated_pipeline("avfuse-gate-no-vad", "", Some("speech"));
    let run = run_collecting(&desc);
    assert_eq!(run.outcome, Ok(()));
    let masks = run.audio_masks();
    assert!(masks.len() >= 50, "{}", masks.len());
    // Frames before the first vector is in reach (and after the last) are masked;
    // every other frame has mask 1.
    assert!(masks.iter().all(|m| *m == 0.0 || *m == 1.0), "{masks:?}");
    let ones = masks.iter().filter(|m| **m == 1.0).count();
    assert!(
        ones + 10 >= masks.len(),
        "{ones} of {}: {masks:?}",
        masks.len()
    );
    let vad: Vec<_> = run
        .warnings
        .iter()
        .filter(|w| w.contains("voice-activity"))
        .collect();
    assert_eq!(vad.len(), 1, "{:?}", run.warnings);
    assert!(
        vad[0].contains("audiodenoise before featextract"),
        "{}",
        vad[0]
    );
}
