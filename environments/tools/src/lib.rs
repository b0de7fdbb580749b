//! envhub-env-tools: multi-turn tool use over deterministic simulated tools
//! (calculator, database, file system, hotel booking), and single-turn
//! function calling from BFCL.
//!
//! Splits:
//! - `train`: procedural, any index;
//! - `test`: procedural, [`TEST_COUNT`] tasks (a stream disjoint from `train`);
//! - `bfcl`: BFCL simple/multiple/parallel entries, present when
//!   `/data/bfcl` holds the files `scripts/fetch-bfcl.sh` extracts.
//!
//! Inline tasks and reward components are documented in the crate README.

pub mod bfcl;
pub mod episode;
pub mod goal;
pub mod tasks;
pub mod tools;
pub mod world;

use std::collections::BTreeMap;
use std::path::PathBuf;

use envhub_sdk::error::{EnvError, ErrorKind};
use envhub_sdk::guest::Environment;
use envhub_sdk::protocol::{
    InfoResponse, Message, ResetResponse, RewardComponent, StepResponse, TaskSource, ValidateResponse,
};
use serde_json::{Map, Value};

use crate::bfcl::{BfclStore, BfclTask};
use crate::episode::{EFFICIENCY, Objective, STATE_FORMAT, SUCCESS, State, VALID_CALL_RATE};
use crate::tasks::WorldTask;

/// Environment name.
pub const NAME: &str = "envhub/tools";
/// Environment version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Tasks in the `test` split.
pub const TEST_COUNT: u64 = 200;
/// The turn budget of a multi-turn episode.
pub const MAX_TURNS: u32 = 8;

/// The environment. `data_dir` is where the package data is mounted
/// (`/data` in the sandbox).
#[derive(Clone, Debug)]
pub struct ToolsEnv {
    bfcl: BfclStore,
}

/// A loaded task, before it becomes an episode.
enum Loaded {
    World(WorldTask),
    Bfcl(BfclTask),
}

fn components() -> Vec<RewardComponent> {
    vec![
        RewardComponent { name: SUCCESS.to_owned(), weight: 1.0 },
        RewardComponent { name: VALID_CALL_RATE.to_owned(), weight: 0.0 },
        RewardComponent { name: EFFICIENCY.to_owned(), weight: 0.1 },
    ]
}

/// Default weights, overridden by `config.weights`; `weights` is the only config key.
fn weights(config: &Map<String, Value>) -> Result<BTreeMap<String, f64>, EnvError> {
    if let Some(k) = config.keys().find(|k| k.as_str() != "weights") {
        return Err(EnvError::bad_request(format!("unknown config key `{k}`; the only key is `weights`")));
    }
    envhub_sdk::reward::weights(&components(), config)
}

fn system_prompt() -> String {
    format!(
        "You are an assistant that completes tasks by calling tools: a calculator, a database, a file system \
         and a hotel booking API. Call tools with the functions provided; their results come back as tool \
         messages, and an error explains what to fix. When the task is complete, reply without any tool call; \
         if the task asks a question, that reply must be the answer alone. You have at most {MAX_TURNS} turns."
    )
}

impl ToolsEnv {
    /// The environment reading package data (BFCL) from `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ToolsEnv { bfcl: BfclStore::new(data_dir) }
    }

    fn load(&self, source: &TaskSource) -> Result<(String, Loaded), EnvError> {
        match source {
            TaskSource::Split { split, index } => match split.as_str() {
                "train" => Ok((format!("train/{index}"), Loaded::World(tasks::generate("train", *index)))),
                "test" if *index < TEST_COUNT => {
                    Ok((format!("test/{index}"), Loaded::World(tasks::generate("test", *index))))
                }
                "test" => Err(EnvError::index_out_of_range("test", *index, TEST_COUNT)),
                "bfcl" => {
                    let count = self.bfcl.count().ok_or_else(|| {
                        EnvError::new(
                            ErrorKind::UnknownSplit,
                            "split `bfcl` needs the BFCL data in /data/bfcl, which this package lacks \
                             (run scripts/fetch-bfcl.sh before packaging)",
                        )
                    })?;
                    if *index >= count {
                        return Err(EnvError::index_out_of_range("bfcl", *index, count));
                    }
                    let task = self.bfcl.load(*index)?;
                    Ok((format!("bfcl/{}", task.id), Loaded::Bfcl(task)))
                }
                other => Err(EnvError::unknown_split(other, self.splits().keys().map(String::as_str))),
            },
            TaskSource::Inline(task) => {
                let id = format!("inline/{:016x}", envhub_sdk::rng::stable_hash(task.to_string().as_bytes()));
                if let Some(body) = task.get("bfcl") {
                    let t = bfcl::from_inline(body).map_err(|e| EnvError::invalid_task(format!("inline task: {e}")))?;
                    Ok((id, Loaded::Bfcl(t)))
                } else {
                    let t = tasks::from_inline(task.clone())
                        .map_err(|e| EnvError::invalid_task(format!("inline task: {e}")))?;
                    Ok((id, Loaded::World(t)))
                }
            }
        }
    }

    fn splits(&self) -> BTreeMap<String, Option<u64>> {
        let mut s: BTreeMap<String, Option<u64>> =
            [("train".to_owned(), None), ("test".to_owned(), Some(TEST_COUNT))].into();
        if let Some(n) = self.bfcl.count() {
            s.insert("bfcl".to_owned(), Some(n));
        }
        s
    }
}

impl Default for ToolsEnv {
    /// Reads data from `/data`, as in the sandbox.
    fn default() -> Self {
        ToolsEnv::new("/data")
    }
}

impl Environment for ToolsEnv {
    fn info(&self) -> InfoResponse {
        InfoResponse {
            name: NAME.to_owned(),
            version: VERSION.to_owned(),
            description: "Multi-turn tool use (calculator, database, files, booking) with verifiable goals, \
                          and BFCL function calling"
                .to_owned(),
            splits: self.splits(),
            max_turns: MAX_TURNS,
            tools: tools::openai_tools(),
            reward_components: components(),
            capabilities: Vec::new(),
        }
    }

    fn reset(&self, source: &TaskSource, _seed: u64, config: &Map<String, Value>) -> Result<ResetResponse, EnvError> {
        let weights = weights(config)?;
        let (task_id, loaded) = self.load(source)?;
        let (messages, tools, objective, max_turns) = match loaded {
            Loaded::World(t) => {
                let messages = vec![Message::system(system_prompt()), Message::user(t.instruction)];
                let objective =
                    Objective::World { template: t.template, goals: t.goals, min_turns: t.min_turns, world: t.world };
                (messages, tools::openai_tools(), objective, MAX_TURNS)
            }
            Loaded::Bfcl(t) => (t.messages(), t.tools(), Objective::Bfcl(t), 1),
        };
        let state = State {
            format: STATE_FORMAT,
            task_id: task_id.clone(),
            objective,
            weights,
            max_turns,
            turns: 0,
            calls: 0,
            valid_calls: 0,
            tools: BTreeMap::new(),
            done: false,
        };
        let state =
            serde_json::to_value(&state).map_err(|e| EnvError::internal(format!("cannot encode state: {e}")))?;
        Ok(ResetResponse { task_id, messages, tools, state })
    }

    fn step(&self, state: Value, action: &Message) -> Result<StepResponse, EnvError> {
        State::from_value(state)?.step(action)
    }

    fn validate(&self, source: &TaskSource) -> Result<ValidateResponse, EnvError> {
        match self.load(source)?.1 {
            Loaded::World(t) if t.reference.is_empty() => {
                Err(EnvError::unsupported("this inline task gives no `reference` actions"))
            }
            Loaded::World(t) => Ok(ValidateResponse { actions: t.reference }),
            Loaded::Bfcl(t) => Ok(ValidateResponse { actions: t.reference()? }),
        }
    }
}
