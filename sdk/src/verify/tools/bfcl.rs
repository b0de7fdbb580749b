//! Loader for Berkeley Function Calling Leaderboard (BFCL) single-turn entries.
//!
//! A BFCL question entry looks like
//! `{"id":"simple_0","question":[[{"role":"user","content":"..."}]],"function":[{...}]}`
//! and its answer entry like
//! `{"id":"simple_0","ground_truth":[{"calc_area":{"base":[10],"unit":["units",""]}}]}`.
//! [`parse_entry`] turns such a pair into chat messages, [`ToolSpec`]s and
//! [`ExpectedCall`]s ready for [`super::match_calls`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use super::expected::{ExpectedCall, ExpectedError};
use super::json::type_name;
use super::types::{ToolSpec, ToolSpecError};

/// A chat message of a BFCL question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, ...
    pub role: String,
    /// The message text.
    pub content: String,
}

/// A BFCL question without its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct BfclQuestion {
    /// Entry id, e.g. `simple_0`.
    pub id: String,
    /// The prompt messages (the single turn of a single-turn entry).
    pub messages: Vec<ChatMessage>,
    /// The functions offered to the model.
    pub tools: Vec<ToolSpec>,
}

/// A BFCL question joined with its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct BfclEntry {
    /// Entry id, e.g. `simple_0`.
    pub id: String,
    /// The prompt messages.
    pub messages: Vec<ChatMessage>,
    /// The functions offered to the model.
    pub tools: Vec<ToolSpec>,
    /// The calls the model is expected to make.
    pub expected: Vec<ExpectedCall>,
}

/// Why a BFCL entry could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BfclError {
    /// A line is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The entry is not a JSON object.
    #[error("entry must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong shape.
    #[error("field `{field}`: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The question has several turns (multi-turn categories are not supported).
    #[error("multi-turn entries are not supported ({0} turns)")]
    MultiTurn(usize),
    /// Question and answer ids differ.
    #[error("question id `{question}` does not match answer id `{answer}`")]
    IdMismatch {
        /// The question's id.
        question: String,
        /// The answer's id.
        answer: String,
    },
    /// A function description could not be read.
    #[error("function {index}: {source}")]
    Tool {
        /// Zero-based position in `function`.
        index: usize,
        /// Why.
        source: ToolSpecError,
    },
    /// The ground truth could not be read.
    #[error("ground truth: {0}")]
    GroundTruth(#[from] ExpectedError),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> BfclError {
    BfclError::InvalidField { field, reason: reason.into() }
}

fn entry_id(v: &Value) -> Result<String, BfclError> {
    let Value::Object(map) = v else {
        return Err(BfclError::NotAnObject(type_name(v)));
    };
    match map.get("id") {
        Some(Value::String(id)) => Ok(id.clone()),
        Some(other) => Err(invalid("id", format!("expected a string, got {}", type_name(other)))),
        None => Err(BfclError::MissingField("id")),
    }
}

/// Reads a question entry: its id, messages and functions.
///
/// `question` may be `[[messages]]` (current BFCL), `[messages]`, or a plain string (a
/// single user message, as in BFCL v1).
pub fn parse_question(question: &Value) -> Result<BfclQuestion, BfclError> {
    let id = entry_id(question)?;
    let messages = match question.get("question") {
        None => return Err(BfclError::MissingField("question")),
        Some(Value::String(text)) => vec![ChatMessage { role: String::from("user"), content: text.clone() }],
        Some(Value::Array(turns)) => parse_turns(turns)?,
        Some(other) => {
            return Err(invalid("question", format!("expected an array or string, got {}", type_name(other))));
        }
    };
    let tools = match question.get("function") {
        None => return Err(BfclError::MissingField("function")),
        Some(Value::Array(fs)) => fs
            .iter()
            .enumerate()
            .map(|(index, f)| ToolSpec::from_json(f).map_err(|source| BfclError::Tool { index, source }))
            .collect::<Result<Vec<_>, _>>()?,
        // Some older entries hold a single function object.
        Some(f @ Value::Object(_)) => {
            vec![ToolSpec::from_json(f).map_err(|source| BfclError::Tool { index: 0, source })?]
        }
        Some(other) => {
            return Err(invalid("function", format!("expected an array, got {}", type_name(other))));
        }
    };
    Ok(BfclQuestion { id, messages, tools })
}

fn parse_turns(turns: &[Value]) -> Result<Vec<ChatMessage>, BfclError> {
    // `[[msg, ...]]` (list of turns) or `[msg, ...]` (a single turn).
    let messages: &[Value] = match turns {
        [Value::Array(turn)] => turn,
        [] => &[],
        _ if turns.iter().all(Value::is_array) => return Err(BfclError::MultiTurn(turns.len())),
        _ => turns,
    };
    messages
        .iter()
        .map(|m| {
            let role = m.get("role").and_then(Value::as_str);
            let content = m.get("content").and_then(Value::as_str);
            match (role, content) {
                (Some(role), Some(content)) => Ok(ChatMessage { role: role.to_owned(), content: content.to_owned() }),
                _ => Err(invalid("question", "each message needs string `role` and `content`")),
            }
        })
        .collect()
}

/// Turns a question entry and its answer entry into messages, tools and expected calls.
pub fn parse_entry(question: &Value, answer: &Value) -> Result<BfclEntry, BfclError> {
    let q = parse_question(question)?;
    let answer_id = entry_id(answer)?;
    if answer_id != q.id {
        return Err(BfclError::IdMismatch { question: q.id, answer: answer_id });
    }
    let truth = answer.get("ground_truth").ok_or(BfclError::MissingField("ground_truth"))?;
    let expected = ExpectedCall::list_from_bfcl(truth)?;
    Ok(BfclEntry { id: q.id, messages: q.messages, tools: q.tools, expected })
}

/// [`parse_entry`] on two JSON texts (e.g. one line of each BFCL JSONL file).
pub fn parse_entry_str(question: &str, answer: &str) -> Result<BfclEntry, BfclError> {
    let q: Value = serde_json::from_str(question).map_err(|e| BfclError::Json(e.to_string()))?;
    let a: Value = serde_json::from_str(answer).map_err(|e| BfclError::Json(e.to_string()))?;
    parse_entry(&q, &a)
}

/// Pairs the lines of a BFCL question file and answer file by id.
///
/// Blank lines are skipped. Returns one result per question line, in order; a question
/// without an answer line yields [`BfclError::MissingField`]`("ground_truth")`.
pub fn parse_jsonl(questions: &str, answers: &str) -> Vec<Result<BfclEntry, BfclError>> {
    let mut by_id: Vec<(String, Value)> = Vec::new();
    for line in answers.lines().filter(|l| !l.trim().is_empty()) {
        if let Ok(v) = serde_json::from_str::<Value>(line)
            && let Ok(id) = entry_id(&v)
        {
            by_id.push((id, v));
        }
    }
    by_id.sort_by(|a, b| a.0.cmp(&b.0));
    questions
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let q: Value = serde_json::from_str(line).map_err(|e| BfclError::Json(e.to_string()))?;
            let id = entry_id(&q)?;
            let answer = by_id
                .binary_search_by(|(k, _)| k.as_str().cmp(id.as_str()))
                .ok()
                .and_then(|i| by_id.get(i))
                .map(|(_, v)| v)
                .ok_or(BfclError::MissingField("ground_truth"))?;
            parse_entry(&q, answer)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_legacy_question_shapes() {
        let q = json!({"id": "x", "question": "hi", "function": {"name": "f"}});
        let q = parse_question(&q).unwrap();
        assert_eq!(q.messages[0].role, "user");
        assert_eq!(q.tools.len(), 1);
        let q = json!({"id": "x", "question": [{"role": "user", "content": "hi"}], "function": []});
        assert_eq!(parse_question(&q).unwrap().messages.len(), 1);
    }

    #[test]
    fn rejects_multi_turn_and_bad_messages() {
        let q = json!({"id": "x", "question": [[], []], "function": []});
        assert_eq!(parse_question(&q), Err(BfclError::MultiTurn(2)));
        let q = json!({"id": "x", "question": [[{"role": "user"}]], "function": []});
        assert!(matches!(parse_question(&q), Err(BfclError::InvalidField { field: "question", .. })));
        let q = json!({"id": 3, "question": [], "function": []});
        assert!(matches!(parse_question(&q), Err(BfclError::InvalidField { field: "id", .. })));
    }

    #[test]
    fn id_mismatch_is_reported() {
        let q = json!({"id": "a", "question": [[]], "function": []});
        let a = json!({"id": "b", "ground_truth": []});
        assert!(matches!(parse_entry(&q, &a), Err(BfclError::IdMismatch { .. })));
    }
}
