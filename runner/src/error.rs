//! Typed errors of the runner.

use envhub_sandbox::SandboxError;

/// A policy failed to produce a turn.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The server could not be reached at all (connection refused, DNS, ...).
    #[error(
        "cannot reach the policy server at {url}: {message}. Is it running? (e.g. `vllm serve MODEL --port 8000`, then `--policy http://127.0.0.1:8000/v1`)"
    )]
    Unreachable {
        /// The base URL.
        url: String,
        /// What the HTTP client said.
        message: String,
    },
    /// The request timed out.
    #[error("policy request timed out after {secs:.1} s")]
    Timeout {
        /// The timeout.
        secs: f64,
    },
    /// The server answered with an HTTP error status.
    #[error("policy server answered HTTP {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The server answered 200 but the body is not a chat completion.
    #[error("malformed policy response: {0}")]
    Malformed(String),
    /// A bounded number of retries all failed; the last error is kept.
    #[error("policy failed after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        last: Box<PolicyError>,
    },
    /// The prompt does not fit the model's context.
    #[error("prompt of {prompt} tokens does not fit the context of {context} tokens")]
    ContextOverflow {
        /// Prompt length in tokens.
        prompt: usize,
        /// Context length.
        context: usize,
    },
    /// The in-process model failed.
    #[error("model error: {0}")]
    Model(String),
    /// Loading a model or tokenizer failed.
    #[error("cannot load model: {0}")]
    Load(String),
}

impl PolicyError {
    /// Whether a retry may succeed (timeouts, unreachable, HTTP 429 and 5xx,
    /// malformed bodies).
    pub fn is_retryable(&self) -> bool {
        match self {
            PolicyError::Unreachable { .. } | PolicyError::Timeout { .. } | PolicyError::Malformed(_) => true,
            PolicyError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// A short machine-readable kind, recorded on trajectories.
    pub fn kind(&self) -> &'static str {
        match self {
            PolicyError::Unreachable { .. } => "unreachable",
            PolicyError::Timeout { .. } => "timeout",
            PolicyError::Status { .. } => "http_status",
            PolicyError::Malformed(_) => "malformed_response",
            PolicyError::RetriesExhausted { last, .. } => last.kind(),
            PolicyError::ContextOverflow { .. } => "context_overflow",
            PolicyError::Model(_) => "model",
            PolicyError::Load(_) => "load",
        }
    }
}

/// Anything else the runner can fail at.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// An environment call failed outside a rollout (e.g. `info`).
    #[error("environment `{env}`: {source}")]
    Env {
        /// The environment.
        env: String,
        /// The sandbox error.
        source: SandboxError,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A policy error outside a rollout (e.g. loading).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A sink could not accept a group.
    #[error("sink: {0}")]
    Sink(String),
    /// A line of a trajectory file is not a trajectory.
    #[error("line {line}: not a trajectory: {message}")]
    BadTrajectory {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        message: String,
    },
    /// An environment reference could not be resolved or loaded.
    #[error(transparent)]
    Resolve(#[from] envhub_client::ClientError),
    /// Another process holds the lock of a trajectory API log.
    #[error(
        "{path}: another trajectory API server is using this log (it holds the log's lock); stop that server or give this one another store"
    )]
    LogLocked {
        /// The log file.
        path: String,
    },
    /// A failed append could not be cut back, so the log's tail is unknown
    /// and nothing more is written to it.
    #[error(
        "{path}: a failed append could not be undone ({reason}); restart the server to recover from the last good record"
    )]
    LogBroken {
        /// The log file.
        path: String,
        /// Why cutting it back failed.
        reason: String,
    },
    /// A data file (`--data`) could not be read as tasks.
    #[error("{path}: {message}")]
    Data {
        /// The data file.
        path: String,
        /// What is wrong, and where (line or row).
        message: String,
    },
    /// The trajectory API's PostgreSQL store failed.
    #[error(
        "the trajectory store's database: {message} (check that PostgreSQL is up and the `postgres://` store URL is right)"
    )]
    Database {
        /// What the database or its driver said.
        message: String,
    },
    /// A whole record of a log is not a record (not a torn tail).
    #[error("{path}: corrupt record at byte {offset}: {message}")]
    LogCorrupt {
        /// The log file.
        path: String,
        /// Where the record starts.
        offset: u64,
        /// The parse error.
        message: String,
    },
}

impl RunnerError {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        RunnerError::Io { path: path.as_ref().display().to_string(), source }
    }
}
