// SPDX-License-Identifier: MPL-2.0
//! The training loop of `affect-train fit`: AdamW with gradient-norm clipping, seeded
//! shuffling, per-epoch validation with early stopping, a JSON report, checkpoints with
//! `--resume`, and the ONNX export of the best epoch. Every file is written atomically
//! (temporary file + rename).
//!
//! Files in the output folder:
//! - `report.json`: [`FitReport`] (every epoch's losses, metrics, learning rate, seconds;
//!   the best epoch), rewritten after every epoch;
//! - `spec.json`: the [`ModelSpec`] (to rebuild the model for `export`/`--resume`);
//! - `meta.json`: the contract metadata the exports carry ([`save_meta`]);
//! - `last.bpk`, `last.optim.bpk`, `state.json`: the last epoch (for `--resume`);
//! - `best.bpk`: the best epoch's weights; `best.onnx`: its export;
//! - `curves.png`: losses and validation metric per epoch ([`crate::train::curves`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::dataset::layout::{Labels, Subject, WindowOrigin, frame_windows_ahead};
use crate::dataset::sequences::SequenceSet;
use crate::dataset::synth::Rng;
use crate::fusion::post::clip_va;
use crate::train::export::{FusionMeta, export_fusion};
use crate::train::loss::{ccc_loss, cross_entropy, soft_f1_loss};
use crate::train::model::FusionNet;
use crate::train::models::{AnyModel, ModelSpec};
pub use crate::train::report::{EpochReport, FitConfig, FitReport, PseudoLabels, TaskName};

/// What can go wrong while fitting.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// A data set cannot be used.
    #[error("{0}")]
    Data(String),
    /// A file cannot be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What happened.
        message: String,
    },
    /// The loss became NaN or infinite.
    #[error("epoch {epoch}: the training loss is not finite ({value}); lower the learning rate")]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// The loss.
        value: f32,
    },
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> FitError {
    FitError::File {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// A teacher's per-frame outputs for one subject: `va` and expression logits, frame `i` of
/// the subject at index `i` (what `affect-train eval` predicts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeacherOutput {
    /// (valence, arousal) per frame.
    pub va: Vec<[f32; 2]>,
    /// Expression logits per frame.
    pub expr: Vec<[f32; 8]>,
}

/// Frames counted by [`pseudo_label`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PseudoCount {
    /// Unlabelled frames with at least one modality present.
    pub candidates: usize,
    /// Frames that got a pseudo-label.
    pub frames: usize,
}

/// Gives the unlabelled frames of `set` the teacher's prediction as a label of weight
/// `weight` (real labels keep weight 1 and their values).
///
/// `origins` are the windows `set` was cut from (as returned by
/// [`crate::dataset::layout::sequences`]) and `teacher[s]` the teacher's per-frame output
/// for subject `s`. A frame is a candidate when its `task` label is invalid (`va_valid`
/// 0 / `expr` -1) and at least one modality mask is on (padding frames never are). VA: it
/// gets the teacher's `va` (when finite) in `va`, and `weight` in `va_valid`. Expr: it gets
/// the argmax of the teacher's logits when that class's softmax probability is at least
/// `min_confidence`, with `weight` in `expr_weight` (filled with 1 where it was empty);
/// otherwise it stays invalid. A frame appearing in several overlapping windows is counted
/// once per window.
///
/// Errors: a weight outside (0, 1], a confidence outside \[0, 1\], origins that do not match
/// the set, a teacher output too short for a window.
pub fn pseudo_label(
    set: &mut SequenceSet,
    origins: &[WindowOrigin],
    teacher: &[TeacherOutput],
    task: TaskName,
    weight: f32,
    min_confidence: f32,
) -> Result<PseudoCount, FitError> {
    if !(weight > 0.0 && weight <= 1.0) {
        return Err(FitError::Data(format!(
            "the pseudo-label weight must be in (0, 1], not {weight}"
        )));
    }
    if !(0.0..=1.0).contains(&min_confidence) {
        return Err(FitError::Data(format!(
            "the pseudo-label minimum confidence must be in [0, 1], not {min_confidence}"
        )));
    }
    let t = set.t;
    if origins.len() != set.n
        || set.visual_mask.len() != set.n * t
        || set.audio_mask.len() != set.n * t
        || set.va.len() != 2 * set.n * t
        || set.va_valid.len() != set.n * t
        || set.expr.len() != set.n * t
    {
        return Err(FitError::Data(format!(
            "pseudo-labels: {} window origins or label arrays do not match the {} sequences of {t} frames",
            origins.len(),
            set.n
        )));
    }
    if task == TaskName::Expr && set.expr_weight.is_empty() {
        set.expr_weight = vec![1.0; set.n * t];
    }
    let mut count = PseudoCount::default();
    for (w, o) in origins.iter().enumerate() {
        let out = teacher.get(o.subject).ok_or_else(|| {
            FitError::Data(format!(
                "pseudo-labels: no teacher output for subject {} ({} given)",
                o.subject,
                teacher.len()
            ))
        })?;
        let need = o.start + o.len.min(t);
        let have = match task {
            TaskName::Va => out.va.len(),
            TaskName::Expr => out.expr.len(),
        };
        if have < need {
            return Err(FitError::Data(format!(
                "pseudo-labels: the teacher predicted {have} frames of subject {}, its windows need {need}",
                o.subject
            )));
        }
        for k in 0..o.len.min(t) {
            let (g, i) = (w * t + k, o.start + k);
            if set.visual_mask[g] <= 0.0 && set.audio_mask[g] <= 0.0 {
                continue;
            }
            match task {
                TaskName::Va => {
                    if set.va_valid[g] != 0.0 {
                        continue;
                    }
                    count.candidates += 1;
                    let [v, a] = out.va[i];
                    if v.is_finite() && a.is_finite() {
                        set.va[2 * g] = v;
                        set.va[2 * g + 1] = a;
                        set.va_valid[g] = weight;
                        count.frames += 1;
                    }
                }
                TaskName::Expr => {
                    if set.expr[g] >= 0 {
                        continue;
                    }
                    count.candidates += 1;
                    let logits = &out.expr[i];
                    let Some(c) = crate::metrics::argmax(logits) else {
                        continue;
                    };
                    // Softmax probability of the top class, in f64.
                    let top = logits[c] as f64;
                    let z: f64 = logits
                        .iter()
                        .filter(|l| l.is_finite())
                        .map(|&l| (l as f64 - top).exp())
                        .sum();
                    if 1.0 / z >= min_confidence as f64 {
                        set.expr[g] = c as i64;
                        set.expr_weight[g] = weight;
                        count.frames += 1;
                    }
                }
            }
        }
    }
    Ok(count)
}

/// Whether `set` holds a label of weight below 1 (a pseudo-label).
fn has_pseudo_labels(set: &SequenceSet) -> bool {
    set.va_valid.iter().any(|&w| w > 0.0 && w < 1.0)
        || set
            .expr
            .iter()
            .zip(&set.expr_weight)
            .any(|(&c, &w)| c >= 0 && w < 1.0)
}

/// Tensors of a batch of sequences.
pub struct Batch {
    /// `[B,T,Dv]`.
    pub visual: Tensor<3>,
    /// `[B,T,Da]`.
    pub audio: Tensor<3>,
    /// `[B,T]`.
    pub visual_mask: Tensor<2>,
    /// `[B,T]`.
    pub audio_mask: Tensor<2>,
    /// `[B,T,2]`.
    pub va: Tensor<3>,
    /// `[B,T]` label weights (0 invalid, 1 real, in between for pseudo-labels).
    pub va_valid: Tensor<2>,
    /// `[B,T,8]` one-hot (zeros on invalid frames).
    pub expr: Tensor<3>,
    /// `[B,T]` label weights (0 invalid, 1 real, `expr_weight` for pseudo-labels).
    pub expr_valid: Tensor<2>,
}

impl Batch {
    /// Sequences `idx` of `set` on `device`.
    pub fn new(set: &SequenceSet, idx: &[usize], device: &Device) -> Self {
        let (t, b) = (set.t, idx.len());
        let rows = |v: &[f32], w: usize| -> Vec<f32> {
            idx.iter()
                .flat_map(|&i| v[i * t * w..(i + 1) * t * w].iter().copied())
                .collect()
        };
        let t3 =
            |v: Vec<f32>, w: usize| Tensor::<3>::from_data(TensorData::new(v, [b, t, w]), device);
        let t2 = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [b, t]), device);
        let mut onehot = vec![0.0f32; b * t * 8];
        let mut valid = vec![0.0f32; b * t];
        for (k, &i) in idx.iter().enumerate() {
            for f in 0..t {
                let c = set.expr[i * t + f];
                if (0..8).contains(&c) {
                    onehot[(k * t + f) * 8 + c as usize] = 1.0;
                    valid[k * t + f] = set.expr_weight.get(i * t + f).copied().unwrap_or(1.0);
                }
            }
        }
        Batch {
            visual: t3(rows(&set.visual, set.dv), set.dv),
            audio: t3(rows(&set.audio, set.da), set.da),
            visual_mask: t2(rows(&set.visual_mask, 1)),
            audio_mask: t2(rows(&set.audio_mask, 1)),
            va: t3(rows(&set.va, 2), 2),
            va_valid: t2(rows(&set.va_valid, 1)),
            expr: t3(onehot, 8),
            expr_valid: t2(valid),
        }
    }
}

/// The training loss of `cfg.task` for a batch (plus the model's auxiliary loss).
pub fn batch_loss<M: FusionNet>(model: &M, b: Batch, cfg: &FitConfig) -> Tensor<1> {
    let out = model.forward(b.visual, b.audio, b.visual_mask, b.audio_mask);
    let loss = match cfg.task {
        TaskName::Va => ccc_loss(out.va, b.va, b.va_valid),
        TaskName::Expr => {
            cross_entropy(
                out.expr.clone(),
                b.expr.clone(),
                b.expr_valid.clone(),
                cfg.smoothing,
            ) + soft_f1_loss(out.expr, b.expr, b.expr_valid) * cfg.f1_weight
        }
    };
    match out.aux_loss {
        Some(aux) => loss + aux,
        None => loss,
    }
}

/// Validation metrics of `model` on `set` (inference mode, plain CPU device).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Loss of the task.
    pub loss: f64,
    /// CCC valence, arousal (va).
    pub ccc: Option<[f64; 2]>,
    /// Macro-F1 (expr).
    pub f1: Option<f64>,
}

impl Evaluation {
    /// The early-stopping metric.
    pub fn metric(&self) -> f64 {
        match (self.ccc, self.f1) {
            (Some([v, a]), _) => (v + a) / 2.0,
            (None, Some(f)) => f,
            _ => 0.0,
        }
    }
}

fn scalar(t: Tensor<1>) -> f32 {
    t.into_data().iter::<f32>().next().unwrap_or(f32::NAN)
}

/// Evaluates `model` on `set` in batches of `batch`.
pub fn evaluate<M: FusionNet>(
    model: &M,
    set: &SequenceSet,
    cfg: &FitConfig,
) -> Result<Evaluation, FitError> {
    let model = model.valid();
    let device = crate::train::cpu_device();
    let (mut pv, mut tv, mut pe, mut te) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut loss, mut batches) = (0.0f64, 0usize);
    let idx: Vec<usize> = (0..set.n).collect();
    let t = set.t;
    for chunk in idx.chunks(cfg.batch.max(1)) {
        let b = Batch::new(set, chunk, &device);
        let out = model.forward(
            b.visual.clone(),
            b.audio.clone(),
            b.visual_mask.clone(),
            b.audio_mask.clone(),
        );
        let va: Vec<f32> = out.va.clone().into_data().iter::<f32>().collect();
        let logits: Vec<f32> = out.expr.clone().into_data().iter::<f32>().collect();
        let l = match cfg.task {
            TaskName::Va => ccc_loss(out.va, b.va, b.va_valid),
            TaskName::Expr => {
                cross_entropy(
                    out.expr.clone(),
                    b.expr.clone(),
                    b.expr_valid.clone(),
                    cfg.smoothing,
                ) + soft_f1_loss(out.expr, b.expr, b.expr_valid) * cfg.f1_weight
            }
        };
        loss += scalar(l) as f64;
        batches += 1;
        for (k, &i) in chunk.iter().enumerate() {
            for f in 0..t {
                let (g, r) = (i * t + f, k * t + f);
                // Metrics on real labels only (weight 1), never on pseudo-labels.
                if set.va_valid[g] >= 1.0 {
                    pv.push([va[2 * r], va[2 * r + 1]]);
                    tv.push([set.va[2 * g], set.va[2 * g + 1]]);
                }
                if set.expr[g] >= 0 && set.expr_weight.get(g).is_none_or(|&w| w >= 1.0) {
                    let row = &logits[8 * r..8 * r + 8];
                    pe.push(crate::metrics::argmax(row).map_or(-1, |c| c as i64));
                    te.push(set.expr[g]);
                }
            }
        }
    }
    let err = |e: crate::metrics::MetricError| FitError::Data(format!("validation set: {e}"));
    Ok(match cfg.task {
        TaskName::Va => {
            let c = crate::metrics::va_ccc(&pv, &tv).map_err(err)?;
            Evaluation {
                loss: loss / batches.max(1) as f64,
                ccc: Some([c.valence, c.arousal]),
                f1: None,
            }
        }
        TaskName::Expr => Evaluation {
            loss: loss / batches.max(1) as f64,
            ccc: None,
            f1: Some(crate::metrics::macro_f1(&pe, &te).map_err(err)?),
        },
    })
}

/// Windows per forward pass in [`evaluate_stream`].
const STREAM_BATCH: usize = 256;

/// Per-frame predictions of `model` on `s` as `avfuse` runs it: for frame `i`, the window
/// of `t` frames ending at `i + lookahead`
/// ([`crate::dataset::layout::frame_windows_ahead`]), read at its newest step; `va`
/// clipped to [-1, 1] like avfuse does.
pub fn stream_predictions<M: FusionNet>(
    model: &M,
    s: &Subject,
    t: usize,
    lookahead: usize,
) -> (Vec<[f32; 2]>, Vec<[f32; 8]>) {
    let device = crate::train::cpu_device();
    let n = s.frames();
    let (mut va, mut expr) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut i = 0;
    while i < n {
        let end = (i + STREAM_BATCH).min(n);
        let set = frame_windows_ahead(&s.features, i..end, t, lookahead);
        let idx: Vec<usize> = (0..set.n).collect();
        let b = Batch::new(&set, &idx, &device);
        let out = model.forward(b.visual, b.audio, b.visual_mask, b.audio_mask);
        let last = |x: Tensor<3>, w: usize| -> Vec<f32> {
            x.narrow(1, t - 1, 1)
                .reshape([set.n, w])
                .into_data()
                .iter::<f32>()
                .collect()
        };
        let v = last(out.va, 2);
        let e = last(out.expr, 8);
        for k in 0..set.n {
            va.push(clip_va([v[2 * k], v[2 * k + 1]]));
            expr.push(std::array::from_fn(|c| e[8 * k + c]));
        }
        i = end;
    }
    (va, expr)
}

/// Validation as deployed: the metric of `model` streamed over every frame of `subjects`
/// ([`stream_predictions`]), computed like `affect-train eval --mode stream` (CCC over the
/// frames with valid labels; macro-F1 with frames without a finite logit counted as
/// Neutral). `loss` is not computed (NaN).
pub fn evaluate_stream<M: FusionNet>(
    model: &M,
    subjects: &[Subject],
    cfg: &FitConfig,
) -> Result<Evaluation, FitError> {
    let model = model.valid();
    let (t, k) = (cfg.spec.window, cfg.spec.lookahead);
    let (mut pv, mut tv, mut pe, mut te) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in subjects {
        let (va, expr) = stream_predictions(&model, s, t, k);
        match &s.labels {
            Labels::Va(l) => {
                pv.extend(va);
                tv.extend_from_slice(l);
            }
            Labels::Expr(l) => {
                pe.extend(
                    expr.iter()
                        .map(|e| crate::metrics::argmax(e).unwrap_or(0) as i64),
                );
                te.extend_from_slice(l);
            }
        }
    }
    let err =
        |e: crate::metrics::MetricError| FitError::Data(format!("validation set (streamed): {e}"));
    Ok(match cfg.task {
        TaskName::Va => {
            let c = crate::metrics::va_ccc(&pv, &tv).map_err(err)?;
            Evaluation {
                loss: f64::NAN,
                ccc: Some([c.valence, c.arousal]),
                f1: None,
            }
        }
        TaskName::Expr => Evaluation {
            loss: f64::NAN,
            ccc: None,
            f1: Some(crate::metrics::macro_f1(&pe, &te).map_err(err)?),
        },
    })
}

/// The resumable state (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct State {
    /// Epochs done.
    epoch: usize,
    /// Epochs since the best.
    stale: usize,
    /// Shuffling RNG state after `epoch` epochs: the seed plus the epoch count
    /// re-derives it (the shuffle of epoch e uses `Rng::new(seed ^ e)`).
    seed: u64,
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), FitError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| file_err(path, e))?;
    crate::dataset::write_atomic(path, text.as_bytes()).map_err(|e| file_err(path, e))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, FitError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
    serde_json::from_str(&text).map_err(|e| file_err(path, e))
}

/// Saves a module's weights atomically (burnpack).
pub fn save_module<M: Module>(m: &M, path: &Path) -> Result<(), FitError> {
    let tmp = path.with_extension("tmp");
    m.clone()
        .into_record()
        .save(&tmp)
        .map_err(|e| file_err(path, format!("{e:?}")))?;
    std::fs::rename(&tmp, path).map_err(|e| file_err(path, e))
}

/// Loads weights saved by [`save_module`] into `m`.
pub fn load_module<M: Module>(m: M, path: &Path) -> Result<M, FitError> {
    m.try_load_file(path)
        .map_err(|e| file_err(path, format!("{e:?}")))
}

/// `meta.json`: the [`FusionMeta`] a run exports with (window and dimensions come from
/// `spec.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MetaJson {
    name: String,
    visual_input: Option<String>,
    #[serde(default)]
    audio_mask: Option<String>,
    visual_model: Option<[String; 2]>,
    audio_model: Option<[String; 2]>,
    source: String,
    license: String,
}

/// Writes `meta` as JSON (atomically).
pub fn save_meta(path: &Path, meta: &FusionMeta) -> Result<(), FitError> {
    let pair = |r: &Option<crate::runtime::FeatureModelRef>| {
        r.as_ref().map(|r| [r.name.clone(), r.sha256.clone()])
    };
    write_json(
        path,
        &MetaJson {
            name: meta.name.clone(),
            visual_input: meta.visual_input.clone(),
            audio_mask: meta.audio_mask.clone(),
            visual_model: pair(&meta.visual_model),
            audio_model: pair(&meta.audio_model),
            source: meta.source.clone(),
            license: meta.license.clone(),
        },
    )
}

/// Reads a [`save_meta`] file; window and dimensions are left 0 (set at export).
pub fn load_meta(path: &Path) -> Result<FusionMeta, FitError> {
    let m: MetaJson = read_json(path)?;
    let r = |p: Option<[String; 2]>| {
        p.map(|[name, sha256]| crate::runtime::FeatureModelRef { name, sha256 })
    };
    Ok(FusionMeta {
        name: m.name,
        window: 0,
        lookahead: 0,
        visual_dim: 0,
        audio_dim: 0,
        visual_input: m.visual_input,
        audio_mask: m.audio_mask,
        visual_model: r(m.visual_model),
        audio_model: r(m.audio_model),
        source: m.source,
        license: m.license,
    })
}

/// Reads `spec.json` and `best.bpk` (or another checkpoint) of a run folder.
pub fn load_checkpoint(spec: &Path, weights: &Path) -> Result<(ModelSpec, AnyModel), FitError> {
    let spec: ModelSpec = read_json(spec)?;
    let model = spec.init(&crate::train::cpu_device());
    Ok((spec.clone(), load_module(model, weights)?))
}

/// Writes the ONNX export of `model` to `path` with `meta` (window/dims from `spec`).
pub fn export_onnx<M: FusionNet>(
    model: &M,
    spec: &ModelSpec,
    meta: &FusionMeta,
    path: &Path,
) -> Result<(), FitError> {
    let meta = FusionMeta {
        window: spec.window,
        lookahead: spec.lookahead,
        visual_dim: spec.visual_dim,
        audio_dim: spec.audio_dim,
        ..meta.clone()
    };
    let g = export_fusion(&model.valid(), &meta);
    crate::dataset::write_atomic(path, &g.to_bytes()).map_err(|e| file_err(path, e))
}

fn check_set(name: &str, s: &SequenceSet, spec: &ModelSpec) -> Result<(), FitError> {
    if s.n == 0 {
        return Err(FitError::Data(format!("the {name} set has no sequence")));
    }
    if (s.t, s.dv, s.da) != (spec.window, spec.visual_dim, spec.audio_dim) {
        return Err(FitError::Data(format!(
            "the {name} set has T={}, Dv={}, Da={}; the model wants T={}, Dv={}, Da={}",
            s.t, s.dv, s.da, spec.window, spec.visual_dim, spec.audio_dim
        )));
    }
    let n = s.n * s.t;
    if s.visual.len() != n * s.dv
        || s.audio.len() != n * s.da
        || s.visual_mask.len() != n
        || s.audio_mask.len() != n
        || s.va.len() != 2 * n
        || s.va_valid.len() != n
        || s.expr.len() != n
        || !(s.expr_weight.is_empty() || s.expr_weight.len() == n)
    {
        return Err(FitError::Data(format!(
            "the {name} set's arrays do not match n={}, t={}",
            s.n, s.t
        )));
    }
    if s.visual.iter().chain(&s.audio).any(|v| !v.is_finite()) {
        return Err(FitError::Data(format!(
            "the {name} set has NaN or infinite features"
        )));
    }
    Ok(())
}

/// Trains `cfg.spec` on `train`, validating on `val` after every epoch, writing the
/// files listed in the module docs into `out`. With `stream` (the validation subjects
/// `val` was cut from), the epoch is picked, and training stopped early, on the model as
/// `avfuse` runs it ([`evaluate_stream`]); the chunk metric is reported beside it.
/// With `resume`, continues from `out`'s last checkpoint. `progress(epoch, batch,
/// batches)` is called after every batch. Returns the final report.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    cfg: &FitConfig,
    train: &SequenceSet,
    val: &SequenceSet,
    stream: Option<&[Subject]>,
    out: &Path,
    meta: &FusionMeta,
    resume: bool,
    mut progress: impl FnMut(usize, usize, usize),
) -> Result<FitReport, FitError> {
    check_set("training", train, &cfg.spec)?;
    check_set("validation", val, &cfg.spec)?;
    if cfg.spec.lookahead >= cfg.spec.window {
        return Err(FitError::Data(format!(
            "--lookahead-frames {} must be less than the window ({})",
            cfg.spec.lookahead, cfg.spec.window
        )));
    }
    // Labels delayed by the lookahead: step p answers for frame p - K (causal models).
    let delayed;
    let (train, val) = if cfg.spec.lookahead > 0 {
        delayed = (
            train.delay_labels(cfg.spec.lookahead),
            val.delay_labels(cfg.spec.lookahead),
        );
        (&delayed.0, &delayed.1)
    } else {
        (train, val)
    };
    if has_pseudo_labels(val) {
        return Err(FitError::Data(
            "the validation set holds pseudo-labels (weights below 1): validation uses real labels only".into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| file_err(out, e))?;
    let device = crate::train::train_device();
    device.seed(cfg.seed);
    let mut model = cfg.spec.init(&device);
    let mut optim = AdamWConfig::new()
        .with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(
            cfg.clip,
        )))
        .init();
    let (report_p, spec_p) = (out.join("report.json"), out.join("spec.json"));
    let (last_p, optim_p, state_p) = (
        out.join("last.bpk"),
        out.join("last.optim.bpk"),
        out.join("state.json"),
    );
    let (best_p, onnx_p) = (out.join("best.bpk"), out.join("best.onnx"));
    let curves_p = out.join("curves.png");
    let mut report = FitReport {
        config: cfg.clone(),
        epochs: Vec::new(),
        best_epoch: 0,
        best_metric: f64::NEG_INFINITY,
        stopped: String::new(),
        validation: if stream.is_some() { "stream" } else { "chunk" }.into(),
        warnings: Vec::new(),
    };
    let mut state = State {
        epoch: 0,
        stale: 0,
        seed: cfg.seed,
    };
    if resume {
        let spec: ModelSpec = read_json(&spec_p)?;
        if spec != cfg.spec {
            return Err(FitError::Data(format!(
                "{}: the checkpoint's model differs from the requested one",
                spec_p.display()
            )));
        }
        model = load_module(model, &last_p)?;
        optim = optim
            .load(&optim_p)
            .map_err(|e| file_err(&optim_p, format!("{e:?}")))?;
        state = read_json(&state_p)?;
        report = read_json(&report_p)?;
        report.config = cfg.clone();
        report.stopped.clear();
    } else {
        write_json(&spec_p, &cfg.spec)?;
        save_meta(&out.join("meta.json"), meta)?;
    }

    let batches = train.n.div_ceil(cfg.batch.max(1));
    while state.epoch < cfg.epochs {
        let epoch = state.epoch + 1;
        let start = Instant::now();
        let mut rng = Rng::new(state.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9));
        let mut order: Vec<usize> = (0..train.n).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.range(0, i + 1));
        }
        let mut total = 0.0f64;
        for (bi, chunk) in order.chunks(cfg.batch.max(1)).enumerate() {
            let b = Batch::new(train, chunk, &device);
            let loss = batch_loss(&model, b, cfg);
            let v = scalar(loss.clone().inner());
            if !v.is_finite() {
                return Err(FitError::Diverged { epoch, value: v });
            }
            total += v as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(cfg.lr, model, grads);
            progress(epoch, bi + 1, batches);
        }
        let chunks = evaluate(&model, val, cfg)?;
        let ev = match stream {
            Some(subjects) => evaluate_stream(&model, subjects, cfg)?,
            None => chunks.clone(),
        };
        let metric = ev.metric();
        report.epochs.push(EpochReport {
            epoch,
            train_loss: total / batches.max(1) as f64,
            val_loss: chunks.loss,
            metric,
            ccc: ev.ccc,
            f1: ev.f1,
            chunk_metric: Some(chunks.metric()),
            lr: cfg.lr,
            seconds: start.elapsed().as_secs_f64(),
        });
        if metric > report.best_metric {
            report.best_metric = metric;
            report.best_epoch = epoch;
            state.stale = 0;
            save_module(&model, &best_p)?;
            export_onnx(&model, &cfg.spec, meta, &onnx_p)?;
        } else {
            state.stale += 1;
        }
        state.epoch = epoch;
        save_module(&model, &last_p)?;
        let tmp = optim_p.with_extension("tmp");
        optim
            .save(&tmp)
            .map_err(|e| file_err(&optim_p, format!("{e:?}")))?;
        std::fs::rename(&tmp, &optim_p).map_err(|e| file_err(&optim_p, e))?;
        write_json(&state_p, &state)?;
        if let Err(w) = crate::train::curves::draw(&report, &curves_p, (1000, 400))
            && !report.warnings.contains(&w)
        {
            report.warnings.push(w);
        }
        if cfg.patience > 0 && state.stale >= cfg.patience {
            report.stopped = "early-stopping".into();
            write_json(&report_p, &report)?;
            return Ok(report);
        }
        write_json(&report_p, &report)?;
    }
    report.stopped = "epochs".into();
    write_json(&report_p, &report)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, sequences};
    use crate::train::models::ModelKind;

    fn small(kind: ModelKind) -> ModelSpec {
        ModelSpec {
            hidden: 16,
            window: 16,
            layers: 1,
            heads: 2,
            lookahead: 0,
            dropout: 0.0,
            ..ModelSpec::seed(kind, 16, 12)
        }
    }

    fn meta() -> FusionMeta {
        FusionMeta {
            name: "fit-test".into(),
            window: 0,
            lookahead: 0,
            visual_dim: 0,
            audio_dim: 0,
            visual_input: None,
            audio_mask: None,
            visual_model: None,
            audio_model: None,
            source: "test".into(),
            license: "MPL-2.0".into(),
        }
    }

    #[test]
    fn fit_writes_reports_checkpoints_and_resumes_identically() {
        let _rng = crate::train::models::testing::rng_lock();
        let (tr, val) = sequences(&SynthConfig::default(), 4, 2, 64, 16);
        let dir = std::env::temp_dir().join(format!("affect-fit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cfg = FitConfig::new(TaskName::Va, small(ModelKind::Attention));
        cfg.epochs = 2;
        cfg.patience = 0;
        let mut calls = 0;
        let r = fit(&cfg, &tr, &val, None, &dir, &meta(), false, |_, _, _| {
            calls += 1
        })
        .unwrap();
        // 16 sequences / batch 16 = 1 batch per epoch.
        assert_eq!(calls, 2);
        assert_eq!(r.epochs.len(), 2);
        assert_eq!(r.stopped, "epochs");
        assert!(
            r.epochs
                .iter()
                .all(|e| e.train_loss.is_finite() && e.ccc.is_some())
        );
        // Curves: a PNG of the drawn size, unless no font is installed (then a warning).
        match image::open(dir.join("curves.png")) {
            Ok(img) => assert_eq!((img.width(), img.height()), (1000, 400)),
            Err(_) => assert!(
                r.warnings.iter().any(|w| w.contains("font")),
                "{:?}",
                r.warnings
            ),
        }
        let m = load_meta(&dir.join("meta.json")).unwrap();
        assert_eq!(m.name, "fit-test");
        for f in [
            "report.json",
            "spec.json",
            "last.bpk",
            "last.optim.bpk",
            "state.json",
            "best.bpk",
            "best.onnx",
        ] {
            assert!(dir.join(f).is_file(), "{f} missing");
        }
        let on_disk: FitReport = read_json(&dir.join("report.json")).unwrap();
        assert_eq!(
            (on_disk.best_epoch, on_disk.epochs.len()),
            (r.best_epoch, 2)
        );
        for (a, b) in on_disk.epochs.iter().zip(&r.epochs) {
            assert!((a.val_loss - b.val_loss).abs() < 1e-12 && a.epoch == b.epoch);
        }
        // Resume for a 3rd epoch, twice from copies of the same checkpoint: identical
        // (training is deterministic given the checkpoint; the init is not compared with
        // an uninterrupted run because burn's global RNG is shared by parallel tests).
        let dir2 = dir.with_extension("copy");
        let _ = std::fs::remove_dir_all(&dir2);
        std::fs::create_dir_all(&dir2).unwrap();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir2.join(p.file_name().unwrap())).unwrap();
        }
        cfg.epochs = 3;
        let resumed = fit(&cfg, &tr, &val, None, &dir, &meta(), true, |_, _, _| {}).unwrap();
        let again = fit(&cfg, &tr, &val, None, &dir2, &meta(), true, |_, _, _| {}).unwrap();
        assert_eq!(resumed.epochs.len(), 3);
        for (x, y) in resumed.epochs.iter().zip(&r.epochs) {
            assert!((x.train_loss - y.train_loss).abs() < 1e-12);
        }
        let (a, b) = (resumed.epochs[2].train_loss, again.epochs[2].train_loss);
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        // Training went on from the checkpoint: lower loss than epoch 2.
        assert!(
            a < r.epochs[1].train_loss,
            "{a} vs {}",
            r.epochs[1].train_loss
        );
        // A missing optimizer state is an error naming the file.
        std::fs::remove_file(dir2.join("last.optim.bpk")).unwrap();
        cfg.epochs = 4;
        let e = fit(&cfg, &tr, &val, None, &dir2, &meta(), true, |_, _, _| {}).unwrap_err();
        assert!(e.to_string().contains("last.optim.bpk"), "{e}");
        // The best checkpoint reloads and the exported ONNX has the contract.
        let (spec, _m) = load_checkpoint(&dir.join("spec.json"), &dir.join("best.bpk")).unwrap();
        assert_eq!(spec, cfg.spec);
        let bytes = std::fs::read(dir.join("best.onnx")).unwrap();
        let props = crate::onnx::read_metadata(&bytes).unwrap();
        assert!(props.contains(&("affect.fusion.window".into(), "16".into())));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&dir2);
    }

    /// Two windows of 4 frames: subject 0 frames 0..4, subject 1 frames 2..5 (+1 padding).
    /// Frame (0, 2) has no modality; (1, 3) is padding.
    fn pseudo_set(va_valid: [f32; 8], expr: [i64; 8]) -> (SequenceSet, Vec<WindowOrigin>) {
        let set = SequenceSet {
            n: 2,
            t: 4,
            dv: 1,
            da: 1,
            visual: vec![0.0; 8],
            audio: vec![0.0; 8],
            visual_mask: vec![1., 1., 0., 1., 1., 1., 0., 0.],
            audio_mask: vec![0., 0., 0., 0., 0., 0., 1., 0.],
            va: (0..16).map(|i| i as f32 / 20.0).collect(),
            va_valid: va_valid.to_vec(),
            expr: expr.to_vec(),
            expr_weight: Vec::new(),
        };
        let origins = vec![
            WindowOrigin {
                subject: 0,
                start: 0,
                len: 4,
            },
            WindowOrigin {
                subject: 1,
                start: 2,
                len: 3,
            },
        ];
        (set, origins)
    }

    fn teacher() -> Vec<TeacherOutput> {
        let va = |n: usize, base: f32| (0..n).map(move |i| [base + i as f32, -base - i as f32]);
        let mut s0 = TeacherOutput {
            va: va(4, 0.1).collect(),
            expr: vec![[0.0; 8]; 4],
        };
        let mut s1 = TeacherOutput {
            va: va(5, 0.5).collect(),
            expr: vec![[0.0; 8]; 5],
        };
        s1.va[4] = [f32::NAN, 0.0];
        // Subject 0 frame 1: class 4, p = 9 / (9 + 7) = 0.5625. Subject 1 frame 2: class 6,
        // p = e¹⁰ / (e¹⁰ + 7) ≈ 0.9997. Subject 1 frame 4: uniform, p = 1/8.
        s0.expr[1][4] = 9f32.ln();
        s1.expr[2][6] = 10.0;
        vec![s0, s1]
    }

    #[test]
    fn pseudo_labels_fill_exactly_the_unlabelled_frames_with_a_modality() {
        let _rng = crate::train::models::testing::rng_lock();
        // VA: candidates (0,1) → subject 0 frame 1, (1,0) → subject 1 frame 2, (1,2) →
        // subject 1 frame 4 whose teacher value is NaN (stays invalid). (0,2) has no
        // modality, (1,3) is padding.
        let (mut set, origins) = pseudo_set([1., 0., 0., 1., 0., 1., 0., 0.], [-1; 8]);
        let before = set.clone();
        let c = pseudo_label(&mut set, &origins, &teacher(), TaskName::Va, 0.25, 0.9).unwrap();
        assert_eq!(
            c,
            PseudoCount {
                candidates: 3,
                frames: 2
            }
        );
        assert_eq!(set.va_valid, vec![1., 0.25, 0., 1., 0.25, 1., 0., 0.]);
        let mut want = before.va.clone();
        want[2..4].copy_from_slice(&[1.1, -1.1]); // teacher subject 0 frame 1
        want[8..10].copy_from_slice(&[2.5, -2.5]); // teacher subject 1 frame 2
        assert_eq!(set.va, want);
        assert_eq!(
            (set.expr.clone(), set.expr_weight.clone()),
            (before.expr, vec![])
        );

        // Expr, min-confidence 0.9: only subject 1 frame 2 (p ≈ 0.9997) gets class 6.
        let expr = [2, -1, -1, 5, -1, 3, -1, -1];
        let (mut set, origins) = pseudo_set([0.; 8], expr);
        let c = pseudo_label(&mut set, &origins, &teacher(), TaskName::Expr, 0.5, 0.9).unwrap();
        assert_eq!(
            c,
            PseudoCount {
                candidates: 3,
                frames: 1
            }
        );
        assert_eq!(set.expr, vec![2, -1, -1, 5, 6, 3, -1, -1]);
        assert_eq!(set.expr_weight, vec![1., 1., 1., 1., 0.5, 1., 1., 1.]);
        assert_eq!(set.va_valid, vec![0.; 8]);
        // The batch carries the weights into the loss mask.
        let b = Batch::new(&set, &[0, 1], &crate::train::cpu_device());
        let m: Vec<f32> = b.expr_valid.into_data().iter::<f32>().collect();
        assert_eq!(m, vec![1., 0., 0., 1., 0.5, 1., 0., 0.]);
        // Min-confidence 0.5 also takes subject 0 frame 1 (p = 0.5625) as class 4.
        let (mut set, origins) = pseudo_set([0.; 8], expr);
        let c = pseudo_label(&mut set, &origins, &teacher(), TaskName::Expr, 0.5, 0.5).unwrap();
        assert_eq!(c.frames, 2);
        assert_eq!(set.expr, vec![2, 4, -1, 5, 6, 3, -1, -1]);

        // Bad parameters and a teacher output too short are errors.
        for (w, p) in [(0.0, 0.9), (1.5, 0.9), (f32::NAN, 0.9), (0.5, 1.1)] {
            let e = pseudo_label(&mut set, &origins, &teacher(), TaskName::Expr, w, p);
            assert!(e.is_err(), "{w} {p}");
        }
        let mut short = teacher();
        short[1].va.truncate(4);
        let e = pseudo_label(&mut set, &origins, &short, TaskName::Va, 0.5, 0.9).unwrap_err();
        assert!(e.to_string().contains("need 5"), "{e}");
    }

    #[test]
    fn validation_never_uses_pseudo_labels() {
        let _rng = crate::train::models::testing::rng_lock();
        let (tr, mut val) = sequences(&SynthConfig::default(), 2, 1, 32, 16);
        let cfg = FitConfig::new(TaskName::Va, small(ModelKind::Attention));
        let dir = std::env::temp_dir().join(format!("affect-fit-pseudo-{}", std::process::id()));
        let i = val.va_valid.iter().position(|&w| w == 1.0).unwrap();
        val.va_valid[i] = 0.5;
        let e = fit(&cfg, &tr, &val, None, &dir, &meta(), false, |_, _, _| {}).unwrap_err();
        assert!(e.to_string().contains("pseudo-labels"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_sets_are_clear_errors() {
        let _rng = crate::train::models::testing::rng_lock();
        let (tr, val) = sequences(&SynthConfig::default(), 2, 1, 32, 16);
        let cfg = FitConfig::new(TaskName::Expr, small(ModelKind::Tcn));
        let dir = std::env::temp_dir().join(format!("affect-fit-bad-{}", std::process::id()));
        let empty = SequenceSet {
            t: 16,
            dv: 16,
            da: 12,
            ..Default::default()
        };
        let e = fit(&cfg, &tr, &empty, None, &dir, &meta(), false, |_, _, _| {}).unwrap_err();
        assert!(
            e.to_string().contains("validation set has no sequence"),
            "{e}"
        );
        let mut nan = tr.clone();
        nan.visual[5] = f32::NAN;
        let e = fit(&cfg, &nan, &val, None, &dir, &meta(), false, |_, _, _| {}).unwrap_err();
        assert!(e.to_string().contains("NaN"), "{e}");
        let wrong = SequenceSet {
            dv: 15,
            ..tr.clone()
        };
        let e = fit(&cfg, &wrong, &val, None, &dir, &meta(), false, |_, _, _| {}).unwrap_err();
        assert!(e.to_string().contains("Dv=15"), "{e}");
        // Resume without a checkpoint: names the missing file.
        let e = fit(
            &cfg,
            &tr,
            &val,
            None,
            &dir.join("none"),
            &meta(),
            true,
            |_, _, _| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("spec.json"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
