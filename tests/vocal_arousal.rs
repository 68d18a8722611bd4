// SPDX-License-Identifier: MPL-2.0
//! The bundled `fusion-baseline` reads arousal from the voice: espeak-ng speech in calm,
//! neutral and excited settings, through the bundled `voice-prosody` model and the
//! bundled baseline (both through ONNX Runtime), orders as calm < neutral < excited with a
//! margin ≥ 0.15, for two voices, clean, in white and pink noise at 10 dB SNR and 20 dB
//! quieter. The face is masked (no visual vector), so every bit of arousal is the voice's.
//!
//! The audio mask is 1 here (no voice-activity detector in this test): what keeps
//! non-speech out in a pipeline is `audiodenoise`'s VAD, tested in the element tests.

use affect::audio::synth;
use affect::fusion::vocal;
use affect::runtime::{Model, Role, SessionConfig};
use affect::weights::weights_dir;
use ndarray::{Array2, Array3, ArrayD, IxDyn};

const RATE: usize = 16_000;
const WINDOW: usize = 16_000;
const HOP: usize = 1280;
/// Video frames per audio vector (80 ms hop, 25 fps frames of 40 ms).
const FRAMES_PER_VECTOR: usize = 2;
const TEXTS: [&str; 2] = synth::AROUSAL_TEXTS;
const CONDITIONS: [(&str, &[&str]); 3] = synth::AROUSAL_CONDITIONS;

fn load(file: &str, role: Role) -> Model {
    Model::load(
        &weights_dir().join(file),
        Some(role),
        &SessionConfig::default(),
    )
    .unwrap()
}

/// One sentence in `voice` with espeak-ng options `opts`, 16 kHz.
fn sentence(text: &str, voice: &str, opts: &[&str]) -> Vec<f32> {
    let cache = std::env::temp_dir().join("affect-vocal-arousal");
    let mut all = vec!["-v", voice];
    all.extend_from_slice(opts);
    synth::espeak_voice(text, RATE as u32, &all, &cache).expect("espeak-ng and sox (make setup)")
}

/// `voice-prosody` vectors every 80 ms over `audio` (half a window of silence padded on
/// each side, as a stream that starts and ends in silence).
fn prosody(m: &mut Model, audio: &[f32]) -> Vec<Vec<f32>> {
    let mut x = vec![0.0f32; WINDOW / 2];
    x.extend_from_slice(audio);
    x.extend(vec![0.0f32; WINDOW / 2]);
    let starts: Vec<usize> = (0..)
        .map(|k| k * HOP)
        .take_while(|s| s + WINDOW <= x.len())
        .collect();
    let mut out = Vec::new();
    for chunk in starts.chunks(32) {
        let flat: Vec<f32> = chunk
            .iter()
            .flat_map(|&s| x[s..s + WINDOW].to_vec())
            .collect();
        let a = ArrayD::from_shape_vec(IxDyn(&[chunk.len(), WINDOW]), flat).unwrap();
        let r = m.run_f32(&[("audio", a.view())]).unwrap();
        let f = r.get("features").unwrap();
        out.extend(
            f.iter()
                .copied()
                .collect::<Vec<_>>()
                .chunks(vocal::AUDIO_DIM)
                .map(<[f32]>::to_vec),
        );
    }
    out
}

/// The baseline's arousal at every frame of a stream of `vectors` (each held for
/// [`FRAMES_PER_VECTOR`] frames, audio mask 1, no face), as avfuse runs it: frame `i` gets
/// the window of the last T frames ending at it (zeros with masks 0 before the stream's
/// start); and the voicing gate of each frame.
fn arousal(baseline: &mut Model, vectors: &[Vec<f32>]) -> Vec<(f32, f32)> {
    let frames: Vec<&Vec<f32>> = vectors
        .iter()
        .flat_map(|v| std::iter::repeat_n(v, FRAMES_PER_VECTOR))
        .collect();
    let t = vocal::WINDOW;
    let d = vocal::AUDIO_DIM;
    let mut va_last = Vec::with_capacity(frames.len());
    let ends: Vec<usize> = (0..frames.len()).collect();
    for chunk in ends.chunks(16) {
        let b = chunk.len();
        let mut audio = Array3::<f32>::zeros((b, t, d));
        let mut am = Array2::<f32>::zeros((b, t));
        for (k, &end) in chunk.iter().enumerate() {
            let start = (end + 1).saturating_sub(t);
            let pad = t - (end + 1 - start);
            for (row, f) in frames[start..=end].iter().enumerate() {
                for (c, v) in f.iter().enumerate() {
                    audio[[k, pad + row, c]] = *v;
                }
                am[[k, pad + row]] = 1.0;
            }
        }
        let visual = Array3::<f32>::zeros((b, t, 8)).into_dyn();
        let vm = Array2::<f32>::zeros((b, t)).into_dyn();
        let (audio, am) = (audio.into_dyn(), am.into_dyn());
        let out = baseline
            .run_f32(&[
                ("visual", visual.view()),
                ("audio", audio.view()),
                ("visual_mask", vm.view()),
                ("audio_mask", am.view()),
            ])
            .unwrap();
        let va = out.get("va").unwrap();
        for k in 0..b {
            assert_eq!(va[[k, t - 1, 0]], 0.0, "valence moved without a face");
            va_last.push(va[[k, t - 1, 1]]);
        }
    }
    frames
        .iter()
        .zip(va_last)
        .map(|(f, a)| {
            let voicing = ((f[vocal::VOICED_FRACTION] - vocal::VOICED_LO)
                / (vocal::VOICED_HI - vocal::VOICED_LO))
                .clamp(0.0, 1.0);
            (a, voicing)
        })
        .collect()
}

/// Mean arousal over the speech frames (voicing gate fully open).
fn speech_mean(a: &[(f32, f32)]) -> f32 {
    let s: Vec<f32> = a
        .iter()
        .filter(|(_, g)| *g >= 1.0)
        .map(|(v, _)| *v)
        .collect();
    assert!(s.len() >= 50, "only {} speech frames", s.len());
    s.iter().sum::<f32>() / s.len() as f32
}

#[test]
fn calm_neutral_excited_order_for_two_voices_in_noise_and_at_low_gain() {
    let mut prosody_model = load("voice-prosody.onnx", Role::AudioFeature);
    let mut baseline = load("fusion-baseline.onnx", Role::Fusion);
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for voice in ["en", "en+f3"] {
        let clean: Vec<Vec<f32>> = CONDITIONS
            .iter()
            .map(|(_, opts)| {
                let mut s = sentence(TEXTS[0], voice, opts);
                s.extend(vec![0.0; RATE / 2]);
                s.extend(sentence(TEXTS[1], voice, opts));
                s
            })
            .collect();
        for variant in ["clean", "white 10 dB", "pink 10 dB", "-20 dB"] {
            let means: Vec<f32> = clean
                .iter()
                .enumerate()
                .map(|(c, s)| {
                    let x = match variant {
                        "clean" => s.clone(),
                        "white 10 dB" => {
                            synth::mix_at_snr(s, &synth::white_noise(s.len(), 11 + c as u64), 10.0)
                        }
                        "pink 10 dB" => {
                            synth::mix_at_snr(s, &synth::pink_noise(s.len(), 21 + c as u64), 10.0)
                        }
                        _ => s.iter().map(|v| v * 0.1).collect(),
                    };
                    speech_mean(&arousal(&mut baseline, &prosody(&mut prosody_model, &x)))
                })
                .collect();
            report.push(format!(
                "{voice:6} {variant:12} calm {:+.3} neutral {:+.3} excited {:+.3}",
                means[0], means[1], means[2]
            ));
            if !(means[1] - means[0] >= 0.15 && means[2] - means[1] >= 0.15) {
                failures.push(report.last().unwrap().clone());
            }
            for m in &means {
                assert!(m.is_finite() && m.abs() <= vocal::VOICE_LIMIT);
            }
        }
    }
    println!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "order or margin < 0.15:\n{}\nall:\n{}",
        failures.join("\n"),
        report.join("\n")
    );
}

#[test]
fn the_features_the_baseline_reads_are_where_it_reads_them() {
    let m = load("voice-prosody.onnx", Role::AudioFeature);
    let names: Vec<&str> = m
        .contract()
        .prop("affect.output.feature-names")
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(names.len(), vocal::AUDIO_DIM);
    for (i, name) in vocal::USED_FEATURES {
        assert_eq!(names[i], name);
    }
    for b in 0..vocal::MEL_BANDS {
        assert_eq!(
            names[vocal::LOGMEL_MEAN + b],
            format!("logmel_mean_{b:02}_db")
        );
    }
}
