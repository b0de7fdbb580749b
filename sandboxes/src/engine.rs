//! The [`Sandbox`]: one wasmtime engine configured for deterministic,
//! limited execution, its epoch ticker, and the compiled-module caches.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig};

use crate::limits::HostMaxima;
use crate::module::{EnvModule, LoadOptions};
use crate::package::{Package, unpack_data};
use crate::runtime::HostState;
use crate::runtime::python::{CodeConfig, CodeHost};
use crate::{SandboxError, capability};
use envhub_sdk::host::{CodeResult, RunCode};

/// How a [`Sandbox`] is set up.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// The most any module may ask for.
    pub maxima: HostMaxima,
    /// Instances that may run at once (pooling allocator slots).
    pub max_concurrent_calls: u32,
    /// Where compiled modules are kept between processes; `None` keeps them
    /// in memory only.
    pub cache_dir: Option<PathBuf>,
    /// How often the wall-clock backstop is checked.
    pub epoch_tick: Duration,
    /// Use the pooling allocator (fast instantiation). If the OS refuses the
    /// address-space reservation, the sandbox falls back to on-demand allocation.
    pub pooling: bool,
    /// The Python runtime and the limits of code runs (capability `code:python`).
    pub code: CodeConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            maxima: HostMaxima::default(),
            max_concurrent_calls: 128,
            cache_dir: None,
            epoch_tick: Duration::from_millis(10),
            pooling: true,
            code: CodeConfig::default(),
        }
    }
}

/// Runs untrusted environment modules. Cheap to clone; one `Sandbox` serves
/// concurrent calls from many threads.
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    pub config: SandboxConfig,
    /// Hex hash of everything that makes a compiled module valid for this engine.
    engine_key: String,
    modules: Mutex<HashMap<[u8; 32], Module>>,
    /// The Python runtime, loaded on first use.
    python: Mutex<Option<Arc<CodeHost>>>,
    pub epoch_tick: Duration,
    _ticker: Ticker,
}

/// Advances the engine's epoch every tick until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> Result<Ticker, SandboxError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("envhub-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| SandboxError::Host(format!("cannot start the epoch thread: {e}")))?;
        Ok(Ticker { stop })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Bytes of written memory a pooling slot keeps resident between instances
/// when the kernel scans for written pages.
const KEEP_RESIDENT_SCANNED: usize = 16 << 20;

fn engine_config(config: &SandboxConfig, pooling: bool) -> Config {
    let mut c = Config::new();
    c.consume_fuel(true)
        .epoch_interruption(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .max_wasm_stack(1 << 20)
        .parallel_compilation(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        // Where the kernel can tell which pages an instance wrote (Linux
        // 6.7+), a slot's next instance finds them resident, reset to the
        // module's image: no page faults where the last call wrote, and a
        // Python call writes megabytes. Elsewhere keeping memory resident
        // means resetting all of it on every call, so little is kept.
        let keep_resident = if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(wasmtime::Enabled::Yes);
            KEEP_RESIDENT_SCANNED
        } else {
            64 << 10
        };
        let n = config.max_concurrent_calls.max(1);
        pool.total_core_instances(n)
            .total_memories(n)
            .total_tables(n)
            .max_memory_size(usize::try_from(config.maxima.memory_bytes).unwrap_or(usize::MAX))
            .table_elements(usize::try_from(config.maxima.table_elements).unwrap_or(usize::MAX))
            .linear_memory_keep_resident(keep_resident)
            .table_keep_resident(16 << 10);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

impl Sandbox {
    /// Creates a sandbox with its own engine and epoch thread.
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        if config.epoch_tick.is_zero() {
            return Err(SandboxError::Host("epoch_tick must be positive".into()));
        }
        let engine = match Engine::new(&engine_config(&config, config.pooling)) {
            Ok(engine) => engine,
            Err(_) if config.pooling => Engine::new(&engine_config(&config, false))
                .map_err(|e| SandboxError::Host(format!("cannot create the wasmtime engine: {e}")))?,
            Err(e) => return Err(SandboxError::Host(format!("cannot create the wasmtime engine: {e}"))),
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());
        let linker = capability::linker(&engine)?;
        let ticker = Ticker::start(engine.clone(), config.epoch_tick)?;
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| SandboxError::Host(format!("cannot create module cache {}: {e}", dir.display())))?;
        }
        Ok(Sandbox {
            shared: Arc::new(Shared {
                engine,
                linker,
                epoch_tick: config.epoch_tick,
                config,
                engine_key,
                modules: Mutex::new(HashMap::new()),
                python: Mutex::new(None),
                _ticker: ticker,
            }),
        })
    }

    /// The configuration this sandbox was created with.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// Compiles (or takes from the caches) `wasm`, checks its imports against
    /// the declared capabilities, and prepares it for fast instantiation.
    pub fn load(&self, wasm: &[u8], options: LoadOptions) -> Result<EnvModule, SandboxError> {
        options.limits.check(&self.shared.config.maxima).map_err(SandboxError::InvalidLimits)?;
        if let Some(dir) = &options.data_dir
            && !dir.is_dir()
        {
            return Err(SandboxError::Host(format!("data directory {} does not exist", dir.display())));
        }
        let digest: [u8; 32] = Sha256::digest(wasm).into();
        let module = self.compiled(wasm, &digest)?;
        let code = if options.capabilities.iter().any(|c| c == "code:python") { Some(self.code_host()?) } else { None };
        EnvModule::new(&self.shared.linker, self.shared.epoch_tick, module, digest, options, code)
    }

    /// The Python runtime of `run_code`: read and checked against its pinned
    /// sha256s, snapshotted after initialisation (or the snapshot taken from
    /// the cache directory), compiled (or taken from the module caches) and
    /// pre-linked, once.
    pub(crate) fn code_host(&self) -> Result<Arc<CodeHost>, SandboxError> {
        let mut slot =
            self.shared.python.lock().map_err(|_| SandboxError::Host("python runtime lock poisoned".into()))?;
        if let Some(host) = slot.as_ref() {
            return Ok(host.clone());
        }
        let runtime = crate::runtime::python::read_runtime(&self.shared.config.code)?;
        let (module, snapshot) = self.python_snapshot(&runtime)?;
        let pre = self
            .shared
            .linker
            .instantiate_pre(&module)
            .map_err(|e| SandboxError::Host(format!("cannot link the python runtime: {e:#}")))?;
        let host = Arc::new(CodeHost {
            pre,
            snapshot,
            snapshot_key: runtime.snapshot_key,
            lib_dir: runtime.lib_dir().to_path_buf(),
            limits: self.shared.config.code.limits,
            epoch_tick: self.shared.epoch_tick,
            setups: Mutex::new(HashMap::new()),
            empty: tempfile::Builder::new()
                .prefix("envhub-empty-")
                .tempdir()
                .map_err(|e| SandboxError::Host(format!("cannot create an empty directory: {e}")))?,
        });
        *slot = Some(host.clone());
        Ok(host)
    }

    /// The snapshot of `runtime`, compiled and as wasm: from the cache
    /// directory when it holds one for the same inputs (and it compiles),
    /// otherwise made now and stored there.
    fn python_snapshot(&self, runtime: &crate::runtime::python::Runtime) -> Result<(Module, Vec<u8>), SandboxError> {
        let cached = self
            .shared
            .config
            .cache_dir
            .as_ref()
            .map(|dir| dir.join(format!("python-snapshot-{}.wasm", hex::encode(runtime.snapshot_key))));
        if let Some(path) = &cached
            && let Ok(wasm) = std::fs::read(path)
        {
            let digest: [u8; 32] = Sha256::digest(&wasm).into();
            if let Ok(module) = self.compiled(&wasm, &digest) {
                return Ok((module, wasm));
            }
        }
        let wasm = crate::runtime::python::make_snapshot(runtime)?;
        if let Some(path) = &cached {
            write_cache_file(path, &wasm);
        }
        let digest: [u8; 32] = Sha256::digest(&wasm).into();
        Ok((self.compiled(&wasm, &digest)?, wasm))
    }

    /// Runs one program in a fresh nested sandbox, as the `run_code`
    /// capability does for a guest (host-side entry point for tools, tests
    /// and benchmarks). Its random stream is seeded from the request, and its
    /// fuel is capped by the configured maximum only. A refused request (bad
    /// language, bad file paths) is [`SandboxError::Guest`].
    pub fn run_code(&self, request: &RunCode) -> Result<CodeResult, SandboxError> {
        let host = self.code_host()?;
        let bytes =
            serde_json::to_vec(request).map_err(|e| SandboxError::Host(format!("cannot encode request: {e}")))?;
        let seed: [u8; 32] = Sha256::digest(&bytes).into();
        crate::runtime::python::run(&host, request, &seed, u64::MAX).map_err(SandboxError::Guest)
    }

    /// Reads a `.wasm` file and [`load`](Sandbox::load)s it.
    pub fn load_file(&self, path: &Path, options: LoadOptions) -> Result<EnvModule, SandboxError> {
        let wasm = std::fs::read(path)
            .map_err(|e| SandboxError::InvalidModule(format!("cannot read {}: {e}", path.display())))?;
        self.load(&wasm, options)
    }

    /// Loads a package: its module under its manifest's limits and
    /// capabilities, with its data files unpacked under `data_root/<digest>`
    /// as the guest's `/data`.
    pub fn load_package(&self, package: &Package, data_root: &Path) -> Result<EnvModule, SandboxError> {
        if package.manifest.is_python() {
            return self.load_python_package(package, data_root);
        }
        let data_dir = if package.data.is_empty() {
            None
        } else {
            let dir = data_root.join(hex::encode(package.digest));
            unpack_data(package, &dir)?;
            Some(dir)
        };
        let options = LoadOptions {
            limits: package.manifest.limits,
            capabilities: package.manifest.package.capabilities.clone(),
            data_dir,
        };
        self.load(&package.module, options)
    }

    /// A Python package: its sources unpacked under `data_root/<digest>.env`
    /// (the guest's `/env`), imported once into an image of the runtime,
    /// which is compiled and cached like any module.
    fn load_python_package(&self, package: &Package, data_root: &Path) -> Result<EnvModule, SandboxError> {
        let p = &package.manifest.package;
        let pinned = p.runtime_sha256.as_deref() == Some(crate::PYTHON_WASM_SHA256);
        if !pinned && !self.shared.config.code.unpinned_allowed() {
            return Err(SandboxError::InvalidModule(format!(
                "{} was built for Python runtime sha256 {}, but this host runs {} ({}); rebuild it with this envhub",
                p.name,
                p.runtime_sha256.as_deref().unwrap_or("(none)"),
                crate::package::PYTHON_RUNTIME,
                crate::PYTHON_WASM_SHA256
            )));
        }
        let digest = hex::encode(package.digest);
        let env_dir = data_root.join(format!("{digest}.env"));
        crate::package::unpack_python(package, &env_dir)?;
        let data_dir = if package.data.is_empty() {
            None
        } else {
            let dir = data_root.join(&digest);
            unpack_data(package, &dir)?;
            Some(dir)
        };
        let sources = crate::module::sources_digest(&package.python);
        let host = self.code_host()?;
        let source = crate::module::import_source(&sources);
        let key = host.image_key(&source, &package.digest);
        let module = self.compiled_with(&key, || {
            let image = host.image(&source, Some(&env_dir), data_dir.as_deref());
            image.map(Cow::Owned).map_err(crate::module::import_failed)
        })?;
        let image = self
            .shared
            .linker
            .instantiate_pre(&module)
            .map_err(|e| SandboxError::Host(format!("cannot link the image of {}: {e:#}", p.name)))?;
        let guest = crate::module::PythonGuest::new(host, image, env_dir, data_dir.clone());
        let options = LoadOptions {
            limits: package.manifest.limits,
            capabilities: package.manifest.package.capabilities.clone(),
            data_dir,
        };
        options.limits.check(&self.shared.config.maxima).map_err(SandboxError::InvalidLimits)?;
        Ok(EnvModule::python(guest, sources, options))
    }

    /// `wasm` (whose sha256 is `digest`), compiled or from the caches.
    fn compiled(&self, wasm: &[u8], digest: &[u8; 32]) -> Result<Module, SandboxError> {
        self.compiled_with(digest, || Ok(Cow::Borrowed(wasm)))
    }

    /// The module `key` names (a digest of the module or of everything it
    /// is made from), from the caches, or `make` compiled and kept there.
    fn compiled_with<'a>(
        &self,
        key: &[u8; 32],
        make: impl FnOnce() -> Result<Cow<'a, [u8]>, SandboxError>,
    ) -> Result<Module, SandboxError> {
        if let Some(m) = self.shared.modules.lock().ok().and_then(|m| m.get(key).cloned()) {
            return Ok(m);
        }
        let module = match &self.shared.config.cache_dir {
            Some(dir) => self.compiled_on_disk(dir, key, make)?,
            None => self.compile(&make()?)?,
        };
        if let Ok(mut modules) = self.shared.modules.lock() {
            modules.insert(*key, module.clone());
        }
        Ok(module)
    }

    fn compile(&self, wasm: &[u8]) -> Result<Module, SandboxError> {
        Module::new(&self.shared.engine, wasm).map_err(|e| SandboxError::InvalidModule(format!("{e:#}")))
    }

    fn compiled_on_disk<'a>(
        &self,
        dir: &Path,
        key: &[u8; 32],
        make: impl FnOnce() -> Result<Cow<'a, [u8]>, SandboxError>,
    ) -> Result<Module, SandboxError> {
        let path = dir.join(format!("{}-{}.cwasm", hex::encode(key), self.shared.engine_key));
        if path.is_file() {
            // SAFETY: only files this code wrote are read: the name binds the
            // module digest and the engine's compatibility hash, and files are
            // renamed into place only once complete.
            if let Ok(m) = unsafe { Module::deserialize_file(&self.shared.engine, &path) } {
                return Ok(m);
            }
        }
        let module = self.compile(&make()?)?;
        if let Ok(bytes) = module.serialize() {
            write_cache_file(&path, &bytes);
        }
        Ok(module)
    }
}

/// Writes a cache file (see [`crate::fs::write_atomic`]). The caches are an
/// optimisation, so failing to write is not an error.
fn write_cache_file(path: &Path, bytes: &[u8]) {
    let _ = crate::fs::write_atomic(path, bytes);
}
