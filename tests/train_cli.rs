// SPDX-License-Identifier: MPL-2.0
//! `affect-train synth → fit → export → ensemble` on a small synthetic data set: exit
//! codes, output files, export = fit's best.onnx byte for byte, an ensemble that the
//! runtime loads as a fusion model and that is never worse than its best member on the
//! validation split, and clear errors for bad input.
#![cfg(feature = "train")]

mod trainer;

use std::path::Path;

use affect::runtime::{ExecutionProvider, InputSpec, Model, Role, SessionConfig};
use trainer::{failed, ok, run, s, small_fit_args, temp};

/// The validation metric a member/ensemble line prints (`...: 0.1234`).
fn metric(line: &str) -> f64 {
    line.rsplit(' ').next().unwrap().trim().parse().unwrap()
}

#[test]
fn synth_fit_export_ensemble() {
    let root = temp("cli-root");
    let data = root.join("data");
    ok(&[
        "synth",
        "--out",
        s(&data),
        "--train",
        "12",
        "--val",
        "4",
        "--frames",
        "96",
    ]);
    assert!(data.join("features/synth_train_000.safetensors").is_file());
    assert!(
        data.join("annotations/VA_Estimation_Challenge/Validation_Set/synth_val_003.txt")
            .is_file()
    );
    let mut runs = Vec::new();
    for model in ["attention", "tcn"] {
        let out = root.join(model);
        let mut args = small_fit_args(&data, model, &out);
        args.extend_from_slice(&["--epochs", "4"]);
        let stdout = ok(&args);
        assert!(stdout.contains("best epoch"), "{stdout}");
        for f in [
            "best.onnx",
            "report.json",
            "curves.png",
            "last.bpk",
            "spec.json",
        ] {
            assert!(out.join(f).is_file(), "{model}: {f} missing");
        }
        runs.push(out);
    }
    // The expression task trains and reports macro-F1.
    let expr = root.join("expr");
    ok(&[
        "fit",
        "--data",
        s(&data),
        "--task",
        "expr",
        "--model",
        "attention",
        "--out",
        s(&expr),
        "--window",
        "16",
        "--hidden",
        "16",
        "--epochs",
        "2",
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(expr.join("report.json")).unwrap()).unwrap();
    let f1 = report["epochs"][1]["f1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&f1), "{report}");
    assert!(report["epochs"][1]["ccc"].is_null());
    // export = the best.onnx fit wrote.
    let exported = root.join("tcn.onnx");
    ok(&["export", "--run", s(&runs[1]), "--out", s(&exported)]);
    assert_eq!(
        std::fs::read(&exported).unwrap(),
        std::fs::read(runs[1].join("best.onnx")).unwrap()
    );
    // ensemble: loads as a fusion model; the search tries each member alone, so it is
    // never worse than the best member on the validation split.
    let ens = root.join("ensemble.onnx");
    let a = runs[0].join("best.onnx");
    let b = runs[1].join("best.onnx");
    let stdout = ok(&[
        "ensemble",
        "--member",
        s(&a),
        "--member",
        s(&b),
        "--data",
        s(&data),
        "--task",
        "va",
        "--out",
        s(&ens),
        "--trials",
        "50",
    ]);
    let members: Vec<f64> = stdout
        .lines()
        .filter(|l| l.starts_with("member"))
        .map(metric)
        .collect();
    let best = stdout
        .lines()
        .find(|l| l.starts_with("weights"))
        .map(metric)
        .unwrap();
    assert_eq!(members.len(), 2, "{stdout}");
    assert!(
        best >= members.iter().fold(f64::MIN, |m, &x| m.max(x)) - 5e-5,
        "{stdout}"
    );
    let config = SessionConfig {
        provider: ExecutionProvider::Cpu,
        ..Default::default()
    };
    let m = Model::load(&ens, Some(Role::Fusion), &config).unwrap();
    let InputSpec::Fusion(f) = &m.contract().input else {
        panic!("not a fusion contract")
    };
    assert_eq!((f.window, f.visual_dim, f.audio_dim), (16, 16, 12));
    assert_eq!(f.visual_model.as_ref().unwrap().name, "synth");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn bad_input_is_a_clear_error() {
    let root = temp("bad");
    let e = failed(&[
        "fit",
        "--data",
        s(&root.join("missing")),
        "--task",
        "va",
        "--out",
        s(&root),
    ]);
    assert!(e.contains("missing") && e.contains("not a folder"), "{e}");
    let e = failed(&[
        "export",
        "--run",
        s(&root.join("none")),
        "--out",
        s(&root.join("x.onnx")),
    ]);
    assert!(e.contains("spec.json"), "{e}");
    let e = failed(&["synth", "--out", s(&root), "--missing", "2"]);
    assert!(e.contains("--missing"), "{e}");
    let one = root.join("one.onnx");
    let e = failed(&[
        "ensemble",
        "--member",
        s(&one),
        "--data",
        s(&root),
        "--task",
        "va",
        "--out",
        s(&root.join("e.onnx")),
    ]);
    assert!(e.contains("at least two"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn fit_with_pseudo_labels_from_a_teacher() {
    use affect::dataset::{DataRoot, Labels, Split, Task};
    let root = temp("pseudo");
    let data = root.join("data");
    ok(&[
        "synth",
        "--out",
        s(&data),
        "--train",
        "3",
        "--val",
        "2",
        "--frames",
        "48",
        "--invalid",
        "0.3",
    ]);
    let fit_args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "fit",
            "--data",
            s(&data),
            "--task",
            "va",
            "--out",
            s(out),
            "--window",
            "16",
            "--hidden",
            "8",
            "--epochs",
            "1",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let teacher = root.join("teacher");
    let args = fit_args(&teacher, &[]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let onnx = teacher.join("best.onnx");
    let student = root.join("student");
    let args = fit_args(
        &student,
        &["--pseudo-labels", s(&onnx), "--pseudo-weight", "0.25"],
    );
    let stdout = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(stdout.contains("pseudo-labels from"), "{stdout}");
    // Expected: the training frames whose VA label is invalid but that have a modality
    // (window = hop, so each frame is in one sequence), counted from the data set itself.
    let subjects = DataRoot::new(&data)
        .unwrap()
        .load(Task::Va, Split::Train, None)
        .unwrap();
    let mut want = 0;
    for sub in &subjects {
        let Labels::Va(l) = &sub.labels else {
            panic!("not VA labels")
        };
        let f = &sub.features;
        for (i, v) in l.iter().enumerate().take(f.frames()) {
            let invalid = v[0] == -5.0 || v[1] == -5.0;
            if invalid && (f.visual_mask[i] > 0.0 || f.audio_mask[i] > 0.0) {
                want += 1;
            }
        }
    }
    assert!(want > 0, "the synthetic set has no unlabelled frame");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(student.join("report.json")).unwrap())
            .unwrap();
    let p = &report["config"]["pseudo_labels"];
    assert_eq!(p["candidates"].as_u64(), Some(want), "{report}");
    assert_eq!(p["frames"].as_u64(), Some(want), "{report}");
    assert_eq!(p["weight"].as_f64(), Some(0.25));
    assert!(report["epochs"][0]["ccc"].is_array(), "{report}");
    // Without the option, no pseudo-labels in the report; a bad weight is a clear error.
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(teacher.join("report.json")).unwrap())
            .unwrap();
    assert!(r["config"].get("pseudo_labels").is_none(), "{r}");
    let args = fit_args(
        &root.join("bad"),
        &["--pseudo-labels", s(&onnx), "--pseudo-weight", "0"],
    );
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("weight must be in (0, 1]"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn help_describes_the_trainer() {
    let help = ok(&["--help"]);
    assert!(
        help.starts_with("Trains gst-affect's fusion models"),
        "{help}"
    );
    assert!(!help.contains("Core of gst-affect"), "{help}");
    for sub in ["extract", "fit", "eval", "ensemble", "--lookahead-frames"] {
        assert!(help.contains(sub), "{sub}: {help}");
    }
}

/// The kind of audio mask travels from the feature files into the exported model, and a
/// model is not evaluated on features with another kind (avfuse would give it other
/// masks than the ones it is scored on), nor trained on a mix.
#[test]
fn the_audio_mask_kind_goes_from_the_data_into_the_model() {
    use affect::dataset::FeatureFile;
    let root = temp("cli-audio-mask");
    let data = root.join("data");
    ok(&[
        "synth",
        "--out",
        s(&data),
        "--train",
        "4",
        "--val",
        "2",
        "--frames",
        "64",
    ]);
    let features = data.join("features");
    let relabel = |name: &str, kind: &str| {
        let p = features.join(format!("{name}.safetensors"));
        let mut f = FeatureFile::read(&p).unwrap();
        f.meta.audio_mask = kind.into();
        f.write(&p).unwrap();
    };
    // A mix of kinds in one split: refused.
    relabel("synth_train_000", "speech");
    let out = root.join("mixed");
    let mut args = small_fit_args(&data, "attention", &out);
    args.extend_from_slice(&["--epochs", "1"]);
    let e = failed(&args);
    assert!(
        e.contains("audio mask") && e.contains("--audio-mask"),
        "{e}"
    );
    // All speech-gated: the exported model declares it.
    for i in 1..4 {
        relabel(&format!("synth_train_{i:03}"), "speech");
    }
    for i in 0..2 {
        relabel(&format!("synth_val_{i:03}"), "speech");
    }
    let out = root.join("speech");
    let mut args = small_fit_args(&data, "attention", &out);
    args.extend_from_slice(&["--epochs", "1"]);
    ok(&args);
    let model = out.join("best.onnx");
    let c = affect::runtime::ModelContract::read_file(&model).unwrap();
    let affect::runtime::InputSpec::Fusion(f) = &c.input else {
        panic!("not a fusion model")
    };
    assert_eq!(f.audio_mask, affect::runtime::AudioMaskKind::Speech);
    // Evaluated on speech-gated features: fine; on presence masks: a clear error.
    ok(&[
        "eval",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--task",
        "va",
    ]);
    for i in 0..2 {
        relabel(&format!("synth_val_{i:03}"), "present");
    }
    let e = failed(&[
        "eval",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--task",
        "va",
    ]);
    assert!(
        e.contains("affect.fusion.audio-mask = speech") && e.contains("--audio-mask speech"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
