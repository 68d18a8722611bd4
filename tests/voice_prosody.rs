// SPDX-License-Identifier: MPL-2.0
//! Parity of the bundled `voice-prosody` model with reference implementations: runs
//! tests/python/check_voice_prosody.py (log-mel vs librosa, F0 and voicing vs librosa.pyin on
//! espeak-ng speech, loudness vs numpy, functionals vs numpy) in the pinned venv that
//! tests/python/prosody-venv.sh creates once in the cache folder. Fails with the script's
//! figures when one is out of bounds.

use std::path::Path;
use std::process::Command;

#[test]
fn voice_prosody_matches_librosa_pyin_and_numpy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = Command::new("bash")
        .arg(root.join("tests/python/prosody-venv.sh"))
        .env("AFFECT_CACHE_DIR", affect::runtime::cache_dir())
        .output()
        .expect("runs bash");
    assert!(
        venv.status.success(),
        "creating the parity venv failed (needs Debian's python3-venv and the package registry \
         once: `make setup`):\n{}",
        String::from_utf8_lossy(&venv.stderr)
    );
    let python = String::from_utf8_lossy(&venv.stdout).trim().to_owned();
    let work = std::env::temp_dir().join(format!("gst-affect-prosody-{}", std::process::id()));
    let out = Command::new(&python)
        .arg(root.join("tests/python/check_voice_prosody.py"))
        .arg(affect::weights::resolve_model("voice-prosody"))
        .arg(&work)
        .output()
        .expect("runs the venv's python");
    let _ = std::fs::remove_dir_all(&work);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "voice-prosody parity check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("voice-prosody parity OK"), "{stdout}");
}
