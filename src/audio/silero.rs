// SPDX-License-Identifier: MPL-2.0
//! Silero VAD (`weights/silero-vad.onnx`) run through the runtime layer at 16 kHz, fed
//! exactly as the silero-vad package's `OnnxWrapper` does (weights/convert/README.md):
//! per run `input` `[1, 64 + 512]` = the last 64 samples of the previous chunk (zeros
//! before the first) followed by 512 new samples, `state` `[2, 1, 128]` carried from the
//! previous run's `stateN`, and `sr` an int64 scalar 16000; `output` `[1, 1]` is the speech
//! probability of the 512 new samples (32 ms).

use super::silero_native::NativeSilero;
use crate::runtime::{AudioInput, ExecutionProvider, InputSpec, Model, RuntimeError};

/// A streaming Silero VAD: 16 kHz samples in, one probability per 512-sample chunk out.
pub struct SileroVad {
    model: Model,
    input: String,
    output: String,
    state_in: String,
    state_out: String,
    sr_in: String,
    sample_rate: u32,
    chunk: usize,
    context: usize,
    state: Vec<f32>,
    /// The state the last run returned, before it becomes `state`.
    state_next: Vec<f32>,
    state_shape: Vec<usize>,
    /// The model's name (for errors).
    name: String,
    /// `context` samples of the previous chunk ++ the chunk being filled.
    window: Vec<f32>,
    filled: usize,
    chunks: u64,
    /// The same computation in Rust ([`NativeSilero`]), when it was asked for
    /// ([`SileroVad::new`]), the file holds Silero's weights, the session runs on the
    /// CPU and the two agreed on a test signal.
    native: Option<NativeSilero>,
    /// Why `native` is `None` although it was asked for, for the element's log.
    native_note: String,
}

impl std::fmt::Debug for SileroVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroVad")
            .field("model", &self.model)
            .field("chunk", &self.chunk)
            .field("context", &self.context)
            .field("native", &self.is_native())
            .finish()
    }
}

fn bad(model: &Model, message: String) -> RuntimeError {
    RuntimeError::Run {
        name: model.contract().name.clone(),
        message,
    }
}

impl SileroVad {
    /// Wraps a loaded `vad` model, reading the feeding from its contract
    /// (`affect.input.*`, `affect.vad.context`, `affect.vad.state-input`,
    /// `affect.vad.state-output`, `affect.vad.sr-input`, `affect.vad.state-shape`), and
    /// computes its chunks natively where it can ([`NativeSilero`]; see
    /// [`SileroVad::is_native`] and [`SileroVad::native_note`]).
    pub fn new(model: Model) -> Result<Self, RuntimeError> {
        Ok(Self::onnx_runtime(model)?.with_native())
    }

    /// [`SileroVad::new`] without the native computation: every chunk through ONNX
    /// Runtime (`audiodenoise native=false`).
    pub fn onnx_runtime(model: Model) -> Result<Self, RuntimeError> {
        let c = model.contract();
        let InputSpec::Audio(AudioInput {
            name,
            sample_rate,
            window,
            ..
        }) = &c.input
        else {
            return Err(bad(&model, "not an audio model".into()));
        };
        if *sample_rate != 16_000 {
            return Err(bad(
                &model,
                format!(
                    "affect.input.sample-rate is {sample_rate}, this VAD runner feeds 16000 Hz"
                ),
            ));
        }
        let prop = |k: &str, d: &str| c.prop(k).unwrap_or(d).to_owned();
        let context: usize = prop("affect.vad.context", "64")
            .parse()
            .map_err(|_| bad(&model, "affect.vad.context is not a number".into()))?;
        let state_shape: Vec<usize> = prop("affect.vad.state-shape", "2,1,128")
            .split(',')
            .map(|s| s.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                bad(
                    &model,
                    "affect.vad.state-shape is not a list of numbers".into(),
                )
            })?;
        let output = c
            .outputs
            .first()
            .cloned()
            .unwrap_or_else(|| "output".into());
        let v = SileroVad {
            input: name.clone(),
            output,
            state_in: prop("affect.vad.state-input", "state"),
            state_out: prop("affect.vad.state-output", "stateN"),
            sr_in: prop("affect.vad.sr-input", "sr"),
            sample_rate: *sample_rate,
            chunk: *window,
            context,
            state: vec![0.0; state_shape.iter().product()],
            state_next: vec![0.0; state_shape.iter().product()],
            name: c.name.clone(),
            state_shape,
            window: vec![0.0; context + *window],
            filled: 0,
            chunks: 0,
            native: None,
            native_note: String::new(),
            model,
        };
        Ok(v)
    }

    /// Largest |probability| difference allowed between the native computation and
    /// ONNX Runtime on the load-time check (measured on espeak-ng speech: ~1e-6).
    const NATIVE_TOLERANCE: f32 = 1e-4;

    /// Sets up [`NativeSilero`] when it can stand in for the session: CPU provider, the
    /// feeding this runner knows (64 + 512 samples, a `[2, 1, 128]` state), weights
    /// found in the file, and the same probabilities as ONNX Runtime within
    /// [`Self::NATIVE_TOLERANCE`] (the state within ten times that) over 24 chunks of a
    /// test signal (a gliding tone with
    /// syllable-like bursts and noise). Otherwise every chunk runs through ONNX Runtime
    /// and [`SileroVad::native_note`] says why.
    fn with_native(mut self) -> Self {
        use super::silero_native::{CHUNK, CONTEXT, STATE};
        let fail = |mut s: Self, why: String| {
            s.native_note = why;
            s
        };
        if self.model.provider() != ExecutionProvider::Cpu {
            let why = format!("the session runs on {:?}", self.model.provider());
            return fail(self, why);
        }
        if self.chunk != CHUNK || self.context != CONTEXT || self.state.len() != STATE {
            return fail(
                self,
                "the contract's chunk, context or state differs from Silero's".into(),
            );
        }
        let mut native = match std::fs::read(self.model.path())
            .map_err(|e| e.to_string())
            .and_then(|b| NativeSilero::from_onnx(&b))
        {
            Ok(n) => n,
            Err(e) => return fail(self, e),
        };
        match self.check_native(&mut native) {
            Ok(()) => {
                self.native = Some(native);
                self
            }
            Err(e) => fail(self, e),
        }
    }

    /// Runs the test signal through `native` and the session and compares; leaves the
    /// runner reset.
    fn check_native(&mut self, native: &mut NativeSilero) -> Result<(), String> {
        let n = 24 * self.chunk;
        let signal: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f32 / self.sample_rate as f32;
                let burst = (std::f32::consts::PI * 4.0 * t).sin().max(0.0);
                let tone = (std::f32::consts::TAU * (120.0 + 200.0 * t) * t).sin();
                let noise =
                    ((i as u32).wrapping_mul(2_654_435_761) >> 8) as f32 / 16_777_216.0 - 0.5;
                0.4 * burst * tone + 0.02 * noise
            })
            .collect();
        let mut worst = 0.0f32;
        let mut state = vec![0.0f32; self.state.len()];
        for c in signal.chunks_exact(self.chunk) {
            let at = self.context;
            self.window[at..].copy_from_slice(c);
            let p_native = native.run(&self.window, &mut state);
            let p_ort = self.run_session().map_err(|e| e.to_string())?;
            let d_state = state
                .iter()
                .zip(&self.state)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            self.keep_context();
            let d = (p_native - p_ort).abs().max(d_state / 10.0);
            if d.is_nan() {
                worst = f32::INFINITY;
                break;
            }
            worst = worst.max(d);
        }
        self.reset();
        if worst <= Self::NATIVE_TOLERANCE {
            Ok(())
        } else {
            Err(format!(
                "its probabilities differ from ONNX Runtime's by {worst:.2e} on the test signal"
            ))
        }
    }

    /// Whether chunks are computed natively ([`NativeSilero`]) rather than by ONNX Runtime.
    pub fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// Why chunks run through ONNX Runtime although [`SileroVad::new`] asked for the
    /// native computation (empty when they do not, or with [`SileroVad::onnx_runtime`]).
    pub fn native_note(&self) -> &str {
        &self.native_note
    }

    /// New samples per run (512).
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// Sample rate the model reads (16000).
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Chunks run since the last reset.
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// The loaded model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Back to the initial state (zero state and context).
    pub fn reset(&mut self) {
        self.state.iter_mut().for_each(|v| *v = 0.0);
        self.window.iter_mut().for_each(|v| *v = 0.0);
        self.filled = 0;
        self.chunks = 0;
    }

    /// One chunk (the full `window`): its probability, the state carried on.
    fn run(&mut self) -> Result<f32, RuntimeError> {
        let prob = match &mut self.native {
            Some(n) => n.run(&self.window, &mut self.state),
            None => self.run_session()?,
        };
        self.keep_context();
        self.filled = 0;
        self.chunks += 1;
        Ok(if prob.is_finite() {
            prob.clamp(0.0, 1.0)
        } else {
            0.0
        })
    }

    /// The next window starts with the last `context` samples of this one.
    fn keep_context(&mut self) {
        let n = self.window.len();
        self.window.copy_within(n - self.context.., 0);
    }

    /// One chunk through ONNX Runtime; updates `state`.
    fn run_session(&mut self) -> Result<f32, RuntimeError> {
        use ort::value::TensorRef;
        // Per 32 ms chunk: nothing is allocated here but what ONNX Runtime allocates
        // (the model's name is cloned only for an error).
        let name = &self.name;
        let err = |m: String| RuntimeError::Run {
            name: name.clone(),
            message: m,
        };
        let input = TensorRef::from_array_view(([1usize, self.window.len()], &self.window[..]))
            .map_err(|e| err(e.to_string()))?;
        let state = TensorRef::from_array_view((&self.state_shape[..], &self.state[..]))
            .map_err(|e| err(e.to_string()))?;
        let sr_val = [self.sample_rate as i64];
        let sr = TensorRef::from_array_view(((), &sr_val[..])).map_err(|e| err(e.to_string()))?;
        let inputs = ort::inputs![
            self.input.as_str() => input,
            self.state_in.as_str() => state,
            self.sr_in.as_str() => sr,
        ];
        let (output, state_out) = (&self.output, &self.state_out);
        let next = &mut self.state_next;
        let state_len = next.len();
        let prob = self.model.with_session(|session| {
            let out = session.run(inputs).map_err(|e| err(e.to_string()))?;
            let (_, p) = out
                .get(output)
                .ok_or_else(|| err(format!("no output `{output}`")))?
                .try_extract_tensor::<f32>()
                .map_err(|e| err(e.to_string()))?;
            let prob = *p.first().ok_or_else(|| err("empty output".into()))?;
            let (_, st) = out
                .get(state_out)
                .ok_or_else(|| err(format!("no output `{state_out}`")))?
                .try_extract_tensor::<f32>()
                .map_err(|e| err(e.to_string()))?;
            if st.len() != state_len {
                return Err(err(format!(
                    "`{state_out}` has {} values, expected {state_len}",
                    st.len()
                )));
            }
            next.copy_from_slice(st);
            Ok(prob)
        })?;
        std::mem::swap(&mut self.state, &mut self.state_next);
        Ok(prob)
    }

    /// Feeds 16 kHz samples in [-1, 1]; appends the probability of every chunk completed.
    pub fn push(&mut self, samples: &[f32], probs: &mut Vec<f32>) -> Result<(), RuntimeError> {
        let mut s = samples;
        while !s.is_empty() {
            let take = (self.chunk - self.filled).min(s.len());
            let at = self.context + self.filled;
            self.window[at..at + take].copy_from_slice(&s[..take]);
            self.filled += take;
            s = &s[take..];
            if self.filled == self.chunk {
                probs.push(self.run()?);
            }
        }
        Ok(())
    }

    /// Zero-pads and runs a partly filled last chunk (as `get_speech_timestamps` does).
    pub fn flush(&mut self, probs: &mut Vec<f32>) -> Result<(), RuntimeError> {
        if self.filled > 0 {
            let n = self.window.len();
            self.window[self.context + self.filled..n]
                .iter_mut()
                .for_each(|v| *v = 0.0);
            probs.push(self.run()?);
        }
        Ok(())
    }
}
