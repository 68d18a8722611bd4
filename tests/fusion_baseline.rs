// SPDX-License-Identifier: MPL-2.0
//! The bundled `weights/fusion-baseline.onnx` through ONNX Runtime: contract, hand-derived
//! numbers, masking, garbage inputs, dynamic batch/time, and byte-equality with the generator.

use affect::fusion::{self, CIRCUMPLEX, OTHER_LOGIT, vocal};
use affect::runtime::{InputSpec, Model, Role, SessionConfig};
use affect::weights::weights_dir;
use ndarray::{Array2, Array3, ArrayD};

fn load() -> Model {
    Model::load(
        &weights_dir().join("fusion-baseline.onnx"),
        Some(Role::Fusion),
        &SessionConfig::default(),
    )
    .unwrap()
}

/// Runs the model on `[B,T,·]` inputs; returns (va `[B,T,2]`, expr `[B,T,8]`).
fn run(
    m: &mut Model,
    visual: Array3<f32>,
    audio: Array3<f32>,
    vm: Array2<f32>,
    am: Array2<f32>,
) -> (ArrayD<f32>, ArrayD<f32>) {
    let (v, a, vm, am) = (
        visual.into_dyn(),
        audio.into_dyn(),
        vm.into_dyn(),
        am.into_dyn(),
    );
    let mut out = m
        .run_f32(&[
            ("visual", v.view()),
            ("audio", a.view()),
            ("visual_mask", vm.view()),
            ("audio_mask", am.view()),
        ])
        .unwrap();
    (out.remove("va").unwrap(), out.remove("expr").unwrap())
}

/// One frame (B = T = 1).
fn frame(m: &mut Model, probs: [f32; 8], vm: f32, audio: &[f32], am: f32) -> ([f32; 2], [f32; 8]) {
    let (va, expr) = run(
        m,
        Array3::from_shape_vec((1, 1, 8), probs.to_vec()).unwrap(),
        Array3::from_shape_vec((1, 1, 96), audio.to_vec()).unwrap(),
        Array2::from_elem((1, 1), vm),
        Array2::from_elem((1, 1), am),
    );
    let va: Vec<f32> = va.iter().copied().collect();
    let expr: Vec<f32> = expr.iter().copied().collect();
    (va.try_into().unwrap(), expr.try_into().unwrap())
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

/// One-hot probabilities of class `k` in `affect::EXPRESSIONS` order (Neutral, Anger,
/// Disgust, Fear, Happiness, Sadness, Surprise, Other).
fn one_hot(k: usize) -> [f32; 8] {
    let mut p = [0.0; 8];
    p[k] = 1.0;
    p
}

const SILENCE: [f32; 96] = vocal::SILENCE_EMBEDDING;

#[test]
fn contract_is_checked_and_declares_the_feature_models() {
    let m = load();
    let c = m.contract();
    assert_eq!(c.name, "fusion-baseline");
    assert_eq!(c.outputs, ["va", "expr"]);
    assert_eq!(c.labels, affect::EXPRESSIONS);
    assert_eq!(c.prop("affect.fusion.visual-input"), Some("probabilities"));
    let InputSpec::Fusion(f) = &c.input else {
        panic!("not a fusion contract")
    };
    assert_eq!((f.window, f.visual_dim, f.audio_dim), (1, 8, 96));
    let (visual, audio) = fusion::feature_refs(&weights_dir()).unwrap();
    assert_eq!(f.visual_model.as_ref(), Some(&visual));
    assert_eq!(f.audio_model.as_ref(), Some(&audio));
    assert_eq!(visual.name, "fer-mini-xception");
    assert_eq!(audio.name, "oww-speech-embedding");
    // The sha256 values are those of the files next to it.
    for r in [&visual, &audio] {
        let bytes = std::fs::read(weights_dir().join(format!("{}.onnx", r.name))).unwrap();
        assert_eq!(affect::weights::sha256_hex(&bytes), r.sha256);
    }
}

#[test]
fn one_hot_expressions_give_their_circumplex_point() {
    let mut m = load();
    // The 7 classes the face model has, in Aff-Wild2 order (Other: see below).
    for k in 0..7 {
        let (va, expr) = frame(&mut m, one_hot(k), 1.0, &SILENCE, 1.0);
        assert_eq!(argmax(&expr), k, "class {k}");
        for d in 0..2 {
            assert!((va[d] - CIRCUMPLEX[k][d]).abs() < 1e-5, "class {k}: {va:?}");
        }
        assert!((expr[k] - 1e-6f32.ln_1p()).abs() < 1e-5);
        assert!((expr[7] - OTHER_LOGIT).abs() < 1e-4, "{expr:?}");
    }
    // Other keeps its fixed logit even when given probability (the face model has none).
    let (va, expr) = frame(&mut m, one_hot(7), 1.0, &SILENCE, 1.0);
    assert_eq!(expr[7], OTHER_LOGIT);
    assert_eq!(va, [0.0, 0.0]);
    // Happiness, by hand: Russell (1980) "happy" at 7.8° → (cos, sin) = (0.9907, 0.1357).
    let (va, expr) = frame(&mut m, one_hot(4), 1.0, &SILENCE, 1.0);
    assert!(
        (va[0] - 0.9907).abs() < 1e-4 && (va[1] - 0.1357).abs() < 1e-4,
        "{va:?}"
    );
    assert_eq!(affect::EXPRESSIONS[argmax(&expr)], "Happiness");
    // Neutral → the centre.
    let (va, expr) = frame(&mut m, one_hot(0), 1.0, &SILENCE, 1.0);
    assert!(va[0].abs() < 1e-6 && va[1].abs() < 1e-6, "{va:?}");
    assert_eq!(affect::EXPRESSIONS[argmax(&expr)], "Neutral");
    // A mixture, by hand: 0.5 happy + 0.5 sad → (0.5·0.9907 − 0.5·0.8870, 0.5·0.1357 − 0.5·0.4617).
    let (va, expr) = frame(
        &mut m,
        [0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0],
        1.0,
        &SILENCE,
        0.0,
    );
    assert!(
        (va[0] - 0.05185).abs() < 1e-5 && (va[1] + 0.163).abs() < 1e-5,
        "{va:?}"
    );
    assert!((expr[4] - 0.5f32.ln()).abs() < 1e-5 && (expr[5] - 0.5f32.ln()).abs() < 1e-5);
    // Unnormalised probabilities are renormalised: 2·happy = happy.
    let (va2, _) = frame(
        &mut m,
        [0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0],
        1.0,
        &SILENCE,
        0.0,
    );
    assert!((va2[0] - 0.9907).abs() < 1e-4);
}

#[test]
fn masked_or_empty_faces_are_neutral() {
    let mut m = load();
    for (probs, vm) in [(one_hot(1), 0.0), (one_hot(4), 0.0), ([0.0; 8], 1.0)] {
        let (va, expr) = frame(&mut m, probs, vm, &SILENCE, 0.0);
        assert_eq!(va, [0.0, 0.0], "{probs:?} mask {vm}");
        assert_eq!(argmax(&expr), 0, "{expr:?}");
        assert!(expr[0].abs() < 1e-5);
    }
    // Half mask: half way between Happiness and the centre.
    let (va, _) = frame(&mut m, one_hot(4), 0.5, &SILENCE, 0.0);
    assert!((va[0] - 0.5 * 0.9907).abs() < 1e-4, "{va:?}");
}

#[test]
fn speech_adds_a_small_arousal_shift_only_when_masked_in() {
    let mut m = load();
    let speech: Vec<f32> = SILENCE.iter().map(|v| v + 12.0).collect(); // deviation 12 > 9: gate open
    let (va, _) = frame(&mut m, one_hot(0), 1.0, &speech, 1.0);
    assert!(
        va[0].abs() < 1e-6 && (va[1] - vocal::AROUSAL_WEIGHT).abs() < 1e-5,
        "{va:?}"
    );
    let (va, _) = frame(&mut m, one_hot(0), 1.0, &speech, 0.0);
    assert_eq!(va, [0.0, 0.0]);
    let (va, _) = frame(&mut m, one_hot(0), 1.0, &SILENCE, 1.0);
    assert!(va[1].abs() < 1e-6);
    // Half-open gate: deviation 7 → (7 − 5)/4 = 0.5.
    let mid: Vec<f32> = SILENCE.iter().map(|v| v + 7.0).collect();
    let (va, _) = frame(&mut m, one_hot(0), 1.0, &mid, 1.0);
    assert!((va[1] - 0.5 * vocal::AROUSAL_WEIGHT).abs() < 1e-4, "{va:?}");
    // Clipped to 1: Anger (arousal 0.9877) + 0.1.
    let (va, _) = frame(&mut m, one_hot(1), 1.0, &speech, 1.0);
    assert_eq!(va[1], 1.0);
}

#[test]
fn outputs_stay_finite_on_zeros_and_garbage() {
    let mut m = load();
    let big = [1e30f32; 96];
    let cases: Vec<([f32; 8], f32, [f32; 96], f32)> = vec![
        ([0.0; 8], 0.0, [0.0; 96], 0.0),
        ([0.0; 8], 1.0, [0.0; 96], 1.0),
        ([1e30; 8], 1e30, big, 1e30),
        ([-1e30; 8], -1e30, [-1e30; 96], -1e30),
        ([f32::NAN; 8], f32::NAN, [f32::NAN; 96], f32::NAN),
        (
            [f32::INFINITY; 8],
            f32::INFINITY,
            [f32::NEG_INFINITY; 96],
            f32::INFINITY,
        ),
    ];
    for (p, vm, a, am) in cases {
        let (va, expr) = frame(&mut m, p, vm, &a, am);
        assert!(
            va.iter().chain(&expr).all(|v| v.is_finite()),
            "{p:?}: {va:?} {expr:?}"
        );
        assert!(va.iter().all(|v| (-1.0..=1.0).contains(v)));
        // The plain-Rust reference agrees.
        let (rva, rexpr) = fusion::baseline_frame(&p, vm, &a, am);
        for (x, y) in va.iter().zip(&rva).chain(expr.iter().zip(&rexpr)) {
            assert!(
                (x - y).abs() < 1e-4,
                "{p:?}: {va:?}/{rva:?} {expr:?}/{rexpr:?}"
            );
        }
    }
}

#[test]
fn batch_and_time_are_dynamic_and_per_frame() {
    let mut m = load();
    let (b, t) = (2usize, 5usize);
    let mut visual = Array3::<f32>::zeros((b, t, 8));
    let mut audio = Array3::<f32>::zeros((b, t, 96));
    let mut vm = Array2::<f32>::ones((b, t));
    let mut am = Array2::<f32>::ones((b, t));
    let mut want = Vec::new();
    for i in 0..b {
        for j in 0..t {
            let k = (i * t + j) % 8;
            visual[[i, j, k]] = 0.7;
            visual[[i, j, (k + 3) % 8]] = 0.3;
            let shift = (i * t + j) as f32 * 1.5;
            for d in 0..96 {
                audio[[i, j, d]] = SILENCE[d] + shift;
            }
            if j == 2 {
                vm[[i, j]] = 0.0;
            }
            if i == 1 && j == 4 {
                am[[i, j]] = 0.0;
            }
            let p: Vec<f32> = (0..8).map(|c| visual[[i, j, c]]).collect();
            let a: Vec<f32> = (0..96).map(|d| audio[[i, j, d]]).collect();
            want.push(fusion::baseline_frame(&p, vm[[i, j]], &a, am[[i, j]]));
        }
    }
    let (va, expr) = run(&mut m, visual, audio, vm, am);
    assert_eq!(va.shape(), &[b, t, 2]);
    assert_eq!(expr.shape(), &[b, t, 8]);
    for i in 0..b {
        for j in 0..t {
            let (wva, wexpr) = want[i * t + j];
            for d in 0..2 {
                assert!((va[[i, j, d]] - wva[d]).abs() < 1e-4, "[{i},{j}] va");
            }
            for c in 0..8 {
                assert!((expr[[i, j, c]] - wexpr[c]).abs() < 1e-4, "[{i},{j}] expr");
            }
        }
    }
    // The masked frames are neutral.
    assert_eq!(
        argmax(&(0..8).map(|c| expr[[0, 2, c]]).collect::<Vec<_>>()),
        0
    );
}

#[test]
fn bundled_file_equals_the_generator_output() {
    let (visual, audio) = fusion::feature_refs(&weights_dir()).unwrap();
    let bytes = fusion::build_baseline(&visual, &audio).to_bytes();
    let file = std::fs::read(weights_dir().join("fusion-baseline.onnx")).unwrap();
    assert!(
        bytes == file,
        "weights/fusion-baseline.onnx is stale: run `cargo run --example make_baseline -- weights/fusion-baseline.onnx` and update its sha256 in MANIFEST.toml"
    );
    assert_eq!(bytes, fusion::build_baseline(&visual, &audio).to_bytes());
}
