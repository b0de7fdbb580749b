//! Where envhub keeps its caches: `$ENVHUB_HOME`, else `$XDG_CACHE_HOME/envhub`,
//! else `~/.cache/envhub`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use envhub_sandbox::{Sandbox, SandboxConfig};

/// The cache root.
pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("ENVHUB_HOME") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("envhub");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache/envhub"),
        None => std::env::temp_dir().join("envhub"),
    }
}

/// Unpacked package data, by digest.
pub fn data_dir() -> PathBuf {
    root().join("data")
}

/// A sandbox with the on-disk compiled-module cache.
pub fn sandbox() -> Result<Sandbox> {
    let config = SandboxConfig { cache_dir: Some(root().join("modules")), ..SandboxConfig::default() };
    Sandbox::new(config).context("cannot start the sandbox")
}
