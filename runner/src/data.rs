//! Your own data as tasks: the rows of a JSON Lines or Parquet file (the
//! formats Hugging Face datasets are shipped in) become inline tasks, so a
//! trainer runs GSM8K or MATH from its own copy.
//!
//! A row becomes the environment's inline task as it is, or, with a
//! [`ColumnMap`], as an object of the mapped columns only, renamed:
//! `question=problem,answer=solution` makes `{"question": row.problem,
//! "answer": row.solution}`. Each environment documents its inline task
//! schema (the math environment takes GSM8K's and MATH's rows unchanged).

use std::io::BufRead;
use std::path::Path;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::error::RunnerError;

/// The most rows one data file may give.
pub const MAX_ROWS: usize = 10_000_000;

/// Task fields taken from dataset columns: `(task field, column)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColumnMap(Vec<(String, String)>);

impl FromStr for ColumnMap {
    type Err = String;

    /// `FIELD=COLUMN[,FIELD=COLUMN...]`; a bare `NAME` keeps a column under its own name.
    fn from_str(text: &str) -> Result<ColumnMap, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, column) = part.split_once('=').unwrap_or((part, part));
            let (field, column) = (field.trim(), column.trim());
            if field.is_empty() || column.is_empty() {
                return Err(format!("`{part}` is not FIELD=COLUMN"));
            }
            if pairs.iter().any(|(f, _)| f == field) {
                return Err(format!("the task field `{field}` is mapped twice"));
            }
            pairs.push((field.to_owned(), column.to_owned()));
        }
        if pairs.is_empty() {
            return Err("an empty column map; write FIELD=COLUMN pairs such as question=problem,answer=solution".into());
        }
        Ok(ColumnMap(pairs))
    }
}

impl ColumnMap {
    /// The task `row` gives: the row itself without a map, else the mapped
    /// columns under their task names. `where_` names the row in errors.
    fn apply(&self, row: Value, where_: &str) -> Result<Value, String> {
        let Value::Object(row) = row else {
            return Err(format!("{where_} is not an object (a row of named columns)"));
        };
        if self.0.is_empty() {
            return Ok(Value::Object(row));
        }
        let mut task = Map::new();
        for (field, column) in &self.0 {
            let Some(value) = row.get(column).cloned() else {
                let mut known: Vec<&String> = row.keys().collect();
                known.sort();
                let known: Vec<&str> = known.iter().map(|k| k.as_str()).collect();
                return Err(format!("{where_} has no column `{column}` (it has: {})", known.join(", ")));
            };
            task.insert(field.clone(), value);
        }
        Ok(Value::Object(task))
    }
}

/// The tasks in `path`: `.jsonl`/`.ndjson`/`.json` (one JSON object per
/// line; blank lines skipped) or `.parquet`, through `columns`.
pub fn read_tasks(path: &Path, columns: &ColumnMap) -> Result<Vec<Value>, RunnerError> {
    let fail = |message: String| RunnerError::Data { path: path.display().to_string(), message };
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    let tasks = match ext.as_str() {
        "parquet" => parquet_tasks(path, columns).map_err(fail)?,
        "jsonl" | "ndjson" | "json" => jsonl_tasks(path, columns).map_err(fail)?,
        other => {
            return Err(fail(format!(
                "unknown data format `.{other}`: give a .jsonl (JSON Lines) or .parquet file, as Hugging Face datasets ship"
            )));
        }
    };
    if tasks.is_empty() {
        return Err(fail("holds no rows".into()));
    }
    Ok(tasks)
}

fn too_many() -> String {
    format!("has more than {MAX_ROWS} rows; split it")
}

fn jsonl_tasks(path: &Path, columns: &ColumnMap) -> Result<Vec<Value>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut tasks = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        if tasks.len() >= MAX_ROWS {
            return Err(too_many());
        }
        let where_ = format!("line {}", i + 1);
        let row: Value = serde_json::from_str(&line).map_err(|e| format!("{where_} is not JSON: {e}"))?;
        tasks.push(columns.apply(row, &where_)?);
    }
    Ok(tasks)
}

fn parquet_tasks(path: &Path, columns: &ColumnMap) -> Result<Vec<Value>, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = SerializedFileReader::new(file).map_err(|e| format!("not a Parquet file: {e}"))?;
    let rows = reader.metadata().file_metadata().num_rows();
    if usize::try_from(rows).map_or(true, |n| n > MAX_ROWS) {
        return Err(too_many());
    }
    let mut tasks = Vec::with_capacity(usize::try_from(rows).unwrap_or(0));
    for (i, row) in reader.get_row_iter(None).map_err(|e| e.to_string())?.enumerate() {
        let where_ = format!("row {i}");
        let row = row.map_err(|e| format!("{where_}: {e}"))?;
        tasks.push(columns.apply(row.to_json_value(), &where_)?);
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_maps_parse_rename_and_refuse_what_is_wrong() {
        let map: ColumnMap = "question=problem, answer=solution,level".parse().expect("a map");
        let row = serde_json::json!({"problem": "1+1", "solution": "2", "level": 3, "extra": true});
        let task = map.apply(row, "row 0").expect("a task");
        assert_eq!(task, serde_json::json!({"question": "1+1", "answer": "2", "level": 3}));
        let err = map.apply(serde_json::json!({"problem": "x"}), "line 4").expect_err("missing");
        assert!(err.contains("line 4") && err.contains("`solution`") && err.contains("problem"), "{err}");
        assert!("".parse::<ColumnMap>().is_err());
        assert!("a=b,a=c".parse::<ColumnMap>().is_err());
        assert!("=b".parse::<ColumnMap>().is_err());
        // Without a map the row is the task.
        let row = serde_json::json!({"question": "q", "answer": "a"});
        assert_eq!(ColumnMap::default().apply(row.clone(), "row 0"), Ok(row));
        assert!(ColumnMap::default().apply(serde_json::json!([1]), "line 1").is_err());
    }

    #[test]
    fn json_lines_skip_blank_lines_and_name_the_bad_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.jsonl");
        std::fs::write(
            &path,
            "{\"question\": \"q1\", \"answer\": \"1\"}\n\n{\"question\": \"q2\", \"answer\": \"2\"}\n",
        )
        .expect("write");
        let tasks = read_tasks(&path, &ColumnMap::default()).expect("tasks");
        assert_eq!(tasks.len(), 2);
        std::fs::write(&path, "{\"question\": \"q1\"}\n{oops\n").expect("write");
        let err = read_tasks(&path, &ColumnMap::default()).expect_err("bad line").to_string();
        assert!(err.contains("line 2") && err.contains("d.jsonl"), "{err}");
        let csv = dir.path().join("d.csv");
        std::fs::write(&csv, "a,b\n").expect("write");
        let err = read_tasks(&csv, &ColumnMap::default()).expect_err("format").to_string();
        assert!(err.contains(".csv") && err.contains(".parquet"), "{err}");
        std::fs::write(&path, "\n\n").expect("write");
        assert!(read_tasks(&path, &ColumnMap::default()).expect_err("empty").to_string().contains("no rows"));
    }
}
