// SPDX-License-Identifier: MPL-2.0
//! Where results go, how a run knows an input is done, and how results appear atomically.
//!
//! Each input has a result folder `OUTPUT/<id>/` (`id`: a readable stem plus a hash of the
//! input's name). It is assembled in `OUTPUT/.tmp/<id>.<host>.<pid>.<n>/` and renamed into
//! place when complete: a result folder that exists is whole. Its `summary.json` is the
//! manifest entry: it records the input's **key**, the sha256 of the input's name, its size
//! and modification time (or its content's sha256 with `--hash content`), the model
//! versions (the sha256 of the weights' MANIFEST.toml, which lists every bundled model's
//! sha256) and the settings. A later run skips an input whose folder holds the same key,
//! whether it succeeded or failed (`--retry-failed` runs failed ones again).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::inputs::Input;

/// Version of the result layout; part of every key.
pub const LAYOUT_VERSION: u32 = 1;

/// The name of the per-input summary (the manifest entry).
pub const SUMMARY: &str = "summary.json";

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex sha256 of a file's content, read in blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The result folder name of an input: up to 40 characters of its file stem (letters,
/// digits, `-`, `_`, `.`), a dash and 12 hex digits of the sha256 of its canonical name.
pub fn result_id(input: &Input) -> String {
    let canonical = input.canonical();
    let stem = canonical
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("input");
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let clean = if clean.is_empty() {
        "input".to_owned()
    } else {
        clean
    };
    format!("{clean}-{}", &sha256_hex(canonical.as_bytes())[..12])
}

/// How a local input's identity is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HashMode {
    /// Size and modification time (cheap).
    Stat,
    /// sha256 of the content (reads the file once more).
    Content,
}

/// What an input's key is made of (stored in its summary).
pub fn key_material(input: &Input, mode: HashMode, models: &str, settings: &Value) -> Value {
    let mut source = json!({ "input": input.canonical() });
    if let Some(p) = &input.local {
        match std::fs::metadata(p) {
            Ok(m) => {
                source["size"] = json!(m.len());
                match mode {
                    // The content alone: a copy or a touched file keeps its key.
                    HashMode::Content => {
                        source["sha256"] = match sha256_file(p) {
                            Ok(h) => json!(h),
                            Err(e) => json!(format!("unreadable: {}", e.kind())),
                        };
                    }
                    HashMode::Stat => {
                        if let Ok(t) = m.modified()
                            && let Ok(d) = t.duration_since(std::time::UNIX_EPOCH)
                        {
                            source["mtime_ns"] = json!(d.as_nanos() as u64);
                        }
                    }
                }
            }
            Err(e) => source["missing"] = json!(e.kind().to_string()),
        }
    }
    json!({
        "layout": LAYOUT_VERSION,
        "source": source,
        "models": models,
        "settings": settings,
    })
}

/// The key: sha256 of the key material's JSON text (serde_json keeps object keys sorted).
pub fn key_of(material: &Value) -> String {
    sha256_hex(material.to_string().as_bytes())
}

/// The sha256 of the weights' MANIFEST.toml (the model versions of the bundled models).
pub fn models_version() -> String {
    let p = affect::weights::weights_dir().join("MANIFEST.toml");
    match std::fs::read(&p) {
        Ok(b) => sha256_hex(&b),
        Err(_) => "no-weights-manifest".into(),
    }
}

/// The summary of a finished input in `out`, if any.
pub fn finished(out: &Path, id: &str) -> Option<Value> {
    let text = std::fs::read_to_string(out.join(id).join(SUMMARY)).ok()?;
    serde_json::from_str(&text).ok()
}

/// A folder being assembled for one input, removed on drop unless published.
pub struct Staging {
    /// The folder.
    pub dir: PathBuf,
    published: bool,
}

impl Staging {
    /// A fresh staging folder under `out/.tmp/`.
    pub fn new(out: &Path, id: &str) -> std::io::Result<Staging> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let tmp = out.join(".tmp");
        std::fs::create_dir_all(&tmp)?;
        let dir = tmp.join(format!(
            "{id}.{}.{}.{}",
            host(),
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir)?;
        Ok(Staging {
            dir,
            published: false,
        })
    }

    /// Empties the folder (a failed attempt keeps nothing but its summary).
    pub fn clear(&self) -> std::io::Result<()> {
        for e in std::fs::read_dir(&self.dir)? {
            let p = e?.path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p)?;
            } else {
                std::fs::remove_file(&p)?;
            }
        }
        Ok(())
    }

    /// Writes the summary, flushes the folder's files to disk and renames the folder to
    /// `out/<id>`. An existing result with another key is replaced; one with the same key
    /// (another process finished first) wins and this one is dropped. Returns whether this
    /// folder was the one published.
    pub fn publish(mut self, out: &Path, id: &str, summary: &Value) -> std::io::Result<bool> {
        write_file_synced(
            &self.dir.join(SUMMARY),
            serde_json::to_string_pretty(summary)?.as_bytes(),
        )?;
        for e in std::fs::read_dir(&self.dir)? {
            let p = e?.path();
            if p.is_file() {
                std::fs::File::open(&p)?.sync_all()?;
            }
        }
        let dest = out.join(id);
        match std::fs::rename(&self.dir, &dest) {
            Ok(()) => {}
            Err(_) if dest.exists() => {
                let same = finished(out, id)
                    .and_then(|v| v.get("key").cloned())
                    .is_some_and(|k| Some(&k) == summary.get("key"));
                if same {
                    return Ok(false);
                }
                // Replace the stale result: move it aside, then put ours in place.
                let old = self.dir.with_extension("replaced");
                std::fs::rename(&dest, &old)?;
                std::fs::rename(&self.dir, &dest)?;
                let _ = std::fs::remove_dir_all(&old);
            }
            Err(e) => return Err(e),
        }
        self.published = true;
        sync_dir(out);
        Ok(true)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename,
/// flushed to disk: readers see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.{}.tmp", host(), std::process::id()));
    write_file_synced(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    if let Some(parent) = path.parent() {
        sync_dir(parent);
    }
    Ok(())
}

fn write_file_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// This machine's name (staging folders of processes on other machines sharing the
/// output are left alone).
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
        .replace(['.', '/'], "_")
}

/// Removes the staging folders left by processes of this machine that no longer run
/// (a killed run). Returns how many were removed.
pub fn clean_stale(out: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(out.join(".tmp")) else {
        return 0;
    };
    let me = host();
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // <id>.<host>.<pid>.<n>[.replaced] or .<file>.<host>.<pid>.tmp
        let parts: Vec<&str> = name.rsplit('.').collect();
        let pid = parts
            .iter()
            .zip(parts.iter().skip(1))
            .find(|(_, h)| **h == me)
            .and_then(|(p, _)| p.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let p = e.path();
        let removed = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        if removed.is_ok() {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_readable_and_distinct() {
        let a = Input::parse("/data/x/talk show.mp4").unwrap();
        let b = Input::parse("/data/y/talk show.mp4").unwrap();
        assert!(result_id(&a).starts_with("talk_show-"));
        assert_ne!(result_id(&a), result_id(&b));
        let u = Input::parse("rtsp://cam:554/").unwrap();
        assert!(result_id(&u).starts_with("cam_554-"));
    }

    #[test]
    fn keys_follow_settings_and_models() {
        let a = Input::parse("/nonexistent/a.mp4").unwrap();
        let k1 = key_of(&key_material(&a, HashMode::Stat, "m1", &json!({"v": 1})));
        let k2 = key_of(&key_material(&a, HashMode::Stat, "m2", &json!({"v": 1})));
        let k3 = key_of(&key_material(&a, HashMode::Stat, "m1", &json!({"v": 2})));
        let k4 = key_of(&key_material(&a, HashMode::Stat, "m1", &json!({"v": 1})));
        assert_ne!(k1, k2);
        assert_ne!(k1, k3);
        assert_eq!(k1, k4);
    }
}
