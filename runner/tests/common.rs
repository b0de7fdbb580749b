//! Helpers shared by the runner's tests.
#![allow(dead_code)]

use std::path::PathBuf;

use envhub_runner::trajectory::{IdSource, LogprobConvention, PolicyRef, Sampling};
use envhub_runner::{Completion, EnvHandle};
use envhub_sandbox::package::Package;
use envhub_sandbox::{Sandbox, SandboxConfig};

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() { dir } else { root.join(dir) }
        }
        None => root.join("target"),
    }
}

/// The math package built by `scripts/build-guests.sh`.
pub fn math_package_path() -> PathBuf {
    let path = target_dir().join("envhub/envhub-math-0.1.0.envpkg");
    assert!(path.is_file(), "{} is missing: run scripts/build-guests.sh first", path.display());
    path
}

/// A first-party package built by `scripts/build-guests.sh` (`math`, `tools`, ...).
pub fn package_path(name: &str) -> PathBuf {
    let path = target_dir().join(format!("envhub/envhub-{name}-0.1.0.envpkg"));
    assert!(path.is_file(), "{} is missing: run scripts/build-guests.sh first", path.display());
    path
}

/// A first-party environment loaded from its package, on its own thread
/// (sandbox calls block; callable from async tests).
pub fn package_env(name: &str, data_dir: &std::path::Path) -> EnvHandle {
    let (path, data_dir) = (package_path(name), data_dir.to_path_buf());
    std::thread::spawn(move || load_package(&path, &data_dir)).join().expect("loading thread")
}

/// The math environment, loaded from its package. Sandbox calls block, so
/// this runs on its own thread (callable from async tests).
pub fn math_env(data_dir: &std::path::Path) -> EnvHandle {
    let data_dir = data_dir.to_path_buf();
    std::thread::spawn(move || load_math(&data_dir)).join().expect("loading thread")
}

fn load_math(data_dir: &std::path::Path) -> EnvHandle {
    load_package(&math_package_path(), data_dir)
}

fn load_package(path: &std::path::Path, data_dir: &std::path::Path) -> EnvHandle {
    let path = path.to_path_buf();
    let package = Package::from_file(&path).expect("read package");
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let module = sandbox.load_package(&package, data_dir).expect("load package");
    EnvHandle::new(module, package.digest_string(), Some(path.display().to_string())).expect("info")
}

/// A turn answering `\boxed{ANSWER}`, with token ids as a server reporting
/// them gives (prompt `[1, 2]`, sampled `[3]`).
pub fn boxed_answer_with_ids(answer: &str) -> Completion {
    Completion {
        message: envhub_sdk::Message::assistant(format!("\\boxed{{{answer}}}")),
        prompt_token_ids: vec![1, 2],
        prompt_source: Some(IdSource::Server),
        token_ids: vec![3],
        token_source: Some(IdSource::Server),
        logprobs: vec![-0.1],
        finish_reason: "stop".into(),
        completion_tokens: 1,
        attempts: 1,
    }
}

/// How a scripted test policy describes itself.
pub fn scripted_policy_ref(id: &str) -> PolicyRef {
    PolicyRef {
        id: id.into(),
        version: "1".into(),
        logprobs: LogprobConvention::Raw,
        sampling: Sampling::default(),
        step: None,
    }
}
