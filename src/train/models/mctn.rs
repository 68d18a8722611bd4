// SPDX-License-Identifier: MPL-2.0
//! Multimodal Cyclic Translation Network (Pham et al., "Found in Translation: Learning
//! Robust Joint Representations by Cyclic Translations Between Modalities", AAAI 2019),
//! per-frame.
//!
//! - Encoder: visual features → modality embedding (Linear `Dv → H`) → LSTM; its hidden
//!   states are the joint representation `e_t`. A missing visual frame (mask 0) is zeroed
//!   and leaves the encoder's state unchanged.
//! - Translation (training only): a decoder LSTM over `e` and a Linear `H → Da` translate
//!   to audio features `â`; the cycle embeds `â` (Linear `Da → H`), runs the *same*
//!   encoder and decoder and maps back to visual (`H → Dv`): `v̂`. Losses: masked mean
//!   squared error `‖â − a‖²` on frames with both modalities and `‖v̂ − v‖²` on visual
//!   frames, weighted and returned as [`FusionOutput::aux_loss`].
//! - Regressor: an LSTM over `e`, Linear–ReLU–Dropout, `va = tanh(Linear)`,
//!   `expr = Linear` (logits).
//!
//! Frames are aligned across modalities, so the decoder translates frame by frame (one
//! decoder step per frame) instead of the paper's sequence-to-sequence decoding of a whole
//! utterance. Inference reads only `visual` and `visual_mask` — MCTN's point is a joint
//! representation that needs no audio at test time; the export writes only this path.
//! Causal: frame t sees frames ≤ t.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::lstm::{Lstm, no_frames, stack_steps};
use crate::onnx::GraphBuilder;
use crate::train::export as ex;
use crate::train::model::{ExportNames, FusionNet, FusionOutput};

/// Sizes and loss weights of an [`Mctn`].
#[derive(Debug, Clone, PartialEq)]
pub struct MctnConfig {
    /// Dv, the visual feature size.
    pub visual_dim: usize,
    /// Da, the audio feature size.
    pub audio_dim: usize,
    /// Hidden size of the encoder, decoder and regressor.
    pub hidden: usize,
    /// Dropout probability before the regressor and in its output layer (training only).
    pub dropout: f64,
    /// Weight of the visual → audio translation loss.
    pub translation_weight: f64,
    /// Weight of the audio → visual cycle loss.
    pub cycle_weight: f64,
}

impl MctnConfig {
    /// The seed's sizes (hidden 256, dropout 0.2) and loss weights 0.5 / 0.5.
    pub fn new(visual_dim: usize, audio_dim: usize) -> Self {
        MctnConfig {
            visual_dim,
            audio_dim,
            hidden: 256,
            dropout: 0.2,
            translation_weight: 0.5,
            cycle_weight: 0.5,
        }
    }

    /// A freshly initialised model on `device`.
    pub fn init(&self, device: &Device) -> Mctn {
        let h = self.hidden;
        let lin = |i, o| LinearConfig::new(i, o).init(device);
        Mctn {
            embed_v: lin(self.visual_dim, h),
            embed_a: lin(self.audio_dim, h),
            encoder: Lstm::new(h, h, device),
            decoder: Lstm::new(h, h, device),
            to_audio: lin(h, self.audio_dim),
            to_visual: lin(h, self.visual_dim),
            regressor: Lstm::new(h, h, device),
            head: lin(h, h),
            va: lin(h, 2),
            expr: lin(h, crate::EXPRESSIONS.len()),
            dropout: DropoutConfig::new(self.dropout).init(),
            translation_weight: self.translation_weight,
            cycle_weight: self.cycle_weight,
        }
    }
}

/// The Multimodal Cyclic Translation Network; see the module documentation.
#[derive(Module, Debug)]
pub struct Mctn {
    /// Visual embedding `Dv → H` (encoder input).
    pub embed_v: Linear,
    /// Audio embedding `Da → H` (encoder input on the cycle).
    pub embed_a: Linear,
    /// Shared encoder; its hidden states are the joint representation.
    pub encoder: Lstm,
    /// Shared decoder.
    pub decoder: Lstm,
    /// Decoder output → audio features.
    pub to_audio: Linear,
    /// Decoder output → visual features (cycle).
    pub to_visual: Linear,
    /// Regressor LSTM over the joint representation.
    pub regressor: Lstm,
    /// Output layer `H → H`.
    pub head: Linear,
    /// Valence/arousal `H → 2` (tanh).
    pub va: Linear,
    /// Expression logits `H → 8`.
    pub expr: Linear,
    /// Dropout (training only).
    pub dropout: Dropout,
    /// Weight of the translation loss.
    pub translation_weight: f64,
    /// Weight of the cycle loss.
    pub cycle_weight: f64,
}

/// Mean over frames with `mask` > 0 of the per-frame mean squared error; 0 when no frame
/// counts. `x`, `y` `[B,T,D]`, `mask` `[B,T]`.
pub fn masked_mse(x: Tensor<3>, y: Tensor<3>, mask: Tensor<2>) -> Tensor<1> {
    let per_frame: Tensor<2> = (x - y).square().mean_dim(2).squeeze_dim(2);
    let n = mask.clone().sum().clamp_min(1.0);
    (per_frame * mask).sum() / n
}

impl Mctn {
    /// The weighted translation + cycle loss for the joint representation `e` `[B,T,H]`.
    fn translation_loss(
        &self,
        e: Tensor<3>,
        visual: Tensor<3>,
        audio: Tensor<3>,
        visual_mask: Tensor<2>,
        audio_mask: Tensor<2>,
    ) -> Tensor<1> {
        let decode = |x: Tensor<3>| self.decoder.forward_hidden(x, None);
        let a_hat = self.to_audio.forward(decode(e));
        let e_a = self.encoder.forward_hidden(
            self.embed_a.forward(a_hat.clone()),
            Some(visual_mask.clone()),
        );
        let v_hat = self.to_visual.forward(decode(e_a));
        let both = visual_mask.clone() * audio_mask;
        let translation = masked_mse(a_hat, audio, both);
        let cycle = masked_mse(v_hat, visual, visual_mask);
        translation * self.translation_weight + cycle * self.cycle_weight
    }
}

impl FusionNet for Mctn {
    fn forward(
        &self,
        visual: Tensor<3>,
        audio: Tensor<3>,
        visual_mask: Tensor<2>,
        audio_mask: Tensor<2>,
    ) -> FusionOutput {
        let [b, t, _] = visual.dims();
        let device = visual.device();
        if t == 0 {
            return no_frames(b, &device);
        }
        let visual = visual * visual_mask.clone().unsqueeze_dim::<3>(2);
        // The joint representation.
        let e = self.encoder.forward_hidden(
            self.embed_v.forward(visual.clone()),
            Some(visual_mask.clone()),
        );
        // The translation branch only trains the representation: skip it where no
        // gradient can flow (inference, or a model in `valid()` mode).
        let training = self.dropout.training.is_enabled() && device.is_autodiff();
        let aux_loss = training
            .then(|| self.translation_loss(e.clone(), visual, audio, visual_mask, audio_mask));
        let r = self.regressor.forward_hidden(self.dropout.forward(e), None);
        let hid = self.dropout.forward(relu(self.head.forward(r)));
        FusionOutput {
            va: self.va.forward(hid.clone()).tanh(),
            expr: self.expr.forward(hid),
            aux_loss,
        }
    }

    fn export(&self, g: &mut GraphBuilder, names: &ExportNames) -> (String, String) {
        let t = names.t;
        let h = self.encoder.hidden;
        let vm = ex::unsqueeze(g, &names.visual_mask, &[2]);
        let visual = ex::mul(g, &names.visual, &vm);
        let x = ex::linear(g, &self.embed_v, &visual);
        let (e, _) = self.encoder.export(g, &x, Some(&vm), t);
        let e = stack_steps(g, &e, h);
        let (r, _) = self.regressor.export(g, &e, None, t);
        let r = stack_steps(g, &r, h);
        let hid = ex::linear(g, &self.head, &r);
        let hid = ex::relu(g, &hid);
        let va = ex::linear(g, &self.va, &hid);
        let va = ex::tanh(g, &va);
        let expr = ex::linear(g, &self.expr, &hid);
        (va, expr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, sequences};
    use crate::train::models::testing::{assert_export_parity, assert_learns};
    use crate::train::{cpu_device, train_device};
    use burn::tensor::{Distribution, TensorData};

    fn small(device: &Device) -> Mctn {
        MctnConfig {
            hidden: 8,
            ..MctnConfig::new(5, 4)
        }
        .init(device)
    }

    #[test]
    fn export_matches_burn_with_missing_frames() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = cpu_device();
        d.seed(21);
        let model = small(&d);
        assert_export_parity("mctn", &model, 3, 7, 5, 4);
        // A one-frame window (no previous frame, no recurrence).
        assert_export_parity("mctn T = 1", &model, 2, 1, 5, 4);
    }

    #[test]
    fn inference_reads_no_audio() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = cpu_device();
        d.seed(22);
        let model = small(&d);
        let (b, t) = (2, 5);
        let v = Tensor::<3>::random([b, t, 5], Distribution::Normal(0.0, 1.0), &d);
        let ones = Tensor::<2>::ones([b, t], &d);
        let a1 = Tensor::<3>::random([b, t, 4], Distribution::Normal(0.0, 1.0), &d);
        let o1 = model.forward(v.clone(), a1, ones.clone(), ones.clone());
        let o2 = model.forward(
            v,
            Tensor::zeros([b, t, 4], &d),
            ones.clone(),
            ones.zeros_like(),
        );
        assert!(o1.aux_loss.is_none());
        let diff = (o1.va - o2.va).abs().max().into_scalar::<f32>();
        assert_eq!(diff, 0.0);
    }

    #[test]
    fn translation_loss_is_the_masked_mean_squared_error() {
        let _rng = crate::train::models::testing::rng_lock();
        // Two frames of 2 values: errors (1, 3) and (2, 2) → per-frame means 5 and 4;
        // with the second frame masked out the loss is 5, with both (5 + 4) / 2.
        let d = cpu_device();
        let x = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 3.0, 2.0, 2.0], [1, 2, 2]), &d);
        let y = Tensor::<3>::zeros([1, 2, 2], &d);
        let m = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [1, 2]), &d);
        let l = |mask| masked_mse(x.clone(), y.clone(), mask).into_scalar::<f32>();
        assert_eq!(l(m(vec![1.0, 0.0])), 5.0);
        assert_eq!(l(m(vec![1.0, 1.0])), 4.5);
        assert_eq!(l(m(vec![0.0, 0.0])), 0.0);
    }

    #[test]
    fn training_adds_the_translation_and_cycle_losses() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = train_device();
        d.seed(23);
        let model = small(&d);
        let (b, t) = (2, 4);
        let v = Tensor::<3>::random([b, t, 5], Distribution::Normal(0.0, 1.0), &d);
        let a = Tensor::<3>::random([b, t, 4], Distribution::Normal(0.0, 1.0), &d);
        let ones = Tensor::<2>::ones([b, t], &d);
        let aux = model
            .forward(v, a, ones.clone(), ones)
            .aux_loss
            .expect("aux loss in training")
            .into_scalar::<f32>();
        // Both targets have unit variance, so an untrained translation errs by ~1 each.
        assert!(aux.is_finite() && aux > 0.1, "{aux}");
    }

    #[test]
    fn learns_synth() {
        let _rng = crate::train::models::testing::rng_lock();
        // Visual-only at inference, so the held-out CCC is bounded by what the face
        // carries (valence, 0.3 × arousal) and needs more training videos than MFN.
        let cfg = SynthConfig::default();
        let (train_set, val_set) = sequences(&cfg, 48, 6, 160, 32);
        let d = train_device();
        d.seed(2);
        let model = MctnConfig {
            hidden: 24,
            dropout: 0.1,
            ..MctnConfig::new(cfg.visual_dim, cfg.audio_dim)
        }
        .init(&d);
        assert_learns("mctn", model, &train_set, &val_set, 36, 1e-2);
    }
}
