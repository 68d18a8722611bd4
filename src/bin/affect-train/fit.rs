// SPDX-License-Identifier: MPL-2.0
//! `affect-train fit`: trains a fusion model (see `affect::train::fit`).

use std::path::{Path, PathBuf};

use affect::dataset::layout::{DataRoot, Fold, Split, Subject, WindowOrigin, sequences};
use affect::dataset::{SequenceSet, Task};
use affect::runtime::{AudioMaskKind, FeatureModelRef, Model, Role, SessionConfig};
use affect::train::export::FusionMeta;
use affect::train::fit::{FitConfig, PseudoLabels, TaskName, TeacherOutput, fit, pseudo_label};
use affect::train::models::{ModelKind, ModelSpec};

/// `--task`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TaskArg {
    /// Valence/arousal (CCC loss; metric: mean CCC).
    Va,
    /// Expressions (cross-entropy + soft macro-F1; metric: macro-F1).
    Expr,
}

impl From<TaskArg> for TaskName {
    fn from(t: TaskArg) -> Self {
        match t {
            TaskArg::Va => TaskName::Va,
            TaskArg::Expr => TaskName::Expr,
        }
    }
}

/// `--model`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModelArg {
    /// Per-modality projection + attention fusion (seed baseline).
    Attention,
    /// Multi-scale TCN + cross-modal attention.
    Tcn,
    /// Memory Fusion Network.
    Mfn,
    /// Multimodal cyclic translation network.
    Mctn,
    /// Transformer encoder.
    Transformer,
}

impl From<ModelArg> for ModelKind {
    fn from(m: ModelArg) -> Self {
        match m {
            ModelArg::Attention => ModelKind::Attention,
            ModelArg::Tcn => ModelKind::Tcn,
            ModelArg::Mfn => ModelKind::Mfn,
            ModelArg::Mctn => ModelKind::Mctn,
            ModelArg::Transformer => ModelKind::Transformer,
        }
    }
}

/// Where the data comes from (shared with `ensemble`).
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// Data root in the Aff-Wild2 layout (annotations/…, features/…).
    #[arg(long)]
    pub data: PathBuf,
    /// Task.
    #[arg(long, value_enum)]
    pub task: TaskArg,
    /// Use fold k/K of Train_Set + Validation_Set instead of the given split.
    #[arg(long)]
    pub fold: Option<Fold>,
    /// Seed of the fold assignment.
    #[arg(long, default_value_t = 0)]
    pub fold_seed: u64,
    /// Frames per training sequence (the model's window T).
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Frames between two training sequences (default: the window).
    #[arg(long)]
    pub hop: Option<usize>,
}

/// The feature models (visual, audio) and `visual-input` a data set was extracted with.
pub type FeatureRefs = (FeatureModelRef, FeatureModelRef, String, AudioMaskKind);

/// A loaded split: its sequences, the windows they come from, its subjects and the
/// metadata of their features.
pub type LoadedSplit = (
    SequenceSet,
    Vec<WindowOrigin>,
    Vec<Subject>,
    Option<FeatureRefs>,
);

/// A split of the data root: the training sequences, the windows they come from, the
/// subjects, and the feature models the files record.
pub fn load_split_subjects(d: &DataArgs, split: Split) -> Result<LoadedSplit, String> {
    let root = DataRoot::new(&d.data).map_err(|e| e.to_string())?;
    let task: Task = TaskName::from(d.task).into();
    let fold = d.fold.map(|f| (f, d.fold_seed));
    let subjects = root.load(task, split, fold).map_err(|e| e.to_string())?;
    // One kind of audio mask per split: a model is exported declaring the one it saw.
    let kinds = subjects
        .iter()
        .map(|s| {
            s.features
                .meta
                .audio_mask_kind()
                .map_err(|e| format!("the features of {}: {e}", s.name))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(i) = kinds.iter().position(|k| *k != kinds[0]) {
        return Err(format!(
            "the features of {} hold audio mask `{}`, those of {} `{}`: extract every subject with the same --audio-mask",
            subjects[0].name,
            kinds[0].as_str(),
            subjects[i].name,
            kinds[i].as_str()
        ));
    }
    let (set, origins) = sequences(&subjects, task, d.window, d.hop.unwrap_or(d.window))
        .map_err(|e| e.to_string())?;
    let refs = subjects.first().zip(kinds.first()).and_then(|(s, &kind)| {
        let m = &s.features.meta;
        (!m.visual_model.is_empty() && !m.audio_model.is_empty()).then(|| {
            (
                FeatureModelRef {
                    name: m.visual_model.clone(),
                    sha256: m.visual_sha256.clone(),
                },
                FeatureModelRef {
                    name: m.audio_model.clone(),
                    sha256: m.audio_sha256.clone(),
                },
                m.visual_input.clone(),
                kind,
            )
        })
    });
    Ok((set, origins, subjects, refs))
}

/// The contract metadata of a model trained on features described by `refs`.
pub fn meta_for(name: &str, refs: Option<FeatureRefs>, source: String) -> FusionMeta {
    let (visual_model, audio_model, visual_input, audio_mask) = match refs {
        Some((v, a, i, m)) => (
            Some(v),
            Some(a),
            (!i.is_empty()).then_some(i),
            // The mask the model will be given is the one it was trained with.
            m.declared(),
        ),
        None => (None, None, None, None),
    };
    FusionMeta {
        name: name.to_owned(),
        window: 0,
        lookahead: 0,
        visual_dim: 0,
        audio_dim: 0,
        visual_input,
        audio_mask,
        visual_model,
        audio_model,
        source,
        license: "MPL-2.0".into(),
    }
}

/// Arguments of `affect-train fit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataArgs,
    /// Architecture.
    #[arg(long, value_enum, default_value = "attention")]
    model: ModelArg,
    /// Output folder (report.json, checkpoints, best.onnx).
    #[arg(long)]
    out: PathBuf,
    /// Continue from the last checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Maximum epochs.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Early stopping: epochs without a better validation metric (0 = off).
    #[arg(long, default_value_t = 5)]
    patience: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Gradient-norm clipping.
    #[arg(long, default_value_t = 0.8)]
    clip: f32,
    /// Seed (initialisation, shuffling).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Hidden size.
    #[arg(long, default_value_t = 256)]
    hidden: usize,
    /// Dropout.
    #[arg(long, default_value_t = 0.2)]
    dropout: f64,
    /// Transformer layers / TCN blocks (default: 6 / 2).
    #[arg(long)]
    layers: Option<usize>,
    /// Attention heads (tcn, transformer).
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Future frames the model may read (0: causal). The label of frame i is taught at
    /// step i + K of the window; the exported model declares
    /// `affect.fusion.lookahead-frames = K` and avfuse holds every frame until K later
    /// frames are in (K frame durations of added latency).
    #[arg(long = "lookahead-frames", default_value_t = 0)]
    lookahead_frames: usize,
    /// Label smoothing (expr).
    #[arg(long, default_value_t = 0.1)]
    smoothing: f32,
    /// Weight of the soft macro-F1 loss (expr).
    #[arg(long, default_value_t = 0.5)]
    f1_weight: f32,
    /// `affect.name` of the exported model (default: affect-<model>-<task>).
    #[arg(long)]
    name: Option<String>,
    /// Teacher: an exported fusion .onnx run (as `eval --mode stream` runs it) over the
    /// training subjects; its predictions become the labels of unlabelled frames that
    /// have a modality present (never of the validation set).
    #[arg(long, value_name = "TEACHER_ONNX")]
    pseudo_labels: Option<PathBuf>,
    /// Loss weight of a pseudo-labelled frame, in (0, 1] (real labels weigh 1).
    #[arg(long, default_value_t = 0.5, requires = "pseudo_labels")]
    pseudo_weight: f32,
    /// expr: minimum softmax probability of the teacher's class for a pseudo-label.
    #[arg(long, default_value_t = 0.9, requires = "pseudo_labels")]
    pseudo_min_confidence: f32,
    /// ONNX Runtime library for the teacher (else ORT_DYLIB_PATH or the cached wheel).
    #[arg(long, requires = "pseudo_labels")]
    ort_library: Option<PathBuf>,
}

/// Runs the teacher over `subjects` and pseudo-labels `train` (see
/// [`affect::train::fit::pseudo_label`]).
fn add_pseudo_labels(
    a: &Args,
    teacher: &Path,
    train: &mut SequenceSet,
    origins: &[WindowOrigin],
    subjects: &[Subject],
) -> Result<PseudoLabels, String> {
    let cfg = SessionConfig {
        ort_library: a.ort_library.clone(),
        ..Default::default()
    };
    let mut model = Model::load(teacher, Some(Role::Fusion), &cfg)
        .map_err(|e| format!("teacher {}: {e}", teacher.display()))?;
    let spec = crate::eval::fusion_spec(&model)?;
    crate::eval::check_features(&model, &spec, subjects)?;
    let total: usize = subjects.iter().map(Subject::frames).sum();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "pseudo-labels {bar:30} {pos}/{len} frames {per_sec} {eta}",
        )
        .map_err(|e| e.to_string())?,
    );
    let mut outputs = Vec::with_capacity(subjects.len());
    for s in subjects {
        let p = crate::eval::predict(
            &mut model,
            s,
            spec.window,
            crate::eval::Mode::Stream,
            256,
            &bar,
        )?;
        outputs.push(TeacherOutput {
            va: p.va,
            expr: p.expr,
        });
    }
    bar.finish_and_clear();
    let c = pseudo_label(
        train,
        origins,
        &outputs,
        a.data.task.into(),
        a.pseudo_weight,
        a.pseudo_min_confidence,
    )
    .map_err(|e| e.to_string())?;
    Ok(PseudoLabels {
        teacher: teacher.display().to_string(),
        weight: a.pseudo_weight,
        min_confidence: a.pseudo_min_confidence,
        candidates: c.candidates,
        frames: c.frames,
    })
}

/// Runs `affect-train fit`.
pub fn run(a: Args) -> Result<(), String> {
    let (mut train, origins, subjects, refs) = load_split_subjects(&a.data, Split::Train)?;
    let pseudo = match &a.pseudo_labels {
        Some(teacher) => {
            let p = add_pseudo_labels(&a, teacher, &mut train, &origins, &subjects)?;
            println!(
                "pseudo-labels from {}: {} of {} unlabelled frames with a modality (weight {})",
                p.teacher, p.frames, p.candidates, p.weight
            );
            Some(p)
        }
        None => None,
    };
    drop(subjects);
    let (val, _, val_subjects, _) = load_split_subjects(&a.data, Split::Validation)?;
    let kind = ModelKind::from(a.model);
    let mut spec = ModelSpec::seed(kind, train.dv, train.da);
    spec.hidden = a.hidden;
    spec.dropout = a.dropout;
    spec.window = a.data.window;
    spec.heads = a.heads;
    spec.lookahead = a.lookahead_frames;
    if let Some(l) = a.layers {
        spec.layers = l;
    }
    let task = TaskName::from(a.data.task);
    let cfg = FitConfig {
        lr: a.lr,
        clip: a.clip,
        batch: a.batch,
        epochs: a.epochs,
        patience: a.patience,
        seed: a.seed,
        smoothing: a.smoothing,
        f1_weight: a.f1_weight,
        pseudo_labels: pseudo,
        ..FitConfig::new(task, spec)
    };
    let task_s = match task {
        TaskName::Va => "va",
        TaskName::Expr => "expr",
    };
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("affect-{}-{task_s}", kind.name()));
    let meta = meta_for(
        &name,
        refs,
        format!(
            "affect-train {} fit --model {} --task {task_s} on {}",
            env!("CARGO_PKG_VERSION"),
            kind.name(),
            a.data.data.display()
        ),
    );
    println!(
        "training {} on {} sequences (validation {}), T={}, Dv={}, Da={}",
        kind.name(),
        train.n,
        val.n,
        train.t,
        train.dv,
        train.da
    );
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "epoch {msg} [{bar:30}] {pos}/{len} batches {elapsed}",
        )
        .map_err(|e| e.to_string())?,
    );
    let report = fit(
        &cfg,
        &train,
        &val,
        Some(&val_subjects),
        &a.out,
        &meta,
        a.resume,
        |epoch, b, n| {
            bar.set_length(n as u64);
            bar.set_message(format!("{epoch}/{}", cfg.epochs));
            bar.set_position(b as u64);
        },
    )
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    for e in &report.epochs {
        println!(
            "epoch {:3}: train loss {:.4}, validation loss {:.4}, {} {:.4} as avfuse streams it (chunks {}) ({:.1} s)",
            e.epoch,
            e.train_loss,
            e.val_loss,
            if task == TaskName::Va {
                "mean CCC"
            } else {
                "macro-F1"
            },
            e.metric,
            e.chunk_metric
                .map_or_else(|| "-".to_owned(), |m| format!("{m:.4}")),
            e.seconds
        );
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "best epoch {} ({} {:.4}, streamed as avfuse runs it); stopped: {}; exported {}",
        report.best_epoch,
        if task == TaskName::Va {
            "mean CCC"
        } else {
            "macro-F1"
        },
        report.best_metric,
        report.stopped,
        Path::new(&a.out).join("best.onnx").display()
    );
    Ok(())
}
