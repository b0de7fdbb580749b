//! A policy behind an OpenAI-compatible `/v1/chat/completions` endpoint.
//!
//! Asks for per-token logprobs (`logprobs: true`) and, for vLLM, token ids
//! (`return_token_ids: true`: top-level `prompt_token_ids`, per-choice
//! `token_ids`). Servers that do not know the extension ignore it or, when
//! strict, can be told not to send it ([`OpenAiConfig::token_ids`]). Retries
//! timeouts, unreachable servers, HTTP 429/5xx and malformed bodies with
//! bounded exponential backoff.
//!
//! **Token ids from other servers.** llama.cpp's `llama-server` returns no
//! `token_ids`, but each `logprobs.content[]` entry carries the sampled
//! token's `id`; its prompt is rendered and tokenised with the server's own
//! `/apply-template` and `/tokenize` (so the ids are the server's, not a
//! guess). vLLM's `return_tokens_as_token_ids` spelling (`"token_id:N"`) is
//! read too. A server that offers neither gives turns without ids, which
//! the trajectory records as untrainable, saying why.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use envhub_sdk::{Message, Role, ToolCall};
use serde_json::{Value, json};

use super::{Completion, Policy, PolicyRequest, source_if};
use crate::error::PolicyError;
use crate::trajectory::{IdSource, LogprobConvention, PolicyRef, Sampling};

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
    /// Token-in/token-out through llama.cpp's native `/completion` (see
    /// [`crate::policy::token_prompts`]) instead of `/chat/completions`.
    pub token_prompts: bool,
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
            token_prompts: false,
        }
    }
}

/// An OpenAI-compatible HTTP policy.
#[derive(Clone, Debug)]
pub struct OpenAiPolicy {
    config: OpenAiConfig,
    client: reqwest::Client,
    /// Cleared once the server has no `/apply-template` + `/tokenize`.
    server_tokenizes: Arc<AtomicBool>,
}

impl OpenAiPolicy {
    /// A policy for `config`.
    pub fn new(config: OpenAiConfig) -> Result<Self, PolicyError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| PolicyError::Load(format!("HTTP client: {e}")))?;
        Ok(OpenAiPolicy { config, client, server_tokenizes: Arc::new(AtomicBool::new(true)) })
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
            // vLLM's and SGLang's spellings (SGLang also wants the prompt's asked for).
            body["return_token_ids"] = json!(true);
            body["return_prompt_token_ids"] = json!(true);
        }
        body
    }

    async fn attempt(&self, body: &Value) -> Result<Completion, PolicyError> {
        let text = self.post_to(&format!("{}/chat/completions", self.config.base_url), body).await?;
        parse_chat_completion(&text)
    }

    /// POSTs `body` as JSON to `url`: the answer's text, or why not.
    async fn post_to(&self, url: &str, body: &Value) -> Result<String, PolicyError> {
        let mut req = self.client.post(url).json(body);
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(&e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(PolicyError::Status { status: status.as_u16(), body: truncate(&text, 300) });
        }
        Ok(text)
    }

    /// POSTs to `path` under the server's root (llama.cpp's native routes).
    pub(crate) async fn post_text(&self, path: &str, body: &Value) -> Result<String, PolicyError> {
        self.post_to(&format!("{}{path}", self.root()), body).await
    }
}

impl OpenAiPolicy {
    /// The server's root (its base URL without `/v1`), where llama.cpp
    /// serves `/apply-template` and `/tokenize`.
    fn root(&self) -> &str {
        self.config.base_url.strip_suffix("/v1").unwrap_or(&self.config.base_url)
    }

    /// The prompt ids the server used for `body`'s messages, from its own
    /// chat template and tokenizer (llama.cpp's `/apply-template` and
    /// `/tokenize`, with special tokens added and parsed as its chat
    /// endpoint does). `None`, and not asked again, when it has neither.
    async fn server_prompt_ids(&self, request: &PolicyRequest) -> Option<Vec<u32>> {
        if !self.server_tokenizes.load(Ordering::Relaxed) {
            return None;
        }
        let ids = async {
            let text = self.apply_template(&request.messages, &request.tools, true).await.ok()?;
            self.tokenize(&text, true).await.ok().filter(|ids| !ids.is_empty())
        }
        .await;
        if ids.is_none() {
            self.server_tokenizes.store(false, Ordering::Relaxed);
        }
        ids
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
    let entries = choice.pointer("/logprobs/content").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let mut token_ids = ids(choice.get("token_ids"));
    if token_ids.is_empty() {
        token_ids = ids_of_logprob_entries(entries);
    }
    let prompt_token_ids = ids(v.get("prompt_token_ids").or_else(|| choice.get("prompt_token_ids")));
    let logprobs: Vec<f32> =
        entries.iter().filter_map(|t| t.get("logprob").and_then(Value::as_f64)).map(|x| x as f32).collect();
    let usage_tokens = v.pointer("/usage/completion_tokens").and_then(Value::as_u64);
    let completion_tokens = usage_tokens.unwrap_or(token_ids.len() as u64);
    Ok(Completion {
        message,
        prompt_source: source_if(&prompt_token_ids, IdSource::Server),
        prompt_token_ids,
        token_source: source_if(&token_ids, IdSource::Server),
        token_ids,
        logprobs,
        finish_reason,
        completion_tokens,
        attempts: 1,
    })
}

/// The sampled ids in `logprobs.content[]`, when every entry names one:
/// llama.cpp's `id`, or vLLM's `token` spelled `"token_id:N"`
/// (`return_tokens_as_token_ids`). Empty otherwise: a partial list would
/// misalign tokens and logprobs.
fn ids_of_logprob_entries(entries: &[Value]) -> Vec<u32> {
    let id = |e: &Value| -> Option<u32> {
        if let Some(id) = e.get("id").and_then(Value::as_u64) {
            return u32::try_from(id).ok();
        }
        e.get("token")?.as_str()?.strip_prefix("token_id:")?.parse().ok()
    };
    entries.iter().map(id).collect::<Option<Vec<u32>>>().unwrap_or_default()
}

impl Policy for OpenAiPolicy {
    fn describe(&self) -> PolicyRef {
        PolicyRef {
            id: format!("openai:{}#{}", self.config.base_url, self.config.model),
            version: self.config.model.clone(),
            logprobs: if self.config.logprobs { LogprobConvention::Server } else { LogprobConvention::None },
            sampling: Sampling::default(),
            step: None,
        }
    }

    async fn complete(&self, request: PolicyRequest) -> Result<Completion, PolicyError> {
        let body = (!self.config.token_prompts).then(|| self.body(&request));
        let mut delay = self.config.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer = match &body {
                None => self.complete_with_token_prompt(&request).await,
                Some(body) => self.attempt(body).await,
            };
            match answer {
                Ok(mut c) => {
                    c.attempts = attempt;
                    if c.prompt_token_ids.is_empty()
                        && !c.token_ids.is_empty()
                        && let Some(ids) = self.server_prompt_ids(&request).await
                    {
                        c.prompt_token_ids = ids;
                        c.prompt_source = Some(IdSource::Server);
                    }
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
