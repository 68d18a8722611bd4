// SPDX-License-Identifier: MPL-2.0
//! A synthetic data set with known structure (`affect-train synth`, the learning tests).
//!
//! Per video, latent signals drive both labels and features:
//! - valence and arousal: smooth random processes in (−1, 1) (`tanh` of a sum of three
//!   slow sinusoids with random frequencies and phases);
//! - an expression sequence: piecewise-constant segments of random class and length.
//!
//! Features at frame `t` are random linear maps of the latent whose labels are annotated
//! at frame `t + lag` (the annotation lags the signal, like a rater's reaction time; a
//! causal model has seen the evidence when it must predict), plus Gaussian noise:
//! - `visual` = `Wv · [v, 0.3·a, e]`: valence mostly in the face;
//! - `audio`  = `Wa · [0.3·v, a, e]`: arousal mostly in the voice;
//!
//! where `e` is the one-hot expression (both modalities carry it). Missing-modality spans
//! set a mask to 0 and zero that modality's features; invalid-label spans mark frames
//! with the Aff-Wild2 invalid markers. The maps `Wv`, `Wa` are shared by every video of a
//! data set; everything is a function of the seed.

use crate::dataset::sequences::SequenceSet;

/// How to generate a synthetic data set.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Seed of everything (maps, videos).
    pub seed: u64,
    /// Visual feature dimension Dv.
    pub visual_dim: usize,
    /// Audio feature dimension Da.
    pub audio_dim: usize,
    /// Frames by which the features lag the latent.
    pub lag: usize,
    /// Standard deviation of the feature noise.
    pub noise: f32,
    /// Fraction of frames in missing-modality spans (each modality separately).
    pub missing: f32,
    /// Fraction of frames with invalid labels.
    pub invalid: f32,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            visual_dim: 16,
            audio_dim: 12,
            lag: 2,
            noise: 0.1,
            missing: 0.1,
            invalid: 0.05,
        }
    }
}

/// One synthetic video (one subject): per-frame features, masks and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthVideo {
    /// Frames.
    pub frames: usize,
    /// \[frames, Dv\].
    pub visual: Vec<f32>,
    /// \[frames, Da\].
    pub audio: Vec<f32>,
    /// \[frames\], 1 = face present.
    pub visual_mask: Vec<f32>,
    /// \[frames\], 1 = audio present.
    pub audio_mask: Vec<f32>,
    /// Valence, arousal per frame; `[-5, -5]` on invalid frames.
    pub va: Vec<[f32; 2]>,
    /// Expression class per frame; -1 on invalid frames.
    pub expr: Vec<i64>,
}

/// A small deterministic PRNG (SplitMix64) with uniform and normal draws.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// The next 64 random bits.
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

    /// Uniform integer in [lo, hi).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.uniform() * (hi - lo) as f64) as usize % (hi - lo).max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Latent size: valence, arousal, 8 one-hot expression values.
const LATENT: usize = 10;

/// The shared random maps of a data set.
#[derive(Debug, Clone)]
struct Maps {
    wv: Vec<f32>,
    wa: Vec<f32>,
}

fn maps(cfg: &SynthConfig, rng: &mut Rng) -> Maps {
    let mut draw = |d: usize| -> Vec<f32> {
        // Scaled so each feature has variance ≈ 1 for unit-scale latents.
        let s = 1.0 / (LATENT as f64 / 3.0).sqrt();
        (0..d * LATENT).map(|_| (rng.normal() * s) as f32).collect()
    };
    Maps {
        wv: draw(cfg.visual_dim),
        wa: draw(cfg.audio_dim),
    }
}

/// Marks random spans (5–20 frames) covering about `fraction` of `n` frames.
fn spans(rng: &mut Rng, n: usize, fraction: f32) -> Vec<bool> {
    let mut out = vec![false; n];
    if fraction <= 0.0 || n == 0 {
        return out;
    }
    let target = (fraction as f64 * n as f64) as usize;
    let mut covered = 0;
    let mut guard = 0;
    while covered < target && guard < 10 * n {
        guard += 1;
        let len = rng.range(5, 21).min(n);
        let start = rng.range(0, n - len + 1);
        for o in &mut out[start..start + len] {
            if !*o {
                *o = true;
                covered += 1;
            }
        }
    }
    out
}

fn video(cfg: &SynthConfig, m: &Maps, rng: &mut Rng, frames: usize) -> SynthVideo {
    let total = frames + cfg.lag;
    // Latent valence/arousal: tanh of three slow sinusoids each.
    let mut smooth = || {
        let comps: Vec<(f64, f64, f64)> = (0..3)
            .map(|_| {
                let f = 0.005 + 0.03 * rng.uniform(); // cycles per frame
                let p = 2.0 * std::f64::consts::PI * rng.uniform();
                let a = 0.5 + rng.uniform();
                (f, p, a)
            })
            .collect();
        (0..total)
            .map(|t| {
                let s: f64 = comps
                    .iter()
                    .map(|(f, p, a)| a * (2.0 * std::f64::consts::PI * f * t as f64 + p).sin())
                    .sum();
                s.tanh() as f32
            })
            .collect::<Vec<f32>>()
    };
    let v = smooth();
    let a = smooth();
    // Expression: segments of 8–40 frames.
    let mut e = Vec::with_capacity(total);
    while e.len() < total {
        let k = rng.range(0, 8) as i64;
        let len = rng.range(8, 41);
        e.extend(std::iter::repeat_n(k, len));
    }
    e.truncate(total);

    let (dv, da) = (cfg.visual_dim, cfg.audio_dim);
    let vmiss = spans(rng, frames, cfg.missing);
    let amiss = spans(rng, frames, cfg.missing);
    let invalid = spans(rng, frames, cfg.invalid);
    let mut out = SynthVideo {
        frames,
        visual: vec![0.0; frames * dv],
        audio: vec![0.0; frames * da],
        visual_mask: vec![1.0; frames],
        audio_mask: vec![1.0; frames],
        va: Vec::with_capacity(frames),
        expr: Vec::with_capacity(frames),
    };
    for t in 0..frames {
        // Labels at frame t are the latent at index t; features at frame t read index
        // t + lag, i.e. the labels of frame t + lag.
        let ft = t + cfg.lag;
        if invalid[t] {
            out.va.push([-5.0, -5.0]);
            out.expr.push(-1);
        } else {
            out.va.push([v[t], a[t]]);
            out.expr.push(e[t]);
        }
        let mut zv = [0.0f32; LATENT];
        let mut za = [0.0f32; LATENT];
        zv[0] = v[ft];
        zv[1] = 0.3 * a[ft];
        za[0] = 0.3 * v[ft];
        za[1] = a[ft];
        zv[2 + e[ft] as usize] = 1.0;
        za[2 + e[ft] as usize] = 1.0;
        let mut project = |w: &[f32], z: &[f32; LATENT], dst: &mut [f32]| {
            for (i, d) in dst.iter_mut().enumerate() {
                let row = &w[i * LATENT..(i + 1) * LATENT];
                let s: f32 = row.iter().zip(z).map(|(a, b)| a * b).sum();
                *d = s + cfg.noise * rng.normal() as f32;
            }
        };
        if vmiss[t] {
            out.visual_mask[t] = 0.0;
        } else {
            project(&m.wv, &zv, &mut out.visual[t * dv..(t + 1) * dv]);
        }
        if amiss[t] {
            out.audio_mask[t] = 0.0;
        } else {
            project(&m.wa, &za, &mut out.audio[t * da..(t + 1) * da]);
        }
    }
    out
}

/// Generates `n_train` and `n_val` videos of `frames` frames each from one set of maps
/// (the held-out videos come from the same "world", never from the same latent).
pub fn generate(
    cfg: &SynthConfig,
    n_train: usize,
    n_val: usize,
    frames: usize,
) -> (Vec<SynthVideo>, Vec<SynthVideo>) {
    let mut rng = Rng::new(cfg.seed);
    let m = maps(cfg, &mut rng);
    let train = (0..n_train)
        .map(|_| video(cfg, &m, &mut rng, frames))
        .collect();
    let val = (0..n_val)
        .map(|_| video(cfg, &m, &mut rng, frames))
        .collect();
    (train, val)
}

/// Cuts videos into non-overlapping windows of `t` frames (a shorter tail is dropped).
pub fn to_sequences(videos: &[SynthVideo], t: usize, dv: usize, da: usize) -> SequenceSet {
    let mut s = SequenceSet {
        t,
        dv,
        da,
        ..Default::default()
    };
    if t == 0 {
        return s;
    }
    for vid in videos {
        for w in 0..vid.frames / t {
            let r = w * t..(w + 1) * t;
            s.visual
                .extend_from_slice(&vid.visual[r.start * dv..r.end * dv]);
            s.audio
                .extend_from_slice(&vid.audio[r.start * da..r.end * da]);
            s.visual_mask.extend_from_slice(&vid.visual_mask[r.clone()]);
            s.audio_mask.extend_from_slice(&vid.audio_mask[r.clone()]);
            for f in r.clone() {
                let ok = vid.va[f][0] > -5.0 + 1e-6;
                s.va.extend_from_slice(&if ok { vid.va[f] } else { [0.0, 0.0] });
                s.va_valid.push(if ok { 1.0 } else { 0.0 });
            }
            s.expr.extend_from_slice(&vid.expr[r]);
            s.n += 1;
        }
    }
    s
}

/// Train and held-out [`SequenceSet`]s of windows of `t` frames.
pub fn sequences(
    cfg: &SynthConfig,
    n_train: usize,
    n_val: usize,
    frames: usize,
    t: usize,
) -> (SequenceSet, SequenceSet) {
    let (tr, va) = generate(cfg, n_train, n_val, frames);
    (
        to_sequences(&tr, t, cfg.visual_dim, cfg.audio_dim),
        to_sequences(&va, t, cfg.visual_dim, cfg.audio_dim),
    )
}

/// Feature-model name written into synthetic feature files (there is no real model).
pub const SYNTH_MODEL: &str = "synth";

/// Writes a synthetic data set in the Aff-Wild2 layout under `root`: for each video
/// `synth_train_NNN` / `synth_val_NNN`, a VA and an EXPR annotation file (in
/// `annotations/<task>/Train_Set|Validation_Set/`) and `features/<name>.safetensors`.
/// Returns the names written (train, validation).
pub fn write_layout(
    root: &std::path::Path,
    cfg: &SynthConfig,
    n_train: usize,
    n_val: usize,
    frames: usize,
) -> Result<(Vec<String>, Vec<String>), crate::dataset::DataError> {
    use crate::dataset::annotations::{write_expr, write_va};
    use crate::dataset::features::{FeatureFile, FeatureMetadata};
    use crate::dataset::layout::{DataRoot, Split};
    use crate::dataset::sequences::Task;
    std::fs::create_dir_all(root).map_err(|e| crate::dataset::DataError::io(root, e))?;
    let data = DataRoot::new(root)?;
    let (train, val) = generate(cfg, n_train, n_val, frames);
    let sha = crate::weights::sha256_hex(SYNTH_MODEL.as_bytes());
    let mut names = (Vec::new(), Vec::new());
    for (split, videos) in [(Split::Train, &train), (Split::Validation, &val)] {
        for (i, v) in videos.iter().enumerate() {
            let stem = match split {
                Split::Train => "synth_train",
                Split::Validation => "synth_val",
            };
            let name = format!("{stem}_{i:03}");
            write_va(
                &data
                    .annotation_dir(Task::Va, split)
                    .join(format!("{name}.txt")),
                &v.va,
            )?;
            write_expr(
                &data
                    .annotation_dir(Task::Expr, split)
                    .join(format!("{name}.txt")),
                &v.expr,
            )?;
            let meta = FeatureMetadata {
                visual_model: SYNTH_MODEL.into(),
                visual_sha256: sha.clone(),
                audio_model: SYNTH_MODEL.into(),
                audio_sha256: sha.clone(),
                visual_input: "features".into(),
                audio_mask: "present".into(),
                fps: 30.0,
                source: format!("affect-train synth seed {}", cfg.seed),
                track: name.clone(),
            };
            let (dv, da) = (cfg.visual_dim, cfg.audio_dim);
            let mut f = FeatureFile::new(dv, da, meta);
            for t in 0..v.frames {
                let pts = (t as u64) * 1_000_000_000 / 30;
                f.push(
                    Some(&v.visual[t * dv..(t + 1) * dv]),
                    v.visual_mask[t],
                    Some(&v.audio[t * da..(t + 1) * da]),
                    v.audio_mask[t],
                    Some(pts),
                    [0.0; 4],
                    true,
                );
            }
            f.write(&data.feature_path(&name))?;
            match split {
                Split::Train => names.0.push(name),
                Split::Validation => names.1.push(name),
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_from_the_seed() {
        let cfg = SynthConfig::default();
        let a = generate(&cfg, 2, 1, 100);
        let b = generate(&cfg, 2, 1, 100);
        assert_eq!(a, b);
        let c = generate(&SynthConfig { seed: 1, ..cfg }, 2, 1, 100);
        assert_ne!(a.0[0].visual, c.0[0].visual);
    }

    #[test]
    fn masks_spans_labels_and_lag_have_the_configured_structure() {
        let cfg = SynthConfig {
            noise: 0.0,
            ..Default::default()
        };
        let (tr, _) = generate(&cfg, 4, 0, 400);
        let n = 4.0 * 400.0;
        let frac = |f: &dyn Fn(&SynthVideo) -> usize| tr.iter().map(f).sum::<usize>() as f32 / n;
        let vmiss = frac(&|v| v.visual_mask.iter().filter(|&&m| m == 0.0).count());
        let amiss = frac(&|v| v.audio_mask.iter().filter(|&&m| m == 0.0).count());
        let inval = frac(&|v| v.expr.iter().filter(|&&e| e == -1).count());
        assert!((0.09..0.13).contains(&vmiss), "{vmiss}");
        assert!((0.09..0.13).contains(&amiss), "{amiss}");
        assert!((0.04..0.08).contains(&inval), "{inval}");
        for v in &tr {
            for t in 0..v.frames {
                // Missing modality → zero features; invalid VA ⇔ invalid expression.
                if v.visual_mask[t] == 0.0 {
                    assert!(v.visual[t * 16..(t + 1) * 16].iter().all(|&x| x == 0.0));
                }
                assert_eq!(v.va[t][0] == -5.0, v.expr[t] == -1);
                if v.expr[t] >= 0 {
                    assert!(v.va[t].iter().all(|x| x.abs() < 1.0));
                    assert!((0..8).contains(&v.expr[t]));
                }
            }
        }
        // Every class appears.
        let mut seen = [false; 8];
        tr.iter()
            .flat_map(|v| &v.expr)
            .filter(|&&e| e >= 0)
            .for_each(|&e| seen[e as usize] = true);
        assert!(seen.iter().all(|&s| s));
        // The lag: with noise 0 the visual features at frame t are exactly Wv applied
        // to the labels of frame t + lag (and not to those of frame t).
        let m = maps(&cfg, &mut Rng::new(cfg.seed));
        let predict = |v: &SynthVideo, lf: usize, i: usize| -> f32 {
            let mut z = [0.0f32; LATENT];
            z[0] = v.va[lf][0];
            z[1] = 0.3 * v.va[lf][1];
            z[2 + v.expr[lf] as usize] = 1.0;
            (0..LATENT).map(|j| m.wv[i * LATENT + j] * z[j]).sum()
        };
        let (mut exact, mut off) = (0, 0);
        for v in &tr {
            for t in 0..v.frames - cfg.lag {
                let lf = t + cfg.lag;
                if v.visual_mask[t] == 0.0 || v.expr[lf] < 0 || v.expr[t] < 0 {
                    continue;
                }
                let err = |lf: usize| {
                    (0..16)
                        .map(|i| (predict(v, lf, i) - v.visual[t * 16 + i]).abs())
                        .fold(0.0, f32::max)
                };
                assert!(err(lf) < 1e-5, "frame {t}: {}", err(lf));
                exact += 1;
                if err(t) > 1e-3 {
                    off += 1;
                }
            }
        }
        assert!(exact > 1000 && off > exact / 2, "{exact} {off}");
    }

    #[test]
    fn layout_round_trips_through_the_dataset_reader() {
        use crate::dataset::layout::{DataRoot, Split, sequences as cut};
        use crate::dataset::sequences::Task;
        let dir = std::env::temp_dir().join(format!("affect-synth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = SynthConfig::default();
        let (tr, va) = write_layout(&dir, &cfg, 2, 1, 64).unwrap();
        assert_eq!((tr.len(), va.len()), (2, 1));
        let root = DataRoot::new(&dir).unwrap();
        let subjects = root.load(Task::Va, Split::Train, None).unwrap();
        let (set, _) = cut(&subjects, Task::Va, 32, 32).unwrap();
        let (videos, _) = generate(&cfg, 2, 1, 64);
        let want = to_sequences(&videos, 32, 16, 12);
        assert_eq!(set.n, want.n);
        assert_eq!(set.visual_mask, want.visual_mask);
        assert_eq!(set.va_valid, want.va_valid);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(&set.visual, &want.visual));
        assert!(close(&set.va, &want.va));
        let subjects = root.load(Task::Expr, Split::Validation, None).unwrap();
        let (set, _) = cut(&subjects, Task::Expr, 32, 32).unwrap();
        let (_, vval) = generate(&cfg, 2, 1, 64);
        assert_eq!(set.expr, to_sequences(&vval, 32, 16, 12).expr);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn windows_keep_rows_and_mark_invalid_labels() {
        let cfg = SynthConfig::default();
        let (tr, _) = generate(&cfg, 2, 0, 70);
        let s = to_sequences(&tr, 32, 16, 12);
        // 70 frames → 2 windows per video.
        assert_eq!(s.n, 4);
        assert_eq!(s.visual.len(), 4 * 32 * 16);
        assert_eq!(s.audio.len(), 4 * 32 * 12);
        assert_eq!(s.va.len(), 4 * 32 * 2);
        // Window 1 of video 0 starts at frame 32.
        assert_eq!(&s.visual[32 * 16..33 * 16], &tr[0].visual[32 * 16..33 * 16]);
        // Second video's first window is sequence 2.
        assert_eq!(s.expr[2 * 32], tr[1].expr[0]);
        for (i, &e) in s.expr.iter().enumerate() {
            assert_eq!(s.va_valid[i] == 0.0, e == -1);
        }
    }
}
