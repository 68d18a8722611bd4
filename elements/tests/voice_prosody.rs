// SPDX-License-Identifier: MPL-2.0
//! `featextract model=voice-prosody`: one named 164-d vector per 80 ms hop on real speech
//! (espeak-ng WAV through wavparse / audioconvert / audioresample), loudness following the
//! gain (×0.5 → −6.02 dB), F0 following espeak-ng's pitch setting, and finite vectors for
//! NaN/inf samples, silence, full-scale clipping and a clip shorter than the window.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use affect::features::sample_time_ns;
use affect::results::FeatureVector;
use affect::runtime::ModelContract;
use gstaffect::meta::FeatureMeta;

const HOP_NS: u64 = 80_000_000;
const TEXT: &str = "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore, and then she rests for a while.";

/// The model's feature names (`affect.output.feature-names`), in order.
fn names() -> Vec<String> {
    let c = ModelContract::read_file(&affect::weights::resolve_model("voice-prosody")).unwrap();
    let names: Vec<String> = c.props["affect.output.feature-names"]
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(Some(names.len()), c.output_dim);
    names
}

fn index(names: &[String], name: &str) -> usize {
    names.iter().position(|n| n == name).unwrap()
}

/// espeak-ng speech at `pitch` as espeak-ng writes it (22050 Hz mono S16 WAV); sample count.
fn speech_wav(pitch: u32, dir: &Path) -> (PathBuf, usize) {
    let wav = dir.join(format!("p{pitch}.wav"));
    let st = Command::new("espeak-ng")
        .args(["-p", &pitch.to_string(), "-w"])
        .arg(&wav)
        .arg(TEXT)
        .status()
        .expect("espeak-ng runs (make setup installs it)");
    assert!(st.success());
    let bytes = std::fs::read(&wav).unwrap();
    let wav_data = affect::audio::synth::parse_wav(&bytes).unwrap();
    assert_eq!((wav_data.rate, wav_data.channels), (22050, 1));
    (wav, wav_data.samples.len())
}

fn vectors(desc: &str) -> Vec<Arc<FeatureVector>> {
    common::collect(desc, 120, |b| {
        b.iter_meta::<FeatureMeta>()
            .map(|m| m.data().clone())
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

fn speech_vectors(wav: &Path, gain: f64) -> Vec<Arc<FeatureVector>> {
    vectors(&format!(
        "filesrc location={} ! wavparse ! audioconvert ! audio/x-raw,format=F32LE ! volume volume={gain} ! audioresample ! featextract model=voice-prosody ! fakesink name=out",
        wav.display()
    ))
}

fn median(mut v: Vec<f32>) -> f32 {
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

#[test]
fn speech_gives_one_named_vector_per_hop_following_gain_and_pitch() {
    let names = names();
    let dir = common::scratch("voice-prosody");
    let (loud_p80, loud_p20, f0_p50, voiced) = (
        index(&names, "loudness_p80_db"),
        index(&names, "loudness_p20_db"),
        index(&names, "f0_p50_hz"),
        index(&names, "voiced_fraction"),
    );
    let mut f0 = Vec::new();
    for pitch in [30, 75] {
        let (wav, n22) = speech_wav(pitch, &dir);
        let v = speech_vectors(&wav, 1.0);
        // one vector per 80 ms hop of the 16 kHz stream: (N - 16000) / 1280 + 1
        let n16 = n22 * 16000 / 22050;
        let expected = (n16 - 16000) / 1280 + 1;
        assert!(
            v.len().abs_diff(expected) <= 1,
            "{} vectors, expected {expected}",
            v.len()
        );
        for (i, x) in v.iter().enumerate() {
            assert_eq!(x.model, "voice-prosody");
            assert!(x.valid && x.vector.len() == 164, "vector {i}");
            assert!(x.vector.iter().all(|f| f.is_finite()), "vector {i}");
            assert_eq!(x.pts - v[0].pts, i as u64 * HOP_NS, "vector {i}");
        }
        let speaking: Vec<_> = v.iter().filter(|x| x.vector[voiced] > 0.3).collect();
        assert!(
            speaking.len() > v.len() / 2,
            "{} of {}",
            speaking.len(),
            v.len()
        );
        f0.push(median(speaking.iter().map(|x| x.vector[f0_p50]).collect()));

        if pitch == 30 {
            // ×0.5 → −6.02 dB: the 80th percentile of the frame loudness, on windows of speech
            // (the mean also averages frames of espeak-ng's digital-silence pauses, near the floor)
            let half = speech_vectors(&wav, 0.5);
            assert_eq!(half.len(), v.len());
            let diffs: Vec<f32> = v
                .iter()
                .zip(&half)
                .filter(|(a, b)| a.vector[loud_p20] > -80.0 && b.vector[loud_p20] > -80.0)
                .map(|(a, b)| b.vector[loud_p80] - a.vector[loud_p80])
                .collect();
            assert!(diffs.len() > v.len() / 2, "{} windows", diffs.len());
            let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
            println!(
                "gain 0.5: loudness_p80_db change {mean:.3} dB over {} windows",
                diffs.len()
            );
            assert!((mean + 6.02).abs() <= 0.3, "{mean}");
        }
    }
    println!("F0 median: -p 30 {:.1} Hz, -p 75 {:.1} Hz", f0[0], f0[1]);
    assert!(f0[1] > f0[0] * 1.2, "{f0:?}");
}

#[test]
fn native_and_graph_give_the_same_vectors_in_a_stream() {
    // 22.05 kHz espeak-ng speech resampled in the element, buffers of whatever size
    // wavparse gives: the native path's frame reuse follows the stream's window starts.
    let dir = common::scratch("voice-prosody-native");
    let (wav, _) = speech_wav(50, &dir);
    let run = |native: bool| {
        vectors(&format!(
            "filesrc location={} ! wavparse ! audioconvert ! audio/x-raw,format=F32LE ! featextract model=voice-prosody native={native} ! fakesink name=out",
            wav.display()
        ))
    };
    let (graph, native) = (run(false), run(true));
    assert_eq!(graph.len(), native.len());
    assert!(graph.len() > 50, "{} vectors", graph.len());
    let (mut worst, mut worst_step) = (0.0f32, 0.0f32);
    let (mut pitch_apart, mut steps_apart) = (0, 0);
    for (g, n) in graph.iter().zip(&native) {
        assert_eq!((g.pts, g.duration), (n.pts, n.duration));
        // As in tests/voice_prosody_native.rs: the F0 functionals and voiced fraction
        // (5-9, 34) move when a YIN decision flips within float rounding of its threshold;
        // the rise / fall means (30-33) when a one-ulp step on a flat stretch counts as a
        // step in one and not in the other. Everything else agrees to float rounding.
        let (mut p, mut st) = (false, false);
        for (i, (a, b)) in g.vector.iter().zip(&n.vector).enumerate() {
            let err = (a - b).abs() / a.abs().max(1.0);
            if (5..=9).contains(&i) || i == 34 {
                p |= err > 1e-3;
            } else if (30..=33).contains(&i) {
                st |= err > 1e-3 && (a - b).abs() > 0.1;
                worst_step = worst_step.max(err);
            } else {
                worst = worst.max(err);
            }
        }
        pitch_apart += p as usize;
        steps_apart += st as usize;
    }
    println!(
        "{} vectors: worst relative difference {worst:.2e}; F0 features apart in {pitch_apart}; \
         rise/fall apart in {steps_apart} (worst {worst_step:.3} relative)",
        graph.len()
    );
    assert!(worst <= 1e-3, "{worst}");
    assert!(pitch_apart * 50 <= graph.len(), "{pitch_apart}");
    assert!(steps_apart * 10 <= graph.len(), "{steps_apart}");
    assert!(worst_step <= 0.1, "{worst_step}");
}

/// Pushes mono F32 16 kHz `x` in 1000-sample buffers through featextract, then EOS.
fn push(x: &[f32]) -> Vec<Arc<FeatureVector>> {
    common::init();
    let el = gst::ElementFactory::make("featextract")
        .property_from_str("model", "voice-prosody")
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    h.set_src_caps_str("audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved");
    h.play();
    let mut out = Vec::new();
    for (k, chunk) in x.chunks(1000).enumerate() {
        let at = (k * 1000) as u64;
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut b = gst::Buffer::from_mut_slice(bytes);
        let r = b.get_mut().unwrap();
        r.set_pts(gst::ClockTime::from_nseconds(sample_time_ns(0, at, 16000)));
        h.push(b).unwrap();
        while let Some(b) = h.try_pull() {
            out.extend(b.iter_meta::<FeatureMeta>().map(|m| m.data().clone()));
        }
    }
    h.push_event(gst::event::Eos::new());
    while let Some(b) = h.try_pull() {
        out.extend(b.iter_meta::<FeatureMeta>().map(|m| m.data().clone()));
    }
    out
}

#[test]
fn bad_input_gives_finite_vectors_or_none() {
    let names = names();
    let n = 32000;
    let tone = |i: usize| 0.3 * (2.0 * std::f32::consts::PI * 150.0 * i as f32 / 16000.0).sin();
    let cases: Vec<(&str, Vec<f32>)> = vec![
        (
            "NaN/inf samples",
            (0..n)
                .map(|i| match i % 50 {
                    0 => f32::NAN,
                    17 => f32::INFINITY,
                    33 => f32::NEG_INFINITY,
                    _ => tone(i),
                })
                .collect(),
        ),
        ("silence", vec![0.0; n]),
        (
            "full-scale clipping",
            (0..n).map(|i| (tone(i) * 100.0).clamp(-1.0, 1.0)).collect(),
        ),
        ("0.1 s clip", (0..1600).map(tone).collect()),
    ];
    for (what, x) in cases {
        let v = push(&x);
        let expected = if x.len() >= 16000 {
            (x.len() - 16000) / 1280 + 1
        } else {
            0
        };
        assert_eq!(v.len(), expected, "{what}");
        for f in &v {
            assert!(f.valid && f.vector.len() == names.len(), "{what}");
            assert!(
                f.vector.iter().all(|x| x.is_finite()),
                "{what}: {:?}",
                f.vector
            );
        }
        let lm = index(&names, "loudness_mean_db");
        let vf = index(&names, "voiced_fraction");
        match what {
            "silence" => assert!(
                v.iter()
                    .all(|f| f.vector[lm] == -100.0 && f.vector[vf] == 0.0)
            ),
            "full-scale clipping" => assert!(v.iter().all(|f| f.vector[lm] > -1.0)),
            _ => {}
        }
    }
}
