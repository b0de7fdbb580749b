//! Small JSON helpers shared by the parser, the schema validator and the matcher:
//! type names, numeric equality, path building and bounded value rendering.

use serde_json::{Number, Value};

/// Maximum nesting depth the validator and matcher descend into before giving up.
///
/// `serde_json` already refuses to parse documents nested deeper than 128 levels; this
/// bound also protects against deep values built programmatically.
pub(crate) const MAX_DEPTH: usize = 100;

/// Longest rendering of a value inside an error message, in characters.
const MAX_RENDER_CHARS: usize = 160;

/// JSON Schema style name of a value's type (`"integer"` for integral numbers stored as integers).
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The number as an exact integer, if it is stored as one.
fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
}

/// Numeric equality across integer and float representations (`1 == 1.0`).
pub(crate) fn numbers_equal(a: &Number, b: &Number) -> bool {
    if let (Some(x), Some(y)) = (as_i128(a), as_i128(b)) {
        return x == y;
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Whether a number is mathematically an integer (`3` or `3.0`).
pub(crate) fn is_integral(n: &Number) -> bool {
    if as_i128(n).is_some() {
        return true;
    }
    n.as_f64().is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

/// Structural JSON equality in which numbers compare by value (`1 == 1.0`).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    json_eq_at(a, b, 0)
}

fn json_eq_at(a: &Value, b: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| json_eq_at(p, q, depth + 1))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq_at(v, w, depth + 1)))
        }
        _ => a == b,
    }
}

/// Compact JSON rendering of a value for error messages, truncated to a bounded length.
pub(crate) fn render(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_else(|_| String::from("<unprintable>"));
    truncate(s)
}

/// Renders a list of values as a JSON array, truncated to a bounded length.
pub(crate) fn render_list(vs: &[Value]) -> String {
    let mut out = String::from("[");
    for (i, v) in vs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(v).unwrap_or_else(|_| String::from("?")));
        if out.chars().count() > MAX_RENDER_CHARS {
            break;
        }
    }
    out.push(']');
    truncate(out)
}

/// Truncates a string to [`MAX_RENDER_CHARS`] characters, marking the cut with an ellipsis.
pub(crate) fn truncate(s: String) -> String {
    match s.char_indices().nth(MAX_RENDER_CHARS) {
        Some((cut, _)) => {
            let mut t = s[..cut].to_owned();
            t.push('…');
            t
        }
        None => s,
    }
}

/// Appends an object key to a path: `.key` for identifier-like keys, `["k e y"]` otherwise.
pub(crate) fn push_key(path: &str, key: &str) -> String {
    let ident = !key.is_empty()
        && key.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if ident {
        format!("{path}.{key}")
    } else {
        let quoted = serde_json::to_string(key).unwrap_or_else(|_| String::from("\"?\""));
        format!("{path}[{quoted}]")
    }
}

/// Appends an array index to a path: `path[3]`.
pub(crate) fn push_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_across_representations() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!json_eq(&json!(1), &json!(1.5)));
        assert!(!json_eq(&json!(1), &json!("1")));
        assert!(json_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!json_eq(&json!(-1), &json!(u64::MAX)));
    }

    #[test]
    fn integral_detection() {
        assert!(is_integral(json!(3).as_number().unwrap()));
        assert!(is_integral(json!(3.0).as_number().unwrap()));
        assert!(!is_integral(json!(3.5).as_number().unwrap()));
    }

    #[test]
    fn paths_quote_odd_keys() {
        assert_eq!(push_key("arguments", "unit"), "arguments.unit");
        assert_eq!(push_key("arguments", "a b"), "arguments[\"a b\"]");
        assert_eq!(push_key("arguments", "1x"), "arguments[\"1x\"]");
        assert_eq!(push_index("arguments.xs", 2), "arguments.xs[2]");
    }

    #[test]
    fn render_truncates_on_char_boundary() {
        let long = "é".repeat(500);
        let r = render(&Value::String(long));
        assert!(r.ends_with('…'));
        assert_eq!(r.chars().count(), MAX_RENDER_CHARS + 1);
    }
}
