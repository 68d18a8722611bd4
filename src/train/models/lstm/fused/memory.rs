// SPDX-License-Identifier: MPL-2.0
//! MFN's multi-view gated memory as one operation with a handwritten backward pass (same
//! kernels as the fused LSTM).
//!
//! Per step, from the attended gates' input `a_t` (`ĉ* W_a + b_a`, `[B, 2H]`) and the
//! proposal `û_t` (`[B, M]`):
//!
//! ```text
//! [h1 h2] = relu(a_t + u_{t-1} W_m) ⊙ d_t          (d_t: dropout's scale, 1 outside training)
//! u_t = σ(h1 W_1 + b_1) ⊙ u_{t-1} + σ(h2 W_2 + b_2) ⊙ û_t,   u_{-1} = 0
//! ```

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::tensor::{Distribution, Tensor};

use super::{Ad, Kernels, Portable, Values, flex_tensor, pack, pad, sigmoid};

/// The gated memory's parameters: `W_m` `[M, 2H]`, `W_1`, `W_2` `[H, M]`, `b_1`, `b_2` `[M]`.
#[derive(Debug, Clone)]
pub struct MemoryParams {
    /// `W_m`, the memory's part of both gates' first layers.
    pub w_m: Tensor<2>,
    /// `W_1`, retain gate.
    pub w_1: Tensor<2>,
    /// `b_1`.
    pub b_1: Tensor<1>,
    /// `W_2`, update gate.
    pub w_2: Tensor<2>,
    /// `b_2`.
    pub b_2: Tensor<1>,
}

/// Runs the gated memory over all steps: `gate_in` `[B, T, 2H]`, `proposal` `[B, T, M]`,
/// dropout probability `dropout` applied to the gates' hidden layer (`None` or 0: none).
/// Returns every `u_t`, `[B, T, M]`, or `None` where the operation does not apply (as for
/// the fused LSTM).
pub fn gated_memory(
    gate_in: &Tensor<3>,
    proposal: &Tensor<3>,
    p: &MemoryParams,
    dropout: Option<f64>,
) -> Option<Tensor<3>> {
    if !super::FUSED.with(std::cell::Cell::get) {
        return None;
    }
    let [b, t, h2] = gate_in.dims();
    let [_, _, m] = proposal.dims();
    let h = h2 / 2;
    let ok = h > 0
        && h2 == 2 * h
        && b > 0
        && t > 0
        && m > 0
        && proposal.dims() == [b, t, m]
        && p.w_m.dims() == [m, h2]
        && p.w_1.dims() == [h, m]
        && p.w_2.dims() == [h, m]
        && p.b_1.dims() == [m]
        && p.b_2.dims() == [m];
    if !ok || !gate_in.device().is_autodiff() {
        return None;
    }
    let d = MemDims { b, t, h, m };
    let conv2 = |x: &Tensor<2>| x.clone().try_into_primitive::<Ad>().ok();
    let conv1 = |x: &Tensor<1>| x.clone().try_into_primitive::<Ad>().ok();
    let conv3 = |x: &Tensor<3>| x.clone().try_into_primitive::<Ad>().ok();
    let inputs = [
        conv3(gate_in)?,
        conv3(proposal)?,
        conv2(&p.w_m)?,
        conv2(&p.w_1)?,
        conv1(&p.b_1)?,
        conv2(&p.w_2)?,
        conv1(&p.b_2)?,
    ];
    let drop = match dropout {
        Some(prob) if prob > 0.0 => Some(dropout_scales(b * t * h2, prob, &gate_in.device())?),
        _ => None,
    };
    let mut nodes = Vec::with_capacity(7);
    let mut values = Vec::with_capacity(7);
    for x in inputs {
        let (prim, node) = x.into_parts();
        values.push(Values::of(prim)?);
        nodes.push(node);
    }
    let nodes: [_; 7] = nodes.try_into().ok()?;
    let prep =
        <MemoryBackward as Backward<Flex, 7>>::prepare::<NoCheckpointing>(MemoryBackward, nodes);
    let inputs = MemInputs {
        gate_in: values[0].clone(),
        proposal: values[1].clone(),
        w_m: values[2].clone(),
        w_1: values[3].clone(),
        b_1: values[4].clone(),
        w_2: values[5].clone(),
        b_2: values[6].clone(),
        drop,
    };
    let run = forward(&inputs, d);
    let out = flex_tensor(run.u.clone(), [b, t, m]);
    let out = match prep.compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(Arc::new(MemSaved { d, inputs, run }), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<Ad>(out))
}

/// Dropout's per-value scales for `n` values: 0 with probability `prob`, else
/// `1 / (1 − prob)`, as burn's `Dropout`. The seed comes from burn's generator (so
/// `Device::seed` makes it reproducible); the values from SplitMix64, much cheaper per value
/// than burn's per-element sampling.
fn dropout_scales(n: usize, prob: f64, device: &burn::tensor::Device) -> Option<Values> {
    let keep = 1.0 - prob;
    let seed = Tensor::<1>::random([2], Distribution::Uniform(0.0, 1.0), device);
    let seed = Values::of(seed.try_into_primitive::<Ad>().ok()?.into_primitive())?;
    let mut state = seed
        .iter()
        .fold(0u64, |acc, &u| (acc << 32) | (u * 4_294_967_296.0) as u64);
    // A 24-bit uniform below `threshold` keeps the value.
    let threshold = (keep * f64::from(1u32 << 24)).round() as u64;
    let scale = (1.0 / keep) as f32;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        // Two 24-bit draws per 64-bit value.
        let z = next();
        for u in [z >> 40, (z >> 16) & 0xFF_FFFF] {
            if out.len() < n {
                out.push(if u < threshold { scale } else { 0.0 });
            }
        }
    }
    Some(Values::from(out))
}

/// Batch, steps, H (half the gates' hidden layer), M.
#[derive(Debug, Clone, Copy)]
pub(in crate::train::models::lstm::fused) struct MemDims {
    b: usize,
    t: usize,
    h: usize,
    m: usize,
}

pub(in crate::train::models::lstm::fused) struct MemInputs {
    gate_in: Values,
    proposal: Values,
    w_m: Values,
    w_1: Values,
    b_1: Values,
    w_2: Values,
    b_2: Values,
    /// Dropout's per-value scale (0 or 1 / keep), `[B, T, 2H]`.
    drop: Option<Values>,
}

pub(in crate::train::models::lstm::fused) struct MemRun {
    /// u_t, `[B, T, M]`.
    u: Vec<f32>,
    /// The gates' hidden layer after relu and dropout, `[B, T, 2H]`.
    hid: Vec<f32>,
    /// σ of the retain and update gates, `[B, T, M]` each.
    g1: Vec<f32>,
    g2: Vec<f32>,
}

pub(in crate::train::models::lstm::fused) struct MemSaved {
    d: MemDims,
    inputs: MemInputs,
    run: MemRun,
}

impl std::fmt::Debug for MemSaved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemSaved").field("dims", &self.d).finish()
    }
}

fn forward(x: &MemInputs, d: MemDims) -> MemRun {
    #[cfg(target_arch = "x86_64")]
    if super::x86::available() {
        // SAFETY: the processor has AVX2 and FMA (checked above).
        return unsafe { super::x86::memory_forward(x, d) };
    }
    forward_with::<Portable>(x, d)
}

fn backward(s: &MemSaved, grad: &[f32]) -> MemGrads {
    #[cfg(target_arch = "x86_64")]
    if super::x86::available() {
        // SAFETY: the processor has AVX2 and FMA (checked above).
        return unsafe { super::x86::memory_backward(s, grad) };
    }
    backward_with::<Portable>(s, grad)
}

#[inline(always)]
pub(in crate::train::models::lstm::fused) fn forward_with<K: Kernels>(
    x: &MemInputs,
    d: MemDims,
) -> MemRun {
    let MemDims { b, t, h, m } = d;
    let h2 = 2 * h;
    let (h2p, mp) = (pad(h2), pad(m));
    let wmp = pack(m, h2, |k, n| x.w_m[k * h2 + n]);
    let w1p = pack(h, m, |k, n| x.w_1[k * m + n]);
    let w2p = pack(h, m, |k, n| x.w_2[k * m + n]);
    let mut run = MemRun {
        u: vec![0.0; b * t * m],
        hid: vec![0.0; b * t * h2],
        g1: vec![0.0; b * t * m],
        g2: vec![0.0; b * t * m],
    };
    let mut pre = vec![0.0f32; b * h2p];
    let mut z1 = vec![0.0f32; b * mp];
    let mut z2 = vec![0.0f32; b * mp];
    for s in 0..t {
        for bi in 0..b {
            let f = bi * t + s;
            pre[bi * h2p..bi * h2p + h2].copy_from_slice(&x.gate_in[f * h2..(f + 1) * h2]);
            z1[bi * mp..bi * mp + m].copy_from_slice(&x.b_1);
            z2[bi * mp..bi * mp + m].copy_from_slice(&x.b_2);
        }
        if s > 0 {
            K::acc(b, m, &run.u[(s - 1) * m..], t * m, &wmp, &mut pre, h2p);
        }
        for bi in 0..b {
            let f = bi * t + s;
            let hid = &mut run.hid[f * h2..(f + 1) * h2];
            let pre = &pre[bi * h2p..bi * h2p + h2];
            match &x.drop {
                Some(dr) => {
                    for ((o, &p), &dv) in hid.iter_mut().zip(pre).zip(&dr[f * h2..(f + 1) * h2]) {
                        *o = p.max(0.0) * dv;
                    }
                }
                None => {
                    for (o, &p) in hid.iter_mut().zip(pre) {
                        *o = p.max(0.0);
                    }
                }
            }
        }
        K::acc(b, h, &run.hid[s * h2..], t * h2, &w1p, &mut z1, mp);
        K::acc(b, h, &run.hid[s * h2 + h..], t * h2, &w2p, &mut z2, mp);
        for bi in 0..b {
            let f = bi * t + s;
            let (before, cur) = run.u.split_at_mut(f * m);
            let u = &mut cur[..m];
            let prop = &x.proposal[f * m..(f + 1) * m];
            let g1 = &mut run.g1[f * m..(f + 1) * m];
            let g2 = &mut run.g2[f * m..(f + 1) * m];
            let (z1, z2) = (&z1[bi * mp..bi * mp + m], &z2[bi * mp..bi * mp + m]);
            if s == 0 {
                for j in 0..m {
                    g1[j] = sigmoid(z1[j]);
                    g2[j] = sigmoid(z2[j]);
                    u[j] = g2[j] * prop[j];
                }
            } else {
                let u_prev = &before[(f - 1) * m..f * m];
                for j in 0..m {
                    g1[j] = sigmoid(z1[j]);
                    g2[j] = sigmoid(z2[j]);
                    u[j] = g1[j] * u_prev[j] + g2[j] * prop[j];
                }
            }
        }
    }
    run
}

/// Gradients of the seven inputs, in [`gated_memory`]'s order.
pub(in crate::train::models::lstm::fused) struct MemGrads {
    gate_in: Vec<f32>,
    proposal: Vec<f32>,
    /// `dz` of both gates over all frames, `[B·T, M]`, for the weights' products.
    dz1: Vec<f32>,
    dz2: Vec<f32>,
}

#[inline(always)]
pub(in crate::train::models::lstm::fused) fn backward_with<K: Kernels>(
    sv: &MemSaved,
    grad: &[f32],
) -> MemGrads {
    let MemDims { b, t, h, m } = sv.d;
    let (x, run) = (&sv.inputs, &sv.run);
    let h2 = 2 * h;
    let (hp, mp) = (pad(h), pad(m));
    let w1t = pack(m, h, |k, n| x.w_1[n * m + k]);
    let w2t = pack(m, h, |k, n| x.w_2[n * m + k]);
    let wmt = pack(h2, m, |k, n| x.w_m[n * h2 + k]);
    let mut g = MemGrads {
        gate_in: vec![0.0; b * t * h2],
        proposal: vec![0.0; b * t * m],
        dz1: vec![0.0; b * t * m],
        dz2: vec![0.0; b * t * m],
    };
    let mut carry = vec![0.0f32; b * mp];
    let mut dh1 = vec![0.0f32; b * hp];
    let mut dh2 = vec![0.0f32; b * hp];
    for s in (0..t).rev() {
        for bi in 0..b {
            let f = bi * t + s;
            let carry = &mut carry[bi * mp..bi * mp + m];
            let gu = &grad[f * m..(f + 1) * m];
            let (g1, g2) = (&run.g1[f * m..(f + 1) * m], &run.g2[f * m..(f + 1) * m]);
            let prop = &x.proposal[f * m..(f + 1) * m];
            let dprop = &mut g.proposal[f * m..(f + 1) * m];
            let dz1 = &mut g.dz1[f * m..(f + 1) * m];
            let dz2 = &mut g.dz2[f * m..(f + 1) * m];
            let u_prev: &[f32] = if s == 0 {
                &[]
            } else {
                &run.u[(f - 1) * m..f * m]
            };
            for j in 0..m {
                let du = gu[j] + carry[j];
                let up = if s == 0 { 0.0 } else { u_prev[j] };
                dprop[j] = du * g2[j];
                carry[j] = du * g1[j];
                dz1[j] = du * up * g1[j] * (1.0 - g1[j]);
                dz2[j] = du * prop[j] * g2[j] * (1.0 - g2[j]);
            }
        }
        dh1.fill(0.0);
        dh2.fill(0.0);
        K::acc(b, m, &g.dz1[s * m..], t * m, &w1t, &mut dh1, hp);
        K::acc(b, m, &g.dz2[s * m..], t * m, &w2t, &mut dh2, hp);
        for bi in 0..b {
            let f = bi * t + s;
            let hid = &run.hid[f * h2..(f + 1) * h2];
            let dgate = &mut g.gate_in[f * h2..(f + 1) * h2];
            let dh = dh1[bi * hp..bi * hp + h]
                .iter()
                .chain(&dh2[bi * hp..bi * hp + h]);
            match &x.drop {
                Some(dr) => {
                    let dr = &dr[f * h2..(f + 1) * h2];
                    for (((o, &dv), &hv), &sc) in dgate.iter_mut().zip(dh).zip(hid).zip(dr) {
                        *o = if hv > 0.0 { dv * sc } else { 0.0 };
                    }
                }
                None => {
                    for ((o, &dv), &hv) in dgate.iter_mut().zip(dh).zip(hid) {
                        *o = if hv > 0.0 { dv } else { 0.0 };
                    }
                }
            }
        }
        if s > 0 {
            K::acc(b, h2, &g.gate_in[s * h2..], t * h2, &wmt, &mut carry, mp);
        }
    }
    g
}

#[derive(Debug)]
struct MemoryBackward;

impl Backward<Flex, 7> for MemoryBackward {
    type State = Arc<MemSaved>;

    fn backward(self, ops: Ops<Self::State, 7>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [n_gate, n_prop, n_wm, n_w1, n_b1, n_w2, n_b2] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let sv = ops.state;
        let MemDims { b, t, h, m } = sv.d;
        let h2 = 2 * h;
        let Some(grad) = Values::of(grad) else {
            return;
        };
        let g = backward(&sv, &grad);
        let rows = b * t;
        // `Aᵀ B` over all frames, `A` `[B·T, ka]` from `a`, `B` `[B·T, n]`.
        let at_b = |a: Vec<f32>, ka: usize, bm: &FlexTensor| -> FlexTensor {
            Flex::float_matmul(
                Flex::float_transpose(flex_tensor(a, [rows, ka])),
                bm.clone(),
            )
        };
        let col_sums = |x: &[f32]| -> FlexTensor {
            let mut s = vec![0.0f32; m];
            for row in x.chunks_exact(m) {
                for (a, &v) in s.iter_mut().zip(row) {
                    *a += v;
                }
            }
            flex_tensor(s, [m])
        };
        let half = |off: usize| -> Vec<f32> {
            sv.run
                .hid
                .chunks_exact(h2)
                .flat_map(|r| r[off..off + h].iter().copied())
                .collect()
        };
        // The retain gate and W_m only act from the second step on (as in the composed steps).
        let recurrent = t > 1;
        let (db_1, db_2) = (col_sums(&g.dz1), col_sums(&g.dz2));
        let dgate = flex_tensor(g.gate_in, [rows, h2]);
        let (dz1, dz2) = (flex_tensor(g.dz1, [rows, m]), flex_tensor(g.dz2, [rows, m]));
        if let Some(n) = n_wm.filter(|_| recurrent) {
            let mut prev = vec![0.0f32; rows * m];
            for bi in 0..b {
                let base = bi * t * m;
                prev[base + m..base + t * m].copy_from_slice(&sv.run.u[base..base + (t - 1) * m]);
            }
            grads.register::<Flex>(n.id, at_b(prev, m, &dgate));
        }
        if let Some(n) = n_w1.filter(|_| recurrent) {
            grads.register::<Flex>(n.id, at_b(half(0), h, &dz1));
        }
        if let Some(n) = n_b1.filter(|_| recurrent) {
            grads.register::<Flex>(n.id, db_1);
        }
        if let Some(n) = n_w2 {
            grads.register::<Flex>(n.id, at_b(half(h), h, &dz2));
        }
        if let Some(n) = n_b2 {
            grads.register::<Flex>(n.id, db_2);
        }
        if let Some(n) = n_prop {
            grads.register::<Flex>(n.id, flex_tensor(g.proposal, [b, t, m]));
        }
        if let Some(n) = n_gate {
            grads.register::<Flex>(n.id, dgate.reshape([b, t, h2].into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::models::lstm::with_composed_lstm;
    use crate::train::models::testing::{rng_lock, small_mfn};
    use crate::train::{FusionNet, train_device};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn dropout_scales_the_gates_hidden_layer() {
        let _rng = rng_lock();
        let d = train_device();
        d.seed(41);
        let (b, t, h, m) = (4, 6, 8, 5);
        let n = |shape: [usize; 3]| Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &d);
        let gate_in = n([b, t, 2 * h]);
        let proposal = n([b, t, m]);
        let w = |r, c| Tensor::<2>::random([r, c], Distribution::Normal(0.0, 0.3), &d);
        let p = MemoryParams {
            w_m: w(m, 2 * h),
            w_1: w(h, m),
            b_1: Tensor::zeros([m], &d),
            w_2: w(h, m),
            b_2: Tensor::zeros([m], &d),
        };
        let run = |drop| values(gated_memory(&gate_in, &proposal, &p, drop).expect("fused"));
        let plain = run(None);
        assert_eq!(plain, run(Some(0.0)));
        let dropped = run(Some(0.5));
        assert!(
            plain
                .iter()
                .zip(&dropped)
                .any(|(a, b)| (a - b).abs() > 1e-3)
        );
        assert!(dropped.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn dropout_keeps_the_expected_fraction_reproducibly() {
        let _rng = rng_lock();
        let d = train_device();
        let draw = |seed| {
            d.seed(seed);
            dropout_scales(100_001, 0.2, &d).expect("scales").to_vec()
        };
        let a = draw(5);
        assert_eq!(a, draw(5));
        assert_ne!(a, draw(6));
        assert_eq!(a.len(), 100_001);
        assert!(a.iter().all(|&v| v == 0.0 || v == 1.25));
        let kept = a.iter().filter(|&&v| v > 0.0).count() as f64 / a.len() as f64;
        assert!((kept - 0.8).abs() < 0.005, "{kept}");
        // Mean scale 1: the expected value passes through unchanged.
        let mean = a.iter().map(|&v| f64::from(v)).sum::<f64>() / a.len() as f64;
        assert!((mean - 1.0).abs() < 0.01, "{mean}");
    }

    #[test]
    fn mfn_without_dropout_gives_the_composed_outputs() {
        // The outputs (fused.rs's model test compares every parameter's gradient too).
        let _rng = rng_lock();
        let d = train_device();
        d.seed(42);
        let model = small_mfn(&d, 0.0);
        let (b, t) = (3, 7);
        let v = Tensor::<3>::random([b, t, 5], Distribution::Normal(0.0, 1.0), &d);
        let a = Tensor::<3>::random([b, t, 4], Distribution::Normal(0.0, 1.0), &d);
        let ones = Tensor::<2>::ones([b, t], &d);
        let out = |model: &crate::train::models::mfn::Mfn| {
            values(
                model
                    .forward(v.clone(), a.clone(), ones.clone(), ones.clone())
                    .va,
            )
        };
        let fused = out(&model);
        let composed = with_composed_lstm(|| out(&model));
        let diff = fused
            .iter()
            .zip(&composed)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(diff <= 1e-5, "{diff}");
    }
}
