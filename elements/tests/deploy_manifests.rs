// SPDX-License-Identifier: MPL-2.0
//! deploy/: the Kubernetes manifests validated against the Kubernetes API schemas, and
//! consistent with `affect-annotate` and the Containerfile (tests/python/check_manifests.py
//! in the pinned venv of tests/python/k8s-venv.sh).

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

#[test]
fn kubernetes_manifests_are_valid_and_match_the_program() {
    let venv = Command::new("bash")
        .arg(root().join("tests/python/k8s-venv.sh"))
        .output()
        .expect("bash runs");
    assert!(
        venv.status.success(),
        "k8s venv: {}",
        String::from_utf8_lossy(&venv.stderr)
    );
    let python = String::from_utf8(venv.stdout).unwrap().trim().to_owned();
    let out = Command::new(&python)
        .arg(root().join("tests/python/check_manifests.py"))
        .arg(root())
        .arg(env!("CARGO_BIN_EXE_affect-annotate"))
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("resources valid"), "{text}");
}
