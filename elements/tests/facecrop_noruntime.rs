// SPDX-License-Identifier: MPL-2.0
//! Without a loadable ONNX Runtime, `facecrop` fails at the state change with an error
//! naming the places it looked in; nothing panics. Its own test binary: it changes the
//! environment before anything loads ONNX Runtime.

mod common;

#[test]
fn unloadable_runtime_is_an_element_error_at_start() {
    let empty = common::scratch("no-runtime");
    let fake = empty.join("libonnxruntime.so");
    std::fs::write(&fake, b"not a library").unwrap();
    // SAFETY: single test in this binary; set before GStreamer or ONNX Runtime start.
    unsafe {
        std::env::remove_var("ORT_DYLIB_PATH");
        std::env::set_var("AFFECT_CACHE_DIR", &empty);
    }
    // Nothing set, and the cache holds no library: every place is named.
    let err = common::run_pipeline(
        "videotestsrc num-buffers=2 ! facecrop ! fakesink name=out",
        None,
    )
    .expect_err("must fail without a runtime");
    assert!(err.contains("ONNX Runtime library not found"), "{err}");
    assert!(
        err.contains("ort-library property")
            && err.contains("ORT_DYLIB_PATH")
            && err.contains("make setup cache")
            && err.contains(&empty.display().to_string()),
        "{err}"
    );
    // A library named by the property that does not load: the error names the property.
    let desc = format!(
        "videotestsrc num-buffers=2 ! facecrop ort-library={} ! fakesink name=out",
        fake.display()
    );
    let err = common::run_pipeline(&desc, None).expect_err("must fail without a runtime");
    assert!(
        err.contains("ort-library property") && err.contains(&fake.display().to_string()),
        "{err}"
    );
}
