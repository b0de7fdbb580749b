//! The math environment: procedurally generated problems (arithmetic,
//! fractions, linear equations, word problems) at three difficulty levels,
//! packaged data sets (GSM8K-style and MATH-style), and inline tasks.
//!
//! Inline task schema: `{"question": "...", "answer": "..."}`; the answer may
//! be bare (`\frac12`), boxed, or a GSM8K solution ending in `#### N`.
//! MATH-style `{"problem": "...", "solution": "... \boxed{...}"}` is accepted too.
//!
//! Reward components: `correct` (weight 1) and `format` (answer in
//! `\boxed{}`, weight 0 unless the reset config sets `{"weights": {"format": w}}`).

pub mod data;
pub mod generate;

use std::path::PathBuf;

use envhub_sdk::prelude::*;
use envhub_sdk::verify::math::{ExtractSource, MathConfig, VerdictReason, gold_text, verify};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One task: a question and its reference answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Stable id.
    pub id: String,
    /// The problem text.
    pub question: String,
    /// The reference answer (bare, boxed, or a GSM8K solution).
    pub answer: String,
}

/// The environment; data files are read from `data_dir` (`/data` in the sandbox).
pub struct Math {
    data_dir: PathBuf,
    config: MathConfig,
}

impl Math {
    /// The environment reading its data sets from `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Math { data_dir: data_dir.into(), config: MathConfig::default() }
    }
}

/// The package name.
pub const NAME: &str = "envhub/math";

/// The system prompt.
pub const SYSTEM_PROMPT: &str = "Solve the problem step by step. Put your final answer in \\boxed{}.";

fn string_field<'a>(task: &'a Value, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| task.get(*n).and_then(Value::as_str))
}

impl SingleTurn for Math {
    type Task = Task;

    fn describe(&self) -> Description {
        let mut splits: std::collections::BTreeMap<String, Option<u64>> =
            generate::SPLITS.iter().map(|s| (s.to_string(), None)).collect();
        for (name, count) in data::splits(&self.data_dir) {
            splits.insert(name, Some(count));
        }
        Description {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Math problems with exact answer checking: generated arithmetic, fractions, linear equations and word problems, plus GSM8K- and MATH-style data".into(),
            splits,
            components: self.components(),
        }
    }

    fn components(&self) -> Vec<RewardComponent> {
        vec![
            RewardComponent { name: "correct".into(), weight: 1.0 },
            RewardComponent { name: "format".into(), weight: 0.0 },
        ]
    }

    fn split_size(&self, split: &str) -> Option<Option<u64>> {
        if generate::SPLITS.contains(&split) {
            return Some(None);
        }
        data::split_size(&self.data_dir, split).map(Some)
    }

    fn task(&self, split: &str, index: u64) -> Result<Task, EnvError> {
        if let Some(task) = generate::task(split, index) {
            return Ok(task);
        }
        data::task(&self.data_dir, split, index)
    }

    fn inline_task(&self, task: Value) -> Result<Task, EnvError> {
        if !task.is_object() {
            return Err(EnvError::invalid_task("an inline math task is an object {\"question\", \"answer\"}"));
        }
        let answer = string_field(&task, &["answer", "solution"])
            .ok_or_else(|| EnvError::invalid_task("inline math task needs a string `answer` (or `solution`)"))?;
        if answer.trim().is_empty() {
            return Err(EnvError::invalid_task("inline math task has an empty `answer`"));
        }
        let question = string_field(&task, &["question", "problem"]).unwrap_or_default();
        let id = match task.get("id").and_then(Value::as_str) {
            Some(id) => id.to_owned(),
            None => {
                format!("inline/{:016x}", envhub_sdk::rng::stable_hash(format!("{question}\u{0}{answer}").as_bytes()))
            }
        };
        Ok(Task { id, question: question.to_owned(), answer: answer.to_owned() })
    }

    fn task_id(&self, task: &Task) -> String {
        task.id.clone()
    }

    fn prompt(&self, task: &Task) -> Vec<Message> {
        vec![Message::system(SYSTEM_PROMPT), Message::user(task.question.clone())]
    }

    fn score(&self, task: &Task, completion: &str) -> Score {
        let verdict = verify(&task.answer, completion, &self.config);
        let mut score = Score::default();
        score.components.insert("correct".into(), if verdict.correct { 1.0 } else { 0.0 });
        score.components.insert("format".into(), if verdict.in_requested_form { 1.0 } else { 0.0 });
        let extracted = verdict.extracted.as_ref();
        score.metrics.insert("extracted".into(), extracted.map(|e| Value::from(e.text.clone())).unwrap_or(Value::Null));
        let source = extracted.map(|e| match e.source {
            ExtractSource::Boxed => "boxed",
            ExtractSource::Gsm8k => "gsm8k",
            ExtractSource::FinalAnswerPhrase => "final_answer_phrase",
            ExtractSource::AnswerColon => "answer_colon",
            ExtractSource::LastMath => "last_math",
            ExtractSource::Whole => "whole",
            ExtractSource::LastNumber => "last_number",
        });
        score.metrics.insert("extracted_from".into(), source.map(Value::from).unwrap_or(Value::Null));
        let reason = match verdict.reason {
            VerdictReason::NoAnswer => "no_answer".to_owned(),
            VerdictReason::Compared(eq) => format!("{eq:?}").to_lowercase(),
        };
        score.metrics.insert("verdict".into(), reason.into());
        score.metrics.insert("completion_chars".into(), completion.chars().count().into());
        score
    }

    fn reference(&self, task: &Task) -> Option<String> {
        Some(format!("The final answer is \\boxed{{{}}}.", gold_text(&task.answer)))
    }
}
