//! Talking to a hub: where it is (`--hub`, `ENVHUB_HUB`, the login file),
//! the token (`ENVHUB_TOKEN`, the login file), and JSON over HTTP.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The login file under the cache root.
pub fn credentials_path() -> PathBuf {
    crate::home::root().join("credentials.toml")
}

/// What `envhub login` stores (mode 0600).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// The hub URL.
    pub hub: String,
    /// The token secret.
    pub token: String,
}

impl Credentials {
    /// The stored credentials, if any.
    pub fn load() -> Result<Option<Credentials>> {
        let path = credentials_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Stores them, readable by the user only.
    pub fn save(&self) -> Result<PathBuf> {
        use std::io::Write;
        let path = credentials_path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).with_context(|| format!("writing {}", path.display()))?;
        // A file that existed before keeps its mode on open: set it.
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        file.write_all(toml::to_string(self)?.as_bytes())?;
        Ok(path)
    }
}

/// A hub client.
pub struct Client {
    /// Base URL without a trailing slash.
    pub base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// The largest archive a pull accepts.
const MAX_DOWNLOAD: u64 = 1 << 30;

impl Client {
    /// A client for `hub` (else `ENVHUB_HUB`, else the login file's hub), with
    /// the token from `ENVHUB_TOKEN` or the login file.
    pub fn new(hub: Option<&str>) -> Result<Client> {
        let creds = Credentials::load()?;
        let base = hub
            .map(str::to_owned)
            .or_else(|| std::env::var("ENVHUB_HUB").ok().filter(|s| !s.is_empty()))
            .or_else(|| creds.as_ref().map(|c| c.hub.clone()))
            .ok_or_else(|| {
                anyhow!("which hub? pass --hub URL, set ENVHUB_HUB, or run `envhub login --hub URL --token T`")
            })?;
        let base = base.trim_end_matches('/').to_owned();
        let token = std::env::var("ENVHUB_TOKEN")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| creds.filter(|c| c.hub.trim_end_matches('/') == base).map(|c| c.token));
        Ok(Client::with(base, token))
    }

    /// A client for exactly `base` and `token`.
    pub fn with(base: String, token: Option<String>) -> Client {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        Client { base, token, agent }
    }

    fn auth(&self) -> Result<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}")).ok_or_else(|| {
            anyhow!("this needs a token: run `envhub login --hub {} --token T` or set ENVHUB_TOKEN", self.base)
        })
    }

    fn finish(&self, what: &str, response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value> {
        let mut response = response.with_context(|| format!("{what}: cannot reach the hub at {}", self.base))?;
        let status = response.status();
        let text = response.body_mut().with_config().limit(64 << 20).read_to_string().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let message = value["error"]["message"].as_str().map(str::to_owned).unwrap_or(text);
        bail!("{what}: the hub answered {status}: {message}")
    }

    /// `GET path` as JSON.
    pub fn get(&self, what: &str, path: &str) -> Result<Value> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.finish(what, req.call())
    }

    /// An authenticated request with an optional JSON body.
    pub fn send(&self, what: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
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
            other => bail!("unsupported method {other}"),
        };
        self.finish(what, response)
    }

    /// Uploads a package archive with its digest.
    pub fn publish(&self, archive: &[u8], digest: &str) -> Result<Value> {
        let req = self
            .agent
            .post(format!("{}/api/v1/packages", self.base))
            .header("Authorization", self.auth()?)
            .header("Content-Type", "application/gzip")
            .header("X-Envhub-Digest", digest);
        self.finish("publishing", req.send(archive))
    }

    /// Downloads the archive with `digest` (not yet verified).
    pub fn download(&self, digest: &str) -> Result<Vec<u8>> {
        let hex = digest.strip_prefix("sha256:").ok_or_else(|| anyhow!("`{digest}` is not a sha256 digest"))?;
        let url = format!("{}/api/v1/blobs/sha256/{hex}", self.base);
        let mut req = self.agent.get(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut response = req.call().with_context(|| format!("downloading {url}"))?;
        if !response.status().is_success() {
            bail!("downloading {url}: the hub answered {}", response.status());
        }
        response
            .body_mut()
            .with_config()
            .limit(MAX_DOWNLOAD)
            .read_to_vec()
            .with_context(|| format!("downloading {url}"))
    }
}
