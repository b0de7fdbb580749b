//! Token-in/token-out through llama.cpp's native API: every turn's prompt
//! is sent as token ids (`POST /completion` with `prompt: [ids]`), built as
//! the previous prompt, the tokens the model sampled, and the tokens of what
//! the server's chat template writes after an assistant turn and for the
//! environment's messages (found with `/apply-template` on a stand-in
//! exchange, tokenised with `/tokenize`). Nothing sampled is re-tokenised.
//!
//! Wire facts (llama.cpp `tools/server/README.md`): a prompt of token ids
//! gets no BOS added, so the first turn's ids come from `/tokenize` with
//! `add_special`; the answer's `tokens` (with `return_tokens`) are the
//! sampled ids, `completion_probabilities[].logprob` their logprobs
//! (`n_probs` > 0), and `stop_type` is `eos`, `word` or `limit`.

use envhub_sdk::{Message, Tool};
use serde_json::{Value, json};

use super::openai::OpenAiPolicy;
use super::tool_text::parse_tool_calls;
use super::{Completion, PolicyRequest, TokenPrefix, continuation_text, probe_exchange};
use crate::error::PolicyError;
use crate::trajectory::IdSource;

impl OpenAiPolicy {
    async fn native(&self, path: &str, body: &Value) -> Result<Value, PolicyError> {
        let text = self.post_text(path, body).await?;
        serde_json::from_str(&text).map_err(|e| PolicyError::Malformed(format!("{path}: {e}")))
    }

    /// `messages` rendered by the server's chat template.
    pub(crate) async fn apply_template(
        &self,
        messages: &[Message],
        tools: &[Tool],
        add_generation_prompt: bool,
    ) -> Result<String, PolicyError> {
        let mut body = json!({ "messages": messages, "add_generation_prompt": add_generation_prompt });
        if !tools.is_empty() {
            body["tools"] = json!(tools);
        }
        let answer = self.native("/apply-template", &body).await?;
        answer
            .get("prompt")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| PolicyError::Malformed("/apply-template: no `prompt`".into()))
    }

    /// `text` as the server's tokenizer splits it (special tokens parsed).
    pub(crate) async fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<u32>, PolicyError> {
        let body = json!({ "content": text, "add_special": add_special, "parse_special": true });
        let answer = self.native("/tokenize", &body).await?;
        ids(answer.get("tokens")).ok_or_else(|| PolicyError::Malformed("/tokenize: no `tokens` of ids".into()))
    }

    /// This turn's prompt: the rendered conversation on the first turn,
    /// the sequence so far and its continuation after that.
    async fn token_prompt(&self, request: &PolicyRequest) -> Result<Vec<u32>, PolicyError> {
        if let Some(prefix) = request.prefix.as_ref().filter(|p| !p.tokens.is_empty())
            && let Some(new) = request.messages.get(prefix.messages..)
        {
            let mut ids = prefix.tokens.clone();
            ids.extend(self.continuation(prefix, new, &request.tools).await?);
            return Ok(ids);
        }
        let text = self.apply_template(&request.messages, &request.tools, true).await?;
        self.tokenize(&text, true).await
    }

    /// What follows `prefix` for the `new` messages (see the module docs).
    async fn continuation(
        &self,
        prefix: &TokenPrefix,
        new: &[Message],
        tools: &[Tool],
    ) -> Result<Vec<u32>, PolicyError> {
        let (closed, next) = probe_exchange(new);
        let closed = self.apply_template(&closed, tools, false).await?;
        let next = self.apply_template(&next, tools, true).await?;
        let Some((after_content, delta)) = continuation_text(&closed, &next) else {
            return Err(PolicyError::Model(
                "the server's chat template renders earlier turns differently once later ones follow, so turns cannot be appended token by token (run without --token-prompts)".into(),
            ));
        };
        // llama.cpp renders a final assistant turn as a prefill (no
        // end-of-turn), other templates close it: either way what follows
        // the content is `after_content` then `delta`.
        let mut ids = self.tokenize(&format!("{after_content}{delta}"), false).await?;
        // The end-of-turn token the model sampled already closed its turn.
        if !ids.is_empty() && ids.first() == prefix.tokens.last() {
            ids.remove(0);
        }
        Ok(ids)
    }

    /// One turn through `POST /completion` with a token prompt.
    pub(crate) async fn complete_with_token_prompt(&self, request: &PolicyRequest) -> Result<Completion, PolicyError> {
        let prompt = self.token_prompt(request).await?;
        let s = &request.sampling;
        let mut body = json!({
            "prompt": prompt,
            "n_predict": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "seed": request.seed & 0x7fff_ffff,
            "n_probs": 1,
            "return_tokens": true,
            "cache_prompt": true,
        });
        if !s.stop.is_empty() {
            body["stop"] = json!(s.stop);
        }
        let answer = self.native("/completion", &body).await?;
        parse_native_completion(&answer, prompt, request.seed)
    }
}

fn ids(value: Option<&Value>) -> Option<Vec<u32>> {
    value?.as_array()?.iter().map(|t| t.as_u64().and_then(|t| u32::try_from(t).ok())).collect()
}

/// A `/completion` answer as a turn.
pub fn parse_native_completion(answer: &Value, prompt: Vec<u32>, seed: u64) -> Result<Completion, PolicyError> {
    let text = answer
        .get("content")
        .and_then(Value::as_str)
        .ok_or_else(|| PolicyError::Malformed("/completion: no `content`".into()))?;
    let probabilities = answer.get("completion_probabilities").and_then(Value::as_array);
    let token_ids = ids(answer.get("tokens"))
        .filter(|t| !t.is_empty())
        .or_else(|| ids(Some(&Value::Array(probabilities?.iter().map(|p| p["id"].clone()).collect()))))
        .unwrap_or_default();
    let logprobs: Vec<f32> = probabilities
        .map(|p| p.iter().filter_map(|e| e.get("logprob").and_then(Value::as_f64)).map(|l| l as f32).collect())
        .unwrap_or_default();
    let message = parse_tool_calls(text, seed);
    let finish_reason = match answer.get("stop_type").and_then(Value::as_str) {
        Some("limit") => "length",
        _ if !message.tool_calls.is_empty() => "tool_calls",
        _ => "stop",
    };
    Ok(Completion {
        message,
        prompt_source: Some(IdSource::Server),
        prompt_token_ids: prompt,
        token_source: (!token_ids.is_empty()).then_some(IdSource::Server),
        completion_tokens: token_ids.len() as u64,
        token_ids,
        logprobs,
        finish_reason: finish_reason.to_owned(),
        attempts: 1,
    })
}
