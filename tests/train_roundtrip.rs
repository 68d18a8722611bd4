// SPDX-License-Identifier: MPL-2.0
//! `affect-train` on a tiny Aff-Wild2-layout folder made here from the registry test
//! media (single_face.mp4, face_noface.mov, sample.mp4) with hand-written annotations
//! holding invalid frames: `extract` through the real elements (gst-launch-1.0 and
//! libgstaffect.so), `eval` of the baseline fusion model through ONNX Runtime, and a
//! pipeline run whose NDJSON equals eval's predictions on the dumped features.
//!
//! Needs the binary (feature `train`) and the plugin built in the same target folder
//! (`cargo build -p gst-plugin-affect`), or GST_PLUGIN_PATH naming its folder.
#![cfg(feature = "train")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use affect::dataset::annotations::{read_va, write_expr, write_va};
use affect::dataset::{DataRoot, FeatureFile, Split, Task};
use affect::results::AffectRecord;
use affect::runtime::FeatureModelRef;

const BIN: &str = env!("CARGO_BIN_EXE_affect-train");

fn plugin_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("GST_PLUGIN_PATH") {
        for d in std::env::split_paths(&p) {
            if d.join("libgstaffect.so").is_file() {
                return d;
            }
        }
    }
    let d = Path::new(BIN).parent().unwrap().to_owned();
    assert!(
        d.join("libgstaffect.so").is_file(),
        "libgstaffect.so is not in {} and GST_PLUGIN_PATH does not name it: cargo build -p gst-plugin-affect",
        d.display()
    );
    d
}

fn media(name: &str) -> PathBuf {
    let p = affect::runtime::cache_dir().join("media").join(name);
    assert!(p.is_file(), "{} missing: run make setup", p.display());
    p
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("affect-train-rt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn affect_train(args: &[&str], registry: &Path) -> Output {
    affect_train_with_path(args, registry, None)
}

/// [`affect_train`] with `PATH` replaced by `path` when given.
fn affect_train_with_path(args: &[&str], registry: &Path, path: Option<&Path>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_REGISTRY", registry);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    cmd.output().expect("affect-train runs")
}

/// A folder for `PATH` holding only gst-launch-1.0 (a link to the one on `PATH`): no
/// gst-discoverer-1.0, whether or not this machine has one.
fn path_with_gst_launch_only(dir: &Path) -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("gst-launch-1.0"))
        .find(|p| p.is_file())
        .expect("gst-launch-1.0 on PATH (make setup)");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(found, bin.join("gst-launch-1.0")).unwrap();
    bin
}

fn ok(o: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "affect-train failed: {text}");
    text
}

/// `affect-train extract --videos VIDEOS --out DATA` followed by `extra`.
fn run_extract(videos: &Path, data: &Path, extra: &[&str], registry: &Path) -> Output {
    let mut args = vec![
        "extract",
        "--videos",
        videos.to_str().unwrap(),
        "--out",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    affect_train(&args, registry)
}

/// [`run_extract`] without extra arguments, which must succeed; its output.
fn extract(videos: &Path, data: &Path, registry: &Path) -> String {
    ok(&run_extract(videos, data, &[], registry))
}

fn failed(o: &Output) -> String {
    assert!(!o.status.success(), "affect-train should have failed");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a `gst-launch-1.0` description (media preparation) to its end.
fn gst_launch(desc: &str) {
    let o = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(desc.split_whitespace())
        .output()
        .expect("gst-launch-1.0 runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Hand-written labels: a slow valence/arousal curve, every 10th frame invalid (-5);
/// expressions cycling every 12 frames, every 11th frame invalid (-1). `extra` frames
/// more than the video has (Aff-Wild2 files are often off by one).
fn annotate(root: &DataRoot, name: &str, split: Split, frames: usize) {
    let va: Vec<[f32; 2]> = (0..frames)
        .map(|i| {
            if i % 10 == 3 {
                [-5.0, -5.0]
            } else {
                let x = i as f32;
                [0.5 * (x / 9.0).sin(), 0.3 * (x / 7.0).cos()]
            }
        })
        .collect();
    let ex: Vec<i64> = (0..frames)
        .map(|i| {
            if i % 11 == 5 {
                -1
            } else {
                ((i / 12) % 8) as i64
            }
        })
        .collect();
    write_va(
        &root
            .annotation_dir(Task::Va, split)
            .join(format!("{name}.txt")),
        &va,
    )
    .unwrap();
    write_expr(
        &root
            .annotation_dir(Task::Expr, split)
            .join(format!("{name}.txt")),
        &ex,
    )
    .unwrap();
}

/// Runs the inference pipeline of `extract` (and `make demo`: face mesh on) on `video`
/// with avfuse writing NDJSON; `model` = avfuse's fusion model (default: the baseline).
fn pipeline_records(
    video: &Path,
    model: Option<&Path>,
    ndjson: &Path,
    registry: &Path,
) -> Vec<AffectRecord> {
    let model = model
        .map(|m| format!(" model={}", m.display()))
        .unwrap_or_default();
    let desc = format!(
        "filesrc location={} ! decodebin name=d \
         d. ! queue ! videoconvert ! facecrop mesh=true ! featextract ! queue \
         ! avfuse name=f{model} location={} ! fakesink sync=false \
         d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
         ! audiodenoise ! featextract ! queue ! f.audio_sink",
        video.display(),
        ndjson.display()
    );
    let o = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(desc.split_whitespace())
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_REGISTRY", registry)
        .output()
        .expect("gst-launch-1.0 runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(ndjson)
        .unwrap()
        .lines()
        .map(|l| AffectRecord::from_json_line(l).unwrap())
        .collect()
}

/// Every NDJSON record's va equals eval's prediction for the dumped row of its pts.
fn assert_same(records: &[AffectRecord], features: &FeatureFile, eval_va: &[[f32; 2]], what: &str) {
    assert_eq!(eval_va.len(), features.frames(), "{what}");
    for r in records {
        let i = features
            .pts
            .iter()
            .position(|&p| p == r.pts as i64)
            .unwrap_or_else(|| panic!("{what}: pts {} not dumped", r.pts));
        let e = eval_va[i];
        assert!(
            (e[0] - r.face.valence).abs() <= 1e-5 && (e[1] - r.face.arousal).abs() <= 1e-5,
            "{what} frame {i}: eval {e:?}, pipeline ({}, {})",
            r.face.valence,
            r.face.arousal
        );
    }
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn extract_eval_and_pipeline_agree() {
    let dir = scratch("main");
    let registry = dir.join("registry.bin");
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    for m in ["single_face.mp4", "face_noface.mov", "sample.mp4"] {
        std::fs::copy(media(m), videos.join(m)).unwrap();
    }
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let root = DataRoot::new(&data).unwrap();
    // Lengths a little off the videos' (72, 169, 72 frames): trimmed to the common prefix.
    annotate(&root, "single_face", Split::Train, 73);
    annotate(&root, "face_noface", Split::Train, 160);
    annotate(&root, "sample", Split::Validation, 72);

    // --- extract ---
    let out = extract(&videos, &data, &registry);
    assert!(out.contains("extracted 3 feature file(s)"), "{out}");
    let (vref, aref) = affect::fusion::feature_refs(&affect::weights::weights_dir()).unwrap();
    let sample = FeatureFile::read(&root.feature_path("sample")).unwrap();
    assert_eq!(sample.frames(), 72, "one row per video frame");
    assert_eq!((sample.visual_dim, sample.audio_dim), (8, 164));
    assert_eq!(sample.meta.visual_sha256, vref.sha256);
    assert_eq!(sample.meta.audio_sha256, aref.sha256);
    assert_eq!(sample.meta.source, "sample.mp4");
    assert!(
        sample.visual_mask.iter().all(|&m| m == 1.0),
        "face in every frame"
    );
    // Voice-activity-gated audio masks (the default fusion model's kind), recorded.
    assert_eq!(sample.meta.audio_mask, "speech");
    assert!(
        sample.audio_mask.iter().all(|m| (0.0..=1.0).contains(m)),
        "masks in [0, 1]"
    );
    assert!(
        sample.audio_mask.iter().filter(|&&m| m > 0.5).count() > 20,
        "speech aligned: {:?}",
        sample.audio_mask
    );
    // face_noface: the face leaves, the rows stay (masked).
    let fnf = FeatureFile::read(&root.feature_path("face_noface")).unwrap();
    let faces = fnf.visual_mask.iter().filter(|&&m| m > 0.0).count();
    assert!(
        faces > 20 && faces + 20 < fnf.frames(),
        "{faces} of {}",
        fnf.frames()
    );

    // --- eval (baseline model) equals the baseline recomputed in Rust on the features ---
    let model = affect::weights::weights_dir().join("fusion-baseline.onnx");
    let json = dir.join("eval.json");
    let preds = dir.join("pred");
    let text = ok(&affect_train(
        &[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--task",
            "va",
            "--split",
            "train",
            "--json",
            json.to_str().unwrap(),
            "--predictions",
            preds.to_str().unwrap(),
        ],
        &registry,
    ));
    assert!(
        text.contains("single_face: annotation has 73 frames, features 72"),
        "{text}"
    );
    let j = read_json(&json);
    let subjects = root.load(Task::Va, Split::Train, None).unwrap();
    let (mut p, mut t) = (Vec::new(), Vec::new());
    for s in &subjects {
        let f = &s.features;
        // Each subject fits one window of the baseline: one causal pass gives every frame.
        assert!(s.frames() <= affect::fusion::vocal::WINDOW);
        let visual: Vec<&[f32]> = (0..s.frames()).map(|i| f.visual_row(i)).collect();
        let audio: Vec<&[f32]> = (0..s.frames()).map(|i| f.audio_row(i)).collect();
        let out = affect::fusion::baseline_window(
            &visual,
            &f.visual_mask[..s.frames()],
            &audio,
            &f.audio_mask[..s.frames()],
        );
        p.extend(out.into_iter().map(|(va, _)| va));
        let affect::dataset::Labels::Va(l) = &s.labels else {
            unreachable!()
        };
        t.extend_from_slice(l);
    }
    let want = affect::metrics::va_ccc(&p, &t).unwrap();
    // 72 + 160 frames, 10 % invalid.
    assert_eq!(j["frames"].as_u64(), Some(232));
    assert_eq!(j["ccc"]["frames"].as_u64(), Some(want.frames as u64));
    for k in ["valence", "arousal", "mean"] {
        let got = j["ccc"][k].as_f64().unwrap();
        let w = match k {
            "valence" => want.valence,
            "arousal" => want.arousal,
            _ => want.mean,
        };
        assert!((got - w).abs() < 1e-5, "{k}: eval {got}, Rust baseline {w}");
    }

    // --- a pipeline run: its NDJSON va equals eval's predictions on the dump ---
    let text = ok(&affect_train(
        &[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--task",
            "expr",
            "--predictions",
            preds.join("expr").to_str().unwrap(),
        ],
        &registry,
    ));
    assert!(text.contains("macro-F1"), "{text}");
    let ok_va = ok(&affect_train(
        &[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--predictions",
            preds.join("val").to_str().unwrap(),
        ],
        &registry,
    ));
    assert!(ok_va.contains("CCC valence"), "{ok_va}");
    let eval_va = read_va(&preds.join("val").join("sample.txt")).unwrap();
    assert_eq!(eval_va.len(), 72);
    let records = pipeline_records(
        &videos.join("sample.mp4"),
        None,
        &dir.join("sample.ndjson"),
        &registry,
    );
    assert_eq!(records.len(), 72);
    assert_same(&records, &sample, &eval_va, "baseline");

    // --- every model type: fit → export → eval → the exported model in avfuse (a
    //     window of 8 frames, small sizes) reproduces eval's predictions ---
    for model_type in ["attention", "tcn", "mfn", "mctn", "transformer"] {
        let run = dir.join(format!("run-{model_type}"));
        let text = ok(&affect_train(
            &[
                "fit",
                "--data",
                data.to_str().unwrap(),
                "--task",
                "va",
                "--model",
                model_type,
                "--window",
                "8",
                "--hidden",
                "16",
                "--layers",
                "2",
                "--epochs",
                "2",
                "--batch",
                "4",
                "--out",
                run.to_str().unwrap(),
            ],
            &registry,
        ));
        assert!(text.contains("best epoch"), "{model_type}: {text}");
        let exported = dir.join(format!("{model_type}.onnx"));
        ok(&affect_train(
            &[
                "export",
                "--run",
                run.to_str().unwrap(),
                "--out",
                exported.to_str().unwrap(),
            ],
            &registry,
        ));
        let json = dir.join(format!("eval-{model_type}.json"));
        let predictions = preds.join(model_type);
        ok(&affect_train(
            &[
                "eval",
                "--model",
                exported.to_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
                "--json",
                json.to_str().unwrap(),
                "--predictions",
                predictions.to_str().unwrap(),
            ],
            &registry,
        ));
        let j = read_json(&json);
        assert!(
            j["ccc"]["mean"].as_f64().is_some_and(f64::is_finite),
            "{model_type}: {j}"
        );
        let trained_va = read_va(&predictions.join("sample.txt")).unwrap();
        let records = pipeline_records(
            &videos.join("sample.mp4"),
            Some(&exported),
            &dir.join(format!("sample-{model_type}.ndjson")),
            &registry,
        );
        assert_eq!(records.len(), 72, "{model_type}");
        assert_same(
            &records,
            &sample,
            &trained_va,
            &format!("trained {model_type} model"),
        );
    }

    // --- eval refuses a model made for other feature models, naming both ---
    let other = FeatureModelRef {
        name: "other-face-model".into(),
        sha256: "0".repeat(64),
    };
    let wrong = dir.join("wrong.onnx");
    affect::fusion::build_baseline(&other, &aref)
        .write(&wrong)
        .unwrap();
    let e = failed(&affect_train(
        &[
            "eval",
            "--model",
            wrong.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ],
        &registry,
    ));
    assert!(
        e.contains("other-face-model")
            && e.contains(&vref.sha256)
            && e.contains("fer-mini-xception"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn extract_reports_bad_input() {
    let dir = scratch("bad");
    let registry = dir.join("registry.bin");
    let out = dir.join("out");
    let e = failed(&run_extract(&dir.join("none"), &out, &[], &registry));
    assert!(e.contains("does not exist"), "{e}");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = failed(&run_extract(&empty, &out, &[], &registry));
    assert!(e.contains("no videos"), "{e}");
    // Not a video: the discoverer's error, naming the file and the reason.
    let bad = dir.join("badvids");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("broken.mp4"), b"this is not a video").unwrap();
    let e = failed(&run_extract(&bad, &out, &[], &registry));
    assert!(
        e.contains("broken.mp4") && e.contains("cannot read it as media"),
        "{e}"
    );
    // A pipeline that does not end in time is stopped, not waited for.
    let vids = dir.join("vids");
    std::fs::create_dir_all(&vids).unwrap();
    std::fs::copy(media("sample.mp4"), vids.join("sample.mp4")).unwrap();
    let e = failed(&run_extract(&vids, &out, &["--timeout", "0"], &registry));
    assert!(e.contains("no end after 0 s"), "{e}");
    // eval: no data root.
    let model = affect::weights::weights_dir().join("fusion-baseline.onnx");
    let e = failed(&affect_train(
        &[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--data",
            dir.join("none").to_str().unwrap(),
        ],
        &registry,
    ));
    assert!(e.contains("is not a folder"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `extract` reads the streams of a video itself (no gst-discoverer-1.0 on PATH, as after
/// `make setup`): a video without audio gets a pipeline without an audio branch and
/// finishes (it used to assume audio, build a branch that never links and wait for its
/// one-hour timeout), with every audio frame masked. A file that is not media is an
/// error naming it and the reason, with no pipeline started.
#[test]
fn extract_video_only_without_gst_discoverer() {
    let dir = scratch("video-only");
    let registry = dir.join("registry.bin");
    let path = path_with_gst_launch_only(&dir);
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    // sample.mp4's video stream alone (no re-encoding).
    let clip = videos.join("silent.mp4");
    let desc = format!(
        "filesrc location={} ! qtdemux name=d d.video_0 ! h264parse ! mp4mux ! filesink location={}",
        media("sample.mp4").display(),
        clip.display()
    );
    gst_launch(&desc);
    let data = dir.join("data");
    let args = [
        "extract",
        "--videos",
        videos.to_str().unwrap(),
        "--out",
        data.to_str().unwrap(),
    ];
    let out = ok(&affect_train_with_path(&args, &registry, Some(&path)));
    assert!(out.contains("extracted 1 feature file(s)"), "{out}");
    let f = FeatureFile::read(&data.join("features").join("silent.safetensors")).unwrap();
    assert_eq!(f.frames(), 72);
    assert!(f.visual_mask.iter().any(|m| *m > 0.0), "faces found");
    assert!(f.audio_mask.iter().all(|m| *m == 0.0), "no audio: masked");
    // Not media: a clear error, before any pipeline.
    std::fs::write(videos.join("notes.mp4"), b"not a video at all").unwrap();
    let o = affect_train_with_path(&args, &registry, Some(&path));
    let e = failed(&o);
    assert!(
        e.contains("notes.mp4") && e.contains("cannot read it as media"),
        "{e}"
    );
    assert!(!e.contains("the pipeline failed"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A video with two people side by side (`<stem>_left` / `<stem>_right` annotations):
/// extract writes one feature file per subject, from the track on that side.
#[test]
fn extract_two_subjects_left_and_right() {
    let dir = scratch("two");
    let registry = dir.join("registry.bin");
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    // sample.mp4 on the left half, single_face.mp4 on the right (both 640x360, 72 frames).
    let two = videos.join("two.mp4");
    let side = |name: &str, pad: &str| {
        format!(
            "filesrc location={} ! qtdemux name=d{pad} d{pad}.video_0 ! decodebin ! videoconvert \
             ! videoscale ! video/x-raw,width=640,height=360 ! c.sink_{pad}",
            media(name).display()
        )
    };
    let desc = format!(
        "compositor name=c sink_1::xpos=640 ! video/x-raw,width=1280,height=360,framerate=30/1 \
         ! videoconvert ! openh264enc ! h264parse ! mp4mux ! filesink location={} {} {}",
        two.display(),
        side("sample.mp4", "0"),
        side("single_face.mp4", "1")
    );
    gst_launch(&desc);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let root = DataRoot::new(&data).unwrap();
    annotate(&root, "two_left", Split::Train, 72);
    annotate(&root, "two_right", Split::Train, 72);
    let out = extract(&videos, &data, &registry);
    assert!(out.contains("extracted 2 feature file(s)"), "{out}");
    // Mean box centre x of the frames with a face: left half / right half.
    let centre = |name: &str| {
        let f = FeatureFile::read(&root.feature_path(name)).unwrap();
        assert_eq!(f.meta.source, "two.mp4");
        let xs: Vec<f32> = f
            .boxes
            .iter()
            .zip(&f.visual_mask)
            .filter(|(_, m)| **m > 0.0)
            .map(|(b, _)| b[0] + b[2] / 2.0)
            .collect();
        assert!(xs.len() > 60, "{name}: {} frames with a face", xs.len());
        xs.iter().sum::<f32>() / xs.len() as f32
    };
    let (l, r) = (centre("two_left"), centre("two_right"));
    assert!(l < 640.0 && r > 640.0, "left {l}, right {r}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn extract_features_mode_dumps_face_feature_vectors() {
    let dir = scratch("features");
    let registry = dir.join("registry.bin");
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    std::fs::copy(media("sample.mp4"), videos.join("clip.mp4")).unwrap();
    let data = dir.join("data");
    // No annotations: the longest track is written under the video's stem.
    let out = ok(&run_extract(
        &videos,
        &data,
        &["--visual-input", "features"],
        &registry,
    ));
    assert!(out.contains("extracted 1 feature file(s)"), "{out}");
    let f = FeatureFile::read(&data.join("features").join("clip.safetensors")).unwrap();
    // fer-mini-xception's feature output is 128-d.
    assert_eq!((f.visual_dim, f.audio_dim), (128, 164));
    assert_eq!(f.meta.visual_input, "features");
    assert_eq!(f.frames(), 72);
    // Feature vectors, not probabilities: not a distribution over 8 classes.
    let row = f.visual_row(0);
    assert!(row.iter().any(|&v| v < 0.0) || (row.iter().sum::<f32>() - 1.0).abs() > 0.1);
    // The probe fusion graph declares that contract and says it is not a model.
    let probe = data.join("extract-probe.onnx");
    let meta = affect::onnx::read_metadata(&std::fs::read(&probe).unwrap()).unwrap();
    let get = |k: &str| meta.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    assert_eq!(
        get("affect.fusion.visual-input").as_deref(),
        Some("features")
    );
    assert_eq!(get("affect.fusion.visual-dim").as_deref(), Some("128"));
    assert!(get("affect.source").unwrap().contains("NOT a model"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A minute of media through `extract` (sample.mp4 looped 25 times): the training data
/// gets audio on every frame after the first speech window, as avfuse's own output does
/// (the audio branch once ran ahead and lost audio on about half the frames of files
/// longer than ~20 s).
#[test]
fn extract_keeps_audio_on_every_frame_of_a_minute_of_media() {
    let dir = scratch("minute");
    let registry = dir.join("registry.bin");
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    let clip = videos.join("minute.mp4");
    let mut desc = format!(
        "concat name=cv ! h264parse ! queue ! mp4mux name=m ! filesink location={} \
         concat name=ca ! aacparse ! queue ! m.",
        clip.display()
    );
    for i in 0..25 {
        desc.push_str(&format!(
            " filesrc location={} ! qtdemux name=d{i} d{i}.video_0 ! queue ! cv. d{i}.audio_0 ! queue ! ca.",
            media("sample.mp4").display()
        ));
    }
    gst_launch(&desc);
    let data = dir.join("data");
    // Presence masks: 1 wherever audio is aligned, speech or not (what this test checks);
    // without the mesh, so the voice goes to the face although sample.mp4's speech is
    // dubbed (with the mesh its mouth does not follow the voice: masks 0).
    ok(&run_extract(
        &videos,
        &data,
        &["--audio-mask", "present", "--no-mesh"],
        &registry,
    ));
    let f = FeatureFile::read(&data.join("features").join("minute.safetensors")).unwrap();
    assert_eq!(f.meta.audio_mask, "present");
    assert_eq!(f.frames(), 1800);
    // The first voice-prosody vector is centred 0.5 s into the audio; with avfuse's 0.2 s
    // lookahead, frames before 0.3 s of audio (the video's segment starts 67 ms after the
    // audio's: the first 11 frames at 30 fps) are out of its reach.
    // Likewise the last vector is centred 0.5 s before the audio ends and reaches 0.2 s
    // further: the last 0.3 s (9 frames) are out of reach.
    let lost: Vec<usize> = (11..f.frames() - 9)
        .filter(|&i| f.audio_mask[i] != 1.0)
        .collect();
    assert!(
        lost.is_empty(),
        "{} frames without audio, from frame {:?}",
        lost.len(),
        lost.first()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `extract --audio-model oww-speech-embedding --audio-mask present`: the audio branch
/// runs the non-default model, the feature file holds its 96 values per frame and records
/// it by name and sha256 and the kind of mask (what a fusion model trained on the file will
/// declare).
#[test]
fn extract_with_another_audio_model_records_it() {
    let dir = scratch("prosody");
    let registry = dir.join("registry.bin");
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    std::fs::copy(media("sample.mp4"), videos.join("sample.mp4")).unwrap();
    let data = dir.join("data");
    let out = ok(&run_extract(
        &videos,
        &data,
        &[
            "--audio-model",
            "oww-speech-embedding",
            "--audio-mask",
            "present",
        ],
        &registry,
    ));
    assert!(out.contains("extracted 1 feature file(s)"), "{out}");
    let root = DataRoot::new(&data).unwrap();
    let f = FeatureFile::read(&root.feature_path("sample")).unwrap();
    let model = affect::weights::resolve_model("oww-speech-embedding");
    let sha = affect::weights::sha256_hex(&std::fs::read(&model).unwrap());
    assert_eq!((f.visual_dim, f.audio_dim), (8, 96));
    assert_eq!(f.meta.audio_model, "oww-speech-embedding");
    assert_eq!(f.meta.audio_sha256, sha);
    assert_eq!(f.meta.visual_input, "probabilities");
    assert_eq!(f.meta.audio_mask, "present");
    assert!(f.audio_mask.contains(&1.0), "embeddings aligned");
    assert!(f.audio.iter().all(|v| v.is_finite()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `extract --face-model PATH` (a user's own face model, here a renamed copy of the
/// bundled one): featextract runs that file, and the feature files record it by name and
/// sha256 (what a fusion model trained on them will declare, and what avfuse checks at
/// inference). A model file that is not there is an error naming it, before any pipeline.
#[test]
fn extract_with_another_face_model_records_it() {
    let dir = scratch("face-model");
    let registry = dir.join("registry.bin");
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    std::fs::copy(media("sample.mp4"), videos.join("sample.mp4")).unwrap();
    let mine = dir.join("my-face.onnx");
    std::fs::copy(affect::weights::resolve_model("fer-mini-xception"), &mine).unwrap();
    let sha = affect::weights::sha256_hex(&std::fs::read(&mine).unwrap());
    let data = dir.join("data");
    let out = ok(&run_extract(
        &videos,
        &data,
        &[
            "--face-model",
            mine.to_str().unwrap(),
            "--visual-input",
            "features",
        ],
        &registry,
    ));
    assert!(out.contains("extracted 1 feature file(s)"), "{out}");
    let f = FeatureFile::read(&DataRoot::new(&data).unwrap().feature_path("sample")).unwrap();
    assert_eq!(f.meta.visual_model, "my-face");
    assert_eq!(f.meta.visual_sha256, sha);
    assert_eq!(f.meta.visual_input, "features");
    assert_eq!(f.visual_dim, 128);
    assert!(
        f.visual_mask.iter().all(|&m| m == 1.0),
        "face in every frame"
    );
    assert!(f.visual.iter().all(|v| v.is_finite()));
    let missing = dir.join("nowhere.onnx");
    let e = failed(&run_extract(
        &videos,
        &data,
        &["--face-model", missing.to_str().unwrap()],
        &registry,
    ));
    assert!(
        e.contains("--face-model") && e.contains("nowhere.onnx"),
        "{e}"
    );
    assert!(!e.contains("the pipeline failed"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// With the face mesh (extract's default, as `make demo` and affect-annotate run) the
/// training data gives the voice only to the face that speaks: on the talking-head
/// composite of scripts/make-talking-heads.sh (left face's mouth follows the audio, the
/// right face's another utterance), annotated as two subjects, the left subject's audio
/// mask is on for >= 85 % of the speech frames and the right one's for <= 5 %.
/// `--no-mesh` gives both the voice (what a pipeline without the mesh does).
#[test]
fn extract_gives_the_voice_only_to_the_subject_who_speaks() {
    let dir = scratch("speaker");
    let registry = dir.join("registry.bin");
    let videos = dir.join("videos");
    std::fs::create_dir_all(&videos).unwrap();
    std::fs::copy(media("talking/two_faces_left.mkv"), videos.join("talk.mkv")).unwrap();
    let info: serde_json::Value = read_json(&media("talking/faces.json"));
    let speech: Vec<usize> = info["left"]["opening"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(k, a)| *k >= 25 && a.as_f64().unwrap() > 0.15)
        .map(|(k, _)| k)
        .collect();
    let frames = info["frames"].as_u64().unwrap() as usize;
    let share = |data: &Path, name: &str| {
        let f = FeatureFile::read(&DataRoot::new(data).unwrap().feature_path(name)).unwrap();
        assert_eq!(f.frames(), frames, "{name}");
        let on = speech.iter().filter(|&&k| f.audio_mask[k] > 0.05).count();
        on as f64 / speech.len() as f64
    };
    for (mesh, extra) in [(true, &[][..]), (false, &["--no-mesh"][..])] {
        let data = dir.join(if mesh { "mesh" } else { "no-mesh" });
        std::fs::create_dir_all(&data).unwrap();
        let root = DataRoot::new(&data).unwrap();
        annotate(&root, "talk_left", Split::Train, frames);
        annotate(&root, "talk_right", Split::Train, frames);
        let out = ok(&run_extract(&videos, &data, extra, &registry));
        assert!(out.contains("extracted 2 feature file(s)"), "{out}");
        let (left, right) = (share(&data, "talk_left"), share(&data, "talk_right"));
        eprintln!(
            "mesh {mesh}: audio mask on for {left:.3} (speaker) / {right:.3} (other) of {} speech frames",
            speech.len()
        );
        if mesh {
            assert!(left >= 0.85, "speaker's audio on {left:.3}");
            assert!(right <= 0.05, "the other face's audio on {right:.3}");
        } else {
            assert!(left >= 0.85 && right >= 0.85, "{left:.3} / {right:.3}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
