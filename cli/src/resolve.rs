//! Turns an environment argument into a loaded module: a package file, a bare
//! `.wasm`, an environment crate directory (its built package), or the name
//! of a first-party environment under `./environments/`, or `owner/name@REQ`
//! (resolved through `envhub.lock`, the cache and the hub).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use envhub_sandbox::package::{Manifest, Package};
use envhub_sandbox::{EnvModule, LoadOptions, Sandbox};

/// An environment ready to call.
pub struct Loaded {
    /// The package, when it came from one.
    pub package: Option<Package>,
    /// The callable module.
    pub module: EnvModule,
}

impl Loaded {
    /// `sha256:<hex>` of the package (or of the bare module).
    pub fn digest(&self) -> String {
        match &self.package {
            Some(p) => p.digest_string(),
            None => format!("sha256:{}", hex(&self.module.digest())),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The directory holding the environment crate that `arg` names, if any.
pub fn crate_dir(arg: &Path) -> Option<PathBuf> {
    if arg.join("envhub.toml").is_file() {
        return Some(arg.to_path_buf());
    }
    let first_party = Path::new("environments").join(arg);
    if arg.is_relative() && first_party.join("envhub.toml").is_file() {
        return Some(first_party);
    }
    if arg == Path::new(".") {
        return single_child_env(arg);
    }
    None
}

/// When the current directory is not an environment but holds exactly one
/// (as right after `envhub new NAME`), that one.
fn single_child_env(dir: &Path) -> Option<PathBuf> {
    let mut found = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("envhub.toml").is_file());
    let one = found.next()?;
    if found.next().is_some() {
        return None;
    }
    eprintln!("using the environment in {}", one.display());
    Some(one)
}

/// Where `envhub build` puts the package of the crate in `dir`.
pub fn package_path(dir: &Path) -> Result<PathBuf> {
    let manifest_path = dir.join("envhub.toml");
    let text =
        std::fs::read_to_string(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?;
    let manifest = Manifest::parse(&text).with_context(|| format!("in {}", manifest_path.display()))?;
    let target = crate::build::cargo_target_dir(dir)?;
    Ok(target.join("envhub").join(package_file_name(&manifest)))
}

/// `owner-name-version.envpkg`.
pub fn package_file_name(manifest: &Manifest) -> String {
    let p = &manifest.package;
    format!("{}-{}-{}.envpkg", p.name.owner(), p.name.name(), p.version)
}

/// Loads the environment `arg` names.
pub fn load(sandbox: &Sandbox, arg: &Path) -> Result<Loaded> {
    let label = arg.display().to_string();
    if arg.is_file() {
        if arg.extension().is_some_and(|e| e == "wasm") {
            let module = sandbox.load_file(arg, LoadOptions::default()).with_context(|| format!("loading {label}"))?;
            return Ok(Loaded { package: None, module });
        }
        return load_package_file(sandbox, arg);
    }
    if let Some(dir) = crate_dir(arg) {
        let path = package_path(&dir)?;
        if !path.is_file() {
            bail!("{} is not built yet: run `envhub build {}` first", dir.display(), dir.display());
        }
        return load_package_file(sandbox, &path);
    }
    // owner/name@REQ: from the lockfile, the cache or the hub (verified).
    if let Some(spec) = crate::hub::spec::Spec::from_arg(&label) {
        let fetched = crate::hub::pull::fetch(&spec, &crate::hub::pull::Options::from_env())?;
        return load_package_file(sandbox, &fetched.path);
    }
    bail!(
        "no environment `{label}`: it is not a package file, not a .wasm module, not a directory with envhub.toml, and there is no environments/{label}/envhub.toml here"
    )
}

fn load_package_file(sandbox: &Sandbox, path: &Path) -> Result<Loaded> {
    let package = Package::from_file(path).with_context(|| format!("reading package {}", path.display()))?;
    let module = sandbox
        .load_package(&package, &crate::home::data_dir())
        .with_context(|| format!("loading {}", package.manifest.package.name))?;
    Ok(Loaded { package: Some(package), module })
}
