// SPDX-License-Identifier: MPL-2.0
//! `affectreplay`: records from an NDJSON file become the metas and messages of the contract.

mod common;

use affect::results::{AffectRecord, FaceAffect, FaceBox};
use gst::prelude::*;
use gstaffect::meta::{AffectMessage, affect_meta_faces, face_rois};

const FRAME: u64 = 40_000_000;

fn face(id: u64, v: f32, happy: bool) -> FaceAffect {
    let mut p = [0.02f32; 8];
    p[if happy { 4 } else { 5 }] = 0.86;
    FaceAffect {
        track_id: id,
        bbox: FaceBox {
            x: 8.0 * id as f32,
            y: 4.0,
            width: 16.0,
            height: 20.0,
        },
        valence: v,
        arousal: -0.3,
        probabilities: p,
        ..Default::default()
    }
}

fn write_ndjson(dir: &std::path::Path, recs: &[AffectRecord]) -> String {
    let p = dir.join("affect.ndjson");
    let text: String = recs.iter().map(|r| r.to_json_line() + "\n").collect();
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

fn harness(location: &str, post: bool) -> gst_check::Harness {
    let el = gst::ElementFactory::make("affectreplay")
        .property("location", location)
        .property("post-messages", post)
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    h.set_src_caps_str("video/x-raw,format=RGB,width=64,height=48,framerate=25/1");
    h
}

fn frame(i: u64) -> gst::Buffer {
    let mut b = gst::Buffer::with_size(64 * 48 * 3).unwrap();
    let r = b.get_mut().unwrap();
    r.set_pts(gst::ClockTime::from_nseconds(i * FRAME));
    r.set_duration(gst::ClockTime::from_nseconds(FRAME));
    b
}

#[test]
fn records_become_rois_custom_meta_and_messages() {
    common::init();
    let dir = common::scratch("replay");
    let recs = vec![
        AffectRecord::new(0, face(1, 0.6, true)),
        AffectRecord::new(0, face(2, -0.4, false)),
        AffectRecord::new(2 * FRAME + 1_000_000, face(1, 0.7, true)),
    ];
    let loc = write_ndjson(&dir, &recs);
    let mut h = harness(&loc, true);
    let bus = gst::Bus::new();
    h.element().unwrap().set_bus(Some(&bus));
    h.play();

    for i in 0..3 {
        let out = h.push_and_pull(frame(i)).unwrap();
        let rois = face_rois(&out);
        let faces = affect_meta_faces(&out);
        match i {
            0 => {
                assert_eq!(rois.len(), 2);
                assert_eq!(rois[1].track_id, 2);
                assert_eq!((rois[1].bbox.x, rois[1].bbox.width), (16.0, 16.0));
                let a = rois[1].affect.as_ref().unwrap();
                assert!((a.valence + 0.4).abs() < 1e-6);
                assert_eq!(a.expression(), "Sadness");
                let faces = faces.unwrap().unwrap();
                assert_eq!(faces, vec![recs[0].face.clone(), recs[1].face.clone()]);
            }
            1 => {
                assert!(rois.is_empty());
                assert!(faces.is_none(), "frames without records carry no meta");
            }
            _ => {
                // The record at 81 ms lies inside the third frame [80, 120) ms.
                assert_eq!(rois.len(), 1);
                assert!((faces.unwrap().unwrap()[0].valence - 0.7).abs() < 1e-6);
            }
        }
    }

    let msgs: Vec<AffectMessage> = std::iter::from_fn(|| bus.pop())
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => {
                e.structure().and_then(|s| AffectMessage::try_from(s).ok())
            }
            _ => None,
        })
        .collect();
    assert_eq!(msgs.len(), 2, "one message per frame with records");
    assert_eq!(msgs[0].timestamp, Some(gst::ClockTime::ZERO));
    assert_eq!(msgs[0].running_time, Some(gst::ClockTime::ZERO));
    assert_eq!(msgs[0].faces.len(), 2);
    assert_eq!(
        msgs[1].timestamp,
        Some(gst::ClockTime::from_nseconds(2 * FRAME))
    );
}

fn start_error(location: Option<&str>) -> String {
    let el = gst::ElementFactory::make("affectreplay").build().unwrap();
    if let Some(l) = location {
        el.set_property("location", l);
    }
    let pipe = gst::Pipeline::new();
    let src = gst::ElementFactory::make("videotestsrc")
        .property("num-buffers", 1)
        .build()
        .unwrap();
    let sink = gst::ElementFactory::make("fakesink").build().unwrap();
    pipe.add_many([&src, &el, &sink]).unwrap();
    gst::Element::link_many([&src, &el, &sink]).unwrap();
    let _ = pipe.set_state(gst::State::Playing);
    let bus = pipe.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(10),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .expect("an error or EOS within 10 s");
    pipe.set_state(gst::State::Null).unwrap();
    match msg.view() {
        gst::MessageView::Error(e) => e.error().to_string(),
        _ => panic!("expected an error, got EOS"),
    }
}

#[test]
fn bad_files_are_element_errors_at_start() {
    common::init();
    let dir = common::scratch("replay-bad");
    assert!(start_error(None).contains("`location` is not set"));
    let missing = dir.join("missing.ndjson");
    let e = start_error(Some(missing.to_str().unwrap()));
    assert!(
        e.contains("cannot open") && e.contains("missing.ndjson"),
        "{e}"
    );

    let good = AffectRecord::new(0, face(1, 0.1, true)).to_json_line();
    let bad_path = dir.join("bad.ndjson");
    std::fs::write(
        &bad_path,
        format!("{good}\n\n{}\n", good.replace("0.1", "\"x\"")),
    )
    .unwrap();
    let e = start_error(Some(bad_path.to_str().unwrap()));
    assert!(e.contains("bad.ndjson:3:"), "names file and line: {e}");
}
