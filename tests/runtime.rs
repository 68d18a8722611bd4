// SPDX-License-Identifier: MPL-2.0
//! ONNX Runtime layer against the library `make setup` installs.

mod common;

use affect::runtime::{ExecutionProvider, Model, Role, RuntimeError, SessionConfig};
use ndarray::{ArrayD, IxDyn};

#[test]
fn generated_model_runs_on_cpu_with_expected_numbers() {
    let path = common::write_temp(&common::affine(), "affine");
    let mut m = Model::load(&path, Some(Role::AudioFeature), &SessionConfig::default()).unwrap();
    assert_eq!(m.provider(), ExecutionProvider::Cpu);
    assert_eq!(m.contract().name, "affine-test");
    assert_eq!(m.sha256().len(), 64);
    let x = ArrayD::from_shape_vec(
        IxDyn(&[2, 4]),
        vec![1.0, 1.0, 1.0, 1.0, -2.0, 0.5, 4.0, 0.25],
    )
    .unwrap();
    let out = m.run_f32(&[("x", x.view())]).unwrap();
    let y = out["y"].as_slice().unwrap().to_vec();
    assert_eq!(y, vec![1.5, 1.5, 3.0, 14.0, -1.5, 0.5, 12.0, 11.0]);
    // The same run read in place (views into ONNX Runtime's buffers): the same numbers.
    let (shape, in_place) = m
        .run_f32_with(&[("x", x.view())], |out| {
            let v = &out["y"];
            (v.shape().to_vec(), v.iter().copied().collect::<Vec<f32>>())
        })
        .unwrap();
    assert_eq!((shape, in_place), (vec![2, 4], y));
    assert!(
        m.runtime().version().starts_with("1."),
        "{}",
        m.runtime().version()
    );

    // A wrongly shaped input is refused by the wrapper, before ONNX Runtime sees it.
    let bad = ArrayD::<f32>::zeros(IxDyn(&[2, 5]));
    let err = m.run_f32(&[("x", bad.view())]).unwrap_err();
    assert!(err.to_string().contains("has shape [2, 5]"), "{err}");
    let err = m.run_f32(&[]).unwrap_err();
    assert!(err.to_string().contains("input `x` not given"), "{err}");
}

#[test]
fn gpu_providers_fail_cleanly_without_gpu() {
    let path = common::write_temp(&common::affine(), "affine-gpu");
    let rt = affect::runtime::runtime(None).unwrap();
    if rt.available_providers().contains(&"CUDAExecutionProvider") {
        eprintln!("skipping: this ONNX Runtime has CUDA; the GPU machine checks this path");
        return;
    }
    for p in [ExecutionProvider::Cuda, ExecutionProvider::TensorRt] {
        let cfg = SessionConfig {
            provider: p,
            ..Default::default()
        };
        let err = Model::load(&path, None, &cfg).unwrap_err();
        match &err {
            RuntimeError::Provider { provider, message } => {
                assert_eq!(*provider, p);
                assert!(message.contains("has no"), "{message}");
            }
            other => panic!("{p}: expected a provider error, got {other}"),
        }
        assert!(
            err.to_string().contains("execution-provider=")
                || err.to_string().contains("onnxruntime-gpu")
        );
    }
    let auto = Model::load(
        &path,
        None,
        &SessionConfig {
            provider: ExecutionProvider::Auto,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(auto.provider(), ExecutionProvider::Cpu);
    assert!(
        auto.provider_note().starts_with("auto: using CPU"),
        "{}",
        auto.provider_note()
    );
}

#[test]
fn bad_models_give_clear_errors() {
    let cfg = SessionConfig::default();

    // Missing contract key.
    let mut g = common::affine();
    g.meta("affect.input.hop", "");
    let p = common::write_temp(&g, "bad-hop");
    let err = Model::load(&p, None, &cfg).unwrap_err();
    assert!(matches!(err, RuntimeError::Contract { .. }), "{err}");
    assert!(err.to_string().contains("affect.input.hop"), "{err}");

    // No contract at all.
    let mut g = affect::onnx::GraphBuilder::new("plain");
    g.input("x", &[4.into()]).output("y", &[4.into()]);
    g.node("Relu", &["x"], &["y"], &[]);
    let p = common::write_temp(&g, "no-contract");
    let err = Model::load(&p, None, &cfg).unwrap_err();
    assert!(
        err.to_string().contains("`affect.contract` is missing"),
        "{err}"
    );

    // Wrong role.
    let p = common::write_temp(&common::affine(), "affine-role");
    let err = Model::load(&p, Some(Role::Fusion), &cfg).unwrap_err();
    assert!(
        err.to_string()
            .contains("model role is `audio-feature`, this element needs `fusion`"),
        "{err}"
    );

    // Contract disagrees with the graph: window 8 but the input takes 4.
    let mut g = common::affine();
    g.meta("affect.input.window", "8");
    let p = common::write_temp(&g, "affine-window");
    let err = Model::load(&p, None, &cfg).unwrap_err();
    assert!(err.to_string().contains("last dimension 8"), "{err}");

    // Not ONNX at all, and a missing file.
    let p = std::env::temp_dir().join(format!("affect-not-onnx-{}.onnx", std::process::id()));
    std::fs::write(&p, b"this is not a model").unwrap();
    let err = Model::load(&p, None, &cfg).unwrap_err();
    assert!(matches!(err, RuntimeError::ModelLoad { .. }), "{err}");
    let err = Model::load(std::path::Path::new("/nonexistent/model.onnx"), None, &cfg).unwrap_err();
    assert!(matches!(err, RuntimeError::ModelFile { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/model.onnx"));
}

#[test]
fn loads_of_one_model_share_one_session_until_the_last_handle_goes() {
    // A graph of its own (a distinct sha256), so other tests' models do not count.
    let mut g = common::affine();
    g.constant("shared_marker", &[1], &[42.0]);
    let path = common::write_temp(&g, "affine-shared");
    let a_copy = common::write_temp(&g, "affine-shared-copy");
    let sha = affect::weights::sha256_hex(&std::fs::read(&path).unwrap());
    let sessions = || {
        affect::runtime::shared_sessions()
            .into_iter()
            .filter(|s| s.sha256 == sha)
            .collect::<Vec<_>>()
    };
    let cfg = SessionConfig::default();
    let mut a = Model::load(&path, Some(Role::AudioFeature), &cfg).unwrap();
    assert!(!a.is_shared());
    // The same bytes from another file, from another thread: the same session.
    let b = std::thread::spawn(move || Model::load(&a_copy, None, &cfg).unwrap())
        .join()
        .unwrap();
    let s = sessions();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!((s[0].users, s[0].provider), (2, ExecutionProvider::Cpu));
    assert!(a.is_shared() && b.is_shared());
    // Other session settings are another session; so is an exclusive load.
    let two_threads = SessionConfig {
        threads: 2,
        ..SessionConfig::default()
    };
    let c = Model::load(&path, None, &two_threads).unwrap();
    let exclusive = SessionConfig {
        exclusive: true,
        ..SessionConfig::default()
    };
    let mut d = Model::load(&path, None, &exclusive).unwrap();
    assert!(!d.is_shared());
    let want = if affect::runtime::available_cores() >= 2 {
        2
    } else {
        1
    };
    assert_eq!(
        sessions().len(),
        want,
        "threads capped to the cores decide the key"
    );
    // A role check still applies per load: the shared session is an audio model.
    let err = Model::load(&path, Some(Role::Fusion), &SessionConfig::default()).unwrap_err();
    assert!(err.to_string().contains("role"), "{err}");
    // Runs through either handle give the same numbers.
    let x = ArrayD::from_shape_vec(IxDyn(&[1, 4]), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let ya = a.run_f32(&[("x", x.view())]).unwrap();
    let yd = d.run_f32(&[("x", x.view())]).unwrap();
    assert_eq!(ya["y"], yd["y"]);
    // The session goes with its last handle.
    drop((b, c));
    assert_eq!(sessions().iter().map(|s| s.users).collect::<Vec<_>>(), [1]);
    drop(a);
    assert!(sessions().is_empty());
}
