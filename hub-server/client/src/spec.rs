//! `owner/name@REQ`: a package and a semver requirement (cargo's rules:
//! `@1.2` means `^1.2`, `@=1.2.3` exactly, no `@` any version).

use std::fmt;

use envhub_sandbox::package::PackageName;
use semver::VersionReq;

use crate::ClientError;

/// A package requirement.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `owner/name`.
    pub name: PackageName,
    /// The versions that satisfy it.
    pub req: VersionReq,
}

impl Spec {
    /// Parses `owner/name[@REQ]`.
    pub fn parse(s: &str) -> Result<Spec, ClientError> {
        let (name, req) = match s.split_once('@') {
            Some((name, req)) => (name, req),
            None => (s, "*"),
        };
        let name: PackageName = name.parse().map_err(ClientError::Invalid)?;
        let req = VersionReq::parse(req)
            .map_err(|e| ClientError::Invalid(format!("`{req}` in `{s}` is not a semver requirement: {e}")))?;
        Ok(Spec { name, req })
    }

    /// Parses an environment argument that looks like a package requirement
    /// (it has one `/` and does not start with `.`), `None` otherwise.
    pub fn from_arg(arg: &str) -> Option<Spec> {
        if arg.matches('/').count() != 1 || arg.starts_with('.') {
            return None;
        }
        Spec::parse(arg).ok()
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.req)
    }
}

/// `owner/name@VERSION` with an exact version.
pub fn parse_exact(s: &str) -> Result<(PackageName, semver::Version), ClientError> {
    let (name, version) =
        s.split_once('@').ok_or_else(|| ClientError::Invalid(format!("`{s}` must be `owner/name@VERSION`")))?;
    let name: PackageName = name.parse().map_err(ClientError::Invalid)?;
    let version = semver::Version::parse(version)
        .map_err(|e| ClientError::Invalid(format!("`{version}` is not a semantic version: {e}")))?;
    Ok((name, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let s = Spec::parse("envhub/math@0.1").expect("spec");
        assert!(s.req.matches(&"0.1.5".parse().expect("v")));
        assert!(!s.req.matches(&"0.2.0".parse().expect("v")));
        assert!(Spec::parse("envhub/math").expect("any").req.matches(&"3.0.0".parse().expect("v")));
        assert!(Spec::from_arg("./x/y").is_none());
        assert!(Spec::from_arg("a/b/c").is_none());
        assert!(Spec::from_arg("math").is_none());
        assert!(Spec::parse("Envhub/math").is_err());
        assert!(parse_exact("a/b@1.0").is_err());
    }
}
