//! The two data types every verifier works on: a [`ToolCall`] made by the policy and a
//! [`ToolSpec`] describing a function the policy may call (OpenAI function-tool format).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};
use thiserror::Error;

use super::json::type_name;

/// One function call made by the policy, with its arguments already decoded to JSON.
///
/// OpenAI transmits `function.arguments` as a JSON-encoded *string*; the parsers in
/// [`super::parse`] decode it so that `arguments` is normally a JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id assigned by the model or server (`call_abc123`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name of the called function.
    pub name: String,
    /// Decoded arguments, normally a JSON object.
    #[serde(default = "empty_object")]
    pub arguments: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl ToolCall {
    /// A call without an id.
    pub fn new(name: impl Into<String>, arguments: Value) -> Self {
        Self { id: None, name: name.into(), arguments }
    }

    /// The call in OpenAI `tool_calls` entry form, with `arguments` encoded as a JSON string.
    pub fn to_openai(&self) -> Value {
        let args = serde_json::to_string(&self.arguments).unwrap_or_else(|_| String::from("{}"));
        let mut entry = json!({
            "type": "function",
            "function": { "name": self.name, "arguments": args },
        });
        if let (Some(id), Value::Object(map)) = (&self.id, &mut entry) {
            map.insert(String::from("id"), Value::String(id.clone()));
        }
        entry
    }
}

/// Why a JSON value could not be read as a [`ToolSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ToolSpecError {
    /// The tool (or its `function` member) is not a JSON object.
    #[error("tool spec must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// The wrapper's `type` is something other than `"function"`.
    #[error("unsupported tool type {0:?} (expected \"function\")")]
    UnsupportedType(String),
    /// `name` is missing, empty or not a string.
    #[error("tool spec has no function name")]
    MissingName,
    /// A known member has the wrong JSON type.
    #[error("tool spec field `{field}` must be {expected}, got {got}")]
    InvalidField {
        /// The offending member.
        field: &'static str,
        /// The JSON type(s) it must have.
        expected: &'static str,
        /// The JSON type it has.
        got: &'static str,
    },
}

/// A function the policy may call: an OpenAI function tool.
///
/// Reads both the OpenAI wrapped form
/// `{"type":"function","function":{"name","description","parameters"}}` and the bare
/// `{"name","description","parameters"}` form used by BFCL. Serializes to the wrapped form.
/// `parameters` is a JSON Schema, normally of type `object`; it defaults to an object
/// schema without properties when absent.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Function name.
    pub name: String,
    /// Human-readable description, if any.
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

impl ToolSpec {
    /// A tool from its parts.
    pub fn new(name: impl Into<String>, description: Option<String>, parameters: Value) -> Self {
        Self { name: name.into(), description, parameters }
    }

    /// Reads a tool in either the OpenAI wrapped form or the bare (BFCL) form.
    pub fn from_json(v: &Value) -> Result<Self, ToolSpecError> {
        let Value::Object(outer) = v else {
            return Err(ToolSpecError::NotAnObject(type_name(v)));
        };
        let inner = match outer.get("function") {
            Some(Value::Object(f)) => {
                match outer.get("type") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(t)) if t == "function" => {}
                    Some(Value::String(t)) => {
                        return Err(ToolSpecError::UnsupportedType(t.clone()));
                    }
                    Some(other) => {
                        return Err(ToolSpecError::InvalidField {
                            field: "type",
                            expected: "a string",
                            got: type_name(other),
                        });
                    }
                }
                f
            }
            Some(other) if !outer.contains_key("name") => {
                return Err(ToolSpecError::NotAnObject(type_name(other)));
            }
            _ => outer,
        };
        let name = match inner.get("name") {
            Some(Value::String(n)) if !n.trim().is_empty() => n.clone(),
            _ => return Err(ToolSpecError::MissingName),
        };
        let description = match inner.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) => Some(d.clone()),
            Some(other) => {
                return Err(ToolSpecError::InvalidField {
                    field: "description",
                    expected: "a string",
                    got: type_name(other),
                });
            }
        };
        let parameters = match inner.get("parameters") {
            None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
            Some(p @ (Value::Object(_) | Value::Bool(_))) => p.clone(),
            Some(other) => {
                return Err(ToolSpecError::InvalidField {
                    field: "parameters",
                    expected: "an object or boolean",
                    got: type_name(other),
                });
            }
        };
        Ok(Self { name, description, parameters })
    }

    /// The tool in OpenAI wrapped form.
    pub fn to_openai(&self) -> Value {
        let mut function = Map::new();
        function.insert(String::from("name"), Value::String(self.name.clone()));
        if let Some(d) = &self.description {
            function.insert(String::from("description"), Value::String(d.clone()));
        }
        function.insert(String::from("parameters"), self.parameters.clone());
        json!({ "type": "function", "function": function })
    }

    /// The schema of one argument, from `parameters.properties`.
    pub fn property_schema(&self, arg: &str) -> Option<&Value> {
        self.parameters.get("properties")?.get(arg)
    }

    /// Whether `parameters.properties` declares the argument.
    pub fn has_property(&self, arg: &str) -> bool {
        self.property_schema(arg).is_some()
    }

    /// Names listed in `parameters.required` (non-string entries are skipped).
    pub fn required(&self) -> Vec<&str> {
        match self.parameters.get("required") {
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

impl Serialize for ToolSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_openai().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ToolSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        ToolSpec::from_json(&v).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrapped_and_bare_forms() {
        let wrapped = json!({"type": "function", "function": {
            "name": "get_weather", "description": "d",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        }});
        let bare = json!({"name": "get_weather", "description": "d",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}});
        let a = ToolSpec::from_json(&wrapped).unwrap();
        let b = ToolSpec::from_json(&bare).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.required(), vec!["city"]);
        assert!(a.has_property("city"));
        assert_eq!(ToolSpec::from_json(&a.to_openai()).unwrap(), a);
        let via_serde: ToolSpec = serde_json::from_value(bare).unwrap();
        assert_eq!(via_serde, a);
    }

    #[test]
    fn rejects_bad_specs() {
        assert_eq!(ToolSpec::from_json(&json!([])), Err(ToolSpecError::NotAnObject("array")));
        assert_eq!(
            ToolSpec::from_json(&json!({"type": "retrieval", "function": {"name": "x"}})),
            Err(ToolSpecError::UnsupportedType("retrieval".into()))
        );
        assert_eq!(ToolSpec::from_json(&json!({"description": "no name"})), Err(ToolSpecError::MissingName));
        assert!(matches!(
            ToolSpec::from_json(&json!({"name": "f", "parameters": "x"})),
            Err(ToolSpecError::InvalidField { field: "parameters", .. })
        ));
    }

    #[test]
    fn defaults_parameters() {
        let t = ToolSpec::from_json(&json!({"name": "ping"})).unwrap();
        assert_eq!(t.parameters, json!({"type": "object", "properties": {}}));
        assert!(t.required().is_empty());
    }

    #[test]
    fn tool_call_to_openai_encodes_arguments() {
        let mut c = ToolCall::new("f", json!({"a": 1}));
        c.id = Some("call_1".into());
        let v = c.to_openai();
        assert_eq!(v["function"]["arguments"], json!("{\"a\":1}"));
        assert_eq!(v["id"], json!("call_1"));
    }
}
