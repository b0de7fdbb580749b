//! Everything that can go wrong when loading or calling a module.

use envhub_sdk::EnvError;

/// A failure to load or run an environment module. A misbehaving guest always
/// ends in one of these, never in a host panic.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The bytes are not a valid WebAssembly module for this host.
    #[error("invalid module: {0}")]
    InvalidModule(String),
    /// The module imports a host capability its manifest does not declare.
    #[error(
        "module imports `{module}::{name}` (capability `{capability}`) but its manifest does not declare it; add it to `capabilities` in envhub.toml"
    )]
    UndeclaredCapability {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// The capability that provides it.
        capability: String,
    },
    /// The module imports something no host capability provides.
    #[error(
        "module imports `{module}::{name}`, which this host does not provide (only WASI preview 1 and declared `envhub` capabilities)"
    )]
    UnknownImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// The module is not a WASI command (no `_start` export).
    #[error("module has no `_start` export: build it as a WASI command (a `bin` target for wasm32-wasip1)")]
    NotACommand,
    /// The call executed more instructions than its fuel allows.
    #[error("out of fuel: the call ran more than {limit} instructions")]
    OutOfFuel {
        /// The fuel limit.
        limit: u64,
    },
    /// The guest asked for more linear memory than allowed.
    #[error("memory limit: the guest asked for more than {limit_bytes} bytes of memory")]
    MemoryLimit {
        /// The memory limit.
        limit_bytes: u64,
    },
    /// The guest exhausted its call stack (e.g. unbounded recursion).
    #[error("stack overflow in the guest")]
    StackOverflow,
    /// The wall-clock backstop fired before fuel ran out.
    #[error("deadline: the call ran past the {ms} ms wall-clock backstop (not deterministic; lower the fuel limit)")]
    Deadline {
        /// The deadline in milliseconds.
        ms: u64,
    },
    /// The guest wrote more than the limit to stdout or stderr.
    #[error("output too large: the guest wrote more than {limit} bytes to {stream}")]
    OutputTooLarge {
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
    /// The guest's stdout is not one protocol response.
    #[error("malformed response: {reason}; output began with {head:?}")]
    MalformedResponse {
        /// What is wrong with it.
        reason: String,
        /// The first bytes of the output, lossily decoded.
        head: String,
    },
    /// The guest panicked.
    #[error("guest panicked: {message}")]
    GuestPanic {
        /// The panic message from stderr.
        message: String,
    },
    /// The guest exited with a non-zero status.
    #[error("guest exited with status {code}; stderr: {stderr}")]
    GuestExit {
        /// Exit status.
        code: i32,
        /// The end of its stderr.
        stderr: String,
    },
    /// Any other WebAssembly trap.
    #[error("guest trapped: {trap}; stderr: {stderr}")]
    Trap {
        /// The trap's description.
        trap: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// The guest answered with a protocol error.
    #[error("environment error: {0}")]
    Guest(#[from] EnvError),
    /// A package could not be read or unpacked.
    #[error(transparent)]
    Package(#[from] crate::package::PackageError),
    /// The limits asked for are not allowed on this host.
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
    /// Many calls shared one budget (a self-test's) and it is spent.
    #[error("{0}")]
    Budget(String),
    /// The host could not set up the call (pool exhausted, I/O on `/data`, ...).
    #[error("host error: {0}")]
    Host(String),
}

impl SandboxError {
    /// Whether the call hit one of its limits (fuel, memory, deadline, stack,
    /// output): the input made the environment do too much, rather than the
    /// environment or the request being wrong.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            SandboxError::OutOfFuel { .. }
                | SandboxError::MemoryLimit { .. }
                | SandboxError::Deadline { .. }
                | SandboxError::StackOverflow
                | SandboxError::OutputTooLarge { .. }
                | SandboxError::Budget(_)
        )
    }

    /// A short stable name of the error's kind, for reports and trajectories.
    pub fn kind(&self) -> &'static str {
        match self {
            SandboxError::InvalidModule(_) => "invalid_module",
            SandboxError::UndeclaredCapability { .. } => "undeclared_capability",
            SandboxError::UnknownImport { .. } => "unknown_import",
            SandboxError::NotACommand => "not_a_command",
            SandboxError::OutOfFuel { .. } => "out_of_fuel",
            SandboxError::MemoryLimit { .. } => "memory_limit",
            SandboxError::StackOverflow => "stack_overflow",
            SandboxError::Deadline { .. } => "deadline",
            SandboxError::OutputTooLarge { .. } => "output_too_large",
            SandboxError::MalformedResponse { .. } => "malformed_response",
            SandboxError::GuestPanic { .. } => "guest_panic",
            SandboxError::GuestExit { .. } => "guest_exit",
            SandboxError::Trap { .. } => "trap",
            SandboxError::Guest(_) => "guest_error",
            SandboxError::Package(_) => "package",
            SandboxError::InvalidLimits(_) => "invalid_limits",
            SandboxError::Budget(_) => "budget_spent",
            SandboxError::Host(_) => "host_error",
        }
    }
}
