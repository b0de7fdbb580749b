//! The tools environment in the sandbox: the built module, loaded with the
//! limits of its manifest and the BFCL fixture as `/data`, plays reference
//! episodes to full reward.

use std::path::PathBuf;

use envhub_sandbox::EnvModule;
use envhub_sdk::{Envelope, Request, TaskSource};

/// `environments/tools`, found from this crate's own manifest directory
/// (`workspace_root()` may come from a lib built in another checkout that
/// shares the target directory).
fn env_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../environments/tools")
}

fn load(data_dir: Option<PathBuf>) -> EnvModule {
    let (manifest, module) =
        envhub_tests::load_env(&envhub_tests::test_sandbox(), &env_dir(), "envhub-env-tools", data_dir);
    assert_eq!(manifest.package.name.to_string(), "envhub/tools");
    module
}

fn play_reference(module: &EnvModule, source: TaskSource, max_reward: f64) -> u64 {
    let actions = module.validate(source.clone()).expect("validate").actions;
    let mut state = module.reset(source.clone(), 0, Default::default()).expect("reset").state;
    let mut fuel = 0;
    for (i, action) in actions.iter().enumerate() {
        let request = serde_json::to_vec(&Envelope::new(Request::Step(envhub_sdk::StepRequest {
            state: state.clone(),
            action: action.clone(),
        })))
        .expect("encode");
        let out = module.call_raw(&request).expect("step runs");
        fuel = fuel.max(out.fuel_used);
        let step: envhub_sdk::StepResponse = envhub_sandbox::decode(&out.stdout).expect("step ok");
        assert_eq!(step.done, i + 1 == actions.len(), "{source:?} step {i}");
        if step.done {
            assert!((step.reward.total - max_reward).abs() < 1e-12, "{source:?}: {:?}", step.reward);
        }
        state = step.state;
    }
    fuel
}

#[test]
fn reference_episodes_reach_full_reward_in_the_sandbox() {
    let module = load(Some(env_dir().join("tests/fixtures/data")));
    let info = module.info().expect("info");
    assert_eq!(info.splits.get("bfcl"), Some(&Some(6)));
    let max = info.max_reward();
    let mut most_fuel = 0;
    for index in 0..20 {
        most_fuel = most_fuel.max(play_reference(&module, TaskSource::Split { split: "test".into(), index }, max));
    }
    for index in 0..6 {
        most_fuel = most_fuel.max(play_reference(&module, TaskSource::Split { split: "bfcl".into(), index }, max));
    }
    eprintln!("most fuel used by one step: {most_fuel}");
    assert!(most_fuel < module.limits().fuel / 10, "steps use {most_fuel} fuel");
}

#[test]
fn same_request_same_bytes_and_no_bfcl_without_data() {
    let module = load(None);
    let info = module.info().expect("info");
    assert!(!info.splits.contains_key("bfcl"));
    let req = br#"{"v":1,"op":"reset","split":"train","index":42,"seed":1}"#;
    let a = module.call_raw(req).expect("call").stdout;
    let b = module.call_raw(req).expect("call").stdout;
    assert_eq!(a, b);
    // The sandboxed module answers exactly as the native build does.
    let native = envhub_sdk::guest::handle(&envhub_env_tools::ToolsEnv::new("/nonexistent"), req);
    assert_eq!(a, native);
}
