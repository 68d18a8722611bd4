// SPDX-License-Identifier: MPL-2.0
//! `affect-train eval`: an exported fusion `.onnx` through ONNX Runtime on a split of a
//! data root, with the metrics of `affect::metrics`.
//!
//! The model runs as `avfuse` runs it (`--mode stream`, the default): for every frame, the
//! window of `T` frames ending at it — or `K` frames later for a model with
//! `affect.fusion.lookahead-frames = K` — (padded before the start, after a dropped track
//! and past the end, [`affect::dataset::layout::frame_windows_ahead`]), read at its
//! newest step — so eval's
//! predictions on features dumped by `avfuse` are the numbers the element produced.
//! `--mode chunk` runs non-overlapping windows (T times less work) and reads every step.

use std::path::{Path, PathBuf};

use affect::dataset::layout::{Subject, frame_windows_ahead, sequences};
use affect::dataset::{DataRoot, Fold, Labels, SequenceSet, Split, Task, annotations};
use affect::fusion::post::clip_va;
use affect::metrics::{ConfusionMatrix, VaCcc, ZeroDivision, argmax, va_ccc};
use affect::runtime::{FusionSpec, InputSpec, Model, Role, SessionConfig};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, Array3};

/// Which labels to evaluate (`--task`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TaskArg {
    /// Valence/arousal: CCC.
    Va,
    /// Expressions: macro-F1 and confusion matrix.
    Expr,
}

impl From<TaskArg> for Task {
    fn from(t: TaskArg) -> Task {
        match t {
            TaskArg::Va => Task::Va,
            TaskArg::Expr => Task::Expr,
        }
    }
}

/// Which split (`--split`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    /// `Train_Set` (with `--fold`: the other folds).
    Train,
    /// `Validation_Set` (with `--fold`: the fold).
    Validation,
}

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Split {
        match s {
            SplitArg::Train => Split::Train,
            SplitArg::Validation => Split::Validation,
        }
    }
}

/// How windows are cut (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// One window per frame, ending at it, read at its last step (what avfuse does).
    Stream,
    /// Non-overlapping windows, every step read (faster).
    Chunk,
}

/// Arguments of `affect-train eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The exported fusion model (.onnx with the affect.* fusion contract).
    #[arg(long)]
    pub model: PathBuf,
    /// Data root in the Aff-Wild2 layout (annotations/…, features/…).
    #[arg(long)]
    pub data: PathBuf,
    /// Labels to evaluate.
    #[arg(long, value_enum, default_value = "va")]
    pub task: TaskArg,
    /// Split folder (with --fold: validation = the fold, train = the other folds).
    #[arg(long, value_enum, default_value = "validation")]
    pub split: SplitArg,
    /// k/K: fold k (1-based) of K over the pooled Train_Set + Validation_Set videos.
    #[arg(long)]
    pub fold: Option<String>,
    /// Seed of the fold assignment.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Window cutting.
    #[arg(long, value_enum, default_value = "stream")]
    pub mode: Mode,
    /// Windows per ONNX Runtime run.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Write the metrics as JSON to this file (atomically).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write per-subject predictions, Aff-Wild2 layout (<dir>/<name>.txt), to this folder.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// ONNX Runtime library (else ORT_DYLIB_PATH or the cached wheel).
    #[arg(long)]
    pub ort_library: Option<PathBuf>,
}

/// The metrics `eval` reports (also its `--json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Model file.
    pub model: String,
    /// Model name.
    pub model_name: String,
    /// Data root.
    pub data: String,
    /// `va` or `expr`.
    pub task: String,
    /// Split / fold description.
    pub split: String,
    /// Window mode.
    pub mode: String,
    /// Subjects evaluated.
    pub subjects: Vec<String>,
    /// Frames with predictions.
    pub frames: usize,
    /// Length mismatches that were trimmed.
    pub notes: Vec<String>,
    /// VA: CCC valence / arousal / mean.
    pub ccc: Option<VaCcc>,
    /// EXPR: macro-F1 (zero_division 0).
    pub macro_f1: Option<f64>,
    /// EXPR: per-class F1.
    pub f1_per_class: Option<Vec<f64>>,
    /// EXPR: accuracy.
    pub accuracy: Option<f64>,
    /// EXPR: confusion matrix, rows = truth.
    pub confusion: Option<ConfusionMatrix>,
}

/// The fusion spec of a loaded model.
pub fn fusion_spec(model: &Model) -> Result<FusionSpec, String> {
    match &model.contract().input {
        InputSpec::Fusion(s) => Ok(s.clone()),
        _ => Err(format!("{} is not a fusion model", model.path().display())),
    }
}

/// Refuses feature files made with other feature models than the model declares.
pub fn check_features(
    model: &Model,
    spec: &FusionSpec,
    subjects: &[Subject],
) -> Result<(), String> {
    let name = &model.contract().name;
    let model_input = model
        .contract()
        .prop("affect.fusion.visual-input")
        .unwrap_or("features")
        .to_owned();
    for s in subjects {
        let m = &s.features.meta;
        let f = &s.features;
        if (f.visual_dim, f.audio_dim) != (spec.visual_dim, spec.audio_dim) {
            return Err(format!(
                "model {name} reads visual {} / audio {} values, the features of {} have {} / {}",
                spec.visual_dim, spec.audio_dim, s.name, f.visual_dim, f.audio_dim
            ));
        }
        for (what, declared, file_name, file_sha) in [
            (
                "visual",
                &spec.visual_model,
                &m.visual_model,
                &m.visual_sha256,
            ),
            ("audio", &spec.audio_model, &m.audio_model, &m.audio_sha256),
        ] {
            let Some(d) = declared else { continue };
            if file_sha.is_empty() {
                continue;
            }
            if !d.sha256.eq_ignore_ascii_case(file_sha) || d.name != *file_name {
                return Err(format!(
                    "model {name} was trained on the {what} feature model {} (sha256 {}), the features of {} come from {} (sha256 {}): re-extract with the matching models or use a matching fusion model",
                    d.name, d.sha256, s.name, file_name, file_sha
                ));
            }
        }
        if !m.visual_input.is_empty() && m.visual_input != model_input {
            return Err(format!(
                "model {name} reads visual {model_input}, the features of {} hold {}",
                s.name, m.visual_input
            ));
        }
        let data_mask = m
            .audio_mask_kind()
            .map_err(|e| format!("the features of {}: {e}", s.name))?;
        if data_mask != spec.audio_mask {
            return Err(format!(
                "model {name} reads affect.fusion.audio-mask = {}, the features of {} hold audio mask `{}`: re-extract with `affect-train extract --audio-mask {}` (avfuse would give the model other masks than these)",
                spec.audio_mask.as_str(),
                s.name,
                data_mask.as_str(),
                spec.audio_mask.as_str()
            ));
        }
    }
    Ok(())
}

/// Runs the model on `set` (B windows); returns `va` \[B,T,2\] and `expr` \[B,T,8\].
pub fn run_windows(
    model: &mut Model,
    set: &SequenceSet,
) -> Result<(Array3<f32>, Array3<f32>), String> {
    let (b, t) = (set.n, set.t);
    let shape_err = |e: ndarray::ShapeError| e.to_string();
    let v = Array3::from_shape_vec((b, t, set.dv), set.visual.clone()).map_err(shape_err)?;
    let a = Array3::from_shape_vec((b, t, set.da), set.audio.clone()).map_err(shape_err)?;
    let vm = Array2::from_shape_vec((b, t), set.visual_mask.clone()).map_err(shape_err)?;
    let am = Array2::from_shape_vec((b, t), set.audio_mask.clone()).map_err(shape_err)?;
    let outputs = model.contract().outputs.clone();
    let (v, a, vm, am) = (v.into_dyn(), a.into_dyn(), vm.into_dyn(), am.into_dyn());
    let mut res = model
        .run_f32(&[
            ("visual", v.view()),
            ("audio", a.view()),
            ("visual_mask", vm.view()),
            ("audio_mask", am.view()),
        ])
        .map_err(|e| e.to_string())?;
    let mut take = |name: &str, d: usize| -> Result<Array3<f32>, String> {
        let arr = res
            .remove(name)
            .ok_or_else(|| format!("the model has no output `{name}`"))?;
        let shape = arr.shape().to_vec();
        arr.into_shape_with_order((b, t, d))
            .map_err(|_| format!("output `{name}` has shape {shape:?}, expected [{b}, {t}, {d}]"))
    };
    let va_name = outputs.first().map(String::as_str).unwrap_or("va");
    let expr_name = outputs.get(1).map(String::as_str).unwrap_or("expr");
    Ok((take(va_name, 2)?, take(expr_name, 8)?))
}

/// Per-frame predictions of one subject: `va` (clipped to [-1, 1] as avfuse does) and
/// expression logits.
pub struct Predictions {
    /// (valence, arousal) per frame.
    pub va: Vec<[f32; 2]>,
    /// Logits per frame.
    pub expr: Vec<[f32; 8]>,
}

/// Predicts every frame of `s`.
pub fn predict(
    model: &mut Model,
    s: &Subject,
    t: usize,
    mode: Mode,
    batch: usize,
    bar: &ProgressBar,
) -> Result<Predictions, String> {
    let n = s.frames();
    let mut out = Predictions {
        va: Vec::with_capacity(n),
        expr: Vec::with_capacity(n),
    };
    let batch = batch.max(1);
    let lookahead = fusion_spec(model)?.lookahead;
    if mode == Mode::Chunk && lookahead > 0 {
        return Err(format!(
            "{} reads {lookahead} future frames (affect.fusion.lookahead-frames): --mode chunk cannot run it, use --mode stream",
            model.contract().name
        ));
    }
    match mode {
        Mode::Stream => {
            let mut i = 0;
            while i < n {
                let end = (i + batch).min(n);
                let set = frame_windows_ahead(&s.features, i..end, t, lookahead);
                let (va, expr) = run_windows(model, &set)?;
                for k in 0..set.n {
                    out.va.push(clip_va([va[[k, t - 1, 0]], va[[k, t - 1, 1]]]));
                    out.expr.push(std::array::from_fn(|c| expr[[k, t - 1, c]]));
                }
                bar.inc((end - i) as u64);
                i = end;
            }
        }
        Mode::Chunk => {
            let task = match s.labels {
                Labels::Va(_) => Task::Va,
                Labels::Expr(_) => Task::Expr,
            };
            let (set, origins) =
                sequences(std::slice::from_ref(s), task, t, t).map_err(|e| e.to_string())?;
            let per = batch.div_ceil(t).max(1);
            for (c, chunk) in origins.chunks(per).enumerate() {
                let lo = c * per;
                let sub = SequenceSet {
                    n: chunk.len(),
                    t,
                    dv: set.dv,
                    da: set.da,
                    visual: set.visual[lo * t * set.dv..(lo + chunk.len()) * t * set.dv].to_vec(),
                    audio: set.audio[lo * t * set.da..(lo + chunk.len()) * t * set.da].to_vec(),
                    visual_mask: set.visual_mask[lo * t..(lo + chunk.len()) * t].to_vec(),
                    audio_mask: set.audio_mask[lo * t..(lo + chunk.len()) * t].to_vec(),
                    ..Default::default()
                };
                let (va, expr) = run_windows(model, &sub)?;
                for (k, o) in chunk.iter().enumerate() {
                    for step in 0..o.len {
                        out.va.push(clip_va([va[[k, step, 0]], va[[k, step, 1]]]));
                        out.expr.push(std::array::from_fn(|c| expr[[k, step, c]]));
                    }
                    bar.inc(o.len as u64);
                }
            }
        }
    }
    Ok(out)
}

/// Runs `affect-train eval`.
pub fn run(args: Args) -> Result<(), String> {
    let task: Task = args.task.into();
    let split: Split = args.split.into();
    let fold = args
        .fold
        .as_deref()
        .map(|f| f.parse::<Fold>().map(|f| (f, args.seed)))
        .transpose()
        .map_err(|e| e.to_string())?;
    let cfg = SessionConfig {
        ort_library: args.ort_library.clone(),
        ..Default::default()
    };
    let mut model =
        Model::load(&args.model, Some(Role::Fusion), &cfg).map_err(|e| e.to_string())?;
    let spec = fusion_spec(&model)?;
    let root = DataRoot::new(&args.data).map_err(|e| e.to_string())?;
    let subjects = root.load(task, split, fold).map_err(|e| e.to_string())?;
    check_features(&model, &spec, &subjects)?;
    let mut notes = Vec::new();
    for s in &subjects {
        if let Some(n) = s.trim_note() {
            eprintln!("note: {n}");
            notes.push(n);
        }
    }
    let total: usize = subjects.iter().map(Subject::frames).sum();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("eval {bar:40} {pos}/{len} frames {per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut pred_va, mut true_va) = (Vec::new(), Vec::new());
    let (mut pred_ex, mut true_ex) = (Vec::new(), Vec::new());
    for s in &subjects {
        let p = predict(&mut model, s, spec.window, args.mode, args.batch, &bar)?;
        match &s.labels {
            Labels::Va(l) => {
                pred_va.extend_from_slice(&p.va);
                true_va.extend_from_slice(l);
            }
            Labels::Expr(l) => {
                // A frame whose logits are all non-finite counts as class -1… which the
                // metrics refuse: use Neutral (0) and say so.
                for (k, e) in p.expr.iter().enumerate() {
                    let c = argmax(e).unwrap_or_else(|| {
                        eprintln!(
                            "note: {} frame {k}: no finite logit, counted as Neutral",
                            s.name
                        );
                        0
                    });
                    pred_ex.push(c as i64);
                }
                true_ex.extend_from_slice(l);
            }
        }
        if let Some(dir) = &args.predictions {
            let path = dir.join(format!("{}.txt", s.name));
            let r = match task {
                Task::Va => annotations::write_va(&path, &p.va),
                Task::Expr => {
                    let c: Vec<i64> = p
                        .expr
                        .iter()
                        .map(|e| argmax(e).map_or(-1, |c| c as i64))
                        .collect();
                    annotations::write_expr(&path, &c)
                }
            };
            r.map_err(|e| e.to_string())?;
        }
    }
    bar.finish_and_clear();
    let mut report = Report {
        model: args.model.display().to_string(),
        model_name: model.contract().name.clone(),
        data: args.data.display().to_string(),
        task: format!("{:?}", task).to_lowercase(),
        split: match fold {
            Some((f, seed)) => format!(
                "{} of fold {}/{} (seed {seed})",
                split.folder(),
                f.index,
                f.count
            ),
            None => split.folder().to_owned(),
        },
        mode: format!("{:?}", args.mode).to_lowercase(),
        subjects: subjects.iter().map(|s| s.name.clone()).collect(),
        frames: total,
        notes,
        ccc: None,
        macro_f1: None,
        f1_per_class: None,
        accuracy: None,
        confusion: None,
    };
    println!(
        "model {} on {} ({}, {} subjects, {} frames, mode {})",
        report.model_name,
        report.data,
        report.split,
        subjects.len(),
        total,
        report.mode
    );
    match task {
        Task::Va => {
            let c = va_ccc(&pred_va, &true_va).map_err(|e| e.to_string())?;
            println!("{c}");
            report.ccc = Some(c);
        }
        Task::Expr => {
            let m = ConfusionMatrix::new(&pred_ex, &true_ex).map_err(|e| e.to_string())?;
            let f1 = m.macro_f1(ZeroDivision::Zero);
            println!(
                "macro-F1 {f1:.4} (8 classes, absent classes count 0), accuracy {:.4}, {} valid frames",
                m.accuracy(),
                m.total()
            );
            print!("{m}");
            report.macro_f1 = Some(f1);
            report.f1_per_class = Some(m.f1_per_class(ZeroDivision::Zero).to_vec());
            report.accuracy = Some(m.accuracy());
            report.confusion = Some(m);
        }
    }
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(())
}

fn write_json(path: &Path, report: &Report) -> Result<(), String> {
    let mut text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    text.push('\n');
    affect::dataset::write_atomic(path, text.as_bytes()).map_err(|e| e.to_string())
}
