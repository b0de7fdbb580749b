//! Extracting [`ToolCall`]s from model output.
//!
//! Supported sources, tried in this order:
//!
//! 1. OpenAI assistant messages with a `tool_calls` array (or the legacy `function_call`),
//!    see [`parse_message`] and [`parse_openai_tool_calls`];
//! 2. Hermes / Qwen text: one or more `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
//!    blocks, see [`parse_text`];
//! 3. fallbacks, each switchable in [`ParseOptions`]: a JSON call object or array of call
//!    objects inside a Markdown code fence (```` ```json ````), or the whole reply being one.
//!
//! Every call is parsed independently: a broken call yields a [`CallParseError`] carrying
//! its position, so an environment can tell the policy exactly which call was malformed
//! while still executing the good ones.

use serde_json::{Map, Value};
use thiserror::Error;

use super::json::type_name;
use super::types::ToolCall;

const OPEN_TAG: &str = "<tool_call>";
const CLOSE_TAG: &str = "</tool_call>";
const FENCE: &str = "```";

/// Which text formats [`parse_text`] and [`parse_message`] recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Recognise Hermes / Qwen `<tool_call>...</tool_call>` blocks.
    pub hermes_tags: bool,
    /// When no tags are present, read call objects from ```` ```json ```` (or unlabelled) fences.
    pub json_fence_fallback: bool,
    /// When nothing else matched, read the whole reply as a call object or array of calls.
    pub bare_json_fallback: bool,
}

impl Default for ParseOptions {
    /// Every format enabled.
    fn default() -> Self {
        Self { hermes_tags: true, json_fence_fallback: true, bare_json_fallback: true }
    }
}

/// The format a call was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallFormat {
    /// An OpenAI `tool_calls` entry (or legacy `function_call`).
    OpenAi,
    /// A Hermes / Qwen `<tool_call>` block.
    Hermes,
    /// A JSON object or array inside a Markdown code fence.
    JsonFence,
    /// The whole reply was a JSON call object or array.
    BareJson,
}

/// What was wrong with one call.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallErrorKind {
    /// The call body is not valid JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A `<tool_call>` was opened but never closed.
    #[error("unterminated <tool_call> tag (missing </tool_call>)")]
    UnterminatedTag,
    /// A `<tool_call>` block contained nothing.
    #[error("empty <tool_call> block")]
    EmptyTag,
    /// The call is not a JSON object.
    #[error("a call must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// `name` is missing, empty or not a string.
    #[error("missing function name")]
    MissingName,
    /// The OpenAI entry's `type` is not `"function"`.
    #[error("unsupported tool call type {0:?} (expected \"function\")")]
    UnsupportedType(String),
    /// `arguments` was a string that does not decode as JSON.
    #[error("arguments are not valid JSON: {0}")]
    InvalidArgumentsJson(String),
    /// `arguments` decoded to something other than an object.
    #[error("arguments must be a JSON object, got {0}")]
    ArgumentsNotObject(&'static str),
}

/// One call that could not be parsed, with its position among the calls of the turn.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("call {}: {kind}", .index + 1)]
pub struct CallParseError {
    /// Zero-based position of the call in the turn (displayed one-based: "call 2: ...").
    pub index: usize,
    /// Where the call was found.
    pub format: CallFormat,
    /// What was wrong with it.
    pub kind: CallErrorKind,
}

/// Why an assistant message as a whole could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// The message is not a JSON object.
    #[error("message must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// `tool_calls` is present but not an array.
    #[error("`tool_calls` must be an array, got {0}")]
    ToolCallsNotArray(&'static str),
    /// `content` is neither a string, null, nor an array of content parts.
    #[error("`content` must be a string, null or an array of parts, got {0}")]
    InvalidContent(&'static str),
}

/// The result of parsing one assistant turn.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedTurn {
    /// The text of the turn with recognised call blocks removed, trimmed.
    pub content: String,
    /// The format the calls were found in, `None` when the turn made no call.
    pub format: Option<CallFormat>,
    /// Each call in order: parsed, or the reason it could not be.
    pub calls: Vec<Result<ToolCall, CallParseError>>,
}

impl ParsedTurn {
    /// Whether the turn attempted no call at all.
    pub fn has_no_calls(&self) -> bool {
        self.calls.is_empty()
    }

    /// The calls that parsed.
    pub fn ok_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.calls.iter().filter_map(|c| c.as_ref().ok())
    }

    /// The calls that did not parse.
    pub fn errors(&self) -> impl Iterator<Item = &CallParseError> {
        self.calls.iter().filter_map(|c| c.as_ref().err())
    }

    /// All calls if every one parsed, otherwise every error.
    pub fn into_calls(self) -> Result<Vec<ToolCall>, Vec<CallParseError>> {
        let mut ok = Vec::new();
        let mut errs = Vec::new();
        for c in self.calls {
            match c {
                Ok(call) => ok.push(call),
                Err(e) => errs.push(e),
            }
        }
        if errs.is_empty() { Ok(ok) } else { Err(errs) }
    }
}

/// Parses an assistant message.
///
/// A non-empty `tool_calls` array (or a legacy `function_call` object) takes precedence;
/// otherwise the text `content` is parsed with [`parse_text`]. `content` may be a string,
/// null, or an array of `{"type":"text","text":...}` parts (other parts are ignored).
pub fn parse_message(message: &Value, options: &ParseOptions) -> Result<ParsedTurn, MessageError> {
    let Value::Object(msg) = message else {
        return Err(MessageError::NotAnObject(type_name(message)));
    };
    let content = message_text(msg.get("content"))?;
    let tool_calls = match msg.get("tool_calls") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(other) => return Err(MessageError::ToolCallsNotArray(type_name(other))),
    };
    if !tool_calls.is_empty() {
        return Ok(ParsedTurn {
            content: content.trim().to_owned(),
            format: Some(CallFormat::OpenAi),
            calls: parse_openai_tool_calls(tool_calls),
        });
    }
    if let Some(fc) = msg.get("function_call").filter(|v| !v.is_null()) {
        let call = call_from_json(fc).map_err(|kind| CallParseError { index: 0, format: CallFormat::OpenAi, kind });
        return Ok(ParsedTurn {
            content: content.trim().to_owned(),
            format: Some(CallFormat::OpenAi),
            calls: vec![call],
        });
    }
    Ok(parse_text(&content, options))
}

fn message_text(content: Option<&Value>) -> Result<String, MessageError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for part in parts {
                let text = match part {
                    Value::String(s) => Some(s.as_str()),
                    Value::Object(p) => p.get("text").and_then(Value::as_str),
                    _ => None,
                };
                if let Some(t) = text {
                    out.push_str(t);
                }
            }
            Ok(out)
        }
        Some(other) => Err(MessageError::InvalidContent(type_name(other))),
    }
}

/// Parses the entries of an OpenAI `tool_calls` array.
///
/// `function.arguments` may be a JSON string (as OpenAI sends it), an object, or absent /
/// empty (no arguments).
pub fn parse_openai_tool_calls(tool_calls: &[Value]) -> Vec<Result<ToolCall, CallParseError>> {
    tool_calls
        .iter()
        .enumerate()
        .map(|(index, v)| call_from_json(v).map_err(|kind| CallParseError { index, format: CallFormat::OpenAi, kind }))
        .collect()
}

/// Parses tool calls out of free text (see the module docs for the formats).
///
/// Text without any recognised call yields a turn with no calls and the whole text as content.
pub fn parse_text(text: &str, options: &ParseOptions) -> ParsedTurn {
    if options.hermes_tags && text.contains(OPEN_TAG) {
        return parse_hermes(text);
    }
    if options.json_fence_fallback
        && let Some(turn) = parse_fences(text)
    {
        return turn;
    }
    if options.bare_json_fallback
        && let Some(turn) = parse_bare(text)
    {
        return turn;
    }
    ParsedTurn { content: text.trim().to_owned(), format: None, calls: Vec::new() }
}

/// Collects calls decoded from one JSON body (an object, or an array of objects).
struct Collector {
    format: CallFormat,
    calls: Vec<Result<ToolCall, CallParseError>>,
}

impl Collector {
    fn new(format: CallFormat) -> Self {
        Self { format, calls: Vec::new() }
    }

    fn push_err(&mut self, kind: CallErrorKind) {
        let index = self.calls.len();
        self.calls.push(Err(CallParseError { index, format: self.format, kind }));
    }

    fn push_value(&mut self, v: &Value) {
        match call_from_json(v) {
            Ok(call) => self.calls.push(Ok(call)),
            Err(kind) => self.push_err(kind),
        }
    }

    /// Adds the calls of a decoded body; an array contributes one call per element.
    fn push_body(&mut self, v: &Value) {
        match v {
            Value::Array(items) if !items.is_empty() => items.iter().for_each(|i| self.push_value(i)),
            other => self.push_value(other),
        }
    }

    fn finish(self, content: String) -> ParsedTurn {
        ParsedTurn { content: content.trim().to_owned(), format: Some(self.format), calls: self.calls }
    }
}

fn parse_hermes(text: &str) -> ParsedTurn {
    let mut out = Collector::new(CallFormat::Hermes);
    let mut content = String::new();
    let mut rest = text;
    while let Some(open) = rest.find(OPEN_TAG) {
        content.push_str(&rest[..open]);
        let after = &rest[open + OPEN_TAG.len()..];
        // Look for the closing tag only before the next opening tag, so that text with
        // many unterminated tags is still scanned in linear time.
        let next_open = after.find(OPEN_TAG);
        let close = after[..next_open.unwrap_or(after.len())].find(CLOSE_TAG);
        match close {
            Some(c) => {
                parse_tag_body(&after[..c], &mut out);
                rest = &after[c + CLOSE_TAG.len()..];
            }
            _ => {
                out.push_err(CallErrorKind::UnterminatedTag);
                match next_open {
                    Some(o) => rest = &after[o..],
                    None => {
                        rest = "";
                        break;
                    }
                }
            }
        }
    }
    content.push_str(rest);
    out.finish(content)
}

fn parse_tag_body(body: &str, out: &mut Collector) {
    let body = strip_fence(body.trim()).trim();
    if body.is_empty() {
        out.push_err(CallErrorKind::EmptyTag);
        return;
    }
    match serde_json::from_str::<Value>(body) {
        Ok(v) => out.push_body(&v),
        Err(e) => out.push_err(CallErrorKind::InvalidJson(e.to_string())),
    }
}

/// Removes a surrounding Markdown code fence (```` ```json ... ``` ````), if any.
fn strip_fence(s: &str) -> &str {
    let Some(inner) = s.strip_prefix(FENCE) else {
        return s;
    };
    let inner = inner.strip_suffix(FENCE).unwrap_or(inner);
    // Drop the info string ("json") up to the first newline.
    match inner.find('\n') {
        Some(nl) if is_fence_label(&inner[..nl]) => &inner[nl + 1..],
        _ => inner,
    }
}

fn is_fence_label(label: &str) -> bool {
    matches!(label.trim().to_ascii_lowercase().as_str(), "" | "json" | "jsonc" | "json5" | "tool_call" | "tool_calls")
}

/// Whether a decoded JSON value has the shape of one call or a list of calls.
fn looks_like_calls(v: &Value) -> bool {
    match v {
        Value::Object(m) => looks_like_call(m),
        Value::Array(items) => !items.is_empty() && items.iter().all(|i| i.as_object().is_some_and(looks_like_call)),
        _ => false,
    }
}

fn looks_like_call(m: &Map<String, Value>) -> bool {
    let named = m.get("name").is_some_and(Value::is_string);
    let has_args = m.contains_key("arguments") || m.contains_key("parameters");
    let wrapped = m.get("function").is_some_and(Value::is_object);
    (named && has_args) || wrapped
}

/// Text that plausibly tried to be a call even though it does not parse.
fn mentions_call(body: &str) -> bool {
    body.contains("\"name\"") || body.contains("\"arguments\"")
}

fn parse_fences(text: &str) -> Option<ParsedTurn> {
    let mut out = Collector::new(CallFormat::JsonFence);
    let mut content = String::new();
    let mut rest = text;
    while let Some(open) = rest.find(FENCE) {
        let after = &rest[open + FENCE.len()..];
        let Some(nl) = after.find('\n') else { break };
        let label = &after[..nl];
        let body_start = &after[nl + 1..];
        let Some(close) = body_start.find(FENCE) else {
            break;
        };
        let body = body_start[..close].trim();
        let block_end = &body_start[close + FENCE.len()..];
        let used = is_fence_label(label)
            && match serde_json::from_str::<Value>(body) {
                Ok(v) if looks_like_calls(&v) => {
                    out.push_body(&v);
                    true
                }
                Ok(_) => false,
                Err(e) if mentions_call(body) => {
                    out.push_err(CallErrorKind::InvalidJson(e.to_string()));
                    true
                }
                Err(_) => false,
            };
        if used {
            content.push_str(&rest[..open]);
        } else {
            content.push_str(&rest[..rest.len() - block_end.len()]);
        }
        rest = block_end;
    }
    content.push_str(rest);
    if out.calls.is_empty() { None } else { Some(out.finish(content)) }
}

fn parse_bare(text: &str) -> Option<ParsedTurn> {
    let body = text.trim();
    if !(body.starts_with('{') || body.starts_with('[')) {
        return None;
    }
    let mut out = Collector::new(CallFormat::BareJson);
    match serde_json::from_str::<Value>(body) {
        Ok(v) if looks_like_calls(&v) => out.push_body(&v),
        Ok(_) => return None,
        Err(e) if mentions_call(body) => out.push_err(CallErrorKind::InvalidJson(e.to_string())),
        Err(_) => return None,
    }
    Some(out.finish(String::new()))
}

/// Reads one call object in any supported shape:
/// `{"name", "arguments"|"parameters"}`, or the OpenAI entry `{"id", "type", "function": {...}}`.
fn call_from_json(v: &Value) -> Result<ToolCall, CallErrorKind> {
    let Value::Object(outer) = v else {
        return Err(CallErrorKind::NotAnObject(type_name(v)));
    };
    let id = outer.get("id").and_then(Value::as_str).map(str::to_owned);
    let inner = match outer.get("function") {
        Some(Value::Object(f)) => {
            match outer.get("type") {
                None | Some(Value::Null) => {}
                Some(Value::String(t)) if t == "function" => {}
                Some(Value::String(t)) => return Err(CallErrorKind::UnsupportedType(t.clone())),
                Some(other) => {
                    return Err(CallErrorKind::UnsupportedType(type_name(other).to_owned()));
                }
            }
            f
        }
        _ => outer,
    };
    let name = match inner.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => n.trim().to_owned(),
        // `{"function": "name", "arguments": {...}}`, seen from some fine-tunes.
        _ => match inner.get("function") {
            Some(Value::String(n)) if !n.trim().is_empty() => n.trim().to_owned(),
            _ => return Err(CallErrorKind::MissingName),
        },
    };
    let raw_args = inner.get("arguments").or_else(|| inner.get("parameters"));
    let arguments = decode_arguments(raw_args)?;
    Ok(ToolCall { id, name, arguments })
}

/// Decodes `arguments`: an object as is, a JSON string decoded (twice if double-encoded),
/// and absent / null / blank string as an empty object.
fn decode_arguments(raw: Option<&Value>) -> Result<Value, CallErrorKind> {
    let decoded = match raw {
        None | Some(Value::Null) => return Ok(Value::Object(Map::new())),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(Value::Object(Map::new()));
            }
            let once: Value =
                serde_json::from_str(s).map_err(|e| CallErrorKind::InvalidArgumentsJson(e.to_string()))?;
            match once {
                Value::String(inner) => serde_json::from_str(inner.trim())
                    .map_err(|e| CallErrorKind::InvalidArgumentsJson(e.to_string()))?,
                other => other,
            }
        }
        Some(other) => other.clone(),
    };
    match decoded {
        Value::Object(_) => Ok(decoded),
        other => Err(CallErrorKind::ArgumentsNotObject(type_name(&other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(s: &str) -> ParsedTurn {
        parse_text(s, &ParseOptions::default())
    }

    #[test]
    fn decode_arguments_shapes() {
        assert_eq!(decode_arguments(None), Ok(json!({})));
        assert_eq!(decode_arguments(Some(&json!(" "))), Ok(json!({})));
        assert_eq!(decode_arguments(Some(&json!("{\"a\":1}"))), Ok(json!({"a": 1})));
        assert_eq!(decode_arguments(Some(&json!("\"{\\\"a\\\":1}\""))), Ok(json!({"a": 1})));
        assert_eq!(decode_arguments(Some(&json!([1]))), Err(CallErrorKind::ArgumentsNotObject("array")));
        assert!(matches!(decode_arguments(Some(&json!("{oops"))), Err(CallErrorKind::InvalidArgumentsJson(_))));
    }

    #[test]
    fn strip_fence_variants() {
        assert_eq!(strip_fence("```json\n{}\n```"), "{}\n");
        assert_eq!(strip_fence("```\n{}```"), "{}");
        assert_eq!(strip_fence("{}"), "{}");
        assert_eq!(strip_fence("```"), "");
    }

    #[test]
    fn function_string_name_is_accepted() {
        let t = text("<tool_call>{\"function\": \"ping\", \"arguments\": {}}</tool_call>");
        assert_eq!(t.ok_calls().next().map(|c| c.name.as_str()), Some("ping"));
    }

    #[test]
    fn array_inside_one_tag_gives_several_calls() {
        let t = text("<tool_call>[{\"name\":\"a\",\"arguments\":{}},{\"name\":\"b\",\"arguments\":{}}]</tool_call>");
        let names: Vec<_> = t.ok_calls().map(|c| c.name.clone()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn nested_open_tag_marks_first_unterminated() {
        let t = text("<tool_call>{\"name\":\"a\"<tool_call>{\"name\":\"b\",\"arguments\":{}}</tool_call>");
        assert_eq!(t.calls.len(), 2);
        assert_eq!(t.calls[0].as_ref().unwrap_err().kind, CallErrorKind::UnterminatedTag);
        assert_eq!(t.calls[1].as_ref().unwrap().name, "b");
    }

    #[test]
    fn many_unterminated_tags_scan_linearly() {
        let text = format!("{}{}", "<tool_call>x".repeat(50_000), CLOSE_TAG);
        let t = parse_text(&text, &ParseOptions::default());
        assert_eq!(t.calls.len(), 50_000);
        assert!(
            t.calls[..49_999].iter().all(|c| { c.as_ref().is_err_and(|e| e.kind == CallErrorKind::UnterminatedTag) })
        );
    }

    #[test]
    fn fence_with_non_call_json_is_content() {
        let t = text("Here:\n```json\n{\"temperature\": 20}\n```\n");
        assert!(t.has_no_calls());
        assert!(t.content.contains("temperature"));
    }

    #[test]
    fn options_disable_fallbacks() {
        let opts = ParseOptions { json_fence_fallback: false, bare_json_fallback: false, ..ParseOptions::default() };
        let t = parse_text("```json\n{\"name\":\"f\",\"arguments\":{}}\n```", &opts);
        assert!(t.has_no_calls());
        let t = parse_text("{\"name\":\"f\",\"arguments\":{}}", &opts);
        assert!(t.has_no_calls());
    }

    #[test]
    fn error_display_is_one_based() {
        let e = CallParseError { index: 1, format: CallFormat::Hermes, kind: CallErrorKind::InvalidJson("x".into()) };
        assert_eq!(e.to_string(), "call 2: invalid JSON: x");
    }
}
