//! `envhub verify`: replay recorded trajectories through the recorded
//! environments and confirm every reward bit for bit.
//!
//! For each trajectory: find the package whose digest is the recorded one,
//! `reset` on the recorded task, seed and config, check the task id and the
//! opening messages, then `step` each recorded action in order and compare
//! each step's reward (total and components, as f64 bits), `done` flag and
//! observation, and finally the trajectory's reward.

use std::collections::BTreeMap;
use std::io::BufRead;

use envhub_sandbox::EnvModule;
use envhub_sdk::Reward;
use serde::Serialize;

use crate::error::RunnerError;
use crate::trajectory::Trajectory;

/// One problem found in one trajectory.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mismatch {
    /// 1-based line in the file.
    pub line: usize,
    /// Run id, group and sample of the trajectory.
    pub trajectory: String,
    /// `missing_package`, `task_mismatch`, `prompt_mismatch`, `reward_mismatch`,
    /// `done_mismatch`, `observation_mismatch`, `env_error`, `bad_line`.
    pub kind: String,
    /// What differs.
    pub message: String,
}

/// The outcome of verifying a file.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Trajectories read.
    pub trajectories: usize,
    /// Trajectories whose every reward was reproduced.
    pub verified: usize,
    /// Problems, in file order.
    pub mismatches: Vec<Mismatch>,
}

impl VerifyReport {
    /// Whether every trajectory verified.
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty() && self.verified == self.trajectories
    }
}

fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

/// Compares two rewards bit for bit; describes the first difference.
pub fn reward_diff(recorded: &Reward, replayed: &Reward) -> Option<String> {
    if !same_bits(recorded.total, replayed.total) {
        return Some(format!("total: recorded {:?}, replayed {:?}", recorded.total, replayed.total));
    }
    let keys: std::collections::BTreeSet<&String> =
        recorded.components.keys().chain(replayed.components.keys()).collect();
    for k in keys {
        match (recorded.components.get(k), replayed.components.get(k)) {
            (Some(a), Some(b)) if same_bits(*a, *b) => {}
            (a, b) => return Some(format!("component `{k}`: recorded {a:?}, replayed {b:?}")),
        }
    }
    None
}

/// Replays one trajectory in `module`; returns the problems found as
/// `(kind, message)` pairs (empty when it verifies). Blocking.
pub fn verify_one(t: &Trajectory, module: &EnvModule) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut bad = |kind: &str, msg: String| out.push((kind.to_owned(), msg));
    let reset = match module.reset(t.task.source.clone(), t.task.seed, t.task.config.clone()) {
        Ok(r) => r,
        Err(e) => {
            if t.turns.is_empty() && t.reward.is_none() && !t.errors.is_empty() {
                return out; // a recorded reset failure; nothing was scored
            }
            bad("env_error", format!("reset: {e}"));
            return out;
        }
    };
    if reset.task_id != t.task.task_id {
        bad("task_mismatch", format!("task id: recorded {:?}, replayed {:?}", t.task.task_id, reset.task_id));
    }
    if reset.messages != t.prompt {
        bad("prompt_mismatch", "the opening messages differ".into());
    }
    let mut state = reset.state;
    let mut last: Option<Reward> = None;
    for (i, turn) in t.turns.iter().enumerate() {
        let step = match module.step(state, turn.action.clone()) {
            Ok(s) => s,
            Err(e) => {
                bad("env_error", format!("turn {i}: step: {e}"));
                return out;
            }
        };
        if let Some(d) = reward_diff(&turn.reward, &step.reward) {
            bad("reward_mismatch", format!("turn {i}: {d}"));
        }
        if turn.done != step.done {
            bad("done_mismatch", format!("turn {i}: recorded done={}, replayed done={}", turn.done, step.done));
        }
        if turn.observation != step.messages {
            bad("observation_mismatch", format!("turn {i}: the environment's messages differ"));
        }
        state = step.state;
        last = Some(step.reward);
    }
    match (&t.reward, &last) {
        (Some(rec), Some(rep)) => {
            if let Some(d) = reward_diff(rec, rep) {
                bad("reward_mismatch", format!("final reward: {d}"));
            }
        }
        (Some(_), None) => bad("reward_mismatch", "a reward is recorded but no step was taken".into()),
        (None, Some(_)) => bad("reward_mismatch", "no reward recorded but the steps give one".into()),
        (None, None) => {}
    }
    out
}

/// Verifies every line of a JSONL trajectory file. `lookup` maps a recorded
/// digest to the loaded environment (or `None` when no package has it);
/// `names` lists the digests available per environment name, to say when
/// only other versions are at hand.
pub fn verify_reader(
    reader: impl BufRead,
    lookup: impl Fn(&str) -> Option<EnvModule>,
    names: &BTreeMap<String, Vec<String>>,
) -> Result<VerifyReport, RunnerError> {
    let mut report = VerifyReport::default();
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|e| RunnerError::io("trajectory file", e))?;
        if line.trim().is_empty() {
            continue;
        }
        report.trajectories += 1;
        let t: Trajectory = match serde_json::from_str(&line) {
            Ok(t) => t,
            Err(e) => {
                report.mismatches.push(Mismatch {
                    line: line_no,
                    trajectory: String::new(),
                    kind: "bad_line".into(),
                    message: format!("not a trajectory: {e}"),
                });
                continue;
            }
        };
        let id = format!("{}/{}/{}", t.run_id, t.group, t.sample);
        let Some(module) = lookup(&t.env.digest) else {
            let others = names.get(&t.env.name).map(|d| d.join(", ")).unwrap_or_default();
            let message = if others.is_empty() {
                format!(
                    "no package with digest {} ({} {}); pass it with --env",
                    t.env.digest, t.env.name, t.env.version
                )
            } else {
                format!(
                    "no package with digest {} ({} {}); only other builds of {} are at hand: {others}",
                    t.env.digest, t.env.name, t.env.version, t.env.name
                )
            };
            report.mismatches.push(Mismatch { line: line_no, trajectory: id, kind: "missing_package".into(), message });
            continue;
        };
        let problems = verify_one(&t, &module);
        if problems.is_empty() {
            report.verified += 1;
        }
        for (kind, message) in problems {
            report.mismatches.push(Mismatch { line: line_no, trajectory: id.clone(), kind, message });
        }
    }
    Ok(report)
}

/// Verifies the trajectory file `text`, finding each recorded environment
/// among `envs` (references the caller names, which must load), then the
/// package with the recorded digest in the local pull cache, then the
/// recorded source if it still exists. Blocking.
pub fn verify_text(
    text: &str,
    envs: &[String],
    sandbox: &envhub_sandbox::Sandbox,
    resolver: &envhub_client::Resolver,
) -> Result<VerifyReport, RunnerError> {
    let mut candidates: Vec<String> = envs.to_vec();
    let mut add = |c: String| {
        if !candidates.contains(&c) {
            candidates.push(c);
        }
    };
    for line in text.lines() {
        let Ok(t) = serde_json::from_str::<Trajectory>(line) else { continue };
        if let Ok(cached) = envhub_client::pull::cache_path(&t.env.digest)
            && cached.is_file()
        {
            add(cached.display().to_string());
        }
        if let Some(src) = t.env.source
            && std::path::Path::new(&src).exists()
        {
            add(src);
        }
    }
    let mut by_digest: std::collections::HashMap<String, EnvModule> = std::collections::HashMap::new();
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &candidates {
        let loaded = match resolver.load(sandbox, c) {
            Ok(l) => l,
            Err(e) if envs.contains(c) => return Err(RunnerError::Resolve(e)),
            Err(_) => continue,
        };
        let digest = loaded.digest();
        if let Ok(info) = loaded.module.info() {
            names.entry(info.name).or_default().push(digest.clone());
        }
        by_digest.insert(digest, loaded.module);
    }
    verify_reader(std::io::BufReader::new(text.as_bytes()), |d| by_digest.get(d).cloned(), &names)
}
