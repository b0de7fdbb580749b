//! A trajectory API wire-compatible with Atropos's (see FACTS.md), that keeps
//! what it accepted across restarts.
//!
//! Endpoints: `POST /register`, `POST /register-env`, `POST /disconnect-env`,
//! `POST /scored_data`, `POST /scored_data_list`, `POST /batch`, `GET /info`,
//! `GET /status`, `GET|POST /status-env` (Atropos sends a JSON body on a
//! GET), `GET /wandb_info`, `GET /latest_example`, `POST /reset_data`.
//! Request bodies may be gzip (`Content-Encoding: gzip`). `/batch` returns
//! exactly `batch_size` sequences made of whole groups (oldest first where
//! possible), or `{"batch": null}` while the queue cannot make one; its
//! cost is one pass over the queue (see [`pick_exact`]).
//!
//! **Methods.** Routes that change state take POST. Two of them also answer
//! GET, because Atropos's own clients call them so: `/batch` (every
//! Atropos trainer polls `GET /batch`) and `/reset_data` (Atropos's
//! `atropos-sft-gen`, `atropos-dpo-gen` and `view-run` start with
//! `GET /reset_data`). A GET there is refused (403) when the request
//! carries what only a web browser or its prefetcher sends (`Origin`,
//! `Sec-Fetch-*`, `Sec-Purpose`/`Purpose`, `Upgrade-Insecure-Requests`, or
//! a `Mozilla/` user agent), so opening or prefetching a link never takes a
//! batch or wipes the queue; the same rule guards every state-changing
//! route under POST, against cross-site form posts. Trainers' HTTP clients
//! (Python `requests`, `aiohttp`, `httpx`) send none of those.
//! [`ApiOptions::atropos_get`] off makes those two routes POST-only.
//!
//! **Durability.** Every state change is one JSON line appended to a log
//! file and synced before the request is answered; on start the log is
//! replayed. An append that fails (a full disk) is cut back to the last
//! good record before the error is answered (507 for a full disk), so the
//! records after it are whole; a torn last line (a crash mid-write) is cut
//! off on start. The log file is locked: a second server on the same log
//! is refused ([`RunnerError::LogLocked`]). Once most of the log is dead
//! (consumed groups, replaced state) it is rewritten as a snapshot of the
//! state plus the queue ([`ApiOptions::compact_min_bytes`]). A group handed
//! out in a batch is logged as consumed before the batch is sent
//! (at-most-once delivery to the trainer).
//!
//! **Idempotency.** A push with an `Idempotency-Key` header (1 to
//! [`MAX_KEY_LEN`] visible ASCII characters) whose key was accepted before
//! is answered as received (`"duplicate": true`) and not queued again; keys
//! are kept in the log with their groups (the last [`KEPT_KEYS`]).
//! `/scored_data_list` derives one key per group (`KEY#0`, `KEY#1`, ...).
//!
//! **Limits.** A body is bounded as sent ([`ApiOptions::max_body_bytes`])
//! and after gzip decoding ([`ApiOptions::max_decoded_bytes`]): past either
//! it is answered 413 without reading further. `batch_size` is at most
//! [`MAX_BATCH_SIZE`].

mod backend;
mod log;
mod pick;
mod postgres;
mod store;

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};

use self::backend::Backend;
pub use self::pick::pick_exact;
use self::store::Store;
pub use self::store::{KEPT_KEYS, LogStats};
use crate::error::RunnerError;

/// The largest `batch_size` a trainer may register (sequences per batch).
pub const MAX_BATCH_SIZE: u64 = 1 << 16;

/// The longest idempotency key accepted.
pub const MAX_KEY_LEN: usize = 200;

/// Limits and switches of the trajectory API.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// Most bytes of a request body as sent (compressed or not).
    pub max_body_bytes: usize,
    /// Most bytes of a request body once gzip is decoded.
    pub max_decoded_bytes: usize,
    /// The log is compacted once at least this many of its bytes, and at
    /// least half of it, are dead.
    pub compact_min_bytes: u64,
    /// Whether `/batch` and `/reset_data` also answer GET from programs
    /// (as Atropos's clients call them).
    pub atropos_get: bool,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            max_body_bytes: 64 << 20,
            max_decoded_bytes: 64 << 20,
            compact_min_bytes: 64 << 20,
            atropos_get: true,
        }
    }
}

/// The server's state: a replayed log and its open file, or a PostgreSQL
/// database shared with other replicas.
#[derive(Clone)]
pub struct ApiState {
    store: Backend,
    options: Arc<ApiOptions>,
}

impl ApiState {
    /// Opens (or creates) the log at `path`, locks it and replays it, with
    /// the default options.
    pub fn open(path: &Path) -> Result<Self, RunnerError> {
        Self::open_with(path, ApiOptions::default())
    }

    /// Opens (or creates) the log at `path`, locks it and replays it.
    pub fn open_with(path: &Path, options: ApiOptions) -> Result<Self, RunnerError> {
        let store = Store::open(path, options.compact_min_bytes)?;
        Ok(ApiState { store: Backend::Log(Arc::new(Mutex::new(store))), options: Arc::new(options) })
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://...`),
    /// creating the API's tables there if they are missing. Any number of
    /// servers may share one database: they serve one queue.
    /// ([`ApiOptions::compact_min_bytes`] does not apply.)
    pub async fn connect_postgres(url: &str, options: ApiOptions) -> Result<Self, RunnerError> {
        let store = postgres::PgStore::connect(url).await?;
        Ok(ApiState { store: Backend::Postgres(Arc::new(store)), options: Arc::new(options) })
    }

    /// Groups waiting in the queue.
    pub async fn queue_len(&self) -> Result<usize, RunnerError> {
        Ok(self.store.status().await?.1)
    }

    /// The log's size and compactions (`None` for PostgreSQL).
    pub fn log_stats(&self) -> Option<LogStats> {
        match &self.store {
            Backend::Log(s) => s.lock().ok().map(|s| s.stats()),
            Backend::Postgres(_) => None,
        }
    }
}

/// An error answer.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "detail": self.1 }))).into_response()
    }
}

impl From<RunnerError> for ApiError {
    fn from(e: RunnerError) -> Self {
        let status = match &e {
            RunnerError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            RunnerError::LogBroken { .. } | RunnerError::Database { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

type ApiResult = Result<axum::Json<Value>, ApiError>;

/// The header, if any, that marks a request as sent by a web browser or
/// its prefetcher rather than by a program.
fn browser_mark(headers: &HeaderMap) -> Option<&'static str> {
    const MARKS: [&str; 7] = [
        "origin",
        "sec-fetch-site",
        "sec-fetch-mode",
        "sec-fetch-dest",
        "sec-purpose",
        "purpose",
        "upgrade-insecure-requests",
    ];
    if let Some(mark) = MARKS.into_iter().find(|m| headers.contains_key(*m)) {
        return Some(mark);
    }
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    ua.filter(|ua| ua.starts_with("Mozilla/")).map(|_| "user-agent")
}

/// Refuses a state-changing request that a browser sent.
fn refuse_browsers(headers: &HeaderMap) -> Result<(), ApiError> {
    match browser_mark(headers) {
        Some(mark) => Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "this route changes the trajectory queue and is for trainers and environments, not web browsers (the request has `{mark}`)"
            ),
        )),
        None => Ok(()),
    }
}

fn too_large(limit: usize, what: &str) -> ApiError {
    ApiError(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body {what} is larger than the limit of {limit} bytes"),
    )
}

/// The body, gunzipped when `Content-Encoding: gzip`, reading no more than
/// one byte past the decoded limit.
fn decoded<'a>(options: &ApiOptions, headers: &HeaderMap, body: &'a Bytes) -> Result<Cow<'a, [u8]>, ApiError> {
    let limit = options.max_decoded_bytes;
    let encoding = headers.get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") if body.len() > limit => Err(too_large(limit, "as sent")),
        None | Some("" | "identity") => Ok(Cow::Borrowed(&body[..])),
        Some("gzip" | "x-gzip") => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("bad gzip body: {e}")))?;
            if out.len() > limit {
                return Err(too_large(limit, "decoded from gzip"));
            }
            Ok(Cow::Owned(out))
        }
        Some(other) => Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding `{other}` (gzip or none)"),
        )),
    }
}

/// Parses a request body as JSON (an empty body is `{}`).
fn body_json(options: &ApiOptions, headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let raw = decoded(options, headers, body)?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&raw).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid JSON: {e}")))
}

/// The request's `Idempotency-Key`, if it has a valid one.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(None) };
    let key = v.to_str().unwrap_or("");
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("`Idempotency-Key` must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ));
    }
    Ok(Some(key.to_owned()))
}

fn check_group(g: &Value) -> Result<(), ApiError> {
    let bad = |m: &str| Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, m.to_owned()));
    let Some(tokens) = g.get("tokens").and_then(Value::as_array) else { return bad("`tokens` must be a list") };
    let Some(masks) = g.get("masks").and_then(Value::as_array) else { return bad("`masks` must be a list") };
    let Some(scores) = g.get("scores").and_then(Value::as_array) else { return bad("`scores` must be a list") };
    if tokens.is_empty() {
        return bad("a group needs at least one sequence");
    }
    if masks.len() != tokens.len() || scores.len() != tokens.len() {
        return bad("`tokens`, `masks` and `scores` must have the same length");
    }
    for (t, m) in tokens.iter().zip(masks) {
        match (t.as_array(), m.as_array()) {
            (Some(t), Some(m)) if t.len() == m.len() => {}
            _ => return bad("each `masks` row must match its `tokens` row"),
        }
    }
    if scores.iter().any(|s| !s.is_number()) {
        return bad("`scores` must be numbers");
    }
    Ok(())
}

fn new_uuid() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut r = envhub_sdk::Rng::new(nanos as u64 ^ u64::from(std::process::id()));
    let (a, b) = (r.next_u64(), r.next_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

async fn register(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    refuse_browsers(&headers)?;
    let body = body_json(&s.options, &headers, &body)?;
    if !body.get("batch_size").and_then(Value::as_u64).is_some_and(|b| (1..=MAX_BATCH_SIZE).contains(&b)) {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("`batch_size` must be an integer from 1 to {MAX_BATCH_SIZE} (the limit of this server)"),
        ));
    }
    let uuid = new_uuid();
    s.store.register(body, uuid.clone()).await?;
    Ok(axum::Json(json!({ "uuid": uuid })))
}

async fn register_env(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    refuse_browsers(&headers)?;
    let body = body_json(&s.options, &headers, &body)?;
    let name = body.get("desired_name").and_then(Value::as_str).unwrap_or("env").to_owned();
    let env = s.store.register_env(body).await?;
    let t = env.trainer.unwrap_or(Value::Null);
    Ok(axum::Json(json!({
        "status": "success",
        "env_id": env.env_id,
        "wandb_name": format!("{name}_{}", env.env_id),
        "checkpoint_dir": t.get("checkpoint_dir").cloned().unwrap_or(json!("")),
        "starting_step": env.step,
        "checkpoint_interval": t.get("save_checkpoint_interval").cloned().unwrap_or(json!(0)),
        "num_steps": t.get("num_steps").cloned().unwrap_or(json!(0)),
    })))
}

async fn disconnect_env(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    refuse_browsers(&headers)?;
    let body = body_json(&s.options, &headers, &body)?;
    let Some(env_id) = body.get("env_id").and_then(Value::as_i64) else {
        return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, "`env_id` is required".into()));
    };
    if !s.store.disconnect_env(env_id).await? {
        return Ok(axum::Json(json!({ "status": "failure", "error": format!("no environment has env_id {env_id}") })));
    }
    Ok(axum::Json(json!({ "status": "success" })))
}

/// Queues `groups` (each with its idempotency key) as one append; returns
/// how many were already there.
async fn push_groups(s: &ApiState, groups: Vec<(Value, Option<String>)>) -> Result<usize, ApiError> {
    for (g, _) in &groups {
        check_group(g)?;
    }
    Ok(s.store.push(groups).await?)
}

async fn scored_data(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    refuse_browsers(&headers)?;
    let key = idempotency_key(&headers)?;
    let body = body_json(&s.options, &headers, &body)?;
    if push_groups(&s, vec![(body, key)]).await? > 0 {
        return Ok(axum::Json(json!({ "status": "received", "duplicate": true })));
    }
    Ok(axum::Json(json!({ "status": "received" })))
}

async fn scored_data_list(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    refuse_browsers(&headers)?;
    let key = idempotency_key(&headers)?;
    let body = body_json(&s.options, &headers, &body)?;
    let Value::Array(groups) = body else {
        return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, "expected a list of groups".into()));
    };
    let n = groups.len();
    let keyed = groups.into_iter().enumerate().map(|(i, g)| (g, key.as_ref().map(|k| format!("{k}#{i}")))).collect();
    let duplicates = push_groups(&s, keyed).await?;
    let mut out = json!({ "status": "received", "groups_processed": n });
    if duplicates > 0 {
        out["duplicates"] = json!(duplicates);
    }
    Ok(axum::Json(out))
}

async fn batch(State(s): State<ApiState>, headers: HeaderMap) -> ApiResult {
    refuse_browsers(&headers)?;
    Ok(axum::Json(json!({ "batch": s.store.take_batch().await? })))
}

async fn info(State(s): State<ApiState>) -> ApiResult {
    Ok(axum::Json(match s.store.trainer().await? {
        Some(t) => json!({
            "batch_size": t.get("batch_size").cloned().unwrap_or(json!(-1)),
            "max_token_len": t.get("max_token_len").cloned().unwrap_or(json!(-1)),
        }),
        None => json!({ "batch_size": -1, "max_token_len": -1 }),
    }))
}

async fn status(State(s): State<ApiState>) -> ApiResult {
    let (step, queued) = s.store.status().await?;
    Ok(axum::Json(json!({ "current_step": step, "queue_size": queued })))
}

async fn status_env(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let body = body_json(&s.options, &headers, &body)?;
    let env_id = body.get("env_id").and_then(Value::as_i64);
    let st = s.store.env_status().await?;
    let env = env_id.and_then(|id| st.envs.iter().find(|e| e.env_id == id));
    let connected: f64 = st.envs.iter().filter(|e| e.connected).map(|e| e.weight).sum();
    let weight = env.map_or(0.0, |e| e.weight);
    let self_queue = env.map_or(0, |e| st.queue.iter().filter(|(id, _)| *id == Some(e.env_id)).count());
    Ok(axum::Json(json!({
        "current_step": st.step,
        "queue_size": st.queue.len(),
        "unallocated_fraction": 1.0,
        "self_queue_size": self_queue,
        "max_group_size": st.envs.iter().map(|e| e.group_size).max().unwrap_or(-1),
        "env_weight": if connected > 0.0 { weight / connected } else { 0.0 },
        "env_name": env.map(|e| e.name.clone()),
    })))
}

async fn wandb_info(State(s): State<ApiState>) -> ApiResult {
    let t = s.store.trainer().await?.unwrap_or(Value::Null);
    Ok(axum::Json(json!({
        "group": t.get("wandb_group").cloned().unwrap_or(Value::Null),
        "project": t.get("wandb_project").cloned().unwrap_or(Value::Null),
    })))
}

async fn latest_example(State(s): State<ApiState>) -> ApiResult {
    Ok(axum::Json(s.store.latest().await?.unwrap_or_else(|| {
        json!({"tokens": [], "masks": [], "scores": [], "advantages": [], "ref_logprobs": [], "messages": [], "images": []})
    })))
}

async fn reset_data(State(s): State<ApiState>, headers: HeaderMap) -> ApiResult {
    refuse_browsers(&headers)?;
    s.store.reset().await?;
    Ok(axum::Json(json!({ "status": "reset" })))
}

/// POST, and GET too where Atropos's clients need it.
fn changing<H, T>(handler: H, atropos_get: bool) -> MethodRouter<ApiState>
where
    H: Handler<T, ApiState>,
    T: 'static,
{
    if atropos_get { get(handler.clone()).post(handler) } else { post(handler) }
}

/// The API's routes over `state`.
pub fn router(state: ApiState) -> Router {
    let atropos_get = state.options.atropos_get;
    let max_body = state.options.max_body_bytes;
    Router::new()
        .route("/register", post(register))
        .route("/register-env", post(register_env))
        .route("/disconnect-env", post(disconnect_env))
        .route("/scored_data", post(scored_data))
        .route("/scored_data_list", post(scored_data_list))
        .route("/batch", changing(batch, atropos_get))
        .route("/info", get(info))
        .route("/status", get(status))
        .route("/status-env", get(status_env).post(status_env))
        .route("/wandb_info", get(wandb_info))
        .route("/latest_example", get(latest_example))
        .route("/reset_data", changing(reset_data, atropos_get))
        .route("/", get(|| async { axum::Json(json!({ "message": "envhub trajectory API (Atropos-compatible)" })) }))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunnerError> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| RunnerError::io("trajectory API", e))
}

#[cfg(test)]
mod tests;
