//! `envhub eval`: n tasks x k samples of a split; mean reward, unbiased
//! pass@k and component means; results JSONL and a metadata file.

use std::path::PathBuf;

use anyhow::{Context, Result};
use envhub_runner::eval::summarise;
use envhub_runner::run::{EnvSpec, RunConfig};
use envhub_runner::sink::JsonlSink;
use envhub_runner::trajectory::{Sampling, Trajectory};
use serde_json::{Map, json};

use crate::runner_common::{DataArgs, PolicyArgs, build_policy, data_tasks, default_split, drive, load_env, runtime};

/// Arguments of `envhub eval`.
#[derive(clap::Args)]
pub struct Args {
    /// The environment: a package, module, crate or first-party name.
    pub env: String,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Split (default: `test`, else the environment's first split).
    #[arg(long)]
    pub split: Option<String>,
    /// Tasks (indices start-index .. start-index + n; default 20, or every row of --data).
    #[arg(long, short = 'n')]
    pub tasks: Option<u64>,
    #[command(flatten)]
    pub data: DataArgs,
    /// First task index.
    #[arg(long, default_value_t = 0)]
    pub start_index: u64,
    /// Samples per task (k).
    #[arg(long, short = 'k', default_value_t = 4)]
    pub samples: u32,
    /// A sample passes when its reward is at least this (default: the
    /// environment's maximum reward).
    #[arg(long)]
    pub pass_threshold: Option<f64>,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Most new tokens per turn.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: u32,
    /// Turn limit.
    #[arg(long)]
    pub max_turns: Option<u32>,
    /// Rollouts in flight.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Results file (trajectories, JSONL); the metadata goes next to it as `.meta.json`.
    #[arg(long, default_value = "eval-results.jsonl")]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `envhub eval`.
pub fn run(args: Args) -> Result<()> {
    crate::runner_common::configure_candle_threads(&args.policy);
    let sandbox = crate::home::sandbox()?;
    let handle = load_env(&sandbox, &args.env)?;
    let split = default_split(&handle, args.split.as_deref(), "test");
    let threshold = args.pass_threshold.unwrap_or_else(|| handle.info.max_reward());
    let env_ref = handle.env_ref.clone();
    let spec = EnvSpec {
        handle,
        weight: 1.0,
        split: split.clone(),
        start_index: args.start_index,
        config: Map::new(),
        inline: data_tasks(args.data.data.as_deref(), args.data.columns.as_deref())?,
    };
    let tasks = args.tasks.unwrap_or(if spec.inline.is_empty() { 20 } else { spec.inline.len() as u64 });
    let sampling =
        Sampling { temperature: args.temperature, top_p: args.top_p, max_tokens: args.max_tokens, stop: Vec::new() };
    let config = RunConfig {
        run_id: crate::run::run_id(),
        tasks,
        group_size: args.samples,
        max_turns: args.max_turns,
        concurrency: args.concurrency,
        seed: args.seed,
        sampling: sampling.clone(),
        ..RunConfig::default()
    };
    let run_id = config.run_id.clone();
    runtime()?.block_on(async move {
        let policy = build_policy(&args.policy).await?;
        let policy_ref = policy.describe();
        let mut groups: Vec<Vec<Trajectory>> = Vec::new();
        let summary = drive(policy, vec![spec], config, !args.quiet, None, |g| {
            groups.push(g);
            Ok(())
        })
        .await?;
        groups.sort_by_key(|g| g.first().map_or(0, |t| t.group));
        let mut sink = JsonlSink::create(&args.out)?;
        for g in &groups {
            sink.write_group(g)?;
        }
        let s = summarise(&groups, threshold);
        let drawn_from = match &args.data.data {
            Some(path) => format!("data {}", path.display()),
            None => format!("split {split}"),
        };
        println!("{} {} {drawn_from}: {} tasks x {} samples", env_ref.name, env_ref.version, s.tasks, args.samples);
        println!("mean reward   {:.4}", s.mean_reward);
        for (k, v) in &s.pass_at_k {
            println!("pass@{k:<7} {v:.4}");
        }
        for (k, v) in &s.components {
            println!("component {k}: {v:.4}");
        }
        if s.errors > 0 {
            println!("samples with errors: {}", s.errors);
        }
        let meta = json!({
            "run_id": run_id,
            "env": env_ref,
            "split": split,
            "data": args.data.data.as_ref().map(|p| p.display().to_string()),
            "start_index": args.start_index,
            "policy": policy_ref.id,
            "policy_version": policy_ref.version,
            "logprobs": policy_ref.logprobs,
            "sampling": sampling,
            "seed": args.seed,
            "summary": s,
            "turns": summary.turns,
            "tokens": summary.tokens,
            "versions": {
                "envhub": env!("CARGO_PKG_VERSION"),
                "protocol": envhub_sdk::PROTOCOL_VERSION,
                "trajectory_format": envhub_runner::trajectory::TRAJECTORY_FORMAT,
            },
            "results": args.out.display().to_string(),
        });
        let meta_path = args.out.with_extension("meta.json");
        let text = serde_json::to_string_pretty(&meta)?;
        std::fs::write(&meta_path, text + "\n").with_context(|| format!("writing {}", meta_path.display()))?;
        println!("results: {} (metadata {})", args.out.display(), meta_path.display());
        Ok(())
    })
}
