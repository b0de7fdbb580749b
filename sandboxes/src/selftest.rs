//! The self-test every package must pass (`envhub test`, and the hub's check
//! on publish): each call twice with identical bytes, and every task's
//! reference actions earning full reward.

use std::time::{Duration, Instant};

use envhub_sdk::{Envelope, InfoResponse, Request, ResetRequest, ResetResponse, StepRequest, StepResponse, TaskSource};
use envhub_sdk::{ErrorKind, ValidateRequest, ValidateResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::module::CallOutput;
use crate::{EnvModule, SandboxError};

/// How much of an environment to test.
#[derive(Clone, Debug)]
pub struct SelfTestOptions {
    /// Tasks tested from the start of each split.
    pub tasks_per_split: u64,
    /// Seed of every `reset`.
    pub seed: u64,
    /// Most tasks tested in all; an environment with more splits than this
    /// allows fails the test.
    pub max_tasks: usize,
    /// What the whole test may spend, every call together (`None`: each call
    /// is bounded by the module's limits only).
    pub budget: Option<Budget>,
}

impl Default for SelfTestOptions {
    fn default() -> Self {
        SelfTestOptions { tasks_per_split: 5, seed: 0, max_tasks: 10_000, budget: None }
    }
}

/// One budget for all the calls of a self-test, as a hub gives an upload:
/// each call runs under the module's limits capped by what is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Instructions, all calls together.
    pub fuel: u64,
    /// Wall-clock time, all calls together.
    pub wall: Duration,
}

/// Runs a self-test's calls, charging them to its budget.
struct Meter<'a> {
    module: &'a EnvModule,
    budget: Option<Budget>,
    started: Instant,
    fuel_used: u64,
    /// Set once a call found the budget spent.
    spent: Option<String>,
}

impl Meter<'_> {
    fn call(&mut self, request: &[u8]) -> Result<CallOutput, SandboxError> {
        let Some(budget) = self.budget else { return self.module.call_raw(request) };
        let limits = *self.module.limits();
        let fuel_left = budget.fuel.saturating_sub(self.fuel_used);
        let ms_left = u64::try_from(budget.wall.saturating_sub(self.started.elapsed()).as_millis()).unwrap_or(u64::MAX);
        if fuel_left == 0 || ms_left == 0 {
            return Err(self.spent());
        }
        let capped =
            crate::Limits { fuel: limits.fuel.min(fuel_left), deadline_ms: limits.deadline_ms.min(ms_left), ..limits };
        match self.module.with_limits(capped).call_raw(request) {
            Ok(out) => {
                self.fuel_used = self.fuel_used.saturating_add(out.fuel_used);
                Ok(out)
            }
            Err(SandboxError::OutOfFuel { .. }) if capped.fuel < limits.fuel => Err(self.spent()),
            Err(SandboxError::Deadline { .. }) if capped.deadline_ms < limits.deadline_ms => Err(self.spent()),
            Err(e) => Err(e),
        }
    }

    fn spent(&mut self) -> SandboxError {
        let b = self.budget.unwrap_or(Budget { fuel: 0, wall: Duration::ZERO });
        let why = format!(
            "the self-test's budget is spent ({} instructions, {} s, all calls together)",
            b.fuel,
            b.wall.as_secs_f64()
        );
        self.spent = Some(why.clone());
        SandboxError::Budget(why)
    }
}

/// The outcome for one task.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskReport {
    /// Split name.
    pub split: String,
    /// Task index.
    pub index: u64,
    /// `None` when the task passed; otherwise what failed.
    pub failure: Option<String>,
    /// Whether the task had reference actions (and they were checked).
    pub validated: bool,
    /// Reward the reference actions earned.
    pub reward: Option<f64>,
}

/// The outcome of a self-test.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SelfTestReport {
    /// The environment's `info`.
    pub info: InfoResponse,
    /// One entry per task tested.
    pub tasks: Vec<TaskReport>,
    /// Why the test stopped before its last task (budget spent, too many
    /// tasks), if it did.
    pub stopped: Option<String>,
}

impl SelfTestReport {
    /// Whether every task passed and none was left untested.
    pub fn passed(&self) -> bool {
        self.stopped.is_none() && self.tasks.iter().all(|t| t.failure.is_none())
    }

    /// Tasks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &TaskReport> {
        self.tasks.iter().filter(|t| t.failure.is_some())
    }
}

/// Why a doubled call failed.
enum Twice {
    /// A call failed.
    Call(&'static str, SandboxError),
    /// Two runs disagreed.
    Nondeterministic(String),
}

impl From<Twice> for String {
    fn from(t: Twice) -> String {
        match t {
            Twice::Call(op, e) => format!("{op}: {e}"),
            Twice::Nondeterministic(m) => m,
        }
    }
}

/// Runs one request twice and requires identical bytes and fuel.
fn twice<T: DeserializeOwned>(module: &mut Meter<'_>, request: &Envelope) -> Result<T, Twice> {
    let bytes = serde_json::to_vec(request).map_err(|e| Twice::Nondeterministic(format!("cannot encode: {e}")))?;
    let op = match &request.request {
        Request::Info => "info",
        Request::Reset(_) => "reset",
        Request::Step(_) => "step",
        Request::Validate(_) => "validate",
    };
    let first = module.call(&bytes).map_err(|e| Twice::Call(op, e))?;
    let second = module.call(&bytes).map_err(|e| Twice::Call(op, e))?;
    if first.stdout != second.stdout {
        return Err(Twice::Nondeterministic(format!(
            "{op} is not deterministic: two runs of the same request gave different bytes"
        )));
    }
    if first.fuel_used != second.fuel_used {
        return Err(Twice::Nondeterministic(format!(
            "{op} is not deterministic: fuel {} then {}",
            first.fuel_used, second.fuel_used
        )));
    }
    crate::decode(&first.stdout).map_err(|e| Twice::Call(op, e))
}

fn test_task(
    module: &mut Meter<'_>,
    info: &InfoResponse,
    source: TaskSource,
    seed: u64,
) -> Result<(bool, Option<f64>), String> {
    let reset: ResetResponse = twice(
        module,
        &Envelope::new(Request::Reset(ResetRequest { source: source.clone(), seed, config: Default::default() })),
    )?;
    if reset.messages.is_empty() {
        return Err("reset returned no messages".into());
    }
    let validate: Result<ValidateResponse, Twice> =
        twice(module, &Envelope::new(Request::Validate(ValidateRequest { source })));
    let actions = match validate {
        Ok(v) => v.actions,
        Err(Twice::Call(_, SandboxError::Guest(e))) if e.kind == ErrorKind::Unsupported => return Ok((false, None)),
        Err(e) => return Err(e.into()),
    };
    if actions.is_empty() {
        return Err("validate returned no actions".into());
    }
    let mut state = reset.state;
    let mut last: Option<StepResponse> = None;
    for (turn, action) in actions.into_iter().enumerate() {
        if last.as_ref().is_some_and(|s| s.done) {
            return Err(format!("the episode ended before reference action {turn}"));
        }
        let step: StepResponse = twice(module, &Envelope::new(Request::Step(StepRequest { state, action })))
            .map_err(|e| format!("turn {turn}: {}", String::from(e)))?;
        state = step.state.clone();
        last = Some(step);
    }
    let Some(last) = last else { return Err("no step was taken".into()) };
    if !last.done {
        return Err("the reference actions did not end the episode".into());
    }
    let full = info.max_reward();
    if (last.reward.total - full).abs() > 1e-9 {
        return Err(format!(
            "the reference actions earned {} of a full reward {full} (components {:?})",
            last.reward.total, last.reward.components
        ));
    }
    Ok((true, Some(last.reward.total)))
}

/// Tests `module`: `info`, then for the first tasks of every split `reset`,
/// `validate` and each reference step, every call twice. `progress` is told
/// of each task as it finishes. With a budget, the test stops when it is
/// spent and the report says so.
pub fn self_test(
    module: &EnvModule,
    options: &SelfTestOptions,
    mut progress: impl FnMut(&TaskReport),
) -> Result<SelfTestReport, SandboxError> {
    let mut meter = Meter { module, budget: options.budget, started: Instant::now(), fuel_used: 0, spent: None };
    let info: InfoResponse = match twice(&mut meter, &Envelope::new(Request::Info)) {
        Ok(info) => info,
        Err(Twice::Call(_, e)) => return Err(e),
        Err(Twice::Nondeterministic(reason)) => {
            return Err(SandboxError::MalformedResponse { reason, head: String::new() });
        }
    };
    let planned = planned_tasks(&info, options);
    if planned > options.max_tasks as u64 {
        let stopped = Some(format!(
            "{} splits make {planned} tasks to test, more than the {} a self-test takes",
            info.splits.len(),
            options.max_tasks
        ));
        return Ok(SelfTestReport { info, tasks: Vec::new(), stopped });
    }
    let mut tasks = Vec::new();
    for (split, size) in &info.splits {
        let n = size.map_or(options.tasks_per_split, |len| len.min(options.tasks_per_split));
        for index in 0..n {
            let source = TaskSource::Split { split: split.clone(), index };
            let report = match test_task(&mut meter, &info, source, options.seed) {
                Ok((validated, reward)) => TaskReport { split: split.clone(), index, failure: None, validated, reward },
                Err(_) if meter.spent.is_some() => {
                    return Ok(SelfTestReport { info, tasks, stopped: meter.spent });
                }
                Err(failure) => {
                    TaskReport { split: split.clone(), index, failure: Some(failure), validated: false, reward: None }
                }
            };
            progress(&report);
            tasks.push(report);
        }
    }
    Ok(SelfTestReport { info, tasks, stopped: None })
}

/// How many tasks [`self_test`] will test, for progress bars.
pub fn planned_tasks(info: &InfoResponse, options: &SelfTestOptions) -> u64 {
    info.splits.values().map(|size| size.map_or(options.tasks_per_split, |len| len.min(options.tasks_per_split))).sum()
}
