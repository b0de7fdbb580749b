//! A reward service over HTTP: OpenRLHF's remote reward protocol and a
//! generic scoring endpoint, both answered by one environment in the sandbox.
//!
//! - `POST /get_reward` (OpenRLHF `--reward.remote_url`): `{"query": [...],
//!   "prompts": [...], "labels": [...]}`, one entry per sample; `query` is
//!   the prompt followed by the response (special tokens kept), so the
//!   response is the query after its prompt, with trailing end-of-turn
//!   tokens cut. Each label is the sample's inline task (a task object or
//!   its JSON text), or its reference answer (then the task is
//!   `{"answer": label, "question": prompt}`). The answer is
//!   `{"rewards": [...], "scores": [...], "extra_logs": {"envhub/C": [...]}}`
//!   with one value per sample and each declared reward component `C`.
//! - `POST /score`: `{"task": {...}, "completion": "..."}` or a list of them,
//!   answered like `envhub score` (`{"reward": ..., "metrics": ...}` or
//!   `{"error": ...}` per item).
//! - `GET /health`; `GET /` describes the environment.
//!
//! A completion that makes the environment hit a limit scores 0; a sample
//! the environment refuses (a bad label) fails the request with 400 naming
//! the sample, since a silent 0 would train on a misconfiguration. Scoring
//! runs on blocking threads, at most `threads` calls at once.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use envhub_sandbox::score::par_map;
use envhub_sandbox::{EnvModule, SandboxError, Scored};
use envhub_sdk::InfoResponse;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::error::RunnerError;

/// Tokens that end a turn in common chat templates, cut from the end of a
/// response (OpenRLHF decodes with special tokens kept).
pub const DEFAULT_END_TOKENS: &[&str] =
    &["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>", "<end_of_turn>", "<|end_of_text|>"];

/// How the reward server behaves.
#[derive(Clone, Debug)]
pub struct RewardServerConfig {
    /// Environment configuration of every episode (e.g. reward weights).
    pub env_config: Map<String, Value>,
    /// Scoring calls at once (default: one per core).
    pub threads: usize,
    /// Tokens cut from the end of a response.
    pub end_tokens: Vec<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
}

impl Default for RewardServerConfig {
    fn default() -> Self {
        RewardServerConfig {
            env_config: Map::new(),
            threads: envhub_sandbox::score::default_threads(),
            end_tokens: DEFAULT_END_TOKENS.iter().map(|t| t.to_string()).collect(),
            max_body_bytes: 64 << 20,
        }
    }
}

struct Shared {
    module: EnvModule,
    info: InfoResponse,
    digest: String,
    config: RewardServerConfig,
    permits: Semaphore,
}

/// The state of a reward server.
#[derive(Clone)]
pub struct RewardServer {
    shared: Arc<Shared>,
}

impl RewardServer {
    /// A server for `module` (blocking: calls `info`).
    pub fn new(module: EnvModule, digest: String, config: RewardServerConfig) -> Result<Self, RunnerError> {
        let info = module.info().map_err(|e| RunnerError::Env { env: digest.clone(), source: e })?;
        let permits = Semaphore::new(config.threads.max(1));
        Ok(RewardServer { shared: Arc::new(Shared { module, info, digest, config, permits }) })
    }

    /// The HTTP routes.
    pub fn router(self) -> Router {
        let limit = self.shared.config.max_body_bytes;
        Router::new()
            .route("/get_reward", post(get_reward))
            .route("/score", post(score))
            .route("/health", get(|| async { axum::Json(json!({ "status": "ok" })) }))
            .route("/", get(describe))
            .layer(DefaultBodyLimit::max(limit))
            .with_state(self)
    }

    /// Scores `jobs` on blocking threads, holding one permit per thread used.
    async fn score_all(&self, jobs: Vec<(Value, String)>) -> Result<Vec<Result<Scored, SandboxError>>, Failure> {
        let threads = jobs.len().clamp(1, self.shared.config.threads.max(1));
        let permits = self
            .shared
            .permits
            .acquire_many(threads as u32)
            .await
            .map_err(|_| Failure(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down".into()))?;
        let shared = self.shared.clone();
        let results = tokio::task::spawn_blocking(move || {
            let config = &shared.config.env_config;
            par_map(
                jobs.len(),
                threads,
                |i| shared.module.score(jobs[i].0.clone(), &jobs[i].1, 0, config.clone()),
                |i| Err(SandboxError::Host(format!("sample {i}: the scoring thread panicked"))),
            )
        })
        .await
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, format!("scoring failed: {e}")))?;
        drop(permits);
        Ok(results)
    }
}

/// An error answer: status and message, as `{"error": {"code", "message"}}`.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let code = match self.0 {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal",
        };
        (self.0, axum::Json(json!({ "error": { "code": code, "message": self.1 } }))).into_response()
    }
}

fn bad(message: impl Into<String>) -> Failure {
    Failure(StatusCode::BAD_REQUEST, message.into())
}

/// The body as a JSON object, or a 400/413 naming what is wrong.
fn parse_body(body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>) -> Result<Value, Failure> {
    let bytes = body.map_err(|e| Failure(e.status(), e.body_text()))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(format!("the body is not JSON: {e}")))
}

fn strings(body: &Value, field: &str) -> Result<Option<Vec<String>>, Failure> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().map(str::to_owned).ok_or_else(|| bad(format!("`{field}[{i}]` is not a string"))))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad(format!("`{field}` must be a list of strings"))),
    }
}

/// The response in an OpenRLHF query (the prompt followed by the response,
/// special tokens kept): the text after `prompt` (the whole query when it
/// does not start with it), without trailing `end_tokens`.
pub fn response_of<'a>(query: &'a str, prompt: &str, end_tokens: &[String]) -> &'a str {
    let mut text = query.strip_prefix(prompt).unwrap_or(query);
    loop {
        let trimmed = text.trim_end();
        match end_tokens.iter().find(|t| !t.is_empty() && trimmed.ends_with(t.as_str())) {
            Some(t) => text = &trimmed[..trimmed.len() - t.len()],
            None => return text,
        }
    }
}

/// OpenRLHF's samples as scoring jobs: each label's task (see
/// [`task_from_label`]) and the response of each query.
pub fn openrlhf_jobs(
    queries: &[String],
    prompts: &[String],
    labels: &[Value],
    end_tokens: &[String],
) -> Vec<(Value, String)> {
    queries
        .iter()
        .zip(prompts)
        .zip(labels)
        .map(|((q, p), l)| (task_from_label(l, p), response_of(q, p, end_tokens).to_owned()))
        .collect()
}

/// OpenRLHF's answer for scored samples: `rewards` and `scores` (a sample
/// whose completion made the environment hit a limit scores 0) and
/// `extra_logs` with one list per declared reward component
/// (`envhub/NAME`). A sample the environment refused is the error, with its index.
pub fn openrlhf_answer(
    info: &InfoResponse,
    results: Vec<Result<Scored, SandboxError>>,
) -> Result<Value, (usize, SandboxError)> {
    let components: Vec<&str> = info.reward_components.iter().map(|c| c.name.as_str()).collect();
    let mut rewards = Vec::with_capacity(results.len());
    let mut logs: Vec<Vec<f64>> = vec![Vec::with_capacity(results.len()); components.len()];
    for (i, r) in results.into_iter().enumerate() {
        let scored = match r {
            Ok(s) => Some(s),
            Err(e) if e.is_limit() => None,
            Err(e) => return Err((i, e)),
        };
        rewards.push(scored.as_ref().map_or(0.0, |s| s.reward.total));
        for (c, log) in components.iter().zip(logs.iter_mut()) {
            log.push(scored.as_ref().and_then(|s| s.reward.components.get(*c).copied()).unwrap_or(0.0));
        }
    }
    let extra_logs: Map<String, Value> =
        components.iter().zip(logs).map(|(c, values)| (format!("envhub/{c}"), json!(values))).collect();
    Ok(json!({ "rewards": rewards, "scores": rewards, "extra_logs": extra_logs }))
}

/// The inline task of one OpenRLHF sample: the label when it is a task
/// object (or its JSON text), else `{"answer": label, "question": prompt}`.
pub fn task_from_label(label: &Value, prompt: &str) -> Value {
    let parsed = match label {
        Value::Object(_) => return label.clone(),
        Value::String(s) if s.trim_start().starts_with('{') => serde_json::from_str::<Value>(s).ok(),
        _ => None,
    };
    if let Some(task @ Value::Object(_)) = parsed {
        return task;
    }
    let answer = match label {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    json!({ "answer": answer, "question": prompt })
}

async fn get_reward(
    State(server): State<RewardServer>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::Json<Value>, Failure> {
    let body = parse_body(body)?;
    if !body.is_object() {
        return Err(bad("the body must be an object {\"query\": [...], \"prompts\": [...], \"labels\": [...]}"));
    }
    let queries = strings(&body, "query")?.ok_or_else(|| bad("missing field `query` (a list of strings)"))?;
    let prompts = strings(&body, "prompts")?.unwrap_or_else(|| vec![String::new(); queries.len()]);
    let labels = match body.get("labels") {
        Some(Value::Array(l)) => l.clone(),
        None | Some(Value::Null) => {
            return Err(bad(
                "missing field `labels`: each sample's task or reference answer (OpenRLHF --data.label_key)",
            ));
        }
        Some(_) => return Err(bad("`labels` must be a list")),
    };
    if prompts.len() != queries.len() || labels.len() != queries.len() {
        let n = |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
        return Err(bad(format!(
            "got {}, {} and {}: give one of each per sample",
            n(queries.len(), "query", "queries"),
            n(prompts.len(), "prompt", "prompts"),
            n(labels.len(), "label", "labels")
        )));
    }
    let jobs = openrlhf_jobs(&queries, &prompts, &labels, &server.shared.config.end_tokens);
    let results = server.score_all(jobs).await?;
    openrlhf_answer(&server.shared.info, results).map(axum::Json).map_err(|(i, e)| bad(format!("sample {i}: {e}")))
}

fn score_job(item: &Value, i: Option<usize>) -> Result<(Value, String), Value> {
    let at = i.map(|i| format!("item {i}: ")).unwrap_or_default();
    let err = |m: String| json!({ "error": { "kind": "bad_request", "message": m } });
    let task = item.get("task").cloned().ok_or_else(|| err(format!("{at}missing field `task`")))?;
    let completion = item
        .get("completion")
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("{at}missing string field `completion`")))?;
    Ok((task, completion.to_owned()))
}

async fn score(
    State(server): State<RewardServer>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::Json<Value>, Failure> {
    let body = parse_body(body)?;
    let (items, single) = match body {
        Value::Array(items) => (items, false),
        item @ Value::Object(_) => (vec![item], true),
        _ => return Err(bad("the body must be {\"task\", \"completion\"} or a list of them")),
    };
    let parsed: Vec<Result<(Value, String), Value>> =
        items.iter().enumerate().map(|(i, item)| score_job(item, (!single).then_some(i))).collect();
    if single && let Some(Err(e)) = parsed.first() {
        return Err(bad(e["error"]["message"].as_str().unwrap_or("bad item").to_owned()));
    }
    let jobs: Vec<(Value, String)> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    let mut scored = server.score_all(jobs).await?.into_iter();
    let answers: Vec<Value> = parsed
        .into_iter()
        .map(|p| match p {
            Err(e) => e,
            Ok(_) => match scored.next() {
                Some(Ok(s)) => json!(s),
                Some(Err(e)) => envhub_sandbox::score::error_json(&e),
                None => json!({ "error": { "kind": "internal", "message": "not scored" } }),
            },
        })
        .collect();
    Ok(axum::Json(if single { answers.into_iter().next().unwrap_or(Value::Null) } else { Value::Array(answers) }))
}

async fn describe(State(server): State<RewardServer>) -> axum::Json<Value> {
    let info = &server.shared.info;
    axum::Json(json!({
        "service": "envhub reward server",
        "env": { "name": info.name, "version": info.version, "digest": server.shared.digest },
        "reward_components": info.reward_components,
        "routes": ["POST /get_reward", "POST /score", "GET /health"],
    }))
}

/// Serves on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: RewardServer,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunnerError> {
    axum::serve(listener, server.router())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| RunnerError::io("reward server", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_tasks() {
        assert_eq!(task_from_label(&json!("42"), "Q"), json!({"answer": "42", "question": "Q"}));
        assert_eq!(task_from_label(&json!(7), "Q"), json!({"answer": "7", "question": "Q"}));
        assert_eq!(task_from_label(&json!("{\"answer\": \"1\"}"), "Q"), json!({"answer": "1"}));
        assert_eq!(task_from_label(&json!({"prompt": "p"}), "Q"), json!({"prompt": "p"}));
        assert_eq!(task_from_label(&json!("{not json"), "Q"), json!({"answer": "{not json", "question": "Q"}));
    }
}
