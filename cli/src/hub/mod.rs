//! The hub commands of the CLI: `serve`, `login`, `token create`, `publish`,
//! `pull`, `search`, `yank`. Resolution, pulls and the lockfile live in
//! `envhub-client`.

mod commands;

pub use commands::HubCommand;
