// SPDX-License-Identifier: MPL-2.0
//! Who speaks, end to end: `facecrop mesh=true ! featextract ! avfuse` with the audio
//! branch `audiodenoise ! featextract`, all defaults (`audio-attribution=speaker`), on the
//! talking-head clips of scripts/make-talking-heads.sh (`make setup` makes them): two
//! real faces side by side whose lower faces are warped by the loudness of two
//! different espeak-ng utterances, 20 s at 25 fps, with one utterance (or silence) as
//! the audio; a still face under speech (a narrator); one talking face alone; a
//! minute-long interview in which the two faces take turns.
//!
//! "Speech frames" are the frames where the audio's utterance is loud: its opening
//! a(t) > 0.15 in `faces.json` (a(t) is the utterance's RMS over the frame, over its
//! 95th percentile, to the power 0.8).

mod common;

use std::path::{Path, PathBuf};

use affect::results::AffectRecord;
use gst::prelude::*;
use gst_video::prelude::*;
use gstaffect::meta::SpeakerChangeMessage;

const FRAME_NS: u64 = 40_000_000;

fn talking(name: &str) -> PathBuf {
    common::media(&format!("talking/{name}"))
}

/// What the clips were made with (scripts/talking_heads.py writes it).
fn faces_json() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(talking("faces.json")).unwrap()).unwrap()
}

/// A JSON array of numbers.
fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// The per-frame mouth openings the clips were made with (`left` or `right` face).
fn openings(side: &str) -> Vec<f32> {
    floats(&faces_json()[side]["opening"])
}

/// What one run gave: the NDJSON records, the `speaker-change` messages, the warnings.
struct Run {
    records: Vec<AffectRecord>,
    changes: Vec<SpeakerChangeMessage>,
    warnings: Vec<String>,
}

/// Plays the full AV pipeline on a clip (`audio: false`: video only, no audio branch),
/// `crop` / `fuse` = extra facecrop / avfuse properties; `video_probe` may edit each decoded video frame
/// (I420) in place, given its pts.
fn run(
    clip: &Path,
    audio: bool,
    crop: &str,
    fuse: &str,
    video_probe: Option<fn(u64, &mut gst::BufferRef, &gst_video::VideoInfo)>,
) -> Result<Run, String> {
    common::init();
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = common::scratch(&format!(
        "speaker-{}-{}",
        clip.file_stem().unwrap().to_string_lossy(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let out = dir.join("affect.ndjson");
    let audio_branch = if audio {
        "d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
         ! audiodenoise vad=silero ! featextract ! queue ! f.audio_sink"
    } else {
        ""
    };
    let desc = format!(
        "filesrc location={} ! decodebin name=d \
         d. ! queue ! videoconvert ! video/x-raw,format=I420 ! identity name=edit \
         ! facecrop mesh=true {crop} ! queue ! featextract ! queue \
         ! avfuse name=f location={} {fuse} ! fakesink {audio_branch}",
        clip.display(),
        out.display()
    );
    let pipe = gst::parse::launch(&desc).map_err(|e| format!("parse: {e}"))?;
    if let Some(edit) = video_probe {
        let bin = pipe.downcast_ref::<gst::Bin>().unwrap();
        let pad = bin.by_name("edit").unwrap().static_pad("src").unwrap();
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let info_caps = pad
                .current_caps()
                .and_then(|c| gst_video::VideoInfo::from_caps(&c).ok());
            if let (Some(vi), Some(gst::PadProbeData::Buffer(buf))) = (info_caps, &mut info.data) {
                let pts = buf.pts().map_or(0, |t| t.nseconds());
                edit(pts, buf.make_mut(), &vi);
            }
            gst::PadProbeReturn::Ok
        });
    }
    let (result, changes, warnings) = play(&pipe);
    let changes = changes
        .iter()
        .map(|s| SpeakerChangeMessage::try_from(s.as_ref()).unwrap())
        .collect();
    result?;
    let records = common::ndjson_records(&out);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Run {
        records,
        changes,
        warnings,
    })
}

/// Plays a pipeline to EOS (at most 300 s), then stops it: the outcome, the
/// `speaker-change` messages and the warnings.
fn play(pipe: &gst::Element) -> (Result<(), String>, Vec<gst::Structure>, Vec<String>) {
    let bus = pipe.bus().unwrap();
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    let mut result = Err("timed out".to_string());
    if pipe.set_state(gst::State::Playing).is_err() {
        result = Err("state change failed".to_string());
    } else {
        for msg in bus.iter_timed(gst::ClockTime::from_seconds(300)) {
            match msg.view() {
                gst::MessageView::Eos(_) => {
                    result = Ok(());
                    break;
                }
                gst::MessageView::Error(e) => {
                    result = Err(format!("{} ({})", e.error(), e.debug().unwrap_or_default()));
                    break;
                }
                gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure()
                        && s.name() == SpeakerChangeMessage::NAME
                    {
                        changes.push(s.to_owned());
                    }
                }
                _ => {}
            }
        }
    }
    pipe.set_state(gst::State::Null).unwrap();
    (result, changes, warnings)
}

fn frame_of(r: &AffectRecord) -> usize {
    (r.pts / FRAME_NS) as usize
}

/// The track whose box centre is on the `left` (x < 320) or right half, in frame `k`.
fn track_at(records: &[AffectRecord], k: usize, left: bool) -> Option<&AffectRecord> {
    records
        .iter()
        .find(|r| frame_of(r) == k && ((r.face.bbox.x + r.face.bbox.width / 2.0) < 320.0) == left)
}

/// Share of the `frames` where the face on that side is flagged speaker.
fn speaker_share(run: &Run, left: bool, frames: &[usize]) -> f64 {
    let on = frames
        .iter()
        .filter(|&&k| track_at(&run.records, k, left).is_some_and(|r| r.face.speaker == Some(true)))
        .count();
    on as f64 / frames.len().max(1) as f64
}

fn speech_frames(side: &str) -> Vec<usize> {
    openings(side)
        .iter()
        .enumerate()
        .filter(|(_, a)| **a > 0.15)
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn the_face_whose_mouth_follows_the_voice_is_the_speaker_and_swapping_swaps_it() {
    let frames = openings("left").len();
    for (clip, speaks_left, side) in [
        ("two_faces_left.mkv", true, "left"),
        ("two_faces_right.mkv", false, "right"),
    ] {
        let r = run(&talking(clip), true, "", "", None).unwrap();
        assert!(
            r.warnings.iter().all(|w| !w.contains("mesh")),
            "{clip}: {:?}",
            r.warnings
        );
        let speech = speech_frames(side);
        assert!(
            speech.len() > frames / 2,
            "{clip}: {} speech frames",
            speech.len()
        );
        let (speaker, other) = (
            speaker_share(&r, speaks_left, &speech),
            speaker_share(&r, !speaks_left, &speech),
        );
        eprintln!(
            "{clip}: the talking face is speaker on {speaker:.3}, the other on {other:.3} of {} speech frames",
            speech.len()
        );
        assert!(
            speaker >= 0.90,
            "{clip}: speaker on {speaker:.3} of speech frames"
        );
        assert!(other <= 0.05, "{clip}: the other face on {other:.3}");
        // Every frame has both faces, each with a probability in [0, 1].
        for k in 0..frames {
            for left in [true, false] {
                let f = track_at(&r.records, k, left)
                    .unwrap_or_else(|| panic!("{clip}: frame {k} lacks a face"));
                let p = f.face.speaking.expect("speaking is set");
                assert!((0.0..=1.0).contains(&p));
            }
        }
        // The logger's view: the speaking track starts speaking, the other never does.
        let speaker_id = track_at(&r.records, frames - 1, speaks_left)
            .unwrap()
            .face
            .track_id;
        let other_id = track_at(&r.records, frames - 1, !speaks_left)
            .unwrap()
            .face
            .track_id;
        assert!(
            r.changes.iter().any(|c| c.track_id == Some(speaker_id)),
            "{clip}"
        );
        assert!(
            r.changes.iter().all(|c| !c.speakers.contains(&other_id)),
            "{clip}: {:?}",
            r.changes
        );
        assert!(r.changes.iter().all(|c| c.running_time.is_some()));
    }
}

#[test]
fn a_mesh_every_second_frame_is_enough() {
    // `mesh-interval=2` halves the mesh's cost; the mouth is then compared with the voice
    // on the frames it was measured on (`mesh-age` 0), over 4 s instead of 2.
    let r = run(
        &talking("two_faces_left.mkv"),
        true,
        "mesh-interval=2",
        "",
        None,
    )
    .unwrap();
    let speech = speech_frames("left");
    let (speaker, other) = (
        speaker_share(&r, true, &speech),
        speaker_share(&r, false, &speech),
    );
    eprintln!("mesh-interval=2: speaker on {speaker:.3}, the other face on {other:.3}");
    assert!(speaker >= 0.90 && other <= 0.05, "{speaker:.3} {other:.3}");
}

#[test]
fn silence_makes_no_speaker_and_a_still_face_under_speech_is_not_the_speaker() {
    let silent = run(&talking("two_faces_silent.mkv"), true, "", "", None).unwrap();
    assert!(!silent.records.is_empty());
    assert!(
        silent.records.iter().all(|r| r.face.speaker == Some(false)),
        "a face was speaker in silence"
    );
    assert!(silent.changes.is_empty());

    let narrator = run(&talking("narrator.mkv"), true, "", "", None).unwrap();
    let n = narrator.records.len();
    let off = narrator
        .records
        .iter()
        .filter(|r| r.face.speaker == Some(false))
        .count();
    eprintln!("narrator: speaker false on {off} of {n} frames");
    assert!(n >= openings("left").len() - 1);
    assert!(
        off as f64 >= 0.9 * n as f64,
        "narrator: speaker false on {off} of {n}"
    );

    // One talking face alone: the speaker.
    let one = run(&talking("one_face.mkv"), true, "", "", None).unwrap();
    let speech = speech_frames("left");
    let on = speech
        .iter()
        .filter(|&&k| {
            one.records
                .iter()
                .any(|r| frame_of(r) == k && r.face.speaker == Some(true))
        })
        .count();
    assert!(
        on as f64 >= 0.9 * speech.len() as f64,
        "one face: speaker on {on} of {} speech frames",
        speech.len()
    );
}

/// Valence and arousal of the face on one side, per frame.
fn va(run: &Run, left: bool) -> Vec<(usize, f32, f32)> {
    let frames = run.records.iter().map(frame_of).max().unwrap_or(0) + 1;
    (0..frames)
        .filter_map(|k| {
            track_at(&run.records, k, left).map(|r| (k, r.face.valence, r.face.arousal))
        })
        .collect()
}

fn max_diff(a: &[(usize, f32, f32)], b: &[(usize, f32, f32)]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            assert_eq!(x.0, y.0);
            (x.1 - y.1).abs().max((x.2 - y.2).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn the_voice_reaches_only_the_speaking_face() {
    let clip = talking("two_faces_left.mkv");
    let speaker = run(&clip, true, "", "", None).unwrap();
    let none = run(&clip, true, "", "audio-attribution=none", None).unwrap();
    let all = run(&clip, true, "", "audio-attribution=all", None).unwrap();
    // The right face never speaks: its VA is the one without audio, exactly.
    let d_other = max_diff(&va(&speaker, false), &va(&none, false));
    // The left face speaks: its voice moves its arousal.
    let d_speaker = max_diff(&va(&speaker, true), &va(&none, true));
    // With `all` the voice reaches the silent face too (what this element used to do).
    let d_all = max_diff(&va(&all, false), &va(&none, false));
    eprintln!(
        "max |ΔVA| vs none: non-speaking face {d_other:e}, speaking face {d_speaker:.3}, non-speaking face with all {d_all:.3}"
    );
    assert!(d_other <= 1e-6, "non-speaking face: {d_other}");
    assert!(d_speaker >= 0.05, "speaking face: {d_speaker}");
    assert!(d_all >= 0.05, "all: {d_all}");
    // Nothing is scored without attribution=speaker.
    assert!(none.records.iter().all(|r| r.face.speaking.is_none()));
}

/// Paints the left half of an I420 frame mid-grey from 6 s to 9 s: the talking face
/// leaves mid-utterance and comes back.
fn hide_left_6_to_9(pts: u64, buf: &mut gst::BufferRef, info: &gst_video::VideoInfo) {
    if !(6_000_000_000..9_000_000_000).contains(&pts) {
        return;
    }
    let Ok(mut frame) = gst_video::VideoFrameRef::from_buffer_ref_writable(buf, info) else {
        return;
    };
    for plane in 0..3u32 {
        let (w, h) = if plane == 0 {
            (info.width() as usize, info.height() as usize)
        } else {
            (info.width() as usize / 2, info.height() as usize / 2)
        };
        let stride = frame.plane_stride()[plane as usize] as usize;
        let data = frame.plane_data_mut(plane).unwrap();
        for y in 0..h {
            data[y * stride..y * stride + w / 2].fill(128);
        }
    }
}

#[test]
fn a_speaker_leaving_and_coming_back_mid_utterance() {
    let r = run(
        &talking("two_faces_left.mkv"),
        true,
        "",
        "",
        Some(hide_left_6_to_9),
    )
    .unwrap();
    let speech = speech_frames("left");
    let frames = openings("left").len();
    // Every frame comes out with the right face.
    for k in 0..frames {
        assert!(track_at(&r.records, k, false).is_some(), "frame {k}");
    }
    // While the talking face is gone the voice goes to nobody: the still face on the
    // right does not inherit it.
    let gone: Vec<usize> = speech
        .iter()
        .copied()
        .filter(|&k| (150..225).contains(&k))
        .collect();
    assert!(!gone.is_empty());
    assert!(
        gone.iter()
            .all(|&k| track_at(&r.records, k, true).is_none())
    );
    let other = speaker_share(&r, false, &gone);
    assert!(other <= 0.05, "the other face took the voice on {other:.3}");
    // Back (a new track): the speaker again within a second.
    let back: Vec<usize> = speech.iter().copied().filter(|&k| k >= 250).collect();
    let share = speaker_share(&r, true, &back);
    eprintln!(
        "after coming back: speaker on {share:.3} of {} speech frames",
        back.len()
    );
    assert!(share >= 0.9, "after coming back: {share:.3}");
    assert!(speaker_share(&r, false, &back) <= 0.05);
}

#[test]
fn no_audio_branch_no_speaker_and_no_stall() {
    let r = run(&talking("two_faces_left.mkv"), false, "", "", None).unwrap();
    assert_eq!(
        r.records.iter().map(frame_of).max().unwrap() + 1,
        openings("left").len()
    );
    assert!(
        r.records
            .iter()
            .all(|f| f.face.speaking.is_none() && f.face.speaker.is_none())
    );
    assert!(r.changes.is_empty());
}

#[test]
fn faces_too_small_for_the_mesh_are_skipped_with_a_warning_not_an_error() {
    // The composite at 1/5 size: faces of ~30 px, under the mesh's 32 px minimum.
    common::init();
    let dir = common::scratch("speaker-small");
    let out = dir.join("a.ndjson");
    let desc = format!(
        "filesrc location={} ! decodebin name=d \
         d. ! queue ! videoconvert ! videoscale ! video/x-raw,width=128,height=72 \
         ! facecrop mesh=true ! queue ! featextract ! queue ! avfuse name=f location={} ! fakesink name=out \
         d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
         ! audiodenoise vad=silero ! featextract ! queue ! f.audio_sink",
        talking("two_faces_left.mkv").display(),
        out.display()
    );
    let (frames, _) = common::run_pipeline(&desc, None).expect("small faces are no error");
    assert_eq!(frames.len(), openings("left").len());
    let rois: Vec<_> = frames.iter().flat_map(|f| f.rois.iter()).collect();
    assert!(
        rois.iter().all(|r| r.mesh.is_empty()),
        "a face under 32 px got a mesh"
    );
    // No mesh ever: nobody is scored (the voice reaches every face, as without meshes).
    let records = common::ndjson_records(&out);
    assert!(records.iter().all(|r| r.face.speaking.is_none()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn speaker_attribution_without_meshes_warns_once_and_names_the_fix() {
    common::init();
    let clip = talking("one_face.mkv");
    let dir = common::scratch("speaker-nomesh");
    let desc = format!(
        "filesrc location={} ! decodebin name=d \
         d. ! queue ! videoconvert ! facecrop ! queue ! featextract ! queue ! avfuse name=f ! fakesink \
         d. ! queue ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=1 \
         ! audiodenoise vad=silero ! featextract ! queue ! f.audio_sink",
        clip.display()
    );
    let pipe = gst::parse::launch(&desc).unwrap();
    let (result, _, warnings) = play(&pipe);
    result.unwrap();
    let mesh: Vec<_> = warnings
        .iter()
        .filter(|w| w.contains("mesh=true"))
        .collect();
    assert_eq!(mesh.len(), 1, "{warnings:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_mesh_model_is_an_error_naming_it() {
    let err = common::run_pipeline(
        "videotestsrc num-buffers=3 ! video/x-raw,width=320,height=240 \
         ! facecrop mesh=true mesh-model=/nonexistent/my-mesh.onnx ! fakesink name=out",
        None,
    )
    .expect_err("a missing mesh model must fail");
    assert!(err.contains("my-mesh"), "{err}");
}

/// One turn of the interview: first frame, end frame, whether the left face speaks.
type Turn = (usize, usize, bool);

/// The interview clip's turns and each face's per-frame mouth opening (left, right),
/// from `faces.json`.
fn interview() -> (Vec<Turn>, Vec<f32>, Vec<f32>) {
    let info = faces_json();
    let iv = &info["interview"];
    let turns = iv["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t[0].as_u64().unwrap() as usize,
                t[1].as_u64().unwrap() as usize,
                t[2].as_str().unwrap() == "left",
            )
        })
        .collect();
    (turns, floats(&iv["left"]), floats(&iv["right"]))
}

#[test]
fn in_an_interview_the_flag_follows_the_turns() {
    // About a minute: A on the left, B on the right, A on the left again, the listener's
    // mouth closed. Within each turn, from 1 s after it begins (the voice and the new
    // speaker's mouth need that long in the 2 s correlation window to outweigh the
    // previous turn), the talker is the speaker on >= 90 % of its speech frames and the
    // listener on <= 5 %; the `speaker-change` messages hand the voice over within 1.5 s
    // of the new talker's first loud frame (measured: 0.72, 1.24 and 1.32 s), and the
    // listener is not named again until the turn ends.
    let (turns, open_left, open_right) = interview();
    let r = run(&talking("interview.mkv"), true, "", "", None).unwrap();
    let frames = open_left.len();
    for k in 0..frames {
        for left in [true, false] {
            assert!(track_at(&r.records, k, left).is_some(), "frame {k}");
        }
    }
    let id = |left: bool| {
        track_at(&r.records, frames - 1, left)
            .unwrap()
            .face
            .track_id
    };
    let (left_id, right_id) = (id(true), id(false));
    for (i, &(start, end, left)) in turns.iter().enumerate() {
        let open = if left { &open_left } else { &open_right };
        let speech: Vec<usize> = (start + 25..end).filter(|&k| open[k] > 0.15).collect();
        assert!(
            speech.len() > 200,
            "turn {i}: {} speech frames",
            speech.len()
        );
        let (talker, listener) = (
            speaker_share(&r, left, &speech),
            speaker_share(&r, !left, &speech),
        );
        eprintln!(
            "interview turn {i} ({}): talker speaker on {talker:.3}, listener on {listener:.3} of {} speech frames",
            if left { "left" } else { "right" },
            speech.len()
        );
        assert!(talker >= 0.90, "turn {i}: talker on {talker:.3}");
        assert!(listener <= 0.05, "turn {i}: listener on {listener:.3}");
        // The hand-over: the first message in this turn that names the talker as
        // speaking, and the listener not among the speakers after it.
        let (me, other) = if left {
            (left_id, right_id)
        } else {
            (right_id, left_id)
        };
        let first_loud = (start..end).find(|&k| open[k] > 0.15).unwrap();
        let t0 = first_loud as u64 * FRAME_NS;
        let took = r
            .changes
            .iter()
            .find(|c| {
                c.timestamp.unwrap().nseconds() >= start as u64 * FRAME_NS
                    && c.speakers.contains(&me)
            })
            .unwrap_or_else(|| panic!("turn {i}: no change to {me}: {:?}", r.changes));
        let delay = took.timestamp.unwrap().nseconds().saturating_sub(t0) as f64 / 1e9;
        eprintln!(
            "interview turn {i}: the talker is flagged {delay:.2} s after its first loud frame"
        );
        assert!(delay <= 1.5, "turn {i}: hand-over after {delay:.2} s");
        assert!(
            r.changes
                .iter()
                .filter(|c| {
                    let t = c.timestamp.unwrap().nseconds();
                    t >= took.timestamp.unwrap().nseconds() && t < end as u64 * FRAME_NS
                })
                .all(|c| !c.speakers.contains(&other)),
            "turn {i}: the listener took the voice: {:?}",
            r.changes
        );
    }
}
