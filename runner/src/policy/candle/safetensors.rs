//! Llama- and Qwen2-family models from a Hugging Face safetensors directory:
//! `config.json`, `model.safetensors` (or shards listed by
//! `model.safetensors.index.json`), `tokenizer.json` and, optionally,
//! `tokenizer_config.json` (`chat_template`, `bos_token`, `eos_token`,
//! `add_bos_token`). Weights are f32 on CPU and the config's dtype on CUDA.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{Linear, Module, VarBuilder};
use candle_transformers::models::{llama, qwen2};
use serde_json::Value;

use super::tokenizer::Tokenizer;
use crate::error::PolicyError;

/// A non-quantized model with its KV cache.
#[derive(Clone)]
pub(crate) enum SafetensorsModel {
    Llama { model: Box<llama::Llama>, cache: llama::Cache, fresh: Box<llama::Cache> },
    Qwen2 { model: qwen2::Model, lm_head: Linear },
}

impl SafetensorsModel {
    /// Logits after the last of `ids`, fed at `pos` (`pos == 0` starts from
    /// an empty cache).
    pub(crate) fn forward(&mut self, x: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            SafetensorsModel::Llama { model, cache, fresh } => {
                if pos == 0 {
                    *cache = (**fresh).clone();
                }
                model.forward(x, pos, cache)
            }
            SafetensorsModel::Qwen2 { model, lm_head } => {
                if pos == 0 {
                    model.clear_kv_cache();
                }
                let seq = x.dim(1)?;
                let h = model.forward(x, pos, None)?.narrow(1, seq - 1, 1)?;
                lm_head.forward(&h)
            }
        }
    }
}

/// What the directory says besides the weights.
pub(crate) struct Loaded {
    pub model: SafetensorsModel,
    pub tokenizer: Tokenizer,
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub add_bos: bool,
    /// `eos_token_id` / `bos_token_id` from config.json.
    pub eos_ids: Vec<u32>,
    pub context: usize,
    /// The files read, for the version hash.
    pub files: Vec<PathBuf>,
}

fn load_err(path: &Path, e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Load(format!("{}: {e}", path.display()))
}

fn read_json(path: &Path) -> Result<Value, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|e| load_err(path, e))?;
    serde_json::from_str(&text).map_err(|e| load_err(path, e))
}

/// A token given as a string or as `{"content": ...}`.
fn token_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn ids(v: Option<&Value>) -> Vec<u32> {
    let id = |v: &Value| v.as_u64().and_then(|x| u32::try_from(x).ok());
    match v {
        Some(n @ Value::Number(_)) => id(n).into_iter().collect(),
        Some(Value::Array(a)) => a.iter().filter_map(id).collect(),
        _ => Vec::new(),
    }
}

/// The longest context a `config.json` may declare: the rotary tables
/// (and the KV cache bound) are laid out for every position up front, so
/// the number sizes an allocation. Real models declare at most about this.
pub const MAX_CONTEXT: u64 = 1 << 20;

/// Refuses a `max_position_embeddings` over [`MAX_CONTEXT`] before the
/// model is built from it.
fn check_context(config: &Value, path: &Path) -> Result<(), PolicyError> {
    let Some(n) = config.get("max_position_embeddings") else { return Ok(()) };
    match n.as_u64() {
        Some(n) if n <= MAX_CONTEXT => Ok(()),
        _ => Err(load_err(path, format!("max_position_embeddings {n} is over the limit of {MAX_CONTEXT} positions"))),
    }
}

/// The weight files: `model.safetensors`, else the shards named by the
/// index, else every `*.safetensors` in the directory.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    let mut files: Vec<PathBuf> = if index.is_file() {
        let idx = read_json(&index)?;
        let map =
            idx.get("weight_map").and_then(Value::as_object).ok_or_else(|| load_err(&index, "no `weight_map`"))?;
        map.values().filter_map(Value::as_str).map(|f| dir.join(f)).collect()
    } else {
        std::fs::read_dir(dir)
            .map_err(|e| load_err(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect()
    };
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(load_err(dir, "no model.safetensors (or shards) in the directory"));
    }
    Ok(files)
}

/// Loads a model directory onto `device`.
pub(crate) fn load_dir(dir: &Path, device: &Device) -> Result<Loaded, PolicyError> {
    let config_path = dir.join("config.json");
    let config = read_json(&config_path)?;
    check_context(&config, &config_path)?;
    let model_type = config.get("model_type").and_then(Value::as_str).unwrap_or("").to_owned();
    let archs: Vec<&str> =
        config.get("architectures").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let family = if model_type == "llama" || archs.iter().any(|a| a.starts_with("Llama")) {
        "llama"
    } else if model_type == "qwen2" || archs.iter().any(|a| a.starts_with("Qwen2")) {
        "qwen2"
    } else {
        return Err(load_err(
            &config_path,
            format!(
                "unsupported model_type `{model_type}` (architectures {archs:?}); llama and qwen2 families are supported"
            ),
        ));
    };
    let dtype = if device.is_cpu() {
        DType::F32
    } else {
        match config.get("torch_dtype").and_then(Value::as_str) {
            Some("bfloat16") => DType::BF16,
            Some("float16") => DType::F16,
            _ => DType::F32,
        }
    };
    let weights = weight_files(dir)?;
    // SAFETY: the files are memory-mapped read-only; they must not change
    // while the policy is loaded (as with any mmapped model).
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&weights, dtype, device) }.map_err(|e| load_err(dir, e))?;
    let cfg_err = |e: serde_json::Error| load_err(&config_path, e);
    let (model, context) = if family == "llama" {
        let cfg: llama::LlamaConfig = serde_json::from_value(config.clone()).map_err(cfg_err)?;
        let cfg = cfg.into_config(false);
        let model = llama::Llama::load(vb, &cfg).map_err(|e| load_err(dir, e))?;
        let fresh = llama::Cache::new(true, dtype, &cfg, device).map_err(|e| load_err(dir, e))?;
        (
            SafetensorsModel::Llama { model: Box::new(model), cache: fresh.clone(), fresh: Box::new(fresh) },
            cfg.max_position_embeddings,
        )
    } else {
        let cfg: qwen2::Config = serde_json::from_value(config.clone()).map_err(cfg_err)?;
        let model = qwen2::Model::new(&cfg, vb.clone()).map_err(|e| load_err(dir, e))?;
        let lm_head = if vb.contains_tensor("lm_head.weight") && !cfg.tie_word_embeddings {
            candle_nn::linear_no_bias(cfg.hidden_size, cfg.vocab_size, vb.pp("lm_head"))
        } else {
            vb.pp("model.embed_tokens").get((cfg.vocab_size, cfg.hidden_size), "weight").map(|w| Linear::new(w, None))
        }
        .map_err(|e| load_err(dir, e))?;
        (SafetensorsModel::Qwen2 { model, lm_head }, cfg.max_position_embeddings)
    };
    let tok_path = dir.join("tokenizer.json");
    let tok_text = std::fs::read_to_string(&tok_path).map_err(|e| load_err(&tok_path, e))?;
    let tokenizer = Tokenizer::from_tokenizer_json(&tok_text).map_err(|e| load_err(&tok_path, e))?;
    let tc_path = dir.join("tokenizer_config.json");
    let tc = if tc_path.is_file() { read_json(&tc_path)? } else { Value::Null };
    let chat_template = match tc.get("chat_template") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .or(list.first())
            .and_then(|t| t.get("template").and_then(Value::as_str))
            .map(str::to_owned),
        _ => None,
    };
    let mut eos_ids = ids(config.get("eos_token_id"));
    eos_ids.sort_unstable();
    let mut files = vec![config_path, tok_path];
    if tc_path.is_file() {
        files.push(tc_path);
    }
    files.extend(weights);
    Ok(Loaded {
        model,
        tokenizer,
        chat_template,
        bos_token: token_text(tc.get("bos_token")),
        eos_token: token_text(tc.get("eos_token")),
        add_bos: tc.get("add_bos_token").and_then(Value::as_bool).unwrap_or(false),
        eos_ids,
        context,
        files,
    })
}
