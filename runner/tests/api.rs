//! The trajectory API: Atropos wire format, gzip bodies, exact batch sizes
//! from whole groups, and no accepted group lost across a restart.

use std::io::Write;
use std::path::Path;

use envhub_runner::api::{ApiState, serve};
use serde_json::{Value, json};
use tokio::sync::oneshot;

struct Server {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(log: &Path) -> Server {
    let state = ApiState::open(log).unwrap();
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
