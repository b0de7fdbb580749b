//! A byte-level BPE tokenizer (GPT-2 family: SmolLM, Qwen2, Llama 3) built
//! from a GGUF file's `tokenizer.ggml.*` metadata: tokens, token types and
//! merges. Written here rather than pulled in, to keep the build lean.
//!
//! Pre-tokenisation follows the GPT-2 pattern (contractions, letters with an
//! optional leading space, digits, other symbols, whitespace runs); with
//! `individual_digits` every digit is its own piece (SmolLM's convention).
//! Special tokens (types 3 "control" and 4 "user-defined") are matched
//! literally in the text before pre-tokenisation.

use std::collections::HashMap;

/// GGUF token type of control tokens such as `<|im_start|>`.
pub const TOKEN_TYPE_CONTROL: i32 = 3;
/// GGUF token type of user-defined tokens.
pub const TOKEN_TYPE_USER_DEFINED: i32 = 4;
/// The largest vocabulary a `tokenizer.json` may declare (token ids from 0
/// to this minus one); the vocabulary is laid out by id, so an id read from
/// the file sizes an allocation. The largest real vocabularies are about a
/// tenth of this.
pub const MAX_VOCAB_SIZE: usize = 1 << 21;

/// Errors building a tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The metadata lacks something or has the wrong type.
    #[error("tokenizer metadata: {0}")]
    Metadata(String),
    /// The tokenizer model is not byte-level BPE.
    #[error(
        "unsupported tokenizer model `{0}` (only byte-level BPE is supported: GGUF `gpt2`, tokenizer.json `BPE` with ByteLevel)"
    )]
    Unsupported(String),
}

/// A byte-level BPE tokenizer.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    tokens: Vec<String>,
    vocab: HashMap<String, u32>,
    merges: HashMap<(String, String), u32>,
    special: Vec<(String, u32)>,
    is_special: Vec<bool>,
    byte_to_char: [char; 256],
    char_to_byte: HashMap<char, u8>,
    individual_digits: bool,
}

/// GPT-2's reversible map from bytes to printable characters.
pub fn bytes_to_unicode() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        let c = if printable {
            b
        } else {
            extra += 1;
            255 + extra
        };
        map[b as usize] = char::from_u32(c).unwrap_or('\u{fffd}');
    }
    map
}

impl Tokenizer {
    /// Builds a tokenizer from GGUF-style parts: its vocabulary
    /// (`tokens[id]`), GGUF token types (may be empty), merges (`"a b"`, in
    /// rank order) and whether digits are split one by one.
    pub fn new(tokens: Vec<String>, token_types: &[i32], merges: &[String], individual_digits: bool) -> Self {
        let special: Vec<bool> = (0..tokens.len())
            .map(|i| token_types.get(i).is_some_and(|ty| *ty == TOKEN_TYPE_CONTROL || *ty == TOKEN_TYPE_USER_DEFINED))
            .collect();
        let merges: Vec<(String, String)> =
            merges.iter().filter_map(|m| m.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned()))).collect();
        Self::from_parts(tokens, &special, merges, individual_digits)
    }

    /// The one constructor both sources (GGUF metadata, `tokenizer.json`)
    /// go through: the vocabulary (`tokens[id]`, byte-level characters),
    /// which ids are special (matched literally, dropped when decoding
    /// without specials), the merges in rank order and the digit rule.
    pub fn from_parts(
        tokens: Vec<String>,
        special_ids: &[bool],
        merges: Vec<(String, String)>,
        individual_digits: bool,
    ) -> Self {
        let vocab: HashMap<String, u32> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let mut merge_ranks = HashMap::with_capacity(merges.len());
        for (rank, pair) in merges.into_iter().enumerate() {
            merge_ranks.entry(pair).or_insert(rank as u32);
        }
        let mut is_special = vec![false; tokens.len()];
        let mut special = Vec::new();
        for (i, flag) in special_ids.iter().enumerate() {
            if *flag && i < tokens.len() && !tokens[i].is_empty() {
                is_special[i] = true;
                special.push((tokens[i].clone(), i as u32));
            }
        }
        // Longest first, so that overlapping specials match greedily.
        special.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        let byte_to_char = bytes_to_unicode();
        let char_to_byte = byte_to_char.iter().enumerate().map(|(b, c)| (*c, b as u8)).collect();
        Tokenizer {
            tokens,
            vocab,
            merges: merge_ranks,
            special,
            is_special,
            byte_to_char,
            char_to_byte,
            individual_digits,
        }
    }

    /// Builds a tokenizer from a Hugging Face `tokenizer.json` (byte-level
    /// BPE only: `model.type == "BPE"` with a `ByteLevel` pre-tokenizer).
    /// Added tokens are matched literally; those flagged `special` are
    /// dropped when decoding without specials, as are the others (the GGUF
    /// converter marks them user-defined, which this tokenizer treats alike).
    pub fn from_tokenizer_json(json: &str) -> Result<Self, TokenizerError> {
        use serde_json::Value;
        let meta = |m: &str| TokenizerError::Metadata(format!("tokenizer.json: {m}"));
        let root: Value = serde_json::from_str(json).map_err(|e| meta(&e.to_string()))?;
        let model = root.get("model").ok_or_else(|| meta("no `model`"))?;
        let ty = model.get("type").and_then(Value::as_str).unwrap_or("");
        if ty != "BPE" {
            return Err(TokenizerError::Unsupported(if ty.is_empty() { "(none)".to_owned() } else { ty.to_owned() }));
        }
        let pre = root.get("pre_tokenizer").unwrap_or(&Value::Null);
        let pieces: Vec<&Value> = match pre.get("pretokenizers").and_then(Value::as_array) {
            Some(list) => list.iter().collect(),
            None => vec![pre],
        };
        let kind = |v: &Value| v.get("type").and_then(Value::as_str).unwrap_or("").to_owned();
        if !pieces.iter().any(|p| kind(p) == "ByteLevel") {
            return Err(TokenizerError::Unsupported(format!(
                "BPE without a ByteLevel pre-tokenizer ({})",
                pieces.iter().map(|p| kind(p)).collect::<Vec<_>>().join(", ")
            )));
        }
        let individual_digits = pieces
            .iter()
            .any(|p| kind(p) == "Digits" && p.get("individual_digits").and_then(Value::as_bool).unwrap_or(false));
        let vocab = model.get("vocab").and_then(Value::as_object).ok_or_else(|| meta("no `model.vocab`"))?;
        let mut entries: Vec<(String, u32)> = Vec::with_capacity(vocab.len());
        for (tok, id) in vocab {
            let id = id.as_u64().ok_or_else(|| meta(&format!("vocab id of `{tok}` is not a number")))?;
            entries.push((tok.clone(), vocab_id(id, tok)?));
        }
        let mut added: Vec<(String, u32, bool)> = Vec::new();
        for t in root.get("added_tokens").and_then(Value::as_array).into_iter().flatten() {
            let id = t.get("id").and_then(Value::as_u64).ok_or_else(|| meta("added token without `id`"))?;
            let content =
                t.get("content").and_then(Value::as_str).ok_or_else(|| meta("added token without `content`"))?;
            let id = vocab_id(id, content)?;
            added.push((content.to_owned(), id, t.get("special").and_then(Value::as_bool).unwrap_or(false)));
        }
        let size =
            entries.iter().map(|e| e.1).chain(added.iter().map(|a| a.1)).max().map(|m| m as usize + 1).unwrap_or(0);
        let mut tokens = vec![String::new(); size];
        for (tok, id) in entries {
            tokens[id as usize] = tok;
        }
        let mut special = vec![false; size];
        for (content, id, _special) in added {
            tokens[id as usize] = content;
            special[id as usize] = true;
        }
        let mut merges = Vec::new();
        for m in model.get("merges").and_then(Value::as_array).into_iter().flatten() {
            let pair = match m {
                Value::String(s) => s.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())),
                Value::Array(ab) if ab.len() == 2 => {
                    ab[0].as_str().zip(ab[1].as_str()).map(|(a, b)| (a.to_owned(), b.to_owned()))
                }
                _ => None,
            };
            merges.push(pair.ok_or_else(|| meta(&format!("bad merge {m}")))?);
        }
        Ok(Self::from_parts(tokens, &special, merges, individual_digits))
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The id of token `text`, if it is in the vocabulary.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.get(text).copied()
    }

    /// Whether `id` is a special (control or user-defined) token.
    pub fn is_special(&self, id: u32) -> bool {
        self.is_special.get(id as usize).copied().unwrap_or(false)
    }

    /// Encodes `text`, matching special tokens literally.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            // The earliest special token occurrence (longest at a position).
            let next = self
                .special
                .iter()
                .filter_map(|(s, id)| rest.find(s.as_str()).map(|at| (at, s.len(), *id)))
                .min_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            match next {
                Some((at, len, id)) => {
                    self.encode_ordinary(&rest[..at], &mut out);
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    self.encode_ordinary(rest, &mut out);
                    break;
                }
            }
        }
        out
    }

    fn encode_ordinary(&self, text: &str, out: &mut Vec<u32>) {
        for piece in pretokenize(text, self.individual_digits) {
            let mapped: String = piece.bytes().map(|b| self.byte_to_char[b as usize]).collect();
            if let Some(id) = self.vocab.get(&mapped) {
                out.push(*id);
                continue;
            }
            self.bpe(&mapped, out);
        }
    }

    fn bpe(&self, word: &str, out: &mut Vec<u32>) {
        let mut symbols: Vec<String> = word.chars().map(String::from).collect();
        loop {
            let mut best: Option<(u32, usize)> = None;
            for i in 0..symbols.len().saturating_sub(1) {
                let key = (symbols[i].clone(), symbols[i + 1].clone());
                if let Some(rank) = self.merges.get(&key)
                    && best.is_none_or(|(r, _)| *rank < r)
                {
                    best = Some((*rank, i));
                }
            }
            let Some((_, i)) = best else { break };
            let merged = format!("{}{}", symbols[i], symbols[i + 1]);
            symbols[i] = merged;
            symbols.remove(i + 1);
        }
        for s in symbols {
            match self.vocab.get(&s) {
                Some(id) => out.push(*id),
                None => {
                    // Not in the vocabulary: fall back to the single characters.
                    for c in s.chars() {
                        if let Some(id) = self.vocab.get(&c.to_string()) {
                            out.push(*id);
                        }
                    }
                }
            }
        }
    }

    /// The bytes of token `id` (special tokens give their literal text when
    /// `with_special`, else nothing).
    pub fn token_bytes(&self, id: u32, with_special: bool) -> Vec<u8> {
        let Some(tok) = self.tokens.get(id as usize) else { return Vec::new() };
        if self.is_special(id) {
            return if with_special { tok.as_bytes().to_vec() } else { Vec::new() };
        }
        let mut bytes = Vec::with_capacity(tok.len());
        for c in tok.chars() {
            match self.char_to_byte.get(&c) {
                Some(b) => bytes.push(*b),
                None => {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        bytes
    }

    /// Decodes ids to text (invalid UTF-8 replaced).
    pub fn decode(&self, ids: &[u32], with_special: bool) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|id| self.token_bytes(*id, with_special)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A token id from `tokenizer.json`, refused at or past [`MAX_VOCAB_SIZE`].
fn vocab_id(id: u64, token: &str) -> Result<u32, TokenizerError> {
    match u32::try_from(id) {
        Ok(small) if (small as usize) < MAX_VOCAB_SIZE => Ok(small),
        _ => Err(TokenizerError::Metadata(format!(
            "tokenizer.json: token `{token}` has id {id}, over the limit of {} (the largest vocabulary supported is {MAX_VOCAB_SIZE} tokens)",
            MAX_VOCAB_SIZE - 1
        ))),
    }
}

/// Splits text into pre-tokens (GPT-2 style).
pub fn pretokenize(text: &str, individual_digits: bool) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let n = chars.len();
    let end = |j: usize| if j < n { chars[j].0 } else { text.len() };
    let is_letter = |c: char| c.is_alphabetic();
    let is_digit = |c: char| c.is_numeric();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let c = chars[i].1;
        // Contractions: 's 't 're 've 'm 'll 'd
        if c == '\'' && i + 1 < n {
            let rest = &text[chars[i + 1].0..];
            let lower: String = rest.chars().take(2).flat_map(char::to_lowercase).collect();
            let len = if lower.starts_with("re") || lower.starts_with("ve") || lower.starts_with("ll") {
                2
            } else if lower.starts_with(['s', 't', 'm', 'd']) {
                1
            } else {
                0
            };
            if len > 0 {
                out.push(&text[chars[i].0..end(i + 1 + len)]);
                i += 1 + len;
                continue;
            }
        }
        let lead = c == ' ' && i + 1 < n && {
            let d = chars[i + 1].1;
            !(d.is_whitespace() || individual_digits && is_digit(d))
        };
        let j0 = if lead { i + 1 } else { i };
        let c0 = chars[j0].1;
        let mut j = j0;
        if is_letter(c0) {
            while j < n && is_letter(chars[j].1) {
                j += 1;
            }
        } else if is_digit(c0) {
            if individual_digits {
                j += 1;
            } else {
                while j < n && is_digit(chars[j].1) {
                    j += 1;
                }
            }
        } else if !c0.is_whitespace() {
            while j < n && !chars[j].1.is_whitespace() && !is_letter(chars[j].1) && !is_digit(chars[j].1) {
                j += 1;
            }
        } else {
            while j < n && chars[j].1.is_whitespace() {
                j += 1;
            }
            // `\s+(?!\S)`: leave the last space to lead the next word.
            if j < n && j - i > 1 && chars[j - 1].1 == ' ' {
                j -= 1;
            }
        }
        out.push(&text[chars[i].0..end(j)]);
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretokenize_follows_gpt2() {
        assert_eq!(pretokenize("Hello world", false), vec!["Hello", " world"]);
        assert_eq!(pretokenize("it's  12 apples!!", false), vec!["it", "'s", " ", " 12", " apples", "!!"]);
        assert_eq!(pretokenize("x 12", true), vec!["x", " ", "1", "2"]);
        assert_eq!(pretokenize("a\n\nb", false), vec!["a", "\n\n", "b"]);
    }

    #[test]
    fn round_trips_bytes_and_specials() {
        let map = bytes_to_unicode();
        let mut tokens: Vec<String> = map.iter().map(|c| c.to_string()).collect();
        tokens.push("<|im_start|>".into());
        tokens.push(format!("{}{}", map[b'h' as usize], map[b'i' as usize]));
        let mut types = vec![1; 256];
        types.push(TOKEN_TYPE_CONTROL);
        types.push(1);
        let merges = vec![format!("{} {}", map[b'h' as usize], map[b'i' as usize])];
        let t = Tokenizer::new(tokens, &types, &merges, true);
        let text = "<|im_start|>hi é 42\n";
        let ids = t.encode(text);
        assert_eq!(ids[0], 256);
        assert_eq!(ids[1], 257);
        assert_eq!(t.decode(&ids, true), text);
        assert_eq!(t.decode(&ids, false), "hi é 42\n");
    }

    /// A small byte-level vocabulary with a few merges, as GGUF parts and as
    /// the equivalent tokenizer.json (merges as strings and as pairs).
    fn both_sources(pair_merges: bool) -> (Tokenizer, Tokenizer) {
        let map = bytes_to_unicode();
        let g = |b: u8| map[b as usize];
        let mut tokens: Vec<String> = map.iter().map(|c| c.to_string()).collect();
        let mut types = vec![1; 256];
        let pairs = [
            (g(b'h').to_string(), g(b'e').to_string()),
            (g(b'l').to_string(), g(b'l').to_string()),
            (format!("{}", g(b'h')) + &g(b'e').to_string(), format!("{}", g(b'l')) + &g(b'l').to_string()),
            (g(b' ').to_string(), g(b'w').to_string()),
            (g(0xc3).to_string(), g(0xa9).to_string()),
        ];
        for (a, b) in &pairs {
            tokens.push(format!("{a}{b}"));
            types.push(1);
        }
        for s in ["<|im_start|>", "<|im_end|>"] {
            tokens.push(s.to_owned());
            types.push(TOKEN_TYPE_CONTROL);
        }
        let merges: Vec<String> = pairs.iter().map(|(a, b)| format!("{a} {b}")).collect();
        let gguf = Tokenizer::new(tokens.clone(), &types, &merges, false);
        let vocab: serde_json::Map<String, serde_json::Value> =
            tokens.iter().enumerate().take(256 + pairs.len()).map(|(i, t)| (t.clone(), i.into())).collect();
        let json_merges: Vec<serde_json::Value> = if pair_merges {
            pairs.iter().map(|(a, b)| serde_json::json!([a, b])).collect()
        } else {
            merges.iter().map(|m| serde_json::json!(m)).collect()
        };
        let added: Vec<serde_json::Value> = (256 + pairs.len()..tokens.len())
            .map(|i| serde_json::json!({"id": i, "content": tokens[i], "special": true}))
            .collect();
        let json = serde_json::json!({
            "added_tokens": added,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
            "model": {"type": "BPE", "vocab": vocab, "merges": json_merges},
        });
        (gguf, Tokenizer::from_tokenizer_json(&json.to_string()).unwrap())
    }

    #[test]
    fn tokenizer_json_matches_gguf() {
        for pair_merges in [false, true] {
            let (gguf, hf) = both_sources(pair_merges);
            assert_eq!(gguf.vocab_size(), hf.vocab_size());
            for text in ["hello world", "<|im_start|>user\nhé héllo<|im_end|>", "  hell 123 ünïcödé 漢字 🎉", ""]
            {
                let ids = hf.encode(text);
                assert_eq!(gguf.encode(text), ids, "{text:?}");
                assert_eq!(hf.decode(&ids, true), text);
            }
            assert!(gguf.encode("hello").len() < "hello".len(), "merges apply");
        }
    }

    #[test]
    fn tokenizer_json_refuses_ids_past_the_vocabulary_limit() {
        let json = |id: u64| {
            serde_json::json!({
                "pre_tokenizer": {"type": "ByteLevel"},
                "model": {"type": "BPE", "vocab": {"a": 0, "b": id}, "merges": []},
            })
            .to_string()
        };
        // Each id would size the vocabulary table: 4 Gi entries, or wrap to 0.
        for id in [u64::from(u32::MAX), 1 << 32, MAX_VOCAB_SIZE as u64] {
            let err = Tokenizer::from_tokenizer_json(&json(id)).unwrap_err();
            assert!(err.to_string().contains(&format!("over the limit of {}", MAX_VOCAB_SIZE - 1)), "{err}");
        }
        let added = serde_json::json!({
            "added_tokens": [{"id": 1u64 << 40, "content": "<|x|>", "special": true}],
            "pre_tokenizer": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
        });
        let err = Tokenizer::from_tokenizer_json(&added.to_string()).unwrap_err();
        assert!(err.to_string().contains("`<|x|>`"), "{err}");
        let ok = Tokenizer::from_tokenizer_json(&json(MAX_VOCAB_SIZE as u64 - 1)).unwrap();
        assert_eq!(ok.vocab_size(), MAX_VOCAB_SIZE);
    }

    #[test]
    fn tokenizer_json_refuses_other_models() {
        let err = Tokenizer::from_tokenizer_json(r#"{"model": {"type": "Unigram", "vocab": []}}"#).unwrap_err();
        assert!(err.to_string().contains("`Unigram`"), "{err}");
        let err = Tokenizer::from_tokenizer_json(
            r#"{"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Metaspace"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("ByteLevel"), "{err}");
    }
}
