//! The deterministic package archive (gzip'd tar) and its safe reading.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path};

use sha2::{Digest, Sha256};

use super::{DATA_DIR, MANIFEST_FILE, MODULE_FILE, Manifest, PYTHON_DIR, PackageError, README_FILE};

/// Most bytes a package may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 1 << 30;
/// Most files a package may hold.
pub const MAX_FILES: usize = 100_000;

/// A package read from its archive and checked.
#[derive(Clone, Debug)]
pub struct Package {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The manifest as written by the author.
    pub manifest_text: String,
    /// The WebAssembly module (empty for a Python package).
    pub module: Vec<u8>,
    /// A Python package's sources, by path relative to `python/`.
    pub python: BTreeMap<String, Vec<u8>>,
    /// The README card, if any.
    pub readme: Option<String>,
    /// Data files by path relative to `data/`.
    pub data: BTreeMap<String, Vec<u8>>,
    /// sha256 of the archive bytes: the package's identity.
    pub digest: [u8; 32],
    /// Size of the archive in bytes.
    pub size: u64,
}

impl Package {
    /// The digest as `sha256:<hex>`.
    pub fn digest_string(&self) -> String {
        format!("sha256:{}", hex::encode(self.digest))
    }

    /// Reads and checks a package archive.
    pub fn from_bytes(archive: &[u8]) -> Result<Package, PackageError> {
        let digest: [u8; 32] = Sha256::digest(archive).into();
        let mut files = read_entries(archive)?;
        let manifest_bytes = files
            .remove(MANIFEST_FILE)
            .ok_or_else(|| PackageError::Archive(format!("no `{MANIFEST_FILE}` in the archive")))?;
        let manifest_text =
            String::from_utf8(manifest_bytes).map_err(|_| PackageError::Manifest("the file is not UTF-8".into()))?;
        let manifest = Manifest::parse(&manifest_text)?;
        let module = match (files.remove(MODULE_FILE), manifest.is_python()) {
            (Some(m), false) => m,
            (None, true) => Vec::new(),
            (None, false) => return Err(PackageError::Archive(format!("no `{MODULE_FILE}` in the archive"))),
            (Some(_), true) => {
                return Err(PackageError::Archive(format!(
                    "a Python package (package.runtime) holds {PYTHON_DIR}/ sources, not `{MODULE_FILE}`"
                )));
            }
        };
        let readme = files
            .remove(README_FILE)
            .map(|b| String::from_utf8(b).map_err(|_| PackageError::Archive(format!("{README_FILE} is not UTF-8"))))
            .transpose()?;
        let mut data = BTreeMap::new();
        let mut python = BTreeMap::new();
        for (path, bytes) in files {
            if let Some(rel) = path.strip_prefix("data/").filter(|r| !r.is_empty()) {
                data.insert(rel.to_owned(), bytes);
            } else if let Some(rel) = path.strip_prefix("python/").filter(|r| !r.is_empty() && manifest.is_python()) {
                python.insert(rel.to_owned(), bytes);
            } else {
                return Err(PackageError::Archive(format!(
                    "unexpected file `{path}`: a package holds {MANIFEST_FILE}, {MODULE_FILE} (or {PYTHON_DIR}/ sources), {README_FILE} and {DATA_DIR}/ only"
                )));
            }
        }
        if manifest.is_python() {
            if manifest.package.runtime.as_deref() != Some(super::PYTHON_RUNTIME) {
                return Err(PackageError::Manifest(format!(
                    "package.runtime must be \"{}\" in a built package (`envhub build` writes it)",
                    super::PYTHON_RUNTIME
                )));
            }
            if !python.contains_key("env.py") {
                return Err(PackageError::Archive(format!("a Python package needs `{PYTHON_DIR}/env.py`")));
            }
        }
        Ok(Package { manifest, manifest_text, module, python, readme, data, digest, size: archive.len() as u64 })
    }

    /// Reads and checks a package file.
    pub fn from_file(path: &Path) -> Result<Package, PackageError> {
        let bytes = std::fs::read(path).map_err(|e| PackageError::io(path, e))?;
        Package::from_bytes(&bytes)
    }
}

fn safe_relative_path(path: &Path) -> Result<String, PackageError> {
    let text = path.to_str().ok_or_else(|| PackageError::Archive(format!("path {path:?} is not UTF-8")))?;
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or_default()),
            Component::CurDir => {}
            _ => return Err(PackageError::Archive(format!("unsafe path `{text}` (absolute or with `..`)"))),
        }
    }
    if parts.is_empty() {
        return Err(PackageError::Archive(format!("empty path `{text}`")));
    }
    Ok(parts.join("/"))
}

fn read_entries(archive: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, PackageError> {
    let bad = |e: std::io::Error| PackageError::Archive(format!("not a gzip'd tar archive: {e}"));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut files = BTreeMap::new();
    let mut total: u64 = 0;
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let kind = entry.header().entry_type();
        let path = safe_relative_path(&entry.path().map_err(bad)?)?;
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(PackageError::Archive(format!("`{path}` is not a regular file (links are not allowed)")));
        }
        let size = entry.header().size().map_err(bad)?;
        total = total.saturating_add(size);
        if total > MAX_UNPACKED_BYTES {
            return Err(PackageError::Archive(format!("unpacks to more than {MAX_UNPACKED_BYTES} bytes")));
        }
        if files.len() >= MAX_FILES {
            return Err(PackageError::Archive(format!("holds more than {MAX_FILES} files")));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 26));
        entry.by_ref().take(size).read_to_end(&mut bytes).map_err(bad)?;
        if files.insert(path.clone(), bytes).is_some() {
            return Err(PackageError::Archive(format!("`{path}` appears twice")));
        }
    }
    if files.is_empty() {
        return Err(PackageError::Archive("the archive is empty".into()));
    }
    Ok(files)
}

fn collect_data(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> Result<(), PackageError> {
    let entries = std::fs::read_dir(dir).map_err(|e| PackageError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| PackageError::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| PackageError::io(&path, e))?;
        if kind.is_dir() {
            collect_data(root, &path, out)?;
        } else if kind.is_file() {
            let rel =
                path.strip_prefix(root).map_err(|_| PackageError::Archive(format!("{} escapes", path.display())))?;
            let rel = safe_relative_path(rel)?;
            let bytes = std::fs::read(&path).map_err(|e| PackageError::io(&path, e))?;
            out.insert(format!("{DATA_DIR}/{rel}"), bytes);
        } else {
            return Err(PackageError::Archive(format!(
                "{} is not a regular file: data files cannot be links",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Builds a package archive. The same inputs give the same bytes: entries are
/// sorted, times, owners and modes are fixed, and the gzip header has no time.
pub fn pack(
    manifest_text: &str,
    module: &[u8],
    readme: Option<&str>,
    data_dir: Option<&Path>,
) -> Result<Vec<u8>, PackageError> {
    Manifest::parse(manifest_text)?;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    files.insert(MODULE_FILE.into(), module.to_vec());
    write_archive(manifest_text, files, readme, data_dir)
}

/// Builds a Python package archive (see [`pack`]): `sources` by path
/// relative to `python/`, which must hold `env.py`.
pub fn pack_python(
    manifest_text: &str,
    sources: &BTreeMap<String, Vec<u8>>,
    readme: Option<&str>,
    data_dir: Option<&Path>,
) -> Result<Vec<u8>, PackageError> {
    if !Manifest::parse(manifest_text)?.is_python() {
        return Err(PackageError::Manifest("a Python package's manifest names package.runtime".into()));
    }
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (rel, bytes) in sources {
        let rel = safe_relative_path(Path::new(rel))?;
        files.insert(format!("{PYTHON_DIR}/{rel}"), bytes.clone());
    }
    write_archive(manifest_text, files, readme, data_dir)
}

fn write_archive(
    manifest_text: &str,
    mut files: BTreeMap<String, Vec<u8>>,
    readme: Option<&str>,
    data_dir: Option<&Path>,
) -> Result<Vec<u8>, PackageError> {
    files.insert(MANIFEST_FILE.into(), manifest_text.as_bytes().to_vec());
    if let Some(readme) = readme {
        files.insert(README_FILE.into(), readme.as_bytes().to_vec());
    }
    if let Some(dir) = data_dir {
        collect_data(dir, dir, &mut files)?;
    }
    let gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let write_err = |e: std::io::Error| PackageError::Archive(format!("cannot write the archive: {e}"));
    for (path, bytes) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        tar.append_data(&mut header, path, bytes.as_slice()).map_err(write_err)?;
    }
    let mut gz = tar.into_inner().map_err(write_err)?;
    gz.flush().map_err(write_err)?;
    gz.finish().map_err(write_err)
}

/// Writes a package's data files under `dir` (created), for the guest's `/data`.
/// The directory is filled under a temporary name and renamed into place, so
/// a reader never sees it half-written.
pub fn unpack_data(package: &Package, dir: &Path) -> Result<(), PackageError> {
    unpack_files(&package.data, dir)
}

/// Writes a Python package's sources under `dir`, for the guest's `/env`
/// (as [`unpack_data`] does).
pub fn unpack_python(package: &Package, dir: &Path) -> Result<(), PackageError> {
    unpack_files(&package.python, dir)
}

fn unpack_files(files: &BTreeMap<String, Vec<u8>>, dir: &Path) -> Result<(), PackageError> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| PackageError::io(parent, e))?;
    let tmp = tempfile_dir(parent)?;
    for (rel, bytes) in files {
        let path = tmp.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).map_err(|e| PackageError::io(p, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| PackageError::io(&path, e))?;
    }
    match std::fs::rename(&tmp, dir) {
        Ok(()) => Ok(()),
        // Another process unpacked the same digest first.
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(PackageError::io(dir, e))
        }
    }
}

fn tempfile_dir(parent: &Path) -> Result<std::path::PathBuf, PackageError> {
    for attempt in 0..100u32 {
        let path = parent.join(format!(".unpack-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(PackageError::io(&path, e)),
        }
    }
    Err(PackageError::Archive(format!("cannot create a temporary directory in {}", parent.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str =
        "[package]\nname = \"demo/echo\"\nversion = \"0.1.0\"\ndescription = \"d\"\nlicense = \"MIT\"\n";

    #[test]
    fn packing_is_deterministic_and_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("b.txt"), "b").expect("write");
        std::fs::write(dir.path().join("sub/a.txt"), "a").expect("write");
        let one = pack(MANIFEST, b"\0asm", Some("# Echo"), Some(dir.path())).expect("pack");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(dir.path().join("b.txt"), "b").expect("touch");
        let two = pack(MANIFEST, b"\0asm", Some("# Echo"), Some(dir.path())).expect("pack");
        assert_eq!(one, two, "same inputs, same bytes");
        let pkg = Package::from_bytes(&one).expect("read");
        assert_eq!(pkg.module, b"\0asm");
        assert_eq!(pkg.readme.as_deref(), Some("# Echo"));
        assert_eq!(pkg.data.keys().collect::<Vec<_>>(), vec!["b.txt", "sub/a.txt"]);
        assert_eq!(pkg.digest, <[u8; 32]>::from(Sha256::digest(&one)));
    }

    #[test]
    fn bad_archives_are_refused_with_the_reason() {
        let err = Package::from_bytes(b"not an archive").expect_err("refused").to_string();
        assert!(err.contains("gzip"), "{err}");
        // An archive without a module.
        let gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(MANIFEST.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, MANIFEST_FILE, MANIFEST.as_bytes()).expect("append");
        let bytes = tar.into_inner().expect("tar").finish().expect("gz");
        let err = Package::from_bytes(&bytes).expect_err("refused").to_string();
        assert!(err.contains(MODULE_FILE), "{err}");
    }

    #[test]
    fn path_traversal_is_refused() {
        assert!(safe_relative_path(Path::new("../etc/passwd")).is_err());
        assert!(safe_relative_path(Path::new("/etc/passwd")).is_err());
        assert_eq!(safe_relative_path(Path::new("./data/x")).expect("ok"), "data/x");
    }
}
