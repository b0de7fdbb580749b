//! Where finished groups go: JSON lines (a file or stdout) or an
//! Atropos-compatible trajectory API.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::RunnerError;
use crate::trajectory::Trajectory;

/// Writes one trajectory per line and flushes after each group.
pub struct JsonlSink {
    out: Box<dyn Write + Send>,
}

impl JsonlSink {
    /// A sink writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        JsonlSink { out }
    }

    /// A sink creating (truncating) `path`.
    pub fn create(path: &std::path::Path) -> Result<Self, RunnerError> {
        let f = std::fs::File::create(path).map_err(|e| RunnerError::io(path, e))?;
        Ok(JsonlSink::new(Box::new(std::io::BufWriter::new(f))))
    }

    /// Writes a group.
    pub fn write_group(&mut self, group: &[Trajectory]) -> Result<(), RunnerError> {
        for t in group {
            serde_json::to_writer(&mut self.out, t).map_err(|e| RunnerError::Sink(e.to_string()))?;
            self.out.write_all(b"\n").map_err(|e| RunnerError::Sink(e.to_string()))?;
        }
        self.out.flush().map_err(|e| RunnerError::Sink(e.to_string()))
    }
}

/// Converts a group to Atropos's `ScoredData`: per member, the episode's
/// token sequence, mask (-100 on non-policy tokens), score, advantage,
/// inference logprobs and messages. Members without token ids or with
/// errors are left out; `None` when none is left, or when the run filtered
/// the group out ([`Trajectory::filtered`]).
pub fn to_scored_data(group: &[Trajectory], env_id: Option<i64>) -> Option<Value> {
    if group.iter().any(|t| t.filtered.is_some()) {
        return None;
    }
    let mut tokens = Vec::new();
    let mut masks = Vec::new();
    let mut scores = Vec::new();
    let mut advantages = Vec::new();
    let mut logprobs = Vec::new();
    let mut messages = Vec::new();
    for t in group {
        let (Some(score), true) = (t.total(), t.errors.is_empty()) else { continue };
        let Some((tok, mask, lp)) = t.token_sequence() else { continue };
        tokens.push(tok);
        masks.push(mask);
        scores.push(score);
        advantages.push(t.advantage.unwrap_or(0.0));
        logprobs.push(lp);
        let mut conv: Vec<Value> = t.prompt.iter().map(|m| json!(m)).collect();
        for turn in &t.turns {
            conv.push(json!(turn.action));
            conv.extend(turn.observation.iter().map(|m| json!(m)));
        }
        messages.push(conv);
    }
    if tokens.is_empty() {
        return None;
    }
    let first = &group[0];
    // Atropos's advantages are per token; broadcast each member's advantage.
    let token_advantages: Vec<Vec<f64>> = tokens.iter().zip(&advantages).map(|(t, a)| vec![*a; t.len()]).collect();
    Some(json!({
        "tokens": tokens,
        "masks": masks,
        "scores": scores,
        "advantages": token_advantages,
        "ref_logprobs": Value::Null,
        "inference_logprobs": logprobs,
        "messages": messages,
        "overrides": Value::Null,
        "group_overrides": {
            "envhub_env": first.env.name,
            "envhub_digest": first.env.digest,
            "envhub_task_id": first.task.task_id,
            "envhub_run_id": first.run_id,
            "envhub_group": first.group,
            "envhub_policy_step": first.policy.step,
        },
        "generation_params": {
            "temperature": first.policy.sampling.temperature,
            "top_p": first.policy.sampling.top_p,
            "max_tokens": first.policy.sampling.max_tokens,
        },
        "env_id": env_id,
    }))
}

/// How an [`ApiSink`] talks to the trajectory API.
#[derive(Clone, Debug)]
pub struct PushConfig {
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for a whole request and its answer.
    pub request_timeout: Duration,
    /// Attempts per group (the first included), at least 1.
    pub attempts: u32,
    /// Wait before the first retry; doubled after each.
    pub backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            attempts: 5,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// What became of one group handed to [`ApiSink::push_group`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The API queued it.
    Sent,
    /// The API already had it (an earlier attempt reached it unanswered).
    Duplicate,
    /// Nothing to send: no member has token ids and a score without errors.
    NoTokens,
    /// Not sent: the run filtered the group out (uniform rewards).
    Filtered,
}

/// What became of the groups handed to an [`ApiSink`], so that none goes
/// missing without a count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushStats {
    /// Groups handed to the sink.
    pub groups: u64,
    /// Groups the API queued.
    pub sent: u64,
    /// Groups the API already had (a retry after an unanswered attempt).
    pub duplicates: u64,
    /// Groups not sent because no member had token ids (and a score, and no errors).
    pub without_tokens: u64,
    /// Groups not sent because the run filtered them out (uniform rewards).
    pub filtered: u64,
    /// Groups the API refused or never answered, after all attempts.
    pub failed: u64,
    /// Attempts beyond the first.
    pub retries: u64,
    /// Members left out of groups that were sent or already there (no token ids, or errors).
    pub trajectories_left_out: u64,
}

/// Pushes groups to an Atropos-compatible trajectory API: each group with
/// an idempotency key, retried a bounded number of times with backoff, so
/// a retry never queues a group twice.
pub struct ApiSink {
    base_url: String,
    client: reqwest::Client,
    env_id: Option<i64>,
    config: PushConfig,
    /// Makes this sink's keys unlike any other's.
    nonce: u64,
    next_key: AtomicU64,
    stats: Mutex<PushStats>,
}

/// One failed attempt: whether trying again may help, and why.
struct Attempt {
    retryable: bool,
    message: String,
}

impl ApiSink {
    /// Registers as an environment (`POST /register-env`) at `base_url`,
    /// with the default [`PushConfig`].
    pub async fn connect(base_url: &str, name: &str, group_size: u32) -> Result<Self, RunnerError> {
        Self::connect_with(base_url, name, group_size, PushConfig::default()).await
    }

    /// Registers as an environment (`POST /register-env`) at `base_url`.
    pub async fn connect_with(
        base_url: &str,
        name: &str,
        group_size: u32,
        config: PushConfig,
    ) -> Result<Self, RunnerError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| RunnerError::Sink(format!("HTTP client: {e}")))?;
        let body = json!({
            "max_token_length": 1 << 20,
            "desired_name": name,
            "weight": 1.0,
            "group_size": group_size,
            "min_batch_allocation": Value::Null,
        });
        let unreachable =
            |e: reqwest::Error| RunnerError::Sink(format!("cannot reach the trajectory API at {base_url}: {e}"));
        let resp = client.post(format!("{base_url}/register-env")).json(&body).send().await.map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(RunnerError::Sink(format!("{base_url}/register-env answered {}", resp.status())));
        }
        let v: Value = resp.json().await.map_err(|e| RunnerError::Sink(format!("/register-env: {e}")))?;
        let env_id = v.get("env_id").and_then(Value::as_i64);
        let nonce = getrandom::u64().map_err(|e| RunnerError::Sink(format!("no randomness for push keys: {e}")))?;
        Ok(ApiSink {
            base_url,
            client,
            env_id,
            config,
            nonce,
            next_key: AtomicU64::new(0),
            stats: Mutex::new(PushStats::default()),
        })
    }

    /// What became of the groups pushed so far.
    pub fn stats(&self) -> PushStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn count(&self, f: impl FnOnce(&mut PushStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    /// Pushes one group (`POST /scored_data`), retrying under one
    /// idempotency key; a group with no token ids is counted, not sent.
    /// Every outcome, failure included, is counted in [`ApiSink::stats`].
    pub async fn push_group(&self, group: &[Trajectory]) -> Result<Pushed, RunnerError> {
        self.count(|s| s.groups += 1);
        if group.iter().any(|t| t.filtered.is_some()) {
            self.count(|s| s.filtered += 1);
            return Ok(Pushed::Filtered);
        }
        let Some(data) = to_scored_data(group, self.env_id) else {
            self.count(|s| s.without_tokens += 1);
            return Ok(Pushed::NoTokens);
        };
        let left_out = group.len() as u64 - data["tokens"].as_array().map_or(0, |t| t.len() as u64);
        let key = format!("envhub-{:016x}-{}", self.nonce, self.next_key.fetch_add(1, Ordering::Relaxed));
        match self.send(&data, &key).await {
            Ok(pushed) => {
                self.count(|s| {
                    s.trajectories_left_out += left_out;
                    if pushed == Pushed::Duplicate { s.duplicates += 1 } else { s.sent += 1 }
                });
                Ok(pushed)
            }
            Err(e) => {
                self.count(|s| s.failed += 1);
                Err(e)
            }
        }
    }

    async fn send(&self, data: &Value, key: &str) -> Result<Pushed, RunnerError> {
        let attempts = self.config.attempts.max(1);
        let mut delay = self.config.backoff;
        let mut attempt = 1;
        loop {
            let failed = match self.attempt(data, key).await {
                Ok(pushed) => return Ok(pushed),
                Err(failed) => failed,
            };
            if !failed.retryable || attempt >= attempts {
                return Err(RunnerError::Sink(format!(
                    "{}/scored_data: {} (after {attempt} attempt{})",
                    self.base_url,
                    failed.message,
                    if attempt == 1 { "" } else { "s" }
                )));
            }
            self.count(|s| s.retries += 1);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.config.max_backoff);
            attempt += 1;
        }
    }

    async fn attempt(&self, data: &Value, key: &str) -> Result<Pushed, Attempt> {
        let sent = self
            .client
            .post(format!("{}/scored_data", self.base_url))
            .header("idempotency-key", key)
            .json(data)
            .send()
            .await;
        let resp = sent.map_err(|e| Attempt { retryable: true, message: e.to_string() })?;
        let status = resp.status();
        if !status.is_success() {
            let retryable = status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
            let body: String = resp.text().await.unwrap_or_default().chars().take(300).collect();
            return Err(Attempt { retryable, message: format!("answered {status}: {body}") });
        }
        let answer: Value =
            resp.json().await.map_err(|e| Attempt { retryable: true, message: format!("unreadable answer: {e}") })?;
        Ok(if answer.get("duplicate") == Some(&Value::Bool(true)) { Pushed::Duplicate } else { Pushed::Sent })
    }
}
