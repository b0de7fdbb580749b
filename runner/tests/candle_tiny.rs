//! The candle path on a tiny random-initialised Llama written to a GGUF file
//! by the test itself (byte-level vocabulary, ChatML template): token ids
//! decode to the message, logprobs are consistent with a re-scoring from a
//! fresh cache, sampling is reproducible from the seed, and a rollout
//! through the math environment records it all.
#![cfg(feature = "candle")]

mod common;

use std::sync::Arc;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use envhub_runner::policy::CandlePolicy;
use envhub_runner::policy::TokenPrefix;
use envhub_runner::policy::candle::chat::CHATML;
use envhub_runner::policy::candle::tokenizer::bytes_to_unicode;
use envhub_runner::run::{RunConfig, run};
use envhub_runner::trajectory::{LogprobConvention, Sampling};
use envhub_runner::{EnvSpec, Policy, PolicyRequest};
use envhub_sdk::Message;

const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const FF: usize = 128;
const LAYERS: usize = 2;

fn qt(shape: &[usize], std: f64) -> QTensor {
    let t = Tensor::randn(0f32, std as f32, shape, &Device::Cpu).unwrap();
    QTensor::quantize(&t, GgmlDType::F32).unwrap()
}

fn ones(n: usize) -> QTensor {
    QTensor::quantize(&Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap(), GgmlDType::F32).unwrap()
}

/// Writes a tiny Llama GGUF and returns its path.
fn write_tiny_model(dir: &std::path::Path) -> std::path::PathBuf {
    let map = bytes_to_unicode();
    let mut tokens: Vec<String> = map.iter().map(|c| c.to_string()).collect();
    let mut types = vec![1i32; 256];
    for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
        tokens.push(special.into());
        types.push(3);
    }
    // Two merges so BPE is exercised.
    let g = |b: u8| map[b as usize];
    tokens.push(format!("{}{}", g(b'a'), g(b'n')));
    types.push(1);
    tokens.push(format!("{}{}", g(b' '), g(b'a')));
    types.push(1);
    let merges = [format!("{} {}", g(b'a'), g(b'n')), format!("{} {}", g(b' '), g(b'a'))];
    let vocab = tokens.len();
    let s = |x: &str| Value::String(x.into());
    let md: Vec<(&str, Value)> = vec![
        ("general.architecture", s("llama")),
        ("llama.attention.head_count", Value::U32(HEADS as u32)),
        ("llama.attention.head_count_kv", Value::U32(KV_HEADS as u32)),
        ("llama.block_count", Value::U32(LAYERS as u32)),
        ("llama.embedding_length", Value::U32(HIDDEN as u32)),
        ("llama.rope.dimension_count", Value::U32((HIDDEN / HEADS) as u32)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.context_length", Value::U32(1024)),
        ("tokenizer.ggml.model", s("gpt2")),
        ("tokenizer.ggml.pre", s("smollm")),
        ("tokenizer.ggml.tokens", Value::Array(tokens.iter().map(|t| s(t)).collect())),
        ("tokenizer.ggml.token_type", Value::Array(types.iter().map(|t| Value::I32(*t)).collect())),
        ("tokenizer.ggml.merges", Value::Array(merges.iter().map(|m| s(m)).collect())),
        ("tokenizer.ggml.eos_token_id", Value::U32(258)),
        ("tokenizer.ggml.bos_token_id", Value::U32(256)),
        ("tokenizer.chat_template", s(CHATML)),
    ];
    let head_dim = HIDDEN / HEADS;
    let mut tensors: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), qt(&[vocab, HIDDEN], 1.0)),
        ("output_norm.weight".into(), ones(HIDDEN)),
        ("output.weight".into(), qt(&[vocab, HIDDEN], 0.3)),
    ];
    for l in 0..LAYERS {
        let p = format!("blk.{l}");
        tensors.push((format!("{p}.attn_q.weight"), qt(&[HIDDEN, HIDDEN], 0.2)));
        tensors.push((format!("{p}.attn_k.weight"), qt(&[KV_HEADS * head_dim, HIDDEN], 0.2)));
        tensors.push((format!("{p}.attn_v.weight"), qt(&[KV_HEADS * head_dim, HIDDEN], 0.2)));
        tensors.push((format!("{p}.attn_output.weight"), qt(&[HIDDEN, HIDDEN], 0.2)));
        tensors.push((format!("{p}.attn_norm.weight"), ones(HIDDEN)));
        tensors.push((format!("{p}.ffn_gate.weight"), qt(&[FF, HIDDEN], 0.2)));
        tensors.push((format!("{p}.ffn_up.weight"), qt(&[FF, HIDDEN], 0.2)));
        tensors.push((format!("{p}.ffn_down.weight"), qt(&[HIDDEN, FF], 0.2)));
        tensors.push((format!("{p}.ffn_norm.weight"), ones(HIDDEN)));
    }
    let path = dir.join("tiny-llama.gguf");
    let mut f = std::fs::File::create(&path).unwrap();
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
    path
}

fn request(seed: u64, temperature: f64) -> PolicyRequest {
    PolicyRequest {
        messages: vec![Message::system("Answer."), Message::user("an ant and an anchor")],
        tools: vec![],
        sampling: Sampling { temperature, top_p: 0.95, max_tokens: 24, stop: vec![] },
        seed,
        prefix: None,
    }
}

#[test]
fn sampled_logprobs_match_a_fresh_rescoring() {
    let dir = tempfile::tempdir().unwrap();
    let policy = CandlePolicy::load(&write_tiny_model(dir.path()), Device::Cpu).unwrap();
    assert_eq!(policy.describe().logprobs, LogprobConvention::Raw);
    assert!(policy.describe().version.starts_with("sha256:"));
    for (seed, temp) in [(1, 1.0), (2, 0.7), (3, 0.0)] {
        let req = request(seed, temp);
        let c = policy.generate(&req).unwrap();
        assert!(!c.token_ids.is_empty());
        assert_eq!(c.token_ids.len(), c.logprobs.len());
        assert!(c.logprobs.iter().all(|l| l.is_finite() && *l <= 0.0));
        // The prompt ids are the rendered template, with merges applied.
        assert_eq!(c.prompt_token_ids, policy.prompt_ids(&req).unwrap());
        assert_eq!(c.prompt_token_ids[0], 257, "starts with <|im_start|>");
        assert!(c.prompt_token_ids.contains(&259), "the `an` merge was used");
        // Re-scoring from a fresh cache, token by token, reproduces the logprobs.
        let again = policy.rescore(&c.prompt_token_ids, &c.token_ids).unwrap();
        for (i, (a, b)) in c.logprobs.iter().zip(&again).enumerate() {
            assert!((a - b).abs() < 1e-3, "seed {seed} token {i}: sampled {a}, rescored {b}");
        }
        // Same seed, same tokens.
        let c2 = policy.generate(&req).unwrap();
        assert_eq!(c.token_ids, c2.token_ids);
        if temp == 0.0 {
            // Greedy picks the most likely token: its logprob is the max.
            let lp = policy.rescore(&c.prompt_token_ids, &c.token_ids[..1]).unwrap();
            assert!((lp[0] - c.logprobs[0]).abs() < 1e-3);
        }
        let finish = c.finish_reason.as_str();
        assert!(finish == "stop" || finish == "length", "{finish}");
        if finish == "length" {
            assert_eq!(c.token_ids.len(), 24);
        } else {
            // The weights are random, so either stop token may come first.
            let last = *c.token_ids.last().unwrap();
            assert!(last == 258 || last == 256, "stopped on <|im_end|> or <|endoftext|>, not {last}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_through_the_tiny_model_records_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Arc::new(CandlePolicy::load(&write_tiny_model(dir.path()), Device::Cpu).unwrap());
    let spec = EnvSpec::new(common::math_env(dir.path()), "arithmetic-easy");
    let config = RunConfig {
        tasks: 2,
        group_size: 2,
        sampling: Sampling { max_tokens: 16, ..Sampling::default() },
        ..RunConfig::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let h = tokio::spawn(run(policy, vec![spec], config, tx));
    let mut n = 0;
    while let Some(g) = rx.recv().await {
        for t in g {
            n += 1;
            assert!(t.errors.is_empty(), "{:?}", t.errors);
            assert_eq!(t.policy.logprobs, LogprobConvention::Raw);
            let turn = &t.turns[0];
            assert_eq!(turn.loss_mask.len(), turn.prompt_token_ids.len() + turn.token_ids.len());
            assert_eq!(turn.loss_mask.iter().filter(|m| **m == 1).count(), turn.token_ids.len());
            assert!(t.reward.is_some());
        }
    }
    assert_eq!(n, 4);
    assert_eq!(h.await.unwrap().unwrap().trajectories, 4);
}

#[test]
fn later_turns_extend_the_sampled_tokens_and_never_re_tokenise_them() {
    let dir = tempfile::tempdir().unwrap();
    let policy = CandlePolicy::load(&write_tiny_model(dir.path()), Device::Cpu).unwrap();
    let first = request(1, 1.0);
    let first_prompt = policy.prompt_ids(&first).unwrap();
    let mut messages = first.messages.clone();
    messages.push(Message::assistant("an ant"));
    messages.push(Message::user("more"));
    let rendered = PolicyRequest { messages: messages.clone(), ..first.clone() };
    let full = policy.prompt_ids(&rendered).unwrap();
    // The answer as the tokenizer spells it, ending with the sampled <|im_end|>.
    let end = first_prompt.len() + full[first_prompt.len()..].iter().position(|&t| t == 258).unwrap();
    let sampled = full[first_prompt.len()..=end].to_vec();
    let continued = |sampled: &[u32]| {
        let tokens: Vec<u32> = first_prompt.iter().chain(sampled).copied().collect();
        let prefix = TokenPrefix { tokens: tokens.clone(), messages: first.messages.len() + 1 };
        let request = PolicyRequest { messages: messages.clone(), prefix: Some(prefix), ..first.clone() };
        (tokens, policy.prompt_ids(&request).unwrap())
    };
    // For ChatML, appending token by token gives what a full render gives.
    let (_, appended) = continued(&sampled);
    assert_eq!(appended, full);
    // A spelling the tokenizer would not choose (`a` `n` unmerged) is kept
    // as sampled, where re-rendering would merge it.
    let (tokens, appended) = continued(&[97, 110, 32, 97, 110, 116, 258]);
    assert!(appended.starts_with(&tokens), "the sampled tokens are the prompt's prefix");
    assert_eq!(&appended[tokens.len()..], &full[end + 1..], "then the template's continuation");
    assert_ne!(appended, full);
    // A turn cut off by the length limit gets the template's <|im_end|> as a prompt token.
    let (tokens, appended) = continued(&sampled[..sampled.len() - 1]);
    assert_eq!(appended[tokens.len()], 258);
    assert_eq!(&appended[tokens.len() + 1..], &full[end + 1..]);
}
