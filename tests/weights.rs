// SPDX-License-Identifier: MPL-2.0
//! Every bundled model is listed in weights/MANIFEST.toml with the right sha256, a convert
//! script, and a valid `affect.*` contract that ONNX Runtime loads and checks against the graph.

use affect::runtime::{Model, Role, SessionConfig};
use affect::weights::{Manifest, weights_dir};

#[test]
fn manifest_lists_every_model_with_valid_hash_and_contract() {
    let dir = weights_dir();
    let manifest = Manifest::load(&dir).unwrap();
    assert!(
        manifest.model.len() >= 8,
        "expected the bundled models, got {}",
        manifest.model.len()
    );
    let problems = manifest.verify_files(&dir);
    assert!(
        problems.is_empty(),
        "MANIFEST problems:\n{}",
        problems.join("\n")
    );

    // Every .onnx in weights/ is listed (nothing unaccounted for ships).
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".onnx"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = manifest.model.iter().map(|m| m.file.clone()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "weights/*.onnx and MANIFEST.toml disagree");

    for entry in &manifest.model {
        let role: Role = entry
            .role
            .parse()
            .unwrap_or_else(|_| panic!("{}: bad role {}", entry.file, entry.role));
        let model = Model::load(
            &dir.join(&entry.file),
            Some(role),
            &SessionConfig::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", entry.file));
        assert_eq!(model.sha256(), entry.sha256, "{}", entry.file);
        assert!(!model.contract().name.is_empty());
    }
}
