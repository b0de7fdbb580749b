//! Runner benchmarks (not timed tests): `scripts/bench-runner.sh`.
//!
//! 1. Runner overhead per turn: an instant policy on the math environment
//!    (sandboxed reset + step included), in turns/s and µs per turn.
//! 2. SmolLM2-135M-Instruct decode tokens/s on this machine's device (CPU
//!    unless built with `cuda`), when the model was fetched
//!    (`scripts/fetch-model.sh`): one stream, then one worker per core at
//!    once. Candle runs single-threaded per worker (`CANDLE_NUM_THREADS=1`
//!    unless set), as `envhub run` does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use envhub_runner::policy::{Completion, Policy, PolicyRequest};
use envhub_runner::run::{EnvSpec, RunConfig, run};
use envhub_runner::trajectory::{LogprobConvention, PolicyRef, Sampling};
use envhub_runner::{EnvHandle, PolicyError};
use envhub_sandbox::package::Package;
use envhub_sandbox::{Sandbox, SandboxConfig};
use envhub_sdk::Message;

struct Instant0;

impl Policy for Instant0 {
    fn describe(&self) -> PolicyRef {
        PolicyRef {
            id: "instant".into(),
            version: "0".into(),
            logprobs: LogprobConvention::None,
            sampling: Sampling::default(),
            step: None,
        }
    }

    async fn complete(&self, _r: PolicyRequest) -> Result<Completion, PolicyError> {
        Ok(Completion {
            message: Message::assistant("The answer is \\boxed{42}."),
            prompt_token_ids: vec![1, 2, 3],
            prompt_source: None,
            token_source: None,
            token_ids: vec![4, 5],
            logprobs: vec![-0.1, -0.2],
            finish_reason: "stop".into(),
            completion_tokens: 2,
            attempts: 1,
        })
    }
}

fn target_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default();
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

fn math_env(data: &std::path::Path) -> Option<EnvHandle> {
    let path = target_dir().join("envhub/envhub-math-0.1.0.envpkg");
    let package = Package::from_file(&path).ok()?;
    let sandbox = Sandbox::new(SandboxConfig::default()).ok()?;
    let module = sandbox.load_package(&package, data).ok()?;
    EnvHandle::new(module, package.digest_string(), None).ok()
}

fn overhead(rt: &tokio::runtime::Runtime, env: &EnvHandle) {
    for (tasks, group, concurrency) in [(250u64, 8u32, 16usize), (2000, 8, 64)] {
        let spec = EnvSpec::new(env.clone(), "arithmetic-easy");
        let config = RunConfig { tasks, group_size: group, concurrency, ..RunConfig::default() };
        let start = Instant::now();
        let summary = rt
            .block_on(async {
                let (tx, mut rx) = tokio::sync::mpsc::channel(64);
                let h = tokio::spawn(run(Arc::new(Instant0), vec![spec], config, tx));
                while rx.recv().await.is_some() {}
                h.await
            })
            .ok()
            .and_then(Result::ok);
        let secs = start.elapsed().as_secs_f64();
        if let Some(s) = summary {
            println!(
                "runner, instant policy, math env: {} turns in {:.2} s = {:.0} turns/s, {:.0} µs per turn (wall, all cores, sandboxed reset+step included; concurrency {concurrency})",
                s.turns,
                secs,
                s.turns as f64 / secs,
                secs * 1e6 / s.turns as f64
            );
        }
    }
}

#[cfg(feature = "candle")]
fn decode(model: &std::path::Path) {
    use envhub_runner::policy::CandlePolicy;
    let device = match envhub_runner::policy::candle::default_device() {
        Ok(d) => d,
        Err(e) => return println!("no device: {e}"),
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let policy = match CandlePolicy::load_with_workers(model, device, workers) {
        Ok(p) => p,
        Err(e) => return println!("cannot load {}: {e}", model.display()),
    };
    println!("SmolLM2 load: {:.2} s", t.elapsed().as_secs_f64());
    let request = |max_tokens: u32, seed: u64| PolicyRequest {
        messages: vec![Message::user("Write a long story about a robot who learns to paint.")],
        tools: vec![],
        sampling: Sampling { temperature: 0.8, top_p: 1.0, max_tokens, stop: vec![] },
        seed,
        prefix: None,
    };
    let mut rates = Vec::new();
    for seed in 0..5 {
        let t1 = Instant::now();
        let one = policy.generate(&request(1, seed));
        let prefill = t1.elapsed().as_secs_f64();
        let t2 = Instant::now();
        let many = policy.generate(&request(128, seed));
        let total = t2.elapsed().as_secs_f64();
        if let (Ok(one), Ok(many)) = (one, many) {
            let n = many.token_ids.len();
            if n > 1 {
                let rate = (n - 1) as f64 / (total - prefill).max(1e-9);
                println!(
                    "SmolLM2 decode: prompt {} tokens, prefill {:.0} ms, {} tokens in {:.2} s: {:.1} tokens/s decode",
                    one.prompt_token_ids.len(),
                    prefill * 1e3,
                    n,
                    total,
                    rate
                );
                rates.push(rate);
            }
        }
    }
    rates.sort_by(f64::total_cmp);
    if let Some(m) = rates.get(rates.len() / 2) {
        println!("SmolLM2 decode median, one stream: {m:.1} tokens/s");
    }
    // All workers at once (as a run's concurrent rollouts use them).
    let t = Instant::now();
    let tokens: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers as u64)
            .map(|w| {
                let (p, r) = (&policy, request(128, 100 + w));
                s.spawn(move || p.generate(&r).map(|c| c.token_ids.len()).unwrap_or(0))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    println!(
        "SmolLM2 {workers} workers at once: {tokens} tokens in {:.2} s = {:.1} tokens/s aggregate (prefill included)",
        t.elapsed().as_secs_f64(),
        tokens as f64 / t.elapsed().as_secs_f64()
    );
}

fn main() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: first thing in main, before any other thread exists.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    let data = std::env::temp_dir().join(format!("envhub-bench-{}", std::process::id()));
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return println!("no runtime: {e}"),
    };
    match math_env(&data) {
        Some(env) => overhead(&rt, &env),
        None => println!("math package not built: run scripts/build-guests.sh"),
    }
    let _ = std::fs::remove_dir_all(&data);
    #[cfg(feature = "candle")]
    {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default();
        let model = std::env::var_os("ENVHUB_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".cache/models"))
            .join("SmolLM2-135M-Instruct.Q4_1.gguf");
        if model.is_file() {
            decode(&model);
        } else {
            println!("SmolLM2 not fetched (scripts/fetch-model.sh): decode benchmark skipped");
        }
    }
}
