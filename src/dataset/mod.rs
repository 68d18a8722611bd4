// SPDX-License-Identifier: MPL-2.0
//! Training data: Aff-Wild2 annotation files, per-frame feature files, splits and folds,
//! fixed-length training sequences, and the synthetic data set of `affect-train synth`.
//!
//! No burn here: the trainer (feature `train`), `affect-train eval` and the tests share it.
//!
//! - [`annotations`]: the Aff-Wild2 VA / EXPR `.txt` files (parse, write).
//! - [`features`]: the per-subject feature file (safetensors) that `avfuse dump-location`
//!   and `affect-train extract` write.
//! - [`layout`]: a data root in the Aff-Wild2 folder layout, matching annotations with
//!   feature files, splits and k folds, and windowing into a [`SequenceSet`].

pub mod annotations;
pub mod dump;
pub mod features;
pub mod layout;
pub mod sequences;
pub mod synth;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use annotations::{ExprLabels, VaLabels};
pub use dump::TrackDump;
pub use features::{FeatureFile, FeatureMetadata};
pub use layout::{DataRoot, Fold, Labels, Split, Subject};
pub use sequences::{SequenceSet, Task};

/// What can go wrong reading or writing training data. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A malformed annotation file.
    #[error("{path}:{line}: {message}")]
    Annotation {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A malformed or inconsistent feature file.
    #[error("{path}: {message}")]
    Features {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A data root, split or fold problem.
    #[error("{0}")]
    Layout(String),
}

impl DataError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A name for a temporary file beside `path` that no other writer uses at the same
/// time: `.<file name>.<pid>-<counter>-<nanoseconds>.tmp`. The process id tells processes
/// apart, the process-wide counter tells apart the threads and calls of one process
/// (two threads of one test binary filling the same cache), the clock guards against a
/// leftover of an earlier process with the same id. For files that another program
/// creates (give it the format explicitly: the name ends in `.tmp`); in this process,
/// [`create_temp_beside`] also refuses an existing file.
pub fn temp_path_beside(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or(std::ffi::OsStr::new("file")));
    name.push(format!(".{}-{n}-{nanos}.tmp", std::process::id()));
    dir.join(name)
}

/// Creates a new temporary file beside `path` ([`temp_path_beside`]), never one that
/// exists. Returns its path and the open file.
pub fn create_temp_beside(path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    loop {
        let tmp = temp_path_beside(path);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Moves the finished temporary file `tmp` onto `path` with one atomic rename (readers
/// see the old file or the new one, never a partial one). On failure `tmp` is removed.
///
/// `same_content`: every writer of `path` writes the same bytes (a cache). Then a
/// failed rename while `path` exists means a concurrent writer got there first, and its
/// file is used: the call succeeds.
pub fn persist_temp(tmp: &Path, path: &Path, same_content: bool) -> std::io::Result<()> {
    match std::fs::rename(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(tmp);
            if same_content && path.is_file() {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file of its own in the same folder
/// ([`create_temp_beside`]: safe with concurrent writers, threads or processes), synced,
/// then renamed over `path` ([`persist_temp`]; readers never see a partial file). Creates
/// missing parent folders. With concurrent writers, the last rename wins.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    if path.file_name().is_none() {
        return Err(DataError::Layout(format!(
            "{}: not a file path",
            path.display()
        )));
    }
    let (tmp, mut f) = create_temp_beside(path).map_err(|e| DataError::io(path, e))?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    drop(f);
    let result = written.and_then(|()| persist_temp(&tmp, path, false));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("affect-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = dir.join("sub").join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.txt")]);
        // A folder in the way: error naming the path, no temp left behind.
        let e = write_atomic(&dir.join("sub"), b"x").unwrap_err();
        assert!(e.to_string().contains("sub"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// 8 threads of one process write the same file at once, many times: every write
    /// succeeds, the file is always one writer's whole content, no temporary is left.
    /// (With a temporary name keyed by the process id only, the threads shared one
    /// temporary file and all but one rename failed with "No such file or directory".)
    #[test]
    fn atomic_write_from_8_threads_at_once() {
        let dir = std::env::temp_dir().join(format!("affect-atomic-mt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = dir.join("shared.bin");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|t| vec![t; 64 * 1024]).collect();
        for _round in 0..10 {
            let barrier = std::sync::Barrier::new(8);
            let results: Vec<Result<(), DataError>> = std::thread::scope(|s| {
                let handles: Vec<_> = contents
                    .iter()
                    .map(|c| {
                        let (barrier, p) = (&barrier, &p);
                        s.spawn(move || {
                            barrier.wait();
                            write_atomic(p, c)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for r in results {
                r.unwrap();
            }
            let got = std::fs::read(&p).unwrap();
            assert!(contents.contains(&got), "a mix of writers' bytes");
        }
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("shared.bin")]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn temp_names_are_unique_and_persist_tolerates_a_winner() {
        let dir = std::env::temp_dir().join(format!("affect-persist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("cache.wav");
        let names: std::collections::BTreeSet<_> =
            (0..1000).map(|_| temp_path_beside(&p)).collect();
        assert_eq!(names.len(), 1000);
        assert!(names.iter().all(|n| n.parent() == Some(dir.as_path())));
        // A cache: the winner's file exists and the loser's temporary is gone (here:
        // never made), so the rename fails; the winner's file is used.
        std::fs::write(&p, b"winner").unwrap();
        let gone = temp_path_beside(&p);
        persist_temp(&gone, &p, true).unwrap();
        assert!(persist_temp(&gone, &p, false).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"winner");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
