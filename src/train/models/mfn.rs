// SPDX-License-Identifier: MPL-2.0
//! Memory Fusion Network (Zadeh et al., "Memory Fusion Network for Multi-view Sequential
//! Learning", AAAI 2018), per-frame.
//!
//! - A system of LSTMs: one [`Lstm`] per modality (visual, audio). A missing frame
//!   (mask 0) is zeroed and leaves that LSTM's state unchanged.
//! - Delta-memory Attention Network (DMAN): `c* = [c_{t-1}; c_t]` of both LSTMs
//!   (`4H` values), attention `a = softmax(MLP_a(c*))` over those values, `ĉ* = a ⊙ c*`.
//! - Multi-view gated memory `u` (size M): proposal `û_t = tanh(MLP_u(ĉ*))`, retain gate
//!   `γ1 = σ(MLP_γ1([ĉ*; u_{t-1}]))`, update gate `γ2 = σ(MLP_γ2([ĉ*; u_{t-1}]))`,
//!   `u_t = γ1 ⊙ u_{t-1} + γ2 ⊙ û_t`, `u_{-1} = 0`. Every MLP is Linear–ReLU–Dropout–Linear
//!   as in the authors' code.
//! - Output per frame from `[h_v; h_a; u_t]`: Linear–ReLU–Dropout, then `va = tanh(Linear)`
//!   and `expr = Linear` (logits).
//!
//! Causal: frame t sees frames ≤ t only. Because the LSTMs do not read the memory (as in
//! the paper), the LSTMs run first, the attention and proposal run on all frames at once,
//! and only the gates' memory term (`u_{t-1} W`, split out of the gates' first layer)
//! runs per step — the same function, fewer sequential operations.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid, softmax};
use burn::tensor::{Device, Tensor};

use super::lstm::{
    LinearConsts, Lstm, MemoryParams, gated_memory, gather_step, no_frames, split_frames,
    stack_steps,
};
use crate::onnx::{Attr, GraphBuilder};
use crate::train::export as ex;
use crate::train::model::{ExportNames, FusionNet, FusionOutput};

/// Sizes of an [`Mfn`].
#[derive(Debug, Clone, PartialEq)]
pub struct MfnConfig {
    /// Dv, the visual feature size.
    pub visual_dim: usize,
    /// Da, the audio feature size.
    pub audio_dim: usize,
    /// Hidden size of each modality's LSTM (and of the attention/gate/output MLPs).
    pub hidden: usize,
    /// Size M of the multi-view gated memory.
    pub memory: usize,
    /// Dropout probability inside the MLPs (training only).
    pub dropout: f64,
}

impl MfnConfig {
    /// The seed's sizes: hidden 256, memory 256, dropout 0.2.
    pub fn new(visual_dim: usize, audio_dim: usize) -> Self {
        MfnConfig {
            visual_dim,
            audio_dim,
            hidden: 256,
            memory: 256,
            dropout: 0.2,
        }
    }

    /// A freshly initialised model on `device`.
    pub fn init(&self, device: &Device) -> Mfn {
        let h = self.hidden;
        let m = self.memory;
        let cstar = 4 * h;
        let lin = |i, o| LinearConfig::new(i, o).init(device);
        Mfn {
            lstm_v: Lstm::new(self.visual_dim, h, device),
            lstm_a: Lstm::new(self.audio_dim, h, device),
            att1: lin(cstar, h),
            att2: lin(h, cstar),
            prop1: lin(cstar, h),
            prop2: lin(h, m),
            gate_att: lin(cstar, 2 * h),
            gate_mem: LinearConfig::new(m, 2 * h).with_bias(false).init(device),
            gamma1: lin(h, m),
            gamma2: lin(h, m),
            head: lin(2 * h + m, h),
            va: lin(h, 2),
            expr: lin(h, crate::EXPRESSIONS.len()),
            dropout: DropoutConfig::new(self.dropout).init(),
            hidden: h,
            memory: m,
        }
    }
}

/// The Memory Fusion Network; see the module documentation.
#[derive(Module, Debug)]
pub struct Mfn {
    /// Visual LSTM.
    pub lstm_v: Lstm,
    /// Audio LSTM.
    pub lstm_a: Lstm,
    /// DMAN attention MLP, first layer `4H → H`.
    pub att1: Linear,
    /// DMAN attention MLP, second layer `H → 4H` (softmax over the 4H values).
    pub att2: Linear,
    /// Memory proposal MLP, first layer `4H → H`.
    pub prop1: Linear,
    /// Memory proposal MLP, second layer `H → M` (tanh).
    pub prop2: Linear,
    /// The `ĉ*` part of both gates' first layers (γ1 then γ2), `4H → 2H`.
    pub gate_att: Linear,
    /// The `u_{t-1}` part of both gates' first layers, `M → 2H`, no bias.
    pub gate_mem: Linear,
    /// Retain gate γ1's second layer `H → M` (sigmoid).
    pub gamma1: Linear,
    /// Update gate γ2's second layer `H → M` (sigmoid).
    pub gamma2: Linear,
    /// Output layer `[h_v; h_a; u] → H`.
    pub head: Linear,
    /// Valence/arousal `H → 2` (tanh).
    pub va: Linear,
    /// Expression logits `H → 8`.
    pub expr: Linear,
    /// Dropout after every hidden ReLU (training only).
    pub dropout: Dropout,
    /// H.
    pub hidden: usize,
    /// M.
    pub memory: usize,
}

impl Mfn {
    /// The gated memory over all frames: every `u_t`, `[B,T,M]`, from the gates' input
    /// `[B,T,2H]` and the proposal `[B,T,M]`. One fused operation on the training device,
    /// composed per-step operations elsewhere.
    fn memory(&self, gate_in: Tensor<3>, proposal: Tensor<3>) -> Tensor<3> {
        let (h, m) = (self.hidden, self.memory);
        let t = gate_in.dims()[1];
        if let (Some(b_1), Some(b_2)) = (&self.gamma1.bias, &self.gamma2.bias) {
            let params = MemoryParams {
                w_m: self.gate_mem.weight.val(),
                w_1: self.gamma1.weight.val(),
                b_1: b_1.val(),
                w_2: self.gamma2.weight.val(),
                b_2: b_2.val(),
            };
            let dropout = (self.dropout.training.is_enabled() && gate_in.device().is_autodiff())
                .then_some(self.dropout.prob);
            if let Some(u) = gated_memory(&gate_in, &proposal, &params, dropout) {
                return u;
            }
        }
        let per_frame = split_frames(Tensor::cat(vec![gate_in, proposal], 2));
        let mut mems: Vec<Tensor<2>> = Vec::with_capacity(t);
        let mut mem: Option<Tensor<2>> = None;
        for f in per_frame {
            let gt = f.clone().narrow(1, 0, 2 * h);
            let pt = f.narrow(1, 2 * h, m);
            let pre = match &mem {
                Some(u) => gt + self.gate_mem.forward(u.clone()),
                None => gt,
            };
            let hid = self.dropout.forward(relu(pre));
            let mut halves = hid.chunk(2, 1).into_iter();
            let (h1, h2) = (
                halves.next().expect("2 chunks"),
                halves.next().expect("2 chunks"),
            );
            let g2 = sigmoid(self.gamma2.forward(h2));
            let next = match &mem {
                Some(u) => sigmoid(self.gamma1.forward(h1)) * u.clone() + g2 * pt,
                None => g2 * pt,
            };
            mems.push(next.clone());
            mem = Some(next);
        }
        Tensor::stack(mems, 1)
    }
}

impl FusionNet for Mfn {
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
        let h = self.hidden;
        let visual = visual * visual_mask.clone().unsqueeze_dim::<3>(2);
        let audio = audio * audio_mask.clone().unsqueeze_dim::<3>(2);
        let sv = self.lstm_v.forward(visual, Some(visual_mask));
        let sa = self.lstm_a.forward(audio, Some(audio_mask));

        // DMAN over [c_{t-1}; c_t] of both LSTMs, all frames at once.
        let c = Tensor::cat(vec![sv.c, sa.c], 2); // [B,T,2H]
        let zero = Tensor::<3>::zeros([b, 1, 2 * h], &device);
        let c_prev = if t > 1 {
            Tensor::cat(vec![zero, c.clone().narrow(1, 0, t - 1)], 1)
        } else {
            zero
        };
        let cstar = Tensor::cat(vec![c_prev, c], 2); // [B,T,4H]
        let mlp = |l1: &Linear, l2: &Linear, x: Tensor<3>| {
            l2.forward(self.dropout.forward(relu(l1.forward(x))))
        };
        let att = softmax(mlp(&self.att1, &self.att2, cstar.clone()), 2);
        let attended = cstar * att;
        let proposal = mlp(&self.prop1, &self.prop2, attended.clone()).tanh(); // [B,T,M]
        let gate_in = self.gate_att.forward(attended); // [B,T,2H]
        let mems = self.memory(gate_in, proposal);
        let z = Tensor::cat(vec![sv.h, sa.h, mems], 2);
        let hid = self.dropout.forward(relu(self.head.forward(z)));
        FusionOutput {
            va: self.va.forward(hid.clone()).tanh(),
            expr: self.expr.forward(hid),
            aux_loss: None,
        }
    }

    fn export(&self, g: &mut GraphBuilder, names: &ExportNames) -> (String, String) {
        let t = names.t;
        let (h, m) = (self.hidden, self.memory);
        let vm = ex::unsqueeze(g, &names.visual_mask, &[2]);
        let am = ex::unsqueeze(g, &names.audio_mask, &[2]);
        let visual = ex::mul(g, &names.visual, &vm);
        let audio = ex::mul(g, &names.audio, &am);
        let (hv, cv) = self.lstm_v.export(g, &visual, Some(&vm), t);
        let (ha, ca) = self.lstm_a.export(g, &audio, Some(&am), t);
        let cv = stack_steps(g, &cv, h);
        let ca = stack_steps(g, &ca, h);
        let c = ex::concat(g, &[&cv, &ca], 2);

        // c_{t-1}: drop the last frame, pad a zero frame in front.
        let starts = ex::ints(g, &[0]);
        let ends = ex::ints(g, &[t as i64 - 1]);
        let axes = ex::ints(g, &[1]);
        let head = ex::op(g, "Slice", &[&c, &starts, &ends, &axes], &[]);
        let pads = ex::ints(g, &[0, 1, 0, 0, 0, 0]);
        let c_prev = ex::op(
            g,
            "Pad",
            &[&head, &pads],
            &[("mode", Attr::Str("constant".into()))],
        );
        let cstar = ex::concat(g, &[&c_prev, &c], 2);

        let mlp = |g: &mut GraphBuilder, l1: &Linear, l2: &Linear, x: &str| {
            let y = ex::linear(g, l1, x);
            let y = ex::relu(g, &y);
            ex::linear(g, l2, &y)
        };
        let logits = mlp(g, &self.att1, &self.att2, &cstar);
        let att = ex::softmax(g, &logits, 2);
        let attended = ex::mul(g, &cstar, &att);
        let proposal = mlp(g, &self.prop1, &self.prop2, &attended);
        let proposal = ex::tanh(g, &proposal);
        let gate_in = ex::linear(g, &self.gate_att, &attended);

        let wm = ex::param(g, "mfn_gate_mem", &self.gate_mem.weight);
        let split = ex::ints(g, &[h as i64, h as i64]);
        let g1w = LinearConsts::new(g, &self.gamma1);
        let g2w = LinearConsts::new(g, &self.gamma2);
        let mut mems: Vec<String> = Vec::with_capacity(t);
        for step in 0..t {
            let gt = gather_step(g, &gate_in, step);
            let pre = match mems.last() {
                Some(u) => {
                    let uw = ex::op(g, "MatMul", &[u, &wm], &[]);
                    ex::add(g, &gt, &uw)
                }
                None => gt,
            };
            let hid = ex::relu(g, &pre);
            let (h1, h2) = (g.fresh("mfn_h1"), g.fresh("mfn_h2"));
            g.node(
                "Split",
                &[&hid, &split],
                &[&h1, &h2],
                &[("axis", Attr::Int(1))],
            );
            let g2 = g2w.apply(g, &h2);
            let g2 = ex::sigmoid(g, &g2);
            let pt = gather_step(g, &proposal, step);
            let upd = ex::mul(g, &g2, &pt);
            let next = match mems.last() {
                Some(u) => {
                    let g1 = g1w.apply(g, &h1);
                    let g1 = ex::sigmoid(g, &g1);
                    let keep = ex::mul(g, &g1, u);
                    ex::add(g, &keep, &upd)
                }
                None => upd,
            };
            mems.push(next);
        }
        let mems = stack_steps(g, &mems, m);
        let hv = stack_steps(g, &hv, h);
        let ha = stack_steps(g, &ha, h);
        let z = ex::concat(g, &[&hv, &ha, &mems], 2);
        let hid = ex::linear(g, &self.head, &z);
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
    use crate::train::models::testing::{
        assert_export_parity, assert_learns, small_mfn, test_masks,
    };
    use crate::train::{cpu_device, train_device};
    use burn::tensor::{Distribution, TensorData};

    #[test]
    fn export_matches_burn_with_missing_frames() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = cpu_device();
        d.seed(11);
        let model = small_mfn(&d, 0.2);
        assert_export_parity("mfn", &model, 3, 7, 5, 4);
        // A one-frame window (no previous frame, no recurrence).
        assert_export_parity("mfn T = 1", &model, 2, 1, 5, 4);
    }

    #[test]
    fn missing_frames_do_not_leak_into_the_output() {
        let _rng = crate::train::models::testing::rng_lock();
        // Whatever a masked frame holds, the output is the same: its input is zeroed and
        // its LSTM keeps the state.
        let d = cpu_device();
        d.seed(12);
        let model = small_mfn(&d, 0.2);
        let (b, t) = (2, 6);
        let (vm, am) = test_masks(b, t);
        let vm = Tensor::<2>::from_data(TensorData::new(vm, [b, t]), &d);
        let am = Tensor::<2>::from_data(TensorData::new(am, [b, t]), &d);
        let v = Tensor::<3>::random([b, t, 5], Distribution::Normal(0.0, 1.0), &d);
        let a = Tensor::<3>::random([b, t, 4], Distribution::Normal(0.0, 1.0), &d);
        let noise = |x: &Tensor<3>| x.random_like(Distribution::Normal(0.0, 100.0));
        let inv = |m: &Tensor<2>| (m.clone().neg() + 1.0).unsqueeze_dim::<3>(2);
        let v2 = v.clone() + noise(&v) * inv(&vm);
        let a2 = a.clone() + noise(&a) * inv(&am);
        let o1 = model.forward(v, a, vm.clone(), am.clone());
        let o2 = model.forward(v2, a2, vm, am);
        let d_va = (o1.va - o2.va).abs().max().into_scalar::<f32>();
        let d_ex = (o1.expr - o2.expr).abs().max().into_scalar::<f32>();
        assert!(d_va < 1e-6 && d_ex < 1e-6, "{d_va} {d_ex}");
    }

    #[test]
    fn zero_length_sequences_give_empty_outputs() {
        let _rng = crate::train::models::testing::rng_lock();
        let d = cpu_device();
        let model = small_mfn(&d, 0.2);
        let out = model.forward(
            Tensor::zeros([2, 0, 5], &d),
            Tensor::zeros([2, 0, 4], &d),
            Tensor::zeros([2, 0], &d),
            Tensor::zeros([2, 0], &d),
        );
        assert_eq!(out.va.dims(), [2, 0, 2]);
        assert_eq!(out.expr.dims(), [2, 0, 8]);
    }

    #[test]
    fn learns_synth() {
        let _rng = crate::train::models::testing::rng_lock();
        let cfg = SynthConfig::default();
        let (train_set, val_set) = sequences(&cfg, 32, 6, 160, 32);
        let d = train_device();
        d.seed(1);
        let model = MfnConfig {
            hidden: 24,
            memory: 16,
            dropout: 0.1,
            ..MfnConfig::new(cfg.visual_dim, cfg.audio_dim)
        }
        .init(&d);
        assert_learns("mfn", model, &train_set, &val_set, 40, 5e-3);
    }
}
