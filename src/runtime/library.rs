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

/// Returns the process-wide ONNX Runtime, loading it on first use.
///
/// `explicit` is the element's `ort-library` property. The library can be loaded only
/// once per process: once loaded, later calls return the same runtime, whatever path
/// they name (the caller can compare [`Runtime::path`] and warn).
pub fn runtime(explicit: Option<&Path>) -> Result<Arc<Runtime>, RuntimeError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = loaded.as_ref() {
        return Ok(rt.clone());
    }

    let env_path = std::env::var_os(ENV_DYLIB_PATH)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let places: [(&'static str, Option<PathBuf>); 3] = [
        ("ort-library property", explicit.map(Path::to_path_buf)),
        (ENV_DYLIB_PATH, env_path),
        ("make setup cache", Some(default_cache_library())),
    ];

    let mut tried = Vec::with_capacity(places.len());
    for (place, path) in places {
        let Some(path) = path else {
            tried.push(LibraryCandidate {
                place,
                path: None,
                failure: Some("not set".into()),
            });
            continue;
        };
        match try_load(&path) {
            Ok(rt) => {
                let rt = Arc::new(rt);
                *loaded = Some(rt.clone());
                return Ok(rt);
            }
            Err(LoadFailure::Unusable(why)) => tried.push(LibraryCandidate {
                place,
                path: Some(path),
                failure: Some(why),
            }),
            Err(LoadFailure::Environment(message)) => {
                return Err(RuntimeError::Environment { path, message });
            }
        }
    }
    Err(RuntimeError::LibraryNotFound { tried })
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
