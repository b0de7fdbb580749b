//! Tool-call verification: parse the calls a policy made, validate their arguments against
//! the tools' JSON Schemas, and match them against expected calls BFCL-style.

mod json;
pub mod parse;
pub mod types;

pub use parse::{
    CallErrorKind, CallFormat, CallParseError, MessageError, ParseOptions, ParsedTurn,
    parse_message, parse_openai_tool_calls, parse_text,
};
pub use types::{ToolCall, ToolSpec, ToolSpecError};
