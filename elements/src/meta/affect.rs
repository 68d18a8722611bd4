// SPDX-License-Identifier: MPL-2.0
//! Affect results as GStreamer structures: the `GstAffectMeta` custom meta, the ROI
//! `affect` param and the `affect` bus message share one per-face layout.
//!
//! Per-face structure `affect`:
//! `track-id` (guint64), `x`, `y`, `width`, `height` (gdouble, frame pixels),
//! `valence`, `arousal` (gdouble in [-1, 1]), `expression` (string, one of the 8
//! Aff-Wild2 classes), `expression-index` (gint), `probabilities` (GstValueArray of 8
//! gdouble in [`affect::EXPRESSIONS`] order); with active-speaker detection (`avfuse
//! audio-attribution=speaker` and face meshes), also `speaking` (gdouble in [0, 1]: the
//! probability that this face is the one speaking) and `speaker` (gboolean: the decision,
//! with hysteresis). Both are absent when not computed.

use affect::EXPRESSIONS;
use affect::results::{FaceAffect, FaceBox};

/// Name under which the custom meta is registered.
pub const AFFECT_META_NAME: &str = "GstAffectMeta";
/// Name of the per-face structures (ROI param, list entries of meta and message).
pub const AFFECT_STRUCTURE_NAME: &str = "affect";

/// Registers the `GstAffectMeta` custom meta (idempotent; the plugin does it at load).
pub fn register_affect_meta() {
    if !gst::meta::CustomMeta::is_registered(AFFECT_META_NAME) {
        gst::meta::CustomMeta::register(AFFECT_META_NAME, &[]);
    }
}

/// The per-face `affect` structure.
pub fn face_affect_structure(a: &FaceAffect) -> gst::Structure {
    gst::Structure::builder(AFFECT_STRUCTURE_NAME)
        .field("track-id", a.track_id)
        .field("x", a.bbox.x as f64)
        .field("y", a.bbox.y as f64)
        .field("width", a.bbox.width as f64)
        .field("height", a.bbox.height as f64)
        .field("valence", a.valence as f64)
        .field("arousal", a.arousal as f64)
        .field("expression", a.expression())
        .field("expression-index", a.top_index() as i32)
        .field(
            "probabilities",
            gst::Array::new(a.probabilities.iter().map(|p| *p as f64)),
        )
        .field_if_some("speaking", a.speaking.map(f64::from))
        .field_if_some("speaker", a.speaker)
        .build()
}

/// Parses a per-face `affect` structure (validated: finite values, V/A clamped).
pub fn face_affect_from_structure(s: &gst::StructureRef) -> Result<FaceAffect, String> {
    expect_name(s, AFFECT_STRUCTURE_NAME)?;
    let f = |k: &str| {
        s.get::<f64>(k)
            .map(|v| v as f32)
            .map_err(|e| format!("{k}: {e}"))
    };
    let probs = s
        .get::<gst::Array>("probabilities")
        .map_err(|e| format!("probabilities: {e}"))?;
    let probs: Vec<f32> = probs
        .iter()
        .map(|v| v.get::<f64>().map(|p| p as f32))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("probabilities: {e}"))?;
    let probabilities: [f32; 8] = probs.try_into().map_err(|p: Vec<f32>| {
        format!(
            "probabilities: {} values, expected {}",
            p.len(),
            EXPRESSIONS.len()
        )
    })?;
    FaceAffect {
        track_id: s
            .get::<u64>("track-id")
            .map_err(|e| format!("track-id: {e}"))?,
        bbox: FaceBox {
            x: f("x")?,
            y: f("y")?,
            width: f("width")?,
            height: f("height")?,
        },
        valence: f("valence")?,
        arousal: f("arousal")?,
        probabilities,
        speaking: s.get::<f64>("speaking").ok().map(|v| v as f32),
        speaker: s.get::<bool>("speaker").ok(),
    }
    .validated()
    .map_err(|e| e.to_string())
}

/// `Err` naming both when the structure is not called `name`.
fn expect_name(s: &gst::StructureRef, name: &str) -> Result<(), String> {
    if s.name() == name {
        Ok(())
    } else {
        Err(format!("structure is `{}`, expected `{name}`", s.name()))
    }
}

fn faces_list(faces: &[FaceAffect]) -> gst::List {
    gst::List::new(faces.iter().map(face_affect_structure))
}

fn faces_from_list(s: &gst::StructureRef) -> Result<Vec<FaceAffect>, String> {
    let list = s
        .get::<gst::List>("faces")
        .map_err(|e| format!("faces: {e}"))?;
    list.iter()
        .map(|v| {
            let st = v
                .get::<gst::Structure>()
                .map_err(|e| format!("faces: {e}"))?;
            face_affect_from_structure(&st)
        })
        .collect()
}

/// Adds the `GstAffectMeta` custom meta: a structure `affect` with `faces` (a GstValueList
/// of per-face `affect` structures) and `n-faces` (guint).
pub fn add_affect_meta(
    buffer: &mut gst::BufferRef,
    faces: &[FaceAffect],
) -> Result<(), gst::glib::BoolError> {
    let mut meta = gst::meta::CustomMeta::add(buffer, AFFECT_META_NAME)?;
    let s = meta.mut_structure();
    s.set("n-faces", faces.len() as u32);
    s.set("faces", faces_list(faces));
    Ok(())
}

/// Reads the faces of a buffer's `GstAffectMeta`, if it has one.
pub fn affect_meta_faces(buffer: &gst::BufferRef) -> Option<Result<Vec<FaceAffect>, String>> {
    let meta = gst::meta::CustomMeta::from_buffer(buffer, AFFECT_META_NAME).ok()?;
    Some(faces_from_list(meta.structure()))
}

/// The `affect` element message, one per output frame.
///
/// Structure `affect`: `timestamp`, `running-time`, `stream-time`, `duration`
/// (guint64 ns, absent when unknown) and `faces` (list of per-face `affect` structures).
#[derive(Debug, Clone, PartialEq)]
pub struct AffectMessage {
    /// Buffer pts of the frame.
    pub timestamp: Option<gst::ClockTime>,
    /// Running time of the frame.
    pub running_time: Option<gst::ClockTime>,
    /// Stream time of the frame.
    pub stream_time: Option<gst::ClockTime>,
    /// Duration of the frame.
    pub duration: Option<gst::ClockTime>,
    /// Every face's affect.
    pub faces: Vec<FaceAffect>,
}

impl AffectMessage {
    /// The message's structure name.
    pub const NAME: &'static str = "affect";

    /// The structure posted on the bus.
    pub fn to_structure(&self) -> gst::Structure {
        let mut b = gst::Structure::builder(Self::NAME);
        for (k, v) in [
            ("timestamp", self.timestamp),
            ("running-time", self.running_time),
            ("stream-time", self.stream_time),
            ("duration", self.duration),
        ] {
            if let Some(v) = v {
                b = b.field(k, v.nseconds());
            }
        }
        b.field("faces", faces_list(&self.faces)).build()
    }
}

impl From<&AffectMessage> for gst::Structure {
    fn from(m: &AffectMessage) -> Self {
        m.to_structure()
    }
}

impl TryFrom<&gst::StructureRef> for AffectMessage {
    type Error = String;

    fn try_from(s: &gst::StructureRef) -> Result<Self, String> {
        expect_name(s, Self::NAME)?;
        let t = |k: &str| s.get::<u64>(k).ok().map(gst::ClockTime::from_nseconds);
        Ok(AffectMessage {
            timestamp: t("timestamp"),
            running_time: t("running-time"),
            stream_time: t("stream-time"),
            duration: t("duration"),
            faces: faces_from_list(s)?,
        })
    }
}

/// The `speaker-change` element message of `avfuse` (`audio-attribution=speaker`): the
/// set of faces judged speaking changed at this frame — for broadcast loggers.
///
/// Structure `speaker-change`: `track-id` (guint64, the track that became a speaker;
/// absent when the change is only someone stopping), `speakers` and `previous`
/// (GstValueArray of guint64: the tracks flagged speaking from this frame on, and
/// before), `timestamp`, `running-time`, `stream-time` (guint64 ns of the frame, absent
/// when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerChangeMessage {
    /// The track that started speaking, if one did.
    pub track_id: Option<u64>,
    /// Tracks speaking from this frame on.
    pub speakers: Vec<u64>,
    /// Tracks speaking before.
    pub previous: Vec<u64>,
    /// Buffer pts of the frame.
    pub timestamp: Option<gst::ClockTime>,
    /// Running time of the frame.
    pub running_time: Option<gst::ClockTime>,
    /// Stream time of the frame.
    pub stream_time: Option<gst::ClockTime>,
}

impl SpeakerChangeMessage {
    /// The message's structure name.
    pub const NAME: &'static str = "speaker-change";

    /// The structure posted on the bus.
    pub fn to_structure(&self) -> gst::Structure {
        let ids = |v: &[u64]| gst::Array::new(v.iter().copied());
        gst::Structure::builder(Self::NAME)
            .field_if_some("track-id", self.track_id)
            .field("speakers", ids(&self.speakers))
            .field("previous", ids(&self.previous))
            .field_if_some("timestamp", self.timestamp.map(|t| t.nseconds()))
            .field_if_some("running-time", self.running_time.map(|t| t.nseconds()))
            .field_if_some("stream-time", self.stream_time.map(|t| t.nseconds()))
            .build()
    }
}

impl TryFrom<&gst::StructureRef> for SpeakerChangeMessage {
    type Error = String;

    fn try_from(s: &gst::StructureRef) -> Result<Self, String> {
        expect_name(s, Self::NAME)?;
        let ids = |k: &str| -> Result<Vec<u64>, String> {
            s.get::<gst::Array>(k)
                .map_err(|e| format!("{k}: {e}"))?
                .iter()
                .map(|v| v.get::<u64>().map_err(|e| format!("{k}: {e}")))
                .collect()
        };
        let t = |k: &str| s.get::<u64>(k).ok().map(gst::ClockTime::from_nseconds);
        Ok(SpeakerChangeMessage {
            track_id: s.get::<u64>("track-id").ok(),
            speakers: ids("speakers")?,
            previous: ids("previous")?,
            timestamp: t("timestamp"),
            running_time: t("running-time"),
            stream_time: t("stream-time"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{add_face_roi, face_rois};

    fn face(id: u64, v: f32) -> FaceAffect {
        FaceAffect {
            track_id: id,
            bbox: FaceBox {
                x: 10.4,
                y: 20.0,
                width: 50.0,
                height: 60.0,
            },
            valence: v,
            arousal: 0.25,
            probabilities: [0.05, 0.05, 0.05, 0.05, 0.6, 0.1, 0.05, 0.05],
            ..Default::default()
        }
    }

    #[test]
    fn message_round_trip() {
        gst::init().unwrap();
        let m = AffectMessage {
            timestamp: Some(gst::ClockTime::from_mseconds(40)),
            running_time: Some(gst::ClockTime::from_mseconds(40)),
            stream_time: None,
            duration: Some(gst::ClockTime::from_mseconds(40)),
            faces: vec![
                face(1, 0.5),
                FaceAffect {
                    speaking: Some(0.625),
                    speaker: Some(true),
                    ..face(2, -0.75)
                },
            ],
        };
        let s = gst::Structure::from(&m);
        assert_eq!(s.get::<u64>("timestamp").unwrap(), 40_000_000);
        let faces = s.get::<gst::List>("faces").unwrap();
        let second = faces.get(1).unwrap().get::<gst::Structure>().unwrap();
        assert_eq!(second.get::<f64>("speaking").unwrap(), 0.625);
        assert!(second.get::<bool>("speaker").unwrap());
        let first = faces.first().unwrap().get::<gst::Structure>().unwrap();
        assert!(!first.has_field("speaking") && !first.has_field("speaker"));
        assert!(!s.has_field("stream-time"));
        assert_eq!(AffectMessage::try_from(s.as_ref()).unwrap(), m);
        let wrong = gst::Structure::new_empty("facecrop");
        assert!(AffectMessage::try_from(wrong.as_ref()).is_err());
    }

    #[test]
    fn speaker_change_round_trip() {
        gst::init().unwrap();
        let m = SpeakerChangeMessage {
            track_id: Some(3),
            speakers: vec![3],
            previous: vec![1],
            timestamp: Some(gst::ClockTime::from_mseconds(80)),
            running_time: Some(gst::ClockTime::from_mseconds(80)),
            stream_time: None,
        };
        let s = m.to_structure();
        assert_eq!(s.get::<u64>("track-id").unwrap(), 3);
        assert_eq!(SpeakerChangeMessage::try_from(s.as_ref()).unwrap(), m);
        let nobody = SpeakerChangeMessage {
            track_id: None,
            speakers: vec![],
            ..m
        };
        let s = nobody.to_structure();
        assert!(!s.has_field("track-id"));
        assert_eq!(SpeakerChangeMessage::try_from(s.as_ref()).unwrap(), nobody);
    }

    #[test]
    fn bad_structures_are_refused() {
        gst::init().unwrap();
        let mut s = face_affect_structure(&face(1, 0.5));
        s.set("valence", f64::NAN);
        assert!(
            face_affect_from_structure(&s)
                .unwrap_err()
                .contains("valence")
        );
        let mut s = face_affect_structure(&face(1, 0.5));
        s.set("probabilities", gst::Array::new([0.5f64, 0.5]));
        assert!(
            face_affect_from_structure(&s)
                .unwrap_err()
                .contains("2 values")
        );
    }

    #[test]
    fn buffer_metas_round_trip() {
        gst::init().unwrap();
        register_affect_meta();
        let mut buf = gst::Buffer::with_size(4).unwrap();
        let faces = [face(7, 0.5), face(9, -0.5)];
        {
            let b = buf.get_mut().unwrap();
            for f in &faces {
                add_face_roi(
                    b,
                    Some((64, 64)),
                    f.track_id,
                    &f.bbox,
                    &crate::meta::FaceParams {
                        score: Some(0.9),
                        landmarks: &[[1.0, 2.0], [3.0, 4.0]],
                        ..Default::default()
                    },
                    Some(f),
                );
            }
            add_affect_meta(b, &faces).unwrap();
        }
        let rois = face_rois(&buf);
        assert_eq!(rois.len(), 2);
        assert_eq!((rois[0].id, rois[1].id), (0, 1));
        assert_eq!(rois[1].track_id, 9);
        // Clipped to the 64x64 frame and rounded.
        assert_eq!(
            (rois[0].bbox.x, rois[0].bbox.width, rois[0].bbox.height),
            (10.0, 50.0, 44.0)
        );
        assert_eq!(rois[0].landmarks, vec![[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(rois[0].score, Some(0.9));
        assert_eq!(rois[1].affect.as_ref().unwrap().valence, -0.5);
        assert_eq!(affect_meta_faces(&buf).unwrap().unwrap(), faces.to_vec());
        let copy = buf.copy();
        assert_eq!(affect_meta_faces(&copy).unwrap().unwrap().len(), 2);
    }
}
