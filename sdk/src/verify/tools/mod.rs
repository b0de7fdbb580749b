//! Tool-call verification: parse the calls a policy made, validate their arguments against
//! the tools' JSON Schemas, and match them against expected calls BFCL-style.
//!
//! Typical environment flow:
//!
//! ```
//! use envhub_sdk::verify::tools::{
//!     ExpectedCall, MatchOptions, ParseOptions, ToolSpec, match_calls, parse_text, validate_call,
//! };
//! use serde_json::json;
//!
//! let tools = vec![ToolSpec::from_json(&json!({
//!     "type": "function",
//!     "function": {
//!         "name": "get_weather",
//!         "parameters": {
//!             "type": "object",
//!             "properties": {
//!                 "city": {"type": "string"},
//!                 "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
//!             },
//!             "required": ["city"]
//!         }
//!     }
//! }))?];
//!
//! let reply = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
//! let turn = parse_text(reply, &ParseOptions::default());
//! let calls = turn.into_calls().expect("all calls parse");
//! for call in &calls {
//!     validate_call(&tools, call)?;
//! }
//!
//! let expected = ExpectedCall::list_from_bfcl(&json!([
//!     {"get_weather": {"city": ["Paris", "paris, france"], "unit": ["celsius", ""]}}
//! ]))?;
//! assert!(match_calls(&calls, &expected, &tools, &MatchOptions::default()).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Everything here is pure computation over `serde_json::Value`s: no I/O, threads or clocks,
//! so it runs the same natively and on `wasm32-wasip1`. No input makes it panic.

pub mod bfcl;
pub mod expected;
mod json;
pub mod matching;
pub mod parse;
pub mod schema;
pub mod types;

pub use expected::{ExpectedCall, ExpectedError};
pub use matching::{MAX_PARALLEL_CALLS, MatchOptions, Mismatch, match_call, match_calls, normalize_string};
pub use parse::{
    CallErrorKind, CallFormat, CallParseError, MessageError, ParseOptions, ParsedTurn, parse_message,
    parse_openai_tool_calls, parse_text,
};
pub use schema::{
    CallValidationError, SchemaError, SchemaErrorKind, ValidationErrors, validate, validate_arguments, validate_call,
};
pub use types::{ToolCall, ToolSpec, ToolSpecError};
