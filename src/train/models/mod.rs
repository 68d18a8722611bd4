// SPDX-License-Identifier: MPL-2.0
//! The fusion models, and [`AnyModel`]: one of them chosen at run time (`--model`).
//!
//! - [`attention`]: per-modality projection + attention fusion (seed baseline), causal.
//! - [`tcn`]: multi-scale dilated causal convolutions + cross-modal attention, causal.
//! - [`transformer`]: pre-norm encoder over the window, causal.
//! - [`mfn`]: Memory Fusion Network (H4), causal.
//! - [`mctn`]: cyclic translation network (H4).

pub mod attention;
pub mod lstm;
pub mod mctn;
pub mod mfn;
pub mod tcn;
#[cfg(test)]
pub(crate) mod testing;
pub mod transformer;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::onnx::GraphBuilder;
use crate::train::model::{ExportNames, FusionNet, FusionOutput};

/// Which architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// [`attention::AttentionFusion`].
    Attention,
    /// [`tcn::Tcn`].
    Tcn,
    /// [`mfn::Mfn`].
    Mfn,
    /// [`mctn::Mctn`].
    Mctn,
    /// [`transformer::Transformer`].
    Transformer,
}

impl ModelKind {
    /// Every architecture.
    pub const ALL: [ModelKind; 5] = [
        ModelKind::Attention,
        ModelKind::Tcn,
        ModelKind::Mfn,
        ModelKind::Mctn,
        ModelKind::Transformer,
    ];

    /// The `--model` name.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Attention => "attention",
            ModelKind::Tcn => "tcn",
            ModelKind::Mfn => "mfn",
            ModelKind::Mctn => "mctn",
            ModelKind::Transformer => "transformer",
        }
    }

    /// Parses a `--model` name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// Everything needed to rebuild a model before loading its weights (saved next to every
/// checkpoint as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Architecture.
    pub kind: ModelKind,
    /// Dv.
    pub visual_dim: usize,
    /// Da.
    pub audio_dim: usize,
    /// Hidden size (seed 256).
    pub hidden: usize,
    /// Dropout (seed 0.2).
    pub dropout: f64,
    /// Window T (seed 64).
    pub window: usize,
    /// Layers / blocks (transformer layers, TCN blocks).
    pub layers: usize,
    /// Attention heads (TCN, transformer).
    pub heads: usize,
    /// Future frames the model is trained to read (`--lookahead-frames`): every model is
    /// causal, and with `lookahead` K the label of frame `i` is taught at step `i + K`,
    /// so the newest step of a window ending at `i + K` answers for frame `i` — what
    /// `avfuse` runs (`affect.fusion.lookahead-frames`). Absent in older `spec.json`: 0.
    #[serde(default)]
    pub lookahead: usize,
}

impl ModelSpec {
    /// The seed's sizes for `kind`: hidden 256 (MFN memory = hidden), dropout 0.2,
    /// window 64, 6 transformer layers / 2 TCN blocks, 4 heads.
    pub fn seed(kind: ModelKind, visual_dim: usize, audio_dim: usize) -> Self {
        ModelSpec {
            kind,
            visual_dim,
            audio_dim,
            hidden: 256,
            dropout: 0.2,
            window: 64,
            layers: if kind == ModelKind::Transformer { 6 } else { 2 },
            heads: 4,
            lookahead: 0,
        }
    }

    /// A freshly initialised model on `device` (seed the device first for determinism).
    pub fn init(&self, device: &Device) -> AnyModel {
        match self.kind {
            ModelKind::Attention => AnyModel::Attention(
                attention::AttentionConfig {
                    hidden: self.hidden,
                    dropout: self.dropout,
                    ..attention::AttentionConfig::new(self.visual_dim, self.audio_dim)
                }
                .init(device),
            ),
            ModelKind::Tcn => AnyModel::Tcn(
                tcn::TcnConfig {
                    hidden: self.hidden,
                    dropout: self.dropout,
                    blocks: self.layers,
                    heads: self.heads,
                    ..tcn::TcnConfig::new(self.visual_dim, self.audio_dim)
                }
                .init(device),
            ),
            ModelKind::Mfn => AnyModel::Mfn(
                mfn::MfnConfig {
                    hidden: self.hidden,
                    memory: self.hidden,
                    dropout: self.dropout,
                    ..mfn::MfnConfig::new(self.visual_dim, self.audio_dim)
                }
                .init(device),
            ),
            ModelKind::Mctn => AnyModel::Mctn(
                mctn::MctnConfig {
                    hidden: self.hidden,
                    dropout: self.dropout,
                    ..mctn::MctnConfig::new(self.visual_dim, self.audio_dim)
                }
                .init(device),
            ),
            ModelKind::Transformer => AnyModel::Transformer(
                transformer::TransformerConfig {
                    hidden: self.hidden,
                    dropout: self.dropout,
                    layers: self.layers,
                    heads: self.heads,
                    window: self.window,
                    ..transformer::TransformerConfig::new(self.visual_dim, self.audio_dim)
                }
                .init(device),
            ),
        }
    }
}

/// One of the models. (Variants differ in size; a process holds one or two models, so
/// they are not boxed.)
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AnyModel {
    /// `attention`.
    Attention(attention::AttentionFusion),
    /// `tcn`.
    Tcn(tcn::Tcn),
    /// `mfn`.
    Mfn(mfn::Mfn),
    /// `mctn`.
    Mctn(mctn::Mctn),
    /// `transformer`.
    Transformer(transformer::Transformer),
}

impl FusionNet for AnyModel {
    fn forward(
        &self,
        visual: Tensor<3>,
        audio: Tensor<3>,
        visual_mask: Tensor<2>,
        audio_mask: Tensor<2>,
    ) -> FusionOutput {
        match self {
            AnyModel::Attention(m) => m.forward(visual, audio, visual_mask, audio_mask),
            AnyModel::Tcn(m) => m.forward(visual, audio, visual_mask, audio_mask),
            AnyModel::Mfn(m) => m.forward(visual, audio, visual_mask, audio_mask),
            AnyModel::Mctn(m) => m.forward(visual, audio, visual_mask, audio_mask),
            AnyModel::Transformer(m) => m.forward(visual, audio, visual_mask, audio_mask),
        }
    }

    fn export(&self, g: &mut GraphBuilder, names: &ExportNames) -> (String, String) {
        match self {
            AnyModel::Attention(m) => m.export(g, names),
            AnyModel::Tcn(m) => m.export(g, names),
            AnyModel::Mfn(m) => m.export(g, names),
            AnyModel::Mctn(m) => m.export(g, names),
            AnyModel::Transformer(m) => m.export(g, names),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{
        ExecutionProvider, FeatureModelRef, InputSpec, Model, Role, SessionConfig,
    };
    use crate::train::export::{FusionMeta, export_fusion};

    #[test]
    fn seed_sizes_export_within_1e_4() {
        let _rng = crate::train::models::testing::rng_lock();
        // hidden 256, window 64, 6 transformer layers / 2 TCN blocks, untrained weights.
        let d = crate::train::cpu_device();
        for kind in ModelKind::ALL {
            let m = ModelSpec::seed(kind, 16, 12).init(&d);
            super::testing::assert_export_parity(kind.name(), &m, 2, 64, 16, 12);
        }
    }

    #[test]
    fn every_kind_exports_a_fusion_model_the_runtime_accepts() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = crate::train::cpu_device();
        let r = |n: &str, c: char| FeatureModelRef {
            name: n.into(),
            sha256: std::iter::repeat_n(c, 64).collect(),
        };
        let dir = std::env::temp_dir().join(format!("affect-kinds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for kind in ModelKind::ALL {
            assert_eq!(ModelKind::parse(kind.name()), Some(kind));
            let spec = ModelSpec {
                hidden: 8,
                window: 6,
                layers: 1,
                heads: 2,
                lookahead: 0,
                ..ModelSpec::seed(kind, 5, 4)
            };
            let meta = FusionMeta {
                name: format!("kind-{}", kind.name()),
                window: 6,
                lookahead: 0,
                visual_dim: 5,
                audio_dim: 4,
                visual_input: Some("features".into()),
                audio_mask: None,
                visual_model: Some(r("face", 'a')),
                audio_model: Some(r("voice", 'b')),
                source: "test".into(),
                license: "MPL-2.0".into(),
            };
            let path = dir.join(format!("{}.onnx", kind.name()));
            export_fusion(&spec.init(&d), &meta).write(&path).unwrap();
            let config = SessionConfig {
                provider: ExecutionProvider::Cpu,
                ..Default::default()
            };
            let m = Model::load(&path, Some(Role::Fusion), &config).unwrap();
            let c = m.contract();
            assert_eq!(c.name, meta.name);
            assert_eq!(c.outputs, ["va", "expr"]);
            let InputSpec::Fusion(f) = &c.input else {
                panic!("{}: not a fusion contract", kind.name())
            };
            assert_eq!((f.window, f.visual_dim, f.audio_dim), (6, 5, 4));
            assert_eq!(f.visual_model, meta.visual_model);
            assert_eq!(f.audio_model, meta.audio_model);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_kind_is_causal_the_future_never_changes_a_step() {
        // Streamed, frame t is the newest step of its window: a model whose step t read
        // t+1… would be trained on context it never has. Change every row after step p
        // (features and masks): steps 0..=p stay the same, for every kind.
        let _rng = crate::train::models::testing::rng_lock();
        let d = crate::train::cpu_device();
        d.seed(5);
        let (t, dv, da) = (12, 5, 4);
        let rnd = |dims: [usize; 3]| {
            Tensor::<3>::random(dims, burn::tensor::Distribution::Normal(0.0, 1.0), &d)
        };
        let v = rnd([1, t, dv]);
        let a = rnd([1, t, da]);
        let ones = Tensor::<2>::ones([1, t], &d);
        let v2 = rnd([1, t, dv]);
        let a2 = rnd([1, t, da]);
        for kind in ModelKind::ALL {
            let spec = ModelSpec {
                hidden: 16,
                window: t,
                layers: 2,
                heads: 2,
                ..ModelSpec::seed(kind, dv, da)
            };
            let m = spec.init(&d).valid();
            let out = m.forward(v.clone(), a.clone(), ones.clone(), ones.clone());
            for p in [0, 5, t - 2] {
                let keep = |x: Tensor<3>, y: Tensor<3>| {
                    Tensor::cat(
                        vec![x.narrow(1, 0, p + 1), y.narrow(1, p + 1, t - p - 1)],
                        1,
                    )
                };
                let mut m2 = ones.clone().narrow(1, 0, p + 1);
                m2 = Tensor::cat(vec![m2, Tensor::zeros([1, t - p - 1], &d)], 1);
                let changed = m.forward(
                    keep(v.clone(), v2.clone()),
                    keep(a.clone(), a2.clone()),
                    ones.clone(),
                    m2,
                );
                for (what, x, y) in [
                    ("va", &out.va, &changed.va),
                    ("expr", &out.expr, &changed.expr),
                ] {
                    let x: Vec<f32> = x
                        .clone()
                        .narrow(1, 0, p + 1)
                        .into_data()
                        .iter::<f32>()
                        .collect();
                    let y: Vec<f32> = y
                        .clone()
                        .narrow(1, 0, p + 1)
                        .into_data()
                        .iter::<f32>()
                        .collect();
                    let worst = x
                        .iter()
                        .zip(&y)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    assert!(
                        worst <= 1e-5,
                        "{}: {what} at steps ≤ {p} moved by {worst} when only later rows changed",
                        kind.name()
                    );
                }
            }
        }
    }
}
