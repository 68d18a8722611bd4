// SPDX-License-Identifier: MPL-2.0
//! The valence/arousal timeline example (`examples/va_timeline.rs`) draws a PNG of the
//! right size from NDJSON records and names the line of a malformed record.

#[allow(dead_code)]
#[path = "../examples/va_timeline.rs"]
mod va_timeline;

use std::path::PathBuf;

use affect::results::{AffectRecord, FaceAffect, FaceBox};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gst-affect-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Two tracks over 2 s at 25 fps; track 2 leaves for half a second and comes back.
fn ndjson() -> String {
    let mut out = String::new();
    for frame in 0..50u64 {
        let t = frame as f32 / 25.0;
        for id in [1u64, 2] {
            if id == 2 && (20..33).contains(&frame) {
                continue;
            }
            let mut probabilities = [0.0f32; 8];
            probabilities[if id == 1 { 4 } else { 5 }] = 1.0;
            let sign = if id == 1 { 1.0 } else { -1.0 };
            let mut r = AffectRecord::new(
                frame * 40_000_000,
                FaceAffect {
                    track_id: id,
                    bbox: FaceBox {
                        x: 10.0 * id as f32,
                        y: 5.0,
                        width: 40.0,
                        height: 40.0,
                    },
                    valence: sign * (t * 2.0).sin() * 0.8,
                    arousal: sign * (t * 3.0).cos() * 0.5,
                    probabilities,
                    ..Default::default()
                },
            );
            r.duration = Some(40_000_000);
            out.push_str(&r.to_json_line());
            out.push('\n');
        }
    }
    out
}

#[test]
fn draws_a_png_of_the_right_size() {
    let dir = scratch("va-timeline");
    let input = dir.join("affect.ndjson");
    std::fs::write(&input, ndjson()).unwrap();
    let output = dir.join("va-timeline.png");
    let n = va_timeline::run(&input, &output).expect("draws");
    assert_eq!(n, 87);
    let img = image::open(&output).expect("a readable PNG").to_rgb8();
    assert_eq!(img.dimensions(), va_timeline::SIZE);
    // Lines in both track colours were drawn, and no temporary file is left behind.
    let has = |c: [u8; 3]| img.pixels().any(|p| p.0 == c);
    assert!(has([31, 119, 180]) && has([255, 127, 14]));
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");

    // No records at all still gives a (blank) chart.
    let empty = dir.join("empty.ndjson");
    std::fs::write(&empty, "\n").unwrap();
    assert_eq!(va_timeline::run(&empty, &dir.join("empty.png")), Ok(0));
    assert_eq!(
        image::image_dimensions(dir.join("empty.png")).unwrap(),
        va_timeline::SIZE
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_malformed_line_is_an_error_naming_it() {
    let dir = scratch("va-timeline-bad");
    let good = ndjson();
    let mut lines: Vec<&str> = good.lines().take(4).collect();
    lines.insert(2, "{\"pts\": 12, \"track_id\": oops}");
    let input = dir.join("bad.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let output = dir.join("bad.png");
    let err = va_timeline::run(&input, &output).unwrap_err();
    assert!(
        err.contains("bad.ndjson: line 3:"),
        "error should name the file and line 3: {err}"
    );
    assert!(!output.exists(), "no picture from bad input");

    // A well-formed line with an unknown expression is refused too, with its line.
    let unknown = good.lines().next().unwrap().replace("Happiness", "Joy");
    let err = va_timeline::parse_ndjson(&format!("\n{unknown}\n")).unwrap_err();
    assert!(err.starts_with("line 2:") && err.contains("Joy"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
