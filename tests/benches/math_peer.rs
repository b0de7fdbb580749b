//! Our math verifier through the sandboxed math environment, over labelled
//! cases (`sdk/tests/data/math_cases.jsonl` and `math_cases_graders.jsonl`,
//! or the files given as arguments): throughput on one thread, and agreement
//! with the labels overall and per category. Prints one JSON line, in the
//! format of `scripts/math_verify_peer.py`, so `scripts/bench-math-verify.sh`
//! can compare the two in one run.

use std::time::Instant;

use envhub_sandbox::{LoadOptions, Sandbox, SandboxConfig};
use envhub_sdk::{Message, TaskSource};
use envhub_tests::{guest_wasm, workspace_root};
use serde_json::{Value, json};

fn main() {
    // Relative paths are taken from the workspace root (cargo runs benches
    // in the package's directory).
    let mut files: Vec<std::path::PathBuf> =
        std::env::args().skip(1).filter(|a| !a.starts_with('-')).map(|a| workspace_root().join(a)).collect();
    if files.is_empty() {
        let data = workspace_root().join("sdk/tests/data");
        files = vec![data.join("math_cases.jsonl"), data.join("math_cases_graders.jsonl")];
    }
    let mut cases: Vec<Value> = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        cases.extend(text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()));
    }
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let module = sandbox.load_file(&guest_wasm("envhub-env-math"), LoadOptions::default()).expect("load math");

    let judge = |case: &Value| -> bool {
        let task = TaskSource::Inline(json!({"question": "", "answer": case["gold"]}));
        let Ok(reset) = module.reset(task, 0, Default::default()) else { return false };
        let completion = case["completion"].as_str().unwrap_or_default();
        module
            .step(reset.state, Message::assistant(completion))
            .map(|s| s.reward.components.get("correct").copied() == Some(1.0))
            .unwrap_or(false)
    };
    // Warm up, then time several passes over the cases.
    cases.iter().take(20).for_each(|c| {
        judge(c);
    });
    let passes = 5;
    let mut agree = 0;
    let mut per_category: std::collections::BTreeMap<String, [u64; 2]> = Default::default();
    let start = Instant::now();
    for pass in 0..passes {
        for case in &cases {
            let got = judge(case);
            if pass == 0 {
                let ok = Some(got) == case["expected"].as_bool();
                agree += usize::from(ok);
                let cell = per_category.entry(case["category"].as_str().unwrap_or("").to_owned()).or_default();
                cell[0] += u64::from(ok);
                cell[1] += 1;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let n = cases.len() * passes;
    let out = json!({
        "name": "envhub (sandboxed math environment, reset+step per case)",
        "cases": cases.len(),
        "seconds": seconds,
        "per_second": n as f64 / seconds,
        "agreement": agree as f64 / cases.len().max(1) as f64,
        "per_category": per_category,
    });
    println!("{out}");
}
