// SPDX-License-Identifier: MPL-2.0
//! `facecrop mesh=true`: the 468-point mesh of every tracked face on the face ROI
//! (`mesh`, `mesh-score`) and the crop meta, in frame pixels, where the detector's own
//! eye and mouth keypoints say the face is; `mesh-interval` reuses meshes in between.

mod common;

use gstaffect::meta::{FaceCropMeta, FaceRoi, face_rois};

/// (the face ROIs, whether each crop meta carries the same mesh) of every frame of
/// single_face.mp4 through facecrop with `props`.
fn run(props: &str) -> Vec<(Vec<FaceRoi>, bool)> {
    let desc = format!(
        "filesrc location={} ! decodebin ! videoconvert ! facecrop {props} ! fakesink name=out",
        common::media("single_face.mp4").display()
    );
    common::collect(&desc, 120, |b| {
        let rois = face_rois(b);
        let same = b.iter_meta::<FaceCropMeta>().all(|m| {
            let c = m.data();
            let roi = rois.iter().find(|r| r.track_id == c.track_id);
            match (&c.mesh, roi) {
                (Some(mesh), Some(r)) => mesh
                    .points
                    .iter()
                    .zip(&r.mesh)
                    .all(|(a, b)| (0..3).all(|k| (a[k] - b[k]).abs() < 1e-3)),
                (None, Some(r)) => r.mesh.is_empty(),
                _ => false,
            }
        });
        (rois, same)
    })
}

fn mid(a: [f32; 3], b: [f32; 3]) -> [f32; 2] {
    [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

#[test]
fn every_tracked_face_gets_a_mesh_where_the_detector_sees_eyes_and_mouth() {
    let frames = run("mesh=true");
    assert!(frames.len() >= 60, "{} frames", frames.len());
    let mut faces = 0;
    let mut worst = 0.0f32;
    for (rois, same) in &frames {
        assert!(same, "crop meta and ROI carry the same mesh");
        for r in rois {
            faces += 1;
            assert_eq!(r.mesh.len(), 468, "track {}", r.track_id);
            assert!(r.mesh_score.unwrap() > 0.9, "{:?}", r.mesh_score);
            let w = r.bbox.width;
            // Every point near the box (the mesh covers the face, the box too).
            for p in &r.mesh {
                assert!(p.iter().all(|v| v.is_finite()));
                assert!(
                    p[0] > r.bbox.x - 0.25 * w
                        && p[0] < r.bbox.x + 1.25 * w
                        && p[1] > r.bbox.y - 0.25 * r.bbox.height
                        && p[1] < r.bbox.y + 1.25 * r.bbox.height,
                    "{p:?} far from {:?}",
                    r.bbox
                );
            }
            // BlazeFace keypoints: eye (image left), eye (image right), nose, mouth.
            let k = &r.landmarks;
            let m = &r.mesh;
            let d = [
                dist(mid(m[33], m[133]), k[0]),
                dist(mid(m[263], m[362]), k[1]),
                dist(mid(m[13], m[14]), k[3]),
            ];
            for v in d {
                worst = worst.max(v / w);
            }
        }
    }
    assert!(faces >= 60, "{faces} faces");
    eprintln!("{faces} faces, worst keypoint distance {worst:.3} face widths");
    // Eye centres and mouth within 8 % of the face width of the detector's keypoints
    // (the two models place them independently; measured worst 0.05 on this clip).
    assert!(worst < 0.08, "worst {worst}");
}

#[test]
fn mesh_interval_reuses_meshes_moved_with_the_box() {
    let every = run("mesh=true");
    let fifth = run("mesh=true mesh-interval=5");
    assert_eq!(every.len(), fifth.len());
    let mut sum = 0.0f32;
    let mut n = 0;
    for ((a, _), (b, _)) in every.iter().zip(&fifth) {
        for (ra, rb) in a.iter().zip(b) {
            assert_eq!(rb.mesh.len(), 468, "a mesh on every frame");
            for (p, q) in ra.mesh.iter().zip(&rb.mesh) {
                sum += dist([p[0], p[1]], [q[0], q[1]]);
                n += 1;
            }
        }
    }
    // A talking head moves little in 5 frames: the reused meshes stay within a few
    // pixels of fresh ones on average.
    let mean = sum / n as f32;
    eprintln!("mesh-interval=5 vs 1: mean {mean:.2} px");
    assert!(mean < 4.0, "mean {mean} px");
    // Without mesh=true: no mesh.
    let none = run("");
    assert!(
        none.iter()
            .flat_map(|f| &f.0)
            .all(|r| r.mesh.is_empty() && r.mesh_score.is_none())
    );
}
