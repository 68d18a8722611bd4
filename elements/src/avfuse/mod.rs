// SPDX-License-Identifier: MPL-2.0
//! `avfuse`: fuses per-face visual features and audio features into valence, arousal and
//! 8 expression probabilities per face per video frame.
//!
//! The element's documentation is on [`AvFuse`].

use gst::glib;
use gst::prelude::*;

mod imp;

pub use imp::{AudioAttribution, FusionMode};

glib::wrapper! {
/**
 * SECTION:element-avfuse
 *
 * A [`gst_base::Aggregator`] with an always pad `video_sink` (raw video with the face
 * ROIs of `facecrop` and the [`FeatureMeta`](crate::meta::FeatureMeta)s of `featextract`),
 * a request pad `audio_sink` (raw audio with the audio `FeatureMeta`s of a second
 * `featextract`) and a video `src` pad with the caps of `video_sink`. Video frames pass
 * through unchanged (only metas are added); audio is consumed.
 *
 * Per video frame:
 *
 * 1. The audio feature vectors seen so far are aligned onto the frame's running time
 *    ([`affect::timeline::AudioAligner`]): `mode=lookahead` (default) interpolates
 *    linearly between the vectors around the frame (the ABAW method; vector time = the
 *    centre of its window) and waits up to `lookahead` ns of audio past the frame;
 *    `mode=causal` takes the latest vector whose window has *ended* at the frame time and
 *    never waits. No vector within `lookahead` of the frame → audio mask 0. A fusion
 *    model that declares `affect.fusion.audio-mask = speech` gets audio gated by voice
 *    activity: each vector weighs the mean speech probability of the `audiodenoise`
 *    10 ms frames (`GstAffectSpeechMeta`) in its span, and the audio mask is that weight,
 *    interpolated like the vectors (so music, tones and noise get a mask near 0). Without
 *    `audiodenoise` before `featextract` on the audio branch, avfuse posts one warning
 *    and leaves audio ungated (mask 1); once voice activity has been seen, a vector
 *    whose span holds none weighs 0.
 * 2. **Who speaks** (`audio-attribution=speaker`, the default). Per face track, the
 *    mouth opening (inner-lip gap over the eye span) from the face mesh that `facecrop
 *    mesh=true` puts on the `face` ROI, and per frame the audio's voice activity (the
 *    `audiodenoise` meta; every sound counts without it) times its loudness (10 ms RMS of
 *    the samples on `audio_sink`). A face's `speaking` probability is the correlation of
 *    its mouth with that voice envelope over the last 2 s, at the best lag within
 *    ±150 ms, times the voice activity ([`affect::speaker`]); the `speaker` flag follows
 *    it with hysteresis (on at 0.5 for 200 ms, off under 0.3 for 400 ms). The voice — the
 *    audio vector and its mask — then goes to the face(s) flagged speaking; the others
 *    get audio mask 0. A lone face keeps the voice unless it is clearly not speaking
 *    (2 s of speech with its mouth out of sync: an off-screen narrator).
 *    `audio-attribution=all` gives the voice to every face, `none` to none. Without face
 *    meshes (or the audio branch) nothing is scored and the voice reaches every face
 *    (with one warning asking for `facecrop mesh=true`). A `speaker-change` element
 *    message ([`SpeakerChangeMessage`](crate::meta::SpeakerChangeMessage): `track-id`,
 *    `speakers`, `previous`, times) marks each change of who speaks.
 * 3. Each face (the union of the frame's `face` ROIs and its per-face `FeatureMeta`s,
 *    by track id) gets a frame in its track's sliding window of `T` frames
 *    ([`affect::timeline::TrackWindows`]; a track absent for more than 15 frames is
 *    dropped). The visual vector is the `FeatureMeta`'s `probabilities` when the fusion
 *    model says `affect.fusion.visual-input = probabilities`, else its `vector`; a face
 *    with no or an invalid `FeatureMeta` gets visual mask 0 (the model decides what that
 *    means: the baseline says Neutral, valence 0, arousal from the voice alone).
 * 4. The fusion model runs once per frame on all faces (`[B, T, ·]`); the newest step's
 *    `va` and `softmax(expr)` are the face's result, optionally smoothed per track
 *    (`smoothing`).
 * 5. Results: param `affect` on the face's `face` ROI (one is added when missing), one
 *    `GstAffectMeta` custom meta per frame listing all faces (also for frames without
 *    faces), an element message `affect` ([`AffectMessage`](crate::meta::AffectMessage);
 *    `post-messages`), NDJSON lines (`location`, one
 *    [`AffectRecord`](affect::results::AffectRecord) per face per frame, each written
 *    with one `write` and flushed) and Aff-Wild2 CSV files (`csv-location`). With
 *    active-speaker scoring each face also carries `speaking` (probability) and `speaker`
 *    (the flag) in all of these; the CSV gets a `PREFIX_trackN.speaker.csv` beside the
 *    Aff-Wild2 files (`speaking,speaker`; `-1,-1` where absent).
 *
 * **No NaN is ever emitted**: inputs are cleaned by the timeline (NaN vectors are
 * masked); a face whose model output is not finite is *skipped* for that frame (no ROI
 * param, no meta entry, no line) and a warning is posted once.
 *
 * **Timing.** The reported latency (LATENCY query) is `lookahead` in `mode=lookahead`
 * and 0 in `mode=causal`. Live: a frame is output at the latest when its running time
 * plus the latency has passed on the clock, with audio mask 0 where audio did not
 * arrive in time — a missing or stalled audio branch never stalls video. (A live audio
 * source that cannot tell its latency yet when the video starts, because it has not
 * negotiated, is asked again, after 0.1 s and then at doubling intervals up to 1.6 s
 * of the pipeline clock, until it can; frames wait for that answer.) Non-live: a frame waits until the audio
 * features around it are known, the audio pad is EOS, or there is no audio pad (or it
 * is unlinked at the time the frame is processed).
 * Flushing seeks reset every track and the audio alignment.
 *
 * **Model check.** Each `featextract` announces what its vectors are with the sticky
 * `affect-features` event (model name, sha256, media, dimension) before its first
 * buffer. When it reaches a sink pad, avfuse compares it with the feature model the
 * fusion model declares for that side (`affect.fusion.visual-model` / `-sha256`, audio
 * likewise): a different sha256, or face features on the audio pad (or the other way
 * round), is a negotiation error naming both models — wherever the `featextract` sits
 * (inside a bin, behind a `tee`). Faces or audio buffers that arrive without the event
 * (no `featextract` upstream) are an error that says where to put one.
 *
 * **CSV** (`csv-location=PREFIX`): per track id `N`, `PREFIX_trackN.va.csv` (header
 * `valence,arousal`) and `PREFIX_trackN.expr.csv` (header: the 8 class names, then one
 * class index per line), one line per output video frame from the first frame of the
 * stream; frames where the track is absent (or skipped) hold `-5,-5` and `-1`, the
 * Aff-Wild2 invalid markers.
 *
 * **Feature dump** (`dump-location=dump/track%u.safetensors`, `%u` = track id): per
 * track, the row the fusion model read for each video frame since the segment start
 * (the newest frame of the track's window: visual vector, aligned audio vector, both
 * masks, pts, face box; zeros and masks 0 where the track had no window), written
 * atomically at EOS or stop in the feature format of `affect::dataset::features` — what
 * `affect-train extract` trains on, so training and inference see the same numbers.
 *
 * The default model `fusion-baseline` is a documented **baseline, not a learned model**:
 * a circumplex mapping of the face model's expression probabilities plus a vocal-arousal
 * term from the `voice-prosody` features (pitch against a speaker reference, speaking
 * rate, vocal effort, loudness changes), counted only while `audiodenoise`'s voice
 * activity detector hears speech (see `affect::fusion::vocal`).
 *
 * ```bash
 * gst-launch-1.0 filesrc location=talk.mp4 ! decodebin name=d \
 *   d. ! queue ! videoconvert ! facecrop mesh=true ! featextract ! queue ! avfuse name=f location=affect.ndjson ! fakesink \
 *   d. ! queue ! audioconvert ! audioresample ! audiodenoise ! featextract ! queue ! f.audio_sink
 * gst-launch-1.0 videotestsrc num-buffers=10 ! video/x-raw,width=640,height=360 ! facecrop ! featextract ! avfuse ! fakesink
 * ```
 */
    pub struct AvFuse(ObjectSubclass<imp::AvFuse>) @extends gst_base::Aggregator, gst::Element, gst::Object;
}

/// Registers `avfuse` with the plugin.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    #[cfg(feature = "doc")]
    FusionMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    #[cfg(feature = "doc")]
    AudioAttribution::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "avfuse",
        gst::Rank::NONE,
        AvFuse::static_type(),
    )
}
