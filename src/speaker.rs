// SPDX-License-Identifier: MPL-2.0
//! Who speaks: a per-face `speaking` probability from the synchrony of the face's mouth
//! motion with the voice, with hysteresis.
//!
//! Per frame and face track, from the face mesh: the **mouth opening** — the inner-lip
//! distance (landmarks 13–14) over the face's size (the outer eye corners 33–263) — and
//! its **motion** `|Δ opening|`. From the audio: the voice-activity probability and the
//! loudness envelope (linear RMS), multiplied: the **voice envelope**.
//!
//! Over a sliding window of the last [`SpeakerConfig::window`] measured frames, the score of a
//! track is, at the best lag within ±[`SpeakerConfig::max_lag`] frames (lip motion leads
//! or trails the sound by up to ~150 ms), the mean of two Pearson correlations: mouth
//! opening with the voice envelope, and mouth motion with the envelope's motion
//! `|Δ envelope|`. Pearson correlation is normalised per track: a mouth that moves all
//! the time (chewing, a grin) without following the voice scores low however much it
//! moves, and a still mouth (zero variance) scores 0. The probability is
//! `clip(correlation, 0, 1) × voice_activity × evidence`: the window's mean
//! voice-activity probability (no speech, nobody speaks), and the share of half a window
//! the track has been seen for (a correlation over a few frames of a new face is noise;
//! 1 from half a window on).
//!
//! The `speaking` flag turns on after [`SpeakerConfig::min_on`] consecutive frames at or
//! above [`SpeakerConfig::on`], and off after [`SpeakerConfig::min_off`] frames below
//! [`SpeakerConfig::off`] (hysteresis and minimum durations: no flicker between faces).

use std::collections::{BTreeMap, VecDeque};

use crate::face::mesh::{MeshResult, index};

/// Mouth opening of a mesh: inner-lip distance over the outer-eye-corner distance (a
/// size that does not change when the mouth opens). `None` when the points are missing
/// or degenerate.
pub fn mouth_opening(mesh: &MeshResult) -> Option<f32> {
    let d = |a: usize, b: usize| -> Option<f32> {
        let (p, q) = (mesh.xy(a)?, mesh.xy(b)?);
        let v = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
        v.is_finite().then_some(v)
    };
    let lips = d(index::UPPER_LIP_INNER, index::LOWER_LIP_INNER)?;
    let eyes = d(index::IMAGE_LEFT_EYE_OUTER, index::IMAGE_RIGHT_EYE_OUTER)?;
    (eyes > 1e-3).then(|| lips / eyes)
}

/// How many windows of frames back a track's last `window` mouth measurements may reach
/// when they are sparse (`facecrop mesh-interval` > 1, meshes the model rejected).
const SPARSE_SPAN: usize = 4;

/// Settings of [`ActiveSpeaker`] (frames at the video's rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeakerConfig {
    /// Frames of the sliding correlation window.
    pub window: usize,
    /// Largest lag tried, either way (frames).
    pub max_lag: usize,
    /// Probability at or above which a frame counts as speaking.
    pub on: f32,
    /// Probability below which a frame counts as silent.
    pub off: f32,
    /// Speaking frames in a row that turn the flag on.
    pub min_on: u32,
    /// Silent frames in a row that turn the flag off.
    pub min_off: u32,
}

impl SpeakerConfig {
    /// Defaults for `fps` frames per second: a 2 s window, lags of ±150 ms, on at 0.5
    /// for 200 ms, off below 0.3 for 400 ms.
    pub fn for_fps(fps: f64) -> Self {
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            25.0
        };
        let frames = |s: f64| ((s * fps).round() as usize).max(1);
        SpeakerConfig {
            window: frames(2.0).max(4),
            max_lag: frames(0.15),
            on: 0.5,
            off: 0.3,
            min_on: frames(0.2) as u32,
            min_off: frames(0.4) as u32,
        }
    }
}

/// The state of one face in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speaking {
    /// Probability in \[0, 1\] that this face is the one speaking now.
    pub probability: f32,
    /// The hysteresis flag.
    pub speaking: bool,
    /// Clearly *not* the voice's face: a full window of this track in which speech went
    /// on (mean voice activity ≥ 0.5) while its probability stays below
    /// [`SpeakerConfig::off`] and the flag is off — e.g. an off-screen narrator over a
    /// face whose mouth is still. What decides attribution when only one face is in
    /// view ([`audio_weight`]).
    pub silent: bool,
}

/// Which faces get the voice (`avfuse audio-attribution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Attribution {
    /// The voice goes to the face(s) flagged speaking; with a single face in view, to
    /// that face unless it is clearly not speaking ([`Speaking::silent`]).
    #[default]
    Speaker,
    /// Every face gets the voice.
    All,
    /// No face gets the voice.
    None,
}

/// The audio-mask weight in `[0, 1]` of one face under `mode`, given the states of all
/// faces in view this frame (`None`: the face's speaking state is unknown, e.g. no mesh
/// ever: treated as `All`).
pub fn audio_weight(mode: Attribution, state: Option<Speaking>, faces_in_view: usize) -> f32 {
    match (mode, state) {
        (Attribution::None, _) => 0.0,
        (Attribution::All, _) | (Attribution::Speaker, None) => 1.0,
        (Attribution::Speaker, Some(s)) => {
            let yes = if faces_in_view <= 1 {
                !s.silent
            } else {
                s.speaking
            };
            if yes { 1.0 } else { 0.0 }
        }
    }
}

/// One frame of a track's mouth.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// The opening measured on this frame (`None`: no fresh mesh).
    opening: Option<f32>,
    /// `|Δ opening|` since the previous measurement and how many frames back that was.
    motion: Option<(f32, usize)>,
}

#[derive(Debug, Clone, Default)]
struct Track {
    samples: VecDeque<Sample>,
    /// The last measurement: opening and the frame count it was taken at.
    last: Option<(f32, u32)>,
    speaking: bool,
    run: u32,
    /// Frames pushed since the track appeared.
    frames: u32,
}

/// Per-track active-speaker scoring over a stream of frames.
#[derive(Debug, Clone)]
pub struct ActiveSpeaker {
    cfg: SpeakerConfig,
    voice: VecDeque<f32>,
    activity: VecDeque<f32>,
    tracks: BTreeMap<u64, Track>,
}

fn clean01(v: f32) -> f32 {
    if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) }
}

/// Pearson correlation of two equally long series (their last common `n` values); 0
/// when either is constant (variance under 1e-12: a still mouth, digital silence).
fn pearson(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    if n < 3 {
        return 0.0;
    }
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    let floor = 1e-12 * n as f64;
    if saa > floor && sbb > floor && (saa * sbb).is_finite() {
        (sab / (saa * sbb).sqrt()).clamp(-1.0, 1.0) as f32
    } else {
        0.0
    }
}

impl ActiveSpeaker {
    /// No tracks yet.
    pub fn new(cfg: SpeakerConfig) -> Self {
        ActiveSpeaker {
            cfg,
            voice: VecDeque::new(),
            activity: VecDeque::new(),
            tracks: BTreeMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &SpeakerConfig {
        &self.cfg
    }

    /// One frame: the audio's voice-activity probability and RMS loudness (linear, any
    /// scale: the correlation ignores it) around the frame, and the mouth opening of each
    /// face (`None`: not measured this frame — no fresh mesh — and left out of the
    /// correlation). Tracks not given are
    /// forgotten. Returns each given face's state, in the order given.
    pub fn push(
        &mut self,
        voice_activity: f32,
        loudness: f32,
        faces: &[(u64, Option<f32>)],
    ) -> Vec<(u64, Speaking)> {
        // Sparse measurements (`mesh-interval`) reach further back for their `window`
        // samples: up to SPARSE_SPAN windows of frames.
        let keep = SPARSE_SPAN * self.cfg.window + self.cfg.max_lag;
        let activity = clean01(voice_activity);
        let loud = if loudness.is_finite() {
            loudness.max(0.0)
        } else {
            0.0
        };
        let envelope = activity * loud;
        self.voice.push_back(envelope);
        self.activity.push_back(activity);
        while self.voice.len() > keep {
            self.voice.pop_front();
            self.activity.pop_front();
        }
        self.tracks.retain(|id, _| faces.iter().any(|f| f.0 == *id));
        let voice: &[f32] = self.voice.make_contiguous();
        let recent = self.activity.len().min(self.cfg.window);
        let mean_activity =
            self.activity.iter().rev().take(recent).sum::<f32>() / recent.max(1) as f32;
        let cfg = self.cfg;
        faces
            .iter()
            .map(|&(id, opening)| {
                let t = self.tracks.entry(id).or_default();
                let opening = opening.filter(|v| v.is_finite());
                let motion = match (opening, t.last) {
                    (Some(o), Some((l, at))) => {
                        Some(((o - l).abs(), (t.frames - at).max(1) as usize))
                    }
                    _ => None,
                };
                if let Some(o) = opening {
                    t.last = Some((o, t.frames));
                }
                t.samples.push_back(Sample { opening, motion });
                while t.samples.len() > keep {
                    t.samples.pop_front();
                }
                let (correlation, measured) =
                    Self::correlation(&cfg, t.samples.make_contiguous(), voice);
                // A correlation over a few measurements is noise (a new face, the
                // stream's start, a sparse mesh): it counts in proportion to the
                // measurements it rests on, fully from half a window's worth on.
                let evidence = (measured as f32 / (cfg.window as f32 / 2.0).max(1.0)).min(1.0);
                t.frames = t.frames.saturating_add(1);
                let probability = clean01(correlation.max(0.0) * mean_activity * evidence);
                let hit = if t.speaking {
                    probability < cfg.off
                } else {
                    probability >= cfg.on
                };
                t.run = if hit { t.run + 1 } else { 0 };
                if t.speaking && t.run >= cfg.min_off {
                    t.speaking = false;
                    t.run = 0;
                } else if !t.speaking && t.run >= cfg.min_on {
                    t.speaking = true;
                    t.run = 0;
                }
                let silent = !t.speaking
                    && t.frames as usize >= cfg.window
                    && mean_activity >= 0.5
                    && probability < cfg.off;
                (
                    id,
                    Speaking {
                        probability,
                        speaking: t.speaking,
                        silent,
                    },
                )
            })
            .collect()
    }

    /// The best, over lags of −max_lag ..= max_lag frames, of the mean of two Pearson
    /// correlations over the track's last `window` frames: its measured mouth openings
    /// with the voice envelope, and its mouth motion (between consecutive measurements)
    /// with the envelope's change over the same frames; and how many measurements that
    /// rests on. Frames without a measurement (no fresh mesh: `mesh-interval`, a face the
    /// mesh model rejected) are left out and the window reaches further back (at most
    /// [`SPARSE_SPAN`] windows of frames) for its `window` measurements, so a mouth
    /// measured every 2nd or 3rd frame is judged on as many points, over 4 or 6 s.
    fn correlation(cfg: &SpeakerConfig, samples: &[Sample], voice: &[f32]) -> (f32, usize) {
        // The frames holding the last `window` measurements.
        let mut measured = 0;
        let mut span = 0;
        for s in samples.iter().rev() {
            if measured == cfg.window {
                break;
            }
            span += 1;
            measured += usize::from(s.opening.is_some());
        }
        let recent = &samples[samples.len() - span..];
        let (mut xo, mut yo, mut xm, mut ym) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut best = 0.0f32;
        for lag in 0..=2 * cfg.max_lag {
            let shift = lag as isize - cfg.max_lag as isize;
            for v in [&mut xo, &mut yo, &mut xm, &mut ym] {
                v.clear();
            }
            for (back, s) in recent.iter().rev().enumerate() {
                let Some(o) = s.opening else { continue };
                // Only the past exists: a positive shift compares the mouth with earlier
                // voice, a negative one the voice with earlier mouth.
                let j = voice.len() as isize - 1 - back as isize - shift;
                if j < 0 || j >= voice.len() as isize {
                    continue;
                }
                let j = j as usize;
                xo.push(o);
                yo.push(voice[j]);
                if let Some((m, gap)) = s.motion
                    && j >= gap
                {
                    xm.push(m);
                    ym.push((voice[j] - voice[j - gap]).abs());
                }
            }
            if xo.len() < 3 {
                continue;
            }
            best = best.max((pearson(&xo, &yo) + pearson(&xm, &ym)) / 2.0);
        }
        (best, measured)
    }

    /// The tracks flagged speaking now.
    pub fn speakers(&self) -> Vec<u64> {
        self.tracks
            .iter()
            .filter(|(_, t)| t.speaking)
            .map(|(id, _)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::synth::Rng;

    /// A syllable-like voice envelope: bursts of 3–7 frames with pauses.
    fn envelope(frames: usize, seed: u64) -> Vec<f32> {
        let mut r = Rng::new(seed);
        let mut out = Vec::with_capacity(frames);
        while out.len() < frames {
            let on = 3 + (r.uniform() * 5.0) as usize;
            let off = 1 + (r.uniform() * 4.0) as usize;
            for k in 0..on {
                out.push((std::f64::consts::PI * (k as f64 + 0.5) / on as f64).sin() as f32);
            }
            out.extend(std::iter::repeat_n(0.0, off));
        }
        out.truncate(frames);
        out
    }

    fn run(
        sp: &mut ActiveSpeaker,
        voice: &[f32],
        activity: f32,
        mouths: &[(u64, Vec<f32>)],
    ) -> Vec<Vec<(u64, Speaking)>> {
        (0..voice.len())
            .map(|t| {
                let faces: Vec<(u64, Option<f32>)> =
                    mouths.iter().map(|(id, m)| (*id, Some(m[t]))).collect();
                sp.push(activity, voice[t], &faces)
            })
            .collect()
    }

    #[test]
    fn the_face_whose_mouth_follows_the_voice_speaks_the_chewing_one_does_not() {
        let cfg = SpeakerConfig::for_fps(25.0);
        assert_eq!(
            (cfg.window, cfg.max_lag, cfg.min_on, cfg.min_off),
            (50, 4, 5, 10)
        );
        let frames = 300;
        let voice = envelope(frames, 1);
        // Face 1 opens its mouth with the voice, 2 frames late; face 2 chews: a steady
        // 3-frame-period open/close, as large, unrelated to the voice; face 3 is still.
        let speaker: Vec<f32> = (0..frames)
            .map(|t| 0.05 + 0.3 * if t >= 2 { voice[t - 2] } else { 0.0 })
            .collect();
        let chewing: Vec<f32> = (0..frames)
            .map(|t| 0.05 + 0.3 * ((t % 3) as f32 / 2.0))
            .collect();
        let still = vec![0.05; frames];
        let mut sp = ActiveSpeaker::new(cfg);
        let out = run(
            &mut sp,
            &voice,
            1.0,
            &[(1, speaker), (2, chewing), (3, still)],
        );
        let settled = &out[100..];
        let mean = |id: u64| {
            settled
                .iter()
                .map(|f| f.iter().find(|s| s.0 == id).unwrap().1.probability)
                .sum::<f32>()
                / settled.len() as f32
        };
        let (p1, p2, p3) = (mean(1), mean(2), mean(3));
        assert!(p1 > 0.6 && p2 < 0.3 && p3 == 0.0, "{p1} {p2} {p3}");
        assert!(
            settled
                .iter()
                .all(|f| f[0].1.speaking && !f[1].1.speaking && !f[2].1.speaking)
        );
        assert_eq!(sp.speakers(), vec![1]);
    }

    #[test]
    fn a_mouth_measured_every_other_frame_is_compared_on_those_frames() {
        let cfg = SpeakerConfig::for_fps(25.0);
        let frames = 300;
        let voice = envelope(frames, 4);
        let talking: Vec<f32> = voice.iter().map(|v| 0.05 + 0.3 * v).collect();
        let other: Vec<f32> = (0..frames)
            .map(|t| 0.05 + 0.3 * ((t % 5) as f32 / 4.0))
            .collect();
        let mut sp = ActiveSpeaker::new(cfg);
        let mut flags = Vec::new();
        for t in 0..frames {
            // `mesh-interval=2`: a fresh mesh on even frames only.
            let m = |v: &[f32]| (t % 2 == 0).then_some(v[t]);
            flags.push(sp.push(1.0, voice[t], &[(1, m(&talking)), (2, m(&other))]));
        }
        let settled = &flags[100..];
        let share = |k: usize| {
            settled.iter().filter(|f| f[k].1.speaking).count() as f32 / settled.len() as f32
        };
        assert!(
            share(0) > 0.95 && share(1) < 0.05,
            "{} {}",
            share(0),
            share(1)
        );
    }

    #[test]
    fn no_voice_activity_no_speaker_and_the_flag_has_hysteresis() {
        let cfg = SpeakerConfig::for_fps(25.0);
        let frames = 200;
        let voice = envelope(frames, 2);
        let mouth: Vec<f32> = voice.iter().map(|v| 0.05 + 0.3 * v).collect();
        // Loud non-speech (activity 0): nobody.
        let mut sp = ActiveSpeaker::new(cfg);
        let out = run(&mut sp, &voice, 0.0, &[(7, mouth.clone())]);
        assert!(
            out.iter()
                .all(|f| f[0].1.probability == 0.0 && !f[0].1.speaking)
        );
        // Speech: on only after min_on frames at or above `on`; the mouth then stops
        // and the voice goes on: off only after min_off frames below `off`.
        let mut sp = ActiveSpeaker::new(cfg);
        let out = run(&mut sp, &voice, 1.0, &[(7, mouth.clone())]);
        let first_on = out.iter().position(|f| f[0].1.speaking).unwrap();
        let above = out[..first_on]
            .iter()
            .rev()
            .take_while(|f| f[0].1.probability >= cfg.on)
            .count();
        assert_eq!(above as u32 + 1, cfg.min_on, "on after {first_on}");
        let mut frozen = vec![(7u64, Some(0.05f32))];
        let mut off_at = None;
        for t in 0..100 {
            let s = sp.push(1.0, voice[t % frames], &frozen)[0].1;
            if !s.speaking {
                off_at = Some(t);
                break;
            }
            frozen[0].1 = Some(0.05);
        }
        let off_at = off_at.expect("turns off");
        assert!(off_at as u32 >= cfg.min_off - 1, "off after {off_at}");
    }

    #[test]
    fn a_still_face_under_speech_is_clearly_silent_and_loses_the_voice() {
        let cfg = SpeakerConfig::for_fps(25.0);
        let frames = 150;
        let voice = envelope(frames, 3);
        let talking: Vec<f32> = voice.iter().map(|v| 0.05 + 0.3 * v).collect();
        let mut sp = ActiveSpeaker::new(cfg);
        let still = run(&mut sp, &voice, 1.0, &[(1, vec![0.05; frames])]);
        // Not before a full window of evidence; then for good.
        let first = still.iter().position(|f| f[0].1.silent).unwrap();
        assert_eq!(first + 1, cfg.window);
        assert!(still[first..].iter().all(|f| f[0].1.silent));
        let s = still[frames - 1][0].1;
        assert_eq!(audio_weight(Attribution::Speaker, Some(s), 1), 0.0);
        assert_eq!(audio_weight(Attribution::All, Some(s), 1), 1.0);
        assert_eq!(audio_weight(Attribution::None, Some(s), 1), 0.0);
        // The talking face alone keeps the voice all along (benefit of the doubt before
        // the flag is up), and so does it beside a still face once flagged.
        let mut sp = ActiveSpeaker::new(cfg);
        let out = run(
            &mut sp,
            &voice,
            1.0,
            &[(1, talking.clone()), (2, vec![0.05; frames])],
        );
        let last = &out[frames - 1];
        assert_eq!(audio_weight(Attribution::Speaker, Some(last[0].1), 2), 1.0);
        assert_eq!(audio_weight(Attribution::Speaker, Some(last[1].1), 2), 0.0);
        let mut sp = ActiveSpeaker::new(cfg);
        let alone = run(&mut sp, &voice, 1.0, &[(1, talking)]);
        assert!(
            alone
                .iter()
                .all(|f| audio_weight(Attribution::Speaker, Some(f[0].1), 1) == 1.0)
        );
        // No speech: a still face is not "silent" (nothing to attribute).
        let mut sp = ActiveSpeaker::new(cfg);
        let quiet = run(&mut sp, &voice, 0.0, &[(1, vec![0.05; frames])]);
        assert!(quiet.iter().all(|f| !f[0].1.silent));
        assert_eq!(audio_weight(Attribution::Speaker, None, 3), 1.0);
    }

    #[test]
    fn garbage_is_finite_and_tracks_are_forgotten() {
        let mut sp = ActiveSpeaker::new(SpeakerConfig::for_fps(f64::NAN));
        for t in 0..60 {
            let v = [f32::NAN, f32::INFINITY, -1.0, 1e30][t % 4];
            let out = sp.push(v, v, &[(1, Some(v)), (2, None)]);
            assert!(out.iter().all(|(_, s)| s.probability.is_finite()
                && (0.0..=1.0).contains(&s.probability)));
        }
        sp.push(1.0, 1.0, &[(2, None)]);
        assert_eq!(sp.tracks.len(), 1);
        assert_eq!(pearson(&[1.0, 1.0, 1.0], &[0.0, 1.0, 2.0]), 0.0);
        assert!((pearson(&[0.0, 1.0, 2.0], &[0.0, 2.0, 4.0]) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn mouth_opening_is_lip_gap_over_eye_span() {
        let mut points = vec![[0.0f32; 3]; crate::face::mesh::MESH_POINTS];
        points[index::UPPER_LIP_INNER] = [50.0, 60.0, 0.0];
        points[index::LOWER_LIP_INNER] = [50.0, 66.0, 0.0];
        points[index::IMAGE_LEFT_EYE_OUTER] = [20.0, 30.0, 0.0];
        points[index::IMAGE_RIGHT_EYE_OUTER] = [80.0, 30.0, 0.0];
        let m = MeshResult { points, score: 1.0 };
        assert!((mouth_opening(&m).unwrap() - 0.1).abs() < 1e-6);
        let empty = MeshResult {
            points: Vec::new(),
            score: 0.0,
        };
        assert_eq!(mouth_opening(&empty), None);
    }
}
