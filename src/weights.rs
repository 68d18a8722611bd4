// SPDX-License-Identifier: MPL-2.0
//! The bundled default models (`weights/`) and their `MANIFEST.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Environment variable that overrides where the default weights are looked for.
pub const ENV_WEIGHTS_DIR: &str = "AFFECT_WEIGHTS_DIR";

/// The folder holding the default models: `AFFECT_WEIGHTS_DIR`, else `weights/` of the source tree.
pub fn weights_dir() -> PathBuf {
    std::env::var_os(ENV_WEIGHTS_DIR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("weights"))
}

/// Resolves a model property value: an existing path as is, else a file in [`weights_dir`]
/// (with or without the `.onnx` extension).
pub fn resolve_model(value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.exists() || p.components().count() > 1 {
        return p.to_path_buf();
    }
    let dir = weights_dir();
    let direct = dir.join(value);
    if direct.exists() || value.ends_with(".onnx") {
        direct
    } else {
        dir.join(format!("{value}.onnx"))
    }
}

/// One `[[model]]` table of `MANIFEST.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// File name relative to the weights folder.
    pub file: String,
    /// Role, equal to the file's `affect.role`.
    pub role: String,
    /// Registry package the weights come from.
    pub source_package: String,
    /// Its version.
    pub source_version: String,
    /// Path of the original file inside the package.
    pub source_file: String,
    /// SPDX licence of the weights.
    pub license: String,
    /// sha256 of the committed file.
    pub sha256: String,
    /// The script (relative to the weights folder) that produced the file.
    pub convert: String,
    /// What it is for, caveats.
    #[serde(default)]
    pub notes: String,
}

/// The parsed `MANIFEST.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Every bundled model.
    #[serde(default)]
    pub model: Vec<ManifestEntry>,
}

impl Manifest {
    /// Parses manifest text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Reads `MANIFEST.toml` from a weights folder.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join("MANIFEST.toml");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Checks every entry's file: present, sha256 as listed, convert script present.
    /// Returns one message per problem (empty when all is well). Contracts are checked
    /// separately through ONNX Runtime.
    pub fn verify_files(&self, dir: &Path) -> Vec<String> {
        let mut problems = Vec::new();
        for e in &self.model {
            let path = dir.join(&e.file);
            match std::fs::read(&path) {
                Err(err) => problems.push(format!("{}: {err}", e.file)),
                Ok(bytes) => {
                    let got = sha256_hex(&bytes);
                    if !got.eq_ignore_ascii_case(e.sha256.trim()) {
                        problems.push(format!(
                            "{}: sha256 is {got}, MANIFEST says {}",
                            e.file, e.sha256
                        ));
                    }
                }
            }
            if !dir.join(&e.convert).is_file() {
                problems.push(format!(
                    "{}: convert script {} is missing",
                    e.file, e.convert
                ));
            }
            if e.license.trim().is_empty() || e.source_package.trim().is_empty() {
                problems.push(format!(
                    "{}: licence and source package must be given",
                    e.file
                ));
            }
        }
        problems
    }
}

/// sha256 of bytes as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_checks_hash_and_script() {
        let dir = std::env::temp_dir().join(format!("affect-manifest-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("convert")).unwrap();
        std::fs::write(dir.join("m.onnx"), b"abc").unwrap();
        std::fs::write(dir.join("convert/m.py"), b"").unwrap();
        let good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let text = format!(
            "[[model]]\nfile = \"m.onnx\"\nrole = \"vad\"\nsource_package = \"p\"\nsource_version = \"1\"\nsource_file = \"x\"\nlicense = \"MIT\"\nsha256 = \"{good}\"\nconvert = \"convert/m.py\"\n"
        );
        let m = Manifest::parse(&text).unwrap();
        assert_eq!(m.verify_files(&dir), Vec::<String>::new());
        let bad = Manifest::parse(&text.replace(good, &"0".repeat(64))).unwrap();
        let p = bad.verify_files(&dir);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("sha256 is ba7816bf"), "{p:?}");
        assert!(Manifest::parse("[[model]]\nfile = 1\n").is_err());
        assert!(Manifest::parse(&text.replace("notes", "x").replace("role", "rol")).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
