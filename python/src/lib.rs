//! `envhub._native`: the native core of the `envhub` Python package. It
//! loads environments through the same resolution, digests and lockfile as
//! the CLI (`envhub-client`) and calls them in the same sandbox, with the GIL
//! released for every sandbox call. The Pythonic surface (adapters, async
//! functions, exceptions) is in `python/envhub/`.

#![warn(missing_docs)]

mod convert;
mod env;
mod errors;

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use envhub_sandbox::Sandbox;
use pyo3::prelude::*;

/// The CPython-for-WASI runtime the wheel ships, if any (set once by `configure`).
static PYTHON_RUNTIME: OnceLock<PathBuf> = OnceLock::new();

/// The process's sandbox, and the process it was made in (a forked child
/// makes its own: threads, such as the epoch ticker, do not survive a fork).
static SANDBOX: Mutex<Option<(u32, Sandbox)>> = Mutex::new(None);

/// The sandbox of this process, made on first use.
pub(crate) fn sandbox(py: Python<'_>) -> PyResult<Sandbox> {
    let pid = std::process::id();
    let mut slot = SANDBOX.lock().map_err(|_| errors::bad_argument(py, "sandbox lock poisoned".into()))?;
    if let Some((p, s)) = slot.as_ref()
        && *p == pid
    {
        return Ok(s.clone());
    }
    let mut config = envhub_client::home::sandbox_config();
    if let Some(dir) = PYTHON_RUNTIME.get() {
        config.code.runtime_dir = Some(dir.clone());
    }
    let sandbox = Sandbox::new(config).map_err(|e| errors::sandbox(py, &e))?;
    *slot = Some((pid, sandbox.clone()));
    Ok(sandbox)
}

/// Sets where the CPython-for-WASI runtime of `code:python` environments is
/// (the copy the wheel ships); effective before the first environment loads.
#[pyfunction]
#[pyo3(signature = (*, python_runtime=None))]
fn configure(python_runtime: Option<PathBuf>) -> bool {
    python_runtime.is_some_and(|dir| PYTHON_RUNTIME.set(dir).is_ok())
}

/// Resolves `owner/name@REQ` and makes sure the verified archive is in the
/// pull cache, pinned in the lockfile; returns the resolution.
#[pyfunction]
#[pyo3(signature = (spec, *, hub=None, locked=false, lockfile=None))]
fn pull<'py>(
    py: Python<'py>,
    spec: &str,
    hub: Option<String>,
    locked: bool,
    lockfile: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let parsed = envhub_client::spec::Spec::parse(spec).map_err(|e| errors::client(py, &e))?;
    let mut options = envhub_client::pull::PullOptions { hub, locked, update_lockfile: !locked, ..Default::default() };
    if let Some(path) = lockfile {
        options.lockfile = path;
    }
    let fetched = py.detach(|| envhub_client::pull::fetch(&parsed, &options)).map_err(|e| errors::client(py, &e))?;
    let e = &fetched.entry;
    let out = serde_json::json!({
        "name": e.name, "version": e.version, "source": e.source, "digest": e.digest,
        "path": fetched.path.display().to_string(), "from_lockfile": fetched.from_lockfile,
    });
    convert::to_py(py, &out)
}

/// Replays the trajectories in `path` through their recorded environments
/// (found among `envs`, the pull cache and their recorded sources) and
/// returns the report as a dict.
#[pyfunction]
#[pyo3(signature = (path, *, envs=None, package_dirs=None))]
fn verify<'py>(
    py: Python<'py>,
    path: PathBuf,
    envs: Option<Vec<String>>,
    package_dirs: Option<Vec<PathBuf>>,
) -> PyResult<Bound<'py, PyAny>> {
    let text = std::fs::read_to_string(&path)
        .map_err(|e| errors::raise(py, "NotFoundError", "not_found", format!("reading {}: {e}", path.display())))?;
    let sandbox = sandbox(py)?;
    let resolver = envhub_client::Resolver { first_party_dirs: package_dirs.unwrap_or_default(), ..Default::default() };
    let envs = envs.unwrap_or_default();
    let report =
        py.detach(|| envhub_runner::verify::verify_text(&text, &envs, &sandbox, &resolver)).map_err(|e| match e {
            envhub_runner::RunnerError::Resolve(c) => errors::client(py, &c),
            other => errors::raise(py, "EnvhubError", "verify", other.to_string()),
        })?;
    let ok = report.ok();
    let out = convert::to_py(py, &report)?;
    out.set_item("ok", ok)?;
    Ok(out)
}

/// The response in an OpenRLHF query, as `envhub reward-server` cuts it:
/// after the prompt, without trailing end-of-turn tokens.
#[pyfunction]
fn openrlhf_response(query: &str, prompt: &str) -> String {
    let end_tokens: Vec<String> =
        envhub_runner::reward_server::DEFAULT_END_TOKENS.iter().map(|t| t.to_string()).collect();
    envhub_runner::reward_server::response_of(query, prompt, &end_tokens).to_owned()
}

/// The inline task of a sample whose label (ground truth) is `label`: the
/// label when it is a task object or its JSON text, else `{"answer": label,
/// "question": prompt}` (the reward server's rule for OpenRLHF labels).
#[pyfunction]
fn task_from_label<'py>(py: Python<'py>, label: &Bound<'py, PyAny>, prompt: &str) -> PyResult<Bound<'py, PyAny>> {
    let label = convert::to_json(py, label, "the label")?;
    convert::to_py(py, &envhub_runner::reward_server::task_from_label(&label, prompt))
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;

    m.add_class::<env::Env>()?;
    m.add_class::<env::Episode>()?;
    m.add_class::<env::StepResult>()?;
    m.add_class::<env::Score>()?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(pull, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(openrlhf_response, m)?)?;
    m.add_function(wrap_pyfunction!(task_from_label, m)?)?;
    Ok(())
}
