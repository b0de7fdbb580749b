//! `envhub build` for a Python environment (`runtime = "python"` in
//! envhub.toml): packs the directory's Python sources, the Python guest SDK
//! this envhub vendors, and the pure-Python wheels the manifest lists
//! (checked against their sha256), with the README and `data/`, into a
//! deterministic package whose manifest names the pinned runtime. Tests
//! (`test_*.py`, `*_test.py`, `conftest.py`, `tests/`) are left out.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use envhub_sandbox::package::{Manifest, PYTHON_RUNTIME, Package, pack_python};
use sha2::{Digest, Sha256};

/// Directories never packed.
const SKIPPED_DIRS: &[&str] = &["target", "data", "__pycache__", "node_modules", "venv", "dist", "build", "tests"];

/// Whether `name` is a pytest test module or configuration, which runs on
/// the author's machine, not in the environment, and is not packed.
fn is_test_file(name: &str) -> bool {
    name == "conftest.py" || name.starts_with("test_") || name.ends_with("_test.py")
}

/// Builds the Python environment in `dir`; returns the package path.
pub fn run(dir: &Path, manifest: &Manifest, out: Option<PathBuf>) -> Result<PathBuf> {
    let mut sources = BTreeMap::new();
    collect_sources(dir, dir, &mut sources)?;
    if !sources.contains_key("env.py") {
        bail!("{} has no env.py: a Python environment defines its class in env.py", dir.display());
    }
    if let Some(taken) = sources.keys().find(|k| k.starts_with("envhub/")) {
        bail!(
            "{} holds `{taken}`: the directory envhub/ is the guest SDK, which envhub build vendors itself; rename it",
            dir.display()
        );
    }
    for (path, text) in envhub_sdk::python_sdk::FILES {
        sources.insert((*path).to_owned(), text.as_bytes().to_vec());
    }
    for wheel in manifest.python.iter().flat_map(|p| &p.wheels) {
        vendor_wheel(dir, &wheel.path, &wheel.sha256, &mut sources)?;
    }
    // The package's manifest names the runtime build its rewards come from.
    let mut built = manifest.clone();
    built.package.runtime = Some(PYTHON_RUNTIME.to_owned());
    built.package.runtime_sha256 = Some(envhub_sandbox::PYTHON_WASM_SHA256.to_owned());
    let manifest_text = built.to_toml();
    let readme = crate::build::read_readme(dir)?;
    let data_dir = dir.join("data");
    let archive =
        pack_python(&manifest_text, &sources, readme.as_deref(), data_dir.is_dir().then_some(data_dir.as_path()))?;
    let package = Package::from_bytes(&archive)?;
    let out = match out {
        Some(out) if out.is_dir() => out.join(envhub_client::resolve::package_file_name(manifest)),
        Some(out) => out,
        None => envhub_client::resolve::package_path(dir)?,
    };
    crate::build::check_and_write(manifest, &archive, &package, &out)?;
    Ok(out)
}

/// Every `.py` file under `dir` (sorted; hidden and build directories skipped).
fn collect_sources(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let kind = entry.file_type().with_context(|| format!("reading {}", path.display()))?;
        if name.starts_with('.') {
            continue;
        }
        if kind.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                collect_sources(root, &path, out)?;
            }
        } else if kind.is_file() && name.ends_with(".py") && !is_test_file(&name) {
            let rel = path.strip_prefix(root).context("a source outside the environment")?;
            let rel = rel.to_string_lossy().replace('\\', "/");
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            out.insert(rel, bytes);
        }
    }
    Ok(())
}

/// Unpacks a pure-Python wheel's modules (not its `.dist-info`) into `sources`.
fn vendor_wheel(dir: &Path, rel: &str, sha256: &str, sources: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    let path = dir.join(rel);
    let bytes = std::fs::read(&path).with_context(|| format!("reading wheel {}", path.display()))?;
    let got = hex::encode(Sha256::digest(&bytes));
    if !got.eq_ignore_ascii_case(sha256) {
        bail!("wheel {rel} has sha256 {got}, not the {sha256} envhub.toml pins; nothing was built");
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).with_context(|| format!("{rel} is not a wheel"))?;
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).with_context(|| format!("reading {rel}"))?;
        if file.is_dir() {
            continue;
        }
        let Some(name) = file.enclosed_name() else {
            bail!("{rel} holds an unsafe path (absolute or with `..`)");
        };
        let name = name.to_string_lossy().replace('\\', "/");
        if name.split('/').next().is_some_and(|top| top.ends_with(".dist-info") || top.ends_with(".data")) {
            continue;
        }
        if !(name.ends_with(".py") || name.ends_with(".typed") || name.ends_with(".json") || name.ends_with(".txt")) {
            bail!("wheel {rel} holds `{name}`, which is not Python source: only pure-Python wheels can be vendored");
        }
        if sources.contains_key(&name) {
            bail!("wheel {rel} and another source both provide `{name}`");
        }
        let mut content = Vec::new();
        file.read_to_end(&mut content).with_context(|| format!("reading {name} in {rel}"))?;
        sources.insert(name, content);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_stay_out_of_packages() {
        for name in ["test_env.py", "env_test.py", "conftest.py"] {
            assert!(is_test_file(name), "{name}");
        }
        for name in ["env.py", "testing.py", "contest.py", "attest.py"] {
            assert!(!is_test_file(name), "{name}");
        }
    }
}
