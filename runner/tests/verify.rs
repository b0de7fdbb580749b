//! `verify` passes on a clean file and catches an edited reward (even by one
//! ulp), a trajectory recorded in another environment build, and a missing
//! package.

mod common;

use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::Arc;

use envhub_runner::policy::{Completion, Policy, PolicyRequest};
use envhub_runner::run::{RunConfig, run};
use envhub_runner::sink::JsonlSink;
use envhub_runner::trajectory::{LogprobConvention, PolicyRef, Sampling, Trajectory};
use envhub_runner::verify::verify_reader;
use envhub_runner::{EnvSpec, PolicyError};
use envhub_sdk::Message;
use serde_json::json;

/// Answers `Compute A + B.` right on even seeds and wrong on odd ones.
struct Scripted;

impl Policy for Scripted {
    fn describe(&self) -> PolicyRef {
        PolicyRef {
            id: "scripted".into(),
            version: "1".into(),
            logprobs: LogprobConvention::None,
            sampling: Sampling::default(),
            step: None,
        }
    }

    async fn complete(&self, r: PolicyRequest) -> Result<Completion, PolicyError> {
        let q = r.messages.last().map(|m| m.text().to_owned()).unwrap_or_default();
        let nums: Vec<i64> = q
            .trim_start_matches("Compute ")
            .trim_end_matches('.')
            .split(" + ")
            .filter_map(|x| x.parse().ok())
            .collect();
        let sum: i64 = nums.iter().sum::<i64>() + (r.seed % 2) as i64;
        Ok(Completion {
            message: Message::assistant(format!("\\boxed{{{sum}}}")),
            prompt_token_ids: vec![],
            prompt_source: None,
            token_source: None,
            token_ids: vec![],
            logprobs: vec![],
            finish_reason: "stop".into(),
            completion_tokens: 0,
            attempts: 1,
        })
    }
}

async fn record(dir: &std::path::Path) -> (String, envhub_runner::EnvHandle) {
    let env = common::math_env(dir);
    let mut spec = EnvSpec::new(env.clone(), "arithmetic-easy");
    spec.inline =
        (0..4).map(|i| json!({"question": format!("Compute {i} + 5."), "answer": format!("{}", i + 5)})).collect();
    let mut split = EnvSpec::new(env.clone(), "arithmetic-easy");
    split.start_index = 3;
    let config = RunConfig { tasks: 6, group_size: 3, ..RunConfig::default() };
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let h = tokio::spawn(run(Arc::new(Scripted), vec![spec, split], config, tx));
    let path = dir.join("t.jsonl");
    let mut sink = JsonlSink::create(&path).unwrap();
    while let Some(g) = rx.recv().await {
        sink.write_group(&g).unwrap();
    }
    drop(sink);
    h.await.unwrap().unwrap();
    (std::fs::read_to_string(path).unwrap(), env)
}

fn check(text: &str, env: &envhub_runner::EnvHandle) -> envhub_runner::verify::VerifyReport {
    let digest = env.env_ref.digest.clone();
    let module = env.module().clone();
    verify_reader(BufReader::new(text.as_bytes()), |d| (d == digest).then(|| module.clone()), &BTreeMap::new()).unwrap()
}

/// Sandbox calls block, so verification runs outside the async runtime.
#[test]
fn clean_files_verify_and_edits_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (text, env) = rt.block_on(record(dir.path()));
    let report = check(&text, &env);
    assert_eq!(report.trajectories, 18);
    assert!(report.ok(), "{:?}", report.mismatches);

    let lines: Vec<Trajectory> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let rewarded = lines.iter().position(|t| t.total() == Some(1.0)).expect("some correct answer");
    let unrewarded = lines.iter().position(|t| t.total() == Some(0.0)).expect("some wrong answer");

    // One ulp below 1.0, in the final reward only.
    let mut edited = lines.clone();
    if let Some(r) = edited[rewarded].reward.as_mut() {
        r.total = f64::from_bits(1.0f64.to_bits() - 1);
    }
    // A claimed success in both the turn and the final reward.
    edited[unrewarded].turns[0].reward.total = 1.0;
    if let Some(r) = edited[unrewarded].reward.as_mut() {
        r.total = 1.0;
        r.components.insert("correct".into(), 1.0);
    }
    let text2: String = edited.iter().map(|t| serde_json::to_string(t).unwrap() + "\n").collect();
    let report = check(&text2, &env);
    assert_eq!(report.verified, 16);
    let kinds: Vec<(usize, &str)> = report.mismatches.iter().map(|m| (m.line, m.kind.as_str())).collect();
    assert!(kinds.contains(&(rewarded + 1, "reward_mismatch")), "{kinds:?}");
    assert!(kinds.contains(&(unrewarded + 1, "reward_mismatch")), "{kinds:?}");
    assert!(report.mismatches.iter().any(|m| m.message.contains("0.9999999999999999")), "{:?}", report.mismatches);

    // Recorded against another build of the environment: no package has that digest.
    let mut other = lines.clone();
    other[0].env.digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000".into();
    let text3: String = other.iter().map(|t| serde_json::to_string(t).unwrap() + "\n").collect();
    let report = check(&text3, &env);
    assert_eq!(report.mismatches.len(), 1);
    assert_eq!(report.mismatches[0].kind, "missing_package");
    assert_eq!(report.verified, 17);

    // A different task (seed edited) is a task or reward mismatch, not a pass.
    let mut moved = lines.clone();
    let split_one = moved.iter().position(|t| matches!(t.task.source, envhub_sdk::TaskSource::Split { .. })).unwrap();
    moved[split_one].task.seed ^= 1;
    if let envhub_sdk::TaskSource::Split { index, .. } = &mut moved[split_one].task.source {
        *index += 100;
    }
    let text4: String = moved.iter().map(|t| serde_json::to_string(t).unwrap() + "\n").collect();
    let report = check(&text4, &env);
    assert!(report.mismatches.iter().any(|m| m.kind == "task_mismatch"), "{:?}", report.mismatches);

    // A line that is not a trajectory.
    let report = check(&format!("{text}{{\"not\": 1}}\n"), &env);
    assert_eq!(report.mismatches[0].kind, "bad_line");
}
