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
pub mod limits;
pub mod publish;
pub mod store;
pub mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use envhub_sandbox::{Sandbox, SandboxConfig};

pub use error::{ApiError, HubError, StoreError};
pub use store::Storage;

use crate::auth::Scope;
use crate::blobs::{BlobBackend, FileBlobs};
pub use crate::limits::RateLimit;
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
    /// Uploads self-tested at once; more wait, then get 503.
    pub max_concurrent_publishes: usize,
    /// Uploads received at once (each at most `max_package_bytes` on disk
    /// under `work_dir/uploads`); more wait, then get 503.
    pub max_concurrent_uploads: usize,
    /// Uploads one client address may have in progress at once (429 past
    /// it). A per-client limit: off with `rate_limit`, as behind a proxy.
    pub uploads_per_address: usize,
    /// Instructions one upload's whole self-test may run.
    pub self_test_fuel: u64,
    /// Wall-clock seconds one upload's whole self-test may take.
    pub self_test_seconds: u64,
    /// Serve HTTPS with this certificate and key (else plain HTTP).
    pub tls: Option<TlsFiles>,
    /// Requests allowed per client address and per token (`None`: no limit).
    pub rate_limit: Option<RateLimit>,
    /// How long any request but a publish may take to be answered (503 past it).
    pub request_timeout: Duration,
    /// How long an upload waits for a free publish slot before a 503.
    pub publish_wait: Duration,
    /// The longest pause in an upload's body before it is dropped (408).
    pub upload_idle_timeout: Duration,
    /// How long receiving one upload's body may take in all (408 past it).
    pub upload_timeout: Duration,
}

/// A TLS certificate chain and its private key, as PEM files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How long a connection may take to send a request's headers before it
/// is closed (a client that trickles them in holds a connection for free).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
            max_concurrent_publishes: std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            max_concurrent_uploads: 16,
            uploads_per_address: 4,
            self_test_fuel: 100_000_000_000,
            self_test_seconds: 120,
            tls: None,
            rate_limit: RateLimit::new(100, 400),
            request_timeout: Duration::from_secs(30),
            publish_wait: Duration::from_secs(30),
            upload_idle_timeout: Duration::from_secs(30),
            upload_timeout: Duration::from_secs(300),
        }
    }

    /// What the publish-time check tests and may spend.
    pub fn self_test(&self) -> check::CheckConfig {
        check::CheckConfig {
            tasks_per_split: self.self_test_tasks,
            max_tasks: 1000,
            budget: envhub_sandbox::selftest::Budget {
                fuel: self.self_test_fuel,
                wall: std::time::Duration::from_secs(self.self_test_seconds),
            },
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
    /// One permit per upload being checked.
    pub publish_slots: Arc<tokio::sync::Semaphore>,
    /// One permit per upload being received (and held until it is done).
    pub upload_slots: Arc<tokio::sync::Semaphore>,
    /// Uploads in progress per client address.
    pub uploads_in_flight: Arc<limits::UploadsInFlight>,
    /// Request rates per client (none when the configuration sets no limit).
    pub limiters: Option<limits::Limiters>,
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
        if let Some(tls) = &config.tls {
            tls_config(tls)?;
        }
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
        protect_secret_file(&work.join(ADMIN_TOKEN_FILE))?;
        let publish_slots = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_publishes.max(1)));
        let upload_slots = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_uploads.max(1)));
        let limiters = config.rate_limit.map(limits::Limiters::new);
        let uploads_in_flight = Arc::default();
        let state = AppState { storage, sandbox, config, publish_slots, upload_slots, uploads_in_flight, limiters };
        Ok(Hub { state: Arc::new(state), admin_token })
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
            .layer(axum::middleware::from_fn_with_state(self.state.clone(), limits::limit))
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until the process ends: HTTPS when the
    /// configuration names a certificate, else HTTP. Connections that do not
    /// send their headers within [`HEADER_READ_TIMEOUT`] are closed.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> Result<(), HubError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| HubError::Io { what: what.clone(), source }
        };
        let listener = listener.into_std().map_err(io("the listener"))?;
        let app = self.router().into_make_service_with_connect_info::<SocketAddr>();
        match &self.state.config.tls {
            Some(tls) => {
                let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls_config(tls)?));
                let mut server = axum_server::from_tcp_rustls(listener, config).map_err(io("the listener"))?;
                limit_header_time(server.http_builder());
                server.serve(app).await.map_err(io("serving"))
            }
            None => {
                let mut server = axum_server::from_tcp(listener).map_err(io("the listener"))?;
                limit_header_time(server.http_builder());
                server.serve(app).await.map_err(io("serving"))
            }
        }
    }
}

fn limit_header_time(builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>) {
    builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
}

/// The server's TLS configuration: the certificate and key from their PEM
/// files, rustls on ring with its safe defaults, HTTP/2 and HTTP/1.1.
pub fn tls_config(tls: &TlsFiles) -> Result<rustls::ServerConfig, HubError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        HubError::Config(format!("TLS: {}: {e}; give PEM files (--tls-cert, --tls-key)", what.display()))
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(&tls.cert, &e))?;
    if certs.is_empty() {
        return Err(bad(&tls.cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| bad(&tls.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HubError::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| HubError::Config(format!("TLS: the certificate and key do not go together: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
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
        // The secret stays in its file: logs are read by more people.
        if hub.new_admin_token().is_some() {
            println!("admin token created in {} (mode 0600)", work.join(ADMIN_TOKEN_FILE).display());
        }
        let scheme = if hub.state.config.tls.is_some() { "https" } else { "http" };
        println!("envhub hub listening on {scheme}://{local}");
        hub.serve(listener).await
    })
}

/// Keeps the admin token file readable by its owner only, on every start
/// (a file copied or restored with wider permissions is narrowed).
fn protect_secret_file(path: &Path) -> Result<(), HubError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let io = |source| HubError::Io { what: format!("protecting {}", path.display()), source };
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(())
}

fn write_secret_file(path: &Path, secret: &str) -> Result<(), HubError> {
    use std::io::Write;
    let io = |source| HubError::Io { what: format!("writing {}", path.display()), source };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    // `mode` applies to new files only: an old one is narrowed too.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(io)?;
    file.write_all(secret.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)
}
