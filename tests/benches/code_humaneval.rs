//! Per-check latency of HumanEval through the sandboxed code environment:
//! for each of the 164 tasks, one `step` call scoring the canonical
//! solution (the environment module runs prompt + solution + tests through
//! `run_code` in a fresh nested CPython sandbox), host encoding included.
//! Also the bare interpreter start (`print('hi')` through `run_code`).
//!
//! Prints one JSON line last: `{"median_ms", "p99_ms", "mean_ms", "start_ms"}`.
//!
//! ```text
//! scripts/build-guests.sh          # the code package and python.wasm
//! cargo bench -p envhub-tests --bench code_humaneval
//! ```

use std::path::PathBuf;
use std::time::Instant;

use envhub_sdk::host::RunCode;
use envhub_sdk::{Message, TaskSource};
use envhub_tests::latency;

fn main() {
    let env_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../environments/code");
    let sandbox = envhub_tests::test_sandbox();
    let t = Instant::now();
    let (_, module) = envhub_tests::load_env(&sandbox, &env_dir, "envhub-env-code", Some(env_dir.join("data")));
    println!("load (module + python runtime, from the disk cache when warm): {:.1?}", t.elapsed());

    let mut start = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = sandbox.run_code(&RunCode::python("print('hi')")).expect("run");
        start.push(t.elapsed().as_secs_f64());
        assert!(r.success());
    }
    let start = latency(&mut start);
    let mut imports = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let r = sandbox.run_code(&RunCode::python("import ast, json")).expect("run");
        imports.push(t.elapsed().as_secs_f64());
        assert!(r.success());
    }
    let imports = latency(&mut imports);

    let mut checks = Vec::new();
    for index in 0..164 {
        let source = TaskSource::Split { split: "humaneval".into(), index };
        let reference = module.validate(source.clone()).expect("validate").actions;
        let reset = module.reset(source, 0, Default::default()).expect("reset");
        let t = Instant::now();
        let step = module.step(reset.state, Message::assistant(reference[0].text())).expect("step");
        checks.push(t.elapsed().as_secs_f64());
        assert_eq!(step.reward.total, 1.0, "HumanEval/{index}");
    }
    let l = latency(&mut checks);
    println!(
        "interpreter start (print('hi') via run_code): median {:.1} ms, p99 {:.1} ms",
        start.median_us / 1e3,
        start.p99_us / 1e3
    );
    println!("start + `import ast, json` (what the check harness needs): median {:.1} ms", imports.median_us / 1e3);
    println!(
        "HumanEval check through the sandboxed env (164 canonical): median {:.1} ms, p99 {:.1} ms, mean {:.1} ms",
        l.median_us / 1e3,
        l.p99_us / 1e3,
        l.mean_us / 1e3
    );
    println!(
        "{{\"median_ms\": {:.2}, \"p99_ms\": {:.2}, \"mean_ms\": {:.2}, \"start_ms\": {:.2}}}",
        l.median_us / 1e3,
        l.p99_us / 1e3,
        l.mean_us / 1e3,
        start.median_us / 1e3
    );
}
