// SPDX-License-Identifier: MPL-2.0
//! The fusion models of `affect-train` (feature `train`, burn with the CPU `flex` backend):
//! their common interface, losses, the training loop and ONNX export.
//!
//! Every model maps the fusion contract's inputs (DESIGN §5) — `visual` \[B,T,Dv\],
//! `audio` \[B,T,Da\], `visual_mask` \[B,T\], `audio_mask` \[B,T\] — to `va` \[B,T,2\] in [-1, 1]
//! and `expr` \[B,T,8\] logits, and writes the same computation as an ONNX graph with
//! [`crate::onnx::GraphBuilder`].
//!
//! burn 0.22 has no backend type parameter: tensors live on a [`burn::tensor::Device`];
//! [`cpu_device`] for inference, [`train_device`] (the same with autodiff) for training.

pub mod curves;
pub mod ensemble;
pub mod export;
pub mod fit;
pub mod loss;
pub mod model;
pub mod models;
pub mod report;

pub use model::{ExportNames, FusionNet, FusionOutput};

use burn::tensor::Device;

/// The inference device: burn's portable pure-Rust CPU backend (`flex`).
pub fn cpu_device() -> Device {
    Device::flex()
}

/// The training device: [`cpu_device`] with automatic differentiation.
pub fn train_device() -> Device {
    Device::flex().autodiff()
}
