//! Environments as the runner sees them: a loaded module plus its identity,
//! called off the async threads.

use std::sync::Arc;

use envhub_sandbox::{EnvModule, SandboxError};
use envhub_sdk::{InfoResponse, Message, ResetResponse, StepResponse, TaskSource};
use serde_json::{Map, Value};

use crate::error::RunnerError;
use crate::trajectory::EnvRef;

/// A loaded environment with its identity and `info`.
#[derive(Clone)]
pub struct EnvHandle {
    /// Name, version, digest, source.
    pub env_ref: EnvRef,
    /// The environment's `info`.
    pub info: Arc<InfoResponse>,
    module: EnvModule,
}

impl EnvHandle {
    /// Calls `info` and wraps `module`. Blocking: call it outside async code
    /// (or in `spawn_blocking`), like every sandbox call; `digest` is the package's
    /// `sha256:<hex>` and `source` where it came from.
    pub fn new(module: EnvModule, digest: String, source: Option<String>) -> Result<Self, RunnerError> {
        let info = module.info().map_err(|e| RunnerError::Env { env: digest.clone(), source: e })?;
        let env_ref = EnvRef { name: info.name.clone(), version: info.version.clone(), digest, source };
        Ok(EnvHandle { env_ref, info: Arc::new(info), module })
    }

    /// The module.
    pub fn module(&self) -> &EnvModule {
        &self.module
    }

    /// `reset` on a blocking thread.
    pub async fn reset(
        &self,
        source: TaskSource,
        seed: u64,
        config: Map<String, Value>,
    ) -> Result<ResetResponse, SandboxError> {
        let module = self.module.clone();
        blocking(move || module.reset(source, seed, config)).await
    }

    /// `step` on a blocking thread.
    pub async fn step(&self, state: Value, action: Message) -> Result<StepResponse, SandboxError> {
        let module = self.module.clone();
        blocking(move || module.step(state, action)).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SandboxError> + Send + 'static,
) -> Result<T, SandboxError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(SandboxError::Host(format!("environment call panicked: {e}"))),
    }
}
