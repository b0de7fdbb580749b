//! `Env`, `Episode`, `StepResult` and `Score`: an environment loaded in the
//! sandbox, as Python sees it. Every sandbox call runs with the GIL released.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use envhub_client::pull::PullOptions;
use envhub_client::{Located, Resolver};
use envhub_sandbox::score::{default_threads, par_map};
use envhub_sandbox::{EnvModule, Scored};
use envhub_sdk::{Message, StepResponse, TaskSource};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::{Map, Value};

use crate::{convert, errors};

/// An environment loaded in the sandbox. Safe to share between threads;
/// every call runs in a fresh sandbox instance.
#[pyclass(subclass, frozen, module = "envhub._native")]
pub struct Env {
    module: EnvModule,
    /// The process the module was loaded in: a forked child reloads it in a
    /// sandbox of its own (the parent's epoch thread does not survive a fork).
    pid: u32,
    forked: Mutex<Option<(u32, EnvModule)>>,
    located: Located,
    digest: String,
    info: Value,
    manifest: Option<Value>,
    config: Map<String, Value>,
}

/// Options of a load, as the Python side passes them.
pub struct LoadArgs {
    /// `hub=`.
    pub hub: Option<String>,
    /// `lockfile=`.
    pub lockfile: Option<PathBuf>,
    /// `locked=`.
    pub locked: Option<bool>,
    /// Directories of first-party packages the wheel ships.
    pub package_dirs: Vec<PathBuf>,
}

impl LoadArgs {
    fn resolver(&self) -> Resolver {
        let defaults = PullOptions::default();
        let pull = PullOptions {
            hub: self.hub.clone(),
            locked: self.locked.unwrap_or(defaults.locked),
            lockfile: self.lockfile.clone().unwrap_or(defaults.lockfile),
            update_lockfile: defaults.update_lockfile,
        };
        Resolver { first_party_dirs: self.package_dirs.clone(), pull }
    }
}

fn scored_to_py(py: Python<'_>, s: Scored) -> PyResult<Score> {
    Ok(Score {
        reward: s.reward.total,
        components: convert::to_py(py, &s.reward.components)?.cast_into::<PyDict>()?.unbind(),
        metrics: convert::to_py(py, &s.metrics)?.cast_into::<PyDict>()?.unbind(),
        task_id: s.task_id,
        done: s.done,
    })
}

impl Env {
    /// Resolves and loads `reference` (GIL released) with `config` as the
    /// default environment configuration of every episode.
    pub fn load(py: Python<'_>, reference: &str, args: &LoadArgs, config: Map<String, Value>) -> PyResult<Env> {
        let resolver = args.resolver();
        let sandbox = crate::sandbox(py)?;
        let loaded = py
            .detach(|| {
                let loaded = resolver.load(&sandbox, reference)?;
                let info = loaded.module.info().map_err(|e| envhub_client::ClientError::Sandbox {
                    context: format!("`info` of {reference}"),
                    source: e,
                })?;
                Ok::<_, envhub_client::ClientError>((loaded, info))
            })
            .map_err(|e| errors::client(py, &e));
        let (loaded, info) = loaded?;
        let digest = loaded.digest();
        let manifest = loaded.package.as_ref().map(|p| serde_json::to_value(&p.manifest).unwrap_or(Value::Null));
        Ok(Env {
            module: loaded.module,
            pid: std::process::id(),
            forked: Mutex::new(None),
            located: loaded.located,
            digest,
            info: serde_json::to_value(&info).unwrap_or(Value::Null),
            manifest,
            config,
        })
    }

    /// The module, reloaded once in a forked child.
    fn module(&self, py: Python<'_>) -> PyResult<EnvModule> {
        let pid = std::process::id();
        if pid == self.pid {
            return Ok(self.module.clone());
        }
        let mut slot = self.forked.lock().map_err(|_| errors::bad_argument(py, "env lock poisoned".into()))?;
        if let Some((p, m)) = slot.as_ref()
            && *p == pid
        {
            return Ok(m.clone());
        }
        let sandbox = crate::sandbox(py)?;
        let located = self.located.clone();
        let loaded = py
            .detach(|| envhub_client::resolve::load_located(&sandbox, located))
            .map_err(|e| errors::client(py, &e))?;
        *slot = Some((pid, loaded.module.clone()));
        Ok(loaded.module)
    }

    fn merged_config(&self, py: Python<'_>, config: Option<&Bound<'_, PyAny>>) -> PyResult<Map<String, Value>> {
        let mut merged = self.config.clone();
        merged.extend(convert::to_object(py, config, "config")?);
        Ok(merged)
    }
}

#[pymethods]
impl Env {
    /// Loads `reference`: a first-party name (`"math"`), a `.envpkg` or
    /// `.wasm` path, an environment crate directory, or `owner/name@REQ`
    /// (through `lockfile`, the pull cache or `hub`, digest-checked).
    #[new]
    #[pyo3(signature = (reference, *, hub=None, config=None, lockfile=None, locked=None, package_dirs=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        reference: PathBuf,
        hub: Option<String>,
        config: Option<&Bound<'_, PyAny>>,
        lockfile: Option<PathBuf>,
        locked: Option<bool>,
        package_dirs: Option<Vec<PathBuf>>,
    ) -> PyResult<Env> {
        let config = convert::to_object(py, config, "config")?;
        let args = LoadArgs { hub, lockfile, locked, package_dirs: package_dirs.unwrap_or_default() };
        Env::load(py, &reference.to_string_lossy(), &args, config)
    }

    /// The environment's `info`: name, version, splits, tools, reward components, ...
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.info)
    }

    /// `sha256:<hex>` of the package (or of the bare module).
    #[getter]
    fn digest(&self) -> &str {
        &self.digest
    }

    /// The package manifest (`envhub.toml`), or None for a bare module.
    #[getter]
    fn manifest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.manifest)
    }

    /// The file the environment was loaded from.
    #[getter]
    fn path(&self) -> String {
        self.located.path.display().to_string()
    }

    /// The default environment configuration of every episode.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::to_py(py, &self.config)
    }

    /// Starts an episode: task `index` of `split`, or the inline `task`.
    #[pyo3(signature = (split=None, index=None, *, task=None, seed=0, config=None))]
    fn reset(
        &self,
        py: Python<'_>,
        split: Option<String>,
        index: Option<u64>,
        task: Option<&Bound<'_, PyAny>>,
        seed: u64,
        config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Episode> {
        let source = match (split, index, task) {
            (None, None, Some(t)) => TaskSource::Inline(convert::to_json(py, t, "task")?),
            (Some(split), index, None) => TaskSource::Split { split, index: index.unwrap_or(0) },
            (None, Some(index), None) => {
                let first = self.info["splits"].as_object().and_then(|s| s.keys().next().cloned());
                let split = first
                    .ok_or_else(|| errors::bad_argument(py, "the environment has no splits; pass task=".into()))?;
                TaskSource::Split { split, index }
            }
            (None, None, None) => {
                return Err(errors::bad_argument(py, "give split= and index=, or an inline task=".into()));
            }
            _ => return Err(errors::bad_argument(py, "give split= and index=, or task=, not both".into())),
        };
        let config = self.merged_config(py, config)?;
        let module = self.module(py)?;
        let reset = py.detach(|| module.reset(source, seed, config)).map_err(|e| errors::sandbox(py, &e))?;
        Ok(Episode {
            module,
            task_id: reset.task_id,
            messages: convert::to_py(py, &reset.messages)?.cast_into::<PyList>()?.unbind(),
            tools: convert::to_py(py, &reset.tools)?.cast_into::<PyList>()?.unbind(),
            state: Mutex::new(reset.state),
            done: AtomicBool::new(false),
            steps: AtomicU32::new(0),
        })
    }

    /// Scores `completion` (a str, or an assistant message dict) as the
    /// first turn on the inline `task`: what `envhub score` computes, bit for bit.
    #[pyo3(signature = (task, completion, *, seed=0, config=None))]
    fn score(
        &self,
        py: Python<'_>,
        task: &Bound<'_, PyAny>,
        completion: &Bound<'_, PyAny>,
        seed: u64,
        config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Score> {
        let task = convert::to_json(py, task, "task")?;
        let action = convert::action(py, completion)?;
        let config = self.merged_config(py, config)?;
        let module = self.module(py)?;
        let scored =
            py.detach(|| module.score_action(task, action, seed, config)).map_err(|e| errors::sandbox(py, &e))?;
        scored_to_py(py, scored)
    }

    /// For the benchmark: the wall time of each of `n` sandbox calls of
    /// `score` made from Rust (GIL released), in nanoseconds, to compare
    /// with the same calls made from Python.
    #[pyo3(signature = (task, completion, n))]
    fn _time_score(&self, py: Python<'_>, task: &Bound<'_, PyAny>, completion: &str, n: usize) -> PyResult<Vec<u64>> {
        let task = convert::to_json(py, task, "task")?;
        let module = self.module(py)?;
        let config = self.config.clone();
        py.detach(|| {
            (0..n)
                .map(|_| {
                    let start = std::time::Instant::now();
                    module.score(task.clone(), completion, 0, config.clone()).map(|_| start.elapsed().as_nanos() as u64)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| errors::sandbox(py, &e))
    }

    /// OpenRLHF's remote reward for one batch (its `.py` mode), computed
    /// exactly as `envhub reward-server` answers `/get_reward`.
    fn _openrlhf_reward<'py>(
        &self,
        py: Python<'py>,
        queries: Vec<String>,
        prompts: Vec<String>,
        labels: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let labels = match convert::to_json(py, labels, "labels")? {
            Value::Array(l) => l,
            _ => return Err(errors::bad_argument(py, "labels must be a list".into())),
        };
        if prompts.len() != queries.len() || labels.len() != queries.len() {
            return Err(errors::bad_argument(
                py,
                format!(
                    "{} queries, {} prompts and {} labels: give one of each per sample",
                    queries.len(),
                    prompts.len(),
                    labels.len()
                ),
            ));
        }
        let end_tokens: Vec<String> =
            envhub_runner::reward_server::DEFAULT_END_TOKENS.iter().map(|t| t.to_string()).collect();
        let jobs = envhub_runner::reward_server::openrlhf_jobs(&queries, &prompts, &labels, &end_tokens);
        let module = self.module(py)?;
        let config = self.config.clone();
        let results = py.detach(|| {
            par_map(
                jobs.len(),
                default_threads(),
                |i| module.score(jobs[i].0.clone(), &jobs[i].1, 0, config.clone()),
                |i| Err(envhub_sandbox::SandboxError::Host(format!("sample {i}: the scoring thread panicked"))),
            )
        });
        let info: envhub_sdk::InfoResponse = serde_json::from_value(self.info.clone())
            .map_err(|e| errors::bad_argument(py, format!("the environment's info: {e}")))?;
        match envhub_runner::reward_server::openrlhf_answer(&info, results) {
            Ok(answer) => convert::to_py(py, &answer),
            Err((i, e)) => {
                let err = errors::sandbox(py, &e);
                let _ = err.value(py).call_method1("add_note", (format!("while scoring sample {i}"),));
                Err(err)
            }
        }
    }

    /// Scores `completions[i]` on `tasks[i]` for every i, on `threads` threads
    /// (default: every core) with the GIL released; results in input order.
    /// A failed item raises (naming its index), or with
    /// `return_exceptions=True` takes the exception's place in the list.
    #[pyo3(signature = (tasks, completions, *, threads=None, seed=0, config=None, return_exceptions=false))]
    #[allow(clippy::too_many_arguments)]
    fn score_batch(
        &self,
        py: Python<'_>,
        tasks: &Bound<'_, PyAny>,
        completions: &Bound<'_, PyAny>,
        threads: Option<usize>,
        seed: u64,
        config: Option<&Bound<'_, PyAny>>,
        return_exceptions: bool,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let tasks: Vec<Bound<'_, PyAny>> = tasks.try_iter()?.collect::<PyResult<_>>()?;
        let completions: Vec<Bound<'_, PyAny>> = completions.try_iter()?.collect::<PyResult<_>>()?;
        if tasks.len() != completions.len() {
            return Err(errors::bad_argument(
                py,
                format!("{} tasks but {} completions: give one completion per task", tasks.len(), completions.len()),
            ));
        }
        let mut jobs = Vec::with_capacity(tasks.len());
        for (i, (t, c)) in tasks.iter().zip(&completions).enumerate() {
            let task = convert::to_json(py, t, &format!("tasks[{i}]"))?;
            jobs.push((task, convert::action(py, c)?));
        }
        let config = self.merged_config(py, config)?;
        let module = self.module(py)?;
        let threads = threads.unwrap_or_else(default_threads);
        let results = py.detach(|| {
            par_map(
                jobs.len(),
                threads,
                |i| module.score_action(jobs[i].0.clone(), jobs[i].1.clone(), seed, config.clone()),
                |i| Err(envhub_sandbox::SandboxError::Host(format!("item {i}: the scoring thread panicked"))),
            )
        });
        let total = results.len();
        let mut out = Vec::with_capacity(total);
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(s) => out.push(Py::new(py, scored_to_py(py, s)?)?.into_any()),
                Err(e) => {
                    let err = errors::sandbox(py, &e);
                    if !return_exceptions {
                        let note = format!("while scoring item {i} of {total}");
                        let _ = err.value(py).call_method1("add_note", (note,));
                        return Err(err);
                    }
                    out.push(err.into_value(py).into_any());
                }
            }
        }
        Ok(out)
    }
}

/// One episode: the opening messages and tools, and `step`.
#[pyclass(frozen, module = "envhub._native")]
pub struct Episode {
    module: EnvModule,
    /// The task's stable id.
    #[pyo3(get)]
    task_id: String,
    /// The opening messages (OpenAI format).
    #[pyo3(get)]
    messages: Py<PyList>,
    /// Tools offered in this episode (OpenAI function format).
    #[pyo3(get)]
    tools: Py<PyList>,
    state: Mutex<Value>,
    done: AtomicBool,
    steps: AtomicU32,
}

#[pymethods]
impl Episode {
    /// Applies one policy turn (a str, or an assistant message dict, tool
    /// calls included) and returns the environment's answer.
    fn step(&self, py: Python<'_>, action: &Bound<'_, PyAny>) -> PyResult<StepResult> {
        let action: Message = convert::action(py, action)?;
        // One step at a time: a second thread stepping the same episode would
        // branch it, so it is refused (never waited for with the GIL held).
        let mut state = match self.state.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(errors::raise(
                    py,
                    "BadActionError",
                    "step_in_progress",
                    "another thread is stepping this episode; an episode takes one step at a time".into(),
                ));
            }
            Err(std::sync::TryLockError::Poisoned(_)) => {
                return Err(errors::bad_argument(py, "episode lock poisoned".into()));
            }
        };
        if self.done.load(Ordering::SeqCst) {
            return Err(errors::raise(
                py,
                "BadActionError",
                "episode_over",
                format!(
                    "the episode ended after {} steps; start a new one with env.reset()",
                    self.steps.load(Ordering::SeqCst)
                ),
            ));
        }
        let module = self.module.clone();
        let current = state.clone();
        let step: StepResponse = py.detach(|| module.step(current, action)).map_err(|e| errors::sandbox(py, &e))?;
        *state = step.state;
        self.steps.fetch_add(1, Ordering::SeqCst);
        self.done.store(step.done, Ordering::SeqCst);
        drop(state);
        Ok(StepResult {
            reward: step.reward.total,
            components: convert::to_py(py, &step.reward.components)?.cast_into::<PyDict>()?.unbind(),
            metrics: convert::to_py(py, &step.metrics)?.cast_into::<PyDict>()?.unbind(),
            messages: convert::to_py(py, &step.messages)?.cast_into::<PyList>()?.unbind(),
            done: step.done,
        })
    }

    /// Whether the episode is over.
    #[getter]
    fn done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }

    /// The episode's opaque state, as the next `step` will send it.
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // Read while no step runs: a step holds the lock without the GIL.
        let state = loop {
            match self.state.try_lock() {
                Ok(s) => break s.clone(),
                Err(std::sync::TryLockError::WouldBlock) => py.detach(std::thread::yield_now),
                Err(std::sync::TryLockError::Poisoned(_)) => break Value::Null,
            }
        };
        convert::to_py(py, &state)
    }

    fn __repr__(&self) -> String {
        let done = if self.done() { "True" } else { "False" };
        format!("Episode(task_id={:?}, done={done})", self.task_id)
    }
}

/// What one step gave.
#[pyclass(frozen, get_all, module = "envhub._native")]
pub struct StepResult {
    /// The episode's total reward so far (final once `done`).
    reward: f64,
    /// Each reward component's value.
    components: Py<PyDict>,
    /// The environment's measurements.
    metrics: Py<PyDict>,
    /// New messages for the policy (tool results, feedback).
    messages: Py<PyList>,
    /// Whether the episode is over.
    done: bool,
}

#[pymethods]
impl StepResult {
    fn __repr__(&self, py: Python<'_>) -> String {
        let done = if self.done { "True" } else { "False" };
        format!("StepResult(reward={:?}, components={}, done={done})", self.reward, self.components.bind(py))
    }
}

/// A scored completion.
#[pyclass(frozen, get_all, module = "envhub._native")]
pub struct Score {
    /// The total reward.
    reward: f64,
    /// Each reward component's value.
    components: Py<PyDict>,
    /// The environment's measurements (extracted answer, verdict, ...).
    metrics: Py<PyDict>,
    /// The task's stable id.
    task_id: String,
    /// Whether the episode ended with this completion.
    done: bool,
}

#[pymethods]
impl Score {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!("Score(reward={:?}, components={})", self.reward, self.components.bind(py))
    }

    fn __float__(&self) -> f64 {
        self.reward
    }
}
