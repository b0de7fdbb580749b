//! envhub-sandbox: runs untrusted environment modules (WASI preview 1
//! commands) under wasmtime with fuel, memory and output limits, and
//! deterministic clocks and randomness.
//!
//! ```no_run
//! use envhub_sandbox::{LoadOptions, Sandbox, SandboxConfig};
//! # fn main() -> Result<(), envhub_sandbox::SandboxError> {
//! let sandbox = Sandbox::new(SandboxConfig::default())?;
//! let module = sandbox.load_file("env.wasm".as_ref(), LoadOptions::default())?;
//! let info = module.info()?;
//! println!("{} has splits {:?}", info.name, info.splits);
//! # Ok(()) }
//! ```

mod cache;
pub mod capability;
mod engine;
mod error;
pub mod fs;
pub mod limits;
mod module;
pub mod package;
pub mod runtime;
pub mod score;
pub mod selftest;
mod snapshot;
mod wasi;

pub use engine::{Sandbox, SandboxConfig};
pub use error::SandboxError;
pub use limits::{HostMaxima, Limits};
pub use module::{CallOutput, EnvModule, LoadOptions, decode};
pub use runtime::python::{CodeConfig, CodeLimitsConfig, PYTHON_WASM_SHA256, STDLIB_ZIP_SHA256};
pub use score::Scored;
pub use wasi::FIXED_WALL_CLOCK_SECS;
