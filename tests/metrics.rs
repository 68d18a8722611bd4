// SPDX-License-Identifier: MPL-2.0
//! `affect::metrics` against reference values computed independently by
//! tests/data/metrics/make_reference.py (the CCC formula in numpy, scikit-learn's
//! `f1_score(average="macro", labels=range(8))` and `confusion_matrix`), to 1e-9.

use affect::metrics::{ConfusionMatrix, MetricError, ZeroDivision, ccc, macro_f1, va_ccc};
use serde_json::Value;

const TOL: f64 = 1e-9;

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/metrics/reference.json"
    );
    let text = std::fs::read_to_string(path).expect("reference.json");
    serde_json::from_str(&text).expect("reference.json parses")
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn pairs(v: &Value) -> Vec<[f32; 2]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = f32s(r);
            [r[0], r[1]]
        })
        .collect()
}

fn i64s(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn close(name: &str, got: f64, want: &Value) {
    let want = want.as_f64().unwrap();
    assert!(
        got.is_finite() && (got - want).abs() <= TOL,
        "{name}: got {got}, reference {want}"
    );
}

#[test]
fn ccc_matches_numpy() {
    let r = reference();
    let cases = r["ccc"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let got = ccc(&f32s(&c["pred"]), &f32s(&c["truth"]));
        if c.get("error").is_some() {
            assert!(
                matches!(got, Err(MetricError::NoValidFrames { .. })),
                "{name}: {got:?}"
            );
        } else {
            close(name, got.unwrap(), &c["ccc"]);
        }
    }
}

#[test]
fn va_ccc_matches_numpy() {
    let r = reference();
    for c in r["va"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let got = va_ccc(&pairs(&c["pred"]), &pairs(&c["truth"]));
        if c.get("error").is_some() {
            let e = got.unwrap_err();
            assert!(
                matches!(e, MetricError::NoValidFrames { .. }),
                "{name}: {e}"
            );
            assert!(e.to_string().contains("no valid frame"), "{e}");
            continue;
        }
        let got = got.unwrap();
        close(name, got.valence, &c["valence"]);
        close(name, got.arousal, &c["arousal"]);
        close(name, got.mean, &c["mean"]);
        assert_eq!(got.frames as u64, c["frames"].as_u64().unwrap(), "{name}");
    }
}

#[test]
fn macro_f1_and_confusion_match_sklearn() {
    let r = reference();
    for c in r["f1"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (pred, truth) = (i64s(&c["pred"]), i64s(&c["truth"]));
        if c.get("error").is_some() {
            assert!(
                matches!(
                    macro_f1(&pred, &truth),
                    Err(MetricError::NoValidFrames { .. })
                ),
                "{name}"
            );
            continue;
        }
        close(
            name,
            macro_f1(&pred, &truth).unwrap(),
            &c["macro_f1_zero_division_0"],
        );
        let m = ConfusionMatrix::new(&pred, &truth).unwrap();
        close(
            name,
            m.macro_f1(ZeroDivision::One),
            &c["macro_f1_zero_division_1"],
        );
        let per = m.f1_per_class(ZeroDivision::Zero);
        for (k, want) in c["f1_per_class_zero_division_0"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            close(&format!("{name} class {k}"), per[k], want);
        }
        for (t, row) in c["confusion"].as_array().unwrap().iter().enumerate() {
            for (p, want) in row.as_array().unwrap().iter().enumerate() {
                assert_eq!(m.counts[t][p], want.as_u64().unwrap(), "{name} [{t}][{p}]");
            }
        }
    }
}
