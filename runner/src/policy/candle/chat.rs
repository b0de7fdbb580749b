//! Chat templates (Jinja, as shipped in `tokenizer.chat_template`) rendered
//! with minijinja.

use envhub_sdk::{Message, Role, Tool};
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
        self.render_with(messages, tools, true)
    }

    /// Renders a conversation, with or without the generation prompt.
    pub fn render_with(
        &self,
        messages: &[Message],
        tools: &[Tool],
        add_generation_prompt: bool,
    ) -> Result<String, Error> {
        let msgs: Vec<Value> = messages.iter().map(message_value).collect();
        let tmpl = self.env.get_template("chat")?;
        let tools_v: Option<Vec<Value>> =
            if tools.is_empty() { None } else { Some(tools.iter().map(|t| json!(t)).collect()) };
        tmpl.render(context! {
            messages => minijinja::value::Serde(&msgs),
            tools => minijinja::value::Serde(&tools_v),
            add_generation_prompt => add_generation_prompt,
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
}
