//! Step latency of the tools environment in the sandbox.
//!
//! Plays the reference episodes of `test` tasks (and `bfcl` tasks, from the
//! fetched data or the fixture) through the wasm module and reports the
//! median and p99 latency of one `step` call, host encoding included.
//!
//! ```text
//! cargo build --release --target wasm32-wasip1 -p envhub-env-tools
//! cargo bench -p envhub-tests --bench tools_step
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use envhub_sandbox::{EnvModule, Limits, LoadOptions, Sandbox, SandboxConfig};
use envhub_sdk::TaskSource;
use envhub_tests::guest_wasm;

const STEPS: usize = 2000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len().max(1) as u32;
    println!(
        "{what:<22} n={:<5} median={:>9.3?} p99={:>9.3?} mean={:>9.3?} max={:>9.3?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        mean,
        samples.last().copied().unwrap_or_default()
    );
}

/// Steps reference episodes of `split` until `STEPS` steps are timed.
fn bench_split(module: &EnvModule, split: &str, count: u64) -> (Vec<Duration>, Vec<Duration>) {
    let mut steps = Vec::with_capacity(STEPS);
    let mut resets = Vec::new();
    let mut index = 0;
    while steps.len() < STEPS {
        let source = TaskSource::Split { split: split.to_owned(), index: index % count };
        index += 1;
        let actions = module.validate(source.clone()).expect("validate").actions;
        let t = Instant::now();
        let mut state = module.reset(source, 0, Default::default()).expect("reset").state;
        resets.push(t.elapsed());
        for action in actions {
            let t = Instant::now();
            let r = module.step(state, action).expect("step");
            steps.push(t.elapsed());
            state = r.state;
        }
    }
    steps.truncate(STEPS);
    (steps, resets)
}

fn main() {
    let env_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../environments/tools");
    let real = env_dir.join("data");
    let (data, which): (PathBuf, &str) = if real.join("bfcl/index.txt").is_file() {
        (real, "fetched BFCL data")
    } else {
        (env_dir.join("tests/fixtures/data"), "BFCL fixture")
    };
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let options = LoadOptions { limits: Limits::default(), capabilities: vec![], data_dir: Some(data) };
    let module = sandbox.load_file(&guest_wasm("envhub-env-tools"), options).expect("load module");
    let info = module.info().expect("info");
    let bfcl = info.splits.get("bfcl").copied().flatten().unwrap_or(0);
    println!("tools_step: {STEPS} steps per split; bfcl from {which} ({bfcl} tasks)");

    // Warm up (compilation is cached per sandbox).
    let _ = bench_split(&module, "test", 5);

    let (steps, resets) = bench_split(&module, "test", 200);
    report("test step", steps);
    report("test reset", resets);
    if bfcl > 0 {
        let (steps, resets) = bench_split(&module, "bfcl", bfcl);
        report("bfcl step", steps);
        report("bfcl reset", resets);
    }
}
