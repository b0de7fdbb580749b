//! The API over a log whose disk fills up (an injected writer), over HTTP.

use std::sync::atomic::Ordering;

use super::log::tests::SmallDisk;
use super::*;

async fn serve_on_loopback(state: ApiState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state, std::future::pending()));
    url
}

fn group(tag: u32) -> Value {
    json!({"tokens": [[tag, 1]], "masks": [[-100, 1]], "scores": [1.0]})
}

async fn push(c: &reqwest::Client, url: &str, tag: u32) -> (u16, Value) {
    let r = c.post(format!("{url}/scored_data")).json(&group(tag)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_one_push_and_poisons_nothing_after_it() {
    let disk = SmallDisk::default();
    disk.room.store(usize::MAX, Ordering::SeqCst);
    let store = Store::over(Box::new(disk.clone()));
    let state = ApiState { store: Backend::Log(Arc::new(Mutex::new(store))), options: Arc::new(ApiOptions::default()) };
    let url = serve_on_loopback(state.clone()).await;
    let c = reqwest::Client::new();
    let reg = c.post(format!("{url}/register")).json(&json!({"batch_size": 2})).send().await.unwrap();
    assert!(reg.status().is_success());
    assert_eq!(push(&c, &url, 1).await.0, 200);

    // The disk fills up part way through the next record.
    let used = disk.bytes.lock().unwrap().len();
    disk.room.store(used + 10, Ordering::SeqCst);
    let (status, answer) = push(&c, &url, 2).await;
    assert_eq!(status, 507, "{answer}");
    assert!(answer["detail"].as_str().unwrap().contains("no space left"), "{answer}");
    assert_eq!(disk.bytes.lock().unwrap().len(), used, "the partial record is cut back");
    assert_eq!(state.queue_len().await.unwrap(), 1);

    disk.room.store(usize::MAX, Ordering::SeqCst);
    assert_eq!(push(&c, &url, 3).await.0, 200);

    // What reached the disk replays to exactly the acknowledged groups.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.log");
    std::fs::write(&path, disk.bytes.lock().unwrap().as_slice()).unwrap();
    let replayed = ApiState::open(&path).unwrap();
    assert_eq!(replayed.queue_len().await.unwrap(), 2);
    let url = serve_on_loopback(replayed).await;
    let batch: Value = c.post(format!("{url}/batch")).send().await.unwrap().json().await.unwrap();
    let tags: Vec<u64> =
        batch["batch"].as_array().unwrap().iter().map(|g| g["tokens"][0][0].as_u64().unwrap()).collect();
    assert_eq!(tags, vec![1, 3]);
}
