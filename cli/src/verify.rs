//! `envhub verify FILE`: replay each recorded trajectory through the
//! environment with the recorded digest and confirm every reward bit for bit.

use std::collections::{BTreeMap, HashMap};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use envhub_runner::trajectory::Trajectory;
use envhub_runner::verify::verify_reader;
use envhub_sandbox::EnvModule;

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
    // Candidate packages: --env, then for each recorded environment the
    // package with its digest in the local pull cache, then its recorded
    // source if that still exists.
    let mut candidates: Vec<String> = args.envs.clone();
    let mut add = |c: String| {
        if !candidates.contains(&c) {
            candidates.push(c);
        }
    };
    for line in text.lines() {
        let Ok(t) = serde_json::from_str::<Trajectory>(line) else { continue };
        if let Ok(cached) = envhub_client::pull::cache_path(&t.env.digest)
            && cached.is_file()
        {
            add(cached.display().to_string());
        }
        if let Some(src) = t.env.source
            && Path::new(&src).exists()
        {
            add(src);
        }
    }
    let sandbox = crate::home::sandbox()?;
    let mut by_digest: HashMap<String, EnvModule> = HashMap::new();
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &candidates {
        let loaded = match crate::home::load(&sandbox, Path::new(c)) {
            Ok(l) => l,
            Err(e) if args.envs.contains(c) => return Err(e),
            Err(_) => continue,
        };
        let digest = loaded.digest();
        if let Ok(info) = loaded.module.info() {
            names.entry(info.name).or_default().push(digest.clone());
        }
        by_digest.insert(digest, loaded.module);
    }
    let report = verify_reader(BufReader::new(text.as_bytes()), |d| by_digest.get(d).cloned(), &names)?;
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
