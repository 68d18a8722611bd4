// SPDX-License-Identifier: MPL-2.0
//! What a training run is configured with and what it reports (`report.json`):
//! [`FitConfig`], [`EpochReport`], [`FitReport`]. Read by the training loop
//! ([`crate::train::fit`]) and the curves ([`crate::train::curves`]), neither of which the
//! other needs for these.

use serde::{Deserialize, Serialize};

use crate::dataset::Task;
use crate::train::models::ModelSpec;

/// Hyper-parameters of a run (seed defaults in [`FitConfig::new`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// `va` (CCC loss, metric mean CCC) or `expr` (cross-entropy + soft F1, macro-F1).
    pub task: TaskName,
    /// The model.
    pub spec: ModelSpec,
    /// AdamW learning rate (seed 1e-3).
    pub lr: f64,
    /// Gradient-norm clipping (seed 0.8).
    pub clip: f32,
    /// Sequences per batch (seed 16).
    pub batch: usize,
    /// Maximum epochs.
    pub epochs: usize,
    /// Stop after this many epochs without a better validation metric (0 = never).
    pub patience: usize,
    /// Seed of the initialisation and the shuffling.
    pub seed: u64,
    /// Label smoothing of the cross-entropy (expr).
    pub smoothing: f32,
    /// Weight of the soft macro-F1 loss added to the cross-entropy (expr).
    pub f1_weight: f32,
    /// The pseudo-labels added to the training set, if any (informational: set by the
    /// caller after [`pseudo_label`](crate::train::fit::pseudo_label); reported in `report.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudo_labels: Option<PseudoLabels>,
}

/// Pseudo-labels of a training set (`affect-train fit --pseudo-labels`): what the teacher
/// was, how its labels were weighted, and how many frames got one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PseudoLabels {
    /// The teacher model (an exported fusion `.onnx`).
    pub teacher: String,
    /// Loss weight of a pseudo-labelled frame (a real label weighs 1).
    pub weight: f32,
    /// expr: minimum softmax probability of the teacher's class for a pseudo-label.
    pub min_confidence: f32,
    /// Frames of the training sequences without a label but with a modality present.
    pub candidates: usize,
    /// Of those, the frames that got a pseudo-label.
    pub frames: usize,
}

/// [`Task`] in a serialisable form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskName {
    /// Valence/arousal.
    Va,
    /// Expressions.
    Expr,
}

impl From<TaskName> for Task {
    fn from(t: TaskName) -> Task {
        match t {
            TaskName::Va => Task::Va,
            TaskName::Expr => Task::Expr,
        }
    }
}

impl FitConfig {
    /// Seed defaults: lr 1e-3, clipping 0.8, batch 16, 30 epochs, patience 5, seed 0,
    /// smoothing 0.1, soft-F1 weight 0.5.
    pub fn new(task: TaskName, spec: ModelSpec) -> Self {
        FitConfig {
            task,
            spec,
            lr: 1e-3,
            clip: 0.8,
            batch: 16,
            epochs: 30,
            patience: 5,
            seed: 0,
            smoothing: 0.1,
            f1_weight: 0.5,
            pseudo_labels: None,
        }
    }
}

/// One epoch of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss over the batches.
    pub train_loss: f64,
    /// Validation loss (the training loss without the model's auxiliary loss, inference
    /// mode, averaged over batches).
    pub val_loss: f64,
    /// The early-stopping and selection metric, mean CCC (va) or macro-F1 (expr), of the
    /// model as `avfuse` runs it when the validation subjects were given
    /// (`validation = "stream"`: one window ending at each frame, read at its newest
    /// step), else of the chunks.
    pub metric: f64,
    /// Validation CCC of valence / arousal (va) behind `metric`, else `None`.
    pub ccc: Option<[f64; 2]>,
    /// Validation macro-F1 (expr) behind `metric`, else `None`.
    pub f1: Option<f64>,
    /// The same metric on non-overlapping chunks with every step read: what training
    /// windows see, not what avfuse delivers (frames inside a chunk of a non-causal model
    /// see their future). Kept beside `metric` for comparison.
    #[serde(default)]
    pub chunk_metric: Option<f64>,
    /// Learning rate used.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training + validation).
    pub seconds: f64,
}

/// `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// The configuration.
    pub config: FitConfig,
    /// Every epoch so far.
    pub epochs: Vec<EpochReport>,
    /// 1-based best epoch (0 = none yet).
    pub best_epoch: usize,
    /// Its metric.
    pub best_metric: f64,
    /// Why training stopped (`epochs`, `early-stopping`, or empty while running).
    pub stopped: String,
    /// How `metric` was measured: `stream` (as avfuse runs the model) or `chunk`.
    #[serde(default)]
    pub validation: String,
    /// Problems that did not stop training (e.g. `curves.png` could not be drawn).
    #[serde(default)]
    pub warnings: Vec<String>,
}
