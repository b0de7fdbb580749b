//! Choosing what to train on: `drop_uniform_groups` (DAPO's dynamic
//! sampling: a group whose rewards are all equal is marked, kept on record,
//! not sent to trainers, and another task is drawn in its place, within a
//! bounded number of draws) and a curriculum over splits.

mod common;

use std::sync::Arc;

use envhub_runner::policy::{Completion, Policy, PolicyRequest};
use envhub_runner::run::{RunConfig, UNIFORM_REWARDS, run};
use envhub_runner::sink::to_scored_data;
use envhub_runner::trajectory::{PolicyRef, Trajectory};
use envhub_runner::{EnvSpec, PolicyError};
use serde_json::json;
use tokio::sync::mpsc;

/// Always right on `2 + 2`; right on other tasks only for even seeds.
struct HalfRight;

impl Policy for HalfRight {
    fn describe(&self) -> PolicyRef {
        common::scripted_policy_ref("half")
    }

    async fn complete(&self, request: PolicyRequest) -> Result<Completion, PolicyError> {
        let question = request.messages.iter().rev().find_map(|m| m.content.clone()).unwrap_or_default();
        let right = question.contains("2 + 2") || request.seed.is_multiple_of(2);
        Ok(common::boxed_answer_with_ids(if right { "4" } else { "5" }))
    }
}

async fn run_with(
    drop_uniform_groups: bool,
    group_size: u32,
) -> Result<(Vec<Vec<Trajectory>>, envhub_runner::RunSummary), envhub_runner::RunnerError> {
    let data = tempfile::tempdir().unwrap();
    let mut spec = EnvSpec::new(common::math_env(data.path()), "arithmetic-easy");
    spec.inline = vec![
        json!({"question": "Compute 2 + 2.", "answer": "4"}),
        json!({"question": "Compute 1 + 3.", "answer": "4"}),
    ];
    let config =
        RunConfig { tasks: 2, group_size, max_turns: Some(1), drop_uniform_groups, seed: 11, ..RunConfig::default() };
    let (tx, mut rx) = mpsc::channel(8);
    let handle = tokio::spawn(run(Arc::new(HalfRight), vec![spec], config, tx));
    let mut groups = Vec::new();
    while let Some(g) = rx.recv().await {
        groups.push(g);
    }
    let summary = handle.await.unwrap()?;
    groups.sort_by_key(|g: &Vec<Trajectory>| g[0].group);
    Ok((groups, summary))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uniform_groups_are_marked_kept_unsent_and_replaced_within_a_bound() {
    let (groups, summary) = run_with(true, 8).await.unwrap();
    // Each `2 + 2` group is uniform: 2 asked for, 2 filtered, 2 drawn in their place.
    assert_eq!((summary.groups, summary.filtered, summary.redrawn), (4, 2, 2), "{summary:?}");
    for g in &groups {
        let uniform = g[0].prompt.iter().any(|m| m.text().contains("2 + 2"));
        assert_eq!(g.iter().all(|t| t.filtered.as_deref() == Some(UNIFORM_REWARDS)), uniform, "group {}", g[0].group);
        assert_eq!(to_scored_data(g, None).is_some(), !uniform, "only mixed groups go to trainers");
    }
    // Without the switch nothing is filtered.
    let (groups, summary) = run_with(false, 8).await.unwrap();
    assert_eq!((summary.groups, summary.filtered), (2, 0));
    assert!(groups.iter().flatten().all(|t| t.filtered.is_none()));
    // Groups of one always have uniform rewards: refused.
    let err = run_with(true, 1).await.unwrap_err().to_string();
    assert!(err.contains("at least 2"), "{err}");
}

/// Right on the easy arithmetic split's `Compute $A OP B$.` (`+`, `-`,
/// `\times`), wrong on anything longer: it passes the easy split, so a
/// curriculum moves it up.
struct EasyOnly;

/// The value of `A OP B` in the last message, if that is all it asks.
fn easy_value(question: &str) -> Option<i64> {
    let expr = question.split('$').nth(1)?;
    let parts: Vec<&str> = expr.split_whitespace().collect();
    let [a, op, b] = parts.as_slice() else { return None };
    let (a, b): (i64, i64) = (a.parse().ok()?, b.parse().ok()?);
    match *op {
        "+" => Some(a + b),
        "-" => Some(a - b),
        "\\times" => Some(a * b),
        _ => None,
    }
}

impl Policy for EasyOnly {
    fn describe(&self) -> PolicyRef {
        common::scripted_policy_ref("easy")
    }

    async fn complete(&self, request: PolicyRequest) -> Result<Completion, PolicyError> {
        let question = request.messages.iter().rev().find_map(|m| m.content.clone()).unwrap_or_default();
        let answer = easy_value(&question).map_or("none".to_owned(), |v| v.to_string());
        Ok(common::boxed_answer_with_ids(&answer))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curriculum_climbs_while_the_pass_rate_is_over_its_band_and_records_each_level() {
    use envhub_runner::curriculum::Curriculum;
    let data = tempfile::tempdir().unwrap();
    let spec = EnvSpec::new(common::math_env(data.path()), "arithmetic-easy");
    let curriculum = Curriculum {
        knob: "split=arithmetic-easy,arithmetic-medium,arithmetic-hard".parse().unwrap(),
        band: (0.2, 0.8),
        window: 2,
    };
    let config = RunConfig {
        tasks: 12,
        group_size: 2,
        max_turns: Some(1),
        concurrency: 2,
        curriculum: Some(curriculum),
        ..RunConfig::default()
    };
    let (tx, mut rx) = mpsc::channel(8);
    let handle = tokio::spawn(run(Arc::new(EasyOnly), vec![spec], config, tx));
    let mut groups = Vec::new();
    while let Some(g) = rx.recv().await {
        groups.push(g);
    }
    handle.await.unwrap().unwrap();
    groups.sort_by_key(|g: &Vec<Trajectory>| g[0].group);
    let splits: Vec<String> = groups
        .iter()
        .map(|g| match &g[0].task.source {
            envhub_sdk::TaskSource::Split { split, .. } => split.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    // It starts easy and leaves the easy split once two groups there pass.
    assert_eq!(splits[0], "arithmetic-easy");
    assert!(splits.iter().any(|s| s != "arithmetic-easy"), "never moved up: {splits:?}");
    let first_up = splits.iter().position(|s| s != "arithmetic-easy").unwrap();
    assert!(first_up >= 2, "moved before a window of evidence: {splits:?}");
    // Every member of a group records the level it was drawn at.
    assert!(groups.iter().all(|g| g.iter().all(|t| t.task.source == g[0].task.source)));
}
