// SPDX-License-Identifier: MPL-2.0
//! `tcn`: multi-scale temporal convolution + cross-modal attention (after the ABAW8
//! entry). Each modality: Linear projection to `hidden`, then `blocks` residual blocks
//! whose branches are causal convolutions (kernel 3) with dilations 1, 2, 4 (summed,
//! ReLU, dropout, residual, LayerNorm). Cross-modal attention: visual queries, audio
//! keys/values (audio frames with mask 0 are not attended), causal. Head on
//! `[visual; cross]`: Linear–ReLU–Dropout, `va = tanh(Linear)`, `expr = Linear` (logits).
//!
//! Causal: frame t sees frames ≤ t only.

use burn::module::Module;
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{
    Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig1d,
};
use burn::tensor::activation::{relu, tanh};
use burn::tensor::{Device, Tensor};

use crate::onnx::GraphBuilder;
use crate::train::export::{self as ex, MhaMask};
use crate::train::model::{ExportNames, FusionNet, FusionOutput};

/// LayerNorm epsilon (burn's default; the export needs it explicitly).
const LN_EPS: f64 = 1e-5;
/// Dilations of the branches of a block.
pub const DILATIONS: [usize; 3] = [1, 2, 4];
/// Kernel size of every branch.
pub const KERNEL: usize = 3;

/// Sizes of a [`Tcn`].
#[derive(Debug, Clone, PartialEq)]
pub struct TcnConfig {
    /// Dv.
    pub visual_dim: usize,
    /// Da.
    pub audio_dim: usize,
    /// Hidden size (seed: 256).
    pub hidden: usize,
    /// Residual multi-scale blocks per modality.
    pub blocks: usize,
    /// Heads of the cross-modal attention.
    pub heads: usize,
    /// Dropout (seed: 0.2).
    pub dropout: f64,
}

impl TcnConfig {
    /// The seed's sizes: hidden 256, 2 blocks, 4 heads, dropout 0.2.
    pub fn new(visual_dim: usize, audio_dim: usize) -> Self {
        TcnConfig {
            visual_dim,
            audio_dim,
            hidden: 256,
            blocks: 2,
            heads: 4,
            dropout: 0.2,
        }
    }

    fn block(&self, device: &Device) -> TcnBlock {
        let h = self.hidden;
        TcnBlock {
            branches: DILATIONS
                .iter()
                .map(|&d| {
                    Conv1dConfig::new(h, h, KERNEL)
                        .with_dilation(d)
                        .with_padding(PaddingConfig1d::Explicit(d * (KERNEL - 1), 0))
                        .init(device)
                })
                .collect(),
            norm: LayerNormConfig::new(h).with_epsilon(LN_EPS).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }

    fn stream(&self, d_in: usize, device: &Device) -> TcnStream {
        TcnStream {
            input: LinearConfig::new(d_in, self.hidden).init(device),
            blocks: (0..self.blocks).map(|_| self.block(device)).collect(),
        }
    }

    /// A freshly initialised model on `device`.
    pub fn init(&self, device: &Device) -> Tcn {
        let h = self.hidden;
        Tcn {
            visual: self.stream(self.visual_dim, device),
            audio: self.stream(self.audio_dim, device),
            cross: MultiHeadAttentionConfig::new(h, self.heads)
                .with_dropout(self.dropout)
                .init(device),
            cross_norm: LayerNormConfig::new(h).with_epsilon(LN_EPS).init(device),
            hidden: LinearConfig::new(2 * h, h).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            va: LinearConfig::new(h, 2).init(device),
            expr: LinearConfig::new(h, 8).init(device),
        }
    }
}

/// One residual block of parallel dilated causal convolutions.
#[derive(Module, Debug)]
pub struct TcnBlock {
    branches: Vec<Conv1d>,
    norm: LayerNorm,
    dropout: Dropout,
}

impl TcnBlock {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let xt = x.clone().swap_dims(1, 2);
        let mut sum: Option<Tensor<3>> = None;
        for b in &self.branches {
            let y = b.forward(xt.clone());
            sum = Some(match sum {
                Some(s) => s + y,
                None => y,
            });
        }
        let y = match sum {
            Some(s) => relu(s.swap_dims(1, 2)),
            None => x.zeros_like(),
        };
        self.norm.forward(x + self.dropout.forward(y))
    }

    fn export(&self, g: &mut GraphBuilder, x: &str) -> String {
        let mut sum: Option<String> = None;
        for b in &self.branches {
            let y = ex::conv1d_time(g, b, x).unwrap_or_else(|e| unreachable!("{e}"));
            sum = Some(match sum {
                Some(s) => ex::add(g, &s, &y),
                None => y,
            });
        }
        let y = match sum {
            Some(s) => ex::relu(g, &s),
            None => ex::op(g, "Sub", &[x, x], &[]),
        };
        let r = ex::add(g, x, &y);
        ex::layer_norm(g, &self.norm, LN_EPS, &r)
    }
}

/// One modality's projection and blocks.
#[derive(Module, Debug)]
pub struct TcnStream {
    input: Linear,
    blocks: Vec<TcnBlock>,
}

impl TcnStream {
    fn forward(&self, x: Tensor<3>, mask: Tensor<2>) -> Tensor<3> {
        let mut h = self.input.forward(x * mask.unsqueeze_dim::<3>(2));
        for b in &self.blocks {
            h = b.forward(h);
        }
        h
    }

    fn export(&self, g: &mut GraphBuilder, x: &str, mask: &str) -> String {
        let x = ex::mask_time(g, x, mask);
        let mut h = ex::linear(g, &self.input, &x);
        for b in &self.blocks {
            h = b.export(g, &h);
        }
        h
    }
}

/// Multi-scale TCN per modality + cross-modal attention (see the module docs).
#[derive(Module, Debug)]
pub struct Tcn {
    visual: TcnStream,
    audio: TcnStream,
    cross: MultiHeadAttention,
    cross_norm: LayerNorm,
    hidden: Linear,
    dropout: Dropout,
    va: Linear,
    expr: Linear,
}

impl FusionNet for Tcn {
    fn forward(
        &self,
        visual: Tensor<3>,
        audio: Tensor<3>,
        visual_mask: Tensor<2>,
        audio_mask: Tensor<2>,
    ) -> FusionOutput {
        let [b, t, _] = visual.dims();
        let device = visual.device();
        let hv = self.visual.forward(visual, visual_mask);
        let ha = self.audio.forward(audio, audio_mask.clone());
        let input = MhaInput::new(hv.clone(), ha.clone(), ha)
            .mask_pad(ex::pad_mask(audio_mask))
            .mask_attn(ex::causal_mask(b, t, &device));
        let cross = self.cross.forward(input).context;
        let cross = self.cross_norm.forward(hv.clone() + cross);
        let h = Tensor::cat(vec![hv, cross], 2);
        let h = self.dropout.forward(relu(self.hidden.forward(h)));
        FusionOutput {
            va: tanh(self.va.forward(h.clone())),
            expr: self.expr.forward(h),
            aux_loss: None,
        }
    }

    fn export(&self, g: &mut GraphBuilder, n: &ExportNames) -> (String, String) {
        let hv = self.visual.export(g, &n.visual, &n.visual_mask);
        let ha = self.audio.export(g, &n.audio, &n.audio_mask);
        let mask = MhaMask {
            key_mask: Some(&n.audio_mask),
            causal: true,
        };
        let cross = ex::mha(g, &self.cross, &hv, &ha, &ha, mask, n.t, n.t);
        let r = ex::add(g, &hv, &cross);
        let cross = ex::layer_norm(g, &self.cross_norm, LN_EPS, &r);
        let h = ex::concat(g, &[&hv, &cross], 2);
        let h = ex::linear(g, &self.hidden, &h);
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

    fn small() -> Tcn {
        let d = crate::train::train_device();
        d.seed(11);
        TcnConfig {
            hidden: 32,
            blocks: 1,
            heads: 2,
            dropout: 0.1,
            ..TcnConfig::new(16, 12)
        }
        .init(&d)
    }

    #[test]
    fn export_matches_burn_forward() {
        let _rng = crate::train::models::testing::rng_lock();
        let m = small().valid();
        assert_export_parity("tcn", &m, 3, 32, 16, 12);
    }

    #[test]
    fn learns_synth() {
        let _rng = crate::train::models::testing::rng_lock();
        let (tr, val) = sequences(&SynthConfig::default(), 32, 8, 128, 32);
        let m = assert_learns("tcn", small(), &tr, &val, EPOCHS, 3e-3);
        // Trained weights still export exactly.
        assert_export_parity("tcn trained", &m.valid(), 2, 32, 16, 12);
    }

    const EPOCHS: usize = 60;
}
