// SPDX-License-Identifier: MPL-2.0
//! Non-live pipelines whose audio branch never delivers.
//!
//! When not live, GstAggregator waits for data on every sink pad, so a linked audio
//! branch that never sends a buffer (a file without an audio stream behind `decodebin`,
//! whose audio branch is never linked; an idle `appsrc`; a closed `valve`) would hold the
//! video forever. When the audio pad has received nothing — no buffer, no gap — while a
//! video frame waits for it for `audio-timeout`, avfuse warns and treats the audio as
//! absent: it ends the audio pad (EOS), every frame gets audio mask 0 and the video
//! flows. Live pipelines have deadlines instead (see the `latency` module).
//!
//! The watchdog runs on the system clock: a non-live pipeline flows (prerolls) in PAUSED,
//! before it has a pipeline clock, and an audio clock does not advance while paused.

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;

use super::{AvFuse, CAT};
use crate::common::LockExt;

impl AvFuse {
    /// Arms the watchdog at the video's segment when the video branch is not live, an
    /// audio pad is linked and has received nothing yet, and `audio-timeout` is not 0.
    /// `video_live`: the video branch's answer to the latency query.
    pub(super) fn schedule_audio_wait(&self, video_live: Option<bool>) {
        let timeout = self.settings.locked().audio_timeout;
        if timeout == 0 || video_live == Some(true) || self.audio_has_delivered() {
            return;
        }
        if self.audio_pad().is_some_and(|a| a.peer().is_some()) {
            self.audio_wait.arm(
                self,
                &gst::SystemClock::obtain(),
                gst::ClockTime::from_nseconds(timeout),
                Self::audio_wait_expired,
            );
        }
    }

    /// Whether the audio pad has received a buffer or a gap since start, holds one, has
    /// ended, or is absent (then nothing waits for it).
    fn audio_has_delivered(&self) -> bool {
        let started = self
            .state
            .locked()
            .as_ref()
            .is_some_and(|s| s.audio_started);
        started
            || self
                .audio_pad()
                .is_none_or(|a| a.peer().is_none() || a.has_buffer() || a.is_eos())
    }

    fn audio_wait_expired(&self, waited: gst::ClockTime) {
        self.audio_wait.take();
        if !self.is_running() || self.audio_has_delivered() {
            return;
        }
        let Some(video) = self.video_pad() else {
            return;
        };
        if !video.has_buffer() && !video.is_eos() {
            // The video is not waiting (yet): look again later.
            self.audio_wait.arm(
                self,
                &gst::SystemClock::obtain(),
                waited,
                Self::audio_wait_expired,
            );
            return;
        }
        let Some(audio) = self.audio_pad() else {
            return;
        };
        gst::element_imp_warning!(
            self,
            gst::StreamError::Failed,
            (
                "audio_sink received nothing in {} while the video waited for it: audio treated as absent (audio mask 0)",
                waited
            ),
            [
                "a file without an audio stream, or an audio branch that is blocked or never linked; set audio-timeout=0 to wait for it forever"
            ]
        );
        if !audio.send_event(gst::event::Eos::new()) {
            gst::warning!(CAT, imp = self, "could not end the silent audio_sink");
        }
    }
}
