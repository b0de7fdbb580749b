//! The sandbox every command uses (compiled modules cached under
//! `$ENVHUB_HOME`), and the environment references they resolve.

use std::path::Path;

use anyhow::{Context, Result};
use envhub_client::{Loaded, Resolver};
use envhub_sandbox::Sandbox;

/// A sandbox with the on-disk compiled-module cache.
pub fn sandbox() -> Result<Sandbox> {
    Sandbox::new(envhub_client::home::sandbox_config()).context("cannot start the sandbox")
}

/// Loads the environment `reference` names (see [`envhub_client::resolve`]).
pub fn load(sandbox: &Sandbox, reference: &Path) -> Result<Loaded> {
    Ok(Resolver::default().load(sandbox, &reference.to_string_lossy())?)
}
