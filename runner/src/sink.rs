//! Where finished groups go: JSON lines (a file or stdout) or an
//! Atropos-compatible trajectory API.

use std::io::Write;

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
/// errors are left out; `None` when none is left.
pub fn to_scored_data(group: &[Trajectory], env_id: Option<i64>) -> Option<Value> {
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
        },
        "generation_params": {
            "temperature": first.policy.sampling.temperature,
            "top_p": first.policy.sampling.top_p,
            "max_tokens": first.policy.sampling.max_tokens,
        },
        "env_id": env_id,
    }))
}

/// Pushes groups to an Atropos-compatible trajectory API.
pub struct ApiSink {
    base_url: String,
    client: reqwest::Client,
    env_id: Option<i64>,
}

impl ApiSink {
    /// Registers as an environment (`POST /register-env`) at `base_url`.
    pub async fn connect(base_url: &str, name: &str, group_size: u32) -> Result<Self, RunnerError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let client = reqwest::Client::new();
        let body = json!({
            "max_token_length": 1 << 20,
            "desired_name": name,
            "weight": 1.0,
            "group_size": group_size,
            "min_batch_allocation": Value::Null,
        });
        let resp = client
            .post(format!("{base_url}/register-env"))
            .json(&body)
            .send()
            .await
            .map_err(|e| RunnerError::Sink(format!("cannot reach the trajectory API at {base_url}: {e}")))?;
        let v: Value = resp.json().await.map_err(|e| RunnerError::Sink(format!("/register-env: {e}")))?;
        let env_id = v.get("env_id").and_then(Value::as_i64);
        Ok(ApiSink { base_url, client, env_id })
    }

    /// Pushes one group (`POST /scored_data`); skips groups with no token ids.
    /// Returns whether something was sent.
    pub async fn push_group(&self, group: &[Trajectory]) -> Result<bool, RunnerError> {
        let Some(data) = to_scored_data(group, self.env_id) else { return Ok(false) };
        let mut delay = std::time::Duration::from_millis(200);
        for attempt in 0..5 {
            let sent = self.client.post(format!("{}/scored_data", self.base_url)).json(&data).send().await;
            match sent {
                Ok(r) if r.status().is_success() => return Ok(true),
                Ok(r) if r.status().is_client_error() => {
                    return Err(RunnerError::Sink(format!("/scored_data answered {}", r.status())));
                }
                _ if attempt < 4 => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Ok(r) => return Err(RunnerError::Sink(format!("/scored_data answered {}", r.status()))),
                Err(e) => return Err(RunnerError::Sink(format!("/scored_data: {e}"))),
            }
        }
        Ok(false)
    }
}
