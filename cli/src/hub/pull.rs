//! Resolving and fetching `owner/name@REQ`: the lockfile's pin if it
//! satisfies the requirement, else the highest non-yanked matching version
//! on the hub; the archive is checked against its digest before it is
//! cached or anything runs. The cache is content-addressed:
//! `$ENVHUB_HOME/packages/sha256/<hex>.envpkg`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::client::Client;
use super::lockfile::{LOCKFILE, LockEntry, Lockfile};
use super::spec::Spec;

/// How to resolve.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--hub`.
    pub hub: Option<String>,
    /// Use exactly the lockfile's digests; never consult the index.
    pub locked: bool,
    /// The lockfile.
    pub lockfile: PathBuf,
    /// Record the resolution in the lockfile.
    pub update_lockfile: bool,
}

impl Options {
    /// For commands that take an environment: `ENVHUB_HUB`, `ENVHUB_LOCKED=1`,
    /// `./envhub.lock`.
    pub fn from_env() -> Options {
        Options {
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

/// Where the archive with `digest` is cached.
pub fn cache_path(digest: &str) -> Result<PathBuf> {
    let hex = digest.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let hex = hex.with_context(|| format!("`{digest}` is not `sha256:` and 64 hex digits"))?;
    Ok(crate::home::root().join("packages").join("sha256").join(format!("{hex}.envpkg")))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Resolves `spec` and makes sure its verified archive is in the cache.
pub fn fetch(spec: &Spec, options: &Options) -> Result<Fetched> {
    let name = spec.name.to_string();
    let mut lock = Lockfile::read(&options.lockfile)?;
    let pinned = lock.get(&name).filter(|e| semver::Version::parse(&e.version).is_ok_and(|v| spec.req.matches(&v)));
    let (entry, from_lockfile) = match pinned {
        Some(entry) => (entry.clone(), true),
        None if options.locked => bail!(
            "{} has no entry for {name} matching `{}` and --locked forbids resolving anew; run `envhub pull {spec}` without --locked",
            options.lockfile.display(),
            spec.req
        ),
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
fn resolve(spec: &Spec, options: &Options) -> Result<LockEntry> {
    let client = Client::new(options.hub.as_deref())?;
    let name = spec.name.to_string();
    let index = client.get(&format!("looking up {name}"), &format!("/api/v1/packages/{name}"))?;
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
        bail!("no version of {name} on {} matches `{}`{yanked}", client.base, spec.req);
    };
    Ok(LockEntry { name, version: version.to_string(), source: client.base.clone(), digest })
}

/// Downloads `entry` into the cache unless a verified copy is there; the
/// digest is checked before the archive is written to the cache.
fn ensure_cached(entry: &LockEntry, options: &Options) -> Result<PathBuf> {
    let path = cache_path(&entry.digest)?;
    if let Ok(bytes) = std::fs::read(&path) {
        if sha256(&bytes) == entry.digest {
            return Ok(path);
        }
        // A damaged cache entry: drop it and download again.
        let _ = std::fs::remove_file(&path);
    }
    let hub = options.hub.clone().unwrap_or_else(|| entry.source.clone());
    let client = Client::new(Some(&hub))?;
    let bytes = client.download(&entry.digest)?;
    let got = sha256(&bytes);
    if got != entry.digest {
        bail!(
            "digest mismatch for {} {} from {}: expected {}, got {got}; the download was discarded and nothing was run",
            entry.name,
            entry.version,
            client.base,
            entry.digest
        );
    }
    write_atomically(&path, &bytes)?;
    Ok(path)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
