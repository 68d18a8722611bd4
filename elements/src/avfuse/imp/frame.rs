// SPDX-License-Identifier: MPL-2.0
//! One output frame: the audio it needs, its faces and their feature vectors, the
//! fusion model, the metas, the files and the `affect` message.

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;

use super::*;
use crate::common::{ElementError, LockExt};
use crate::meta::speech_meta;

impl AvFuse {
    /// Moves queued audio buffers' feature vectors into the aligner, one buffer at a
    /// time, until the alignment at `until` (a frame time) is final; every queued buffer
    /// when `until` is `None` (the video has ended, or the pipeline is live). Audio is
    /// taken no faster than the video needs it: what is not needed yet stays queued on
    /// the pad, which holds the audio branch back (in a non-live pipeline it would
    /// otherwise run ahead of a slower video branch by any amount, beyond what the
    /// aligner keeps).
    pub(super) fn drain_audio(
        &self,
        state: &mut State,
        pad: &gst_base::AggregatorPad,
        until: Option<u64>,
    ) -> Result<(), features::FeatureCheckError> {
        let seg = pad.segment();
        while until.is_none_or(|t| !state.aligner.is_ready(t))
            && let Some(buf) = pad.pop_buffer()
        {
            state.audio_started = true;
            if state.audio_features.is_none() && !buf.flags().contains(gst::BufferFlags::GAP) {
                return Err(features::missing(false));
            }
            if state.audio_mask == AudioMaskKind::Speech || state.speaker.on {
                self.take_speech(state, pad, &seg, &buf);
            }
            if state.speaker.on {
                self.take_levels(state, pad, &seg, &buf);
            }
            for m in buf.iter_meta::<FeatureMeta>() {
                let v = m.data();
                if v.track_id.is_some() {
                    continue;
                }
                let Some(rt) = Self::running_time(&seg, gst::ClockTime::from_nseconds(v.pts))
                else {
                    continue;
                };
                if !v.valid || v.vector.len() != state.audio_dim {
                    if v.valid && !state.warned_dims {
                        state.warned_dims = true;
                        gst::warning!(
                            CAT,
                            imp = self,
                            "audio vector of {} values, the fusion model wants {}: ignored",
                            v.vector.len(),
                            state.audio_dim
                        );
                    }
                    continue;
                }
                let weight = self.speech_weight(state, rt, v.duration);
                match state
                    .aligner
                    .push_weighted(rt, v.duration, &v.vector, weight)
                {
                    Ok(_) => {}
                    Err(TimelineError::NotMonotonic { .. }) => {
                        gst::debug!(
                            CAT,
                            imp = self,
                            "audio went back in time: alignment restarts"
                        );
                        state.aligner.reset();
                        let _ = state
                            .aligner
                            .push_weighted(rt, v.duration, &v.vector, weight);
                    }
                    Err(e) => gst::warning!(CAT, imp = self, "audio vector ignored: {e}"),
                }
            }
        }
        Ok(())
    }

    /// Keeps the voice activity of an audio buffer (its `GstAffectSpeechMeta`: one
    /// probability per 10 ms frame from the buffer's start) on the running-time clock.
    fn take_speech(
        &self,
        state: &mut State,
        pad: &gst_base::AggregatorPad,
        seg: &gst::Segment,
        buf: &gst::Buffer,
    ) {
        let info = match speech_meta(buf) {
            Some(Ok(info)) => info,
            Some(Err(e)) => {
                gst::warning!(CAT, imp = self, "unreadable GstAffectSpeechMeta: {e}");
                return;
            }
            None => return,
        };
        let Some(start) = buf.pts().and_then(|pts| Self::running_time(seg, pts)) else {
            return;
        };
        // The buffer's end cuts its last (possibly shorter) frame.
        let length = buf.duration().map(|d| d.nseconds()).or_else(|| {
            let caps = pad.current_caps()?;
            let info = gst_audio::AudioInfo::from_caps(&caps).ok()?;
            let frames = buf.size() as u64 / u64::from(info.bpf().max(1));
            gst::ClockTime::SECOND
                .mul_div_floor(frames, u64::from(info.rate().max(1)))
                .map(|d| d.nseconds())
        });
        let probabilities: Vec<f32> = info.probabilities.iter().map(|&p| p as f32).collect();
        state.speech.push(
            start,
            SPEECH_FRAME_NS,
            length.map(|l| start.saturating_add(l)),
            &probabilities,
        );
        state.speech_seen = true;
    }

    /// The weight (future audio mask) of the audio vector computed on running time
    /// `[start, start + duration)`: 1 with `affect.fusion.audio-mask = present`; with
    /// `speech`, the mean speech probability of the 10 ms frames centred in that span
    /// (those known, when the span is only partly covered). A span without voice
    /// activity frames weighs 0 once voice activity has been seen (audio not known to be
    /// speech is kept out), and 1 when the audio branch never carried any (no
    /// `audiodenoise`: ungated, with one warning).
    fn speech_weight(&self, state: &mut State, start: u64, duration: u64) -> f32 {
        if state.audio_mask != AudioMaskKind::Speech {
            return 1.0;
        }
        if let Some(w) = state.speech.mean(start, start.saturating_add(duration)) {
            return w;
        }
        if state.speech_seen {
            return 0.0;
        }
        if !state.warned_no_vad {
            state.warned_no_vad = true;
            self.no_vad_warning.store(true, Ordering::SeqCst);
        }
        1.0
    }

    /// Takes one video frame into the track windows (its aligned audio, its faces and
    /// their feature vectors, the dump) and holds it until the fusion model's lookahead
    /// frames are in; returns the frames now ready (none, or one), metas added.
    pub(super) fn process_frame(
        &self,
        state: &mut State,
        settings: &Settings,
        buf: gst::Buffer,
        frame_time: Option<u64>,
    ) -> Result<Vec<(gst::Buffer, Output)>, gst::ErrorMessage> {
        let audio = frame_time.map(|t| state.aligner.align(t));
        if let Some(t) = frame_time {
            // Keep the vectors a later frame may still need.
            state
                .aligner
                .prune(t.saturating_sub(settings.lookahead.saturating_mul(2)));
        }
        // Faces: the frame's ROIs and per-face feature metas, by track id.
        let rois = face_rois(&buf);
        if !rois.is_empty() && state.video_features.is_none() {
            return Err(features::missing(true).to_error_message());
        }
        let mut faces: Vec<(u64, FaceBox, Option<Vec<f32>>)> = Vec::new();
        for r in &rois {
            if !faces.iter().any(|f| f.0 == r.track_id) {
                faces.push((r.track_id, r.bbox, None));
            }
        }
        for m in buf.iter_meta::<FeatureMeta>() {
            let v = m.data();
            let Some(id) = v.track_id else { continue };
            let src = if state.use_probabilities {
                &v.probabilities
            } else {
                &v.vector
            };
            let vector = if !v.valid {
                None
            } else if src.len() != state.visual_dim {
                return Err(gst::error_msg!(
                    gst::StreamError::WrongType,
                    (
                        "face {} from model {}: {} {} values, the fusion model wants {}",
                        id,
                        v.model,
                        src.len(),
                        if state.use_probabilities {
                            "probabilities"
                        } else {
                            "feature"
                        },
                        state.visual_dim
                    )
                ));
            } else {
                Some(src.clone())
            };
            match faces.iter_mut().find(|f| f.0 == id) {
                Some(f) => {
                    if f.2.is_none() {
                        f.2 = vector;
                    }
                }
                None => {
                    let bbox = buf
                        .iter_meta::<FaceCropMeta>()
                        .find(|c| c.data().track_id == id)
                        .map(|c| c.data().bbox)
                        .unwrap_or_default();
                    faces.push((id, bbox, vector));
                }
            }
        }
        let audio_vec = audio.as_ref().and_then(|a| a.as_input());
        let entries: Vec<(u64, Option<&[f32]>)> =
            faces.iter().map(|(id, _, v)| (*id, v.as_deref())).collect();
        // Who speaks, and so who gets the voice.
        let duration = buf
            .duration()
            .map(|d| d.nseconds())
            .or(state.frame_duration)
            .unwrap_or(40_000_000);
        let ids: Vec<u64> = faces.iter().map(|f| f.0).collect();
        let speaking = self.score_speakers(state, settings, &rois, &ids, frame_time, duration);
        let weight = Self::attribution_weight(settings, speaking.as_deref(), faces.len());
        let dropped = state
            .tracks
            .push_frame_attributed(&entries, audio_vec, weight)
            .map_err(|e| gst::error_msg!(gst::StreamError::Failed, ("{}", e)))?;
        if let Some(dump) = state.dump.as_mut() {
            let boxes: Vec<(u64, [f32; 4])> = faces
                .iter()
                .map(|(id, b, _)| (*id, [b.x, b.y, b.width, b.height]))
                .collect();
            dump.record(&state.tracks, &boxes, buf.pts().map(|t| t.nseconds()));
        }
        let ids = faces.iter().map(|(id, _, _)| *id).collect();
        let held = HeldFrame {
            buf,
            faces: faces.iter().map(|(id, b, _)| (*id, *b)).collect(),
            speaking,
        };
        for id in state.held.push(held, ids, dropped) {
            state.post.forget(id);
        }
        let mut ready = Vec::new();
        while let Some(r) = state.held.pop_ready(&state.tracks) {
            ready.push(r);
        }
        self.resolve_all(state, settings, ready)
    }

    /// Results of frames whose lookahead frames are in: the model on their windows, the
    /// metas on their buffers.
    pub(super) fn resolve_all(
        &self,
        state: &mut State,
        settings: &Settings,
        ready: Vec<Ready<HeldFrame>>,
    ) -> Result<Vec<(gst::Buffer, Output)>, gst::ErrorMessage> {
        ready
            .into_iter()
            .map(|r| self.resolve(state, settings, r))
            .collect()
    }

    fn resolve(
        &self,
        state: &mut State,
        settings: &Settings,
        r: Ready<HeldFrame>,
    ) -> Result<(gst::Buffer, Output), gst::ErrorMessage> {
        let Ready {
            frame:
                HeldFrame {
                    mut buf,
                    faces,
                    speaking,
                },
            windows,
            forget,
        } = r;
        let mut out = Vec::with_capacity(faces.len());
        if !windows.is_empty() {
            let arrays: Vec<_> = windows.iter().map(|(_, w)| w.clone()).collect();
            let batch = stack(&arrays).ok_or_else(|| {
                gst::error_msg!(gst::StreamError::Failed, ("cannot stack the face windows"))
            })?;
            let (va, expr) = self.run_model(state, batch)?;
            let last = state.window - 1;
            for (i, (id, _)) in windows.iter().enumerate() {
                let bbox = faces
                    .iter()
                    .find(|f| f.0 == *id)
                    .map(|f| f.1)
                    .unwrap_or_default();
                let va = [va[[i, last, 0]], va[[i, last, 1]]];
                let logits: Vec<f32> = (0..8).map(|k| expr[[i, last, k]]).collect();
                match state.post.face(*id, bbox, va, &logits, settings.smoothing) {
                    Ok(Some(face)) => out.push(face),
                    Ok(None) => {}
                    Err(NonFinite) => {
                        if !state.warned_nan {
                            state.warned_nan = true;
                            gst::warning!(
                                CAT,
                                imp = self,
                                "the fusion model gave non-finite values for track {id}: face skipped (warned once)"
                            );
                        }
                    }
                }
            }
        }
        for id in forget {
            state.post.forget(id);
        }
        let mut speaker_change = None;
        if let Some(speaking) = &speaking {
            for f in out.iter_mut() {
                if let Some((_, s)) = speaking.iter().find(|s| s.0 == f.track_id) {
                    f.speaking = Some(s.probability);
                    f.speaker = Some(s.speaking);
                }
            }
            let now: Vec<u64> = speaking
                .iter()
                .filter(|s| s.1.speaking)
                .map(|s| s.0)
                .collect();
            speaker_change = Self::speaker_change(state, now);
        }
        let buf_ref = buf.make_mut();
        // Metas: the ROI param on the face's ROI (added when missing), one custom meta.
        let (w, h) = self.frame_size();
        for f in &out {
            let mut done = false;
            for mut roi in buf_ref.iter_meta_mut::<gst_video::VideoRegionOfInterestMeta>() {
                let same = roi.roi_type() == crate::meta::FACE_ROI_TYPE
                    && roi
                        .param("face")
                        .and_then(|s| s.get::<u64>("track-id").ok())
                        == Some(f.track_id);
                if same && roi.param("affect").is_none() {
                    roi.add_param(face_affect_structure(f));
                    done = true;
                    break;
                }
            }
            if !done {
                add_face_roi(
                    buf_ref,
                    w.zip(h),
                    f.track_id,
                    &f.bbox,
                    &crate::meta::FaceParams::default(),
                    Some(f),
                );
            }
        }
        if let Err(e) = add_affect_meta(buf_ref, &out) {
            gst::warning!(CAT, imp = self, "cannot add GstAffectMeta: {e}");
        }
        Ok((
            buf,
            Output {
                faces: out,
                speaker_change,
            },
        ))
    }

    /// Frames per second of the video caps (0 if unknown or variable).
    pub(super) fn frame_rate(&self) -> f64 {
        let caps = self.video_pad().and_then(|p| p.current_caps());
        caps.as_ref()
            .and_then(|c| c.structure(0))
            .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
            .filter(|f| f.numer() > 0 && f.denom() > 0)
            .map_or(0.0, |f| f.numer() as f64 / f.denom() as f64)
    }

    pub(super) fn frame_size(&self) -> (Option<u32>, Option<u32>) {
        let caps = self.video_pad().and_then(|p| p.current_caps());
        let s = caps.as_ref().and_then(|c| c.structure(0));
        (
            s.and_then(|s| s.get::<i32>("width").ok()).map(|v| v as u32),
            s.and_then(|s| s.get::<i32>("height").ok())
                .map(|v| v as u32),
        )
    }

    pub(super) fn run_model(
        &self,
        state: &mut State,
        batch: affect::timeline::FusionBatch,
    ) -> Result<(Array3<f32>, Array3<f32>), gst::ErrorMessage> {
        let (v, a, vm, am) = (
            batch.visual.into_dyn(),
            batch.audio.into_dyn(),
            batch.visual_mask.into_dyn(),
            batch.audio_mask.into_dyn(),
        );
        let outputs = state.model.contract().outputs.clone();
        let mut res = state
            .model
            .run_f32(&[
                ("visual", v.view()),
                ("audio", a.view()),
                ("visual_mask", vm.view()),
                ("audio_mask", am.view()),
            ])
            .map_err(|e| e.to_error_message())?;
        let b = v.shape()[0];
        let t = state.window;
        let mut take = |name: &str, d: usize| -> Result<Array3<f32>, gst::ErrorMessage> {
            let arr = res.remove(name).ok_or_else(|| {
                gst::error_msg!(
                    gst::StreamError::Failed,
                    ("the fusion model has no output `{name}`")
                )
            })?;
            let shape = arr.shape().to_vec();
            arr.into_shape_with_order((b, t, d)).map_err(|_| {
                gst::error_msg!(
                    gst::StreamError::Failed,
                    ("fusion output `{name}` has shape {shape:?}, expected [{b}, {t}, {d}]")
                )
            })
        };
        let va_name = outputs.first().map(String::as_str).unwrap_or("va");
        let expr_name = outputs.get(1).map(String::as_str).unwrap_or("expr");
        Ok((take(va_name, 2)?, take(expr_name, 8)?))
    }

    /// Posts the message and writes the files for one frame (no lock held by the caller).
    pub(super) fn emit(&self, settings: &Settings, buf: &gst::BufferRef, out: Output) {
        let Output {
            faces,
            speaker_change,
        } = out;
        let faces = &faces[..];
        let pts = buf.pts();
        let seg = self.video_pad().map(|p| p.segment());
        let seg = seg
            .as_ref()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>());
        let running = pts.and_then(|t| seg.and_then(|s| s.to_running_time(t)));
        let stream = pts.and_then(|t| seg.and_then(|s| s.to_stream_time(t)));
        // Files (state lock only around the writes; nothing is pushed or posted under it).
        {
            let mut guard = self.state.locked();
            if let Some(state) = guard.as_mut() {
                let mut failed = None;
                if let Some(file) = state.ndjson.as_mut() {
                    let records: Vec<AffectRecord> = faces
                        .iter()
                        .map(|f| {
                            let mut r =
                                AffectRecord::new(pts.map_or(0, |t| t.nseconds()), f.clone());
                            r.duration = buf.duration().map(|d| d.nseconds());
                            r.running_time = running.map(|t| t.nseconds());
                            r.stream_time = stream.map(|t| t.nseconds());
                            r
                        })
                        .collect();
                    // One write per frame; a failed one leaves the file at a line end.
                    if let Err(e) = file.write_records(&records) {
                        failed = Some(format!("NDJSON: {e}"));
                    }
                }
                if failed.is_none()
                    && let Some(csv) = state.csv.as_mut()
                    && let Err(e) = csv.write_frame(state.frames_out, faces)
                {
                    failed = Some(e);
                }
                state.frames_out += 1;
                drop(guard);
                if let Some(e) = failed {
                    gst::element_imp_error!(self, gst::ResourceError::Write, ("{}", e));
                }
            }
        }
        if settings.post_messages {
            let msg = AffectMessage {
                timestamp: pts,
                running_time: running,
                stream_time: stream,
                duration: buf.duration(),
                faces: faces.to_vec(),
            };
            crate::common::post_element_message(&*self.obj(), msg.to_structure());
        }
        if let Some(change) = speaker_change {
            self.post_speaker_change(buf, running, stream, change);
        }
    }

    /// Pushes the frames `process_frame` or the EOS drain made ready, in order.
    pub(super) fn finish_frames(
        &self,
        settings: &Settings,
        out: Result<Vec<(gst::Buffer, Output)>, gst::ErrorMessage>,
        timeout: bool,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        if self.no_vad_warning.swap(false, Ordering::SeqCst) {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                ("the fusion model gates audio by voice activity (affect.fusion.audio-mask=speech) but the audio branch carries no voice-activity meta (GstAffectSpeechMeta): put audiodenoise before featextract on the audio branch; audio is used ungated")
            );
        }
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                self.post_error_message(e);
                return Err(gst::FlowError::Error);
            }
        };
        if out.is_empty() {
            // Held for the model's lookahead: the next frame releases it.
            return Err(gst_base::AGGREGATOR_FLOW_NEED_DATA);
        }
        let mut flow = Ok(gst::FlowSuccess::Ok);
        if self.no_mesh_warning.swap(false, Ordering::SeqCst) {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                ("audio-attribution=speaker needs face meshes to tell who speaks, but the faces carry none: set facecrop mesh=true (or audio-attribution=all to silence this); until then the voice reaches every face")
            );
        }
        for (buf, o) in out {
            let n_faces = o.faces.len();
            self.emit(settings, &buf, o);
            if let Some(pts) = buf.pts() {
                self.obj()
                    .set_position(pts + buf.duration().unwrap_or(gst::ClockTime::ZERO));
            }
            gst::trace!(
                CAT,
                imp = self,
                "frame {:?}: {} face(s){}",
                buf.pts(),
                n_faces,
                if timeout { " (timeout)" } else { "" }
            );
            flow = self.obj().finish_buffer(buf);
            if flow.is_err() {
                break;
            }
        }
        flow
    }
}
