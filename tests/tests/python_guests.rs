//! Python environments in the sandbox: the protocol through the guest SDK,
//! determinism, the RNG shared with Rust, host functions, isolation between
//! packages, and hostile environments ending in typed errors while the host
//! serves on.

use envhub_sandbox::{EnvModule, SandboxError};
use envhub_sdk::{Message, TaskSource};
use envhub_tests::{python_package, test_sandbox};
use serde_json::{Value, json};

const LIMITS: &str = "fuel = 2000000000\nmemory_bytes = 268435456";

fn load(name: &str, env_py: &str, extra: &str) -> Result<EnvModule, SandboxError> {
    let data_root = tempfile::tempdir().expect("tempdir").keep();
    test_sandbox().load_package(&python_package(name, env_py, extra, LIMITS, &[]), &data_root)
}

const ECHO: &str = r#"
import envhub, random, time, os

class Echo(envhub.SingleTurn):
    name = "test/echo"
    version = "0.1.0"
    description = "repeat a word"
    splits = {"train": None, "test": 5}
    components = {"correct": 1.0}

    def task(self, split, index, rng):
        return {"word": rng.choice(["cat", "dog", "emu"])}

    def prompt(self, task):
        return "Repeat " + task["word"]

    def score(self, task, completion):
        seen = {"b", "a", "c", completion}
        noise = {
            "hash": hash("abc"),
            "set": list(seen),
            "random": random.random(),
            "urandom": os.urandom(4).hex(),
            "time": time.time(),
            "dict": list({"z": 1, "a": 2}),
        }
        return {"correct": float(completion.strip() == task["word"])}, noise

    def reference(self, task):
        return task["word"]
"#;

#[test]
fn the_protocol_through_the_python_sdk() {
    let env = load("test/echo", ECHO, "").expect("load");
    let info = env.info().expect("info");
    assert_eq!((info.name.as_str(), info.max_turns), ("test/echo", 1));
    assert_eq!(info.splits.get("test"), Some(&Some(5)));
    let reset = env.reset(TaskSource::Split { split: "test".into(), index: 2 }, 0, Default::default()).expect("reset");
    assert_eq!(reset.task_id, "test/2");
    let word = reset.state["task"]["word"].as_str().expect("word").to_owned();
    let step = env.step(reset.state.clone(), Message::assistant(word.clone())).expect("step");
    assert!(step.done && step.reward.total == 1.0);
    let again = env.step(step.state, Message::assistant(word));
    assert!(matches!(again, Err(SandboxError::Guest(e)) if e.kind == envhub_sdk::ErrorKind::EpisodeOver));
    let out = env.reset(TaskSource::Split { split: "test".into(), index: 9 }, 0, Default::default());
    assert!(matches!(out, Err(SandboxError::Guest(e)) if e.kind == envhub_sdk::ErrorKind::IndexOutOfRange));
    let inline = env.reset(TaskSource::Inline(json!({"word": "owl"})), 0, Default::default()).expect("inline");
    assert!(inline.task_id.starts_with("inline/"));
    let validate = env.validate(TaskSource::Split { split: "train".into(), index: 7 }).expect("validate");
    assert_eq!(validate.actions.len(), 1);
    let weights = serde_json::from_value(json!({"weights": {"nope": 1}})).expect("map");
    let bad = env.reset(TaskSource::Split { split: "test".into(), index: 0 }, 0, weights);
    assert!(matches!(bad, Err(SandboxError::Guest(e)) if e.message.contains("unknown component `nope`")));
}

#[test]
fn every_call_is_deterministic_with_random_hash_sets_and_clocks() {
    let env = load("test/echo-det", ECHO, "").expect("load");
    let other = load("test/echo-det", ECHO, "").expect("load again");
    let reset = env.reset(TaskSource::Split { split: "train".into(), index: 3 }, 0, Default::default()).expect("reset");
    let request = serde_json::to_vec(&json!({
        "v": 1, "op": "step", "state": reset.state, "action": {"role": "assistant", "content": "dog"}
    }))
    .expect("request");
    let a = env.call_raw(&request).expect("a");
    let b = env.call_raw(&request).expect("b");
    let c = other.call_raw(&request).expect("c");
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.stdout, c.stdout);
    assert_eq!((a.fuel_used, a.fuel_used), (b.fuel_used, c.fuel_used));
    let metrics: Value = serde_json::from_slice::<Value>(&a.stdout).expect("json")["ok"]["metrics"].clone();
    assert_eq!(metrics["time"], json!(946684800.0), "the wall clock is fixed");
}

#[test]
fn python_and_rust_draw_the_same_stream_from_the_same_seed() {
    let env_py = r#"
import envhub

class Draws(envhub.SingleTurn):
    name = "test/draws"
    version = "0.1.0"
    description = "rng draws"
    splits = {"train": None}
    components = {"x": 1.0}

    def task(self, split, index, rng):
        items = list(range(10))
        rng.shuffle(items)
        return {
            "u64": [str(rng.next_u64()) for _ in range(3)],
            "below": [rng.below(1000) for _ in range(5)],
            "randint": [rng.randint(-5, 5) for _ in range(5)],
            "shuffle": items,
            "random": rng.random(),
            "fixed": [str(envhub.Rng(0).next_u64()), str(envhub.Rng.derive(7, [b"a", b"bc"]).next_u64())],
        }

    def prompt(self, task):
        return "draw"

    def score(self, task, completion):
        return {"x": 0.0}
"#;
    let env = load("test/draws", env_py, "").expect("load");
    let reset =
        env.reset(TaskSource::Split { split: "train".into(), index: 42 }, 0, Default::default()).expect("reset");
    let task = &reset.state["task"];
    let mut rng = envhub_sdk::Rng::for_task("train", 42);
    let mut items: Vec<u64> = (0..10).collect();
    rng.shuffle(&mut items);
    let u64s: Vec<String> = (0..3).map(|_| rng.next_u64().to_string()).collect();
    let below: Vec<u64> = (0..5).map(|_| rng.below(1000)).collect();
    let randint: Vec<i64> = (0..5).map(|_| rng.range_i64(-5, 5)).collect();
    assert_eq!(task["shuffle"], json!(items));
    assert_eq!(task["u64"], json!(u64s));
    assert_eq!(task["below"], json!(below));
    assert_eq!(task["randint"], json!(randint));
    assert_eq!(task["random"], json!(rng.unit_f64()));
    let fixed = [
        envhub_sdk::Rng::new(0).next_u64().to_string(),
        envhub_sdk::Rng::derive(7, &[b"a", b"bc"]).next_u64().to_string(),
    ];
    assert_eq!(task["fixed"], json!(fixed));
}

fn env_with_score(body: &str, extra: &str) -> Result<EnvModule, SandboxError> {
    let env_py = format!(
        r#"
import envhub

class Hostile(envhub.SingleTurn):
    name = "test/hostile"
    version = "0.1.0"
    description = "misbehaves when scoring"
    splits = {{"train": None}}
    components = {{"correct": 1.0}}

    def task(self, split, index, rng):
        return {{}}

    def prompt(self, task):
        return "go"

    def score(self, task, completion):
{body}
        return {{"correct": 1.0}}
"#
    );
    load("test/hostile", &env_py, extra)
}

fn score_with(env: &EnvModule) -> Result<envhub_sandbox::Scored, SandboxError> {
    env.score(json!({}), "x", 0, Default::default())
}

#[test]
fn hostile_python_environments_end_in_typed_errors_and_the_host_serves_on() {
    let cases: &[(&str, &str)] = &[
        ("        while True: pass", "out_of_fuel"),
        ("        x = [bytearray(1 << 20) for _ in range(10000)]", "memory_limit"),
        ("        def f(n): return f(n + 1)\n        f(0)", "stack_overflow"),
        ("        open('/etc/passwd').read()", "guest_panic"),
        ("        open('/env/new.txt', 'w').write('x')", "guest_panic"),
        // The working directory is /work, empty and read-only for calls.
        ("        open('scratch.txt', 'w').write('x')", "guest_panic"),
        ("        import socket\n        socket.socket().connect(('127.0.0.1', 80))", "guest_panic"),
        ("        import subprocess\n        subprocess.run(['ls'])", "guest_panic"),
        ("        import ctypes", "guest_panic"),
        ("        print('x' * 100_000_000)", "output_too_large"),
        ("        import sys\n        sys.exit(3)", "guest_exit"),
        ("        return {'correct': float('nan')}", "guest_panic"),
    ];
    for (body, kind) in cases {
        let env = env_with_score(body, "").expect("load");
        let err = score_with(&env).expect_err(body);
        assert_eq!(err.kind(), *kind, "{body}: {err}");
        // The same sandbox keeps serving.
        let good = env_with_score("        pass", "").expect("load good");
        assert_eq!(score_with(&good).expect("good").reward.total, 1.0);
    }
}

#[test]
fn a_missing_import_fails_the_load_with_the_reason() {
    let err = load("test/broken", "import no_such_module\n", "").map(|_| ()).expect_err("broken");
    assert!(matches!(err, SandboxError::InvalidModule(ref m) if m.contains("no_such_module")), "{err}");
    let err = load("test/empty", "x = 1\n", "").map(|_| ()).expect_err("no class");
    assert!(err.to_string().contains("exactly one envhub.SingleTurn"), "{err}");
}

#[test]
fn host_functions_grade_with_envhubs_verifiers_when_declared() {
    let body = "        v = envhub.verify_math('\\\\frac{1}{2}', completion)\n        return {'correct': float(v['correct'])}, {'extracted': v['extracted']}";
    let env = env_with_score(body, "capabilities = [\"verify:math\"]").expect("load");
    let yes = env.score(json!({}), "so \\boxed{0.5}", 0, Default::default()).expect("score");
    assert_eq!(yes.reward.total, 1.0);
    assert_eq!(yes.metrics["extracted"], json!("0.5"));
    let no = env.score(json!({}), "so \\boxed{0.6}", 0, Default::default()).expect("score");
    assert_eq!(no.reward.total, 0.0);
    let undeclared = env_with_score(body, "").expect("load");
    let err = score_with(&undeclared).expect_err("undeclared");
    assert!(
        matches!(err, SandboxError::UndeclaredCapability { ref capability, .. } if capability == "verify:math"),
        "{err}"
    );
}

#[test]
fn packages_do_not_see_each_other_and_read_their_own_data() {
    let env_py = |value: &str| {
        format!(
            r#"
import envhub
SECRET = "{value}"

class Env(envhub.SingleTurn):
    name = "test/iso"
    version = "0.1.0"
    description = "isolation"
    splits = {{"train": None}}
    components = {{"correct": 1.0}}

    def task(self, split, index, rng):
        import sys
        return {{"secret": SECRET, "data": open("/data/hello.txt").read(), "mods": sorted(m for m in sys.modules if m.startswith("env"))}}

    def prompt(self, task):
        return "x"

    def score(self, task, completion):
        return {{"correct": 1.0}}
"#
        )
    };
    let sandbox = test_sandbox();
    let root = tempfile::tempdir().expect("tempdir");
    let a = python_package("test/iso-a", &env_py("alpha"), "", LIMITS, &[("hello.txt", "from a")]);
    let b = python_package("test/iso-b", &env_py("beta"), "", LIMITS, &[("hello.txt", "from b")]);
    let ea = sandbox.load_package(&a, root.path()).expect("a");
    let eb = sandbox.load_package(&b, root.path()).expect("b");
    let src = || TaskSource::Split { split: "train".into(), index: 0 };
    let ta = ea.reset(src(), 0, Default::default()).expect("a").state["task"].clone();
    let tb = eb.reset(src(), 0, Default::default()).expect("b").state["task"].clone();
    assert_eq!((ta["secret"].clone(), ta["data"].clone()), (json!("alpha"), json!("from a")));
    assert_eq!((tb["secret"].clone(), tb["data"].clone()), (json!("beta"), json!("from b")));
}

#[test]
fn packages_for_another_runtime_build_are_refused() {
    let mut package = python_package("test/old", ECHO, "", LIMITS, &[]);
    package.manifest.package.runtime_sha256 = Some("0".repeat(64));
    let err = test_sandbox()
        .load_package(&package, tempfile::tempdir().expect("tmp").path())
        .map(|_| ())
        .expect_err("refused");
    assert!(err.to_string().contains("rebuild it"), "{err}");
}
