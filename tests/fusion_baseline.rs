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
        Array3::from_shape_vec((1, 1, vocal::AUDIO_DIM), audio.to_vec()).unwrap(),
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

/// Features of digital silence as far as the baseline is concerned: nothing voiced.
const SILENCE: [f32; vocal::AUDIO_DIM] = [0.0; vocal::AUDIO_DIM];

/// The reference on one frame.
fn reference(p: &[f32], vm: f32, a: &[f32], am: f32) -> ([f32; 2], [f32; 8]) {
    fusion::baseline_window(&[p], &[vm], &[a], &[am])[0]
}

/// A voiced window: F0 `f0` Hz (p20/p80 a tenth of an octave either side), `rate`
/// syllables/s, everything else at zero.
fn voiced(f0: f32, rate: f32) -> Vec<f32> {
    let mut a = vec![0.0; vocal::AUDIO_DIM];
    a[vocal::F0_P50] = f0;
    a[vocal::F0_P20] = f0 * 2f32.powf(-0.1);
    a[vocal::F0_P80] = f0 * 2f32.powf(0.1);
    a[vocal::SYLLABLE_RATE] = rate;
    a[vocal::VOICED_FRACTION] = 0.9;
    a
}

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
    assert_eq!(
        (f.window, f.visual_dim, f.audio_dim),
        (vocal::WINDOW, 8, vocal::AUDIO_DIM)
    );
    assert_eq!(c.prop("affect.fusion.audio-mask"), Some("speech"));
    let (visual, audio) = fusion::feature_refs(&weights_dir()).unwrap();
    assert_eq!(f.visual_model.as_ref(), Some(&visual));
    assert_eq!(f.audio_model.as_ref(), Some(&audio));
    assert_eq!(visual.name, "fer-mini-xception");
    assert_eq!(audio.name, "voice-prosody");
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
fn the_voice_moves_arousal_only_when_masked_in_and_never_valence() {
    let mut m = load();
    // A quarter octave over the low register's 105 Hz, 5 syllables/s, F0 range 0.2 octave,
    // on a first frame (α = 0.5/250): by hand from the documented formula,
    // 1.0·0.25·(1 − 0.002) + 0.5·(0.2 − 0.15) + 0.1·(5 − 4) + effort and slope cues of an
    // all-zero spectrum (energy ratio 10·log10(43/21) = 3.11 dB → +0.1 clipped; slope 0 →
    // 0.02·4 = 0.05 clipped) + loudness change 0 = 0.2495 + 0.025 + 0.1 + 0.1 + 0.05.
    let excited = voiced(105.0 * 2f32.powf(0.25), 5.0);
    let want = 0.2495 + 0.025 + 0.1 + 0.1 + 0.05;
    let (va, _) = frame(&mut m, one_hot(0), 1.0, &excited, 1.0);
    assert!(
        va[0].abs() < 1e-6 && (va[1] - want).abs() < 1e-3,
        "{va:?} vs {want}"
    );
    // Masked audio (no speech): nothing.
    let (va, _) = frame(&mut m, one_hot(0), 1.0, &excited, 0.0);
    assert_eq!(va, [0.0, 0.0]);
    // Unvoiced: nothing.
    let (va, _) = frame(&mut m, one_hot(0), 1.0, &SILENCE, 1.0);
    assert!(va[1].abs() < 1e-6);
    // Half the speech probability: half the term.
    let (va, _) = frame(&mut m, one_hot(0), 1.0, &excited, 0.5);
    assert!((va[1] - want / 2.0).abs() < 1e-3, "{va:?}");
    // No face: the voice's arousal, valence neutral.
    let (va, _) = frame(&mut m, one_hot(4), 0.0, &excited, 1.0);
    assert!(va[0].abs() < 1e-6 && (va[1] - want).abs() < 1e-3, "{va:?}");
    // A calm low voice: negative.
    let calm = voiced(105.0 * 2f32.powf(-0.25), 3.0);
    // −0.25·(1 − 0.002) + 0.025 − 0.1 + 0.1 + 0.05.
    let (va, _) = frame(&mut m, one_hot(0), 1.0, &calm, 1.0);
    assert!((va[1] + 0.1745).abs() < 1e-3, "{va:?}");
    // Clipped to 1: Anger (arousal 0.9877) + the voice.
    let (va, _) = frame(&mut m, one_hot(1), 1.0, &excited, 1.0);
    assert_eq!(va[1], 1.0);
}

#[test]
fn outputs_stay_finite_on_zeros_and_garbage() {
    let mut m = load();
    const D: usize = vocal::AUDIO_DIM;
    let big = [1e30f32; D];
    let cases: Vec<([f32; 8], f32, [f32; D], f32)> = vec![
        ([0.0; 8], 0.0, [0.0; D], 0.0),
        ([0.0; 8], 1.0, [0.0; D], 1.0),
        ([1e30; 8], 1e30, big, 1e30),
        ([-1e30; 8], -1e30, [-1e30; D], -1e30),
        ([f32::NAN; 8], f32::NAN, [f32::NAN; D], f32::NAN),
        (
            [f32::INFINITY; 8],
            f32::INFINITY,
            [f32::NEG_INFINITY; D],
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
        let (rva, rexpr) = reference(&p, vm, &a, am);
        for (x, y) in va.iter().zip(&rva).chain(expr.iter().zip(&rexpr)) {
            assert!(
                (x - y).abs() < 1e-4,
                "{p:?}: {va:?}/{rva:?} {expr:?}/{rexpr:?}"
            );
        }
    }
}

#[test]
fn batch_and_time_are_dynamic_and_the_window_is_causal() {
    let mut m = load();
    let (b, t) = (2usize, 40usize);
    let d = vocal::AUDIO_DIM;
    let mut visual = Array3::<f32>::zeros((b, t, 8));
    let mut audio = Array3::<f32>::zeros((b, t, d));
    let mut vm = Array2::<f32>::ones((b, t));
    let mut am = Array2::<f32>::ones((b, t));
    for i in 0..b {
        for j in 0..t {
            let k = (i * t + j) % 8;
            visual[[i, j, k]] = 0.7;
            visual[[i, j, (k + 3) % 8]] = 0.3;
            // A voice drifting from 90 to 250 Hz (crosses the register split), rates 2..7,
            // voicing on and off, loudness and spectrum changing.
            let x = (i * t + j) as f32 / (b * t) as f32;
            let v = voiced(90.0 + 160.0 * x, 2.0 + 5.0 * x);
            for (c, val) in v.iter().enumerate() {
                audio[[i, j, c]] = *val;
            }
            audio[[i, j, vocal::VOICED_FRACTION]] = if j % 7 == 3 { 0.1 } else { 0.35 + 0.6 * x };
            audio[[i, j, vocal::LOUDNESS_P50]] = -40.0 + 20.0 * ((j as f32) * 0.3).sin();
            audio[[i, j, vocal::SLOPE_MEAN]] = -6.0 + 4.0 * x;
            for band in 0..vocal::MEL_BANDS {
                audio[[i, j, vocal::LOGMEL_MEAN + band]] = -30.0 - band as f32 * (0.2 + x);
            }
            if j == 2 {
                vm[[i, j]] = 0.0;
            }
            if i == 1 && j % 5 == 4 {
                am[[i, j]] = 0.3;
            }
        }
    }
    let rows = |i: usize| -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        (
            (0..t)
                .map(|j| (0..8).map(|c| visual[[i, j, c]]).collect())
                .collect(),
            (0..t)
                .map(|j| (0..d).map(|c| audio[[i, j, c]]).collect())
                .collect(),
        )
    };
    let mut want = Vec::new();
    for i in 0..b {
        let (v, a) = rows(i);
        let v: Vec<&[f32]> = v.iter().map(Vec::as_slice).collect();
        let a: Vec<&[f32]> = a.iter().map(Vec::as_slice).collect();
        let vmr: Vec<f32> = (0..t).map(|j| vm[[i, j]]).collect();
        let amr: Vec<f32> = (0..t).map(|j| am[[i, j]]).collect();
        want.push(fusion::baseline_window(&v, &vmr, &a, &amr));
        // Causal: the first 10 frames alone give the same first 10 outputs.
        let head = fusion::baseline_window(&v[..10], &vmr[..10], &a[..10], &amr[..10]);
        assert_eq!(head[..], want[i][..10]);
    }
    let (va, expr) = run(
        &mut m,
        visual.clone(),
        audio.clone(),
        vm.clone(),
        am.clone(),
    );
    assert_eq!(va.shape(), &[b, t, 2]);
    assert_eq!(expr.shape(), &[b, t, 8]);
    let mut moved = 0;
    for i in 0..b {
        for j in 0..t {
            let (wva, wexpr) = want[i][j];
            for dd in 0..2 {
                assert!(
                    (va[[i, j, dd]] - wva[dd]).abs() < 1e-4,
                    "[{i},{j}] va {} vs {}",
                    va[[i, j, dd]],
                    wva[dd]
                );
            }
            for c in 0..8 {
                assert!((expr[[i, j, c]] - wexpr[c]).abs() < 1e-4, "[{i},{j}] expr");
            }
            let (vis, _) = fusion::visual_frame(
                &(0..8).map(|c| visual[[i, j, c]]).collect::<Vec<_>>(),
                vm[[i, j]],
            );
            if (wva[1] - vis[1].clamp(-1.0, 1.0)).abs() > 0.05 {
                moved += 1;
            }
        }
    }
    // The voice did move arousal on most frames (so the check covered the audio term).
    assert!(moved > b * t / 2, "{moved}");
    // The masked frames are neutral.
    assert_eq!(
        argmax(&(0..8).map(|c| expr[[0, 2, c]]).collect::<Vec<_>>()),
        0
    );
    // The graph is causal too: a run on the first 10 frames gives the same 10 outputs.
    let (va10, _) = run(
        &mut m,
        visual.slice(ndarray::s![.., ..10, ..]).to_owned(),
        audio.slice(ndarray::s![.., ..10, ..]).to_owned(),
        vm.slice(ndarray::s![.., ..10]).to_owned(),
        am.slice(ndarray::s![.., ..10]).to_owned(),
    );
    for i in 0..b {
        for j in 0..10 {
            assert!((va10[[i, j, 1]] - va[[i, j, 1]]).abs() < 1e-5);
        }
    }
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
