//! `envhub trajectories serve`: the Atropos-compatible trajectory API with a
//! durable store.

use std::path::PathBuf;

use anyhow::{Context, Result};
use envhub_runner::api::{ApiState, serve};

/// Subcommands of `envhub trajectories`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Serve the trajectory API (Atropos wire format); accepted groups
    /// survive restarts.
    Serve(ServeArgs),
}

/// Arguments of `envhub trajectories serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// The durable log (default: $ENVHUB_HOME/trajectories/api.log).
    #[arg(long)]
    pub store: Option<PathBuf>,
}

/// Runs `envhub trajectories ...`.
pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Serve(args) => {
            let store = args.store.unwrap_or_else(|| envhub_client::home::root().join("trajectories/api.log"));
            if let Some(dir) = store.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            let state = ApiState::open(&store)?;
            eprintln!(
                "trajectory API on http://{} ({} groups queued; store {})",
                args.listen,
                state.queue_len(),
                store.display()
            );
            crate::runner_common::runtime()?.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&args.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", args.listen))?;
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                serve(listener, state, shutdown).await?;
                Ok(())
            })
        }
    }
}
