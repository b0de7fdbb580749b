//! A policy behind an OpenAI-compatible `/v1/chat/completions` endpoint.
//!
//! Asks for per-token logprobs (`logprobs: true`) and, for vLLM, token ids
//! (`return_token_ids: true`: top-level `prompt_token_ids`, per-choice
//! `token_ids`). Servers that do not know the extension ignore it or, when
//! strict, can be told not to send it ([`OpenAiConfig::token_ids`]). Retries
//! timeouts, unreachable servers, HTTP 429/5xx and malformed bodies with
//! bounded exponential backoff.

use std::time::Duration;

use envhub_sdk::{Message, Role, ToolCall};
use serde_json::{Value, json};

use super::{Completion, Policy, PolicyRequest};
use crate::error::PolicyError;
use crate::trajectory::{LogprobConvention, PolicyRef, Sampling};

/// Settings of an [`OpenAiPolicy`].
#[derive(Clone, Debug)]
pub struct OpenAiConfig {
    /// Base URL including `/v1`, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// Model name sent in requests.
    pub model: String,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubles per retry.
    pub backoff: Duration,
    /// Backoff ceiling.
    pub max_backoff: Duration,
    /// Send vLLM's `return_token_ids: true`.
    pub token_ids: bool,
    /// Send `logprobs: true`.
    pub logprobs: bool,
}

impl OpenAiConfig {
    /// Defaults for `base_url` and `model`: 120 s timeout, 4 retries from
    /// 250 ms up to 8 s, token ids and logprobs requested.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            model: model.into(),
            api_key: None,
            timeout: Duration::from_secs(120),
            max_retries: 4,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            token_ids: true,
            logprobs: true,
        }
    }
}

/// An OpenAI-compatible HTTP policy.
#[derive(Clone, Debug)]
pub struct OpenAiPolicy {
    config: OpenAiConfig,
    client: reqwest::Client,
}

impl OpenAiPolicy {
    /// A policy for `config`.
    pub fn new(config: OpenAiConfig) -> Result<Self, PolicyError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| PolicyError::Load(format!("HTTP client: {e}")))?;
        Ok(OpenAiPolicy { config, client })
    }

    /// The settings.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// `GET /models`: the served model names. Fails clearly when the server
    /// is unreachable; use it before a run to fail fast.
    pub async fn models(&self) -> Result<Vec<String>, PolicyError> {
        let url = format!("{}/models", self.config.base_url);
        let mut req = self.client.get(&url);
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(PolicyError::Status { status: status.as_u16(), body: truncate(&text, 300) });
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| PolicyError::Malformed(format!("/models: {e}")))?;
        Ok(v.get("data")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_owned)).collect())
            .unwrap_or_default())
    }

    fn transport_error(&self, e: &reqwest::Error) -> PolicyError {
        if e.is_timeout() {
            PolicyError::Timeout { secs: self.config.timeout.as_secs_f64() }
        } else if e.is_connect() || e.is_request() {
            PolicyError::Unreachable { url: self.config.base_url.clone(), message: error_chain(e) }
        } else {
            PolicyError::Malformed(error_chain(e))
        }
    }

    fn body(&self, request: &PolicyRequest) -> Value {
        let s = &request.sampling;
        let mut body = json!({
            "model": self.config.model,
            "messages": request.messages,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
            "seed": request.seed & 0x7fff_ffff_ffff_ffff,
            "n": 1,
        });
        if !s.stop.is_empty() {
            body["stop"] = json!(s.stop);
        }
        if !request.tools.is_empty() {
            body["tools"] = json!(request.tools);
        }
        if self.config.logprobs {
            body["logprobs"] = json!(true);
        }
        if self.config.token_ids {
            body["return_token_ids"] = json!(true);
        }
        body
    }

    async fn attempt(&self, body: &Value) -> Result<Completion, PolicyError> {
        let url = format!("{}/chat/completions", self.config.base_url);
        let mut req = self.client.post(&url).json(body);
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(PolicyError::Status { status: status.as_u16(), body: truncate(&text, 300) });
        }
        parse_chat_completion(&text)
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Parses a `/v1/chat/completions` response body (first choice).
pub fn parse_chat_completion(text: &str) -> Result<Completion, PolicyError> {
    let v: Value = serde_json::from_str(text).map_err(|e| PolicyError::Malformed(format!("not JSON: {e}")))?;
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| PolicyError::Malformed("no `choices[0]`".into()))?;
    let msg = choice.get("message").ok_or_else(|| PolicyError::Malformed("no `choices[0].message`".into()))?;
    let content = msg.get("content").and_then(Value::as_str).map(str::to_owned);
    let tool_calls: Vec<ToolCall> = match msg.get("tool_calls") {
        None | Some(Value::Null) => Vec::new(),
        Some(tc) => {
            serde_json::from_value(tc.clone()).map_err(|e| PolicyError::Malformed(format!("`tool_calls`: {e}")))?
        }
    };
    let message = Message { role: Role::Assistant, content, tool_calls, tool_call_id: None, name: None };
    let finish_reason = choice.get("finish_reason").and_then(Value::as_str).unwrap_or("stop").to_owned();
    let ids = |x: Option<&Value>| -> Vec<u32> {
        x.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|t| t.as_u64().and_then(|t| u32::try_from(t).ok())).collect())
            .unwrap_or_default()
    };
    let token_ids = ids(choice.get("token_ids"));
    let prompt_token_ids = ids(v.get("prompt_token_ids").or_else(|| choice.get("prompt_token_ids")));
    let logprobs: Vec<f32> = choice
        .get("logprobs")
        .and_then(|l| l.get("content"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|t| t.get("logprob").and_then(Value::as_f64)).map(|x| x as f32).collect())
        .unwrap_or_default();
    let usage_tokens = v.pointer("/usage/completion_tokens").and_then(Value::as_u64);
    let completion_tokens = usage_tokens.unwrap_or(token_ids.len() as u64);
    Ok(Completion { message, prompt_token_ids, token_ids, logprobs, finish_reason, completion_tokens, attempts: 1 })
}

impl Policy for OpenAiPolicy {
    fn describe(&self) -> PolicyRef {
        PolicyRef {
            id: format!("openai:{}#{}", self.config.base_url, self.config.model),
            version: self.config.model.clone(),
            logprobs: if self.config.logprobs { LogprobConvention::Server } else { LogprobConvention::None },
            sampling: Sampling::default(),
        }
    }

    async fn complete(&self, request: PolicyRequest) -> Result<Completion, PolicyError> {
        let body = self.body(&request);
        let mut delay = self.config.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(&body).await {
                Ok(mut c) => {
                    c.attempts = attempt;
                    return Ok(c);
                }
                Err(e) if e.is_retryable() && attempt <= self.config.max_retries => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.config.max_backoff);
                }
                Err(e) if attempt > 1 => {
                    return Err(PolicyError::RetriesExhausted { attempts: attempt, last: Box::new(e) });
                }
                Err(e) => return Err(e),
            }
        }
    }
}
