//! Trainable trajectories from the servers trainers run: llama.cpp's
//! `llama-server` (ids in `logprobs.content[].id`, prompts through its own
//! `/apply-template` and `/tokenize`), servers that report no ids at all,
//! and multi-turn rollouts whose prompts drift from what was sampled. The
//! mock servers answer in each server's documented shapes (llama.cpp
//! `tools/server/README.md`; vLLM's OpenAI protocol).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use envhub_runner::policy::{Completion, Policy, PolicyRequest, TokenPrefix};
use envhub_runner::run::{RunConfig, run};
use envhub_runner::sink::to_scored_data;
use envhub_runner::trajectory::{IdSource, PolicyRef, Trajectory};
use envhub_runner::{EnvSpec, OpenAiConfig, OpenAiPolicy, PolicyError};
use envhub_sdk::{FunctionCall, Message, Role, ToolCall};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A stand-in tokenizer: one id per byte, offset past the special ids.
fn byte_ids(text: &str) -> Vec<u32> {
    text.bytes().map(|b| u32::from(b) + 1000).collect()
}

/// A ChatML rendering of OpenAI messages, as `/apply-template` returns it.
fn chatml(messages: &Value) -> String {
    let mut out = String::new();
    for m in messages.as_array().into_iter().flatten() {
        let role = m["role"].as_str().unwrap_or("user");
        let content = m["content"].as_str().unwrap_or("");
        out.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
    }
    out + "<|im_start|>assistant\n"
}

#[derive(Default)]
struct LlamaCpp {
    tokenize_calls: AtomicUsize,
    tokenize_bodies: Mutex<Vec<Value>>,
}

/// `/v1/chat/completions` as llama-server answers it with `logprobs: true`:
/// no `token_ids`, no prompt ids; each logprob entry has the token's `id`.
async fn llama_chat(body: axum::Json<Value>) -> axum::Json<Value> {
    assert_eq!(body["logprobs"], true);
    let answer = "\\boxed{4}";
    let entries: Vec<Value> = answer
        .bytes()
        .map(|b| {
            let id = u32::from(b) + 1000;
            json!({"id": id, "token": (b as char).to_string(), "bytes": [b], "logprob": -0.125,
                   "top_logprobs": [{"id": id, "token": (b as char).to_string(), "bytes": [b], "logprob": -0.125}]})
        })
        .collect();
    axum::Json(json!({
        "choices": [{"finish_reason": "stop", "index": 0,
                     "message": {"role": "assistant", "content": answer},
                     "logprobs": {"content": entries}}],
        "created": 1, "model": "smollm2", "object": "chat.completion", "id": "chatcmpl-1",
        "usage": {"completion_tokens": answer.len(), "prompt_tokens": 30, "total_tokens": 40},
        "timings": {"prompt_n": 30, "prompt_ms": 1.0, "predicted_n": 9, "predicted_ms": 2.0}
    }))
}

async fn apply_template(body: axum::Json<Value>) -> axum::Json<Value> {
    axum::Json(json!({ "prompt": chatml(&body["messages"]) }))
}

async fn tokenize(State(server): State<Arc<LlamaCpp>>, body: axum::Json<Value>) -> axum::Json<Value> {
    server.tokenize_calls.fetch_add(1, Ordering::SeqCst);
    server.tokenize_bodies.lock().unwrap().push(body.0.clone());
    axum::Json(json!({ "tokens": byte_ids(body["content"].as_str().unwrap_or("")) }))
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

fn models<S: Clone + Send + Sync + 'static>() -> axum::routing::MethodRouter<S> {
    get(|| async { axum::Json(json!({"data": [{"id": "smollm2"}]})) })
}

fn tasks() -> Vec<Value> {
    vec![json!({"question": "Compute 2 + 2.", "answer": "4"}), json!({"question": "Compute 1 + 3.", "answer": "4"})]
}

async fn run_math<P: Policy>(policy: P, tasks_n: u64, group: u32) -> (Vec<Trajectory>, envhub_runner::run::RunSummary) {
    let data = tempfile::tempdir().unwrap();
    let mut spec = EnvSpec::new(common::math_env(data.path()), "arithmetic-easy");
    spec.inline = tasks();
    let config = RunConfig { tasks: tasks_n, group_size: group, max_turns: Some(1), ..RunConfig::default() };
    let (tx, mut rx) = mpsc::channel(4);
    let handle = tokio::spawn(run(Arc::new(policy), vec![spec], config, tx));
    let mut all = Vec::new();
    while let Some(g) = rx.recv().await {
        all.extend(g);
    }
    (all, handle.await.unwrap().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_cpp_trajectories_carry_the_servers_own_ids_and_are_trainable() {
    let server = Arc::new(LlamaCpp::default());
    let app = Router::new()
        .route("/v1/models", models())
        .route("/v1/chat/completions", post(llama_chat))
        .route("/apply-template", post(apply_template))
        .route("/tokenize", post(tokenize))
        .with_state(server.clone());
    let url = serve(app).await;
    let policy = OpenAiPolicy::new(OpenAiConfig::new(&url, "smollm2")).unwrap();
    let (trajectories, summary) = run_math(policy, 2, 2).await;
    assert_eq!(trajectories.len(), 4);
    assert!(summary.untrainable.is_empty(), "{:?}", summary.untrainable);
    for t in &trajectories {
        let turn = &t.turns[0];
        assert_eq!(turn.token_ids, byte_ids("\\boxed{4}"), "the ids of logprobs.content[]");
        assert_eq!(turn.logprobs.len(), turn.token_ids.len());
        let messages = serde_json::to_value(&t.prompt).unwrap();
        assert_eq!(turn.prompt_token_ids, byte_ids(&chatml(&messages)), "the server's own template and tokenizer");
        assert_eq!((turn.prompt_source, turn.token_source), (Some(IdSource::Server), Some(IdSource::Server)));
        assert_eq!(t.untrainable, None);
        assert_eq!(t.reward.as_ref().map(|r| r.total), Some(1.0));
    }
    let bodies = server.tokenize_bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 4, "one /tokenize per turn");
    assert!(bodies.iter().all(|b| b["add_special"] == true && b["parse_special"] == true), "{bodies:?}");
    let group: Vec<Trajectory> = trajectories[..2].to_vec();
    let scored = to_scored_data(&group, None).expect("a trainable group");
    assert_eq!(scored["tokens"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_reporting_no_ids_gives_untrainable_trajectories_that_say_why() {
    let app = Router::new().route("/v1/models", models()).route(
        "/v1/chat/completions",
        post(|| async {
            axum::Json(json!({"choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "\\boxed{4}"}}]}))
        }),
    );
    let url = serve(app).await;
    let policy = OpenAiPolicy::new(OpenAiConfig::new(&url, "smollm2")).unwrap();
    let (trajectories, summary) = run_math(policy, 2, 2).await;
    assert_eq!(summary.untrainable.get("no_token_ids"), Some(&4), "{:?}", summary.untrainable);
    for t in &trajectories {
        let why = t.untrainable.as_ref().expect("untrainable");
        assert_eq!(why.kind, "no_token_ids");
        assert!(why.message.contains("turn 0"), "{}", why.message);
        assert_eq!(t.turns[0].token_source, None);
        // Still scored: the rewards are worth keeping for evaluation.
        assert_eq!(t.reward.as_ref().map(|r| r.total), Some(1.0));
    }
    assert_eq!(to_scored_data(&trajectories[..2], None), None);
}

/// A policy that calls a tool, then answers, reporting ids either
/// token-in/token-out (each prompt extends the sequence before it) or
/// re-tokenised (the second prompt spells the first answer differently).
struct Scripted {
    tito: bool,
    prefixes: Mutex<Vec<Option<TokenPrefix>>>,
}

impl Policy for Scripted {
    fn describe(&self) -> PolicyRef {
        common::scripted_policy_ref("scripted")
    }

    async fn complete(&self, request: PolicyRequest) -> Result<Completion, PolicyError> {
        self.prefixes.lock().unwrap().push(request.prefix.clone());
        let (prompt, tokens, message) = match &request.prefix {
            None => {
                let name = request.tools.first().map(|t| t.function.name.clone()).unwrap_or_default();
                let call = ToolCall {
                    id: "call_0".into(),
                    kind: "function".into(),
                    function: FunctionCall { name, arguments: "{}".into() },
                };
                let message = Message {
                    role: Role::Assistant,
                    content: None,
                    tool_calls: vec![call],
                    tool_call_id: None,
                    name: None,
                };
                (vec![1, 2, 3], vec![40, 41], message)
            }
            Some(prefix) if self.tito => {
                let mut prompt = prefix.tokens.clone();
                prompt.extend([50, 51]);
                (prompt, vec![60], Message::assistant("done"))
            }
            // The first answer re-tokenised as one merged token.
            Some(_) => (vec![1, 2, 3, 4041, 50, 51], vec![60], Message::assistant("done")),
        };
        Ok(Completion {
            message,
            prompt_source: Some(IdSource::Server),
            token_source: Some(IdSource::Server),
            logprobs: tokens.iter().map(|_| -0.5).collect(),
            completion_tokens: tokens.len() as u64,
            prompt_token_ids: prompt,
            token_ids: tokens,
            finish_reason: "stop".into(),
            attempts: 1,
        })
    }
}

async fn two_turns(tito: bool) -> (Trajectory, Vec<Option<TokenPrefix>>) {
    let data = tempfile::tempdir().unwrap();
    let spec = EnvSpec::new(common::package_env("tools", data.path()), "test");
    let config = RunConfig { tasks: 1, group_size: 1, max_turns: Some(2), ..RunConfig::default() };
    let policy = Arc::new(Scripted { tito, prefixes: Mutex::new(Vec::new()) });
    let (tx, mut rx) = mpsc::channel(4);
    let handle = tokio::spawn(run(policy.clone(), vec![spec], config, tx));
    let mut all = Vec::new();
    while let Some(g) = rx.recv().await {
        all.extend(g);
    }
    handle.await.unwrap().unwrap();
    let prefixes = policy.prefixes.lock().unwrap().clone();
    (all.remove(0), prefixes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_turn_gets_the_sampled_sequence_and_extending_it_keeps_one_sequence() {
    let (t, prefixes) = two_turns(true).await;
    assert_eq!(t.turns.len(), 2, "{t:?}");
    assert_eq!(prefixes[0], None);
    let second = prefixes[1].as_ref().expect("the second turn's prefix");
    assert_eq!(second.tokens, vec![1, 2, 3, 40, 41], "the first prompt and what was sampled");
    // It covers the prompt and the assistant's call; the tool's answer is new.
    assert_eq!(second.messages, t.prompt.len() + 1);
    assert_eq!(t.untrainable, None);
    let (tokens, mask, _) = t.trainable_sequence().expect("one sequence");
    assert_eq!(tokens, vec![1, 2, 3, 40, 41, 50, 51, 60]);
    assert_eq!(mask, vec![-100, -100, -100, 40, 41, -100, -100, 60]);
    assert!(t.turns.iter().all(|turn| turn.drift.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_tokenised_second_turn_is_recorded_as_drift_and_never_trained_on_silently() {
    let (t, _) = two_turns(false).await;
    assert_eq!(t.turns.len(), 2, "{t:?}");
    let drift = t.turns[1].drift.as_ref().expect("drift recorded on the turn");
    assert_eq!((drift.at, drift.expected_len), (3, 5));
    let why = t.untrainable.as_ref().expect("untrainable");
    assert_eq!(why.kind, "drift");
    assert_eq!(to_scored_data(std::slice::from_ref(&t), None), None, "not pushed with earlier turns cut off");
}

/// llama.cpp's native routes over a reversible stand-in tokenizer: the
/// two ChatML specials are ids 1 and 2, other bytes 1000 + byte.
mod native {
    use super::*;

    pub fn encode(text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("<|im_start|>") {
                out.push(1);
                rest = r;
            } else if let Some(r) = rest.strip_prefix("<|im_end|>") {
                out.push(2);
                rest = r;
            } else {
                let c = rest.chars().next().unwrap();
                out.extend(c.to_string().bytes().map(|b| u32::from(b) + 1000));
                rest = &rest[c.len_utf8()..];
            }
        }
        out
    }

    pub fn decode(ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            match id {
                1 => bytes.extend_from_slice(b"<|im_start|>"),
                2 => bytes.extend_from_slice(b"<|im_end|>"),
                b => bytes.push((b - 1000) as u8),
            }
        }
        String::from_utf8(bytes).unwrap()
    }

    /// ChatML with the tool names in a system turn, as a template with tools would.
    fn render(body: &Value) -> String {
        let tools: Vec<&str> =
            body["tools"].as_array().into_iter().flatten().filter_map(|t| t["function"]["name"].as_str()).collect();
        let mut out = if tools.is_empty() {
            String::new()
        } else {
            format!("<|im_start|>system\nTools: {}<|im_end|>\n", tools.join(","))
        };
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        for (i, m) in messages.iter().enumerate() {
            let role = m["role"].as_str().unwrap_or("user");
            let content = m["content"].as_str().unwrap_or("");
            out.push_str(&format!("<|im_start|>{role}\n{content}"));
            // As llama.cpp does, a final assistant turn without the
            // generation prompt is a prefill: left open.
            let prefill = i + 1 == messages.len() && role == "assistant" && body["add_generation_prompt"] == false;
            if !prefill {
                out.push_str("<|im_end|>\n");
            }
        }
        if body["add_generation_prompt"] != false {
            out.push_str("<|im_start|>assistant\n");
        }
        out
    }

    #[derive(Default)]
    pub struct Server {
        pub prompts: Mutex<Vec<Vec<u32>>>,
    }

    async fn completion(State(server): State<Arc<Server>>, body: axum::Json<Value>) -> axum::Json<Value> {
        let prompt: Vec<u32> = body["prompt"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
        assert_eq!(body["return_tokens"], true);
        let text = decode(&prompt);
        server.prompts.lock().unwrap().push(prompt);
        let answer = if text.contains("<|im_start|>tool") {
            "\\boxed{done}".to_owned()
        } else {
            let name = text.split("Tools: ").nth(1).and_then(|t| t.split([',', '<']).next()).unwrap_or("none");
            format!("<tool_call>{{\"name\": \"{name}\", \"arguments\": {{}}}}</tool_call>")
        };
        let mut tokens = encode(&answer);
        tokens.push(2);
        let probs: Vec<Value> = tokens.iter().map(|t| json!({"id": t, "logprob": -0.25, "top_logprobs": []})).collect();
        axum::Json(json!({"content": answer, "tokens": tokens, "completion_probabilities": probs,
                          "stop_type": "eos", "stop": true, "tokens_predicted": tokens.len()}))
    }

    pub async fn start() -> (String, Arc<Server>) {
        let server = Arc::new(Server::default());
        let app = Router::new()
            .route("/v1/models", models())
            .route(
                "/apply-template",
                post(|b: axum::Json<Value>| async move { axum::Json(json!({"prompt": render(&b)})) }),
            )
            .route(
                "/tokenize",
                post(|b: axum::Json<Value>| async move {
                    axum::Json(json!({"tokens": encode(b["content"].as_str().unwrap_or(""))}))
                }),
            )
            .route("/completion", post(completion))
            .with_state(server.clone());
        (serve(app).await, server)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_prompts_through_llama_cpp_make_a_multi_turn_rollout_one_sequence() {
    let (url, server) = native::start().await;
    let mut cfg = OpenAiConfig::new(&url, "smollm2");
    cfg.token_prompts = true;
    let data = tempfile::tempdir().unwrap();
    let spec = EnvSpec::new(common::package_env("tools", data.path()), "test");
    let config = RunConfig { tasks: 1, group_size: 1, max_turns: Some(2), ..RunConfig::default() };
    let (tx, mut rx) = mpsc::channel(4);
    let handle = tokio::spawn(run(Arc::new(OpenAiPolicy::new(cfg).unwrap()), vec![spec], config, tx));
    let t = rx.recv().await.unwrap().remove(0);
    handle.await.unwrap().unwrap();
    assert_eq!(t.turns.len(), 2, "{t:?}");
    assert!(!t.turns[0].action.tool_calls.is_empty(), "the first turn called a tool: {:?}", t.turns[0].action);
    let prompts = server.prompts.lock().unwrap().clone();
    let (first, second) = (&t.turns[0], &t.turns[1]);
    assert_eq!(prompts, vec![first.prompt_token_ids.clone(), second.prompt_token_ids.clone()]);
    // The second prompt is the first, the sampled tokens (ending in
    // <|im_end|>), then the template's "\n" and the tool's answer.
    let sequence: Vec<u32> = first.prompt_token_ids.iter().chain(&first.token_ids).copied().collect();
    assert!(second.prompt_token_ids.starts_with(&sequence));
    let continuation = native::decode(&second.prompt_token_ids[sequence.len()..]);
    assert!(continuation.starts_with("\n<|im_start|>tool\n"), "{continuation:?}");
    assert!(continuation.ends_with("<|im_end|>\n<|im_start|>assistant\n"), "{continuation:?}");
    assert_eq!((second.prompt_source, second.token_source), (Some(IdSource::Server), Some(IdSource::Server)));
    assert_eq!(t.untrainable, None);
    assert!(t.turns.iter().all(|turn| turn.drift.is_none() && turn.logprobs.len() == turn.token_ids.len()));
}
