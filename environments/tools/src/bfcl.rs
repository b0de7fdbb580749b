//! The `bfcl` split: single-turn function-calling tasks from the Berkeley
//! Function Calling Leaderboard (BFCL, Apache-2.0), categories `simple`
//! (Python), `multiple` and `parallel`.
//!
//! `scripts/fetch-bfcl.sh` extracts the question and possible-answer files
//! into `data/bfcl/` and writes `data/bfcl/index.txt`: one fixed-width record
//! of [`RECORD_LEN`] bytes per task,
//! `"<file> <question offset> <question length> <answer offset> <answer length>\n"`
//! (numbers right-aligned in widths 12, 9, 12, 9; `file` indexes
//! [`FILES`]). A task is read with three seeks, never by parsing whole files.

use std::path::PathBuf;

use envhub_sdk::error::EnvError;
use envhub_sdk::protocol::{FunctionCall, FunctionSpec, Message, Tool, ToolCall};
use envhub_sdk::verify::tools::bfcl::parse_entry;
use envhub_sdk::verify::tools::{ExpectedCall, MatchOptions, ToolSpec, match_calls, validate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Bytes per index record.
pub const RECORD_LEN: u64 = 48;
/// Largest question or answer line read, in bytes.
const MAX_LINE: u64 = 1 << 20;

/// The category and file name of each BFCL file; questions live in
/// `bfcl/<file>`, answers in `bfcl/possible_answer/<file>`.
pub const FILES: [(&str, &str); 3] = [
    ("simple", "BFCL_v4_simple_python.json"),
    ("multiple", "BFCL_v4_multiple.json"),
    ("parallel", "BFCL_v4_parallel.json"),
];

/// One BFCL task as carried in the episode state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BfclTask {
    /// BFCL entry id, e.g. `simple_python_0`.
    pub id: String,
    /// `simple`, `multiple`, `parallel` or `inline`.
    pub category: String,
    /// The prompt messages as `[role, content]` pairs.
    pub prompt: Vec<(String, String)>,
    /// The functions offered, as BFCL writes them.
    pub functions: Vec<Value>,
    /// The BFCL `ground_truth` array.
    pub ground_truth: Value,
}

/// Where the BFCL files are: `<data dir>/bfcl`.
#[derive(Clone, Debug)]
pub struct BfclStore {
    dir: PathBuf,
}

fn io_err(what: &str, e: impl std::fmt::Display) -> EnvError {
    EnvError::internal(format!("bfcl data: {what}: {e}"))
}

fn read_at(path: &std::path::Path, offset: u64, len: u64) -> Result<Vec<u8>, EnvError> {
    envhub_sdk::data::read_range(path, offset, len, MAX_LINE).map_err(|e| io_err(&path.display().to_string(), e))
}

impl BfclStore {
    /// The store under `data_dir/bfcl`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        BfclStore { dir: data_dir.into().join("bfcl") }
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.txt")
    }

    /// The number of tasks, or `None` when the data is absent or malformed.
    pub fn count(&self) -> Option<u64> {
        let len = std::fs::metadata(self.index_path()).ok()?.len();
        (len > 0 && len % RECORD_LEN == 0).then_some(len / RECORD_LEN)
    }

    /// Task `index`.
    pub fn load(&self, index: u64) -> Result<BfclTask, EnvError> {
        let record = read_at(&self.index_path(), index.saturating_mul(RECORD_LEN), RECORD_LEN)?;
        let text = std::str::from_utf8(&record).map_err(|e| io_err("index", e))?;
        let fields: Vec<u64> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        let [file, q_off, q_len, a_off, a_len] = fields[..] else {
            return Err(io_err("index", format!("malformed record {index}")));
        };
        let (category, name) =
            FILES.get(file as usize).copied().ok_or_else(|| io_err("index", format!("bad file number {file}")))?;
        let q = read_at(&self.dir.join(name), q_off, q_len)?;
        let a = read_at(&self.dir.join("possible_answer").join(name), a_off, a_len)?;
        let q: Value = serde_json::from_slice(&q).map_err(|e| io_err("question", e))?;
        let a: Value = serde_json::from_slice(&a).map_err(|e| io_err("answer", e))?;
        task_from_entry(&q, &a, category).map_err(|e| io_err("entry", e))
    }
}

/// A task from a BFCL question entry and its possible-answer entry.
pub fn task_from_entry(question: &Value, answer: &Value, category: &str) -> Result<BfclTask, String> {
    let entry = parse_entry(question, answer).map_err(|e| e.to_string())?;
    let functions = match question.get("function") {
        Some(Value::Array(fs)) => fs.clone(),
        Some(f) => vec![f.clone()],
        None => Vec::new(),
    };
    Ok(BfclTask {
        id: entry.id,
        category: category.to_owned(),
        prompt: entry.messages.into_iter().map(|m| (m.role, m.content)).collect(),
        functions,
        ground_truth: answer.get("ground_truth").cloned().unwrap_or(Value::Array(Vec::new())),
    })
}

/// Reads an inline BFCL task `{"bfcl": {"question": {...}, "answer": {...}}}`'s body.
pub fn from_inline(body: &Value) -> Result<BfclTask, String> {
    let q = body.get("question").ok_or("`bfcl.question` is missing")?;
    let a = body.get("answer").ok_or("`bfcl.answer` is missing")?;
    task_from_entry(q, a, "inline")
}

/// Rewrites BFCL's Python-flavoured schema types (`dict`, `float`, `tuple`,
/// `any`) into JSON Schema.
fn to_json_schema(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                if k == "type" {
                    match val.as_str() {
                        Some("dict") => out.insert(k.clone(), Value::from("object")),
                        Some("float") => out.insert(k.clone(), Value::from("number")),
                        Some("tuple") => out.insert(k.clone(), Value::from("array")),
                        Some("any") => None,
                        _ => out.insert(k.clone(), val.clone()),
                    };
                } else {
                    out.insert(k.clone(), to_json_schema(val));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

impl BfclTask {
    /// The functions in OpenAI tool format with JSON Schema parameters.
    pub fn tools(&self) -> Vec<Tool> {
        self.functions
            .iter()
            .filter_map(|f| {
                let spec = ToolSpec::from_json(f).ok()?;
                Some(Tool {
                    kind: "function".to_owned(),
                    function: FunctionSpec {
                        name: spec.name,
                        description: spec.description.unwrap_or_default(),
                        parameters: to_json_schema(&spec.parameters),
                    },
                })
            })
            .collect()
    }

    /// The prompt messages, with a system message when BFCL gives none.
    pub fn messages(&self) -> Vec<Message> {
        let mut out = Vec::new();
        if !self.prompt.iter().any(|(role, _)| role == "system") {
            out.push(Message::system(
                "You are an expert in composing function calls. Answer the user's request by calling the \
                 given functions with the right arguments; call several at once when the request needs several.",
            ));
        }
        for (role, content) in &self.prompt {
            out.push(if role == "system" { Message::system(content) } else { Message::user(content) });
        }
        out
    }

    fn specs(&self) -> Vec<ToolSpec> {
        self.functions.iter().filter_map(|f| ToolSpec::from_json(f).ok()).collect()
    }

    /// Whether `calls` match the ground truth; the reason when not.
    pub fn check(&self, calls: &[envhub_sdk::verify::tools::ToolCall]) -> Result<(), String> {
        let expected = ExpectedCall::list_from_bfcl(&self.ground_truth).map_err(|e| e.to_string())?;
        let options = MatchOptions { dots_to_underscores: true, ..MatchOptions::default() };
        match_calls(calls, &expected, &self.specs(), &options).map_err(|e| e.to_string())
    }

    /// Whether a call names one of the offered functions.
    pub fn knows(&self, name: &str) -> bool {
        let key = |s: &str| s.replace('.', "_");
        self.functions.iter().filter_map(|f| ToolSpec::from_json(f).ok()).any(|s| key(&s.name) == key(name))
    }

    /// The reference action: one assistant turn making the expected calls,
    /// each argument set to its first allowed value.
    pub fn reference(&self) -> Result<Vec<Message>, EnvError> {
        let expected = ExpectedCall::list_from_bfcl(&self.ground_truth)
            .map_err(|e| EnvError::invalid_task(format!("bfcl ground truth: {e}")))?;
        let specs = self.specs();
        let key = |s: &str| s.replace('.', "_");
        let tool_calls = expected
            .iter()
            .enumerate()
            .map(|(k, call)| {
                let spec = specs.iter().find(|s| key(&s.name) == key(&call.name));
                let mut args = Map::new();
                for (name, allowed) in &call.args {
                    let schema = spec.and_then(|s| s.property_schema(name)).map(to_json_schema);
                    if let Some(v) = pick_argument(allowed, schema.as_ref()) {
                        args.insert(name.clone(), v);
                    }
                }
                ToolCall {
                    id: format!("call_1_{k}"),
                    kind: "function".to_owned(),
                    function: FunctionCall { name: call.name.clone(), arguments: Value::Object(args).to_string() },
                }
            })
            .collect();
        let mut m = Message::assistant("");
        m.content = None;
        m.tool_calls = tool_calls;
        Ok(vec![m])
    }
}

/// The first allowed value that fits the argument's schema (BFCL's answers
/// occasionally list a value of the wrong type); when none fits, omission if
/// allowed, else the first value.
fn pick_argument(allowed: &[Value], schema: Option<&Value>) -> Option<Value> {
    let fits = |v: &Value| schema.is_none_or(|s| validate(s, &literal(v), "arguments").is_ok());
    match allowed.iter().find(|v| v.as_str() != Some("") && fits(v)) {
        Some(v) => Some(literal(v)),
        None if allowed.iter().any(|v| v.as_str() == Some("")) => None,
        None => pick_allowed(allowed),
    }
}

/// The first allowed value that is not the "may be omitted" marker `""`;
/// `None` when the argument is best omitted.
fn pick_allowed(allowed: &[Value]) -> Option<Value> {
    allowed.iter().find(|v| v.as_str() != Some("")).map(literal)
}

/// A literal from an allowed value: objects are patterns whose members are
/// allowed-value lists (or lone values).
fn literal(v: &Value) -> Value {
    match v {
        Value::Object(pattern) => {
            let mut out = Map::new();
            for (k, member) in pattern {
                let picked = match member {
                    Value::Array(list) => pick_allowed(list),
                    other => Some(literal(other)),
                };
                if let Some(p) = picked {
                    out.insert(k.clone(), p);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(literal).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_types_become_json_schema() {
        let s = json!({"type": "dict", "properties": {"x": {"type": "float"}, "t": {"type": "tuple"}, "a": {"type": "any", "description": "d"}}});
        assert_eq!(
            to_json_schema(&s),
            json!({"type": "object", "properties": {"x": {"type": "number"}, "t": {"type": "array"}, "a": {"description": "d"}}})
        );
    }

    #[test]
    fn reference_picks_first_allowed_values() {
        assert_eq!(pick_allowed(&[json!(""), json!(3)]), Some(json!(3)));
        assert_eq!(pick_allowed(&[json!("")]), None);
        assert_eq!(pick_allowed(&[json!({"a": [1, 2], "b": [""]})]), Some(json!({"a": 1})));
        let string = json!({"type": "string"});
        assert_eq!(pick_argument(&[json!(""), json!(true)], Some(&string)), None);
        assert_eq!(pick_argument(&[json!(1), json!("one")], Some(&string)), Some(json!("one")));
        assert_eq!(pick_argument(&[json!(1)], Some(&string)), Some(json!(1)));
    }

    #[test]
    fn missing_store_has_no_tasks() {
        let store = BfclStore::new("/definitely/not/here");
        assert_eq!(store.count(), None);
        assert!(store.load(0).is_err());
    }
}
