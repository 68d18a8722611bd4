// SPDX-License-Identifier: MPL-2.0
//! The baseline's vocal-arousal term, read from the `voice-prosody` features.
//!
//! Arousal is the affect dimension the voice carries best: louder, higher, wider-ranged,
//! faster and more effortful speech sounds more activated (the eGeMAPS parameter set was
//! designed around these correlates). The term uses only cues that do not depend on the
//! microphone's gain — every one is a ratio, a rate or a level *difference* — and each is
//! clipped, so one wrong estimate moves arousal by a bounded amount.
//!
//! # Formula (per frame `t` of the fusion window, causal)
//!
//! Gate: `g_t = audio_mask_t · clip((voiced_fraction_t − 0.2) / 0.3, 0, 1)`. The fusion
//! contract says `affect.fusion.audio-mask = speech`, so `avfuse` sets `audio_mask` to the
//! voice-activity probability of the audio window (from `audiodenoise`'s
//! `GstAffectSpeechMeta`): music, tones and noise, which the pitch tracker may call voiced,
//! stay out. Non-speech and missing audio add nothing.
//!
//! Speaker reference (running, over the window's gated frames `s ≤ t`, `n_t = Σ g_s`):
//! `μ_t = Σ g_s·log2 F0_s / n_t`; the register reference `R_t` = [`MALE_REF_HZ`] when
//! `μ_t < log2` [`REGISTER_SPLIT_HZ`], else [`FEMALE_REF_HZ`] (an octave apart); the
//! reference `r_t = log2 R_t + α_t·(μ_t − log2 R_t)` with `α_t =` [`ADAPT_MAX`]` ·
//! min(n_t / T, 1)`: a stream's first second is read against the register's reference,
//! and the speaker's own level takes over at most half of it after a full window (T =
//! [`WINDOW`] frames, 10 s at 25 fps) of speech — a speaker who stays excited still reads
//! as excited. The same running mean gives the loudness level `λ_t`.
//!
//! | cue | value (feature names of `voice-prosody`) | weight | centre | clip |
//! |---|---|---|---|---|
//! | F0 level | `log2(f0_p50_hz) − r_t` (octaves) | [`K_F0`] | 0 | ±0.4 |
//! | F0 range | `log2(f0_p80_hz / f0_p20_hz)` (octaves) | [`K_RANGE`] | [`RANGE_REF`] | ±0.1 |
//! | speaking rate | `syllable_rate_per_s` | [`K_RATE`] | [`RATE_REF`] | ±0.2 |
//! | vocal effort | energy above vs below 1 kHz from `logmel_mean_*_db` (dB) | [`K_EFFORT`] | [`EFFORT_REF`] | ±0.1 |
//! | spectral slope | `slope_mean_db_per_khz` | [`K_SLOPE`] | [`SLOPE_REF`] | ±0.05 |
//! | loudness change | `loudness_p50_db − λ_t` (dB) | [`K_LOUD`] | 0 | ±0.1 |
//!
//! `arousal += g_t · clip(Σ cues, −`[`VOICE_LIMIT`]`, +`[`VOICE_LIMIT`]`)`; valence is
//! untouched. A face with no visual vector (visual mask 0) therefore still gets arousal
//! from the voice, valence 0.
//!
//! # Where the numbers come from (`cargo run --example make_baseline -- --calibrate`)
//!
//! espeak-ng, two sentences, voices `en` and `en+f3`, conditions calm (`-a 60 -p 30 -s
//! 130`), neutral (defaults) and excited (`-a 180 -p 75 -s 230`), windows with voiced
//! fraction > 0.3, medians:
//!
//! | voice | condition | f0_p50 Hz | syllables/s | F0 range oct | effort dB | slope dB/kHz |
//! |---|---|---|---|---|---|---|
//! | en | calm / neutral / excited | 87 / 102 / 131 | 3 / 4 / 5 | 0.14 / 0.15 / 0.14 | −14.6 / −14.7 / −14.9 | −4.5 / −4.2 / −4.0 |
//! | en+f3 | calm / neutral / excited | 182 / 213 / 265 | 3 / 4 / 4.5 | 0.16 / 0.21 / 0.18 | −14.9 / −14.9 / −15.5 | −3.8 / −3.4 / −2.7 |
//!
//! F0 and syllable rate order the conditions, and stay within 2 Hz / 0.5 syllables per
//! second after white or pink noise at 10 dB SNR or a −20 dB gain. The register
//! references (105 and 210 Hz) are the neutral voices' levels, rounded; F0 range and the
//! spectral cues do not order espeak-ng's conditions (its amplitude setting is a gain)
//! and move with noise, so they get small weights and tight clips: they are there for
//! real voices, where vocal effort raises high-frequency energy. `loudness_std_db` is
//! not used: silence inside the window floors it, so it changes with gain.

use crate::onnx::{Attr, GraphBuilder};

/// Dimension of the `voice-prosody` vector.
pub const AUDIO_DIM: usize = 164;
/// Frames of the fusion window (`affect.fusion.window`): the history of the running
/// speaker reference.
pub const WINDOW: usize = 250;
/// Audio feature values are clipped to ±this before use (keeps garbage finite).
pub const INPUT_LIMIT: f32 = 1e4;

/// Index of `f0_p20_hz`.
pub const F0_P20: usize = 7;
/// Index of `f0_p50_hz`.
pub const F0_P50: usize = 8;
/// Index of `f0_p80_hz`.
pub const F0_P80: usize = 9;
/// Index of `loudness_p50_db`.
pub const LOUDNESS_P50: usize = 3;
/// Index of `slope_mean_db_per_khz`.
pub const SLOPE_MEAN: usize = 20;
/// Index of `voiced_fraction`.
pub const VOICED_FRACTION: usize = 34;
/// Index of `syllable_rate_per_s`.
pub const SYLLABLE_RATE: usize = 35;
/// Index of `logmel_mean_00_db` (64 bands follow).
pub const LOGMEL_MEAN: usize = 36;
/// Mel bands.
pub const MEL_BANDS: usize = 64;
/// The features the term reads, by index and name (checked against the model's
/// `affect.output.feature-names` by the tests and by `make_baseline`).
pub const USED_FEATURES: [(usize, &str); 8] = [
    (LOUDNESS_P50, "loudness_p50_db"),
    (F0_P20, "f0_p20_hz"),
    (F0_P50, "f0_p50_hz"),
    (F0_P80, "f0_p80_hz"),
    (SLOPE_MEAN, "slope_mean_db_per_khz"),
    (VOICED_FRACTION, "voiced_fraction"),
    (SYLLABLE_RATE, "syllable_rate_per_s"),
    (LOGMEL_MEAN, "logmel_mean_00_db"),
];

/// Voiced fraction at or below which the gate is closed.
pub const VOICED_LO: f32 = 0.2;
/// Voiced fraction at or above which the gate is fully open.
pub const VOICED_HI: f32 = 0.5;
/// F0 values are clipped to this range (Hz) before the log.
pub const F0_RANGE_HZ: (f32, f32) = (50.0, 1000.0);
/// Reference F0 of the low register (Hz).
pub const MALE_REF_HZ: f32 = 105.0;
/// Reference F0 of the high register (Hz), an octave above [`MALE_REF_HZ`].
pub const FEMALE_REF_HZ: f32 = 210.0;
/// A running mean F0 at or above this picks the high register (Hz).
pub const REGISTER_SPLIT_HZ: f32 = 155.0;
/// The share of the reference the speaker's own running level takes after a full window.
pub const ADAPT_MAX: f32 = 0.5;
/// Arousal per octave of F0 above the reference.
pub const K_F0: f32 = 1.0;
/// Clip of the F0 level cue.
pub const F0_LIMIT: f32 = 0.4;
/// Arousal per octave of F0 range (p80/p20) above [`RANGE_REF`].
pub const K_RANGE: f32 = 0.5;
/// Typical F0 range, octaves.
pub const RANGE_REF: f32 = 0.15;
/// Clip of the F0 range cue.
pub const RANGE_LIMIT: f32 = 0.1;
/// Arousal per syllable per second above [`RATE_REF`].
pub const K_RATE: f32 = 0.1;
/// Typical speaking rate, syllables per second.
pub const RATE_REF: f32 = 4.0;
/// Clip of the speaking-rate cue.
pub const RATE_LIMIT: f32 = 0.2;
/// Arousal per dB of energy above 1 kHz relative to below, above [`EFFORT_REF`].
pub const K_EFFORT: f32 = 0.01;
/// Typical energy above vs below 1 kHz of speech, dB.
pub const EFFORT_REF: f32 = -15.0;
/// Clip of the vocal-effort cue.
pub const EFFORT_LIMIT: f32 = 0.1;
/// Arousal per dB/kHz of spectral slope above [`SLOPE_REF`].
pub const K_SLOPE: f32 = 0.02;
/// Typical spectral slope of speech, dB/kHz.
pub const SLOPE_REF: f32 = -4.0;
/// Clip of the spectral-slope cue.
pub const SLOPE_LIMIT: f32 = 0.05;
/// Arousal per dB of loudness above the stream's running level.
pub const K_LOUD: f32 = 0.02;
/// Clip of the loudness-change cue.
pub const LOUD_LIMIT: f32 = 0.1;
/// Clip of the sum of the cues.
pub const VOICE_LIMIT: f32 = 0.6;
/// Loudness values are clipped to this range (dBFS).
pub const LOUDNESS_RANGE_DB: (f32, f32) = (-120.0, 10.0);
/// Log-mel values are clipped to this range (dB) before the band energies.
pub const LOGMEL_RANGE_DB: (f32, f32) = (-120.0, 60.0);
/// Floor of the running count `n_t` in the divisions (frames).
pub const MIN_COUNT: f32 = 1e-3;

/// Upper edge of the 0–8000 Hz Slaney mel scale of `voice-prosody` (librosa's
/// `hz_to_mel(8000)`).
fn slaney_mel(hz: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, min_log_mel, logstep) = (1000.0, 1000.0 / f_sp, 6.4f64.ln() / 27.0);
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

/// 1 for the mel bands of `voice-prosody` whose centre lies at or above 1 kHz (64
/// Slaney bands on 0–8000 Hz, centres at the inner points of 66 equally spaced mels).
pub fn high_bands() -> [f32; MEL_BANDS] {
    let top = slaney_mel(8000.0);
    let one_khz = slaney_mel(1000.0);
    let mut out = [0.0; MEL_BANDS];
    for (b, o) in out.iter_mut().enumerate() {
        let centre = top * (b + 1) as f64 / (MEL_BANDS + 1) as f64;
        *o = if centre >= one_khz - 1e-9 { 1.0 } else { 0.0 };
    }
    out
}

fn clean(v: f32, lo: f32, hi: f32) -> f32 {
    if v.is_nan() { 0.0 } else { v.clamp(lo, hi) }
}

fn get(a: &[f32], i: usize) -> f32 {
    clean(a.get(i).copied().unwrap_or(0.0), -INPUT_LIMIT, INPUT_LIMIT)
}

/// The per-frame quantities of the term (before the running reference).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameCues {
    /// `audio_mask · voicing`, in \[0, 1\].
    pub gate: f32,
    /// log2 of the (clipped) median F0.
    pub log_f0: f32,
    /// Median loudness, dBFS (clipped).
    pub loudness: f32,
    /// Sum of the cues that need no reference (range, rate, effort, slope), clipped each.
    pub fixed: f32,
}

/// The cues of one frame from its `voice-prosody` vector and audio mask. Never NaN.
pub fn frame_cues(audio: &[f32], audio_mask: f32) -> FrameCues {
    let f0 = |i| clean(get(audio, i), F0_RANGE_HZ.0, F0_RANGE_HZ.1);
    let voicing =
        ((get(audio, VOICED_FRACTION) - VOICED_LO) / (VOICED_HI - VOICED_LO)).clamp(0.0, 1.0);
    let gate = clean(audio_mask, 0.0, 1.0) * voicing;
    let range = (f0(F0_P80) / f0(F0_P20)).log2();
    let rate = get(audio, SYLLABLE_RATE);
    let slope = get(audio, SLOPE_MEAN);
    let high = high_bands();
    let (mut hi, mut lo) = (0.0f32, 0.0f32);
    for (b, h) in high.iter().enumerate() {
        let db = clean(
            get(audio, LOGMEL_MEAN + b),
            LOGMEL_RANGE_DB.0,
            LOGMEL_RANGE_DB.1,
        );
        let p = (db * (std::f32::consts::LN_10 / 10.0)).exp();
        hi += h * p;
        lo += (1.0 - h) * p;
    }
    let effort = 10.0 * (hi + 1e-12).log10() - 10.0 * (lo + 1e-12).log10();
    let fixed = (K_RANGE * (range - RANGE_REF)).clamp(-RANGE_LIMIT, RANGE_LIMIT)
        + (K_RATE * (rate - RATE_REF)).clamp(-RATE_LIMIT, RATE_LIMIT)
        + (K_EFFORT * (effort - EFFORT_REF)).clamp(-EFFORT_LIMIT, EFFORT_LIMIT)
        + (K_SLOPE * (slope - SLOPE_REF)).clamp(-SLOPE_LIMIT, SLOPE_LIMIT);
    FrameCues {
        gate,
        log_f0: f0(F0_P50).log2(),
        loudness: clean(
            get(audio, LOUDNESS_P50),
            LOUDNESS_RANGE_DB.0,
            LOUDNESS_RANGE_DB.1,
        ),
        fixed,
    }
}

/// The arousal the voice adds at every frame of one window (oldest first; `audio[t]` the
/// `voice-prosody` vector of frame `t`, `mask[t]` its audio mask). Frame `t` reads frames
/// `0..=t` only. `window` is T in `α_t` (the model's [`WINDOW`]). Never NaN.
pub fn arousal_shifts(audio: &[&[f32]], mask: &[f32], window: usize) -> Vec<f32> {
    let (mut n, mut sf0, mut sloud) = (0.0f32, 0.0f32, 0.0f32);
    let split = REGISTER_SPLIT_HZ.log2();
    audio
        .iter()
        .zip(mask)
        .map(|(a, &m)| {
            let c = frame_cues(a, m);
            n += c.gate;
            sf0 += c.gate * c.log_f0;
            sloud += c.gate * c.loudness;
            let den = n.max(MIN_COUNT);
            let mu = sf0 / den;
            let level = sloud / den;
            let register = if mu > split {
                FEMALE_REF_HZ
            } else {
                MALE_REF_HZ
            }
            .log2();
            let alpha = ADAPT_MAX * (n / window as f32).min(1.0);
            let reference = register + alpha * (mu - register);
            let cues = (K_F0 * (c.log_f0 - reference)).clamp(-F0_LIMIT, F0_LIMIT)
                + c.fixed
                + (K_LOUD * (c.loudness - level)).clamp(-LOUD_LIMIT, LOUD_LIMIT);
            c.gate * cues.clamp(-VOICE_LIMIT, VOICE_LIMIT)
        })
        .collect()
}

/// Adds a scalar constant named `name`, returns the name.
fn scalar(g: &mut GraphBuilder, name: &str, v: f32) -> String {
    g.constant(name, &[], &[v])
}

/// `out = clip(k·(x − centre), −limit, limit)`.
fn cue(g: &mut GraphBuilder, x: &str, k: f32, centre: f32, limit: f32, out: &str) {
    let c = scalar(g, &format!("{out}_centre"), centre);
    let kk = scalar(g, &format!("{out}_k"), k);
    let lo = scalar(g, &format!("{out}_lo"), -limit);
    let hi = scalar(g, &format!("{out}_hi"), limit);
    let d = format!("{out}_d");
    let kd = format!("{out}_kd");
    g.node("Sub", &[x, &c], &[&d], &[])
        .node("Mul", &[&d, &kk], &[&kd], &[])
        .node("Clip", &[&kd, &lo, &hi], &[out], &[]);
}

/// `out = audio[..., index]` (`[B, T]`), from the cleaned audio `a_clip`.
fn feature(g: &mut GraphBuilder, index: usize, out: &str) {
    let i = g.constant_i64(&format!("{out}_index"), &[], &[index as i64]);
    g.node("Gather", &["a_clip", &i], &[out], &[("axis", Attr::Int(2))]);
}

/// Adds the term to the baseline graph: reads the graph inputs `audio` `[B, T, 164]` and
/// `audio_mask` `[B, T]` (and the constants `zero`, `one`, `last_axis`), writes
/// `voice_shift` `[B, T]`, the arousal added at every frame ([`arousal_shifts`] in ONNX
/// ops; the running sums are `CumSum` along T).
pub(crate) fn graph(g: &mut GraphBuilder) {
    let lim_lo = scalar(g, "audio_limit_lo", -INPUT_LIMIT);
    let lim_hi = scalar(g, "audio_limit_hi", INPUT_LIMIT);
    super::clean_node(g, "audio", &lim_lo, &lim_hi, "a_clip");
    super::clean_node(g, "audio_mask", "zero", "one", "am_clip");
    let inv_ln2 = scalar(g, "inv_ln2", std::f32::consts::LOG2_E);
    let f0_lo = scalar(g, "f0_lo", F0_RANGE_HZ.0);
    let f0_hi = scalar(g, "f0_hi", F0_RANGE_HZ.1);
    for (idx, name) in [(F0_P20, "f0_p20"), (F0_P50, "f0_p50"), (F0_P80, "f0_p80")] {
        let raw = format!("{name}_raw");
        feature(g, idx, &raw);
        g.node("Clip", &[&raw, &f0_lo, &f0_hi], &[name], &[]);
    }
    // Gate: audio mask × voicing.
    feature(g, VOICED_FRACTION, "voiced");
    let vlo = scalar(g, "voiced_lo", VOICED_LO);
    let vinv = scalar(g, "voiced_inv_width", 1.0 / (VOICED_HI - VOICED_LO));
    g.node("Sub", &["voiced", &vlo], &["voicing_off"], &[])
        .node("Mul", &["voicing_off", &vinv], &["voicing_lin"], &[])
        .node("Clip", &["voicing_lin", "zero", "one"], &["voicing"], &[])
        .node("Mul", &["am_clip", "voicing"], &["voice_gate"], &[]);
    // log2 F0 and F0 range.
    g.node("Log", &["f0_p50"], &["ln_f0"], &[])
        .node("Mul", &["ln_f0", &inv_ln2], &["log_f0"], &[])
        .node("Div", &["f0_p80", "f0_p20"], &["f0_ratio"], &[])
        .node("Log", &["f0_ratio"], &["ln_ratio"], &[])
        .node("Mul", &["ln_ratio", &inv_ln2], &["f0_range"], &[]);
    cue(g, "f0_range", K_RANGE, RANGE_REF, RANGE_LIMIT, "cue_range");
    feature(g, SYLLABLE_RATE, "rate");
    cue(g, "rate", K_RATE, RATE_REF, RATE_LIMIT, "cue_rate");
    feature(g, SLOPE_MEAN, "slope");
    cue(g, "slope", K_SLOPE, SLOPE_REF, SLOPE_LIMIT, "cue_slope");
    // Vocal effort: energy of the mel bands at or above 1 kHz vs below, dB.
    let starts = g.constant_i64("mel_start", &[1], &[LOGMEL_MEAN as i64]);
    let ends = g.constant_i64("mel_end", &[1], &[(LOGMEL_MEAN + MEL_BANDS) as i64]);
    let axes = g.constant_i64("mel_axis", &[1], &[2]);
    let mlo = scalar(g, "mel_db_lo", LOGMEL_RANGE_DB.0);
    let mhi = scalar(g, "mel_db_hi", LOGMEL_RANGE_DB.1);
    let db_to_ln = scalar(g, "db_to_ln", std::f32::consts::LN_10 / 10.0);
    let high = high_bands();
    let split: Vec<f32> = high.iter().flat_map(|&h| [h, 1.0 - h]).collect();
    g.constant("mel_split", &[MEL_BANDS as i64, 2], &split);
    let tiny = scalar(g, "energy_floor", 1e-12);
    let ln_to_db = scalar(g, "ln_to_db", 10.0 / std::f32::consts::LN_10);
    g.constant("high_minus_low", &[2], &[1.0, -1.0]);
    g.node(
        "Slice",
        &["a_clip", &starts, &ends, &axes],
        &["mel_raw"],
        &[],
    )
    .node("Clip", &["mel_raw", &mlo, &mhi], &["mel_db"], &[])
    .node("Mul", &["mel_db", &db_to_ln], &["mel_ln"], &[])
    .node("Exp", &["mel_ln"], &["mel_power"], &[])
    .node("MatMul", &["mel_power", "mel_split"], &["hi_lo_power"], &[])
    .node("Add", &["hi_lo_power", &tiny], &["hi_lo_floor"], &[])
    .node("Log", &["hi_lo_floor"], &["hi_lo_ln"], &[])
    .node("Mul", &["hi_lo_ln", &ln_to_db], &["hi_lo_db"], &[])
    .node("MatMul", &["hi_lo_db", "high_minus_low"], &["effort"], &[]);
    cue(
        g,
        "effort",
        K_EFFORT,
        EFFORT_REF,
        EFFORT_LIMIT,
        "cue_effort",
    );
    // Loudness.
    feature(g, LOUDNESS_P50, "loud_raw");
    let llo = scalar(g, "loud_lo", LOUDNESS_RANGE_DB.0);
    let lhi = scalar(g, "loud_hi", LOUDNESS_RANGE_DB.1);
    g.node("Clip", &["loud_raw", &llo, &lhi], &["loudness"], &[]);
    // Running sums along T.
    let time_axis = g.constant_i64("time_axis", &[], &[1]);
    let min_count = scalar(g, "min_count", MIN_COUNT);
    g.node("Mul", &["voice_gate", "log_f0"], &["g_log_f0"], &[])
        .node("Mul", &["voice_gate", "loudness"], &["g_loud"], &[])
        .node("CumSum", &["voice_gate", &time_axis], &["run_n"], &[])
        .node("CumSum", &["g_log_f0", &time_axis], &["run_f0"], &[])
        .node("CumSum", &["g_loud", &time_axis], &["run_loud"], &[])
        .node("Max", &["run_n", &min_count], &["run_den"], &[])
        .node("Div", &["run_f0", "run_den"], &["mu"], &[])
        .node("Div", &["run_loud", "run_den"], &["level"], &[]);
    // Register and adapted reference.
    let split_log = scalar(g, "register_split", REGISTER_SPLIT_HZ.log2());
    let male = scalar(g, "register_low", MALE_REF_HZ.log2());
    let octave = scalar(
        g,
        "register_step",
        FEMALE_REF_HZ.log2() - MALE_REF_HZ.log2(),
    );
    let inv_t = scalar(g, "inv_window", 1.0 / WINDOW as f32);
    let adapt = scalar(g, "adapt_max", ADAPT_MAX);
    g.node("Greater", &["mu", &split_log], &["high_register_b"], &[])
        .node(
            "Cast",
            &["high_register_b"],
            &["high_register"],
            &[("to", Attr::Int(1))],
        )
        .node("Mul", &["high_register", &octave], &["register_up"], &[])
        .node("Add", &["register_up", &male], &["register"], &[])
        .node("Mul", &["run_n", &inv_t], &["fill"], &[])
        .node("Min", &["fill", "one"], &["fill_clip"], &[])
        .node("Mul", &["fill_clip", &adapt], &["alpha"], &[])
        .node("Sub", &["mu", "register"], &["mu_off"], &[])
        .node("Mul", &["alpha", "mu_off"], &["adapt_off"], &[])
        .node("Add", &["register", "adapt_off"], &["reference"], &[])
        .node("Sub", &["log_f0", "reference"], &["f0_level"], &[])
        .node("Sub", &["loudness", "level"], &["loud_change"], &[]);
    cue(g, "f0_level", K_F0, 0.0, F0_LIMIT, "cue_f0");
    cue(g, "loud_change", K_LOUD, 0.0, LOUD_LIMIT, "cue_loud");
    let vlim_lo = scalar(g, "voice_lo", -VOICE_LIMIT);
    let vlim_hi = scalar(g, "voice_hi", VOICE_LIMIT);
    g.node("Add", &["cue_f0", "cue_range"], &["sum1"], &[])
        .node("Add", &["sum1", "cue_rate"], &["sum2"], &[])
        .node("Add", &["sum2", "cue_effort"], &["sum3"], &[])
        .node("Add", &["sum3", "cue_slope"], &["sum4"], &[])
        .node("Add", &["sum4", "cue_loud"], &["sum5"], &[])
        .node("Clip", &["sum5", &vlim_lo, &vlim_hi], &["voice"], &[])
        .node("Mul", &["voice_gate", "voice"], &["voice_shift"], &[]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voice-prosody vector with the given F0 median (and p20/p80 ±range/2 octaves),
    /// syllable rate, voiced fraction and a flat-ish spectrum at the effort reference.
    fn voice(f0: f32, rate: f32, voiced: f32) -> Vec<f32> {
        let mut a = vec![0.0; AUDIO_DIM];
        a[F0_P50] = f0;
        a[F0_P20] = f0 * 2f32.powf(-RANGE_REF / 2.0);
        a[F0_P80] = f0 * 2f32.powf(RANGE_REF / 2.0);
        a[SYLLABLE_RATE] = rate;
        a[VOICED_FRACTION] = voiced;
        a[SLOPE_MEAN] = SLOPE_REF;
        a[LOUDNESS_P50] = -30.0;
        // Energy above 1 kHz 15 dB below the energy under it: equal per-band levels give
        // 10·log10(#high / #low); shift the high bands to land on EFFORT_REF.
        let high = high_bands();
        let nh: f32 = high.iter().sum();
        let nl = MEL_BANDS as f32 - nh;
        let shift = EFFORT_REF - 10.0 * (nh / nl).log10();
        for (b, h) in high.iter().enumerate() {
            a[LOGMEL_MEAN + b] = -40.0 + h * shift;
        }
        a
    }

    #[test]
    fn the_high_bands_start_at_one_kilohertz() {
        // Slaney: 1 kHz = 15 mel; top 8 kHz = 15 + ln 8 / (ln 6.4 / 27) = 45.245 mel; band
        // b's centre = 45.245·(b+1)/65 ≥ 15 ⇔ b ≥ 20.55: bands 21..63 are high.
        let h = high_bands();
        assert_eq!(h.iter().position(|&v| v == 1.0), Some(21));
        assert_eq!(h.iter().sum::<f32>(), 43.0);
    }

    #[test]
    fn reference_voices_at_the_typical_values_add_nothing() {
        for f0 in [MALE_REF_HZ, FEMALE_REF_HZ] {
            let a = voice(f0, RATE_REF, 1.0);
            let c = frame_cues(&a, 1.0);
            assert_eq!(c.gate, 1.0);
            assert!(c.fixed.abs() < 1e-4, "{c:?}");
            let s = arousal_shifts(&[&a], &[1.0], WINDOW);
            assert!(s[0].abs() < 1e-4, "{f0}: {s:?}");
        }
    }

    #[test]
    fn pitch_and_rate_move_arousal_by_the_documented_amounts() {
        // A quarter octave up and 2 syllables/s faster, first frame (α = ADAPT_MAX / T):
        // 0.25·(1 − α) + 0.1·2 = 0.4495.
        let a = voice(MALE_REF_HZ * 2f32.powf(0.25), RATE_REF + 2.0, 1.0);
        let s = arousal_shifts(&[&a], &[1.0], WINDOW);
        let alpha = ADAPT_MAX / WINDOW as f32;
        let want = K_F0 * 0.25 * (1.0 - alpha) + K_RATE * 2.0;
        assert!((want - 0.4495).abs() < 1e-4);
        assert!((s[0] - want).abs() < 1e-4, "{s:?} vs {want}");
        // A low voice a third of an octave under its register's reference, slow: negative.
        let a = voice(FEMALE_REF_HZ * 2f32.powf(-1.0 / 3.0), RATE_REF - 1.0, 1.0);
        let s = arousal_shifts(&[&a], &[1.0], WINDOW);
        assert!(
            (s[0] - (-(1.0 / 3.0) * (1.0 - alpha) - K_RATE)).abs() < 1e-3,
            "{s:?}"
        );
    }

    #[test]
    fn the_reference_adapts_slowly_to_the_speaker() {
        // A speaker constantly half an octave above the low reference: after a full
        // window of speech the reference has moved half of the way, the cue halves.
        let a = voice(MALE_REF_HZ * 2f32.sqrt(), RATE_REF, 1.0);
        let frames: Vec<&[f32]> = vec![&a; WINDOW];
        let s = arousal_shifts(&frames, &vec![1.0; WINDOW], WINDOW);
        assert!((s[0] - 0.4).abs() < 1e-3, "{}", s[0]); // 0.5 clipped to F0_LIMIT
        assert!((s[WINDOW - 1] - 0.25).abs() < 1e-3, "{}", s[WINDOW - 1]);
        assert!(s.windows(2).all(|w| w[1] <= w[0] + 1e-6));
    }

    #[test]
    fn no_speech_no_voicing_or_garbage_add_nothing_finite() {
        let a = voice(300.0, 8.0, 1.0);
        assert_eq!(arousal_shifts(&[&a], &[0.0], WINDOW), vec![0.0]);
        let unvoiced = voice(300.0, 8.0, VOICED_LO);
        assert_eq!(arousal_shifts(&[&unvoiced], &[1.0], WINDOW), vec![0.0]);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, 0.0] {
            let g = vec![bad; AUDIO_DIM];
            for m in [bad, 1.0] {
                let s = arousal_shifts(&[&g, &a], &[m, 1.0], WINDOW);
                assert!(
                    s.iter().all(|v| v.is_finite() && v.abs() <= VOICE_LIMIT),
                    "{bad} {m}: {s:?}"
                );
            }
        }
        // A short vector reads zeros where it ends.
        assert!(arousal_shifts(&[&[1.0][..]], &[1.0], WINDOW)[0].is_finite());
    }
}
