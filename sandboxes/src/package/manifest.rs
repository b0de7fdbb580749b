//! `envhub.toml`: what a package is and what it may do.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::PackageError;
use crate::limits::Limits;

/// A package name, `owner/name`: lowercase ASCII letters, digits, `-` and
/// `_`, each part 1–64 characters and starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageName {
    owner: String,
    name: String,
}

impl PackageName {
    /// The owner part.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The name part.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn valid_part(part: &str) -> bool {
    (1..=64).contains(&part.len())
        && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && part.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

impl FromStr for PackageName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (owner, name) = s.split_once('/').ok_or_else(|| format!("package name `{s}` must be `owner/name`"))?;
        for (what, part) in [("owner", owner), ("name", name)] {
            if !valid_part(part) {
                return Err(format!(
                    "package {what} `{part}` in `{s}` must be 1-64 lowercase letters, digits, `-` or `_`, starting with a letter or digit"
                ));
            }
        }
        Ok(PackageName { owner: owner.to_owned(), name: name.to_owned() })
    }
}

impl TryFrom<String> for PackageName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<PackageName> for String {
    fn from(n: PackageName) -> String {
        n.to_string()
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// The `[package]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageInfo {
    /// `owner/name`.
    pub name: PackageName,
    /// Semantic version; published versions are immutable.
    pub version: semver::Version,
    /// One line for search results.
    pub description: String,
    /// SPDX licence expression.
    pub license: String,
    /// Guest protocol version the module speaks.
    #[serde(default = "default_protocol")]
    pub protocol: u32,
    /// Host capabilities the module imports (e.g. `code:python`).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The language runtime of a source package: `python` as an author writes
    /// it, [`PYTHON_RUNTIME`] in a built package. Absent for a WebAssembly module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// The sha256 of the runtime build a built source package runs on (its
    /// rewards are reproducible on that build only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_sha256: Option<String>,
}

/// Most bytes of `package.description` (one line; the README is the card).
pub const MAX_DESCRIPTION_BYTES: usize = 1000;
/// Most bytes of `package.license`.
pub const MAX_LICENSE_BYTES: usize = 200;

/// The runtime Python packages run on: CPython 3.11 for WASI, pinned by
/// [`crate::PYTHON_WASM_SHA256`].
pub const PYTHON_RUNTIME: &str = "python3.11";

fn default_protocol() -> u32 {
    envhub_sdk::PROTOCOL_VERSION
}

/// A parsed and checked `envhub.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// What the package is.
    pub package: PackageInfo,
    /// Per-call limits (defaults where absent).
    #[serde(default)]
    pub limits: Limits,
    /// What a Python package vendors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonSection>,
}

/// The `[python]` table of a Python package.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonSection {
    /// Pure-Python wheels (`py3-none-any`) vendored into the package.
    #[serde(default)]
    pub wheels: Vec<Wheel>,
}

/// A vendored wheel, pinned by its sha256.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wheel {
    /// The wheel file, relative to the environment's directory.
    pub path: String,
    /// Its sha256 (64 hex digits).
    pub sha256: String,
}

impl Manifest {
    /// Parses and checks manifest text.
    pub fn parse(text: &str) -> Result<Manifest, PackageError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| PackageError::Manifest(e.to_string()))?;
        manifest.check()?;
        Ok(manifest)
    }

    /// Checks what TOML types cannot: protocol, capabilities, limits.
    pub fn check(&self) -> Result<(), PackageError> {
        let p = &self.package;
        if p.protocol != envhub_sdk::PROTOCOL_VERSION {
            return Err(PackageError::Manifest(format!(
                "package.protocol = {} is not supported; this host speaks protocol {}",
                p.protocol,
                envhub_sdk::PROTOCOL_VERSION
            )));
        }
        if p.description.trim().is_empty() {
            return Err(PackageError::Manifest("package.description must not be empty".into()));
        }
        if p.description.len() > MAX_DESCRIPTION_BYTES {
            return Err(PackageError::Manifest(format!(
                "package.description is {} bytes; at most {MAX_DESCRIPTION_BYTES} (the README holds the rest)",
                p.description.len()
            )));
        }
        if p.license.len() > MAX_LICENSE_BYTES {
            return Err(PackageError::Manifest(format!(
                "package.license is {} bytes; at most {MAX_LICENSE_BYTES} (an SPDX expression)",
                p.license.len()
            )));
        }
        if p.license.trim().is_empty() {
            return Err(PackageError::Manifest("package.license must name a licence (SPDX)".into()));
        }
        for cap in &p.capabilities {
            if !crate::capability::KNOWN_CAPABILITIES.contains(&cap.as_str()) {
                return Err(PackageError::Manifest(format!(
                    "package.capabilities: unknown capability `{cap}`; known: {}",
                    crate::capability::KNOWN_CAPABILITIES.join(", ")
                )));
            }
        }
        match p.runtime.as_deref() {
            None if p.runtime_sha256.is_some() => {
                return Err(PackageError::Manifest("package.runtime_sha256 needs package.runtime".into()));
            }
            None | Some("python") | Some(PYTHON_RUNTIME) => {}
            Some(other) => {
                return Err(PackageError::Manifest(format!(
                    "package.runtime = \"{other}\" is not a runtime this host has; runtimes: python ({PYTHON_RUNTIME})"
                )));
            }
        }
        if let Some(sha) = &p.runtime_sha256
            && !(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(PackageError::Manifest("package.runtime_sha256 must be 64 hex digits".into()));
        }
        if let Some(py) = &self.python {
            if p.runtime.is_none() {
                return Err(PackageError::Manifest("[python] needs package.runtime = \"python\"".into()));
            }
            for w in &py.wheels {
                let file = w.path.rsplit('/').next().unwrap_or_default();
                let pure =
                    file.ends_with("-none-any.whl") && file.split('-').rev().nth(2).is_some_and(|t| t.contains("py3"));
                if !pure {
                    return Err(PackageError::Manifest(format!(
                        "python.wheels: `{}` is not a pure-Python wheel (py3-none-any): the sandbox runs no native extensions",
                        w.path
                    )));
                }
                if !(w.sha256.len() == 64 && w.sha256.bytes().all(|b| b.is_ascii_hexdigit())) {
                    return Err(PackageError::Manifest(format!(
                        "python.wheels: `{}` needs a sha256 of 64 hex digits",
                        w.path
                    )));
                }
            }
        }
        self.limits.check(&crate::HostMaxima::default()).map_err(PackageError::Manifest)
    }

    /// Whether this is a Python source package (rather than a module).
    pub fn is_python(&self) -> bool {
        self.package.runtime.is_some()
    }

    /// The manifest as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[package]
name = "envhub/math"
version = "1.2.3"
description = "Math word problems"
license = "Apache-2.0"

[limits]
fuel = 1000000
"#;

    #[test]
    fn a_good_manifest_parses_with_defaults() {
        let m = Manifest::parse(GOOD).expect("parse");
        assert_eq!(m.package.name.to_string(), "envhub/math");
        assert_eq!(m.package.version, semver::Version::new(1, 2, 3));
        assert_eq!(m.limits.fuel, 1_000_000);
        assert_eq!(m.limits.memory_bytes, Limits::default().memory_bytes);
        assert_eq!(Manifest::parse(&m.to_toml()).expect("round trip"), m);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (GOOD.replace("envhub/math", "Math"), "owner/name"),
            (GOOD.replace("envhub/math", "envhub/Math"), "lowercase"),
            (GOOD.replace("1.2.3", "1.2"), "version"),
            (GOOD.replace("fuel = 1000000", "fuel = 0"), "positive"),
            (GOOD.replace("fuel = 1000000", "memory_bytes = 99999999999999"), "memory_bytes"),
            (GOOD.replace("fuel = 1000000", "gas = 1"), "gas"),
            (GOOD.replace("license = \"Apache-2.0\"", "license = \"\""), "license"),
            (GOOD.replace("[limits]", "capabilities = [\"net:http\"]\n[limits]"), "net:http"),
            (GOOD.replace("Math word problems", &"x".repeat(MAX_DESCRIPTION_BYTES + 1)), "description is 1001 bytes"),
            (GOOD.replace("Apache-2.0", &"x".repeat(MAX_LICENSE_BYTES + 1)), "license is 201 bytes"),
        ];
        for (text, needle) in cases {
            let err = Manifest::parse(&text).expect_err(needle).to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
