//! The caches of compiled modules: in memory (a bounded number, the least
//! recently used evicted first) and on disk, between processes.
//!
//! A cache file is trusted only when it was written by this user and is the
//! file that was written: the directory must be owned by the effective user
//! and writable by nobody else (checked when the sandbox starts; there is no
//! shared fallback), and each file has a `.sha256` companion naming its
//! digest, checked before the file is used. A file that fails the check is
//! removed and made again. Compiled code read from disk runs natively, so
//! this is what keeps a writable cache from being a way to run code.

use std::collections::HashMap;
use std::hash::Hasher;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Module;

use crate::SandboxError;

/// Compiled modules kept in memory, by key, at most `capacity`.
pub(crate) struct Modules {
    capacity: usize,
    clock: u64,
    entries: HashMap<[u8; 32], (Module, u64)>,
}

impl Modules {
    pub(crate) fn new(capacity: usize) -> Modules {
        Modules { capacity: capacity.max(1), clock: 0, entries: HashMap::new() }
    }

    pub(crate) fn get(&mut self, key: &[u8; 32]) -> Option<Module> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(key).map(|(module, used)| {
            *used = clock;
            module.clone()
        })
    }

    pub(crate) fn insert(&mut self, key: [u8; 32], module: Module) {
        self.clock += 1;
        if !self.entries.contains_key(&key)
            && self.entries.len() >= self.capacity
            && let Some(oldest) = self.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| *k)
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(key, (module, self.clock));
    }

    pub(crate) fn remove(&mut self, key: &[u8; 32]) {
        self.entries.remove(key);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A cache directory private to this user, whose files are checked against
/// their recorded digests before use.
#[derive(Clone, Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// The cache in `dir`, created (mode 0700) if missing; refused when
    /// another user owns it or others may write to it.
    pub(crate) fn open(dir: &Path) -> Result<DiskCache, SandboxError> {
        crate::fs::ensure_private_dir(dir).map_err(|e| SandboxError::Host(format!("module cache: {e}")))?;
        Ok(DiskCache { dir: dir.to_path_buf() })
    }

    /// The path of the entry `name`, if it is there and its bytes are the
    /// ones recorded when it was written.
    pub(crate) fn verified(&self, name: &str) -> Option<PathBuf> {
        let (path, record) = (self.dir.join(name), self.dir.join(format!("{name}.sha256")));
        let recorded = std::fs::read_to_string(&record).ok()?;
        let mut file = std::fs::File::open(&path).ok()?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher).ok()?;
        if hex::encode(hasher.finalize()) == recorded.trim() {
            return Some(path);
        }
        // Torn, corrupted or replaced: made again.
        self.remove(name);
        None
    }

    /// The bytes of the entry `name`, if it is there and verified.
    pub(crate) fn read(&self, name: &str) -> Option<Vec<u8>> {
        let path = self.verified(name)?;
        std::fs::read(path).ok()
    }

    /// Stores `bytes` as the entry `name`, then its digest. The caches are
    /// an optimisation, so failing to write is not an error.
    pub(crate) fn write(&self, name: &str, bytes: &[u8]) {
        let digest = hex::encode(Sha256::digest(bytes));
        if crate::fs::write_atomic(&self.dir.join(name), bytes).is_ok() {
            let _ = crate::fs::write_atomic(&self.dir.join(format!("{name}.sha256")), digest.as_bytes());
        }
    }

    /// Removes the entry `name`, if present.
    pub(crate) fn remove(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.join(format!("{name}.sha256")));
        let _ = std::fs::remove_file(self.dir.join(name));
    }
}

/// A [`Hasher`] over sha256, so that a key made from `Hash` values (the
/// engine's compatibility hash) is the same under every Rust release, which
/// the standard library's hasher does not promise.
#[derive(Default)]
pub(crate) struct StableHasher(Sha256);

impl StableHasher {
    /// The hex digest of everything written.
    pub(crate) fn hex(self) -> String {
        hex::encode(self.0.finalize())
    }
}

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_module_goes_first() {
        let engine = wasmtime::Engine::default();
        let module = Module::new(&engine, "(module)").expect("module");
        let mut modules = Modules::new(2);
        modules.insert([1; 32], module.clone());
        modules.insert([2; 32], module.clone());
        assert!(modules.get(&[1; 32]).is_some());
        modules.insert([3; 32], module.clone());
        assert!(modules.get(&[2; 32]).is_none(), "2 was the least recently used");
        assert!(modules.get(&[1; 32]).is_some() && modules.get(&[3; 32]).is_some());
        assert_eq!(modules.len(), 2);
        modules.remove(&[1; 32]);
        assert_eq!(modules.len(), 1);
    }

    #[test]
    fn entries_are_used_only_when_they_are_what_was_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = DiskCache::open(&dir.path().join("modules")).expect("open");
        cache.write("a.cwasm", b"compiled code");
        assert_eq!(cache.read("a.cwasm").as_deref(), Some(&b"compiled code"[..]));
        // Changed behind our back: not used, and removed.
        std::fs::write(dir.path().join("modules/a.cwasm"), b"other code!!!").expect("tamper");
        assert_eq!(cache.read("a.cwasm"), None);
        assert!(!dir.path().join("modules/a.cwasm").exists());
        // Without its digest (a crash between the two writes): not used.
        std::fs::write(dir.path().join("modules/b.cwasm"), b"x").expect("write");
        assert_eq!(cache.read("b.cwasm"), None);
    }

    #[test]
    fn a_directory_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = DiskCache::open(&shared).expect_err("refused").to_string();
        assert!(err.contains("writable") && err.contains("chmod"), "{err}");
        // A new one is made private.
        DiskCache::open(&dir.path().join("new")).expect("created");
        let mode = std::fs::metadata(dir.path().join("new")).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    #[test]
    fn the_stable_hasher_is_sha256_of_what_was_written() {
        let mut h = StableHasher::default();
        h.write(b"abc");
        assert_eq!(h.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
