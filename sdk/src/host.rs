//! Host capabilities an environment may call, and the wire types they share
//! with the host.
//!
//! # `run_code` (capability `code:python`)
//!
//! Runs a program in a fresh nested sandbox of its own (CPython 3.12 for
//! WASI) with its own fuel, memory and output limits, and returns what it
//! printed, its exit status, the fuel it used and which limit, if any, it hit.
//! The run is deterministic: fixed clocks, seeded randomness,
//! `PYTHONHASHSEED=0`, no network, and only the files given, in a throwaway
//! working directory `/work`.
//!
//! Declare the capability in `envhub.toml` (`capabilities = ["code:python"]`);
//! a module that imports `envhub::run_code` without declaring it is refused at
//! load time.
//!
//! ```no_run
//! use envhub_sdk::host::{RunCode, run_code};
//! # fn main() -> Result<(), envhub_sdk::EnvError> {
//! let result = run_code(&RunCode::python("print(6 * 7)"))?;
//! assert_eq!(result.stdout, "42\n");
//! # Ok(()) }
//! ```
//!
//! ## ABI
//!
//! `envhub::run_code(req_ptr: i32, req_len: i32, out_ptr: i32, out_cap: i32) -> i32`.
//! The request is the JSON of [`RunCode`] at `req_ptr..req_ptr+req_len`. The
//! host answers with the JSON of a protocol [`Response`]`<`[`CodeResult`]`>`
//! (`{"ok": …}` or `{"error": {"kind", "message"}}`) and returns its length
//! `n`. When `n <= out_cap` the answer was written at `out_ptr`; otherwise
//! nothing was written, and the guest calls again with the same request and a
//! buffer of at least `n` bytes: the host keeps the answer of the last call,
//! so the program does not run twice. Out-of-bounds pointers trap the caller.
//!
//! Natively (not `wasm32`) there is no host: [`run_code`] returns an
//! `unsupported` error, so authors unit-test the rest of an environment
//! natively and test code execution through the sandbox.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::EnvError;
#[cfg(target_arch = "wasm32")]
use crate::protocol::Response;

/// One program to run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunCode {
    /// The language; only `python` (CPython 3.11) for now.
    pub language: String,
    /// The program's source.
    pub code: String,
    /// What the program reads from stdin.
    #[serde(default)]
    pub stdin: String,
    /// Files in its working directory `/work`, by relative path (`a.txt`,
    /// `pkg/mod.py`). The directory is writable and thrown away after the run.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Limits of this run; each is capped by the host's maxima and by the
    /// fuel the calling environment has left.
    #[serde(default)]
    pub limits: CodeLimits,
    /// Python source that every run with the same `setup` shares (a checker,
    /// helpers): the host runs it once, as the module `envhub_setup`, keeps
    /// the interpreter as it left it, and starts each such run from there,
    /// so it is compiled and executed once rather than per run. The setup
    /// sees no stdin, no files and fixed random bytes; its output is
    /// discarded and its fuel is not charged to runs; if it fails, the run
    /// is refused with its traceback. Programs use it with
    /// `import envhub_setup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
}

impl RunCode {
    /// A Python program with default limits, no stdin and no files.
    pub fn python(code: impl Into<String>) -> Self {
        RunCode { language: "python".to_owned(), code: code.into(), ..RunCode::default() }
    }
}

/// Limits of one run; `None` takes the host's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeLimits {
    /// Instructions (wasmtime fuel). A run starts (from an initialised
    /// interpreter) in about 0.2e6; compiling 300 lines takes about 25e6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Bytes of linear memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Bytes kept of stdout, and of stderr, each; writing more is a limit hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
}

/// The limit that stopped a run, if any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitHit {
    /// The program ended by itself (any exit status).
    #[default]
    None,
    /// It ran out of fuel (instructions): infinite loops.
    Fuel,
    /// It asked for more memory than allowed (the refusal may have ended in
    /// a `MemoryError` or in a crash).
    Memory,
    /// It wrote more than `output_bytes` to stdout or stderr; the output is
    /// cut at the limit.
    Output,
    /// The wall-clock backstop fired (not deterministic; lower the fuel).
    Deadline,
    /// The interpreter exhausted the WebAssembly stack.
    Stack,
    /// The interpreter crashed some other way (see [`CodeResult::trap`]).
    Trap,
}

impl LimitHit {
    /// The wire name, e.g. `fuel`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitHit::None => "none",
            LimitHit::Fuel => "fuel",
            LimitHit::Memory => "memory",
            LimitHit::Output => "output",
            LimitHit::Deadline => "deadline",
            LimitHit::Stack => "stack",
            LimitHit::Trap => "trap",
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeResult {
    /// Its stdout (lossily decoded UTF-8, at most `output_bytes`).
    pub stdout: String,
    /// Its stderr (lossily decoded UTF-8, at most `output_bytes`).
    pub stderr: String,
    /// Its exit status; `None` when a limit or a crash ended it.
    pub exit_code: Option<i32>,
    /// Instructions it executed (deterministic).
    pub fuel_used: u64,
    /// The limit that stopped it.
    pub limit: LimitHit,
    /// The crash, when `limit` is `trap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trap: Option<String>,
}

impl CodeResult {
    /// Whether the program ended by itself with status 0 and no limit hit.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && self.limit == LimitHit::None
    }
}

/// The largest answer the wrapper accepts from the host, in bytes.
#[cfg(target_arch = "wasm32")]
const MAX_ANSWER: usize = 256 << 20;

#[cfg(target_arch = "wasm32")]
mod ffi {
    #[link(wasm_import_module = "envhub")]
    unsafe extern "C" {
        pub fn run_code(req_ptr: *const u8, req_len: usize, out_ptr: *mut u8, out_cap: usize) -> i32;
    }
}

/// Runs `request` through the host capability `run_code`. Errors: the host's
/// refusal (`bad_request` for an unknown language or bad files), or
/// `unsupported` natively.
#[cfg(target_arch = "wasm32")]
pub fn run_code(request: &RunCode) -> Result<CodeResult, EnvError> {
    let bytes =
        serde_json::to_vec(request).map_err(|e| EnvError::internal(format!("cannot encode the run request: {e}")))?;
    let mut out = vec![0u8; 64 << 10];
    loop {
        // SAFETY: both pointers name live buffers of the given lengths; the
        // host writes at most `out.len()` bytes at `out_ptr`.
        let n = unsafe { ffi::run_code(bytes.as_ptr(), bytes.len(), out.as_mut_ptr(), out.len()) };
        let n = usize::try_from(n).map_err(|_| EnvError::internal(format!("run_code returned {n}")))?;
        if n <= out.len() {
            out.truncate(n);
            break;
        }
        if n > MAX_ANSWER {
            return Err(EnvError::internal(format!("run_code answer of {n} bytes is too large")));
        }
        out = vec![0u8; n];
    }
    let response: Response<CodeResult> = serde_json::from_slice(&out)
        .map_err(|e| EnvError::internal(format!("malformed run_code answer from the host: {e}")))?;
    response.into_result()
}

/// Runs `request` through the host capability `run_code`; natively there is
/// no host, so this always returns an `unsupported` error.
#[cfg(not(target_arch = "wasm32"))]
pub fn run_code(request: &RunCode) -> Result<CodeResult, EnvError> {
    let _ = request;
    Err(EnvError::unsupported(
        "run_code is a host capability: it works only inside the envhub sandbox (wasm32), with `code:python` declared",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let r = RunCode::python("print(1)");
        let v = serde_json::to_value(&r).expect("encode");
        assert_eq!(
            v,
            serde_json::json!({"language": "python", "code": "print(1)", "stdin": "", "files": {}, "limits": {}})
        );
        let back: RunCode = serde_json::from_str(r#"{"language":"python","code":"x"}"#).expect("decode");
        assert_eq!(back.limits, CodeLimits::default());
        let res = CodeResult { exit_code: Some(0), ..CodeResult::default() };
        assert!(res.success());
        assert_eq!(serde_json::to_value(LimitHit::Fuel).expect("encode"), "fuel");
    }

    #[test]
    fn natively_unsupported() {
        let err = run_code(&RunCode::python("print(1)")).expect_err("no host");
        assert_eq!(err.kind, crate::ErrorKind::Unsupported);
    }
}
