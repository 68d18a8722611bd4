// SPDX-License-Identifier: MPL-2.0
//! A masked, unrolled LSTM layer (burn) and the same computation written as ONNX; the
//! recurrent building block of [`super::mfn`] and [`super::mctn`].
//!
//! Gates follow PyTorch's order (input, forget, cell, output):
//!
//! ```text
//! [i f g o] = x_t W_x + b + h_{t-1} W_h
//! c' = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
//! h' = σ(o) ⊙ tanh(c')
//! c_t = c_{t-1} + m_t (c' − c_{t-1}),   h_t = h_{t-1} + m_t (h' − h_{t-1})
//! ```
//!
//! where `m_t` ∈ \[0, 1\] is the frame's mask: a frame whose modality is missing (mask 0)
//! leaves the state unchanged, so the LSTM carries what it saw last across the gap. The
//! initial state is zero. The input projection `x W_x + b` runs on all frames in one
//! matrix product; only the recurrent part runs per step.
//!
//! On burn's Flex backend (the trainer's device, with or without autodiff) the recurrence
//! runs as one fused operation with a handwritten backward pass (module `fused`); elsewhere, and
//! inside [`with_composed_lstm`], it runs as composed per-step tensor operations
//! ([`Lstm::step`]), the reference the fused operation is tested against.

mod fused;

pub use fused::memory::{MemoryParams, gated_memory};
pub use fused::with_composed_lstm;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};

use crate::onnx::{Attr, GraphBuilder};
use crate::train::export as ex;
use crate::train::model::FusionOutput;

/// An LSTM layer over `[B, T, D]` sequences with an optional per-frame mask.
#[derive(Module, Debug)]
pub struct Lstm {
    /// Input projection `D → 4H` with the gates' bias.
    pub input: Linear,
    /// Recurrent projection `H → 4H`, no bias.
    pub recurrent: Linear,
    /// Hidden size H.
    pub hidden: usize,
}

/// Every hidden and cell state of a sequence.
#[derive(Debug, Clone)]
pub struct LstmStates {
    /// Hidden states h_t, `[B, T, H]`.
    pub h: Tensor<3>,
    /// Cell states c_t, `[B, T, H]`.
    pub c: Tensor<3>,
}

impl Lstm {
    /// A new layer `d_input → hidden` with burn's default (Kaiming-uniform) initialisation
    /// and the forget-gate bias set to 1 (the usual trick that lets gradients flow early).
    pub fn new(d_input: usize, hidden: usize, device: &Device) -> Self {
        let mut input = LinearConfig::new(d_input, 4 * hidden).init(device);
        if let Some(bias) = input.bias.take() {
            let mut b: Vec<f32> = bias.val().into_data().iter::<f32>().collect();
            b[hidden..2 * hidden].fill(1.0);
            input.bias = Some(Param::from_data(TensorData::new(b, [4 * hidden]), device));
        }
        Lstm {
            input,
            recurrent: LinearConfig::new(hidden, 4 * hidden)
                .with_bias(false)
                .init(device),
            hidden,
        }
    }

    /// One step from the projected input frame `xp = x W_x + b` `[B, 4H]`, the previous
    /// `(h, c)` (`None` = zero state) and the frame's mask `[B, 1]`. Returns the next
    /// `(h, c)`.
    pub fn step(
        &self,
        xp: Tensor<2>,
        state: Option<(Tensor<2>, Tensor<2>)>,
        mask: Option<Tensor<2>>,
    ) -> (Tensor<2>, Tensor<2>) {
        let gates = match &state {
            Some((h, _)) => xp + self.recurrent.forward(h.clone()),
            None => xp,
        };
        let mut g = gates.chunk(4, 1).into_iter();
        let (gi, gf, gg, go) = (
            g.next().expect("4 chunks"),
            g.next().expect("4 chunks"),
            g.next().expect("4 chunks"),
            g.next().expect("4 chunks"),
        );
        let ig = sigmoid(gi) * gg.tanh();
        let c_new = match &state {
            Some((_, c)) => sigmoid(gf) * c.clone() + ig,
            None => ig,
        };
        let h_new = sigmoid(go) * c_new.clone().tanh();
        match (mask, state) {
            (Some(m), Some((h, c))) => (
                h.clone() + m.clone() * (h_new - h),
                c.clone() + m * (c_new - c),
            ),
            (Some(m), None) => (m.clone() * h_new, m * c_new),
            (None, _) => (h_new, c_new),
        }
    }

    /// Runs the layer over `x` `[B, T, D]` with optional per-frame masks (`[B, 1]` each,
    /// 1 = frame present; see [`mask_frames`]) as composed steps ([`Lstm::step`]). The input
    /// projection runs on all frames at once; returns every h_t and c_t (`[B, H]` each).
    pub fn forward_frames(
        &self,
        x: Tensor<3>,
        masks: Option<&[Tensor<2>]>,
    ) -> (Vec<Tensor<2>>, Vec<Tensor<2>>) {
        self.run_steps(self.input.forward(x), masks)
    }

    /// Runs the layer over `x` `[B, T, D]`; `mask` `[B, T]` (1 = frame present) gates the
    /// state updates. Returns all hidden and cell states.
    pub fn forward(&self, x: Tensor<3>, mask: Option<Tensor<2>>) -> LstmStates {
        let [_, t, _] = x.dims();
        let h = self.hidden;
        let xp = self.input.forward(x);
        if t > 0
            && self.recurrent.bias.is_none()
            && let Some(hc) =
                fused::lstm_sequence(&xp, &self.recurrent.weight.val(), mask.as_ref(), true)
        {
            return LstmStates {
                h: hc.clone().narrow(2, 0, h),
                c: hc.narrow(2, h, h),
            };
        }
        let (hs, cs) = self.steps(xp, mask);
        LstmStates {
            h: Tensor::stack(hs, 1),
            c: Tensor::stack(cs, 1),
        }
    }

    /// [`Lstm::forward`]'s hidden states only, `[B, T, H]` (the fused operation then keeps
    /// no cell-state output).
    pub fn forward_hidden(&self, x: Tensor<3>, mask: Option<Tensor<2>>) -> Tensor<3> {
        let [_, t, _] = x.dims();
        let xp = self.input.forward(x);
        if t > 0
            && self.recurrent.bias.is_none()
            && let Some(h) =
                fused::lstm_sequence(&xp, &self.recurrent.weight.val(), mask.as_ref(), false)
        {
            return h;
        }
        Tensor::stack(self.steps(xp, mask).0, 1)
    }

    /// The composed steps over the projected input `xp` `[B, T, 4H]`, mask `[B, T]`.
    fn steps(&self, xp: Tensor<3>, mask: Option<Tensor<2>>) -> (Vec<Tensor<2>>, Vec<Tensor<2>>) {
        let masks = mask.map(mask_frames);
        self.run_steps(xp, masks.as_deref())
    }

    /// The composed steps over the projected input `xp` `[B, T, 4H]`, per-frame masks.
    fn run_steps(
        &self,
        xp: Tensor<3>,
        masks: Option<&[Tensor<2>]>,
    ) -> (Vec<Tensor<2>>, Vec<Tensor<2>>) {
        let xs = split_frames(xp);
        let mut hs = Vec::with_capacity(xs.len());
        let mut cs = Vec::with_capacity(xs.len());
        let mut state: Option<(Tensor<2>, Tensor<2>)> = None;
        for (step, xt) in xs.into_iter().enumerate() {
            let m = masks.map(|m| m[step].clone());
            let (h, c) = self.step(xt, state, m);
            hs.push(h.clone());
            cs.push(c.clone());
            state = Some((h, c));
        }
        (hs, cs)
    }

    /// Writes the layer into `g`: `x` names a `[B, T, D]` value, `mask` a `[B, T, 1]` one;
    /// `t` is the fixed sequence length. Returns the per-step names of h_t and c_t (`[B, H]`
    /// each); [`stack_steps`] turns such a list into a `[B, T, H]` value.
    pub fn export(
        &self,
        g: &mut GraphBuilder,
        x: &str,
        mask: Option<&str>,
        t: usize,
    ) -> (Vec<String>, Vec<String>) {
        let hd = self.hidden as i64;
        let xp = ex::linear(g, &self.input, x);
        let wh = ex::param(g, "lstm_wh", &self.recurrent.weight);
        let split = ex::ints(g, &[hd; 4]);
        let mut hs: Vec<String> = Vec::with_capacity(t);
        let mut cs: Vec<String> = Vec::with_capacity(t);
        for step in 0..t {
            let xt = gather_step(g, &xp, step);
            let gates = match hs.last() {
                Some(h) => {
                    let hw = ex::op(g, "MatMul", &[h, &wh], &[]);
                    ex::add(g, &xt, &hw)
                }
                None => xt,
            };
            let names = ["i", "f", "g", "o"].map(|n| g.fresh(&format!("lstm_{n}")));
            g.node(
                "Split",
                &[&gates, &split],
                &[&names[0], &names[1], &names[2], &names[3]],
                &[("axis", Attr::Int(1))],
            );
            let si = ex::sigmoid(g, &names[0]);
            let tg = ex::tanh(g, &names[2]);
            let so = ex::sigmoid(g, &names[3]);
            let ig = ex::mul(g, &si, &tg);
            let c_new = match cs.last() {
                Some(c) => {
                    let sf = ex::sigmoid(g, &names[1]);
                    let fc = ex::mul(g, &sf, c);
                    ex::add(g, &fc, &ig)
                }
                None => ig,
            };
            let tc = ex::tanh(g, &c_new);
            let h_new = ex::mul(g, &so, &tc);
            let (h_next, c_next) = match mask {
                Some(m) => {
                    let mt = gather_step(g, m, step);
                    match (hs.last(), cs.last()) {
                        (Some(h), Some(c)) => (
                            masked_update(g, h, &h_new, &mt),
                            masked_update(g, c, &c_new, &mt),
                        ),
                        _ => (ex::mul(g, &mt, &h_new), ex::mul(g, &mt, &c_new)),
                    }
                }
                None => (h_new, c_new),
            };
            hs.push(h_next);
            cs.push(c_next);
        }
        (hs, cs)
    }
}

/// The output for a batch of zero-length sequences (`[B, 0, 2]`, `[B, 0, 8]`).
pub fn no_frames(b: usize, device: &Device) -> FusionOutput {
    FusionOutput {
        va: Tensor::zeros([b, 0, 2], device),
        expr: Tensor::zeros([b, 0, crate::EXPRESSIONS.len()], device),
        aux_loss: None,
    }
}

/// The T frames `[B, C]` of `x` `[B, T, C]`, by halving the time axis recursively.
///
/// burn's gradient of a slice is a zero tensor of the sliced tensor's full size with the
/// slice's gradient written in: cutting T frames off a tracked tensor one by one costs T
/// full-size tensors in the backward pass, halving costs 2·log2(T).
pub fn split_frames(x: Tensor<3>) -> Vec<Tensor<2>> {
    let [b, t, c] = x.dims();
    match t {
        0 => Vec::new(),
        1 => vec![x.reshape([b, c])],
        _ => {
            let half = t / 2;
            let mut out = split_frames(x.clone().narrow(1, 0, half));
            out.extend(split_frames(x.narrow(1, half, t - half)));
            out
        }
    }
}

/// The T frames `[B, 1]` of a mask `[B, T]`.
pub fn mask_frames(mask: Tensor<2>) -> Vec<Tensor<2>> {
    let t = mask.dims()[1];
    (0..t).map(|s| mask.clone().narrow(1, s, 1)).collect()
}

/// `old + m (new − old)`.
fn masked_update(g: &mut GraphBuilder, old: &str, new: &str, m: &str) -> String {
    let d = ex::op(g, "Sub", &[new, old], &[]);
    let md = ex::mul(g, m, &d);
    ex::add(g, old, &md)
}

/// Frame `step` of a `[B, T, C]` value: `[B, C]` (ONNX `Gather` with a 0-d index).
pub fn gather_step(g: &mut GraphBuilder, x: &str, step: usize) -> String {
    let idx = g.fresh("step");
    g.constant_i64(&idx, &[], &[step as i64]);
    ex::op(g, "Gather", &[x, &idx], &[("axis", Attr::Int(1))])
}

/// Stacks per-step `[B, C]` values into one `[B, T, C]` value.
pub fn stack_steps(g: &mut GraphBuilder, steps: &[String], channels: usize) -> String {
    let refs: Vec<&str> = steps.iter().map(String::as_str).collect();
    let flat = ex::concat(g, &refs, 1);
    ex::reshape(g, &flat, &[-1, steps.len() as i64, channels as i64])
}

/// A [`Linear`]'s weights written once as constants, applied at several steps.
#[derive(Debug, Clone)]
pub struct LinearConsts {
    weight: String,
    bias: Option<String>,
}

impl LinearConsts {
    /// Writes `l`'s weight (and bias) into `g`.
    pub fn new(g: &mut GraphBuilder, l: &Linear) -> Self {
        LinearConsts {
            weight: ex::param(g, "linear_w", &l.weight),
            bias: l.bias.as_ref().map(|b| ex::param(g, "linear_b", b)),
        }
    }

    /// `x W + b`.
    pub fn apply(&self, g: &mut GraphBuilder, x: &str) -> String {
        let y = ex::op(g, "MatMul", &[x, &self.weight], &[]);
        match &self.bias {
            Some(b) => ex::add(g, &y, b),
            None => y,
        }
    }
}
