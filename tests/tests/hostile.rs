//! Hostile modules: each misbehaviour ends in its typed error, within its
//! limits, and the same sandbox keeps serving other calls.

use std::time::{Duration, Instant};

use envhub_sandbox::{EnvModule, Limits, LoadOptions, Sandbox, SandboxConfig, SandboxError};
use envhub_tests::guest_wasm;
use serde_json::{Value, json};

fn sandbox() -> Sandbox {
    Sandbox::new(SandboxConfig::default()).expect("sandbox")
}

fn limits() -> Limits {
    Limits {
        fuel: 500_000_000,
        memory_bytes: 64 << 20,
        stdout_bytes: 1 << 20,
        deadline_ms: 20_000,
        ..Limits::default()
    }
}

fn hostile(sandbox: &Sandbox, data_dir: Option<std::path::PathBuf>) -> EnvModule {
    let options = LoadOptions { limits: limits(), capabilities: vec![], data_dir };
    sandbox.load_file(&guest_wasm("envhub-hostile-guest"), options).expect("load hostile guest")
}

fn run(module: &EnvModule, mode: &str) -> Result<Value, SandboxError> {
    let out = module.call_raw(json!({ "mode": mode }).to_string().as_bytes())?;
    envhub_sandbox::decode::<Value>(&out.stdout)
}

/// After each hostile call, the same module still answers a good one.
fn still_serving(module: &EnvModule) {
    assert_eq!(run(module, "ok").expect("sandbox still serves"), json!({"fine": true}));
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let sb = sandbox();
    let m = hostile(&sb, None);
    let err = run(&m, "loop").expect_err("must stop");
    assert!(matches!(err, SandboxError::OutOfFuel { limit: 500_000_000 }), "{err}");
    still_serving(&m);
}

#[test]
fn four_gib_allocation_hits_the_memory_limit() {
    let sb = sandbox();
    let m = hostile(&sb, None);
    for mode in ["alloc", "alloc_chunks"] {
        let err = run(&m, mode).expect_err("must stop");
        assert!(matches!(err, SandboxError::MemoryLimit { limit_bytes } if limit_bytes == 64 << 20), "{mode}: {err}");
    }
    still_serving(&m);
    // A raw 4 GiB memory.grow, refused, after which the module traps.
    let m = sb.load(GROW_4GIB.as_bytes(), LoadOptions { limits: limits(), ..Default::default() }).expect("load");
    let err = m.call_raw(b"{}").expect_err("must stop");
    assert!(matches!(err, SandboxError::MemoryLimit { .. }), "{err}");
}

const GROW_4GIB: &str = r#"(module
  (memory 1)
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const 65535)) (i32.const -1)) (then unreachable))))"#;

#[test]
fn deep_recursion_overflows_the_stack() {
    let sb = sandbox();
    let m = hostile(&sb, None);
    let err = run(&m, "recurse").expect_err("must stop");
    assert!(matches!(err, SandboxError::StackOverflow), "{err}");
    still_serving(&m);
}

#[test]
fn files_outside_data_are_unreachable_and_data_is_read_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("hello.txt"), "hello from data").expect("write");
    let sb = sandbox();
    let m = hostile(&sb, Some(dir.path().to_path_buf()));
    assert_eq!(run(&m, "read_data").expect("read data"), json!("hello from data"));
    for mode in ["read_passwd", "read_escape", "write_data"] {
        let verdict = run(&m, mode).expect("answers");
        let verdict = verdict.as_str().expect("string");
        assert!(verdict.starts_with("denied"), "{mode}: {verdict}");
    }
    assert!(!dir.path().join("new.txt").exists(), "the guest wrote into /data");
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
    assert_eq!(left.len(), 1, "nothing else appeared in the data dir");
}

#[test]
fn output_floods_are_cut_at_the_limit() {
    let sb = sandbox();
    let m = hostile(&sb, None);
    let err = run(&m, "flood").expect_err("must stop");
    assert!(matches!(err, SandboxError::OutputTooLarge { stream: "stdout", limit } if limit == 1 << 20), "{err}");
    let err = run(&m, "flood_stderr").expect_err("must stop");
    assert!(matches!(err, SandboxError::OutputTooLarge { stream: "stderr", .. }), "{err}");
    still_serving(&m);
}

#[test]
fn non_json_and_empty_output_are_malformed() {
    let sb = sandbox();
    let m = hostile(&sb, None);
    for mode in ["garbage", "nothing"] {
        let err = run(&m, mode).expect_err("must fail");
        assert!(matches!(err, SandboxError::MalformedResponse { .. }), "{mode}: {err}");
    }
}

#[test]
fn a_panic_is_reported_with_its_message() {
    let sb = sandbox();
    let m = hostile(&sb, None);
    let err = run(&m, "panic").expect_err("must fail");
    match &err {
        SandboxError::GuestPanic { message } => assert!(message.contains("the guest gave up"), "{message}"),
        other => panic!("expected a panic, got {other}"),
    }
    still_serving(&m);
}

#[test]
fn a_non_zero_exit_is_reported_with_its_status() {
    let sb = sandbox();
    let m = hostile(&sb, None);
    let err = run(&m, "exit").expect_err("must fail");
    assert!(matches!(err, SandboxError::GuestExit { code: 3, .. }), "{err}");
}

#[test]
fn sleeping_does_not_block_the_host() {
    let sb = sandbox();
    let m = hostile(&sb, None);
    let started = Instant::now();
    let result = run(&m, "sleep");
    // The guest asked for 30 s; sleeping is refused (Rust's std panics on
    // that), so the call ends at once.
    assert!(started.elapsed() < Duration::from_secs(10), "sleep blocked the host: {result:?}");
    assert!(matches!(result, Err(SandboxError::GuestPanic { .. })), "{result:?}");
}

#[test]
fn clocks_random_env_and_args_are_fixed() {
    let sb = sandbox();
    let m = hostile(&sb, None);
    let a = m.call_raw(br#"{"mode":"clock","seed":1}"#).expect("call");
    let b = m.call_raw(br#"{"mode":"clock","seed":1}"#).expect("call");
    let c = m.call_raw(br#"{"mode":"clock","seed":2}"#).expect("call");
    assert_eq!(a, b, "same request, same bytes and fuel");
    let a: Value = envhub_sandbox::decode(&a.stdout).expect("json");
    let c: Value = envhub_sandbox::decode(&c.stdout).expect("json");
    assert_eq!(a["wall"], json!(envhub_sandbox::FIXED_WALL_CLOCK_SECS));
    assert_eq!(a["env"], json!(0));
    assert_eq!(a["args"], json!(0));
    assert_ne!(a["random"], c["random"], "random follows the request");
}

const UNDECLARED_IMPORT: &str = r#"(module
  (import "envhub" "run_code" (func $run (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))"#;

const FOREIGN_IMPORT: &str = r#"(module
  (import "env" "socket" (func))
  (func (export "_start")))"#;

const NO_START: &str = r#"(module (func (export "main")))"#;

const WAT_LOOP: &str = r#"(module (func (export "_start") (loop (br 0))))"#;

#[test]
fn undeclared_and_foreign_imports_are_refused_at_load() {
    let sb = sandbox();
    let err = sb.load(UNDECLARED_IMPORT.as_bytes(), LoadOptions::default()).err().expect("refused");
    assert!(
        matches!(&err, SandboxError::UndeclaredCapability { capability, .. } if capability == "code:python"),
        "{err}"
    );
    let err = sb.load(FOREIGN_IMPORT.as_bytes(), LoadOptions::default()).err().expect("refused");
    assert!(
        matches!(&err, SandboxError::UnknownImport { module, name } if module == "env" && name == "socket"),
        "{err}"
    );
    let err = sb.load(NO_START.as_bytes(), LoadOptions::default()).err().expect("refused");
    assert!(matches!(err, SandboxError::NotACommand), "{err}");
}

#[test]
fn truncated_and_corrupt_modules_are_invalid() {
    let sb = sandbox();
    let wasm = std::fs::read(guest_wasm("envhub-hostile-guest")).expect("read");
    let truncated = &wasm[..wasm.len() / 2];
    let err = sb.load(truncated, LoadOptions::default()).err().expect("refused");
    assert!(matches!(err, SandboxError::InvalidModule(_)), "{err}");
    let mut corrupt = wasm.clone();
    for b in corrupt.iter_mut().skip(64).step_by(97) {
        *b ^= 0x5a;
    }
    let err = sb.load(&corrupt, LoadOptions::default()).err().expect("refused");
    assert!(matches!(err, SandboxError::InvalidModule(_)), "{err}");
    let err = sb.load(b"not wasm at all", LoadOptions::default()).err().expect("refused");
    assert!(matches!(err, SandboxError::InvalidModule(_)), "{err}");
    // The sandbox still loads and runs a good module afterwards.
    still_serving(&hostile(&sb, None));
}

#[test]
fn the_wall_clock_backstop_fires_when_fuel_would_last_too_long() {
    let sb = sandbox();
    let limits = Limits { fuel: 1_000_000_000_000, deadline_ms: 200, ..Limits::default() };
    let m = sb.load(WAT_LOOP.as_bytes(), LoadOptions { limits, ..Default::default() }).expect("load");
    let started = Instant::now();
    let err = m.call_raw(b"{}").expect_err("must stop");
    assert!(matches!(err, SandboxError::Deadline { ms: 200 }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn limits_over_the_host_maxima_are_refused() {
    let sb = sandbox();
    let limits = Limits { memory_bytes: 64 << 30, ..Limits::default() };
    let err = sb.load(WAT_LOOP.as_bytes(), LoadOptions { limits, ..Default::default() }).err().expect("refused");
    assert!(matches!(&err, SandboxError::InvalidLimits(m) if m.contains("memory_bytes")), "{err}");
}

#[test]
fn one_sandbox_serves_hostile_and_good_calls_from_many_threads() {
    let sb = sandbox();
    let m = hostile(&sb, None);
    std::thread::scope(|s| {
        let handles: Vec<_> = ["loop", "alloc", "panic", "flood", "ok", "recurse", "ok", "garbage"]
            .into_iter()
            .map(|mode| {
                let m = m.clone();
                s.spawn(move || (mode, run(&m, mode)))
            })
            .collect();
        for h in handles {
            let (mode, result) = h.join().expect("no host panic");
            assert_eq!(result.is_ok(), mode == "ok", "{mode}: {result:?}");
        }
    });
    still_serving(&m);
}
