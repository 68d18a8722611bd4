// SPDX-License-Identifier: MPL-2.0
//! The per-stream state `avfuse` builds when it starts: the fusion model, the audio
//! aligner, the track windows, the writers.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::*;

impl AvFuse {
    /// Loads the fusion model and builds the per-stream state (`start`).
    pub(super) fn build_state(&self, settings: &Settings) -> Result<State, gst::ErrorMessage> {
        let model = settings.model.load(Role::Fusion)?;
        let c = model.contract();
        let InputSpec::Fusion(spec) = c.input.clone() else {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("model {} is not a fusion model", c.name)
            ));
        };
        let use_probabilities = c.prop("affect.fusion.visual-input") == Some("probabilities");
        let fusion_name = c.name.clone();
        let mut align = AlignConfig::new(spec.audio_dim);
        align.max_gap_ns = settings.lookahead;
        (align.mode, align.anchor) = match settings.mode {
            FusionMode::Lookahead => (AlignMode::Interpolate, Anchor::Centre),
            FusionMode::Causal => (AlignMode::NearestPast, Anchor::End),
        };
        let speech_retain = align.retain_ns;
        let aligner = AudioAligner::new(align)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{}", e)))?;
        let tracks = TrackWindows::new(WindowConfig {
            frames: spec.window,
            visual_dim: spec.visual_dim,
            audio_dim: spec.audio_dim,
            drop_after: DROP_AFTER_FRAMES,
        })
        .map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::Settings,
                ("model {}: {}", fusion_name, e)
            )
        })?;
        let ndjson = if settings.location.is_empty() {
            None
        } else {
            Some(
                ResultFile::create(&settings.location)
                    .map_err(|e| gst::error_msg!(gst::ResourceError::OpenWrite, ("{}", e)))?,
            )
        };
        let csv = (!settings.csv_location.is_empty()).then(|| {
            AffWild2Csv::new(&settings.csv_location)
                .with_speaker(settings.attribution == affect::speaker::Attribution::Speaker)
        });
        let dump = if settings.dump_location.is_empty() {
            None
        } else {
            let r = |m: &Option<FeatureModelRef>| {
                m.as_ref()
                    .map(|m| (m.name.clone(), m.sha256.clone()))
                    .unwrap_or_default()
            };
            let (visual_model, visual_sha256) = r(&spec.visual_model);
            let (audio_model, audio_sha256) = r(&spec.audio_model);
            let meta = FeatureMetadata {
                visual_model,
                visual_sha256,
                audio_model,
                audio_sha256,
                visual_input: if use_probabilities {
                    "probabilities"
                } else {
                    "features"
                }
                .into(),
                audio_mask: spec.audio_mask.as_str().into(),
                fps: 0.0,
                source: format!("avfuse {}", self.obj().name()),
                track: String::new(),
            };
            Some(
                TrackDump::new(
                    &settings.dump_location,
                    meta,
                    spec.visual_dim,
                    spec.audio_dim,
                )
                .map_err(|e| {
                    gst::error_msg!(gst::ResourceError::Settings, ("dump-location {}", e))
                })?,
            )
        };
        gst::info!(
            CAT,
            imp = self,
            "fusion model {} ({}), window {}, lookahead {} frame(s), visual {} ({}), audio {} (mask {}), {}",
            fusion_name,
            model.path().display(),
            spec.window,
            spec.lookahead,
            spec.visual_dim,
            if use_probabilities {
                "probabilities"
            } else {
                "features"
            },
            spec.audio_dim,
            spec.audio_mask.as_str(),
            model.provider_note()
        );
        Ok(State {
            model,
            window: spec.window,
            visual_dim: spec.visual_dim,
            audio_dim: spec.audio_dim,
            use_probabilities,
            visual_ref: spec.visual_model,
            audio_ref: spec.audio_model,
            aligner,
            audio_mask: spec.audio_mask,
            speech: SpeechTimeline::new(speech_retain),
            speech_seen: false,
            warned_no_vad: false,
            tracks,
            post: PostProcessor::new(),
            ndjson,
            csv,
            frames_out: 0,
            video_features: None,
            audio_features: None,
            audio_started: false,
            warned_nan: false,
            warned_dims: false,
            dump,
            held: Lookahead::new(spec.lookahead),
            frame_duration: None,
            speaker: super::speaker::SpeakerState::new(
                speech_retain,
                settings.attribution == affect::speaker::Attribution::Speaker,
            ),
        })
    }
}
