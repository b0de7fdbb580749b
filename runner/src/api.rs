//! A trajectory API wire-compatible with Atropos's (see FACTS.md), that keeps
//! what it accepted across restarts.
//!
//! Endpoints: `POST /register`, `POST /register-env`, `POST /disconnect-env`,
//! `POST /scored_data`, `POST /scored_data_list`, `GET /batch`, `GET /info`,
//! `GET /status`, `GET /status-env` (JSON body on a GET), `GET /wandb_info`,
//! `GET /latest_example`, `GET /reset_data`. Request bodies may be gzip
//! (`Content-Encoding: gzip`). `/batch` returns exactly `batch_size`
//! sequences made of whole groups (oldest first where possible), or
//! `{"batch": null}` while the queue cannot make one.
//!
//! Durability: every state change is one JSON line appended to a log file
//! and fsynced before the request is answered; on start the log is
//! replayed. A torn last line (a crash mid-write) is ignored. A group handed
//! out in a batch is logged as consumed before the batch is sent
//! (at-most-once delivery to the trainer).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::RunnerError;

/// One line of the durable log.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Record {
    Register { body: Value, uuid: String },
    RegisterEnv { env_id: i64, body: Value },
    DisconnectEnv { env_id: i64 },
    Push { seq: u64, group: Value },
    Batch { seqs: Vec<u64> },
    Reset,
}

#[derive(Clone, Debug)]
struct Queued {
    seq: u64,
    size: usize,
    group: Value,
}

#[derive(Clone, Debug)]
struct EnvReg {
    env_id: i64,
    name: String,
    weight: f64,
    group_size: i64,
    connected: bool,
}

#[derive(Default)]
struct Inner {
    trainer: Option<(Value, String)>,
    envs: Vec<EnvReg>,
    queue: VecDeque<Queued>,
    next_seq: u64,
    step: u64,
    latest: Option<Value>,
}

impl Inner {
    fn apply(&mut self, r: &Record) {
        match r {
            Record::Register { body, uuid } => {
                self.trainer = Some((body.clone(), uuid.clone()));
                self.step = body.get("starting_step").and_then(Value::as_u64).unwrap_or(self.step);
            }
            Record::RegisterEnv { env_id, body } => self.envs.push(EnvReg {
                env_id: *env_id,
                name: body.get("desired_name").and_then(Value::as_str).unwrap_or("env").to_owned(),
                weight: body.get("weight").and_then(Value::as_f64).unwrap_or(1.0),
                group_size: body.get("group_size").and_then(Value::as_i64).unwrap_or(-1),
                connected: true,
            }),
            Record::DisconnectEnv { env_id } => {
                for e in self.envs.iter_mut().filter(|e| e.env_id == *env_id) {
                    e.connected = false;
                }
            }
            Record::Push { seq, group } => {
                let size = group_size(group);
                self.queue.push_back(Queued { seq: *seq, size, group: group.clone() });
                self.next_seq = self.next_seq.max(seq + 1);
                self.latest = Some(group.clone());
            }
            Record::Batch { seqs } => {
                self.queue.retain(|q| !seqs.contains(&q.seq));
                self.step += 1;
            }
            Record::Reset => {
                let next_seq = self.next_seq;
                *self = Inner { next_seq, ..Inner::default() };
            }
        }
    }

    fn batch_size(&self) -> Option<usize> {
        let bs = self.trainer.as_ref()?.0.get("batch_size")?.as_u64()?;
        usize::try_from(bs).ok().filter(|b| *b > 0)
    }
}

/// Sequences in a group (its `tokens` rows).
fn group_size(group: &Value) -> usize {
    group.get("tokens").and_then(Value::as_array).map_or(0, Vec::len)
}

/// Picks whole groups whose sizes add up to exactly `target`: the oldest
/// groups first (greedily), falling back to an exact subset-sum over the
/// queue. Returns queue positions, or `None` when no subset fits exactly.
pub fn pick_exact(sizes: &[usize], target: usize) -> Option<Vec<usize>> {
    let mut picked = Vec::new();
    let mut sum = 0;
    for (i, &s) in sizes.iter().enumerate() {
        if s > 0 && sum + s <= target {
            picked.push(i);
            sum += s;
            if sum == target {
                return Some(picked);
            }
        }
    }
    // Subset sum: reach[v] = the group that first reached sum v, in queue order.
    let mut reach: Vec<Option<(usize, usize)>> = vec![None; target + 1];
    let mut reached = vec![false; target + 1];
    reached[0] = true;
    for (i, &s) in sizes.iter().enumerate() {
        if s == 0 || s > target {
            continue;
        }
        for v in (s..=target).rev() {
            if !reached[v] && reached[v - s] {
                reached[v] = true;
                reach[v] = Some((i, v - s));
            }
        }
        if reached[target] {
            break;
        }
    }
    if !reached[target] {
        return None;
    }
    let mut out = Vec::new();
    let mut v = target;
    while v > 0 {
        let (i, prev) = reach[v]?;
        out.push(i);
        v = prev;
    }
    out.sort_unstable();
    Some(out)
}

struct Store {
    inner: Inner,
    log: File,
    path: PathBuf,
}

impl Store {
    fn append(&mut self, r: Record) -> Result<(), RunnerError> {
        let mut line = serde_json::to_vec(&r).map_err(|e| RunnerError::Sink(e.to_string()))?;
        line.push(b'\n');
        self.log.write_all(&line).map_err(|e| RunnerError::io(&self.path, e))?;
        self.log.sync_data().map_err(|e| RunnerError::io(&self.path, e))?;
        self.inner.apply(&r);
        Ok(())
    }
}

/// The server's state: the replayed log and the open log file.
#[derive(Clone)]
pub struct ApiState {
    store: Arc<Mutex<Store>>,
}

impl ApiState {
    /// Opens (or creates) the log at `path` and replays it.
    pub fn open(path: &Path) -> Result<Self, RunnerError> {
        let mut inner = Inner::default();
        let mut valid_len = 0u64;
        if path.exists() {
            let f = File::open(path).map_err(|e| RunnerError::io(path, e))?;
            let mut reader = BufReader::new(f);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).map_err(|e| RunnerError::io(path, e))?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break; // end, or a torn last line
                }
                match serde_json::from_slice::<Record>(&line) {
                    Ok(r) => inner.apply(&r),
                    Err(e) => {
                        return Err(RunnerError::Config(format!(
                            "{}: corrupt record at byte {valid_len}: {e}",
                            path.display()
                        )));
                    }
                }
                valid_len += n as u64;
            }
        }
        let log = OpenOptions::new().create(true).append(true).open(path).map_err(|e| RunnerError::io(path, e))?;
        // Drop a torn tail so later appends start on a fresh line.
        log.set_len(valid_len).map_err(|e| RunnerError::io(path, e))?;
        Ok(ApiState { store: Arc::new(Mutex::new(Store { inner, log, path: path.to_path_buf() })) })
    }

    /// Groups waiting in the queue.
    pub fn queue_len(&self) -> usize {
        self.store.lock().map(|s| s.inner.queue.len()).unwrap_or(0)
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
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

type ApiResult = Result<axum::Json<Value>, ApiError>;

/// Parses a request body, gunzipping it when `Content-Encoding: gzip`.
fn body_json(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let gz = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let raw: Vec<u8> = if gz {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .take(1 << 30)
            .read_to_end(&mut out)
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("bad gzip body: {e}")))?;
        out
    } else {
        body.to_vec()
    };
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&raw).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid JSON: {e}")))
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

async fn with_store<T: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce(&mut Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard =
            store.lock().map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "store poisoned".into()))?;
        f(&mut guard)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
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
    let body = body_json(&headers, &body)?;
    if body.get("batch_size").and_then(Value::as_u64).is_none_or(|b| b == 0) {
        return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, "`batch_size` must be a positive integer".into()));
    }
    let uuid = new_uuid();
    let u = uuid.clone();
    with_store(&s, move |st| st.append(Record::Register { body, uuid: u }).map_err(ApiError::from)).await?;
    Ok(axum::Json(json!({ "uuid": uuid })))
}

async fn register_env(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let body = body_json(&headers, &body)?;
    let out = with_store(&s, move |st| {
        let env_id = st.inner.envs.len() as i64;
        let name = body.get("desired_name").and_then(Value::as_str).unwrap_or("env").to_owned();
        st.append(Record::RegisterEnv { env_id, body })?;
        let t = st.inner.trainer.as_ref().map(|t| t.0.clone()).unwrap_or(Value::Null);
        Ok(json!({
            "status": "success",
            "env_id": env_id,
            "wandb_name": format!("{name}_{env_id}"),
            "checkpoint_dir": t.get("checkpoint_dir").cloned().unwrap_or(json!("")),
            "starting_step": st.inner.step,
            "checkpoint_interval": t.get("save_checkpoint_interval").cloned().unwrap_or(json!(0)),
            "num_steps": t.get("num_steps").cloned().unwrap_or(json!(0)),
        }))
    })
    .await?;
    Ok(axum::Json(out))
}

async fn disconnect_env(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let body = body_json(&headers, &body)?;
    let Some(env_id) = body.get("env_id").and_then(Value::as_i64) else {
        return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, "`env_id` is required".into()));
    };
    with_store(&s, move |st| st.append(Record::DisconnectEnv { env_id }).map_err(ApiError::from)).await?;
    Ok(axum::Json(json!({ "status": "success" })))
}

async fn push_groups(s: &ApiState, groups: Vec<Value>) -> Result<usize, ApiError> {
    for g in &groups {
        check_group(g)?;
    }
    let n = groups.len();
    with_store(s, move |st| {
        for group in groups {
            let seq = st.inner.next_seq;
            st.append(Record::Push { seq, group })?;
        }
        Ok(())
    })
    .await?;
    Ok(n)
}

async fn scored_data(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let body = body_json(&headers, &body)?;
    push_groups(&s, vec![body]).await?;
    Ok(axum::Json(json!({ "status": "received" })))
}

async fn scored_data_list(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let body = body_json(&headers, &body)?;
    let groups = match body {
        Value::Array(a) => a,
        _ => return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, "expected a list of groups".into())),
    };
    let n = push_groups(&s, groups).await?;
    Ok(axum::Json(json!({ "status": "received", "groups_processed": n })))
}

async fn batch(State(s): State<ApiState>) -> ApiResult {
    let out = with_store(&s, |st| {
        let Some(bs) = st.inner.batch_size() else { return Ok(json!({ "batch": null })) };
        let sizes: Vec<usize> = st.inner.queue.iter().map(|q| q.size).collect();
        let Some(picked) = pick_exact(&sizes, bs) else { return Ok(json!({ "batch": null })) };
        let seqs: Vec<u64> = picked.iter().map(|&i| st.inner.queue[i].seq).collect();
        let groups: Vec<Value> = picked.iter().map(|&i| st.inner.queue[i].group.clone()).collect();
        st.append(Record::Batch { seqs })?;
        Ok(json!({ "batch": groups }))
    })
    .await?;
    Ok(axum::Json(out))
}

async fn info(State(s): State<ApiState>) -> ApiResult {
    let out = with_store(&s, |st| {
        Ok(match &st.inner.trainer {
            Some((t, _)) => json!({
                "batch_size": t.get("batch_size").cloned().unwrap_or(json!(-1)),
                "max_token_len": t.get("max_token_len").cloned().unwrap_or(json!(-1)),
            }),
            None => json!({ "batch_size": -1, "max_token_len": -1 }),
        })
    })
    .await?;
    Ok(axum::Json(out))
}

async fn status(State(s): State<ApiState>) -> ApiResult {
    let out =
        with_store(&s, |st| Ok(json!({ "current_step": st.inner.step, "queue_size": st.inner.queue.len() }))).await?;
    Ok(axum::Json(out))
}

async fn status_env(State(s): State<ApiState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let body = body_json(&headers, &body)?;
    let env_id = body.get("env_id").and_then(Value::as_i64);
    let out = with_store(&s, move |st| {
        let env = env_id.and_then(|id| st.inner.envs.iter().find(|e| e.env_id == id));
        let connected: f64 = st.inner.envs.iter().filter(|e| e.connected).map(|e| e.weight).sum();
        let weight = env.map_or(0.0, |e| e.weight);
        let self_queue = env.map_or(0, |e| {
            st.inner.queue.iter().filter(|q| q.group.get("env_id").and_then(Value::as_i64) == Some(e.env_id)).count()
        });
        Ok(json!({
            "current_step": st.inner.step,
            "queue_size": st.inner.queue.len(),
            "unallocated_fraction": 1.0,
            "self_queue_size": self_queue,
            "max_group_size": st.inner.envs.iter().map(|e| e.group_size).max().unwrap_or(-1),
            "env_weight": if connected > 0.0 { weight / connected } else { 0.0 },
            "env_name": env.map(|e| e.name.clone()),
        }))
    })
    .await?;
    Ok(axum::Json(out))
}

async fn wandb_info(State(s): State<ApiState>) -> ApiResult {
    let out = with_store(&s, |st| {
        let t = st.inner.trainer.as_ref().map(|t| t.0.clone()).unwrap_or(Value::Null);
        Ok(json!({
            "group": t.get("wandb_group").cloned().unwrap_or(Value::Null),
            "project": t.get("wandb_project").cloned().unwrap_or(Value::Null),
        }))
    })
    .await?;
    Ok(axum::Json(out))
}

async fn latest_example(State(s): State<ApiState>) -> ApiResult {
    let out = with_store(&s, |st| {
        Ok(st.inner.latest.clone().unwrap_or_else(|| {
            json!({"tokens": [], "masks": [], "scores": [], "advantages": [], "ref_logprobs": [], "messages": [], "images": []})
        }))
    })
    .await?;
    Ok(axum::Json(out))
}

async fn reset_data(State(s): State<ApiState>) -> ApiResult {
    with_store(&s, |st| st.append(Record::Reset).map_err(ApiError::from)).await?;
    Ok(axum::Json(json!({ "status": "reset" })))
}

/// The API's routes over `state`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/register", post(register))
        .route("/register-env", post(register_env))
        .route("/disconnect-env", post(disconnect_env))
        .route("/scored_data", post(scored_data))
        .route("/scored_data_list", post(scored_data_list))
        .route("/batch", get(batch))
        .route("/info", get(info))
        .route("/status", get(status))
        .route("/status-env", get(status_env).post(status_env))
        .route("/wandb_info", get(wandb_info))
        .route("/latest_example", get(latest_example))
        .route("/reset_data", get(reset_data))
        .route("/", get(|| async { axum::Json(json!({ "message": "envhub trajectory API (Atropos-compatible)" })) }))
        .layer(axum::extract::DefaultBodyLimit::max(256 << 20))
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
mod tests {
    use super::*;

    #[test]
    fn exact_batches_from_whole_groups() {
        assert_eq!(pick_exact(&[4, 4, 4], 8), Some(vec![0, 1]));
        assert_eq!(pick_exact(&[3, 4, 5], 8), Some(vec![0, 2]));
        assert_eq!(pick_exact(&[4, 3, 2, 6], 5), Some(vec![1, 2]));
        assert_eq!(pick_exact(&[4, 4], 6), None);
        assert_eq!(pick_exact(&[], 4), None);
        assert_eq!(pick_exact(&[2, 2, 2], 6), Some(vec![0, 1, 2]));
    }
}
