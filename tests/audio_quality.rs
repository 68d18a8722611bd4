// SPDX-License-Identifier: MPL-2.0
//! Denoising and VAD quality of the audio engine on espeak-ng speech mixed with seeded
//! white and pink noise (the numbers are printed; run with `--nocapture` to see them).
//! Needs espeak-ng and sox (`make setup`) and ONNX Runtime for Silero.

use std::path::PathBuf;

use affect::audio::engine::{EngineConfig, EngineOutput, FrameInfo, SpeechEngine, VadKind};
use affect::audio::metrics::{best_lag, binary_scores, energy_labels, roc_auc, si_sdr_db};
use affect::audio::synth::{espeak_speech, mix_at_snr, pink_noise, speech_clip, white_noise};
use affect::audio::{HysteresisConfig, SileroVad, SpeechEventKind};
use affect::runtime::{Model, Role, SessionConfig};

const TEXTS: [&str; 3] = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore, and then she rests for a while.",
    "How are you feeling today? I hope that everything is going well.",
];

fn cache() -> PathBuf {
    std::env::temp_dir().join("gst-affect-speech-cache")
}

fn clip() -> (Vec<f32>, Vec<(u64, u64)>) {
    speech_clip(&TEXTS, 500, 700, &cache())
        .unwrap_or_else(|e| panic!("cannot make test speech: {e} (run `make setup`)"))
}

fn silero() -> SileroVad {
    silero_with(true)
}

/// The bundled Silero, computed natively where it can be (`native`) or always through
/// ONNX Runtime.
fn silero_with(native: bool) -> SileroVad {
    let path = affect::weights::resolve_model("silero-vad");
    let cfg = SessionConfig {
        threads: 1,
        ..Default::default()
    };
    let m = Model::load(&path, Some(Role::Vad), &cfg).expect("silero-vad loads");
    if native {
        SileroVad::new(m)
    } else {
        SileroVad::onnx_runtime(m)
    }
    .expect("silero contract")
}

fn run(x: &[f32], vad: VadKind) -> (Vec<f32>, Vec<FrameInfo>, EngineOutput) {
    let cfg = EngineConfig {
        vad,
        ..Default::default()
    };
    let s = (vad == VadKind::Silero).then(silero);
    let mut e = SpeechEngine::new(cfg, s);
    let mut out = EngineOutput::default();
    for c in x.chunks(4096) {
        e.push(c, &mut out).unwrap();
    }
    e.finish(&mut out).unwrap();
    assert_eq!(out.samples.len(), x.len());
    (out.samples.clone(), out.frames.clone(), out)
}

/// Silero fed by [`SileroVad`] reproduces the reference probabilities of
/// weights/convert/README.md (same espeak-ng sentence, `sox -D` to 16 kHz 16-bit), and
/// its native computation gives ONNX Runtime's probabilities on every chunk.
#[test]
fn silero_feeding_matches_the_reference() {
    let text = "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore, and then she rests for a while. How are you feeling today?";
    let x = espeak_speech(text, 16_000, None, &cache()).expect("espeak-ng + sox (make setup)");
    assert_eq!(x.len(), 132_046, "espeak-ng 1.51 output expected");
    // Both ways: computed natively (the default on the CPU) and through ONNX Runtime.
    let probs = |native: bool| {
        let mut v = silero_with(native);
        assert_eq!(v.is_native(), native, "{}", v.native_note());
        let mut p = Vec::new();
        v.push(&x, &mut p).unwrap();
        v.flush(&mut p).unwrap();
        p
    };
    let (p, ort) = (probs(true), probs(false));
    assert_eq!(p.len(), 258);
    assert_eq!(ort.len(), 258);
    let worst = p
        .iter()
        .zip(&ort)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!("silero native vs ONNX Runtime: max |diff| {worst:.2e} over 258 chunks");
    assert!(worst <= 1e-5, "native vs ONNX Runtime: {worst}");
    let want0 = [
        0.059782, 0.082405, 0.916400, 0.960392, 0.980464, 0.971250, 0.920771, 0.970003, 0.993119,
        0.998134,
    ];
    let want78 = [
        0.987786, 0.444594, 0.151170, 0.050037, 0.023021, 0.017981, 0.017142, 0.016475, 0.016321,
        0.239706,
    ];
    for (i, w) in want0.iter().enumerate() {
        assert!((p[i] - w).abs() < 1e-4, "chunk {i}: {} vs {w}", p[i]);
    }
    for (i, w) in want78.iter().enumerate() {
        assert!(
            (p[78 + i] - w).abs() < 1e-4,
            "chunk {}: {} vs {w}",
            78 + i,
            p[78 + i]
        );
    }
}

#[test]
fn denoising_improves_si_sdr_and_keeps_clean_speech() {
    let (clean, _) = clip();
    let n = clean.len();
    let (out, _, _) = run(&clean, VadKind::Rnnoise);
    let clean_sdr = si_sdr_db(&clean, &out);
    let lag = best_lag(&clean, &out, 1000);
    println!("clean speech through: SI-SDR {clean_sdr:.2} dB, lag {lag} samples");
    assert_eq!(lag, 0, "output must be aligned with the input");
    assert!(clean_sdr >= 17.0, "clean SI-SDR {clean_sdr:.2} dB");
    for (name, noise) in [("white", white_noise(n, 11)), ("pink", pink_noise(n, 12))] {
        for snr in [0.0, 5.0] {
            let noisy = mix_at_snr(&clean, &noise, snr);
            let before = si_sdr_db(&clean, &noisy);
            let (out, _, _) = run(&noisy, VadKind::Rnnoise);
            let after = si_sdr_db(&clean, &out);
            let lag = best_lag(&clean, &out, 1000);
            println!(
                "{name} noise {snr} dB: SI-SDR {before:.2} → {after:.2} dB (gain {:.2} dB), lag {lag}",
                after - before
            );
            assert_eq!(lag, 0);
            assert!(
                after - before >= 6.0,
                "{name} {snr} dB: gain {:.2} dB",
                after - before
            );
        }
    }
}

#[test]
fn vad_against_energy_labels() {
    let (clean, bounds) = clip();
    let n = clean.len();
    let labels = energy_labels(&clean, 480, -40.0, 20);
    let mut worst = (1.0f64, 1.0f64);
    for (name, noise) in [
        ("white", white_noise(n, 21)),
        ("pink", pink_noise(n, 22)),
        ("none", vec![0.0; n]),
    ] {
        for snr in [0.0, 5.0] {
            let x = if name == "none" {
                clean.clone()
            } else {
                mix_at_snr(&clean, &noise, snr)
            };
            for vad in [VadKind::Rnnoise, VadKind::Silero] {
                let (_, frames, out) = run(&x, vad);
                let scores: Vec<f32> = frames.iter().map(|f| f.probability).collect();
                assert_eq!(scores.len(), labels.len());
                let auc = roc_auc(&scores, &labels);
                let b = binary_scores(&scores, &labels, 0.5);
                let starts: Vec<u64> = out
                    .events
                    .iter()
                    .filter(|e| e.kind == SpeechEventKind::Start)
                    .map(|e| e.sample)
                    .collect();
                let ends: Vec<u64> = out
                    .events
                    .iter()
                    .filter(|e| e.kind == SpeechEventKind::End)
                    .map(|e| e.sample)
                    .collect();
                println!(
                    "{name} {snr} dB {vad:?}: accuracy {:.3}, balanced {:.3} (TPR {:.3}, TNR {:.3}), AUC {auc:.3}; starts {:?} ends {:?} (true {:?})",
                    b.accuracy,
                    b.balanced_accuracy,
                    b.tpr,
                    b.tnr,
                    starts.iter().map(|s| s / 48).collect::<Vec<_>>(),
                    ends.iter().map(|s| s / 48).collect::<Vec<_>>(),
                    bounds
                        .iter()
                        .map(|(a, b)| (a / 48, b / 48))
                        .collect::<Vec<_>>()
                );
                if vad == VadKind::Silero && name != "none" {
                    worst = (worst.0.min(b.accuracy), worst.1.min(auc));
                }
                if name == "none" {
                    break;
                }
            }
            if name == "none" {
                break;
            }
        }
    }
    assert!(worst.0 >= 0.92, "silero accuracy {:.3}", worst.0);
    assert!(worst.1 >= 0.94, "silero AUC {:.3}", worst.1);
}

#[test]
fn boundaries_within_100_ms() {
    let (clean, bounds) = clip();
    let noisy = mix_at_snr(&clean, &pink_noise(clean.len(), 31), 5.0);
    for x in [&clean, &noisy] {
        // (defaults of the element: 0.5, 250 ms, 300 ms, 100 ms)
        let cfg = EngineConfig {
            vad: VadKind::Silero,
            hysteresis: HysteresisConfig {
                threshold: 0.5,
                min_speech: 48 * 250,
                min_silence: 48 * 300,
                candidate_gap: 48 * 100,
            },
            ..Default::default()
        };
        let mut e = SpeechEngine::new(cfg, Some(silero()));
        let mut out = EngineOutput::default();
        for c in x.chunks(4096) {
            e.push(c, &mut out).unwrap();
        }
        e.finish(&mut out).unwrap();
        let got: Vec<(u64, u64)> = out
            .events
            .chunks(2)
            .map(|p| (p[0].sample, p.get(1).map_or(u64::MAX, |e| e.sample)))
            .collect();
        println!(
            "boundaries (ms): got {:?}, true {:?}",
            got.iter()
                .map(|(a, b)| (a / 48, b / 48))
                .collect::<Vec<_>>(),
            bounds
                .iter()
                .map(|(a, b)| (a / 48, b / 48))
                .collect::<Vec<_>>()
        );
        assert_eq!(got.len(), bounds.len(), "{got:?} vs {bounds:?}");
        for ((gs, ge), (ts, te)) in got.iter().zip(&bounds) {
            assert!(gs.abs_diff(*ts) <= 4800, "start {gs} vs {ts}");
            assert!(ge.abs_diff(*te) <= 4800, "end {ge} vs {te}");
        }
    }
}

/// The declared latency with Silero is the real worst case (samples pushed one at a time).
#[test]
fn silero_latency_is_as_declared() {
    let x = white_noise(48_000, 41);
    let cfg = EngineConfig {
        vad: VadKind::Silero,
        ..Default::default()
    };
    let mut e = SpeechEngine::new(cfg, Some(silero()));
    let declared = e.latency_samples();
    let mut out = EngineOutput::default();
    let mut worst = 0;
    for c in x.chunks(1) {
        let before = out.samples.len() as u64;
        e.push(c, &mut out).unwrap();
        if out.samples.len() as u64 > before {
            worst = worst.max(e.samples_in() - before);
        }
    }
    println!("silero latency: worst {worst} samples, declared {declared}");
    assert!(
        worst <= declared && worst + 480 > declared,
        "{worst} vs {declared}"
    );
}
