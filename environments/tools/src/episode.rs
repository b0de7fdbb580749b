//! One episode: its state (which travels through the host between calls)
//! and the step logic: parse the policy's calls, run them, score the end.

use std::collections::BTreeMap;

use envhub_sdk::error::{EnvError, ErrorKind};
use envhub_sdk::protocol::{Message, Metrics, Reward, Role, StepResponse};
use envhub_sdk::reward::weighted_total;
use envhub_sdk::verify::tools::{CallFormat, ParseOptions, parse_message};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::bfcl::BfclTask;
use crate::goal::Goal;
use crate::world::World;

/// The version of the state layout; a state of another version is refused.
pub const STATE_FORMAT: u32 = 1;
/// Most calls executed in one turn; later ones are answered with an error.
pub const MAX_CALLS_PER_TURN: usize = 16;

/// Reward component names.
pub const SUCCESS: &str = "success";
/// Fraction of calls that parsed, passed the schema and ran.
pub const VALID_CALL_RATE: &str = "valid_call_rate";
/// `min_turns / turns`, capped at 1, counted only on success.
pub const EFFICIENCY: &str = "efficiency";

/// What the episode is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Objective {
    /// Multi-turn: reach the goals in the simulated world.
    World {
        /// Template name.
        template: String,
        /// What must hold at the end.
        goals: Vec<Goal>,
        /// Turns of an optimal episode.
        min_turns: u32,
        /// The current world.
        world: World,
    },
    /// Single-turn: make the BFCL ground-truth calls.
    Bfcl(BfclTask),
}

/// Calls and errors of one tool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolStats {
    /// Calls made.
    pub calls: u32,
    /// Calls that failed (schema, rule or parse errors).
    pub errors: u32,
}

/// The episode state. Round-trips through JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// The task's id.
    pub task_id: String,
    /// Goals and world, or the BFCL entry.
    pub objective: Objective,
    /// Reward weights in force.
    pub weights: BTreeMap<String, f64>,
    /// Turn budget.
    pub max_turns: u32,
    /// Assistant turns taken.
    pub turns: u32,
    /// Calls attempted.
    pub calls: u32,
    /// Calls that ran.
    pub valid_calls: u32,
    /// Per-tool counts.
    pub tools: BTreeMap<String, ToolStats>,
    /// Whether the episode has ended.
    pub done: bool,
}

/// Metric key for calls to names that are not tools (bounded key set).
const UNKNOWN_TOOL: &str = "(unknown)";
/// Metric key for calls that did not parse.
const UNPARSED: &str = "(unparsed)";

fn tool_message(id: String, name: &str, result: Result<Value, String>) -> Message {
    let content = match result {
        Ok(v) => v.to_string(),
        Err(e) => json!({ "error": e }).to_string(),
    };
    Message::tool(id, name, content)
}

impl State {
    /// Reads a state sent back by the host.
    pub fn from_value(v: Value) -> Result<State, EnvError> {
        let s: State = serde_json::from_value(v)
            .map_err(|e| EnvError::invalid_state(format!("not a state of this environment: {e}")))?;
        if s.format != STATE_FORMAT {
            return Err(EnvError::invalid_state(format!("state format {} (expected {STATE_FORMAT})", s.format)));
        }
        Ok(s)
    }

    fn count(&mut self, key: &str, ok: bool) {
        let s = self.tools.entry(key.to_owned()).or_default();
        s.calls += 1;
        if !ok {
            s.errors += 1;
        }
        self.calls += 1;
        if ok {
            self.valid_calls += 1;
        }
    }

    /// Applies one assistant turn.
    pub fn step(mut self, action: &Message) -> Result<StepResponse, EnvError> {
        if action.role != Role::Assistant {
            return Err(EnvError::invalid_action("the action must be an assistant message"));
        }
        if self.done {
            return Err(EnvError::new(ErrorKind::EpisodeOver, "the episode is over; start a new one with reset"));
        }
        let raw = serde_json::to_value(action).map_err(|e| EnvError::internal(format!("cannot encode action: {e}")))?;
        let parsed = parse_message(&raw, &ParseOptions::default())
            .map_err(|e| EnvError::invalid_action(format!("cannot read the action: {e}")))?;
        self.turns += 1;
        if let Objective::Bfcl(_) = self.objective {
            return Ok(self.finish_bfcl(parsed));
        }
        if parsed.has_no_calls() {
            let answer = parsed.content;
            return Ok(self.finish(Some(&answer), "answer", Vec::new()));
        }
        let mut messages = Vec::new();
        let turn = self.turns;
        for (i, call) in parsed.calls.into_iter().enumerate() {
            let given = match parsed.format {
                Some(CallFormat::OpenAi) => action.tool_calls.get(i).map(|c| c.id.clone()).filter(|id| !id.is_empty()),
                _ => None,
            };
            let mut id = given.unwrap_or_else(|| format!("call_{turn}_{i}"));
            match call {
                Err(e) => {
                    let name = action.tool_calls.get(e.index).map(|c| c.function.name.clone());
                    self.count(UNPARSED, false);
                    messages.push(tool_message(id, name.as_deref().unwrap_or("invalid"), Err(e.to_string())));
                }
                Ok(call) => {
                    if let Some(own) = call.id.clone().filter(|s| !s.is_empty()) {
                        id = own;
                    }
                    let Objective::World { world, .. } = &mut self.objective else { continue };
                    let known = crate::tools::specs().iter().any(|s| s.name == call.name);
                    let result = if i >= MAX_CALLS_PER_TURN {
                        Err(format!("too many calls in one turn (at most {MAX_CALLS_PER_TURN}); call it again"))
                    } else {
                        world.execute(&call).map_err(|e| e.to_string())
                    };
                    let key = if known { call.name.as_str() } else { UNKNOWN_TOOL };
                    self.count(key, result.is_ok());
                    messages.push(tool_message(id, &call.name, result));
                }
            }
        }
        if self.turns >= self.max_turns {
            return Ok(self.finish(None, "max_turns", messages));
        }
        let metrics = self.metrics();
        Ok(StepResponse { messages, done: false, reward: Reward::default(), metrics, state: self.into_value()? })
    }

    fn metrics(&self) -> Metrics {
        let mut m = Metrics::new();
        m.insert("turns".into(), json!(self.turns));
        m.insert("calls".into(), json!(self.calls));
        m.insert("valid_calls".into(), json!(self.valid_calls));
        m.insert("tools".into(), json!(self.tools));
        m
    }

    fn into_value(self) -> Result<Value, EnvError> {
        serde_json::to_value(&self).map_err(|e| EnvError::internal(format!("cannot encode state: {e}")))
    }

    fn valid_rate(&self) -> f64 {
        if self.calls == 0 { 0.0 } else { f64::from(self.valid_calls) / f64::from(self.calls) }
    }

    fn respond(mut self, success: bool, min_turns: u32, mut metrics: Metrics, messages: Vec<Message>) -> StepResponse {
        let efficiency = if success { (f64::from(min_turns) / f64::from(self.turns.max(1))).min(1.0) } else { 0.0 };
        let components: BTreeMap<String, f64> = [
            (SUCCESS.to_owned(), if success { 1.0 } else { 0.0 }),
            (VALID_CALL_RATE.to_owned(), self.valid_rate()),
            (EFFICIENCY.to_owned(), efficiency),
        ]
        .into();
        let total = weighted_total(&self.weights, &components);
        self.done = true;
        metrics.append(&mut self.metrics());
        let state = serde_json::to_value(&self).unwrap_or(Value::Null);
        StepResponse { messages, done: true, reward: Reward { total, components }, metrics, state }
    }

    fn finish(self, answer: Option<&str>, finish: &str, messages: Vec<Message>) -> StepResponse {
        let Objective::World { goals, min_turns, world, .. } = &self.objective else {
            return self.respond(false, 1, Metrics::new(), messages);
        };
        let met = goals.iter().filter(|g| g.met(world, answer)).count();
        let success = met == goals.len();
        let min_turns = *min_turns;
        let mut metrics = Metrics::new();
        metrics.insert("finish".into(), json!(finish));
        metrics.insert("goals_met".into(), json!(met));
        metrics.insert("goals_total".into(), json!(goals.len()));
        if let Some(a) = answer {
            metrics.insert("answer".into(), json!(a.chars().take(200).collect::<String>()));
        }
        self.respond(success, min_turns, metrics, messages)
    }

    fn finish_bfcl(mut self, parsed: envhub_sdk::verify::tools::ParsedTurn) -> StepResponse {
        let Objective::Bfcl(task) = self.objective.clone() else {
            return self.respond(false, 1, Metrics::new(), Vec::new());
        };
        let mut calls = Vec::new();
        let mut parse_failed = false;
        for c in parsed.calls {
            match c {
                Ok(call) => {
                    let known = task.knows(&call.name);
                    self.count(if known { &call.name } else { UNKNOWN_TOOL }, known);
                    calls.push(call);
                }
                Err(_) => {
                    parse_failed = true;
                    self.count(UNPARSED, false);
                }
            }
        }
        let outcome = if parse_failed { Err("a call could not be parsed".to_owned()) } else { task.check(&calls) };
        let mut metrics = Metrics::new();
        metrics.insert("finish".into(), json!("answer"));
        metrics.insert("bfcl_id".into(), json!(task.id));
        if let Err(reason) = &outcome {
            metrics.insert("mismatch".into(), json!(reason.chars().take(500).collect::<String>()));
        }
        self.respond(outcome.is_ok(), 1, metrics, Vec::new())
    }
}
