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
