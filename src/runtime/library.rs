// SPDX-License-Identifier: MPL-2.0
//! Finding and loading the ONNX Runtime shared library exactly once per process.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::RuntimeError;

/// Environment variable naming the ONNX Runtime library (the same one `ort` reads).
pub const ENV_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

/// Environment variable that moves the `make setup` cache folder (default: `.cache/` in the source tree).
pub const ENV_CACHE_DIR: &str = "AFFECT_CACHE_DIR";

/// The folder `make setup` fills: `$AFFECT_CACHE_DIR`, else `.cache/` of the source tree.
pub fn cache_dir() -> PathBuf {
    std::env::var_os(ENV_CACHE_DIR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache"))
}

/// The library that `make setup` puts into the cache.
pub fn default_cache_library() -> PathBuf {
    cache_dir().join("onnxruntime/libonnxruntime.so")
}

/// One place where the runtime library was looked for, and what happened there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryCandidate {
    /// Which place: `ort-library property`, `ORT_DYLIB_PATH`, `make setup cache`.
    pub place: &'static str,
    /// The path there, if the place named one.
    pub path: Option<PathBuf>,
    /// Why it was not used (`None` if it was used).
    pub failure: Option<String>,
}

impl fmt::Display for LibraryCandidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{} ({})", self.place, p.display())?,
            None => write!(f, "{}", self.place)?,
        }
        if let Some(why) = &self.failure {
            write!(f, ": {why}")?;
        }
        Ok(())
    }
}

/// The loaded ONNX Runtime: its library path, version, and the process-wide environment.
pub struct Runtime {
    path: PathBuf,
    version: String,
    pub(crate) env: ort::environment::Environment,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("path", &self.path)
            .field("version", &self.version)
            .finish()
    }
}

impl Runtime {
    /// Path of the loaded library.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// ONNX Runtime's own version string.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Execution providers compiled into the loaded library (e.g. `CPUExecutionProvider`).
    pub fn available_providers(&self) -> Vec<&'static str> {
        use ort::ep::ExecutionProvider as _;
        let mut v = vec!["CPUExecutionProvider"];
        if ort::ep::CUDA::is_available().unwrap_or(false) {
            v.push("CUDAExecutionProvider");
        }
        if ort::ep::TensorRT::is_available().unwrap_or(false) {
            v.push("TensorrtExecutionProvider");
        }
        v
    }
}

static LOADED: Mutex<Option<Arc<Runtime>>> = Mutex::new(None);

/// [`LibraryCandidate::place`] of the elements' `ort-library` property.
pub const PLACE_PROPERTY: &str = "ort-library property";
/// [`LibraryCandidate::place`] of the `make setup` cache.
pub const PLACE_CACHE: &str = "make setup cache";

/// Returns the process-wide ONNX Runtime, loading it on first use.
///
/// `explicit` is the element's `ort-library` property. A library the user names (the
/// property, else `ORT_DYLIB_PATH`) is the only one tried: if it cannot be loaded that is
/// an error naming the setting and the path ([`RuntimeError::LibraryUnusable`]), never a
/// silent fall-back to the cache, which is used only when neither is set. ONNX Runtime
/// can be loaded only once per process: once it is, a setting naming another file (by
/// canonical path) is [`RuntimeError::LibraryConflict`]; the same file, or no setting,
/// gives the loaded runtime.
pub fn runtime(explicit: Option<&Path>) -> Result<Arc<Runtime>, RuntimeError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());

    let explicit = explicit
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf);
    let env_path = std::env::var_os(ENV_DYLIB_PATH)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    // The setting that decides, if the user gave one: the property, else the variable.
    let wanted: Option<(&'static str, PathBuf)> = match (explicit, env_path) {
        (Some(p), _) => Some((PLACE_PROPERTY, p)),
        (None, Some(p)) => Some((ENV_DYLIB_PATH, p)),
        (None, None) => None,
    };

    if let Some(rt) = loaded.as_ref() {
        let Some((place, path)) = wanted else {
            return Ok(rt.clone());
        };
        let requested =
            std::fs::canonicalize(&path).map_err(|e| RuntimeError::LibraryUnusable {
                place,
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let current = std::fs::canonicalize(rt.path()).unwrap_or_else(|_| rt.path().to_owned());
        if requested != current {
            return Err(RuntimeError::LibraryConflict {
                place,
                path,
                loaded: rt.path().to_owned(),
            });
        }
        return Ok(rt.clone());
    }

    if let Some((place, path)) = wanted {
        return match try_load(&path) {
            Ok(rt) => {
                let rt = Arc::new(rt);
                *loaded = Some(rt.clone());
                Ok(rt)
            }
            Err(LoadFailure::Unusable(reason)) => Err(RuntimeError::LibraryUnusable {
                place,
                path,
                reason,
            }),
            Err(LoadFailure::Environment(message)) => {
                Err(RuntimeError::Environment { path, message })
            }
        };
    }

    let not_set = |place| LibraryCandidate {
        place,
        path: None,
        failure: Some("not set".into()),
    };
    let cache = default_cache_library();
    match try_load(&cache) {
        Ok(rt) => {
            let rt = Arc::new(rt);
            *loaded = Some(rt.clone());
            Ok(rt)
        }
        Err(LoadFailure::Unusable(why)) => Err(RuntimeError::LibraryNotFound {
            tried: vec![
                not_set(PLACE_PROPERTY),
                not_set(ENV_DYLIB_PATH),
                LibraryCandidate {
                    place: PLACE_CACHE,
                    path: Some(cache),
                    failure: Some(why),
                },
            ],
        }),
        Err(LoadFailure::Environment(message)) => Err(RuntimeError::Environment {
            path: cache,
            message,
        }),
    }
}

enum LoadFailure {
    Unusable(String),
    Environment(String),
}

fn try_load(path: &Path) -> Result<Runtime, LoadFailure> {
    // Check the file ourselves first: a clear "does not exist" beats a dlopen message.
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(LoadFailure::Unusable("not a file".into())),
        Err(e) => return Err(LoadFailure::Unusable(e.to_string())),
    }
    let builder = ort::init_from(path).map_err(|e| LoadFailure::Unusable(e.to_string()))?;
    let env = builder
        .with_name("gst-affect")
        .with_telemetry(false)
        .build()
        .map_err(|e| LoadFailure::Environment(e.to_string()))?;
    let version = ort_version(path);
    Ok(Runtime {
        path: path.to_path_buf(),
        version,
        env,
    })
}

/// ONNX Runtime's version, from the versioned file name the library resolves to
/// (`libonnxruntime.so.1.31.1`), else from its build string.
fn ort_version(path: &Path) -> String {
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.split_once(".so.") {
        Some((_, v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
            v.to_owned()
        }
        _ => format!("unknown ({})", ort::info()),
    }
}
