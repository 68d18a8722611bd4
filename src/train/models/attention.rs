// SPDX-License-Identifier: MPL-2.0
//! `attention`: the seed baseline. Per-modality projection (a causal temporal
//! convolution over the last `context` frames, then ReLU), attention fusion over the two
//! modalities per frame (scores from `tanh(p)`, a missing modality gets no weight), and
//! a shared head: `va = tanh(Linear)`, `expr = Linear` (logits).
//!
//! Causal: frame t sees frames t − context + 1 … t only.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::activation::{relu, softmax, tanh};
use burn::tensor::{Device, Tensor};

use crate::onnx::GraphBuilder;
use crate::train::export as ex;
use crate::train::model::{ExportNames, FusionNet, FusionOutput};

/// Score given to a missing modality before the softmax (burn's attention `min_float`).
const MISSING_SCORE: f32 = -1.0e4;

/// Sizes of an [`AttentionFusion`].
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionConfig {
    /// Dv.
    pub visual_dim: usize,
    /// Da.
    pub audio_dim: usize,
    /// Hidden size (seed: 256).
    pub hidden: usize,
    /// Frames each projection sees (causal kernel size).
    pub context: usize,
    /// Dropout (seed: 0.2).
    pub dropout: f64,
}

impl AttentionConfig {
    /// The seed's sizes: hidden 256, context 5 frames, dropout 0.2.
    pub fn new(visual_dim: usize, audio_dim: usize) -> Self {
        AttentionConfig {
            visual_dim,
            audio_dim,
            hidden: 256,
            context: 5,
            dropout: 0.2,
        }
    }

    /// A freshly initialised model on `device`.
    pub fn init(&self, device: &Device) -> AttentionFusion {
        let h = self.hidden;
        let k = self.context.max(1);
        let conv = |d: usize| {
            Conv1dConfig::new(d, h, k)
                .with_padding(PaddingConfig1d::Explicit(k - 1, 0))
                .init(device)
        };
        AttentionFusion {
            proj_v: conv(self.visual_dim),
            proj_a: conv(self.audio_dim),
            score: LinearConfig::new(h, 1).init(device),
            hidden: LinearConfig::new(h, h).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            va: LinearConfig::new(h, 2).init(device),
            expr: LinearConfig::new(h, 8).init(device),
        }
    }
}

/// Per-modality projection + attention fusion over modalities (see the module docs).
#[derive(Module, Debug)]
pub struct AttentionFusion {
    proj_v: Conv1d,
    proj_a: Conv1d,
    score: Linear,
    hidden: Linear,
    dropout: Dropout,
    va: Linear,
    expr: Linear,
}

impl AttentionFusion {
    fn project(conv: &Conv1d, x: Tensor<3>, mask: Tensor<2>) -> Tensor<3> {
        let x = x * mask.unsqueeze_dim::<3>(2);
        relu(conv.forward(x.swap_dims(1, 2)).swap_dims(1, 2))
    }
}

impl FusionNet for AttentionFusion {
    fn forward(
        &self,
        visual: Tensor<3>,
        audio: Tensor<3>,
        visual_mask: Tensor<2>,
        audio_mask: Tensor<2>,
    ) -> FusionOutput {
        let pv = Self::project(&self.proj_v, visual, visual_mask.clone());
        let pa = Self::project(&self.proj_a, audio, audio_mask.clone());
        let sv = self.score.forward(tanh(pv.clone()));
        let sa = self.score.forward(tanh(pa.clone()));
        let s = Tensor::cat(vec![sv, sa], 2); // [B,T,2]
        let m = Tensor::stack::<3>(vec![visual_mask, audio_mask], 2);
        let s = s.mask_fill(m.lower_elem(0.5), MISSING_SCORE);
        let w = softmax(s, 2);
        let fused = pv * w.clone().narrow(2, 0, 1) + pa * w.narrow(2, 1, 1);
        let h = self.dropout.forward(relu(self.hidden.forward(fused)));
        FusionOutput {
            va: tanh(self.va.forward(h.clone())),
            expr: self.expr.forward(h),
            aux_loss: None,
        }
    }

    fn export(&self, g: &mut GraphBuilder, n: &ExportNames) -> (String, String) {
        let project = |g: &mut GraphBuilder, conv: &Conv1d, x: &str, m: &str| {
            let x = ex::mask_time(g, x, m);
            // Explicit causal padding: always exportable.
            let y = ex::conv1d_time(g, conv, &x).unwrap_or_else(|e| unreachable!("{e}"));
            ex::relu(g, &y)
        };
        let pv = project(g, &self.proj_v, &n.visual, &n.visual_mask);
        let pa = project(g, &self.proj_a, &n.audio, &n.audio_mask);
        let tv = ex::tanh(g, &pv);
        let sv = ex::linear(g, &self.score, &tv);
        let ta = ex::tanh(g, &pa);
        let sa = ex::linear(g, &self.score, &ta);
        let s = ex::concat(g, &[&sv, &sa], 2);
        let vm = ex::unsqueeze(g, &n.visual_mask, &[-1]);
        let am = ex::unsqueeze(g, &n.audio_mask, &[-1]);
        let m = ex::concat(g, &[&vm, &am], 2);
        let s = ex::fill_missing(g, &s, &m, MISSING_SCORE);
        let w = ex::softmax(g, &s, 2);
        let wv = ex::slice_last(g, &w, 0, 1);
        let wa = ex::slice_last(g, &w, 1, 2);
        let fv = ex::mul(g, &pv, &wv);
        let fa = ex::mul(g, &pa, &wa);
        let fused = ex::add(g, &fv, &fa);
        let h = ex::linear(g, &self.hidden, &fused);
        let h = ex::relu(g, &h);
        let va = ex::linear(g, &self.va, &h);
        let va = ex::tanh(g, &va);
        let expr = ex::linear(g, &self.expr, &h);
        (va, expr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, sequences};
    use crate::train::models::testing::{assert_export_parity, assert_learns};

    fn small() -> AttentionFusion {
        let d = crate::train::train_device();
        d.seed(11);
        AttentionConfig {
            hidden: 32,
            dropout: 0.1,
            ..AttentionConfig::new(16, 12)
        }
        .init(&d)
    }

    #[test]
    fn export_matches_burn_forward() {
        let _rng = crate::train::models::testing::rng_lock();
        let m = small().valid();
        assert_export_parity("attention", &m, 3, 32, 16, 12);
    }

    #[test]
    fn learns_synth() {
        let _rng = crate::train::models::testing::rng_lock();
        let (tr, val) = sequences(&SynthConfig::default(), 32, 8, 128, 32);
        let m = assert_learns("attention", small(), &tr, &val, EPOCHS, 3e-3);
        // Trained weights still export exactly.
        assert_export_parity("attention trained", &m.valid(), 2, 32, 16, 12);
    }

    const EPOCHS: usize = 60;
}
