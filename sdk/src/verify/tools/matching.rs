//! Matching model calls against expected calls, in the style of BFCL's AST checker.
//!
//! Behaviour, per expected call:
//!
//! * the function name must match exactly (optionally after turning `.` into `_`, as BFCL
//!   does for models whose APIs reject dots in function names);
//! * every argument the tool spec lists as `required` must be present;
//! * every model argument must be known to both the tool spec (when one is given) and the
//!   expected call, otherwise it is unexpected;
//! * when the spec gives a `type`, the value must have it: `integer` accepts only integer
//!   literals, while `float` / `number` also accept integers (BFCL's int-for-float rule);
//! * the value must equal one of the allowed values: strings after normalisation
//!   (lower-cased, with spaces and `,./-_*^` removed, `'` read as `"`), numbers by value
//!   (`5 == 5.0`), lists element-wise in order, and objects recursively, where each member of
//!   an expected object is itself a list of allowed values;
//! * an expected argument the model omitted must be optional (its allowed list has `""`).
//!
//! Several expected calls (BFCL's parallel categories) are matched as an unordered
//! one-to-one assignment: the numbers of calls must agree and each expected call must be
//! satisfied by a distinct model call. Unlike BFCL's greedy search, a full bipartite matching
//! is computed, so the outcome never depends on the order of the calls. The "multiple"
//! category (one call chosen among several tools) is a single expected call with several
//! tool specs.

use serde_json::{Map, Value};
use thiserror::Error;

use super::expected::{ExpectedCall, allows_omission};
use super::json::{MAX_DEPTH, numbers_equal, push_index, push_key, render, render_list, type_name};
use super::types::{ToolCall, ToolSpec};

/// Most calls [`match_calls`] matches as an unordered set; BFCL entries have a handful.
pub const MAX_PARALLEL_CALLS: usize = 256;

/// Knobs of the matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchOptions {
    /// Compare function names after replacing `.` with `_` on both sides.
    pub dots_to_underscores: bool,
    /// Compare strings after BFCL normalisation (see [`normalize_string`]); exact otherwise.
    pub normalize_strings: bool,
    /// Check argument values against the `type` in the tool spec when one is available.
    pub check_types: bool,
}

impl Default for MatchOptions {
    /// Names compared exactly, strings normalised, types checked.
    fn default() -> Self {
        Self { dots_to_underscores: false, normalize_strings: true, check_types: true }
    }
}

/// The first reason the model's calls did not match the expected ones.
///
/// Paths start at `arguments`, e.g. `arguments.location.city` or `arguments.values[1]`.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Mismatch {
    /// The model made a different number of calls than expected.
    #[error("wrong number of calls: expected {expected}, got {got}")]
    WrongCount {
        /// Expected number of calls.
        expected: usize,
        /// Number of calls made.
        got: usize,
    },
    /// The model called a different function.
    #[error("wrong function: expected `{expected}`, got `{got}`")]
    WrongFunction {
        /// The expected function.
        expected: String,
        /// The function(s) called, comma separated.
        got: String,
    },
    /// The model's arguments are not a JSON object.
    #[error("`{function}`: arguments must be an object, got {got}")]
    ArgumentsNotObject {
        /// The function.
        function: String,
        /// The JSON type found.
        got: &'static str,
    },
    /// A required argument (or required member of a dict argument) is missing.
    #[error("`{function}`: missing required argument {path}")]
    MissingRequiredArg {
        /// The function.
        function: String,
        /// The missing argument's path.
        path: String,
    },
    /// The model passed an argument (or dict member) that is not expected.
    #[error("`{function}`: unexpected argument {path}")]
    UnexpectedArg {
        /// The function.
        function: String,
        /// The unexpected argument's path.
        path: String,
    },
    /// A value has the wrong type for the tool spec.
    #[error("`{function}`: {path}: expected type {expected}, got {got}")]
    WrongType {
        /// The function.
        function: String,
        /// The value's path.
        path: String,
        /// The spec's type(s).
        expected: String,
        /// The value's JSON type.
        got: &'static str,
    },
    /// A value is not among the allowed values.
    #[error("`{function}`: {path}: value {} is not among the allowed values {}", render(.got), render_list(.allowed))]
    ValueNotAllowed {
        /// The function.
        function: String,
        /// The value's path.
        path: String,
        /// The model's value.
        got: Value,
        /// The allowed values (without the `""` optional marker).
        allowed: Vec<Value>,
    },
    /// Too many calls to match as a set (see [`MAX_PARALLEL_CALLS`]).
    #[error("too many calls to match: {got} (at most {limit})")]
    TooManyCalls {
        /// Number of calls made.
        got: usize,
        /// The supported maximum.
        limit: usize,
    },
    /// In a set of several calls, an expected call was satisfied by no model call.
    #[error("expected call {} (`{function}`) matched no model call: {reason}", .index + 1)]
    NoMatch {
        /// Zero-based position of the expected call (displayed one-based).
        index: usize,
        /// Its function.
        function: String,
        /// Why the most similar model call (same function name, if any) failed.
        reason: Box<Mismatch>,
    },
}

/// BFCL's string normalisation: removes spaces and `,./-_*^`, lower-cases, and reads `'` as `"`.
pub fn normalize_string(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | ',' | '.' | '/' | '-' | '_' | '*' | '^'))
        .flat_map(char::to_lowercase)
        .map(|c| if c == '\'' { '"' } else { c })
        .collect()
}

/// Matches the model's calls against the expected calls.
///
/// `tools` are the specs offered to the model; they supply `required` and `type`
/// information and may be empty. No expected calls and no model calls is a match
/// (BFCL's irrelevance case).
pub fn match_calls(
    calls: &[ToolCall],
    expected: &[ExpectedCall],
    tools: &[ToolSpec],
    options: &MatchOptions,
) -> Result<(), Mismatch> {
    if calls.len() != expected.len() {
        return Err(Mismatch::WrongCount { expected: expected.len(), got: calls.len() });
    }
    if calls.len() > MAX_PARALLEL_CALLS {
        return Err(Mismatch::TooManyCalls { got: calls.len(), limit: MAX_PARALLEL_CALLS });
    }
    match (calls, expected) {
        ([], []) => Ok(()),
        ([call], [exp]) => match_call(call, exp, tools, options),
        _ => match_unordered(calls, expected, tools, options),
    }
}

/// Matches one model call against one expected call.
pub fn match_call(
    call: &ToolCall,
    expected: &ExpectedCall,
    tools: &[ToolSpec],
    options: &MatchOptions,
) -> Result<(), Mismatch> {
    let m = Matcher { options, function: &expected.name };
    if m.name_key(&call.name) != m.name_key(&expected.name) {
        return Err(Mismatch::WrongFunction { expected: expected.name.clone(), got: call.name.clone() });
    }
    let Value::Object(args) = &call.arguments else {
        return Err(Mismatch::ArgumentsNotObject { function: expected.name.clone(), got: type_name(&call.arguments) });
    };
    let spec = tools.iter().find(|t| m.name_key(&t.name) == m.name_key(&expected.name));
    m.match_args(args, expected, spec)
}

struct Matcher<'a> {
    options: &'a MatchOptions,
    function: &'a str,
}

impl Matcher<'_> {
    fn name_key(&self, name: &str) -> String {
        if self.options.dots_to_underscores { name.replace('.', "_") } else { name.to_owned() }
    }

    fn missing(&self, path: String) -> Mismatch {
        Mismatch::MissingRequiredArg { function: self.function.to_owned(), path }
    }

    fn unexpected(&self, path: String) -> Mismatch {
        Mismatch::UnexpectedArg { function: self.function.to_owned(), path }
    }

    fn not_allowed(&self, path: &str, got: &Value, allowed: &[Value]) -> Mismatch {
        Mismatch::ValueNotAllowed {
            function: self.function.to_owned(),
            path: path.to_owned(),
            got: got.clone(),
            allowed: allowed.iter().filter(|v| v.as_str() != Some("")).cloned().collect(),
        }
    }

    fn match_args(
        &self,
        args: &Map<String, Value>,
        expected: &ExpectedCall,
        spec: Option<&ToolSpec>,
    ) -> Result<(), Mismatch> {
        let root = "arguments";
        if let Some(spec) = spec {
            for req in spec.required() {
                if !args.contains_key(req) {
                    return Err(self.missing(push_key(root, req)));
                }
            }
        }
        for (key, value) in args {
            let path = push_key(root, key);
            let known_to_spec = spec.is_none_or(|s| s.has_property(key));
            let Some(allowed) = expected.args.get(key).filter(|_| known_to_spec) else {
                return Err(self.unexpected(path));
            };
            if self.options.check_types
                && let Some(schema) = spec.and_then(|s| s.property_schema(key))
            {
                self.check_type(value, schema, &path, 0)?;
            }
            self.match_allowed(value, allowed, &path, 0)?;
        }
        for (key, allowed) in &expected.args {
            if !args.contains_key(key) && !allows_omission(allowed) {
                return Err(self.missing(push_key(root, key)));
            }
        }
        Ok(())
    }

    /// Checks the spec's `type` for a value, recursing into `items` and `properties`.
    fn check_type(&self, value: &Value, schema: &Value, path: &str, depth: usize) -> Result<(), Mismatch> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let names: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.is_empty() && !names.iter().any(|t| strict_type_matches(t, value)) {
            return Err(Mismatch::WrongType {
                function: self.function.to_owned(),
                path: path.to_owned(),
                expected: names.join(" or "),
                got: type_name(value),
            });
        }
        match value {
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
                    for (i, item) in items.iter().enumerate() {
                        self.check_type(item, item_schema, &push_index(path, i), depth + 1)?;
                    }
                }
            }
            Value::Object(map) => {
                if let Some(Value::Object(props)) = schema.get("properties") {
                    for (k, v) in map {
                        if let Some(sub) = props.get(k) {
                            self.check_type(v, sub, &push_key(path, k), depth + 1)?;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Succeeds when `got` equals one of the allowed candidates.
    fn match_allowed(&self, got: &Value, allowed: &[Value], path: &str, depth: usize) -> Result<(), Mismatch> {
        let mut same_kind: Vec<Mismatch> = Vec::new();
        for cand in allowed {
            match self.match_literal(got, cand, path, depth) {
                Ok(()) => return Ok(()),
                Err(e) if same_container(got, cand) => same_kind.push(e),
                Err(_) => {}
            }
        }
        // A single structured candidate explains the failure best from the inside.
        if same_kind.len() == 1
            && let Some(inner) = same_kind.pop()
        {
            return Err(inner);
        }
        Err(self.not_allowed(path, got, allowed))
    }

    /// Succeeds when `got` equals the single candidate value.
    fn match_literal(&self, got: &Value, cand: &Value, path: &str, depth: usize) -> Result<(), Mismatch> {
        if depth > MAX_DEPTH {
            return Err(self.not_allowed(path, got, std::slice::from_ref(cand)));
        }
        let equal = match (got, cand) {
            (Value::String(a), Value::String(b)) => {
                if self.options.normalize_strings {
                    normalize_string(a) == normalize_string(b)
                } else {
                    a == b
                }
            }
            (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Null, Value::Null) => true,
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                    self.match_literal(x, y, &push_index(path, i), depth + 1)?;
                }
                true
            }
            (Value::Object(a), Value::Object(b)) => {
                self.match_pattern(a, b, path, depth)?;
                true
            }
            _ => false,
        };
        if equal { Ok(()) } else { Err(self.not_allowed(path, got, std::slice::from_ref(cand))) }
    }

    /// Matches an object against a pattern object whose members are allowed-value lists.
    fn match_pattern(
        &self,
        got: &Map<String, Value>,
        pattern: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<(), Mismatch> {
        for (key, value) in got {
            let child = push_key(path, key);
            let Some(allowed) = pattern.get(key) else {
                return Err(self.unexpected(child));
            };
            self.match_allowed(value, as_allowed(allowed), &child, depth + 1)?;
        }
        for (key, allowed) in pattern {
            if !got.contains_key(key) && !allows_omission(as_allowed(allowed)) {
                return Err(self.missing(push_key(path, key)));
            }
        }
        Ok(())
    }

    /// Names the model calls, for a `WrongFunction` report.
    fn call_names(calls: &[ToolCall]) -> String {
        calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// A pattern member's allowed values: the list itself, or a lone value.
fn as_allowed(v: &Value) -> &[Value] {
    match v {
        Value::Array(list) => list.as_slice(),
        other => std::slice::from_ref(other),
    }
}

fn same_container(a: &Value, b: &Value) -> bool {
    matches!((a, b), (Value::Array(_), Value::Array(_)) | (Value::Object(_), Value::Object(_)))
}

/// BFCL-strict type check: `integer` rejects float literals, `float` accepts integers.
fn strict_type_matches(name: &str, v: &Value) -> bool {
    match name {
        "integer" => v.as_number().is_some_and(|n| n.is_i64() || n.is_u64()),
        "number" | "float" => v.is_number(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "array" | "tuple" | "list" => v.is_array(),
        "object" | "dict" => v.is_object(),
        "null" => v.is_null(),
        // "any" and names we do not know constrain nothing.
        _ => true,
    }
}

/// Unordered one-to-one assignment of model calls to expected calls (Kuhn's algorithm).
fn match_unordered(
    calls: &[ToolCall],
    expected: &[ExpectedCall],
    tools: &[ToolSpec],
    options: &MatchOptions,
) -> Result<(), Mismatch> {
    // results[e][c]: does model call c satisfy expected call e?
    let results: Vec<Vec<Result<(), Mismatch>>> =
        expected.iter().map(|exp| calls.iter().map(|call| match_call(call, exp, tools, options)).collect()).collect();
    let mut owner: Vec<Option<usize>> = vec![None; calls.len()];
    for e in 0..expected.len() {
        let mut seen = vec![false; calls.len()];
        if !augment(e, &results, &mut owner, &mut seen) {
            return Err(explain_unmatched(e, calls, expected, &results, options));
        }
    }
    Ok(())
}

/// Tries to give expected call `e` a model call, re-assigning earlier ones if needed.
fn augment(e: usize, results: &[Vec<Result<(), Mismatch>>], owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
    let Some(row) = results.get(e) else {
        return false;
    };
    for (c, r) in row.iter().enumerate() {
        if r.is_err() || seen[c] {
            continue;
        }
        seen[c] = true;
        let free = match owner[c] {
            None => true,
            Some(other) => augment(other, results, owner, seen),
        };
        if free {
            owner[c] = Some(e);
            return true;
        }
    }
    false
}

fn explain_unmatched(
    e: usize,
    calls: &[ToolCall],
    expected: &[ExpectedCall],
    results: &[Vec<Result<(), Mismatch>>],
    options: &MatchOptions,
) -> Mismatch {
    let exp = &expected[e];
    let m = Matcher { options, function: &exp.name };
    let same_name = calls.iter().zip(&results[e]).find_map(|(call, r)| match r {
        Err(reason) if m.name_key(&call.name) == m.name_key(&exp.name) => Some(reason.clone()),
        _ => None,
    });
    let reason = same_name
        .unwrap_or_else(|| Mismatch::WrongFunction { expected: exp.name.clone(), got: Matcher::call_names(calls) });
    Mismatch::NoMatch { index: e, function: exp.name.clone(), reason: Box::new(reason) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exp(v: Value) -> ExpectedCall {
        ExpectedCall::from_bfcl(&v).unwrap()
    }

    #[test]
    fn normalisation_matches_bfcl() {
        assert_eq!(normalize_string("New York, NY"), "newyorkny");
        assert_eq!(normalize_string("2023-01-05"), "20230105");
        assert_eq!(normalize_string("It's"), "it\"s");
        assert_eq!(normalize_string("a_b*c^d/e.f"), "abcdef");
    }

    #[test]
    fn same_matched_call_cannot_serve_two_expectations() {
        let e = [exp(json!({"f": {"x": [1, 2]}})), exp(json!({"f": {"x": [1]}}))];
        // Greedy would give call 0 (x=1) to expectation 0 and then fail; Kuhn re-assigns.
        let calls = [ToolCall::new("f", json!({"x": 1})), ToolCall::new("f", json!({"x": 2}))];
        assert_eq!(match_calls(&calls, &e, &[], &MatchOptions::default()), Ok(()));
        let calls = [ToolCall::new("f", json!({"x": 1})), ToolCall::new("f", json!({"x": 1}))];
        assert!(match_calls(&calls, &e, &[], &MatchOptions::default()).is_ok());
        let calls = [ToolCall::new("f", json!({"x": 2})), ToolCall::new("f", json!({"x": 2}))];
        let err = match_calls(&calls, &e, &[], &MatchOptions::default()).unwrap_err();
        assert!(matches!(err, Mismatch::NoMatch { index: 1, .. }), "{err}");
    }

    #[test]
    fn nested_single_candidate_reports_inner_path() {
        let e = exp(json!({"f": {"loc": [{"city": ["Paris"], "zip": ["", "75001"]}]}}));
        let call = ToolCall::new("f", json!({"loc": {"city": "Lyon"}}));
        let err = match_call(&call, &e, &[], &MatchOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`f`: arguments.loc.city: value \"Lyon\" is not among the allowed values [\"Paris\"]"
        );
        let call = ToolCall::new("f", json!({"loc": {"zip": "75001"}}));
        let err = match_call(&call, &e, &[], &MatchOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), "`f`: missing required argument arguments.loc.city");
    }

    #[test]
    fn too_many_calls_is_refused() {
        let n = MAX_PARALLEL_CALLS + 1;
        let calls = vec![ToolCall::new("f", json!({})); n];
        let e = vec![exp(json!({"f": {}})); n];
        assert_eq!(
            match_calls(&calls, &e, &[], &MatchOptions::default()),
            Err(Mismatch::TooManyCalls { got: n, limit: MAX_PARALLEL_CALLS })
        );
        let ok = MAX_PARALLEL_CALLS;
        assert_eq!(match_calls(&calls[..ok], &e[..ok], &[], &MatchOptions::default()), Ok(()));
    }

    #[test]
    fn exact_strings_when_normalisation_off() {
        let opts = MatchOptions { normalize_strings: false, ..MatchOptions::default() };
        let e = exp(json!({"f": {"s": ["New York"]}}));
        let call = ToolCall::new("f", json!({"s": "new york"}));
        assert!(match_call(&call, &e, &[], &opts).is_err());
        assert!(match_call(&call, &e, &[], &MatchOptions::default()).is_ok());
    }
}
