// SPDX-License-Identifier: MPL-2.0
//! The public metadata contract of gst-affect (ARCHITECTURE.md, "The contract").
//!
//! - Faces are `GstVideoRegionOfInterestMeta`s of type `face` with a `face` param
//!   structure (score, landmarks, track-id) and, once affect is known, an `affect`
//!   param structure ([`roi`]). Any GStreamer app or element understands ROI metas.
//! - Rust consumers get typed, `Arc`-shared metas: [`FaceCropMeta`], [`FeatureMeta`].
//! - C and Python apps read the registered `GstCustomMeta` named [`AFFECT_META_NAME`]
//!   whose structure lists every face's affect ([`affect`]).
//! - Applications get an `affect` element message per frame ([`AffectMessage`]) and,
//!   with active-speaker detection, a `speaker-change` message ([`SpeakerChangeMessage`]).
//! - `featextract` declares what its vectors are in an `affect-features` sticky event
//!   ([`features`]).
//! - `audiodenoise` attaches `GstAffectSpeechMeta` and posts `speech-start` / `speech-end`
//!   ([`speech`]).

pub mod affect;
mod arc;
pub mod features;
pub mod roi;
pub mod speech;

pub use affect::{
    AFFECT_META_NAME, AFFECT_STRUCTURE_NAME, AffectMessage, SpeakerChangeMessage, add_affect_meta,
    affect_meta_faces, face_affect_from_structure, face_affect_structure, register_affect_meta,
};
pub use arc::{FaceCropMeta, FeatureMeta};
pub use features::{FEATURES_EVENT_NAME, FeaturesDeclaration};
pub use roi::{FACE_ROI_TYPE, FaceParams, FaceRoi, add_face_roi, face_rois};
pub use speech::{
    SPEECH_META_NAME, SPEECH_STRUCTURE_NAME, SpeechInfo, SpeechMessage, add_speech_meta,
    register_speech_meta, speech_meta,
};
