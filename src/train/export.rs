// SPDX-License-Identifier: MPL-2.0
//! ONNX export of burn building blocks with their trained weights, and of whole fusion
//! models with the contract of DESIGN §5 / `weights/CONTRACT.md`.
//!
//! Every helper appends nodes to a [`GraphBuilder`], reads the value named `x` (and
//! others) and returns the name of the value it produced. Value names come from
//! [`GraphBuilder::fresh`], so a model's graph can be embedded into another (ensembles).
//! Tensors are laid out like burn's: sequences are `[B, T, C]` (batch, time, channels).
//! Every helper is checked against burn's forward pass through ONNX Runtime in the tests.

use burn::module::Param;
use burn::nn::attention::MultiHeadAttention;
use burn::nn::conv::Conv1d;
use burn::nn::{LayerNorm, Linear, PaddingConfig1d};
use burn::tensor::{Bool, Tensor};

use crate::onnx::{Attr, Dim, GraphBuilder};
use crate::runtime::FeatureModelRef;
use crate::train::model::{ExportNames, FusionNet};

/// Shape (as ONNX dims) and values of a float tensor.
pub fn values<const D: usize>(t: Tensor<D>) -> (Vec<i64>, Vec<f32>) {
    let dims = t.dims().iter().map(|&d| d as i64).collect();
    let data = t.into_data();
    (dims, data.iter::<f32>().collect())
}

/// Adds a parameter as a float constant named after `stem`; returns its name.
pub fn param<const D: usize>(g: &mut GraphBuilder, stem: &str, p: &Param<Tensor<D>>) -> String {
    let (dims, v) = values(p.val());
    let name = g.fresh(stem);
    g.constant(&name, &dims, &v)
}

/// Adds a float tensor as a constant named after `stem`; returns its name.
pub fn tensor<const D: usize>(g: &mut GraphBuilder, stem: &str, t: Tensor<D>) -> String {
    let (dims, v) = values(t);
    let name = g.fresh(stem);
    g.constant(&name, &dims, &v)
}

/// Adds a 0-d float constant.
pub fn scalar(g: &mut GraphBuilder, v: f32) -> String {
    let name = g.fresh("scalar");
    g.constant(&name, &[], &[v])
}

/// Adds a 1-d int64 constant (shapes, axes).
pub fn ints(g: &mut GraphBuilder, v: &[i64]) -> String {
    let name = g.fresh("ints");
    g.constant_i64(&name, &[v.len() as i64], v)
}

/// Adds a one-output node `op(inputs)` and returns the output's name.
pub fn op(g: &mut GraphBuilder, op: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
    let out = g.fresh(&op.to_ascii_lowercase());
    g.node(op, inputs, &[&out], attrs);
    out
}

/// `a + b` (broadcasting).
pub fn add(g: &mut GraphBuilder, a: &str, b: &str) -> String {
    op(g, "Add", &[a, b], &[])
}

/// `a * b` (broadcasting).
pub fn mul(g: &mut GraphBuilder, a: &str, b: &str) -> String {
    op(g, "Mul", &[a, b], &[])
}

/// Concatenation along `axis`.
pub fn concat(g: &mut GraphBuilder, xs: &[&str], axis: i64) -> String {
    op(g, "Concat", xs, &[("axis", Attr::Int(axis))])
}

/// `Reshape(x, shape)`; 0 in `shape` copies the input's size (the dynamic batch).
pub fn reshape(g: &mut GraphBuilder, x: &str, shape: &[i64]) -> String {
    let s = ints(g, shape);
    op(g, "Reshape", &[x, &s], &[])
}

/// `Transpose(x, perm)`.
pub fn transpose(g: &mut GraphBuilder, x: &str, perm: &[i64]) -> String {
    op(g, "Transpose", &[x], &[("perm", Attr::Ints(perm.to_vec()))])
}

/// `Unsqueeze(x, axes)`.
pub fn unsqueeze(g: &mut GraphBuilder, x: &str, axes: &[i64]) -> String {
    let a = ints(g, axes);
    op(g, "Unsqueeze", &[x, &a], &[])
}

/// burn's [`Linear`]: `x W + b` on the last axis (MatMul + Add).
pub fn linear(g: &mut GraphBuilder, l: &Linear, x: &str) -> String {
    let w = param(g, "linear_w", &l.weight);
    let y = op(g, "MatMul", &[x, &w], &[]);
    match &l.bias {
        Some(b) => {
            let b = param(g, "linear_b", b);
            add(g, &y, &b)
        }
        None => y,
    }
}

/// burn's [`LayerNorm`] over the last axis (ONNX `LayerNormalization`, biased variance
/// like burn). burn keeps `epsilon` private: pass the value the model was configured
/// with (burn's default is 1e-5).
pub fn layer_norm(g: &mut GraphBuilder, ln: &LayerNorm, epsilon: f64, x: &str) -> String {
    let gamma = param(g, "ln_gamma", &ln.gamma);
    let mut inputs = vec![x.to_owned(), gamma];
    if let Some(b) = &ln.beta {
        inputs.push(param(g, "ln_beta", b));
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    op(
        g,
        "LayerNormalization",
        &refs,
        &[
            ("axis", Attr::Int(-1)),
            ("epsilon", Attr::Float(epsilon as f32)),
        ],
    )
}

/// ReLU.
pub fn relu(g: &mut GraphBuilder, x: &str) -> String {
    op(g, "Relu", &[x], &[])
}

/// tanh.
pub fn tanh(g: &mut GraphBuilder, x: &str) -> String {
    op(g, "Tanh", &[x], &[])
}

/// Logistic sigmoid.
pub fn sigmoid(g: &mut GraphBuilder, x: &str) -> String {
    op(g, "Sigmoid", &[x], &[])
}

/// Exact GELU as burn computes it, `x/2 (1 + erf(x/√2))` (ONNX `Gelu` needs opset 20).
pub fn gelu(g: &mut GraphBuilder, x: &str) -> String {
    let s = scalar(g, std::f32::consts::SQRT_2);
    let xs = op(g, "Div", &[x, &s], &[]);
    let e = op(g, "Erf", &[&xs], &[]);
    let one = scalar(g, 1.0);
    let e1 = add(g, &e, &one);
    let xe = mul(g, x, &e1);
    let half = scalar(g, 0.5);
    mul(g, &xe, &half)
}

/// Softmax along `axis`.
pub fn softmax(g: &mut GraphBuilder, x: &str, axis: i64) -> String {
    op(g, "Softmax", &[x], &[("axis", Attr::Int(axis))])
}

/// `x [B,T,C] * mask [B,T]` (zeroes the frames a mask marks missing).
pub fn mask_time(g: &mut GraphBuilder, x: &str, mask: &str) -> String {
    let m = unsqueeze(g, mask, &[-1]);
    mul(g, x, &m)
}

/// burn side of the key padding mask the models use: true where `mask` \[B,T\] < 0.5
/// (frame missing). [`mha`] writes the same rule.
pub fn pad_mask(mask: Tensor<2>) -> Tensor<2, Bool> {
    mask.lower_elem(0.5)
}

/// burn side of the causal attention mask: \[B,T,T\], true where key j > query i (the
/// future). [`mha`] with `causal` writes the same rule.
pub fn causal_mask(batch: usize, t: usize, device: &burn::tensor::Device) -> Tensor<3, Bool> {
    let v: Vec<bool> = (0..t * t).map(|k| k % t > k / t).collect();
    Tensor::<2, Bool>::from_bool(burn::tensor::TensorData::new(v, [t, t]), device)
        .reshape([1, t, t])
        .expand([batch, t, t])
}

/// `x[..., start..end]` on the last axis.
pub fn slice_last(g: &mut GraphBuilder, x: &str, start: i64, end: i64) -> String {
    let s = ints(g, &[start]);
    let e = ints(g, &[end]);
    let a = ints(g, &[-1]);
    op(g, "Slice", &[x, &s, &e, &a], &[])
}

/// Where a float `mask` is < 0.5, `x` becomes `fill` (`mask` broadcasts against `x`).
pub fn fill_missing(g: &mut GraphBuilder, x: &str, mask: &str, fill: f32) -> String {
    let half = scalar(g, 0.5);
    let missing = op(g, "Less", &[mask, &half], &[]);
    let f = scalar(g, fill);
    op(g, "Where", &[&missing, &f, x], &[])
}

/// Options of [`mha`]: key padding mask and causality.
#[derive(Debug, Clone, Copy, Default)]
pub struct MhaMask<'a> {
    /// Float key mask \[B,Tk\]: keys with mask < 0.5 get burn's `min_float` score, like
    /// `MhaInput::mask_pad(pad_mask(mask))`.
    pub key_mask: Option<&'a str>,
    /// Query i may not see key j > i, like `MhaInput::mask_attn(causal_mask(..))`.
    pub causal: bool,
}

/// burn's [`MultiHeadAttention`] (inference: no dropout) with queries `q` \[B,Tq,D\],
/// keys `k` and values `v` \[B,Tk,D\], masked as `mask` says.
#[allow(clippy::too_many_arguments)]
pub fn mha(
    g: &mut GraphBuilder,
    m: &MultiHeadAttention,
    q: &str,
    k: &str,
    v: &str,
    mask: MhaMask<'_>,
    tq: usize,
    tk: usize,
) -> String {
    let (h, dk, d) = (m.n_heads as i64, m.d_k as i64, m.d_model as i64);
    let heads = |g: &mut GraphBuilder, l: &Linear, x: &str, t: usize, perm: &[i64]| {
        let y = linear(g, l, x);
        let y = reshape(g, &y, &[0, t as i64, h, dk]);
        transpose(g, &y, perm)
    };
    let qh = heads(g, &m.query, q, tq, &[0, 2, 1, 3]); // [B,H,Tq,dk]
    let kt = heads(g, &m.key, k, tk, &[0, 2, 3, 1]); // [B,H,dk,Tk]
    let vh = heads(g, &m.value, v, tk, &[0, 2, 1, 3]); // [B,H,Tk,dk]
    let scores = op(g, "MatMul", &[&qh, &kt], &[]);
    let sq = scalar(g, (m.d_k as f32).sqrt());
    let mut scores = op(g, "Div", &[&scores, &sq], &[]);
    if let Some(km) = mask.key_mask {
        let km = reshape(g, km, &[0, 1, 1, tk as i64]);
        scores = fill_missing(g, &scores, &km, m.min_float as f32);
    }
    if mask.causal {
        // 1 on and below the diagonal (allowed), 0 above (the future).
        let allowed: Vec<f32> = (0..tq * tk)
            .map(|i| if i % tk > i / tk { 0.0 } else { 1.0 })
            .collect();
        let name = g.fresh("causal");
        let c = g.constant(&name, &[1, 1, tq as i64, tk as i64], &allowed);
        scores = fill_missing(g, &scores, &c, m.min_float as f32);
    }
    let w = softmax(g, &scores, 3);
    let ctx = op(g, "MatMul", &[&w, &vh], &[]);
    let ctx = transpose(g, &ctx, &[0, 2, 1, 3]);
    let ctx = reshape(g, &ctx, &[0, tq as i64, d]);
    linear(g, &m.output, &ctx)
}

/// What [`conv1d_time`] cannot write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// `PaddingConfig1d::Same` depends on the input length; use `Explicit`.
    #[error("Conv1d padding must be Explicit(left, right) or Valid to be exported")]
    Padding,
}

/// burn's [`Conv1d`] over time on `x` \[B,T,C\] (transposes to \[B,C,T\] and back); its
/// padding must be `Explicit` or `Valid`.
pub fn conv1d_time(g: &mut GraphBuilder, c: &Conv1d, x: &str) -> Result<String, ExportError> {
    let (l, r) = match c.padding {
        PaddingConfig1d::Explicit(l, r) => (l as i64, r as i64),
        PaddingConfig1d::Valid => (0, 0),
        PaddingConfig1d::Same => return Err(ExportError::Padding),
    };
    let k = c.kernel_size as i64;
    let xt = transpose(g, x, &[0, 2, 1]);
    let w = param(g, "conv_w", &c.weight);
    let mut inputs = vec![xt, w];
    if let Some(b) = &c.bias {
        inputs.push(param(g, "conv_b", b));
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let y = op(
        g,
        "Conv",
        &refs,
        &[
            ("dilations", Attr::Ints(vec![c.dilation as i64])),
            ("group", Attr::Int(c.groups as i64)),
            ("kernel_shape", Attr::Ints(vec![k])),
            ("pads", Attr::Ints(vec![l, r])),
            ("strides", Attr::Ints(vec![c.stride as i64])),
        ],
    );
    Ok(transpose(g, &y, &[0, 2, 1]))
}

/// The `affect.*` description of an exported fusion model (weights/CONTRACT.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FusionMeta {
    /// `affect.name`.
    pub name: String,
    /// Frames per run, `affect.fusion.window` (the fixed T of the graph).
    pub window: usize,
    /// Future frames the model reads, `affect.fusion.lookahead-frames` (written when > 0).
    pub lookahead: usize,
    /// Dv.
    pub visual_dim: usize,
    /// Da.
    pub audio_dim: usize,
    /// `affect.fusion.visual-input`: `features` or `probabilities`; `None` = not written
    /// (features).
    pub visual_input: Option<String>,
    /// `affect.fusion.audio-mask`: what the training data's audio mask held (`speech`:
    /// voice-activity gated); `None` = not written (`present`).
    pub audio_mask: Option<String>,
    /// The face-feature model the features came from.
    pub visual_model: Option<FeatureModelRef>,
    /// The audio-feature model the features came from.
    pub audio_model: Option<FeatureModelRef>,
    /// `affect.source`.
    pub source: String,
    /// `affect.license`.
    pub license: String,
}

/// Declares the fusion contract's inputs (`visual` \[B,T,Dv\], `audio` \[B,T,Da\],
/// `visual_mask`/`audio_mask` \[B,T\]; B dynamic, T = `meta.window`) and outputs (`va`
/// \[B,T,2\], `expr` \[B,T,8\]) plus the `affect.*` metadata, and writes `model` between
/// them.
pub fn export_fusion<M: FusionNet>(model: &M, meta: &FusionMeta) -> GraphBuilder {
    let mut g = GraphBuilder::new(&meta.name);
    let t = meta.window as i64;
    let b = || Dim::from("batch");
    g.input("visual", &[b(), t.into(), (meta.visual_dim as i64).into()])
        .input("audio", &[b(), t.into(), (meta.audio_dim as i64).into()])
        .input("visual_mask", &[b(), t.into()])
        .input("audio_mask", &[b(), t.into()])
        .output("va", &[b(), t.into(), 2.into()])
        .output("expr", &[b(), t.into(), 8.into()]);
    let names = ExportNames {
        visual: "visual".into(),
        audio: "audio".into(),
        visual_mask: "visual_mask".into(),
        audio_mask: "audio_mask".into(),
        t: meta.window,
    };
    let (va, expr) = model.export(&mut g, &names);
    g.node("Identity", &[&va], &["va"], &[])
        .node("Identity", &[&expr], &["expr"], &[]);
    fusion_meta(&mut g, meta);
    g
}

/// Writes the `affect.*` keys of a fusion model onto `g`.
pub fn fusion_meta(g: &mut GraphBuilder, meta: &FusionMeta) {
    g.meta("affect.contract", "1")
        .meta("affect.role", "fusion")
        .meta("affect.name", meta.name.clone())
        .meta("affect.fusion.window", meta.window.to_string())
        .meta("affect.fusion.visual-dim", meta.visual_dim.to_string())
        .meta("affect.fusion.audio-dim", meta.audio_dim.to_string())
        .meta("affect.output.names", "va,expr")
        .meta("affect.output.labels", crate::EXPRESSIONS.join(","))
        .meta("affect.source", meta.source.clone())
        .meta("affect.license", meta.license.clone());
    if meta.lookahead > 0 {
        g.meta("affect.fusion.lookahead-frames", meta.lookahead.to_string());
    }
    if let Some(v) = &meta.visual_input {
        g.meta("affect.fusion.visual-input", v.clone());
    }
    if let Some(m) = &meta.audio_mask {
        g.meta("affect.fusion.audio-mask", m.clone());
    }
    for (which, r) in [("visual", &meta.visual_model), ("audio", &meta.audio_model)] {
        if let Some(r) = r {
            g.meta(&format!("affect.fusion.{which}-model"), r.name.clone())
                .meta(&format!("affect.fusion.{which}-sha256"), r.sha256.clone());
        }
    }
}

/// Test support: runs serialised ONNX bytes through ONNX Runtime (no contract needed).
#[cfg(test)]
pub(crate) mod ort_run {
    use ndarray::{ArrayD, IxDyn};
    use std::collections::BTreeMap;

    /// Runs `bytes` on `(name, shape, values)` inputs; returns every float output.
    pub fn run(
        bytes: &[u8],
        inputs: &[(&str, Vec<usize>, Vec<f32>)],
    ) -> BTreeMap<String, ArrayD<f32>> {
        let rt = crate::runtime::runtime(None).expect("ONNX Runtime (run `make setup`)");
        let mut session = ort::session::Session::builder(&rt.env)
            .unwrap()
            .commit_from_memory(bytes)
            .unwrap();
        let arrays: Vec<(String, ArrayD<f32>)> = inputs
            .iter()
            .map(|(n, s, v)| {
                (
                    (*n).to_owned(),
                    ArrayD::from_shape_vec(IxDyn(s), v.clone()).unwrap(),
                )
            })
            .collect();
        let mut values: Vec<(String, ort::session::SessionInputValue<'_>)> = Vec::new();
        for (n, a) in &arrays {
            let t = ort::value::TensorRef::from_array_view(a.view()).unwrap();
            values.push((n.clone(), t.into()));
        }
        let out = session.run(values).unwrap();
        let mut result = BTreeMap::new();
        for (k, v) in out.iter() {
            if let Ok(a) = v.try_extract_array::<f32>() {
                result.insert(k.to_owned(), a.to_owned());
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::cpu_device;
    use burn::module::Module;
    use burn::nn::attention::{MhaInput, MultiHeadAttentionConfig};
    use burn::nn::conv::Conv1dConfig;
    use burn::nn::{LayerNormConfig, LinearConfig};
    use burn::tensor::{Distribution, TensorData};

    const B: usize = 2;
    const T: usize = 5;

    fn rand3(shape: [usize; 3], seed: u64) -> Tensor<3> {
        let d = cpu_device();
        d.seed(seed);
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &d)
    }

    /// A graph with one input `x` \[B,T,C\] and one output `y`, built by `f`.
    fn graph(c: usize, f: impl FnOnce(&mut GraphBuilder, &str) -> String) -> Vec<u8> {
        let mut g = GraphBuilder::new("t");
        g.input(
            "x",
            &[Dim::from("batch"), (T as i64).into(), (c as i64).into()],
        );
        let y = f(&mut g, "x");
        g.node("Identity", &[&y], &["y"], &[]);
        g.output("y", &[Dim::from("batch"), Dim::from("t"), Dim::from("c")]);
        g.to_bytes()
    }

    /// Max |ORT − burn| of a one-input graph on `x`.
    fn diff(bytes: &[u8], x: Tensor<3>, want: Tensor<3>) -> f32 {
        let shape = x.dims().to_vec();
        let (_, xv) = values(x);
        let out = ort_run::run(bytes, &[("x", shape, xv)]);
        let got = &out["y"];
        let want_shape = want.dims().to_vec();
        let (_, wv) = values(want);
        assert_eq!(got.shape(), want_shape.as_slice());
        got.iter()
            .zip(&wv)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn linear_layer_norm_and_activations_match_burn() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = cpu_device();
        d.seed(1);
        let l = LinearConfig::new(6, 4).init(&d);
        let mut ln = LayerNormConfig::new(4).init(&d);
        // Non-trivial gamma/beta so the export must carry them.
        ln.gamma = Param::from_data(TensorData::new(vec![0.5f32, 1.0, 2.0, -1.0], [4]), &d);
        ln.beta = Some(Param::from_data(
            TensorData::new(vec![0.1f32, -0.2, 0.3, 0.0], [4]),
            &d,
        ));
        let x = rand3([B, T, 6], 2);
        type Act = fn(&mut GraphBuilder, &str) -> String;
        type BurnAct = fn(Tensor<3>) -> Tensor<3>;
        let acts: [(Act, BurnAct); 4] = [
            (relu, burn::tensor::activation::relu),
            (tanh, burn::tensor::activation::tanh),
            (sigmoid, burn::tensor::activation::sigmoid),
            (gelu, burn::tensor::activation::gelu),
        ];
        for (i, (onnx_act, burn_act)) in acts.into_iter().enumerate() {
            let bytes = graph(6, |g, x| {
                let y = linear(g, &l, x);
                let y = layer_norm(g, &ln, 1e-5, &y);
                // Scale up so the activations' non-linear ranges are exercised.
                let three = scalar(g, 3.0);
                let y = mul(g, &y, &three);
                let y = onnx_act(g, &y);
                softmax(g, &y, 2)
            });
            let want = burn::tensor::activation::softmax(
                burn_act(ln.forward(l.forward(x.clone())) * 3.0),
                2,
            );
            let e = diff(&bytes, x.clone(), want);
            assert!(e <= 1e-5, "activation {i}: max diff {e}");
        }
    }

    #[test]
    fn attention_with_key_mask_matches_burn() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = cpu_device();
        d.seed(3);
        let m = MultiHeadAttentionConfig::new(8, 2).init(&d).valid();
        let x = rand3([B, T, 8], 4);
        // Key mask: batch 0 misses frames 1 and 3, batch 1 has all.
        let mask = vec![1.0f32, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let mask_t = Tensor::<2>::from_data(TensorData::new(mask.clone(), [B, T]), &d);
        let want = m
            .forward(
                MhaInput::self_attn(x.clone())
                    .mask_pad(pad_mask(mask_t))
                    .mask_attn(causal_mask(B, T, &d)),
            )
            .context;
        let mut g = GraphBuilder::new("t");
        g.input("x", &[Dim::from("batch"), (T as i64).into(), 8.into()])
            .input("m", &[Dim::from("batch"), (T as i64).into()]);
        let y = mha(
            &mut g,
            &m,
            "x",
            "x",
            "x",
            MhaMask {
                key_mask: Some("m"),
                causal: true,
            },
            T,
            T,
        );
        g.node("Identity", &[&y], &["y"], &[]);
        g.output("y", &[Dim::from("batch"), Dim::from("t"), Dim::from("c")]);
        let (_, xv) = values(x);
        let out = ort_run::run(
            &g.to_bytes(),
            &[("x", vec![B, T, 8], xv), ("m", vec![B, T], mask)],
        );
        let (_, wv) = values(want);
        let e = out["y"]
            .iter()
            .zip(&wv)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(e <= 1e-5, "max diff {e}");
        // The mask matters: without it the outputs differ.
        let free = m.forward(MhaInput::self_attn(rand3([B, T, 8], 4))).context;
        let (_, fv) = values(free);
        let changed = fv.iter().zip(&wv).any(|(a, b)| (a - b).abs() > 1e-3);
        assert!(changed, "masking two keys changed nothing");
    }

    #[test]
    fn causal_dilated_conv_matches_burn_and_same_padding_is_refused() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = cpu_device();
        d.seed(5);
        let (k, dil) = (3, 2);
        let c = Conv1dConfig::new(4, 6, k)
            .with_dilation(dil)
            .with_padding(PaddingConfig1d::Explicit(dil * (k - 1), 0))
            .init(&d);
        let x = rand3([B, T, 4], 6);
        let want = c.forward(x.clone().swap_dims(1, 2)).swap_dims(1, 2);
        assert_eq!(want.dims(), [B, T, 6]);
        let bytes = graph(4, |g, x| conv1d_time(g, &c, x).unwrap());
        let e = diff(&bytes, x.clone(), want.clone());
        assert!(e <= 1e-5, "max diff {e}");
        // Causal: frame 0 depends only on frame 0 (change later frames, frame 0 stays).
        let mut xv = values(x.clone()).1;
        for v in xv.iter_mut().skip(4) {
            *v += 1.0;
        }
        let x2 = Tensor::<3>::from_data(TensorData::new(xv, [B, T, 4]), &d);
        let y2 = values(c.forward(x2.swap_dims(1, 2)).swap_dims(1, 2)).1;
        let y1 = values(want).1;
        assert!((0..6).all(|i| (y1[i] - y2[i]).abs() < 1e-6));
        let same = Conv1dConfig::new(4, 6, 3)
            .with_padding(PaddingConfig1d::Same)
            .init(&d);
        let mut g = GraphBuilder::new("t");
        assert_eq!(conv1d_time(&mut g, &same, "x"), Err(ExportError::Padding));
    }

    #[test]
    fn mask_time_zeroes_missing_frames() {
        let _rng = crate::train::models::testing::rng_lock();
        let mut g = GraphBuilder::new("t");
        g.input("x", &[Dim::from("batch"), 3.into(), 2.into()])
            .input("m", &[Dim::from("batch"), 3.into()]);
        let y = mask_time(&mut g, "x", "m");
        g.node("Identity", &[&y], &["y"], &[]);
        g.output("y", &[Dim::from("batch"), 3.into(), 2.into()]);
        let out = ort_run::run(
            &g.to_bytes(),
            &[
                ("x", vec![1, 3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
                ("m", vec![1, 3], vec![1.0, 0.0, 1.0]),
            ],
        );
        let y: Vec<f32> = out["y"].iter().copied().collect();
        assert_eq!(y, [1.0, 2.0, 0.0, 0.0, 5.0, 6.0]);
    }
}
