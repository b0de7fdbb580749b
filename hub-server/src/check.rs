//! Publish-time checks: the package is loaded in the sandbox (no network, no
//! host files but its own data) and self-tested; the report is stored with
//! the version and shown on its page.

use envhub_sandbox::package::Package;
use envhub_sandbox::selftest::{SelfTestOptions, self_test};
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

/// Loads `package` and self-tests `tasks_per_split` tasks of every split;
/// returns the stored report, `{"passed", "tasks", "validated", "failures",
/// "env", "splits"}`.
pub fn run(sandbox: &Sandbox, package: &Package, data_root: &Path, tasks_per_split: u64) -> Result<Value, CheckError> {
    let module = sandbox.load_package(package, data_root).map_err(CheckError::Load)?;
    let options = SelfTestOptions { tasks_per_split, seed: 0 };
    let report = self_test(&module, &options, |_| {}).map_err(CheckError::Info)?;
    let failures: Vec<Value> =
        report.failures().map(|t| json!({ "split": t.split, "index": t.index, "failure": t.failure })).collect();
    let value = json!({
        "passed": report.passed(),
        "tasks": report.tasks.len(),
        "validated": report.tasks.iter().filter(|t| t.validated).count(),
        "failures": failures,
        "env": report.info.name,
        "splits": report.info.splits,
    });
    if !report.passed() {
        let first = report.failures().next().map_or(String::new(), |t| {
            format!("; first: {} #{}: {}", t.split, t.index, t.failure.as_deref().unwrap_or(""))
        });
        return Err(CheckError::Failed {
            summary: format!("{} of {} tasks failed{first}", failures.len(), report.tasks.len()),
            report: value,
        });
    }
    Ok(value)
}
