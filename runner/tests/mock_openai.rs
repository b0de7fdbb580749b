//! The runner against a scripted OpenAI-compatible server on loopback:
//! correct and wrong answers, tool calls, HTTP 500s, timeouts, malformed
//! JSON and slow answers. The run completes, every failure is retried or
//! recorded on its trajectory, and no trajectory is lost.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use envhub_runner::run::{RunConfig, run};
use envhub_runner::trajectory::{Finish, Sampling, Trajectory};
use envhub_runner::{EnvSpec, OpenAiConfig, OpenAiPolicy, PolicyError};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Behaviour {
    Correct,
    Wrong,
    ToolCall,
    ErrorThenOk,
    TimeoutThenOk,
    MalformedThenOk,
    Slow,
    AlwaysError,
}

const ALL: [Behaviour; 8] = [
    Behaviour::Correct,
    Behaviour::Wrong,
    Behaviour::ToolCall,
    Behaviour::ErrorThenOk,
    Behaviour::TimeoutThenOk,
    Behaviour::MalformedThenOk,
    Behaviour::Slow,
    Behaviour::AlwaysError,
];

#[derive(Default)]
struct Mock {
    /// Requests seen per seed (a retry resends the same seed).
    attempts: Mutex<HashMap<u64, u32>>,
    behaviours: Mutex<HashMap<u64, Behaviour>>,
    next: AtomicUsize,
    requests: AtomicUsize,
}

/// Finds `Compute A + B` in the last user message.
fn answer(body: &Value) -> i64 {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let text = msgs.iter().rev().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or("");
    let rest = text.split("Compute ").nth(1).unwrap_or("0 + 0");
    let nums: Vec<i64> =
        rest.trim_end_matches('.').split(" + ").filter_map(|x| x.trim().trim_end_matches('.').parse().ok()).collect();
    nums.iter().sum()
}

fn completion(content: Option<String>, tool_calls: Option<Value>) -> Value {
    let finish = if tool_calls.is_some() { "tool_calls" } else { "stop" };
    json!({
        "id": "cmpl-1",
        "object": "chat.completion",
        "prompt_token_ids": [1, 2, 3],
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "tool_calls": tool_calls},
            "finish_reason": finish,
            "token_ids": [7, 8, 9],
            "logprobs": {"content": [
                {"token": "a", "logprob": -0.5}, {"token": "b", "logprob": -0.25}, {"token": "c", "logprob": -1.0}
            ]}
        }],
        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    })
}

async fn chat(State(mock): State<Arc<Mock>>, body: axum::Json<Value>) -> Response {
    mock.requests.fetch_add(1, Ordering::SeqCst);
    let body = body.0;
    let seed = body["seed"].as_u64().unwrap_or(0);
    assert_eq!(body["logprobs"], true);
    assert_eq!(body["return_token_ids"], true);
    let attempt = {
        let mut a = mock.attempts.lock().unwrap();
        let e = a.entry(seed).or_default();
        *e += 1;
        *e
    };
    let behaviour = *mock
        .behaviours
        .lock()
        .unwrap()
        .entry(seed)
        .or_insert_with(|| ALL[mock.next.fetch_add(1, Ordering::SeqCst) % ALL.len()]);
    let tag = format!("{behaviour:?}");
    let ans = answer(&body);
    let ok = |content: String| axum::Json(completion(Some(content), None)).into_response();
    match behaviour {
        Behaviour::Correct => ok(format!("[{tag}] so \\boxed{{{ans}}}")),
        Behaviour::Wrong => ok(format!("[{tag}] so \\boxed{{{}}}", ans + 1)),
        Behaviour::ToolCall => axum::Json(completion(
            None,
            Some(json!([{"id": "c1", "type": "function", "function": {"name": "calc", "arguments": "{\"x\": 1}"}}])),
        ))
        .into_response(),
        Behaviour::ErrorThenOk if attempt == 1 => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Behaviour::TimeoutThenOk if attempt == 1 => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            ok("too late".into())
        }
        Behaviour::MalformedThenOk if attempt == 1 => {
            (StatusCode::OK, [("content-type", "application/json")], "{\"choices\": [").into_response()
        }
        Behaviour::Slow => {
            tokio::time::sleep(Duration::from_millis(150)).await;
            ok(format!("[{tag}] \\boxed{{{ans}}}"))
        }
        Behaviour::AlwaysError => (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response(),
        _ => ok(format!("[{tag}] \\boxed{{{ans}}}")),
    }
}

async fn start_mock() -> (String, Arc<Mock>) {
    let mock = Arc::new(Mock::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(|| async { axum::Json(json!({"data": [{"id": "mock-model"}]})) }))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), mock)
}

fn policy(url: &str) -> OpenAiPolicy {
    let mut cfg = OpenAiConfig::new(url, "mock-model");
    cfg.timeout = Duration::from_millis(1000);
    cfg.max_retries = 2;
    cfg.backoff = Duration::from_millis(5);
    OpenAiPolicy::new(cfg).unwrap()
}

fn inline_tasks(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"question": format!("Compute {} + {}.", i, 2 * i + 1), "answer": format!("{}", 3 * i + 1)}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_server_run_loses_no_trajectory() {
    let data = tempfile::tempdir().unwrap();
    let (url, mock) = start_mock().await;
    let mut spec = EnvSpec::new(common::math_env(data.path()), "arithmetic-easy");
    spec.inline = inline_tasks(6);
    let config = RunConfig {
        run_id: "mock".into(),
        tasks: 6,
        group_size: 4,
        max_turns: Some(2),
        concurrency: 8,
        seed: 7,
        sampling: Sampling { temperature: 0.7, top_p: 0.9, max_tokens: 64, stop: vec![] },
        ..RunConfig::default()
    };
    let (tx, mut rx) = mpsc::channel(4);
    let handle = tokio::spawn(run(Arc::new(policy(&url)), vec![spec], config, tx));
    let mut groups: Vec<Vec<Trajectory>> = Vec::new();
    while let Some(g) = rx.recv().await {
        groups.push(g);
    }
    let summary = handle.await.unwrap().unwrap();
    assert_eq!(summary.groups, 6);
    assert_eq!(summary.trajectories, 24);

    // Every (group, sample) exactly once.
    let ids: HashSet<(u64, u32)> = groups.iter().flatten().map(|t| (t.group, t.sample)).collect();
    assert_eq!(ids.len(), 24);
    for g in &groups {
        assert_eq!(g.len(), 4);
        assert!(g.iter().all(|t| t.group == g[0].group && t.task == g[0].task));
    }

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut policy_errors = 0;
    for t in groups.iter().flatten() {
        assert_eq!(t.env.name, "envhub/math");
        assert!(t.env.digest.starts_with("sha256:"));
        assert_eq!(t.policy.sampling.temperature, 0.7);
        if t.finish == Finish::PolicyError {
            policy_errors += 1;
            assert_eq!(t.errors.len(), 1, "{t:?}");
            assert_eq!(t.errors[0].stage, "policy");
            assert!(t.errors[0].message.contains("503"), "{}", t.errors[0].message);
            assert!(t.reward.is_none() && t.advantage.is_none());
            continue;
        }
        let turn = &t.turns[0];
        assert_eq!(turn.prompt_token_ids, vec![1, 2, 3]);
        assert_eq!(turn.token_ids, vec![7, 8, 9]);
        assert_eq!(turn.logprobs, vec![-0.5, -0.25, -1.0]);
        assert_eq!(turn.loss_mask, vec![0, 0, 0, 1, 1, 1]);
        let text = turn.action.text();
        let tag = if turn.action.tool_calls.is_empty() {
            text.split(']').next().unwrap_or("").trim_start_matches('[').to_owned()
        } else {
            "ToolCall".to_owned()
        };
        *seen.entry(tag.clone()).or_default() += 1;
        let reward = t.reward.as_ref().map(|r| r.total);
        match tag.as_str() {
            "Correct" | "Slow" | "ErrorThenOk" | "TimeoutThenOk" | "MalformedThenOk" => {
                assert_eq!(reward, Some(1.0), "{tag}: {t:?}");
                let want_attempts = if tag.ends_with("ThenOk") { 2 } else { 1 };
                assert_eq!(turn.attempts, want_attempts, "{tag}");
            }
            "Wrong" => assert_eq!(reward, Some(0.0)),
            "ToolCall" => {
                // The math env has no tools: a tool-call-only turn scores 0
                // or is refused; either way it is on the record.
                assert!(reward == Some(0.0) || !t.errors.is_empty(), "{t:?}");
            }
            other => panic!("unexpected content tag {other:?}: {text}"),
        }
    }
    assert_eq!(seen.len(), 7, "every scripted behaviour showed up: {seen:?}");
    assert!(policy_errors >= 1);
    // Each always-failing turn was tried 1 + max_retries times.
    let behaviours = mock.behaviours.lock().unwrap().clone();
    let attempts = mock.attempts.lock().unwrap().clone();
    for (seed, b) in behaviours {
        if b == Behaviour::AlwaysError {
            assert_eq!(attempts[&seed], 3);
        }
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    // Bind then drop, so the port is (almost certainly) closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = policy(&format!("http://127.0.0.1:{port}/v1"));
    let err = p.models().await.unwrap_err();
    assert!(matches!(err, PolicyError::Unreachable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("cannot reach the policy server") && msg.contains("Is it running?"), "{msg}");
}

#[tokio::test]
async fn models_lists_the_served_models() {
    let (url, _mock) = start_mock().await;
    assert_eq!(policy(&url).models().await.unwrap(), vec!["mock-model".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_pushed_to_the_trajectory_api_come_back_as_exact_batches() {
    use envhub_runner::api::{ApiState, serve};
    use envhub_runner::sink::ApiSink;

    let data = tempfile::tempdir().unwrap();
    let state = ApiState::open(&data.path().join("api.log")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state, std::future::pending()));
    let c = reqwest::Client::new();
    let reg = c
        .post(format!("{api_url}/register"))
        .json(&json!({"batch_size": 4, "max_token_len": 512}))
        .send()
        .await
        .unwrap();
    assert!(reg.status().is_success());

    let (url, _mock) = start_mock().await;
    let mut spec = EnvSpec::new(common::math_env(data.path()), "arithmetic-easy");
    spec.inline = inline_tasks(4);
    let config = RunConfig { run_id: "push".into(), tasks: 4, group_size: 2, seed: 3, ..RunConfig::default() };
    let sink = ApiSink::connect(&api_url, "math", 2).await.unwrap();
    let (tx, mut rx) = mpsc::channel(4);
    let h = tokio::spawn(run(Arc::new(policy(&url)), vec![spec], config, tx));
    let mut pushed = 0;
    while let Some(g) = rx.recv().await {
        if sink.push_group(&g).await.unwrap() == envhub_runner::sink::Pushed::Sent {
            pushed += 1;
        }
    }
    h.await.unwrap().unwrap();
    assert!(pushed >= 1);
    let status: Value = c.get(format!("{api_url}/status")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["queue_size"], pushed);
    let latest: Value = c.get(format!("{api_url}/latest_example")).send().await.unwrap().json().await.unwrap();
    // Token sequences are prompt ++ completion, masked -100 on the prompt.
    assert_eq!(latest["tokens"][0], json!([1, 2, 3, 7, 8, 9]));
    assert_eq!(latest["masks"][0], json!([-100, -100, -100, 7, 8, 9]));
    assert_eq!(latest["group_overrides"]["envhub_env"], "envhub/math");
    let batch: Value = c.get(format!("{api_url}/batch")).send().await.unwrap().json().await.unwrap();
    if let Some(groups) = batch["batch"].as_array() {
        let n: usize = groups.iter().map(|g| g["tokens"].as_array().unwrap().len()).sum();
        assert_eq!(n, 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_run_sizes_are_refused_with_their_limit() {
    use envhub_runner::run::{MAX_CONCURRENCY, MAX_GROUP_SIZE, MAX_PLANNED_GROUPS, MAX_TASKS, plan};
    let data = tempfile::tempdir().unwrap();
    let spec = EnvSpec::new(common::math_env(data.path()), "arithmetic-easy");
    // Laying out a plan of 2^20 + 1 groups at once is refused.
    let config = RunConfig { tasks: MAX_PLANNED_GROUPS + 1, ..RunConfig::default() };
    let err = plan(std::slice::from_ref(&spec), &config).unwrap_err().to_string();
    assert!(err.contains(&format!("over the limit of {MAX_PLANNED_GROUPS}")), "{err}");
    let cases = [
        (RunConfig { tasks: u64::MAX, ..RunConfig::default() }, MAX_TASKS.to_string()),
        (RunConfig { group_size: u32::MAX, ..RunConfig::default() }, MAX_GROUP_SIZE.to_string()),
        (RunConfig { concurrency: usize::MAX, ..RunConfig::default() }, MAX_CONCURRENCY.to_string()),
    ];
    for (config, limit) in cases {
        let (tx, _rx) = mpsc::channel(1);
        let err = run(Arc::new(policy("http://127.0.0.1:9/v1")), vec![spec.clone()], config, tx).await.unwrap_err();
        assert!(err.to_string().contains(&format!("over the limit of {limit}")), "{err}");
    }
    // A long run is planned as it goes: a billion groups cost nothing up front.
    let config = RunConfig { tasks: 1 << 30, ..RunConfig::default() };
    let first: Vec<_> = envhub_runner::run::planner(std::slice::from_ref(&spec), &config).unwrap().take(3).collect();
    assert_eq!(first.iter().map(|p| p.group).collect::<Vec<_>>(), vec![0, 1, 2]);
}
