//! `envhub.lock`: each environment pinned to a version, a source and the
//! digest of its archive. Written by pulls; with `--locked` (or
//! `ENVHUB_LOCKED=1`) resolution uses exactly these digests.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ClientError;

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
    pub fn read(path: &Path) -> Result<Lockfile, ClientError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| ClientError::Invalid(format!("{} is not a valid lockfile: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lockfile { version: 1, packages: Vec::new() }),
            Err(e) => Err(ClientError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Writes `path` whole (atomically), entries sorted by name.
    pub fn write(&self, path: &Path) -> Result<(), ClientError> {
        let mut sorted = self.clone();
        sorted.version = 1;
        sorted.packages.sort_by(|a, b| a.name.cmp(&b.name));
        let body =
            toml::to_string(&sorted).map_err(|e| ClientError::Invalid(format!("cannot encode the lockfile: {e}")))?;
        let text = format!(
            "# envhub.lock: written by `envhub pull`. Each environment is pinned to the digest of its archive.\n{body}"
        );
        envhub_sandbox::fs::write_atomic(path, text.as_bytes())
            .map_err(|e| ClientError::io(format!("writing {}", path.display()), e))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_sorted_and_reads_absent_as_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LOCKFILE);
        assert!(Lockfile::read(&path).expect("absent").packages.is_empty());
        let mut lock = Lockfile::default();
        for name in ["b/x", "a/y"] {
            lock.upsert(LockEntry {
                name: name.into(),
                version: "1.0.0".into(),
                source: "http://hub".into(),
                digest: format!("sha256:{}", "0".repeat(64)),
            });
        }
        lock.write(&path).expect("write");
        let back = Lockfile::read(&path).expect("read");
        assert_eq!(back.packages.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["a/y", "b/x"]);
        std::fs::write(&path, "not = [toml").expect("write");
        assert!(Lockfile::read(&path).expect_err("bad").to_string().contains("not a valid lockfile"));
    }
}
