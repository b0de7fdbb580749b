//! The trajectory API: Atropos wire format, gzip bodies, exact batch sizes
//! from whole groups, no accepted group lost across a restart or a
//! compaction, one server per log, bounded bodies and batch sizes,
//! idempotent pushes, and no state change from a browser's GET.

use std::io::Write;
use std::path::Path;

use envhub_runner::api::{ApiOptions, ApiState, MAX_BATCH_SIZE, serve};
use serde_json::{Value, json};
use tokio::sync::oneshot;

struct Server {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(log: &Path) -> Server {
    start_with(log, ApiOptions::default()).await
}

async fn start_with(log: &Path, options: ApiOptions) -> Server {
    serve_state(ApiState::open_with(log, options).unwrap()).await
}

async fn serve_state(state: ApiState) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server { url, stop: Some(tx), task }
}

impl Server {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap();
    }
}

fn group(n: usize, tag: u32) -> Value {
    json!({
        "tokens": (0..n).map(|i| vec![tag, i as u32, 9]).collect::<Vec<_>>(),
        "masks": (0..n).map(|i| vec![-100, i as i64, 9]).collect::<Vec<_>>(),
        "scores": (0..n).map(|i| i as f64).collect::<Vec<_>>(),
        "advantages": null,
        "ref_logprobs": null,
        "messages": null,
        "env_id": 0,
    })
}

fn gzip(v: &Value) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(v.to_string().as_bytes()).unwrap();
    e.finish().unwrap()
}

async fn post(c: &reqwest::Client, url: &str, body: &Value) -> Value {
    let r = c.post(url).json(body).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

async fn get(c: &reqwest::Client, url: &str) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

fn batch_tags(b: &Value) -> Vec<u64> {
    b["batch"].as_array().unwrap().iter().map(|g| g["tokens"][0][0].as_u64().unwrap()).collect()
}

fn batch_len(b: &Value) -> usize {
    b["batch"].as_array().unwrap().iter().map(|g| g["tokens"].as_array().unwrap().len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_exact_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("api.log");
    let c = reqwest::Client::new();

    let s = start(&log).await;
    assert_eq!(get(&c, &format!("{}/info", s.url)).await, json!({"batch_size": -1, "max_token_len": -1}));
    // No trainer yet: no batch.
    assert_eq!(get(&c, &format!("{}/batch", s.url)).await, json!({"batch": null}));
    let reg = post(
        &c,
        &format!("{}/register", s.url),
        &json!({
            "wandb_group": "g", "wandb_project": "p", "batch_size": 8, "max_token_len": 2048,
            "checkpoint_dir": "ck", "save_checkpoint_interval": 10, "starting_step": 0, "num_steps": 100
        }),
    )
    .await;
    assert!(reg["uuid"].as_str().is_some_and(|u| u.len() == 36), "{reg}");
    let env = post(&c, &format!("{}/register-env", s.url), &json!({
        "max_token_length": 2048, "desired_name": "math", "weight": 1.0, "group_size": 4, "min_batch_allocation": null
    }))
    .await;
    assert_eq!(env["env_id"], 0);
    assert_eq!(env["status"], "success");

    // Groups of 4 (tag 1), 3 (tag 2, gzip), 4 (tag 3) and a list of 1 + 2 (tags 4, 5).
    post(&c, &format!("{}/scored_data", s.url), &group(4, 1)).await;
    let r = c
        .post(format!("{}/scored_data", s.url))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(&group(3, 2)))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    post(&c, &format!("{}/scored_data", s.url), &group(4, 3)).await;
    let list = post(&c, &format!("{}/scored_data_list", s.url), &json!([group(1, 4), group(2, 5)])).await;
    assert_eq!(list["groups_processed"], 2);
    // A malformed group is refused and not stored.
    let bad = c
        .post(format!("{}/scored_data", s.url))
        .json(&json!({"tokens": [[1]], "masks": [], "scores": [1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    let status = get(&c, &format!("{}/status", s.url)).await;
    assert_eq!(status["queue_size"], 5);
    let latest = get(&c, &format!("{}/latest_example", s.url)).await;
    assert_eq!(latest["tokens"][0][0], 5);
    // /status-env takes a JSON body on a GET.
    let se: Value =
        c.get(format!("{}/status-env", s.url)).json(&json!({"env_id": 0})).send().await.unwrap().json().await.unwrap();
    assert_eq!(se["queue_size"], 5);
    assert_eq!(se["self_queue_size"], 5);

    // 8 = 4 + 3 + 1: the oldest groups that fit, whole groups only.
    let b = get(&c, &format!("{}/batch", s.url)).await;
    assert_eq!(batch_len(&b), 8);
    assert_eq!(batch_tags(&b), vec![1, 2, 4]);
    s.stop().await;

    // Restart, with a torn half-written line at the end of the log.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"{\"op\":\"push\",\"seq\":99,\"gro")
        .unwrap();
    let s = start(&log).await;
    let status = get(&c, &format!("{}/status", s.url)).await;
    assert_eq!(status, json!({"current_step": 1, "queue_size": 2}));
    assert_eq!(get(&c, &format!("{}/info", s.url)).await["batch_size"], 8);
    assert_eq!(get(&c, &format!("{}/wandb_info", s.url)).await, json!({"group": "g", "project": "p"}));
    // 4 + 2 = 6 < 8: no batch yet.
    assert_eq!(get(&c, &format!("{}/batch", s.url)).await, json!({"batch": null}));
    post(&c, &format!("{}/scored_data", s.url), &group(2, 6)).await;
    let b = get(&c, &format!("{}/batch", s.url)).await;
    assert_eq!(batch_len(&b), 8);
    assert_eq!(batch_tags(&b), vec![3, 5, 6]);
    assert_eq!(get(&c, &format!("{}/status", s.url)).await, json!({"current_step": 2, "queue_size": 0}));
    post(&c, &format!("{}/scored_data", s.url), &group(4, 7)).await;
    s.stop().await;

    // Restart again: the queue and step are as they were; reset clears them.
    let s = start(&log).await;
    assert_eq!(get(&c, &format!("{}/status", s.url)).await, json!({"current_step": 2, "queue_size": 1}));
    assert_eq!(post(&c, &format!("{}/disconnect-env", s.url), &json!({"env_id": 0})).await["status"], "success");
    assert_eq!(get(&c, &format!("{}/reset_data", s.url)).await["status"], "reset");
    assert_eq!(get(&c, &format!("{}/status", s.url)).await, json!({"current_step": 0, "queue_size": 0}));
    s.stop().await;
    let s = start(&log).await;
    assert_eq!(get(&c, &format!("{}/status", s.url)).await["queue_size"], 0);
    s.stop().await;
}

#[tokio::test]
async fn a_bad_gzip_body_is_a_client_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("api.log")).await;
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/scored_data", s.url))
        .header("content-encoding", "gzip")
        .body(b"not gzip".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    s.stop().await;
}

#[test]
fn a_second_server_on_the_same_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("api.log");
    let first = ApiState::open(&log).unwrap();
    let err = ApiState::open(&log).err().unwrap();
    assert!(matches!(err, envhub_runner::RunnerError::LogLocked { .. }), "{err}");
    assert!(err.to_string().contains("another trajectory API server is using this log"), "{err}");
    drop(first);
    ApiState::open(&log).unwrap();
}

#[tokio::test]
async fn batch_size_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("api.log")).await;
    let c = reqwest::Client::new();
    for bs in [json!(0), json!(1u64 << 40), json!(MAX_BATCH_SIZE + 1), json!(-3), json!("8")] {
        let r = c.post(format!("{}/register", s.url)).json(&json!({"batch_size": bs})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 422, "{bs}");
        let detail = r.json::<Value>().await.unwrap()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(&MAX_BATCH_SIZE.to_string()), "{detail}");
    }
    assert_eq!(get(&c, &format!("{}/info", s.url)).await["batch_size"], -1);
    post(&c, &format!("{}/register", s.url), &json!({"batch_size": MAX_BATCH_SIZE})).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_bounded_before_and_after_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let options = ApiOptions { max_body_bytes: 1 << 20, max_decoded_bytes: 1 << 20, ..ApiOptions::default() };
    let s = start_with(&dir.path().join("api.log"), options).await;
    let c = reqwest::Client::new();
    // 64 MiB of JSON whitespace inside a valid group: about 64 KiB gzipped.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(b"{\"tokens\": [[1]], \"masks\": [[1]], \"scores\": [1]").unwrap();
    for _ in 0..64 {
        bomb.write_all(&[b' '; 1 << 20]).unwrap();
    }
    bomb.write_all(b"}").unwrap();
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let r = c
        .post(format!("{}/scored_data", s.url))
        .header("content-encoding", "gzip")
        .header("content-type", "application/json")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let detail = r.json::<Value>().await.unwrap()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("decoded from gzip") && detail.contains(&(1 << 20).to_string()), "{detail}");
    // Too large as sent.
    let big = vec![b' '; (1 << 20) + 1];
    let r = c.post(format!("{}/scored_data", s.url)).body(big).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // A body under both limits is taken.
    let r = c
        .post(format!("{}/scored_data", s.url))
        .header("content-encoding", "gzip")
        .body(gzip(&group(2, 1)))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(get(&c, &format!("{}/status", s.url)).await["queue_size"], 1);
    s.stop().await;
}

async fn post_keyed(c: &reqwest::Client, url: &str, key: &str, body: &Value) -> Value {
    let r = c.post(url).header("idempotency-key", key).json(body).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_repeated_under_its_key_is_queued_once_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("api.log");
    let c = reqwest::Client::new();
    let s = start(&log).await;
    let url = format!("{}/scored_data", s.url);
    assert_eq!(post_keyed(&c, &url, "run-1/0", &group(2, 1)).await, json!({"status": "received"}));
    assert_eq!(post_keyed(&c, &url, "run-1/0", &group(2, 1)).await["duplicate"], true);
    assert_eq!(post_keyed(&c, &url, "run-1/1", &group(2, 2)).await, json!({"status": "received"}));
    let list = format!("{}/scored_data_list", s.url);
    let body = json!([group(1, 3), group(1, 4)]);
    assert_eq!(post_keyed(&c, &list, "list-a", &body).await["groups_processed"], 2);
    assert_eq!(post_keyed(&c, &list, "list-a", &body).await["duplicates"], 2);
    let bad = c.post(&url).header("idempotency-key", "x".repeat(201)).json(&group(1, 9)).send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(get(&c, &format!("{}/status", s.url)).await["queue_size"], 4);
    s.stop().await;
    // The keys are in the log with their groups.
    let s = start(&log).await;
    let url = format!("{}/scored_data", s.url);
    assert_eq!(post_keyed(&c, &url, "run-1/1", &group(2, 2)).await["duplicate"], true);
    assert_eq!(get(&c, &format!("{}/status", s.url)).await["queue_size"], 4);
    s.stop().await;
}

fn log_size(log: &Path) -> u64 {
    std::fs::metadata(log).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_exactly_the_unconsumed_queue() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("api.log");
    let options = ApiOptions { compact_min_bytes: 4 << 10, ..ApiOptions::default() };
    let c = reqwest::Client::new();
    let s = start_with(&log, options.clone()).await;
    post(&c, &format!("{}/register", s.url), &json!({"batch_size": 4, "wandb_group": "g", "starting_step": 5})).await;
    post(&c, &format!("{}/register-env", s.url), &json!({"desired_name": "math", "group_size": 2})).await;
    let url = format!("{}/scored_data", s.url);
    for round in 0..40u32 {
        // Two groups in, one batch (two groups) out, with one group left over each time.
        for k in 0..3 {
            let tag = round * 3 + k;
            post_keyed(&c, &url, &format!("k{tag}"), &group(2, tag)).await;
        }
        let b = get(&c, &format!("{}/batch", s.url)).await;
        assert_eq!(batch_len(&b), 4);
    }
    let before = get(&c, &format!("{}/status", s.url)).await;
    assert_eq!(before, json!({"current_step": 45, "queue_size": 40}));
    let latest = get(&c, &format!("{}/latest_example", s.url)).await;
    s.stop().await;
    // Every push line is over 150 bytes: without compaction the log would
    // hold all 120 of them.
    assert!(log_size(&log) < 120 * 150, "the log was compacted: {} bytes", log_size(&log));

    let s = start_with(&log, options).await;
    assert_eq!(get(&c, &format!("{}/status", s.url)).await, before);
    assert_eq!(get(&c, &format!("{}/latest_example", s.url)).await, latest);
    assert_eq!(get(&c, &format!("{}/wandb_info", s.url)).await["group"], "g");
    assert_eq!(get(&c, &format!("{}/info", s.url)).await["batch_size"], 4);
    let env = get_json(&c, &format!("{}/status-env", s.url), &json!({"env_id": 0})).await;
    assert_eq!(env["env_name"], "math");
    // A consumed group's key is still known.
    let url = format!("{}/scored_data", s.url);
    assert_eq!(post_keyed(&c, &url, "k0", &group(2, 0)).await["duplicate"], true);
    // The queue is exactly what was left, oldest first: each batch took the
    // two oldest groups, so the last 40 pushed remain.
    let mut left = Vec::new();
    loop {
        let b = get(&c, &format!("{}/batch", s.url)).await;
        let Some(groups) = b["batch"].as_array() else { break };
        left.extend(groups.iter().map(|g| g["tokens"][0][0].as_u64().unwrap()));
    }
    assert_eq!(left, (80..120).collect::<Vec<u64>>());
    s.stop().await;
}

async fn get_json(c: &reqwest::Client, url: &str, body: &Value) -> Value {
    c.get(url).json(body).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browsers_get_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = reqwest::Client::new();
    let s = start(&dir.path().join("api.log")).await;
    post(&c, &format!("{}/register", s.url), &json!({"batch_size": 2})).await;
    post(&c, &format!("{}/scored_data", s.url), &group(2, 1)).await;
    post(&c, &format!("{}/scored_data", s.url), &group(2, 2)).await;
    let browser_like = [
        ("sec-fetch-mode", "navigate"),
        ("sec-purpose", "prefetch"),
        ("purpose", "prefetch"),
        ("origin", "http://evil.example"),
        ("upgrade-insecure-requests", "1"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"),
    ];
    for route in ["batch", "reset_data"] {
        for (name, value) in browser_like {
            let r = c.get(format!("{}/{route}", s.url)).header(name, value).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 403, "{route} {name}");
        }
    }
    // A cross-site form post is refused too.
    let r = c.post(format!("{}/reset_data", s.url)).header("origin", "http://evil.example").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(get(&c, &format!("{}/status", s.url)).await, json!({"current_step": 0, "queue_size": 2}));
    // Atropos's trainers (a plain program's GET) and POST both work.
    assert_eq!(batch_tags(&get(&c, &format!("{}/batch", s.url)).await), vec![1]);
    let b: Value = c.post(format!("{}/batch", s.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(batch_tags(&b), vec![2]);
    s.stop().await;
}

#[tokio::test]
async fn post_only_refuses_every_state_changing_get() {
    let dir = tempfile::tempdir().unwrap();
    let options = ApiOptions { atropos_get: false, ..ApiOptions::default() };
    let s = start_with(&dir.path().join("api.log"), options).await;
    let c = reqwest::Client::new();
    for route in
        ["batch", "reset_data", "register", "scored_data", "scored_data_list", "register-env", "disconnect-env"]
    {
        let r = c.get(format!("{}/{route}", s.url)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 405, "{route}");
    }
    let r = c.post(format!("{}/reset_data", s.url)).send().await.unwrap();
    assert!(r.status().is_success());
    assert_eq!(get(&c, &format!("{}/status", s.url)).await["queue_size"], 0);
    s.stop().await;
}

mod sink {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::extract::{Request, State};
    use axum::http::StatusCode;
    use axum::middleware::Next;
    use axum::response::{IntoResponse, Response};
    use envhub_runner::api::{ApiState, router};
    use envhub_runner::sink::{ApiSink, PushConfig, PushStats, Pushed};
    use envhub_runner::trajectory::{
        EnvRef, Finish, LogprobConvention, PolicyRef, Sampling, TRAJECTORY_FORMAT, TaskRef, Timings, Trajectory, Turn,
    };
    use envhub_sdk::{Message, Reward, TaskSource};

    fn trajectory(sample: u32, token_ids: bool) -> Trajectory {
        let turn = Turn {
            action: Message::assistant("4"),
            observation: vec![],
            prompt_token_ids: if token_ids { vec![1, 2] } else { vec![] },
            token_ids: if token_ids { vec![3, 4] } else { vec![] },
            logprobs: vec![],
            loss_mask: vec![],
            prompt_source: None,
            token_source: None,
            drift: None,
            finish_reason: "stop".into(),
            reward: Reward { total: 1.0, components: Default::default() },
            done: true,
            metrics: Default::default(),
            attempts: 1,
            policy_ms: 0.0,
            env_ms: 0.0,
        };
        Trajectory {
            format: TRAJECTORY_FORMAT,
            run_id: "r".into(),
            group: 0,
            sample,
            env: EnvRef { name: "e".into(), version: "1".into(), digest: "sha256:00".into(), source: None },
            task: TaskRef {
                source: TaskSource::Split { split: "train".into(), index: 0 },
                task_id: "t".into(),
                seed: 0,
                config: Default::default(),
            },
            policy: PolicyRef {
                id: "p".into(),
                version: "1".into(),
                logprobs: LogprobConvention::None,
                sampling: Sampling::default(),
                step: None,
            },
            prompt: vec![Message::user("2+2?")],
            tools: vec![],
            turns: vec![turn],
            reward: Some(Reward { total: 1.0, components: Default::default() }),
            advantage: Some(0.0),
            metrics: Default::default(),
            finish: Finish::Done,
            errors: vec![],
            untrainable: None,
            filtered: None,
            timings: Timings::default(),
        }
    }

    /// In front of the real API: the first push is stored but answered
    /// 502, the second stored but answered only after the client gave up.
    async fn flaky(State(pushes): State<Arc<AtomicUsize>>, req: Request, next: Next) -> Response {
        let push = req.uri().path() == "/scored_data";
        let answer = next.run(req).await;
        if !push {
            return answer;
        }
        match pushes.fetch_add(1, Ordering::SeqCst) {
            0 => StatusCode::BAD_GATEWAY.into_response(),
            1 => {
                tokio::time::sleep(Duration::from_secs(600)).await;
                answer
            }
            _ => answer,
        }
    }

    fn quick() -> PushConfig {
        PushConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            attempts: 4,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_push_whose_answers_are_lost_is_retried_and_queued_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = ApiState::open(&dir.path().join("api.log")).unwrap();
        let pushes = Arc::new(AtomicUsize::new(0));
        let app = router(state.clone()).layer(axum::middleware::from_fn_with_state(pushes.clone(), flaky));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let sink = ApiSink::connect_with(&url, "math", 3, quick()).await.unwrap();
        // One member without token ids is left out, and counted.
        let group = vec![trajectory(0, true), trajectory(1, true), trajectory(2, false)];
        let pushed = sink.push_group(&group).await.unwrap();
        assert_eq!(pushed, Pushed::Duplicate, "the third attempt finds the first one's group");
        assert_eq!(state.queue_len().await.unwrap(), 1, "queued once, however many attempts");
        assert!(pushes.load(Ordering::SeqCst) >= 3);
        let stats = sink.stats();
        assert_eq!(
            stats,
            PushStats { groups: 1, duplicates: 1, retries: 2, trajectories_left_out: 1, ..PushStats::default() }
        );
        // A group with no token ids at all is counted, not sent.
        assert_eq!(sink.push_group(&[trajectory(0, false)]).await.unwrap(), Pushed::NoTokens);
        assert_eq!(sink.stats().without_tokens, 1);
        assert_eq!(state.queue_len().await.unwrap(), 1);
    }

    /// Answers `/register-env`, then holds every other request open, unanswered.
    async fn stalled_api() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/register-env", axum::routing::post(|| async { axum::Json(serde_json::json!({"env_id": 0})) }))
            .route(
                "/scored_data",
                axum::routing::post(|| async {
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    "late"
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_api_times_out_and_the_failure_is_counted() {
        let url = stalled_api().await;
        let config = PushConfig { attempts: 2, request_timeout: Duration::from_millis(300), ..quick() };
        let sink = ApiSink::connect_with(&url, "math", 1, config).await.unwrap();
        let err = sink.push_group(&[trajectory(0, true)]).await.unwrap_err().to_string();
        assert!(err.contains("after 2 attempts"), "{err}");
        assert_eq!(sink.stats(), PushStats { groups: 1, failed: 1, retries: 1, ..PushStats::default() });
    }
}

/// A fresh database beside the one `ENVHUB_TEST_POSTGRES_URL` names
/// (`scripts/ci-services.sh` starts PostgreSQL and sets it), or `None`.
async fn fresh_postgres() -> Option<String> {
    use sqlx::Connection;
    let Ok(admin) = std::env::var("ENVHUB_TEST_POSTGRES_URL") else {
        eprintln!("NOTE: the PostgreSQL trajectory store is not tested: ENVHUB_TEST_POSTGRES_URL is unset");
        return None;
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let name = format!("envhub_traj_{}_{nanos}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to ENVHUB_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let (base, _) = admin.rsplit_once('/').expect("a database in ENVHUB_TEST_POSTGRES_URL");
    Some(format!("{base}/{name}"))
}

async fn pg_server(url: &str) -> Server {
    serve_state(ApiState::connect_postgres(url, ApiOptions::default()).await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_postgres_database_serve_one_queue_that_survives_restarts() {
    let Some(db) = fresh_postgres().await else { return };
    let c = reqwest::Client::new();
    let (a, b) = (pg_server(&db).await, pg_server(&db).await);
    assert_eq!(get(&c, &format!("{}/batch", b.url)).await, json!({"batch": null}));
    post(
        &c,
        &format!("{}/register", a.url),
        &json!({
            "wandb_group": "g", "wandb_project": "p", "batch_size": 8, "max_token_len": 2048,
            "checkpoint_dir": "ck", "save_checkpoint_interval": 10, "starting_step": 0, "num_steps": 100
        }),
    )
    .await;
    assert_eq!(get(&c, &format!("{}/info", b.url)).await["batch_size"], 8);
    let env = json!({"max_token_length": 2048, "desired_name": "math", "weight": 1.0, "group_size": 4});
    assert_eq!(post(&c, &format!("{}/register-env", b.url), &env).await["env_id"], 0);
    assert_eq!(post(&c, &format!("{}/register-env", a.url), &env).await["env_id"], 1);

    // Groups of 4, 3 and 4 through both replicas, then a list of 1 + 2.
    post(&c, &format!("{}/scored_data", a.url), &group(4, 1)).await;
    post_keyed(&c, &format!("{}/scored_data", b.url), "k-2", &group(3, 2)).await;
    let again = post_keyed(&c, &format!("{}/scored_data", a.url), "k-2", &group(3, 2)).await;
    assert_eq!(again["duplicate"], true, "a key accepted by one replica is known to the other");
    post(&c, &format!("{}/scored_data", a.url), &group(4, 3)).await;
    post(&c, &format!("{}/scored_data_list", b.url), &json!([group(1, 4), group(2, 5)])).await;
    assert_eq!(get(&c, &format!("{}/status", a.url)).await, json!({"current_step": 0, "queue_size": 5}));
    assert_eq!(get(&c, &format!("{}/latest_example", a.url)).await["tokens"][0][0], 5);
    let se: Value =
        c.get(format!("{}/status-env", b.url)).json(&json!({"env_id": 0})).send().await.unwrap().json().await.unwrap();
    assert_eq!(se["self_queue_size"], 5);
    let b1 = get(&c, &format!("{}/batch", b.url)).await;
    assert_eq!((batch_len(&b1), batch_tags(&b1)), (8, vec![1, 2, 4]));
    a.stop().await;
    b.stop().await;

    // A restarted replica finds the step and the rest of the queue.
    let a = pg_server(&db).await;
    assert_eq!(get(&c, &format!("{}/status", a.url)).await, json!({"current_step": 1, "queue_size": 2}));
    assert_eq!(get(&c, &format!("{}/wandb_info", a.url)).await, json!({"group": "g", "project": "p"}));
    let b = pg_server(&db).await;

    // Four pushers and two trainers on two replicas at once: every group is
    // handed out exactly once. (The 6 sequences left, one group of 2 and 40
    // more make 88: 11 batches.)
    post(&c, &format!("{}/scored_data", b.url), &group(2, 99)).await;
    let mut pushers = Vec::new();
    for p in 0..4u32 {
        let (c, urls) = (c.clone(), [a.url.clone(), b.url.clone()]);
        pushers.push(tokio::spawn(async move {
            for i in 0..10u32 {
                let url = &urls[(i % 2) as usize];
                post(&c, &format!("{url}/scored_data"), &group(2, 100 + p * 10 + i)).await;
            }
        }));
    }
    let mut pullers = Vec::new();
    for url in [a.url.clone(), b.url.clone()] {
        let c = c.clone();
        pullers.push(tokio::spawn(async move {
            let mut tags = Vec::new();
            for _ in 0..3000 {
                let b = get(&c, &format!("{url}/batch")).await;
                if !b["batch"].is_null() {
                    assert_eq!(batch_len(&b), 8);
                    tags.extend(batch_tags(&b));
                } else if get(&c, &format!("{url}/status")).await["current_step"] == 12 {
                    break;
                } else {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
            tags
        }));
    }
    for p in pushers {
        p.await.unwrap();
    }
    let mut tags: Vec<u64> = Vec::new();
    for p in pullers {
        tags.extend(p.await.unwrap());
    }
    tags.sort_unstable();
    let mut expected: Vec<u64> = (0..4u64).flat_map(|p| (0..10u64).map(move |i| 100 + p * 10 + i)).collect();
    expected.extend([3, 5, 99]);
    expected.sort_unstable();
    assert_eq!(tags, expected, "each group exactly once");
    assert_eq!(get(&c, &format!("{}/status", b.url)).await, json!({"current_step": 12, "queue_size": 0}));
    assert_eq!(get(&c, &format!("{}/reset_data", a.url)).await["status"], "reset");
    assert_eq!(get(&c, &format!("{}/status", b.url)).await, json!({"current_step": 0, "queue_size": 0}));
    a.stop().await;
    b.stop().await;
}
