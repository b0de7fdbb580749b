//! Guest ABI v1: the JSON requests a host writes to an environment's stdin and
//! the responses the environment writes to stdout.
//!
//! Host and guest share these types, so a request the host can build is one the
//! guest can read. Every call is a pure function of its request: state that
//! spans an episode travels in [`ResetResponse::state`] and
//! [`StepRequest::state`], never in the instance.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EnvError;

/// The protocol version this crate speaks; requests carry it in field `v`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Who wrote a chat message (OpenAI roles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the task.
    System,
    /// The task, or feedback written as the user.
    User,
    /// The policy.
    Assistant,
    /// The result of a tool call.
    Tool,
}

/// A chat message in the OpenAI format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text, if any (an assistant turn may carry only tool calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Tool calls made by an assistant turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a `tool` message: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For a `tool` message: the tool's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    fn with_content(role: Role, content: impl Into<String>) -> Self {
        Message { role, content: Some(content.into()), tool_calls: Vec::new(), tool_call_id: None, name: None }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::with_content(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::with_content(Role::User, content)
    }

    /// An assistant message with text only.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::with_content(Role::Assistant, content)
    }

    /// The answer to tool call `call_id` of tool `name`.
    pub fn tool(call_id: impl Into<String>, name: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: Role::Tool,
            content: Some(content.into()),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
            name: Some(name.into()),
        }
    }

    /// The text of the message, or `""` when it has none.
    pub fn text(&self) -> &str {
        self.content.as_deref().unwrap_or("")
    }

    /// An assistant turn from an OpenAI-style message object as trainers and
    /// clients hand it over: a missing `role` is the assistant, content given
    /// as a list of parts keeps their text, tool-call arguments given as an
    /// object are encoded as the JSON string OpenAI sends, and missing call
    /// ids are numbered (`call_0`, ...). Anything else is an error naming
    /// what is wrong.
    pub fn assistant_from_json(value: Value) -> Result<Message, String> {
        let Value::Object(mut m) = value else {
            return Err("an assistant message is an object with `content` and/or `tool_calls`".to_owned());
        };
        m.entry("role").or_insert_with(|| Value::String("assistant".into()));
        if let Some(Value::Array(parts)) = m.get("content") {
            let text: String = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
            m.insert("content".into(), Value::String(text));
        }
        if let Some(Value::Array(calls)) = m.get_mut("tool_calls") {
            for (i, call) in calls.iter_mut().enumerate() {
                let Value::Object(call) = call else { continue };
                call.entry("id").or_insert_with(|| Value::String(format!("call_{i}")));
                if let Some(Value::Object(f)) = call.get_mut("function")
                    && let Some(args) = f.get_mut("arguments")
                    && !args.is_string()
                {
                    *args = Value::String(args.to_string());
                }
            }
        }
        let message: Message =
            serde_json::from_value(Value::Object(m)).map_err(|e| format!("not an OpenAI assistant message: {e}"))?;
        if message.role != Role::Assistant {
            return Err("the message must be the assistant's (role `assistant`)".to_owned());
        }
        Ok(message)
    }
}

/// One tool call in an assistant message (OpenAI format).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id, echoed by the tool message that answers it.
    pub id: String,
    /// Always `"function"`.
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    /// The function and its arguments.
    pub function: FunctionCall,
}

fn function_kind() -> String {
    "function".to_owned()
}

/// The function named by a [`ToolCall`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Function name.
    pub name: String,
    /// Arguments as a JSON-encoded string, as OpenAI sends them. The policy
    /// wrote this string, so it may not be valid JSON.
    pub arguments: String,
}

/// A tool the policy may call, in the OpenAI function-tool format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Always `"function"`.
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    /// The function's name, description and JSON Schema.
    pub function: FunctionSpec,
}

/// Name, description and parameter schema of a tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    /// Function name.
    pub name: String,
    /// What it does, for the policy.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments object.
    #[serde(default)]
    pub parameters: Value,
}

/// A reward: the weighted total and the components it was made from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reward {
    /// `sum(weight * component)` over the declared components.
    pub total: f64,
    /// Each component's value, by name.
    #[serde(default)]
    pub components: BTreeMap<String, f64>,
}

/// Free-form measurements reported with a step (extracted answer, lengths, ...).
pub type Metrics = BTreeMap<String, Value>;

/// One named part of the reward and its weight in the total.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardComponent {
    /// Component name, the key in [`Reward::components`].
    pub name: String,
    /// Weight in [`Reward::total`].
    pub weight: f64,
}

/// Where a task comes from: a split of the environment's own data, or a task
/// the caller brings (inline).
#[derive(Clone, Debug, PartialEq)]
pub enum TaskSource {
    /// Task `index` of split `split`.
    Split {
        /// Split name, e.g. `train` or `test`.
        split: String,
        /// Task index within the split.
        index: u64,
    },
    /// A task object in the environment's documented inline schema.
    Inline(Value),
}

#[derive(Serialize, Deserialize)]
struct RawTaskSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    split: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    task: Option<Value>,
}

impl TryFrom<RawTaskSource> for TaskSource {
    type Error = String;

    fn try_from(raw: RawTaskSource) -> Result<Self, String> {
        match (raw.split, raw.index, raw.task) {
            (None, None, Some(task)) => Ok(TaskSource::Inline(task)),
            (Some(split), Some(index), None) => Ok(TaskSource::Split { split, index }),
            (Some(_), None, None) => Err("field `split` needs field `index`".to_owned()),
            (None, Some(_), None) => Err("field `index` needs field `split`".to_owned()),
            (None, None, None) => Err("give either `split` and `index`, or an inline `task`".to_owned()),
            _ => Err("give either `split` and `index`, or an inline `task`, not both".to_owned()),
        }
    }
}

impl From<TaskSource> for RawTaskSource {
    fn from(source: TaskSource) -> Self {
        match source {
            TaskSource::Split { split, index } => RawTaskSource { split: Some(split), index: Some(index), task: None },
            TaskSource::Inline(task) => RawTaskSource { split: None, index: None, task: Some(task) },
        }
    }
}

impl Serialize for TaskSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawTaskSource::from(self.clone()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TaskSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawTaskSource::deserialize(deserializer)?;
        TaskSource::try_from(raw).map_err(serde::de::Error::custom)
    }
}

/// A request, with the protocol version it was written for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Protocol version; this crate speaks [`PROTOCOL_VERSION`].
    pub v: u32,
    /// The operation and its fields.
    #[serde(flatten)]
    pub request: Request,
}

impl Envelope {
    /// Wraps `request` for the current protocol version.
    pub fn new(request: Request) -> Self {
        Envelope { v: PROTOCOL_VERSION, request }
    }
}

/// The operations of protocol v1, tagged by field `op`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Describe the environment.
    Info,
    /// Start an episode.
    Reset(ResetRequest),
    /// Apply one policy action.
    Step(StepRequest),
    /// Give a task's reference action(s).
    Validate(ValidateRequest),
}

/// Fields of `reset`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResetRequest {
    /// Which task.
    #[serde(flatten)]
    pub source: TaskSource,
    /// Seed of every random choice this episode makes.
    #[serde(default)]
    pub seed: u64,
    /// Environment arguments (e.g. reward weights), documented per environment.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub config: serde_json::Map<String, Value>,
}

/// Fields of `step`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRequest {
    /// The state returned by the previous `reset` or `step`.
    pub state: Value,
    /// The policy's turn.
    pub action: Message,
}

/// Fields of `validate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidateRequest {
    /// Which task.
    #[serde(flatten)]
    pub source: TaskSource,
}

/// The `ok` body of `info`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfoResponse {
    /// Environment name.
    pub name: String,
    /// Environment version (semver).
    pub version: String,
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// Task count of each split; `null` for a procedural generator that
    /// accepts any index.
    pub splits: BTreeMap<String, Option<u64>>,
    /// The most policy turns an episode may take.
    pub max_turns: u32,
    /// Tools offered to the policy.
    #[serde(default)]
    pub tools: Vec<Tool>,
    /// Reward components and their weights.
    pub reward_components: Vec<RewardComponent>,
    /// Host capabilities the environment uses (e.g. `code:python`).
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl InfoResponse {
    /// The total reward of a perfect episode: the sum of positive weights.
    pub fn max_reward(&self) -> f64 {
        self.reward_components.iter().map(|c| c.weight).filter(|w| *w > 0.0).sum()
    }
}

/// The `ok` body of `reset`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResetResponse {
    /// Stable id of the task (the same task gives the same id).
    pub task_id: String,
    /// The opening messages (system and user).
    pub messages: Vec<Message>,
    /// Tools offered in this episode.
    #[serde(default)]
    pub tools: Vec<Tool>,
    /// Opaque episode state to send with the next `step`.
    pub state: Value,
}

/// The `ok` body of `step`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResponse {
    /// New messages for the policy (tool results, feedback).
    #[serde(default)]
    pub messages: Vec<Message>,
    /// Whether the episode is over.
    pub done: bool,
    /// Reward of the episode so far (final once `done`).
    pub reward: Reward,
    /// Measurements.
    #[serde(default)]
    pub metrics: Metrics,
    /// Opaque episode state to send with the next `step`.
    pub state: Value,
}

/// The `ok` body of `validate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidateResponse {
    /// Assistant turns that, stepped in order, earn full reward.
    pub actions: Vec<Message>,
}

/// What an environment writes to stdout: `{"ok": …}` or `{"error": …}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response<T> {
    /// The operation's result.
    Ok(T),
    /// Why the operation failed.
    Error(EnvError),
}

impl<T> Response<T> {
    /// Turns the response into a `Result`.
    pub fn into_result(self) -> Result<T, EnvError> {
        match self {
            Response::Ok(v) => Ok(v),
            Response::Error(e) => Err(e),
        }
    }
}

impl<T> From<Result<T, EnvError>> for Response<T> {
    fn from(result: Result<T, EnvError>) -> Self {
        match result {
            Ok(v) => Response::Ok(v),
            Err(e) => Response::Error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reset_request_round_trips_in_wire_form() {
        let wire = json!({"v": 1, "op": "reset", "split": "train", "index": 3, "seed": 7});
        let env: Envelope = serde_json::from_value(wire.clone()).expect("parse");
        assert_eq!(
            env.request,
            Request::Reset(ResetRequest {
                source: TaskSource::Split { split: "train".into(), index: 3 },
                seed: 7,
                config: Default::default(),
            })
        );
        assert_eq!(serde_json::to_value(&env).expect("serialise"), wire);
    }

    #[test]
    fn inline_task_and_split_cannot_both_be_given() {
        let wire = json!({"v": 1, "op": "reset", "split": "train", "index": 0, "task": {}});
        let err = serde_json::from_value::<Envelope>(wire).expect_err("must fail");
        assert!(err.to_string().contains("not both"), "{err}");
    }

    #[test]
    fn split_without_index_names_the_missing_field() {
        let wire = json!({"v": 1, "op": "validate", "split": "train"});
        let err = serde_json::from_value::<Envelope>(wire).expect_err("must fail");
        assert!(err.to_string().contains("`index`"), "{err}");
    }

    #[test]
    fn tool_calls_use_the_openai_shape() {
        let wire = json!({"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1}"}}
        ]});
        let m: Message = serde_json::from_value(wire.clone()).expect("parse");
        assert_eq!(m.tool_calls[0].function.name, "add");
        assert_eq!(serde_json::to_value(&m).expect("serialise"), wire);
    }

    #[test]
    fn assistant_messages_are_read_as_trainers_write_them() {
        let m = Message::assistant_from_json(json!({
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]
        }))
        .expect("message");
        assert_eq!(m.role, Role::Assistant);
        assert_eq!(m.text(), "ab");
        assert_eq!(m.tool_calls[0].id, "call_0");
        assert_eq!(m.tool_calls[0].function.arguments, "{\"x\":1}");
        let err = Message::assistant_from_json(json!({"role": "user", "content": "x"})).expect_err("user");
        assert!(err.contains("assistant"), "{err}");
        assert!(Message::assistant_from_json(json!("text")).is_err());
        assert!(Message::assistant_from_json(json!({"tool_calls": [{"function": {}}]})).is_err());
    }

    #[test]
    fn responses_are_ok_or_error() {
        let ok: Response<ValidateResponse> = serde_json::from_value(json!({"ok": {"actions": []}})).expect("parse");
        assert!(ok.into_result().is_ok());
        let err: Response<ValidateResponse> =
            serde_json::from_value(json!({"error": {"kind": "unknown_split", "message": "no split `x`"}}))
                .expect("parse");
        assert_eq!(err.into_result().expect_err("error").kind, crate::ErrorKind::UnknownSplit);
    }
}
