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

/// Errors building a tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The metadata lacks something or has the wrong type.
    #[error("tokenizer metadata: {0}")]
    Metadata(String),
    /// The tokenizer model is not byte-level BPE.
    #[error("unsupported tokenizer model `{0}` (only byte-level BPE, `gpt2`, is supported)")]
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
    /// Builds a tokenizer from its vocabulary (`tokens[id]`), GGUF token
    /// types (may be empty), merges (`"a b"`, in rank order) and whether
    /// digits are split one by one.
    pub fn new(tokens: Vec<String>, token_types: &[i32], merges: &[String], individual_digits: bool) -> Self {
        let vocab: HashMap<String, u32> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let merges = merges
            .iter()
            .enumerate()
            .filter_map(|(rank, m)| {
                let (a, b) = m.split_once(' ')?;
                Some(((a.to_owned(), b.to_owned()), rank as u32))
            })
            .collect();
        let mut is_special = vec![false; tokens.len()];
        let mut special = Vec::new();
        for (i, ty) in token_types.iter().enumerate() {
            if (*ty == TOKEN_TYPE_CONTROL || *ty == TOKEN_TYPE_USER_DEFINED)
                && i < tokens.len()
                && !tokens[i].is_empty()
            {
                is_special[i] = true;
                special.push((tokens[i].clone(), i as u32));
            }
        }
        // Longest first, so that overlapping specials match greedily.
        special.sort_by_key(|s| std::cmp::Reverse(s.0.len()));
        let byte_to_char = bytes_to_unicode();
        let char_to_byte = byte_to_char.iter().enumerate().map(|(b, c)| (*c, b as u8)).collect();
        Tokenizer { tokens, vocab, merges, special, is_special, byte_to_char, char_to_byte, individual_digits }
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
}
