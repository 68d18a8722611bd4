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
pub mod features;
pub mod layout;
pub mod sequences;
pub mod synth;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use annotations::{ExprLabels, VaLabels};
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

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, synced,
/// then renamed over `path` (readers never see a partial file). Creates missing parent
/// folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let name = path
        .file_name()
        .ok_or_else(|| DataError::Layout(format!("{}: not a file path", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
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
}
