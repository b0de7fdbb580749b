//! An OpenEnv-compatible environment server (the protocol of
//! `openenv-core` 0.3), so the OpenEnv clients that TRL, SkyRL and
//! verifiers use drive any envhub environment.
//!
//! - WebSocket `/ws`, one episode per connection: the client sends JSON text
//!   frames `{"type": "reset", "data": {...}}`, `{"type": "step", "data":
//!   ACTION}`, `{"type": "state"}`, `{"type": "close"}`; each but `close` gets
//!   exactly one reply, in order: `{"type": "observation", "data":
//!   {"observation": {...}, "reward": R, "done": B}}`, `{"type": "state",
//!   "data": {...}}` or `{"type": "error", "data": {"message", "code"}}`
//!   (codes `INVALID_JSON`, `UNKNOWN_TYPE`, `VALIDATION_ERROR`,
//!   `EXECUTION_ERROR`, which keep the session, and `CAPACITY_REACHED`,
//!   `SESSION_ERROR`, which close it). Past `max_sessions` a connection is
//!   accepted, sent `CAPACITY_REACHED` and closed, as OpenEnv does.
//! - `reset` data: `split` and `index` (a task of the environment's own;
//!   the split defaults to the server's; the index to `seed` when one is
//!   given, else to the next task of a server-wide counter, so clients that
//!   reset without arguments walk through the split), or `task` (an inline
//!   task); `seed` (default 0); `config` (merged over the server's);
//!   `episode_id`. Other keys are ignored, as OpenEnv ignores keys its
//!   environments do not take.
//! - An action is an OpenAI assistant message (`content` and/or
//!   `tool_calls`), or OpenEnv's MCP form `{"type": "call_tool",
//!   "tool_name": ..., "arguments": {...}}` for one tool call.
//! - Observations: after `reset` `{"task_id", "messages", "tools"}`, after
//!   `step` `{"messages", "components", "metrics"}`; `reward` and `done`
//!   sit beside them.
//! - HTTP: `GET /health`, `/metadata`, `/schema`, `/state`, `/openapi.json`;
//!   `POST /reset` and `/step`, stateless as in OpenEnv: since envhub
//!   episodes keep their state in the request, `/reset` returns the
//!   episode's `envhub_state` in the observation and `/step` takes it back
//!   as `{"action": ..., "state": ...}`; `POST /mcp` answers JSON-RPC 2.0
//!   (no MCP methods yet).
//!
//! Environment calls run on blocking threads; the socket is read all the
//! while, so pings are answered during a long step.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use envhub_sandbox::EnvModule;
use envhub_sdk::{FunctionCall, InfoResponse, Message, TaskSource, ToolCall};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};

use crate::error::RunnerError;

/// How the OpenEnv server behaves.
#[derive(Clone, Debug)]
pub struct OpenEnvConfig {
    /// WebSocket sessions at once.
    pub max_sessions: usize,
    /// Environment configuration of every episode.
    pub env_config: Map<String, Value>,
    /// The split `reset` draws from when the client names none (default:
    /// `train` if there is one, else the first).
    pub split: Option<String>,
    /// The package's README, served as `readme_content`.
    pub readme: Option<String>,
    /// Largest message or request body, in bytes.
    pub max_message_bytes: usize,
}

impl Default for OpenEnvConfig {
    fn default() -> Self {
        OpenEnvConfig {
            max_sessions: 256,
            env_config: Map::new(),
            split: None,
            readme: None,
            max_message_bytes: 16 << 20,
        }
    }
}

struct Shared {
    module: EnvModule,
    info: InfoResponse,
    digest: String,
    split: String,
    config: OpenEnvConfig,
    sessions: AtomicUsize,
    /// The index of the next reset that names neither `index` nor `seed`.
    next_index: AtomicU64,
}

/// An OpenEnv server for one environment.
#[derive(Clone)]
pub struct OpenEnvServer {
    shared: Arc<Shared>,
}

/// A refused request: OpenEnv's error code and a message.
#[derive(Debug)]
struct Refusal {
    code: &'static str,
    message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// One episode of a session.
#[derive(Default)]
struct Episode {
    episode_id: Option<String>,
    task_id: Option<String>,
    state: Option<Value>,
    done: bool,
    step_count: u64,
}

impl Episode {
    fn state_json(&self) -> Value {
        json!({
            "episode_id": self.episode_id,
            "step_count": self.step_count,
            "task_id": self.task_id,
            "done": self.done,
        })
    }
}

/// The action of a step: an OpenAI assistant message, or OpenEnv's MCP
/// `call_tool` form.
fn parse_action(data: Value) -> Result<Message, Refusal> {
    if data.get("type").and_then(Value::as_str) == Some("call_tool") {
        let name = data
            .get("tool_name")
            .and_then(Value::as_str)
            .ok_or_else(|| refuse("VALIDATION_ERROR", "a `call_tool` action needs a string `tool_name`"))?;
        let arguments = data.get("arguments").cloned().unwrap_or_else(|| json!({}));
        let mut message = Message::assistant("");
        message.content = None;
        message.tool_calls.push(ToolCall {
            id: "call_0".into(),
            kind: "function".into(),
            function: FunctionCall { name: name.to_owned(), arguments: arguments.to_string() },
        });
        return Ok(message);
    }
    Message::assistant_from_json(data).map_err(|e| refuse("VALIDATION_ERROR", format!("the action: {e}")))
}

impl OpenEnvServer {
    /// A server for `module` (blocking: calls `info`).
    pub fn new(module: EnvModule, digest: String, config: OpenEnvConfig) -> Result<Self, RunnerError> {
        let info = module.info().map_err(|e| RunnerError::Env { env: digest.clone(), source: e })?;
        let split = match &config.split {
            Some(s) if info.splits.contains_key(s) => s.clone(),
            Some(s) => {
                let known: Vec<&str> = info.splits.keys().map(String::as_str).collect();
                return Err(RunnerError::Config(format!("no split `{s}`; splits are: {}", known.join(", "))));
            }
            None if info.splits.contains_key("train") => "train".to_owned(),
            None => info.splits.keys().next().cloned().unwrap_or_default(),
        };
        let (sessions, next_index) = (AtomicUsize::new(0), AtomicU64::new(0));
        Ok(OpenEnvServer { shared: Arc::new(Shared { module, info, digest, split, config, sessions, next_index }) })
    }

    /// Starts an episode as `data` says; returns the observation payload.
    async fn reset(&self, data: &Map<String, Value>, http: bool) -> Result<(Value, Episode), Refusal> {
        let given_seed = match data.get("seed") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| refuse("VALIDATION_ERROR", "`seed` must be an integer >= 0"))?),
        };
        let seed = given_seed.unwrap_or(0);
        let episode_id = match data.get("episode_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.len() <= 255 => Some(s.clone()),
            Some(_) => {
                return Err(refuse("VALIDATION_ERROR", "`episode_id` must be a string of at most 255 characters"));
            }
        };
        let source = match (data.get("task"), data.get("split"), data.get("index")) {
            (Some(task), None, None) if task.is_object() => TaskSource::Inline(task.clone()),
            (Some(_), None, None) => return Err(refuse("VALIDATION_ERROR", "`task` must be an object")),
            (Some(_), _, _) => return Err(refuse("VALIDATION_ERROR", "give `task`, or `split` and `index`, not both")),
            (None, split, index) => {
                let split = match split {
                    None | Some(Value::Null) => self.shared.split.clone(),
                    Some(Value::String(s)) => s.clone(),
                    Some(_) => return Err(refuse("VALIDATION_ERROR", "`split` must be a string")),
                };
                let index = match index {
                    None | Some(Value::Null) => {
                        given_seed.unwrap_or_else(|| self.shared.next_index.fetch_add(1, Ordering::SeqCst))
                    }
                    Some(v) => {
                        v.as_u64().ok_or_else(|| refuse("VALIDATION_ERROR", "`index` must be an integer >= 0"))?
                    }
                };
                TaskSource::Split { split, index }
            }
        };
        let mut config = self.shared.config.env_config.clone();
        match data.get("config") {
            None | Some(Value::Null) => {}
            Some(Value::Object(c)) => config.extend(c.clone()),
            Some(_) => return Err(refuse("VALIDATION_ERROR", "`config` must be an object")),
        }
        let module = self.shared.module.clone();
        let reset = blocking(move || module.reset(source, seed, config)).await?;
        let mut observation = json!({ "task_id": reset.task_id, "messages": reset.messages, "tools": reset.tools });
        if http {
            observation["envhub_state"] = reset.state.clone();
        }
        let episode =
            Episode { episode_id, task_id: Some(reset.task_id), state: Some(reset.state), done: false, step_count: 0 };
        Ok((json!({ "observation": observation, "reward": Value::Null, "done": false }), episode))
    }

    /// Applies `action` to `episode`; returns the observation payload.
    async fn step(&self, episode: &mut Episode, action: Value, http: bool) -> Result<Value, Refusal> {
        let action = parse_action(action)?;
        let state =
            episode.state.clone().ok_or_else(|| refuse("EXECUTION_ERROR", "no episode yet: send a reset first"))?;
        let module = self.shared.module.clone();
        let step = blocking(move || module.step(state, action)).await?;
        episode.step_count += 1;
        episode.done = step.done;
        let mut observation =
            json!({ "messages": step.messages, "components": step.reward.components, "metrics": step.metrics });
        if http {
            observation["envhub_state"] = step.state.clone();
        }
        episode.state = Some(step.state);
        Ok(json!({ "observation": observation, "reward": step.reward.total, "done": step.done }))
    }

    /// The HTTP and WebSocket routes.
    pub fn router(self) -> Router {
        let limit = self.shared.config.max_message_bytes;
        Router::new()
            .route("/ws", get(ws))
            .route("/health", get(|| async { axum::Json(json!({ "status": "healthy" })) }))
            .route("/metadata", get(metadata))
            .route("/schema", get(|| async { axum::Json(schema()) }))
            .route("/state", get(|| async { axum::Json(Episode::default().state_json()) }))
            .route("/openapi.json", get(|| async { axum::Json(openapi()) }))
            .route("/reset", post(http_reset))
            .route("/step", post(http_step))
            .route("/mcp", post(mcp))
            .layer(DefaultBodyLimit::max(limit))
            .with_state(self)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, envhub_sandbox::SandboxError> + Send + 'static,
) -> Result<T, Refusal> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(refuse("EXECUTION_ERROR", e.to_string())),
        Err(e) => Err(refuse("EXECUTION_ERROR", format!("the environment call panicked: {e}"))),
    }
}

fn frame(kind: &str, data: Value) -> WsMessage {
    WsMessage::Text(json!({ "type": kind, "data": data }).to_string().into())
}

fn error_frame(r: &Refusal) -> WsMessage {
    frame("error", json!({ "message": r.message, "code": r.code }))
}

/// Counts a session for as long as it lives.
struct SessionSlot(Arc<Shared>);

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn ws(State(server): State<OpenEnvServer>, upgrade: WebSocketUpgrade) -> Response {
    let limit = server.shared.config.max_message_bytes;
    upgrade.max_message_size(limit).max_frame_size(limit).on_upgrade(move |socket| session(server, socket))
}

async fn session(server: OpenEnvServer, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let active = server.shared.sessions.fetch_add(1, Ordering::SeqCst);
    let _slot = SessionSlot(server.shared.clone());
    let max = server.shared.config.max_sessions;
    if active >= max {
        let r = refuse("CAPACITY_REACHED", format!("{active} of {max} sessions are in use; try again later"));
        let _ = sink.send(error_frame(&r)).await;
        let _ = sink.send(WsMessage::Close(Some(CloseFrame { code: 1000, reason: "capacity reached".into() }))).await;
        return;
    }
    // Read the socket all the time (answering pings) while steps run.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<WsMessage, axum::Error>>(8);
    let reader = tokio::spawn(async move {
        while let Some(message) = stream.next().await {
            if tx.send(message).await.is_err() {
                break;
            }
        }
    });
    let mut episode = Episode::default();
    while let Some(message) = rx.recv().await {
        let text = match message {
            Ok(WsMessage::Text(t)) => t,
            Ok(WsMessage::Binary(_)) => {
                let r = refuse("SESSION_ERROR", "binary frames are not part of the protocol: send JSON text frames");
                let _ = sink.send(error_frame(&r)).await;
                break;
            }
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
            Ok(WsMessage::Close(_)) => break,
            Err(e) => {
                // Most often a message over the size limit: say so (1009).
                let too_big = e.to_string().to_ascii_lowercase().contains("too long");
                let (code, reason) = if too_big { (1009, "message too big") } else { (1002, "protocol error") };
                let _ = sink.send(WsMessage::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                reader.abort();
                return;
            }
        };
        match handle(&server, &mut episode, text.as_str()).await {
            Some(Ok(reply)) => {
                if sink.send(reply).await.is_err() {
                    break;
                }
            }
            Some(Err(r)) => {
                let fatal = r.code == "SESSION_ERROR";
                if sink.send(error_frame(&r)).await.is_err() || fatal {
                    break;
                }
            }
            None => break,
        }
    }
    let _ = sink.send(WsMessage::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
    reader.abort();
}

/// One client message: the reply, or `None` to close.
async fn handle(server: &OpenEnvServer, episode: &mut Episode, text: &str) -> Option<Result<WsMessage, Refusal>> {
    let message: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Some(Err(refuse("INVALID_JSON", format!("Invalid JSON: {e}")))),
    };
    let Value::Object(message) = message else {
        return Some(Err(refuse("SESSION_ERROR", "a message is a JSON object {\"type\": ..., \"data\": ...}")));
    };
    let kind = message.get("type").and_then(Value::as_str).unwrap_or_default();
    let data = message.get("data").cloned();
    Some(match kind {
        "reset" => {
            let data = match data {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(d)) => d,
                Some(_) => return Some(Err(refuse("VALIDATION_ERROR", "reset `data` must be an object"))),
            };
            server.reset(&data, false).await.map(|(payload, fresh)| {
                *episode = fresh;
                frame("observation", payload)
            })
        }
        "step" => match data {
            Some(action @ Value::Object(_)) => {
                server.step(episode, action, false).await.map(|payload| frame("observation", payload))
            }
            _ => Err(refuse("VALIDATION_ERROR", "step needs `data`: the action object")),
        },
        "state" => Ok(frame("state", episode.state_json())),
        "close" => return None,
        "mcp" => Ok(frame("mcp", mcp_answer(data.as_ref().unwrap_or(&Value::Null)))),
        other => Err(refuse("UNKNOWN_TYPE", format!("Unknown message type: {other}"))),
    })
}

/// FastAPI's validation answer: 422 `{"detail": [...]}`.
fn unprocessable(message: String) -> Response {
    let detail = json!([{ "type": "value_error", "loc": ["body"], "msg": message }]);
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({ "detail": detail }))).into_response()
}

fn http_refusal(r: Refusal) -> Response {
    match r.code {
        "EXECUTION_ERROR" => {
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({ "detail": r.message }))).into_response()
        }
        _ => unprocessable(r.message),
    }
}

/// The request body as a JSON object (empty when there is none), or why not.
fn http_body(body: &Bytes) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the body must be a JSON object".into()),
        Err(e) => Err(format!("JSON decode error: {e}")),
    }
}

type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

/// A body that could not be read (too large, broken), answered in JSON.
fn unreadable(e: axum::extract::rejection::BytesRejection) -> Response {
    (e.status(), axum::Json(json!({ "detail": e.body_text() }))).into_response()
}

async fn http_reset(State(server): State<OpenEnvServer>, body: Body) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return unreadable(e),
    };
    let data = match http_body(&body) {
        Ok(d) => d,
        Err(why) => return unprocessable(why),
    };
    match server.reset(&data, true).await {
        Ok((payload, _)) => axum::Json(payload).into_response(),
        Err(r) => http_refusal(r),
    }
}

async fn http_step(State(server): State<OpenEnvServer>, body: Body) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return unreadable(e),
    };
    let mut data = match http_body(&body) {
        Ok(d) => d,
        Err(why) => return unprocessable(why),
    };
    let Some(action @ Value::Object(_)) = data.remove("action") else {
        return unprocessable("missing field `action` (an object)".into());
    };
    let Some(state) = data.remove("state").filter(|s| !s.is_null()) else {
        return unprocessable(
            "missing field `state`: envhub episodes carry their state, so send back the `envhub_state` \
             of the previous observation (or use the WebSocket /ws session, as OpenEnv clients do)"
                .into(),
        );
    };
    let mut episode = Episode { state: Some(state), ..Episode::default() };
    match server.step(&mut episode, action, true).await {
        Ok(payload) => axum::Json(payload).into_response(),
        Err(r) => http_refusal(r),
    }
}

/// A JSON-RPC 2.0 answer to an MCP request: this server offers no MCP methods.
fn mcp_answer(request: &Value) -> Value {
    let error = |id: &Value, code: i64, message: String| json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message, "data": null } });
    let Some(obj) = request.as_object() else {
        return error(&Value::Null, -32600, "Invalid request: not an object".into());
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    match (obj.get("jsonrpc").and_then(Value::as_str), obj.get("method").and_then(Value::as_str)) {
        (Some("2.0"), Some(method)) if method.starts_with("tools/") => {
            error(&id, -32603, "Environment does not support MCP".into())
        }
        (Some("2.0"), Some(method)) => error(&id, -32601, format!("Method not found: {method}")),
        _ => error(&Value::Null, -32600, "Invalid request: needs `jsonrpc: \"2.0\"` and `method`".into()),
    }
}

async fn mcp(body: Bytes) -> axum::Json<Value> {
    axum::Json(match serde_json::from_slice::<Value>(&body) {
        Ok(request) => mcp_answer(&request),
        Err(_) => {
            json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32700, "message": "Parse error", "data": null } })
        }
    })
}

async fn metadata(State(server): State<OpenEnvServer>) -> axum::Json<Value> {
    let info = &server.shared.info;
    let owner = info.name.split_once('/').map(|(o, _)| o.to_owned());
    let description = if info.description.is_empty() {
        format!("{} environment", info.name)
    } else {
        format!("{} ({})", info.description, server.shared.digest)
    };
    axum::Json(json!({
        "name": info.name,
        "description": description,
        "readme_content": server.shared.config.readme,
        "version": info.version,
        "author": owner,
        "documentation_url": null,
    }))
}

/// JSON Schemas of the action, observation and state.
fn schema() -> Value {
    let message = json!({ "type": "object", "additionalProperties": true });
    json!({
        "action": {
            "title": "EnvhubAction",
            "description": "One assistant turn in the OpenAI format (content and/or tool_calls), or {\"type\": \"call_tool\", \"tool_name\", \"arguments\"}",
            "type": "object",
            "properties": {
                "role": { "const": "assistant", "type": "string" },
                "content": { "anyOf": [{ "type": "string" }, { "type": "null" }], "title": "Content" },
                "tool_calls": {
                    "type": "array",
                    "title": "Tool Calls",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": { "type": "string" },
                            "type": { "const": "function", "type": "string" },
                            "function": {
                                "type": "object",
                                "properties": { "name": { "type": "string" }, "arguments": { "anyOf": [{ "type": "string" }, { "type": "object" }] } },
                                "required": ["name", "arguments"]
                            }
                        },
                        "required": ["function"]
                    }
                },
                "tool_name": { "type": "string" },
                "arguments": { "type": "object" }
            }
        },
        "observation": {
            "title": "EnvhubObservation",
            "type": "object",
            "properties": {
                "task_id": { "type": "string" },
                "messages": { "type": "array", "items": message },
                "tools": { "type": "array", "items": message },
                "components": { "type": "object", "additionalProperties": { "type": "number" } },
                "metrics": { "type": "object" },
                "done": { "type": "boolean", "default": false },
                "reward": { "anyOf": [{ "type": "number" }, { "type": "null" }], "default": null }
            }
        },
        "state": {
            "title": "State",
            "type": "object",
            "additionalProperties": true,
            "properties": {
                "episode_id": { "anyOf": [{ "type": "string" }, { "type": "null" }], "default": null },
                "step_count": { "type": "integer", "minimum": 0, "default": 0 },
                "task_id": { "anyOf": [{ "type": "string" }, { "type": "null" }], "default": null },
                "done": { "type": "boolean", "default": false }
            }
        }
    })
}

fn openapi() -> Value {
    let op = |summary: &str| json!({ "summary": summary, "responses": { "200": { "description": "OK" } } });
    json!({
        "openapi": "3.1.0",
        "info": { "title": "envhub OpenEnv environment server", "version": "1.0.0" },
        "paths": {
            "/reset": { "post": op("Start an episode") },
            "/step": { "post": op("Apply an action to the episode whose state is given") },
            "/state": { "get": op("The state of a new episode") },
            "/health": { "get": op("Health") },
            "/metadata": { "get": op("The environment") },
            "/schema": { "get": op("Action, observation and state schemas") },
            "/mcp": { "post": op("JSON-RPC 2.0 (no MCP methods)") }
        }
    })
}

/// Serves on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: OpenEnvServer,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunnerError> {
    axum::serve(listener, server.router())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| RunnerError::io("OpenEnv server", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_in_both_forms() {
        let m = parse_action(json!({"type": "call_tool", "tool_name": "add", "arguments": {"a": 1}})).expect("mcp");
        assert_eq!(m.tool_calls[0].function.name, "add");
        assert_eq!(m.tool_calls[0].function.arguments, "{\"a\":1}");
        assert_eq!(parse_action(json!({"content": "hi"})).expect("text").text(), "hi");
        assert_eq!(parse_action(json!({"type": "call_tool"})).expect_err("no name").code, "VALIDATION_ERROR");
        assert_eq!(parse_action(json!({"role": "user"})).expect_err("user").code, "VALIDATION_ERROR");
    }

    #[test]
    fn mcp_requests_get_json_rpc_errors() {
        assert_eq!(mcp_answer(&json!({}))["error"]["code"], -32600);
        assert_eq!(mcp_answer(&json!({"jsonrpc": "2.0", "method": "x/y", "id": 3}))["error"]["code"], -32601);
        let tools = mcp_answer(&json!({"jsonrpc": "2.0", "method": "tools/list", "id": 1}));
        assert_eq!((tools["id"].clone(), tools["error"]["code"].clone()), (json!(1), json!(-32603)));
    }
}
