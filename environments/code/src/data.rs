//! The `humaneval` split: OpenAI's HumanEval (MIT), 164 tasks, read from
//! `<data dir>/humaneval.jsonl` through `humaneval.idx`, one fixed-width
//! record of [`RECORD_LEN`] bytes per task, `"<offset> <length>\n"` (widths
//! 12 and 10), both written by `scripts/fetch-python.sh`. A task is read with
//! two seeks; the file is never parsed whole.

use std::path::PathBuf;

use envhub_sdk::error::EnvError;

use crate::Task;

/// Bytes per index record.
pub const RECORD_LEN: u64 = 24;
/// Largest task line read, in bytes.
const MAX_LINE: u64 = 1 << 20;

/// Where HumanEval is.
#[derive(Clone, Debug)]
pub struct HumanEvalStore {
    dir: PathBuf,
}

fn io_err(what: &str, e: impl std::fmt::Display) -> EnvError {
    EnvError::internal(format!("humaneval data: {what}: {e}"))
}

fn read_at(path: &std::path::Path, offset: u64, len: u64) -> Result<Vec<u8>, EnvError> {
    envhub_sdk::data::read_range(path, offset, len, MAX_LINE).map_err(|e| io_err(&path.display().to_string(), e))
}

impl HumanEvalStore {
    /// The store in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HumanEvalStore { dir: data_dir.into() }
    }

    /// The number of tasks, or `None` when the data is absent or malformed.
    pub fn count(&self) -> Option<u64> {
        let len = std::fs::metadata(self.dir.join("humaneval.idx")).ok()?.len();
        (len > 0 && len % RECORD_LEN == 0).then_some(len / RECORD_LEN)
    }

    /// Task `index`.
    pub fn load(&self, index: u64) -> Result<Task, EnvError> {
        let record = read_at(&self.dir.join("humaneval.idx"), index.saturating_mul(RECORD_LEN), RECORD_LEN)?;
        let text = std::str::from_utf8(&record).map_err(|e| io_err("index", e))?;
        let fields: Vec<u64> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        let [offset, len] = fields[..] else {
            return Err(io_err("index", format!("malformed record {index}")));
        };
        let line = read_at(&self.dir.join("humaneval.jsonl"), offset, len)?;
        let value: serde_json::Value = serde_json::from_slice(&line).map_err(|e| io_err("task", e))?;
        Task::from_json(value).map_err(|e| io_err("task", e))
    }
}
