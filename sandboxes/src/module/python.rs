//! Python environments: a package's sources on the pinned Python runtime.
//!
//! On load the host imports the package once (`envhub._guest.prepare`, the
//! Python guest SDK the package carries) in a fresh instance of the
//! runtime's snapshot and snapshots the result as a module of the package's
//! own (an image, see [`crate::runtime::python`]), compiled and cached like
//! any module; nothing of it is visible to any other package. Each call is
//! a fresh instance of that image, started from its copy-on-write memory,
//! running the SDK's driver on the request (stdin) under the manifest's
//! limits; its stdout is the response. The sources are read-only at `/env` and the
//! data at `/data`, and `/work` is empty and read-only (state lives in the
//! request); clocks are fixed, the hash seed is 0 and randomness is
//! seeded from the request, as for every guest.
//!
//! Host functions (envhub's verifiers) are answered by replay: a run that
//! needs one answers `{"host_calls": [[name, args], ...]}`; the host computes
//! them and runs the request again with the answers on stdin's second line,
//! all within one fuel budget.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use envhub_sdk::host::LimitHit;
use serde_json::Value;
use sha2::{Digest, Sha256};
use wasmtime::InstancePre;

use super::{CallOutput, LoadOptions, tail};
use crate::SandboxError;
use crate::capability::{CAPABILITY_MODULE, verify};
use crate::runtime::HostState;
use crate::runtime::python::{CodeHost, ENV_GUEST_DIR, Program, Ran, Start, run_program};

/// The program of every call: the SDK's driver.
const DRIVER: &str = "import envhub._guest as _g\n_g.serve()\n";

/// Rounds of host calls one call may make.
const MAX_HOST_ROUNDS: usize = 16;

/// The driver's exit status for a `RecursionError`.
const STATUS_RECURSION: i32 = 4;

/// A loaded Python environment.
pub(crate) struct PythonGuest {
    host: Arc<CodeHost>,
    image: InstancePre<HostState>,
    env_dir: PathBuf,
    data_dir: Option<PathBuf>,
}

/// The identity of a Python environment: sha256 over its sources (path and
/// bytes, length-prefixed, in path order).
pub(crate) fn sources_digest(sources: &BTreeMap<String, Vec<u8>>) -> [u8; 32] {
    let mut h = Sha256::new();
    for (path, bytes) in sources {
        for part in [path.as_bytes(), bytes.as_slice()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
    }
    h.finalize().into()
}

/// The setup source that imports an environment with sources `digest`
/// (which it names, since a setup's source is its identity).
pub(crate) fn import_source(digest: &[u8; 32]) -> String {
    format!(
        "# envhub Python environment, sources sha256:{}\nimport sys\nsys.path.insert(0, {ENV_GUEST_DIR:?})\nimport envhub._guest\nenvhub._guest.prepare(\"env\")\n",
        hex::encode(digest)
    )
}

/// The typed error of an import that failed.
pub(crate) fn import_failed(e: envhub_sdk::EnvError) -> SandboxError {
    let why = e.message.trim_start_matches("run_code setup failed: ").to_owned();
    SandboxError::InvalidModule(format!("the Python environment failed to import: {why}"))
}

impl PythonGuest {
    /// The environment in `env_dir` (with `data_dir`) whose import is
    /// `image`, made by [`CodeHost::image`] of [`import_source`].
    pub(crate) fn new(
        host: Arc<CodeHost>,
        image: InstancePre<HostState>,
        env_dir: PathBuf,
        data_dir: Option<PathBuf>,
    ) -> PythonGuest {
        PythonGuest { host, image, env_dir, data_dir }
    }

    /// Answers one request (see the module docs).
    pub(crate) fn call(&self, request: &[u8], options: &LoadOptions) -> Result<CallOutput, SandboxError> {
        let limits = options.limits;
        let seed: [u8; 32] = Sha256::digest(request).into();
        let no_files = BTreeMap::new();
        let mut answers: Vec<Value> = Vec::new();
        let mut fuel_used = 0u64;
        for _ in 0..MAX_HOST_ROUNDS {
            let mut stdin = request.to_vec();
            if !answers.is_empty() {
                stdin.push(b'\n');
                stdin.extend(serde_json::to_vec(&answers).map_err(|e| SandboxError::Host(e.to_string()))?);
            }
            let program = Program {
                code: DRIVER,
                stdin,
                scratch: false,
                files: &no_files,
                start: Start::Image(&self.image),
                env: Some(&self.env_dir),
                data: self.data_dir.as_deref(),
                fuel: limits.fuel - fuel_used,
                memory: limits.memory_bytes,
                stdout_bytes: limits.stdout_bytes,
                stderr_bytes: limits.stderr_bytes,
                deadline_ms: limits.deadline_ms,
                seed,
            };
            let ran = run_program(&self.host, &program).map_err(|e| SandboxError::Host(e.message))?;
            fuel_used = fuel_used.saturating_add(ran.fuel_used).min(limits.fuel);
            outcome(&ran, options)?;
            match host_calls(&ran.stdout) {
                Some(calls) => {
                    for call in calls {
                        answers.push(answer(call, &options.capabilities)?);
                    }
                }
                None => return Ok(CallOutput { stdout: ran.stdout, stderr: ran.stderr, fuel_used }),
            }
        }
        Err(SandboxError::GuestPanic {
            message: format!("the environment asked for host functions in more than {MAX_HOST_ROUNDS} rounds"),
        })
    }
}

/// The typed error of a run that did not end well.
fn outcome(ran: &Ran, options: &LoadOptions) -> Result<(), SandboxError> {
    let limits = &options.limits;
    match ran.limit {
        LimitHit::None => {}
        LimitHit::Fuel => return Err(SandboxError::OutOfFuel { limit: limits.fuel }),
        LimitHit::Memory => return Err(SandboxError::MemoryLimit { limit_bytes: limits.memory_bytes }),
        LimitHit::Deadline => return Err(SandboxError::Deadline { ms: limits.deadline_ms }),
        LimitHit::Stack => return Err(SandboxError::StackOverflow),
        LimitHit::Output => {
            let (stream, limit) = if ran.stdout.len() as u64 >= limits.stdout_bytes {
                ("stdout", limits.stdout_bytes)
            } else {
                ("stderr", limits.stderr_bytes)
            };
            return Err(SandboxError::OutputTooLarge { stream, limit });
        }
        LimitHit::Trap => {
            return Err(SandboxError::Trap {
                trap: ran.trap.clone().unwrap_or_default(),
                stderr: tail(&ran.stderr, 2000),
            });
        }
    }
    match ran.exit_code {
        Some(0) => Ok(()),
        Some(STATUS_RECURSION) => Err(SandboxError::StackOverflow),
        // An uncaught exception: Python printed its traceback.
        Some(1) => Err(SandboxError::GuestPanic { message: tail(&ran.stderr, 2000) }),
        Some(code) => Err(SandboxError::GuestExit { code, stderr: tail(&ran.stderr, 2000) }),
        None => Err(SandboxError::Trap { trap: "no exit status".into(), stderr: tail(&ran.stderr, 2000) }),
    }
}

/// The host calls a response asks for, if it is such a request.
fn host_calls(stdout: &[u8]) -> Option<Vec<Value>> {
    if !stdout.starts_with(b"{\"host_calls\"") {
        return None;
    }
    match serde_json::from_slice::<Value>(stdout).ok()? {
        Value::Object(mut m) if m.len() == 1 => match m.remove("host_calls") {
            Some(Value::Array(calls)) => Some(calls),
            _ => None,
        },
        _ => None,
    }
}

/// `[name, args, result]` for one `[name, args]` call, checked against the
/// declared capabilities.
fn answer(call: Value, declared: &[String]) -> Result<Value, SandboxError> {
    let Value::Array(parts) = call else {
        return Err(SandboxError::GuestPanic { message: "a host call is not [name, args]".into() });
    };
    let (Some(Value::String(name)), Some(args)) = (parts.first(), parts.get(1)) else {
        return Err(SandboxError::GuestPanic { message: "a host call is not [name, args]".into() });
    };
    let Some(capability) = verify::capability_of(name) else {
        return Err(SandboxError::UnknownImport { module: CAPABILITY_MODULE.into(), name: name.clone() });
    };
    if !declared.iter().any(|d| d == capability) {
        return Err(SandboxError::UndeclaredCapability {
            module: CAPABILITY_MODULE.into(),
            name: name.clone(),
            capability: capability.into(),
        });
    }
    let result = verify::call(name, args).unwrap_or_else(|e| serde_json::json!({ "error": e }));
    Ok(Value::Array(vec![Value::String(name.clone()), args.clone(), result]))
}
