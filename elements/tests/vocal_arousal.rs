// SPDX-License-Identifier: MPL-2.0
//! The voice moves arousal in the default pipeline, and only the voice: a still face
//! (`single_face.jpg` frozen at 25 fps) with espeak-ng speech or non-speech sounds through
//! `audiodenoise vad=silero ! featextract` (defaults: voice-prosody) into `avfuse`
//! (default: fusion-baseline). The face is the same in every run, so differences of
//! arousal are the voice's.

mod common;

use std::path::{Path, PathBuf};

use affect::audio::synth;
use gstaffect::meta::affect_meta_faces;

const FPS: u32 = 25;
const RATE: u32 = 48_000;
const LEAD_S: f64 = 1.0;
const PAUSE_S: f64 = 0.5;
const TAIL_S: f64 = 1.0;
const TEXTS: [&str; 2] = synth::AROUSAL_TEXTS;
const CONDITIONS: [(&str, &[&str]); 3] = synth::AROUSAL_CONDITIONS;

fn silence(s: f64) -> Vec<f32> {
    vec![0.0; (s * f64::from(RATE)) as usize]
}

/// Writes `samples` (48 kHz mono) as a WAV file in `dir`.
fn write_wav(dir: &Path, name: &str, samples: &[f32]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, synth::wav_f32_bytes(samples, RATE, 1)).unwrap();
    path
}

/// Lead silence, the two sentences in `voice` with espeak-ng options `opts` and a pause
/// between them, tail silence; the samples and the sentences' spans (s).
fn speech(voice: &str, opts: &[&str]) -> (Vec<f32>, Vec<(f64, f64)>) {
    let cache = std::env::temp_dir().join("affect-vocal-arousal");
    let mut all = vec!["-v", voice];
    all.extend_from_slice(opts);
    let mut x = silence(LEAD_S);
    let mut spans = Vec::new();
    for (i, t) in TEXTS.iter().enumerate() {
        if i > 0 {
            x.extend(silence(PAUSE_S));
        }
        let s = synth::espeak_voice(t, RATE, &all, &cache).expect("espeak-ng and sox");
        let start = x.len() as f64 / f64::from(RATE);
        x.extend(s);
        spans.push((start, x.len() as f64 / f64::from(RATE)));
    }
    x.extend(silence(TAIL_S));
    (x, spans)
}

/// (frame time s, arousal) of the one face in every frame: the still face for as long as
/// the audio `wav` lasts, with the audio branch when `wav` is given.
fn arousal(wav: Option<(&Path, f64)>, seconds: f64) -> Vec<(f64, f32)> {
    let video = common::still_face_branch(seconds, FPS);
    let desc = match wav {
        Some((wav, _)) => format!(
            "{video} ! avfuse name=f ! fakesink name=out \
             filesrc location={} ! wavparse ! audioconvert ! audioresample \
             ! audio/x-raw,rate=48000,channels=1 ! audiodenoise vad=silero ! featextract \
             ! queue ! f.audio_sink",
            wav.display()
        ),
        None => format!("{video} ! avfuse ! fakesink name=out"),
    };
    let out = common::collect(&desc, 300, |b| {
        let faces = affect_meta_faces(b).expect("GstAffectMeta").unwrap();
        (
            b.pts().map_or(0.0, |t| t.nseconds() as f64 / 1e9),
            faces.iter().map(|f| f.arousal).collect::<Vec<f32>>(),
        )
    });
    let frames = (seconds * f64::from(FPS)).round() as usize;
    assert!(out.len() + 2 >= frames, "{} of {frames} frames", out.len());
    out.into_iter()
        .map(|(t, a)| {
            assert_eq!(a.len(), 1, "one face at {t} s");
            assert!(a[0].is_finite());
            (t, a[0])
        })
        .collect()
}

/// Mean arousal over the frames inside the sentences (from 0.3 s after each start: the
/// window of the first frames still holds mostly silence).
fn speech_mean(frames: &[(f64, f32)], spans: &[(f64, f64)]) -> f32 {
    let inside: Vec<f32> = frames
        .iter()
        .filter(|(t, _)| spans.iter().any(|&(a, b)| *t >= a + 0.3 && *t < b))
        .map(|(_, a)| *a)
        .collect();
    assert!(inside.len() >= 100, "{} frames in speech", inside.len());
    inside.iter().sum::<f32>() / inside.len() as f32
}

/// The arousal of the still face with no audio at all (constant: the face never changes).
fn visual_only() -> f32 {
    let a = arousal(None, 3.0);
    let first = a[0].1;
    assert!(a.iter().all(|(_, v)| (v - first).abs() < 1e-6), "{a:?}");
    first
}

fn order_for(voice: &str, noise: Option<u64>) {
    let dir = common::scratch(&format!("vocal-arousal-{voice}-{}", noise.is_some()));
    let mut means = Vec::new();
    for (name, opts) in CONDITIONS {
        let (mut x, spans) = speech(voice, opts);
        if let Some(seed) = noise {
            x = synth::mix_at_snr(&x, &synth::white_noise(x.len(), seed), 10.0);
        }
        let seconds = x.len() as f64 / f64::from(RATE);
        let wav = write_wav(&dir, &format!("{name}.wav"), &x);
        means.push(speech_mean(
            &arousal(Some((&wav, seconds)), seconds),
            &spans,
        ));
    }
    let c = visual_only();
    let text = format!(
        "{voice} noise {noise:?}: visual only {c:+.3}, calm {:+.3}, neutral {:+.3}, excited {:+.3}",
        means[0], means[1], means[2]
    );
    println!("{text}");
    assert!(
        means[1] - means[0] >= 0.15 && means[2] - means[1] >= 0.15,
        "{text}"
    );
}

#[test]
fn calm_neutral_excited_order_in_the_pipeline_low_voice() {
    order_for("en", None);
}

#[test]
fn calm_neutral_excited_order_in_the_pipeline_high_voice() {
    order_for("en+f3", None);
}

#[test]
fn calm_neutral_excited_order_in_the_pipeline_in_white_noise() {
    order_for("en", Some(7));
}

/// sox synth sounds, 6 s: (name, synth arguments).
const NON_SPEECH: [(&str, &[&str]); 5] = [
    ("tone", &["sine", "440"]),
    ("sweep", &["sine", "100-2000"]),
    (
        "chord",
        &[
            "sine", "220", "sine", "277", "sine", "330", "tremolo", "4", "60",
        ],
    ),
    ("white", &["whitenoise"]),
    ("pink", &["pinknoise"]),
];

#[test]
fn music_tones_and_noise_leave_arousal_at_the_visual_only_value() {
    let dir = common::scratch("vocal-arousal-non-speech");
    let c = visual_only();
    for (name, synth_args) in NON_SPEECH {
        let wav = dir.join(format!("{name}.wav"));
        let st = std::process::Command::new("sox")
            .args(["-n", "-r", "48000", "-c", "1", "-b", "16"])
            .arg(&wav)
            .args(["synth", "6"])
            .args(synth_args)
            .args(["gain", "-n", "-6"])
            .status()
            .expect("sox runs (make setup installs it)");
        assert!(st.success());
        let frames = arousal(Some((&wav, 6.0)), 6.0);
        let worst = frames
            .iter()
            .map(|(_, a)| (a - c).abs())
            .fold(0.0f32, f32::max);
        println!("{name}: max |arousal - visual only| = {worst:.4}");
        assert!(
            worst <= 0.05,
            "{name}: arousal moved by {worst} (visual only {c})"
        );
    }
}

#[test]
fn hostile_audio_gives_finite_results_and_no_voice() {
    // NaN and infinite samples, full-scale clipping, digital silence and a 0.1 s clip:
    // every frame's arousal is finite and none of them is taken for a voice.
    let dir = common::scratch("vocal-arousal-hostile");
    let c = visual_only();
    let n = RATE as usize * 3;
    let clipped: Vec<f32> = (0..n)
        .map(|i| if (i / 40) % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let mut broken = clipped.clone();
    for (i, v) in broken.iter_mut().enumerate() {
        match i % 997 {
            0 => *v = f32::NAN,
            1 => *v = f32::INFINITY,
            2 => *v = f32::NEG_INFINITY,
            _ => {}
        }
    }
    let cases: [(&str, Vec<f32>, f64); 4] = [
        ("silence", vec![0.0; n], 3.0),
        ("clipped", clipped, 3.0),
        ("nan-inf", broken, 3.0),
        ("short", vec![0.5; RATE as usize / 10], 1.0),
    ];
    for (name, x, seconds) in cases {
        let wav = write_wav(&dir, &format!("{name}.wav"), &x);
        let frames = arousal(Some((&wav, seconds)), seconds);
        let worst = frames
            .iter()
            .map(|(_, a)| (a - c).abs())
            .fold(0.0f32, f32::max);
        println!("{name}: max |arousal - visual only| = {worst:.4}");
        assert!(worst <= 0.05, "{name}: arousal moved by {worst}");
    }
}
