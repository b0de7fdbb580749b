//! Rust errors as the Python exceptions of `envhub.errors`: each carries the
//! CLI's message and a stable `kind`.

use envhub_client::ClientError;
use envhub_sandbox::SandboxError;
use envhub_sdk::ErrorKind;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// An exception of class `class` (a name in `envhub.errors`) with `kind`
/// and `message`.
pub fn raise(py: Python<'_>, class: &str, kind: &str, message: String) -> PyErr {
    let made = py.import("envhub.errors").and_then(|m| m.getattr(class)).and_then(|cls| {
        let exc = cls.call1((message.clone(),))?;
        exc.setattr("kind", kind)?;
        Ok(PyErr::from_value(exc))
    });
    // Without the pure-Python half of the package there is no envhub.errors.
    made.unwrap_or_else(|_| PyRuntimeError::new_err(format!("{kind}: {message}")))
}

/// The exception class for an environment's own error kind.
fn env_error_class(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidTask | ErrorKind::UnknownSplit | ErrorKind::IndexOutOfRange => "BadTaskError",
        ErrorKind::InvalidAction | ErrorKind::InvalidState | ErrorKind::EpisodeOver => "BadActionError",
        // A request the environment refused, e.g. a reset config it does not take.
        ErrorKind::BadRequest => "BadArgumentError",
        _ => "GuestError",
    }
}

/// A sandbox failure.
pub fn sandbox(py: Python<'_>, e: &SandboxError) -> PyErr {
    sandbox_with(py, e, e.to_string())
}

fn sandbox_with(py: Python<'_>, e: &SandboxError, message: String) -> PyErr {
    let (class, kind) = match e {
        SandboxError::OutOfFuel { .. } => ("OutOfFuelError", e.kind()),
        SandboxError::MemoryLimit { .. } => ("MemoryLimitError", e.kind()),
        SandboxError::Deadline { .. } => ("DeadlineError", e.kind()),
        SandboxError::StackOverflow => ("StackOverflowError", e.kind()),
        SandboxError::OutputTooLarge { .. } => ("OutputLimitError", e.kind()),
        SandboxError::Guest(g) => (env_error_class(g.kind), g.kind.as_str()),
        SandboxError::GuestPanic { .. }
        | SandboxError::GuestExit { .. }
        | SandboxError::Trap { .. }
        | SandboxError::MalformedResponse { .. } => ("GuestError", e.kind()),
        _ => ("EnvhubError", e.kind()),
    };
    raise(py, class, kind, message)
}

/// A resolution, pull or load failure.
pub fn client(py: Python<'_>, e: &ClientError) -> PyErr {
    let class = match e {
        ClientError::Sandbox { source, .. } => return sandbox_with(py, source, e.to_string()),
        ClientError::NotFound(_) | ClientError::Hub { status: 404, .. } => "NotFoundError",
        ClientError::DigestMismatch { .. } => "DigestMismatchError",
        ClientError::NoHub | ClientError::Unreachable { .. } | ClientError::Hub { .. } => "HubError",
        _ => "EnvhubError",
    };
    raise(py, class, e.kind(), e.to_string())
}

/// A bad argument from the caller (not the environment's doing).
pub fn bad_argument(py: Python<'_>, message: String) -> PyErr {
    raise(py, "BadArgumentError", "bad_argument", message)
}
