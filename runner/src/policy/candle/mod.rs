//! An in-process policy: a Llama- or Qwen2-family model from a GGUF file
//! or a Hugging Face safetensors directory, run by candle (CPU; CUDA with
//! the `cuda` feature). Both sources share one sampling and scoring path.
//!
//! The tokenizer and chat template come from the GGUF metadata
//! (`tokenizer.ggml.*`, `tokenizer.chat_template`; ChatML when absent), or
//! from `tokenizer.json` and `tokenizer_config.json` in a directory.
//! Generation prefills the rendered prompt in one pass, then decodes one
//! token at a time with the model's KV cache.
//!
//! **Token-in/token-out.** From a rollout's second turn on, the prompt is
//! the previous prompt and sampled tokens as they were, followed by the
//! tokens of what the chat template writes after an assistant turn: its
//! closing (less the end-of-turn token the model already sampled) and the
//! environment's messages with the generation prompt. What the model
//! sampled is never re-tokenised, so a rollout is one consistent sequence. On CPU, weights in
//! quantisations that candle runs without SIMD (Q4_1, Q5_0, Q5_1) are
//! rewritten as Q8_0 at load (about 3x faster decode; the policy id then
//! ends in `+cpu-q8_0`, and its version stays the file's sha256).
//!
//! **Logprob convention**: each recorded logprob is the log-softmax of the
//! model's *raw* logits at that position, before temperature and top-p (as
//! vLLM reports them); trajectories record this as
//! [`LogprobConvention::Raw`]. With `temperature = 0` the sampler is greedy.
//! Sampling is seeded per turn, so a run is reproducible on one machine.

pub mod chat;
mod safetensors;
pub mod tokenizer;

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use candle_core::quantized::gguf_file::{self, Content, Value as GgufValue};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};
use envhub_sdk::{Message, Rng, Tool};

use self::chat::{CHATML, ChatTemplate};
pub use self::safetensors::MAX_CONTEXT;
use self::safetensors::SafetensorsModel;
use self::tokenizer::Tokenizer;
use super::tool_text::parse_tool_calls;
use super::{Completion, Policy, PolicyRequest, TokenPrefix, continuation_text, probe_exchange};
use crate::error::PolicyError;
use crate::trajectory::{IdSource, LogprobConvention, PolicyRef, Sampling};

/// A quantized model from a GGUF file.
enum GgufModel {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
}

/// The two model sources behind the one sampling and scoring path: a
/// quantized GGUF or a safetensors directory.
enum Model {
    Gguf(GgufModel),
    Safetensors(SafetensorsModel),
}

impl Model {
    /// A copy sharing the weights, with its own KV cache (not for GGUF
    /// Qwen2).
    fn share(&self) -> Option<Model> {
        match self {
            Model::Gguf(GgufModel::Llama(m)) => Some(Model::Gguf(GgufModel::Llama(m.clone()))),
            Model::Gguf(GgufModel::Qwen2(_)) => None,
            Model::Safetensors(m) => Some(Model::Safetensors(m.clone())),
        }
    }

    /// Logits (f32) after the last of `ids`, fed at position `pos`
    /// (position 0 starts from an empty cache).
    fn forward(&mut self, ids: &[u32], pos: usize, device: &Device) -> Result<Vec<f32>, candle_core::Error> {
        let x = Tensor::new(ids, device)?.unsqueeze(0)?;
        let logits = match self {
            Model::Gguf(GgufModel::Llama(m)) => m.forward(&x, pos)?,
            Model::Gguf(GgufModel::Qwen2(m)) => m.forward(&x, pos)?,
            Model::Safetensors(m) => m.forward(&x, pos)?,
        };
        logits.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()
    }
}

/// The tokenizer, template and settings shared by the model workers.
struct Engine {
    tokenizer: Tokenizer,
    template: ChatTemplate,
    stop_ids: Vec<u32>,
    bos: Option<u32>,
    context: usize,
    device: Device,
}

/// Model workers: copies of the model sharing its weights, each with its own
/// KV cache; a turn takes a free one (waiting when all are busy).
struct Workers {
    free: Mutex<Vec<Model>>,
    returned: Condvar,
}

/// An in-process GGUF policy. Each turn runs on a blocking thread with one
/// of the model workers.
#[derive(Clone)]
pub struct CandlePolicy {
    engine: Arc<Engine>,
    workers: Arc<Workers>,
    id: String,
    version: String,
}

fn model_err(e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Model(e.to_string())
}

fn md<'a>(ct: &'a Content, key: &str) -> Result<&'a GgufValue, PolicyError> {
    ct.metadata.get(key).ok_or_else(|| PolicyError::Load(format!("GGUF metadata has no `{key}`")))
}

fn md_u32(ct: &Content, key: &str) -> Option<u32> {
    ct.metadata.get(key).and_then(|v| v.to_u32().ok().or_else(|| v.to_i32().ok().map(|x| x as u32)))
}

fn md_strings(ct: &Content, key: &str) -> Result<Vec<String>, PolicyError> {
    let v = md(ct, key)?.to_vec().map_err(|e| PolicyError::Load(format!("`{key}`: {e}")))?;
    v.iter().map(|s| s.to_string().cloned().map_err(|e| PolicyError::Load(format!("`{key}`: {e}")))).collect()
}

fn sha256_file(path: &Path) -> Result<String, PolicyError> {
    use sha2::Digest;
    let mut f = File::open(path).map_err(|e| PolicyError::Load(format!("{}: {e}", path.display())))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| PolicyError::Load(format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex_string(&h.finalize())))
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Quantisations without a SIMD CPU kernel in candle (they run scalar code).
fn slow_on_cpu(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// A GGUF held in memory: its parsed header and its bytes.
type InMemoryGguf = (Content, Cursor<Vec<u8>>);

/// On CPU, rewrites Q4_1/Q5_0/Q5_1 weights as Q8_0 (which candle runs with
/// AVX2): dequantising is exact, and Q8_0 keeps 8 bits per weight, so the
/// result differs from the file's weights by at most half a Q8_0 step per
/// weight. Returns the rewritten model as an in-memory GGUF, or `None` when
/// nothing needed rewriting.
fn requantize_for_cpu<R: Read + Seek>(ct: &Content, reader: &mut R) -> Result<Option<InMemoryGguf>, PolicyError> {
    let slow = ct.tensor_infos.values().any(|t| slow_on_cpu(t.ggml_dtype));
    if !slow {
        return Ok(None);
    }
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(ct.tensor_infos.len());
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let qt = ct.tensor(reader, name, &Device::Cpu).map_err(model_err)?;
        let fits = qt.shape().dims().last().is_some_and(|d| d % 32 == 0);
        let qt = if slow_on_cpu(qt.dtype()) && fits {
            let f = qt.dequantize(&Device::Cpu).map_err(model_err)?;
            QTensor::quantize(&f, GgmlDType::Q8_0).map_err(model_err)?
        } else {
            qt
        };
        tensors.push((name.clone(), qt));
    }
    let md: Vec<(&str, &GgufValue)> = ct.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut buf = Cursor::new(Vec::new());
    gguf_file::write(&mut buf, &md, &refs).map_err(model_err)?;
    drop(tensors);
    buf.set_position(0);
    let ct2 = Content::read(&mut buf).map_err(model_err)?;
    Ok(Some((ct2, buf)))
}

/// Which device to run on.
pub fn default_device() -> Result<Device, PolicyError> {
    #[cfg(feature = "cuda")]
    {
        Device::new_cuda(0).map_err(|e| PolicyError::Load(format!("CUDA device 0: {e}")))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(Device::Cpu)
    }
}

impl CandlePolicy {
    /// Loads a GGUF model (architecture `llama` or `qwen2`), or a safetensors
    /// model directory, onto `device`,
    /// with one worker.
    pub fn load(path: &Path, device: Device) -> Result<Self, PolicyError> {
        Self::load_with_workers(path, device, 1)
    }

    /// Loads a GGUF model with `workers` copies sharing the weights, so that
    /// that many turns run at once (Llama family; Qwen2 gets one). On CPU,
    /// run candle single-threaded (`CANDLE_NUM_THREADS=1`) and use one worker
    /// per core: candle's spinning thread barrier collapses on a busy
    /// machine, independent workers do not.
    ///
    /// A directory is loaded as a safetensors model (see
    /// [`CandlePolicy::load_dir_with_workers`]).
    pub fn load_with_workers(path: &Path, device: Device, workers: usize) -> Result<Self, PolicyError> {
        if path.is_dir() {
            return Self::load_dir_with_workers(path, device, workers);
        }
        let version = sha256_file(path)?;
        let file = File::open(path).map_err(|e| PolicyError::Load(format!("{}: {e}", path.display())))?;
        let mut reader = BufReader::new(file);
        let ct = Content::read(&mut reader).map_err(|e| PolicyError::Load(format!("{}: {e}", path.display())))?;
        let arch = md(&ct, "general.architecture")?.to_string().map_err(model_err)?.clone();
        let tok_model = md(&ct, "tokenizer.ggml.model")?.to_string().map_err(model_err)?.clone();
        if tok_model != "gpt2" {
            return Err(PolicyError::Load(tokenizer::TokenizerError::Unsupported(tok_model).to_string()));
        }
        let tokens = md_strings(&ct, "tokenizer.ggml.tokens")?;
        let merges = md_strings(&ct, "tokenizer.ggml.merges").unwrap_or_default();
        let types: Vec<i32> = ct
            .metadata
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.to_vec().ok())
            .map(|v| v.iter().map(|t| t.to_i32().unwrap_or(1)).collect())
            .unwrap_or_default();
        let pre = ct.metadata.get("tokenizer.ggml.pre").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
        let individual_digits = matches!(pre.as_str(), "smollm" | "smaug-bpe" | "deepseek-llm");
        let tokenizer = Tokenizer::new(tokens, &types, &merges, individual_digits);
        let token_text = |id: Option<u32>| id.map(|i| tokenizer.decode(&[i], true)).unwrap_or_default();
        let eos = md_u32(&ct, "tokenizer.ggml.eos_token_id");
        let bos_id = md_u32(&ct, "tokenizer.ggml.bos_token_id");
        let add_bos = ct.metadata.get("tokenizer.ggml.add_bos_token").and_then(|v| v.to_bool().ok()).unwrap_or(false);
        let template_src = ct
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| CHATML.to_owned());
        let template = ChatTemplate::new(&template_src, &token_text(bos_id), &token_text(eos))
            .map_err(|e| PolicyError::Load(format!("chat template: {e}")))?;
        let mut stop_ids: Vec<u32> = eos.into_iter().collect();
        stop_ids.extend(md_u32(&ct, "tokenizer.ggml.eot_token_id"));
        for name in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>"] {
            stop_ids.extend(tokenizer.token_id(name));
        }
        stop_ids.sort_unstable();
        stop_ids.dedup();
        let ctx_key = format!("{arch}.context_length");
        let context = md_u32(&ct, &ctx_key).map(|c| c as usize).unwrap_or(4096);
        if arch != "llama" && arch != "qwen2" {
            return Err(PolicyError::Load(format!(
                "unsupported architecture `{arch}` (llama and qwen2 families are supported)"
            )));
        }
        let repacked = if device.is_cpu() { requantize_for_cpu(&ct, &mut reader)? } else { None };
        let requantized = repacked.is_some();
        let model = match repacked {
            Some((ct2, mut mem)) => load_arch(&arch, ct2, &mut mem, &device)?,
            None => load_arch(&arch, ct, &mut reader, &device)?,
        };
        let context = context.min(quantized_llama::MAX_SEQ_LEN);
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let engine =
            Engine { tokenizer, template, stop_ids, bos: if add_bos { bos_id } else { None }, context, device };
        // The id says when the weights were rewritten for the CPU kernels.
        let id = if requantized { format!("candle:{file_name}+cpu-q8_0") } else { format!("candle:{file_name}") };
        Ok(Self::assemble(engine, model, workers, id, version))
    }

    /// Loads a Hugging Face safetensors model directory (`config.json` with
    /// `model_type` llama or qwen2, `model.safetensors` or its shards,
    /// `tokenizer.json`, optional `tokenizer_config.json`) with `workers`
    /// copies sharing the weights. The version is the sha256 of the files'
    /// names and sha256s.
    pub fn load_dir_with_workers(dir: &Path, device: Device, workers: usize) -> Result<Self, PolicyError> {
        let loaded = safetensors::load_dir(dir, &device)?;
        let version = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            for f in &loaded.files {
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                h.update(format!("{name} {}\n", sha256_file(f)?));
            }
            format!("sha256:{}", hex_string(&h.finalize()))
        };
        let tokenizer = loaded.tokenizer;
        let bos_text = loaded.bos_token.unwrap_or_default();
        let eos_text = loaded.eos_token.unwrap_or_default();
        let template_src = loaded.chat_template.unwrap_or_else(|| CHATML.to_owned());
        let template = ChatTemplate::new(&template_src, &bos_text, &eos_text)
            .map_err(|e| PolicyError::Load(format!("chat template: {e}")))?;
        let mut stop_ids = loaded.eos_ids;
        stop_ids.extend(tokenizer.token_id(&eos_text));
        for name in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>"] {
            stop_ids.extend(tokenizer.token_id(name));
        }
        stop_ids.sort_unstable();
        stop_ids.dedup();
        let bos = if loaded.add_bos { tokenizer.token_id(&bos_text) } else { None };
        let engine = Engine { tokenizer, template, stop_ids, bos, context: loaded.context, device };
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let id = format!("candle:{name}");
        Ok(Self::assemble(engine, Model::Safetensors(loaded.model), workers, id, version))
    }

    fn assemble(engine: Engine, model: Model, workers: usize, id: String, version: String) -> Self {
        let mut models = Vec::with_capacity(workers.max(1));
        while models.len() + 1 < workers.max(1) {
            match model.share() {
                Some(m) => models.push(m),
                None => break,
            }
        }
        models.push(model);
        let workers = Workers { free: Mutex::new(models), returned: Condvar::new() };
        CandlePolicy { engine: Arc::new(engine), workers: Arc::new(workers), id, version }
    }

    /// Runs `f` with a free model worker (blocking until one is free).
    fn with_model<T>(&self, f: impl FnOnce(&Engine, &mut Model) -> Result<T, PolicyError>) -> Result<T, PolicyError> {
        let poisoned = || PolicyError::Model("model workers poisoned".into());
        let mut model = {
            let mut free = self.workers.free.lock().map_err(|_| poisoned())?;
            loop {
                if let Some(m) = free.pop() {
                    break m;
                }
                free = self.workers.returned.wait(free).map_err(|_| poisoned())?;
            }
        };
        let out = f(&self.engine, &mut model);
        self.workers.free.lock().map_err(|_| poisoned())?.push(model);
        self.workers.returned.notify_one();
        out
    }

    /// Renders and tokenizes a conversation as the model would see it.
    pub fn prompt_ids(&self, request: &PolicyRequest) -> Result<Vec<u32>, PolicyError> {
        self.engine.prompt_ids(request)
    }

    /// Re-scores `completion` after `prompt` from a fresh cache, one token at
    /// a time: the raw logprob of each completion token. Used to check the
    /// sampler's recorded logprobs.
    pub fn rescore(&self, prompt: &[u32], completion: &[u32]) -> Result<Vec<f32>, PolicyError> {
        self.with_model(|engine, model| engine.rescore(model, prompt, completion))
    }

    /// The raw next-token logprobs after `ids`, from one forward pass over
    /// all of them from a fresh cache.
    pub fn next_logprobs(&self, ids: &[u32]) -> Result<Vec<f32>, PolicyError> {
        if ids.is_empty() {
            return Err(PolicyError::Model("no tokens to score".into()));
        }
        self.with_model(|engine, model| Ok(log_softmax(&model.forward(ids, 0, &engine.device).map_err(model_err)?)))
    }

    /// Generates one turn synchronously (the [`Policy`] impl runs this on a
    /// blocking thread).
    pub fn generate(&self, request: &PolicyRequest) -> Result<Completion, PolicyError> {
        self.with_model(|engine, model| engine.generate(model, request))
    }
}

impl Engine {
    fn rescore(&self, model: &mut Model, prompt: &[u32], completion: &[u32]) -> Result<Vec<f32>, PolicyError> {
        let engine = self;
        let all: Vec<u32> = prompt.iter().chain(completion).copied().collect();
        let mut out = Vec::with_capacity(completion.len());
        for (pos, tok) in all.iter().enumerate().take(all.len().saturating_sub(1)) {
            let logits = model.forward(&[*tok], pos, &engine.device).map_err(model_err)?;
            if pos + 1 >= prompt.len() {
                let next = all[pos + 1] as usize;
                let lp = log_softmax(&logits);
                out.push(lp.get(next).copied().unwrap_or(f32::NEG_INFINITY));
            }
        }
        Ok(out)
    }
}

fn load_arch<R: Read + Seek>(arch: &str, ct: Content, reader: &mut R, device: &Device) -> Result<Model, PolicyError> {
    Ok(Model::Gguf(if arch == "qwen2" {
        GgufModel::Qwen2(quantized_qwen2::ModelWeights::from_gguf(ct, reader, device).map_err(model_err)?)
    } else {
        GgufModel::Llama(quantized_llama::ModelWeights::from_gguf(ct, reader, device).map_err(model_err)?)
    }))
}

impl Engine {
    fn prompt_ids(&self, request: &PolicyRequest) -> Result<Vec<u32>, PolicyError> {
        if let Some(prefix) = request.prefix.as_ref().filter(|p| !p.tokens.is_empty())
            && let Some(new) = request.messages.get(prefix.messages..)
        {
            let mut ids = prefix.tokens.clone();
            ids.extend(self.continuation_ids(prefix, new, &request.tools)?);
            return Ok(ids);
        }
        let text = self
            .template
            .render(&request.messages, &request.tools)
            .map_err(|e| PolicyError::Model(format!("chat template: {e}")))?;
        let mut ids: Vec<u32> = self.bos.into_iter().collect();
        ids.extend(self.tokenizer.encode(&text));
        Ok(ids)
    }

    /// The tokens that follow `prefix` (which ends with a sampled assistant
    /// turn) for the `new` messages: the template's text after an assistant
    /// turn's content, less the end-of-turn token the model sampled, then
    /// the new messages and the generation prompt. Found by rendering a
    /// stand-in exchange with and without the new messages, so it does not
    /// depend on how the template would render the sampled turn itself.
    fn continuation_ids(&self, prefix: &TokenPrefix, new: &[Message], tools: &[Tool]) -> Result<Vec<u32>, PolicyError> {
        let template_err = |e: minijinja::Error| PolicyError::Model(format!("chat template: {e}"));
        let (closed, next) = probe_exchange(new);
        let closed = self.template.render_with(&closed, tools, false).map_err(template_err)?;
        let next = self.template.render_with(&next, tools, true).map_err(template_err)?;
        let Some((after_content, delta)) = continuation_text(&closed, &next) else {
            return Err(PolicyError::Model(
                "the chat template renders earlier turns differently once later ones follow, so turns cannot be appended token by token".into(),
            ));
        };
        let sampled_end = prefix.tokens.last().filter(|t| self.stop_ids.contains(t));
        let closing = match sampled_end {
            Some(&end) => {
                let end_text = self.tokenizer.decode(&[end], true);
                after_content.strip_prefix(end_text.as_str()).unwrap_or(after_content)
            }
            None => after_content,
        };
        Ok(self.tokenizer.encode(&format!("{closing}{delta}")))
    }

    fn generate(&self, model: &mut Model, request: &PolicyRequest) -> Result<Completion, PolicyError> {
        let prompt = self.prompt_ids(request)?;
        if prompt.is_empty() || prompt.len() >= self.context {
            return Err(PolicyError::ContextOverflow { prompt: prompt.len(), context: self.context });
        }
        let max_new = (request.sampling.max_tokens as usize).min(self.context - prompt.len());
        let mut rng = Rng::new(request.seed);
        // `max_tokens` comes with the request: reserve a little, grow as sampled.
        let mut ids: Vec<u32> = Vec::with_capacity(max_new.min(4096));
        let mut logprobs: Vec<f32> = Vec::with_capacity(max_new.min(4096));
        let mut finish = "length";
        let mut stop_at: Option<usize> = None;
        let mut logits = model.forward(&prompt, 0, &self.device).map_err(model_err)?;
        let mut pos = prompt.len();
        while ids.len() < max_new {
            let lp = log_softmax(&logits);
            let tok = sample(&logits, &request.sampling, &mut rng);
            ids.push(tok);
            logprobs.push(lp.get(tok as usize).copied().unwrap_or(f32::NEG_INFINITY));
            if self.stop_ids.contains(&tok) {
                finish = "stop";
                break;
            }
            if !request.sampling.stop.is_empty() {
                let text = self.tokenizer.decode(&ids, false);
                if let Some(at) = request.sampling.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
                    stop_at = Some(at);
                    finish = "stop";
                    break;
                }
            }
            if ids.len() >= max_new {
                break;
            }
            logits = model.forward(&[tok], pos, &self.device).map_err(model_err)?;
            pos += 1;
        }
        let mut text = self.tokenizer.decode(&ids, false);
        if let Some(at) = stop_at {
            text.truncate(at);
        }
        let message = parse_tool_calls(&text, request.seed);
        let finish_reason = if message.tool_calls.is_empty() { finish } else { "tool_calls" };
        Ok(Completion {
            message,
            prompt_token_ids: prompt,
            prompt_source: Some(IdSource::Model),
            completion_tokens: ids.len() as u64,
            token_ids: ids,
            token_source: Some(IdSource::Model),
            logprobs,
            finish_reason: finish_reason.to_owned(),
            attempts: 1,
        })
    }
}

/// Log-softmax in f64 accumulation.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let lse = max as f64 + sum.ln();
    logits.iter().map(|&l| (l as f64 - lse) as f32).collect()
}

/// Samples a token: greedy at temperature 0, else softmax(logits / T)
/// restricted to the smallest top-p nucleus.
pub fn sample(logits: &[f32], sampling: &Sampling, rng: &mut Rng) -> u32 {
    let argmax = || {
        logits
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |best, (i, &l)| if l > best.1 { (i, l) } else { best })
            .0 as u32
    };
    if sampling.temperature <= 0.0 {
        return argmax();
    }
    let t = sampling.temperature;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut probs: Vec<(u32, f64)> =
        logits.iter().enumerate().map(|(i, &l)| (i as u32, ((l as f64 - max) / t).exp())).collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    if !(total.is_finite() && total > 0.0) {
        return argmax();
    }
    let top_p = sampling.top_p;
    let mass = if top_p < 1.0 {
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut acc = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            acc += p.1 / total;
            if acc >= top_p {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep.max(1));
        probs.iter().map(|p| p.1).sum()
    } else {
        total
    };
    let mut u = rng.unit_f64() * mass;
    for (id, p) in &probs {
        if u < *p {
            return *id;
        }
        u -= p;
    }
    probs.last().map(|p| p.0).unwrap_or(0)
}

impl Policy for CandlePolicy {
    fn describe(&self) -> PolicyRef {
        PolicyRef {
            id: self.id.clone(),
            version: self.version.clone(),
            logprobs: LogprobConvention::Raw,
            sampling: Sampling::default(),
            step: None,
        }
    }

    async fn complete(&self, request: PolicyRequest) -> Result<Completion, PolicyError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.generate(&request))
            .await
            .map_err(|e| PolicyError::Model(format!("generation panicked: {e}")))?
    }
}

/// Where the embedded default model (SmolLM2-135M-Instruct, fetched by
/// `scripts/fetch-model.sh`) is looked for: `$ENVHUB_MODELS`, then
/// `.cache/models/` under the current directory and its ancestors.
pub fn smollm2_path() -> Option<PathBuf> {
    const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
    if let Some(dir) = std::env::var_os("ENVHUB_MODELS") {
        let p = PathBuf::from(dir).join(FILE);
        if p.is_file() {
            return Some(p);
        }
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors().map(|d| d.join(".cache/models").join(FILE)).find(|p| p.is_file())
}
