//! Tool calls in a model's raw text, for policies that see text rather than
//! a server's parsed `tool_calls`: the Hermes/Qwen convention,
//! `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`.

use envhub_sdk::{FunctionCall, Message, Role, ToolCall};
use serde_json::Value;

/// Splits model output into text and Hermes-style tool calls
/// (`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`). Blocks that
/// are not valid JSON stay in the text.
pub fn parse_tool_calls(text: &str, turn_seed: u64) -> Message {
    let mut content = String::new();
    let mut calls = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<tool_call>") {
        let after = &rest[start + "<tool_call>".len()..];
        let Some(end) = after.find("</tool_call>") else { break };
        let body = after[..end].trim();
        match serde_json::from_str::<Value>(body) {
            Ok(v) if v.get("name").and_then(Value::as_str).is_some() => {
                content.push_str(&rest[..start]);
                let name = v.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
                let arguments = match v.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    Some(a) => a.to_string(),
                    None => "{}".to_owned(),
                };
                calls.push(ToolCall {
                    id: format!("call_{:x}_{}", turn_seed & 0xffff_ffff, calls.len()),
                    kind: "function".into(),
                    function: FunctionCall { name, arguments },
                });
            }
            _ => content.push_str(&rest[..start + "<tool_call>".len() + end + "</tool_call>".len()]),
        }
        rest = &after[end + "</tool_call>".len()..];
    }
    content.push_str(rest);
    let content = content.trim();
    Message {
        role: Role::Assistant,
        content: if content.is_empty() && !calls.is_empty() { None } else { Some(content.to_owned()) },
        tool_calls: calls,
        tool_call_id: None,
        name: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hermes_tool_calls_are_parsed() {
        let m = parse_tool_calls("ok <tool_call>{\"name\": \"add\", \"arguments\": {\"a\": 1}}</tool_call>", 1);
        assert_eq!(m.text(), "ok");
        assert_eq!(m.tool_calls[0].function.name, "add");
        assert_eq!(m.tool_calls[0].function.arguments, "{\"a\":1}");
        let m = parse_tool_calls("<tool_call>nope</tool_call>", 1);
        assert!(m.tool_calls.is_empty());
        assert_eq!(m.text(), "<tool_call>nope</tool_call>");
    }
}
