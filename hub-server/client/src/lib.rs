//! envhub-client: the client side of envhub, shared by the `envhub` CLI and
//! the Python package.
//!
//! - [`resolve`]: an environment reference (a file, a crate, a first-party
//!   name, `owner/name@REQ`) to a module loaded in the sandbox;
//! - [`pull`]: resolving `owner/name@REQ` on a hub, downloading the archive,
//!   checking its digest before anything is cached or run, and pinning it in
//!   [`lockfile`] `envhub.lock`;
//! - [`hub`]: the hub's HTTP API and the stored login;
//! - [`home`]: where caches and credentials live (`$ENVHUB_HOME`).

#![warn(missing_docs)]

mod error;
pub mod home;
pub mod hub;
pub mod lockfile;
pub mod pull;
pub mod resolve;
pub mod spec;

pub use error::ClientError;
pub use resolve::{Loaded, Located, Origin, Resolver};
