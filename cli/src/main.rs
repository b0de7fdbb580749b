//! `envhub`: build, test, score and play RL environments.

mod build;
mod build_python;
mod eval;
mod home;
mod hub;
mod info;
mod new;
mod play;
mod run;
mod runner_common;
mod score;
mod serve_env;
mod test;
mod trajectories;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// envhub: sandboxed RL environments with deterministic rewards.
#[derive(Parser)]
#[command(name = "envhub", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Trust this CA certificate (PEM) for HTTPS hubs, besides the
    /// platform's (e.g. a private hub's self-signed certificate).
    #[arg(long, global = true, env = "ENVHUB_CA_CERT", value_name = "PEM")]
    ca_cert: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new environment crate that builds and passes `envhub test` as is.
    New(new::Args),
    /// Build an environment crate into a package (.envpkg).
    Build(build::Args),
    /// Show a package's or module's manifest, digest and `info`.
    Info(info::Args),
    /// Self-test an environment: determinism, and full reward for reference answers.
    Test(test::Args),
    /// Score completions without a policy (one from flags, or a JSONL batch).
    Score(score::Args),
    /// Play an environment yourself in the terminal.
    Play(play::Args),
    // The hub: serve, login, token, publish, pull, search, yank.
    #[command(flatten)]
    Hub(hub::HubCommand),
    /// Roll out a policy on environments and write scored trajectories.
    Run(Box<run::Args>),
    /// Evaluate a policy: n tasks x k samples, mean reward and pass@k.
    Eval(eval::Args),
    /// Replay recorded trajectories and confirm every reward bit for bit.
    Verify(verify::Args),
    /// The trajectory API (Atropos-compatible).
    #[command(subcommand)]
    Trajectories(trajectories::Command),
    /// Serve an environment's rewards over HTTP: OpenRLHF's remote reward
    /// protocol (POST /get_reward) and POST /score.
    RewardServer(serve_env::RewardServerArgs),
    /// Serve an environment to OpenEnv clients (TRL, SkyRL, verifiers).
    #[command(subcommand)]
    Openenv(serve_env::OpenEnvCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(ca) = cli.ca_cert {
        envhub_client::hub::use_ca_cert(ca);
    }
    let result = match cli.command {
        Command::New(args) => new::run(args),
        Command::Build(args) => build::run(args).map(|_| ()),
        Command::Info(args) => info::run(args),
        Command::Test(args) => test::run(args),
        Command::Score(args) => score::run(args),
        Command::Play(args) => play::run(args),
        Command::Hub(command) => command.run(),
        Command::Run(args) => run::run(*args),
        Command::Eval(args) => eval::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Trajectories(cmd) => trajectories::run(cmd),
        Command::RewardServer(args) => serve_env::reward_server(args),
        Command::Openenv(cmd) => serve_env::openenv(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The default environment argument: the current directory.
fn current_dir() -> PathBuf {
    PathBuf::from(".")
}
