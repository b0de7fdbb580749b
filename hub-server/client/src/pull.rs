//! Resolving and fetching `owner/name@REQ`: the lockfile's pin if it
//! satisfies the requirement, else the highest non-yanked matching version
//! on the hub; the archive is checked against its digest before it is
//! cached or anything runs. The cache is content-addressed:
//! `$ENVHUB_HOME/packages/sha256/<hex>.envpkg`.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::ClientError;
use crate::hub::Client;
use crate::lockfile::{LOCKFILE, LockEntry, Lockfile};
use crate::spec::Spec;

/// How to resolve.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// The hub (else `ENVHUB_HUB` or the login file's).
    pub hub: Option<String>,
    /// Use exactly the lockfile's digests; never consult the index.
    pub locked: bool,
    /// The lockfile.
    pub lockfile: PathBuf,
    /// Record the resolution in the lockfile.
    pub update_lockfile: bool,
}

impl Default for PullOptions {
    /// What commands that take an environment use: the configured hub,
    /// `ENVHUB_LOCKED=1` for `--locked`, `./envhub.lock`, updated.
    fn default() -> PullOptions {
        PullOptions {
            hub: None,
            locked: std::env::var("ENVHUB_LOCKED").is_ok_and(|v| v == "1" || v == "true"),
            lockfile: PathBuf::from(LOCKFILE),
            update_lockfile: true,
        }
    }
}

/// A fetched, verified package in the cache.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The cached archive.
    pub path: PathBuf,
    /// The lockfile entry it corresponds to.
    pub entry: LockEntry,
    /// Whether it came from the lockfile's pin.
    pub from_lockfile: bool,
}

/// The 64 hex digits of a `sha256:<hex>` digest.
pub fn digest_hex(digest: &str) -> Result<&str, ClientError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| ClientError::Invalid(format!("`{digest}` is not `sha256:` and 64 hex digits")))
}

/// Where the archive with `digest` is cached.
pub fn cache_path(digest: &str) -> Result<PathBuf, ClientError> {
    Ok(crate::home::packages_dir().join(format!("{}.envpkg", digest_hex(digest)?)))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Resolves `spec` and makes sure its verified archive is in the cache.
pub fn fetch(spec: &Spec, options: &PullOptions) -> Result<Fetched, ClientError> {
    let name = spec.name.to_string();
    let mut lock = Lockfile::read(&options.lockfile)?;
    let pinned = lock.get(&name).filter(|e| semver::Version::parse(&e.version).is_ok_and(|v| spec.req.matches(&v)));
    let (entry, from_lockfile) = match pinned {
        Some(entry) => (entry.clone(), true),
        None if options.locked => {
            return Err(ClientError::NotFound(format!(
                "{} has no entry for {name} matching `{}` and --locked forbids resolving anew; run `envhub pull {spec}` without --locked",
                options.lockfile.display(),
                spec.req
            )));
        }
        None => (resolve(spec, options)?, false),
    };
    let path = ensure_cached(&entry, options)?;
    if !from_lockfile && options.update_lockfile {
        lock.upsert(entry.clone());
        lock.write(&options.lockfile)?;
    }
    Ok(Fetched { path, entry, from_lockfile })
}

/// The highest non-yanked version on the hub that satisfies `spec`.
fn resolve(spec: &Spec, options: &PullOptions) -> Result<LockEntry, ClientError> {
    let client = Client::new(options.hub.as_deref())?;
    let name = spec.name.to_string();
    let index = match client.get(&format!("looking up {name}"), &format!("/api/v1/packages/{name}")) {
        Err(ClientError::Hub { status: 404, .. }) => {
            return Err(ClientError::NotFound(format!(
                "{name} is not on {}; `envhub search` lists what is",
                client.base
            )));
        }
        other => other?,
    };
    let versions = index["versions"].as_array().cloned().unwrap_or_default();
    let mut best: Option<(semver::Version, String)> = None;
    let mut yanked_matches = Vec::new();
    for v in &versions {
        let (Some(version), Some(digest)) = (v["version"].as_str(), v["digest"].as_str()) else { continue };
        let Ok(parsed) = semver::Version::parse(version) else { continue };
        if !spec.req.matches(&parsed) {
            continue;
        }
        if v["yanked"].as_bool() == Some(true) {
            yanked_matches.push(version.to_owned());
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| parsed > *b) {
            best = Some((parsed, digest.to_owned()));
        }
    }
    let Some((version, digest)) = best else {
        let yanked = if yanked_matches.is_empty() {
            String::new()
        } else {
            format!(" (yanked, usable only through a lockfile: {})", yanked_matches.join(", "))
        };
        return Err(ClientError::NotFound(format!(
            "no version of {name} on {} matches `{}`{yanked}",
            client.base, spec.req
        )));
    };
    Ok(LockEntry { name, version: version.to_string(), source: client.base.clone(), digest })
}

/// Downloads `entry` into the cache unless a verified copy is there; the
/// digest is checked before the archive is written to the cache.
fn ensure_cached(entry: &LockEntry, options: &PullOptions) -> Result<PathBuf, ClientError> {
    let path = cache_path(&entry.digest)?;
    if let Ok(bytes) = std::fs::read(&path) {
        if sha256_digest(&bytes) == entry.digest {
            return Ok(path);
        }
        // A damaged cache entry: drop it and download again.
        let _ = std::fs::remove_file(&path);
    }
    // The user's hub gets the user's token; a lockfile's source only one
    // stored for it.
    let client = match &options.hub {
        Some(hub) => Client::new(Some(hub))?,
        None => Client::for_source(&entry.source)?,
    };
    let bytes = client.download(&entry.digest)?;
    let got = sha256_digest(&bytes);
    if got != entry.digest {
        return Err(ClientError::DigestMismatch {
            name: entry.name.clone(),
            version: entry.version.clone(),
            source_url: client.base.clone(),
            expected: entry.digest.clone(),
            got,
        });
    }
    envhub_sandbox::fs::write_atomic(&path, &bytes)
        .map_err(|e| ClientError::io(format!("writing {}", path.display()), e))?;
    Ok(path)
}
