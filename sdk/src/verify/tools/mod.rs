//! Tool-call verification: parse the calls a policy made, validate their arguments against
//! the tools' JSON Schemas, and match them against expected calls BFCL-style.

pub mod expected;
mod json;
pub mod matching;
pub mod parse;
pub mod schema;
pub mod types;

pub use expected::{ExpectedCall, ExpectedError};
pub use matching::{MatchOptions, Mismatch, match_call, match_calls, normalize_string};
pub use parse::{
    CallErrorKind, CallFormat, CallParseError, MessageError, ParseOptions, ParsedTurn,
    parse_message, parse_openai_tool_calls, parse_text,
};
pub use schema::{
    CallValidationError, SchemaError, SchemaErrorKind, ValidationErrors, validate,
    validate_arguments, validate_call,
};
pub use types::{ToolCall, ToolSpec, ToolSpecError};
