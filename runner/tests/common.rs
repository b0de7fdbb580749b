//! Helpers shared by the runner's tests.
#![allow(dead_code)]

use std::path::PathBuf;

use envhub_runner::EnvHandle;
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

/// The math environment, loaded from its package. Sandbox calls block, so
/// this runs on its own thread (callable from async tests).
pub fn math_env(data_dir: &std::path::Path) -> EnvHandle {
    let data_dir = data_dir.to_path_buf();
    std::thread::spawn(move || load_math(&data_dir)).join().expect("loading thread")
}

fn load_math(data_dir: &std::path::Path) -> EnvHandle {
    let path = math_package_path();
    let package = Package::from_file(&path).expect("read package");
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let module = sandbox.load_package(&package, data_dir).expect("load package");
    EnvHandle::new(module, package.digest_string(), Some(path.display().to_string())).expect("info")
}
