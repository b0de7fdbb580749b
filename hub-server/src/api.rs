//! The JSON API, `/api/v1/...`. Every error is `{"error": {"code", "message"}}`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use envhub_sandbox::package::PackageName;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Authed, Scope, authenticate, new_token};
use crate::error::ApiError;
use crate::store::{PackageRecord, PackageSummary, VersionRecord, now};

type Shared = State<Arc<AppState>>;
type ApiResult<T> = Result<T, ApiError>;

/// The API routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/packages", post(crate::publish::publish))
        .route("/api/v1/packages/{owner}/{name}", get(index))
        .route("/api/v1/packages/{owner}/{name}/{version}/yank", put(yank).delete(unyank))
        .route("/api/v1/packages/{owner}/{name}/owners", get(list_owners).put(add_owners).delete(remove_owners))
        .route("/api/v1/blobs/sha256/{hex}", get(blob))
        .route("/api/v1/search", get(search))
        .route("/api/v1/tokens", post(create_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/api/v1/me", get(me))
}

/// On a hub without public reads: every read (`GET` and `HEAD`) but
/// `/api/v1/me` needs a token with the `read` scope; a package's index and
/// page, and a blob (by the package that holds it), also need a name
/// pattern covering the package. Search results and the package list are
/// filtered by the same patterns ([`read_patterns`]).
pub async fn require_read(
    State(state): Shared,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let read = matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    if state.config.public_read || !read || request.uri().path() == "/api/v1/me" {
        return next.run(request).await;
    }
    let token = match authenticate(&*state.storage, request.headers()).await {
        Ok(token) => token,
        Err(e) => return e.into_response(),
    };
    let path = request.uri().path();
    let package = match path.strip_prefix("/api/v1/blobs/sha256/") {
        Some(hex) => match state.storage.package_of_digest(&format!("sha256:{hex}")).await {
            Ok(Some(name)) => Some(name),
            Ok(None) => return ApiError::not_found(format!("no blob sha256:{hex}")).into_response(),
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => path.strip_prefix("/api/v1/packages/").or_else(|| path.strip_prefix("/packages/")).and_then(|rest| {
            let mut parts = rest.split('/');
            Some(format!("{}/{}", parts.next()?, parts.next()?))
        }),
    };
    let allowed = match package {
        Some(name) => token.require(Scope::Read, &name),
        None => token.require_scope(Scope::Read),
    };
    match allowed {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// The name patterns a reader may see on a hub without public reads
/// (`None`: everything, on a public hub).
pub async fn read_patterns(state: &AppState, headers: &HeaderMap) -> ApiResult<Option<Vec<String>>> {
    if state.config.public_read {
        return Ok(None);
    }
    let Authed(record) = authenticate(&*state.storage, headers).await?;
    Ok(Some(record.patterns))
}

/// `hits` without the packages `patterns` do not cover.
pub fn visible(mut hits: Vec<PackageSummary>, patterns: Option<&[String]>) -> Vec<PackageSummary> {
    if let Some(patterns) = patterns {
        hits.retain(|h| patterns.iter().any(|p| crate::auth::pattern_matches(p, &h.name)));
    }
    hits
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

/// The hex of a `sha256:<64 hex>` digest, lowercased.
pub(crate) fn parse_digest(s: &str) -> ApiResult<String> {
    let hex = s.trim().strip_prefix("sha256:").unwrap_or("");
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        let shown: String = s.chars().take(80).collect();
        Err(ApiError::bad_request("invalid_digest", format!("`{shown}` is not `sha256:` and 64 hex digits")))
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
    offset: Option<i64>,
}

/// `GET /api/v1/search?q=&limit=&offset=`: packages by name, sorted, at most
/// [`MAX_SEARCH_LIMIT`] a page.
async fn search(
    State(state): Shared,
    headers: HeaderMap,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    if query.q.len() > MAX_QUERY_BYTES {
        return Err(ApiError::bad_request("invalid_query", format!("a query has at most {MAX_QUERY_BYTES} bytes")));
    }
    let patterns = read_patterns(&state, &headers).await?;
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_SEARCH_LIMIT);
    let offset = query.offset.unwrap_or(0).max(0);
    let hits = state.storage.search(query.q.trim(), limit, offset).await?;
    Ok(Json(json!({ "packages": visible(hits, patterns.as_deref()), "limit": limit, "offset": offset })))
}

/// Most search results one request gets.
pub const MAX_SEARCH_LIMIT: i64 = 200;
/// Most bytes of a search query.
pub const MAX_QUERY_BYTES: usize = 200;

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

/// `DELETE /api/v1/tokens/{id}`: revokes a token. Admins revoke any; a
/// token may revoke itself, and the other tokens of its login only with the
/// `revoke-tokens` scope (so a read-only token cannot revoke its owner's
/// publishing token).
async fn revoke_token(State(state): Shared, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let token = authenticate(&*state.storage, &headers).await?;
    let target = state.storage.token_by_id(&id).await?.ok_or_else(|| ApiError::not_found(format!("no token {id}")))?;
    if !token.admin() && target.id != token.0.id {
        if target.login != token.login() {
            return Err(ApiError::forbidden("not_admin", format!("token {id} belongs to another login")));
        }
        token.require_scope(Scope::RevokeTokens)?;
    }
    state.storage.revoke_token(&id).await?;
    Ok(Json(json!({ "revoked": id })))
}

/// `GET /api/v1/me`: the token's own record.
async fn me(State(state): Shared, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let Authed(record) = authenticate(&*state.storage, &headers).await?;
    Ok(Json(json!({ "token": record })))
}
