//! The error an environment returns instead of a result.

use serde::{Deserialize, Serialize};

/// What went wrong, as a stable machine-readable kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request was not valid JSON of the protocol, or named an unknown op.
    BadRequest,
    /// The request's protocol version is not spoken by this environment.
    UnsupportedVersion,
    /// No split of that name.
    UnknownSplit,
    /// The split has fewer tasks than the index asked for.
    IndexOutOfRange,
    /// An inline task does not follow the environment's task schema.
    InvalidTask,
    /// A `step` carried a state this environment did not produce.
    InvalidState,
    /// The action is not something the environment can apply.
    InvalidAction,
    /// A `step` after the episode ended.
    EpisodeOver,
    /// The environment does not implement this operation.
    Unsupported,
    /// A bug in the environment.
    Internal,
}

impl ErrorKind {
    /// The kind's wire name, e.g. `unknown_split`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::UnknownSplit => "unknown_split",
            ErrorKind::IndexOutOfRange => "index_out_of_range",
            ErrorKind::InvalidTask => "invalid_task",
            ErrorKind::InvalidState => "invalid_state",
            ErrorKind::InvalidAction => "invalid_action",
            ErrorKind::EpisodeOver => "episode_over",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error reported by an environment: `{"kind": …, "message": …}` on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct EnvError {
    /// Machine-readable kind.
    pub kind: ErrorKind,
    /// What was wrong, for a person.
    pub message: String,
}

impl EnvError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EnvError { kind, message: message.into() }
    }

    /// [`ErrorKind::BadRequest`].
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// [`ErrorKind::UnknownSplit`], listing the splits that exist.
    pub fn unknown_split<'a>(split: &str, known: impl IntoIterator<Item = &'a str>) -> Self {
        let known: Vec<&str> = known.into_iter().collect();
        Self::new(ErrorKind::UnknownSplit, format!("no split `{split}`; splits are: {}", known.join(", ")))
    }

    /// [`ErrorKind::IndexOutOfRange`].
    pub fn index_out_of_range(split: &str, index: u64, len: u64) -> Self {
        Self::new(ErrorKind::IndexOutOfRange, format!("split `{split}` has {len} tasks; index {index} is out of range"))
    }

    /// [`ErrorKind::InvalidTask`].
    pub fn invalid_task(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidTask, message)
    }

    /// [`ErrorKind::InvalidState`].
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidState, message)
    }

    /// [`ErrorKind::InvalidAction`].
    pub fn invalid_action(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidAction, message)
    }

    /// [`ErrorKind::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}
