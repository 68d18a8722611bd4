// SPDX-License-Identifier: MPL-2.0
//! Test and benchmark signals: seeded white and pink noise, mixing at a given SNR, a
//! minimal WAV reader/writer, and speech synthesised with `espeak-ng` (resampled to
//! 48 kHz with `sox -D`, deterministic), cached on disk.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A small seeded generator (SplitMix64): the same seed gives the same noise everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn gaussian(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// `n` samples of Gaussian white noise with unit variance.
pub fn white_noise(n: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| r.gaussian() as f32).collect()
}

/// `n` samples of pink (1/f) noise, normalised to unit variance (Paul Kellet's filter).
pub fn pink_noise(n: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    let mut b = [0.0f64; 7];
    let mut out: Vec<f32> = (0..n)
        .map(|_| {
            let w = r.gaussian();
            b[0] = 0.99886 * b[0] + w * 0.0555179;
            b[1] = 0.99332 * b[1] + w * 0.0750759;
            b[2] = 0.96900 * b[2] + w * 0.1538520;
            b[3] = 0.86650 * b[3] + w * 0.3104856;
            b[4] = 0.55000 * b[4] + w * 0.5329522;
            b[5] = -0.7616 * b[5] - w * 0.0168980;
            let p = b[0] + b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + w * 0.5362;
            b[6] = w * 0.115926;
            p as f32
        })
        .collect();
    let rms = crate::audio::metrics::rms(&out);
    if rms > 0.0 {
        out.iter_mut().for_each(|v| *v = (*v as f64 / rms) as f32);
    }
    out
}

/// `clean + g·noise` with `g` chosen so that the SNR (power of `clean` over the power of
/// the scaled noise, over the whole signal) is `snr_db`. `noise` must be at least as long.
pub fn mix_at_snr(clean: &[f32], noise: &[f32], snr_db: f64) -> Vec<f32> {
    let ps: f64 = clean.iter().map(|&v| (v as f64).powi(2)).sum::<f64>();
    let pn: f64 = noise[..clean.len()]
        .iter()
        .map(|&v| (v as f64).powi(2))
        .sum::<f64>();
    let g = if pn > 0.0 {
        (ps / pn / 10f64.powf(snr_db / 10.0)).sqrt()
    } else {
        0.0
    };
    clean
        .iter()
        .zip(noise)
        .map(|(&c, &n)| (c as f64 + g * n as f64) as f32)
        .collect()
}

/// A WAV file's content: interleaved samples in [-1, 1], rate and channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    /// Interleaved samples.
    pub samples: Vec<f32>,
    /// Sample rate in Hz.
    pub rate: u32,
    /// Channels.
    pub channels: u16,
}

/// Parses a RIFF WAV (PCM 16-bit or IEEE float 32-bit).
pub fn parse_wav(bytes: &[u8]) -> Result<Wav, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let u16le = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
    let u32le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let mut len = u32le(&bytes[pos + 4..pos + 8]) as usize;
        let body = pos + 8;
        // espeak-ng writes 0x7ffff… sizes when it streams: take what is there.
        if body + len > bytes.len() {
            len = bytes.len() - body;
        }
        let chunk = &bytes[body..body + len];
        match id {
            b"fmt " if len >= 16 => {
                fmt = Some((
                    u16le(&chunk[0..2]),
                    u16le(&chunk[2..4]),
                    u32le(&chunk[4..8]),
                    u16le(&chunk[14..16]),
                ))
            }
            b"data" => {
                let (format, channels, rate, bits) = fmt.ok_or("data chunk before fmt chunk")?;
                let samples = match (format, bits) {
                    (1, 16) => chunk
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
                        .collect(),
                    (3, 32) => chunk
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                    (0xFFFE, 16) => chunk
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
                        .collect(),
                    _ => return Err(format!("unsupported WAV format {format} / {bits} bits")),
                };
                return Ok(Wav {
                    samples,
                    rate,
                    channels,
                });
            }
            _ => {}
        }
        pos = body + len + (len & 1);
    }
    Err("no data chunk".into())
}

/// Writes 32-bit float WAV bytes.
pub fn wav_f32_bytes(samples: &[f32], rate: u32, channels: u16) -> Vec<u8> {
    let data_len = (samples.len() * 4) as u32;
    let mut b = Vec::with_capacity(44 + samples.len() * 4);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&3u16.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 4 * channels as u32).to_le_bytes());
    b.extend_from_slice(&(4 * channels).to_le_bytes());
    b.extend_from_slice(&32u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// Speech from `espeak-ng -s 150` resampled to 48 kHz mono 16-bit with `sox -D` (no
/// dither, so the result is the same on every run), as samples in [-1, 1]. Cached in
/// `cache_dir` under a name derived from the text. Fails with a message naming
/// `make setup` when espeak-ng or sox is missing.
pub fn espeak_speech_48k(text: &str, cache_dir: &Path) -> Result<Vec<f32>, String> {
    espeak_speech(text, 48_000, Some(150), cache_dir)
}

/// Two sentences the vocal-arousal measurements and tests speak
/// (`affect::fusion::vocal`).
pub const AROUSAL_TEXTS: [&str; 2] = [
    "The weather report says it will rain again tomorrow afternoon, so bring a coat.",
    "We finished the project on time and everyone went home early that evening.",
];

/// espeak-ng settings of calm, neutral and excited speech for those measurements and tests:
/// (name, options) — calm `-a 60 -p 30 -s 130`, neutral the defaults, excited
/// `-a 180 -p 75 -s 230` (amplitude, pitch 0–99, words per minute).
pub const AROUSAL_CONDITIONS: [(&str, &[&str]); 3] = [
    ("calm", &["-a", "60", "-p", "30", "-s", "130"]),
    ("neutral", &[]),
    ("excited", &["-a", "180", "-p", "75", "-s", "230"]),
];

/// [`espeak_speech_48k`] at any sample `rate`, with espeak-ng's words per minute `speed`
/// (`None`: espeak-ng's default, 175).
pub fn espeak_speech(
    text: &str,
    rate: u32,
    speed: Option<u32>,
    cache_dir: &Path,
) -> Result<Vec<f32>, String> {
    let speed = speed.map(|s| s.to_string());
    let opts: Vec<&str> = speed.iter().flat_map(|s| ["-s", s.as_str()]).collect();
    espeak_voice(text, rate, &opts, cache_dir)
}

/// [`espeak_speech`] with any espeak-ng options `opts` (voice `-v`, amplitude `-a`,
/// pitch `-p`, speed `-s`, …), cached under a name derived from the options and text.
pub fn espeak_voice(
    text: &str,
    rate: u32,
    opts: &[&str],
    cache_dir: &Path,
) -> Result<Vec<f32>, String> {
    std::fs::create_dir_all(cache_dir).map_err(|e| format!("{}: {e}", cache_dir.display()))?;
    // Options `-s N` alone keep the key the cache had when speed was the only option.
    let key = match opts {
        [] => format!("None:{text}"),
        ["-s", n] => format!("Some({n}):{text}"),
        _ => format!("{opts:?}:{text}"),
    };
    let key = crate::weights::sha256_hex(key.as_bytes());
    let out: PathBuf = cache_dir.join(format!("speech-{}-{rate}.wav", &key[..16]));
    if !out.exists() {
        // Concurrent writers (test threads, test binaries, benches) each render into
        // temporary files of their own and rename the result into place; the first
        // rename wins and the others use its file (the same text gives the same bytes).
        let raw = crate::dataset::temp_path_beside(&out);
        let tmp = crate::dataset::temp_path_beside(&out);
        let made = render_speech(text, rate, opts, &raw, &tmp);
        let _ = std::fs::remove_file(&raw);
        if let Err(e) = made {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        crate::dataset::persist_temp(&tmp, &out, true)
            .map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let bytes = std::fs::read(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let wav = parse_wav(&bytes)?;
    if wav.rate != rate || wav.channels != 1 {
        return Err(format!(
            "{}: expected {rate} Hz mono, got {} Hz × {}",
            out.display(),
            wav.rate,
            wav.channels
        ));
    }
    Ok(wav.samples)
}

/// espeak-ng into `raw` (WAV), then sox into `out` (WAV, `rate` Hz mono 16-bit, no
/// dither). The file types are given explicitly: the temporary names end in `.tmp`.
fn render_speech(
    text: &str,
    rate: u32,
    opts: &[&str],
    raw: &Path,
    out: &Path,
) -> Result<(), String> {
    let st = Command::new("espeak-ng")
        .arg("-w")
        .arg(raw)
        .args(opts)
        .arg(text)
        .status()
        .map_err(|e| {
            format!("cannot run espeak-ng ({e}): run `make setup` (installs espeak-ng and sox)")
        })?;
    if !st.success() {
        return Err(format!("espeak-ng failed ({st})"));
    }
    let st = Command::new("sox")
        .args(["-D", "-t", "wav"])
        .arg(raw)
        .args(["-t", "wav", "-r", &rate.to_string(), "-c", "1", "-b", "16"])
        .arg(out)
        .status()
        .map_err(|e| {
            format!("cannot run sox ({e}): run `make setup` (installs espeak-ng and sox)")
        })?;
    if !st.success() {
        return Err(format!("sox failed ({st})"));
    }
    Ok(())
}

/// Samples and utterance `(start, end)` positions, as [`speech_clip`] returns them.
pub type SpeechClip = (Vec<f32>, Vec<(u64, u64)>);

/// A clean speech clip for tests and benchmarks: `lead_ms` of silence, then each text
/// spoken by [`espeak_speech_48k`] with `pause_ms` of silence between utterances, then
/// `lead_ms` of silence. Returns the samples and each utterance's `(start, end)` sample
/// (first and last sample within −40 dB of the utterance's peak).
pub fn speech_clip(
    texts: &[&str],
    lead_ms: u32,
    pause_ms: u32,
    cache_dir: &Path,
) -> Result<SpeechClip, String> {
    let ms = |m: u32| (m as usize) * 48;
    let mut clip = vec![0.0f32; ms(lead_ms)];
    let mut bounds = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            clip.extend(std::iter::repeat_n(0.0, ms(pause_ms)));
        }
        let s = espeak_speech_48k(t, cache_dir)?;
        let peak = s.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let thr = peak * 0.01;
        let first = s.iter().position(|v| v.abs() >= thr).unwrap_or(0);
        let last = s.iter().rposition(|v| v.abs() >= thr).unwrap_or(0);
        // keep only the spoken part, so the pauses are exactly `pause_ms`
        let at = clip.len() as u64;
        clip.extend_from_slice(&s[first..=last]);
        bounds.push((at, at + (last - first + 1) as u64));
    }
    clip.extend(std::iter::repeat_n(0.0, ms(lead_ms)));
    Ok((clip, bounds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::metrics::{rms, snr_db};

    #[test]
    fn noise_is_seeded_and_normalised() {
        assert_eq!(white_noise(100, 7), white_noise(100, 7));
        assert_ne!(white_noise(100, 7), white_noise(100, 8));
        let w = white_noise(100_000, 1);
        assert!((rms(&w) - 1.0).abs() < 0.02);
        let p = pink_noise(100_000, 1);
        assert!((rms(&p) - 1.0).abs() < 1e-3);
        // Pink: much more energy at low frequencies. Lag-1 correlation is high.
        let c: f64 = p.windows(2).map(|w| (w[0] * w[1]) as f64).sum::<f64>() / p.len() as f64;
        assert!(c > 0.5, "lag-1 autocorrelation {c}");
    }

    #[test]
    fn mix_hits_the_snr() {
        let s: Vec<f32> = (0..48000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        let n = white_noise(48000, 3);
        for snr in [0.0, 5.0, 20.0] {
            let m = mix_at_snr(&s, &n, snr);
            let noise: Vec<f32> = m.iter().zip(&s).map(|(a, b)| a - b).collect();
            assert!((snr_db(&s, &noise) - snr).abs() < 1e-3);
        }
    }

    /// 8 threads of one process fill an empty speech cache with the same text at once
    /// (as the threads of `tests/audio_quality.rs` do): all succeed with the same samples
    /// and the cache holds one file. (With temporary names keyed by the process id only,
    /// the threads shared one temporary file and the losers' renames failed.)
    #[test]
    fn speech_cache_from_8_threads_at_once() {
        let dir = std::env::temp_dir().join(format!("affect-speech-mt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let barrier = std::sync::Barrier::new(8);
        let results: Vec<Result<Vec<f32>, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (barrier, dir) = (&barrier, &dir);
                    s.spawn(move || {
                        barrier.wait();
                        espeak_speech("The cache is shared.", 16_000, None, dir)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let first = results[0].clone().expect("espeak-ng + sox (make setup)");
        assert!(first.len() > 8_000, "{} samples", first.len());
        for r in &results {
            assert_eq!(r.as_ref().unwrap(), &first);
        }
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].starts_with("speech-") && names[0].ends_with("-16000.wav"));
        // From the cache now.
        assert_eq!(
            espeak_speech("The cache is shared.", 16_000, None, &dir).unwrap(),
            first
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wav_round_trip() {
        let s = vec![0.0f32, 0.5, -0.25, 1.0];
        let w = parse_wav(&wav_f32_bytes(&s, 48000, 2)).unwrap();
        assert_eq!((w.rate, w.channels), (48000, 2));
        assert_eq!(w.samples, s);
        assert!(parse_wav(b"nope").is_err());
    }
}
