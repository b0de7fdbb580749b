//! `envhub info`: what a package or module is and says about itself.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// Arguments of `envhub info`.
#[derive(clap::Args)]
pub struct Args {
    /// A package (.envpkg), a module (.wasm), an environment crate or a first-party name.
    #[arg(default_value_os_t = crate::current_dir())]
    pub env: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `envhub info`.
pub fn run(args: Args) -> Result<()> {
    let sandbox = crate::home::sandbox()?;
    let loaded = crate::home::load(&sandbox, &args.env)?;
    let info = loaded.module.info().context("`info` call failed")?;
    if args.json {
        let manifest = loaded.package.as_ref().map(|p| &p.manifest);
        let out = serde_json::json!({ "digest": loaded.digest(), "manifest": manifest, "info": info });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("{}@{}  {}", info.name, info.version, loaded.digest());
    if !info.description.is_empty() {
        println!("  {}", info.description);
    }
    if let Some(p) = &loaded.package {
        let m = &p.manifest;
        println!("  license: {}   protocol: v{}   size: {} bytes", m.package.license, m.package.protocol, p.size);
        println!(
            "  limits: fuel {}, memory {} MiB, deadline {} ms",
            m.limits.fuel,
            m.limits.memory_bytes >> 20,
            m.limits.deadline_ms
        );
        println!("  data files: {}", p.data.len());
    }
    let splits: Vec<String> = info
        .splits
        .iter()
        .map(|(name, n)| match n {
            Some(n) => format!("{name} ({n})"),
            None => format!("{name} (generated)"),
        })
        .collect();
    println!("  splits: {}", splits.join(", "));
    println!("  max turns: {}", info.max_turns);
    let components: Vec<String> = info.reward_components.iter().map(|c| format!("{} x{}", c.name, c.weight)).collect();
    println!("  reward: {}", components.join(" + "));
    if !info.tools.is_empty() {
        let tools: Vec<&str> = info.tools.iter().map(|t| t.function.name.as_str()).collect();
        println!("  tools: {}", tools.join(", "));
    }
    if !info.capabilities.is_empty() {
        println!("  capabilities: {}", info.capabilities.join(", "));
    }
    Ok(())
}
