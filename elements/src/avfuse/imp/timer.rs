// SPDX-License-Identifier: MPL-2.0
//! A one-shot wake-up on a clock: at most one pending, cancelled at stop.

use std::sync::Mutex;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::AvFuse;
use crate::common::LockExt;

/// A slot for one pending [`gst::SingleShotClockId`].
#[derive(Default)]
pub(super) struct Timer(Mutex<Option<gst::SingleShotClockId>>);

impl Timer {
    /// Calls `f(imp, wait)` on the clock's thread once `wait` has passed on `clock`, unless
    /// a wake-up is pending already. `f` should [`Timer::take`] its own slot first, so it
    /// can re-arm.
    pub(super) fn arm(
        &self,
        imp: &AvFuse,
        clock: &gst::Clock,
        wait: gst::ClockTime,
        f: fn(&AvFuse, gst::ClockTime),
    ) {
        let id = clock.new_single_shot_id(clock.time() + wait);
        {
            // The lock is never held across clock calls: the clock may run the callback,
            // which takes it, under its own lock.
            let mut slot = self.0.locked();
            if slot.is_some() {
                return;
            }
            *slot = Some(id.clone());
        }
        let weak = imp.obj().downgrade();
        let scheduled = id.wait_async(move |_, _, _| {
            if let Some(obj) = weak.upgrade() {
                f(obj.imp(), wait);
            }
        });
        if scheduled.is_err() {
            self.take();
        }
    }

    /// Takes the pending wake-up out of its slot (the slot's lock is released on return).
    pub(super) fn take(&self) -> Option<gst::SingleShotClockId> {
        self.0.locked().take()
    }

    /// Cancels the pending wake-up, if any.
    pub(super) fn cancel(&self) {
        if let Some(id) = self.take() {
            id.unschedule();
        }
    }
}
