// SPDX-License-Identifier: MPL-2.0
//! `ORT_DYLIB_PATH` naming a file that does not load is an element error naming the
//! variable and the path, even though the `make setup` cache would load; the property
//! still takes precedence over it. Its own test binary: it sets the environment before
//! anything loads ONNX Runtime.

mod common;

fn facecrop(extra: &str) -> Result<usize, String> {
    let desc = format!(
        "videotestsrc num-buffers=2 ! video/x-raw,width=64,height=64 ! facecrop {extra} ! fakesink name=out"
    );
    common::run_pipeline(&desc, None).map(|(frames, _)| frames.len())
}

#[test]
fn env_library_must_load() {
    // SAFETY: single test in this binary; set before GStreamer or ONNX Runtime start.
    unsafe {
        std::env::set_var("ORT_DYLIB_PATH", "notalib.so");
        std::env::remove_var("AFFECT_CACHE_DIR");
    }
    let cache = affect::runtime::default_cache_library();
    assert!(cache.exists(), "run `make setup` first");

    let err = facecrop("").expect_err("ORT_DYLIB_PATH=notalib.so is an error");
    assert!(
        err.contains("ORT_DYLIB_PATH") && err.contains("notalib.so"),
        "{err}"
    );
    // The property beats the variable …
    assert_eq!(
        facecrop(&format!("ort-library=\"{}\"", cache.display())),
        Ok(2)
    );
    // … but an element without it still asks for what the variable names.
    let err = facecrop("").expect_err("still an error once a library is loaded");
    assert!(
        err.contains("ORT_DYLIB_PATH") && err.contains("notalib.so"),
        "{err}"
    );
}
