// SPDX-License-Identifier: MPL-2.0
//! The LSTM recurrence of a whole sequence as one operation on burn's Flex backend, with a
//! handwritten backward pass (through [`burn::backend::autodiff`]'s custom operations).
//!
//! Same equations as [`super::Lstm::step`]; this module only changes how they run:
//!
//! - Forward: per step, one small matrix product `h_{t-1} W_h` (with `W_h` packed once per
//!   sequence into 16-column panels, no repacking per step) written on top of the projected
//!   input, then one pass over the gates that applies the nonlinearities and the masked
//!   update and keeps what the backward pass needs (gate activations, `tanh(c')`, every
//!   `h_t` and `c_t`).
//! - Backward: from the last step to the first, the gates' gradients (elementwise) and the
//!   hidden state's gradient `dG_t W_hᵀ` (again one small packed product per step). The
//!   input projection's gradient is the gates' gradient of every step; `W_h`'s gradient is
//!   one large matrix product `H_prevᵀ dG` over all `B·T` rows.
//!
//! The mask (1 = frame present, fractions allowed) is a constant: no gradient flows to it.
//! The products run on AVX2/FMA when the processor has them, portable loops otherwise.

use std::cell::Cell;
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor, TensorData};

pub mod memory;

/// Flex with autodiff, no gradient checkpointing (the trainer's device).
type Ad = Autodiff<Flex>;

thread_local! {
    static FUSED: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` with the fused recurrence switched off on this thread: every [`super::Lstm`]
/// then runs its composed per-step tensor operations (the reference the fused operation is
/// tested against).
pub fn with_composed_lstm<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FUSED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FUSED.with(|c| c.replace(false)));
    f()
}

/// The masked LSTM recurrence over the projected inputs `xp = x W_x + b` `[B, T, 4H]` with
/// the recurrent weight `w_h` `[H, 4H]` and an optional mask `[B, T]`, from the zero state.
///
/// Returns the hidden states `[B, T, H]`, or with `with_cell` the hidden then the cell
/// states along the last axis, `[B, T, 2H]`. `None` where the operation does not apply (not
/// f32 on the Flex backend with or without autodiff, gradient checkpointing, mismatched
/// shapes, or switched off by [`with_composed_lstm`]): the caller then runs the steps.
pub fn lstm_sequence(
    xp: &Tensor<3>,
    w_h: &Tensor<2>,
    mask: Option<&Tensor<2>>,
    with_cell: bool,
) -> Option<Tensor<3>> {
    if !FUSED.with(Cell::get) {
        return None;
    }
    let [b, t, g] = xp.dims();
    let [h, g2] = w_h.dims();
    if h == 0 || g != 4 * h || g2 != g || b == 0 || t == 0 {
        return None;
    }
    if mask.is_some_and(|m| m.dims() != [b, t]) {
        return None;
    }
    let dims = Dims {
        b,
        t,
        h,
        width: if with_cell { 2 * h } else { h },
    };
    if xp.device().is_autodiff() {
        let xp = xp.clone().try_into_primitive::<Ad>().ok()?;
        let w_h = w_h.clone().try_into_primitive::<Ad>().ok()?;
        let mask = match mask {
            Some(m) => Some(m.clone().try_into_primitive::<Ad>().ok()?.into_primitive()),
            None => None,
        };
        let out = forward_autodiff(xp, w_h, mask, dims)?;
        Some(Tensor::from_primitive::<Ad>(out))
    } else {
        let xp = xp.clone().try_into_primitive::<Flex>().ok()?;
        let w_h = w_h.clone().try_into_primitive::<Flex>().ok()?;
        let mask = match mask {
            Some(m) => Some(m.clone().try_into_primitive::<Flex>().ok()?),
            None => None,
        };
        let mask = match mask {
            Some(m) => Some(Values::of(m)?),
            None => None,
        };
        let run = forward(&Values::of(xp)?, &Values::of(w_h)?, mask.as_deref(), dims);
        Some(Tensor::from_primitive::<Flex>(flex_tensor(
            run.output(dims),
            [b, t, dims.width],
        )))
    }
}

/// Sizes: batch, steps, hidden, and the output's last axis (H or 2H).
#[derive(Debug, Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    h: usize,
    width: usize,
}

/// The values of a contiguous f32 Flex tensor, shared with it (no copy).
#[derive(Clone)]
struct Values(FlexTensor);

impl Values {
    /// `t`'s values (copied only where `t` is a strided view); `None` for other dtypes.
    fn of(t: FlexTensor) -> Option<Self> {
        if t.dtype() != DType::F32 {
            return None;
        }
        let t = match t.as_slice::<f32>() {
            Some(_) => t,
            None => t.to_contiguous(),
        };
        t.as_slice::<f32>()?;
        Some(Values(t))
    }
}

impl From<Vec<f32>> for Values {
    fn from(v: Vec<f32>) -> Self {
        let n = v.len();
        Values(flex_tensor(v, [n]))
    }
}

impl std::ops::Deref for Values {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        // Contiguous f32 by construction.
        self.0.as_slice::<f32>().unwrap_or_default()
    }
}

fn flex_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Everything the forward pass computed; the backward pass reads all of it.
struct Run {
    /// h_t, `[B, T, H]`.
    h: Vec<f32>,
    /// c_t, `[B, T, H]`.
    c: Vec<f32>,
    /// σ(i), σ(f), tanh(g), σ(o) per frame, `[B, T, 4H]`.
    acts: Vec<f32>,
    /// tanh(c'), `[B, T, H]`.
    tanh_c: Vec<f32>,
}

impl Run {
    /// The operation's output: h, or h then c along the last axis.
    fn output(&self, d: Dims) -> Vec<f32> {
        if d.width == d.h {
            return self.h.clone();
        }
        let mut out = Vec::with_capacity(d.b * d.t * d.width);
        for (h, c) in self.h.chunks_exact(d.h).zip(self.c.chunks_exact(d.h)) {
            out.extend_from_slice(h);
            out.extend_from_slice(c);
        }
        out
    }
}

/// What the backward pass needs.
struct Saved {
    dims: Dims,
    w_h: Values,
    mask: Option<Values>,
    run: Run,
}

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saved")
            .field("dims", &self.dims)
            .field("masked", &self.mask.is_some())
            .finish()
    }
}

#[derive(Debug)]
struct LstmBackward;

impl Backward<Flex, 2> for LstmBackward {
    type State = Arc<Saved>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_xp, node_wh] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let d = s.dims;
        let Some(grad) = Values::of(grad) else {
            // Gradients of an f32 operation are f32: not reached.
            return;
        };
        let dxp = flex_tensor(backward(&s, &grad), [d.b * d.t, 4 * d.h]);
        // A one-step sequence never multiplies by W_h: no gradient, as in the composed steps.
        if let Some(node) = node_wh.filter(|_| d.t > 1) {
            // dW_h = H_prevᵀ dG over all B·T frames; H_prev is h shifted by one step.
            let (b, t, h) = (d.b, d.t, d.h);
            let mut prev = vec![0.0f32; b * t * h];
            for bi in 0..b {
                let base = bi * t * h;
                prev[base + h..base + t * h].copy_from_slice(&s.run.h[base..base + (t - 1) * h]);
            }
            let prev = flex_tensor(prev, [b * t, h]);
            let dw = Flex::float_matmul(Flex::float_transpose(prev), dxp.clone());
            grads.register::<Flex>(node.id, dw);
        }
        if let Some(node) = node_xp {
            grads.register::<Flex>(node.id, dxp.reshape([d.b, d.t, 4 * d.h].into()));
        }
    }
}

fn forward_autodiff(
    xp: FloatTensor<Ad>,
    w_h: FloatTensor<Ad>,
    mask: Option<FlexTensor>,
    d: Dims,
) -> Option<FloatTensor<Ad>> {
    let (xp, xp_node) = xp.into_parts();
    let (w_h, wh_node) = w_h.into_parts();
    let xp = Values::of(xp)?;
    let w_h = Values::of(w_h)?;
    let mask = match mask {
        Some(m) => Some(Values::of(m)?),
        None => None,
    };
    let prep = <LstmBackward as Backward<Flex, 2>>::prepare::<NoCheckpointing>(
        LstmBackward,
        [xp_node, wh_node],
    );
    let run = forward(&xp, &w_h, mask.as_deref(), d);
    let out = flex_tensor(run.output(d), [d.b, d.t, d.width]);
    Some(match prep.compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(
            Arc::new(Saved {
                dims: d,
                w_h,
                mask,
                run,
            }),
            out,
        ),
        OpsKind::UnTracked(prep) => prep.finish(out),
    })
}

/// Columns per packed panel (two AVX registers).
const PANEL: usize = 16;

fn pad(n: usize) -> usize {
    n.div_ceil(PANEL) * PANEL
}

/// Packs the `k × n` matrix `at(row, col)` into panels of 16 columns: panel `p` holds rows
/// `0..k` of columns `16p..16p+16` contiguously (zeros past `n`).
fn pack(k: usize, n: usize, at: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    let mut out = vec![0.0f32; pad(n) * k];
    for (p, panel) in out.chunks_exact_mut(k * PANEL).enumerate() {
        for (row, dst) in panel.chunks_exact_mut(PANEL).enumerate() {
            for (j, v) in dst.iter_mut().enumerate() {
                let col = p * PANEL + j;
                if col < n {
                    *v = at(row, col);
                }
            }
        }
    }
    out
}

/// The per-step kernels of one instruction set.
trait Kernels {
    /// `out[r, :] += a[r, :k] · B` for `rows` rows, `B` packed by [`pack`]; row `r` of `a`
    /// starts at `r · lda`, of `out` at `r · ldo` (`ldo` ≥ the padded column count).
    fn acc(rows: usize, k: usize, a: &[f32], lda: usize, bp: &[f32], out: &mut [f32], ldo: usize);

    /// [`CellForward::run`] with mask value `m` (`None`: no mask).
    fn cell_forward(cell: CellForward<'_>, m: Option<f32>);

    /// [`CellBackward::run`] with mask value `m` (`None`: no mask).
    fn cell_backward(cell: CellBackward<'_>, m: Option<f32>);
}

/// Defines `fn $fwd` and `fn $bwd` (with the attributes given) that take a cell's slices as
/// separate arguments: the compiler then knows they do not overlap and vectorises the
/// loops without run-time overlap checks.
macro_rules! cell_entry_points {
    ($(#[$attr:meta])* [$($qual:tt)*] $fwd:ident, $bwd:ident) => {
        #[allow(clippy::too_many_arguments)]
        #[inline(never)]
        $(#[$attr])*
        $($qual)* fn $fwd(
            gates: &[f32],
            h_prev: &[f32],
            c_prev: &[f32],
            acts: &mut [f32],
            tanh_c: &mut [f32],
            h_out: &mut [f32],
            c_out: &mut [f32],
            m: Option<f32>,
        ) {
            let cell = $crate::train::models::lstm::fused::CellForward {
                gates, h_prev, c_prev, acts, tanh_c, h_out, c_out,
            };
            match m {
                Some(m) => cell.run::<true>(m),
                None => cell.run::<false>(1.0),
            }
        }

        #[allow(clippy::too_many_arguments)]
        #[inline(never)]
        $(#[$attr])*
        $($qual)* fn $bwd(
            grad_h: &[f32],
            grad_c: &[f32],
            c_prev: &[f32],
            acts: &[f32],
            tanh_c: &[f32],
            carry_h: &mut [f32],
            carry_c: &mut [f32],
            dgates: &mut [f32],
            m: Option<f32>,
        ) {
            let cell = $crate::train::models::lstm::fused::CellBackward {
                grad_h, grad_c, c_prev, acts, tanh_c, carry_h, carry_c, dgates,
            };
            match m {
                Some(m) => cell.run::<true>(m),
                None => cell.run::<false>(1.0),
            }
        }
    };
}

cell_entry_points!([] portable_cell_forward, portable_cell_backward);

/// Plain loops.
struct Portable;

impl Kernels for Portable {
    fn cell_forward(c: CellForward<'_>, m: Option<f32>) {
        portable_cell_forward(
            c.gates, c.h_prev, c.c_prev, c.acts, c.tanh_c, c.h_out, c.c_out, m,
        );
    }

    fn cell_backward(c: CellBackward<'_>, m: Option<f32>) {
        portable_cell_backward(
            c.grad_h, c.grad_c, c.c_prev, c.acts, c.tanh_c, c.carry_h, c.carry_c, c.dgates, m,
        );
    }

    #[inline(always)]
    fn acc(rows: usize, k: usize, a: &[f32], lda: usize, bp: &[f32], out: &mut [f32], ldo: usize) {
        let panels = bp.len() / (k * PANEL);
        for r in 0..rows {
            let ar = &a[r * lda..r * lda + k];
            let or = &mut out[r * ldo..r * ldo + panels * PANEL];
            for (p, dst) in or.chunks_exact_mut(PANEL).enumerate() {
                let panel = &bp[p * k * PANEL..(p + 1) * k * PANEL];
                let mut acc = [0.0f32; PANEL];
                acc.copy_from_slice(dst);
                for (&av, w) in ar.iter().zip(panel.chunks_exact(PANEL)) {
                    for (s, &wv) in acc.iter_mut().zip(w) {
                        *s += av * wv;
                    }
                }
                dst.copy_from_slice(&acc);
            }
        }
    }
}

/// Runs the forward pass on the best instruction set available.
fn forward(xp: &[f32], w_h: &[f32], mask: Option<&[f32]>, d: Dims) -> Run {
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        // SAFETY: the processor has AVX2 and FMA (checked above).
        return unsafe { x86::forward(xp, w_h, mask, d) };
    }
    forward_with::<Portable>(xp, w_h, mask, d)
}

/// Runs the backward pass on the best instruction set available; returns the gradient of
/// the projected input, `[B, T, 4H]`.
fn backward(s: &Saved, grad: &[f32]) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        // SAFETY: the processor has AVX2 and FMA (checked above).
        return unsafe { x86::backward(s, grad) };
    }
    backward_with::<Portable>(s, grad)
}

#[inline(always)]
fn forward_with<G: Kernels>(xp: &[f32], w_h: &[f32], mask: Option<&[f32]>, d: Dims) -> Run {
    let Dims { b, t, h, .. } = d;
    let g4 = 4 * h;
    let gp = pad(g4);
    let wp = pack(h, g4, |k, n| w_h[k * g4 + n]);
    let mut run = Run {
        h: vec![0.0; b * t * h],
        c: vec![0.0; b * t * h],
        acts: vec![0.0; b * t * g4],
        tanh_c: vec![0.0; b * t * h],
    };
    let zeros = vec![0.0f32; h];
    let mut gates = vec![0.0f32; b * gp];
    for s in 0..t {
        for (bi, row) in gates.chunks_exact_mut(gp).enumerate() {
            row[..g4].copy_from_slice(&xp[(bi * t + s) * g4..(bi * t + s + 1) * g4]);
        }
        if s > 0 {
            G::acc(b, h, &run.h[(s - 1) * h..], t * h, &wp, &mut gates, gp);
        }
        for bi in 0..b {
            let f = bi * t + s;
            let (h_prev, h_out) = prev_and_current(&mut run.h, f, s, h, &zeros);
            let (c_prev, c_out) = prev_and_current(&mut run.c, f, s, h, &zeros);
            let cell = CellForward {
                gates: &gates[bi * gp..bi * gp + g4],
                h_prev,
                c_prev,
                acts: &mut run.acts[f * g4..(f + 1) * g4],
                tanh_c: &mut run.tanh_c[f * h..(f + 1) * h],
                h_out,
                c_out,
            };
            G::cell_forward(cell, mask.map(|m| m[f]));
        }
    }
    run
}

/// The states of frame `f - 1` (zeros at step 0) and frame `f` of a `[B·T, H]` buffer.
#[inline(always)]
fn prev_and_current<'a>(
    buf: &'a mut [f32],
    f: usize,
    s: usize,
    h: usize,
    zeros: &'a [f32],
) -> (&'a [f32], &'a mut [f32]) {
    if s == 0 {
        (zeros, &mut buf[f * h..(f + 1) * h])
    } else {
        let (before, rest) = buf[(f - 1) * h..(f + 1) * h].split_at_mut(h);
        (before, rest)
    }
}

/// One frame of one sequence: gates in, activations and states out.
struct CellForward<'a> {
    gates: &'a [f32],
    h_prev: &'a [f32],
    c_prev: &'a [f32],
    acts: &'a mut [f32],
    tanh_c: &'a mut [f32],
    h_out: &'a mut [f32],
    c_out: &'a mut [f32],
}

impl CellForward<'_> {
    #[inline(always)]
    fn run<const MASKED: bool>(self, m: f32) {
        let h = self.h_out.len();
        let (gi, rest) = self.gates.split_at(h);
        let (gf, rest) = rest.split_at(h);
        let (gg, go) = rest.split_at(h);
        let (ai, rest) = self.acts.split_at_mut(h);
        let (af, rest) = rest.split_at_mut(h);
        let (ag, ao) = rest.split_at_mut(h);
        let (go, ag, ao) = (&go[..h], &mut ag[..h], &mut ao[..h]);
        let (h_prev, c_prev, tanh_c) =
            (&self.h_prev[..h], &self.c_prev[..h], &mut self.tanh_c[..h]);
        let (h_out, c_out) = (&mut self.h_out[..h], &mut self.c_out[..h]);
        for j in 0..h {
            let i = sigmoid(gi[j]);
            let f = sigmoid(gf[j]);
            let g = tanh(gg[j]);
            let o = sigmoid(go[j]);
            let c_new = f * c_prev[j] + i * g;
            let tc = tanh(c_new);
            let h_new = o * tc;
            ai[j] = i;
            af[j] = f;
            ag[j] = g;
            ao[j] = o;
            tanh_c[j] = tc;
            if MASKED {
                h_out[j] = h_prev[j] + m * (h_new - h_prev[j]);
                c_out[j] = c_prev[j] + m * (c_new - c_prev[j]);
            } else {
                h_out[j] = h_new;
                c_out[j] = c_new;
            }
        }
    }
}

#[inline(always)]
fn backward_with<G: Kernels>(s: &Saved, grad: &[f32]) -> Vec<f32> {
    let Dims { b, t, h, width } = s.dims;
    let g4 = 4 * h;
    let hp = pad(h);
    let w_h = &s.w_h;
    // W_hᵀ `[4H, H]`, packed.
    let wtp = pack(g4, h, |k, n| w_h[n * g4 + k]);
    let zeros = vec![0.0f32; h];
    let mut dxp = vec![0.0f32; b * t * g4];
    // Gradients flowing into h_t, c_t from step t + 1.
    let mut carry_h = vec![0.0f32; b * hp];
    let mut carry_c = vec![0.0f32; b * h];
    for st in (0..t).rev() {
        for bi in 0..b {
            let f = bi * t + st;
            let go = &grad[f * width..(f + 1) * width];
            let cell = CellBackward {
                grad_h: &go[..h],
                grad_c: if width == 2 * h { &go[h..] } else { &zeros },
                c_prev: if st == 0 {
                    &zeros
                } else {
                    &s.run.c[(f - 1) * h..f * h]
                },
                acts: &s.run.acts[f * g4..(f + 1) * g4],
                tanh_c: &s.run.tanh_c[f * h..(f + 1) * h],
                carry_h: &mut carry_h[bi * hp..bi * hp + h],
                carry_c: &mut carry_c[bi * h..(bi + 1) * h],
                dgates: &mut dxp[f * g4..(f + 1) * g4],
            };
            G::cell_backward(cell, s.mask.as_ref().map(|m| m[f]));
        }
        if st > 0 {
            G::acc(b, g4, &dxp[st * g4..], t * g4, &wtp, &mut carry_h, hp);
        }
    }
    dxp
}

/// One frame of one sequence, backwards: writes the gates' gradients and replaces the
/// carried gradients of (h, c) by those of (h_{t-1}, c_{t-1}) (without the recurrent
/// product's term).
struct CellBackward<'a> {
    grad_h: &'a [f32],
    grad_c: &'a [f32],
    c_prev: &'a [f32],
    acts: &'a [f32],
    tanh_c: &'a [f32],
    carry_h: &'a mut [f32],
    carry_c: &'a mut [f32],
    dgates: &'a mut [f32],
}

impl CellBackward<'_> {
    #[inline(always)]
    fn run<const MASKED: bool>(self, m: f32) {
        let h = self.carry_c.len();
        let (ai, rest) = self.acts.split_at(h);
        let (af, rest) = rest.split_at(h);
        let (ag, ao) = rest.split_at(h);
        let ao = &ao[..h];
        let (di, rest) = self.dgates.split_at_mut(h);
        let (df, rest) = rest.split_at_mut(h);
        let (dg, d_o) = rest.split_at_mut(h);
        let (dg, d_o) = (&mut dg[..h], &mut d_o[..h]);
        let (grad_h, grad_c, c_prev, tanh_c) = (
            &self.grad_h[..h],
            &self.grad_c[..h],
            &self.c_prev[..h],
            &self.tanh_c[..h],
        );
        let (carry_h, carry_c) = (&mut self.carry_h[..h], &mut self.carry_c[..h]);
        for j in 0..h {
            let dh = grad_h[j] + carry_h[j];
            let dc = grad_c[j] + carry_c[j];
            // h_t = h_{t-1} + m (h' − h_{t-1}), c_t likewise.
            let (dh_new, dc_direct) = if MASKED { (m * dh, m * dc) } else { (dh, dc) };
            let (i, f, g, o, tc) = (ai[j], af[j], ag[j], ao[j], tanh_c[j]);
            // h' = o tanh(c'), c' = f c_{t-1} + i g.
            let dc_new = dc_direct + dh_new * o * (1.0 - tc * tc);
            let d_out = dh_new * tc;
            di[j] = dc_new * g * i * (1.0 - i);
            df[j] = dc_new * c_prev[j] * f * (1.0 - f);
            dg[j] = dc_new * i * (1.0 - g * g);
            d_o[j] = d_out * o * (1.0 - o);
            if MASKED {
                carry_h[j] = (1.0 - m) * dh;
                carry_c[j] = (1.0 - m) * dc + dc_new * f;
            } else {
                carry_h[j] = 0.0;
                carry_c[j] = dc_new * f;
            }
        }
    }
}

/// e^x for x in f32's range (Cephes' polynomial, relative error ~1e-7); branch-free so
/// the loops above vectorise.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding it rounds to an integer held in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let shifted = x * LOG2E + MAGIC;
    let n = shifted - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_2e-4;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // n + 127 in [1, 254] for the clamped x: a normal float's exponent (NaN stays NaN
    // through `e`; wrapping keeps every input panic-free).
    let ni = (shifted.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    e * f32::from_bits((ni.wrapping_add(127) << 23) as u32)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    // tanh x = 1 − 2 / (1 + e^{2x}); saturates to ±1 through the clamp in `exp`.
    1.0 - 2.0 / (1.0 + exp(2.0 * x))
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::memory::{MemDims, MemGrads, MemInputs, MemRun, MemSaved};
    use super::{CellBackward, CellForward, Dims, Kernels, PANEL, Run, Saved};

    pub fn available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// [`super::forward_with`] compiled for AVX2 + FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn forward(xp: &[f32], w_h: &[f32], mask: Option<&[f32]>, d: Dims) -> Run {
        super::forward_with::<Avx2>(xp, w_h, mask, d)
    }

    /// [`super::memory::forward_with`] compiled for AVX2 + FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn memory_forward(x: &MemInputs, d: MemDims) -> MemRun {
        super::memory::forward_with::<Avx2>(x, d)
    }

    /// [`super::memory::backward_with`] compiled for AVX2 + FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn memory_backward(s: &MemSaved, grad: &[f32]) -> MemGrads {
        super::memory::backward_with::<Avx2>(s, grad)
    }

    /// [`super::backward_with`] compiled for AVX2 + FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn backward(s: &Saved, grad: &[f32]) -> Vec<f32> {
        super::backward_with::<Avx2>(s, grad)
    }

    struct Avx2;

    cell_entry_points!(
        #[target_feature(enable = "avx2,fma")]
        [unsafe] cell_forward, cell_backward
    );

    impl Kernels for Avx2 {
        fn cell_forward(c: CellForward<'_>, m: Option<f32>) {
            // SAFETY: only reached where `available()` holds.
            unsafe {
                cell_forward(
                    c.gates, c.h_prev, c.c_prev, c.acts, c.tanh_c, c.h_out, c.c_out, m,
                )
            }
        }

        fn cell_backward(c: CellBackward<'_>, m: Option<f32>) {
            // SAFETY: only reached where `available()` holds.
            unsafe {
                cell_backward(
                    c.grad_h, c.grad_c, c.c_prev, c.acts, c.tanh_c, c.carry_h, c.carry_c, c.dgates,
                    m,
                )
            }
        }

        #[inline(always)]
        fn acc(
            rows: usize,
            k: usize,
            a: &[f32],
            lda: usize,
            bp: &[f32],
            out: &mut [f32],
            ldo: usize,
        ) {
            let panels = bp.len() / (k * PANEL);
            // Every read and write below stays inside these bounds.
            assert!(rows == 0 || a.len() >= (rows - 1) * lda + k);
            assert!(rows == 0 || out.len() >= (rows - 1) * ldo + panels * PANEL);
            assert!(bp.len() == panels * k * PANEL);
            // SAFETY: bounds checked above; only reached where `available()` holds.
            unsafe {
                gemm(
                    rows,
                    k,
                    a.as_ptr(),
                    lda,
                    bp.as_ptr(),
                    panels,
                    out.as_mut_ptr(),
                    ldo,
                )
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn gemm(
        rows: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        bp: *const f32,
        panels: usize,
        out: *mut f32,
        ldo: usize,
    ) {
        for p in 0..panels {
            // SAFETY (all pointer offsets): within the bounds the caller checked.
            let (bp, out) = unsafe { (bp.add(p * k * PANEL), out.add(p * PANEL)) };
            let mut r = 0;
            while r + 6 <= rows {
                unsafe { micro::<6>(k, a.add(r * lda), lda, bp, out.add(r * ldo), ldo) };
                r += 6;
            }
            unsafe {
                match rows - r {
                    5 => micro::<5>(k, a.add(r * lda), lda, bp, out.add(r * ldo), ldo),
                    4 => micro::<4>(k, a.add(r * lda), lda, bp, out.add(r * ldo), ldo),
                    3 => micro::<3>(k, a.add(r * lda), lda, bp, out.add(r * ldo), ldo),
                    2 => micro::<2>(k, a.add(r * lda), lda, bp, out.add(r * ldo), ldo),
                    1 => micro::<1>(k, a.add(r * lda), lda, bp, out.add(r * ldo), ldo),
                    _ => {}
                }
            }
        }
    }

    /// `R` rows × one 16-column panel: 2R accumulators in registers over the whole `k`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn micro<const R: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        bp: *const f32,
        out: *mut f32,
        ldo: usize,
    ) {
        unsafe {
            let mut lo = [_mm256_setzero_ps(); R];
            let mut hi = [_mm256_setzero_ps(); R];
            for r in 0..R {
                lo[r] = _mm256_loadu_ps(out.add(r * ldo));
                hi[r] = _mm256_loadu_ps(out.add(r * ldo + 8));
            }
            for kk in 0..k {
                let w0 = _mm256_loadu_ps(bp.add(kk * PANEL));
                let w1 = _mm256_loadu_ps(bp.add(kk * PANEL + 8));
                for r in 0..R {
                    let av = _mm256_set1_ps(*a.add(r * lda + kk));
                    lo[r] = _mm256_fmadd_ps(av, w0, lo[r]);
                    hi[r] = _mm256_fmadd_ps(av, w1, hi[r]);
                }
            }
            for r in 0..R {
                _mm256_storeu_ps(out.add(r * ldo), lo[r]);
                _mm256_storeu_ps(out.add(r * ldo + 8), hi[r]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Lstm;
    use super::*;
    use crate::train::models::mctn::MctnConfig;
    use crate::train::models::testing::{rng_lock, small_mfn, test_masks};
    use crate::train::{FusionNet, cpu_device, train_device};
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::{Device, Distribution, Gradients as TensorGradients};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    /// max |a − b|.
    fn max_abs(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// max |a − b| / max |b|.
    fn max_rel(a: &[f32], b: &[f32]) -> f32 {
        let scale = b.iter().map(|x| x.abs()).fold(0.0, f32::max).max(1e-12);
        max_abs(a, b) / scale
    }

    /// No mask; 0/1 masks with missing spans (frame 0 among them); fractional masks.
    fn masks(b: usize, t: usize, device: &Device) -> Vec<Option<Tensor<2>>> {
        let binary = test_masks(b, t).0;
        let fractional: Vec<f32> = (0..b * t)
            .map(|i| [0.0, 0.3, 1.0, 0.75, 1.0, 0.0, 0.5][i % 7])
            .collect();
        [binary, fractional]
            .into_iter()
            .map(|m| Some(Tensor::from_data(TensorData::new(m, [b, t]), device)))
            .chain([None])
            .collect()
    }

    /// The sizes tested: batch rows beyond one register block, hidden sizes below, at and
    /// off the 16-column panels.
    const SIZES: [(usize, usize, usize, usize); 3] = [(3, 7, 5, 5), (7, 9, 4, 20), (2, 1, 3, 16)];

    #[test]
    fn fused_forward_equals_the_composed_steps() {
        let _rng = rng_lock();
        for device in [cpu_device(), train_device()] {
            device.seed(31);
            for (b, t, d, h) in SIZES {
                let layer = Lstm::new(d, h, &device);
                let x = Tensor::<3>::random([b, t, d], Distribution::Normal(0.0, 1.5), &device);
                for mask in masks(b, t, &device) {
                    let xp = layer.input.forward(x.clone());
                    let w = layer.recurrent.weight.val();
                    assert!(lstm_sequence(&xp, &w, mask.as_ref(), true).is_some());
                    let fused = layer.forward(x.clone(), mask.clone());
                    let hidden = layer.forward_hidden(x.clone(), mask.clone());
                    let composed = with_composed_lstm(|| layer.forward(x.clone(), mask.clone()));
                    let (fh, fc, ch) = (values(fused.h), values(fused.c), values(composed.h));
                    let dh = max_abs(&fh, &ch);
                    let dc = max_abs(&fc, &values(composed.c));
                    assert!(
                        dh <= 1e-5 && dc <= 1e-5,
                        "{b}x{t}x{h}: |Δh| {dh}, |Δc| {dc}"
                    );
                    assert_eq!(max_abs(&values(hidden), &fh), 0.0);
                    eprintln!(
                        "{b}x{t}x{h} masked {}: |Δh| {dh:e}, |Δc| {dc:e}",
                        mask.is_some()
                    );
                }
            }
        }
    }

    /// Every float parameter's gradient, in visiting order.
    struct ParamGrads<'a> {
        grads: &'a TensorGradients,
        out: Vec<Vec<f32>>,
    }

    impl ModuleVisitor for ParamGrads<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let g = param.val().grad(self.grads).map(values).unwrap_or_default();
            self.out.push(g);
        }
    }

    fn param_grads<M: Module>(model: &M, grads: &TensorGradients) -> Vec<Vec<f32>> {
        let mut v = ParamGrads {
            grads,
            out: Vec::new(),
        };
        model.visit(&mut v);
        v.out
    }

    fn assert_grads_match(what: &str, fused: &[Vec<f32>], composed: &[Vec<f32>]) {
        assert_eq!(fused.len(), composed.len());
        let mut worst = 0.0f32;
        for (i, (f, c)) in fused.iter().zip(composed).enumerate() {
            assert_eq!(
                f.len(),
                c.len(),
                "{what}: gradient {i} present in one run only"
            );
            let e = max_rel(f, c);
            assert!(e <= 1e-4, "{what}: gradient {i}: relative error {e}");
            worst = worst.max(e);
        }
        eprintln!("{what}: worst relative gradient error {worst:e}");
    }

    #[test]
    fn fused_gradients_equal_the_composed_steps() {
        let _rng = rng_lock();
        let device = train_device();
        device.seed(32);
        for (b, t, d, h) in SIZES {
            let layer = Lstm::new(d, h, &device);
            let x = Tensor::<3>::random([b, t, d], Distribution::Normal(0.0, 1.5), &device);
            let rh = Tensor::<3>::random([b, t, h], Distribution::Normal(0.0, 1.0), &device);
            let rc = Tensor::<3>::random([b, t, h], Distribution::Normal(0.0, 1.0), &device);
            for mask in masks(b, t, &device) {
                for with_cell in [true, false] {
                    let grads = || {
                        let x = x.clone().require_grad();
                        let loss = if with_cell {
                            let s = layer.forward(x.clone(), mask.clone());
                            (s.h * rh.clone()).sum() + (s.c * rc.clone()).sum()
                        } else {
                            (layer.forward_hidden(x.clone(), mask.clone()) * rh.clone()).sum()
                        };
                        let grads = loss.backward();
                        let mut all = param_grads(&layer, &grads);
                        all.push(x.grad(&grads).map(values).expect("x's gradient"));
                        all
                    };
                    let fused = grads();
                    let composed = with_composed_lstm(grads);
                    // Every gradient is there (W_h's only where a step multiplies by it).
                    let present = fused.iter().filter(|g| !g.is_empty()).count();
                    assert_eq!(present, if t > 1 { 4 } else { 3 });
                    let what = format!("{b}x{t}x{h} masked {} cell {with_cell}", mask.is_some());
                    assert_grads_match(&what, &fused, &composed);
                }
            }
        }
    }

    #[test]
    fn portable_loops_equal_the_dispatched_kernels() {
        // On a processor with AVX2 this compares the portable loops with the AVX2 kernels.
        let (b, t, h) = (7, 5, 20);
        let mut rng = crate::dataset::synth::Rng::new(9);
        let mut normal = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.normal() as f32).collect() };
        let xp = normal(b * t * 4 * h);
        let w_h = Values::from(normal(h * 4 * h));
        let grad = normal(b * t * 2 * h);
        let mask = Values::from((0..b * t).map(|i| (i % 3) as f32 / 2.0).collect::<Vec<_>>());
        let d = Dims {
            b,
            t,
            h,
            width: 2 * h,
        };
        let portable = forward_with::<Portable>(&xp, &w_h, Some(&mask), d);
        let run = forward(&xp, &w_h, Some(&mask), d);
        assert!(max_abs(&portable.output(d), &run.output(d)) <= 1e-6);
        let saved = Saved {
            dims: d,
            w_h,
            mask: Some(mask),
            run,
        };
        let e = max_rel(
            &backward_with::<Portable>(&saved, &grad),
            &backward(&saved, &grad),
        );
        assert!(e <= 1e-6, "{e}");
    }

    /// Gradients of every parameter of a model through a scalar of its outputs.
    fn model_grads<M: FusionNet + Module>(model: &M, b: usize, t: usize) -> Vec<Vec<f32>> {
        let device = train_device();
        let v = Tensor::<3>::random([b, t, 5], Distribution::Normal(0.0, 1.0), &device);
        let a = Tensor::<3>::random([b, t, 4], Distribution::Normal(0.0, 1.0), &device);
        let rv = Tensor::<3>::random([b, t, 2], Distribution::Normal(0.0, 1.0), &device);
        let re = Tensor::<3>::random([b, t, 8], Distribution::Normal(0.0, 1.0), &device);
        let (vm, am) = test_masks(b, t);
        let vm = Tensor::<2>::from_data(TensorData::new(vm, [b, t]), &device);
        let am = Tensor::<2>::from_data(TensorData::new(am, [b, t]), &device);
        let run = || {
            let out = model.forward(v.clone(), a.clone(), vm.clone(), am.clone());
            let mut loss = (out.va * rv.clone()).sum() + (out.expr * re.clone()).sum();
            if let Some(aux) = out.aux_loss {
                loss = loss + aux;
            }
            param_grads(model, &loss.backward())
        };
        let fused = run();
        let composed = with_composed_lstm(run);
        assert_grads_match("model", &fused, &composed);
        fused
    }

    #[test]
    fn model_gradients_equal_the_composed_steps() {
        let _rng = rng_lock();
        let device = train_device();
        device.seed(33);
        let mfn = small_mfn(&device, 0.0);
        let g = model_grads(&mfn, 3, 7);
        assert!(g.iter().filter(|g| !g.is_empty()).count() > 20);
        let mctn = MctnConfig {
            hidden: 8,
            dropout: 0.0,
            ..MctnConfig::new(5, 4)
        }
        .init(&device);
        let g = model_grads(&mctn, 3, 7);
        assert!(g.iter().filter(|g| !g.is_empty()).count() > 20);
    }
}
