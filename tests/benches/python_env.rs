//! Python environments: reset and step latency (median and p99) of a small
//! `SingleTurn` and of `envhub/reasoning` (when built); the time to make a
//! package's image (import, snapshot, compile) and its size in the cache,
//! and the time to load it from the cache. The peer: the same environments
//! run natively, in process, by CPython (`scripts/python_env_native.py`).
//!
//! Run: `scripts/build-guests.sh && cargo bench -p envhub-tests --bench python_env`

use std::time::Instant;

use envhub_sandbox::EnvModule;
use envhub_sdk::{Envelope, Message, Request, ResetRequest, StepRequest, TaskSource};
use envhub_tests::{latency, python_package, target_dir, test_sandbox};
use serde_json::json;

const ITERATIONS: usize = 1000;

const ECHO: &str = r#"
import envhub

class Echo(envhub.SingleTurn):
    name = "bench/echo"
    version = "0.1.0"
    description = "repeat a word"
    splits = {"train": None}
    components = {"correct": 1.0}

    def task(self, split, index, rng):
        return {"word": rng.choice(["cat", "dog", "emu", "owl"])}

    def prompt(self, task):
        return "Repeat the word " + task["word"] + "."

    def score(self, task, completion):
        return {"correct": float(completion.strip() == task["word"])}

    def reference(self, task):
        return task["word"]
"#;

/// Median and p99 of reset + step (one episode) over `split` tasks.
fn episode_latency(module: &EnvModule, split: &str, config: serde_json::Map<String, serde_json::Value>) -> (f64, f64) {
    let mut samples = Vec::with_capacity(ITERATIONS);
    for i in 0..ITERATIONS + 50 {
        let source = TaskSource::Split { split: split.into(), index: i as u64 };
        let reset =
            Envelope::new(Request::Reset(ResetRequest { source: source.clone(), seed: 0, config: config.clone() }));
        let reset = serde_json::to_vec(&reset).unwrap_or_default();
        let answer = module
            .validate(source)
            .ok()
            .and_then(|v| v.actions.into_iter().next())
            .unwrap_or_else(|| Message::assistant("x"));
        let t = Instant::now();
        let out = module.call_raw(&reset).expect("reset");
        let state: serde_json::Value =
            serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")["ok"]["state"].clone();
        let step = Envelope::new(Request::Step(StepRequest { state, action: answer }));
        module.call_raw(&serde_json::to_vec(&step).unwrap_or_default()).expect("step");
        let dt = t.elapsed().as_secs_f64();
        if i >= 50 {
            samples.push(dt);
        }
    }
    let l = latency(&mut samples);
    (l.median_us / 1e3, l.p99_us / 1e3)
}

/// Median and p99 (ms) of the same reset + step run natively by CPython
/// (`python3`, no sandbox) with the guest SDK: the in-process peer.
fn native_latency(env_dir: &std::path::Path, split: &str, config: &str) -> Option<(f64, f64, String)> {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("python3")
        .arg(repo.join("scripts/python_env_native.py"))
        .args([env_dir.as_os_str(), split.as_ref(), ITERATIONS.to_string().as_ref(), config.as_ref()])
        .env("PYTHONPATH", repo.join("sdk/python"))
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((v["median_ms"].as_f64()?, v["p99_ms"].as_f64()?, v["python"].as_str()?.to_owned()))
}

/// Prints the native peer's figures and the ratio to `sandboxed` (median ms).
fn print_native(what: &str, env_dir: &std::path::Path, split: &str, config: &str, sandboxed: f64) {
    match native_latency(env_dir, split, config) {
        Some((median, p99, version)) => println!(
            "  {what} natively in CPython {version} (no sandbox): median {median:.3} ms, p99 {p99:.3} ms; \
             sandboxed/native {:.0}x",
            sandboxed / median
        ),
        None => println!("  {what} natively: python3 not found or the script failed"),
    }
}

/// Bytes of the files in `dir`, by name.
fn files(dir: &std::path::Path) -> std::collections::HashMap<std::ffi::OsString, u64> {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    entries.filter_map(|e| Some((e.file_name(), e.metadata().ok()?.len()))).collect()
}

fn main() {
    let sandbox = test_sandbox();
    let cache = sandbox.config().cache_dir.clone().expect("the test sandbox has a cache directory");
    let root = tempfile::tempdir().expect("tempdir");
    // The runtime's snapshot comes from the cache after the first run ever.
    let warm = python_package("bench/warm", ECHO, "", "fuel = 4000000000", &[]);
    sandbox.load_package(&warm, root.path()).expect("warm up");

    // Sources no earlier run had, so the image is made and compiled now.
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let package = python_package("bench/echo", &format!("{ECHO}\n# {nonce}\n"), "", "fuel = 4000000000", &[]);
    let before = files(&cache);
    let t = Instant::now();
    sandbox.load_package(&package, root.path()).expect("load");
    let cold_ms = t.elapsed().as_secs_f64() * 1e3;
    let added: u64 = files(&cache).into_iter().filter(|(name, _)| !before.contains_key(name)).map(|(_, n)| n).sum();
    // A new host finds the image in the cache.
    let sandbox = test_sandbox();
    sandbox.load_package(&warm, root.path()).expect("warm up");
    let t = Instant::now();
    let echo = sandbox.load_package(&package, root.path()).expect("load");
    let warm_ms = t.elapsed().as_secs_f64() * 1e3;

    let (median, p99) = episode_latency(&echo, "train", Default::default());
    let reset = Envelope::new(Request::Reset(ResetRequest {
        source: TaskSource::Split { split: "train".into(), index: 0 },
        seed: 0,
        config: Default::default(),
    }));
    let fuel = echo.call_raw(&serde_json::to_vec(&reset).unwrap_or_default()).map(|o| o.fuel_used).unwrap_or(0);
    println!(
        "python SingleTurn (echo): reset+step median {median:.2} ms, p99 {p99:.2} ms (targets <= 2 ms, <= 10 ms); \
         a reset runs {:.1}M instructions",
        fuel as f64 / 1e6
    );
    let native_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(native_dir.path().join("env.py"), ECHO).expect("write env.py");
    print_native("echo", native_dir.path(), "train", "{}", median);
    println!(
        "python SingleTurn (echo) image: made and compiled in {cold_ms:.0} ms, {} KiB in the cache; \
         loaded from the cache in {warm_ms:.0} ms",
        added >> 10
    );

    let reasoning = target_dir().join("envhub/envhub-reasoning-0.1.0.envpkg");
    if let Ok(package) = envhub_sandbox::package::Package::from_file(&reasoning) {
        let t = Instant::now();
        let env = sandbox.load_package(&package, root.path()).expect("load reasoning");
        let load_ms = t.elapsed().as_secs_f64() * 1e3;
        for level in [1, 3, 5] {
            let config = serde_json::from_value(json!({"level": level})).unwrap_or_default();
            let (median, p99) = episode_latency(&env, "train", config);
            println!("envhub/reasoning level {level}: reset+step median {median:.2} ms, p99 {p99:.2} ms");
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../environments/reasoning");
            print_native("the same", &dir, "train", &format!("{{\"level\": {level}}}"), median);
        }
        println!(
            "envhub/reasoning: load {load_ms:.0} ms (image from the cache after the first run), package {} KiB",
            package.size >> 10
        );
    } else {
        println!("envhub/reasoning is not built ({}): run scripts/build-guests.sh", reasoning.display());
    }
}
