//! A missing ONNX Runtime library gives the typed error naming all three places, not a panic.
//! Its own test binary: it changes the process environment before anything loads ONNX Runtime.

mod common;

use affect::runtime::{ENV_CACHE_DIR, ENV_DYLIB_PATH, Model, RuntimeError, SessionConfig, runtime};

#[test]
fn missing_library_is_a_typed_error_then_recovers() {
    let real_cache = affect::runtime::default_cache_library();
    let empty = std::env::temp_dir().join(format!("affect-empty-cache-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let not_a_lib = empty.join("libonnxruntime.so.txt");
    std::fs::write(&not_a_lib, b"not a shared library").unwrap();
    // SAFETY: this test binary has a single test and no other threads reading the environment.
    unsafe {
        std::env::set_var(ENV_DYLIB_PATH, "/nonexistent/libonnxruntime.so");
        std::env::set_var(ENV_CACHE_DIR, &empty);
    }

    let err = runtime(Some(&not_a_lib)).unwrap_err();
    let RuntimeError::LibraryNotFound { tried } = &err else {
        panic!("expected LibraryNotFound, got {err}");
    };
    let places: Vec<_> = tried.iter().map(|c| c.place).collect();
    assert_eq!(
        places,
        ["ort-library property", "ORT_DYLIB_PATH", "make setup cache"]
    );
    let msg = err.to_string();
    assert!(msg.contains("libonnxruntime.so.txt"), "{msg}");
    assert!(msg.contains("/nonexistent/libonnxruntime.so"), "{msg}");
    assert!(msg.contains("make setup"), "{msg}");

    // Loading a model goes through the same check: an error, not a panic.
    let model = common::write_temp(&common::affine(), "affine-missing");
    let err = Model::load(&model, None, &SessionConfig::default()).unwrap_err();
    assert!(matches!(err, RuntimeError::LibraryNotFound { .. }), "{err}");

    // Nothing was poisoned: the real library still loads afterwards.
    unsafe {
        std::env::remove_var(ENV_DYLIB_PATH);
        std::env::remove_var(ENV_CACHE_DIR);
    }
    assert!(real_cache.exists(), "run `make setup` first");
    let rt = runtime(None).unwrap();
    assert_eq!(rt.path(), real_cache);
    Model::load(&model, None, &SessionConfig::default()).unwrap();
}
