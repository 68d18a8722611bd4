// SPDX-License-Identifier: MPL-2.0
//! Writes the default fusion model `fusion-baseline` (see `affect::fusion`), or re-runs
//! the measurement behind its vocal-arousal term (`affect::fusion::vocal`).
//!
//! ```sh
//! cargo run --example make_baseline -- weights/fusion-baseline.onnx
//! cargo run --example make_baseline -- --calibrate   # needs espeak-ng, sox, ONNX Runtime
//! ```
//!
//! Writing is deterministic: the same source and `weights/MANIFEST.toml` give the same
//! bytes. The sha256 of the two feature models is read from the manifest, and the face
//! model's `affect.output.affwild2-map` is checked against `affect::fusion::FER_TO_AFFWILD2`:
//! the graph reads the 8 probabilities that `featextract` reorders with that map, and the
//! check keeps the generator from baking in a face model whose classes would land
//! elsewhere (the circumplex table assumes FER's 7 classes map onto the first 7).

use std::path::PathBuf;
use std::process::ExitCode;

use affect::fusion::{self, vocal};
use affect::runtime::{Model, Role, SessionConfig};
use ndarray::{ArrayD, IxDyn};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [flag] if flag == "--calibrate" => calibrate(),
        [out] if !out.starts_with('-') => write(PathBuf::from(out)),
        _ => Err("usage: make_baseline OUT.onnx | make_baseline --calibrate".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make_baseline: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write(out: PathBuf) -> Result<(), String> {
    let dir = affect::weights::weights_dir();
    let (visual, audio) = fusion::feature_refs(&dir).map_err(|e| e.to_string())?;
    let fer = std::fs::read(dir.join(fusion::VISUAL_MODEL_FILE)).map_err(|e| e.to_string())?;
    let meta = affect::onnx::read_metadata(&fer).map_err(|e| e.to_string())?;
    let map = meta
        .iter()
        .find(|(k, _)| k == "affect.output.affwild2-map")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let want: Vec<String> = fusion::FER_TO_AFFWILD2
        .iter()
        .map(|i| i.to_string())
        .collect();
    if map != want.join(",") {
        return Err(format!(
            "{} says affect.output.affwild2-map = `{map}`, the baseline assumes `{}`",
            fusion::VISUAL_MODEL_FILE,
            want.join(",")
        ));
    }
    let g = fusion::build_baseline(&visual, &audio);
    g.write(&out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let sha = affect::weights::sha256_hex(&g.to_bytes());
    println!("wrote {} (sha256 {sha})", out.display());
    Ok(())
}

const WINDOW: usize = 16000;
const HOP: usize = 1280;

/// `voice-prosody` vectors every 80 ms over `audio` (one window per batch item, as
/// featextract runs the model).
fn prosody(model: &mut Model, audio: &[f32]) -> Result<Vec<Vec<f32>>, String> {
    let starts: Vec<usize> = (0..)
        .map(|k| k * HOP)
        .take_while(|s| s + WINDOW <= audio.len())
        .collect();
    let mut res = Vec::new();
    for chunk in starts.chunks(32) {
        let mut flat = Vec::with_capacity(chunk.len() * WINDOW);
        for &s in chunk {
            flat.extend_from_slice(&audio[s..s + WINDOW]);
        }
        let x = ArrayD::from_shape_vec(IxDyn(&[chunk.len(), WINDOW]), flat)
            .map_err(|e| e.to_string())?;
        let out = model
            .run_f32(&[("audio", x.view())])
            .map_err(|e| e.to_string())?;
        let e = out.get("features").ok_or("no `features` output")?;
        let v: Vec<f32> = e.iter().copied().collect();
        res.extend(v.chunks(vocal::AUDIO_DIM).map(<[f32]>::to_vec));
    }
    Ok(res)
}

fn median(mut v: Vec<f32>) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// The measurement documented in `affect::fusion::vocal`: per voice and condition, the
/// median cues over windows with voiced fraction > 0.3, clean, in noise at 10 dB SNR and
/// at −20 dB, and the mean arousal the term gives over the speech frames.
fn calibrate() -> Result<(), String> {
    let dir = affect::weights::weights_dir();
    let mut m = Model::load(
        &dir.join(fusion::AUDIO_MODEL_FILE),
        Some(Role::AudioFeature),
        &SessionConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    println!("ONNX Runtime {}", m.runtime().version());
    let cache = std::env::temp_dir().join("affect-calibrate");
    let texts = affect::audio::synth::AROUSAL_TEXTS;
    let conditions = affect::audio::synth::AROUSAL_CONDITIONS;
    let names = [
        ("f0_p50 Hz", vocal::F0_P50),
        ("syll/s", vocal::SYLLABLE_RATE),
        ("slope", vocal::SLOPE_MEAN),
        ("loud p50", vocal::LOUDNESS_P50),
    ];
    for voice in ["en", "en+f3"] {
        for (cond, opts) in conditions {
            let mut all = vec!["-v", voice];
            all.extend_from_slice(opts);
            let mut clean = vec![0.0f32; WINDOW / 2];
            for t in texts {
                clean.extend(affect::audio::synth::espeak_voice(t, 16000, &all, &cache)?);
                clean.extend(vec![0.0f32; WINDOW / 2]);
            }
            let white = affect::audio::synth::white_noise(clean.len(), 1);
            let pink = affect::audio::synth::pink_noise(clean.len(), 2);
            for (variant, x) in [
                ("clean", clean.clone()),
                (
                    "white",
                    affect::audio::synth::mix_at_snr(&clean, &white, 10.0),
                ),
                (
                    "pink",
                    affect::audio::synth::mix_at_snr(&clean, &pink, 10.0),
                ),
                ("-20dB", clean.iter().map(|v| v * 0.1).collect()),
            ] {
                let v = prosody(&mut m, &x)?;
                let voiced: Vec<&Vec<f32>> = v
                    .iter()
                    .filter(|f| f[vocal::VOICED_FRACTION] > 0.3)
                    .collect();
                let mut line = format!("{voice:6} {cond:8} {variant:6} n {:3}", voiced.len());
                for (name, i) in names {
                    line += &format!(
                        "  {name} {:7.2}",
                        median(voiced.iter().map(|f| f[i]).collect())
                    );
                }
                let range = median(
                    voiced
                        .iter()
                        .map(|f| (f[vocal::F0_P80].max(50.0) / f[vocal::F0_P20].max(50.0)).log2())
                        .collect(),
                );
                let cues: Vec<vocal::FrameCues> =
                    v.iter().map(|f| vocal::frame_cues(f, 1.0)).collect();
                let frames: Vec<&[f32]> = v.iter().map(Vec::as_slice).collect();
                let shifts =
                    vocal::arousal_shifts(&frames, &vec![1.0; frames.len()], vocal::WINDOW);
                let speech: Vec<f32> = shifts
                    .iter()
                    .zip(&cues)
                    .filter(|(_, c)| c.gate >= 1.0)
                    .map(|(s, _)| *s)
                    .collect();
                let mean = speech.iter().sum::<f32>() / speech.len().max(1) as f32;
                println!("{line}  range {range:.3} oct  arousal over speech {mean:+.3}");
            }
        }
    }
    Ok(())
}
