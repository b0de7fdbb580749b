//! Environments served to trainers: `envhub reward-server` (OpenRLHF's
//! remote reward protocol) and `envhub openenv serve` (OpenEnv's
//! environment protocol).

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

/// What both servers take.
#[derive(clap::Args)]
pub struct EnvServerArgs {
    /// The environment: a first-party name, a package, a crate or owner/name@REQ.
    #[arg(long = "env", value_name = "ENV")]
    pub env: String,
    /// Address to listen on (a host name or IP and a port; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub addr: String,
    /// Environment configuration of every episode, as a JSON object
    /// (e.g. '{"weights": {"format": 0.1}}').
    #[arg(long = "env-config", value_name = "JSON")]
    pub env_config: Option<String>,
}

/// `envhub reward-server`.
#[derive(clap::Args)]
pub struct RewardServerArgs {
    #[command(flatten)]
    common: EnvServerArgs,
    /// Scoring calls at once (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// A token to cut from the end of responses, besides the usual chat
    /// end-of-turn tokens (repeatable).
    #[arg(long = "end-token", value_name = "TOKEN")]
    end_tokens: Vec<String>,
}

/// `envhub openenv ...`.
#[derive(clap::Subcommand)]
pub enum OpenEnvCommand {
    /// Serve an environment over OpenEnv's protocol (WebSocket /ws sessions,
    /// /reset, /step, /state, /schema, /metadata, /health).
    Serve(OpenEnvServeArgs),
}

/// `envhub openenv serve`.
#[derive(clap::Args)]
pub struct OpenEnvServeArgs {
    /// The environment: a first-party name, a package, a crate or owner/name@REQ.
    env: String,
    /// Address to listen on (a host name or IP and a port; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: String,
    /// Environment configuration of every episode, as a JSON object.
    #[arg(long = "env-config", value_name = "JSON")]
    env_config: Option<String>,
    /// Split that `reset` draws from when the client names none.
    #[arg(long)]
    split: Option<String>,
    /// WebSocket sessions at once.
    #[arg(long, default_value_t = 256)]
    max_sessions: usize,
}

fn parse_object(text: Option<&str>, flag: &str) -> Result<Map<String, Value>> {
    match text {
        None => Ok(Map::new()),
        Some(t) => match serde_json::from_str(t).with_context(|| format!("{flag} is not JSON"))? {
            Value::Object(m) => Ok(m),
            _ => bail!("{flag} must be a JSON object"),
        },
    }
}

/// Binds `addr` and serves `serve(listener)` until Ctrl-C, saying where.
fn run_server<F, Fut>(what: &str, addr: &str, serve: F) -> Result<()>
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: std::future::Future<Output = Result<(), envhub_runner::RunnerError>>,
{
    crate::runner_common::runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr().context("reading the bound address")?;
        eprintln!("{what} listening on http://{local}");
        serve(listener).await?;
        Ok(())
    })
}

async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Runs `envhub reward-server`.
pub fn reward_server(args: RewardServerArgs) -> Result<()> {
    use envhub_runner::reward_server::{RewardServer, RewardServerConfig, serve};
    let mut config = RewardServerConfig {
        env_config: parse_object(args.common.env_config.as_deref(), "--env-config")?,
        ..RewardServerConfig::default()
    };
    if let Some(t) = args.threads {
        config.threads = t.max(1);
    }
    config.end_tokens.extend(args.end_tokens);
    let sandbox = crate::home::sandbox()?;
    let loaded = crate::home::load(&sandbox, args.common.env.as_ref())?;
    let digest = loaded.digest();
    let server = RewardServer::new(loaded.module, digest.clone(), config)?;
    eprintln!("scoring with {} ({digest}); POST /get_reward (OpenRLHF) or /score", args.common.env);
    run_server("reward server", &args.common.addr, |l| serve(l, server, ctrl_c()))
}

/// Runs `envhub openenv ...`.
pub fn openenv(command: OpenEnvCommand) -> Result<()> {
    use envhub_runner::openenv::{OpenEnvConfig, OpenEnvServer, serve};
    let OpenEnvCommand::Serve(args) = command;
    let sandbox = crate::home::sandbox()?;
    let loaded = crate::home::load(&sandbox, args.env.as_ref())?;
    let digest = loaded.digest();
    let config = OpenEnvConfig {
        max_sessions: args.max_sessions.max(1),
        env_config: parse_object(args.env_config.as_deref(), "--env-config")?,
        split: args.split,
        readme: loaded.package.as_ref().and_then(|p| p.readme.clone()),
        ..OpenEnvConfig::default()
    };
    let server = OpenEnvServer::new(loaded.module, digest.clone(), config)?;
    eprintln!("serving {} ({digest}) over OpenEnv's protocol: ws /ws, /reset, /step, /state, /schema", args.env);
    run_server("OpenEnv server", &args.addr, |l| serve(l, server, ctrl_c()))
}
