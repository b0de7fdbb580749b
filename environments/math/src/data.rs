//! Packaged data sets, one JSON object per line: GSM8K style
//! (`question`, `answer` ending in `#### N`) and MATH style (`problem`,
//! `solution` with `\boxed{}`). Each `*.jsonl` file in the data directory is
//! a split named after the file.

use std::path::Path;

use envhub_sdk::EnvError;
use serde_json::Value;

use crate::Task;

/// The data splits found in `dir` and their task counts.
pub fn splits(dir: &Path) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut splits: Vec<(String, u64)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let path = e.path();
            let name = path.file_name()?.to_str()?.strip_suffix(".jsonl")?.to_owned();
            let text = std::fs::read_to_string(&path).ok()?;
            Some((name, count_tasks(&text)))
        })
        .collect();
    splits.sort();
    splits
}

fn count_tasks(text: &str) -> u64 {
    text.lines().filter(|l| !l.trim().is_empty()).count() as u64
}

/// The task count of data split `split`, or `None` when there is none.
pub fn split_size(dir: &Path, split: &str) -> Option<u64> {
    if split.contains('/') || split.contains("..") {
        return None;
    }
    std::fs::read_to_string(dir.join(format!("{split}.jsonl"))).ok().map(|t| count_tasks(&t))
}

/// Task `index` of data split `split`.
pub fn task(dir: &Path, split: &str, index: u64) -> Result<Task, EnvError> {
    let known = || splits(dir).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    if split.contains('/') || split.contains("..") {
        return Err(EnvError::unknown_split(split, known().iter().map(String::as_str)));
    }
    let path = dir.join(format!("{split}.jsonl"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        let mut names: Vec<String> = crate::generate::SPLITS.iter().map(|s| s.to_string()).collect();
        names.extend(known());
        return Err(EnvError::unknown_split(split, names.iter().map(String::as_str)));
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let line = lines
        .get(usize::try_from(index).unwrap_or(usize::MAX))
        .ok_or_else(|| EnvError::index_out_of_range(split, index, lines.len() as u64))?;
    let value: Value =
        serde_json::from_str(line).map_err(|e| EnvError::internal(format!("{split}.jsonl line {}: {e}", index + 1)))?;
    let get = |names: &[&str]| names.iter().find_map(|n| value.get(*n).and_then(Value::as_str)).map(str::to_owned);
    let question = get(&["question", "problem"])
        .ok_or_else(|| EnvError::internal(format!("{split}.jsonl line {}: no `question`/`problem`", index + 1)))?;
    let answer = get(&["answer", "solution"])
        .ok_or_else(|| EnvError::internal(format!("{split}.jsonl line {}: no `answer`/`solution`", index + 1)))?;
    Ok(Task { id: format!("{split}/{index}"), question, answer })
}
