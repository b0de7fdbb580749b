//! The pinned Python runtime: CPython 3.11 for WASI, which runs the programs
//! of the capability `run_code` (`code:python`) and Python environments.
//!
//! A program runs in a fresh nested sandbox: its own [`wasmtime::Store`] and
//! instance of the pinned CPython for WASI, on the same engine (so the same
//! fuel accounting, NaN canonicalisation and compiled-module caches), with
//! its own fuel, memory and output limits and a wall-clock backstop.
//!
//! The runtime (`runtimes/python/`, built from source by
//! `scripts/build-python.sh`) is CPython 3.11 linked as a WASI reactor with
//! two exports, `envhub_init` and `envhub_run` (`envhub_python.c`), and its
//! standard library in `lib/python311.zip`. On first use the host runs
//! `envhub_init` once with the init script `runtimes/python/init.py` (which
//! starts the interpreter and imports the modules checks commonly use) and
//! snapshots the result ([`crate::snapshot`]); every run is a fresh instance
//! of that snapshot, so it starts with the interpreter initialised, from a
//! copy-on-write memory image, and calls `envhub_run`. The snapshot is cached
//! on disk beside the compiled modules, keyed by everything it depends on.
//!
//! A request's `setup` (code many runs share) runs once per host through
//! `envhub_setup`; the 4 KiB pages and globals it changed are kept (in
//! memory, by sha256 of the source) and written into each fresh instance of
//! a run with the same setup before `envhub_run`, so the run starts as the
//! setup left it without compiling it again. The fuel the setup took is kept
//! with it and charged to every run that uses it, made now or taken from the
//! cache alike (see "Fuel" below). A Python
//! environment's import is a setup too, but kept as an image: the snapshot
//! written again where the setup left it ([`CodeHost::image`]), a module of
//! its own that the engine compiles and caches, so its calls start from its
//! copy-on-write memory and copy nothing.
//!
//! The nested world is deterministic like the caller's: fixed clocks, random
//! bytes seeded from the request (the `random` module is reseeded from them
//! at the start of each run), no network, no arguments but the program, and
//! the environment variables `PYTHONHASHSEED=0`, `PYTHONDONTWRITEBYTECODE=1`
//! and `PYTHONUTF8=1` only. The standard library is read-only at
//! `/usr/local/lib`; the request's files are written to a fresh temporary
//! directory, shown read-write as `/work` (the program's working directory
//! and first `sys.path` entry) and deleted after the run. A Python
//! environment's sources are read-only at `/env` and its data at `/data`
//! (both empty for `run_code` programs); its calls keep their state in the
//! request, so their `/work` is empty and read-only.
//!
//! Fuel: a run gets at most the least of what it asks for, the host's
//! maximum and the fuel its caller has left; what it uses is then taken from
//! the caller's fuel, so an environment call's fuel limit bounds everything
//! it runs. A run's setup is part of it: the setup runs within the run's
//! fuel, and its fuel is charged first, so a setup that costs the run's
//! fuel or more ends the run out of fuel before the program starts, and a
//! run's `fuel_used` (and whatever its caller computes from it) is the same
//! whether its setup was made for it or found prepared.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use envhub_sdk::EnvError;
use envhub_sdk::host::{CodeResult, LimitHit, RunCode};
use sha2::{Digest, Sha256};
use wasmtime::{Instance, InstancePre, Memory, Mutability, Store, Trap, Val};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use super::wasi_fs::FsState;
use super::{HostState, Limiter};
use crate::SandboxError;
use crate::wasi::{FixedMonotonicClock, FixedWallClock, SeededRandom};

/// sha256 of the only `python.wasm` this host runs: CPython 3.11.2 for WASI
/// as `scripts/build-python.sh` builds it (Debian 12's clang 16 and
/// wasi-libc, -O2, reactor with `envhub_python.c`). Rewards are reproducible
/// only on one runtime, so any other file is refused unless
/// [`CodeConfig::allow_unpinned`] is set.
pub const PYTHON_WASM_SHA256: &str = "8f91b1907a724125ec4fb800faebe1dc7ebcd6a73dabe471b4d5fda03f7f478f";

/// sha256 of the standard library `lib/python311.zip` built with it.
pub const STDLIB_ZIP_SHA256: &str = "77cdf6987a5291ef7b315886d30935080ed9bc41321b7945d46f163ec6af8fa3";

/// The script `envhub_init` runs before the snapshot (defines `run`).
const INIT_PY: &str = include_str!("../../runtimes/python/init.py");

/// Changes when the snapshot is made differently in a way its inputs
/// (runtime files, init script) do not show; part of the cache key.
// 3: made under the host-independent file view of `wasi_fs` (stat
// results the interpreter keeps, such as directory times, come from it).
const SNAPSHOT_FORMAT: &[u8] = b"envhub-python-snapshot-3";

/// Where the standard library directory appears in the guest.
const STDLIB_GUEST_DIR: &str = "/usr/local/lib";

/// Where a Python environment's sources appear in the guest.
pub(crate) const ENV_GUEST_DIR: &str = "/env";

/// Where a package's data files appear in the guest.
pub(crate) const DATA_GUEST_DIR: &str = "/data";

/// Most files one request may create.
const MAX_FILES: usize = 1000;

/// Limits of nested runs: what a run gets when it asks for nothing, and the
/// most it may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeLimitsConfig {
    /// Default fuel of a run.
    pub default_fuel: u64,
    /// Most fuel of a run.
    pub max_fuel: u64,
    /// Default memory of a run, in bytes.
    pub default_memory_bytes: u64,
    /// Most memory of a run, in bytes.
    pub max_memory_bytes: u64,
    /// Default bytes kept of stdout and of stderr (each).
    pub default_output_bytes: u64,
    /// Most bytes kept of stdout and of stderr (each).
    pub max_output_bytes: u64,
    /// Wall-clock backstop of one run, in milliseconds.
    pub deadline_ms: u64,
    /// Bytes a run may keep in its `/work` (its files, the request's
    /// included), counted as [`crate::runtime::wasi_fs`] describes: each
    /// file's size in whole 4 KiB blocks, plus a little per name and per
    /// directory. A write, truncation or new name past it fails in the
    /// program with `EDQUOT` (in Python an `OSError` whose `errno` is
    /// `errno.EDQUOT`) and changes nothing; the host is not affected.
    pub disk_quota_bytes: u64,
}

impl Default for CodeLimitsConfig {
    fn default() -> Self {
        CodeLimitsConfig {
            default_fuel: 10_000_000_000,
            max_fuel: 200_000_000_000,
            default_memory_bytes: 256 << 20,
            max_memory_bytes: 1 << 30,
            default_output_bytes: 1 << 20,
            max_output_bytes: 16 << 20,
            deadline_ms: 60_000,
            disk_quota_bytes: 64 << 20,
        }
    }
}

/// Where the Python runtime is and how nested runs are limited.
#[derive(Clone, Debug, Default)]
pub struct CodeConfig {
    /// The directory with `python.wasm` and `lib/python311.zip`; `None`
    /// looks in `$ENVHUB_PYTHON_RUNTIME`, then in this crate's
    /// `runtimes/python` (where `scripts/build-python.sh` puts them).
    pub runtime_dir: Option<PathBuf>,
    /// Run a runtime whose files do not have the pinned sha256s (a build
    /// with another toolchain): its rewards are reproducible only with that
    /// build. `ENVHUB_PYTHON_UNPINNED=1` sets it too.
    pub allow_unpinned: bool,
    /// Limits of nested runs.
    pub limits: CodeLimitsConfig,
}

impl CodeConfig {
    /// The runtime directory this configuration names.
    pub fn runtime_path(&self) -> PathBuf {
        if let Some(p) = &self.runtime_dir {
            return p.clone();
        }
        if let Some(p) = std::env::var_os("ENVHUB_PYTHON_RUNTIME") {
            return PathBuf::from(p);
        }
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runtimes/python")
    }

    pub(crate) fn unpinned_allowed(&self) -> bool {
        self.allow_unpinned || std::env::var_os("ENVHUB_PYTHON_UNPINNED").is_some_and(|v| v == "1")
    }
}

/// The runtime's files, checked, and the key of the snapshot made from them.
pub(crate) struct Runtime {
    wasm: Vec<u8>,
    lib_dir: PathBuf,
    /// sha256 over everything the snapshot depends on.
    pub snapshot_key: [u8; 32],
}

/// Reads the runtime named by `config` and checks it against the pins.
pub(crate) fn read_runtime(config: &CodeConfig) -> Result<Runtime, SandboxError> {
    let dir = config.runtime_path();
    let (wasm_path, lib_dir) = (dir.join("python.wasm"), dir.join("lib"));
    let zip_path = lib_dir.join("python311.zip");
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| {
            SandboxError::Host(format!(
                "capability `code:python` needs the CPython runtime file {}: {e}; run scripts/build-python.sh",
                p.display()
            ))
        })
    };
    let wasm = read(&wasm_path)?;
    let wasm_sha: [u8; 32] = Sha256::digest(&wasm).into();
    let zip_sha: [u8; 32] = Sha256::digest(read(&zip_path)?).into();
    if !config.unpinned_allowed() {
        for (path, got, pinned) in [(&wasm_path, wasm_sha, PYTHON_WASM_SHA256), (&zip_path, zip_sha, STDLIB_ZIP_SHA256)]
        {
            let got = hex::encode(got);
            if got != pinned {
                return Err(SandboxError::Host(format!(
                    "{} has sha256 {got}, not the pinned {pinned}; rebuild it with scripts/build-python.sh \
                     (or set ENVHUB_PYTHON_UNPINNED=1 to run a build from another toolchain)",
                    path.display()
                )));
            }
        }
    }
    let mut key = Sha256::new();
    for part in [SNAPSHOT_FORMAT, &wasm_sha, &zip_sha, INIT_PY.as_bytes()] {
        key.update((part.len() as u64).to_le_bytes());
        key.update(part);
    }
    Ok(Runtime { wasm, lib_dir, snapshot_key: key.finalize().into() })
}

/// Starts the interpreter once and snapshots it: the module every run
/// instantiates. Runs on an engine of its own without fuel (the init script
/// is ours) and with a cheaper compile, since its code runs once.
pub(crate) fn make_snapshot(runtime: &Runtime) -> Result<Vec<u8>, SandboxError> {
    let mut config = wasmtime::Config::new();
    config
        .cranelift_opt_level(wasmtime::OptLevel::None)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .max_wasm_stack(1 << 20);
    let engine = wasmtime::Engine::new(&config)
        .map_err(|e| SandboxError::Host(format!("cannot create the snapshot engine: {e}")))?;
    let linker = super::wasi_linker(&engine)?;
    let work = tempfile::Builder::new()
        .prefix("envhub-code-init-")
        .tempdir()
        .map_err(|e| SandboxError::Host(format!("cannot create a work directory: {e}")))?;
    let cap = 1 << 20;
    let (stdout, stderr) = (MemoryOutputPipe::new(cap), MemoryOutputPipe::new(cap));
    let dirs =
        Dirs { lib: &runtime.lib_dir, work: work.path(), work_writable: true, env: work.path(), data: work.path() };
    let wasi = nested_wasi(&["python", INIT_PY], Vec::new(), (stdout, stderr.clone()), &dirs, &[0; 32])
        .map_err(|e| SandboxError::Host(e.message))?;
    let state = HostState { wasi, limiter: Limiter::new(1 << 30, 1_000_000), code: None, fs: FsState::default() };
    let mut store = Store::new(&engine, state);
    store.limiter(|s| &mut s.limiter);
    crate::snapshot::snapshot(&mut store, &linker, &runtime.wasm, "envhub_init", |_| {
        String::from_utf8_lossy(&stderr.contents()).into_owned()
    })
}

/// The Python runtime, ready to instantiate, the limits of its runs and the
/// setups it has prepared.
pub(crate) struct CodeHost {
    pub pre: InstancePre<HostState>,
    /// The snapshot `pre` instantiates, as wasm, for [`CodeHost::image`].
    pub snapshot: Vec<u8>,
    /// What the snapshot was made from (see [`read_runtime`]).
    pub snapshot_key: [u8; 32],
    pub lib_dir: PathBuf,
    pub limits: CodeLimitsConfig,
    pub epoch_tick: Duration,
    /// Prepared setups by sha256 of their source; at most [`MAX_SETUPS`].
    pub setups: Mutex<HashMap<[u8; 32], Arc<Setup>>>,
    /// An empty directory: `/env` and `/data` of programs that have none.
    pub empty: tempfile::TempDir,
}

/// An instance a setup ran in, and its memory as it was before.
struct SetupRun {
    /// Fuel the setup took.
    fuel_used: u64,
    store: Store<HostState>,
    instance: Instance,
    memory: Memory,
    before: Vec<u8>,
}

/// Changes when images are made differently; part of their key.
const IMAGE_FORMAT: &[u8] = b"envhub-python-image-1";

/// Most setups a host keeps; when full, the cache starts over (a setup is
/// remade on its next use, with the same result).
const MAX_SETUPS: usize = 32;

/// Granularity at which a setup's memory changes are kept.
const SETUP_PAGE: usize = 4096;

/// What a request's `setup` changed in the initialised interpreter: applied
/// to a fresh instance of the snapshot, it starts as the setup left it.
pub(crate) struct Setup {
    /// Fuel the setup took; every run starting from it is charged this.
    fuel_used: u64,
    memory_len: usize,
    /// Runs of changed pages, as (offset, bytes).
    pages: Vec<(usize, Vec<u8>)>,
    /// Every mutable global, by export name, as the setup left it.
    globals: Vec<(String, Val)>,
}

impl CodeHost {
    /// A store for one nested instance with these limits and deadline.
    fn store(
        &self,
        wasi: WasiP1Ctx,
        fs: FsState,
        memory: u64,
        fuel: u64,
        deadline_ms: u64,
    ) -> Result<Store<HostState>, EnvError> {
        let state = HostState { wasi, limiter: Limiter::new(memory, 1_000_000), code: None, fs };
        let mut store = Store::new(self.pre.module().engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(fuel).map_err(|e| EnvError::internal(format!("run_code: cannot set fuel: {e}")))?;
        let tick_ms = u64::try_from(self.epoch_tick.as_millis()).unwrap_or(u64::MAX).max(1);
        store.set_epoch_deadline(deadline_ms.div_ceil(tick_ms).max(1));
        Ok(store)
    }

    /// The prepared `source`, run with `env` and `data` as `/env` and `/data`
    /// (the source must name what it depends on, e.g. a package digest,
    /// since it is the cache key), for a run with `fuel`: from the cache, or
    /// made now within `fuel`. `None` when the setup takes `fuel` or more,
    /// decided the same way in both cases: a setup that ran out of `fuel`,
    /// or used all of it (wasmtime checks fuel at calls and loops only, so a
    /// run that ends with none left may have needed more), is not kept.
    pub(crate) fn setup(
        &self,
        source: &str,
        env: Option<&Path>,
        data: Option<&Path>,
        fuel: u64,
    ) -> Result<Option<Arc<Setup>>, EnvError> {
        let key: [u8; 32] = Sha256::digest(source.as_bytes()).into();
        if let Some(setup) = self.setups.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok((setup.fuel_used < fuel).then_some(setup));
        }
        let Some(setup) = self.make_setup(source, env, data, fuel)? else { return Ok(None) };
        let setup = Arc::new(setup);
        if let Ok(mut setups) = self.setups.lock() {
            if setups.len() >= MAX_SETUPS {
                setups.clear();
            }
            setups.insert(key, setup.clone());
        }
        Ok((setup.fuel_used < fuel).then_some(setup))
    }

    /// Runs `source` through `envhub_setup` in a fresh instance (default
    /// memory, `fuel`, no stdin, no files, fixed random bytes) and keeps what
    /// it changed; `None` if it ran out of fuel.
    fn make_setup(
        &self,
        source: &str,
        env: Option<&Path>,
        data: Option<&Path>,
        fuel: u64,
    ) -> Result<Option<Setup>, EnvError> {
        let Some(mut run) = self.run_setup(source, env, data, fuel)? else { return Ok(None) };
        let pages = changed_pages(&run.before, run.memory.data(&run.store));
        let mut globals = Vec::new();
        for export in self.pre.module().exports() {
            let name = export.name();
            if name.starts_with(crate::snapshot::GLOBAL_EXPORT)
                && let Some(global) = run.instance.get_global(&mut run.store, name)
                && global.ty(&run.store).mutability() == Mutability::Var
            {
                globals.push((name.to_owned(), global.get(&mut run.store)));
            }
        }
        Ok(Some(Setup { fuel_used: run.fuel_used, memory_len: run.memory.data_size(&run.store), pages, globals }))
    }

    /// The snapshot `source` leaves, run as a setup, as a module of its own
    /// (see [`crate::snapshot::resnapshot`]): a Python environment's import.
    /// Its instances must be given `env` and `data` as the run was.
    /// It runs with the default fuel of a run, charged to no call: it is
    /// the package's load, made once per host like a compiled module.
    pub(crate) fn image(&self, source: &str, env: Option<&Path>, data: Option<&Path>) -> Result<Vec<u8>, EnvError> {
        let Some(mut run) = self.run_setup(source, env, data, self.limits.default_fuel)? else {
            return Err(EnvError::bad_request(format!(
                "run_code setup failed: out of fuel (more than {} instructions)",
                self.limits.default_fuel
            )));
        };
        crate::snapshot::resnapshot(&self.snapshot, &mut run.store, &run.instance, run.memory, &["envhub_setup"])
            .map_err(|e| EnvError::internal(e.to_string()))
    }

    /// Names everything [`CodeHost::image`] of `source` depends on beside
    /// the files it reads, which `package` (a digest over them) names.
    pub(crate) fn image_key(&self, source: &str, package: &[u8; 32]) -> [u8; 32] {
        let mut key = Sha256::new();
        for part in [IMAGE_FORMAT, &self.snapshot_key, package, source.as_bytes()] {
            key.update((part.len() as u64).to_le_bytes());
            key.update(part);
        }
        key.finalize().into()
    }

    /// Runs `source` through `envhub_setup` in a fresh instance (default
    /// memory, `fuel`, no stdin, no files, fixed random bytes); `None` if it
    /// ran out of fuel or used all of it.
    fn run_setup(
        &self,
        source: &str,
        env: Option<&Path>,
        data: Option<&Path>,
        fuel: u64,
    ) -> Result<Option<SetupRun>, EnvError> {
        let failed = |why: String| EnvError::bad_request(format!("run_code setup failed: {why}"));
        let work = tempfile::Builder::new()
            .prefix("envhub-code-setup-")
            .tempdir()
            .map_err(|e| EnvError::internal(format!("run_code: cannot create a work directory: {e}")))?;
        let (stdout, stderr) = (MemoryOutputPipe::new(1 << 20), MemoryOutputPipe::new(1 << 20));
        let dirs = self.dirs(Some(work.path()), env, data);
        let wasi = nested_wasi(&["python", source], Vec::new(), (stdout, stderr.clone()), &dirs, &[0; 32])?;
        let fs = FsState::with_quota(self.limits.disk_quota_bytes, []);
        let mut store = self.store(wasi, fs, self.limits.default_memory_bytes, fuel, self.limits.deadline_ms)?;
        let instance = self.pre.instantiate(&mut store).map_err(|e| failed(format!("{e:#}")))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| EnvError::internal("run_code: the python runtime exports no memory"))?;
        let before = memory.data(&store).to_vec();
        let status =
            instance.get_typed_func::<(), i32>(&mut store, "envhub_setup").and_then(|f| f.call(&mut store, ()));
        let left = store.get_fuel().unwrap_or(0);
        let status = match status {
            Err(e) if matches!(e.downcast_ref::<Trap>(), Some(Trap::OutOfFuel)) => return Ok(None),
            Err(e) => return Err(failed(format!("{e:#}"))),
            Ok(_) if left == 0 => return Ok(None),
            Ok(status) => status,
        };
        if status != 0 {
            return Err(failed(String::from_utf8_lossy(&stderr.contents()).into_owned()));
        }
        Ok(Some(SetupRun { store, instance, memory, before, fuel_used: fuel.saturating_sub(left) }))
    }

    /// The directories of a nested instance, empty (and read-only) where
    /// none is given.
    fn dirs<'a>(&'a self, work: Option<&'a Path>, env: Option<&'a Path>, data: Option<&'a Path>) -> Dirs<'a> {
        let empty = self.empty.path();
        Dirs {
            lib: &self.lib_dir,
            work: work.unwrap_or(empty),
            work_writable: work.is_some(),
            env: env.unwrap_or(empty),
            data: data.unwrap_or(empty),
        }
    }
}

/// The pages of `after` that differ from `before` (zeros past its end), as
/// runs of (offset, bytes).
fn changed_pages(before: &[u8], after: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let mut runs: Vec<(usize, Vec<u8>)> = Vec::new();
    for (i, page) in after.chunks(SETUP_PAGE).enumerate() {
        let start = i * SETUP_PAGE;
        let unchanged = match before.get(start..start + page.len()) {
            Some(old) => old == page,
            None => page.iter().all(|&b| b == 0),
        };
        if unchanged {
            continue;
        }
        match runs.last_mut() {
            Some((offset, bytes)) if *offset + bytes.len() == start => bytes.extend_from_slice(page),
            _ => runs.push((start, page.to_vec())),
        }
    }
    runs
}

/// Puts a fresh instance in the state `setup` describes.
fn apply_setup(store: &mut Store<HostState>, instance: &Instance, setup: &Setup) -> wasmtime::Result<()> {
    let Some(memory) = instance.get_memory(&mut *store, "memory") else {
        wasmtime::bail!("the python runtime exports no memory");
    };
    let have = memory.data_size(&*store);
    if setup.memory_len > have {
        memory.grow(&mut *store, ((setup.memory_len - have) / (64 << 10)) as u64)?;
    }
    let data = memory.data_mut(&mut *store);
    for (offset, bytes) in &setup.pages {
        data[*offset..*offset + bytes.len()].copy_from_slice(bytes);
    }
    for (name, value) in &setup.globals {
        let Some(global) = instance.get_global(&mut *store, name) else {
            wasmtime::bail!("the python runtime lost its global export {name}");
        };
        global.set(&mut *store, *value)?;
    }
    Ok(())
}

impl Runtime {
    /// The standard library directory, for [`CodeHost::lib_dir`].
    pub fn lib_dir(&self) -> &Path {
        &self.lib_dir
    }
}

/// A caller's view of `run_code`: the host, and the answer of its last call
/// kept for a retry with a larger buffer.
pub(crate) struct CodeCall {
    pub(crate) host: Arc<CodeHost>,
    pub(crate) pending: Option<([u8; 32], Vec<u8>)>,
}

impl CodeCall {
    pub fn new(host: Arc<CodeHost>) -> Self {
        CodeCall { host, pending: None }
    }
}

/// A file path from a request, checked to stay inside the work directory.
fn relative_path(path: &str) -> Result<PathBuf, EnvError> {
    let bad = |why: &str| EnvError::bad_request(format!("run_code file `{path}`: {why}"));
    if path.is_empty() || path.contains('\0') {
        return Err(bad("empty or contains NUL"));
    }
    let p = Path::new(path);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return Err(bad("must be a relative path without `..`")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(bad("names no file"));
    }
    Ok(out)
}

fn write_files(dir: &Path, files: &std::collections::BTreeMap<String, String>) -> Result<(), EnvError> {
    let io = |e: std::io::Error| EnvError::internal(format!("run_code: cannot write the work directory: {e}"));
    for (name, content) in files {
        let rel = relative_path(name)?;
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        if path.is_dir() {
            return Err(EnvError::bad_request(format!("run_code file `{name}` is also a directory")));
        }
        std::fs::write(&path, content).map_err(io)?;
    }
    Ok(())
}

/// The host directories a nested instance sees, in the order they are
/// preopened (the same for the init run, since the snapshot remembers them):
/// the standard library at [`STDLIB_GUEST_DIR`] (read-only), `work` at
/// `/work` (read-write, or read-only where `work_writable` is false), an
/// environment's sources at [`ENV_GUEST_DIR`] and its data at
/// [`DATA_GUEST_DIR`] (both read-only).
struct Dirs<'a> {
    lib: &'a Path,
    work: &'a Path,
    work_writable: bool,
    env: &'a Path,
    data: &'a Path,
}

/// The WASI context of a nested run: arguments, stdin, captured output, the
/// [`Dirs`], fixed clocks and random bytes derived from `seed`.
fn nested_wasi(
    args: &[&str],
    stdin: Vec<u8>,
    (stdout, stderr): (MemoryOutputPipe, MemoryOutputPipe),
    dirs: &Dirs<'_>,
    seed: &[u8; 32],
) -> Result<WasiP1Ctx, EnvError> {
    let rng = |label: &[u8]| SeededRandom::new(envhub_sdk::Rng::derive(0, &[b"run_code", label, seed]));
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdin(MemoryInputPipe::new(stdin))
        .stdout(stdout)
        .stderr(stderr)
        .args(args)
        .env("PYTHONHASHSEED", "0")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUTF8", "1")
        .wall_clock(FixedWallClock)
        .monotonic_clock(FixedMonotonicClock)
        .secure_random(rng(b"secure"))
        .insecure_random(rng(b"insecure"))
        .insecure_random_seed(u128::from_le_bytes(seed[..16].try_into().unwrap_or([0; 16])))
        .allow_blocking_current_thread(true)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let open = |b: &mut WasiCtxBuilder, host: &Path, guest: &str, perms: FsPerms| {
        b.preopened_dir(host, guest, perms)
            .map(|_| ())
            .map_err(|e| EnvError::internal(format!("cannot open {} as {guest}: {e}", host.display())))
    };
    open(&mut builder, dirs.lib, STDLIB_GUEST_DIR, FsPerms::ReadOnly)?;
    let work_perms = if dirs.work_writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
    open(&mut builder, dirs.work, "/work", work_perms)?;
    open(&mut builder, dirs.env, ENV_GUEST_DIR, FsPerms::ReadOnly)?;
    open(&mut builder, dirs.data, DATA_GUEST_DIR, FsPerms::ReadOnly)?;
    Ok(builder.build_p1())
}

/// One program to run on the runtime.
pub(crate) struct Program<'a> {
    /// The source, run as `python -S -c` would.
    pub code: &'a str,
    /// Its stdin.
    pub stdin: Vec<u8>,
    /// Whether `/work` is a fresh writable directory, deleted after the
    /// run; otherwise it is an empty read-only one.
    pub scratch: bool,
    /// Files written to `/work` before it runs (only with `scratch`).
    pub files: &'a std::collections::BTreeMap<String, String>,
    /// What its instance starts from.
    pub start: Start<'a>,
    /// `/env` and `/data` (empty when `None`).
    pub env: Option<&'a Path>,
    /// See `env`.
    pub data: Option<&'a Path>,
    /// Instructions it may execute.
    pub fuel: u64,
    /// Bytes of memory it may hold.
    pub memory: u64,
    /// Bytes of stdout and of stderr kept; more is [`LimitHit::Output`].
    pub stdout_bytes: u64,
    /// See `stdout_bytes`.
    pub stderr_bytes: u64,
    /// The wall-clock backstop.
    pub deadline_ms: u64,
    /// Seeds its random bytes.
    pub seed: [u8; 32],
}

/// What a [`Program`]'s instance starts from.
pub(crate) enum Start<'a> {
    /// The runtime's snapshot, as initialised.
    Runtime,
    /// The runtime's snapshot with a setup's changes written in.
    Setup(Arc<Setup>),
    /// An image of the host's (see [`CodeHost::image`]), linked.
    Image(&'a InstancePre<HostState>),
}

/// What running a [`Program`] gave, output as bytes.
pub(crate) struct Ran {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: Option<i32>,
    pub fuel_used: u64,
    pub limit: LimitHit,
    pub trap: Option<String>,
}

/// Runs `p` in a fresh instance of the snapshot.
pub(crate) fn run_program(host: &CodeHost, p: &Program<'_>) -> Result<Ran, EnvError> {
    if p.files.len() > MAX_FILES {
        return Err(EnvError::bad_request(format!("run_code: more than {MAX_FILES} files")));
    }
    let work = match p.scratch {
        true => Some(
            tempfile::Builder::new()
                .prefix("envhub-code-")
                .tempdir()
                .map_err(|e| EnvError::internal(format!("run_code: cannot create a work directory: {e}")))?,
        ),
        false if p.files.is_empty() => None,
        false => return Err(EnvError::internal("run_code: files given to a program without a work directory")),
    };
    if let Some(work) = &work {
        write_files(work.path(), p.files)?;
    }
    let cap = |n: u64| usize::try_from(n.saturating_add(1)).unwrap_or(usize::MAX);
    let (stdout, stderr) = (MemoryOutputPipe::new(cap(p.stdout_bytes)), MemoryOutputPipe::new(cap(p.stderr_bytes)));
    let dirs = host.dirs(work.as_ref().map(|w| w.path()), p.env, p.data);
    let wasi = nested_wasi(&["python", p.code], p.stdin.clone(), (stdout.clone(), stderr.clone()), &dirs, &p.seed)?;
    let fs = match &work {
        Some(_) => {
            FsState::with_quota(host.limits.disk_quota_bytes, p.files.iter().map(|(n, c)| (n.len(), c.len() as u64)))
        }
        None => FsState::default(),
    };
    let mut store = host.store(wasi, fs, p.memory, p.fuel, p.deadline_ms)?;
    let pre = match &p.start {
        Start::Image(pre) => pre,
        Start::Runtime | Start::Setup(_) => &host.pre,
    };
    let outcome = pre.instantiate(&mut store).and_then(|instance| {
        if let Start::Setup(setup) = &p.start {
            apply_setup(&mut store, &instance, setup)?;
        }
        let run = instance.get_typed_func::<(), i32>(&mut store, "envhub_run")?;
        run.call(&mut store, ())
    });
    let fuel_used = p.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
    let memory_hit = store.data().limiter.memory_hit;
    drop(store);
    drop(work);

    let (mut exit_code, mut limit, mut trap) = (None, LimitHit::None, None);
    match outcome {
        Ok(status) => exit_code = Some(status),
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                exit_code = Some(exit.0);
            } else {
                limit = match e.downcast_ref::<Trap>() {
                    Some(Trap::OutOfFuel) => LimitHit::Fuel,
                    Some(Trap::Interrupt) => LimitHit::Deadline,
                    Some(Trap::StackOverflow) => LimitHit::Stack,
                    _ if memory_hit => LimitHit::Memory,
                    _ => {
                        trap = Some(format!("{e:#}"));
                        LimitHit::Trap
                    }
                };
            }
        }
    }
    let (mut out, mut err) = (stdout.contents().to_vec(), stderr.contents().to_vec());
    let over = |b: &[u8], n: u64| b.len() as u64 > n;
    if limit == LimitHit::None && (over(&out, p.stdout_bytes) || over(&err, p.stderr_bytes)) {
        limit = LimitHit::Output;
    } else if limit == LimitHit::None && memory_hit {
        limit = LimitHit::Memory;
    }
    out.truncate(usize::try_from(p.stdout_bytes).unwrap_or(usize::MAX));
    err.truncate(usize::try_from(p.stderr_bytes).unwrap_or(usize::MAX));
    Ok(Ran { stdout: out, stderr: err, exit_code, fuel_used, limit, trap })
}

/// Runs one `run_code` request. `seed` seeds its random stream; `fuel_left` caps its fuel.
pub(crate) fn run(host: &CodeHost, req: &RunCode, seed: &[u8; 32], fuel_left: u64) -> Result<CodeResult, EnvError> {
    if !matches!(req.language.as_str(), "python" | "python3") {
        return Err(EnvError::bad_request(format!(
            "run_code: language `{}` is not available; languages: python",
            req.language
        )));
    }
    let cfg = &host.limits;
    let fuel = req.limits.fuel.unwrap_or(cfg.default_fuel).min(cfg.max_fuel).min(fuel_left);
    let memory = req.limits.memory_bytes.unwrap_or(cfg.default_memory_bytes).min(cfg.max_memory_bytes);
    let output = req.limits.output_bytes.unwrap_or(cfg.default_output_bytes).min(cfg.max_output_bytes);
    let (start, setup_fuel) = match req.setup.as_deref() {
        Some(source) => match host.setup(source, None, None, fuel)? {
            Some(setup) => (Start::Setup(setup.clone()), setup.fuel_used),
            None => {
                return Ok(CodeResult {
                    stdout: String::new(),
                    stderr: "run_code setup ran out of fuel\n".into(),
                    exit_code: None,
                    fuel_used: fuel,
                    limit: LimitHit::Fuel,
                    trap: None,
                });
            }
        },
        None => (Start::Runtime, 0),
    };
    let program = Program {
        code: &req.code,
        stdin: req.stdin.clone().into_bytes(),
        scratch: true,
        files: &req.files,
        start,
        env: None,
        data: None,
        fuel: fuel - setup_fuel,
        memory,
        stdout_bytes: output,
        stderr_bytes: output,
        deadline_ms: cfg.deadline_ms,
        seed: *seed,
    };
    let ran = run_program(host, &program)?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(CodeResult {
        stdout: text(&ran.stdout),
        stderr: text(&ran.stderr),
        exit_code: ran.exit_code,
        fuel_used: setup_fuel.saturating_add(ran.fuel_used),
        limit: ran.limit,
        trap: ran.trap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        assert_eq!(relative_path("a/b.py").expect("ok"), PathBuf::from("a/b.py"));
        assert_eq!(relative_path("./a.txt").expect("ok"), PathBuf::from("a.txt"));
        for bad in ["", "/etc/passwd", "../x", "a/../../x", ".", "a\0b"] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
    }
}
