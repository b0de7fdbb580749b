//! envhub's hub: a registry of environment packages over HTTP.
//!
//! * `POST /api/v1/packages` publishes a package archive (checked, loaded in
//!   the sandbox and self-tested before it is accepted);
//! * `GET /api/v1/packages/{owner}/{name}` is a package's index (versions,
//!   digests, sizes, yanked marks, self-test results);
//! * `GET /api/v1/blobs/sha256/{hex}` downloads an immutable archive;
//! * yank, owners, search and tokens complete the API, and `/` and
//!   `/packages/{owner}/{name}` are the web pages.
//!
//! Versions are immutable and never deleted: there is no deletion endpoint.
//! Storage is embedded (SQLite and files) or scale-out (PostgreSQL and S3),
//! behind [`store::Storage`].

#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod blobs;
pub mod check;
pub mod error;
pub mod store;
pub mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use envhub_sandbox::{Sandbox, SandboxConfig};

pub use error::{ApiError, HubError, StoreError};
pub use store::Storage;

use crate::auth::Scope;
use crate::blobs::{BlobBackend, FileBlobs};
use crate::store::SqlStorage;

/// Where the hub keeps metadata and blobs.
#[derive(Clone, Debug)]
pub enum StorageConfig {
    /// SQLite (`hub.db`) and blob files under a directory; needs nothing installed.
    Embedded {
        /// The directory.
        dir: PathBuf,
    },
    /// A SQL database by URL (`postgres://…`) and S3-compatible object storage.
    ScaleOut {
        /// The database URL.
        database_url: String,
        /// The object store.
        s3: S3Config,
    },
}

/// An S3-compatible bucket.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// Endpoint URL, e.g. `http://127.0.0.1:8333`.
    pub endpoint: String,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket.
    pub prefix: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Region name.
    pub region: String,
}

/// How a hub is set up.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Metadata and blobs.
    pub storage: StorageConfig,
    /// The hub's own working directory: the admin token, the sandbox's
    /// compiled-module cache and unpacked package data for self-tests.
    pub work_dir: PathBuf,
    /// Largest package archive accepted, in bytes.
    pub max_package_bytes: u64,
    /// Tasks self-tested per split on publish.
    pub self_test_tasks: u64,
    /// Compiled-module cache of the sandbox (default `work_dir/modules`).
    pub module_cache_dir: Option<PathBuf>,
    /// Whether reading (index, blobs, search, pages) needs no token. When
    /// false, every read needs a token with the `read` scope, and reads of a
    /// package's index also need a name pattern covering it.
    pub public_read: bool,
}

impl HubConfig {
    /// The embedded configuration: everything under `dir`.
    pub fn embedded(dir: &Path) -> HubConfig {
        HubConfig {
            storage: StorageConfig::Embedded { dir: dir.to_path_buf() },
            work_dir: dir.to_path_buf(),
            max_package_bytes: 64 << 20,
            self_test_tasks: 3,
            module_cache_dir: None,
            public_read: true,
        }
    }
}

/// Shared by every request.
pub struct AppState {
    /// Metadata and blobs.
    pub storage: Arc<dyn Storage>,
    /// Runs publish-time checks.
    pub sandbox: Sandbox,
    /// The configuration.
    pub config: HubConfig,
}

/// A hub ready to serve.
pub struct Hub {
    state: Arc<AppState>,
    admin_token: Option<String>,
}

/// The file (in the work directory) holding the admin token created on first start.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Opens the storage a configuration names.
pub async fn open_storage(storage: &StorageConfig) -> Result<Arc<dyn Storage>, HubError> {
    match storage {
        StorageConfig::Embedded { dir } => {
            std::fs::create_dir_all(dir)
                .map_err(|source| HubError::Io { what: format!("creating {}", dir.display()), source })?;
            let blobs = BlobBackend::Files(FileBlobs::new(&dir.join("blobs"))?);
            let url = format!("sqlite://{}?mode=rwc", dir.join("hub.db").display());
            Ok(Arc::new(SqlStorage::open(&url, blobs).await?))
        }
        StorageConfig::ScaleOut { database_url, s3 } => {
            let blobs = BlobBackend::s3(s3)?;
            Ok(Arc::new(SqlStorage::open(database_url, blobs).await?))
        }
    }
}

impl Hub {
    /// Opens storage, starts the sandbox, and on a hub with no tokens yet
    /// creates an admin token, written to `work_dir/admin-token` (mode 0600).
    pub async fn open(config: HubConfig) -> Result<Hub, HubError> {
        let storage = open_storage(&config.storage).await?;
        let work = &config.work_dir;
        std::fs::create_dir_all(work)
            .map_err(|source| HubError::Io { what: format!("creating {}", work.display()), source })?;
        let sandbox = Sandbox::new(SandboxConfig {
            cache_dir: Some(config.module_cache_dir.clone().unwrap_or_else(|| work.join("modules"))),
            max_concurrent_calls: 8,
            ..SandboxConfig::default()
        })?;
        let mut admin_token = None;
        if storage.count_tokens().await? == 0 {
            let (secret, record) =
                auth::new_token("admin", &Scope::ALL, &["*".to_owned()], true, None).map_err(HubError::Config)?;
            storage.insert_token(&record).await?;
            write_secret_file(&work.join(ADMIN_TOKEN_FILE), &secret)?;
            admin_token = Some(secret);
        }
        Ok(Hub { state: Arc::new(AppState { storage, sandbox, config }), admin_token })
    }

    /// The admin token, when this start created it.
    pub fn new_admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// The storage.
    pub fn storage(&self) -> Arc<dyn Storage> {
        self.state.storage.clone()
    }

    /// The routes: API and web pages.
    pub fn router(&self) -> Router {
        api::routes()
            .merge(web::routes())
            .fallback(api::fallback)
            .layer(axum::middleware::from_fn_with_state(self.state.clone(), api::require_read))
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until the process ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> Result<(), HubError> {
        let router = self.router();
        axum::serve(listener, router).await.map_err(|source| HubError::Io { what: "serving".into(), source })
    }
}

/// Binds `addr`, prints where the hub listens (and a new admin token), and
/// serves forever on a fresh multi-threaded runtime. For `envhub serve`.
pub fn serve_blocking(config: HubConfig, addr: SocketAddr) -> Result<(), HubError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| HubError::Io { what: "starting the runtime".into(), source })?;
    runtime.block_on(async move {
        let work = config.work_dir.clone();
        let hub = Hub::open(config).await?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| HubError::Io { what: format!("binding {addr}"), source })?;
        let local = listener.local_addr().map_err(|source| HubError::Io { what: "local address".into(), source })?;
        if let Some(token) = hub.new_admin_token() {
            println!("admin token (shown once; also in {}): {token}", work.join(ADMIN_TOKEN_FILE).display());
        }
        println!("envhub hub listening on http://{local}");
        hub.serve(listener).await
    })
}

fn write_secret_file(path: &Path, secret: &str) -> Result<(), HubError> {
    use std::io::Write;
    let io = |source| HubError::Io { what: format!("writing {}", path.display()), source };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    file.write_all(secret.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)
}
