// SPDX-License-Identifier: MPL-2.0
//! The `affect-features` event: what the feature vectors on a stream are.
//!
//! `featextract` sends it downstream (a custom sticky event, so it reaches every element
//! after it — through queues, tees and bins — before the stream's first buffer and again
//! after a renegotiation) once its caps and segment are known. Its structure
//! `affect-features` holds:
//! - `model` (string): the feature model's `affect.name`;
//! - `sha256` (string): sha256 of the model file, lower-case hex;
//! - `media` (string): `faces` (vectors per face crop, on video) or `audio` (vectors per
//!   audio window);
//! - `dimension` (guint): length of each feature vector;
//! - `classes` (guint): number of class probabilities per result (0: not a classifier).
//!
//! `avfuse` checks it against the feature models its fusion model was trained on and
//! refuses a stream that carries faces or audio without it (a pipeline without
//! `featextract` on that branch) instead of inventing results.
//!
//! A sticky event rather than caps fields: fields added to `video/x-raw` / `audio/x-raw`
//! caps would have to survive every element between `featextract` and `avfuse`
//! (converters and encoders rebuild or refuse caps they do not know), while custom sticky
//! events pass through all of them unchanged.

/// Name of the event's structure.
pub const FEATURES_EVENT_NAME: &str = "affect-features";

/// What the feature vectors of a stream come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeaturesDeclaration {
    /// The feature model's `affect.name`.
    pub model: String,
    /// sha256 of the model file, lower-case hex.
    pub sha256: String,
    /// `true`: vectors per face crop (video); `false`: per audio window.
    pub faces: bool,
    /// Length of each feature vector.
    pub dimension: u32,
    /// Class probabilities per result (0 when the model does not classify).
    pub classes: u32,
}

impl FeaturesDeclaration {
    /// The media name used in the event: `faces` or `audio`.
    pub fn media(&self) -> &'static str {
        if self.faces { "faces" } else { "audio" }
    }

    /// The custom sticky downstream event carrying this declaration.
    pub fn to_event(&self) -> gst::Event {
        let s = gst::Structure::builder(FEATURES_EVENT_NAME)
            .field("model", &self.model)
            .field("sha256", &self.sha256)
            .field("media", self.media())
            .field("dimension", self.dimension)
            .field("classes", self.classes)
            .build();
        gst::event::CustomDownstreamSticky::new(s)
    }

    /// Reads a declaration from an event; `None` for any other event, `Some(Err)` for an
    /// `affect-features` event with missing or ill-typed fields.
    pub fn from_event(event: &gst::EventRef) -> Option<Result<Self, String>> {
        if event.type_() != gst::EventType::CustomDownstreamSticky {
            return None;
        }
        let s = event.structure()?;
        if s.name() != FEATURES_EVENT_NAME {
            return None;
        }
        Some(Self::from_structure(s))
    }

    fn from_structure(s: &gst::StructureRef) -> Result<Self, String> {
        let field = |name: &str| format!("{FEATURES_EVENT_NAME} event: bad or missing `{name}`");
        let media = s.get::<&str>("media").map_err(|_| field("media"))?;
        let faces = match media {
            "faces" => true,
            "audio" => false,
            other => {
                return Err(format!(
                    "{FEATURES_EVENT_NAME} event: unknown media `{other}`"
                ));
            }
        };
        Ok(FeaturesDeclaration {
            model: s.get::<String>("model").map_err(|_| field("model"))?,
            sha256: s.get::<String>("sha256").map_err(|_| field("sha256"))?,
            faces,
            dimension: s.get::<u32>("dimension").map_err(|_| field("dimension"))?,
            classes: s.get::<u32>("classes").map_err(|_| field("classes"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_other_events() {
        gst::init().unwrap();
        let d = FeaturesDeclaration {
            model: "fer-mini-xception".into(),
            sha256: "ab".repeat(32),
            faces: true,
            dimension: 7,
            classes: 7,
        };
        let ev = d.to_event();
        assert!(ev.is_sticky());
        assert_eq!(FeaturesDeclaration::from_event(&ev), Some(Ok(d)));
        assert_eq!(
            FeaturesDeclaration::from_event(&gst::event::Eos::new()),
            None
        );
        let other = gst::event::CustomDownstreamSticky::new(gst::Structure::new_empty("x"));
        assert_eq!(FeaturesDeclaration::from_event(&other), None);
        let bad = gst::event::CustomDownstreamSticky::new(
            gst::Structure::builder(FEATURES_EVENT_NAME)
                .field("media", "smell")
                .build(),
        );
        let err = FeaturesDeclaration::from_event(&bad).unwrap().unwrap_err();
        assert!(err.contains("smell"), "{err}");
    }
}
