// SPDX-License-Identifier: MPL-2.0
//! A loaded model: an ONNX Runtime session on a chosen execution provider plus its contract.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use crate::weights::sha256_hex;
use ndarray::{ArrayD, ArrayViewD};
use ort::ep::ExecutionProvider as _;
use ort::session::Session;

use super::RuntimeError;
use super::batch::{BatchConfig, Batcher};
use super::contract::{ModelContract, Role};
use super::library::{Runtime, runtime};

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU provider.
    #[default]
    Cpu,
    /// NVIDIA CUDA (needs the `onnxruntime-gpu` library, CUDA and cuDNN).
    Cuda,
    /// NVIDIA TensorRT (needs TensorRT as well; falls back to CUDA/CPU per node).
    TensorRt,
    /// The best provider that starts here: CUDA if it can, else CPU.
    Auto,
}

impl ExecutionProvider {
    /// Lower-case name used in properties and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::TensorRt => "tensorrt",
            ExecutionProvider::Auto => "auto",
        }
    }
}

impl fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "cpu" => Self::Cpu,
            "cuda" => Self::Cuda,
            "tensorrt" | "trt" => Self::TensorRt,
            "auto" => Self::Auto,
            _ => {
                return Err(format!(
                    "unknown execution provider `{s}` (cpu, cuda, tensorrt, auto)"
                ));
            }
        })
    }
}

/// How to create a session: the settings every model-running element exposes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionConfig {
    /// Requested execution provider.
    pub provider: ExecutionProvider,
    /// GPU index for CUDA / TensorRT.
    pub device_id: i32,
    /// Intra-op threads; 0 lets ONNX Runtime decide (one per core). Sessions use at most
    /// one per core ([`SessionConfig::effective_threads`]).
    pub threads: usize,
    /// Explicit ONNX Runtime library (the `ort-library` property).
    pub ort_library: Option<PathBuf>,
    /// A session of its own instead of the process-wide shared one (see
    /// [`shared_sessions`]): for callers that want their runs to overlap another
    /// caller's on other cores, at the cost of the model's memory once more.
    pub exclusive: bool,
    /// Cross-stream batching of the shared session ([`BatchConfig`]; off by default).
    /// Part of the session's key: callers with other batching settings get another
    /// session. Ignored for exclusive sessions (there is nobody to batch with).
    pub batch: BatchConfig,
}

/// Cores this process may run on (`std::thread::available_parallelism`, 1 if unknown).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl SessionConfig {
    /// The intra-op threads a session gets: `threads` capped to [`available_cores`]
    /// (0 stays 0, ONNX Runtime's one per core). More threads than cores only wait on
    /// each other: 256 spinning threads on 2 cores made BlazeFace over 100 times slower.
    pub fn effective_threads(&self) -> usize {
        self.threads.min(available_cores())
    }
}

/// Name, element type and shape (-1 = dynamic) of a graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Shape, -1 for dynamic dimensions (empty if not a tensor).
    pub shape: Vec<i64>,
}

/// What every handle of one loaded model shares: the session (runs serialised by its
/// mutex), the parsed contract and the graph's description.
struct Loaded {
    session: Mutex<Session>,
    batcher: Option<Batcher>,
    contract: ModelContract,
    provider: ExecutionProvider,
    sha256: String,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    runtime: Arc<Runtime>,
    provider_note: String,
}

/// What makes two loads the same session: the model's bytes and how the session is
/// built (requested provider, device, intra-op threads, library).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    sha256: String,
    provider: ExecutionProvider,
    device_id: i32,
    threads: usize,
    library: PathBuf,
    batch: BatchConfig,
}

/// The process-wide registry: one weakly held session per key; a session lives as long
/// as some [`Model`] handle uses it.
static SHARED: LazyLock<Mutex<HashMap<SessionKey, Weak<Loaded>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A shared session currently alive: its model's `affect.name`, file sha256, provider
/// and how many [`Model`] handles use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSessionInfo {
    /// The model's `affect.name`.
    pub name: String,
    /// sha256 of the model file.
    pub sha256: String,
    /// The provider the session runs on.
    pub provider: ExecutionProvider,
    /// Handles using it (element instances, typically).
    pub users: usize,
    /// Requests through its cross-stream batcher so far (0 without batching).
    pub batched_requests: u64,
    /// Session runs of its batcher so far: fewer than the requests when requests of
    /// several callers shared runs.
    pub batched_runs: u64,
}

/// The shared sessions alive in this process, sorted by name (exclusive sessions are not
/// listed). Elements of any pipeline that load the same model file with the same
/// provider, device, threads and library share one session: the weights are in memory
/// once, and so is ONNX Runtime's memory arena for the model's activations.
pub fn shared_sessions() -> Vec<SharedSessionInfo> {
    let reg = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<SharedSessionInfo> = reg
        .values()
        .filter_map(Weak::upgrade)
        .map(|l| SharedSessionInfo {
            name: l.contract.name.clone(),
            sha256: l.sha256.clone(),
            provider: l.provider,
            users: Arc::strong_count(&l) - 1,
            batched_requests: l.batcher.as_ref().map_or(0, Batcher::requests),
            batched_runs: l.batcher.as_ref().map_or(0, Batcher::runs),
        })
        .collect();
    out.sort_by(|a, b| (&a.name, &a.sha256).cmp(&(&b.name, &b.sha256)));
    out
}

/// A model ready to run: session, parsed contract, the provider actually used.
///
/// # Sharing
///
/// [`Model::load`] gives a handle on the process-wide session of the model (unless
/// [`SessionConfig::exclusive`]): loading the same file with the same settings again, in
/// any thread or pipeline, reuses the session. ONNX Runtime documents `Run` as safe to call
/// from several threads on one session, but the `ort` crate (rc.15) takes `&mut self` in
/// `Session::run` because its maintainers found concurrent runs not to be safe in practice
/// (see the comment on `run_inner` in ort's `session/run.rs`). The shared session
/// therefore sits behind a mutex and runs never overlap: what sharing relies on is only
/// that a session may be used from one thread after another (`Session: Send`), which `ort`
/// guarantees. Callers whose runs must proceed in parallel on several cores ask for an
/// exclusive session.
pub struct Model {
    loaded: Arc<Loaded>,
    path: PathBuf,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("name", &self.loaded.contract.name)
            .field("role", &self.loaded.contract.role)
            .field("provider", &self.loaded.provider)
            .field("shared", &self.is_shared())
            .finish()
    }
}

impl Model {
    /// Loads `path`, checks its contract (and role, if `role` is given) against the graph,
    /// and creates a session on the requested provider.
    ///
    /// An explicitly requested GPU provider that cannot start is an error, never a silent
    /// CPU fallback; `Auto` falls back and says so in [`Model::provider_note`].
    pub fn load(
        path: &Path,
        role: Option<Role>,
        config: &SessionConfig,
    ) -> Result<Self, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::ModelFile {
            path: path.to_owned(),
            source,
        })?;
        let rt = runtime(config.ort_library.as_deref())?;
        let sha256 = sha256_hex(&bytes);
        let contract_err = |source| RuntimeError::Contract {
            path: path.to_owned(),
            source,
        };
        let handle = |loaded: Arc<Loaded>| -> Result<Model, RuntimeError> {
            if let Some(role) = role {
                loaded.contract.expect_role(role).map_err(contract_err)?;
            }
            Ok(Model {
                loaded,
                path: path.to_owned(),
            })
        };
        if config.exclusive {
            return handle(Arc::new(Self::build(
                path, bytes, sha256, rt, config, None,
            )?));
        }
        let key = SessionKey {
            sha256: sha256.clone(),
            provider: config.provider,
            device_id: config.device_id,
            threads: config.effective_threads(),
            library: rt.path().to_owned(),
            batch: config.batch,
        };
        // Held while a new session is built, so that two elements starting together
        // build it once.
        let mut reg = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        reg.retain(|_, w| w.strong_count() > 0);
        if let Some(loaded) = reg.get(&key).and_then(Weak::upgrade) {
            drop(reg);
            return handle(loaded);
        }
        let batcher = config.batch.is_on().then(|| Batcher::new(config.batch));
        let loaded = Arc::new(Self::build(path, bytes, sha256, rt, config, batcher)?);
        reg.insert(key, Arc::downgrade(&loaded));
        drop(reg);
        handle(loaded)
    }

    /// Builds a session and checks the model's contract against its graph.
    fn build(
        path: &Path,
        bytes: Vec<u8>,
        sha256: String,
        rt: Arc<Runtime>,
        config: &SessionConfig,
        batcher: Option<Batcher>,
    ) -> Result<Loaded, RuntimeError> {
        let load_err = |e: &dyn fmt::Display| RuntimeError::ModelLoad {
            path: path.to_owned(),
            message: e.to_string(),
        };

        let (session, provider, provider_note) = match config.provider {
            ExecutionProvider::Auto => {
                match build_session(&rt, &bytes, ExecutionProvider::Cuda, config) {
                    Ok(s) => (
                        s,
                        ExecutionProvider::Cuda,
                        "auto: CUDA is available, using it".into(),
                    ),
                    Err(gpu) => {
                        let s = build_session(&rt, &bytes, ExecutionProvider::Cpu, config)
                            .map_err(|e| load_err(&e))?;
                        (
                            s,
                            ExecutionProvider::Cpu,
                            format!("auto: using CPU ({gpu})"),
                        )
                    }
                }
            }
            p => {
                let s = build_session(&rt, &bytes, p, config).map_err(|e| match e {
                    BuildError::Provider(message) => RuntimeError::Provider {
                        provider: p,
                        message,
                    },
                    BuildError::Model(m) => load_err(&m),
                })?;
                (s, p, format!("using {p} as requested"))
            }
        };

        let tensors = |outlets: &[ort::value::Outlet]| -> Vec<TensorInfo> {
            outlets
                .iter()
                .map(|o| TensorInfo {
                    name: o.name().to_owned(),
                    shape: o
                        .dtype()
                        .tensor_shape()
                        .map(|s| s.iter().copied().collect())
                        .unwrap_or_default(),
                })
                .collect()
        };
        let inputs = tensors(session.inputs());
        let outputs = tensors(session.outputs());

        let contract_err = |source| RuntimeError::Contract {
            path: path.to_owned(),
            source,
        };
        let props = read_props(&session).map_err(|e| load_err(&e))?;
        let contract = ModelContract::from_props(&props).map_err(contract_err)?;
        let pairs = |t: &[TensorInfo]| -> Vec<(String, Vec<i64>)> {
            t.iter()
                .map(|t| (t.name.clone(), t.shape.clone()))
                .collect()
        };
        contract
            .check_graph(&pairs(&inputs), &pairs(&outputs))
            .map_err(contract_err)?;

        Ok(Loaded {
            session: Mutex::new(session),
            batcher,
            contract,
            provider,
            sha256,
            inputs,
            outputs,
            runtime: rt,
            provider_note,
        })
    }

    /// The parsed contract.
    pub fn contract(&self) -> &ModelContract {
        &self.loaded.contract
    }

    /// The provider the session runs on (never `Auto`).
    pub fn provider(&self) -> ExecutionProvider {
        self.loaded.provider
    }

    /// One line saying which provider was chosen and why (for the element's log).
    pub fn provider_note(&self) -> &str {
        &self.loaded.provider_note
    }

    /// `name (path), provider note`: what an element logs about the model it loaded.
    pub fn summary(&self) -> String {
        format!(
            "{} ({}), {}",
            self.loaded.contract.name,
            self.path.display(),
            self.loaded.provider_note
        )
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// sha256 of the model file, lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.loaded.sha256
    }

    /// Graph inputs.
    pub fn inputs(&self) -> &[TensorInfo] {
        &self.loaded.inputs
    }

    /// Graph outputs.
    pub fn outputs(&self) -> &[TensorInfo] {
        &self.loaded.outputs
    }

    /// The runtime the session lives in.
    pub fn runtime(&self) -> &Runtime {
        &self.loaded.runtime
    }

    /// Whether this handle shares its session with other handles right now.
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.loaded) > 1
    }

    /// Runs `f` on the underlying `ort` session, for element-specific runs (I/O binding,
    /// typed inputs); other users of a shared session wait meanwhile.
    pub fn with_session<R>(&mut self, f: impl FnOnce(&mut Session) -> R) -> R {
        let mut s = self
            .loaded
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    }

    /// Runs the model on float inputs (by name) and returns every float output by name.
    ///
    /// Every input the graph declares must be given. Outputs that contain NaN or infinity
    /// are returned as they are; callers decide how to mask them.
    pub fn run_f32(
        &mut self,
        inputs: &[(&str, ArrayViewD<'_, f32>)],
    ) -> Result<BTreeMap<String, ArrayD<f32>>, RuntimeError> {
        self.run_f32_with(inputs, |out| {
            out.iter().map(|(k, v)| (k.clone(), v.to_owned())).collect()
        })
    }

    /// [`run_f32`](Self::run_f32) that hands the outputs to `read` as views into ONNX
    /// Runtime's own buffers instead of copying them: for per-frame callers that only
    /// read the outputs once (the face detector's are 150 KB a frame).
    pub fn run_f32_with<R>(
        &mut self,
        inputs: &[(&str, ArrayViewD<'_, f32>)],
        read: impl FnOnce(&BTreeMap<String, ArrayViewD<'_, f32>>) -> R,
    ) -> Result<R, RuntimeError> {
        let name = self.loaded.contract.name.clone();
        let run_err = |m: String| RuntimeError::Run {
            name: name.clone(),
            message: m,
        };
        for want in &self.loaded.inputs {
            let Some((_, arr)) = inputs.iter().find(|(n, _)| *n == want.name) else {
                return Err(run_err(format!("input `{}` not given", want.name)));
            };
            let ok = arr.ndim() == want.shape.len()
                && arr
                    .shape()
                    .iter()
                    .zip(&want.shape)
                    .all(|(&a, &w)| w < 0 || a as i64 == w);
            if !ok {
                return Err(run_err(format!(
                    "input `{}` has shape {:?}, the model wants {:?}",
                    want.name,
                    arr.shape(),
                    want.shape
                )));
            }
        }
        if let Some(batcher) = &self.loaded.batcher
            && let Some(items) = self.batch_items(inputs)
        {
            let loaded = &self.loaded;
            let out = batcher.submit(inputs, items, &|views| {
                loaded.run_direct(views, |out| {
                    out.iter().map(|(k, v)| (k.clone(), v.to_owned())).collect()
                })
            })?;
            let views: BTreeMap<String, ArrayViewD<'_, f32>> =
                out.iter().map(|(k, v)| (k.clone(), v.view())).collect();
            return Ok(read(&views));
        }
        self.loaded.run_direct(inputs, read)
    }

    /// The rows along axis 0 of a request, when it can be batched: every input the graph
    /// declares has a dynamic first axis and every given input has the same length there.
    fn batch_items(&self, inputs: &[(&str, ArrayViewD<'_, f32>)]) -> Option<usize> {
        let dynamic = self
            .loaded
            .inputs
            .iter()
            .all(|t| t.shape.first().is_some_and(|&d| d < 0));
        let first = inputs.first()?.1.shape().first().copied()?;
        (dynamic
            && first > 0
            && inputs
                .iter()
                .all(|(_, a)| a.shape().first() == Some(&first)))
        .then_some(first)
    }
}

impl Loaded {
    /// One session run (the inputs are checked by the caller); `read` sees the outputs
    /// in ONNX Runtime's own buffers.
    fn run_direct<R>(
        &self,
        inputs: &[(&str, ArrayViewD<'_, f32>)],
        read: impl FnOnce(&BTreeMap<String, ArrayViewD<'_, f32>>) -> R,
    ) -> Result<R, RuntimeError> {
        let run_err = |m: String| RuntimeError::Run {
            name: self.contract.name.clone(),
            message: m,
        };
        let mut values: Vec<(String, ort::session::SessionInputValue<'_>)> = Vec::new();
        for (n, arr) in inputs {
            let t = ort::value::TensorRef::from_array_view(arr.view())
                .map_err(|e| run_err(e.to_string()))?;
            values.push(((*n).to_owned(), t.into()));
        }
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let out = session.run(values).map_err(|e| run_err(e.to_string()))?;
        let mut views = BTreeMap::new();
        // by key, not `out.iter()`: the iterator's values are temporaries, and a view
        // must borrow from `out` itself to outlive the loop
        for k in out.keys() {
            let Some(v) = out.get(k) else { continue };
            if let Ok(a) = v.try_extract_array::<f32>() {
                views.insert(k.to_owned(), a);
            }
        }
        Ok(read(&views))
    }
}

fn read_props(session: &Session) -> Result<BTreeMap<String, String>, ort::Error> {
    let meta = session.metadata()?;
    let mut map = BTreeMap::new();
    for key in meta.custom_keys()? {
        if let Some(v) = meta.custom(&key) {
            map.insert(key, v);
        }
    }
    Ok(map)
}

enum BuildError {
    Provider(String),
    Model(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Provider(m) | BuildError::Model(m) => f.write_str(m),
        }
    }
}

fn build_session(
    rt: &Runtime,
    bytes: &[u8],
    provider: ExecutionProvider,
    config: &SessionConfig,
) -> Result<Session, BuildError> {
    let model = |e: ort::Error| BuildError::Model(e.to_string());
    // Spinning worker threads only pay off when there are several of them: with one
    // intra-op thread it just burns a core that other elements of the pipeline need,
    // with more it is what makes the extra threads useful on small models (measured on
    // BlazeFace: 2 threads gave 462 frames/s spinning, 305 without, 304 with 1 thread).
    let threads = config.effective_threads();
    let mut builder = Session::builder(&rt.env)
        .map_err(model)?
        .with_intra_op_spinning(threads != 1)
        .map_err(|e| BuildError::Model(e.to_string()))?;
    if threads > 0 {
        builder = builder
            .with_intra_threads(threads)
            .map_err(|e| BuildError::Model(e.to_string()))?;
    }
    let lib = rt.path().display().to_string();
    let dispatch = match provider {
        ExecutionProvider::Cpu | ExecutionProvider::Auto => None,
        ExecutionProvider::Cuda => {
            if !ort::ep::CUDA::is_available().unwrap_or(false) {
                return Err(BuildError::Provider(format!(
                    "the ONNX Runtime library in use ({lib}, version {}) has no CUDA provider; use the onnxruntime-gpu build (see GPU.md) or execution-provider=cpu",
                    rt.version()
                )));
            }
            Some(
                ort::ep::CUDA::default()
                    .with_device_id(config.device_id)
                    .build()
                    .error_on_failure(),
            )
        }
        ExecutionProvider::TensorRt => {
            if !ort::ep::TensorRT::is_available().unwrap_or(false) {
                return Err(BuildError::Provider(format!(
                    "the ONNX Runtime library in use ({lib}, version {}) has no TensorRT provider; use the onnxruntime-gpu build with TensorRT installed, or execution-provider=cuda/cpu",
                    rt.version()
                )));
            }
            Some(
                ort::ep::TensorRT::default()
                    .with_device_id(config.device_id)
                    .build()
                    .error_on_failure(),
            )
        }
    };
    if let Some(d) = dispatch {
        builder = builder
            .with_execution_providers([d])
            .map_err(|e| BuildError::Provider(e.to_string()))?;
    }
    builder.commit_from_memory(bytes).map_err(|e| {
        if provider == ExecutionProvider::Cpu {
            BuildError::Model(e.to_string())
        } else {
            // With a GPU provider the failure may be the provider's (missing CUDA/cuDNN libraries).
            BuildError::Provider(e.to_string())
        }
    })
}
