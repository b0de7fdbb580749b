//! What can go wrong finding, pulling or loading an environment.

use envhub_sandbox::SandboxError;
use envhub_sandbox::package::PackageError;

/// A failure of the client side. Every message names what was wrong and
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers to the reference: no file, crate, first-party
    /// package, hub package or matching version.
    #[error("{0}")]
    NotFound(String),
    /// A downloaded archive is not the one its digest names.
    #[error(
        "digest mismatch for {name} {version} from {source_url}: expected {expected}, got {got}; the download was discarded and nothing was run"
    )]
    DigestMismatch {
        /// `owner/name`.
        name: String,
        /// The version.
        version: String,
        /// The hub it came from.
        source_url: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        got: String,
    },
    /// No hub is configured.
    #[error("which hub? pass --hub URL (hub= in Python), set ENVHUB_HUB, or run `envhub login --hub URL --token T`")]
    NoHub,
    /// The hub could not be reached.
    #[error("{what}: cannot reach the hub at {base}: {reason}")]
    Unreachable {
        /// What was being done.
        what: String,
        /// The hub.
        base: String,
        /// The transport's error.
        reason: String,
    },
    /// The hub answered with an error status.
    #[error("{what}: the hub answered {status}: {message}")]
    Hub {
        /// What was being done.
        what: String,
        /// HTTP status code.
        status: u16,
        /// The hub's message.
        message: String,
    },
    /// An argument is malformed (a requirement, a digest, a lockfile, ...).
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The failure.
        source: std::io::Error,
    },
    /// A package could not be read.
    #[error("{context}: {source}")]
    Package {
        /// Which package.
        context: String,
        /// The failure.
        source: PackageError,
    },
    /// The sandbox refused or failed to load the module.
    #[error("{context}: {source}")]
    Sandbox {
        /// Which environment.
        context: String,
        /// The failure.
        source: SandboxError,
    },
}

impl ClientError {
    /// A [`ClientError::Io`] about `context`.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ClientError::Io { context: context.into(), source }
    }

    /// A short stable name of the error's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::NotFound(_) => "not_found",
            ClientError::DigestMismatch { .. } => "digest_mismatch",
            ClientError::NoHub => "no_hub",
            ClientError::Unreachable { .. } => "hub_unreachable",
            ClientError::Hub { status: 404, .. } => "not_found",
            ClientError::Hub { .. } => "hub_error",
            ClientError::Invalid(_) => "invalid",
            ClientError::Io { .. } => "io",
            ClientError::Package { .. } => "package",
            ClientError::Sandbox { .. } => "sandbox",
        }
    }
}
