// SPDX-License-Identifier: MPL-2.0
//! Fuzz-style check of the `audiodenoise` engine: random f32 bit patterns (NaN, ±inf,
//! subnormals, ±1e38, ordinary audio) in random buffer sizes must never panic (RNNoise
//! aborts inside its FFT on finite samples around 1e15 unless they are clipped first),
//! and every output sample and every VAD probability must be finite, the probabilities
//! in [0, 1]. Seeded, so a failure replays.

use affect::audio::engine::{EngineConfig, EngineOutput, Gate, SpeechEngine};
use affect::audio::synth::Rng;

/// One sample from a mix of the awkward classes and plain audio.
fn sample(r: &mut Rng) -> f32 {
    match r.next_u64() % 10 {
        0 => f32::from_bits(r.next_u64() as u32), // any bit pattern at all
        1 => [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][(r.next_u64() % 3) as usize],
        2 => f32::from_bits((r.next_u64() as u32) & 0x807f_ffff), // ±subnormal or ±0
        3 => [1e38, -1e38, f32::MAX, f32::MIN, 1e15, -1e30][(r.next_u64() % 6) as usize],
        4 => (r.uniform() as f32 - 0.5) * 2e6, // loud but finite
        _ => (r.gaussian() * 0.3) as f32,      // ordinary audio
    }
}

fn check(out: &EngineOutput, what: &str) {
    if let Some((i, v)) = out.samples.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        panic!("{what}: output sample {i} is {v}");
    }
    for f in &out.frames {
        for p in [f.probability, f.rnnoise_probability] {
            assert!(
                p.is_finite() && (0.0..=1.0).contains(&p),
                "{what}: probability {p} at frame {}",
                f.start
            );
        }
    }
}

#[test]
fn random_bit_patterns_never_panic_and_give_finite_output() {
    let mut r = Rng::new(0x5eed_a0d1_0f22);
    let mut clipped = 0u64;
    let mut replaced = 0u64;
    for iteration in 0..300 {
        let channels = 1 + (iteration % 2);
        let cfg = EngineConfig {
            channels,
            enabled: iteration % 5 != 4,
            strength: r.uniform() as f32,
            gate: [Gate::None, Gate::Attenuate, Gate::Silence][iteration % 3],
            ..Default::default()
        };
        let mut engine = SpeechEngine::new(cfg, None);
        let mut out = EngineOutput::default();
        let mut pushed = 0usize;
        for _ in 0..4 {
            // 0..5000 samples per channel, sometimes empty
            let n = (r.next_u64() % 5000) as usize;
            let x: Vec<f32> = (0..n * channels).map(|_| sample(&mut r)).collect();
            out.clear();
            engine.push(&x, &mut out).unwrap();
            pushed += n;
            check(&out, &format!("iteration {iteration}, push"));
            clipped += out.clipped;
            replaced += out.replaced;
        }
        out.clear();
        let before = engine.samples_out() as usize;
        engine.finish(&mut out).unwrap();
        check(&out, &format!("iteration {iteration}, finish"));
        assert_eq!(before + out.samples.len() / channels, pushed, "length kept");
        clipped += out.clipped;
        replaced += out.replaced;
    }
    assert!(
        clipped > 0 && replaced > 0,
        "{clipped} clipped, {replaced} replaced"
    );
}
