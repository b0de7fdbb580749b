//! The guest runtime: what an environment author implements, and the `main`
//! that reads one request from stdin and writes one response to stdout.

use std::io::{Read, Write};

use serde::Serialize;

use crate::error::EnvError;
use crate::protocol::{
    Envelope, InfoResponse, Message, PROTOCOL_VERSION, Request, ResetResponse, Response, StepResponse, TaskSource,
    ValidateResponse,
};
use serde_json::{Map, Value};

/// An environment: tasks, turns and a deterministic reward.
///
/// Every method is a pure function of its arguments; episode state travels in
/// the `state` value returned by [`reset`](Environment::reset) and
/// [`step`](Environment::step).
pub trait Environment {
    /// Name, version, splits, tools and reward components.
    fn info(&self) -> InfoResponse;

    /// Starts an episode on the task `source` names.
    fn reset(&self, source: &TaskSource, seed: u64, config: &Map<String, Value>) -> Result<ResetResponse, EnvError>;

    /// Applies the policy's `action` to the episode `state`.
    fn step(&self, state: Value, action: &Message) -> Result<StepResponse, EnvError>;

    /// The reference actions of a task, which must earn full reward.
    fn validate(&self, source: &TaskSource) -> Result<ValidateResponse, EnvError> {
        let _ = source;
        Err(EnvError::unsupported("this environment has no reference actions"))
    }
}

fn encode<T: Serialize>(result: Result<T, EnvError>) -> Vec<u8> {
    let response = Response::from(result);
    match serde_json::to_vec(&response) {
        Ok(bytes) => bytes,
        Err(e) => {
            let fallback: Response<()> = Response::Error(EnvError::internal(format!("cannot encode response: {e}")));
            // A unit response always serialises.
            serde_json::to_vec(&fallback).unwrap_or_default()
        }
    }
}

/// Answers one request: parses `request`, dispatches it to `env` and returns
/// the response bytes. This is the whole protocol, so authors can test an
/// environment natively by calling it.
pub fn handle<E: Environment + ?Sized>(env: &E, request: &[u8]) -> Vec<u8> {
    let envelope: Envelope = match serde_json::from_slice(request) {
        Ok(e) => e,
        Err(e) => return encode::<()>(Err(EnvError::bad_request(format!("invalid request: {e}")))),
    };
    if envelope.v != PROTOCOL_VERSION {
        return encode::<()>(Err(EnvError::new(
            crate::ErrorKind::UnsupportedVersion,
            format!("request is protocol v{}; this environment speaks v{PROTOCOL_VERSION}", envelope.v),
        )));
    }
    match envelope.request {
        Request::Info => encode(Ok(env.info())),
        Request::Reset(r) => encode(env.reset(&r.source, r.seed, &r.config)),
        Request::Step(s) => encode(env.step(s.state, &s.action)),
        Request::Validate(v) => encode(env.validate(&v.source)),
    }
}

/// The `main` of an environment module: reads the request from stdin, answers
/// it with [`handle`] and writes the response to stdout.
///
/// ```no_run
/// # use envhub_sdk::guest::Environment;
/// # fn env() -> Box<dyn Environment> { unimplemented!() }
/// fn main() {
///     envhub_sdk::guest::serve(&*env());
/// }
/// ```
pub fn serve<E: Environment + ?Sized>(env: &E) {
    let mut request = Vec::new();
    let response = match std::io::stdin().read_to_end(&mut request) {
        Ok(_) => handle(env, &request),
        Err(e) => encode::<()>(Err(EnvError::bad_request(format!("cannot read the request from stdin: {e}")))),
    };
    let mut out = std::io::stdout().lock();
    // Nothing can report a failed stdout write: the host sees the truncated
    // output and reports it as malformed.
    let _ = out.write_all(&response);
    let _ = out.flush();
}
