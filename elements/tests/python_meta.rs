// SPDX-License-Identifier: MPL-2.0
//! A Python (PyGObject) program reads the custom meta and the ROI params from buffers:
//! the way C and Python applications consume gst-affect's results (the active-speaker
//! fields `speaking` / `speaker` included).

mod common;

use affect::results::{AffectRecord, FaceAffect, FaceBox};

#[test]
fn python_reads_custom_meta_and_roi_params() {
    let plugin_dir = common::plugin_dir();
    assert!(
        plugin_dir.join("libgstaffect.so").exists(),
        "libgstaffect.so not found in {} — build the plugin first (`make test` does)",
        plugin_dir.display()
    );
    let dir = common::scratch("python-meta");
    let face = |id: u64, v: f32, top: usize| {
        let mut p = [0.01f32; 8];
        p[top] = 0.93;
        FaceAffect {
            track_id: id,
            bbox: FaceBox {
                x: 4.0 * id as f32,
                y: 6.0,
                width: 20.0,
                height: 24.0,
            },
            valence: v,
            arousal: 0.125,
            probabilities: p,
            ..Default::default()
        }
    };
    let recs = [
        AffectRecord::new(0, face(3, 0.5, 4)),
        AffectRecord::new(
            0,
            FaceAffect {
                speaking: Some(0.75),
                speaker: Some(true),
                ..face(5, -0.25, 6)
            },
        ),
        AffectRecord::new(80_000_000, face(3, 0.75, 0)),
    ];
    let ndjson = dir.join("affect.ndjson");
    std::fs::write(
        &ndjson,
        recs.iter()
            .map(|r| r.to_json_line() + "\n")
            .collect::<String>(),
    )
    .unwrap();

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/python/read_affect_meta.py");
    // Debian's python3 has PyGObject; another python3 may come first on PATH.
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&ndjson)
        .env("GST_PLUGIN_PATH", &plugin_dir)
        .env("GST_REGISTRY", dir.join("registry.bin"))
        .output()
        .expect("runs /usr/bin/python3 (apt package python3-gi)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let frames: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(frames.len(), 3);
    // Frame 0: two faces in the custom meta and as ROIs with `face` and `affect` params.
    let meta = &frames[0]["meta"];
    assert_eq!(meta["n-faces"], 2);
    let faces = meta["faces"].as_array().unwrap();
    assert_eq!(faces[0]["track-id"], 3);
    assert_eq!(faces[0]["expression"], "Happiness");
    assert_eq!(faces[0]["valence"], 0.5);
    assert_eq!(faces[1]["expression"], "Surprise");
    assert_eq!(faces[1]["valence"], -0.25);
    assert_eq!(faces[1]["probabilities"].as_array().unwrap().len(), 8);
    let rois = frames[0]["rois"].as_array().unwrap();
    assert_eq!(rois.len(), 2);
    assert_eq!(rois[1]["type"], "face");
    assert_eq!(
        (
            rois[1]["x"].as_u64(),
            rois[1]["w"].as_u64(),
            rois[1]["h"].as_u64()
        ),
        (Some(20), Some(20), Some(24))
    );
    assert_eq!(rois[1]["face"]["track-id"], 5);
    assert_eq!(rois[1]["affect"]["arousal"], 0.125);
    assert_eq!(rois[1]["affect"]["expression-index"], 6);
    // Who speaks, in the ROI param and the custom meta; absent where not scored.
    assert_eq!(rois[1]["affect"]["speaking"], 0.75);
    assert_eq!(rois[1]["affect"]["speaker"], true);
    assert_eq!(faces[1]["speaker"], true);
    assert!(faces[0].get("speaking").is_none() && rois[0]["affect"].get("speaker").is_none());
    // Frame 1 has no records, frame 2 one face.
    assert!(frames[1]["meta"].is_null());
    assert_eq!(frames[2]["pts"], 80_000_000);
    assert_eq!(frames[2]["meta"]["faces"][0]["expression"], "Neutral");
    assert_eq!(frames[2]["rois"][0]["affect"]["valence"], 0.75);
}
