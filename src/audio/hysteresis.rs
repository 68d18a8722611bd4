// SPDX-License-Identifier: MPL-2.0
//! Speech/non-speech decisions from per-frame probabilities, with hysteresis and minimum
//! durations, producing boundary events with exact (retroactive) sample positions.
//!
//! Two thresholds: speech starts when the probability reaches `threshold`, and ends when it
//! falls below `threshold − 0.15` (at least 0.01), as Silero's `get_speech_timestamps`
//! does. A start is confirmed once speech has lasted `min_speech` samples; an end once the
//! probability stayed low for `min_silence` samples. Events are therefore *reported* late
//! by up to those durations, but carry the position where the speech really started or
//! ended.

/// Start or end of speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechEventKind {
    /// Speech begins.
    Start,
    /// Speech ends.
    End,
}

/// A speech boundary at `sample` (samples since the stream start or last reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechEvent {
    /// Start or end.
    pub kind: SpeechEventKind,
    /// Position of the boundary in samples.
    pub sample: u64,
}

/// Hysteresis settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HysteresisConfig {
    /// Probability at which speech starts (0..1).
    pub threshold: f32,
    /// Speech shorter than this (samples) is ignored.
    pub min_speech: u64,
    /// Pauses shorter than this (samples) do not end speech.
    pub min_silence: u64,
    /// Before a start is confirmed, a pause this long (samples, capped at `min_silence`)
    /// cancels the candidate, so a noise blip shortly before speech does not move the
    /// start earlier.
    pub candidate_gap: u64,
}

impl Default for HysteresisConfig {
    /// 0.5, 250 ms, 300 ms, 100 ms at 48 kHz.
    fn default() -> Self {
        HysteresisConfig {
            threshold: 0.5,
            min_speech: 12_000,
            min_silence: 14_400,
            candidate_gap: 4_800,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Silence,
    MaybeSpeech { start: u64, low_since: Option<u64> },
    Speech,
    MaybeSilence { end: u64 },
}

/// The hysteresis state machine.
#[derive(Debug, Clone)]
pub struct Hysteresis {
    cfg: HysteresisConfig,
    st: St,
}

impl Hysteresis {
    /// A machine in the non-speech state.
    pub fn new(cfg: HysteresisConfig) -> Self {
        Hysteresis {
            cfg,
            st: St::Silence,
        }
    }

    /// The settings.
    pub fn config(&self) -> HysteresisConfig {
        self.cfg
    }

    /// Changes the settings (the state is kept).
    pub fn set_config(&mut self, cfg: HysteresisConfig) {
        self.cfg = cfg;
    }

    /// The lower (end-of-speech) threshold.
    pub fn low_threshold(&self) -> f32 {
        (self.cfg.threshold - 0.15).max(0.01)
    }

    /// Back to non-speech.
    pub fn reset(&mut self) {
        self.st = St::Silence;
    }

    /// Confirmed speech (a start was reported and no end yet).
    pub fn in_speech(&self) -> bool {
        matches!(self.st, St::Speech | St::MaybeSilence { .. })
    }

    /// Whether a gate should let audio through: confirmed speech, or a probable start that
    /// is not confirmed yet (so the first syllable is not cut).
    pub fn gate_open(&self) -> bool {
        !matches!(self.st, St::Silence)
    }

    /// Feeds the probability of the frame `[start, start + len)`; returns the event it
    /// confirms, if any.
    pub fn update(&mut self, prob: f32, start: u64, len: u64) -> Option<SpeechEvent> {
        let end = start + len;
        let hi = prob >= self.cfg.threshold;
        let lo = prob < self.low_threshold();
        let ev = |kind, sample| Some(SpeechEvent { kind, sample });
        match self.st {
            St::Silence => {
                if hi {
                    self.st = St::MaybeSpeech {
                        start,
                        low_since: None,
                    };
                    return self.confirm_start(start, end);
                }
                None
            }
            St::MaybeSpeech {
                start: s,
                low_since,
            } => {
                if lo {
                    // A pause inside a candidate: it is dropped only if the pause lasts
                    // `candidate_gap`.
                    let since = low_since.unwrap_or(start);
                    if end - since >= self.cfg.candidate_gap.min(self.cfg.min_silence) {
                        self.st = St::Silence;
                    } else {
                        self.st = St::MaybeSpeech {
                            start: s,
                            low_since: Some(since),
                        };
                    }
                    None
                } else {
                    self.st = St::MaybeSpeech {
                        start: s,
                        low_since: None,
                    };
                    self.confirm_start(s, end)
                }
            }
            St::Speech => {
                if lo {
                    self.st = St::MaybeSilence { end: start };
                    if len >= self.cfg.min_silence {
                        self.st = St::Silence;
                        return ev(SpeechEventKind::End, start);
                    }
                }
                None
            }
            St::MaybeSilence { end: e } => {
                if hi {
                    self.st = St::Speech;
                    None
                } else if end - e >= self.cfg.min_silence {
                    self.st = St::Silence;
                    ev(SpeechEventKind::End, e)
                } else {
                    None
                }
            }
        }
    }

    fn confirm_start(&mut self, s: u64, end: u64) -> Option<SpeechEvent> {
        if end - s >= self.cfg.min_speech.max(1) {
            self.st = St::Speech;
            Some(SpeechEvent {
                kind: SpeechEventKind::Start,
                sample: s,
            })
        } else {
            None
        }
    }

    /// End of stream at `at`: ends confirmed speech (at the pending end if a pause had
    /// begun) and drops an unconfirmed start.
    pub fn finish(&mut self, at: u64) -> Option<SpeechEvent> {
        let r = match self.st {
            St::Speech => Some(at),
            St::MaybeSilence { end } => Some(end),
            _ => None,
        };
        self.st = St::Silence;
        r.map(|sample| SpeechEvent {
            kind: SpeechEventKind::End,
            sample,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(probs: &[f32], cfg: HysteresisConfig) -> Vec<SpeechEvent> {
        let mut h = Hysteresis::new(cfg);
        let mut ev: Vec<SpeechEvent> = probs
            .iter()
            .enumerate()
            .filter_map(|(i, &p)| h.update(p, i as u64 * 10, 10))
            .collect();
        ev.extend(h.finish(probs.len() as u64 * 10));
        ev
    }

    fn ev(kind: SpeechEventKind, sample: u64) -> SpeechEvent {
        SpeechEvent { kind, sample }
    }

    #[test]
    fn boundaries_are_retroactive_and_short_blips_ignored() {
        let cfg = HysteresisConfig {
            threshold: 0.5,
            min_speech: 30,
            min_silence: 30,
            candidate_gap: 30,
        };
        let mut p = vec![0.0f32; 40];
        // a 2-frame blip: ignored
        p[2] = 0.9;
        p[3] = 0.9;
        // speech 10..25 with a 2-frame dip at 15..17 (shorter than min_silence)
        for v in &mut p[10..25] {
            *v = 0.9;
        }
        p[15] = 0.1;
        p[16] = 0.1;
        // 0.4 is between the thresholds: keeps speech going but does not start it
        p[25] = 0.4;
        p[35] = 0.4;
        let e = run(&p, cfg);
        assert_eq!(
            e,
            vec![
                ev(SpeechEventKind::Start, 100),
                ev(SpeechEventKind::End, 260)
            ]
        );
    }

    #[test]
    fn speech_until_the_end_is_closed_by_finish() {
        let cfg = HysteresisConfig {
            threshold: 0.5,
            min_speech: 10,
            min_silence: 50,
            candidate_gap: 20,
        };
        let e = run(&[0.0, 0.8, 0.8, 0.8], cfg);
        assert_eq!(
            e,
            vec![ev(SpeechEventKind::Start, 10), ev(SpeechEventKind::End, 40)]
        );
        let mut h = Hysteresis::new(cfg);
        assert!(h.update(0.9, 0, 10).is_some());
        assert!(h.in_speech() && h.gate_open());
        assert!(h.update(0.0, 10, 10).is_none());
        assert!(h.in_speech());
        assert_eq!(h.finish(20), Some(ev(SpeechEventKind::End, 10)));
        assert!(!h.gate_open());
    }
}
