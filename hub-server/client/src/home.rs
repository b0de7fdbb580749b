//! Where envhub keeps its state: `$ENVHUB_HOME`, else
//! `$XDG_CACHE_HOME/envhub`, else `~/.cache/envhub` (without a home,
//! `$TMPDIR/envhub-<uid>`, which must be this user's alone).

use std::path::PathBuf;

use envhub_sandbox::SandboxConfig;

/// The root of envhub's caches and credentials.
pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("ENVHUB_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("envhub");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache/envhub"),
        // Never a directory other users share: one named for this user, and
        // the sandbox refuses it unless this user owns it alone.
        None => std::env::temp_dir().join(format!("envhub-{}", rustix::process::geteuid().as_raw())),
    }
}

/// Unpacked package data, one directory per package digest.
pub fn data_dir() -> PathBuf {
    root().join("data")
}

/// Compiled modules and snapshots.
pub fn modules_dir() -> PathBuf {
    root().join("modules")
}

/// The login file.
pub fn credentials_path() -> PathBuf {
    root().join("credentials.toml")
}

/// Verified package archives pulled from hubs, by digest.
pub fn packages_dir() -> PathBuf {
    root().join("packages").join("sha256")
}

/// The sandbox configuration every envhub front end uses: the defaults,
/// with compiled modules cached under [`modules_dir`].
pub fn sandbox_config() -> SandboxConfig {
    SandboxConfig { cache_dir: Some(modules_dir()), ..SandboxConfig::default() }
}
