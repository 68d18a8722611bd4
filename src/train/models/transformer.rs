// SPDX-License-Identifier: MPL-2.0
//! `transformer`: a pre-norm Transformer encoder over the window (seed: 6 layers,
//! sequence 64), meant for expressions. Input per frame: `[visual·vm; audio·am; vm; am]`
//! → a causal temporal convolution (kernel 3: frames t−2…t) to `hidden` + a learned
//! position embedding (one per frame of the window).
//! Each layer: `x += MHA(LN(x))` (causal; frames with both modalities missing are not
//! attended),
//! `x += Linear(GELU(Linear(LN(x))))`. Final LN, `va = tanh(Linear)`, `expr = Linear`.
//!
//! Causal: frame t sees frames ≤ t only, as every model here, so that what it learns on
//! training windows is what it can do when streamed (one window ending at each frame,
//! read at its newest step). Future context is a declared choice instead:
//! `--lookahead-frames K` delays the labels by K steps (see
//! [`crate::train::models::ModelSpec::lookahead`]). The seed's encoder was bidirectional
//! within its window; streamed, its frames saw no future at all, so its chunk-validation
//! score overstated what it delivers.

use burn::module::{Module, Param};
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{
    Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig1d,
};
use burn::tensor::activation::{gelu, tanh};
use burn::tensor::{Device, Distribution, Tensor};

use crate::onnx::GraphBuilder;
use crate::train::export::{self as ex, MhaMask};
use crate::train::model::{ExportNames, FusionNet, FusionOutput};

const LN_EPS: f64 = 1e-5;

/// Sizes of a [`Transformer`].
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerConfig {
    /// Dv.
    pub visual_dim: usize,
    /// Da.
    pub audio_dim: usize,
    /// Model width (seed: 256).
    pub hidden: usize,
    /// Encoder layers (seed: 6).
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
    /// Window T the position embedding covers (seed: 64); the model runs on exactly T.
    pub window: usize,
    /// Dropout (seed: 0.2).
    pub dropout: f64,
}

impl TransformerConfig {
    /// The seed's sizes: hidden 256, 6 layers, 4 heads, window 64, dropout 0.2.
    pub fn new(visual_dim: usize, audio_dim: usize) -> Self {
        TransformerConfig {
            visual_dim,
            audio_dim,
            hidden: 256,
            layers: 6,
            heads: 4,
            window: 64,
            dropout: 0.2,
        }
    }

    /// A freshly initialised model on `device`.
    pub fn init(&self, device: &Device) -> Transformer {
        let h = self.hidden;
        let layer = || EncoderLayer {
            norm1: LayerNormConfig::new(h).with_epsilon(LN_EPS).init(device),
            attn: MultiHeadAttentionConfig::new(h, self.heads)
                .with_dropout(self.dropout)
                .init(device),
            norm2: LayerNormConfig::new(h).with_epsilon(LN_EPS).init(device),
            ff1: LinearConfig::new(h, 2 * h).init(device),
            ff2: LinearConfig::new(2 * h, h).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        };
        Transformer {
            input: Conv1dConfig::new(self.visual_dim + self.audio_dim + 2, h, 3)
                .with_padding(PaddingConfig1d::Explicit(2, 0))
                .init(device),
            position: Param::from_tensor(Tensor::random(
                [self.window, h],
                Distribution::Normal(0.0, 0.02),
                device,
            )),
            layers: (0..self.layers).map(|_| layer()).collect(),
            norm: LayerNormConfig::new(h).with_epsilon(LN_EPS).init(device),
            va: LinearConfig::new(h, 2).init(device),
            expr: LinearConfig::new(h, 8).init(device),
        }
    }
}

/// One pre-norm encoder layer.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    norm1: LayerNorm,
    attn: MultiHeadAttention,
    norm2: LayerNorm,
    ff1: Linear,
    ff2: Linear,
    dropout: Dropout,
}

/// The encoder (see the module docs).
#[derive(Module, Debug)]
pub struct Transformer {
    input: Conv1d,
    position: Param<Tensor<2>>,
    layers: Vec<EncoderLayer>,
    norm: LayerNorm,
    va: Linear,
    expr: Linear,
}

impl FusionNet for Transformer {
    fn forward(
        &self,
        visual: Tensor<3>,
        audio: Tensor<3>,
        visual_mask: Tensor<2>,
        audio_mask: Tensor<2>,
    ) -> FusionOutput {
        let [b, t, _] = visual.dims();
        let device = visual.device();
        let vm = visual_mask.clone().unsqueeze_dim::<3>(2);
        let am = audio_mask.clone().unsqueeze_dim::<3>(2);
        let x = Tensor::cat(vec![visual * vm.clone(), audio * am.clone(), vm, am], 2);
        let [w, h] = self.position.dims();
        let pos = self
            .position
            .val()
            .narrow(0, 0, t.min(w))
            .reshape([1, t.min(w), h]);
        let mut x = self.input.forward(x.swap_dims(1, 2)).swap_dims(1, 2) + pos;
        // A frame is attended when at least one modality is present.
        let present = (visual_mask + audio_mask).clamp_max(1.0);
        for l in &self.layers {
            let y = l.norm1.forward(x.clone());
            let y = l
                .attn
                .forward(
                    MhaInput::self_attn(y)
                        .mask_pad(ex::pad_mask(present.clone()))
                        .mask_attn(ex::causal_mask(b, t, &device)),
                )
                .context;
            x = x + l.dropout.forward(y);
            let y = l
                .ff2
                .forward(gelu(l.ff1.forward(l.norm2.forward(x.clone()))));
            x = x + l.dropout.forward(y);
        }
        let x = self.norm.forward(x);
        FusionOutput {
            va: tanh(self.va.forward(x.clone())),
            expr: self.expr.forward(x),
            aux_loss: None,
        }
    }

    fn export(&self, g: &mut GraphBuilder, n: &ExportNames) -> (String, String) {
        let vm = ex::unsqueeze(g, &n.visual_mask, &[-1]);
        let am = ex::unsqueeze(g, &n.audio_mask, &[-1]);
        let v = ex::mul(g, &n.visual, &vm);
        let a = ex::mul(g, &n.audio, &am);
        let x = ex::concat(g, &[&v, &a, &vm, &am], 2);
        // Explicit padding: always exportable.
        let x = ex::conv1d_time(g, &self.input, &x).unwrap_or_else(|e| unreachable!("{e}"));
        let [w, _] = self.position.dims();
        let pos = ex::tensor(g, "position", self.position.val().narrow(0, 0, n.t.min(w)));
        let mut x = ex::add(g, &x, &pos);
        let sum = ex::add(g, &n.visual_mask, &n.audio_mask);
        let one = ex::scalar(g, 1.0);
        let present = ex::op(g, "Min", &[&sum, &one], &[]);
        for l in &self.layers {
            let y = ex::layer_norm(g, &l.norm1, LN_EPS, &x);
            let mask = MhaMask {
                key_mask: Some(&present),
                causal: true,
            };
            let y = ex::mha(g, &l.attn, &y, &y, &y, mask, n.t, n.t);
            x = ex::add(g, &x, &y);
            let y = ex::layer_norm(g, &l.norm2, LN_EPS, &x);
            let y = ex::linear(g, &l.ff1, &y);
            let y = ex::gelu(g, &y);
            let y = ex::linear(g, &l.ff2, &y);
            x = ex::add(g, &x, &y);
        }
        let x = ex::layer_norm(g, &self.norm, LN_EPS, &x);
        let va = ex::linear(g, &self.va, &x);
        let va = ex::tanh(g, &va);
        let expr = ex::linear(g, &self.expr, &x);
        (va, expr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, sequences};
    use crate::train::models::testing::{assert_export_parity, assert_learns};

    fn small() -> Transformer {
        let d = crate::train::train_device();
        d.seed(11);
        TransformerConfig {
            hidden: 32,
            layers: 2,
            heads: 2,
            window: 32,
            dropout: 0.1,
            ..TransformerConfig::new(16, 12)
        }
        .init(&d)
    }

    #[test]
    fn export_matches_burn_forward() {
        let _rng = crate::train::models::testing::rng_lock();
        let m = small().valid();
        assert_export_parity("transformer", &m, 3, 32, 16, 12);
    }

    #[test]
    fn learns_synth() {
        let _rng = crate::train::models::testing::rng_lock();
        let (tr, val) = sequences(&SynthConfig::default(), 32, 8, 128, 32);
        let m = assert_learns("transformer", small(), &tr, &val, EPOCHS, 3e-3);
        // Trained weights still export exactly.
        assert_export_parity("transformer trained", &m.valid(), 2, 32, 16, 12);
    }

    const EPOCHS: usize = 60;
}
