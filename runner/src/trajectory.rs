//! Scored trajectories: what a rollout records, one JSON object per line.
//!
//! A trajectory names everything needed to replay and check it
//! ([`EnvRef::digest`], [`TaskRef`], [`PolicyRef`]): `envhub verify` resets the
//! environment on the recorded task and seed, steps the recorded actions and
//! compares every reward bit for bit.

use std::collections::BTreeMap;

use envhub_sdk::{Message, Metrics, Reward, TaskSource, Tool};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Format version of [`Trajectory`] (field `format`).
pub const TRAJECTORY_FORMAT: u32 = 1;

/// The ε in group advantages `(r - mean) / (std + ε)`.
pub const ADVANTAGE_EPS: f64 = 1e-6;

/// The environment a trajectory ran in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvRef {
    /// Environment name (from `info`, e.g. `envhub/math`).
    pub name: String,
    /// Environment version.
    pub version: String,
    /// `sha256:<hex>` of the package (or of the bare module).
    pub digest: String,
    /// Where it was loaded from (a hint for `envhub verify`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The task a trajectory worked on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRef {
    /// Split and index, or an inline task.
    pub source: TaskSource,
    /// The environment's stable task id.
    #[serde(default)]
    pub task_id: String,
    /// The seed passed to `reset`.
    pub seed: u64,
    /// Environment arguments passed to `reset`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub config: Map<String, Value>,
}

/// How a policy's per-token logprobs were computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogprobConvention {
    /// Log-softmax of the model's raw logits, before temperature and top-p
    /// (vLLM's default, and the in-process candle policy's).
    Raw,
    /// Whatever the server reported; its convention is not known.
    Server,
    /// The policy reports no logprobs.
    None,
}

/// Sampling parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sampling {
    /// Softmax temperature; 0 means greedy.
    pub temperature: f64,
    /// Nucleus sampling mass.
    pub top_p: f64,
    /// Most new tokens per turn.
    pub max_tokens: u32,
    /// Stop strings (not included in the message).
    pub stop: Vec<String>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { temperature: 1.0, top_p: 1.0, max_tokens: 512, stop: Vec::new() }
    }
}

/// Where a turn's token ids came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdSource {
    /// Reported by the inference server that sampled them.
    Server,
    /// The in-process model's own: exactly what it was fed and sampled.
    Model,
    /// Computed by envhub from text, with the model's tokenizer and chat
    /// template (the server reported none).
    Local,
}

/// A turn whose prompt does not extend the token sequence before it: the
/// conversation was re-tokenised differently from what the policy sampled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// The first position where the prompt differs from the sequence before it.
    pub at: usize,
    /// The length of the sequence before it (previous prompt and sampled tokens).
    pub expected_len: usize,
}

/// An episode as a trainer takes it: token ids, the Atropos-style mask (the
/// token id on policy tokens, -100 elsewhere) and per-token logprobs.
pub type TokenSequence = (Vec<u32>, Vec<i64>, Vec<f32>);

/// Why a trajectory cannot be trained on as one token sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Untrainable {
    /// `no_turns`, `no_token_ids`, `no_prompt_ids`, `drift` or `error`.
    pub kind: String,
    /// What happened and what to do.
    pub message: String,
}

impl Untrainable {
    fn new(kind: &str, message: impl Into<String>) -> Untrainable {
        Untrainable { kind: kind.to_owned(), message: message.into() }
    }
}

/// The policy that wrote a trajectory's actions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// Kind and identity, e.g. `openai:http://host/v1#Qwen2.5-7B` or `candle:SmolLM2-135M-Instruct.Q4_1.gguf`.
    pub id: String,
    /// Version: the model weights' sha256 where known, else the server's model name.
    pub version: String,
    /// How `logprobs` were computed.
    pub logprobs: LogprobConvention,
    /// Sampling parameters of the run.
    pub sampling: Sampling,
    /// The trainer's step when the group was started (the policy version
    /// it was sampled with), where production is paced by the trainer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
}

/// Why a rollout ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The environment said `done`.
    Done,
    /// The turn limit was reached first.
    MaxTurns,
    /// The policy failed (after retries); see `errors`.
    PolicyError,
    /// The environment failed; see `errors`.
    EnvError,
}

/// A failure recorded on a trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// `policy` or `env`.
    pub stage: String,
    /// Machine-readable kind.
    pub kind: String,
    /// Human-readable message.
    pub message: String,
    /// The turn it happened at (0-based; reset is turn 0).
    pub turn: u32,
}

/// One policy turn and the environment's answer to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// The policy's action (an assistant message).
    pub action: Message,
    /// Messages the environment answered with (tool results, feedback).
    #[serde(default)]
    pub observation: Vec<Message>,
    /// Token ids of the prompt the policy saw, when the policy reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_token_ids: Vec<u32>,
    /// Token ids the policy sampled, when it reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_ids: Vec<u32>,
    /// Per-token logprob of each sampled token (see [`PolicyRef::logprobs`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<f32>,
    /// Loss mask over `prompt_token_ids ++ token_ids`: 0 for prompt tokens, 1
    /// for policy tokens. Empty when the policy reports no token ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loss_mask: Vec<u8>,
    /// Where `prompt_token_ids` came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_source: Option<IdSource>,
    /// Where `token_ids` came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_source: Option<IdSource>,
    /// Set when this turn's prompt does not extend the tokens before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// The policy's finish reason (`stop`, `length`, `tool_calls`).
    pub finish_reason: String,
    /// Reward after this step.
    pub reward: Reward,
    /// Whether the environment ended the episode at this step.
    pub done: bool,
    /// Step metrics.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: Metrics,
    /// Policy attempts this turn took (1 without retries).
    pub attempts: u32,
    /// Milliseconds in the policy.
    pub policy_ms: f64,
    /// Milliseconds in the environment step.
    pub env_ms: f64,
}

/// Wall-clock timings of a rollout.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Whole rollout.
    pub total_ms: f64,
    /// Sum over turns of policy time.
    pub policy_ms: f64,
    /// Reset plus steps.
    pub env_ms: f64,
}

/// One scored rollout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// [`TRAJECTORY_FORMAT`].
    pub format: u32,
    /// The run's id.
    pub run_id: String,
    /// Group number within the run.
    pub group: u64,
    /// Index within the group.
    pub sample: u32,
    /// The environment.
    pub env: EnvRef,
    /// The task.
    pub task: TaskRef,
    /// The policy.
    pub policy: PolicyRef,
    /// Opening messages from `reset`.
    pub prompt: Vec<Message>,
    /// Tools offered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// The turns, in order.
    pub turns: Vec<Turn>,
    /// Final reward (that of the last step); `None` when no step completed.
    pub reward: Option<Reward>,
    /// Group-normalised advantage `(r - mean) / (std + ε)` over the group's
    /// scored members; `None` when unscored.
    pub advantage: Option<f64>,
    /// Metrics of the last step.
    #[serde(default)]
    pub metrics: Metrics,
    /// Why it ended.
    pub finish: Finish,
    /// Failures (policy errors after retries, environment errors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorRecord>,
    /// Why a trainer cannot use it, when it cannot (see
    /// [`Trajectory::trainable_sequence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untrainable: Option<Untrainable>,
    /// Why the run filtered out its group (e.g. `uniform_rewards`): kept on
    /// record, not sent to trainers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtered: Option<String>,
    /// Timings.
    pub timings: Timings,
}

impl Trajectory {
    /// The final total reward, if scored.
    pub fn total(&self) -> Option<f64> {
        self.reward.as_ref().map(|r| r.total)
    }

    /// Tokens the policy generated.
    pub fn completion_tokens(&self) -> usize {
        self.turns.iter().map(|t| t.token_ids.len()).sum()
    }

    /// The whole episode as one token sequence for a trainer, or `None`
    /// (see [`Trajectory::trainable_sequence`] for why).
    pub fn token_sequence(&self) -> Option<TokenSequence> {
        self.trainable_sequence().ok()
    }

    /// The whole episode as one token sequence for a trainer: the first
    /// turn's prompt, then each turn's completion and the new prompt tokens
    /// of the next turn. Returns tokens, the Atropos-style mask (the token id
    /// on policy tokens, -100 elsewhere) and per-token logprobs (1.0
    /// placeholders on non-policy tokens, as Atropos does).
    ///
    /// Refused, saying why, when a turn lacks token ids, when it failed, or
    /// when a turn's prompt does not extend the tokens before it (the
    /// conversation was re-tokenised differently from what was sampled):
    /// a trainer would otherwise learn from tokens the policy never saw.
    pub fn trainable_sequence(&self) -> Result<TokenSequence, Untrainable> {
        if let Some(e) = self.errors.first() {
            return Err(Untrainable::new("error", format!("the rollout failed: {} ({})", e.message, e.kind)));
        }
        if self.turns.is_empty() {
            return Err(Untrainable::new("no_turns", "the policy took no turn"));
        }
        let mut tokens: Vec<u32> = Vec::new();
        let mut mask: Vec<i64> = Vec::new();
        let mut logprobs: Vec<f32> = Vec::new();
        for (n, turn) in self.turns.iter().enumerate() {
            if turn.token_ids.is_empty() {
                return Err(Untrainable::new(
                    "no_token_ids",
                    format!(
                        "turn {n} has no token ids: the policy reported none (use a server that returns them: vLLM or SGLang with return_token_ids, llama.cpp with logprobs)"
                    ),
                ));
            }
            let prompt = &turn.prompt_token_ids;
            if prompt.is_empty() {
                return Err(Untrainable::new(
                    "no_prompt_ids",
                    format!(
                        "turn {n} has no prompt token ids: the server reported none and has no /apply-template and /tokenize (vLLM and SGLang report them with return_token_ids)"
                    ),
                ));
            }
            if !prompt.starts_with(&tokens) {
                let at = prompt.iter().zip(&tokens).take_while(|(a, b)| a == b).count();
                return Err(Untrainable::new(
                    "drift",
                    format!(
                        "turn {n}'s prompt differs from the {} tokens before it at token {at}: the conversation was re-tokenised differently from what the policy sampled (use a token-in/token-out policy)",
                        tokens.len()
                    ),
                ));
            }
            let new_prompt = &prompt[tokens.len()..];
            tokens.extend_from_slice(new_prompt);
            mask.extend(std::iter::repeat_n(-100, new_prompt.len()));
            logprobs.extend(std::iter::repeat_n(1.0, new_prompt.len()));
            tokens.extend_from_slice(&turn.token_ids);
            mask.extend(turn.token_ids.iter().map(|&t| i64::from(t)));
            if turn.logprobs.len() == turn.token_ids.len() {
                logprobs.extend_from_slice(&turn.logprobs);
            } else {
                logprobs.extend(std::iter::repeat_n(0.0, turn.token_ids.len()));
            }
        }
        Ok((tokens, mask, logprobs))
    }
}

/// Sets each scored member's advantage to `(r - mean) / (std + ε)` over the
/// scored members of `group` (population standard deviation). Unscored
/// members get `None`.
pub fn assign_advantages(group: &mut [Trajectory]) {
    let rewards: Vec<f64> = group.iter().filter_map(Trajectory::total).collect();
    let (mean, std) = mean_std(&rewards);
    for t in group.iter_mut() {
        t.advantage = t.total().map(|r| (r - mean) / (std + ADVANTAGE_EPS));
    }
}

/// Mean and population standard deviation (0, 0 for an empty slice).
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traj(total: Option<f64>) -> Trajectory {
        Trajectory {
            format: TRAJECTORY_FORMAT,
            run_id: "r".into(),
            group: 0,
            sample: 0,
            env: EnvRef { name: "e".into(), version: "1".into(), digest: "sha256:00".into(), source: None },
            task: TaskRef {
                source: TaskSource::Split { split: "train".into(), index: 0 },
                task_id: "t".into(),
                seed: 0,
                config: Map::new(),
            },
            policy: PolicyRef {
                id: "p".into(),
                version: "1".into(),
                logprobs: LogprobConvention::None,
                sampling: Sampling::default(),
                step: None,
            },
            prompt: vec![],
            tools: vec![],
            turns: vec![],
            reward: total.map(|total| Reward { total, components: Default::default() }),
            advantage: None,
            metrics: Default::default(),
            finish: Finish::Done,
            errors: vec![],
            untrainable: None,
            filtered: None,
            timings: Timings::default(),
        }
    }

    #[test]
    fn advantages_are_group_normalised_and_skip_unscored() {
        let mut g = vec![traj(Some(1.0)), traj(Some(0.0)), traj(None), traj(Some(1.0)), traj(Some(0.0))];
        assign_advantages(&mut g);
        let a: Vec<_> = g.iter().map(|t| t.advantage).collect();
        assert!((a[0].unwrap() - 1.0).abs() < 1e-5);
        assert!((a[1].unwrap() + 1.0).abs() < 1e-5);
        assert_eq!(a[2], None);
    }

    #[test]
    fn equal_rewards_give_zero_advantage() {
        let mut g = vec![traj(Some(0.5)), traj(Some(0.5))];
        assign_advantages(&mut g);
        assert!(g.iter().all(|t| t.advantage == Some(0.0)));
    }

    fn turn(p: Vec<u32>, c: Vec<u32>) -> Turn {
        Turn {
            action: Message::assistant("x"),
            observation: vec![],
            prompt_token_ids: p,
            token_ids: c.clone(),
            logprobs: c.iter().map(|_| -0.5).collect(),
            loss_mask: vec![],
            prompt_source: Some(IdSource::Server),
            token_source: Some(IdSource::Server),
            drift: None,
            finish_reason: "stop".into(),
            reward: Reward::default(),
            done: false,
            metrics: Default::default(),
            attempts: 1,
            policy_ms: 0.0,
            env_ms: 0.0,
        }
    }

    #[test]
    fn token_sequence_merges_extending_turns() {
        let mut t = traj(Some(1.0));
        t.turns = vec![turn(vec![1, 2], vec![3]), turn(vec![1, 2, 3, 4], vec![5, 6])];
        let (tokens, mask, lp) = t.token_sequence().unwrap();
        assert_eq!(tokens, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(mask, vec![-100, -100, 3, -100, 5, 6]);
        assert_eq!(lp, vec![1.0, 1.0, -0.5, 1.0, -0.5, -0.5]);
    }

    #[test]
    fn a_drifted_turn_makes_the_episode_untrainable_instead_of_dropping_turns() {
        let mut t = traj(Some(1.0));
        // The second prompt re-tokenised the first turn's answer (3 became 7, 8).
        t.turns = vec![turn(vec![1, 2], vec![3]), turn(vec![1, 2, 7, 8, 4], vec![5, 6])];
        let why = t.trainable_sequence().expect_err("untrainable");
        assert_eq!(why.kind, "drift");
        assert!(why.message.contains("turn 1") && why.message.contains("token 2"), "{}", why.message);
        assert_eq!(t.token_sequence(), None);
    }

    #[test]
    fn missing_ids_and_failures_say_why() {
        let mut t = traj(Some(1.0));
        t.turns = vec![turn(vec![1, 2], vec![])];
        assert_eq!(t.trainable_sequence().expect_err("no ids").kind, "no_token_ids");
        t.turns = vec![turn(vec![], vec![3])];
        assert_eq!(t.trainable_sequence().expect_err("no prompt").kind, "no_prompt_ids");
        t.turns = vec![];
        assert_eq!(t.trainable_sequence().expect_err("no turns").kind, "no_turns");
        t.turns = vec![turn(vec![1], vec![2])];
        t.errors.push(ErrorRecord { stage: "env".into(), kind: "trap".into(), message: "m".into(), turn: 0 });
        assert_eq!(t.trainable_sequence().expect_err("failed").kind, "error");
    }
}
