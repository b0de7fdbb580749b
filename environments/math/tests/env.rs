//! The math environment through the protocol, natively.

use envhub_env_math::Math;
use envhub_sdk::SingleTurnEnv;
use envhub_sdk::guest::handle;
use serde_json::{Value, json};

fn env() -> SingleTurnEnv<Math> {
    SingleTurnEnv(Math::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data")))
}

fn call(request: Value) -> Value {
    let bytes = handle(&env(), request.to_string().as_bytes());
    serde_json::from_slice(&bytes).expect("json response")
}

fn score(task: Value, completion: &str, config: Value) -> Value {
    let reset = call(json!({"v": 1, "op": "reset", "task": task, "config": config}));
    let state = reset["ok"]["state"].clone();
    assert!(!state.is_null(), "{reset}");
    call(json!({"v": 1, "op": "step", "state": state, "action": {"role": "assistant", "content": completion}}))
}

#[test]
fn info_lists_generated_and_data_splits() {
    let info = call(json!({"v": 1, "op": "info"}));
    let splits = &info["ok"]["splits"];
    assert_eq!(splits["arithmetic-easy"], Value::Null);
    assert_eq!(splits["gsm8k-sample"], json!(12));
    assert_eq!(splits["math-sample"], json!(12));
}

#[test]
fn inline_tasks_score_equivalent_answers() {
    let step = score(json!({"question": "Half?", "answer": "\\frac{1}{2}"}), "so \\boxed{0.5}", json!({}));
    assert_eq!(step["ok"]["reward"]["components"]["correct"], json!(1.0));
    assert_eq!(step["ok"]["reward"]["total"], json!(1.0));
    assert_eq!(step["ok"]["metrics"]["extracted"], json!("0.5"));
    let wrong = score(json!({"answer": "\\frac{1}{2}"}), "\\boxed{0.51}", json!({}));
    assert_eq!(wrong["ok"]["reward"]["total"], json!(0.0));
}

#[test]
fn format_weight_is_configurable() {
    let cfg = json!({"weights": {"format": 0.5}});
    let boxed = score(json!({"answer": "12"}), "\\boxed{12}", cfg.clone());
    assert_eq!(boxed["ok"]["reward"]["total"], json!(1.5));
    let plain = score(json!({"answer": "12"}), "The answer is 12", cfg);
    assert_eq!(plain["ok"]["reward"]["total"], json!(1.0));
    let bad = call(json!({"v": 1, "op": "reset", "task": {"answer": "1"}, "config": {"weights": {"style": 1}}}));
    assert_eq!(bad["error"]["kind"], json!("bad_request"), "{bad}");
}

#[test]
fn gsm8k_and_math_style_inline_tasks_are_accepted() {
    let gsm = score(json!({"question": "q", "answer": "3 + 4 = 7\n#### 7"}), "#### 7", json!({}));
    assert_eq!(gsm["ok"]["reward"]["components"]["correct"], json!(1.0));
    let m = score(json!({"problem": "p", "solution": "so \\boxed{2\\sqrt{2}}"}), "\\boxed{\\sqrt{8}}", json!({}));
    assert_eq!(m["ok"]["reward"]["components"]["correct"], json!(1.0));
}

#[test]
fn bad_inline_tasks_are_named() {
    let r = call(json!({"v": 1, "op": "reset", "task": {"question": "no answer"}}));
    assert_eq!(r["error"]["kind"], json!("invalid_task"));
    assert!(r["error"]["message"].as_str().unwrap_or("").contains("answer"), "{r}");
    let r = call(json!({"v": 1, "op": "reset", "split": "nope", "index": 0}));
    assert_eq!(r["error"]["kind"], json!("unknown_split"));
    let r = call(json!({"v": 1, "op": "reset", "split": "gsm8k-sample", "index": 12}));
    assert_eq!(r["error"]["kind"], json!("index_out_of_range"));
}

#[test]
fn reference_answers_earn_full_reward_on_every_split() {
    let info = call(json!({"v": 1, "op": "info"}));
    let splits = info["ok"]["splits"].as_object().expect("splits").clone();
    for (split, count) in splits {
        let n = count.as_u64().unwrap_or(25).min(25);
        for index in 0..n {
            let reset = call(json!({"v": 1, "op": "reset", "split": split, "index": index}));
            let validate = call(json!({"v": 1, "op": "validate", "split": split, "index": index}));
            let action = validate["ok"]["actions"][0].clone();
            let step = call(json!({"v": 1, "op": "step", "state": reset["ok"]["state"], "action": action}));
            assert_eq!(step["ok"]["reward"]["total"], json!(1.0), "{split}#{index}: {reset} {step}");
        }
    }
}

#[test]
fn tasks_are_deterministic_and_steps_are_pure() {
    let req = json!({"v": 1, "op": "reset", "split": "word-hard", "index": 3, "seed": 9}).to_string();
    assert_eq!(handle(&env(), req.as_bytes()), handle(&env(), req.as_bytes()));
    let step = score(json!({"answer": "5"}), "\\boxed{5}", json!({}));
    let again = call(
        json!({"v": 1, "op": "step", "state": step["ok"]["state"], "action": {"role": "assistant", "content": "x"}}),
    );
    assert_eq!(again["error"]["kind"], json!("episode_over"));
}
