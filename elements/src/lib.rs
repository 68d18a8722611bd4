// SPDX-License-Identifier: MPL-2.0
//! # gst-plugin-affect
//!
//! GStreamer elements that read people's affect (valence, arousal, 8 expressions) from
//! live audio-visual media. See the project README for the pipeline and ARCHITECTURE.md for
//! the metadata contract implemented in [`meta`].
#![allow(clippy::non_send_fields_in_send_ty)]

use gst::glib;

pub mod affectoverlay;
pub mod affectreplay;
pub mod audiodenoise;
pub mod avfuse;
pub mod common;
pub mod facecrop;
pub mod featextract;
pub mod meta;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register_affect_meta();
    affectreplay::register(plugin)?;
    affectoverlay::register(plugin)?;
    facecrop::register(plugin)?;
    featextract::register(plugin)?;
    audiodenoise::register(plugin)?;
    avfuse::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    affect,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
