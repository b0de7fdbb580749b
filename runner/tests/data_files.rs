//! `--data`: rows of Parquet and JSON Lines files as inline tasks. The
//! Parquet fixtures in `tests/data` were written by pyarrow 26 as Hugging
//! Face `datasets` writes its files (snappy, several row groups, the
//! `huggingface` schema metadata; and a zstd one with extra columns), from
//! the math environment's packaged samples.

mod common;

use std::path::PathBuf;

use envhub_runner::data::{ColumnMap, read_tasks};
use envhub_sdk::TaskSource;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn jsonl(path: &str) -> Vec<Value> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../environments/math/data").join(path);
    std::fs::read_to_string(root)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_datasets_parquet_file_reads_as_the_same_rows_as_its_json_lines() {
    let tasks = read_tasks(&fixture("gsm8k-sample.parquet"), &ColumnMap::default()).unwrap();
    assert_eq!(tasks, jsonl("gsm8k-sample.jsonl"));
}

#[test]
fn columns_are_mapped_to_the_task_schema_and_the_rest_left_out() {
    let map: ColumnMap = "question=problem,answer=solution".parse().unwrap();
    let tasks = read_tasks(&fixture("math-sample.zstd.parquet"), &map).unwrap();
    let source = jsonl("math-sample.jsonl");
    assert_eq!(tasks.len(), source.len());
    for (task, row) in tasks.iter().zip(&source) {
        assert_eq!(task["question"], row["problem"]);
        assert_eq!(task["answer"], row["solution"]);
        assert_eq!(task.as_object().map(|o| o.len()), Some(2), "only the mapped columns: {task}");
    }
    let err = read_tasks(&fixture("math-sample.zstd.parquet"), &"question=prompt".parse().unwrap()).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("row 0") && err.contains("`prompt`") && err.contains("problem, solution"), "{err}");
    let junk = tempfile::NamedTempFile::with_suffix(".parquet").unwrap();
    std::fs::write(junk.path(), b"not parquet").unwrap();
    assert!(read_tasks(junk.path(), &ColumnMap::default()).unwrap_err().to_string().contains("not a Parquet file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_math_environment_takes_every_row_as_an_inline_task() {
    let data = tempfile::tempdir().unwrap();
    let env = common::math_env(data.path());
    let gsm8k = read_tasks(&fixture("gsm8k-sample.parquet"), &ColumnMap::default()).unwrap();
    let math =
        read_tasks(&fixture("math-sample.zstd.parquet"), &"question=problem,answer=solution".parse().unwrap()).unwrap();
    for task in gsm8k.into_iter().chain(math) {
        let reset = env.reset(TaskSource::Inline(task.clone()), 0, Default::default()).await.unwrap();
        assert!(reset.task_id.starts_with("inline/"), "{task}: {}", reset.task_id);
    }
}
