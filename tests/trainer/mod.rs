// SPDX-License-Identifier: MPL-2.0
//! Running the `affect-train` binary from the trainer's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_affect-train");

/// `affect-train args…`, whatever its exit status.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// `affect-train args…`, which must succeed; its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "affect-train {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `affect-train args…`, which must fail; its stderr.
pub fn failed(args: &[&str]) -> String {
    let o = run(args);
    assert!(!o.status.success(), "affect-train {args:?} succeeded");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `fit --task va` of `model` on `data` into `out` at test sizes (window 16, hidden 16,
/// 1 layer, 2 heads, lr 0.003); the caller adds epochs and the rest.
pub fn small_fit_args<'a>(data: &'a Path, model: &'a str, out: &'a Path) -> Vec<&'a str> {
    vec![
        "fit",
        "--data",
        s(data),
        "--task",
        "va",
        "--model",
        model,
        "--out",
        s(out),
        "--window",
        "16",
        "--hidden",
        "16",
        "--layers",
        "1",
        "--heads",
        "2",
        "--lr",
        "0.003",
    ]
}

/// A fresh (removed) scratch folder path for test `tag`.
pub fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("affect-train-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
