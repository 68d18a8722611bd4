// SPDX-License-Identifier: MPL-2.0
//! Silero VAD's 16 kHz graph computed in Rust, with the weights read from the very ONNX
//! file ONNX Runtime would run (`weights/silero-vad.onnx`).
//!
//! Why: the model is small (about 0.7 M multiply-adds per 32 ms chunk) but is run 31
//! times a second, one chunk at a time, because its LSTM state goes from each chunk to
//! the next. Through ONNX Runtime each run pays for the `If` on the sample rate, some
//! hundred small nodes and the session's bookkeeping: 110–160 µs a chunk on one core,
//! the largest single cost of the default audio branch. The same arithmetic as plain
//! loops over [`crate::audio::dot`] takes a fraction of that (`bench/voice`).
//!
//! What it computes, per chunk of 64 context + 512 new samples (the graph's `then`
//! branch, taken when `sr` is 16000):
//! 1. the 576 samples reflect-padded by 64 on the right (640);
//! 2. an STFT as a strided convolution with the model's 258 × 256 basis (stride 128:
//!    4 frames), magnitudes of its 129 real/imaginary pairs;
//! 3. four 1-D convolutions (kernel 3, padding 1, strides 1, 2, 2, 1; 129 → 128 → 64 →
//!    64 → 128 channels), each + bias and ReLU, down to one 128-vector;
//! 4. one LSTM step (hidden 128, PyTorch gate order i, f, g, o) from the carried state
//!    `[h, c]`;
//! 5. ReLU(h), a 1 × 1 convolution to one value + bias, sigmoid: the speech probability.
//!
//! [`NativeSilero::from_onnx`] refuses a file whose weights are not all there with
//! these shapes, and [`crate::audio::silero::SileroVad`] compares it with ONNX Runtime
//! on a test signal before it uses it, so another model behind the same contract runs
//! through ONNX Runtime instead of being computed wrongly.

use std::sync::Arc;

use prost::Message;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::audio::dot;
use crate::onnx::proto::{GraphProto, ModelProto, TensorProto, data_type};

/// New samples per chunk.
pub const CHUNK: usize = 512;
/// Samples of the previous chunk in front of each chunk.
pub const CONTEXT: usize = 64;
/// Values of the carried state: `h` then `c`, 128 each (`[2, 1, 128]`).
pub const STATE: usize = 2 * HIDDEN;

const INPUT: usize = CONTEXT + CHUNK;
const PAD: usize = 64;
const N_FFT: usize = 256;
const HOP: usize = 128;
const BINS: usize = N_FFT / 2 + 1;
const FRAMES: usize = (INPUT + PAD - N_FFT) / HOP + 1;
const HIDDEN: usize = 128;

/// One `Conv1d(kernel 3, padding 1)` with bias, followed by ReLU.
#[derive(Debug, Clone)]
struct Conv {
    out_ch: usize,
    in_ch: usize,
    stride: usize,
    /// `[out_ch][in_ch × 3]`, PyTorch's layout.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv {
    fn out_len(&self, len: usize) -> usize {
        (len + 2 - 3) / self.stride + 1
    }

    /// `input` is `[in_ch][len]`; writes `[out_ch][out_len]` into `out` (resized), using
    /// `patch` for one output step's `in_ch × 3` inputs.
    fn run(&self, input: &[f32], len: usize, out: &mut Vec<f32>, patch: &mut Vec<f32>) -> usize {
        let n = self.out_len(len);
        out.clear();
        out.resize(self.out_ch * n, 0.0);
        patch.clear();
        patch.resize(self.in_ch * 3, 0.0);
        for t in 0..n {
            // input positions t·stride − 1, t·stride, t·stride + 1 (zero outside)
            for i in 0..self.in_ch {
                let row = &input[i * len..(i + 1) * len];
                for k in 0..3 {
                    let p = (t * self.stride + k).checked_sub(1);
                    patch[i * 3 + k] = p.and_then(|p| row.get(p)).copied().unwrap_or(0.0);
                }
            }
            for o in 0..self.out_ch {
                let w = &self.weight[o * self.in_ch * 3..(o + 1) * self.in_ch * 3];
                out[o * n + t] = (self.bias[o] + dot(w, patch)).max(0.0);
            }
        }
        n
    }
}

/// The STFT by a real FFT, when the basis is a windowed DFT (Silero's is: a periodic
/// Hann window times cos / −sin): the same magnitudes for a fraction of the work.
#[derive(Clone)]
struct Fft {
    plan: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl std::fmt::Debug for Fft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fft")
    }
}

impl Fft {
    /// The FFT stand-in for `basis` if its rows are `w[k]·cos(2πfk/256)` and
    /// `−w[k]·sin(2πfk/256)` with `w` its first row, to 1e-6.
    fn for_basis(basis: &[f32]) -> Option<Fft> {
        let window = basis[..N_FFT].to_vec();
        let step = std::f64::consts::TAU / N_FFT as f64;
        for f in 0..BINS {
            for k in 0..N_FFT {
                let a = step * (f * k % N_FFT) as f64;
                let w = window[k] as f64;
                let re = basis[f * N_FFT + k] as f64;
                let im = basis[(BINS + f) * N_FFT + k] as f64;
                if (re - w * a.cos()).abs() > 1e-6 || (im + w * a.sin()).abs() > 1e-6 {
                    return None;
                }
            }
        }
        let plan = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        Some(Fft {
            frame: plan.make_input_vec(),
            spectrum: plan.make_output_vec(),
            scratch: plan.make_scratch_vec(),
            plan,
            window,
        })
    }

    /// Magnitudes of the 129 bins of `x` (256 samples), written to `out[f · stride]`.
    fn magnitudes(&mut self, x: &[f32], out: &mut [f32], stride: usize) {
        for ((d, x), w) in self.frame.iter_mut().zip(x).zip(&self.window) {
            *d = x * w;
        }
        // Lengths come from the plan itself, so this cannot fail.
        let _ =
            self.plan
                .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch);
        for (f, c) in self.spectrum.iter().enumerate() {
            out[f * stride] = c.norm();
        }
    }
}

/// How the STFT is computed.
#[derive(Debug, Clone)]
enum Stft {
    /// By FFT (see [`Fft`]), when the basis is a windowed DFT.
    Fft(Fft),
    /// By the basis itself, `[258][256]`: 129 real rows, then 129 imaginary rows.
    Basis(Vec<f32>),
}

impl Stft {
    fn new(basis: Vec<f32>) -> Stft {
        match Fft::for_basis(&basis) {
            Some(f) => Stft::Fft(f),
            None => Stft::Basis(basis),
        }
    }
}

/// Silero VAD's 16 kHz computation with its weights (see the module docs).
#[derive(Debug, Clone)]
pub struct NativeSilero {
    stft: Stft,
    encoder: [Conv; 4],
    /// `[512][128]` each, gate rows in PyTorch's order i, f, g, o.
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    /// `bias_ih + bias_hh`.
    bias: Vec<f32>,
    out_w: Vec<f32>,
    out_b: f32,
    // scratch, kept between chunks so that a chunk allocates nothing
    padded: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    patch: Vec<f32>,
    gates: Vec<f32>,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The float values of a tensor (raw little-endian bytes or `float_data`).
fn floats(t: &TensorProto) -> Option<Vec<f32>> {
    if t.data_type != data_type::FLOAT {
        return None;
    }
    if !t.raw_data.is_empty() {
        if !t.raw_data.len().is_multiple_of(4) {
            return None;
        }
        return Some(
            t.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        );
    }
    Some(t.float_data.clone())
}

/// The 16 kHz branch of the graph's top-level `If` (the one on `sr`).
fn branch_16k(g: &GraphProto) -> Option<&GraphProto> {
    // `If(Equal(sr, 16000))`: the constant compared with must be 16000 for `then_branch`
    // to be the 16 kHz graph.
    let is_16k = g.node.iter().any(|n| {
        n.op_type == "Constant"
            && n.attribute.iter().any(|a| {
                a.t.as_ref().is_some_and(|t| {
                    t.data_type == data_type::INT64
                        && (t.int64_data == [16000]
                            || t.raw_data.as_slice() == 16000i64.to_le_bytes())
                })
            })
    });
    if !is_16k {
        return None;
    }
    g.node
        .iter()
        .find(|n| n.op_type == "If")?
        .attribute
        .iter()
        .find(|a| a.name == "then_branch")?
        .g
        .as_ref()
}

impl NativeSilero {
    /// Reads the weights from the bytes of a Silero VAD v5/v6 ONNX file (the 16 kHz
    /// branch's constants `stft.forward_basis_buffer`, `encoder.{0..3}.reparam_conv.*`,
    /// `decoder.rnn.*`, `decoder.decoder.2.*`). An error names what is missing or
    /// shaped otherwise.
    pub fn from_onnx(bytes: &[u8]) -> Result<Self, String> {
        let model = ModelProto::decode(bytes).map_err(|e| format!("not an ONNX file: {e}"))?;
        let graph = model.graph.as_ref().ok_or("no graph")?;
        let branch = branch_16k(graph).ok_or("no If on sr == 16000 at the top of the graph")?;
        let get = |suffix: &str, shape: &[i64]| -> Result<Vec<f32>, String> {
            let t = branch
                .node
                .iter()
                .filter(|n| {
                    n.op_type == "Constant" && n.output.first().is_some_and(|o| o.ends_with(suffix))
                })
                .find_map(|n| n.attribute.iter().find_map(|a| a.t.as_ref()))
                .or_else(|| branch.initializer.iter().find(|t| t.name.ends_with(suffix)))
                .ok_or_else(|| format!("no constant `{suffix}` in the 16 kHz branch"))?;
            if t.dims != shape {
                return Err(format!("`{suffix}` is {:?}, expected {shape:?}", t.dims));
            }
            let v = floats(t).ok_or_else(|| format!("`{suffix}` is not float32"))?;
            let n: i64 = shape.iter().product();
            if v.len() as i64 != n {
                return Err(format!("`{suffix}` holds {} values, expected {n}", v.len()));
            }
            Ok(v)
        };
        let conv = |i: usize, out_ch: usize, in_ch: usize, stride: usize| -> Result<Conv, String> {
            Ok(Conv {
                out_ch,
                in_ch,
                stride,
                weight: get(
                    &format!("encoder.{i}.reparam_conv.weight"),
                    &[out_ch as i64, in_ch as i64, 3],
                )?,
                bias: get(&format!("encoder.{i}.reparam_conv.bias"), &[out_ch as i64])?,
            })
        };
        let h = HIDDEN as i64;
        let b_ih = get("decoder.rnn.bias_ih", &[4 * h])?;
        let b_hh = get("decoder.rnn.bias_hh", &[4 * h])?;
        let out_b = get("decoder.decoder.2.bias", &[1])?[0];
        let basis = get(
            "stft.forward_basis_buffer",
            &[2 * BINS as i64, 1, N_FFT as i64],
        )?;
        Ok(NativeSilero {
            stft: Stft::new(basis),
            encoder: [
                conv(0, 128, BINS, 1)?,
                conv(1, 64, 128, 2)?,
                conv(2, 64, 64, 2)?,
                conv(3, 128, 64, 1)?,
            ],
            w_ih: get("decoder.rnn.weight_ih", &[4 * h, h])?,
            w_hh: get("decoder.rnn.weight_hh", &[4 * h, h])?,
            bias: b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect(),
            out_w: get("decoder.decoder.2.weight", &[1, h, 1])?,
            out_b,
            padded: vec![0.0; INPUT + PAD],
            a: Vec::new(),
            b: Vec::new(),
            patch: Vec::new(),
            gates: vec![0.0; 4 * HIDDEN],
        })
    }

    /// One chunk: `input` is the 64 context samples and the 512 new ones, `state` the
    /// carried `[h, c]` (updated in place). Returns the speech probability.
    ///
    /// # Panics
    /// If `input` is not 576 samples or `state` not 256 values.
    pub fn run(&mut self, input: &[f32], state: &mut [f32]) -> f32 {
        assert_eq!(input.len(), INPUT, "a Silero chunk is {INPUT} samples");
        assert_eq!(state.len(), STATE, "Silero's state is {STATE} values");
        // 1. reflect padding on the right: x[n - 2 - j]
        self.padded[..INPUT].copy_from_slice(input);
        for j in 0..PAD {
            self.padded[INPUT + j] = input[INPUT - 2 - j];
        }
        // 2. STFT magnitudes, [129][4]
        self.a.clear();
        self.a.resize(BINS * FRAMES, 0.0);
        match &mut self.stft {
            Stft::Fft(fft) => {
                for t in 0..FRAMES {
                    fft.magnitudes(
                        &self.padded[t * HOP..t * HOP + N_FFT],
                        &mut self.a[t..],
                        FRAMES,
                    );
                }
            }
            Stft::Basis(basis) => {
                for f in 0..BINS {
                    let re = &basis[f * N_FFT..(f + 1) * N_FFT];
                    let im = &basis[(BINS + f) * N_FFT..(BINS + f + 1) * N_FFT];
                    for t in 0..FRAMES {
                        let x = &self.padded[t * HOP..t * HOP + N_FFT];
                        let (r, i) = (dot(re, x), dot(im, x));
                        self.a[f * FRAMES + t] = (r * r + i * i).sqrt();
                    }
                }
            }
        }
        // 3. the encoder, down to [128][1]
        let mut len = FRAMES;
        for (k, conv) in self.encoder.iter().enumerate() {
            let (src, dst) = if k % 2 == 0 {
                (&self.a, &mut self.b)
            } else {
                (&self.b, &mut self.a)
            };
            len = conv.run(src, len, dst, &mut self.patch);
        }
        debug_assert_eq!(len, 1);
        let x = &self.a[..HIDDEN]; // after 4 convolutions the result is back in `a`
        // 4. one LSTM step
        let (h, c) = state.split_at_mut(HIDDEN);
        for (g, gate) in self.gates.iter_mut().enumerate() {
            *gate = self.bias[g]
                + dot(&self.w_ih[g * HIDDEN..(g + 1) * HIDDEN], x)
                + dot(&self.w_hh[g * HIDDEN..(g + 1) * HIDDEN], h);
        }
        for j in 0..HIDDEN {
            let i = sigmoid(self.gates[j]);
            let f = sigmoid(self.gates[HIDDEN + j]);
            let g = self.gates[2 * HIDDEN + j].tanh();
            let o = sigmoid(self.gates[3 * HIDDEN + j]);
            c[j] = f * c[j] + i * g;
            h[j] = o * c[j].tanh();
        }
        // 5. the decoder
        let z = self.out_b
            + h.iter()
                .zip(&self.out_w)
                .map(|(h, w)| h.max(0.0) * w)
                .sum::<f32>();
        sigmoid(z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::AttributeProto;
    use crate::onnx::proto::NodeProto;

    fn constant(name: &str, dims: &[i64], v: &[f32]) -> NodeProto {
        NodeProto {
            output: vec![name.into()],
            op_type: "Constant".into(),
            attribute: vec![AttributeProto {
                name: "value".into(),
                t: Some(TensorProto {
                    dims: dims.to_vec(),
                    data_type: data_type::FLOAT,
                    raw_data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// A graph shaped like Silero's, with the given values for every weight.
    fn silero_like(fill: impl Fn(&str, usize) -> f32, skip: &str) -> Vec<u8> {
        let mut nodes = Vec::new();
        let mut add = |name: &str, dims: &[i64]| {
            if name == skip {
                return;
            }
            let n: i64 = dims.iter().product();
            let v: Vec<f32> = (0..n as usize).map(|i| fill(name, i)).collect();
            nodes.push(constant(&format!("If_0_then_branch__{name}"), dims, &v));
        };
        add("stft.forward_basis_buffer", &[258, 1, 256]);
        for (i, (o, c)) in [(128, 129), (64, 128), (64, 64), (128, 64)]
            .iter()
            .enumerate()
        {
            add(&format!("encoder.{i}.reparam_conv.weight"), &[*o, *c, 3]);
            add(&format!("encoder.{i}.reparam_conv.bias"), &[*o]);
        }
        for w in ["weight_ih", "weight_hh"] {
            add(&format!("decoder.rnn.{w}"), &[512, 128]);
        }
        for b in ["bias_ih", "bias_hh"] {
            add(&format!("decoder.rnn.{b}"), &[512]);
        }
        add("decoder.decoder.2.weight", &[1, 128, 1]);
        add("decoder.decoder.2.bias", &[1]);
        let branch = GraphProto {
            node: nodes,
            ..Default::default()
        };
        let top = GraphProto {
            node: vec![
                NodeProto {
                    output: vec!["c".into()],
                    op_type: "Constant".into(),
                    attribute: vec![AttributeProto {
                        name: "value".into(),
                        t: Some(TensorProto {
                            data_type: data_type::INT64,
                            raw_data: 16000i64.to_le_bytes().to_vec(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                NodeProto {
                    op_type: "If".into(),
                    attribute: vec![AttributeProto {
                        name: "then_branch".into(),
                        g: Some(branch),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        ModelProto {
            graph: Some(top),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn zero_weights_give_the_sigmoid_of_the_output_bias_and_keep_a_zero_state() {
        let bytes = silero_like(
            |name, _| {
                if name == "decoder.decoder.2.bias" {
                    0.7
                } else {
                    0.0
                }
            },
            "",
        );
        let mut s = NativeSilero::from_onnx(&bytes).unwrap();
        let mut state = vec![0.0; STATE];
        let x: Vec<f32> = (0..INPUT).map(|i| (i as f32 * 0.1).sin()).collect();
        let p = s.run(&x, &mut state);
        assert!((p - sigmoid(0.7)).abs() < 1e-7, "{p}");
        // i = f = o = 0.5, g = 0: c stays 0, h = 0.5 * tanh(0) = 0
        assert!(state.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn the_lstm_step_follows_pytorch_gate_order() {
        // Everything zero but the LSTM biases: gates i = 1, f = 2, g = 0.5, o = -1 (the
        // same for every unit), from c = 0.3: c' = σ(2)·0.3 + σ(1)·tanh(0.5),
        // h' = σ(−1)·tanh(c').
        let bytes = silero_like(
            |name, i| match name {
                "decoder.rnn.bias_ih" => [1.0, 2.0, 0.5, -1.0][i / 128],
                _ => 0.0,
            },
            "",
        );
        let mut s = NativeSilero::from_onnx(&bytes).unwrap();
        let mut state = vec![0.0; STATE];
        state[HIDDEN..].fill(0.3);
        s.run(&vec![0.0; INPUT], &mut state);
        let c = sigmoid(2.0) * 0.3 + sigmoid(1.0) * 0.5f32.tanh();
        let h = sigmoid(-1.0) * c.tanh();
        assert!((state[HIDDEN] - c).abs() < 1e-6, "{} vs {c}", state[HIDDEN]);
        assert!((state[0] - h).abs() < 1e-6, "{} vs {h}", state[0]);
    }

    #[test]
    fn the_chunk_is_reflect_padded_on_the_right() {
        // torch's reflect padding leaves the edge sample out: x[574], x[573], ...
        let mut s = NativeSilero::from_onnx(&silero_like(|_, _| 0.0, "")).unwrap();
        let x: Vec<f32> = (0..INPUT).map(|i| i as f32).collect();
        s.run(&x, &mut vec![0.0; STATE]);
        assert_eq!(&s.padded[..INPUT], &x[..]);
        let tail: Vec<f32> = (0..PAD).map(|j| (INPUT - 2 - j) as f32).collect();
        assert_eq!(&s.padded[INPUT..], &tail[..]);
        assert_eq!(FRAMES, 4);
    }

    /// Deterministic pseudo-random weights in [-scale, scale).
    fn noise(name: &str, i: usize, scale: f32) -> f32 {
        let h = name.bytes().fold(i as u32 ^ 0x9e37_79b9, |h, b| {
            (h ^ b as u32).wrapping_mul(16_777_619)
        });
        let h = h.wrapping_mul(2_654_435_761);
        ((h >> 8) as f32 / 16_777_216.0 - 0.5) * 2.0 * scale
    }

    #[test]
    fn a_windowed_dft_basis_runs_as_an_fft_with_the_same_result() {
        // Silero's basis: periodic Hann times cos (rows 0..129) and −sin (129..258).
        let basis = |i: usize| {
            let (row, k) = (i / N_FFT, i % N_FFT);
            let f = row % BINS;
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * k as f64 / N_FFT as f64).cos();
            let a = std::f64::consts::TAU * (f * k % N_FFT) as f64 / N_FFT as f64;
            (if row < BINS {
                w * a.cos()
            } else {
                -w * a.sin()
            }) as f32
        };
        let bytes = silero_like(
            |name, i| match name {
                "stft.forward_basis_buffer" => basis(i),
                _ => noise(name, i, 0.1),
            },
            "",
        );
        let mut by_fft = NativeSilero::from_onnx(&bytes).unwrap();
        assert!(matches!(by_fft.stft, Stft::Fft(_)));
        let mut by_basis = by_fft.clone();
        by_basis.stft = Stft::Basis((0..2 * BINS * N_FFT).map(basis).collect());
        let (mut s1, mut s2) = (vec![0.0; STATE], vec![0.0; STATE]);
        for c in 0..6 {
            let x: Vec<f32> = (0..INPUT)
                .map(|i| {
                    (0.05 * (i + c * CHUNK) as f32).sin() * 0.5 + noise("x", i + c * INPUT, 0.1)
                })
                .collect();
            let (p1, p2) = (by_fft.run(&x, &mut s1), by_basis.run(&x, &mut s2));
            assert!((p1 - p2).abs() < 1e-5, "chunk {c}: {p1} vs {p2}");
            let d = s1
                .iter()
                .zip(&s2)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(d < 1e-4, "chunk {c}: state differs by {d}");
            assert!((0.0..=1.0).contains(&p1) && p1 != sigmoid(0.0));
        }
        // Any other basis is used as it is.
        let other = silero_like(|name, i| noise(name, i, 0.1), "");
        assert!(matches!(
            NativeSilero::from_onnx(&other).unwrap().stft,
            Stft::Basis(_)
        ));
    }

    #[test]
    fn a_missing_or_misshapen_weight_is_named() {
        let e =
            NativeSilero::from_onnx(&silero_like(|_, _| 0.0, "decoder.rnn.weight_hh")).unwrap_err();
        assert!(e.contains("decoder.rnn.weight_hh"), "{e}");
        assert!(NativeSilero::from_onnx(b"not onnx at all").is_err());
    }
}
