//! The hub side of the CLI: `serve`, `login`, `token create`, `publish`,
//! `pull`, `search`, `yank`, the `envhub.lock` lockfile, and resolving
//! `owner/name@REQ` arguments for every command that takes an environment.

pub mod client;
pub mod lockfile;
pub mod pull;
pub mod spec;

mod commands;

pub use commands::HubCommand;
