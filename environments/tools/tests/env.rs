//! The tools environment through the protocol: JSON requests into
//! `envhub_sdk::guest::handle`, JSON responses out.

use std::path::PathBuf;

use envhub_env_tools::ToolsEnv;
use envhub_sdk::guest::handle;
use envhub_sdk::rng::Rng;
use serde_json::{Value, json};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data")
}

fn env() -> ToolsEnv {
    ToolsEnv::new(fixture_dir())
}

fn raw(env: &ToolsEnv, req: &Value) -> Vec<u8> {
    handle(env, req.to_string().as_bytes())
}

fn call(env: &ToolsEnv, req: Value) -> Value {
    let out: Value = serde_json::from_slice(&raw(env, &req)).expect("response is JSON");
    out
}

fn ok(env: &ToolsEnv, req: Value) -> Value {
    let out = call(env, req.clone());
    match out.get("ok") {
        Some(v) => v.clone(),
        None => panic!("request {req} failed: {out}"),
    }
}

fn reset(env: &ToolsEnv, source: Value) -> Value {
    let mut req = json!({"v": 1, "op": "reset", "seed": 0});
    if let (Some(r), Some(s)) = (req.as_object_mut(), source.as_object()) {
        r.extend(s.clone());
    }
    ok(env, req)
}

fn step(env: &ToolsEnv, state: &Value, action: Value) -> Value {
    ok(env, json!({"v": 1, "op": "step", "state": state, "action": action}))
}

fn tool_call(id: &str, name: &str, args: Value) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}})
}

fn calls(list: Vec<Value>) -> Value {
    json!({"role": "assistant", "tool_calls": list})
}

fn answer(text: &str) -> Value {
    json!({"role": "assistant", "content": text})
}

/// Plays `actions` from reset; returns every step response.
fn play(env: &ToolsEnv, source: Value, actions: &[Value]) -> Vec<Value> {
    let mut state = reset(env, source)["state"].clone();
    let mut out = Vec::new();
    for a in actions {
        let r = step(env, &state, a.clone());
        state = r["state"].clone();
        out.push(r);
    }
    out
}

fn max_reward(env: &ToolsEnv) -> f64 {
    let info = ok(env, json!({"v": 1, "op": "info"}));
    info["reward_components"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["weight"].as_f64()).filter(|w| *w > 0.0).sum())
        .unwrap_or(0.0)
}

/// A small booking world: the inline task used by the scripted episodes.
fn booking_task() -> Value {
    json!({"task": {
        "instruction": "Book the cheapest room for 2 guests on day 5 for 2 nights under \"Ada Lovelace\" and save the confirmation id to /notes/booking.txt.",
        "world": {
            "hotel": {"rooms": [
                {"id": "R1", "capacity": 2, "base_price": 100},
                {"id": "R2", "capacity": 4, "base_price": 80},
                {"id": "R3", "capacity": 1, "base_price": 40}
            ], "bookings": [
                {"id": "BK1001", "room_id": "R2", "guest": "Bob", "day": 6, "nights": 1, "guests": 1, "total_price": 100, "status": "active"}
            ]},
            "fs": {"dirs": ["/notes"]}
        },
        "goals": [{"type": "booking_active", "room_id": "R1", "guest": "Ada Lovelace", "day": 5, "nights": 2, "guests": 2, "id_file": "/notes/booking.txt"}],
        "min_turns": 4
    }})
}

fn booking_script() -> Vec<Value> {
    vec![
        calls(vec![tool_call("a", "booking_search", json!({"day": 5, "nights": 2, "guests": 2}))]),
        calls(vec![tool_call(
            "b",
            "booking_book",
            json!({"room_id": "R1", "guest_name": "Ada Lovelace", "day": 5, "nights": 2, "guests": 2}),
        )]),
        calls(vec![tool_call("c", "fs_write", json!({"path": "/notes/booking.txt", "content": "BK1002"}))]),
        answer("Booked."),
    ]
}

#[test]
fn info_lists_splits_tools_and_components() {
    let info = ok(&env(), json!({"v": 1, "op": "info"}));
    assert_eq!(info["name"], json!("envhub/tools"));
    assert_eq!(info["splits"], json!({"bfcl": 6, "test": 200, "train": null}));
    assert_eq!(info["max_turns"], json!(8));
    let names: Vec<&str> =
        info["tools"].as_array().expect("tools").iter().filter_map(|t| t["function"]["name"].as_str()).collect();
    for t in [
        "calculator",
        "db_query",
        "db_insert",
        "db_update",
        "fs_list",
        "fs_read",
        "fs_write",
        "booking_search",
        "booking_book",
        "booking_list",
        "booking_cancel",
    ] {
        assert!(names.contains(&t), "{t}");
    }
    assert!((max_reward(&env()) - 1.1).abs() < 1e-12);
}

#[test]
fn bfcl_split_is_absent_without_data() {
    let bare = ToolsEnv::new("/nonexistent-data-dir");
    let info = ok(&bare, json!({"v": 1, "op": "info"}));
    assert!(info["splits"].get("bfcl").is_none());
    let err = call(&bare, json!({"v": 1, "op": "reset", "split": "bfcl", "index": 0}));
    assert_eq!(err["error"]["kind"], json!("unknown_split"));
    assert!(err["error"]["message"].as_str().is_some_and(|m| m.contains("fetch-bfcl.sh")), "{err}");
}

#[test]
fn reset_gives_messages_tools_and_a_round_tripping_state() {
    let r = reset(&env(), json!({"split": "train", "index": 7}));
    assert_eq!(r["task_id"], json!("train/7"));
    assert_eq!(r["messages"][0]["role"], json!("system"));
    assert_eq!(r["messages"][1]["role"], json!("user"));
    assert_eq!(r["tools"].as_array().map(Vec::len), Some(11));
    let state: envhub_env_tools::episode::State = serde_json::from_value(r["state"].clone()).expect("state");
    assert_eq!(serde_json::to_value(&state).expect("encode"), r["state"]);
}

#[test]
fn errors_for_bad_sources() {
    let e = env();
    let err = |req: Value| call(&e, req)["error"]["kind"].clone();
    assert_eq!(err(json!({"v": 1, "op": "reset", "split": "test", "index": 200})), json!("index_out_of_range"));
    assert_eq!(err(json!({"v": 1, "op": "reset", "split": "bfcl", "index": 6})), json!("index_out_of_range"));
    assert_eq!(err(json!({"v": 1, "op": "reset", "split": "dev", "index": 0})), json!("unknown_split"));
    assert_eq!(err(json!({"v": 1, "op": "reset", "task": {"goals": []}})), json!("invalid_task"));
    assert_eq!(err(json!({"v": 1, "op": "step", "state": {"x": 1}, "action": answer("hi")})), json!("invalid_state"));
    assert_eq!(
        err(json!({"v": 1, "op": "reset", "split": "train", "index": 0, "config": {"weights": {"nope": 1}}})),
        json!("bad_request")
    );
}

#[test]
fn scripted_booking_episode_earns_full_reward() {
    let e = env();
    let steps = play(&e, booking_task(), &booking_script());
    // Search: R1 (2 nights from day 5: 100 + 125) and R2 is taken on day 6; R3 is too small.
    let search: Value =
        serde_json::from_str(steps[0]["messages"][0]["content"].as_str().expect("content")).expect("json");
    assert_eq!(search["rooms"], json!([{"room_id": "R1", "capacity": 2, "total_price": 225}]));
    assert_eq!(steps[0]["messages"][0]["tool_call_id"], json!("a"));
    assert_eq!(steps[0]["messages"][0]["name"], json!("booking_search"));
    assert_eq!(steps[0]["done"], json!(false));
    let book: Value =
        serde_json::from_str(steps[1]["messages"][0]["content"].as_str().expect("content")).expect("json");
    assert_eq!(book["confirmation_id"], json!("BK1002"));
    let last = &steps[3];
    assert_eq!(last["done"], json!(true));
    assert_eq!(last["reward"]["components"], json!({"success": 1.0, "valid_call_rate": 1.0, "efficiency": 1.0}));
    assert!((last["reward"]["total"].as_f64().expect("total") - max_reward(&e)).abs() < 1e-12);
    assert_eq!(last["metrics"]["tools"]["booking_book"], json!({"calls": 1, "errors": 0}));
    // Stepping a finished episode is an error.
    let again = call(&e, json!({"v": 1, "op": "step", "state": last["state"], "action": answer("x")}));
    assert_eq!(again["error"]["kind"], json!("episode_over"));
}

#[test]
fn failing_episode_scores_zero() {
    let e = env();
    // Books the wrong room size and never writes the file.
    let steps = play(
        &e,
        booking_task(),
        &[
            calls(vec![tool_call(
                "a",
                "booking_book",
                json!({"room_id": "R2", "guest_name": "Ada Lovelace", "day": 7, "nights": 1, "guests": 2}),
            )]),
            answer("Booked."),
        ],
    );
    let last = &steps[1];
    assert_eq!(last["done"], json!(true));
    assert_eq!(last["reward"]["components"]["success"], json!(0.0));
    assert_eq!(last["reward"]["components"]["efficiency"], json!(0.0));
    assert_eq!(last["reward"]["total"], json!(0.0));
    assert_eq!(last["metrics"]["goals_met"], json!(0));
}

#[test]
fn extra_turns_lower_efficiency_only() {
    let e = env();
    let mut script = booking_script();
    script.insert(0, calls(vec![tool_call("z", "fs_list", json!({"path": "/"}))]));
    let steps = play(&e, booking_task(), &script);
    let last = steps.last().expect("steps");
    assert_eq!(last["reward"]["components"]["success"], json!(1.0));
    assert_eq!(last["reward"]["components"]["efficiency"], json!(0.8));
    assert!((last["reward"]["total"].as_f64().expect("total") - 1.08).abs() < 1e-12);
}

#[test]
fn config_weights_apply() {
    let e = env();
    let mut state = ok(
        &e,
        json!({"v": 1, "op": "reset", "task": booking_task()["task"], "config": {"weights": {"efficiency": 0.0, "valid_call_rate": 0.5}}}),
    )["state"]
        .clone();
    let mut last = Value::Null;
    for a in booking_script() {
        last = step(&e, &state, a);
        state = last["state"].clone();
    }
    assert_eq!(last["reward"]["total"], json!(1.5));
}

fn tool_error(msg: &Value) -> String {
    let content: Value = serde_json::from_str(msg["content"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
    content["error"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn malformed_calls_come_back_as_tool_messages() {
    let e = env();
    let state = reset(&e, booking_task())["state"].clone();
    let action = json!({"role": "assistant", "tool_calls": [
        tool_call("u", "teleport", json!({})),
        {"id": "j", "type": "function", "function": {"name": "calculator", "arguments": "{\"expression\": "}},
        tool_call("s", "calculator", json!({"expr": "1+1"})),
        tool_call("r", "booking_book", json!({"room_id": "R3", "guest_name": "Ada", "day": 5, "nights": 1, "guests": 2})),
        tool_call("z", "calculator", json!({"expression": "1/0"})),
        tool_call("p", "fs_read", json!({"path": "../etc/passwd"}))
    ]});
    let r = step(&e, &state, action);
    assert_eq!(r["done"], json!(false));
    let msgs = r["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 6);
    let ids: Vec<&str> = msgs.iter().filter_map(|m| m["tool_call_id"].as_str()).collect();
    assert_eq!(ids, ["u", "j", "s", "r", "z", "p"]);
    assert!(msgs.iter().all(|m| m["role"] == json!("tool")));
    assert!(tool_error(&msgs[0]).contains("unknown tool `teleport`"), "{}", tool_error(&msgs[0]));
    assert!(tool_error(&msgs[1]).contains("not valid JSON"), "{}", tool_error(&msgs[1]));
    assert!(tool_error(&msgs[2]).contains("invalid arguments for `calculator`"), "{}", tool_error(&msgs[2]));
    assert!(tool_error(&msgs[3]).contains("holds 1 to 1 guests"), "{}", tool_error(&msgs[3]));
    assert!(tool_error(&msgs[4]).contains("division by zero"), "{}", tool_error(&msgs[4]));
    assert!(tool_error(&msgs[5]).contains("invalid path"), "{}", tool_error(&msgs[5]));
    assert_eq!(r["metrics"]["calls"], json!(6));
    assert_eq!(r["metrics"]["valid_calls"], json!(0));
    assert_eq!(r["metrics"]["tools"]["(unknown)"], json!({"calls": 1, "errors": 1}));
    assert_eq!(r["metrics"]["tools"]["calculator"], json!({"calls": 2, "errors": 2}));
}

#[test]
fn hermes_text_calls_are_parsed_and_answered() {
    let e = env();
    let task = json!({"task": {"instruction": "What is 2 + 3?", "goals": [{"type": "answer_number", "value": "5"}]}});
    let text = "Let me compute.\n<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"2 + 3\"}}\n</tool_call>";
    let steps = play(&e, task, &[json!({"role": "assistant", "content": text}), answer("5")]);
    let m = &steps[0]["messages"][0];
    assert_eq!(m["tool_call_id"], json!("call_1_0"));
    assert_eq!(m["content"], json!("{\"result\":\"5\"}"));
    assert_eq!(steps[1]["reward"]["components"]["success"], json!(1.0));
    // A broken Hermes block is a call with an error, not a final answer.
    let task = json!({"task": {"instruction": "x", "goals": [{"type": "answer_text", "value": "y"}]}});
    let steps = play(&e, task, &[json!({"role": "assistant", "content": "<tool_call>{\"name\": \"calculator\""})]);
    assert_eq!(steps[0]["done"], json!(false));
    assert!(tool_error(&steps[0]["messages"][0]).contains("unterminated"));
}

#[test]
fn episode_ends_at_max_turns() {
    let e = env();
    let actions: Vec<Value> =
        (0..8).map(|i| calls(vec![tool_call(&format!("c{i}"), "calculator", json!({"expression": "1+1"}))])).collect();
    let steps = play(&e, json!({"split": "train", "index": 0}), &actions);
    assert!(steps[..7].iter().all(|s| s["done"] == json!(false)));
    assert_eq!(steps[7]["done"], json!(true));
    assert_eq!(steps[7]["metrics"]["finish"], json!("max_turns"));
}

#[test]
fn responses_are_deterministic_and_tasks_stable() {
    let (a, b) = (env(), env());
    for req in [
        json!({"v": 1, "op": "info"}),
        json!({"v": 1, "op": "reset", "split": "train", "index": 123, "seed": 9}),
        json!({"v": 1, "op": "reset", "split": "test", "index": 5}),
        json!({"v": 1, "op": "validate", "split": "test", "index": 5}),
        json!({"v": 1, "op": "reset", "split": "bfcl", "index": 4}),
    ] {
        assert_eq!(raw(&a, &req), raw(&b, &req), "{req}");
    }
    let state = reset(&a, json!({"split": "test", "index": 5}))["state"].clone();
    let action = json!({"v": 1, "op": "step", "state": state, "action": answer("42")});
    assert_eq!(raw(&a, &action), raw(&b, &action));
    // Pinned tasks: if these change, every recorded trajectory of the split changes meaning.
    let fnv = |bytes: &[u8]| {
        bytes.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01B3))
    };
    let pinned: Vec<u64> = [("train", 0), ("train", 1), ("test", 0), ("test", 199)]
        .iter()
        .map(|(s, i)| fnv(&raw(&a, &json!({"v": 1, "op": "reset", "split": s, "index": i}))))
        .collect();
    assert_eq!(pinned, PINNED, "task generation changed: {pinned:x?}");
}

const PINNED: [u64; 4] = [0x73622e5228419e86, 0x766b5a2c1b8b47a3, 0x3d17e911d3bc258b, 0x4cbdfdf72fcd4aad];

fn validate_and_replay(e: &ToolsEnv, split: &str, count: u64) {
    let max = max_reward(e);
    for index in 0..count {
        let source = json!({"split": split, "index": index});
        let v = ok(e, json!({"v": 1, "op": "validate", "split": split, "index": index}));
        let actions = v["actions"].as_array().expect("actions").clone();
        let steps = play(e, source, &actions);
        let last = steps.last().expect("at least one action");
        assert_eq!(last["done"], json!(true), "{split}/{index}");
        assert!(steps[..steps.len() - 1].iter().all(|s| s["done"] == json!(false)), "{split}/{index}");
        let total = last["reward"]["total"].as_f64().unwrap_or(-1.0);
        assert!((total - max).abs() < 1e-12, "{split}/{index}: reward {} metrics {}", last["reward"], last["metrics"]);
    }
}

#[test]
fn references_earn_full_reward_on_train() {
    validate_and_replay(&env(), "train", 50);
}

#[test]
fn references_earn_full_reward_far_into_train() {
    let e = env();
    let max = max_reward(&e);
    for index in (0..400u64).map(|i| i * 7_919 + 1_000_000) {
        let v = ok(&e, json!({"v": 1, "op": "validate", "split": "train", "index": index}));
        let steps = play(&e, json!({"split": "train", "index": index}), v["actions"].as_array().expect("actions"));
        let total = steps.last().and_then(|s| s["reward"]["total"].as_f64()).unwrap_or(-1.0);
        assert!((total - max).abs() < 1e-12, "train/{index}");
    }
}

#[test]
fn references_earn_full_reward_on_test() {
    validate_and_replay(&env(), "test", 50);
}

#[test]
fn references_earn_full_reward_on_bfcl_fixture() {
    validate_and_replay(&env(), "bfcl", 6);
}

#[test]
fn bfcl_scores_calls_against_ground_truth() {
    let e = env();
    // parallel_0: weather in Oslo and Quito, in any order, Hermes text.
    let text = "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"quito\"}}</tool_call>\n\
                <tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"celsius\"}}</tool_call>";
    let steps = play(&e, json!({"split": "bfcl", "index": 4}), &[json!({"role": "assistant", "content": text})]);
    assert_eq!(steps[0]["done"], json!(true));
    assert_eq!(steps[0]["reward"]["components"]["success"], json!(1.0));
    // Only one of the two calls.
    let steps = play(
        &e,
        json!({"split": "bfcl", "index": 4}),
        &[calls(vec![tool_call("a", "get_weather", json!({"city": "Oslo"}))])],
    );
    assert_eq!(steps[0]["reward"]["total"], json!(0.0));
    assert!(steps[0]["metrics"]["mismatch"].as_str().is_some_and(|m| m.contains("wrong number of calls")));
    // Dotted names may be sent with underscores; BFCL types become JSON Schema.
    let r = reset(&e, json!({"split": "bfcl", "index": 0}));
    assert_eq!(r["tools"][0]["function"]["parameters"]["type"], json!("object"));
    assert_eq!(r["tools"][0]["function"]["parameters"]["properties"]["length"]["type"], json!("number"));
    let steps = play(
        &e,
        json!({"split": "bfcl", "index": 0}),
        &[calls(vec![tool_call("a", "geometry_box_volume", json!({"length": 3, "width": 4, "height": 2.5}))])],
    );
    assert_eq!(steps[0]["reward"]["components"]["success"], json!(1.0));
    // A plain-text answer makes no call.
    let steps = play(&e, json!({"split": "bfcl", "index": 0}), &[answer("30 cubic metres")]);
    assert_eq!(steps[0]["reward"]["total"], json!(0.0));
}

#[test]
fn inline_bfcl_entries_work() {
    let e = env();
    let task = json!({"task": {"bfcl": {
        "question": {"id": "mine_1", "question": [[{"role": "user", "content": "ping example.org"}]],
                     "function": [{"name": "ping", "parameters": {"type": "dict", "properties": {"host": {"type": "string"}}, "required": ["host"]}}]},
        "answer": {"id": "mine_1", "ground_truth": [{"ping": {"host": ["example.org"]}}]}
    }}});
    let v = ok(&e, json!({"v": 1, "op": "validate", "task": task["task"]}));
    let steps = play(&e, task, v["actions"].as_array().expect("actions"));
    assert_eq!(steps[0]["reward"]["components"]["success"], json!(1.0));
}

/// With the real BFCL data fetched (scripts/fetch-bfcl.sh), every entry's
/// reference earns full reward. Skipped when the data is absent.
#[test]
fn real_bfcl_references_earn_full_reward() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
    if !data.join("bfcl/index.txt").is_file() {
        eprintln!("skipped: no BFCL data in {}", data.display());
        return;
    }
    let e = ToolsEnv::new(data);
    let info = ok(&e, json!({"v": 1, "op": "info"}));
    let n = info["splits"]["bfcl"].as_u64().expect("bfcl count");
    validate_and_replay(&e, "bfcl", n);
}

#[test]
fn hostile_actions_never_panic() {
    let e = env();
    let state = reset(&e, json!({"split": "train", "index": 3}))["state"].clone();
    let mut rng = Rng::new(7);
    let pieces = [
        "<tool_call>",
        "</tool_call>",
        "{",
        "}",
        "[",
        "]",
        "\"name\"",
        ":",
        "\"calculator\"",
        "\"arguments\"",
        "\"expression\"",
        "\"1/0\"",
        ",",
        "```json\n",
        "```",
        "\u{0}",
        "é",
        "999999999999999999999999",
    ];
    for _ in 0..300 {
        let n = rng.below(12);
        let text: String = (0..n).filter_map(|_| rng.choose(&pieces).copied()).collect();
        let action = if rng.chance(0.5) {
            json!({"role": "assistant", "content": text})
        } else {
            json!({"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "db_query", "arguments": text}}]})
        };
        let out = call(&e, json!({"v": 1, "op": "step", "state": state, "action": action}));
        assert!(out.get("ok").is_some() || out.get("error").is_some(), "{out}");
    }
    for bad in [&b"not json"[..], b"{}", b"{\"v\":1,\"op\":\"step\",\"state\":null,\"action\":{}}", b"\xff\xfe"] {
        let out: Value = serde_json::from_slice(&handle(&e, bad)).expect("json");
        assert!(out.get("error").is_some());
    }
}

#[test]
fn readme_inline_example_is_a_valid_task() {
    let readme = include_str!("../README.md");
    let block = readme.split("```json").nth(1).and_then(|b| b.split("```").next()).expect("json block");
    let task: Value = serde_json::from_str(&block.replace("[...]", "[]")).expect("README example is JSON");
    let r = reset(&env(), json!({ "task": task }));
    assert_eq!(r["messages"][1]["role"], json!("user"));
}
