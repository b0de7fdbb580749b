//! What executes WebAssembly here: the per-store state every instance gets
//! (its WASI context, its memory accounting, its capability handles), the
//! WASI linker every module starts from, and the pinned language runtimes
//! ([`python`]) that guests and policy code run on.

pub mod python;
pub mod wasi_fs;

use wasmtime::{Engine, Linker, ResourceLimiter};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::SandboxError;
use python::CodeCall;

/// The WASI preview 1 module namespace.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// WASI errno `notsup`.
const ERRNO_NOTSUP: i32 = 58;

/// Per-store state: the guest's WASI context and its memory accounting.
pub(crate) struct HostState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: Limiter,
    /// `run_code`, for modules that declare `code:python`.
    pub(crate) code: Option<CodeCall>,
    /// What the guest's file system shows and how much it may write.
    pub(crate) fs: wasi_fs::FsState,
}

/// Memory and table accounting of one store.
pub(crate) struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    /// Whether a memory growth was refused.
    pub(crate) memory_hit: bool,
}

impl Limiter {
    /// A limiter allowing `memory_bytes` of memory and `table_elements` per table.
    pub(crate) fn new(memory_bytes: u64, table_elements: u64) -> Self {
        Limiter {
            memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            table_elements: usize::try_from(table_elements).unwrap_or(usize::MAX),
            memory_hit: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        1
    }
    fn tables(&self) -> usize {
        4
    }
    fn memories(&self) -> usize {
        1
    }
}

/// A linker with WASI preview 1, with `poll_oneoff` replaced so a guest cannot
/// sleep on the host's clock (which would make a call's duration depend on the
/// host, and block a thread the epoch backstop cannot interrupt), and the
/// file functions wrapped by [`wasi_fs`] (host-independent listings and
/// stats, the disk quota).
pub(crate) fn wasi_linker(engine: &Engine) -> Result<Linker<HostState>, SandboxError> {
    let mut linker: Linker<HostState> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut HostState| &mut s.wasi)
        .map_err(|e| SandboxError::Host(format!("cannot link WASI: {e}")))?;
    linker.allow_shadowing(true);
    linker
        .func_wrap(WASI_MODULE, "poll_oneoff", |_: i32, _: i32, _: i32, _: i32| -> i32 { ERRNO_NOTSUP })
        .map_err(|e| SandboxError::Host(format!("cannot link poll_oneoff: {e}")))?;
    wasi_fs::link(&mut linker)?;
    linker.allow_shadowing(false);
    Ok(linker)
}
