//! The JSON API, `/api/v1/...`. Every error is `{"error": {"code", "message"}}`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use envhub_sandbox::package::{Package, PackageName};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::{Authed, Scope, authenticate, new_token};
use crate::check::CheckError;
use crate::error::ApiError;
use crate::store::{NewVersion, PackageRecord, VersionRecord, now};

type Shared = State<Arc<AppState>>;
type ApiResult<T> = Result<T, ApiError>;

/// The API routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/packages", post(publish))
        .route("/api/v1/packages/{owner}/{name}", get(index))
        .route("/api/v1/packages/{owner}/{name}/{version}/yank", put(yank).delete(unyank))
        .route("/api/v1/packages/{owner}/{name}/owners", get(list_owners).put(add_owners).delete(remove_owners))
        .route("/api/v1/blobs/sha256/{hex}", get(blob))
        .route("/api/v1/search", get(search))
        .route("/api/v1/tokens", post(create_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/api/v1/me", get(me))
}

/// On a hub without public reads: every `GET` but `/api/v1/me` needs a token
/// with the `read` scope; a package's index and page also need a name
/// pattern covering the package.
pub async fn require_read(
    State(state): Shared,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if state.config.public_read || request.method() != axum::http::Method::GET || request.uri().path() == "/api/v1/me" {
        return next.run(request).await;
    }
    let token = match authenticate(&*state.storage, request.headers()).await {
        Ok(token) => token,
        Err(e) => return e.into_response(),
    };
    let path = request.uri().path();
    let package = path.strip_prefix("/api/v1/packages/").or_else(|| path.strip_prefix("/packages/")).and_then(|rest| {
        let mut parts = rest.split('/');
        Some(format!("{}/{}", parts.next()?, parts.next()?))
    });
    let allowed = match package {
        Some(name) => token.require(Scope::Read, &name),
        None => token.require_scope(Scope::Read),
    };
    match allowed {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// A JSON body, or a 400 in the API's error format naming what was wrong.
fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> ApiResult<Json<T>> {
    body.map_err(|e| ApiError::new(e.status(), "invalid_json", e.body_text()))
}

/// Any other path: a JSON 404.
pub async fn fallback(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint or page: {}", uri.path()))
}

/// The header carrying the digest the publisher expects.
pub const DIGEST_HEADER: &str = "x-envhub-digest";

/// The URL path of a blob.
pub fn blob_path(digest: &str) -> String {
    format!("/api/v1/blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

fn package_name(owner: &str, name: &str) -> ApiResult<PackageName> {
    format!("{owner}/{name}").parse().map_err(|e: String| ApiError::bad_request("invalid_name", e))
}

fn parse_version(version: &str) -> ApiResult<semver::Version> {
    semver::Version::parse(version).map_err(|e| {
        ApiError::bad_request(
            "invalid_version",
            format!("`{version}` is not a semantic version (MAJOR.MINOR.PATCH): {e}"),
        )
    })
}

/// The index entry of one version.
pub fn version_json(v: &VersionRecord) -> Value {
    json!({
        "version": v.version,
        "digest": v.digest,
        "size": v.size,
        "yanked": v.yanked,
        "published_at": v.published_at,
        "published_by": v.published_by,
        "description": v.description,
        "license": v.license,
        "self_test": v.self_test,
        "download": blob_path(&v.digest),
    })
}

async fn existing(state: &AppState, name: &PackageName) -> ApiResult<PackageRecord> {
    state.storage.package(&name.to_string()).await?.ok_or_else(|| ApiError::not_found(format!("no package {name}")))
}

/// `POST /api/v1/packages`: the body is the archive.
async fn publish(State(state): Shared, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let limit = state.config.max_package_bytes;
    let token = match authenticate(&*state.storage, &headers).await {
        Ok(token) => token,
        Err(e) => {
            // Read the upload (discarding it) so that the client, still
            // sending, gets this answer rather than a reset connection.
            drain(body, limit).await;
            return Err(e);
        }
    };
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the package is larger than this hub's limit of {limit} bytes"),
        )
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let expected = match headers.get(DIGEST_HEADER).map(|v| parse_digest(v.to_str().unwrap_or(""))) {
        None => None,
        Some(Ok(hex)) => Some(hex),
        Some(Err(e)) => {
            drain(body, limit).await;
            return Err(e);
        }
    };

    // Hash the stream as it arrives.
    let mut hasher = Sha256::new();
    let mut archive = Vec::with_capacity(declared.unwrap_or(0).min(limit) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("upload_failed", format!("the upload broke off: {e}")))?;
        if (archive.len() + chunk.len()) as u64 > limit {
            drain_stream(&mut stream, limit).await;
            return Err(too_large());
        }
        hasher.update(&chunk);
        archive.extend_from_slice(&chunk);
    }
    let digest: [u8; 32] = hasher.finalize().into();
    let hex = hex::encode(digest);
    if let Some(expected) = expected
        && expected != hex
    {
        return Err(ApiError::bad_request(
            "digest_mismatch",
            format!("the upload's digest is sha256:{hex} but {DIGEST_HEADER} says sha256:{expected}"),
        ));
    }
    let archive = Bytes::from(archive);

    let bytes = archive.clone();
    let package = tokio::task::spawn_blocking(move || Package::from_bytes(&bytes))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| ApiError::bad_request("invalid_package", e.to_string()))?;
    let manifest = &package.manifest.package;
    let name = manifest.name.to_string();

    // Who may publish this?
    let record = state.storage.package(&name).await?;
    match &record {
        None => token.require(Scope::PublishNew, &name)?,
        Some(record) => {
            token.require(Scope::PublishUpdate, &name)?;
            token.require_owner(&name, &record.owners)?;
            let key = crate::store::version_key(&manifest.version);
            if record
                .versions
                .iter()
                .any(|v| semver::Version::parse(&v.version).is_ok_and(|sv| crate::store::version_key(&sv) == key))
            {
                return Err(ApiError::conflict(
                    "version_exists",
                    format!("{name} {} is already published; published versions are immutable", manifest.version),
                ));
            }
        }
    }

    // Load and self-test in the sandbox.
    let (sandbox, data_root, tasks) =
        (state.sandbox.clone(), state.config.work_dir.join("check-data"), state.config.self_test_tasks);
    let (package, checked) = tokio::task::spawn_blocking(move || {
        let result = crate::check::run(&sandbox, &package, &data_root, tasks);
        (package, result)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let self_test = checked.map_err(|e| match e {
        CheckError::Load(_) => ApiError::bad_request("invalid_module", e.to_string()),
        CheckError::Info(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "self_test_failed", e.to_string()),
        CheckError::Failed { ref report, .. } => {
            let report = report.clone();
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "self_test_failed", e.to_string()).with_detail(report)
        }
    })?;

    // Blob first (durable), then the rows in one transaction.
    state.storage.put_blob(&hex, archive).await?;
    let manifest = &package.manifest.package;
    let new = NewVersion {
        name: name.clone(),
        version: manifest.version.clone(),
        digest: format!("sha256:{hex}"),
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

/// Reads and discards up to `limit` bytes of a request body.
async fn drain(body: Body, limit: u64) {
    drain_stream(&mut body.into_data_stream(), limit).await;
}

/// Reads and discards up to `limit` more bytes of a body stream.
async fn drain_stream(stream: &mut axum::body::BodyDataStream, limit: u64) {
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len() as u64;
        if seen > limit {
            break;
        }
    }
}

fn parse_digest(s: &str) -> ApiResult<String> {
    let hex = s.trim().strip_prefix("sha256:").unwrap_or("");
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(ApiError::bad_request("invalid_digest", format!("`{s}` is not `sha256:` and 64 hex digits")))
    }
}

/// `GET /api/v1/packages/{owner}/{name}`.
async fn index(State(state): Shared, Path((owner, name)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    let name = package_name(&owner, &name)?;
    let record = existing(&state, &name).await?;
    Ok(Json(json!({
        "name": record.name,
        "owners": record.owners,
        "latest": record.latest().map(|v| v.version.clone()),
        "versions": record.versions.iter().map(version_json).collect::<Vec<_>>(),
    })))
}

async fn set_yank(
    state: &AppState,
    headers: &HeaderMap,
    owner: &str,
    name: &str,
    version: &str,
    yanked: bool,
) -> ApiResult<Json<Value>> {
    let token = authenticate(&*state.storage, headers).await?;
    let name = package_name(owner, name)?;
    let version = parse_version(version)?;
    token.require(Scope::Yank, &name.to_string())?;
    let record = existing(state, &name).await?;
    token.require_owner(&name.to_string(), &record.owners)?;
    if !state.storage.set_yanked(&name.to_string(), &version, yanked).await? {
        return Err(ApiError::not_found(format!("{name} has no version {version}")));
    }
    Ok(Json(json!({ "name": name.to_string(), "version": version.to_string(), "yanked": yanked })))
}

/// `PUT /api/v1/packages/{owner}/{name}/{version}/yank`.
async fn yank(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, name, version)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    set_yank(&state, &headers, &owner, &name, &version, true).await
}

/// `DELETE /api/v1/packages/{owner}/{name}/{version}/yank`.
async fn unyank(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, name, version)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    set_yank(&state, &headers, &owner, &name, &version, false).await
}

/// The body of owner changes.
#[derive(Deserialize)]
struct Logins {
    logins: Vec<String>,
}

/// `GET /api/v1/packages/{owner}/{name}/owners`.
async fn list_owners(State(state): Shared, Path((owner, name)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    let record = existing(&state, &package_name(&owner, &name)?).await?;
    Ok(Json(json!({ "owners": record.owners })))
}

async fn owners_change(
    state: &AppState,
    headers: &HeaderMap,
    owner: &str,
    name: &str,
    body: &Logins,
    add: bool,
) -> ApiResult<Json<Value>> {
    let token = authenticate(&*state.storage, headers).await?;
    let package = package_name(owner, name)?;
    let name = package.to_string();
    token.require(Scope::ChangeOwners, &name)?;
    let record = existing(state, &package).await?;
    token.require_owner(&name, &record.owners)?;
    if body.logins.is_empty() || body.logins.iter().any(|l| l.trim().is_empty() || l.contains(',')) {
        return Err(ApiError::bad_request("invalid_logins", "`logins` must be a non-empty list of login names"));
    }
    if add {
        state.storage.add_owners(&name, &body.logins).await?;
    } else {
        if record.owners.iter().all(|o| body.logins.contains(o)) {
            return Err(ApiError::bad_request("last_owner", format!("{name} must keep at least one owner")));
        }
        state.storage.remove_owners(&name, &body.logins).await?;
    }
    let owners = existing(state, &package).await?.owners;
    Ok(Json(json!({ "owners": owners })))
}

/// `PUT /api/v1/packages/{owner}/{name}/owners` with `{"logins": [...]}`.
async fn add_owners(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    body: Result<Json<Logins>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    owners_change(&state, &headers, &owner, &name, &json_body(body)?.0, true).await
}

/// `DELETE /api/v1/packages/{owner}/{name}/owners` with `{"logins": [...]}`.
async fn remove_owners(
    State(state): Shared,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    body: Result<Json<Logins>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    owners_change(&state, &headers, &owner, &name, &json_body(body)?.0, false).await
}

/// `GET /api/v1/blobs/sha256/{hex}`: immutable, cacheable forever.
async fn blob(State(state): Shared, headers: HeaderMap, Path(hex): Path<String>) -> ApiResult<Response> {
    let hex = parse_digest(&format!("sha256:{hex}"))?;
    let etag = format!("\"sha256:{hex}\"");
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    let etag_value =
        HeaderValue::from_str(&etag).map_err(|e| ApiError::bad_request("invalid_digest", e.to_string()))?;
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return Ok(
            (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value), (header::CACHE_CONTROL, cache)]).into_response()
        );
    }
    let blob =
        state.storage.get_blob(&hex).await?.ok_or_else(|| ApiError::not_found(format!("no blob sha256:{hex}")))?;
    let mut response = Response::new(Body::from_stream(blob.body));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/gzip"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.size));
    h.insert(header::ETAG, etag_value);
    h.insert(header::CACHE_CONTROL, cache);
    Ok(response)
}

/// `?q=...&limit=...`.
#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    limit: Option<i64>,
}

/// `GET /api/v1/search?q=`.
async fn search(State(state): Shared, query: Result<Query<SearchQuery>, QueryRejection>) -> ApiResult<Json<Value>> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let hits = state.storage.search(query.q.trim(), query.limit.unwrap_or(50).clamp(1, 500)).await?;
    Ok(Json(json!({ "packages": hits })))
}

/// The body of `POST /api/v1/tokens`.
#[derive(Deserialize)]
struct NewToken {
    login: String,
    scopes: Vec<String>,
    #[serde(default)]
    patterns: Vec<String>,
    expires_in_secs: Option<i64>,
}

/// `POST /api/v1/tokens` (admin tokens only): the secret is in the answer, once.
async fn create_token(
    State(state): Shared,
    headers: HeaderMap,
    body: Result<Json<NewToken>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = json_body(body)?;
    let token = authenticate(&*state.storage, &headers).await?;
    if !token.admin() {
        return Err(ApiError::forbidden("not_admin", "only an admin token may create tokens"));
    }
    let login_ok =
        !body.login.is_empty() && body.login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !login_ok {
        return Err(ApiError::bad_request(
            "invalid_login",
            format!("login `{}` must be letters, digits, `-` or `_`", body.login),
        ));
    }
    let scopes = body
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_request("invalid_scope", e))?;
    if scopes.is_empty() {
        return Err(ApiError::bad_request("invalid_scope", "a token needs at least one scope"));
    }
    let patterns = if body.patterns.is_empty() { vec![format!("{}/*", body.login)] } else { body.patterns };
    if patterns.iter().any(|p| p.is_empty() || p.contains(',')) {
        return Err(ApiError::bad_request("invalid_pattern", "name patterns must be non-empty and have no commas"));
    }
    let expires_at = body.expires_in_secs.map(|s| now().saturating_add(s));
    let (secret, record) = new_token(&body.login, &scopes, &patterns, false, expires_at)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    state.storage.insert_token(&record).await?;
    Ok((StatusCode::CREATED, Json(json!({ "token": secret, "record": record }))).into_response())
}

/// `DELETE /api/v1/tokens/{id}`: revokes a token (admins: any; others: their own login's).
async fn revoke_token(State(state): Shared, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let token = authenticate(&*state.storage, &headers).await?;
    let target = state.storage.token_by_id(&id).await?.ok_or_else(|| ApiError::not_found(format!("no token {id}")))?;
    if !token.admin() && target.login != token.login() {
        return Err(ApiError::forbidden("not_admin", format!("token {id} belongs to another login")));
    }
    state.storage.revoke_token(&id).await?;
    Ok(Json(json!({ "revoked": id })))
}

/// `GET /api/v1/me`: the token's own record.
async fn me(State(state): Shared, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let Authed(record) = authenticate(&*state.storage, &headers).await?;
    Ok(Json(json!({ "token": record })))
}
