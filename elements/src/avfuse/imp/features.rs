// SPDX-License-Identifier: MPL-2.0
//! The feature-model check: what `featextract` declares (the `affect-features` event)
//! against the feature models the fusion model was trained on.

use affect::runtime::FeatureModelRef;

use crate::meta::FeaturesDeclaration;

/// Checks the declaration arriving on a sink pad. `faces`: the pad takes face features
/// (video_sink) rather than audio ones; `want`: the feature model the fusion model
/// declares for that side (`None`: not declared, not checked). The error names both
/// models.
pub(super) fn check(
    fusion: &str,
    faces: bool,
    want: Option<&FeatureModelRef>,
    got: &FeaturesDeclaration,
) -> Result<(), String> {
    let (pad, side) = if faces {
        ("video_sink", "visual")
    } else {
        ("audio_sink", "audio")
    };
    if got.faces != faces {
        return Err(format!(
            "{pad} receives {} features (model {}): link the featextract of the {} branch to it",
            if got.faces { "face" } else { "audio" },
            got.model,
            if faces { "video" } else { "audio" }
        ));
    }
    let Some(want) = want else {
        return Ok(());
    };
    if want.sha256.trim().eq_ignore_ascii_case(&got.sha256) {
        return Ok(());
    }
    Err(format!(
        "fusion model {fusion} was made for the {side} feature model {} (sha256 {}), but the upstream featextract runs {} (sha256 {}): use the matching feature model or a fusion model trained on this one",
        want.name, want.sha256, got.model, got.sha256
    ))
}

/// The error for a stream that carries faces or audio without feature vectors.
pub(super) fn missing(faces: bool) -> String {
    if faces {
        "video_sink receives faces without face features: put featextract between facecrop and avfuse (… facecrop ! featextract ! queue ! avfuse)".into()
    } else {
        "audio_sink receives audio without audio features: put featextract before avfuse's audio_sink (… audiodenoise ! featextract ! queue ! f.audio_sink)".into()
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
        let e = check("fusion-x", true, Some(&want), &decl(true, "00")).unwrap_err();
        for part in ["fusion-x", "fer", &"AB".repeat(32), "m (sha256 00)"] {
            assert!(e.contains(part), "{part}: {e}");
        }
        let e = check("f", false, None, &decl(true, "00")).unwrap_err();
        assert!(e.starts_with("audio_sink receives face features"), "{e}");
        assert!(missing(true).contains("facecrop ! featextract"));
    }
}
