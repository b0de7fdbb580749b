//! Publish-time checks: the package is loaded in the sandbox (no network, no
//! host files but its own data) and self-tested; the report is stored with
//! the version and shown on its page.

use envhub_sandbox::package::Package;
use envhub_sandbox::selftest::{Budget, SelfTestOptions, self_test};
use envhub_sandbox::{Sandbox, SandboxError};
use serde_json::{Value, json};
use std::path::Path;

/// Why a package was refused by the checks.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The module does not load (not WebAssembly, bad imports, ...).
    #[error("the module does not load in the sandbox: {0}")]
    Load(SandboxError),
    /// `info` failed or was not deterministic.
    #[error("`info` failed in the sandbox: {0}")]
    Info(SandboxError),
    /// Tasks failed the self-test.
    #[error("the self-test failed: {summary}")]
    Failed {
        /// One line.
        summary: String,
        /// The report (JSON).
        report: Value,
    },
}

/// Most failed tasks a stored report lists.
const MAX_REPORTED_FAILURES: usize = 20;
/// Most characters of each listed failure.
const MAX_FAILURE_CHARS: usize = 500;

/// How much of each upload is tested, and what the test may spend.
#[derive(Clone, Copy, Debug)]
pub struct CheckConfig {
    /// Tasks self-tested from the start of each split.
    pub tasks_per_split: u64,
    /// Most tasks tested in all.
    pub max_tasks: usize,
    /// What all the self-test's calls together may spend.
    pub budget: Budget,
}

/// Loads `package` and self-tests it; returns the stored report,
/// `{"passed", "tasks", "validated", "failures", "env", "splits",
/// "stopped"}`.
pub fn run(sandbox: &Sandbox, package: &Package, data_root: &Path, config: &CheckConfig) -> Result<Value, CheckError> {
    let module = sandbox.load_package(package, data_root).map_err(CheckError::Load)?;
    let options = SelfTestOptions {
        tasks_per_split: config.tasks_per_split,
        seed: 0,
        max_tasks: config.max_tasks,
        budget: Some(config.budget),
    };
    let report = self_test(&module, &options, |_| {}).map_err(CheckError::Info)?;
    // The report is stored with the version: a bounded number of failures,
    // each message cut short.
    let failures: Vec<Value> = report
        .failures()
        .take(MAX_REPORTED_FAILURES)
        .map(|t| {
            let failure = t.failure.as_deref().map(|f| f.chars().take(MAX_FAILURE_CHARS).collect::<String>());
            json!({ "split": t.split, "index": t.index, "failure": failure })
        })
        .collect();
    let failed = report.failures().count();
    let value = json!({
        "passed": report.passed(),
        "tasks": report.tasks.len(),
        "validated": report.tasks.iter().filter(|t| t.validated).count(),
        "failures": failures,
        "env": report.info.name,
        "splits": report.info.splits,
        "stopped": report.stopped,
    });
    if let Some(why) = &report.stopped {
        return Err(CheckError::Failed {
            summary: format!("{why}, after {} tasks", report.tasks.len()),
            report: value,
        });
    }
    if !report.passed() {
        let first = report.failures().next().map_or(String::new(), |t| {
            let failure: String = t.failure.as_deref().unwrap_or("").chars().take(MAX_FAILURE_CHARS).collect();
            format!("; first: {} #{}: {failure}", t.split, t.index)
        });
        return Err(CheckError::Failed {
            summary: format!("{failed} of {} tasks failed{first}", report.tasks.len()),
            report: value,
        });
    }
    Ok(value)
}
