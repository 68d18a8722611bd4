// SPDX-License-Identifier: MPL-2.0
//! The streaming engine behind the `audiodenoise` element: interleaved 48 kHz samples in,
//! the same number of samples out, aligned with the input, with a speech probability per
//! 10 ms frame, hysteresis, gating and boundary events.
//!
//! Per 480-sample input frame: non-finite samples are replaced by 0 and finite ones beyond
//! ±[`MAX_ABS`](super::denoise::MAX_ABS) clipped to it (RNNoise breaks on huge values); every channel goes
//! through its own RNNoise state ([`Denoiser`], delay compensated); the probability of
//! each output frame comes from RNNoise (the maximum over channels) or from Silero VAD
//! (the mono mix, decimated to 16 kHz, one probability per 32 ms chunk; a 10 ms frame
//! takes the probability of the chunk holding its centre). Frames wait in a queue until
//! their probability is known, then go through the [`Hysteresis`] and the gate, in order.
//!
//! Latency (how long after a sample enters its output frame leaves):
//! RNNoise VAD 960 samples (20 ms: 10 ms to fill a frame + RNNoise's 10 ms look-ahead);
//! Silero VAD up to [`SpeechEngine::latency_samples`]: 50 ms without look-ahead (the 32 ms
//! chunk, the decimation filter's 1.5 ms look-ahead and the frame grid), 120 ms with the
//! default [`EngineConfig::silero_lookahead`] of 64 ms.

use std::collections::VecDeque;

use super::FRAME;
use super::decimate::Decimator;
use super::denoise::{Denoiser, sanitize};
use super::frame::{Framer, downmix};
use super::hysteresis::{Hysteresis, HysteresisConfig, SpeechEvent};
use super::silero::SileroVad;
use crate::runtime::RuntimeError;

/// Where the speech probability comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VadKind {
    /// RNNoise's own voice probability (free, but weak in noise).
    #[default]
    Rnnoise,
    /// Silero VAD at 16 kHz (needs a [`SileroVad`]).
    Silero,
}

/// What happens to non-speech audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gate {
    /// Nothing.
    #[default]
    None,
    /// Scaled by the attenuation.
    Attenuate,
    /// Replaced by silence.
    Silence,
}

/// Engine settings; everything but `channels` and `vad` may change while running.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// Interleaved channels.
    pub channels: usize,
    /// Probability source.
    pub vad: VadKind,
    /// Denoise (false: audio passes unchanged, the VAD still runs).
    pub enabled: bool,
    /// Mix of denoised (1) and original (0) audio.
    pub strength: f32,
    /// Gating of non-speech.
    pub gate: Gate,
    /// Gain in dB for [`Gate::Attenuate`] (negative).
    pub attenuation_db: f32,
    /// Speech hysteresis.
    pub hysteresis: HysteresisConfig,
    /// Silero reads the denoised audio (true) or the input (false).
    pub silero_on_denoised: bool,
    /// Look-ahead in samples for Silero: a frame takes the probability of the chunk that
    /// holds the sample this far after its centre. Silero's probability reacts one to two
    /// chunks late, mostly at the end of speech (it stays above 0.35 for ~60 ms after the
    /// last sound); the default 3072 (two chunks, 64 ms) puts the boundaries back within
    /// ±65 ms on the test speech, at the price of 64 ms more latency.
    pub silero_lookahead: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            channels: 1,
            vad: VadKind::Rnnoise,
            enabled: true,
            strength: 1.0,
            gate: Gate::None,
            attenuation_db: -20.0,
            hysteresis: HysteresisConfig::default(),
            silero_on_denoised: true,
            silero_lookahead: 2 * CHUNK_48K,
        }
    }
}

/// One 10 ms output frame's speech information.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameInfo {
    /// First sample (per channel) of the frame since the stream start / last reset.
    pub start: u64,
    /// Samples per channel (480, less for the last frame of a stream).
    pub len: usize,
    /// Speech probability from the selected VAD.
    pub probability: f32,
    /// RNNoise's probability (0 when RNNoise did not run).
    pub rnnoise_probability: f32,
    /// Confirmed speech (hysteresis state after this frame).
    pub speech: bool,
    /// The gate let this frame through.
    pub gate_open: bool,
}

/// What the engine produced for one call.
#[derive(Debug, Clone, Default)]
pub struct EngineOutput {
    /// Interleaved samples, aligned with the input.
    pub samples: Vec<f32>,
    /// Per 10 ms frame, in order, covering `samples`.
    pub frames: Vec<FrameInfo>,
    /// Speech boundaries confirmed during the call (their positions may lie in the past).
    pub events: Vec<SpeechEvent>,
    /// For each of `events`, the speech probability of the frame that confirmed it (the
    /// last frame's at the end of the stream). The boundary itself may lie in an earlier
    /// call, so `frames` need not hold it.
    pub event_probabilities: Vec<f32>,
    /// Non-finite input samples replaced by 0 during the call.
    pub replaced: u64,
    /// Finite input samples beyond ±[`MAX_ABS`](super::denoise::MAX_ABS) clipped to it
    /// during the call.
    pub clipped: u64,
}

impl EngineOutput {
    /// Empties everything (keeps capacity).
    pub fn clear(&mut self) {
        self.samples.clear();
        self.frames.clear();
        self.events.clear();
        self.event_probabilities.clear();
        self.replaced = 0;
        self.clipped = 0;
    }
}

struct Pending {
    samples: Vec<f32>,
    rn: f32,
    index: u64,
}

/// Silero's chunking: 32 ms chunks (1536 samples at 48 kHz).
const CHUNK_48K: u64 = 1536;

/// The engine.
pub struct SpeechEngine {
    cfg: EngineConfig,
    framer: Framer,
    denoiser: Denoiser,
    silero: Option<SileroVad>,
    decimator: Decimator,
    mono: Vec<f32>,
    mono16: Vec<f32>,
    chunk_probs: Vec<f32>,
    /// Index of the first chunk in `chunk_probs`.
    chunk_base: u64,
    pending: VecDeque<Pending>,
    /// Sample vectors of emitted frames, reused for the next pending ones.
    spare: Vec<Vec<f32>>,
    frame_buf: Vec<f32>,
    out_buf: Vec<f32>,
    hyst: Hysteresis,
    /// Speech probability of the last frame given to `hyst`.
    last_prob: f32,
    gain: f32,
    /// Samples per channel pushed since the reset.
    n_in: u64,
    /// Input frames processed.
    k: u64,
    /// Samples per channel emitted.
    n_out: u64,
}

impl std::fmt::Debug for SpeechEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechEngine")
            .field("cfg", &self.cfg)
            .field("n_in", &self.n_in)
            .field("n_out", &self.n_out)
            .finish()
    }
}

impl SpeechEngine {
    /// An engine; `silero` is required when `cfg.vad` is [`VadKind::Silero`] (without it
    /// the probability is RNNoise's).
    pub fn new(cfg: EngineConfig, silero: Option<SileroVad>) -> Self {
        let ch = cfg.channels.max(1);
        SpeechEngine {
            framer: Framer::new(ch, FRAME),
            denoiser: Denoiser::new(ch),
            silero,
            decimator: Decimator::new_48k_to_16k(),
            mono: Vec::with_capacity(FRAME),
            mono16: Vec::with_capacity(FRAME),
            chunk_probs: Vec::new(),
            chunk_base: 0,
            pending: VecDeque::new(),
            spare: Vec::new(),
            frame_buf: vec![0.0; FRAME * ch],
            out_buf: vec![0.0; FRAME * ch],
            hyst: Hysteresis::new(cfg.hysteresis),
            last_prob: 0.0,
            gain: 1.0,
            n_in: 0,
            k: 0,
            n_out: 0,
            cfg: EngineConfig {
                channels: ch,
                ..cfg
            },
        }
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Changes the run-time settings (`channels` and `vad` are kept).
    pub fn set_config(&mut self, cfg: EngineConfig) {
        self.cfg = EngineConfig {
            channels: self.cfg.channels,
            vad: self.cfg.vad,
            ..cfg
        };
        self.hyst.set_config(cfg.hysteresis);
    }

    fn uses_silero(&self) -> bool {
        self.cfg.vad == VadKind::Silero && self.silero.is_some()
    }

    /// Samples per channel pushed since the last reset.
    pub fn samples_in(&self) -> u64 {
        self.n_in
    }

    /// Samples per channel given back since the last reset.
    pub fn samples_out(&self) -> u64 {
        self.n_out
    }

    /// Whether speech is confirmed now.
    pub fn in_speech(&self) -> bool {
        self.hyst.in_speech()
    }

    /// Forgets all state (FLUSH, DISCONT, new stream); pending audio is dropped.
    pub fn reset(&mut self) {
        self.framer.clear();
        self.denoiser.reset();
        if let Some(s) = &mut self.silero {
            s.reset();
        }
        self.decimator.reset();
        self.chunk_probs.clear();
        self.chunk_base = 0;
        self.pending.clear();
        self.hyst.reset();
        self.last_prob = 0.0;
        self.gain = 1.0;
        self.n_in = 0;
        self.k = 0;
        self.n_out = 0;
    }

    /// Worst-case samples between a sample entering [`SpeechEngine::push`] and leaving in
    /// the output (per channel, at 48 kHz).
    pub fn latency_samples(&self) -> u64 {
        latency_samples(&self.cfg, self.uses_silero())
    }

    /// Gives the Silero runner back (to build an engine with other settings).
    pub fn into_silero(self) -> Option<SileroVad> {
        self.silero
    }
}

/// [`SpeechEngine::latency_samples`] for settings `cfg`, with or without Silero.
pub fn latency_samples(cfg: &EngineConfig, silero: bool) -> u64 {
    {
        let f = FRAME as u64;
        if !silero || cfg.vad != VadKind::Silero {
            return 2 * f;
        }
        // Frame j leaves once the chunk holding its centre is known; that chunk needs
        // the decimator's look-ahead, fed from the frame that is emitted by the denoiser
        // one frame later (or the input frame itself when Silero reads the input).
        let lookahead = Decimator::new_48k_to_16k().delay_in() as u64;
        let extra = if cfg.silero_on_denoised { 2 } else { 1 };
        let period = 16u64; // lcm(480, 1536) / 480
        (0..period)
            .map(|j| {
                let c = (f * j + f / 2 + cfg.silero_lookahead) / CHUNK_48K;
                // last 48 kHz sample the decimator must see for chunk c's last output
                let need = CHUNK_48K * (c + 1) - 3 + lookahead;
                let frame_of_need = need / f;
                (frame_of_need + extra) * f - f * j
            })
            .max()
            .unwrap_or(2 * f)
    }
}

impl SpeechEngine {
    /// Feeds interleaved samples; appends what is ready to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut EngineOutput) -> Result<(), RuntimeError> {
        let ch = self.cfg.channels;
        let mut replaced = 0u64;
        let mut clipped = 0u64;
        let mut result = Ok(());
        let mut framer = std::mem::replace(&mut self.framer, Framer::new(ch, FRAME));
        let mut frame = std::mem::take(&mut self.frame_buf);
        framer.push(input, |f| {
            if result.is_err() {
                return;
            }
            frame.copy_from_slice(f);
            let n = sanitize(&mut frame);
            replaced += n.replaced;
            clipped += n.clipped;
            result = self.process_frame(&frame, out);
        });
        self.frame_buf = frame;
        self.framer = framer;
        self.n_in += (input.len() / ch) as u64;
        out.replaced += replaced;
        out.clipped += clipped;
        result?;
        self.emit_ready(out);
        Ok(())
    }

    /// End of stream: pads the last partial frame, drains RNNoise and Silero, emits
    /// everything cut back to the true length, closes open speech, and resets.
    pub fn finish(&mut self, out: &mut EngineOutput) -> Result<(), RuntimeError> {
        let total = self.n_in;
        let ch = self.cfg.channels;
        let r = self.drain(out, total, ch);
        self.reset();
        r
    }

    fn drain(&mut self, out: &mut EngineOutput, total: u64, ch: usize) -> Result<(), RuntimeError> {
        if let Some((mut frame, _real)) = self.framer.take_partial() {
            let n = sanitize(&mut frame);
            out.replaced += n.replaced;
            out.clipped += n.clipped;
            self.process_frame(&frame, out)?;
        }
        if self.k > 0 {
            let zero = vec![0.0f32; FRAME * ch];
            self.process_frame(&zero, out)?;
        }
        if self.uses_silero()
            && let Some(s) = &mut self.silero
        {
            self.mono16.clear();
            self.decimator.flush(&mut self.mono16);
            s.push(&self.mono16, &mut self.chunk_probs)?;
            s.flush(&mut self.chunk_probs)?;
        }
        self.emit(out, Some(total));
        if let Some(e) = self.hyst.finish(total) {
            out.events.push(e);
            out.event_probabilities.push(self.last_prob);
        }
        Ok(())
    }

    fn feed_silero(&mut self, interleaved: &[f32]) -> Result<(), RuntimeError> {
        let Some(s) = &mut self.silero else {
            return Ok(());
        };
        self.mono.clear();
        downmix(interleaved, self.cfg.channels, &mut self.mono);
        self.mono16.clear();
        self.decimator.push(&self.mono, &mut self.mono16);
        s.push(&self.mono16, &mut self.chunk_probs)
    }

    fn process_frame(
        &mut self,
        frame: &[f32],
        _out: &mut EngineOutput,
    ) -> Result<(), RuntimeError> {
        let silero = self.uses_silero();
        if silero && !self.cfg.silero_on_denoised {
            self.feed_silero(frame)?;
        }
        let strength = self.cfg.enabled.then_some(self.cfg.strength);
        let mut out = std::mem::take(&mut self.out_buf);
        let r = self.denoiser.process(frame, &mut out, strength, !silero);
        self.k += 1;
        if let Some(rn) = r {
            let index = self.k - 2;
            if silero && self.cfg.silero_on_denoised {
                self.feed_silero(&out)?;
            }
            let mut samples = self.spare.pop().unwrap_or_default();
            samples.clear();
            samples.extend_from_slice(&out);
            self.pending.push_back(Pending { samples, rn, index });
        }
        self.out_buf = out;
        Ok(())
    }

    fn emit_ready(&mut self, out: &mut EngineOutput) {
        self.emit(out, None);
    }

    /// Emits frames whose probability is known (all of them when `total` is given, the
    /// last one cut so that exactly `total` samples per channel have left).
    fn emit(&mut self, out: &mut EngineOutput, total: Option<u64>) {
        let ch = self.cfg.channels;
        let silero = self.uses_silero();
        while let Some(p) = self.pending.front() {
            let start = p.index * FRAME as u64;
            if let Some(t) = total
                && start >= t
            {
                self.pending.clear();
                break;
            }
            let prob = if silero {
                let c = (start + FRAME as u64 / 2 + self.cfg.silero_lookahead) / CHUNK_48K;
                let known = self.chunk_base + self.chunk_probs.len() as u64;
                if c >= known {
                    if total.is_some() {
                        // Cannot happen after a full drain; fall back to the last chunk.
                        self.chunk_probs.last().copied().unwrap_or(0.0)
                    } else {
                        break;
                    }
                } else {
                    self.chunk_probs[(c - self.chunk_base) as usize]
                }
            } else {
                p.rn
            };
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            let len = match total {
                Some(t) => (t - start).min(FRAME as u64) as usize,
                None => FRAME,
            };
            self.last_prob = prob;
            if let Some(e) = self.hyst.update(prob, start, len as u64) {
                out.events.push(e);
                out.event_probabilities.push(prob);
            }
            let open = self.hyst.gate_open();
            let target = match (self.cfg.gate, open) {
                (Gate::None, _) | (_, true) => 1.0,
                (Gate::Attenuate, false) => 10f32.powf(self.cfg.attenuation_db.min(0.0) / 20.0),
                (Gate::Silence, false) => 0.0,
            };
            let base = out.samples.len();
            out.samples.extend_from_slice(&p.samples[..len * ch]);
            if target != 1.0 || self.gain != 1.0 {
                // 2.5 ms linear ramp from the previous gain, then the target.
                const RAMP: usize = 120;
                for (i, s) in out.samples[base..].chunks_exact_mut(ch).enumerate() {
                    let g = if i < RAMP {
                        self.gain + (target - self.gain) * (i as f32 + 1.0) / RAMP as f32
                    } else {
                        target
                    };
                    s.iter_mut().for_each(|v| *v *= g);
                }
            }
            self.gain = target;
            out.frames.push(FrameInfo {
                start,
                len,
                probability: prob,
                rnnoise_probability: if silero { 0.0 } else { p.rn },
                speech: self.hyst.in_speech(),
                gate_open: open,
            });
            self.n_out += len as u64;
            self.spare.push(p.samples);
        }
        // Drop chunk probabilities no pending frame can need any more.
        if silero {
            let next_frame = self.pending.front().map_or(self.k, |p| p.index);
            let first_needed =
                (next_frame * FRAME as u64 + FRAME as u64 / 2 + self.cfg.silero_lookahead)
                    / CHUNK_48K;
            if first_needed > self.chunk_base {
                let drop = ((first_needed - self.chunk_base) as usize).min(self.chunk_probs.len());
                self.chunk_probs.drain(..drop);
                self.chunk_base += drop as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::denoise::MAX_ABS;

    fn run(cfg: EngineConfig, x: &[f32], chunk: usize) -> (EngineOutput, u64) {
        let mut e = SpeechEngine::new(cfg, None);
        let mut out = EngineOutput::default();
        let mut max_lat = 0u64;
        let ch = cfg.channels;
        for c in x.chunks(chunk * ch) {
            let before = out.samples.len() / ch;
            e.push(c, &mut out).unwrap();
            let after = out.samples.len() / ch;
            if after > before {
                // the first sample emitted now entered at index `before`
                max_lat = max_lat.max(e.samples_in() - before as u64);
            }
        }
        e.finish(&mut out).unwrap();
        (out, max_lat)
    }

    #[test]
    fn same_length_any_chunking_and_bypass_is_exact() {
        let x = crate::audio::synth::white_noise(48_000 + 123, 5);
        let cfg = EngineConfig {
            enabled: false,
            ..Default::default()
        };
        for chunk in [1, 7, 480, 4096, 48_000] {
            let (out, _) = run(cfg, &x, chunk);
            assert_eq!(out.samples, x, "chunk {chunk}");
            let covered: usize = out.frames.iter().map(|f| f.len).sum();
            assert_eq!(covered, x.len());
        }
        let (a, _) = run(EngineConfig::default(), &x, 7);
        let (b, _) = run(EngineConfig::default(), &x, 4096);
        assert_eq!(a.samples, b.samples);
        assert_eq!(a.samples.len(), x.len());
    }

    #[test]
    fn latency_is_two_frames_with_rnnoise() {
        let x = crate::audio::synth::white_noise(10_000, 5);
        let e = SpeechEngine::new(EngineConfig::default(), None);
        assert_eq!(e.latency_samples(), 960);
        let (_, lat) = run(EngineConfig::default(), &x, 1);
        assert_eq!(lat, 960);
    }

    #[test]
    fn silero_latency_bound() {
        let cfg = EngineConfig {
            vad: VadKind::Silero,
            ..Default::default()
        };
        assert_eq!(latency_samples(&cfg, false), 960);
        assert_eq!(latency_samples(&cfg, true), 5_760);
        let causal = EngineConfig {
            silero_lookahead: 0,
            ..cfg
        };
        assert_eq!(latency_samples(&causal, true), 2_400);
    }

    #[test]
    fn nan_is_replaced_and_counted() {
        let mut x = crate::audio::synth::white_noise(2000, 5);
        x[10] = f32::NAN;
        x[1999] = f32::INFINITY;
        let (out, _) = run(EngineConfig::default(), &x, 100);
        assert_eq!(out.replaced, 2);
        assert!(out.samples.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn huge_finite_samples_are_clipped_and_counted() {
        // RNNoise aborted (debug) on samples ≥ 1e15; they are clipped to ±MAX_ABS first.
        let mut x = crate::audio::synth::white_noise(4000, 7);
        for (i, v) in [1e15f32, -1e30, f32::MAX, 1e38, 2.0 * MAX_ABS]
            .into_iter()
            .enumerate()
        {
            x[100 + 700 * i] = v;
        }
        x[3000..3480].iter_mut().for_each(|v| *v = 1e30);
        let (out, _) = run(EngineConfig::default(), &x, 333);
        assert_eq!(out.clipped, 5 + 480);
        assert_eq!(out.replaced, 0);
        assert_eq!(out.samples.len(), x.len());
        assert!(out.samples.iter().all(|v| v.is_finite()));
        assert!(
            out.frames
                .iter()
                .all(|f| (0.0..=1.0).contains(&f.probability))
        );
        // bypass: the clipped value itself, exactly where the input had it
        let cfg = EngineConfig {
            enabled: false,
            ..Default::default()
        };
        let (out, _) = run(cfg, &x, 333);
        assert_eq!(out.samples[100], MAX_ABS);
        assert_eq!(out.samples[800], -MAX_ABS);
        assert_eq!(out.samples[3100], MAX_ABS);
        assert_eq!(out.samples[99], x[99]);
    }

    #[test]
    fn stereo_channels_stay_independent() {
        let n = 9600;
        let noise = crate::audio::synth::white_noise(n, 9);
        let mut x = vec![0.0f32; 2 * n];
        for i in 0..n {
            x[2 * i] = noise[i] * 0.1;
        }
        let (out, _) = run(
            EngineConfig {
                channels: 2,
                ..Default::default()
            },
            &x,
            4096,
        );
        assert!(out.samples.iter().skip(1).step_by(2).all(|&v| v == 0.0));
        assert!(out.samples.iter().step_by(2).any(|&v| v != 0.0));
    }
}
