//! `envhub run`, `envhub verify` and `envhub eval` end to end against a tiny
//! OpenAI-compatible server on loopback (plain std HTTP, one answer for all).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace")
}

fn math_package() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let p = target.join("envhub/envhub-math-0.1.0.envpkg");
    assert!(p.is_file(), "{} is missing: run scripts/build-guests.sh first", p.display());
    p
}

fn envhub(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_envhub"))
        .args(args)
        .current_dir(workspace())
        .env("ENVHUB_HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("run envhub")
}

/// Serves `/v1/models` and `/v1/chat/completions` (always `\boxed{4}`).
fn mock_server() -> String {
    mock_policy(false)
}

/// Reads one request from `reader`: its request line and body.
fn read_request(reader: &mut BufReader<std::net::TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some((request_line, body))
}

/// The mock policy server; with `token_ids`, answers carry vLLM's token ids.
fn mock_policy(token_ids: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let Some((request_line, _)) = read_request(&mut reader) else { continue };
            let message = json!({"role": "assistant", "content": "so \\boxed{4}"});
            let answer = if request_line.contains("/models") {
                json!({"data": [{"id": "mock"}]})
            } else if token_ids {
                json!({"prompt_token_ids": [1, 2, 3], "choices": [{"message": message, "finish_reason": "stop", "token_ids": [7, 8, 9]}]})
            } else {
                json!({"choices": [{"message": message, "finish_reason": "stop"}]})
            }
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    url
}

#[test]
fn run_then_verify_then_catch_an_edit() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    let pkg = math_package();
    let pkg = pkg.to_str().expect("utf-8 path");
    let url = mock_server();
    let out_file = dir.path().join("t.jsonl");
    let out_str = out_file.to_str().expect("utf-8 path");
    let out = envhub(
        home.path(),
        &[
            "run",
            pkg,
            "--policy",
            &url,
            "--tasks",
            "3",
            "--group-size",
            "2",
            "--split",
            "arithmetic-easy",
            "--out",
            out_str,
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&out_file).expect("trajectories");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(lines.len(), 6);
    assert!(lines.iter().all(|t| t["policy"]["id"].as_str().is_some_and(|id| id.ends_with("#mock"))));

    let ok = envhub(home.path(), &["verify", out_str]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("verified 6/6"));

    let mut edited = lines.clone();
    let flipped = if edited[1]["reward"]["total"] == json!(1.0) { 0.0 } else { 1.0 };
    edited[1]["reward"]["total"] = json!(flipped);
    let edited_file = dir.path().join("edited.jsonl");
    std::fs::write(&edited_file, edited.iter().map(|t| t.to_string() + "\n").collect::<String>()).expect("write");
    let bad = envhub(home.path(), &["verify", edited_file.to_str().expect("utf-8"), "--env", pkg]);
    assert!(!bad.status.success());
    let report = String::from_utf8_lossy(&bad.stdout);
    assert!(report.contains("line 2") && report.contains("reward_mismatch"), "{report}");
    assert!(report.contains("verified 5/6"), "{report}");
}

#[test]
fn verify_finds_pulled_packages_by_digest_in_the_cache() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    // Run from a copy of the package that is gone by the time we verify, as a
    // package pulled from a hub is known by its digest, not its path.
    let bytes = std::fs::read(math_package()).expect("package");
    let gone = dir.path().join("moved.envpkg");
    std::fs::write(&gone, &bytes).expect("copy");
    let url = mock_server();
    let out_file = dir.path().join("t.jsonl");
    let out = envhub(
        home.path(),
        &[
            "run",
            gone.to_str().expect("utf-8"),
            "--policy",
            &url,
            "--tasks",
            "2",
            "--group-size",
            "2",
            "--split",
            "arithmetic-easy",
            "--out",
            out_file.to_str().expect("utf-8"),
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(&gone).expect("remove");
    let missing = envhub(home.path(), &["verify", out_file.to_str().expect("utf-8")]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stdout).contains("missing_package"));

    // The pull cache: $ENVHUB_HOME/packages/sha256/<hex>.envpkg.
    let first: Value =
        serde_json::from_str(std::fs::read_to_string(&out_file).expect("trajectories").lines().next().expect("a line"))
            .expect("json");
    let hex = first["env"]["digest"].as_str().and_then(|d| d.strip_prefix("sha256:")).expect("digest").to_owned();
    let cache = home.path().join("packages/sha256");
    std::fs::create_dir_all(&cache).expect("mkdir");
    std::fs::write(cache.join(format!("{hex}.envpkg")), &bytes).expect("cache");
    let ok = envhub(home.path(), &["verify", out_file.to_str().expect("utf-8")]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("verified 4/4"));
}

#[test]
fn eval_prints_pass_at_k_and_writes_metadata() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    let pkg = math_package();
    let url = mock_server();
    let results = dir.path().join("eval.jsonl");
    let out = envhub(
        home.path(),
        &[
            "eval",
            pkg.to_str().expect("utf-8"),
            "--policy",
            &url,
            "--split",
            "arithmetic-easy",
            "-n",
            "4",
            "-k",
            "2",
            "--out",
            results.to_str().expect("utf-8"),
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pass@1") && stdout.contains("pass@2") && stdout.contains("mean reward"), "{stdout}");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("eval.meta.json")).expect("meta")).expect("json");
    assert!(meta["env"]["digest"].as_str().is_some_and(|d| d.starts_with("sha256:")));
    assert_eq!(meta["summary"]["samples"], 8);
    assert_eq!(meta["sampling"]["temperature"], json!(0.7));
}

#[test]
fn an_unreachable_policy_server_is_named() {
    let home = tempfile::tempdir().expect("home");
    let pkg = math_package();
    let out =
        envhub(home.path(), &["run", pkg.to_str().expect("utf-8"), "--policy", "http://127.0.0.1:1/v1", "--quiet"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the policy server at http://127.0.0.1:1/v1"), "{err}");
}

/// Answers `/register-env`, then takes every push and never answers it.
fn stalled_trajectory_api() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            while let Some((line, _)) = read_request(&mut reader) {
                if !line.contains("/register-env") {
                    held.push(stream);
                    break;
                }
                let answer = json!({"status": "success", "env_id": 0}).to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                    answer.len()
                );
            }
        }
    });
    url
}

fn run_args<'a>(pkg: &'a str, policy: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", pkg, "--policy", policy, "--tasks", "3", "--group-size", "2"];
    args.extend_from_slice(&["--split", "arithmetic-easy", "--out", out, "--quiet"]);
    args.extend_from_slice(extra);
    args
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0)
}

#[test]
fn a_stalled_trajectory_api_loses_no_group_and_the_run_says_so() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    let pkg = math_package();
    let pkg = pkg.to_str().expect("utf-8");
    let policy = mock_policy(true);
    let api = stalled_trajectory_api();
    let out_file = dir.path().join("t.jsonl");
    let out_str = out_file.to_str().expect("utf-8");
    let extra = ["--push", &api, "--push-timeout", "1", "--push-attempts", "2"];
    let out = envhub(home.path(), &run_args(pkg, &policy, out_str, &extra));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    // Every group is on disk, and every one not pushed is counted.
    assert_eq!(lines(&out_file), 6, "{err}");
    assert!(err.contains("pushed 0 of 3 groups"), "{err}");
    assert!(err.contains("3 failed"), "{err}");
    assert!(err.contains("3 of 3 groups were not accepted by the trajectory API"), "{err}");
    assert!(err.contains(&format!("every group is in {out_str}")), "{err}");
}

/// Starts `envhub trajectories serve` on a free port; returns it and its URL.
fn trajectory_server(home: &Path, store: &Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_envhub"))
        .args(["trajectories", "serve", "--listen", "127.0.0.1:0", "--store", store.to_str().expect("utf-8")])
        .env("ENVHUB_HOME", home)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the trajectory API");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("its first line");
    // Keep reading, so the server never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    (child, url)
}

/// A GET over plain std TCP.
fn get_json(url: &str) -> Value {
    let addr = url.trim_start_matches("http://");
    let (host, path) = addr.split_once('/').unwrap_or((addr, ""));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(s, "GET /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn pushes_are_counted_and_one_store_takes_one_server() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("api.log");
    let (mut server, api) = trajectory_server(home.path(), &store);
    let pkg = math_package();
    let pkg = pkg.to_str().expect("utf-8");

    // A second server on the same store is refused, naming why.
    let store_str = store.to_str().expect("utf-8");
    let second = envhub(home.path(), &["trajectories", "serve", "--listen", "127.0.0.1:0", "--store", store_str]);
    let second_err = String::from_utf8_lossy(&second.stderr).into_owned();

    let out_file = dir.path().join("with-ids.jsonl");
    let with_ids = mock_policy(true);
    let ran = envhub(home.path(), &run_args(pkg, &with_ids, out_file.to_str().expect("utf-8"), &["--push", &api]));
    let ran_err = String::from_utf8_lossy(&ran.stderr).into_owned();
    let queued = get_json(&format!("{api}/status"));

    // Without token ids there is nothing to train on: counted, not dropped silently.
    let bare_file = dir.path().join("bare.jsonl");
    let bare = mock_policy(false);
    let ran_bare = envhub(home.path(), &run_args(pkg, &bare, bare_file.to_str().expect("utf-8"), &["--push", &api]));
    let bare_err = String::from_utf8_lossy(&ran_bare.stderr).into_owned();
    let queued_after = get_json(&format!("{api}/status"));
    let _ = server.kill();
    let _ = server.wait();

    assert!(!second.status.success());
    assert!(second_err.contains("another trajectory API server is using this log"), "{second_err}");
    assert!(ran.status.success(), "{ran_err}");
    assert!(ran_err.contains("pushed 3 of 3 groups"), "{ran_err}");
    assert_eq!(queued["queue_size"], 3, "{queued}");
    assert!(ran_bare.status.success(), "{bare_err}");
    assert_eq!(lines(&bare_file), 6);
    assert!(bare_err.contains("pushed 0 of 3 groups") && bare_err.contains("3 without token ids"), "{bare_err}");
    assert!(bare_err.contains("warning: 3 groups had no token ids"), "{bare_err}");
    assert_eq!(queued_after["queue_size"], 3);
}

/// A POST of `body` over plain std TCP: the status and JSON answer, or
/// `None` when the connection broke before a whole answer came.
fn post_json(url: &str, path: &str, body: &Value, key: Option<&str>) -> Option<(u16, Value)> {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    let body = body.to_string();
    let key = key.map_or(String::new(), |k| format!("idempotency-key: {k}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n{key}content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body.as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let answer = serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()?;
    Some((status, answer))
}

#[test]
fn killed_mid_append_the_trajectory_api_keeps_every_acknowledged_group() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("api.log");
    let (mut server, api) = trajectory_server(home.path(), &store);
    // Four pushers of large groups (tens of kilobytes a record, so appends
    // take long enough to be cut), each group marked with its number.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pushers: Vec<_> = (0..4u64)
        .map(|p| {
            let (api, stop) = (api.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut acked, mut tried) = (Vec::new(), Vec::new());
                for n in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let marker = p * 1_000_000 + n;
                    let row: Vec<u64> = (0..5000).map(|i| marker + i).collect();
                    let group =
                        json!({"tokens": [row], "masks": [vec![-100; 5000]], "scores": [1.0], "marker": marker});
                    tried.push(marker);
                    match post_json(&api, "/scored_data", &group, Some(&format!("g-{marker}"))) {
                        Some((200, _)) => acked.push(marker),
                        Some((status, answer)) => panic!("a push got {status}: {answer}"),
                        None => break,
                    }
                }
                (acked, tried)
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.kill().expect("SIGKILL the trajectory API");
    let _ = server.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut acked, mut tried) = (Vec::new(), std::collections::BTreeSet::new());
    for p in pushers {
        let (a, t) = p.join().expect("pusher");
        acked.extend(a);
        tried.extend(t);
    }
    assert!(acked.len() >= 4, "too few pushes before the kill to test anything: {}", acked.len());

    // Restarted on the same log: every acknowledged group is there, whole,
    // once; nothing but what was sent; and a retry of one is a duplicate.
    let (mut server, api) = trajectory_server(home.path(), &store);
    let (status, _) = post_json(&api, "/register", &json!({"batch_size": 1}), None).expect("register");
    assert_eq!(status, 200);
    let mut found = std::collections::BTreeSet::new();
    loop {
        let (status, answer) = post_json(&api, "/batch", &json!({}), None).expect("batch");
        assert_eq!(status, 200, "{answer}");
        let Some(groups) = answer["batch"].as_array() else { break };
        for g in groups {
            let marker = g["marker"].as_u64().expect("a marker");
            assert_eq!(g["tokens"][0].as_array().map(Vec::len), Some(5000), "group {marker} is whole");
            assert!(found.insert(marker), "group {marker} came back twice");
        }
    }
    let again = acked[0];
    let row: Vec<u64> = (0..5000).map(|i| again + i).collect();
    let group = json!({"tokens": [row], "masks": [vec![-100; 5000]], "scores": [1.0], "marker": again});
    let retry = post_json(&api, "/scored_data", &group, Some(&format!("g-{again}")));
    let _ = server.kill();
    let _ = server.wait();
    for marker in &acked {
        assert!(found.contains(marker), "acknowledged group {marker} was lost ({} acked)", acked.len());
    }
    assert!(found.is_subset(&tried), "groups nobody sent: {:?}", found.difference(&tried).collect::<Vec<_>>());
    let (status, answer) = retry.expect("the retry answered");
    assert_eq!((status, answer["duplicate"].as_bool()), (200, Some(true)), "{answer}");
    println!("{} groups acknowledged before SIGKILL, {} found after restart", acked.len(), found.len());
}

#[test]
fn rows_of_a_parquet_file_become_the_runs_tasks_and_verify_replays_them() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    let pkg = math_package();
    let pkg = pkg.to_str().expect("utf-8");
    let url = mock_server();
    let data = workspace().join("runner/tests/data/gsm8k-sample.parquet");
    let data = data.to_str().expect("utf-8");
    let out_file = dir.path().join("t.jsonl");
    let out_str = out_file.to_str().expect("utf-8");
    let args = ["run", pkg, "--policy", &url, "--data", data, "--group-size", "1", "--out", out_str, "--quiet"];
    let ran = envhub(home.path(), &args);
    let err = String::from_utf8_lossy(&ran.stderr).into_owned();
    assert!(ran.status.success(), "{err}");
    // One pass over the data by default: a group per row, in row order.
    assert!(err.contains("12 task(s)"), "{err}");
    let lines: Vec<Value> = std::fs::read_to_string(&out_file)
        .expect("out")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 12);
    let first = &lines.iter().find(|t| t["group"] == 0).expect("group 0")["task"]["source"]["task"];
    assert!(first["question"].as_str().is_some_and(|q| q.starts_with("A baker makes 24 muffins")), "{first}");
    // The inline tasks are on record, so verify replays them.
    let verified = envhub(home.path(), &["verify", out_str]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    assert!(String::from_utf8_lossy(&verified.stdout).contains("verified 12/12"));

    // A column that is not there: a clear error and a failed exit.
    let bad =
        envhub(home.path(), &["run", pkg, "--policy", &url, "--data", data, "--columns", "question=prompt", "--quiet"]);
    let bad_err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(bad_err.contains("row 0 has no column `prompt` (it has: answer, question)"), "{bad_err}");
    // --data with two environments is refused, saying what to do.
    let two = envhub(home.path(), &["run", pkg, pkg, "--policy", &url, "--data", data, "--quiet"]);
    assert!(!two.status.success());
    assert!(String::from_utf8_lossy(&two.stderr).contains("[[envs]]"));
}

#[test]
fn eval_takes_every_row_of_a_mapped_parquet_file() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    let pkg = math_package();
    let url = mock_server();
    let data = workspace().join("runner/tests/data/math-sample.zstd.parquet");
    let results = dir.path().join("eval.jsonl");
    let args = [
        "eval",
        pkg.to_str().expect("utf-8"),
        "--policy",
        &url,
        "--data",
        data.to_str().expect("utf-8"),
        "--columns",
        "question=problem,answer=solution",
        "-k",
        "1",
        "--out",
        results.to_str().expect("utf-8"),
        "--quiet",
    ];
    let out = envhub(home.path(), &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("math-sample.zstd.parquet: 12 tasks x 1 samples"), "{stdout}");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("eval.meta.json")).expect("meta")).expect("json");
    assert!(meta["data"].as_str().is_some_and(|d| d.ends_with("math-sample.zstd.parquet")), "{meta}");
}
