//! `envhub run`: roll out a policy on environments and write scored
//! trajectories (JSONL, and/or an Atropos-compatible trajectory API).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use envhub_runner::run::{EnvSpec, RunConfig};
use envhub_runner::sink::{ApiSink, JsonlSink, PushConfig, PushStats};
use envhub_runner::trajectory::{Sampling, Trajectory};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::runner_common::{DataArgs, PolicyArgs, build_policy, data_tasks, default_split, drive, load_env, runtime};

/// Arguments of `envhub run`.
#[derive(clap::Args)]
pub struct Args {
    /// Environments, each `ENV` or `ENV:WEIGHT` (mixing weight, default 1):
    /// a package, module, crate or first-party name such as `math`.
    pub envs: Vec<String>,
    /// A TOML run file (see README); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Split to draw tasks from (default: `train`, else the environment's first split).
    #[arg(long)]
    pub split: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
    /// First task index.
    #[arg(long)]
    pub start_index: Option<u64>,
    /// Number of tasks (each gets a group of rollouts).
    #[arg(long)]
    pub tasks: Option<u64>,
    /// Rollouts per task.
    #[arg(long)]
    pub group_size: Option<u32>,
    /// Turn limit per rollout (the environment's own limit also applies).
    #[arg(long)]
    pub max_turns: Option<u32>,
    /// Rollouts in flight at once.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Run seed (task draws, reset seeds, sampling seeds).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Sampling temperature (0 = greedy).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Nucleus sampling mass.
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Most new tokens per turn.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Stop string (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Filter out groups whose rewards are all equal (their advantages are
    /// all zero), drawing another task for each (at most --tasks extra);
    /// they stay in --out, marked `filtered`, and are not pushed.
    #[arg(long)]
    pub drop_uniform_groups: bool,
    /// A curriculum: `split=A,B,...` or `KEY=V1,V2,...` (a reset config key,
    /// e.g. `level=1,2,3,4,5`), easiest first; each environment moves up a
    /// level when its pass rate is over --pass-band's top, down when under.
    #[arg(long, value_name = "KNOB")]
    pub curriculum: Option<String>,
    /// The pass-rate band a curriculum keeps each environment in, `LOW,HIGH`.
    #[arg(long, value_name = "LOW,HIGH", default_value = "0.2,0.8", requires = "curriculum")]
    pub pass_band: String,
    /// Groups a curriculum averages before it moves.
    #[arg(long, default_value_t = 4, requires = "curriculum")]
    pub curriculum_window: usize,
    /// Environment arguments as a JSON object, passed to every `reset`.
    #[arg(long)]
    pub env_config: Option<String>,
    /// Write trajectories here as JSON lines (`-` for stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Push groups to an Atropos-compatible trajectory API at this URL.
    #[arg(long)]
    pub push: Option<String>,
    /// Seconds a push may take (connecting included) before it is retried.
    #[arg(long, default_value_t = 60.0)]
    pub push_timeout: f64,
    /// Attempts per pushed group (the first included), with exponential backoff.
    #[arg(long, default_value_t = 5)]
    pub push_attempts: u32,
    /// Off-policy control: start a group only when it will be trained on at
    /// most K trainer steps after it was sampled (0: on-policy batches);
    /// the trainer's step is read from the trajectory API (--trainer).
    #[arg(long, value_name = "K", conflicts_with = "sync")]
    pub max_staleness: Option<u64>,
    /// One batch per policy version: after each batch, wait for the
    /// trainer's next step before sampling more.
    #[arg(long)]
    pub sync: bool,
    /// The trajectory API whose `/status` gives the trainer's step (default: --push).
    #[arg(long, value_name = "URL")]
    pub trainer: Option<String>,
    /// Print this many trajectories (reward and answer) at the end.
    #[arg(long, default_value_t = 0)]
    pub show: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// A run file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    /// Environments.
    #[serde(default)]
    pub envs: Vec<EnvEntry>,
    /// Policy (as `--policy`).
    pub policy: Option<String>,
    /// Model name for HTTP policies.
    pub model: Option<String>,
    /// Tasks.
    pub tasks: Option<u64>,
    /// Group size.
    pub group_size: Option<u32>,
    /// Turn limit.
    pub max_turns: Option<u32>,
    /// Concurrency.
    pub concurrency: Option<usize>,
    /// Seed.
    pub seed: Option<u64>,
    /// Sampling.
    pub sampling: Option<Sampling>,
    /// JSONL output.
    pub out: Option<PathBuf>,
    /// Trajectory API URL.
    pub push: Option<String>,
}

/// One environment of a run file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvEntry {
    /// Package, module, crate or first-party name.
    pub env: String,
    /// Mixing weight.
    #[serde(default = "one")]
    pub weight: f64,
    /// Split.
    pub split: Option<String>,
    /// First index.
    #[serde(default)]
    pub start_index: u64,
    /// `reset` config.
    #[serde(default)]
    pub config: Map<String, Value>,
    /// Tasks from a data file (as `--data`).
    pub data: Option<PathBuf>,
    /// Its column map (as `--columns`).
    pub columns: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// `ENV` or `ENV:WEIGHT`.
fn parse_env_arg(arg: &str) -> (String, f64) {
    if let Some((name, w)) = arg.rsplit_once(':')
        && let Ok(w) = w.parse::<f64>()
    {
        return (name.to_owned(), w);
    }
    (arg.to_owned(), 1.0)
}

fn parse_object(text: &str, what: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(text).with_context(|| format!("{what} is not JSON"))? {
        Value::Object(m) => Ok(m),
        _ => bail!("{what} must be a JSON object"),
    }
}

/// A short run id from the clock and process.
pub fn run_id() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("run-{secs}-{}", std::process::id())
}

/// Runs `envhub run`.
pub fn run(args: Args) -> Result<()> {
    crate::runner_common::configure_candle_threads(&args.policy);
    let file: RunFile = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str(&text).with_context(|| format!("in {}", p.display()))?
        }
        None => RunFile::default(),
    };
    let env_config = match &args.env_config {
        Some(t) => parse_object(t, "--env-config")?,
        None => Map::new(),
    };
    let mut entries: Vec<EnvEntry> = args
        .envs
        .iter()
        .map(|a| {
            let (env, weight) = parse_env_arg(a);
            EnvEntry { env, weight, split: None, start_index: 0, config: Map::new(), data: None, columns: None }
        })
        .collect();
    if entries.is_empty() {
        entries = file.envs;
    }
    if entries.is_empty() {
        bail!("no environment: name one (e.g. `envhub run math`) or list [[envs]] in --config");
    }
    if let Some(data) = &args.data.data {
        let [entry] = entries.as_mut_slice() else {
            bail!("--data gives the tasks of one environment; with several, give each its `data` in --config [[envs]]");
        };
        entry.data = Some(data.clone());
        entry.columns = args.data.columns.clone();
    }
    let sandbox = crate::home::sandbox()?;
    let mut envs = Vec::new();
    for e in entries {
        let handle = load_env(&sandbox, &e.env)?;
        let split = default_split(&handle, args.split.as_deref().or(e.split.as_deref()), "train");
        let mut config = e.config;
        config.extend(env_config.clone());
        let inline = data_tasks(e.data.as_deref(), e.columns.as_deref())?;
        envs.push(EnvSpec {
            handle,
            weight: e.weight,
            split,
            start_index: args.start_index.unwrap_or(e.start_index),
            config,
            inline,
        });
    }
    // With only data-backed environments, one pass over the data by default.
    let data_rows: Option<u64> =
        envs.iter().map(|e| (!e.inline.is_empty()).then_some(e.inline.len() as u64)).sum::<Option<u64>>();
    let mut sampling = file.sampling.unwrap_or_default();
    if let Some(t) = args.temperature {
        sampling.temperature = t;
    }
    if let Some(p) = args.top_p {
        sampling.top_p = p;
    }
    if let Some(m) = args.max_tokens {
        sampling.max_tokens = m;
    }
    if !args.stop.is_empty() {
        sampling.stop = args.stop.clone();
    }
    let push_url = args.push.clone().or(file.push);
    let pace = match (args.max_staleness, args.sync) {
        (Some(k), _) => Some(envhub_runner::pace::Pace::MaxStaleness(k)),
        (None, true) => Some(envhub_runner::pace::Pace::Sync),
        (None, false) => None,
    };
    let pacer = match pace {
        None => None,
        Some(pace) => {
            let url = args.trainer.clone().or_else(|| push_url.clone()).context(
                "--max-staleness and --sync read the trainer's step from a trajectory API: give --push URL or --trainer URL",
            )?;
            let poll = std::time::Duration::from_millis(200);
            Some(std::sync::Arc::new(envhub_runner::pace::Pacer::new(&url, pace, poll)?))
        }
    };

    let config = RunConfig {
        run_id: run_id(),
        tasks: args.tasks.or(file.tasks).or(data_rows).unwrap_or(8),
        group_size: args.group_size.or(file.group_size).unwrap_or(4),
        max_turns: args.max_turns.or(file.max_turns),
        concurrency: args.concurrency.or(file.concurrency).unwrap_or(16),
        seed: args.seed.or(file.seed).unwrap_or(0),
        sampling,
        drop_uniform_groups: args.drop_uniform_groups,
        pacer,
        curriculum: curriculum(&args)?,
    };
    let mut policy_args = args.policy.clone();
    policy_args.policy = policy_args.policy.or(file.policy);
    policy_args.model = policy_args.model.or(file.model);
    let out = args.out.clone().or(file.out);
    let show = args.show;
    let quiet = args.quiet;
    let push_config = push_config(&args)?;
    runtime()?.block_on(async move {
        let policy = build_policy(&policy_args).await?;
        let described = policy.describe();
        eprintln!(
            "run {}: {} task(s) x {} from {} environment(s), policy {}",
            config.run_id,
            config.tasks,
            config.group_size,
            envs.len(),
            described.id
        );
        let mut sink = match &out {
            Some(p) if p.as_os_str() == "-" => Some(JsonlSink::new(Box::new(std::io::stdout()))),
            Some(p) => Some(JsonlSink::create(p)?),
            None => None,
        };
        let api = match &push_url {
            Some(url) => Some(ApiSink::connect_with(url, "envhub", config.group_size, push_config).await?),
            None => None,
        };
        let mut shown: Vec<Trajectory> = Vec::new();
        let summary = drive(policy, envs, config, !quiet, api.as_ref(), |group| {
            if let Some(s) = sink.as_mut() {
                s.write_group(&group)?;
            }
            for t in group {
                if shown.len() < show {
                    shown.push(t);
                }
            }
            Ok(())
        })
        .await?;
        for t in &shown {
            print_trajectory(t);
        }
        report_untrainable(&summary);
        if summary.filtered > 0 {
            eprintln!(
                "filtered out {} groups with uniform rewards; drew {} tasks in their place",
                summary.filtered, summary.redrawn
            );
        }
        eprintln!(
            "done: {} trajectories in {} groups, {} scored, {} with errors; mean reward {:.3}; {} turns, {} tokens{}",
            summary.trajectories,
            summary.groups,
            summary.scored,
            summary.failed,
            summary.mean_reward,
            summary.turns,
            summary.tokens,
            out.as_ref()
                .filter(|p| p.as_os_str() != "-")
                .map(|p| format!("; written to {}", p.display()))
                .unwrap_or_default()
        );
        match (&api, &push_url) {
            (Some(api), Some(url)) => report_pushes(&api.stats(), url, out.as_deref()),
            _ => Ok(()),
        }
    })
}

/// The curriculum `--curriculum`, `--pass-band` and `--curriculum-window` give.
fn curriculum(args: &Args) -> Result<Option<envhub_runner::curriculum::Curriculum>> {
    let Some(knob) = &args.curriculum else { return Ok(None) };
    let knob = knob.parse().map_err(|e: String| anyhow::anyhow!("--curriculum: {e}"))?;
    let band: Vec<f64> = args
        .pass_band
        .split(',')
        .map(|x| x.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()
        .filter(|b: &Vec<f64>| b.len() == 2 && (0.0..=1.0).contains(&b[0]) && b[0] < b[1] && b[1] <= 1.0)
        .with_context(|| format!("--pass-band `{}` is not LOW,HIGH with 0 <= LOW < HIGH <= 1", args.pass_band))?;
    Ok(Some(envhub_runner::curriculum::Curriculum {
        knob,
        band: (band[0], band[1]),
        window: args.curriculum_window.max(1),
    }))
}

/// Says how many trajectories a trainer cannot use, and why, by kind.
fn report_untrainable(summary: &envhub_runner::run::RunSummary) {
    let count: u64 = summary.untrainable.values().sum();
    if count == 0 {
        return;
    }
    let kinds: Vec<String> = summary.untrainable.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    eprintln!(
        "warning: {count} of {} trajectories cannot be trained on ({}); each says why in its `untrainable` field",
        summary.trajectories,
        kinds.join(", ")
    );
}

fn push_config(args: &Args) -> Result<PushConfig> {
    if !(args.push_timeout.is_finite() && args.push_timeout > 0.0) {
        bail!("--push-timeout must be a positive number of seconds");
    }
    let timeout = std::time::Duration::from_secs_f64(args.push_timeout.min(86_400.0));
    Ok(PushConfig {
        connect_timeout: timeout.min(std::time::Duration::from_secs(10)),
        request_timeout: timeout,
        attempts: args.push_attempts.clamp(1, 100),
        ..PushConfig::default()
    })
}

/// Prints what became of every group handed to the API; fails when some
/// were not accepted, so that no loss goes unnoticed.
fn report_pushes(s: &PushStats, url: &str, out: Option<&std::path::Path>) -> Result<()> {
    eprintln!(
        "pushed {} of {} groups to {url} ({} already there after a retry, {} filtered out, {} without token ids, {} failed; {} retries; {} trajectories left out of pushed groups: no token ids or errors)",
        s.sent + s.duplicates,
        s.groups,
        s.duplicates,
        s.filtered,
        s.without_tokens,
        s.failed,
        s.retries,
        s.trajectories_left_out,
    );
    if s.without_tokens > 0 {
        eprintln!(
            "warning: {} groups had no token ids to train on (the policy server did not return them), so they were not pushed",
            s.without_tokens
        );
    }
    if s.failed > 0 {
        let kept = match out {
            Some(p) if p.as_os_str() != "-" => format!("; every group is in {}", p.display()),
            Some(_) => "; every group was written to stdout".to_owned(),
            None => String::new(),
        };
        bail!("{} of {} groups were not accepted by the trajectory API at {url}{kept}", s.failed, s.groups);
    }
    Ok(())
}

/// Prints one trajectory in a few lines (to stderr).
pub fn print_trajectory(t: &Trajectory) {
    let reward = t.reward.as_ref().map_or("-".to_owned(), |r| {
        let comps: BTreeMap<_, _> = r.components.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        format!("{} {comps:?}", r.total)
    });
    let answer = t.turns.last().map(|turn| turn.action.text().replace('\n', " ")).unwrap_or_default();
    let answer: String = answer.chars().take(160).collect();
    eprintln!(
        "[group {} sample {}] task {} reward {} advantage {} finish {:?} tokens {}",
        t.group,
        t.sample,
        t.task.task_id,
        reward,
        t.advantage.map_or("-".to_owned(), |a| format!("{a:+.2}")),
        t.finish,
        t.completion_tokens()
    );
    if let Some(q) = t.prompt.iter().rev().find(|m| m.role == envhub_sdk::Role::User) {
        let q: String = q.text().replace('\n', " ").chars().take(120).collect();
        eprintln!("    task:   {q}");
    }
    eprintln!("    answer: {answer}");
    if let Some(m) = t.metrics.get("extracted") {
        eprintln!("    extracted: {m}");
    }
    for e in &t.errors {
        eprintln!("    error ({} {}): {}", e.stage, e.kind, e.message);
    }
}
