//! envhub-runner: pairs environments with a policy and produces scored
//! trajectories.
//!
//! - [`run::run`] samples a group of rollouts per task, concurrently; each
//!   rollout alternates [`Policy`] turns and environment steps (on blocking
//!   threads) until `done` or the turn limit, and every rollout yields a
//!   [`Trajectory`], failures included.
//! - Policies: [`OpenAiPolicy`] (any OpenAI-compatible server) and, with the
//!   default `candle` feature, [`policy::CandlePolicy`] (GGUF in-process).
//! - Sinks: [`sink::JsonlSink`], [`sink::ApiSink`] (Atropos-compatible), and
//!   the trajectory API server itself in [`api`].
//! - [`verify`] replays recorded trajectories; [`eval`] computes pass@k.
//! - Environments served to trainers: [`reward_server`] (OpenRLHF's remote
//!   reward protocol and a generic scoring endpoint) and [`openenv`]
//!   (OpenEnv's environment protocol, for OpenEnv clients).

#![warn(missing_docs)]

pub mod api;
pub mod curriculum;
pub mod data;
pub mod env;
pub mod error;
pub mod eval;
pub mod openenv;
pub mod pace;
pub mod policy;
pub mod reward_server;
pub mod run;
pub mod sink;
pub mod trajectory;
pub mod verify;

pub use env::EnvHandle;
pub use error::{PolicyError, RunnerError};
pub use policy::{Completion, OpenAiConfig, OpenAiPolicy, Policy, PolicyRequest};
pub use run::{EnvSpec, RunConfig, RunSummary, run};
pub use trajectory::{Finish, LogprobConvention, PolicyRef, Sampling, Trajectory};
