// SPDX-License-Identifier: MPL-2.0
//! `featextract` benchmark (run by `bench/featextract/run.sh`, ignored by `cargo test`):
//! faces per second batched vs unbatched on a five-face photo and a one-face clip, audio
//! windows per second; writes the exact model inputs and its timings to
//! `$FEATEXTRACT_BENCH_DIR` so `bench/featextract/bench.py` can run the same work from a
//! Python onnxruntime loop and print the ratios.

mod common;

use std::sync::Arc;
use std::time::Instant;

use affect::features::CropPreprocessor;
use affect::results::FaceCrop;
use affect::runtime::{InputSpec, Model, Role, SessionConfig};
use gst::prelude::*;
use gstaffect::meta::FaceCropMeta;

/// Face crops per frame of a pipeline ending in `fakesink name=out`.
fn crops_of(desc: &str) -> Vec<Vec<Arc<FaceCrop>>> {
    common::collect(desc, 300, |b| {
        b.iter_meta::<FaceCropMeta>()
            .map(|m| m.data().clone())
            .collect()
    })
}

fn harness(props: &[(&str, &str)], caps: &str) -> gst_check::Harness {
    let el = gst::ElementFactory::make("featextract").build().unwrap();
    for (k, v) in props {
        el.set_property_from_str(k, v);
    }
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    h.set_src_caps_str(caps);
    h.play();
    h
}

/// Seconds to push and pull `frames` (each a list of faces) through featextract.
fn time_faces(frames: &[Vec<Arc<FaceCrop>>], batch: &str) -> f64 {
    let mut h = harness(
        &[("batch-size", batch), ("threads", "1")],
        "video/x-raw,format=RGB,width=16,height=16,framerate=25/1",
    );
    let bufs: Vec<gst::Buffer> = frames
        .iter()
        .enumerate()
        .map(|(i, faces)| {
            let mut b = gst::Buffer::with_size(16 * 16 * 3).unwrap();
            let r = b.get_mut().unwrap();
            r.set_pts(gst::ClockTime::from_mseconds(40 * i as u64));
            for c in faces {
                FaceCropMeta::add(r, c.clone());
            }
            b
        })
        .collect();
    // Warm-up (session start-up, first-run allocations).
    h.push(bufs[0].copy()).unwrap();
    h.pull().unwrap();
    let t = Instant::now();
    for b in bufs {
        h.push(b).unwrap();
        h.pull().unwrap();
    }
    t.elapsed().as_secs_f64()
}

fn write_f32(path: &std::path::Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

#[test]
#[ignore = "benchmark: bench/featextract/run.sh"]
fn bench_featextract() {
    let dir = std::path::PathBuf::from(
        std::env::var("FEATEXTRACT_BENCH_DIR").unwrap_or_else(|_| "/tmp/featextract-bench".into()),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let reps: usize = std::env::var("FEATEXTRACT_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);

    // Inputs: facecrop's aligned crops of the five-face photo and of the one-face clip.
    let photo = crops_of(&format!(
        "filesrc location={} ! jpegdec ! videoconvert ! video/x-raw,format=RGB ! imagefreeze num-buffers=1 ! facecrop ! fakesink name=out",
        common::media("multi_face.jpg").display()
    ));
    let five = photo[0].clone();
    assert_eq!(five.len(), 5);
    let clip: Vec<Vec<Arc<FaceCrop>>> = crops_of(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! facecrop ! fakesink name=out",
        common::media("single_face.mp4").display()
    ))
    .into_iter()
    .filter(|f| !f.is_empty())
    .collect();
    assert!(!clip.is_empty());

    // The exact model inputs, for the Python loop.
    let model = Model::load(
        &affect::weights::resolve_model(affect::features::DEFAULT_FACE_MODEL),
        Some(Role::FaceFeature),
        &SessionConfig::default(),
    )
    .unwrap();
    let InputSpec::Image(img) = model.contract().input.clone() else {
        panic!()
    };
    let mut pre = CropPreprocessor::new(&img);
    let prep = |faces: &[Arc<FaceCrop>], pre: &mut CropPreprocessor| -> Vec<f32> {
        let n = pre.item_len();
        let mut v = vec![0.0; n * faces.len()];
        for (i, c) in faces.iter().enumerate() {
            pre.prepare(
                &c.rgb,
                c.width as usize,
                c.height as usize,
                &mut v[i * n..(i + 1) * n],
            )
            .unwrap();
        }
        v
    };
    write_f32(&dir.join("faces5.f32"), &prep(&five, &mut pre));
    // The crops themselves (packed RGB, all the same size), for the Python loop's own
    // preprocessing at equal work.
    let raw = |faces: &[Arc<FaceCrop>]| -> Vec<u8> {
        faces.iter().flat_map(|c| c.rgb.iter().copied()).collect()
    };
    std::fs::write(dir.join("faces5.rgb"), raw(&five)).unwrap();
    let clip_faces: Vec<Arc<FaceCrop>> = clip.iter().map(|f| f[0].clone()).collect();
    write_f32(&dir.join("clip.f32"), &prep(&clip_faces, &mut pre));
    std::fs::write(dir.join("clip.rgb"), raw(&clip_faces)).unwrap();
    let crop = &five[0];
    assert!(
        five.iter()
            .chain(&clip_faces)
            .all(|c| (c.width, c.height) == (crop.width, crop.height))
    );

    // Five faces per frame, `reps` frames; the clip's one-face frames, repeated to ≥ reps.
    let photo_frames: Vec<_> = (0..reps).map(|_| five.clone()).collect();
    let clip_frames: Vec<_> = clip
        .iter()
        .cycle()
        .take(reps.max(clip.len()) * 2)
        .map(|f| vec![f[0].clone()])
        .collect();
    let five_batched = time_faces(&photo_frames, "16");
    let five_single = time_faces(&photo_frames, "1");
    let clip_batched = time_faces(&clip_frames, "16");
    let clip_single = time_faces(&clip_frames, "1");

    // Audio: 60 s at 16 kHz in 100 ms buffers, one window per run (batch-size=1).
    let n = 16_000 * 60;
    let mut seed = 7u64;
    let x: Vec<f32> = (0..n)
        .map(|i| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            0.05 * (((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5)
                + 0.2 * (i as f32 * 0.07).sin()
        })
        .collect();
    write_f32(&dir.join("audio.f32"), &x);
    let windows = (n - 12_512) / 1280 + 1;
    let mut audio_secs = Vec::new();
    for batch in ["1", "16"] {
        let mut h = harness(
            &[("batch-size", batch), ("threads", "1")],
            "audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved",
        );
        let bufs: Vec<gst::Buffer> = x
            .chunks(1600)
            .enumerate()
            .map(|(i, c)| {
                let mut b = gst::Buffer::from_mut_slice(
                    c.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>(),
                );
                b.get_mut()
                    .unwrap()
                    .set_pts(gst::ClockTime::from_mseconds(100 * i as u64));
                b
            })
            .collect();
        let t = Instant::now();
        let mut got = 0;
        for b in bufs {
            h.push(b).unwrap();
            got += h
                .pull()
                .unwrap()
                .iter_meta::<gstaffect::meta::FeatureMeta>()
                .count();
        }
        audio_secs.push(t.elapsed().as_secs_f64());
        assert_eq!(got, windows);
    }

    let json = format!(
        "{{\"five_frames\":{reps},\"five_batched_s\":{five_batched},\"five_single_s\":{five_single},\
         \"clip_frames\":{},\"clip_unique\":{},\"clip_batched_s\":{clip_batched},\"clip_single_s\":{clip_single},\
         \"audio_windows\":{windows},\"audio_single_s\":{},\"audio_batched_s\":{},\
         \"crop_width\":{},\"crop_height\":{},\"mean\":{},\"std\":{}}}",
        clip_frames.len(),
        clip.len(),
        audio_secs[0],
        audio_secs[1],
        crop.width,
        crop.height,
        img.mean[0],
        img.std[0]
    );
    std::fs::write(dir.join("rust.json"), &json).unwrap();
    println!("{json}");
}
