// SPDX-License-Identifier: MPL-2.0
//! Letterbox pre-processing on frames of the sizes the element sees, with timings
//! (`cargo test --release --test face_preprocess -- --nocapture` for real numbers).

use std::time::Instant;

use affect::face::{
    AlignTemplate, DetectorKind, Frame, PixelFormat, Preprocessor, Resample, TensorSpec, warp_rgb,
};
use affect::runtime::{Layout, PixelColour};

fn blazeface_spec(size: usize) -> TensorSpec {
    TensorSpec {
        width: size,
        height: size,
        layout: Layout::Nhwc,
        colour: PixelColour::Rgb,
        mean: [127.5; 3],
        std: [127.5; 3],
    }
}

/// A BGRx frame with a smooth pattern.
fn frame_data(w: usize, h: usize) -> Vec<u8> {
    (0..h)
        .flat_map(|y| {
            (0..w).flat_map(move |x| {
                [
                    (x * 255 / w) as u8,
                    (y * 255 / h) as u8,
                    ((x + y) % 256) as u8,
                    0,
                ]
            })
        })
        .collect()
}

/// Mean and best milliseconds of `runs` calls of `f` (printed, never asserted: the test
/// machines are shared and timings are noisy).
fn timed(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    let (mut total, mut best) = (0.0f64, f64::INFINITY);
    for _ in 0..runs {
        let t = Instant::now();
        f();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        total += ms;
        best = best.min(ms);
    }
    (total / runs as f64, best)
}

fn time_prepare(w: usize, h: usize, size: usize, resample: Resample) -> f64 {
    let data = frame_data(w, h);
    let frame = Frame::packed(&data, w, h, PixelFormat::Bgrx).unwrap();
    let mut pre = Preprocessor::new(blazeface_spec(size), resample).unwrap();
    let mut out = vec![0.0f32; pre.spec().len()];
    let lb = pre.prepare(&frame, &mut out).unwrap();
    // padding rows are black: (0 - 127.5) / 127.5
    assert_eq!(out[0], -1.0);
    let mid = (size / 2 * size + size / 2) * 3;
    assert!(out[mid..mid + 3].iter().all(|v| (-1.0..=1.0).contains(v)));
    assert!(lb.offset().1 > 0.0);
    let (ms, best) = timed(50, || {
        pre.prepare(&frame, &mut out).unwrap();
    });
    eprintln!("prepare {w}x{h} BGRx -> {size}x{size} {resample:?}: {ms:.3} ms (best {best:.3})");
    ms
}

#[test]
fn preprocess_frame_sizes() {
    for (w, h) in [(640, 360), (1280, 720), (1920, 1080)] {
        for size in [128, 192] {
            for resample in [Resample::Bilinear, Resample::Antialiased] {
                time_prepare(w, h, size, resample);
            }
        }
    }
}

#[test]
fn aligned_crop_timing() {
    let (w, h) = (1920, 1080);
    let data = frame_data(w, h);
    let frame = Frame::packed(&data, w, h, PixelFormat::Bgrx).unwrap();
    let t = AlignTemplate::for_detector(DetectorKind::BlazeFaceFull, 112, 0.0).unwrap();
    // a 400 px face in the middle of the frame
    let kps: Vec<[f32; 2]> = t
        .points()
        .iter()
        .map(|p| [800.0 + p[0] * 400.0 / 112.0, 400.0 + p[1] * 400.0 / 112.0])
        .collect();
    let sim = t.transform(&kps).unwrap();
    let mut crop = Vec::new();
    let (ms, best) = timed(200, || {
        crop = warp_rgb(&frame, &sim, 112, 112).unwrap();
    });
    eprintln!("aligned 112x112 crop of a 400 px face: {ms:.3} ms (best {best:.3})");
    assert_eq!(crop.len(), 112 * 112 * 3);
}
