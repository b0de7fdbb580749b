//! A package's data files (the guest's `/data`): held in memory when the
//! package was read from bytes, or unpacked to a directory as the archive
//! is read from a file, so a large package is never held in memory. An
//! unpacked directory is used again only after it is checked against the
//! package's list of files and sizes, never because it exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::PackageError;

/// A package's data files by path relative to `data/`.
#[derive(Clone, Debug, Default)]
pub struct Data {
    sizes: BTreeMap<String, u64>,
    place: Place,
}

#[derive(Clone, Debug, Default)]
enum Place {
    /// No files.
    #[default]
    None,
    /// Their bytes, by path.
    Memory(BTreeMap<String, Vec<u8>>),
    /// Unpacked under this directory.
    Dir(PathBuf),
}

impl Data {
    /// Files held in memory.
    pub(crate) fn in_memory(files: BTreeMap<String, Vec<u8>>) -> Data {
        let sizes = sizes_of(&files);
        Data { sizes, place: Place::Memory(files) }
    }

    /// Files unpacked in `dir`, with these sizes.
    pub(crate) fn on_disk(sizes: BTreeMap<String, u64>, dir: PathBuf) -> Data {
        Data { sizes, place: Place::Dir(dir) }
    }

    /// How many files there are.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Their paths, relative to `data/`, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.sizes.keys().map(String::as_str)
    }

    /// Bytes of all files together.
    pub fn total_bytes(&self) -> u64 {
        self.sizes.values().sum()
    }

    /// The directory the files were unpacked to, if they were.
    pub fn dir(&self) -> Option<&Path> {
        match &self.place {
            Place::Dir(dir) => Some(dir),
            Place::None | Place::Memory(_) => None,
        }
    }

    /// The bytes of the file at `path` (relative to `data/`).
    pub fn read(&self, path: &str) -> Result<Vec<u8>, PackageError> {
        let missing = || PackageError::Archive(format!("no data file `{path}`"));
        if !self.sizes.contains_key(path) {
            return Err(missing());
        }
        match &self.place {
            Place::Memory(files) => files.get(path).cloned().ok_or_else(missing),
            Place::Dir(dir) => std::fs::read(dir.join(path)).map_err(|e| PackageError::io(dir.join(path), e)),
            Place::None => Err(missing()),
        }
    }

    /// Makes `dir` hold the files (see [`unpack_files`]); nothing to do when
    /// they were unpacked there.
    pub(crate) fn unpack(&self, dir: &Path) -> Result<(), PackageError> {
        match &self.place {
            Place::Memory(files) => unpack_files(files, dir),
            Place::Dir(from) if from == dir => Ok(()),
            Place::Dir(from) => {
                if holds_exactly(dir, &self.sizes) {
                    return Ok(());
                }
                let tmp = TempDir::beside(dir)?;
                for rel in self.sizes.keys() {
                    let (src, dst) = (from.join(rel), tmp.0.join(rel));
                    if let Some(p) = dst.parent() {
                        std::fs::create_dir_all(p).map_err(|e| PackageError::io(p, e))?;
                    }
                    std::fs::copy(&src, &dst).map_err(|e| PackageError::io(&src, e))?;
                }
                install(tmp, dir, &self.sizes)
            }
            Place::None if self.sizes.is_empty() => Ok(()),
            Place::None => Err(PackageError::Archive("the package's data files were not kept".into())),
        }
    }
}

/// The size of each file.
pub(crate) fn sizes_of(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, u64> {
    files.iter().map(|(p, b)| (p.clone(), b.len() as u64)).collect()
}

/// Whether `dir` holds exactly `sizes`: every file there, of that size, and
/// nothing else (no links, no extra files).
pub(crate) fn holds_exactly(dir: &Path, sizes: &BTreeMap<String, u64>) -> bool {
    let mut seen = 0usize;
    fn walk(root: &Path, dir: &Path, sizes: &BTreeMap<String, u64>, seen: &mut usize) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else { return false };
        for entry in entries {
            let Ok(entry) = entry else { return false };
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { return false };
            if meta.is_dir() {
                if !walk(root, &entry.path(), sizes, seen) {
                    return false;
                }
                continue;
            }
            let rel = entry.path().strip_prefix(root).ok().and_then(|r| r.to_str()).map(|r| r.replace('\\', "/"));
            match rel.and_then(|r| sizes.get(&r).copied()) {
                Some(size) if meta.is_file() && meta.len() == size => *seen += 1,
                _ => return false,
            }
        }
        true
    }
    dir.is_dir() && walk(dir, dir, sizes, &mut seen) && seen == sizes.len()
}

/// Writes `files` under `dir` (created) unless it already holds exactly
/// them. The directory is filled under a temporary name and renamed into
/// place, so a reader never sees it half-written; one that does not hold
/// what it should is replaced.
pub(crate) fn unpack_files(files: &BTreeMap<String, Vec<u8>>, dir: &Path) -> Result<(), PackageError> {
    let sizes = sizes_of(files);
    if holds_exactly(dir, &sizes) {
        return Ok(());
    }
    let tmp = TempDir::beside(dir)?;
    for (rel, bytes) in files {
        let path = tmp.0.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| PackageError::io(p, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| PackageError::io(&path, e))?;
    }
    install(tmp, dir, &sizes)
}

/// Renames the filled `tmp` to `dir` once it holds exactly `sizes`,
/// replacing a `dir` that does not.
pub(crate) fn install(tmp: TempDir, dir: &Path, sizes: &BTreeMap<String, u64>) -> Result<(), PackageError> {
    if !holds_exactly(&tmp.0, sizes) {
        return Err(PackageError::Archive(format!("the files unpacked in {} are not the package's", tmp.0.display())));
    }
    if dir.exists() && !holds_exactly(dir, sizes) {
        // Not what it should be: tampered with, or left by an older layout.
        std::fs::remove_dir_all(dir).map_err(|e| PackageError::io(dir, e))?;
    }
    match std::fs::rename(&tmp.0, dir) {
        Ok(()) => {
            std::mem::forget(tmp);
            Ok(())
        }
        // Another process unpacked the same package first.
        Err(_) if holds_exactly(dir, sizes) => Ok(()),
        Err(e) => Err(PackageError::io(dir, e)),
    }
}

/// A temporary directory beside the one being filled, removed unless
/// installed.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    /// A fresh one in the parent of `dir` (created).
    pub(crate) fn beside(dir: &Path) -> Result<TempDir, PackageError> {
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| PackageError::io(parent, e))?;
        let tmp =
            tempfile::Builder::new().prefix(".unpack-").tempdir_in(parent).map_err(|e| PackageError::io(parent, e))?;
        Ok(TempDir(tmp.keep()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> BTreeMap<String, Vec<u8>> {
        [("a.txt".to_string(), b"aa".to_vec()), ("sub/b.txt".to_string(), b"b".to_vec())].into()
    }

    #[test]
    fn an_unpacked_directory_is_used_again_only_when_it_holds_exactly_the_files() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("pkg");
        unpack_files(&files(), &dir).expect("unpack");
        assert_eq!(std::fs::read(dir.join("sub/b.txt")).expect("read"), b"b");
        let sizes = sizes_of(&files());
        assert!(holds_exactly(&dir, &sizes));

        // Truncated, extra or linked files are noticed and the directory is rewritten.
        std::fs::write(dir.join("a.txt"), b"a").expect("truncate");
        assert!(!holds_exactly(&dir, &sizes));
        unpack_files(&files(), &dir).expect("again");
        assert_eq!(std::fs::read(dir.join("a.txt")).expect("read"), b"aa");
        std::fs::write(dir.join("extra"), b"").expect("extra");
        assert!(!holds_exactly(&dir, &sizes));
        unpack_files(&files(), &dir).expect("again");
        assert!(!dir.join("extra").exists());
        std::fs::remove_file(dir.join("a.txt")).expect("rm");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("a.txt")).expect("link");
        assert!(!holds_exactly(&dir, &sizes));
        unpack_files(&files(), &dir).expect("again");
        assert!(std::fs::symlink_metadata(dir.join("a.txt")).expect("meta").is_file());
        // No temporaries are left behind.
        let names: Vec<_> = std::fs::read_dir(root.path()).expect("ls").map(|e| e.expect("e").file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("pkg")]);
    }
}
