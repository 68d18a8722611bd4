// SPDX-License-Identifier: MPL-2.0
//! The trainer reports what `avfuse` delivers: for every model type, the validation
//! metric `fit` writes in `report.json` (selection and early stopping) equals
//! `affect-train eval --mode stream` of the exported `best.onnx` on the same split; a
//! model trained with `--lookahead-frames K` declares K in its contract and `eval` reads
//! exactly K future frames.
#![cfg(feature = "train")]

mod trainer;

use std::path::{Path, PathBuf};

use affect::runtime::{InputSpec, Model, Role, SessionConfig};
use trainer::{failed, ok, s, small_fit_args, temp};

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A synthetic task with a 2-frame lag between features and labels and cross-modal
/// structure (`affect-train synth`): 10 training and 4 validation videos of 120 frames.
fn synth(root: &Path) -> PathBuf {
    let data = root.join("data");
    ok(&[
        "synth",
        "--out",
        s(&data),
        "--train",
        "10",
        "--val",
        "4",
        "--frames",
        "120",
        "--seed",
        "3",
    ]);
    data
}

/// `fit` (small sizes, 3 epochs) then `eval --mode stream` of its best.onnx: (report,
/// eval json).
fn fit_and_eval(
    data: &Path,
    out: &Path,
    model: &str,
    extra: &[&str],
) -> (serde_json::Value, serde_json::Value) {
    let mut args = small_fit_args(data, model, out);
    args.extend_from_slice(&["--epochs", "3", "--patience", "0"]);
    args.extend_from_slice(extra);
    let stdout = ok(&args);
    assert!(stdout.contains("as avfuse streams it"), "{stdout}");
    let eval_json = out.join("eval.json");
    ok(&[
        "eval",
        "--model",
        s(&out.join("best.onnx")),
        "--data",
        s(data),
        "--task",
        "va",
        "--mode",
        "stream",
        "--json",
        s(&eval_json),
    ]);
    (json(&out.join("report.json")), json(&eval_json))
}

#[test]
fn every_model_reports_the_metric_eval_stream_measures_on_its_export() {
    let root = temp("stream-all");
    let data = synth(&root);
    for model in ["attention", "tcn", "mfn", "mctn", "transformer"] {
        let (report, eval) = fit_and_eval(&data, &root.join(model), model, &[]);
        assert_eq!(report["validation"], "stream", "{model}: {report}");
        let best = report["best_metric"].as_f64().unwrap();
        let streamed = eval["ccc"]["mean"].as_f64().unwrap();
        assert!(
            (best - streamed).abs() <= 0.01,
            "{model}: report says {best:.4}, eval --mode stream of best.onnx says {streamed:.4}"
        );
        // The chunk metric stays in the report, labelled, beside the streamed one.
        let epoch = &report["epochs"][report["best_epoch"].as_u64().unwrap() as usize - 1];
        assert_eq!(epoch["metric"].as_f64().unwrap(), best);
        assert!(epoch["chunk_metric"].as_f64().is_some(), "{model}: {epoch}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn lookahead_frames_are_declared_and_streamed_with_k_future_frames() {
    let root = temp("stream-ahead");
    let data = synth(&root);
    let out = root.join("k2");
    let (report, eval) = fit_and_eval(&data, &out, "transformer", &["--lookahead-frames", "2"]);
    let best = report["best_metric"].as_f64().unwrap();
    let streamed = eval["ccc"]["mean"].as_f64().unwrap();
    assert!((best - streamed).abs() <= 0.01, "{best} vs {streamed}");
    let m = Model::load(
        &out.join("best.onnx"),
        Some(Role::Fusion),
        &SessionConfig::default(),
    )
    .unwrap();
    let InputSpec::Fusion(f) = &m.contract().input else {
        panic!("not a fusion model")
    };
    assert_eq!((f.window, f.lookahead), (16, 2));
    assert_eq!(
        m.contract().prop("affect.fusion.lookahead-frames"),
        Some("2")
    );
    // A window of its own size is refused, and chunk mode cannot run it.
    let e = failed(&[
        "eval",
        "--model",
        s(&out.join("best.onnx")),
        "--data",
        s(&data),
        "--mode",
        "chunk",
    ]);
    assert!(e.contains("use --mode stream"), "{e}");
    let e = failed(&[
        "fit",
        "--data",
        s(&data),
        "--task",
        "va",
        "--out",
        s(&root.join("bad")),
        "--window",
        "8",
        "--lookahead-frames",
        "8",
    ]);
    assert!(e.contains("less than the window"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}
