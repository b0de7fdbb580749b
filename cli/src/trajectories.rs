//! `envhub trajectories serve`: the Atropos-compatible trajectory API with a
//! durable store.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use envhub_runner::api::{ApiOptions, ApiState, serve};

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
    /// Address to listen on (port 0: any free port; the one taken is printed).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// Where accepted groups are kept: a log file (default:
    /// $ENVHUB_HOME/trajectories/api.log; one server per log, a second one
    /// is refused), or a PostgreSQL URL (`postgres://USER@HOST/DB`), which
    /// any number of servers may share as one queue.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Largest request body, MiB, both as sent and once gzip is decoded.
    #[arg(long, default_value_t = 64)]
    pub max_body_mib: u64,
    /// Compact the log once this many MiB of it (and half of it) are consumed groups.
    #[arg(long, default_value_t = 64)]
    pub compact_mib: u64,
    /// Answer `/batch` and `/reset_data` on POST only (Atropos's own
    /// clients call them with GET).
    #[arg(long)]
    pub post_only: bool,
}

fn options(args: &ServeArgs) -> Result<ApiOptions> {
    if args.max_body_mib == 0 || args.max_body_mib > 4096 {
        bail!("--max-body-mib must be from 1 to 4096");
    }
    let max_body = usize::try_from(args.max_body_mib << 20).context("--max-body-mib is too large here")?;
    Ok(ApiOptions {
        max_body_bytes: max_body,
        max_decoded_bytes: max_body,
        compact_min_bytes: args.compact_mib.saturating_mul(1 << 20),
        atropos_get: !args.post_only,
    })
}

/// The store's URL, when `--store` names a PostgreSQL database.
fn postgres_url(store: &std::path::Path) -> Option<&str> {
    store.to_str().filter(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// Runs `envhub trajectories ...`.
pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Serve(args) => {
            let options = options(&args)?;
            let store = args.store.clone().unwrap_or_else(|| envhub_client::home::root().join("trajectories/api.log"));
            let rt = crate::runner_common::runtime()?;
            let (state, described) = match postgres_url(&store) {
                Some(url) => {
                    let state = rt.block_on(ApiState::connect_postgres(url, options))?;
                    (state, "PostgreSQL".to_owned())
                }
                None => {
                    if let Some(dir) = store.parent() {
                        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                    }
                    (ApiState::open_with(&store, options)?, store.display().to_string())
                }
            };
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&args.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", args.listen))?;
                let addr = listener.local_addr().context("the listening address")?;
                eprintln!(
                    "trajectory API on http://{addr} ({} groups queued; store {described})",
                    state.queue_len().await?
                );
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                serve(listener, state, shutdown).await?;
                Ok(())
            })
        }
    }
}
