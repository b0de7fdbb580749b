//! Off-policy control against the real trajectory API on loopback and a
//! scripted trainer that takes a batch, "trains" for a while, and takes the
//! next: with `MaxStaleness(K)` no group is trained on more than K steps
//! after it was sampled; with `Sync` every batch is sampled at the step it
//! is trained at.

mod common;

use std::sync::Arc;
use std::time::Duration;

use envhub_runner::api::{ApiState, serve};
use envhub_runner::pace::{Pace, Pacer};
use envhub_runner::policy::{Completion, Policy, PolicyRequest};
use envhub_runner::run::{RunConfig, run};
use envhub_runner::sink::ApiSink;
use envhub_runner::trajectory::PolicyRef;
use envhub_runner::{EnvSpec, PolicyError};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A quick policy that is right half the time (so groups are not uniform).
struct Quick;

impl Policy for Quick {
    fn describe(&self) -> PolicyRef {
        common::scripted_policy_ref("quick")
    }

    async fn complete(&self, request: PolicyRequest) -> Result<Completion, PolicyError> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(common::boxed_answer_with_ids(if request.seed.is_multiple_of(2) { "4" } else { "5" }))
    }
}

async fn post(client: &reqwest::Client, url: &str, body: Value) -> Value {
    client.post(url).json(&body).send().await.unwrap().json().await.unwrap()
}

/// Runs 12 groups of 2 through the API under `pace`, with a trainer taking
/// batches of 4 sequences; returns, per trained group, (step sampled, step trained).
async fn paced_run(pace: Pace) -> Vec<(u64, u64)> {
    let dir = tempfile::tempdir().unwrap();
    let state = ApiState::open(&dir.path().join("api.log")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state, std::future::pending()));
    let client = reqwest::Client::new();
    post(&client, &format!("{url}/register"), json!({"batch_size": 4})).await;

    // The trainer: takes a batch, trains 60 ms, and takes the next.
    let trainer = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let mut trained = Vec::new();
            let mut step = 0u64;
            while trained.len() < 12 {
                let answer = post(&client, &format!("{url}/batch"), json!({})).await;
                let Some(groups) = answer["batch"].as_array() else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                for g in groups {
                    let sampled = g["group_overrides"]["envhub_policy_step"].as_u64().expect("the policy step");
                    trained.push((sampled, step));
                }
                step += 1;
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            trained
        })
    };

    let data = tempfile::tempdir().unwrap();
    let mut spec = EnvSpec::new(common::math_env(data.path()), "arithmetic-easy");
    spec.inline = vec![json!({"question": "Compute 2 + 2.", "answer": "4"})];
    let pacer = Arc::new(Pacer::new(&url, pace, Duration::from_millis(5)).unwrap());
    let config = RunConfig { tasks: 12, group_size: 2, max_turns: Some(1), pacer: Some(pacer), ..RunConfig::default() };
    let sink = ApiSink::connect(&url, "paced", 2).await.unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let handle = tokio::spawn(run(Arc::new(Quick), vec![spec], config, tx));
    while let Some(group) = rx.recv().await {
        sink.push_group(&group).await.unwrap();
    }
    handle.await.unwrap().unwrap();
    assert_eq!(sink.stats().sent, 12);
    tokio::time::timeout(Duration::from_secs(30), trainer).await.expect("the trainer took every group").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_group_is_trained_on_more_than_max_staleness_steps_after_sampling() {
    for k in [0, 2] {
        let trained = paced_run(Pace::MaxStaleness(k)).await;
        assert_eq!(trained.len(), 12);
        let worst = trained.iter().map(|(sampled, at)| at - sampled).max().unwrap();
        assert!(worst <= k, "K = {k}: a group sampled at step s was trained at s + {worst}: {trained:?}");
        assert!(trained.iter().all(|(sampled, at)| sampled <= at));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_sync_mode_every_batch_is_sampled_at_the_step_it_is_trained_at() {
    let trained = paced_run(Pace::Sync).await;
    assert_eq!(trained.len(), 12);
    assert!(trained.iter().all(|(sampled, at)| sampled == at), "{trained:?}");
}
