//! `envhub test`: the self-test, with a progress bar and a report.

use std::path::PathBuf;

use anyhow::{Result, bail};
use envhub_sandbox::selftest::{SelfTestOptions, planned_tasks, self_test};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `envhub test`.
#[derive(clap::Args)]
pub struct Args {
    /// Environments to test: packages, modules, crates or first-party names.
    #[arg(default_values_os_t = vec![crate::current_dir()])]
    pub envs: Vec<PathBuf>,
    /// Tasks tested from the start of each split.
    #[arg(long, default_value_t = 5)]
    pub tasks: u64,
    /// Seed of every reset.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `envhub test`.
pub fn run(args: Args) -> Result<()> {
    let sandbox = crate::home::sandbox()?;
    let options = SelfTestOptions { tasks_per_split: args.tasks, seed: args.seed, ..SelfTestOptions::default() };
    let mut failed = Vec::new();
    for env in &args.envs {
        let loaded = crate::home::load(&sandbox, env)?;
        let info = loaded.module.info()?;
        println!("{}@{} ({})", info.name, info.version, loaded.digest());
        let bar = ProgressBar::new(planned_tasks(&info, &options));
        bar.set_style(
            ProgressStyle::with_template("  {bar:30} {pos}/{len} tasks {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let report = self_test(&loaded.module, &options, |task| {
            bar.set_message(format!("{}#{}", task.split, task.index));
            bar.inc(1);
        })?;
        bar.finish_and_clear();
        for split in report.info.splits.keys() {
            let tasks: Vec<_> = report.tasks.iter().filter(|t| &t.split == split).collect();
            let validated = tasks.iter().filter(|t| t.validated).count();
            let bad = tasks.iter().filter(|t| t.failure.is_some()).count();
            let mark = if bad == 0 { "ok" } else { "FAILED" };
            println!(
                "  {split}: {} tasks, {validated} reference answers earned full reward, every call deterministic: {mark}",
                tasks.len()
            );
        }
        for f in report.failures() {
            println!("    {}#{}: {}", f.split, f.index, f.failure.as_deref().unwrap_or(""));
        }
        if !report.passed() {
            failed.push(info.name.clone());
        }
    }
    if !failed.is_empty() {
        bail!("self-test failed for {}", failed.join(", "));
    }
    println!("all environments passed");
    Ok(())
}
