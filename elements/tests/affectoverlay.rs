// SPDX-License-Identifier: MPL-2.0
//! `affectoverlay`: what it draws, where, and what it leaves alone.
//!
//! Faces come from `affectreplay` (the metas `avfuse` attaches) or are added to
//! buffers directly; every output is compared with the same pipeline without the
//! overlay, pixel by pixel.

mod common;

use std::sync::{Arc, Mutex};

use affect::results::{AffectRecord, FaceAffect, FaceBox};
use gst::prelude::*;
use gst_video::prelude::*;
use gstaffect::meta::add_face_roi;

const FRAME: u64 = 40_000_000;
const W: u32 = 640;
const H: u32 = 480;
/// The face box of the records (x, y, width, height).
const BOX: (u32, u32, u32, u32) = (200, 120, 200, 200);

/// One captured frame: its format and planes (data, stride), plus the overlay meta.
#[derive(Debug, Clone)]
struct Captured {
    format: gst_video::VideoFormat,
    planes: Vec<(Vec<u8>, usize)>,
    /// (number of rectangles, first rectangle) of a `GstVideoOverlayCompositionMeta`.
    overlay: Option<(u32, (i32, i32, u32, u32))>,
}

impl Captured {
    fn from_buffer(buf: &gst::BufferRef, info: &gst_video::VideoInfo) -> Captured {
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, info).unwrap();
        let planes = (0..frame.n_planes())
            .map(|i| {
                (
                    frame.plane_data(i).unwrap().to_vec(),
                    frame.plane_stride()[i as usize] as usize,
                )
            })
            .collect();
        let overlay = buf
            .meta::<gst_video::VideoOverlayCompositionMeta>()
            .map(|m| {
                let o = m.overlay();
                (o.n_rectangles(), o.rectangle(0).unwrap().render_rectangle())
            });
        Captured {
            format: info.format(),
            planes,
            overlay,
        }
    }

    /// Every sample that describes pixel (x, y), across planes.
    fn px(&self, x: u32, y: u32) -> Vec<u8> {
        let (x, y) = (x as usize, y as usize);
        let at = |p: usize, off: usize, n: usize| {
            let (d, s) = &self.planes[p];
            let o = if p == 0 { y * s } else { (y / 2) * s } + off;
            d[o..o + n].to_vec()
        };
        use gst_video::VideoFormat as F;
        match self.format {
            F::Bgrx | F::Rgbx | F::Bgra | F::Rgba => at(0, 4 * x, 4),
            F::I420 => [at(0, x, 1), at(1, x / 2, 1), at(2, x / 2, 1)].concat(),
            F::Nv12 => [at(0, x, 1), at(1, 2 * (x / 2), 2)].concat(),
            f => panic!("test does not read {f:?}"),
        }
    }

    /// (B, G, R) of a BGRx frame.
    fn bgr(&self, x: u32, y: u32) -> [i32; 3] {
        assert_eq!(self.format, gst_video::VideoFormat::Bgrx);
        let p = self.px(x, y);
        [p[0] as i32, p[1] as i32, p[2] as i32]
    }
}

/// How many pixels of the region `x0..x1, y0..y1` differ between two frames.
fn changed(a: &Captured, b: &Captured, (x0, x1): (u32, u32), (y0, y1): (u32, u32)) -> usize {
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .filter(|&(x, y)| a.px(x, y) != b.px(x, y))
        .count()
}

fn affect(track_id: u64, valence: f32, arousal: f32) -> FaceAffect {
    let mut p = [0.02f32; 8];
    p[4] = 0.86;
    FaceAffect {
        track_id,
        bbox: FaceBox {
            x: BOX.0 as f32,
            y: BOX.1 as f32,
            width: BOX.2 as f32,
            height: BOX.3 as f32,
        },
        valence,
        arousal,
        probabilities: p,
        ..Default::default()
    }
}

/// Writes records as NDJSON into a scratch folder; returns the path.
fn ndjson(name: &str, recs: &[AffectRecord]) -> String {
    let p = common::scratch(name).join("affect.ndjson");
    let text: String = recs.iter().map(|r| r.to_json_line() + "\n").collect();
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

/// Runs a pipeline ending in `fakesink name=out` to EOS and returns every frame the
/// sink saw. A buffer probe `inject`, if given, runs on the source pad of `inj`.
fn run(desc: &str, inject: Option<fn(&mut gst::BufferRef)>) -> Vec<Captured> {
    common::init();
    let pipe = gst::parse::launch(desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let frames = Arc::new(Mutex::new(Vec::new()));
    let f2 = frames.clone();
    let pad = pipe.by_name("out").unwrap().static_pad("sink").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        if let Some(buf) = info.buffer() {
            let info = gst_video::VideoInfo::from_caps(&pad.current_caps().unwrap()).unwrap();
            f2.lock().unwrap().push(Captured::from_buffer(buf, &info));
        }
        gst::PadProbeReturn::Ok
    });
    if let Some(inject) = inject {
        let pad = pipe.by_name("inj").unwrap().static_pad("src").unwrap();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buf)) = &mut info.data {
                inject(buf.make_mut());
            }
            gst::PadProbeReturn::Ok
        });
    }
    pipe.set_state(gst::State::Playing).unwrap();
    let msg = pipe
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS or error within 60 s");
    pipe.set_state(gst::State::Null).unwrap();
    assert!(
        matches!(msg.view(), gst::MessageView::Eos(_)),
        "`{desc}` failed: {msg:?}"
    );
    std::mem::take(&mut *frames.lock().unwrap())
}

/// `videotestsrc` (3 frames) → `affectreplay` → `middle` → `fakesink name=out`.
fn pipeline(pattern: &str, caps: &str, location: &str, middle: &str) -> String {
    format!(
        "videotestsrc num-buffers=3 pattern={pattern} ! {caps},framerate=25/1 ! \
         affectreplay location={location} ! {middle} ! fakesink name=out"
    )
}

/// Output with the overlay and the same pipeline with `identity` instead.
fn with_and_without(
    pattern: &str,
    caps: &str,
    location: &str,
    overlay: &str,
) -> (Vec<Captured>, Vec<Captured>) {
    let out = run(&pipeline(pattern, caps, location, overlay), None);
    let reference = run(&pipeline(pattern, caps, location, "identity"), None);
    assert_eq!(out.len(), 3);
    assert_eq!(reference.len(), 3);
    (out, reference)
}

fn save_png(frame: &Captured, width: u32, height: u32, name: &str) -> std::path::PathBuf {
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let [b, g, r] = frame.bgr(x, y);
            rgb.extend([r as u8, g as u8, b as u8]);
        }
    }
    let path = common::plugin_dir().join(name);
    image::RgbImage::from_raw(width, height, rgb)
        .unwrap()
        .save(&path)
        .unwrap();
    path
}

// Regions around the record's box (x range, y range).
const LEFT_EDGE: ((u32, u32), (u32, u32)) = ((BOX.0 - 3, BOX.0 + 3), (BOX.1 + 40, BOX.1 + 160));
const LABEL: ((u32, u32), (u32, u32)) = ((BOX.0, BOX.0 + 120), (BOX.1 - 20, BOX.1 - 3));
const BELOW: ((u32, u32), (u32, u32)) = (
    (BOX.0, BOX.0 + BOX.2),
    (BOX.1 + BOX.3 + 4, BOX.1 + BOX.3 + 40),
);
const INSIDE: ((u32, u32), (u32, u32)) = ((BOX.0 + 10, BOX.0 + 190), (BOX.1 + 10, BOX.1 + 170));
const FAR: [((u32, u32), (u32, u32)); 3] = [
    ((0, 100), (0, 60)),
    ((500, 640), (200, 480)),
    ((0, 150), (380, 480)),
];

#[test]
fn box_label_and_bars_are_blended_and_the_rest_is_untouched() {
    let loc = ndjson(
        "overlay-blend",
        &[
            AffectRecord::new(0, affect(1, 0.6, -0.4)),
            AffectRecord::new(2 * FRAME, affect(1, 0.6, -0.4)),
        ],
    );
    for format in ["BGRx", "I420", "NV12", "RGBA"] {
        let caps = format!("video/x-raw,format={format},width={W},height={H}");
        let (out, reference) = with_and_without("black", &caps, &loc, "affectoverlay");
        for i in [0, 2] {
            let (o, r) = (&out[i], &reference[i]);
            assert_eq!(o.format.to_str(), format);
            assert!(o.overlay.is_none(), "{format}: blended, no meta");
            let edge = changed(o, r, LEFT_EDGE.0, LEFT_EDGE.1);
            assert!(edge >= 120 * 2, "{format}: box edge changed on {edge} px");
            assert!(changed(o, r, LABEL.0, LABEL.1) > 500, "{format}: label");
            assert!(changed(o, r, BELOW.0, BELOW.1) > 500, "{format}: V/A bars");
            assert_eq!(changed(o, r, INSIDE.0, INSIDE.1), 0, "{format}: the face");
            for (xs, ys) in FAR {
                assert_eq!(changed(o, r, xs, ys), 0, "{format}: far from the face");
            }
        }
        // Frame 1 has no record: bit-exact.
        assert_eq!(out[1].planes, reference[1].planes, "{format}: no face");
        if format == "BGRx" {
            let p = save_png(&out[0], W, H, "affectoverlay-black.png");
            eprintln!("frame written to {}", p.display());
        }
    }
}

#[test]
fn frames_without_faces_pass_bit_exact() {
    let loc = ndjson(
        "overlay-exact",
        &[AffectRecord::new(FRAME, affect(2, -0.5, 0.5))],
    );
    for format in ["BGRx", "I420"] {
        let caps = format!("video/x-raw,format={format},width=320,height=240");
        let (out, reference) = with_and_without("smpte", &caps, &loc, "affectoverlay");
        assert_eq!(out[0].planes, reference[0].planes, "{format}");
        assert_eq!(out[2].planes, reference[2].planes, "{format}");
        assert_ne!(
            out[1].planes, reference[1].planes,
            "{format}: the face is drawn"
        );
    }
}

/// Bounding box (x0, x1, y0, y1) and mean (B, G, R) of the saturated pixels below the
/// face box: the bar fills (the panel, bar tracks, ticks and letters are grey).
fn bar_fill(f: &Captured) -> ([u32; 4], [i32; 3]) {
    let (mut x0, mut x1, mut y0, mut y1) = (u32::MAX, 0, u32::MAX, 0);
    let (mut sum, mut n) = ([0i32; 3], 0);
    for y in BOX.1 + BOX.3 + 4..BOX.1 + BOX.3 + 80 {
        for x in 150..460 {
            let c = f.bgr(x, y);
            if c.iter().max().unwrap() - c.iter().min().unwrap() > 90 {
                (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
                for k in 0..3 {
                    sum[k] += c[k];
                }
                n += 1;
            }
        }
    }
    assert!(n > 20, "no bar fill found");
    ([x0, x1, y0, y1], sum.map(|s| s / n))
}

#[test]
fn bars_grow_with_the_value_in_its_direction_and_colour() {
    let values = [(-0.8, 0.0), (0.8, 0.0), (0.4, 0.0), (0.0, -0.8), (0.0, 0.8)];
    let recs: Vec<AffectRecord> = values
        .iter()
        .enumerate()
        .map(|(i, &(v, a))| AffectRecord::new(i as u64 * FRAME, affect(1, v, a)))
        .collect();
    let loc = ndjson("overlay-bars", &recs);
    let caps = format!("video/x-raw,format=BGRx,width={W},height={H}");
    let desc = format!(
        "videotestsrc num-buffers=5 pattern=black ! {caps},framerate=25/1 ! \
         affectreplay location={loc} ! affectoverlay ! fakesink name=out"
    );
    let out = run(&desc, None);
    let fills: Vec<([u32; 4], [i32; 3])> = out.iter().map(bar_fill).collect();
    let [neg_v, pos_v, half_v, neg_a, pos_a] = [0, 1, 2, 3, 4].map(|i| fills[i]);
    let width = |f: ([u32; 4], [i32; 3])| (f.0[1] - f.0[0] + 1) as f32;

    // Valence: left of the centre and red below 0, right and green above.
    assert!(neg_v.0[1] < pos_v.0[0], "{neg_v:?} vs {pos_v:?}");
    let ([b, g, r], [b2, g2, r2]) = (neg_v.1, pos_v.1);
    assert!(
        r > g + 80 && r > b + 80,
        "valence -0.8 is red: {:?}",
        neg_v.1
    );
    assert!(
        g2 > r2 + 80 && g2 > b2 + 80,
        "valence +0.8 is green: {:?}",
        pos_v.1
    );
    assert!((width(neg_v) - width(pos_v)).abs() <= 2.0);
    assert!(width(pos_v) > 50.0, "{pos_v:?}");
    // Half the value, half the length, from the same centre.
    let ratio = width(half_v) / width(pos_v);
    assert!((0.4..0.6).contains(&ratio), "0.4 vs 0.8: {ratio}");
    assert!(half_v.0[0].abs_diff(pos_v.0[0]) <= 1);

    // Arousal: the second row, blue below 0, orange above.
    assert!(neg_a.0[2] > neg_v.0[3], "arousal row below valence row");
    assert!(neg_a.0[1] < pos_a.0[0]);
    assert!((width(neg_a) - width(neg_v)).abs() <= 2.0);
    let ([b, _, r], [b2, g2, r2]) = (neg_a.1, pos_a.1);
    assert!(b > r + 80, "arousal -0.8 is blue: {:?}", neg_a.1);
    assert!(
        r2 > b2 + 80 && r2 > g2,
        "arousal +0.8 is orange: {:?}",
        pos_a.1
    );
}

#[test]
fn properties_switch_each_part_off() {
    let loc = ndjson(
        "overlay-props",
        &[AffectRecord::new(0, affect(4, 0.5, 0.5))],
    );
    let caps = format!("video/x-raw,format=BGRx,width={W},height={H}");
    let reference = run(&pipeline("black", &caps, &loc, "identity"), None);
    let with = |props: &str| {
        run(
            &pipeline("black", &caps, &loc, &format!("affectoverlay {props}")),
            None,
        )
    };

    let o = with("draw-boxes=false");
    assert_eq!(changed(&o[0], &reference[0], LEFT_EDGE.0, LEFT_EDGE.1), 0);
    assert!(changed(&o[0], &reference[0], LABEL.0, LABEL.1) > 500);
    assert!(changed(&o[0], &reference[0], BELOW.0, BELOW.1) > 500);

    let o = with("draw-labels=false");
    assert!(changed(&o[0], &reference[0], LEFT_EDGE.0, LEFT_EDGE.1) > 200);
    assert_eq!(changed(&o[0], &reference[0], LABEL.0, LABEL.1), 0);
    assert!(changed(&o[0], &reference[0], BELOW.0, BELOW.1) > 500);

    let o = with("draw-va=false");
    assert!(changed(&o[0], &reference[0], LABEL.0, LABEL.1) > 500);
    assert_eq!(changed(&o[0], &reference[0], BELOW.0, BELOW.1), 0);

    let o = with("draw-boxes=false draw-labels=false draw-va=false");
    assert_eq!(o[0].planes, reference[0].planes, "nothing to draw");

    // A thicker line covers more of the edge; a bigger font a bigger label.
    let thin = with("line-width=1");
    let thick = with("line-width=6");
    let edge = |f: &Captured| changed(f, &reference[0], LEFT_EDGE.0, LEFT_EDGE.1);
    assert!(edge(&thick[0]) > edge(&thin[0]), "line-width");
    let big = with("font-desc=\"Sans Bold 24\"");
    let tall_label = ((BOX.0, BOX.0 + 120), (BOX.1 - 40, BOX.1 - 30));
    assert!(changed(&big[0], &reference[0], tall_label.0, tall_label.1) > 500);
    let normal = with("");
    assert_eq!(
        changed(&normal[0], &reference[0], tall_label.0, tall_label.1),
        0
    );

    common::init();
    let el = gst::ElementFactory::make("affectoverlay").build().unwrap();
    assert!(el.property::<bool>("draw-boxes"));
    assert!(!el.property::<bool>("draw-landmarks"));
    assert_eq!(el.property::<String>("font-desc"), "Sans 12");
    assert_eq!(el.property::<f64>("line-width"), 0.0);
}

fn frame_buffer(pts: u64) -> gst::Buffer {
    let mut b = gst::Buffer::from_mut_slice(vec![0u8; (W * H * 4) as usize]);
    let r = b.get_mut().unwrap();
    r.set_pts(gst::ClockTime::from_nseconds(pts));
    r.set_duration(gst::ClockTime::from_nseconds(FRAME));
    b
}

fn harness(props: &[(&str, bool)], sink_caps: Option<&str>) -> gst_check::Harness {
    common::init();
    let mut b = gst::ElementFactory::make("affectoverlay");
    for (k, v) in props {
        b = b.property(k, *v);
    }
    let el = b.build().unwrap();
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    // Sink caps first: the source caps event negotiates at once.
    if let Some(c) = sink_caps {
        h.set_sink_caps_str(c);
    }
    h.set_src_caps_str(&format!(
        "video/x-raw,format=BGRx,width={W},height={H},framerate=25/1"
    ));
    h.play();
    h
}

fn capture(buf: &gst::Buffer) -> Captured {
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Bgrx, W, H)
        .build()
        .unwrap();
    Captured::from_buffer(buf, &info)
}

const LANDMARKS: [[f32; 2]; 2] = [[260.0, 180.0], [340.0, 180.0]];

/// A face without `affect` param, as `facecrop` attaches it.
fn add_plain_face(buf: &mut gst::BufferRef) {
    let bbox = FaceBox {
        x: BOX.0 as f32,
        y: BOX.1 as f32,
        width: BOX.2 as f32,
        height: BOX.3 as f32,
    };
    add_face_roi(
        buf,
        Some((W, H)),
        7,
        &bbox,
        &gstaffect::meta::FaceParams {
            score: Some(0.9),
            landmarks: &LANDMARKS,
            ..Default::default()
        },
        None,
    );
}

#[test]
fn faces_without_affect_get_box_and_track_id_only() {
    let blank = capture(&frame_buffer(0));
    for landmarks in [false, true] {
        let mut h = harness(&[("draw-landmarks", landmarks)], None);
        let mut buf = frame_buffer(0);
        add_plain_face(buf.get_mut().unwrap());
        let out = capture(&h.push_and_pull(buf).unwrap());
        assert!(changed(&out, &blank, LEFT_EDGE.0, LEFT_EDGE.1) > 200);
        // "#7" only: a short label, no expression text further right, no bars.
        assert!(changed(&out, &blank, (BOX.0, BOX.0 + 20), LABEL.1) > 100);
        assert_eq!(changed(&out, &blank, (BOX.0 + 80, BOX.0 + 200), LABEL.1), 0);
        assert_eq!(changed(&out, &blank, BELOW.0, BELOW.1), 0);
        let dots: usize = LANDMARKS
            .iter()
            .map(|p| {
                let (x, y) = (p[0] as u32, p[1] as u32);
                changed(&out, &blank, (x - 2, x + 3), (y - 2, y + 3))
            })
            .sum();
        if landmarks {
            assert!(dots >= 2 * 20, "landmarks drawn: {dots}");
        } else {
            assert_eq!(dots, 0, "landmarks are off by default");
        }
    }
}

#[test]
fn meta_feature_downstream_gets_the_composition_unblended() {
    let mut blend = harness(&[], None);
    let mut meta = harness(
        &[],
        Some(&format!(
            "video/x-raw(meta:GstVideoOverlayComposition),format=BGRx,width={W},height={H},framerate=25/1"
        )),
    );
    let mut buf = frame_buffer(0);
    add_plain_face(buf.get_mut().unwrap());
    let blended = capture(&blend.push_and_pull(buf.copy_deep().unwrap()).unwrap());
    let mut out = meta.push_and_pull(buf).unwrap();

    let caps = meta.sinkpad().unwrap().current_caps().unwrap();
    assert!(
        caps.features(0)
            .unwrap()
            .contains(gst_video::CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION),
        "{caps}"
    );
    let seen = capture(&out);
    assert!(seen.planes[0].0.iter().all(|&b| b == 0), "frame untouched");
    let (n, (x, y, w, h)) = seen.overlay.expect("overlay composition meta");
    assert_eq!(n, 1);
    assert!(x <= BOX.0 as i32 && y < BOX.1 as i32);
    assert!(x + w as i32 >= (BOX.0 + BOX.2) as i32 && y + h as i32 >= (BOX.1 + BOX.3) as i32);

    // Blending the attached composition gives what the blend path draws.
    let composition = out
        .meta::<gst_video::VideoOverlayCompositionMeta>()
        .unwrap()
        .overlay_owned();
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Bgrx, W, H)
        .build()
        .unwrap();
    {
        let mut frame =
            gst_video::VideoFrameRef::from_buffer_ref_writable(out.make_mut(), &info).unwrap();
        composition.blend(&mut frame).unwrap();
    }
    assert_eq!(capture(&out).planes, blended.planes);
}

/// Two faces (one with affect, one straight from a detector with landmarks) on a
/// 1280×720 test picture, written as a PNG next to the test binary for a human look.
#[test]
fn renders_a_legible_frame() {
    let mut f1 = affect(1, 0.7, 0.45);
    f1.bbox = FaceBox {
        x: 180.0,
        y: 160.0,
        width: 260.0,
        height: 300.0,
    };
    let mut f2 = affect(2, -0.55, -0.3);
    f2.probabilities = [0.05, 0.1, 0.05, 0.05, 0.05, 0.62, 0.03, 0.05];
    f2.bbox = FaceBox {
        x: 560.0,
        y: 200.0,
        width: 220.0,
        height: 250.0,
    };
    let loc = ndjson(
        "overlay-png",
        &[AffectRecord::new(0, f1), AffectRecord::new(0, f2)],
    );
    let desc = format!(
        "videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,format=BGRx,width=1280,height=720 ! \
         affectreplay location={loc} ! identity name=inj ! affectoverlay draw-landmarks=true ! \
         fakesink name=out"
    );
    let out = run(
        &desc,
        Some(|buf: &mut gst::BufferRef| {
            let bbox = FaceBox {
                x: 900.0,
                y: 260.0,
                width: 200.0,
                height: 230.0,
            };
            let lm = [
                [960.0, 340.0],
                [1040.0, 340.0],
                [1000.0, 385.0],
                [970.0, 430.0],
                [1030.0, 430.0],
            ];
            add_face_roi(
                buf,
                Some((1280, 720)),
                3,
                &bbox,
                &gstaffect::meta::FaceParams {
                    score: Some(0.9),
                    landmarks: &lm,
                    ..Default::default()
                },
                None,
            );
        }),
    );
    assert_eq!(out.len(), 1);
    let path = save_png(&out[0], 1280, 720, "affectoverlay-smpte.png");
    eprintln!("frame written to {}", path.display());
    assert!(path.exists());
}
