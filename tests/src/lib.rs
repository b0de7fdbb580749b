//! Helpers shared by envhub's end-to-end tests: where the workspace and its
//! built guests are.

use std::path::PathBuf;

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
