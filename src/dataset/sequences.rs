// SPDX-License-Identifier: MPL-2.0
//! Fixed-length training sequences: what the fusion models are trained and evaluated on.

/// Which labels a model learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Valence and arousal in [-1, 1] (CCC loss).
    Va,
    /// The 8 Aff-Wild2 expression classes ([`crate::EXPRESSIONS`] order).
    Expr,
}

/// `n` sequences of `t` frames, row-major, ready to become tensors
/// (`visual` [n, t, dv], `audio` [n, t, da], masks [n, t]).
///
/// Labels: `va` [n, t, 2] with `va_valid` [n, t] (0 = invalid frame, -5 in the annotation
/// file), `expr` [n, t] class indices with -1 for invalid frames. A set built for one task
/// may leave the other task's labels all-invalid.
///
/// Label weights: the training losses use `va_valid` and `expr_weight` as per-frame
/// weights, 1 for a real label; pseudo-labels (`affect-train fit --pseudo-labels`,
/// `train::fit::pseudo_label`) weigh less, in (0, 1].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SequenceSet {
    /// Number of sequences.
    pub n: usize,
    /// Frames per sequence.
    pub t: usize,
    /// Visual feature dimension.
    pub dv: usize,
    /// Audio feature dimension.
    pub da: usize,
    /// Visual features, [n, t, dv].
    pub visual: Vec<f32>,
    /// Audio features, [n, t, da].
    pub audio: Vec<f32>,
    /// 1 where a face vector is present, else 0; [n, t].
    pub visual_mask: Vec<f32>,
    /// 1 where an audio vector is present, else 0; [n, t].
    pub audio_mask: Vec<f32>,
    /// Valence, arousal per frame; [n, t, 2].
    pub va: Vec<f32>,
    /// Weight of the `va` label: 1 for a real label, 0 for an invalid frame, in (0, 1) for a
    /// pseudo-label; [n, t].
    pub va_valid: Vec<f32>,
    /// Expression class per frame, -1 = invalid; [n, t].
    pub expr: Vec<i64>,
    /// Weight of the `expr` label of each frame ([n, t]), read only where `expr` is a class;
    /// empty = 1 everywhere (real labels). Pseudo-labels weigh less.
    pub expr_weight: Vec<f32>,
}
