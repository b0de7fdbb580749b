//! Talking to a hub: where it is (an explicit URL, `ENVHUB_HUB`, the login
//! file), the token (`ENVHUB_TOKEN` for the hub the user names, or the one
//! the login file stores for that hub: never to a hub a lockfile names), and
//! JSON over HTTP.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ClientError;

/// What `envhub login` stores (mode 0600): a token for each hub URL it
/// was issued by, and the hub commands use when given none. A token is sent
/// only to the hub it is stored for.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// The hub of the last login.
    #[serde(default)]
    pub default_hub: Option<String>,
    /// Token secrets by hub URL (see [`hub_key`]).
    #[serde(default)]
    pub tokens: BTreeMap<String, String>,
}

/// The file as envhub before 0.2 wrote it: one hub and its token.
#[derive(Deserialize)]
struct OneHub {
    hub: String,
    token: String,
}

impl Credentials {
    /// The stored credentials (empty when none are).
    pub fn load() -> Result<Credentials, ClientError> {
        let path = crate::home::credentials_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credentials::default()),
            Err(e) => return Err(ClientError::io(format!("reading {}", path.display()), e)),
        };
        if let Ok(old) = toml::from_str::<OneHub>(&text) {
            let mut creds = Credentials::default();
            creds.add(&old.hub, old.token);
            return Ok(creds);
        }
        toml::from_str(&text).map_err(|e| {
            ClientError::Invalid(format!("{} is not valid ({e}); run `envhub login` again", path.display()))
        })
    }

    /// Records `token` for `hub` and makes it the default hub.
    pub fn add(&mut self, hub: &str, token: String) {
        let key = hub_key(hub);
        self.tokens.insert(key.clone(), token);
        self.default_hub = Some(key);
    }

    /// The token stored for `hub`, if any.
    pub fn token_for(&self, hub: &str) -> Option<&str> {
        self.tokens.get(&hub_key(hub)).map(String::as_str)
    }

    /// Stores them, readable by the user only, and returns the file's path.
    pub fn save(&self) -> Result<PathBuf, ClientError> {
        use std::io::Write;
        let path = crate::home::credentials_path();
        let io = |e| ClientError::io(format!("writing {}", path.display()), e);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text =
            toml::to_string(self).map_err(|e| ClientError::Invalid(format!("cannot encode credentials: {e}")))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io)?;
        // A file that existed before keeps its mode on open: set it.
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        Ok(path)
    }
}

/// A hub URL as credentials are keyed: no trailing slash, scheme and host
/// in lower case (`HTTPS://Hub.Example/` and `https://hub.example` are one hub).
pub fn hub_key(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
            let path = if path.is_empty() { String::new() } else { format!("/{path}") };
            format!("{}://{}{path}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
        }
        None => url.to_owned(),
    }
}

/// The hub a command uses when given none: `ENVHUB_HUB`, else the last
/// login's; `None` when neither is set.
pub fn configured_hub() -> Option<String> {
    std::env::var("ENVHUB_HUB")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| Credentials::load().ok().and_then(|c| c.default_hub))
        .map(|h| h.trim_end_matches('/').to_owned())
}

/// A hub client.
pub struct Client {
    /// Base URL without a trailing slash.
    pub base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// How long connecting to a hub may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a hub may take to answer (a publish waits for the self-test).
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The certificate authorities HTTPS hubs are checked against: the
/// platform's (the system store) plus the one in the PEM file
/// `ENVHUB_CA_CERT` (`--ca-cert`), e.g. a private hub's own; Mozilla's
/// roots where the platform has none. Read once per process.
pub fn trusted_roots() -> Result<ureq::tls::RootCerts, ClientError> {
    static ROOTS: std::sync::OnceLock<Result<ureq::tls::RootCerts, String>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(load_roots).clone().map_err(ClientError::Invalid)
}

/// A CA certificate (PEM file) to trust besides the platform's, for this
/// process: what `--ca-cert` sets. Takes effect for clients made after it,
/// and over `ENVHUB_CA_CERT`; the first call wins.
pub fn use_ca_cert(path: PathBuf) {
    let _ = CA_CERT.set(path);
}

static CA_CERT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn load_roots() -> Result<ureq::tls::RootCerts, String> {
    use ureq::tls::{Certificate, PemItem, RootCerts};
    let native = rustls_native_certs::load_native_certs();
    let mut certs: Vec<Certificate<'static>> =
        native.certs.iter().map(|c| Certificate::from_der(c.as_ref()).to_owned()).collect();
    let extra = CA_CERT.get().map(|p| p.as_os_str().to_owned()).or_else(|| std::env::var_os("ENVHUB_CA_CERT"));
    if let Some(path) = extra.filter(|p| !p.is_empty()) {
        let shown = std::path::Path::new(&path).display().to_string();
        let pem = std::fs::read(&path).map_err(|e| format!("ENVHUB_CA_CERT ({shown}): {e}"))?;
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            if let PemItem::Certificate(cert) = item.map_err(|e| format!("ENVHUB_CA_CERT ({shown}): {e}"))? {
                certs.push(cert);
            }
        }
        if certs.len() == before {
            return Err(format!("ENVHUB_CA_CERT ({shown}) holds no PEM certificate"));
        }
    }
    Ok(if certs.is_empty() { RootCerts::WebPki } else { RootCerts::Specific(std::sync::Arc::new(certs)) })
}

/// `ENVHUB_TOKEN`, when set.
fn env_token() -> Option<String> {
    std::env::var("ENVHUB_TOKEN").ok().filter(|s| !s.is_empty())
}

/// The largest archive a pull accepts.
const MAX_DOWNLOAD: u64 = 1 << 30;

impl Client {
    /// A client for a hub the user named (`hub`, else [`configured_hub`]),
    /// with the token from `ENVHUB_TOKEN` or the one stored for this hub.
    pub fn new(hub: Option<&str>) -> Result<Client, ClientError> {
        let base = match hub {
            Some(h) => h.trim_end_matches('/').to_owned(),
            None => configured_hub().ok_or(ClientError::NoHub)?,
        };
        let token = env_token().or_else(|| Credentials::load().ok()?.token_for(&base).map(str::to_owned));
        Client::with(base, token)
    }

    /// A client for a hub named by a file rather than the user (an
    /// `envhub.lock` entry's `source`): it carries only a token stored for
    /// that very hub, or `ENVHUB_TOKEN` when `ENVHUB_HUB` names it, so a
    /// lockfile cannot send the user's token elsewhere.
    pub fn for_source(source: &str) -> Result<Client, ClientError> {
        let base = source.trim_end_matches('/').to_owned();
        let named = std::env::var("ENVHUB_HUB").ok().is_some_and(|h| hub_key(&h) == hub_key(&base));
        let stored = Credentials::load()?.token_for(&base).map(str::to_owned);
        let token = if named { env_token().or(stored) } else { stored };
        Client::with(base, token)
    }

    /// A client for exactly `base` and `token`. HTTPS hubs are verified
    /// against [`trusted_roots`].
    pub fn with(base: String, token: Option<String>) -> Result<Client, ClientError> {
        let tls = ureq::tls::TlsConfig::builder().root_certs(trusted_roots()?).build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(RESPONSE_TIMEOUT))
            .build()
            .into();
        Ok(Client { base, token, agent })
    }

    fn auth(&self) -> Result<String, ClientError> {
        self.token.as_ref().map(|t| format!("Bearer {t}")).ok_or_else(|| {
            ClientError::Invalid(format!(
                "this needs a token: run `envhub login --hub {} --token T` or set ENVHUB_TOKEN",
                self.base
            ))
        })
    }

    fn unreachable(&self, what: &str, e: ureq::Error) -> ClientError {
        ClientError::Unreachable { what: what.to_owned(), base: self.base.clone(), reason: e.to_string() }
    }

    fn finish(
        &self,
        what: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, ClientError> {
        let mut response = response.map_err(|e| self.unreachable(what, e))?;
        let status = response.status();
        let text = response.body_mut().with_config().limit(64 << 20).read_to_string().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let message = value["error"]["message"].as_str().map(str::to_owned).unwrap_or(text);
        Err(ClientError::Hub { what: what.to_owned(), status: status.as_u16(), message })
    }

    /// `GET path` as JSON.
    pub fn get(&self, what: &str, path: &str) -> Result<Value, ClientError> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.finish(what, req.call())
    }

    /// An authenticated `POST`, `PUT` or `DELETE` with an optional JSON body.
    pub fn send(&self, what: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let auth = self.auth()?;
        let payload = body.map(Value::to_string).unwrap_or_default();
        let response = match method {
            "POST" => self
                .agent
                .post(url)
                .header("Authorization", auth)
                .header("Content-Type", "application/json")
                .send(payload.as_bytes()),
            "PUT" => self
                .agent
                .put(url)
                .header("Authorization", auth)
                .header("Content-Type", "application/json")
                .send(payload.as_bytes()),
            "DELETE" => self.agent.delete(url).header("Authorization", auth).call(),
            other => return Err(ClientError::Invalid(format!("unsupported method {other}"))),
        };
        self.finish(what, response)
    }

    /// Uploads a package archive with its digest.
    pub fn publish(&self, archive: &[u8], digest: &str) -> Result<Value, ClientError> {
        let req = self
            .agent
            .post(format!("{}/api/v1/packages", self.base))
            .header("Authorization", self.auth()?)
            .header("Content-Type", "application/gzip")
            .header("X-Envhub-Digest", digest);
        self.finish("publishing", req.send(archive))
    }

    /// Downloads the archive with `digest` (not yet verified).
    pub fn download(&self, digest: &str) -> Result<Vec<u8>, ClientError> {
        let hex = crate::pull::digest_hex(digest)?;
        let url = format!("{}/api/v1/blobs/sha256/{hex}", self.base);
        let what = format!("downloading {url}");
        let mut req = self.agent.get(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut response = req.call().map_err(|e| self.unreachable(&what, e))?;
        if !response.status().is_success() {
            return Err(ClientError::Hub {
                what,
                status: response.status().as_u16(),
                message: "the blob could not be downloaded".into(),
            });
        }
        response.body_mut().with_config().limit(MAX_DOWNLOAD).read_to_vec().map_err(|e| self.unreachable(&what, e))
    }
}
