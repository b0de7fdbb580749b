//! A loaded environment and its calls: a WebAssembly module, or a Python
//! environment on the pinned runtime ([`python`]).

mod python;

pub(crate) use python::{PythonGuest, import_failed, import_source, sources_digest};

use std::path::PathBuf;
use std::sync::Arc;

use envhub_sdk::{
    Envelope, InfoResponse, Message, Request, ResetRequest, ResetResponse, Response, StepRequest, StepResponse,
    TaskSource, ValidateRequest, ValidateResponse,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use wasmtime::{Engine, InstancePre, Linker, Module, Store, Trap};
use wasmtime_wasi::I32Exit;

use crate::limits::Limits;
use crate::runtime::python::{CodeCall, CodeHost};
use crate::runtime::{HostState, Limiter};
use crate::{SandboxError, capability, wasi};

/// How to load a module.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Limits of every call.
    pub limits: Limits,
    /// Capabilities the manifest declares.
    pub capabilities: Vec<String>,
    /// Host directory shown read-only to the guest as `/data`.
    pub data_dir: Option<PathBuf>,
}

/// What one call produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutput {
    /// The response bytes.
    pub stdout: Vec<u8>,
    /// What the guest wrote to stderr.
    pub stderr: Vec<u8>,
    /// Instructions executed (deterministic).
    pub fuel_used: u64,
}

/// A module ready to be called: compiled, import-checked and pre-linked.
/// Cheap to clone and safe to call from many threads at once; every call runs
/// in a fresh instance.
#[derive(Clone)]
pub struct EnvModule {
    guest: Guest,
    digest: [u8; 32],
    options: Arc<LoadOptions>,
}

/// What answers the calls.
#[derive(Clone)]
enum Guest {
    /// A WASI command module.
    Wasm { engine: Engine, epoch_tick: std::time::Duration, pre: InstancePre<HostState>, code: Option<Arc<CodeHost>> },
    /// A Python environment.
    Python(Arc<PythonGuest>),
}

pub(crate) fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    let start = text.len().saturating_sub(n);
    let start = (start..text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
    text[start..].to_owned()
}

fn head(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(n)]);
    text.into_owned()
}

/// The panic message in a Rust guest's stderr, if it panicked.
fn panic_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let at = text.find("panicked at")?;
    let rest = &text[at..];
    let mut lines = rest.lines();
    let location = lines.next().unwrap_or_default().trim_start_matches("panicked at ").trim_end_matches(':');
    let message = lines.next().unwrap_or_default();
    Some(format!("{message} (at {location})"))
}

impl EnvModule {
    pub(crate) fn new(
        linker: &Linker<HostState>,
        epoch_tick: std::time::Duration,
        module: Module,
        digest: [u8; 32],
        options: LoadOptions,
        code: Option<Arc<CodeHost>>,
    ) -> Result<EnvModule, SandboxError> {
        capability::check_imports(&module, &options.capabilities)?;
        if module.get_export("_start").is_none() {
            return Err(SandboxError::NotACommand);
        }
        let pre = linker.instantiate_pre(&module).map_err(|e| {
            // The imports were checked above, so this is a WASI function the
            // host does not have.
            SandboxError::InvalidModule(format!("cannot link: {e:#}"))
        })?;
        let engine = module.engine().clone();
        Ok(EnvModule { guest: Guest::Wasm { engine, epoch_tick, pre, code }, digest, options: Arc::new(options) })
    }

    /// A Python environment; `digest` identifies its sources.
    pub(crate) fn python(guest: PythonGuest, digest: [u8; 32], options: LoadOptions) -> EnvModule {
        EnvModule { guest: Guest::Python(Arc::new(guest)), digest, options: Arc::new(options) }
    }

    /// The sha256 of the module's bytes (of a Python environment's sources).
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.options.limits
    }

    /// The same module, its calls under `limits` (e.g. tighter ones, so that
    /// many calls share one budget).
    pub fn with_limits(&self, limits: Limits) -> EnvModule {
        let options = LoadOptions { limits, ..(*self.options).clone() };
        EnvModule { guest: self.guest.clone(), digest: self.digest, options: Arc::new(options) }
    }

    /// Runs the module once on `request` (the bytes written to its stdin) and
    /// returns its output, after checking the limits. The output is not parsed.
    pub fn call_raw(&self, request: &[u8]) -> Result<CallOutput, SandboxError> {
        let (engine, epoch_tick, pre, code) = match &self.guest {
            Guest::Wasm { engine, epoch_tick, pre, code } => (engine, *epoch_tick, pre, code),
            Guest::Python(guest) => return guest.call(request, &self.options),
        };
        let limits = self.options.limits;
        let (ctx, stdio) =
            wasi::context(request, limits.stdout_bytes, limits.stderr_bytes, self.options.data_dir.as_deref())?;
        let limiter = Limiter::new(limits.memory_bytes, limits.table_elements);
        let code = code.clone().map(CodeCall::new);
        let mut store = Store::new(engine, HostState { wasi: ctx, limiter, code, fs: Default::default() });
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(limits.fuel).map_err(|e| SandboxError::Host(format!("cannot set fuel: {e}")))?;
        let tick_ms = epoch_tick.as_millis().max(1) as u64;
        store.set_epoch_deadline(limits.deadline_ms.div_ceil(tick_ms).max(1));

        let run = pre.instantiate(&mut store).and_then(|instance| {
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call(&mut store, ())
        });
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let memory_hit = store.data().limiter.memory_hit;
        drop(store);
        let stdout = stdio.stdout.contents().to_vec();
        let stderr = stdio.stderr.contents().to_vec();

        if stdout.len() as u64 > limits.stdout_bytes {
            return Err(SandboxError::OutputTooLarge { stream: "stdout", limit: limits.stdout_bytes });
        }
        if stderr.len() as u64 > limits.stderr_bytes {
            return Err(SandboxError::OutputTooLarge { stream: "stderr", limit: limits.stderr_bytes });
        }
        if let Err(e) = run {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                if exit.0 != 0 {
                    return Err(SandboxError::GuestExit { code: exit.0, stderr: tail(&stderr, 2000) });
                }
            } else {
                return Err(classify_trap(&e, memory_hit, &limits, &stderr));
            }
        }
        Ok(CallOutput { stdout, stderr, fuel_used })
    }

    /// Sends one protocol request and decodes the `ok` body as `T`. A guest's
    /// `{"error": …}` becomes [`SandboxError::Guest`].
    pub fn call<T: DeserializeOwned>(&self, request: &Envelope) -> Result<T, SandboxError> {
        let bytes =
            serde_json::to_vec(request).map_err(|e| SandboxError::Host(format!("cannot encode request: {e}")))?;
        let output = self.call_raw(&bytes)?;
        decode(&output.stdout)
    }

    /// `info`.
    pub fn info(&self) -> Result<InfoResponse, SandboxError> {
        self.call(&Envelope::new(Request::Info))
    }

    /// `reset`.
    pub fn reset(
        &self,
        source: TaskSource,
        seed: u64,
        config: Map<String, Value>,
    ) -> Result<ResetResponse, SandboxError> {
        self.call(&Envelope::new(Request::Reset(ResetRequest { source, seed, config })))
    }

    /// `step`.
    pub fn step(&self, state: Value, action: Message) -> Result<StepResponse, SandboxError> {
        self.call(&Envelope::new(Request::Step(StepRequest { state, action })))
    }

    /// `validate`.
    pub fn validate(&self, source: TaskSource) -> Result<ValidateResponse, SandboxError> {
        self.call(&Envelope::new(Request::Validate(ValidateRequest { source })))
    }
}

/// Decodes a guest's stdout as one protocol response.
pub fn decode<T: DeserializeOwned>(stdout: &[u8]) -> Result<T, SandboxError> {
    let malformed = |reason: String| SandboxError::MalformedResponse { reason, head: head(stdout, 200) };
    if stdout.is_empty() {
        return Err(malformed("the guest wrote nothing to stdout".into()));
    }
    let response: Response<T> = serde_json::from_slice(stdout).map_err(|e| malformed(e.to_string()))?;
    response.into_result().map_err(SandboxError::Guest)
}

fn classify_trap(e: &wasmtime::Error, memory_hit: bool, limits: &Limits, stderr: &[u8]) -> SandboxError {
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => return SandboxError::OutOfFuel { limit: limits.fuel },
        Some(Trap::Interrupt) => return SandboxError::Deadline { ms: limits.deadline_ms },
        Some(Trap::StackOverflow) => return SandboxError::StackOverflow,
        _ => {}
    }
    if memory_hit {
        return SandboxError::MemoryLimit { limit_bytes: limits.memory_bytes };
    }
    if let Some(message) = panic_message(stderr) {
        return SandboxError::GuestPanic { message };
    }
    SandboxError::Trap { trap: format!("{e:#}"), stderr: tail(stderr, 2000) }
}
