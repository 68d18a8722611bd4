//! Shared set-up for the element tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Once;

/// Initialises GStreamer and registers the plugin statically (no GST_PLUGIN_PATH needed).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstaffect::plugin_register_static().expect("plugin registers");
    });
}

/// A fresh scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gst-affect-{}-{}", name, std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The folder holding `libgstaffect.so` (target/<profile>), found from the test binary's path.
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target/<profile>
    exe.parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .expect("target dir")
}
