// SPDX-License-Identifier: MPL-2.0
//! The Ray job of deploy/ray/ on a local two-node cluster (`ray start --head` and a second
//! worker node on loopback): 12 inputs, the worker node killed while it annotates one;
//! afterwards every input has exactly one complete result equal to an uninterrupted run's
//! (tests/python/ray_fault_test.py in the pinned venv of tests/python/ray-venv.sh).

mod common;

use std::process::Command;

use common::root;

#[test]
fn ray_job_survives_a_killed_worker_node() {
    let python = common::venv_python("ray-venv.sh");
    let inputs = std::env::var("AFFECT_RAY_TEST_INPUTS").unwrap_or_else(|_| "12".into());
    let out = Command::new(&python)
        .arg(root().join("tests/python/ray_fault_test.py"))
        .arg(env!("CARGO_BIN_EXE_affect-annotate"))
        .arg(&inputs)
        .arg(affect::runtime::cache_dir().join("media"))
        .output()
        .expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains(": passed"), "{text}");
    println!("{}", text.trim());
}
