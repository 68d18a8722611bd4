// SPDX-License-Identifier: MPL-2.0
//! An `ort-library` property that names a file that does not load is an element error
//! naming the property and the path at the state change, even though the `make setup`
//! cache would load; after a library is loaded, naming another one is an error too, the
//! same file (by any path) is not. Its own test binary: ONNX Runtime loads once per process.

mod common;

fn facecrop(ort_library: &str) -> Result<usize, String> {
    let mut desc =
        String::from("videotestsrc num-buffers=2 ! video/x-raw,width=64,height=64 ! facecrop");
    if !ort_library.is_empty() {
        desc.push_str(&format!(" ort-library=\"{ort_library}\""));
    }
    desc.push_str(" ! fakesink name=out");
    common::run_pipeline(&desc, None).map(|(frames, _)| frames.len())
}

#[test]
fn explicit_library_must_load_and_only_one_per_process() {
    // SAFETY: single test in this binary; set before GStreamer or ONNX Runtime start.
    unsafe {
        std::env::remove_var("ORT_DYLIB_PATH");
        std::env::remove_var("AFFECT_CACHE_DIR");
    }
    let cache = affect::runtime::default_cache_library();
    assert!(cache.exists(), "run `make setup` first");

    let err = facecrop("/nonexistent.so").expect_err("a missing library is an error");
    assert!(
        err.contains("ort-library property") && err.contains("/nonexistent.so"),
        "{err}"
    );

    // The same file through a link, then by its own path: both fine.
    let dir = common::scratch("ort-library");
    let link = dir.join("libonnxruntime-link.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&cache, &link).unwrap();
    assert_eq!(facecrop(link.to_str().unwrap()), Ok(2));
    assert_eq!(facecrop(cache.to_str().unwrap()), Ok(2));
    assert_eq!(facecrop(""), Ok(2));

    // Another file: an error saying a library is already loaded, naming both.
    let other = dir.join("libonnxruntime-other.so");
    std::fs::write(&other, b"another library").unwrap();
    let err = facecrop(other.to_str().unwrap()).expect_err("a second library is an error");
    assert!(
        err.contains("ort-library property")
            && err.contains("libonnxruntime-other.so")
            && err.contains("libonnxruntime-link.so")
            && err.contains("only once"),
        "{err}"
    );
}
