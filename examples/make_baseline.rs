// SPDX-License-Identifier: MPL-2.0
//! Writes the default fusion model `fusion-baseline` (see `affect::fusion`), or re-runs
//! the measurement behind its audio path.
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

const WINDOW: usize = 12512;
const HOP: usize = 1280;

/// One embedding per 12512-sample window every 1280 samples, one window per batch item
/// (as featextract runs the model).
fn embed(model: &mut Model, audio: &[f32]) -> Result<Vec<Vec<f32>>, String> {
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
        let e = out.get("embeddings").ok_or("no `embeddings` output")?;
        let v: Vec<f32> = e.iter().copied().collect();
        res.extend(v.chunks(vocal::AUDIO_DIM).map(<[f32]>::to_vec));
    }
    Ok(res)
}

fn stats(d: &[f32]) -> String {
    let mut s = d.to_vec();
    s.sort_by(f32::total_cmp);
    let q = |p: f32| s[((s.len() - 1) as f32 * p) as usize];
    format!(
        "n {:3}  mean {:6.3}  p10 {:6.3}  p50 {:6.3}  p90 {:6.3}  max {:6.3}",
        s.len(),
        s.iter().sum::<f32>() / s.len() as f32,
        q(0.1),
        q(0.5),
        q(0.9),
        q(1.0)
    )
}

/// The measurement documented in `affect::fusion::vocal`.
fn calibrate() -> Result<(), String> {
    let dir = affect::weights::weights_dir();
    let mut m = Model::load(
        &dir.join(fusion::AUDIO_MODEL_FILE),
        Some(Role::AudioFeature),
        &SessionConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    println!("ONNX Runtime {}", m.runtime().version());
    let silence = embed(&mut m, &vec![0.0f32; 16000 * 3])?;
    let reference: Vec<f32> = (0..vocal::AUDIO_DIM)
        .map(|j| silence.iter().map(|e| e[j]).sum::<f32>() / silence.len() as f32)
        .collect();
    println!("silence embedding (SILENCE_EMBEDDING) = {reference:?}");
    let stored = vocal::deviation(&reference);
    println!("deviation of the measured silence from SILENCE_EMBEDDING: {stored:.2e}");
    let spread = silence
        .iter()
        .map(|e| vocal::deviation(e))
        .fold(0f32, f32::max);
    println!("max deviation of silent windows from it: {spread:.2e}");

    println!("\nnon-speech (d = RMS deviation from SILENCE_EMBEDDING):");
    let white = affect::audio::synth::white_noise(16000 * 3, 1);
    let pink = affect::audio::synth::pink_noise(16000 * 3, 2);
    for (name, noise, levels) in [
        ("white", &white, &[-80.0f32, -60.0, -40.0, -10.0][..]),
        ("pink", &pink, &[-30.0f32, -10.0][..]),
    ] {
        for &db in levels {
            let g = 10f32.powf(db / 20.0);
            let n: Vec<f32> = noise.iter().map(|v| v * g).collect();
            let d: Vec<f32> = embed(&mut m, &n)?
                .iter()
                .map(|e| vocal::deviation(e))
                .collect();
            println!("  {name:5} noise {db:5} dBFS: {}", stats(&d));
        }
    }

    println!("\nespeak-ng speech, windows inside the utterance:");
    let cache = std::env::temp_dir().join("affect-calibrate");
    let texts = [
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "Please call me back as soon as you get this message, it is important.",
    ];
    for (t, text) in texts.iter().enumerate() {
        for speed in [100u32, 175, 300] {
            let s = affect::audio::synth::espeak_speech(text, 16000, Some(speed), &cache)?;
            let peak = s.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-9);
            for peak_db in [-40.0f32, -26.0, -12.0, -1.0] {
                let g = 10f32.powf(peak_db / 20.0) / peak;
                let mut a = vec![0.0f32; 16000];
                a.extend(s.iter().map(|v| v * g));
                a.extend(vec![0.0f32; 16000]);
                let d: Vec<f32> = embed(&mut m, &a)?
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| k * HOP >= 16000 && k * HOP + WINDOW <= 16000 + s.len())
                    .map(|(_, e)| vocal::deviation(e))
                    .collect();
                let open = d.iter().filter(|&&v| vocal::gate(v) >= 1.0).count();
                println!(
                    "  sentence {t} {speed:3} wpm peak {peak_db:5} dBFS: {}  gate fully open {open}/{}",
                    stats(&d),
                    d.len()
                );
            }
        }
    }
    Ok(())
}
