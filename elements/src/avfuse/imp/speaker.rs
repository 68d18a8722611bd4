// SPDX-License-Identifier: MPL-2.0
//! Who speaks (`audio-attribution=speaker`): the loudness envelope of the audio branch,
//! each face's mouth opening from its mesh, the per-track speaking state, the per-face
//! audio weight, and the `speaker-change` message.

use affect::face::mesh::MeshResult;
use affect::speaker::{ActiveSpeaker, Attribution, SpeakerConfig, Speaking, audio_weight};
use affect::timeline::frame_levels;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::*;
use crate::meta::{FaceRoi, SpeakerChangeMessage};

/// Speaker state of one stream (part of `State`).
pub(super) struct SpeakerState {
    /// `audio-attribution=speaker`: voice activity and levels are kept.
    pub(super) on: bool,
    /// Scoring, created at the first frame (its window is in frames of the video rate).
    scorer: Option<ActiveSpeaker>,
    /// 10 ms RMS level of the audio branch, on the running-time clock.
    pub(super) levels: SpeechTimeline,
    /// A face mesh has been seen since start.
    mesh_seen: bool,
    /// The missing meshes have been warned about.
    pub(super) warned_no_mesh: bool,
    /// The audio format cannot be read for levels (warned once).
    warned_format: bool,
    /// The tracks flagged speaking in the last output frame.
    speakers: Vec<u64>,
}

impl SpeakerState {
    pub(super) fn new(retain_ns: u64, on: bool) -> Self {
        SpeakerState {
            on,
            scorer: None,
            levels: SpeechTimeline::new(retain_ns),
            mesh_seen: false,
            warned_no_mesh: false,
            warned_format: false,
            speakers: Vec::new(),
        }
    }

    pub(super) fn reset(&mut self) {
        self.scorer = None;
        self.levels.reset();
        self.speakers.clear();
    }
}

/// Interleaved samples of a raw audio buffer as f32 in [-1, 1] (`None`: a format this
/// does not read).
fn samples(info: &gst_audio::AudioInfo, data: &[u8]) -> Option<Vec<f32>> {
    use gst_audio::AudioFormat as F;
    let v = match info.format() {
        F::F32le => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        F::F64le => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        F::S16le => data
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
            .collect(),
        F::S32le => data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0)
            .collect(),
        _ => return None,
    };
    Some(v)
}

impl AvFuse {
    /// Keeps the 10 ms RMS levels of an audio buffer (interleaved, non-planar raw audio
    /// in F32LE, F64LE, S16LE or S32LE; anything else is warned about once and gives no
    /// levels, so no face is judged speaking).
    pub(super) fn take_levels(
        &self,
        state: &mut State,
        pad: &gst_base::AggregatorPad,
        seg: &gst::Segment,
        buf: &gst::Buffer,
    ) {
        if buf.flags().contains(gst::BufferFlags::GAP) {
            return;
        }
        let Some(start) = buf.pts().and_then(|pts| Self::running_time(seg, pts)) else {
            return;
        };
        let Some(info) = pad
            .current_caps()
            .and_then(|c| gst_audio::AudioInfo::from_caps(&c).ok())
        else {
            return;
        };
        let readable = info.layout() == gst_audio::AudioLayout::Interleaved;
        let values = buf
            .map_readable()
            .ok()
            .and_then(|map| samples(&info, &map).filter(|_| readable));
        let Some(values) = values else {
            if !state.speaker.warned_format {
                state.speaker.warned_format = true;
                gst::warning!(
                    CAT,
                    imp = self,
                    "audio-attribution=speaker cannot read {:?} audio for its loudness: no face is judged speaking (put audioconvert ! audio/x-raw,format=F32LE before avfuse)",
                    info.format()
                );
            }
            return;
        };
        let rate = info.rate().max(1) as usize;
        let frame_len = (rate / 100).max(1);
        let levels = frame_levels(&values, info.channels() as usize, frame_len);
        let end = gst::ClockTime::SECOND
            .mul_div_floor(
                (values.len() / info.channels().max(1) as usize) as u64,
                rate as u64,
            )
            .map(|d| start.saturating_add(d.nseconds()));
        state
            .speaker
            .levels
            .push(start, SPEECH_FRAME_NS, end, &levels);
    }

    /// The speaking state of this frame's faces (`None` when not computed: attribution
    /// other than `speaker`, no audio branch yet, or no face mesh ever seen), scored on
    /// the frame's span `[time - duration/2, time + duration/2)` of the audio.
    pub(super) fn score_speakers(
        &self,
        state: &mut State,
        settings: &Settings,
        rois: &[FaceRoi],
        faces: &[u64],
        frame_time: Option<u64>,
        duration: u64,
    ) -> Option<Vec<(u64, Speaking)>> {
        if settings.attribution != Attribution::Speaker || !state.audio_started {
            return None;
        }
        let t = frame_time?;
        let openings: Vec<(u64, Option<f32>)> = faces
            .iter()
            .map(|&id| {
                let opening = rois
                    .iter()
                    .find(|r| {
                        r.track_id == id
                            && r.mesh.len() == affect::face::mesh::MESH_POINTS
                            && r.mesh_score
                                .is_none_or(|s| s >= affect::face::mesh::MIN_SCORE)
                    })
                    // A mesh carried over from an earlier frame (`mesh-interval`) is not a
                    // measurement of this frame's mouth.
                    .filter(|r| r.mesh_age.unwrap_or(0) == 0)
                    .and_then(|r| {
                        affect::speaker::mouth_opening(&MeshResult {
                            points: r.mesh.clone(),
                            score: r.mesh_score.unwrap_or(1.0),
                        })
                    });
                (id, opening)
            })
            .collect();
        if openings.iter().any(|(_, o)| o.is_some()) {
            state.speaker.mesh_seen = true;
        }
        if !state.speaker.mesh_seen {
            if !faces.is_empty() && !state.speaker.warned_no_mesh {
                state.speaker.warned_no_mesh = true;
                self.no_mesh_warning.store(true, Ordering::SeqCst);
            }
            return None;
        }
        let (start, end) = (
            t.saturating_sub(duration / 2),
            t.saturating_add(duration / 2),
        );
        // Without voice activity meta (no audiodenoise) every sound counts as voice.
        let activity = state
            .speech
            .mean(start, end)
            .unwrap_or(if state.speech_seen { 0.0 } else { 1.0 });
        let level = state.speaker.levels.mean(start, end).unwrap_or(0.0);
        let fps = self.frame_rate();
        let scorer = state
            .speaker
            .scorer
            .get_or_insert_with(|| ActiveSpeaker::new(SpeakerConfig::for_fps(fps)));
        Some(scorer.push(activity, level, &openings))
    }

    /// The per-track audio weight of a frame (`speaking`: its faces' states, if scored).
    pub(super) fn attribution_weight<'a>(
        settings: &Settings,
        states: Option<&'a [(u64, Speaking)]>,
        faces_in_view: usize,
    ) -> impl Fn(u64) -> f32 + 'a {
        let mode = settings.attribution;
        move |id| {
            // Scored: a track not in this frame is not speaking.
            let absent = Speaking {
                probability: 0.0,
                speaking: false,
                silent: true,
            };
            let state = states.map(|s| s.iter().find(|f| f.0 == id).map_or(absent, |f| f.1));
            audio_weight(mode, state, faces_in_view)
        }
    }

    /// The `speaker-change` message for an output frame whose flagged speakers are
    /// `now`, if they differ from the previous output frame's.
    pub(super) fn speaker_change(state: &mut State, now: Vec<u64>) -> Option<(Vec<u64>, Vec<u64>)> {
        if now == state.speaker.speakers {
            return None;
        }
        let previous = std::mem::replace(&mut state.speaker.speakers, now.clone());
        Some((now, previous))
    }

    /// Posts a `speaker-change` element message.
    pub(super) fn post_speaker_change(
        &self,
        buf: &gst::BufferRef,
        running: Option<gst::ClockTime>,
        stream: Option<gst::ClockTime>,
        (speakers, previous): (Vec<u64>, Vec<u64>),
    ) {
        let msg = SpeakerChangeMessage {
            track_id: speakers.iter().find(|id| !previous.contains(id)).copied(),
            speakers,
            previous,
            timestamp: buf.pts(),
            running_time: running,
            stream_time: stream,
        };
        crate::common::post_element_message(&*self.obj(), msg.to_structure());
    }
}
