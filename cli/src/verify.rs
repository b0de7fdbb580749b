//! `envhub verify FILE`: replay each recorded trajectory through the
//! environment with the recorded digest and confirm every reward bit for bit.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use envhub_runner::verify::verify_text;

/// Arguments of `envhub verify`.
#[derive(clap::Args)]
pub struct Args {
    /// A JSONL trajectory file (from `envhub run` or `envhub eval`).
    pub file: PathBuf,
    /// Environments to check against (packages, modules, crates, names);
    /// the packages recorded on the trajectories are found by themselves
    /// when they are still where they were.
    #[arg(long = "env")]
    pub envs: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `envhub verify`.
pub fn run(args: Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let sandbox = crate::home::sandbox()?;
    let report = verify_text(&text, &args.envs, &sandbox, &envhub_client::Resolver::default())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for m in &report.mismatches {
            println!("line {} {}: {}: {}", m.line, m.trajectory, m.kind, m.message);
        }
        println!("verified {}/{} trajectories", report.verified, report.trajectories);
    }
    if !report.ok() {
        bail!("{} problem(s) in {}", report.mismatches.len(), args.file.display());
    }
    Ok(())
}
