// SPDX-License-Identifier: MPL-2.0
//! The native `voice-prosody/1` computation (`affect::features::prosody`, what
//! `featextract` runs for the bundled `voice-prosody` model, which declares
//! `affect.native = voice-prosody/1`) against the model's own ONNX graph (the reference,
//! itself checked against librosa by tests/voice_prosody.rs), window by window over a
//! stream at the 80 ms hop, on espeak-ng speech (calm / neutral / excited, clean and at
//! 10 dB SNR in white noise) and on signals that stress the edges (silence, a tone,
//! noise, full-scale clipping, NaN/inf samples, a quiet tone near the voicing floor).
//!
//! Bounds: every feature within 1e-3 · max(1, |graph|) (log-mel means and spreads also
//! within 0.01 dB: bands far below a pure tone hold the float noise of both f32 DFTs),
//! except in at most 2 % of the windows for two groups that float rounding can move:
//! the F0 functionals and voiced fraction (5–9, 34), when a YIN decision flips on a
//! frame whose value lies within rounding of a threshold (trough below 0.15, voicing
//! below 0.5), with the voiced fraction then off by at most 2 frames (2/95); and the
//! rise / fall means (30–33), see [`STEPS`]. The printed figures are the measured ones.

use affect::audio::synth;
use affect::features::{FeatureModel, FeatureOptions, Window};
use affect::runtime::{Model, Role, SessionConfig};
use affect::weights::weights_dir;

const WINDOW: usize = 16_000;
const HOP: usize = 1280;

fn model(native: bool) -> FeatureModel {
    let m = Model::load(
        &weights_dir().join("voice-prosody.onnx"),
        Some(Role::AudioFeature),
        &SessionConfig::default(),
    )
    .unwrap();
    let opts = FeatureOptions {
        native,
        ..FeatureOptions::default()
    };
    let fm = FeatureModel::new(m, &opts).unwrap();
    assert_eq!(fm.native().is_some(), native);
    fm
}

fn windows(x: &[f32]) -> Vec<Window> {
    (0..)
        .map(|k| k * HOP)
        .take_while(|s| s + WINDOW <= x.len())
        .map(|s| Window {
            start: s as u64,
            samples: x[s..s + WINDOW].to_vec(),
        })
        .collect()
}

/// F0 functionals and the voiced fraction: YIN decisions.
const PITCH: [usize; 6] = [5, 6, 7, 8, 9, 34];
/// Loudness and F0 rise / fall: means over the frame steps that go up / down, so a step
/// of a float ulp on a flat stretch counts as a step in one and not in the other (ONNX
/// Runtime's vectorised `Log` rounds the last frames of a row differently: −99.99999 dB
/// after −100 dB in digital silence; a steady tone's F0 wanders by ulps). Compared to
/// 0.1 dB/s or Hz/s.
const STEPS: [usize; 4] = [30, 31, 32, 33];

#[derive(Default)]
struct Tally {
    windows: usize,
    pitch_flips: usize,
    step_flips: usize,
    worst_other: (f32, usize),
    worst_voiced: f32,
    bad: Vec<String>,
}

fn compare(
    what: &str,
    x: &[f32],
    graph: &mut FeatureModel,
    native: &mut FeatureModel,
    t: &mut Tally,
) {
    let w = windows(x);
    let g = graph.run_windows(&w).unwrap();
    let n = native.run_windows(&w).unwrap();
    let (mut flips, mut steps) = (0, 0);
    for (k, (g, n)) in g.iter().zip(&n).enumerate() {
        assert!(g.valid && n.valid, "{what} window {k}");
        assert_eq!(n.vector.len(), 164);
        let (mut flipped, mut stepped) = (false, false);
        for (i, (a, b)) in g.vector.iter().zip(&n.vector).enumerate() {
            assert!(b.is_finite(), "{what} window {k} feature {i}");
            let err = (a - b).abs() / a.abs().max(1.0);
            if PITCH.contains(&i) {
                flipped |= err > 1e-3;
                if i == 34 {
                    t.worst_voiced = t.worst_voiced.max((a - b).abs());
                }
            } else if STEPS.contains(&i) {
                stepped |= err > 1e-3 && (a - b).abs() > 0.1;
            } else {
                if err > t.worst_other.0 {
                    t.worst_other = (err, i);
                }
                // log-mel bands far below a tone's peak are float noise in both (f32
                // DFTs): their spread across frames is compared to 0.01 dB
                let ok = err <= 1e-3 || (i >= 36 && (a - b).abs() <= 0.01);
                if !ok {
                    t.bad.push(format!(
                        "{what} window {k} feature {i}: graph {a} native {b}"
                    ));
                }
            }
        }
        flips += flipped as usize;
        steps += stepped as usize;
    }
    println!(
        "{what}: {} windows, {flips} with a YIN decision flipped, {steps} with ulp loudness steps",
        w.len()
    );
    t.windows += w.len();
    t.pitch_flips += flips;
    t.step_flips += steps;
}

#[test]
fn native_voice_prosody_matches_its_graph() {
    let mut graph = model(false);
    let mut native = model(true);
    let mut t = Tally::default();
    let cache = std::env::temp_dir().join("affect-vocal-arousal");
    let noise = synth::white_noise(40 * WINDOW, 7);
    for text in synth::AROUSAL_TEXTS {
        for (name, opts) in synth::AROUSAL_CONDITIONS {
            let x = synth::espeak_voice(text, 16_000, opts, &cache)
                .expect("espeak-ng and sox (make setup)");
            let mut padded = vec![0.0f32; WINDOW / 2];
            padded.extend_from_slice(&x);
            padded.extend(vec![0.0f32; WINDOW / 2]);
            compare(name, &padded, &mut graph, &mut native, &mut t);
            let noisy = synth::mix_at_snr(&padded, &noise[..padded.len()], 10.0);
            compare(
                &format!("{name} + white noise 10 dB"),
                &noisy,
                &mut graph,
                &mut native,
                &mut t,
            );
        }
    }
    let n = 3 * WINDOW;
    let tone = |f: f32, a: f32| -> Vec<f32> {
        (0..n)
            .map(|i| a * (2.0 * std::f32::consts::PI * f * i as f32 / 16_000.0).sin())
            .collect()
    };
    let cases: Vec<(&str, Vec<f32>)> = vec![
        ("silence", vec![0.0; n]),
        ("tone 200 Hz", tone(200.0, 0.14)),
        ("white noise", synth::white_noise(n, 3)),
        (
            "full-scale clipping",
            tone(150.0, 100.0)
                .iter()
                .map(|v| v.clamp(-1.0, 1.0))
                .collect(),
        ),
        (
            "NaN/inf",
            tone(120.0, 0.3)
                .into_iter()
                .enumerate()
                .map(|(i, v)| match i % 97 {
                    0 => f32::NAN,
                    5 => f32::INFINITY,
                    9 => 1e30,
                    _ => v,
                })
                .collect(),
        ),
        ("tone 110 Hz at -75 dBFS", tone(110.0, 2.5e-4)),
    ];
    for (what, x) in cases {
        compare(what, &x, &mut graph, &mut native, &mut t);
    }
    let st = native.native_stats().unwrap();
    println!(
        "{} windows; worst relative error outside F0/voicing {:.2e} (feature {}); windows with a \
         YIN decision flipped {} ({:.2} %), worst voiced_fraction difference {:.4}; windows with \
         ulp loudness steps {}; native frames computed {} reused {}",
        t.windows,
        t.worst_other.0,
        t.worst_other.1,
        t.pitch_flips,
        100.0 * t.pitch_flips as f64 / t.windows as f64,
        t.worst_voiced,
        t.step_flips,
        st.computed,
        st.reused
    );
    assert!(
        t.bad.is_empty(),
        "{} values out of bounds:\n{}",
        t.bad.len(),
        t.bad[..t.bad.len().min(30)].join("\n")
    );
    assert!(
        t.pitch_flips * 50 <= t.windows,
        "{} of {}",
        t.pitch_flips,
        t.windows
    );
    assert!(
        t.step_flips * 50 <= t.windows,
        "{} of {}",
        t.step_flips,
        t.windows
    );
    assert!(t.worst_voiced <= 2.0 / 95.0 + 1e-6, "{}", t.worst_voiced);
    assert!(st.reused > 8 * st.computed, "{st:?}");
}
