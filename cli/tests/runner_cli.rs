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
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
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
            let _ = reader.read_exact(&mut body);
            let answer = if request_line.contains("/models") {
                json!({"data": [{"id": "mock"}]})
            } else {
                json!({"choices": [{"message": {"role": "assistant", "content": "so \\boxed{4}"}, "finish_reason": "stop"}]})
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
