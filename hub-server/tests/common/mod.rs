//! Shared by the hub's tests: the math package fixture, package variants,
//! an in-process hub on a loopback port per storage backend, an HTTP client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use envhub_hub::{Hub, HubConfig, S3Config, StorageConfig};
use envhub_sandbox::package::{Package, pack};
use serde_json::Value;

/// The first-party math package built by `scripts/build-guests.sh`.
pub fn math_package_path() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("envhub/envhub-math-0.1.0.envpkg"));
    }
    candidates.push(workspace.join("target/envhub/envhub-math-0.1.0.envpkg"));
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!("the math package is missing (looked at {candidates:?}): run scripts/build-guests.sh first");
}

/// The math package's bytes.
pub fn math_package() -> Vec<u8> {
    std::fs::read(math_package_path()).expect("read the math package")
}

/// The math package renamed and re-versioned (and optionally with another
/// README or module).
pub fn variant(name: &str, version: &str, readme: Option<&str>, module: Option<&[u8]>) -> Vec<u8> {
    let package = Package::from_bytes(&math_package()).expect("math package");
    let mut manifest = package.manifest.clone();
    manifest.package.name = name.parse().expect("name");
    manifest.package.version = version.parse().expect("version");
    let data = tempfile::tempdir().expect("data dir");
    envhub_sandbox::package::unpack_data(&package, data.path()).expect("unpack the data");
    pack(
        &manifest.to_toml(),
        module.unwrap_or(&package.module),
        readme.or(package.readme.as_deref()),
        Some(data.path()),
    )
    .expect("pack")
}

/// Files left under `dir` (recursively); none when it does not exist.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

/// Waits (up to 20 s) for `dir` to hold no files: the hub removes what a
/// check leaves off the request's path, just after answering.
pub fn assert_emptied(dir: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = files_under(dir);
        if left.is_empty() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "still under {}: {left:?}", dir.display());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The math package renamed `name` at `version`, whose `data/zeros.bin`
/// inflates to `size` bytes from a few hundred kilobytes: a gzip bomb that
/// is otherwise a valid package. Written as it is compressed, never whole.
pub fn bomb(name: &str, version: &str, size: u64) -> Vec<u8> {
    use std::io::Read;
    let math = Package::from_bytes(&math_package()).expect("math package");
    let mut manifest = math.manifest.clone();
    manifest.package.name = name.parse().expect("name");
    manifest.package.version = version.parse().expect("version");
    let text = manifest.to_toml();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut append = |path: &str, size: u64, reader: &mut dyn Read| {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, reader).expect("append");
    };
    append("envhub.toml", text.len() as u64, &mut text.as_bytes());
    append("module.wasm", math.module.len() as u64, &mut math.module.as_slice());
    append("data/zeros.bin", size, &mut std::io::repeat(0).take(size));
    tar.into_inner().expect("tar").finish().expect("gzip")
}

/// A field of `/proc/{pid}/status` (`pid` may be `self`), in KiB.
pub fn status_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number")
}

/// A package archive written entry by entry, as a client that does not
/// use `pack` would: `(path, bytes)` in order.
pub fn raw_archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, *bytes).expect("append");
    }
    tar.into_inner().expect("tar").finish().expect("gzip")
}

/// A storage backend under test.
pub struct Backend {
    /// `embedded` or `scale-out`.
    pub label: &'static str,
    /// Its configuration (fresh, empty).
    pub storage: StorageConfig,
}

fn unique() -> String {
    envhub_hub::auth::random_hex(6)
}

/// The backends to test: SQLite + files always; PostgreSQL + S3 when
/// `ENVHUB_TEST_POSTGRES_URL` and `ENVHUB_TEST_S3_ENDPOINT` are set
/// (`scripts/ci-services.sh` starts both and sets them).
pub fn backends(dir: &Path) -> Vec<Backend> {
    let mut out = vec![Backend { label: "embedded", storage: StorageConfig::Embedded { dir: dir.join("store") } }];
    if let (Ok(pg), Ok(endpoint)) =
        (std::env::var("ENVHUB_TEST_POSTGRES_URL"), std::env::var("ENVHUB_TEST_S3_ENDPOINT"))
    {
        let database_url = fresh_database(&pg);
        let s3 = S3Config {
            endpoint,
            bucket: std::env::var("ENVHUB_TEST_S3_BUCKET").unwrap_or_else(|_| "envhub-test".into()),
            prefix: format!("t-{}", unique()),
            access_key: std::env::var("ENVHUB_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "envhub".into()),
            secret_key: std::env::var("ENVHUB_TEST_S3_SECRET_KEY").unwrap_or_else(|_| "envhub-secret".into()),
            region: "us-east-1".into(),
        };
        out.push(Backend { label: "scale-out", storage: StorageConfig::ScaleOut { database_url, s3 } });
    } else {
        eprintln!("NOTE: PostgreSQL+S3 backend not tested: ENVHUB_TEST_POSTGRES_URL / ENVHUB_TEST_S3_ENDPOINT unset");
    }
    out
}

/// Creates an empty database next to the one `admin_url` names; its URL.
fn fresh_database(admin_url: &str) -> String {
    let name = format!("envhub_t_{}", unique());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(admin_url).await.expect("connect to ENVHUB_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create database");
    });
    match admin_url.rsplit_once('/') {
        Some((base, rest)) => match rest.split_once('?') {
            Some((_, query)) => format!("{base}/{name}?{query}"),
            None => format!("{base}/{name}"),
        },
        None => panic!("ENVHUB_TEST_POSTGRES_URL has no database part: {admin_url}"),
    }
}

/// A hub serving on loopback from a background thread.
pub struct TestHub {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The admin token created on first start.
    pub admin: String,
    /// Its configuration.
    pub config: HubConfig,
}

/// A hub configuration for `backend`, with work files under `dir`.
pub fn config(backend: &Backend, dir: &Path) -> HubConfig {
    let mut config = HubConfig::embedded(&dir.join("work"));
    config.storage = backend.storage.clone();
    config.module_cache_dir = Some(std::env::temp_dir().join("envhub-hub-test-modules"));
    // Tests publish concurrently from 127.0.0.1; the per-address bound has its own test.
    config.uploads_per_address = 16;
    config
}

/// Starts a hub.
pub fn start(config: HubConfig) -> TestHub {
    let (tx, rx) = mpsc::channel();
    let cfg = config.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(async move {
            let hub = Hub::open(cfg).await.expect("open the hub");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            tx.send((addr, hub.new_admin_token().map(str::to_owned))).expect("send");
            hub.serve(listener).await.expect("serve");
        });
    });
    let (addr, admin) = rx.recv().expect("the hub started");
    TestHub { url: format!("http://{addr}"), admin: admin.expect("a fresh hub has an admin token"), config }
}

/// A response: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// The error code of an error reply.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
    pub fn message(&self) -> String {
        self.json()["error"]["message"].as_str().unwrap_or_default().to_owned()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("HTTP request");
    let status = r.status().as_u16();
    let headers =
        r.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
    let body = r.body_mut().with_config().limit(1 << 30).read_to_vec().expect("body");
    Reply { status, body, headers }
}

impl TestHub {
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = agent().get(format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.call())
    }

    pub fn publish(&self, token: Option<&str>, archive: &[u8]) -> Reply {
        self.publish_with(token, archive, &[])
    }

    pub fn publish_with(&self, token: Option<&str>, archive: &[u8], headers: &[(&str, &str)]) -> Reply {
        let mut req = agent().post(format!("{}/api/v1/packages", self.url));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.send(archive))
    }

    /// PUT/DELETE/POST with an optional JSON body.
    pub fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let url = format!("{}{path}", self.url);
        let a = agent();
        let auth = token.map(|t| format!("Bearer {t}"));
        macro_rules! go {
            ($req:expr) => {{
                let mut req = $req.header("Content-Type", "application/json");
                if let Some(a) = &auth {
                    req = req.header("Authorization", a.as_str());
                }
                match &body {
                    Some(b) => reply(req.send(b.to_string().as_bytes())),
                    None => reply(req.send_empty()),
                }
            }};
        }
        match method {
            "PUT" => go!(a.put(url)),
            "POST" => go!(a.post(url)),
            "DELETE" => go!(a.delete(url).force_send_body()),
            other => panic!("method {other}"),
        }
    }

    /// Creates a token as admin; returns its secret.
    pub fn token(&self, login: &str, scopes: &[&str], patterns: &[&str], expires_in_secs: Option<i64>) -> String {
        let body = serde_json::json!({
            "login": login, "scopes": scopes, "patterns": patterns, "expires_in_secs": expires_in_secs,
        });
        let r = self.send("POST", "/api/v1/tokens", Some(&self.admin), Some(body));
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["token"].as_str().expect("token").to_owned()
    }
}

/// Hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A hub binary running in its own process (killed when dropped).
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the hub binary on `data` with `storage` and the `extra` flags.
pub fn spawn(data: &Path, storage: &StorageConfig, extra: &[&str]) -> Server {
    let mut args = vec!["--data".to_owned(), data.display().to_string(), "--addr".into(), "127.0.0.1:0".into()];
    if let StorageConfig::ScaleOut { database_url, s3 } = storage {
        for (flag, value) in [
            ("--database-url", database_url),
            ("--s3-endpoint", &s3.endpoint),
            ("--s3-bucket", &s3.bucket),
            ("--s3-prefix", &s3.prefix),
        ] {
            args.extend([flag.to_owned(), value.clone()]);
        }
    }
    let access = match storage {
        StorageConfig::ScaleOut { s3, .. } => (s3.access_key.clone(), s3.secret_key.clone()),
        StorageConfig::Embedded { .. } => (String::new(), String::new()),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_envhub-hub"))
        .args(&args)
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", access.0)
        .env("AWS_SECRET_ACCESS_KEY", access.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn envhub-hub");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().expect("the hub printed its address").expect("line");
        if let Some(url) = line.strip_prefix("envhub hub listening on ") {
            break url.trim().to_owned();
        }
    };
    Server { child, url }
}

/// A client for the hub at `url`.
pub fn hub_at(url: &str, admin: &str) -> TestHub {
    TestHub { url: url.to_owned(), admin: admin.to_owned(), config: envhub_hub::HubConfig::embedded(Path::new(".")) }
}

/// Sends the request line, headers and the first `sent` bytes of `archive`.
pub fn partial_upload(url: &str, token: &str, archive: &[u8], sent: usize) -> TcpStream {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST /api/v1/packages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        archive.len()
    );
    stream.write_all(head.as_bytes()).expect("head");
    for chunk in archive[..sent].chunks(16 * 1024) {
        stream.write_all(chunk).expect("body");
        std::thread::sleep(Duration::from_millis(5));
    }
    stream.flush().expect("flush");
    stream
}
