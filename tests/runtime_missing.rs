// SPDX-License-Identifier: MPL-2.0
//! Finding ONNX Runtime: a library the user names (the `ort-library` property, else
//! `ORT_DYLIB_PATH`) must load or be an error naming that setting and path, never a silent
//! fall-back to the cache; with nothing set and no cache, the typed error names all three
//! places; once loaded, naming another file is an error, the same file (any path to it) is
//! not. Its own test binary: it changes the process environment before anything loads
//! ONNX Runtime.

mod common;

use affect::runtime::{ENV_CACHE_DIR, ENV_DYLIB_PATH, Model, RuntimeError, SessionConfig, runtime};

#[test]
fn named_libraries_must_load_then_one_library_per_process() {
    let real_cache = affect::runtime::default_cache_library();
    assert!(real_cache.exists(), "run `make setup` first");
    let empty = std::env::temp_dir().join(format!("affect-empty-cache-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let not_a_lib = empty.join("libonnxruntime.so.txt");
    std::fs::write(&not_a_lib, b"not a shared library").unwrap();
    // SAFETY: this test binary has a single test and no other threads reading the environment.
    unsafe {
        std::env::remove_var(ENV_DYLIB_PATH);
        std::env::remove_var(ENV_CACHE_DIR);
    }

    // An explicit path that does not load is an error even though the cache would load.
    let err = runtime(Some(&not_a_lib)).unwrap_err();
    let RuntimeError::LibraryUnusable { place, path, .. } = &err else {
        panic!("expected LibraryUnusable, got {err}");
    };
    assert_eq!((*place, path), ("ort-library property", &not_a_lib));
    let msg = err.to_string();
    assert!(
        msg.contains("ort-library property") && msg.contains("libonnxruntime.so.txt"),
        "{msg}"
    );

    // So is ORT_DYLIB_PATH when the property is not set, relative paths included.
    unsafe { std::env::set_var(ENV_DYLIB_PATH, "notalib.so") };
    let err = runtime(None).unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::LibraryUnusable {
                place: "ORT_DYLIB_PATH",
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("ORT_DYLIB_PATH") && msg.contains("notalib.so"),
        "{msg}"
    );
    // Loading a model goes through the same check: an error, not a panic.
    let model = common::write_temp(&common::affine(), "affine-missing");
    let err = Model::load(&model, None, &SessionConfig::default()).unwrap_err();
    assert!(matches!(err, RuntimeError::LibraryUnusable { .. }), "{err}");

    // Nothing set and an empty cache: the error names all three places.
    unsafe {
        std::env::remove_var(ENV_DYLIB_PATH);
        std::env::set_var(ENV_CACHE_DIR, &empty);
    }
    let err = runtime(None).unwrap_err();
    let RuntimeError::LibraryNotFound { tried } = &err else {
        panic!("expected LibraryNotFound, got {err}");
    };
    let places: Vec<_> = tried.iter().map(|c| c.place).collect();
    assert_eq!(
        places,
        ["ort-library property", "ORT_DYLIB_PATH", "make setup cache"]
    );
    let msg = err.to_string();
    assert!(msg.contains(&empty.display().to_string()), "{msg}");
    assert!(msg.contains("make setup"), "{msg}");

    // Nothing was poisoned: the real library still loads afterwards, here through a
    // symbolic link, which names the same file as the cache.
    unsafe { std::env::remove_var(ENV_CACHE_DIR) };
    let link = empty.join("link-to-libonnxruntime.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&real_cache, &link).unwrap();
    let rt = runtime(Some(&link)).unwrap();
    assert_eq!(rt.path(), link);
    Model::load(&model, None, &SessionConfig::default()).unwrap();
    assert!(
        runtime(Some(&real_cache)).is_ok(),
        "the same file by another path"
    );

    // Another file once a library is loaded: an error naming both, not the loaded one.
    let err = runtime(Some(&not_a_lib)).unwrap_err();
    assert!(matches!(err, RuntimeError::LibraryConflict { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("libonnxruntime.so.txt")
            && msg.contains("link-to-libonnxruntime.so")
            && msg.contains("only once"),
        "{msg}"
    );
    unsafe { std::env::set_var(ENV_DYLIB_PATH, &not_a_lib) };
    let err = runtime(None).unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::LibraryConflict {
                place: "ORT_DYLIB_PATH",
                ..
            }
        ),
        "{err}"
    );
    // A missing file is reported as missing, loaded library or not.
    let err = runtime(Some(std::path::Path::new("/nonexistent.so"))).unwrap_err();
    assert!(
        matches!(err, RuntimeError::LibraryUnusable { .. })
            && err.to_string().contains("/nonexistent.so"),
        "{err}"
    );
    unsafe { std::env::remove_var(ENV_DYLIB_PATH) };
    assert!(runtime(None).is_ok());
}
