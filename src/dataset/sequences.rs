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
/// (`visual` \[n, t, dv\], `audio` \[n, t, da\], masks \[n, t\]).
///
/// Labels: `va` \[n, t, 2\] with `va_valid` \[n, t\] (0 = invalid frame, -5 in the annotation
/// file), `expr` \[n, t\] class indices with -1 for invalid frames. A set built for one task
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
    /// Visual features, \[n, t, dv\].
    pub visual: Vec<f32>,
    /// Audio features, \[n, t, da\].
    pub audio: Vec<f32>,
    /// 1 where a face vector is present, else 0; \[n, t\].
    pub visual_mask: Vec<f32>,
    /// 1 where an audio vector is present, else 0; \[n, t\].
    pub audio_mask: Vec<f32>,
    /// Valence, arousal per frame; \[n, t, 2\].
    pub va: Vec<f32>,
    /// Weight of the `va` label: 1 for a real label, 0 for an invalid frame, in (0, 1) for a
    /// pseudo-label; \[n, t\].
    pub va_valid: Vec<f32>,
    /// Expression class per frame, -1 = invalid; \[n, t\].
    pub expr: Vec<i64>,
    /// Weight of the `expr` label of each frame (\[n, t\]), read only where `expr` is a class;
    /// empty = 1 everywhere (real labels). Pseudo-labels weigh less.
    pub expr_weight: Vec<f32>,
}

impl SequenceSet {
    /// The same sequences with every label moved `k` frames later in its window: step `p`
    /// carries the label of frame `p - k`, the first `k` steps none. A causal model trained
    /// on this sees `k` frames past the frame it answers for — the context it gets when
    /// streamed with `affect.fusion.lookahead-frames = k` (the newest step of a window
    /// ending at frame `i + k` is the result for frame `i`).
    pub fn delay_labels(&self, k: usize) -> SequenceSet {
        let mut out = self.clone();
        if k == 0 {
            return out;
        }
        let t = self.t;
        for i in 0..self.n {
            for p in 0..t {
                let g = i * t + p;
                match p.checked_sub(k) {
                    Some(q) => {
                        let src = i * t + q;
                        out.va[2 * g] = self.va[2 * src];
                        out.va[2 * g + 1] = self.va[2 * src + 1];
                        out.va_valid[g] = self.va_valid[src];
                        out.expr[g] = self.expr[src];
                        if !self.expr_weight.is_empty() {
                            out.expr_weight[g] = self.expr_weight[src];
                        }
                    }
                    None => {
                        out.va[2 * g] = 0.0;
                        out.va[2 * g + 1] = 0.0;
                        out.va_valid[g] = 0.0;
                        out.expr[g] = crate::metrics::EXPR_INVALID;
                        if !self.expr_weight.is_empty() {
                            out.expr_weight[g] = 0.0;
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delayed_labels_move_k_steps_later_within_each_window() {
        let set = SequenceSet {
            n: 2,
            t: 4,
            dv: 1,
            da: 1,
            visual: vec![0.0; 8],
            audio: vec![0.0; 8],
            visual_mask: vec![1.0; 8],
            audio_mask: vec![1.0; 8],
            va: (0..16).map(|v| v as f32).collect(),
            va_valid: vec![1.0, 1.0, 0.0, 1.0, 1.0, 0.5, 1.0, 1.0],
            expr: vec![0, 1, 2, 3, 4, 5, 6, 7],
            expr_weight: Vec::new(),
        };
        assert_eq!(set.delay_labels(0), set);
        let d = set.delay_labels(1);
        assert_eq!(d.expr, vec![-1, 0, 1, 2, -1, 4, 5, 6]);
        assert_eq!(d.va_valid, vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.5, 1.0]);
        assert_eq!(&d.va[2..4], &[0.0, 1.0]);
        assert_eq!(&d.va[10..12], &[8.0, 9.0]);
        assert_eq!(d.visual_mask, set.visual_mask, "inputs untouched");
        let d3 = set.delay_labels(3);
        assert_eq!(d3.expr, vec![-1, -1, -1, 0, -1, -1, -1, 4]);
    }
}
