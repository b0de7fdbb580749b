//! The candle path on a tiny random-initialised Llama written by the test
//! itself as a Hugging Face directory (config.json, model.safetensors,
//! tokenizer.json with a byte-level vocabulary and merges,
//! tokenizer_config.json with a chat template): reproducible sampling,
//! logprobs consistent with a fresh re-scoring, and a tokenizer that
//! round-trips text.
#![cfg(feature = "candle")]

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use envhub_runner::policy::CandlePolicy;
use envhub_runner::policy::candle::tokenizer::{Tokenizer, bytes_to_unicode};
use envhub_runner::trajectory::{LogprobConvention, Sampling};
use envhub_runner::{Policy, PolicyRequest};
use envhub_sdk::Message;
use serde_json::json;

const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const FF: usize = 128;
const LAYERS: usize = 2;

const TEMPLATE: &str = "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

fn randn(shape: &[usize], std: f32) -> Tensor {
    Tensor::randn(0f32, std, shape, &Device::Cpu).unwrap()
}

/// Writes a tiny Llama (or, with `qwen2`, Qwen2 with tied embeddings and
/// q/k/v biases) model directory and returns the tokenizer.json text.
fn write_tiny_dir(dir: &std::path::Path) -> String {
    write_tiny(dir, false)
}

fn write_tiny(dir: &std::path::Path, qwen2: bool) -> String {
    let map = bytes_to_unicode();
    let g = |b: u8| map[b as usize].to_string();
    let mut tokens: Vec<String> = map.iter().map(|c| c.to_string()).collect();
    let pairs = [(g(b'a'), g(b'n')), (g(b' '), g(b'a')), (g(0xc3), g(0xa9))];
    for (a, b) in &pairs {
        tokens.push(format!("{a}{b}"));
    }
    let vocab: serde_json::Map<String, serde_json::Value> =
        tokens.iter().enumerate().map(|(i, t)| (t.clone(), i.into())).collect();
    let mut added = Vec::new();
    for s in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
        added.push(json!({"id": tokens.len(), "content": s, "special": true}));
        tokens.push(s.to_owned());
    }
    let vocab_size = tokens.len();
    let tokenizer = json!({
        "version": "1.0",
        "added_tokens": added,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab, "merges": pairs.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>()},
    })
    .to_string();
    std::fs::write(dir.join("tokenizer.json"), &tokenizer).unwrap();
    let tc = json!({"chat_template": TEMPLATE, "bos_token": "<|endoftext|>", "eos_token": {"content": "<|im_end|>"}});
    std::fs::write(dir.join("tokenizer_config.json"), tc.to_string()).unwrap();
    let config = json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": HIDDEN, "intermediate_size": FF, "vocab_size": vocab_size,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 512,
        "tie_word_embeddings": false, "bos_token_id": vocab_size - 3, "eos_token_id": vocab_size - 1,
        "torch_dtype": "float32",
    });
    let config = if qwen2 {
        let mut c = config;
        c["architectures"] = json!(["Qwen2ForCausalLM"]);
        c["model_type"] = json!("qwen2");
        c["tie_word_embeddings"] = json!(true);
        c["sliding_window"] = json!(512);
        c["max_window_layers"] = json!(LAYERS);
        c["use_sliding_window"] = json!(false);
        c["hidden_act"] = json!("silu");
        c
    } else {
        config
    };
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let head_dim = HIDDEN / HEADS;
    let ones = |n: usize| Tensor::ones(n, DType::F32, &Device::Cpu).unwrap();
    let mut t: HashMap<String, Tensor> = HashMap::new();
    t.insert("model.embed_tokens.weight".into(), randn(&[vocab_size, HIDDEN], 1.0));
    t.insert("model.norm.weight".into(), ones(HIDDEN));
    if !qwen2 {
        t.insert("lm_head.weight".into(), randn(&[vocab_size, HIDDEN], 0.3));
    }
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        t.insert(format!("{p}.self_attn.q_proj.weight"), randn(&[HIDDEN, HIDDEN], 0.2));
        t.insert(format!("{p}.self_attn.k_proj.weight"), randn(&[KV_HEADS * head_dim, HIDDEN], 0.2));
        t.insert(format!("{p}.self_attn.v_proj.weight"), randn(&[KV_HEADS * head_dim, HIDDEN], 0.2));
        t.insert(format!("{p}.self_attn.o_proj.weight"), randn(&[HIDDEN, HIDDEN], 0.2));
        t.insert(format!("{p}.mlp.gate_proj.weight"), randn(&[FF, HIDDEN], 0.2));
        t.insert(format!("{p}.mlp.up_proj.weight"), randn(&[FF, HIDDEN], 0.2));
        t.insert(format!("{p}.mlp.down_proj.weight"), randn(&[HIDDEN, FF], 0.2));
        t.insert(format!("{p}.input_layernorm.weight"), ones(HIDDEN));
        if qwen2 {
            t.insert(format!("{p}.self_attn.q_proj.bias"), randn(&[HIDDEN], 0.1));
            t.insert(format!("{p}.self_attn.k_proj.bias"), randn(&[KV_HEADS * head_dim], 0.1));
            t.insert(format!("{p}.self_attn.v_proj.bias"), randn(&[KV_HEADS * head_dim], 0.1));
        }
        t.insert(format!("{p}.post_attention_layernorm.weight"), ones(HIDDEN));
    }
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
    tokenizer
}

fn request(seed: u64, temperature: f64) -> PolicyRequest {
    PolicyRequest {
        messages: vec![Message::system("Answer."), Message::user("an ant and an anchor, café")],
        tools: vec![],
        sampling: Sampling { temperature, top_p: 0.95, max_tokens: 24, stop: vec![] },
        seed,
        prefix: None,
    }
}

#[test]
fn a_safetensors_llama_directory_samples_and_rescores() {
    samples_and_rescores(false);
}

#[test]
fn a_safetensors_qwen2_directory_samples_and_rescores() {
    samples_and_rescores(true);
}

fn samples_and_rescores(qwen2: bool) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path(), qwen2);
    let policy = CandlePolicy::load(dir.path(), Device::Cpu).unwrap();
    let described = policy.describe();
    assert_eq!(described.logprobs, LogprobConvention::Raw);
    assert!(described.version.starts_with("sha256:"));
    assert!(described.id.starts_with("candle:"));
    let (endoftext, im_start, im_end) = (259u32, 260u32, 261u32);
    for (seed, temp) in [(1, 1.0), (2, 0.7), (3, 0.0)] {
        let req = request(seed, temp);
        let c = policy.generate(&req).unwrap();
        assert!(!c.token_ids.is_empty());
        assert_eq!(c.token_ids.len(), c.logprobs.len());
        assert!(c.logprobs.iter().all(|l| l.is_finite() && *l <= 0.0));
        assert_eq!(c.prompt_token_ids, policy.prompt_ids(&req).unwrap());
        assert_eq!(&c.prompt_token_ids[..2], &[endoftext, im_start], "bos_token then <|im_start|>");
        assert!(c.prompt_token_ids.contains(&256), "the `an` merge was used");
        assert!(c.prompt_token_ids.contains(&258), "the `é` merge was used");
        // (a) Same seed, same tokens.
        assert_eq!(c.token_ids, policy.generate(&req).unwrap().token_ids);
        // (b) Re-scoring from a fresh cache reproduces the logprobs.
        let again = policy.rescore(&c.prompt_token_ids, &c.token_ids).unwrap();
        assert_eq!(again.len(), c.logprobs.len());
        for (i, (a, b)) in c.logprobs.iter().zip(&again).enumerate() {
            assert!((a - b).abs() < 1e-3, "seed {seed} token {i}: sampled {a}, rescored {b}");
        }
        // ... and so does one forward pass over the whole sequence (the last
        // sampled token, scored after a single prefill).
        let mut all = c.prompt_token_ids.clone();
        all.extend(&c.token_ids[..c.token_ids.len() - 1]);
        let last = *c.token_ids.last().unwrap() as usize;
        let one_pass = policy.next_logprobs(&all).unwrap()[last];
        let sampled = *c.logprobs.last().unwrap();
        assert!((one_pass - sampled).abs() < 1e-3, "seed {seed}: sampled {sampled}, one pass {one_pass}");
        let finish = c.finish_reason.as_str();
        if finish == "length" {
            assert_eq!(c.token_ids.len(), 24);
        } else {
            assert_eq!(finish, "stop");
            // The weights are random, so either end marker may come first.
            let stop = *c.token_ids.last().unwrap();
            assert!(stop == im_end || stop == endoftext, "stopped on <|im_end|> or <|endoftext|>, not {stop}");
        }
    }
}

#[test]
fn the_directory_tokenizer_round_trips_text() {
    let dir = tempfile::tempdir().unwrap();
    let json = write_tiny_dir(dir.path());
    let tok = Tokenizer::from_tokenizer_json(&json).unwrap();
    for text in ["an ant", "café crème 漢字 🎉 ünï", "<|im_start|>user\n 12 345<|im_end|>\n", "  \t\n x"] {
        let ids = tok.encode(text);
        assert_eq!(tok.decode(&ids, true), text, "{ids:?}");
    }
    // Digits are split one by one (the Digits pre-tokenizer).
    assert_eq!(tok.encode("123"), vec![b'1' as u32, b'2' as u32, b'3' as u32]);
}

#[test]
fn a_directory_of_another_family_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_dir(dir.path());
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "gpt_neox"}"#).unwrap();
    let err = CandlePolicy::load(dir.path(), Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("gpt_neox"), "{err}");
}

#[test]
fn an_absurd_context_in_config_json_is_refused_before_building_the_model() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_dir(dir.path());
    let path = dir.path().join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // Rotary tables for 2^40 positions would be terabytes.
    config["max_position_embeddings"] = json!(1u64 << 40);
    std::fs::write(&path, config.to_string()).unwrap();
    let err = CandlePolicy::load(dir.path(), Device::Cpu).err().unwrap().to_string();
    let limit = envhub_runner::policy::candle::MAX_CONTEXT;
    assert!(err.contains(&format!("over the limit of {limit} positions")), "{err}");
}

#[test]
fn a_tokenizer_json_id_past_the_limit_is_refused_by_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    let text = write_tiny_dir(dir.path());
    let mut tok: serde_json::Value = serde_json::from_str(&text).unwrap();
    tok["added_tokens"][0]["id"] = json!(u64::from(u32::MAX));
    std::fs::write(dir.path().join("tokenizer.json"), tok.to_string()).unwrap();
    let err = CandlePolicy::load(dir.path(), Device::Cpu).err().unwrap().to_string();
    let limit = envhub_runner::policy::candle::tokenizer::MAX_VOCAB_SIZE - 1;
    assert!(err.contains("tokenizer.json") && err.contains(&format!("over the limit of {limit}")), "{err}");
}
