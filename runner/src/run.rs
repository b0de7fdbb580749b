//! The rollout loop: tasks drawn from weighted environments, a group of
//! concurrent rollouts per task, each alternating policy turns and
//! environment steps until `done` or the turn limit.

use std::sync::Arc;
use std::time::Instant;

use envhub_sandbox::SandboxError;
use envhub_sdk::{Rng, TaskSource};
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::curriculum::{Curriculum, Knob, Ladder};
use crate::env::EnvHandle;
use crate::error::{PolicyError, RunnerError};
use crate::pace::Pacer;
use crate::policy::{Completion, Policy, PolicyRequest, TokenPrefix};
use crate::trajectory::{
    Drift, ErrorRecord, Finish, PolicyRef, Sampling, TRAJECTORY_FORMAT, TaskRef, Timings, Trajectory, Turn,
    assign_advantages,
};

/// One environment of a run and how often to draw from it.
#[derive(Clone)]
pub struct EnvSpec {
    /// The environment.
    pub handle: EnvHandle,
    /// Mixing weight (relative; > 0).
    pub weight: f64,
    /// Split to draw tasks from.
    pub split: String,
    /// First task index.
    pub start_index: u64,
    /// Environment arguments passed to `reset`.
    pub config: Map<String, Value>,
    /// Inline tasks (bring-your-own data, in the environment's inline task
    /// schema); when non-empty they are used in order instead of `split`.
    pub inline: Vec<Value>,
}

impl EnvSpec {
    /// Draws from `split` of `handle` with weight 1, from index 0.
    pub fn new(handle: EnvHandle, split: impl Into<String>) -> Self {
        EnvSpec { handle, weight: 1.0, split: split.into(), start_index: 0, config: Map::new(), inline: Vec::new() }
    }
}

/// Settings of a run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Run id, recorded on every trajectory.
    pub run_id: String,
    /// Number of tasks (groups).
    pub tasks: u64,
    /// Rollouts per task.
    pub group_size: u32,
    /// Turn limit (the environment's own `max_turns` also applies).
    pub max_turns: Option<u32>,
    /// Most rollouts in flight at once.
    pub concurrency: usize,
    /// Run seed: task draws, reset seeds and sampling seeds derive from it.
    pub seed: u64,
    /// Sampling parameters.
    pub sampling: Sampling,
    /// Filter out groups whose rewards are all equal (DAPO's dynamic
    /// sampling: their advantages are all zero, so they teach nothing),
    /// drawing another task for each, at most `tasks` extra draws in all.
    /// Filtered groups are still sent, marked [`Trajectory::filtered`].
    pub drop_uniform_groups: bool,
    /// Paces production by the trainer's step (off-policy control); each
    /// trajectory records the step it was sampled at ([`PolicyRef::step`]).
    pub pacer: Option<Arc<Pacer>>,
    /// Moves each environment's difficulty to keep its pass rate in a band.
    pub curriculum: Option<Curriculum>,
}

/// [`Trajectory::filtered`] of a group whose rewards were all equal.
pub const UNIFORM_REWARDS: &str = "uniform_rewards";

/// Whether every member of `group` is scored and all rewards are equal
/// (so every advantage is zero). A group of one never is.
pub fn uniform_rewards(group: &[Trajectory]) -> bool {
    let mut totals = group.iter().map(Trajectory::total);
    let Some(Some(first)) = totals.next() else { return false };
    group.len() > 1 && totals.all(|t| t == Some(first))
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            run_id: "run".into(),
            tasks: 1,
            group_size: 4,
            max_turns: None,
            concurrency: 16,
            seed: 0,
            sampling: Sampling::default(),
            drop_uniform_groups: false,
            pacer: None,
            curriculum: None,
        }
    }
}

/// What a run did, in figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSummary {
    /// Groups completed.
    pub groups: u64,
    /// Trajectories completed.
    pub trajectories: u64,
    /// Trajectories with a reward.
    pub scored: u64,
    /// Trajectories with at least one error.
    pub failed: u64,
    /// Mean final reward over scored trajectories.
    pub mean_reward: f64,
    /// Policy turns taken.
    pub turns: u64,
    /// Completion tokens generated.
    pub tokens: u64,
    /// Trajectories a trainer cannot use, by [`crate::trajectory::Untrainable::kind`].
    pub untrainable: std::collections::BTreeMap<String, u64>,
    /// Groups filtered out for uniform rewards ([`RunConfig::drop_uniform_groups`]).
    pub filtered: u64,
    /// Extra tasks drawn in place of filtered groups.
    pub redrawn: u64,
}

/// One planned group: which environment and task.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupPlan {
    /// Group number.
    pub group: u64,
    /// Index into the run's environments.
    pub env: usize,
    /// The task.
    pub source: TaskSource,
    /// The reset seed shared by the group's rollouts.
    pub seed: u64,
    /// The reset config, where a curriculum sets it (else the environment's).
    pub config: Option<Map<String, Value>>,
    /// The curriculum level it was drawn at, if the run has a curriculum.
    pub level: Option<usize>,
}

/// The most tasks (groups) one run takes.
pub const MAX_TASKS: u64 = 1 << 32;
/// The most rollouts per group.
pub const MAX_GROUP_SIZE: u32 = 1 << 16;
/// The most rollouts in flight at once.
pub const MAX_CONCURRENCY: usize = 1 << 16;
/// The most groups [`plan`] lays out at once (a run plans as it goes).
pub const MAX_PLANNED_GROUPS: u64 = 1 << 20;

/// Refuses sizes that would make a run allocate without bound.
fn check_sizes(config: &RunConfig) -> Result<(), RunnerError> {
    let over = |what: &str, n: String, limit: String| {
        Err(RunnerError::Config(format!("{what} is {n}, over the limit of {limit}")))
    };
    if config.tasks > MAX_TASKS {
        return over("the task count", config.tasks.to_string(), MAX_TASKS.to_string());
    }
    if config.group_size > MAX_GROUP_SIZE {
        return over("the group size", config.group_size.to_string(), MAX_GROUP_SIZE.to_string());
    }
    if config.concurrency > MAX_CONCURRENCY {
        return over("the concurrency", config.concurrency.to_string(), MAX_CONCURRENCY.to_string());
    }
    Ok(())
}

fn check_envs(envs: &[EnvSpec], config: &RunConfig) -> Result<(), RunnerError> {
    check_sizes(config)?;
    if config.drop_uniform_groups && config.group_size < 2 {
        return Err(RunnerError::Config(
            "dropping groups with uniform rewards needs groups of at least 2 (a group of one always is)".into(),
        ));
    }
    if envs.is_empty() {
        return Err(RunnerError::Config("no environments".into()));
    }
    if config.group_size == 0 {
        return Err(RunnerError::Config("group size must be at least 1".into()));
    }
    let total: f64 = envs.iter().map(|e| e.weight).sum();
    if envs.iter().any(|e| !(e.weight.is_finite() && e.weight > 0.0)) || total <= 0.0 {
        return Err(RunnerError::Config("environment weights must be positive numbers".into()));
    }
    let mut wanted: Vec<&str> = Vec::new();
    if let Some(Curriculum { knob: Knob::Split(splits), .. }) = &config.curriculum {
        wanted.extend(splits.iter().map(String::as_str));
    }
    for e in envs.iter().filter(|e| e.inline.is_empty()) {
        if let Some(missing) = wanted.iter().find(|s| !e.handle.info.splits.contains_key(**s)) {
            return Err(RunnerError::Config(format!(
                "environment `{}` has no split `{missing}` for the curriculum",
                e.handle.env_ref.name
            )));
        }
        if !e.handle.info.splits.contains_key(&e.split) {
            let known: Vec<_> = e.handle.info.splits.keys().cloned().collect();
            return Err(RunnerError::Config(format!(
                "environment `{}` has no split `{}` (it has: {})",
                e.handle.env_ref.name,
                e.split,
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// Lays out a run's groups one at a time, so a long run holds none of its
/// plan in memory (see [`planner`]).
pub struct Planner<E> {
    envs: E,
    tasks: u64,
    seed: u64,
    total: f64,
    rng: Rng,
    next: Vec<u64>,
    group: u64,
}

/// Draws `config.tasks` groups from the environments by weight, reproducibly
/// from the run seed, one at a time. Each environment's tasks are taken in
/// index order from its `start_index`, wrapping around finite splits.
pub fn planner<E: std::ops::Deref<Target = [EnvSpec]>>(envs: E, config: &RunConfig) -> Result<Planner<E>, RunnerError> {
    check_envs(&envs, config)?;
    let total = envs.iter().map(|e| e.weight).sum();
    let next = vec![0u64; envs.len()];
    Ok(Planner {
        envs,
        tasks: config.tasks,
        seed: config.seed,
        total,
        rng: Rng::derive(config.seed, &[b"plan"]),
        next,
        group: 0,
    })
}

impl<E> Planner<E> {
    /// Plans one group more than asked for (in place of a filtered one).
    pub fn draw_one_more(&mut self) {
        self.tasks += 1;
    }
}

impl<E: std::ops::Deref<Target = [EnvSpec]>> Iterator for Planner<E> {
    type Item = GroupPlan;

    fn next(&mut self) -> Option<GroupPlan> {
        if self.group >= self.tasks {
            return None;
        }
        let group = self.group;
        self.group += 1;
        let mut x = self.rng.unit_f64() * self.total;
        let mut env = self.envs.len() - 1;
        for (i, e) in self.envs.iter().enumerate() {
            if x < e.weight {
                env = i;
                break;
            }
            x -= e.weight;
        }
        let spec = &self.envs[env];
        let mut index = spec.start_index + self.next[env];
        self.next[env] += 1;
        let source = if spec.inline.is_empty() {
            if let Some(Some(n)) = spec.handle.info.splits.get(&spec.split)
                && *n > 0
            {
                index %= n;
            }
            TaskSource::Split { split: spec.split.clone(), index }
        } else {
            TaskSource::Inline(spec.inline[(index % spec.inline.len() as u64) as usize].clone())
        };
        let seed = Rng::derive(self.seed, &[b"reset", &group.to_le_bytes()]).next_u64();
        Some(GroupPlan { group, env, source, seed, config: None, level: None })
    }
}

/// The whole plan of a run ([`planner`], collected); refused over
/// [`MAX_PLANNED_GROUPS`] groups.
pub fn plan(envs: &[EnvSpec], config: &RunConfig) -> Result<Vec<GroupPlan>, RunnerError> {
    let planner = planner(envs, config)?;
    if config.tasks > MAX_PLANNED_GROUPS {
        return Err(RunnerError::Config(format!(
            "a plan of {} groups is over the limit of {MAX_PLANNED_GROUPS} laid out at once (a run plans as it goes)",
            config.tasks
        )));
    }
    Ok(planner.collect())
}

/// Runs `config.tasks` groups and sends each finished group (advantages
/// assigned) to `sink` as soon as it completes. Every rollout yields a
/// trajectory, failed or not: none is dropped. Stops early (returning what
/// was done) if the receiver is closed.
pub async fn run<P: Policy>(
    policy: Arc<P>,
    envs: Vec<EnvSpec>,
    config: RunConfig,
    sink: mpsc::Sender<Vec<Trajectory>>,
) -> Result<RunSummary, RunnerError> {
    let envs: Arc<[EnvSpec]> = Arc::from(envs);
    let mut plans = planner(envs.clone(), &config)?;
    let mut policy_ref = policy.describe();
    policy_ref.sampling = config.sampling.clone();
    let config = Arc::new(config);
    let rollouts = Arc::new(Semaphore::new(config.concurrency.max(1)));
    // Enough groups in flight to keep the rollout slots busy, few enough that
    // groups finish in order of start.
    let groups_in_flight = Arc::new(Semaphore::new(config.concurrency.max(1).div_ceil(config.group_size as usize) + 1));
    let mut set = JoinSet::new();
    let mut summary = RunSummary::default();
    let mut reward_sum = 0.0;
    let group_size = u64::from(config.group_size);
    // The next group to start, held while the trainer's pace says wait.
    let mut next: Option<GroupPlan> = None;
    let mut ladders = vec![Ladder::new(); envs.len()];
    loop {
        if next.is_none() {
            next = plans.next();
        }
        // Start groups while there is room; otherwise collect one result.
        if let Some(plan) = next.take() {
            match groups_in_flight.clone().try_acquire_owned() {
                Ok(permit) => {
                    let in_flight = set.len() as u64 * group_size;
                    let admitted = match &config.pacer {
                        None => Some(None),
                        Some(pacer) => pacer.try_admit(group_size, in_flight).await?.map(Some),
                    };
                    match admitted {
                        Some(policy_step) => {
                            let mut plan = plan;
                            if let Some(curriculum) = &config.curriculum {
                                let env = plan.env;
                                place(&mut plan, curriculum, &envs[env], ladders[env].level());
                            }
                            let (policy, envs, config, rollouts, mut policy_ref) =
                                (policy.clone(), envs.clone(), config.clone(), rollouts.clone(), policy_ref.clone());
                            policy_ref.step = policy_step;
                            set.spawn(async move {
                                let (env, level) = (plan.env, plan.level);
                                let g = run_group(policy, &envs, &config, &rollouts, &policy_ref, plan).await;
                                drop(permit);
                                (env, level, g)
                            });
                            continue;
                        }
                        None => next = Some(plan),
                    }
                }
                Err(_) => next = Some(plan),
            }
        }
        let joined = match (&config.pacer, &next) {
            // Held back by the trainer's pace: ask again after a while, or
            // as soon as a group finishes.
            (Some(pacer), Some(_)) => {
                tokio::select! {
                    joined = set.join_next(), if !set.is_empty() => joined,
                    () = tokio::time::sleep(pacer.poll()) => continue,
                }
            }
            _ => set.join_next().await,
        };
        let Some(joined) = joined else { break };
        let (env, level, mut group) = match joined {
            Ok(g) => g,
            Err(e) => return Err(RunnerError::Sink(format!("a group task panicked: {e}"))),
        };
        summary.groups += 1;
        if let (Some(curriculum), Some(level)) = (&config.curriculum, level) {
            let rate = pass_rate(&group, envs[env].handle.info.max_reward());
            ladders[env].record(curriculum, level, rate);
        }
        if config.drop_uniform_groups && uniform_rewards(&group) {
            for t in &mut group {
                t.filtered = Some(UNIFORM_REWARDS.to_owned());
            }
            summary.filtered += 1;
            if summary.redrawn < config.tasks {
                summary.redrawn += 1;
                plans.draw_one_more();
            }
        }
        if let Some(pacer) = &config.pacer {
            // Sequences that will never reach the trainer's queue.
            let queued = if group.iter().any(|t| t.filtered.is_some()) {
                0
            } else {
                group.iter().filter(|t| t.total().is_some() && t.untrainable.is_none()).count() as u64
            };
            pacer.forget(group_size.saturating_sub(queued));
        }
        for t in &group {
            summary.trajectories += 1;
            summary.turns += t.turns.len() as u64;
            summary.tokens += t.completion_tokens() as u64;
            if let Some(r) = t.total() {
                summary.scored += 1;
                reward_sum += r;
            }
            if !t.errors.is_empty() {
                summary.failed += 1;
            }
            if let Some(u) = &t.untrainable {
                *summary.untrainable.entry(u.kind.clone()).or_default() += 1;
            }
        }
        if sink.send(group).await.is_err() {
            set.abort_all();
            break;
        }
    }
    summary.mean_reward = if summary.scored > 0 { reward_sum / summary.scored as f64 } else { 0.0 };
    Ok(summary)
}

async fn run_group<P: Policy>(
    policy: Arc<P>,
    envs: &[EnvSpec],
    config: &RunConfig,
    rollouts: &Arc<Semaphore>,
    policy_ref: &PolicyRef,
    plan: GroupPlan,
) -> Vec<Trajectory> {
    let spec = &envs[plan.env];
    let mut set = JoinSet::new();
    let group_config = plan.config.clone().unwrap_or_else(|| spec.config.clone());
    for sample in 0..config.group_size {
        let (policy, handle, rollouts, policy_ref, plan) =
            (policy.clone(), spec.handle.clone(), rollouts.clone(), policy_ref.clone(), plan.clone());
        let (cfg, env_config) = (config.clone(), group_config.clone());
        set.spawn(async move {
            let _permit = rollouts.acquire_owned().await.ok();
            rollout(&*policy, &handle, &cfg, policy_ref, &plan, sample, env_config).await
        });
    }
    let mut group = Vec::with_capacity(config.group_size as usize);
    while let Some(joined) = set.join_next().await {
        if let Ok(t) = joined {
            group.push(t);
        }
    }
    // A rollout task that panicked (a bug) still yields its trajectory, marked.
    for sample in 0..config.group_size {
        if !group.iter().any(|t| t.sample == sample) {
            let mut t = blank(&spec.handle, config, policy_ref.clone(), &plan, sample, group_config.clone());
            t.finish = Finish::EnvError;
            t.errors.push(ErrorRecord {
                stage: "runner".into(),
                kind: "panic".into(),
                message: "the rollout task panicked".into(),
                turn: 0,
            });
            t.untrainable = t.trainable_sequence().err();
            group.push(t);
        }
    }
    group.sort_by_key(|t| t.sample);
    assign_advantages(&mut group);
    group
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn env_error(turn: u32, e: &SandboxError) -> ErrorRecord {
    let kind = match e {
        SandboxError::Guest(g) => g.kind.as_str(),
        other => other.kind(),
    };
    ErrorRecord { stage: "env".into(), kind: kind.into(), message: e.to_string(), turn }
}

fn policy_error(turn: u32, e: &PolicyError) -> ErrorRecord {
    ErrorRecord { stage: "policy".into(), kind: e.kind().into(), message: e.to_string(), turn }
}

/// A trajectory with nothing done yet.
fn blank(
    env: &EnvHandle,
    config: &RunConfig,
    policy_ref: PolicyRef,
    plan: &GroupPlan,
    sample: u32,
    env_config: Map<String, Value>,
) -> Trajectory {
    Trajectory {
        format: TRAJECTORY_FORMAT,
        run_id: config.run_id.clone(),
        group: plan.group,
        sample,
        env: env.env_ref.clone(),
        task: TaskRef { source: plan.source.clone(), task_id: String::new(), seed: plan.seed, config: env_config },
        policy: policy_ref,
        prompt: Vec::new(),
        tools: Vec::new(),
        turns: Vec::new(),
        reward: None,
        advantage: None,
        metrics: Default::default(),
        finish: Finish::MaxTurns,
        errors: Vec::new(),
        untrainable: None,
        filtered: None,
        timings: Timings::default(),
    }
}

/// Runs one rollout of `plan` as sample `sample`. Never fails: errors end
/// the rollout and are recorded on the trajectory.
pub async fn rollout<P: Policy + ?Sized>(
    policy: &P,
    env: &EnvHandle,
    config: &RunConfig,
    policy_ref: PolicyRef,
    plan: &GroupPlan,
    sample: u32,
    env_config: Map<String, Value>,
) -> Trajectory {
    let start = Instant::now();
    let mut t = blank(env, config, policy_ref, plan, sample, env_config);
    let t_reset = Instant::now();
    let reset = env.reset(plan.source.clone(), plan.seed, t.task.config.clone()).await;
    t.timings.env_ms += ms(t_reset);
    let reset = match reset {
        Ok(r) => r,
        Err(e) => {
            t.errors.push(env_error(0, &e));
            t.finish = Finish::EnvError;
            t.timings.total_ms = ms(start);
            t.untrainable = t.trainable_sequence().err();
            return t;
        }
    };
    t.task.task_id = reset.task_id;
    t.prompt = reset.messages.clone();
    t.tools = reset.tools.clone();
    let mut conversation = reset.messages;
    let mut state = reset.state;
    let max_turns = config.max_turns.unwrap_or(u32::MAX).min(env.info.max_turns.max(1));
    let mut rng = Rng::derive(config.seed, &[b"sample", &plan.group.to_le_bytes(), &sample.to_le_bytes()]);
    let mut prefix: Option<TokenPrefix> = None;
    for turn in 0..max_turns {
        let request = PolicyRequest {
            messages: conversation.clone(),
            tools: t.tools.clone(),
            sampling: config.sampling.clone(),
            seed: rng.next_u64(),
            prefix: prefix.clone(),
        };
        let t_policy = Instant::now();
        let completion = policy.complete(request).await;
        let policy_ms = ms(t_policy);
        t.timings.policy_ms += policy_ms;
        let completion = match completion {
            Ok(c) => c,
            Err(e) => {
                t.errors.push(policy_error(turn, &e));
                t.finish = Finish::PolicyError;
                break;
            }
        };
        let t_env = Instant::now();
        let step = env.step(state.clone(), completion.message.clone()).await;
        let env_ms = ms(t_env);
        t.timings.env_ms += env_ms;
        let step = match step {
            Ok(s) => s,
            Err(e) => {
                t.errors.push(env_error(turn, &e));
                t.finish = Finish::EnvError;
                break;
            }
        };
        let loss_mask = if completion.token_ids.is_empty() {
            Vec::new()
        } else {
            let mut m = vec![0u8; completion.prompt_token_ids.len()];
            m.resize(m.len() + completion.token_ids.len(), 1);
            m
        };
        let drift = prefix.as_ref().and_then(|p| drift(&p.tokens, &completion));
        conversation.push(completion.message.clone());
        prefix = next_prefix(&completion, conversation.len());
        conversation.extend(step.messages.iter().cloned());
        state = step.state;
        t.reward = Some(step.reward.clone());
        t.metrics = step.metrics.clone();
        t.turns.push(Turn {
            action: completion.message,
            observation: step.messages,
            prompt_token_ids: completion.prompt_token_ids,
            token_ids: completion.token_ids,
            logprobs: completion.logprobs,
            loss_mask,
            prompt_source: completion.prompt_source,
            token_source: completion.token_source,
            drift,
            finish_reason: completion.finish_reason,
            reward: step.reward,
            done: step.done,
            metrics: step.metrics,
            attempts: completion.attempts,
            policy_ms,
            env_ms,
        });
        if step.done {
            t.finish = Finish::Done;
            break;
        }
    }
    t.timings.total_ms = ms(start);
    t.untrainable = t.trainable_sequence().err();
    t
}

/// Draws `plan` at curriculum `level`: its split (keeping the index, wrapped
/// to the split's size) or its reset config.
fn place(plan: &mut GroupPlan, curriculum: &Curriculum, spec: &EnvSpec, level: usize) {
    plan.level = Some(level);
    if let (Some(split), TaskSource::Split { index, .. }) = (curriculum.split(level), &plan.source) {
        let mut index = *index;
        if let Some(Some(n)) = spec.handle.info.splits.get(split)
            && *n > 0
        {
            index %= n;
        }
        plan.source = TaskSource::Split { split: split.to_owned(), index };
    }
    if matches!(curriculum.knob, Knob::Config { .. }) {
        plan.config = Some(curriculum.config(level, &spec.config));
    }
}

/// The fraction of `group` reaching the environment's top reward (any
/// positive reward where the top is 0).
fn pass_rate(group: &[Trajectory], max_reward: f64) -> f64 {
    let passed = group
        .iter()
        .filter(|t| t.total().is_some_and(|r| if max_reward > 0.0 { r >= max_reward - 1e-9 } else { r > 0.0 }))
        .count();
    passed as f64 / group.len().max(1) as f64
}

/// Where a turn's prompt departs from the sequence before it, if it does
/// (only turns that report prompt ids can be checked).
fn drift(before: &[u32], completion: &Completion) -> Option<Drift> {
    let prompt = &completion.prompt_token_ids;
    if prompt.is_empty() || prompt.starts_with(before) {
        return None;
    }
    let at = prompt.iter().zip(before).take_while(|(a, b)| a == b).count();
    Some(Drift { at, expected_len: before.len() })
}

/// The sequence the next turn continues: this turn's prompt and sampled
/// tokens, covering the conversation's first `messages` messages. `None`
/// when the policy reported no ids (it cannot continue token by token).
fn next_prefix(completion: &Completion, messages: usize) -> Option<TokenPrefix> {
    if completion.prompt_token_ids.is_empty() || completion.token_ids.is_empty() {
        return None;
    }
    let mut tokens = completion.prompt_token_ids.clone();
    tokens.extend_from_slice(&completion.token_ids);
    Some(TokenPrefix { tokens, messages })
}
