//! The deterministic package archive (gzip'd tar) and its safe reading.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path};

use sha2::{Digest, Sha256};

use super::data::{self, Data, TempDir};
use super::{DATA_DIR, MANIFEST_FILE, MODULE_FILE, Manifest, PYTHON_DIR, PackageError, README_FILE};

/// Most bytes a package may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 1 << 30;
/// Most files a package may hold.
pub const MAX_FILES: usize = 100_000;
/// Most bytes of a package held in memory: everything but its data files
/// (which a package opened from a file unpacks to disk as it is read).
/// With a hub checking a few uploads at once, this bounds what a hostile
/// upload can make it hold; real modules and Python sources with their
/// wheels are a few megabytes.
pub const MAX_HELD_BYTES: u64 = 64 << 20;
/// Most bytes of a README card.
pub const MAX_README_BYTES: usize = 1 << 20;

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
    pub data: Data,
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

    /// Reads and checks a package archive held in memory, data files included.
    pub fn from_bytes(archive: &[u8]) -> Result<Package, PackageError> {
        let digest: [u8; 32] = Sha256::digest(archive).into();
        let entries = read_entries(archive, DataSink::Memory)?;
        let data = Data::in_memory(entries.data.clone());
        Package::from_entries(entries, data, digest, archive.len() as u64)
    }

    /// Reads and checks a package file into memory, data files included
    /// (see [`Package::open`] for large packages).
    pub fn from_file(path: &Path) -> Result<Package, PackageError> {
        let bytes = std::fs::read(path).map_err(|e| PackageError::io(path, e))?;
        Package::from_bytes(&bytes)
    }

    /// Reads and checks a package file, streaming: its data files are
    /// unpacked under `data_root/<hex digest>` as the archive is read (or
    /// found there, checked against the archive's list of files and sizes),
    /// so memory holds at most [`MAX_HELD_BYTES`] whatever the package's size.
    pub fn open(path: &Path, data_root: &Path) -> Result<Package, PackageError> {
        let (digest, size) = hash_file(path)?;
        let dir = data_root.join(hex::encode(digest));
        let reader = || -> Result<_, PackageError> {
            Ok(std::io::BufReader::new(std::fs::File::open(path).map_err(|e| PackageError::io(path, e))?))
        };
        if dir.is_dir() {
            let entries = read_entries(reader()?, DataSink::Sizes)?;
            if data::holds_exactly(&dir, &entries.data_sizes) {
                let data = Data::on_disk(entries.data_sizes.clone(), dir);
                return Package::from_entries(entries, data, digest, size);
            }
        }
        let tmp = TempDir::beside(&dir)?;
        let entries = read_entries(reader()?, DataSink::Dir(&tmp.0))?;
        if entries.data_sizes.is_empty() {
            return Package::from_entries(entries, Data::default(), digest, size);
        }
        data::install(tmp, &dir, &entries.data_sizes)?;
        let data = Data::on_disk(entries.data_sizes.clone(), dir);
        Package::from_entries(entries, data, digest, size)
    }

    /// Reads only the manifest of a package file, without unpacking or
    /// keeping anything else: what a hub needs to decide whether a token may
    /// publish the package before it spends disk and CPU on checking it.
    /// The archive's limits ([`MAX_UNPACKED_BYTES`], [`MAX_FILES`], safe
    /// paths) are enforced on the entries read on the way.
    pub fn read_manifest(path: &Path) -> Result<Manifest, PackageError> {
        let file = std::fs::File::open(path).map_err(|e| PackageError::io(path, e))?;
        let mut entries = read_entries(std::io::BufReader::new(file), DataSink::ManifestOnly)?;
        let bytes = entries
            .files
            .remove(MANIFEST_FILE)
            .ok_or_else(|| PackageError::Archive(format!("no `{MANIFEST_FILE}` in the archive")))?;
        let text = String::from_utf8(bytes).map_err(|_| PackageError::Manifest("the file is not UTF-8".into()))?;
        Manifest::parse(&text)
    }

    fn from_entries(entries: Entries, data: Data, digest: [u8; 32], size: u64) -> Result<Package, PackageError> {
        let mut files = entries.files;
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
        let readme = files.remove(README_FILE).map(read_readme).transpose()?;
        let mut python = BTreeMap::new();
        for (path, bytes) in files {
            if let Some(rel) = path.strip_prefix("python/").filter(|r| !r.is_empty() && manifest.is_python()) {
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
        Ok(Package { manifest, manifest_text, module, python, readme, data, digest, size })
    }
}

fn read_readme(bytes: Vec<u8>) -> Result<String, PackageError> {
    if bytes.len() > MAX_README_BYTES {
        return Err(PackageError::Archive(format!(
            "{README_FILE} is {} bytes; a card holds at most {MAX_README_BYTES}",
            bytes.len()
        )));
    }
    String::from_utf8(bytes).map_err(|_| PackageError::Archive(format!("{README_FILE} is not UTF-8")))
}

/// sha256 and size of a file, read in a stream.
fn hash_file(path: &Path) -> Result<([u8; 32], u64), PackageError> {
    let mut file = std::fs::File::open(path).map_err(|e| PackageError::io(path, e))?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(|e| PackageError::io(path, e))?;
    Ok((hasher.finalize().into(), size))
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

/// A path as a case-insensitive, Unicode-normalising file system compares
/// it: canonical decomposition, full case folding (approximated by upper
/// then lower case, which also folds `ß`/`ss`, `ς`/`σ` and `ſ`/`s`), then
/// NFC. NFC rather than NFKC because file systems (APFS, HFS+) equate
/// canonically equivalent names only: compatibility forms (`x²` and `x2`,
/// full-width `ｆ` and `f`) are distinct files everywhere, so refusing them
/// would refuse packages that unpack fine on every host.
fn folded_name(path: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let upper: String = path.nfd().flat_map(char::to_uppercase).collect();
    upper.chars().flat_map(char::to_lowercase).nfc().collect()
}

/// The paths of an archive's files and of the directories above them, by
/// [`folded_name`], to refuse two that a case-insensitive or normalising
/// file system would make one.
#[derive(Default)]
struct FoldedPaths {
    /// Folded path -> (the path as written, whether it is a directory).
    seen: std::collections::HashMap<String, (String, bool)>,
}

impl FoldedPaths {
    /// Adds the file `path` (`/`-separated, as [`safe_relative_path`]
    /// writes it) and its parent directories.
    fn insert(&mut self, path: &str) -> Result<(), PackageError> {
        let mut end = 0;
        loop {
            let next = path[end..].find('/').map(|i| end + i);
            let prefix = &path[..next.unwrap_or(path.len())];
            let is_dir = next.is_some();
            match self.seen.entry(folded_name(prefix)) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert((prefix.to_owned(), is_dir));
                }
                std::collections::hash_map::Entry::Occupied(e) => {
                    let (first, first_is_dir) = e.get();
                    if first != prefix {
                        return Err(PackageError::NameCollision { first: first.clone(), second: prefix.to_owned() });
                    }
                    if !(is_dir && *first_is_dir) {
                        let what =
                            if is_dir || *first_is_dir { "is both a file and a directory" } else { "appears twice" };
                        return Err(PackageError::Archive(format!("`{prefix}` {what}")));
                    }
                }
            }
            match next {
                Some(i) => end = i + 1,
                None => return Ok(()),
            }
        }
    }
}

/// Where [`read_entries`] puts data files.
enum DataSink<'a> {
    /// In memory.
    Memory,
    /// Streamed into files under this directory.
    Dir(&'a Path),
    /// Read past: only their sizes are kept.
    Sizes,
    /// Everything read past but the manifest, and reading stops there.
    ManifestOnly,
}

/// An archive's files: all but data files (by path), and the data files'
/// sizes and (with [`DataSink::Memory`]) bytes, by path relative to `data/`.
struct Entries {
    files: BTreeMap<String, Vec<u8>>,
    data: BTreeMap<String, Vec<u8>>,
    data_sizes: BTreeMap<String, u64>,
}

fn read_entries(archive: impl Read, sink: DataSink<'_>) -> Result<Entries, PackageError> {
    let bad = |e: std::io::Error| PackageError::Archive(format!("not a gzip'd tar archive: {e}"));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut out = Entries { files: BTreeMap::new(), data: BTreeMap::new(), data_sizes: BTreeMap::new() };
    let (mut total, mut held, mut count) = (0u64, 0u64, 0usize);
    let mut folded = FoldedPaths::default();
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
        count += 1;
        if count > MAX_FILES {
            return Err(PackageError::Archive(format!("holds more than {MAX_FILES} files")));
        }
        // Before anything is written, so a colliding file never lands on a
        // case-insensitive disk over the first one.
        folded.insert(&path)?;
        let twice = || PackageError::Archive(format!("`{path}` appears twice"));
        let mut body = entry.by_ref().take(size);
        if matches!(sink, DataSink::ManifestOnly) {
            if path == MANIFEST_FILE {
                if size > MAX_HELD_BYTES {
                    return Err(PackageError::Archive(format!("{MANIFEST_FILE} is over {MAX_HELD_BYTES} bytes")));
                }
                out.files.insert(path, read_body(&mut body, size).map_err(bad)?);
                return Ok(out);
            }
            std::io::copy(&mut body, &mut std::io::sink()).map_err(bad)?;
            continue;
        }
        if let Some(rel) = path.strip_prefix("data/").filter(|r| !r.is_empty()) {
            if out.data_sizes.insert(rel.to_owned(), size).is_some() {
                return Err(twice());
            }
            match sink {
                DataSink::Memory => {
                    out.data.insert(rel.to_owned(), read_body(&mut body, size).map_err(bad)?);
                }
                DataSink::Dir(dir) => write_body(&mut body, &dir.join(rel))?,
                DataSink::Sizes | DataSink::ManifestOnly => {
                    std::io::copy(&mut body, &mut std::io::sink()).map_err(bad)?;
                }
            }
            continue;
        }
        held = held.saturating_add(size);
        if held > MAX_HELD_BYTES {
            return Err(PackageError::Archive(format!(
                "its files other than {DATA_DIR}/ hold more than {MAX_HELD_BYTES} bytes; put large files in {DATA_DIR}/"
            )));
        }
        let bytes = read_body(&mut body, size).map_err(bad)?;
        if out.files.insert(path.clone(), bytes).is_some() {
            return Err(twice());
        }
    }
    if count == 0 {
        return Err(PackageError::Archive("the archive is empty".into()));
    }
    Ok(out)
}

fn read_body(body: &mut impl Read, size: u64) -> std::io::Result<Vec<u8>> {
    // The header's size is the archive's claim: grow as bytes arrive.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
    body.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn write_body(body: &mut impl Read, path: &Path) -> Result<(), PackageError> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| PackageError::io(p, e))?;
    }
    let mut file = std::fs::File::create_new(path).map_err(|e| PackageError::io(path, e))?;
    std::io::copy(body, &mut file).map_err(|e| PackageError::io(path, e))?;
    Ok(())
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
    let mut folded = FoldedPaths::default();
    for path in files.keys() {
        folded.insert(path)?;
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

/// Makes `dir` hold a package's data files, for the guest's `/data`: they
/// are written under a temporary name and renamed into place, so a reader
/// never sees them half-written, and a directory found there is used only
/// when it holds exactly the package's files.
pub fn unpack_data(package: &Package, dir: &Path) -> Result<(), PackageError> {
    package.data.unpack(dir)
}

/// Writes a Python package's sources under `dir`, for the guest's `/env`
/// (as [`unpack_data`] does).
pub fn unpack_python(package: &Package, dir: &Path) -> Result<(), PackageError> {
    data::unpack_files(&package.python, dir)
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
        assert_eq!(pkg.data.paths().collect::<Vec<_>>(), vec!["b.txt", "sub/a.txt"]);
        assert_eq!(pkg.data.read("sub/a.txt").expect("read"), b"a");
        assert_eq!(pkg.digest, <[u8; 32]>::from(Sha256::digest(&one)));
    }

    #[test]
    fn the_manifest_alone_is_read_without_unpacking_anything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("mkdir");
        std::fs::write(data.join("big.bin"), vec![7u8; 1 << 20]).expect("write");
        let file = dir.path().join("pkg.tar.gz");
        std::fs::write(&file, pack(MANIFEST, b"\0asm", None, Some(&data)).expect("pack")).expect("write");
        let before = std::fs::read_dir(dir.path()).expect("list").count();
        let manifest = Package::read_manifest(&file).expect("manifest");
        assert_eq!(manifest.package.name.to_string(), "demo/echo");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), before, "nothing written");
        // An archive with no manifest, or not an archive, says so.
        std::fs::write(&file, raw_archive_without_manifest()).expect("write");
        let err = Package::read_manifest(&file).expect_err("refused").to_string();
        assert!(err.contains(MANIFEST_FILE), "{err}");
        std::fs::write(&file, b"junk").expect("write");
        let err = Package::read_manifest(&file).expect_err("refused").to_string();
        assert!(err.contains("gzip"), "{err}");
    }

    fn raw_archive_without_manifest() -> Vec<u8> {
        let gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        tar.append_data(&mut h, MODULE_FILE, &b"\0asm"[..]).expect("append");
        tar.into_inner().expect("tar").finish().expect("gz")
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

    /// A tar.gz of `paths` (each holding its own name), as any tool might write it.
    fn raw_archive(paths: &[&str]) -> Vec<u8> {
        let gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (path, body) in
            [(MANIFEST_FILE, MANIFEST), (MODULE_FILE, "\0asm")].into_iter().chain(paths.iter().map(|p| (*p, *p)))
        {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            tar.append_data(&mut h, path, body.as_bytes()).expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("gz")
    }

    #[test]
    fn names_that_collide_on_case_insensitive_or_normalising_disks_are_refused() {
        // "é" precomposed (NFC) and as "e" + combining acute (NFD, as macOS writes it).
        // (first file, second file, the two paths the error names).
        for (a, b, named) in [
            ("data/Readme.txt", "data/README.txt", ["data/Readme.txt", "data/README.txt"]),
            ("data/caf\u{e9}.txt", "data/cafe\u{301}.txt", ["data/caf\u{e9}.txt", "data/cafe\u{301}.txt"]),
            ("data/CAF\u{c9}.txt", "data/cafe\u{301}.txt", ["data/CAF\u{c9}.txt", "data/cafe\u{301}.txt"]),
            ("data/STRASSE", "data/stra\u{df}e", ["data/STRASSE", "data/stra\u{df}e"]),
            ("data/Sub/a.txt", "data/sub/b.txt", ["data/Sub", "data/sub"]),
            ("data/X/y", "data/x", ["data/X", "data/x"]),
        ] {
            let err = Package::from_bytes(&raw_archive(&[a, b])).expect_err("refused");
            let text = err.to_string();
            assert!(
                matches!(&err, PackageError::NameCollision { .. }) && text.contains("rename one"),
                "{a}/{b}: {text}"
            );
            for p in named {
                assert!(text.contains(&format!("`{p}`")), "{p}: {text}");
            }

            let mut files = BTreeMap::new();
            files.insert(a.to_owned(), b"1".to_vec());
            files.insert(b.to_owned(), b"2".to_vec());
            let err = write_archive(MANIFEST, files, None, None).expect_err("refused");
            assert!(matches!(err, PackageError::NameCollision { .. }), "{a} / {b}: {err}");
        }
        // Compatibility forms are distinct files everywhere, and so are distinct names.
        let pkg = Package::from_bytes(&raw_archive(&[
            "data/\u{ff46}ile",
            "data/file",
            "data/x\u{b2}",
            "data/x2",
            "data/a/b",
            "data/a/c",
        ]))
        .expect("distinct names");
        assert_eq!(pkg.data.paths().count(), 6);
        // A file and a directory of one name is refused even in one case.
        let err = Package::from_bytes(&raw_archive(&["data/a", "data/a/b"])).expect_err("refused").to_string();
        assert!(err.contains("both a file and a directory"), "{err}");
    }

    #[test]
    fn pack_refuses_data_files_that_collide() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("caf\u{e9}.txt"), "nfc").expect("write");
        if std::fs::write(dir.path().join("cafe\u{301}.txt"), "nfd").is_err()
            || std::fs::read_dir(dir.path()).expect("list").count() < 2
        {
            return; // this disk already makes them one file
        }
        let err = pack(MANIFEST, b"\0asm", None, Some(dir.path())).expect_err("refused");
        let text = err.to_string();
        assert!(matches!(err, PackageError::NameCollision { .. }), "{text}");
        assert!(text.contains("data/caf") && text.contains("rename one"), "{text}");
    }

    #[test]
    fn path_traversal_is_refused() {
        assert!(safe_relative_path(Path::new("../etc/passwd")).is_err());
        assert!(safe_relative_path(Path::new("/etc/passwd")).is_err());
        assert_eq!(safe_relative_path(Path::new("./data/x")).expect("ok"), "data/x");
    }
}
