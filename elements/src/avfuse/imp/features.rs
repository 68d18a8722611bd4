// SPDX-License-Identifier: MPL-2.0
//! The feature-model check: what `featextract` declares (the `affect-features` event)
//! against the feature models the fusion model was trained on.

use affect::runtime::FeatureModelRef;

use crate::common::ElementError;
use crate::meta::FeaturesDeclaration;

/// Why the features reaching a sink pad cannot be fused: a wrongly built pipeline, told
/// at negotiation (the event) or at the first buffer without it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum FeatureCheckError {
    /// The face features reach the audio pad or the other way round.
    #[error(
        "{pad} receives {got} features (model {model}): link the featextract of the {branch} branch to it"
    )]
    WrongBranch {
        pad: &'static str,
        got: &'static str,
        model: String,
        branch: &'static str,
    },
    /// The upstream feature model is not the one the fusion model was made for.
    #[error(
        "fusion model {fusion} was made for the {side} feature model {want}, but the upstream featextract runs {got}: use the matching feature model or a fusion model trained on this one"
    )]
    Mismatch {
        fusion: String,
        side: &'static str,
        /// `name (sha256 …)` of the model the fusion model declares.
        want: String,
        /// `name (sha256 …)` of the model upstream runs.
        got: String,
    },
    /// Faces without face features.
    #[error(
        "video_sink receives faces without face features: put featextract between facecrop and avfuse (… facecrop ! featextract ! queue ! avfuse)"
    )]
    MissingFaceFeatures,
    /// Audio without audio features.
    #[error(
        "audio_sink receives audio without audio features: put featextract before avfuse's audio_sink (… audiodenoise ! featextract ! queue ! f.audio_sink)"
    )]
    MissingAudioFeatures,
    /// An `affect-features` event that cannot be read.
    #[error("{0}")]
    BadEvent(String),
}

impl ElementError for FeatureCheckError {
    fn to_error_message(&self) -> gst::ErrorMessage {
        gst::error_msg!(gst::CoreError::Negotiation, ("{}", self))
    }
}

/// Checks the declaration arriving on a sink pad. `faces`: the pad takes face features
/// (video_sink) rather than audio ones; `want`: the feature model the fusion model
/// declares for that side (`None`: not declared, not checked). The error names both
/// models.
pub(super) fn check(
    fusion: &str,
    faces: bool,
    want: Option<&FeatureModelRef>,
    got: &FeaturesDeclaration,
) -> Result<(), FeatureCheckError> {
    let (pad, side) = if faces {
        ("video_sink", "visual")
    } else {
        ("audio_sink", "audio")
    };
    if got.faces != faces {
        return Err(FeatureCheckError::WrongBranch {
            pad,
            got: if got.faces { "face" } else { "audio" },
            model: got.model.clone(),
            branch: if faces { "video" } else { "audio" },
        });
    }
    let Some(want) = want else {
        return Ok(());
    };
    if want.sha256.trim().eq_ignore_ascii_case(&got.sha256) {
        return Ok(());
    }
    Err(FeatureCheckError::Mismatch {
        fusion: fusion.to_owned(),
        side,
        want: format!("{} (sha256 {})", want.name, want.sha256),
        got: format!("{} (sha256 {})", got.model, got.sha256),
    })
}

/// The error for a stream that carries faces or audio without feature vectors.
pub(super) fn missing(faces: bool) -> FeatureCheckError {
    if faces {
        FeatureCheckError::MissingFaceFeatures
    } else {
        FeatureCheckError::MissingAudioFeatures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(faces: bool, sha: &str) -> FeaturesDeclaration {
        FeaturesDeclaration {
            model: "m".into(),
            sha256: sha.into(),
            faces,
            dimension: 7,
            classes: 0,
        }
    }

    #[test]
    fn matches_mismatches_and_wrong_branches() {
        let want = FeatureModelRef {
            name: "fer".into(),
            sha256: "AB".repeat(32),
        };
        assert_eq!(
            check("f", true, Some(&want), &decl(true, &"ab".repeat(32))),
            Ok(())
        );
        assert_eq!(check("f", true, None, &decl(true, "00")), Ok(()));
        let e = check("fusion-x", true, Some(&want), &decl(true, "00"))
            .unwrap_err()
            .to_string();
        for part in ["fusion-x", "fer", &"AB".repeat(32), "m (sha256 00)"] {
            assert!(e.contains(part), "{part}: {e}");
        }
        let e = check("f", false, None, &decl(true, "00"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("audio_sink receives face features"), "{e}");
        assert!(missing(true).to_string().contains("facecrop ! featextract"));
        let m = missing(false).to_error_message();
        assert!(
            m.to_string()
                .contains("audio_sink receives audio without audio features")
        );
    }
}
