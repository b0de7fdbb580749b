//! The code environment in the sandbox: the built module (`envhub build
//! environments/code`, run by `scripts/build-guests.sh`) with its manifest's
//! limits and capability, HumanEval as `/data`, programs run through
//! `run_code`. Every canonical HumanEval solution passes, wrong ones fail,
//! hostile policy code fails with the limit named, and the host keeps serving.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use envhub_sandbox::EnvModule;
use envhub_sdk::{Message, StepResponse, TaskSource};
use serde_json::{Map, Value, json};

fn env_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../environments/code")
}

fn module() -> &'static EnvModule {
    static MODULE: OnceLock<EnvModule> = OnceLock::new();
    MODULE.get_or_init(|| {
        let data = env_dir().join("data");
        assert!(data.join("humaneval.idx").is_file(), "run scripts/fetch-python.sh first");
        let (manifest, module) =
            envhub_tests::load_env(&envhub_tests::test_sandbox(), &env_dir(), "envhub-env-code", Some(data));
        assert_eq!(manifest.package.capabilities, vec!["code:python".to_owned()]);
        module
    })
}

fn humaneval(index: u64) -> TaskSource {
    TaskSource::Split { split: "humaneval".into(), index }
}

fn play(source: TaskSource, config: Value, completion: &str) -> StepResponse {
    let config: Map<String, Value> = config.as_object().cloned().unwrap_or_default();
    let reset = module().reset(source, 0, config).expect("reset");
    module().step(reset.state, Message::assistant(completion)).expect("step")
}

fn inline(prompt: &str, test: &str, entry_point: &str) -> TaskSource {
    TaskSource::Inline(json!({"prompt": prompt, "test": test, "entry_point": entry_point}))
}

const ADD_PROMPT: &str = "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n";
const ADD_TEST: &str = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(0, 0) == 0\n    assert candidate(-1, 1) == 0\n";

fn still_serving() {
    let step = play(inline(ADD_PROMPT, ADD_TEST, "add"), json!({}), "    return a + b\n");
    assert_eq!(step.reward.total, 1.0, "{:?}", step.metrics);
}

#[test]
fn every_canonical_humaneval_solution_passes() {
    let info = module().info().expect("info");
    assert_eq!(info.splits.get("humaneval"), Some(&Some(164)));
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut most_fuel = 0;
    for index in 0..164 {
        let reference = module().validate(humaneval(index)).expect("validate").actions;
        let step = play(humaneval(index), json!({}), reference[0].text());
        most_fuel = most_fuel.max(step.metrics["fuel_used"].as_u64().unwrap_or(0));
        if step.reward.total != 1.0 || step.reward.components["pass_rate"] != 1.0 {
            failures.push((index, step.metrics));
        }
    }
    let elapsed = start.elapsed();
    println!(
        "164 canonical HumanEval solutions through the sandboxed env in {elapsed:.1?} ({:.1} ms per check), most fuel {most_fuel}",
        elapsed.as_secs_f64() * 1000.0 / 164.0
    );
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn wrong_solutions_fail() {
    // HumanEval/0 has_close_elements: always False passes some asserts only.
    let step = play(humaneval(0), json!({}), "    return False\n");
    assert_eq!(step.reward.total, 0.0);
    let rate = step.reward.components["pass_rate"];
    assert!(rate > 0.0 && rate < 1.0, "{rate}");
    // A syntax error, a missing function, an exception, prose only.
    for completion in [
        "```python\ndef has_close_elements(numbers, threshold)\n    return True\n```",
        "```python\ndef something_else():\n    return 1\n```",
        "    raise RuntimeError('no')\n",
        "I don't know.",
    ] {
        let step = play(humaneval(0), json!({}), completion);
        assert_eq!((step.reward.total, step.reward.components["pass_rate"]), (0.0, 0.0), "{completion}");
    }
    // Whole functions in a fenced block pass, as do bodies.
    let whole = "Sure:\n```python\ndef has_close_elements(numbers, threshold):\n    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n```";
    assert_eq!(play(humaneval(0), json!({}), whole).reward.total, 1.0);
}

#[test]
fn stdin_stdout_tasks() {
    for index in 0..5 {
        let source = TaskSource::Split { split: "stdio".into(), index };
        let reference = module().validate(source.clone()).expect("validate").actions;
        let step = play(source, json!({}), reference[0].text());
        assert_eq!(step.reward.total, 1.0, "stdio/{index}: {:?}", step.metrics);
    }
    let task = json!({"question": "Print the double of n.", "tests": [
        {"input": "2\n", "output": "4\n"}, {"input": "0\n", "output": "0"}, {"input": "-3\n", "output": "-6  \n\n"}]});
    let step = play(TaskSource::Inline(task.clone()), json!({}), "```python\nprint(int(input()) * 2)\n```");
    assert_eq!(step.reward.total, 1.0, "{:?}", step.metrics);
    let step = play(TaskSource::Inline(task), json!({}), "```python\nprint(abs(int(input())) * 2)\n```");
    assert_eq!((step.reward.total, step.reward.components["pass_rate"]), (0.0, 2.0 / 3.0));
}

#[test]
fn hostile_policy_code_fails_with_the_limit_named() {
    let cases = [
        ("    while True:\n        pass\n", "fuel"),
        ("    x = bytearray(1 << 30)\n    return a + b\n", "memory"),
        ("    s = []\n    while True:\n        s.append(bytearray(1 << 22))\n", "memory"),
        ("    while True:\n        print('flood' * 100)\n", "output"),
        (
            "    import sys\n    sys.setrecursionlimit(10**8)\n    def f(n):\n        return f(n + 1)\n    return f(0)\n",
            "",
        ),
    ];
    for (completion, limit) in cases {
        let step = play(inline(ADD_PROMPT, ADD_TEST, "add"), json!({}), completion);
        assert_eq!(step.reward.total, 0.0, "{completion}");
        let got = step.metrics["limit"].as_str().unwrap_or("");
        if limit.is_empty() {
            assert_ne!(got, "none", "{completion}: {:?}", step.metrics);
        } else {
            assert_eq!(got, limit, "{completion}: {:?}", step.metrics);
        }
        still_serving();
    }
    // Recursion bombs within Python's limit, file writes outside the work
    // directory and network access fail the tests, without any effect.
    let marker = format!("envhub-code-env-escape-{}", std::process::id());
    for completion in [
        "    def f(n):\n        return f(n + 1)\n    return f(0)\n".to_owned(),
        format!("    open('/tmp/{marker}', 'w').write('x')\n    return a + b\n"),
        format!("    open('../{marker}', 'w').write('x')\n    return a + b\n"),
        "    open('/data/humaneval.jsonl', 'w').write('x')\n    return a + b\n".to_owned(),
        "    import socket\n    socket.create_connection(('127.0.0.1', 80))\n    return a + b\n".to_owned(),
        "    import subprocess\n    subprocess.run(['rm', '-rf', '/'])\n    return a + b\n".to_owned(),
    ] {
        let step = play(inline(ADD_PROMPT, ADD_TEST, "add"), json!({}), &completion);
        assert_eq!(step.reward.total, 0.0, "{completion}: {:?}", step.metrics);
        assert_eq!(step.metrics["limit"], "none");
    }
    for dir in [std::env::temp_dir(), std::env::current_dir().expect("cwd")] {
        assert!(!dir.join(&marker).exists());
    }
    assert!(env_dir().join("data/humaneval.jsonl").metadata().expect("data").len() > 100_000);
    still_serving();
}

#[test]
fn fix_mode_shows_the_failing_test() {
    let config = json!({"mode": "fix", "max_turns": 3});
    let reset = module().reset(inline(ADD_PROMPT, ADD_TEST, "add"), 0, config.as_object().cloned().unwrap_or_default());
    let mut state = reset.expect("reset").state;
    let first =
        module().step(state, Message::assistant("```python\ndef add(a, b):\n    return a - b\n```")).expect("step");
    assert!(!first.done);
    assert_eq!(first.reward.total, 0.0);
    let feedback = first.messages[0].text();
    assert!(feedback.contains("assert candidate(1, 2) == 3") && feedback.contains("returned: -1"), "{feedback}");
    state = first.state;
    let second =
        module().step(state, Message::assistant("```python\ndef add(a, b):\n    return a + b\n```")).expect("step");
    assert!(second.done && second.messages.is_empty());
    assert_eq!(second.reward.total, 1.0);
    assert_eq!(second.metrics["turn"], 2);
    // Out of attempts.
    let mut state =
        module().reset(humaneval(2), 0, config.as_object().cloned().unwrap_or_default()).expect("reset").state;
    for turn in 1..=3 {
        let step = module().step(state, Message::assistant("    return -1\n")).expect("step");
        assert_eq!(step.done, turn == 3);
        state = step.state;
    }
    assert!(module().step(state, Message::assistant("x")).is_err());
}

#[test]
fn scoring_is_deterministic() {
    let reset = module().reset(humaneval(10), 7, Map::new()).expect("reset");
    let request = serde_json::to_vec(&envhub_sdk::Envelope::new(envhub_sdk::Request::Step(envhub_sdk::StepRequest {
        state: reset.state,
        action: Message::assistant("    return string + string[::-1]\n"),
    })))
    .expect("encode");
    let a = module().call_raw(&request).expect("call");
    let b = module().call_raw(&request).expect("call");
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.fuel_used, b.fuel_used);
}
