//! Chat templates (Jinja, as shipped in `tokenizer.chat_template`) rendered
//! with minijinja, and Hermes-style `<tool_call>` parsing of model output.

use envhub_sdk::{FunctionCall, Message, Role, Tool, ToolCall};
use minijinja::{Environment, Error, ErrorKind, context};
use serde_json::{Value, json};

/// ChatML, used when a model ships no template.
pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").finish_non_exhaustive()
    }
}

fn raise_exception(msg: String) -> Result<String, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

impl ChatTemplate {
    /// Compiles `source`; `bos`/`eos` are the texts of those tokens.
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<Self, Error> {
        let mut env = Environment::new();
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned("chat", source.to_owned())?;
        Ok(ChatTemplate { env, bos: bos.to_owned(), eos: eos.to_owned() })
    }

    /// Renders a conversation, ending with the assistant generation prompt.
    pub fn render(&self, messages: &[Message], tools: &[Tool]) -> Result<String, Error> {
        let msgs: Vec<Value> = messages.iter().map(message_value).collect();
        let tmpl = self.env.get_template("chat")?;
        let tools_v: Option<Vec<Value>> =
            if tools.is_empty() { None } else { Some(tools.iter().map(|t| json!(t)).collect()) };
        tmpl.render(context! {
            messages => minijinja::value::Serde(&msgs),
            tools => minijinja::value::Serde(&tools_v),
            add_generation_prompt => true,
            bos_token => self.bos.as_str(),
            eos_token => self.eos.as_str(),
        })
    }
}

/// The message as templates expect it: `content` always a string, tool
/// calls with parsed arguments (as Hugging Face templates do).
fn message_value(m: &Message) -> Value {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut v = json!({ "role": role, "content": m.text() });
    if !m.tool_calls.is_empty() {
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(|c| {
                let args = serde_json::from_str::<Value>(&c.function.arguments)
                    .unwrap_or_else(|_| Value::String(c.function.arguments.clone()));
                json!({"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": args}})
            })
            .collect();
        v["tool_calls"] = Value::Array(calls);
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = json!(id);
    }
    if let Some(name) = &m.name {
        v["name"] = json!(name);
    }
    v
}

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
    fn chatml_renders_with_generation_prompt() {
        let t = ChatTemplate::new(CHATML, "", "<|im_end|>").unwrap();
        let s = t.render(&[Message::system("S"), Message::user("Q")], &[]).unwrap();
        assert_eq!(s, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = ChatTemplate::new("{{ raise_exception('no') }}", "", "").unwrap();
        assert!(t.render(&[], &[]).is_err());
    }

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
