//! Helpers shared by envhub's end-to-end tests: where the workspace and its
//! built guests are.

use std::path::{Path, PathBuf};

use envhub_sandbox::package::Manifest;
use envhub_sandbox::{EnvModule, LoadOptions, Sandbox, SandboxConfig};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() { dir } else { workspace_root().join(dir) }
        }
        None => workspace_root().join("target"),
    }
}

/// The `.wasm` of a guest crate built by `scripts/build-guests.sh`.
///
/// # Panics
/// When the guest has not been built, with the command that builds it.
pub fn guest_wasm(crate_name: &str) -> PathBuf {
    let path = target_dir().join("wasm32-wasip1/release").join(format!("{crate_name}.wasm"));
    assert!(path.is_file(), "{} is missing: run scripts/build-guests.sh first", path.display());
    path
}

/// A sandbox with default settings that keeps compiled modules (and the
/// Python snapshot) in the test cache shared by every test and bench.
///
/// # Panics
/// When the sandbox cannot be created.
pub fn test_sandbox() -> Sandbox {
    let cache = target_dir().join("envhub-test-cache");
    Sandbox::new(SandboxConfig { cache_dir: Some(cache), ..SandboxConfig::default() }).expect("sandbox")
}

/// Loads a first-party environment into `sandbox` as its package would run:
/// the guest `crate_name` under the limits and capabilities of
/// `env_dir/envhub.toml`, with `data_dir` as `/data`. Returns the manifest too. `env_dir` comes from the
/// caller's own `CARGO_MANIFEST_DIR` (this lib may have been built in another
/// checkout sharing the target directory).
///
/// # Panics
/// When the manifest or the guest cannot be loaded.
pub fn load_env(
    sandbox: &Sandbox,
    env_dir: &Path,
    crate_name: &str,
    data_dir: Option<PathBuf>,
) -> (Manifest, EnvModule) {
    let manifest = std::fs::read_to_string(env_dir.join("envhub.toml")).expect("read envhub.toml");
    let manifest = Manifest::parse(&manifest).expect("valid manifest");
    let options =
        LoadOptions { limits: manifest.limits, capabilities: manifest.package.capabilities.clone(), data_dir };
    let module = sandbox.load_file(&guest_wasm(crate_name), options).expect("load the environment module");
    (manifest, module)
}

/// Latency figures of a set of samples, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// Median.
    pub median_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Mean.
    pub mean_us: f64,
}

/// Median, p99 and mean of `samples` (seconds), in microseconds.
pub fn latency(samples: &mut [f64]) -> Latency {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i.min(samples.len() - 1)] * 1e6
    };
    let mean = if samples.is_empty() { 0.0 } else { samples.iter().sum::<f64>() / samples.len() as f64 * 1e6 };
    Latency { median_us: at(0.5), p99_us: at(0.99), mean_us: mean }
}

/// A Python environment package (as `envhub build` makes one): `env_py` as
/// `python/env.py`, the guest SDK vendored, `manifest_extra` appended to
/// `[package]` (e.g. `capabilities = ["verify:math"]`), `limits` as the
/// `[limits]` table and `data` as `data/` files.
///
/// # Panics
/// When the package cannot be packed.
pub fn python_package(
    name: &str,
    env_py: &str,
    manifest_extra: &str,
    limits: &str,
    data: &[(&str, &str)],
) -> envhub_sandbox::package::Package {
    use std::collections::BTreeMap;
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\ndescription = \"a test environment\"\nlicense = \"Apache-2.0\"\nruntime = \"{}\"\nruntime_sha256 = \"{}\"\n{manifest_extra}\n[limits]\n{limits}\n",
        envhub_sandbox::package::PYTHON_RUNTIME,
        envhub_sandbox::PYTHON_WASM_SHA256
    );
    let mut sources: BTreeMap<String, Vec<u8>> =
        envhub_sdk::python_sdk::FILES.iter().map(|(p, t)| ((*p).to_owned(), t.as_bytes().to_vec())).collect();
    sources.insert("env.py".into(), env_py.as_bytes().to_vec());
    let data_dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in data {
        std::fs::write(data_dir.path().join(path), text).expect("write data");
    }
    let archive =
        envhub_sandbox::package::pack_python(&manifest, &sources, None, (!data.is_empty()).then_some(data_dir.path()))
            .expect("pack");
    envhub_sandbox::package::Package::from_bytes(&archive).expect("package")
}
