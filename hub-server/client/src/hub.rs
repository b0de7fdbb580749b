//! Talking to a hub: where it is (an explicit URL, `ENVHUB_HUB`, the login
//! file), the token (`ENVHUB_TOKEN`, the login file, sent only to the hub it
//! was stored for), and JSON over HTTP.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ClientError;

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
    pub fn load() -> Result<Option<Credentials>, ClientError> {
        let path = crate::home::credentials_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map(Some).map_err(|e| {
                ClientError::Invalid(format!("{} is not valid ({e}); run `envhub login` again", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClientError::io(format!("reading {}", path.display()), e)),
        }
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

/// The hub a command uses when given none: `ENVHUB_HUB`, else the login
/// file's; `None` when neither is set.
pub fn configured_hub() -> Option<String> {
    std::env::var("ENVHUB_HUB")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| Credentials::load().ok().flatten().map(|c| c.hub))
        .map(|h| h.trim_end_matches('/').to_owned())
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
    /// A client for `hub` (else [`configured_hub`]), with the token from
    /// `ENVHUB_TOKEN` or the login file when it was stored for this hub.
    pub fn new(hub: Option<&str>) -> Result<Client, ClientError> {
        let creds = Credentials::load()?;
        let base = match hub {
            Some(h) => h.trim_end_matches('/').to_owned(),
            None => configured_hub().ok_or(ClientError::NoHub)?,
        };
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
