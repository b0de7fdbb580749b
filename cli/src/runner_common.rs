//! What `envhub run` and `envhub eval` share: policy and environment
//! arguments, the tokio runtime, progress bars, and driving a run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use envhub_runner::run::{EnvSpec, RunConfig, RunSummary, run};
use envhub_runner::trajectory::Trajectory;
use envhub_runner::{EnvHandle, OpenAiConfig, OpenAiPolicy, Policy, PolicyRef};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

/// Policy flags.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct PolicyArgs {
    /// The policy: `smollm2` (embedded default, fetched by scripts/fetch-model.sh),
    /// a `.gguf` file or a safetensors model directory (config.json,
    /// *.safetensors, tokenizer.json; in-process candle), or an OpenAI-compatible base URL
    /// (`http://127.0.0.1:8000/v1`: vLLM, SGLang, llama.cpp, OpenAI).
    #[arg(long)]
    pub policy: Option<String>,
    /// Model name for an HTTP policy (default: the server's first model).
    #[arg(long)]
    pub model: Option<String>,
    /// Bearer token for an HTTP policy.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Do not send vLLM's `return_token_ids` (for servers that reject unknown fields).
    #[arg(long)]
    pub no_token_ids: bool,
    /// Token-in/token-out through llama.cpp's native `/completion`: each
    /// turn's prompt is token ids, the sampled tokens never re-tokenised.
    #[arg(long)]
    pub token_prompts: bool,
    /// Per-request timeout of an HTTP policy, seconds.
    #[arg(long)]
    pub request_timeout: Option<f64>,
    /// Retries of a failed HTTP request (429, 5xx, timeouts), with exponential backoff.
    #[arg(long)]
    pub retries: Option<u32>,
    /// In-process model: CPU threads per model worker (default 1; `CANDLE_NUM_THREADS` wins).
    #[arg(long)]
    pub threads: Option<usize>,
    /// In-process model: workers (model copies sharing the weights) generating at once
    /// (default: cores / threads).
    #[arg(long)]
    pub workers: Option<usize>,
}

/// Sets candle's CPU thread count (`CANDLE_NUM_THREADS`, read once by candle)
/// unless the user set it. Call first thing in a command, before any thread
/// starts.
pub fn configure_candle_threads(args: &PolicyArgs) {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        let n = args.threads.unwrap_or(1).max(1);
        // SAFETY: called at the start of a command, before this process
        // starts any other thread, so nothing reads the environment concurrently.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", n.to_string()) };
    }
}

/// Model workers: `--workers`, else cores / threads.
fn candle_workers(args: &PolicyArgs) -> usize {
    let threads = std::env::var("CANDLE_NUM_THREADS").ok().and_then(|t| t.parse::<usize>().ok()).unwrap_or(1).max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    args.workers.unwrap_or((cores / threads).max(1))
}

/// A policy chosen on the command line.
pub enum AnyPolicy {
    /// HTTP.
    OpenAi(OpenAiPolicy),
    /// In-process.
    Candle(envhub_runner::policy::CandlePolicy),
}

impl AnyPolicy {
    /// Its description.
    pub fn describe(&self) -> PolicyRef {
        match self {
            AnyPolicy::OpenAi(p) => p.describe(),
            AnyPolicy::Candle(p) => p.describe(),
        }
    }
}

/// Builds the policy `args` name (default `smollm2`).
pub async fn build_policy(args: &PolicyArgs) -> Result<AnyPolicy> {
    let spec = args.policy.clone().unwrap_or_else(|| "smollm2".to_owned());
    if spec.starts_with("http://") || spec.starts_with("https://") {
        let mut base = spec.trim_end_matches('/').to_owned();
        if !base.ends_with("/v1") {
            base.push_str("/v1");
        }
        let mut cfg = OpenAiConfig::new(base, args.model.clone().unwrap_or_default());
        cfg.api_key = args.api_key.clone();
        cfg.token_ids = !args.no_token_ids;
        cfg.token_prompts = args.token_prompts;
        if let Some(t) = args.request_timeout {
            cfg.timeout = Duration::from_secs_f64(t.max(0.001));
        }
        if let Some(r) = args.retries {
            cfg.max_retries = r;
        }
        let probe = OpenAiPolicy::new(cfg.clone())?;
        // Fail fast (and clearly) when the server is not there.
        let models = probe.models().await.context("checking the policy server")?;
        if cfg.model.is_empty() {
            cfg.model = models.first().cloned().context("the server lists no models: pass --model")?;
            eprintln!("policy: {} (served by {})", cfg.model, cfg.base_url);
        }
        return Ok(AnyPolicy::OpenAi(OpenAiPolicy::new(cfg)?));
    }
    let path = if spec == "smollm2" {
        envhub_runner::policy::candle::smollm2_path().context(
            "the embedded default policy SmolLM2-135M-Instruct is not fetched yet: run scripts/fetch-model.sh (or set ENVHUB_MODELS to its folder)",
        )?
    } else {
        PathBuf::from(&spec)
    };
    if !path.is_file() && !path.is_dir() {
        bail!(
            "policy `{spec}`: no such file or directory (give smollm2, a .gguf file, a safetensors model directory or an http(s):// URL)"
        );
    }
    let device = envhub_runner::policy::candle::default_device()?;
    let workers = candle_workers(args);
    let p = tokio::task::spawn_blocking(move || {
        envhub_runner::policy::CandlePolicy::load_with_workers(&path, device, workers)
    })
    .await
    .context("loading the model")??;
    Ok(AnyPolicy::Candle(p))
}

/// A multi-threaded tokio runtime.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// Loads environment `arg` as a runner handle.
pub fn load_env(sandbox: &envhub_sandbox::Sandbox, arg: &str) -> Result<EnvHandle> {
    let loaded = crate::home::load(sandbox, std::path::Path::new(arg))?;
    let (digest, source) = (loaded.digest(), loaded.source());
    Ok(EnvHandle::new(loaded.module, digest, source)?)
}

/// Data-file flags of `run` and `eval`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DataArgs {
    /// Tasks from your own data: a JSON Lines or Parquet file (the formats
    /// Hugging Face datasets ship in) whose rows become the environment's
    /// inline tasks, e.g. GSM8K's `test-00000-of-00001.parquet` for `math`.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Task fields from the data's columns, `FIELD=COLUMN,...` (e.g.
    /// `question=problem,answer=solution`); without it each row is the task.
    #[arg(long, value_name = "MAP", requires = "data")]
    pub columns: Option<String>,
}

/// The inline tasks a data file gives (none without one).
pub fn data_tasks(data: Option<&std::path::Path>, columns: Option<&str>) -> Result<Vec<serde_json::Value>> {
    let Some(path) = data else { return Ok(Vec::new()) };
    let map = match columns {
        Some(text) => text.parse().map_err(|e: String| anyhow::anyhow!("--columns: {e}"))?,
        None => envhub_runner::data::ColumnMap::default(),
    };
    Ok(envhub_runner::data::read_tasks(path, &map)?)
}

/// The split to use when none is given: `train` if there is one, else the first.
pub fn default_split(env: &EnvHandle, wanted: Option<&str>, fallback: &str) -> String {
    if let Some(w) = wanted {
        return w.to_owned();
    }
    if env.info.splits.contains_key(fallback) {
        return fallback.to_owned();
    }
    env.info.splits.keys().next().cloned().unwrap_or_else(|| fallback.to_owned())
}

/// Runs and hands each finished group to `on_group` (the local copy: it
/// sees every group, whatever becomes of its push), then to `push` (if
/// any), with a progress bar showing mean reward, trajectories/s and
/// tokens/s. A failed push is reported and counted in the sink's stats; it
/// does not stop the run. A failing `on_group` stops it.
pub async fn drive(
    policy: AnyPolicy,
    envs: Vec<EnvSpec>,
    config: RunConfig,
    show_progress: bool,
    push: Option<&envhub_runner::sink::ApiSink>,
    mut on_group: impl FnMut(Vec<Trajectory>) -> Result<()>,
) -> Result<RunSummary> {
    let total = config.tasks.saturating_mul(u64::from(config.group_size));
    let bar = if show_progress { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} trajectories {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (tx, mut rx) = mpsc::channel::<Vec<Trajectory>>(16);
    let task = match policy {
        AnyPolicy::OpenAi(p) => tokio::spawn(run(Arc::new(p), envs, config, tx)),
        AnyPolicy::Candle(p) => tokio::spawn(run(Arc::new(p), envs, config, tx)),
    };
    let start = Instant::now();
    let (mut n, mut scored, mut sum, mut tokens) = (0u64, 0u64, 0.0f64, 0u64);
    let mut sink_error = None;
    let mut groups = 0u64;
    while let Some(group) = rx.recv().await {
        for t in &group {
            n += 1;
            tokens += t.completion_tokens() as u64;
            if let Some(r) = t.total() {
                scored += 1;
                sum += r;
            }
        }
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        let mean = if scored > 0 { sum / scored as f64 } else { 0.0 };
        bar.set_position(n);
        bar.set_message(format!(
            "mean reward {mean:.3} | {:.2} traj/s | {:.1} tok/s",
            n as f64 / secs,
            tokens as f64 / secs
        ));
        let pending = push.map(|api| (api, group.clone()));
        if let Err(e) = on_group(group) {
            sink_error = Some(e.context(format!("the run stopped after {groups} whole groups were kept")));
            break;
        }
        groups += 1;
        if let Some((api, group)) = pending
            && let Err(e) = api.push_group(&group).await
        {
            bar.suspend(|| eprintln!("warning: group {} not pushed: {e}", group.first().map_or(0, |t| t.group)));
        }
    }
    drop(rx);
    bar.finish_and_clear();
    let summary = task.await.context("the run panicked")??;
    if let Some(e) = sink_error {
        return Err(e);
    }
    Ok(summary)
}
