//! Sandbox call latency of a small Rust environment (the math environment):
//! reset and step, median and p99, from the module cache; calls/s with 2
//! threads; and module load time, compiled vs from the disk cache.
//!
//! Run: `scripts/build-guests.sh && cargo bench -p envhub-tests --bench sandbox_calls`

use std::time::Instant;

use envhub_sandbox::{EnvModule, LoadOptions, Sandbox, SandboxConfig};
use envhub_sdk::{Envelope, Message, Request, ResetRequest, StepRequest, TaskSource};
use envhub_tests::{guest_wasm, latency, workspace_root};
use serde_json::json;

const ITERATIONS: usize = 3000;

fn requests(module: &EnvModule) -> (Vec<u8>, Vec<u8>) {
    let task = TaskSource::Inline(json!({"question": "What is half of one?", "answer": "\\frac{1}{2}"}));
    let reset =
        Envelope::new(Request::Reset(ResetRequest { source: task.clone(), seed: 1, config: Default::default() }));
    let reset_bytes = serde_json::to_vec(&reset).unwrap_or_default();
    let state = module.reset(task, 1, Default::default()).map(|r| r.state).unwrap_or_default();
    let step = Envelope::new(Request::Step(StepRequest {
        state,
        action: Message::assistant("Half of one is 0.5, so the answer is \\boxed{\\frac{1}{2}}."),
    }));
    (reset_bytes, serde_json::to_vec(&step).unwrap_or_default())
}

fn time_calls(module: &EnvModule, request: &[u8], n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let out = module.call_raw(request);
            let dt = t.elapsed().as_secs_f64();
            assert!(out.is_ok(), "call failed: {out:?}");
            dt
        })
        .collect()
}

fn main() {
    let wasm_path = guest_wasm("envhub-env-math");
    let wasm = std::fs::read(&wasm_path).unwrap_or_default();
    let cache = tempfile::tempdir().map(|d| d.keep()).unwrap_or_else(|_| std::env::temp_dir());
    let options =
        || LoadOptions { data_dir: Some(workspace_root().join("environments/math/data")), ..Default::default() };

    // Load: compile, then from the disk cache in a fresh sandbox.
    let config = SandboxConfig { cache_dir: Some(cache.clone()), ..SandboxConfig::default() };
    let t = Instant::now();
    let cold = Sandbox::new(config.clone()).and_then(|s| s.load(&wasm, options()));
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(cold.is_ok(), "{:?}", cold.err());
    let sandbox = Sandbox::new(config).expect("sandbox");
    let t = Instant::now();
    let module = sandbox.load(&wasm, options()).expect("load from cache");
    let cached_ms = t.elapsed().as_secs_f64() * 1e3;

    let (reset, step) = requests(&module);
    time_calls(&module, &reset, 200); // warm up
    let reset_lat = latency(&mut time_calls(&module, &reset, ITERATIONS));
    let step_lat = latency(&mut time_calls(&module, &step, ITERATIONS));
    let fuel = module.call_raw(&step).map(|o| o.fuel_used).unwrap_or(0);

    // Throughput with two threads sharing one module.
    let per_thread = ITERATIONS;
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (m, r, st) = (module.clone(), reset.clone(), step.clone());
            s.spawn(move || {
                for i in 0..per_thread {
                    let req = if i % 2 == 0 { &r } else { &st };
                    assert!(m.call_raw(req).is_ok());
                }
            });
        }
    });
    let calls_per_sec = (2 * per_thread) as f64 / t.elapsed().as_secs_f64();

    println!("sandbox_calls: math environment ({} KiB module), {ITERATIONS} calls each", wasm.len() / 1024);
    println!("  load: compile {compile_ms:.1} ms, from disk cache {cached_ms:.2} ms");
    println!(
        "  reset: median {:.1} us, p99 {:.1} us, mean {:.1} us",
        reset_lat.median_us, reset_lat.p99_us, reset_lat.mean_us
    );
    println!(
        "  step:  median {:.1} us, p99 {:.1} us, mean {:.1} us (fuel {fuel} per step, identical every run)",
        step_lat.median_us, step_lat.p99_us, step_lat.mean_us
    );
    println!("  2 threads: {calls_per_sec:.0} calls/s");
    println!(
        "  target: median <= 50 us per call: {}",
        if reset_lat.median_us.max(step_lat.median_us) <= 50.0 { "met" } else { "NOT met" }
    );
    let _ = std::fs::remove_dir_all(cache);
}
