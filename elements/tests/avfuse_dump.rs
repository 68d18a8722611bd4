// SPDX-License-Identifier: MPL-2.0
//! `avfuse dump-location`: the dumped rows are exactly what the fusion model read.
//!
//! The default model (`fusion-baseline`, window 1) is recomputed in plain Rust
//! (`affect::fusion::baseline_frame`) from each dumped row; the result must equal the
//! valence/arousal avfuse wrote to NDJSON for that frame and track (1e-5). Also: one row
//! per output video frame with its pts, the face box, metadata, and a template without
//! `%u` refused at start.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use affect::dataset::FeatureFile;
use affect::results::AffectRecord;

fn read_records(path: &Path) -> Vec<AffectRecord> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| AffectRecord::from_json_line(l).unwrap())
        .collect()
}

fn dumps(dir: &Path) -> BTreeMap<u64, FeatureFile> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if let Some(id) = name
            .strip_prefix("track")
            .and_then(|s| s.strip_suffix(".safetensors"))
        {
            out.insert(id.parse().unwrap(), FeatureFile::read(&p).unwrap());
        }
    }
    out
}

#[test]
fn dumped_rows_reproduce_the_ndjson_results() {
    let dir = common::scratch("avfuse-dump");
    let dump_dir = dir.join("dump");
    let ndjson = dir.join("out.ndjson");
    let media = common::media("sample.mp4");
    let desc = format!(
        "filesrc location={} ! decodebin name=d \
         d. ! queue ! videoconvert ! facecrop ! featextract ! queue \
         ! avfuse name=f location={} dump-location={}/track%u.safetensors ! fakesink name=out \
         d. ! queue ! audioconvert ! audioresample ! featextract ! queue ! f.audio_sink",
        media.display(),
        ndjson.display(),
        dump_dir.display()
    );
    let (frames, _) = common::run_pipeline(&desc, None).unwrap();
    let records = read_records(&ndjson);
    let files = dumps(&dump_dir);
    assert!(frames.len() >= 30, "{} frames", frames.len());
    assert!(!records.is_empty());
    assert!(!files.is_empty(), "no dump file");
    let (vref, aref) = affect::fusion::feature_refs(&affect::weights::weights_dir()).unwrap();
    for (id, f) in &files {
        // One row per output frame, with the frame's pts.
        assert_eq!(f.frames(), frames.len(), "track {id}");
        for (i, fr) in frames.iter().enumerate() {
            if f.active[i] > 0.0 || f.visual_mask[i] > 0.0 {
                assert_eq!(
                    f.pts[i],
                    fr.pts.unwrap().nseconds() as i64,
                    "track {id} row {i}"
                );
            }
        }
        assert_eq!((f.visual_dim, f.audio_dim), (8, 164));
        assert_eq!(f.meta.track, id.to_string());
        assert_eq!(f.meta.visual_input, "probabilities");
        assert_eq!(f.meta.visual_model, vref.name);
        assert_eq!(f.meta.visual_sha256, vref.sha256);
        assert_eq!(f.meta.audio_sha256, aref.sha256);
        assert!(f.meta.fps > 1.0, "fps {}", f.meta.fps);
    }
    // Every NDJSON record: the baseline on the dumped row gives its va.
    let mut speech_rows = 0;
    for r in &records {
        let f = files
            .get(&r.face.track_id)
            .unwrap_or_else(|| panic!("no dump for track {}", r.face.track_id));
        let i = f
            .pts
            .iter()
            .position(|&p| p == r.pts as i64)
            .unwrap_or_else(|| panic!("no row with pts {}", r.pts));
        assert_eq!(f.active[i], 1.0);
        assert_eq!(
            f.boxes[i],
            [
                r.face.bbox.x,
                r.face.bbox.y,
                r.face.bbox.width,
                r.face.bbox.height
            ]
        );
        // The window avfuse gave the model: the rows up to this one, at most T of them
        // (rows before the track existed have masks 0 and add nothing).
        let rows = i.saturating_sub(affect::fusion::vocal::WINDOW - 1)..=i;
        let visual: Vec<&[f32]> = rows.clone().map(|j| f.visual_row(j)).collect();
        let audio: Vec<&[f32]> = rows.clone().map(|j| f.audio_row(j)).collect();
        let (va, _) = *affect::fusion::baseline_window(
            &visual,
            &f.visual_mask[rows.clone()],
            &audio,
            &f.audio_mask[rows],
        )
        .last()
        .unwrap();
        assert!(
            (va[0] - r.face.valence).abs() <= 1e-5 && (va[1] - r.face.arousal).abs() <= 1e-5,
            "track {} pts {}: dumped row gives {va:?}, avfuse said ({}, {})",
            r.face.track_id,
            r.pts,
            r.face.valence,
            r.face.arousal
        );
        if f.audio_mask[i] > 0.0 && f.visual_mask[i] > 0.0 {
            speech_rows += 1;
        }
    }
    // The clip has speech over the face: rows with both modalities exist, so the check
    // covered the audio term too.
    assert!(speech_rows > 0, "no row with both masks set");
    // Rows without a record (track absent) carry no face.
    let total_rows: usize = files.values().map(|f| f.frames()).sum();
    let active_rows: usize = files
        .values()
        .map(|f| f.active.iter().filter(|&&a| a > 0.0).count())
        .sum();
    assert!(active_rows >= records.len() && active_rows <= total_rows);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn template_without_track_id_is_refused() {
    let dir = common::scratch("avfuse-dump-bad");
    let desc = format!(
        "videotestsrc num-buffers=3 ! video/x-raw,width=320,height=240 ! facecrop ! featextract \
         ! avfuse dump-location={}/dump.safetensors ! fakesink name=out",
        dir.display()
    );
    let err = common::run_pipeline(&desc, None).unwrap_err();
    assert!(err.contains("has no %u"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fusion model with memory: at every step, valence = tanh(0.5 · Σ over the window of
/// visual_mask · visual[4] (Happiness)), arousal = tanh(0.01 · Σ audio_mask · audio[0]);
/// `expr` = the visual probabilities. Window `t`; no declared feature models; reads
/// `lookahead` future frames (`affect.fusion.lookahead-frames`) when not 0.
fn window_model(path: &Path, t: usize, lookahead: usize) {
    use affect::onnx::{Attr, Dim, GraphBuilder};
    let mut g = GraphBuilder::new("window-sum");
    let bt = |d: i64| [Dim::from("batch"), Dim::from("time"), Dim::Fixed(d)];
    let bt2 = [Dim::from("batch"), Dim::from("time")];
    g.input("visual", &bt(8))
        .input("audio", &bt(96))
        .input("visual_mask", &bt2)
        .input("audio_mask", &bt2)
        .output("va", &bt(2))
        .output("expr", &bt(8));
    g.constant("zero", &[], &[0.0]);
    g.constant("kv", &[], &[0.5]);
    g.constant("ka", &[], &[0.01]);
    g.constant_i64("last_axis", &[1], &[-1]);
    g.constant_i64("time_axis", &[1], &[1]);
    g.constant_i64("s4", &[1], &[4]);
    g.constant_i64("e5", &[1], &[5]);
    g.constant_i64("s0", &[1], &[0]);
    g.constant_i64("e1", &[1], &[1]);
    g.node("Unsqueeze", &["visual_mask", "last_axis"], &["vm3"], &[])
        .node("Unsqueeze", &["audio_mask", "last_axis"], &["am3"], &[])
        .node(
            "Slice",
            &["visual", "s4", "e5", "last_axis"],
            &["happy"],
            &[],
        )
        .node("Slice", &["audio", "s0", "e1", "last_axis"], &["a0"], &[])
        .node("Mul", &["happy", "vm3"], &["hv"], &[])
        .node("Mul", &["a0", "am3"], &["aa"], &[])
        .node(
            "ReduceSum",
            &["hv", "time_axis"],
            &["hs"],
            &[("keepdims", Attr::Int(1))],
        )
        .node(
            "ReduceSum",
            &["aa", "time_axis"],
            &["as_"],
            &[("keepdims", Attr::Int(1))],
        )
        .node("Mul", &["hs", "kv"], &["hk"], &[])
        .node("Mul", &["as_", "ka"], &["ak"], &[])
        .node(
            "Concat",
            &["hk", "ak"],
            &["sums"],
            &[("axis", Attr::Int(-1))],
        )
        .node(
            "Concat",
            &["vm3", "am3"],
            &["masks"],
            &[("axis", Attr::Int(-1))],
        )
        .node("Mul", &["masks", "zero"], &["zeros"], &[])
        .node("Add", &["zeros", "sums"], &["pre"], &[])
        .node("Tanh", &["pre"], &["va"], &[])
        .node("Identity", &["visual"], &["expr"], &[]);
    g.meta("affect.contract", "1")
        .meta("affect.role", "fusion")
        .meta("affect.name", "window-sum")
        .meta("affect.fusion.window", t.to_string())
        .meta("affect.fusion.visual-dim", "8")
        .meta("affect.fusion.audio-dim", "96")
        .meta("affect.fusion.visual-input", "probabilities")
        .meta("affect.output.names", "va,expr")
        .meta("affect.output.labels", affect::EXPRESSIONS.join(","));
    if lookahead > 0 {
        g.meta("affect.fusion.lookahead-frames", lookahead.to_string());
    }
    g.write(path).unwrap();
}

/// With a window of 24 frames on a clip whose face leaves (the track is dropped after
/// 15 absent frames): the model run on `frame_windows` of the dump, read at the newest
/// step, gives avfuse's NDJSON values — the dump plus the window rule are what avfuse fed.
#[test]
fn windowed_model_reproduced_from_the_dump() {
    windowed_model_matches_the_dump(0);
}

/// The same with a model that reads 20 future frames: avfuse holds each frame until 20
/// later ones are in (longer than the 15 frames after which the leaving face's track is
/// dropped, so frames wait on a dropped track too) and flushes the last 20 at EOS with the
/// context that exists; every frame comes out, in order, and each result equals the model
/// on `frame_windows_ahead` of the dump — what `affect-train eval --mode stream` runs.
#[test]
fn lookahead_model_holds_frames_and_matches_eval_stream() {
    windowed_model_matches_the_dump(20);
}

fn windowed_model_matches_the_dump(lookahead: usize) {
    use affect::runtime::{Model, Role, SessionConfig};
    let dir = common::scratch(&format!("avfuse-dump-window-{lookahead}"));
    let t = 24;
    let model_path = dir.join("window-sum.onnx");
    window_model(&model_path, t, lookahead);
    let dump_dir = dir.join("dump");
    let ndjson = dir.join("out.ndjson");
    let media = common::media("face_noface.mov");
    let desc = format!(
        "filesrc location={} ! decodebin name=d \
         d. ! queue ! videoconvert ! facecrop ! featextract ! queue \
         ! avfuse name=f model={} location={} dump-location={}/track%u.safetensors ! fakesink name=out \
         d. ! queue ! audioconvert ! audioresample ! featextract ! queue ! f.audio_sink",
        media.display(),
        model_path.display(),
        ndjson.display(),
        dump_dir.display()
    );
    let (frames, _) = common::run_pipeline(&desc, None).unwrap();
    // Every frame out, in order.
    let pts: Vec<_> = frames.iter().map(|f| f.pts.unwrap()).collect();
    assert!(pts.windows(2).all(|w| w[0] < w[1]), "frames out of order");
    let records = read_records(&ndjson);
    let files = dumps(&dump_dir);
    assert!(!records.is_empty() && !files.is_empty());
    let mut model =
        Model::load(&model_path, Some(Role::Fusion), &SessionConfig::default()).unwrap();
    let mut dropped_seen = false;
    for (id, f) in &files {
        assert_eq!(f.frames(), frames.len());
        // The face leaves: the track is dropped (active 0) some frames after its last face.
        dropped_seen |= f.active.contains(&0.0);
        let set = affect::dataset::layout::frame_windows_ahead(f, 0..f.frames(), t, lookahead);
        let v = ndarray::Array3::from_shape_vec((set.n, t, 8), set.visual).unwrap();
        let a = ndarray::Array3::from_shape_vec((set.n, t, 96), set.audio).unwrap();
        let vm = ndarray::Array2::from_shape_vec((set.n, t), set.visual_mask).unwrap();
        let am = ndarray::Array2::from_shape_vec((set.n, t), set.audio_mask).unwrap();
        let (v, a, vm, am) = (v.into_dyn(), a.into_dyn(), vm.into_dyn(), am.into_dyn());
        let out = model
            .run_f32(&[
                ("visual", v.view()),
                ("audio", a.view()),
                ("visual_mask", vm.view()),
                ("audio_mask", am.view()),
            ])
            .unwrap();
        let va = &out["va"];
        let mut checked = 0;
        for r in records.iter().filter(|r| r.face.track_id == *id) {
            let i = f.pts.iter().position(|&p| p == r.pts as i64).unwrap();
            let got = [va[[i, t - 1, 0]], va[[i, t - 1, 1]]];
            assert!(
                (got[0] - r.face.valence).abs() <= 1e-5 && (got[1] - r.face.arousal).abs() <= 1e-5,
                "track {id} frame {i}: from the dump {got:?}, avfuse ({}, {})",
                r.face.valence,
                r.face.arousal
            );
            checked += 1;
        }
        assert!(checked > t, "track {id}: {checked} records");
    }
    assert!(
        dropped_seen,
        "no dropped track: the window-reset rule was not exercised"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The LATENCY query holds the model's lookahead frames: K frame durations on top of the
/// audio lookahead (200 ms) and upstream's latency.
#[test]
fn lookahead_frames_are_in_the_latency() {
    use gst::prelude::*;
    let dir = common::scratch("avfuse-lookahead-latency");
    let model_path = dir.join("window-sum.onnx");
    window_model(&model_path, 8, 3);
    common::init();
    let desc = format!(
        "videotestsrc is-live=true name=src ! video/x-raw,width=64,height=48,framerate=25/1 \
         ! avfuse name=f model={} ! fakesink",
        model_path.display()
    );
    let pipe = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    pipe.set_state(gst::State::Playing).unwrap();
    let bus = pipe.bus().unwrap();
    // Wait for the first buffers (caps known), then ask.
    let _ = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(5),
        &[gst::MessageType::AsyncDone],
    );
    let latency = |name: &str| {
        let mut q = gst::query::Latency::new();
        assert!(
            pipe.by_name(name)
                .unwrap()
                .static_pad("src")
                .unwrap()
                .query(&mut q)
        );
        q.result()
    };
    let (live, min, _) = latency("f");
    let (_, upstream, _) = latency("src");
    pipe.set_state(gst::State::Null).unwrap();
    assert!(live);
    assert_eq!(
        min - upstream,
        gst::ClockTime::from_mseconds(200 + 3 * 40),
        "avfuse adds the 200 ms audio lookahead and 3 frames of 40 ms"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
