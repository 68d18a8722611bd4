// SPDX-License-Identifier: MPL-2.0
//! deploy/: the Kubernetes manifests validated against the Kubernetes API schemas, and
//! consistent with `affect-annotate` and the Containerfile (tests/python/check_manifests.py
//! in the pinned venv of tests/python/k8s-venv.sh).

mod common;

use std::process::Command;

use common::root;

#[test]
fn kubernetes_manifests_are_valid_and_match_the_program() {
    let python = common::venv_python("k8s-venv.sh");
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
