//! Tokens: a random 32-byte secret shown once, stored as its sha256, acting
//! for one login with scopes, package-name patterns and an optional expiry.

use std::fmt;
use std::str::FromStr;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::store::{Storage, TokenRecord, now};

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Read the index and download blobs (on a hub that requires tokens to read).
    Read,
    /// Publish the first version of a new package.
    PublishNew,
    /// Publish new versions of packages the login owns.
    PublishUpdate,
    /// Yank and unyank versions.
    Yank,
    /// Add and remove owners.
    ChangeOwners,
    /// Revoke the other tokens of the token's login.
    RevokeTokens,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 6] =
        [Scope::Read, Scope::PublishNew, Scope::PublishUpdate, Scope::Yank, Scope::ChangeOwners, Scope::RevokeTokens];

    /// The scope's name in tokens and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::PublishNew => "publish-new",
            Scope::PublishUpdate => "publish-update",
            Scope::Yank => "yank",
            Scope::ChangeOwners => "change-owners",
            Scope::RevokeTokens => "revoke-tokens",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("unknown scope `{s}`; scopes: {}", Scope::ALL.map(Scope::as_str).join(", ")))
    }
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // The OS random source failing is not recoverable; fall back to the clock
    // only so that temporary names stay distinct.
    if getrandom::fill(&mut buf).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        buf.iter_mut().enumerate().for_each(|(i, b)| *b = (t >> ((i % 16) * 8)) as u8);
    }
    hex::encode(buf)
}

/// The stored form of a secret: hex sha256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh token: the secret (to show once) and its record.
pub fn new_token(
    login: &str,
    scopes: &[Scope],
    patterns: &[String],
    admin: bool,
    expires_at: Option<i64>,
) -> Result<(String, TokenRecord), String> {
    let mut secret_bytes = [0u8; 32];
    getrandom::fill(&mut secret_bytes).map_err(|e| format!("no randomness for a token: {e}"))?;
    let secret = format!("ehub_{}", hex::encode(secret_bytes));
    let record = TokenRecord {
        id: random_hex(8),
        hash: hash_secret(&secret),
        login: login.to_owned(),
        scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        patterns: patterns.to_vec(),
        admin,
        expires_at,
        created_at: now(),
    };
    Ok((secret, record))
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters
/// (`alice/*`, `*/math`, `*`).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// A request's authenticated token.
#[derive(Clone, Debug)]
pub struct Authed(pub TokenRecord);

impl Authed {
    /// The login the token acts for.
    pub fn login(&self) -> &str {
        &self.0.login
    }

    /// Whether this is an admin token.
    pub fn admin(&self) -> bool {
        self.0.admin
    }

    /// Requires `scope` on package `name`: 403 naming the missing scope or
    /// the uncovered name.
    pub fn require(&self, scope: Scope, name: &str) -> Result<(), ApiError> {
        self.require_scope(scope)?;
        if !self.0.patterns.iter().any(|p| pattern_matches(p, name)) {
            return Err(ApiError::forbidden(
                "name_not_covered",
                format!("this token's name patterns ({}) do not cover `{name}`", self.0.patterns.join(", ")),
            ));
        }
        Ok(())
    }

    /// Requires `scope`, whatever the package: 403 naming the missing scope.
    pub fn require_scope(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.scopes.iter().any(|s| s == scope.as_str()) {
            return Ok(());
        }
        Err(ApiError::forbidden(
            "missing_scope",
            format!("this token lacks the `{scope}` scope (it has: {})", self.0.scopes.join(", ")),
        ))
    }

    /// Requires a scope that allows publishing something (`publish-new` or
    /// `publish-update`): checked before an upload is read, the package's
    /// name (which says which scope it needs) only after.
    pub fn require_publish(&self) -> Result<(), ApiError> {
        self.require_scope(Scope::PublishNew).or_else(|_| self.require_scope(Scope::PublishUpdate)).map_err(|_| {
            ApiError::forbidden(
                "missing_scope",
                format!(
                    "this token cannot publish: it needs the `publish-new` or `publish-update` scope (it has: {})",
                    self.0.scopes.join(", ")
                ),
            )
        })
    }

    /// Requires the token's login to own a package (admins own everything).
    pub fn require_owner(&self, name: &str, owners: &[String]) -> Result<(), ApiError> {
        if self.admin() || owners.iter().any(|o| o == self.login()) {
            return Ok(());
        }
        Err(ApiError::forbidden("not_owner", format!("`{}` is not an owner of {name}", self.login())))
    }
}

/// The bearer token of a request: 401 when missing or unknown, 403 when expired.
pub async fn authenticate(storage: &dyn Storage, headers: &HeaderMap) -> Result<Authed, ApiError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("this needs a token: send `Authorization: Bearer <token>`"))?;
    let secret = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))?;
    let token =
        storage.token_by_hash(&hash_secret(secret)).await?.ok_or_else(|| ApiError::unauthorized("unknown token"))?;
    if token.expires_at.is_some_and(|t| t <= now()) {
        return Err(ApiError::forbidden("token_expired", format!("token {} has expired", token.id)));
    }
    Ok(Authed(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("alice/*", "alice/math"));
        assert!(!pattern_matches("alice/*", "bob/math"));
        assert!(!pattern_matches("alice/*", "alicex/math"));
        assert!(pattern_matches("*", "bob/x"));
        assert!(pattern_matches("*/math", "bob/math"));
        assert!(pattern_matches("alice/math", "alice/math"));
        assert!(!pattern_matches("alice/math", "alice/mathx"));
        assert!(pattern_matches("a*c*e/x", "abcde/x"));
    }

    #[test]
    fn scopes_round_trip() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>(), Ok(s));
        }
        assert!("publish".parse::<Scope>().unwrap_err().contains("publish-new"));
    }
}
