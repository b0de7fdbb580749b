//! `envhub.lock`: each environment pinned to a version, a source and the
//! digest of its archive. Written by `envhub pull`; with `--locked` (or
//! `ENVHUB_LOCKED=1`) resolution uses exactly these digests.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The lockfile's name.
pub const LOCKFILE: &str = "envhub.lock";

/// The whole lockfile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lockfile {
    /// Format version (1).
    pub version: u32,
    /// One entry per environment.
    #[serde(default, rename = "package")]
    pub packages: Vec<LockEntry>,
}

/// One pinned environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockEntry {
    /// `owner/name`.
    pub name: String,
    /// The resolved version.
    pub version: String,
    /// The hub it came from.
    pub source: String,
    /// `sha256:<hex>` of the archive.
    pub digest: String,
}

impl Lockfile {
    /// Reads `path`; an absent file is an empty lockfile.
    pub fn read(path: &Path) -> Result<Lockfile> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("{} is not a valid lockfile", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lockfile { version: 1, packages: Vec::new() }),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes `path` (whole, via a temporary file and a rename).
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut sorted = self.clone();
        sorted.version = 1;
        sorted.packages.sort_by(|a, b| a.name.cmp(&b.name));
        let text = format!(
            "# envhub.lock: written by `envhub pull`. Each environment is pinned to the digest of its archive.\n{}",
            toml::to_string(&sorted).context("serialising the lockfile")?
        );
        let tmp = path.with_extension("lock.tmp");
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }

    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&LockEntry> {
        self.packages.iter().find(|e| e.name == name)
    }

    /// Adds or replaces the entry for `entry.name`.
    pub fn upsert(&mut self, entry: LockEntry) {
        self.packages.retain(|e| e.name != entry.name);
        self.packages.push(entry);
    }
}
