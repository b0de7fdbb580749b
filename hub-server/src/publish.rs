//! `POST /api/v1/packages`: receive an upload, check it in the sandbox, and
//! store it.
//!
//! What an upload may cost the hub is bounded before anything is spent on it:
//! - the token's scopes are checked before the body is read (403, the body
//!   discarded unread beyond the size cap);
//! - at most [`crate::HubConfig::max_concurrent_uploads`] uploads are
//!   received at once, at most `uploads_per_address` from one client (429),
//!   and at most [`crate::HubConfig::max_concurrent_publishes`] of them
//!   checked at once; the others wait up to `publish_wait`, then get 503
//!   with `Retry-After`, so a client trickling its bytes holds no check slot;
//! - whether the token may publish the package (scope, owner, version not
//!   taken) is decided from its manifest alone, before anything is unpacked;
//! - the body is streamed to a file under `work_dir/uploads` (at most
//!   `max_package_bytes`, with no pause over `upload_idle_timeout` and all
//!   within `upload_timeout`, else 408), never held in memory, and read from there with
//!   its data files unpacked to disk (at most
//!   [`envhub_sandbox::package::MAX_UNPACKED_BYTES`]);
//! - the self-test runs under one budget for all its calls
//!   ([`crate::HubConfig::self_test_fuel`], `self_test_seconds`);
//! - whatever the check leaves (the upload, unpacked data, compiled modules)
//!   is removed when it is done, accepted or refused.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use envhub_sandbox::Sandbox;
use envhub_sandbox::package::{Manifest, Package};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::AppState;
use crate::api::{DIGEST_HEADER, blob_path, parse_digest};
use crate::auth::{Authed, Scope, authenticate};
use crate::check::CheckError;
use crate::error::ApiError;
use crate::limits::UploadPass;
use crate::store::NewVersion;

type ApiResult<T> = Result<T, ApiError>;

/// Most versions one package may have (its index is read whole).
pub const MAX_VERSIONS: usize = 1000;

/// Whether `request` is a publish (whose deadlines are its own).
pub fn is_publish(request: &axum::extract::Request) -> bool {
    request.method() == axum::http::Method::POST && request.uri().path() == "/api/v1/packages"
}

/// `POST /api/v1/packages`: the body is the archive.
pub async fn publish(State(state): State<Arc<AppState>>, request: Request) -> ApiResult<Response> {
    let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let limit = state.config.max_package_bytes;
    let token = match authenticate(&*state.storage, &headers).await.and_then(|t| t.require_publish().map(|()| t)) {
        Ok(token) => token,
        Err(e) => return Err(discard(body, limit, e).await),
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(discard(body, limit, too_large(limit)).await);
    }
    let expected = match headers.get(DIGEST_HEADER).map(|v| parse_digest(v.to_str().unwrap_or(""))) {
        None => None,
        Some(Ok(hex)) => Some(hex),
        Some(Err(e)) => return Err(discard(body, limit, e).await),
    };
    // Receiving: bounded per client address and in all, apart from the
    // (fewer) check slots, so clients trickling bytes hold no check slot.
    let _client_pass = match client_pass(&state, address) {
        Ok(pass) => pass,
        Err(e) => return Err(discard(body, limit, e).await),
    };
    let Some(_receiving) = wait_for_slot(&state.upload_slots, state.config.publish_wait).await else {
        return Err(discard(body, limit, busy("receiving")).await);
    };
    let upload = receive(&state.config, body).await?;
    if let Some(expected) = expected
        && expected != upload.hex
    {
        return Err(ApiError::bad_request(
            "digest_mismatch",
            format!("the upload's digest is sha256:{} but {DIGEST_HEADER} says sha256:{expected}", upload.hex),
        ));
    }
    // Whether this token may publish it, from the manifest alone, before
    // anything is unpacked or compiled.
    let path = upload.path.to_path_buf();
    let manifest = blocking(move || Package::read_manifest(&path)).await?.map_err(invalid_package)?;
    authorize(&state, &token, &manifest).await?;

    let Some(_checking) = wait_for_slot(&state.publish_slots, state.config.publish_wait).await else {
        return Err(busy("checking"));
    };
    let data_root = state.config.work_dir.join("check-data");
    let (path, root) = (upload.path.to_path_buf(), data_root.clone());
    let package = blocking(move || Package::open(&path, &root)).await?.map_err(invalid_package)?;
    let package = Arc::new(package);
    // From here on, whatever happens, the check's traces go.
    let _cleanup = Cleanup { sandbox: state.sandbox.clone(), package: package.clone(), data_root: data_root.clone() };
    let self_test = self_test(&state, package.clone(), data_root).await?;
    store(&state, &token, &package, &upload, self_test).await
}

fn invalid_package(e: envhub_sandbox::package::PackageError) -> ApiError {
    ApiError::bad_request("invalid_package", e.to_string())
}

/// A permit of `slots`, waiting for one at most `wait`.
async fn wait_for_slot(
    slots: &Arc<tokio::sync::Semaphore>,
    wait: Duration,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    tokio::time::timeout(wait, slots.clone().acquire_owned()).await.ok()?.ok()
}

fn busy(stage: &str) -> ApiError {
    ApiError::retry_later(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        format!("the hub is {stage} other uploads; try again shortly"),
        10,
    )
}

/// This client's pass to upload (one of
/// [`crate::HubConfig::uploads_per_address`] at once), where per-client
/// limits are on and the client's address is known.
fn client_pass(state: &AppState, address: Option<IpAddr>) -> ApiResult<Option<UploadPass>> {
    let (Some(_), Some(address)) = (&state.config.rate_limit, address) else {
        return Ok(None);
    };
    let most = state.config.uploads_per_address.max(1);
    match state.uploads_in_flight.enter(address, most) {
        Some(pass) => Ok(Some(pass)),
        None => Err(ApiError::retry_later(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_uploads",
            format!("this client already has {most} uploads in progress; wait for one to finish"),
            5,
        )),
    }
}

/// `error`, after reading and discarding up to `limit` bytes of the body (so
/// the client, still sending, gets the answer rather than a reset). Nothing
/// is kept or decoded.
async fn discard(body: Body, limit: u64, error: ApiError) -> ApiError {
    drain(&mut body.into_data_stream(), limit).await;
    error
}

/// Reads and discards up to `limit` more bytes of `stream`: for at most
/// 10 s, and only while the client keeps sending (a pause of a second ends
/// it), so a refused client that sends nothing is answered at once.
async fn drain(stream: &mut axum::body::BodyDataStream, limit: u64) {
    let mut seen = 0u64;
    let read = async {
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
            seen += chunk.len() as u64;
            if seen > limit {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
}

fn too_large(limit: u64) -> ApiError {
    ApiError::too_large(format!("the package is larger than this hub's limit of {limit} bytes"))
}

fn too_slow(config: &crate::HubConfig, overall: bool) -> ApiError {
    let message = if overall {
        format!(
            "the upload took longer than this hub's {} s; send it faster or closer",
            config.upload_timeout.as_secs()
        )
    } else {
        format!("the upload paused for over {} s; send it without stalling", config.upload_idle_timeout.as_secs())
    };
    ApiError::new(StatusCode::REQUEST_TIMEOUT, "upload_timeout", message)
}

/// An upload on disk (removed when dropped) and its digest.
struct Upload {
    path: tempfile::TempPath,
    hex: String,
}

/// Streams `body` into a fresh file under `work_dir/uploads`, hashing it:
/// at most `max_package_bytes`, with no pause longer than
/// `upload_idle_timeout` and all within `upload_timeout` (so a client
/// trickling bytes cannot hold a publish slot).
async fn receive(config: &crate::HubConfig, body: Body) -> ApiResult<Upload> {
    let dir = config.work_dir.join("uploads");
    let limit = config.max_package_bytes;
    let io = |e: std::io::Error| ApiError::internal(format!("storing the upload under {}: {e}", dir.display()));
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    let (file, path) = tempfile::Builder::new().prefix("upload-").tempfile_in(&dir).map_err(io)?.into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut hasher = Sha256::new();
    let (mut stream, mut size) = (body.into_data_stream(), 0u64);
    let deadline = tokio::time::Instant::now() + config.upload_timeout;
    loop {
        let pause = tokio::time::Instant::now() + config.upload_idle_timeout;
        let chunk = match tokio::time::timeout_at(pause.min(deadline), stream.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => return Err(too_slow(config, tokio::time::Instant::now() >= deadline)),
        };
        let chunk = chunk.map_err(|e| ApiError::bad_request("upload_failed", format!("the upload broke off: {e}")))?;
        size += chunk.len() as u64;
        if size > limit {
            drain(&mut stream, limit).await;
            return Err(too_large(limit));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(Upload { path, hex: hex::encode(hasher.finalize()) })
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(e.to_string()))
}

/// Removes what checking a package left (see [`Sandbox::forget_package`]).
struct Cleanup {
    sandbox: Sandbox,
    package: Arc<Package>,
    data_root: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (sandbox, package, root) = (self.sandbox.clone(), self.package.clone(), self.data_root.clone());
        // Removing a gigabyte of data takes a while: not on the async threads.
        let forget = move || sandbox.forget_package(&package, &root);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(forget)),
            Err(_) => forget(),
        }
    }
}

/// May `token` publish this package (new, or a new version it owns)?
async fn authorize(state: &AppState, token: &Authed, manifest: &Manifest) -> ApiResult<()> {
    let manifest = &manifest.package;
    let name = manifest.name.to_string();
    match state.storage.package(&name).await? {
        None => token.require(Scope::PublishNew, &name),
        Some(record) => {
            token.require(Scope::PublishUpdate, &name)?;
            token.require_owner(&name, &record.owners)?;
            if record.versions.len() >= MAX_VERSIONS {
                return Err(ApiError::conflict(
                    "too_many_versions",
                    format!("{name} has {MAX_VERSIONS} versions, the most a package may have; publish a new package"),
                ));
            }
            let key = crate::store::version_key(&manifest.version);
            let taken = record
                .versions
                .iter()
                .any(|v| semver::Version::parse(&v.version).is_ok_and(|sv| crate::store::version_key(&sv) == key));
            if taken {
                return Err(ApiError::conflict(
                    "version_exists",
                    format!("{name} {} is already published; published versions are immutable", manifest.version),
                ));
            }
            Ok(())
        }
    }
}

/// Loads and self-tests the package in the sandbox, under the hub's budget.
async fn self_test(state: &AppState, package: Arc<Package>, data_root: PathBuf) -> ApiResult<Value> {
    let (sandbox, config) = (state.sandbox.clone(), state.config.self_test());
    let checked = blocking(move || crate::check::run(&sandbox, &package, &data_root, &config)).await?;
    checked.map_err(|e| match e {
        CheckError::Load(_) => ApiError::bad_request("invalid_module", e.to_string()),
        CheckError::Info(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "self_test_failed", e.to_string()),
        CheckError::Failed { ref report, .. } => {
            let report = report.clone();
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "self_test_failed", e.to_string()).with_detail(report)
        }
    })
}

/// Stores the blob (durable first), then the version's rows in one transaction.
async fn store(
    state: &AppState,
    token: &Authed,
    package: &Package,
    upload: &Upload,
    self_test: Value,
) -> ApiResult<Response> {
    state.storage.put_blob(&upload.hex, &upload.path).await?;
    let manifest = &package.manifest.package;
    let name = manifest.name.to_string();
    let new = NewVersion {
        name: name.clone(),
        version: manifest.version.clone(),
        digest: format!("sha256:{}", upload.hex),
        size: package.size,
        description: manifest.description.clone(),
        license: manifest.license.clone(),
        readme: package.readme.clone(),
        self_test: self_test.clone(),
    };
    state.storage.publish(&new, token.login(), token.admin()).await?;
    let body = json!({
        "name": name,
        "version": manifest.version.to_string(),
        "digest": new.digest,
        "size": package.size,
        "self_test": self_test,
        "download": blob_path(&new.digest),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
