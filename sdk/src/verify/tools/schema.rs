//! Validation of call arguments against a tool's JSON Schema.
//!
//! Implements the subset of JSON Schema that function-calling tools use:
//! `type` (a name or an array of names; `integer` vs `number`; `null`), `nullable`,
//! `enum`, `const`, `properties`, `required`, `additionalProperties` (boolean or schema),
//! `items` (one schema, or an array of positional schemas), `prefixItems`, `minItems`,
//! `maxItems`, `uniqueItems`, `minimum`, `maximum`, `exclusiveMinimum` and
//! `exclusiveMaximum` (numeric, or the draft-4 boolean form), `minLength`, `maxLength`,
//! `allOf`, `anyOf` and `oneOf`. Boolean schemas (`true` / `false`) are honoured.
//!
//! Not implemented, and silently ignored: `pattern`, `format`, `multipleOf`,
//! `patternProperties`, `$ref` and the other keywords.
//!
//! BFCL's type names are accepted as aliases: `dict` (object), `float` (number),
//! `tuple` and `list` (array) and `any` (anything). Following JSON Schema, `integer`
//! accepts integral floats such as `3.0` (the BFCL matcher in [`super::matching`] is
//! stricter).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value};
use thiserror::Error;

use super::json::{MAX_DEPTH, is_integral, json_eq, push_index, push_key, render, render_list, type_name};
use super::types::{ToolCall, ToolSpec};

/// At most this many errors are collected for one instance.
const MAX_ERRORS: usize = 50;

/// What was wrong at one place in the instance.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SchemaErrorKind {
    /// The value has the wrong JSON type.
    #[error("expected {expected}, got {got}")]
    TypeMismatch {
        /// The allowed type(s), e.g. `string` or `integer or null`.
        expected: String,
        /// The value's type.
        got: &'static str,
    },
    /// The value is not one of the `enum` values.
    #[error("expected one of {allowed}, got {got}")]
    NotInEnum {
        /// The allowed values, rendered as a JSON array.
        allowed: String,
        /// The value, rendered as JSON.
        got: String,
    },
    /// The value differs from `const`.
    #[error("expected {expected}, got {got}")]
    ConstMismatch {
        /// The required value, rendered as JSON.
        expected: String,
        /// The value, rendered as JSON.
        got: String,
    },
    /// A `required` property is absent (the error path names the property).
    #[error("missing required property")]
    MissingProperty,
    /// A property not allowed by `additionalProperties: false` (the path names it).
    #[error("unexpected property (not in schema)")]
    UnexpectedProperty,
    /// A number violates `minimum` / `maximum` / `exclusiveMinimum` / `exclusiveMaximum`.
    #[error("expected a number {constraint}, got {got}")]
    OutOfRange {
        /// The violated bound, e.g. `>= 1` or `< 100`.
        constraint: String,
        /// The value.
        got: String,
    },
    /// A string shorter than `minLength` characters.
    #[error("expected at least {min} characters, got {got}")]
    TooShort {
        /// The minimum length.
        min: u64,
        /// The actual length in characters.
        got: usize,
    },
    /// A string longer than `maxLength` characters.
    #[error("expected at most {max} characters, got {got}")]
    TooLong {
        /// The maximum length.
        max: u64,
        /// The actual length in characters.
        got: usize,
    },
    /// An array with fewer than `minItems` items.
    #[error("expected at least {min} items, got {got}")]
    TooFewItems {
        /// The minimum number of items.
        min: u64,
        /// The actual number.
        got: usize,
    },
    /// An array with more than `maxItems` items.
    #[error("expected at most {max} items, got {got}")]
    TooManyItems {
        /// The maximum number of items.
        max: u64,
        /// The actual number.
        got: usize,
    },
    /// An array with repeated items despite `uniqueItems: true`.
    #[error("items must be unique (items {first} and {second} are equal)")]
    DuplicateItems {
        /// Index of the first of two equal items.
        first: usize,
        /// Index of the second.
        second: usize,
    },
    /// No `anyOf` / `oneOf` alternative accepted the value.
    #[error("matched none of the {count} {keyword} alternatives{}", closest_suffix(.closest))]
    NoAlternative {
        /// `anyOf` or `oneOf`.
        keyword: &'static str,
        /// How many alternatives there are.
        count: usize,
        /// The first error of the alternative that came closest, if any.
        closest: Option<String>,
    },
    /// More than one `oneOf` alternative accepted the value.
    #[error("matched {matched} oneOf alternatives, expected exactly one")]
    AmbiguousOneOf {
        /// How many alternatives accepted it.
        matched: usize,
    },
    /// The schema is `false`: nothing is allowed here.
    #[error("no value is allowed here")]
    Forbidden,
    /// The schema itself is malformed at this point.
    #[error("invalid schema: {0}")]
    InvalidSchema(String),
    /// The value or schema is nested too deeply to check.
    #[error("nesting too deep to check")]
    TooDeep,
}

fn closest_suffix(closest: &Option<String>) -> String {
    match closest {
        Some(c) => format!(" (closest: {c})"),
        None => String::new(),
    }
}

/// One validation failure, located by a path such as `arguments.items[2].name`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {kind}")]
pub struct SchemaError {
    /// Where in the instance: the root name followed by `.key` and `[index]` steps.
    pub path: String,
    /// What was wrong there.
    pub kind: SchemaErrorKind,
}

/// All failures found in one instance (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ValidationErrors(pub Vec<SchemaError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Why a call failed [`validate_call`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallValidationError {
    /// No tool has the called name.
    #[error("unknown function `{name}` (available: {available})")]
    UnknownFunction {
        /// The called name.
        name: String,
        /// The available names, comma separated.
        available: String,
    },
    /// The arguments violate the tool's schema.
    #[error("invalid arguments for `{name}`: {errors}")]
    InvalidArguments {
        /// The called name.
        name: String,
        /// Every violation found.
        errors: ValidationErrors,
    },
}

/// Validates `instance` against `schema`, naming the instance root `root` in error paths.
///
/// Returns every violation found (up to a bound), in document order.
pub fn validate(schema: &Value, instance: &Value, root: &str) -> Result<(), ValidationErrors> {
    let errors = collect(schema, instance, root, 0);
    if errors.is_empty() { Ok(()) } else { Err(ValidationErrors(errors)) }
}

/// Validates a call's arguments against the tool's `parameters`; paths start at `arguments`.
pub fn validate_arguments(tool: &ToolSpec, call: &ToolCall) -> Result<(), ValidationErrors> {
    validate(&tool.parameters, &call.arguments, "arguments")
}

/// Finds the tool the call names and validates the arguments against it.
pub fn validate_call<'t>(tools: &'t [ToolSpec], call: &ToolCall) -> Result<&'t ToolSpec, CallValidationError> {
    let Some(tool) = tools.iter().find(|t| t.name == call.name) else {
        let available = tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ");
        return Err(CallValidationError::UnknownFunction { name: call.name.clone(), available });
    };
    validate_arguments(tool, call)
        .map_err(|errors| CallValidationError::InvalidArguments { name: call.name.clone(), errors })?;
    Ok(tool)
}

fn collect(schema: &Value, instance: &Value, path: &str, depth: usize) -> Vec<SchemaError> {
    let mut v = Validator { errors: Vec::new() };
    v.check(schema, instance, path, depth);
    v.errors
}

struct Validator {
    errors: Vec<SchemaError>,
}

impl Validator {
    fn push(&mut self, path: &str, kind: SchemaErrorKind) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(SchemaError { path: path.to_owned(), kind });
        }
    }

    fn full(&self) -> bool {
        self.errors.len() >= MAX_ERRORS
    }

    fn check(&mut self, schema: &Value, inst: &Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            self.push(path, SchemaErrorKind::TooDeep);
            return;
        }
        let s = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return self.push(path, SchemaErrorKind::Forbidden),
            Value::Object(s) => s,
            other => {
                let msg = format!("a schema must be an object or boolean, got {}", type_name(other));
                return self.push(path, SchemaErrorKind::InvalidSchema(msg));
            }
        };
        if !self.check_type(s, inst, path) {
            // Further keywords would only repeat the type error.
            return;
        }
        self.check_enum_const(s, inst, path);
        match inst {
            Value::Number(n) => self.check_number(s, n, path),
            Value::String(st) => self.check_string(s, st, path),
            Value::Array(items) => self.check_array(s, items, path, depth),
            Value::Object(map) => self.check_object(s, map, path, depth),
            Value::Null | Value::Bool(_) => {}
        }
        self.check_combinators(s, inst, path, depth);
    }

    /// Checks `type`; returns whether the value's type is acceptable.
    fn check_type(&mut self, s: &Map<String, Value>, inst: &Value, path: &str) -> bool {
        let Some(t) = s.get("type") else { return true };
        let names: Vec<&str> = match t {
            Value::String(name) => vec![name.as_str()],
            Value::Array(list) => {
                let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                if names.len() != list.len() {
                    let msg = String::from("`type` array must contain only strings");
                    self.push(path, SchemaErrorKind::InvalidSchema(msg));
                    return true;
                }
                names
            }
            other => {
                let msg = format!("`type` must be a string or array, got {}", type_name(other));
                self.push(path, SchemaErrorKind::InvalidSchema(msg));
                return true;
            }
        };
        let mut ok = s.get("nullable") == Some(&Value::Bool(true)) && inst.is_null();
        for name in &names {
            match type_matches(name, inst) {
                Some(true) => ok = true,
                Some(false) => {}
                None => {
                    let msg = format!("unknown type {name:?}");
                    self.push(path, SchemaErrorKind::InvalidSchema(msg));
                    return true;
                }
            }
        }
        if !ok {
            self.push(path, SchemaErrorKind::TypeMismatch { expected: names.join(" or "), got: type_name(inst) });
        }
        ok
    }

    fn check_enum_const(&mut self, s: &Map<String, Value>, inst: &Value, path: &str) {
        match s.get("enum") {
            None => {}
            Some(Value::Array(allowed)) if !allowed.iter().any(|a| json_eq(a, inst)) => {
                let kind = SchemaErrorKind::NotInEnum { allowed: render_list(allowed), got: render(inst) };
                self.push(path, kind);
            }
            Some(Value::Array(_)) => {}
            Some(other) => {
                let msg = format!("`enum` must be an array, got {}", type_name(other));
                self.push(path, SchemaErrorKind::InvalidSchema(msg));
            }
        }
        if let Some(c) = s.get("const")
            && !json_eq(c, inst)
        {
            let kind = SchemaErrorKind::ConstMismatch { expected: render(c), got: render(inst) };
            self.push(path, kind);
        }
    }

    fn check_number(&mut self, s: &Map<String, Value>, n: &Number, path: &str) {
        let Some(x) = n.as_f64() else { return };
        let got = n.to_string();
        let draft4_excl = |key: &str| s.get(key) == Some(&Value::Bool(true));
        let bounds: [(&str, bool, bool); 4] = [
            // (keyword, is lower bound, exclusive)
            ("minimum", true, draft4_excl("exclusiveMinimum")),
            ("maximum", false, draft4_excl("exclusiveMaximum")),
            ("exclusiveMinimum", true, true),
            ("exclusiveMaximum", false, true),
        ];
        for (key, lower, exclusive) in bounds {
            let bound = match s.get(key) {
                None | Some(Value::Bool(_)) => continue,
                Some(Value::Number(b)) => b,
                Some(other) => {
                    let msg = format!("`{key}` must be a number, got {}", type_name(other));
                    self.push(path, SchemaErrorKind::InvalidSchema(msg));
                    continue;
                }
            };
            let Some(b) = bound.as_f64() else { continue };
            let ok = match (lower, exclusive) {
                (true, false) => x >= b,
                (true, true) => x > b,
                (false, false) => x <= b,
                (false, true) => x < b,
            };
            if !ok {
                let op = match (lower, exclusive) {
                    (true, false) => ">=",
                    (true, true) => ">",
                    (false, false) => "<=",
                    (false, true) => "<",
                };
                let kind = SchemaErrorKind::OutOfRange { constraint: format!("{op} {bound}"), got: got.clone() };
                self.push(path, kind);
            }
        }
    }

    fn check_string(&mut self, s: &Map<String, Value>, st: &str, path: &str) {
        let len = st.chars().count();
        if let Some(min) = self.count_keyword(s, "minLength", path)
            && (len as u64) < min
        {
            self.push(path, SchemaErrorKind::TooShort { min, got: len });
        }
        if let Some(max) = self.count_keyword(s, "maxLength", path)
            && (len as u64) > max
        {
            self.push(path, SchemaErrorKind::TooLong { max, got: len });
        }
    }

    fn check_array(&mut self, s: &Map<String, Value>, items: &[Value], path: &str, depth: usize) {
        let n = items.len();
        if let Some(min) = self.count_keyword(s, "minItems", path)
            && (n as u64) < min
        {
            self.push(path, SchemaErrorKind::TooFewItems { min, got: n });
        }
        if let Some(max) = self.count_keyword(s, "maxItems", path)
            && (n as u64) > max
        {
            self.push(path, SchemaErrorKind::TooManyItems { max, got: n });
        }
        if s.get("uniqueItems") == Some(&Value::Bool(true))
            && let Some((first, second)) = first_duplicate(items)
        {
            self.push(path, SchemaErrorKind::DuplicateItems { first, second });
        }
        // Positional schemas: `prefixItems`, or draft-4 style `items: [..]`.
        let (positional, rest): (&[Value], Option<&Value>) = match (s.get("prefixItems"), s.get("items")) {
            (Some(Value::Array(p)), items_schema) => (p.as_slice(), items_schema),
            (_, Some(Value::Array(p))) => (p.as_slice(), s.get("additionalItems")),
            (_, items_schema) => (&[], items_schema),
        };
        for (i, item) in items.iter().enumerate() {
            if self.full() {
                return;
            }
            let sub = positional.get(i).or(rest);
            if let Some(sub) = sub {
                self.check(sub, item, &push_index(path, i), depth + 1);
            }
        }
    }

    fn check_object(&mut self, s: &Map<String, Value>, map: &Map<String, Value>, path: &str, depth: usize) {
        let props = match s.get("properties") {
            None => None,
            Some(Value::Object(p)) => Some(p),
            Some(other) => {
                let msg = format!("`properties` must be an object, got {}", type_name(other));
                self.push(path, SchemaErrorKind::InvalidSchema(msg));
                None
            }
        };
        match s.get("required") {
            None => {}
            Some(Value::Array(req)) => {
                for name in req.iter().filter_map(Value::as_str) {
                    if !map.contains_key(name) {
                        self.push(&push_key(path, name), SchemaErrorKind::MissingProperty);
                    }
                }
            }
            Some(other) => {
                let msg = format!("`required` must be an array, got {}", type_name(other));
                self.push(path, SchemaErrorKind::InvalidSchema(msg));
            }
        }
        let additional = s.get("additionalProperties");
        for (key, value) in map {
            if self.full() {
                return;
            }
            let child = push_key(path, key);
            match props.and_then(|p| p.get(key)) {
                Some(sub) => self.check(sub, value, &child, depth + 1),
                None => match additional {
                    None | Some(Value::Bool(true)) => {}
                    Some(Value::Bool(false)) => self.push(&child, SchemaErrorKind::UnexpectedProperty),
                    Some(sub) => self.check(sub, value, &child, depth + 1),
                },
            }
        }
    }

    fn check_combinators(&mut self, s: &Map<String, Value>, inst: &Value, path: &str, depth: usize) {
        if let Some(all) = self.schema_list(s, "allOf", path) {
            for sub in all {
                self.check(sub, inst, path, depth + 1);
            }
        }
        for keyword in ["anyOf", "oneOf"] {
            let Some(alts) = self.schema_list(s, keyword, path) else {
                continue;
            };
            if alts.is_empty() {
                continue;
            }
            let results: Vec<Vec<SchemaError>> = alts.iter().map(|sub| collect(sub, inst, path, depth + 1)).collect();
            let matched = results.iter().filter(|r| r.is_empty()).count();
            if matched == 0 {
                let closest = results.iter().min_by_key(|r| r.len()).and_then(|r| r.first()).map(ToString::to_string);
                let kind = SchemaErrorKind::NoAlternative { keyword, count: alts.len(), closest };
                self.push(path, kind);
            } else if keyword == "oneOf" && matched > 1 {
                self.push(path, SchemaErrorKind::AmbiguousOneOf { matched });
            }
        }
    }

    fn schema_list<'s>(&mut self, s: &'s Map<String, Value>, keyword: &str, path: &str) -> Option<&'s [Value]> {
        match s.get(keyword)? {
            Value::Array(list) => Some(list.as_slice()),
            other => {
                let msg = format!("`{keyword}` must be an array, got {}", type_name(other));
                self.push(path, SchemaErrorKind::InvalidSchema(msg));
                None
            }
        }
    }

    /// Reads a non-negative integer keyword such as `minItems`.
    fn count_keyword(&mut self, s: &Map<String, Value>, keyword: &str, path: &str) -> Option<u64> {
        let v = s.get(keyword)?;
        let count = match v {
            Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19).map(|f| f as u64)),
            _ => None,
        };
        if count.is_none() {
            let msg = format!("`{keyword}` must be a non-negative integer, got {}", render(v));
            self.push(path, SchemaErrorKind::InvalidSchema(msg));
        }
        count
    }
}

/// The first pair of equal items (numbers compared by value), in O(n log n).
fn first_duplicate(items: &[Value]) -> Option<(usize, usize)> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let key = canonical_key(item);
        if let Some(&first) = seen.get(&key) {
            return Some((first, i));
        }
        seen.insert(key, i);
    }
    None
}

/// A string equal for two values exactly when they are equal as JSON values.
fn canonical_key(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out, 0);
    out
}

fn write_canonical(v: &Value, out: &mut String, depth: usize) {
    if depth > MAX_DEPTH {
        out.push('…');
        return;
    }
    match v {
        // Integers and integral floats share a key: 1 and 1.0 are equal.
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (None, None, Some(f)) if is_integral(n) && f.abs() < 1.0e19 => {
                out.push_str(&(f as i128).to_string());
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for item in items {
                write_canonical(item, out, depth + 1);
                out.push(',');
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for k in keys {
                out.push_str(&render_key(k));
                out.push(':');
                if let Some(val) = map.get(k) {
                    write_canonical(val, out, depth + 1);
                }
                out.push(',');
            }
            out.push('}');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap_or_default()),
    }
}

fn render_key(k: &str) -> String {
    serde_json::to_string(k).unwrap_or_default()
}

/// Whether `inst` has the named type; `None` for an unknown type name.
fn type_matches(name: &str, inst: &Value) -> Option<bool> {
    Some(match name {
        "null" => inst.is_null(),
        "boolean" => inst.is_boolean(),
        "string" => inst.is_string(),
        "number" | "float" => inst.is_number(),
        "integer" => inst.as_number().is_some_and(is_integral),
        "array" | "tuple" | "list" => inst.is_array(),
        "object" | "dict" => inst.is_object(),
        "any" => true,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errs(schema: Value, inst: Value) -> Vec<String> {
        match validate(&schema, &inst, "arguments") {
            Ok(()) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn type_names_and_aliases() {
        assert!(errs(json!({"type": "integer"}), json!(3)).is_empty());
        assert!(errs(json!({"type": "integer"}), json!(3.0)).is_empty());
        assert_eq!(errs(json!({"type": "integer"}), json!(3.5)), ["arguments: expected integer, got number"]);
        assert!(errs(json!({"type": "number"}), json!(3)).is_empty());
        assert!(errs(json!({"type": "float"}), json!(3)).is_empty());
        assert!(errs(json!({"type": "dict"}), json!({})).is_empty());
        assert!(errs(json!({"type": "tuple"}), json!([1])).is_empty());
        assert!(errs(json!({"type": "any"}), json!(null)).is_empty());
        assert!(errs(json!({"type": ["string", "null"]}), json!(null)).is_empty());
        assert_eq!(
            errs(json!({"type": ["string", "null"]}), json!(1)),
            ["arguments: expected string or null, got integer"]
        );
        assert!(errs(json!({"type": "string", "nullable": true}), json!(null)).is_empty());
        assert_eq!(errs(json!({"type": "strin"}), json!("x")), ["arguments: invalid schema: unknown type \"strin\""]);
    }

    #[test]
    fn boolean_schemas() {
        assert!(errs(json!(true), json!(1)).is_empty());
        assert_eq!(errs(json!(false), json!(1)), ["arguments: no value is allowed here"]);
        assert_eq!(
            errs(json!(3), json!(1)),
            ["arguments: invalid schema: a schema must be an object or boolean, got integer"]
        );
    }

    #[test]
    fn exclusive_bounds_both_drafts() {
        let d4 = json!({"minimum": 0, "exclusiveMinimum": true});
        assert_eq!(errs(d4.clone(), json!(0)), ["arguments: expected a number > 0, got 0"]);
        assert!(errs(d4, json!(0.1)).is_empty());
        let d6 = json!({"exclusiveMaximum": 10});
        assert_eq!(errs(d6, json!(10)), ["arguments: expected a number < 10, got 10"]);
    }

    #[test]
    fn unique_items_and_positional() {
        assert_eq!(
            errs(json!({"uniqueItems": true}), json!([1, 2, 1.0])),
            ["arguments: items must be unique (items 0 and 2 are equal)"]
        );
        let tuple = json!({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false});
        assert!(errs(tuple.clone(), json!(["a", 1])).is_empty());
        assert_eq!(errs(tuple, json!(["a", 1, 2])), ["arguments[2]: no value is allowed here"]);
    }

    #[test]
    fn unique_items_canonical_keys() {
        let u = json!({"uniqueItems": true});
        assert!(errs(u.clone(), json!([{"a": 1, "b": 2}, {"a": 1, "b": 3}, "1", 1])).is_empty());
        assert_eq!(
            errs(u.clone(), json!([{"b": [2.0], "a": 1}, {"a": 1.0, "b": [2]}])),
            ["arguments: items must be unique (items 0 and 1 are equal)"]
        );
        assert_eq!(
            errs(u.clone(), json!([1e16, 10000000000000000u64])),
            ["arguments: items must be unique (items 0 and 1 are equal)"]
        );
        let many: Vec<Value> = (0..100_000).map(|i| json!(i)).collect();
        assert!(errs(u, Value::Array(many)).is_empty());
    }

    #[test]
    fn error_count_is_bounded() {
        let big: Vec<Value> = (0..500).map(|_| json!("x")).collect();
        let e = errs(json!({"items": {"type": "integer"}}), Value::Array(big));
        assert_eq!(e.len(), MAX_ERRORS);
    }
}
