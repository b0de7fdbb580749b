//! Storage: one interface ([`Storage`]) over package metadata and blobs, with
//! two configurations — embedded (SQLite + files in a data directory) and
//! scale-out (PostgreSQL + S3-compatible object storage). Both share the SQL
//! below (portable between the two through sqlx's `Any` driver).
//!
//! A publish is all or nothing: the blob is written durably first (a blob no
//! row names is harmless: blobs are content-addressed), then the package,
//! owner and version rows commit in one transaction. The `(name,
//! version_key)` primary key makes exactly one of two racing publishes win.
//! There is no deletion of versions: a version, once published, stays.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::body::Bytes;
use futures_util::stream::BoxStream;
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::blobs::BlobBackend;
use crate::error::StoreError;

/// A blob being read: its size and its bytes as a stream.
pub struct Blob {
    /// Size in bytes.
    pub size: u64,
    /// The bytes.
    pub body: BoxStream<'static, std::io::Result<Bytes>>,
}

/// A stored API token. The secret itself is never stored, only its sha256.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenRecord {
    /// Public id (for listing and revoking).
    pub id: String,
    /// Hex sha256 of the secret.
    #[serde(skip)]
    pub hash: String,
    /// The user the token acts for.
    pub login: String,
    /// Scope names (see [`crate::auth::Scope`]).
    pub scopes: Vec<String>,
    /// Package name patterns the token may act on (`alice/*`, `*`).
    pub patterns: Vec<String>,
    /// Whether the token may create tokens and act on every package.
    pub admin: bool,
    /// Unix seconds after which the token is refused; `None` never expires.
    pub expires_at: Option<i64>,
    /// Unix seconds of creation.
    pub created_at: i64,
}

/// One published version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VersionRecord {
    /// The version as published.
    pub version: String,
    /// `sha256:<hex>` of the archive.
    pub digest: String,
    /// Archive size in bytes.
    pub size: i64,
    /// Hidden from new resolutions, still downloadable.
    pub yanked: bool,
    /// Unix seconds.
    pub published_at: i64,
    /// Login of the publisher.
    pub published_by: String,
    /// The manifest's description.
    pub description: String,
    /// The manifest's licence.
    pub license: String,
    /// The publish-time self-test report (JSON).
    pub self_test: serde_json::Value,
}

/// A package: its owners and versions (oldest first).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PackageRecord {
    /// `owner/name`.
    pub name: String,
    /// Logins that may publish updates, yank and change owners.
    pub owners: Vec<String>,
    /// Every version ever published (none is ever deleted).
    pub versions: Vec<VersionRecord>,
}

impl PackageRecord {
    /// The highest version that is not yanked.
    pub fn latest(&self) -> Option<&VersionRecord> {
        self.versions
            .iter()
            .filter(|v| !v.yanked)
            .filter_map(|v| semver::Version::parse(&v.version).ok().map(|sv| (sv, v)))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, v)| v)
    }
}

/// A version about to be published (its blob already stored).
#[derive(Clone, Debug)]
pub struct NewVersion {
    /// `owner/name`.
    pub name: String,
    /// The version.
    pub version: semver::Version,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Archive size.
    pub size: u64,
    /// The manifest's description.
    pub description: String,
    /// The manifest's licence.
    pub license: String,
    /// The README card.
    pub readme: Option<String>,
    /// The self-test report.
    pub self_test: serde_json::Value,
}

/// A search hit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PackageSummary {
    /// `owner/name`.
    pub name: String,
    /// Description of the latest version.
    pub description: String,
    /// Highest non-yanked version, if any.
    pub latest: Option<String>,
}

/// The key that makes versions unique: build metadata does not distinguish
/// versions (`1.0.0+a` and `1.0.0+b` are the same release).
pub fn version_key(v: &semver::Version) -> String {
    let mut v = v.clone();
    v.build = semver::BuildMetadata::EMPTY;
    v.to_string()
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Package metadata and blobs: everything the hub stores.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Stores the file at `path` as the blob with this hex sha256, durably,
    /// before it is named anywhere. The file is read in a stream; the caller
    /// keeps it.
    async fn put_blob(&self, hex: &str, path: &std::path::Path) -> Result<(), StoreError>;
    /// Reads a blob, if present.
    async fn get_blob(&self, hex: &str) -> Result<Option<Blob>, StoreError>;
    /// Records a new token.
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// The token whose secret hashes to `hash`.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// The token with public id `id`.
    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Deletes a token (revocation); `false` if there was none.
    async fn revoke_token(&self, id: &str) -> Result<bool, StoreError>;
    /// How many tokens exist (zero on a fresh hub).
    async fn count_tokens(&self) -> Result<i64, StoreError>;
    /// Publishes a version in one transaction: creates the package (owned by
    /// `login`) if new, checks `login` owns it (unless `admin`), adds the
    /// version. [`StoreError::VersionExists`] if the version was published
    /// before (including by a concurrent publish that won).
    async fn publish(&self, version: &NewVersion, login: &str, admin: bool) -> Result<(), StoreError>;
    /// A package with its owners and versions.
    async fn package(&self, name: &str) -> Result<Option<PackageRecord>, StoreError>;
    /// Yanks or unyanks; `false` if there is no such version.
    async fn set_yanked(&self, name: &str, version: &semver::Version, yanked: bool) -> Result<bool, StoreError>;
    /// Adds owners (idempotent).
    async fn add_owners(&self, name: &str, logins: &[String]) -> Result<(), StoreError>;
    /// Removes owners.
    async fn remove_owners(&self, name: &str, logins: &[String]) -> Result<(), StoreError>;
    /// Packages whose name or description contains `query` (case-insensitive);
    /// every package for an empty query.
    async fn search(&self, query: &str, limit: i64, offset: i64) -> Result<Vec<PackageSummary>, StoreError>;
    /// The package one of whose versions has this digest (`sha256:<hex>`).
    async fn package_of_digest(&self, digest: &str) -> Result<Option<String>, StoreError>;
    /// The README of one version.
    async fn readme(&self, name: &str, version: &str) -> Result<Option<String>, StoreError>;
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS packages (
        name TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS owners (
        name TEXT NOT NULL,
        login TEXT NOT NULL,
        PRIMARY KEY (name, login))",
    "CREATE TABLE IF NOT EXISTS versions (
        name TEXT NOT NULL,
        version_key TEXT NOT NULL,
        version TEXT NOT NULL,
        digest TEXT NOT NULL,
        size BIGINT NOT NULL,
        yanked BIGINT NOT NULL,
        published_at BIGINT NOT NULL,
        published_by TEXT NOT NULL,
        description TEXT NOT NULL,
        license TEXT NOT NULL,
        readme TEXT,
        self_test TEXT NOT NULL,
        PRIMARY KEY (name, version_key))",
    "CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        login TEXT NOT NULL,
        scopes TEXT NOT NULL,
        patterns TEXT NOT NULL,
        admin BIGINT NOT NULL,
        expires_at BIGINT,
        created_at BIGINT NOT NULL)",
];

/// The one [`Storage`] implementation: SQL metadata (SQLite or PostgreSQL)
/// plus a blob backend (files or S3).
pub struct SqlStorage {
    db: AnyPool,
    blobs: BlobBackend,
}

impl SqlStorage {
    /// Connects to `database_url` (`sqlite://…` or `postgres://…`), creates
    /// the tables if missing, and stores blobs in `blobs`.
    pub async fn open(database_url: &str, blobs: BlobBackend) -> Result<SqlStorage, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = database_url.starts_with("sqlite:");
        let db = AnyPoolOptions::new().max_connections(if sqlite { 4 } else { 16 }).connect(database_url).await?;
        if sqlite {
            // WAL: readers never wait for the writer. Writes wait (busy timeout)
            // rather than fail.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&db).await?;
        }
        for statement in SCHEMA {
            sqlx::query(statement).execute(&db).await?;
        }
        Ok(SqlStorage { db, blobs })
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, sqlx::Error> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        hash: row.try_get("hash")?,
        login: row.try_get("login")?,
        scopes: split_list(&row.try_get::<String, _>("scopes")?),
        patterns: split_list(&row.try_get::<String, _>("patterns")?),
        admin: row.try_get::<i64, _>("admin")? != 0,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
    })
}

fn version_from_row(row: &AnyRow) -> Result<VersionRecord, sqlx::Error> {
    let self_test: String = row.try_get("self_test")?;
    Ok(VersionRecord {
        version: row.try_get("version")?,
        digest: row.try_get("digest")?,
        size: row.try_get("size")?,
        yanked: row.try_get::<i64, _>("yanked")? != 0,
        published_at: row.try_get("published_at")?,
        published_by: row.try_get("published_by")?,
        description: row.try_get("description")?,
        license: row.try_get("license")?,
        self_test: serde_json::from_str(&self_test).unwrap_or(serde_json::Value::Null),
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || {
                let m = db.message();
                m.contains("UNIQUE constraint") || m.contains("duplicate key")
            }
        }
        _ => false,
    }
}

#[async_trait]
impl Storage for SqlStorage {
    async fn put_blob(&self, hex: &str, path: &std::path::Path) -> Result<(), StoreError> {
        self.blobs.put(hex, path).await
    }

    async fn get_blob(&self, hex: &str) -> Result<Option<Blob>, StoreError> {
        self.blobs.get(hex).await
    }

    async fn insert_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (id, hash, login, scopes, patterns, admin, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.id)
        .bind(&t.hash)
        .bind(&t.login)
        .bind(t.scopes.join(","))
        .bind(t.patterns.join(","))
        .bind(i64::from(t.admin))
        .bind(t.expires_at)
        .bind(t.created_at)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE hash = $1").bind(hash).fetch_optional(&self.db).await?;
        Ok(row.as_ref().map(token_from_row).transpose()?)
    }

    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM tokens WHERE id = $1").bind(id).fetch_optional(&self.db).await?;
        Ok(row.as_ref().map(token_from_row).transpose()?)
    }

    async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tokens WHERE id = $1").bind(id).execute(&self.db).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_tokens(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM tokens").fetch_one(&self.db).await?;
        Ok(row.try_get("n")?)
    }

    async fn publish(&self, v: &NewVersion, login: &str, admin: bool) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        // A write first, so that SQLite takes its write lock at once.
        let created = sqlx::query("INSERT INTO packages (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&v.name)
            .bind(now())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if created {
            sqlx::query("INSERT INTO owners (name, login) VALUES ($1, $2)")
                .bind(&v.name)
                .bind(login)
                .execute(&mut *tx)
                .await?;
        } else if !admin {
            let owner = sqlx::query("SELECT login FROM owners WHERE name = $1 AND login = $2")
                .bind(&v.name)
                .bind(login)
                .fetch_optional(&mut *tx)
                .await?;
            if owner.is_none() {
                return Err(StoreError::NotOwner { login: login.to_owned(), name: v.name.clone() });
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO versions (name, version_key, version, digest, size, yanked, published_at, published_by,
                                   description, license, readme, self_test)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&v.name)
        .bind(version_key(&v.version))
        .bind(v.version.to_string())
        .bind(&v.digest)
        .bind(v.size as i64)
        .bind(now())
        .bind(login)
        .bind(&v.description)
        .bind(&v.license)
        .bind(v.readme.clone())
        .bind(v.self_test.to_string())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::VersionExists { name: v.name.clone(), version: v.version.to_string() });
            }
            Err(e) => return Err(e.into()),
        }
        match tx.commit().await {
            Ok(()) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::VersionExists { name: v.name.clone(), version: v.version.to_string() })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn package(&self, name: &str) -> Result<Option<PackageRecord>, StoreError> {
        let exists =
            sqlx::query("SELECT name FROM packages WHERE name = $1").bind(name).fetch_optional(&self.db).await?;
        if exists.is_none() {
            return Ok(None);
        }
        let owners = sqlx::query("SELECT login FROM owners WHERE name = $1 ORDER BY login")
            .bind(name)
            .fetch_all(&self.db)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("login"))
            .collect::<Result<Vec<_>, _>>()?;
        // Not the READMEs: a page shows one ([`Storage::readme`]).
        let mut versions = sqlx::query(
            "SELECT version, digest, size, yanked, published_at, published_by, description, license, self_test
             FROM versions WHERE name = $1",
        )
        .bind(name)
        .fetch_all(&self.db)
        .await?
        .iter()
        .map(version_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        versions.sort_by_key(|v| semver::Version::parse(&v.version).ok());
        Ok(Some(PackageRecord { name: name.to_owned(), owners, versions }))
    }

    async fn set_yanked(&self, name: &str, version: &semver::Version, yanked: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE versions SET yanked = $1 WHERE name = $2 AND version_key = $3")
            .bind(i64::from(yanked))
            .bind(name)
            .bind(version_key(version))
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_owners(&self, name: &str, logins: &[String]) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        for login in logins {
            sqlx::query("INSERT INTO owners (name, login) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(name)
                .bind(login)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remove_owners(&self, name: &str, logins: &[String]) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        for login in logins {
            sqlx::query("DELETE FROM owners WHERE name = $1 AND login = $2")
                .bind(name)
                .bind(login)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn search(&self, query: &str, limit: i64, offset: i64) -> Result<Vec<PackageSummary>, StoreError> {
        let pattern =
            format!("%{}%", query.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        // One page of package names first, so a query reads at most `limit`
        // packages' versions (each package has at most MAX_VERSIONS).
        let rows = sqlx::query(
            "SELECT name, version, yanked, description FROM versions WHERE name IN (
                 SELECT DISTINCT name FROM versions
                 WHERE LOWER(name) LIKE $1 ESCAPE '\\' OR LOWER(description) LIKE $1 ESCAPE '\\'
                 ORDER BY name LIMIT $2 OFFSET $3)
             ORDER BY name",
        )
        .bind(pattern)
        .bind(limit.max(0))
        .bind(offset.max(0))
        .fetch_all(&self.db)
        .await?;
        let mut hits: Vec<(PackageSummary, Option<semver::Version>)> = Vec::new();
        for row in &rows {
            let name: String = row.try_get("name")?;
            let version: String = row.try_get("version")?;
            let yanked = row.try_get::<i64, _>("yanked")? != 0;
            let description: String = row.try_get("description")?;
            if hits.last().is_none_or(|(h, _)| h.name != name) {
                hits.push((
                    PackageSummary { name: name.clone(), description: description.clone(), latest: None },
                    None,
                ));
            }
            let Some((hit, best)) = hits.last_mut() else { continue };
            let parsed = semver::Version::parse(&version).ok();
            if !yanked && parsed > *best {
                *best = parsed;
                hit.latest = Some(version);
                hit.description = description;
            }
        }
        Ok(hits.into_iter().map(|(h, _)| h).collect())
    }

    async fn package_of_digest(&self, digest: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT name FROM versions WHERE digest = $1 LIMIT 1")
            .bind(digest)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.map(|r| r.try_get("name")).transpose()?)
    }

    async fn readme(&self, name: &str, version: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT readme FROM versions WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("readme")).transpose()?.flatten())
    }
}
