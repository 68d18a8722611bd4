// SPDX-License-Identifier: MPL-2.0
//! Live pipelines whose upstream latency is unknown when the video starts.
//!
//! GstAggregator learns the upstream latency by asking every sink pad's peer, and while
//! any of them cannot answer it treats the stream as not live: it waits for data on every
//! pad. It asks again only when a pad receives something. A live source answers once it
//! has negotiated, so an audio source that negotiates after the video has started and
//! whose data is then held back upstream (a closed valve, a stalled network source) would
//! leave the video waiting for audio that never comes. So while the video branch is live
//! and the aggregator's latency is still unknown, avfuse asks again on a timer until
//! upstream answers. The timer runs on the element's clock — the clock the live deadlines
//! it enables are measured on (the pipeline clock; a test clock in the tests) — and on
//! the system clock when the element has none.

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;

use super::{AvFuse, CAT};
use crate::common::LockExt;

/// How long to wait before asking upstream for its latency again; doubled after each
/// unanswered try (each one logs a failed query) up to [`RETRY_MAX`].
const RETRY: gst::ClockTime = gst::ClockTime::from_mseconds(100);
/// The longest wait between two tries.
const RETRY_MAX: gst::ClockTime = gst::ClockTime::from_mseconds(1600);

impl AvFuse {
    /// Whether the video branch answers the latency query as live (`None`: no answer).
    pub(super) fn video_is_live(&self) -> Option<bool> {
        let video = self.video_pad()?;
        let mut q = gst::query::Latency::new();
        video.peer_query(&mut q).then(|| q.result().0)
    }

    /// Arms the retry when the video branch is live (`video_live`: its answer to the
    /// latency query, [`AvFuse::video_is_live`]) and the latency is still unknown.
    pub(super) fn schedule_latency_retry(&self, video_live: Option<bool>) {
        if self.obj().latency().is_some() || video_live != Some(true) {
            // Known, or not live (or not answering either): the aggregator rightly
            // waits for data.
            return;
        }
        self.arm_latency_retry(RETRY);
    }

    fn arm_latency_retry(&self, wait: gst::ClockTime) {
        let clock = self.obj().clock().unwrap_or_else(gst::SystemClock::obtain);
        self.latency_retry
            .arm(self, &clock, wait, Self::retry_latency);
    }

    /// The timer: a latency query on our own src pad makes the aggregator ask upstream
    /// again; when that succeeds it wakes its thread (which then applies live deadlines)
    /// and a latency message has the pipeline distribute the latency it could not
    /// compute at start either. Otherwise try again, later each time.
    fn retry_latency(&self, waited: gst::ClockTime) {
        self.latency_retry.take();
        if !self.is_running() {
            return;
        }
        let mut q = gst::query::Latency::new();
        if self.obj().src_pad().query(&mut q) {
            let (live, min, _) = q.result();
            if live {
                gst::info!(
                    CAT,
                    imp = self,
                    "upstream latency known now (min {min}): live deadlines apply"
                );
                let _ = self
                    .obj()
                    .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
            }
        } else {
            let wait = (waited * 2).min(RETRY_MAX);
            gst::debug!(
                CAT,
                imp = self,
                "upstream latency still unknown, asking again in {wait}"
            );
            self.arm_latency_retry(wait);
        }
    }

    /// The latency avfuse adds (LATENCY query, live deadlines): the audio lookahead of
    /// `mode=lookahead`, plus K frame durations for a fusion model that reads K future
    /// frames (`affect.fusion.lookahead-frames`; 1/30 s per frame until the caps say).
    pub(super) fn update_latency(&self) {
        let (audio, batch) = {
            let s = self.settings.locked();
            (s.latency(), s.model.batch_latency())
        };
        let (k, duration) = self
            .state
            .locked()
            .as_ref()
            .map_or((0, None), |s| (s.held.lookahead() as u64, s.frame_duration));
        if k > 0 && duration.is_none() {
            gst::debug!(
                CAT,
                imp = self,
                "frame rate not known (yet): {k} lookahead frames counted as 1/30 s each"
            );
        }
        let frames = k * duration.unwrap_or(33_333_334);
        let latency = audio + batch + gst::ClockTime::from_nseconds(frames);
        self.obj().set_latency(latency, Some(latency));
    }
}
