//! The [`Sandbox`]: one wasmtime engine configured for deterministic,
//! limited execution, its epoch ticker, and the compiled-module caches.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Linker, Module, PoolingAllocationConfig};

use crate::cache::{DiskCache, Modules, StableHasher};
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
    /// in memory only. It must be this user's own (see
    /// [`crate::fs::ensure_private_dir`]); it is created if missing.
    pub cache_dir: Option<PathBuf>,
    /// Most compiled modules kept in memory; the least recently used goes first.
    pub max_cached_modules: usize,
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
            max_cached_modules: 64,
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
    modules: Mutex<Modules>,
    disk: Option<DiskCache>,
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
        let mut hasher = StableHasher::default();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hasher.hex()[..16].to_owned();
        let linker = capability::linker(&engine)?;
        let ticker = Ticker::start(engine.clone(), config.epoch_tick)?;
        let disk = config.cache_dir.as_deref().map(DiskCache::open).transpose()?;
        Ok(Sandbox {
            shared: Arc::new(Shared {
                engine,
                linker,
                epoch_tick: config.epoch_tick,
                modules: Mutex::new(Modules::new(config.max_cached_modules)),
                config,
                engine_key,
                disk,
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
        let name = format!("python-snapshot-{}.wasm", hex::encode(runtime.snapshot_key));
        if let Some(wasm) = self.shared.disk.as_ref().and_then(|d| d.read(&name)) {
            let digest: [u8; 32] = Sha256::digest(&wasm).into();
            if let Ok(module) = self.compiled(&wasm, &digest) {
                return Ok((module, wasm));
            }
        }
        let wasm = crate::runtime::python::make_snapshot(runtime)?;
        if let Some(disk) = &self.shared.disk {
            disk.write(&name, &wasm);
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
    /// as the guest's `/data` (a directory found there is used only when it
    /// holds exactly the package's files). `data_root` must be this user's
    /// own (see [`crate::fs::ensure_private_dir`]).
    pub fn load_package(&self, package: &Package, data_root: &Path) -> Result<EnvModule, SandboxError> {
        crate::fs::ensure_private_dir(data_root).map_err(|e| SandboxError::Host(format!("package data: {e}")))?;
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

    /// Removes what loading `package` left on this host: its unpacked data
    /// and sources under `data_root`, and its compiled module (or image) in
    /// memory and in the cache directory. For packages that were refused
    /// (a hub's failed self-test), so that rejected uploads leave nothing.
    pub fn forget_package(&self, package: &Package, data_root: &Path) {
        let digest = hex::encode(package.digest);
        let _ = std::fs::remove_dir_all(data_root.join(&digest));
        let _ = std::fs::remove_dir_all(data_root.join(format!("{digest}.env")));
        let key: [u8; 32] = if package.manifest.is_python() {
            let Ok(host) = self.code_host() else { return };
            let source = crate::module::import_source(&crate::module::sources_digest(&package.python));
            host.image_key(&source, &package.digest)
        } else {
            Sha256::digest(&package.module).into()
        };
        if let Ok(mut modules) = self.shared.modules.lock() {
            modules.remove(&key);
        }
        if let Some(disk) = &self.shared.disk {
            disk.remove(&self.cache_name(&key));
        }
    }

    /// How many compiled modules are held in memory.
    pub fn modules_in_memory(&self) -> usize {
        self.shared.modules.lock().map(|m| m.len()).unwrap_or(0)
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
        if let Some(m) = self.shared.modules.lock().ok().and_then(|mut m| m.get(key)) {
            return Ok(m);
        }
        let module = match &self.shared.disk {
            Some(disk) => self.compiled_on_disk(disk, key, make)?,
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
        disk: &DiskCache,
        key: &[u8; 32],
        make: impl FnOnce() -> Result<Cow<'a, [u8]>, SandboxError>,
    ) -> Result<Module, SandboxError> {
        let name = self.cache_name(key);
        if let Some(path) = disk.verified(&name) {
            // SAFETY: the file is one this user's sandbox wrote (the cache
            // directory is this user's alone, checked on start) and still
            // holds the bytes written (its digest was checked just now); the
            // name binds the module and the engine's compatibility hash.
            if let Ok(m) = unsafe { Module::deserialize_file(&self.shared.engine, &path) } {
                return Ok(m);
            }
        }
        let module = self.compile(&make()?)?;
        if let Ok(bytes) = module.serialize() {
            disk.write(&name, &bytes);
        }
        Ok(module)
    }

    /// The cache file name of the compiled module `key`.
    fn cache_name(&self, key: &[u8; 32]) -> String {
        format!("{}-{}.cwasm", hex::encode(key), self.shared.engine_key)
    }
}
