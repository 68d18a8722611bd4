// SPDX-License-Identifier: MPL-2.0
//! The interface every fusion model implements.
//!
//! NOTE for model authors (H4, MFN/MCTN): burn 0.22 has no backend type parameter —
//! tensors carry their backend in their `Device` (`Tensor<3>`, `Device::flex()`,
//! `device.autodiff()` for training). The trait is therefore `FusionNet: Module` without
//! `<B>`. Export helpers (Linear, LayerNorm, activations, softmax, attention, Conv1d,
//! masking) are in [`crate::train::export`]; `export_fusion` declares the contract
//! inputs/outputs/metadata around [`FusionNet::export`]. This interface is stable now.

use burn::module::Module;
use burn::tensor::Tensor;

use crate::onnx::GraphBuilder;

/// What a fusion model returns for a batch.
#[derive(Debug, Clone)]
pub struct FusionOutput {
    /// Valence, arousal in [-1, 1]; \[B, T, 2\].
    pub va: Tensor<3>,
    /// Expression logits, [`crate::EXPRESSIONS`] order; \[B, T, 8\].
    pub expr: Tensor<3>,
    /// An extra training loss the model defines for itself (e.g. MCTN's translation and
    /// cycle losses), already weighted; `None` for most models. Not exported.
    pub aux_loss: Option<Tensor<1>>,
}

/// Names of the graph values an export starts from (the contract's inputs, already
/// declared on the builder) and must end in.
#[derive(Debug, Clone)]
pub struct ExportNames {
    /// `visual` \[B,T,Dv\].
    pub visual: String,
    /// `audio` \[B,T,Da\].
    pub audio: String,
    /// `visual_mask` \[B,T\].
    pub visual_mask: String,
    /// `audio_mask` \[B,T\].
    pub audio_mask: String,
    /// Fixed sequence length T of the export.
    pub t: usize,
}

/// A fusion model: burn forward pass and the same computation written as ONNX.
pub trait FusionNet: Module {
    /// Forward pass. Dropout is active only on an autodiff device in training mode
    /// (burn's rule); call `model.valid()` for inference.
    fn forward(
        &self,
        visual: Tensor<3>,
        audio: Tensor<3>,
        visual_mask: Tensor<2>,
        audio_mask: Tensor<2>,
    ) -> FusionOutput;

    /// Writes the inference computation (no dropout, no auxiliary branches) into `g`,
    /// reading the inputs named in `names`, and returns the names of the values holding
    /// `va` \[B,T,2\] and `expr` \[B,T,8\]. The caller declares inputs/outputs and metadata
    /// (see [`crate::train::export::export_fusion`]). Use a unique prefix for every value
    /// name (e.g. `g.fresh("mfn")`-style prefixes) so models can be combined in ensembles.
    fn export(&self, g: &mut GraphBuilder, names: &ExportNames) -> (String, String);
}
