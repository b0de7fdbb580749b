//! The `envhub` binary end to end, on the first-party math environment
//! (built by `scripts/build-guests.sh`) and on a freshly scaffolded crate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace")
}

fn envhub(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_envhub"))
        .args(args)
        .current_dir(cwd)
        .env("ENVHUB_HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("run envhub")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace().join(dir),
        None => workspace().join("target"),
    }
}

fn package(file: &str) -> PathBuf {
    let p = target_dir().join("envhub").join(file);
    assert!(p.is_file(), "{} is missing: run scripts/build-guests.sh first", p.display());
    p
}

fn math_package() -> PathBuf {
    package("envhub-math-0.1.0.envpkg")
}

#[test]
fn score_one_completion_from_flags() {
    let home = tempfile::tempdir().expect("home");
    math_package();
    let out = envhub(
        home.path(),
        &workspace(),
        &["score", "math", "--answer", "\\frac{1}{2}", "--completion", "so \\boxed{0.5}"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON line");
    assert_eq!(v["reward"]["total"], json!(1.0));
    assert_eq!(v["metrics"]["extracted"], json!("0.5"));
}

#[test]
fn score_a_batch_in_order_with_errors_per_line() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    let batch = dir.path().join("batch.jsonl");
    let mut lines = Vec::new();
    for i in 0..40 {
        lines.push(json!({"task": {"question": "q", "answer": i.to_string()}, "completion": format!("\\boxed{{{}}}", i % 2 * i)}).to_string());
    }
    lines.insert(3, "not json".into());
    lines.insert(7, json!({"task": {"question": "no answer"}, "completion": "1"}).to_string());
    std::fs::write(&batch, lines.join("\n") + "\n").expect("write");
    let pkg = math_package();
    let out = envhub(
        home.path(),
        dir.path(),
        &["score", pkg.to_str().expect("utf8"), "--batch", batch.to_str().expect("utf8")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let results: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(results.len(), 42, "one answer per input line");
    assert_eq!(results[3]["error"]["kind"], json!("bad_line"));
    assert_eq!(results[7]["error"]["kind"], json!("invalid_task"));
    let rewards: Vec<f64> = results
        .iter()
        .filter(|r| r.get("reward").is_some())
        .map(|r| r["reward"]["total"].as_f64().unwrap_or(-1.0))
        .collect();
    let expected: Vec<f64> = (0..40).map(|i| if i % 2 == 1 || i == 0 { 1.0 } else { 0.0 }).collect();
    assert_eq!(rewards, expected, "answers stay in input order");
}

#[test]
fn test_info_and_play_the_math_package() {
    let home = tempfile::tempdir().expect("home");
    let pkg = math_package();
    let pkg = pkg.to_str().expect("utf8");
    let out = envhub(home.path(), &workspace(), &["test", pkg, "--tasks", "3"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("gsm8k-sample: 3 tasks, 3 reference answers earned full reward"), "{}", stdout(&out));

    let out = envhub(home.path(), &workspace(), &["info", pkg, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(info["info"]["name"], json!("envhub/math"));
    assert!(info["digest"].as_str().unwrap_or("").starts_with("sha256:"));

    let mut child = Command::new(env!("CARGO_BIN_EXE_envhub"))
        .args(["play", pkg, "--split", "arithmetic-easy", "--index", "0"])
        .env("ENVHUB_HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("play");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(b"\\boxed{-1}\n").expect("type");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("[user] Compute") && text.contains("reward "), "{text}");
}

#[test]
fn play_the_tools_environment_with_tool_calls() {
    let home = tempfile::tempdir().expect("home");
    let pkg = package("envhub-tools-0.1.0.envpkg");
    let mut child = Command::new(env!("CARGO_BIN_EXE_envhub"))
        .args(["play", pkg.to_str().expect("utf8"), "--split", "test", "--index", "0"])
        .env("ENVHUB_HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("play");
    use std::io::Write;
    let typed = "/call calculator {\"expression\": \"6 * 7\"}\n/call no_such_tool {}\nI am done\n";
    child.stdin.take().expect("stdin").write_all(typed.as_bytes()).expect("type");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("tool calculator"), "the tools are listed: {text}");
    assert!(text.contains("[tool calculator] {\"result\":\"42\"}"), "the call ran: {text}");
    assert!(text.contains("no_such_tool"), "an unknown tool is answered, not fatal: {text}");
    assert!(text.contains("reward "), "the episode ended with a reward: {text}");
}

#[test]
fn unknown_environments_and_bad_flags_are_named() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    let out = envhub(home.path(), dir.path(), &["test", "nowhere"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no environment `nowhere`"), "{}", stderr(&out));
    let pkg = math_package();
    let out = envhub(home.path(), dir.path(), &["score", pkg.to_str().expect("utf8"), "--answer", "1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--completion"), "{}", stderr(&out));
    let bogus = dir.path().join("bogus.envpkg");
    std::fs::write(&bogus, b"not a package").expect("write");
    let out = envhub(home.path(), dir.path(), &["info", bogus.to_str().expect("utf8")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("gzip"), "{}", stderr(&out));
}

#[test]
fn new_then_build_then_test_passes_untouched() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    let out = envhub(home.path(), dir.path(), &["new", "demo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("demo/envhub.toml").is_file());
    // Share a target dir across runs so the scaffold's dependencies build once.
    let target = target_dir().join("scaffold");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_envhub"))
            .args(args)
            .current_dir(dir.path())
            .env("ENVHUB_HOME", home.path())
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("run")
    };
    let built = run(&["build"]);
    assert!(built.status.success(), "{}", stderr(&built));
    assert!(stdout(&built).contains("built local/demo@0.1.0"), "{}", stdout(&built));
    let tested = run(&["test"]);
    assert!(tested.status.success(), "{}{}", stdout(&tested), stderr(&tested));
    assert!(stdout(&tested).contains("all environments passed"), "{}", stdout(&tested));
    let again = envhub(home.path(), dir.path(), &["new", "demo"]);
    assert!(!again.status.success() && stderr(&again).contains("already exists"));
}

#[test]
fn new_python_then_build_then_test_passes_untouched() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("dir");
    let out = envhub(home.path(), dir.path(), &["new", "--python", "alice/pydemo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let env_dir = dir.path().join("pydemo");
    for file in ["envhub.toml", "env.py", "test_env.py", "README.md"] {
        assert!(env_dir.join(file).is_file(), "{file} scaffolded");
    }
    let built = envhub(home.path(), &env_dir, &["build"]);
    assert!(built.status.success(), "{}", stderr(&built));
    assert!(stdout(&built).contains("built alice/pydemo@0.1.0"), "{}", stdout(&built));
    let tested = envhub(home.path(), &env_dir, &["test"]);
    assert!(tested.status.success(), "{}{}", stdout(&tested), stderr(&tested));
    assert!(stdout(&tested).contains("all environments passed"), "{}", stdout(&tested));

    // Inline tasks reach the environment's own check.
    let scored = envhub(home.path(), &env_dir, &["score", ".", "--task", r#"{"word": "abc"}"#, "--completion", "cba"]);
    assert!(scored.status.success(), "{}", stderr(&scored));
    let line: Value = serde_json::from_str(stdout(&scored).trim()).expect("json");
    assert_eq!(line["reward"]["total"], json!(1.0), "{line}");
    let refused = envhub(home.path(), &env_dir, &["score", ".", "--task", r#"{"word": 3}"#, "--completion", "x"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("invalid_task") || stderr(&refused).contains("non-empty string"),
        "{}",
        stderr(&refused)
    );

    // Editing the environment and rebuilding changes the package.
    let digest = |o: &Output| stdout(o).split("sha256:").nth(1).map(|d| d.trim().trim_end_matches(')').to_owned());
    let env_py = std::fs::read_to_string(env_dir.join("env.py")).expect("env.py");
    std::fs::write(env_dir.join("env.py"), env_py.replace("\"token\"]", "\"token\", \"trainer\"]")).expect("edit");
    let rebuilt = envhub(home.path(), &env_dir, &["build"]);
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    assert_ne!(digest(&built), digest(&rebuilt), "{} / {}", stdout(&built), stdout(&rebuilt));
    let again = envhub(home.path(), dir.path(), &["new", "--python", "alice/pydemo"]);
    assert!(!again.status.success() && stderr(&again).contains("already exists"));
}
