//! Policies: what writes the assistant turns.
//!
//! One trait, [`Policy`], with two real implementations: [`OpenAiPolicy`]
//! (any OpenAI-compatible server: vLLM, SGLang, llama.cpp, OpenAI) and, with
//! the `candle` feature, [`CandlePolicy`] (a GGUF model in-process).

use std::future::Future;

use envhub_sdk::{Message, Tool};

use crate::error::PolicyError;
use crate::trajectory::{IdSource, PolicyRef, Sampling};

#[cfg(feature = "candle")]
pub mod candle;
pub mod openai;
pub mod token_prompts;
pub mod tool_text;

#[cfg(feature = "candle")]
pub use candle::CandlePolicy;
pub use openai::{OpenAiConfig, OpenAiPolicy};

/// The content of the stand-in assistant turn rendered to find what a chat
/// template writes after an assistant's text (see [`continuation_text`]).
const PROBE: &str = "envhub-probe-5c1e";

/// A stand-in exchange, a user turn and an assistant turn, then `new`: the
/// conversations a token-in/token-out policy renders with and without the
/// new messages.
pub(crate) fn probe_exchange(new: &[Message]) -> (Vec<Message>, Vec<Message>) {
    let closed = vec![Message::user("u"), Message::assistant(PROBE)];
    let mut next = closed.clone();
    next.extend_from_slice(new);
    (closed, next)
}

/// From the renderings of [`probe_exchange`]'s two conversations (`closed`
/// without the generation prompt, `next` with it): what the template
/// writes after an assistant turn's content, and the new messages' text.
/// `None` when `next` does not extend `closed` (the template renders
/// earlier turns differently once later ones follow).
pub(crate) fn continuation_text<'a>(closed: &'a str, next: &'a str) -> Option<(&'a str, &'a str)> {
    let delta = next.strip_prefix(closed)?;
    let after_content = closed.rfind(PROBE).map_or("", |i| &closed[i + PROBE.len()..]);
    Some((after_content, delta))
}

/// `Some(source)` when there are `ids`.
pub(crate) fn source_if(ids: &[u32], source: IdSource) -> Option<IdSource> {
    (!ids.is_empty()).then_some(source)
}

/// One request for an assistant turn.
#[derive(Clone, Debug)]
pub struct PolicyRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools the policy may call.
    pub tools: Vec<Tool>,
    /// Sampling parameters.
    pub sampling: Sampling,
    /// Seed for this turn's sampling (derived from the run seed, group, sample and turn).
    pub seed: u64,
    /// The rollout's token sequence so far, from the second turn on: a
    /// token-in/token-out policy builds this turn's prompt as these tokens
    /// plus the new messages' tokens, never re-tokenising what it sampled.
    pub prefix: Option<TokenPrefix>,
}

/// The token sequence of a rollout so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenPrefix {
    /// The previous turn's prompt and sampled tokens.
    pub tokens: Vec<u32>,
    /// How many of the request's messages those tokens cover (the
    /// conversation up to and including the last assistant message); the
    /// rest are new (the environment's answer).
    pub messages: usize,
}

/// An assistant turn and what the policy reports about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The assistant message (content and/or tool calls).
    pub message: Message,
    /// Prompt token ids, when reported.
    pub prompt_token_ids: Vec<u32>,
    /// Where `prompt_token_ids` came from (`None` when there are none).
    pub prompt_source: Option<IdSource>,
    /// Sampled token ids, when reported.
    pub token_ids: Vec<u32>,
    /// Where `token_ids` came from (`None` when there are none).
    pub token_source: Option<IdSource>,
    /// Per-token logprobs of the sampled tokens, when reported.
    pub logprobs: Vec<f32>,
    /// `stop`, `length` or `tool_calls`.
    pub finish_reason: String,
    /// Completion tokens (from `token_ids` or the server's usage figures).
    pub completion_tokens: u64,
    /// Attempts it took (1 without retries).
    pub attempts: u32,
}

/// Something that writes assistant turns.
pub trait Policy: Send + Sync + 'static {
    /// Identity, version, logprob convention (sampling is filled in by the runner).
    fn describe(&self) -> PolicyRef;

    /// Writes the next assistant turn.
    fn complete(&self, request: PolicyRequest) -> impl Future<Output = Result<Completion, PolicyError>> + Send;
}
