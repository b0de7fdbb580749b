//! Turns an environment reference into a loaded module. A reference is one of:
//!
//! - a package file (`.envpkg`) or a bare module (`.wasm`);
//! - an environment crate directory (its built package, from `envhub build`);
//! - `owner/name@REQ`: the lockfile's pin, the pull cache or the hub;
//! - a first-party name such as `math`, looked up in this order:
//!   `./environments/NAME` (a checkout of envhub), the first-party package
//!   directories (`envhub-NAME-VERSION.envpkg`, highest version; the
//!   [`Resolver`]'s own, then `$ENVHUB_PACKAGES`, `:`-separated), then
//!   `envhub/NAME` on the configured hub. Without a hub to ask,
//!   `envhub/NAME@REQ` is served by a matching first-party package too.

use std::path::{Path, PathBuf};

use envhub_sandbox::package::{Manifest, Package};
use envhub_sandbox::{EnvModule, LoadOptions, Sandbox};
use serde_json::Value;

use crate::ClientError;
use crate::lockfile::LockEntry;
use crate::pull::{PullOptions, fetch};
use crate::spec::Spec;

/// The owner of first-party environments on a hub.
pub const FIRST_PARTY_OWNER: &str = "envhub";

/// How references are resolved.
#[derive(Clone, Debug, Default)]
pub struct Resolver {
    /// Directories holding built first-party packages, searched before
    /// `$ENVHUB_PACKAGES` (the Python package passes the ones it ships).
    pub first_party_dirs: Vec<PathBuf>,
    /// How `owner/name@REQ` references are pulled.
    pub pull: PullOptions,
}

/// Where a reference led.
#[derive(Clone, Debug)]
pub enum Origin {
    /// A bare `.wasm` module file.
    Module,
    /// A package file named directly.
    PackageFile,
    /// The built package of the environment crate in this directory.
    Crate(PathBuf),
    /// A built first-party package from a package directory.
    FirstParty,
    /// A package pulled from a hub (or its lockfile pin), verified.
    Hub {
        /// The resolution, as `envhub.lock` records it.
        entry: LockEntry,
        /// Whether the lockfile's pin was used.
        from_lockfile: bool,
    },
}

/// A reference resolved to a file.
#[derive(Clone, Debug)]
pub struct Located {
    /// The package or module file.
    pub path: PathBuf,
    /// How it was found.
    pub origin: Origin,
}

/// An environment ready to call.
pub struct Loaded {
    /// The package, when it came from one.
    pub package: Option<Package>,
    /// The callable module.
    pub module: EnvModule,
    /// Where it came from.
    pub located: Located,
}

impl Loaded {
    /// `sha256:<hex>` of the package (or of the bare module).
    pub fn digest(&self) -> String {
        match &self.package {
            Some(p) => p.digest_string(),
            None => format!("sha256:{}", hex::encode(self.module.digest())),
        }
    }

    /// The local file to record as the environment's source on a
    /// trajectory, so `envhub verify` finds it again; `None` for hub
    /// packages, which verify finds by digest in the pull cache.
    pub fn source(&self) -> Option<String> {
        match self.located.origin {
            Origin::Hub { .. } => None,
            _ => Some(self.located.path.display().to_string()),
        }
    }
}

/// The directory holding the environment crate that `arg` names, if any:
/// `arg` itself, `./environments/<arg>`, or, for `.`, the one environment
/// crate directly inside it (as right after `envhub new NAME`).
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

fn single_child_env(dir: &Path) -> Option<PathBuf> {
    let mut found = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("envhub.toml").is_file());
    let one = found.next()?;
    found.next().is_none().then_some(one)
}

/// `cargo metadata --no-deps` of the crate in `dir`.
pub fn cargo_metadata(dir: &Path) -> Result<Value, ClientError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| ClientError::io("running `cargo metadata` (is cargo installed?)", e))?;
    if !output.status.success() {
        return Err(ClientError::Invalid(format!("`cargo metadata` failed for {}", dir.display())));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| ClientError::Invalid(format!("`cargo metadata` printed no JSON: {e}")))
}

/// Reads the `envhub.toml` of the crate in `dir`.
pub fn crate_manifest(dir: &Path) -> Result<Manifest, ClientError> {
    let path = dir.join("envhub.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| ClientError::io(format!("reading {}", path.display()), e))?;
    Manifest::parse(&text).map_err(|e| ClientError::Package { context: format!("in {}", path.display()), source: e })
}

/// Where `envhub build` puts the package of the crate in `dir`: the cargo
/// target directory's `envhub/`. A Python environment (no Cargo.toml) uses
/// the target directory of the cargo workspace it sits in, else its own
/// `target/`.
pub fn package_path(dir: &Path) -> Result<PathBuf, ClientError> {
    let manifest = crate_manifest(dir)?;
    if !dir.join("Cargo.toml").is_file() {
        let workspace = dir.ancestors().skip(1).find(|a| a.join("Cargo.toml").is_file());
        let target = match workspace {
            Some(ws) => cargo_metadata(ws)?["target_directory"].as_str().map(PathBuf::from),
            None => None,
        };
        let target = target.unwrap_or_else(|| dir.join("target"));
        return Ok(target.join("envhub").join(package_file_name(&manifest)));
    }
    let meta = cargo_metadata(dir)?;
    let target = meta["target_directory"]
        .as_str()
        .ok_or_else(|| ClientError::Invalid("`cargo metadata` gave no target_directory".into()))?;
    Ok(Path::new(target).join("envhub").join(package_file_name(&manifest)))
}

/// `owner-name-version.envpkg`.
pub fn package_file_name(manifest: &Manifest) -> String {
    let p = &manifest.package;
    format!("{}-{}-{}.envpkg", p.name.owner(), p.name.name(), p.version)
}

/// The highest version of first-party package `name` in `dir`
/// (`envhub-NAME-VERSION.envpkg`) that satisfies `req`.
fn first_party_in(dir: &Path, name: &str, req: &semver::VersionReq) -> Option<PathBuf> {
    let prefix = format!("{FIRST_PARTY_OWNER}-{name}-");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let version = file.strip_prefix(&prefix)?.strip_suffix(".envpkg")?;
            let version = semver::Version::parse(version).ok()?;
            req.matches(&version).then(|| (version, e.path()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, path)| path)
}

fn is_plain_name(arg: &str) -> bool {
    !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
}

impl Resolver {
    /// The first-party package directories: this resolver's, then `$ENVHUB_PACKAGES`.
    pub fn package_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = self.first_party_dirs.clone();
        if let Some(list) = std::env::var_os("ENVHUB_PACKAGES") {
            dirs.extend(std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()));
        }
        dirs
    }

    /// Resolves `reference` to a package or module file, pulling it from a
    /// hub when it names one.
    pub fn locate(&self, reference: &str) -> Result<Located, ClientError> {
        let path = Path::new(reference);
        if path.is_file() {
            let origin =
                if path.extension().is_some_and(|e| e == "wasm") { Origin::Module } else { Origin::PackageFile };
            return Ok(Located { path: path.to_path_buf(), origin });
        }
        let mut tried = vec![format!("no file or directory `{reference}`")];
        if let Some(dir) = crate_dir(path) {
            let package = package_path(&dir)?;
            if !package.is_file() {
                return Err(ClientError::NotFound(format!(
                    "{} is not built yet: run `envhub build {}` first",
                    dir.display(),
                    dir.display()
                )));
            }
            return Ok(Located { path: package, origin: Origin::Crate(dir) });
        }
        if let Some(spec) = Spec::from_arg(reference) {
            return match self.pull(&spec) {
                // With no hub to ask, first-party packages shipped here serve.
                Err(ClientError::NoHub) if spec.name.owner() == FIRST_PARTY_OWNER => {
                    self.first_party(spec.name.name(), &spec.req).ok_or_else(|| {
                        ClientError::NotFound(format!(
                            "{spec}: no hub configured (set ENVHUB_HUB) and no matching first-party package in {}",
                            self.dirs_text()
                        ))
                    })
                }
                other => other,
            };
        }
        if is_plain_name(reference) {
            tried.push(format!("no environments/{reference}/envhub.toml here"));
            if let Some(found) = self.first_party(reference, &semver::VersionReq::STAR) {
                return Ok(found);
            }
            tried.push(format!("no {FIRST_PARTY_OWNER}-{reference}-*.envpkg in {}", self.dirs_text()));
            if self.pull.hub.is_some() || crate::hub::configured_hub().is_some() {
                let spec = Spec::parse(&format!("{FIRST_PARTY_OWNER}/{reference}"))?;
                return self.pull(&spec);
            }
            tried.push(format!("no hub configured to pull {FIRST_PARTY_OWNER}/{reference} from (set ENVHUB_HUB)"));
        }
        Err(ClientError::NotFound(format!("no environment `{reference}`: {}", tried.join("; "))))
    }

    /// The highest matching version of first-party package `name` in the
    /// package directories.
    fn first_party(&self, name: &str, req: &semver::VersionReq) -> Option<Located> {
        let path = self.package_dirs().iter().find_map(|dir| first_party_in(dir, name, req))?;
        Some(Located { path, origin: Origin::FirstParty })
    }

    fn dirs_text(&self) -> String {
        let dirs = self.package_dirs();
        if dirs.is_empty() {
            return "the first-party package directories (none: set ENVHUB_PACKAGES)".into();
        }
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    }

    fn pull(&self, spec: &Spec) -> Result<Located, ClientError> {
        let fetched = fetch(spec, &self.pull)?;
        Ok(Located {
            path: fetched.path,
            origin: Origin::Hub { entry: fetched.entry, from_lockfile: fetched.from_lockfile },
        })
    }

    /// Resolves `reference` and loads it in `sandbox`, with package data
    /// unpacked under [`crate::home::data_dir`].
    pub fn load(&self, sandbox: &Sandbox, reference: &str) -> Result<Loaded, ClientError> {
        let located = self.locate(reference)?;
        load_located(sandbox, located)
    }
}

/// Loads an already located file.
pub fn load_located(sandbox: &Sandbox, located: Located) -> Result<Loaded, ClientError> {
    let path = &located.path;
    if matches!(located.origin, Origin::Module) {
        let module = sandbox
            .load_file(path, LoadOptions::default())
            .map_err(|e| ClientError::Sandbox { context: format!("loading {}", path.display()), source: e })?;
        return Ok(Loaded { package: None, module, located });
    }
    // Streamed: data files go straight to the data directory, not memory.
    let data_root = crate::home::data_dir();
    let package = Package::open(path, &data_root)
        .map_err(|e| ClientError::Package { context: format!("reading package {}", path.display()), source: e })?;
    let module = sandbox.load_package(&package, &data_root).map_err(|e| ClientError::Sandbox {
        context: format!("loading {}", package.manifest.package.name),
        source: e,
    })?;
    Ok(Loaded { package: Some(package), module, located })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_party_packages_take_the_highest_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in [
            "envhub-math-0.1.0.envpkg",
            "envhub-math-0.10.0.envpkg",
            "envhub-math-0.9.1.envpkg",
            "envhub-tools-9.0.0.envpkg",
            "envhub-math-x.envpkg",
        ] {
            std::fs::write(dir.path().join(f), b"").expect("write");
        }
        let any = semver::VersionReq::STAR;
        let found = first_party_in(dir.path(), "math", &any).expect("found");
        assert!(found.ends_with("envhub-math-0.10.0.envpkg"), "{}", found.display());
        let caret = semver::VersionReq::parse("^0.9").expect("req");
        let found = first_party_in(dir.path(), "math", &caret).expect("0.9");
        assert!(found.ends_with("envhub-math-0.9.1.envpkg"), "{}", found.display());
        assert!(first_party_in(dir.path(), "code", &any).is_none());
    }

    #[test]
    fn an_unknown_name_says_what_was_tried() {
        let resolver =
            Resolver { first_party_dirs: vec![PathBuf::from("/nonexistent-envhub-dir")], ..Resolver::default() };
        if crate::hub::configured_hub().is_some() {
            return; // this machine has a hub configured; the name would be pulled
        }
        let err = resolver.locate("no-such-env-here").expect_err("not found");
        let text = err.to_string();
        assert_eq!(err.kind(), "not_found");
        for part in [
            "no environment `no-such-env-here`",
            "environments/no-such-env-here",
            "/nonexistent-envhub-dir",
            "ENVHUB_HUB",
        ] {
            assert!(text.contains(part), "{part} missing from: {text}");
        }
    }
}
