//! Single-turn environments: one prompt, one answer, one score.
//!
//! Most verifiable tasks (math, short answers, function calling) are a prompt
//! and a scored completion. Implement [`SingleTurn`] and serve it through
//! [`SingleTurnEnv`]; the runtime builds the state, applies reward weights and
//! answers `validate` from [`SingleTurn::reference`].
//!
//! Reward weights can be overridden per episode through the reset config
//! `{"weights": {"component": weight}}`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::error::EnvError;
use crate::guest::Environment;
use crate::protocol::{
    InfoResponse, Message, Metrics, ResetResponse, Reward, RewardComponent, Role, StepResponse, TaskSource,
    ValidateResponse,
};

/// What a single-turn environment says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    /// Environment name.
    pub name: String,
    /// Environment version (semver).
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Task count of each split (`None`: any index).
    pub splits: BTreeMap<String, Option<u64>>,
    /// Reward components with their default weights.
    pub components: Vec<RewardComponent>,
}

/// The score of one completion: a value for each reward component, and metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Score {
    /// Component values, usually in `[0, 1]`.
    pub components: BTreeMap<String, f64>,
    /// Measurements reported with the reward.
    pub metrics: Metrics,
}

/// A prompt-and-answer environment.
pub trait SingleTurn {
    /// One task; also the inline (bring-your-own) task schema.
    type Task: Serialize + DeserializeOwned;

    /// Name, version, splits and reward components.
    fn describe(&self) -> Description;

    /// The reward components with their default weights. The default takes
    /// them from [`describe`](SingleTurn::describe); override it when
    /// describing is costly (e.g. counts data files), since every `reset`
    /// needs the components.
    fn components(&self) -> Vec<RewardComponent> {
        self.describe().components
    }

    /// The size of `split` (`Some(None)`: any index), or `None` when there is
    /// no such split. The default looks it up in [`describe`](SingleTurn::describe).
    fn split_size(&self, split: &str) -> Option<Option<u64>> {
        self.describe().splits.get(split).copied()
    }

    /// Task `index` of `split`.
    fn task(&self, split: &str, index: u64) -> Result<Self::Task, EnvError>;

    /// Reads an inline task; the default parses it as [`Self::Task`].
    fn inline_task(&self, task: Value) -> Result<Self::Task, EnvError> {
        serde_json::from_value(task).map_err(|e| EnvError::invalid_task(format!("inline task: {e}")))
    }

    /// A stable id for the task.
    fn task_id(&self, task: &Self::Task) -> String;

    /// The opening messages.
    fn prompt(&self, task: &Self::Task) -> Vec<Message>;

    /// Scores `completion` against `task`.
    fn score(&self, task: &Self::Task, completion: &str) -> Score;

    /// A completion that earns full reward, if the task has one.
    fn reference(&self, task: &Self::Task) -> Option<String>;
}

/// Serves a [`SingleTurn`] as an [`Environment`].
#[derive(Clone, Debug, Default)]
pub struct SingleTurnEnv<T>(pub T);

impl<T: SingleTurn> SingleTurnEnv<T> {
    fn load(&self, source: &TaskSource) -> Result<T::Task, EnvError> {
        match source {
            TaskSource::Split { split, index } => {
                match self.0.split_size(split) {
                    None => {
                        let splits = self.0.describe().splits;
                        return Err(EnvError::unknown_split(split, splits.keys().map(String::as_str)));
                    }
                    Some(Some(len)) if *index >= len => {
                        return Err(EnvError::index_out_of_range(split, *index, len));
                    }
                    Some(_) => {}
                }
                self.0.task(split, *index)
            }
            TaskSource::Inline(task) => self.0.inline_task(task.clone()),
        }
    }
}

impl<T: SingleTurn> Environment for SingleTurnEnv<T> {
    fn info(&self) -> InfoResponse {
        let d = self.0.describe();
        InfoResponse {
            name: d.name,
            version: d.version,
            description: d.description,
            splits: d.splits,
            max_turns: 1,
            tools: Vec::new(),
            reward_components: d.components,
            capabilities: Vec::new(),
        }
    }

    fn reset(&self, source: &TaskSource, _seed: u64, config: &Map<String, Value>) -> Result<ResetResponse, EnvError> {
        let task = self.load(source)?;
        let weights = crate::reward::weights(&self.0.components(), config)?;
        let task_id = self.0.task_id(&task);
        let messages = self.0.prompt(&task);
        let task = serde_json::to_value(&task).map_err(|e| EnvError::internal(format!("cannot encode task: {e}")))?;
        Ok(ResetResponse { task_id, messages, tools: Vec::new(), state: json!({ "task": task, "weights": weights }) })
    }

    fn step(&self, state: Value, action: &Message) -> Result<StepResponse, EnvError> {
        if action.role != Role::Assistant {
            return Err(EnvError::invalid_action("the action must be an assistant message"));
        }
        let Value::Object(mut state) = state else {
            return Err(EnvError::invalid_state("state must be the object returned by reset"));
        };
        if state.get("done") == Some(&Value::Bool(true)) {
            return Err(EnvError::new(crate::ErrorKind::EpisodeOver, "this single-turn episode is already over"));
        }
        let task = state.get("task").cloned().ok_or_else(|| EnvError::invalid_state("state has no `task`"))?;
        let task: T::Task =
            serde_json::from_value(task).map_err(|e| EnvError::invalid_state(format!("state.task: {e}")))?;
        let weights: BTreeMap<String, f64> = state
            .get("weights")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| EnvError::invalid_state(format!("state.weights: {e}")))?
            .ok_or_else(|| EnvError::invalid_state("state has no `weights`"))?;
        let score = self.0.score(&task, action.text());
        let total = crate::reward::weighted_total(&weights, &score.components);
        state.insert("done".to_owned(), Value::Bool(true));
        Ok(StepResponse {
            messages: Vec::new(),
            done: true,
            reward: Reward { total, components: score.components },
            metrics: score.metrics,
            state: Value::Object(state),
        })
    }

    fn validate(&self, source: &TaskSource) -> Result<ValidateResponse, EnvError> {
        let task = self.load(source)?;
        match self.0.reference(&task) {
            Some(answer) => Ok(ValidateResponse { actions: vec![Message::assistant(answer)] }),
            None => Err(EnvError::unsupported("this task has no reference answer")),
        }
    }
}
