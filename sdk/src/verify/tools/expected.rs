//! Expected calls in BFCL "possible answer" form.
//!
//! A BFCL ground-truth entry is a list of single-key objects
//! `{"func_name": {"arg": [allowed values...], ...}}`. Each argument maps to the list of
//! values accepted for it; an empty string `""` in that list marks the argument optional.
//! Inside an allowed value, a nested object is itself a pattern whose members map to
//! allowed-value lists (BFCL's format for dict arguments).

use std::collections::BTreeMap;

use serde_json::Value;
use thiserror::Error;

use super::json::type_name;

/// One expected call: the function name and, for each argument, its allowed values.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedCall {
    /// Expected function name.
    pub name: String,
    /// Allowed values per argument; a list containing `""` marks the argument optional.
    pub args: BTreeMap<String, Vec<Value>>,
}

/// Why a ground-truth value could not be read as [`ExpectedCall`]s.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExpectedError {
    /// The ground truth is not an array of calls.
    #[error("ground truth must be an array of calls, got {0}")]
    NotAnArray(&'static str),
    /// An expected call is not an object.
    #[error("expected call must be an object `{{\"func\": {{...}}}}`, got {0}")]
    NotAnObject(&'static str),
    /// An expected call object does not have exactly one key (the function name).
    #[error("expected call must have exactly one function name, found {0}")]
    NotSingleFunction(usize),
    /// The arguments of an expected call are not an object.
    #[error("arguments of expected call `{function}` must be an object, got {got}")]
    ArgsNotObject {
        /// The function.
        function: String,
        /// The JSON type found.
        got: &'static str,
    },
    /// An argument's allowed values are not a list.
    #[error("allowed values for `{function}.{arg}` must be an array, got {got}")]
    AllowedNotArray {
        /// The function.
        function: String,
        /// The argument.
        arg: String,
        /// The JSON type found.
        got: &'static str,
    },
}

impl ExpectedCall {
    /// Reads one `{"func_name": {"arg": [allowed...]}}` object.
    pub fn from_bfcl(v: &Value) -> Result<Self, ExpectedError> {
        let Value::Object(outer) = v else {
            return Err(ExpectedError::NotAnObject(type_name(v)));
        };
        let mut entries = outer.iter();
        let (Some((name, args)), None) = (entries.next(), entries.next()) else {
            return Err(ExpectedError::NotSingleFunction(outer.len()));
        };
        let Value::Object(args) = args else {
            return Err(ExpectedError::ArgsNotObject { function: name.clone(), got: type_name(args) });
        };
        let mut allowed = BTreeMap::new();
        for (arg, values) in args {
            let Value::Array(values) = values else {
                return Err(ExpectedError::AllowedNotArray {
                    function: name.clone(),
                    arg: arg.clone(),
                    got: type_name(values),
                });
            };
            allowed.insert(arg.clone(), values.clone());
        }
        Ok(Self { name: name.clone(), args: allowed })
    }

    /// Reads a BFCL `ground_truth` array.
    pub fn list_from_bfcl(v: &Value) -> Result<Vec<Self>, ExpectedError> {
        let Value::Array(items) = v else {
            return Err(ExpectedError::NotAnArray(type_name(v)));
        };
        items.iter().map(Self::from_bfcl).collect()
    }

    /// Whether the argument may be omitted (its allowed list contains `""`, or it is unknown).
    pub fn is_optional(&self, arg: &str) -> bool {
        self.args.get(arg).is_none_or(|allowed| allows_omission(allowed))
    }
}

/// Whether an allowed-value list contains the "may be omitted" marker `""`.
pub(crate) fn allows_omission(allowed: &[Value]) -> bool {
    allowed.iter().any(|v| v.as_str() == Some(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_ground_truth() {
        let gt = json!([{"calc_area": {"base": [10], "height": [5], "unit": ["units", ""]}}]);
        let calls = ExpectedCall::list_from_bfcl(&gt).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "calc_area");
        assert!(calls[0].is_optional("unit"));
        assert!(!calls[0].is_optional("base"));
    }

    #[test]
    fn rejects_malformed_ground_truth() {
        assert_eq!(ExpectedCall::list_from_bfcl(&json!({})), Err(ExpectedError::NotAnArray("object")));
        assert_eq!(ExpectedCall::from_bfcl(&json!({"a": {}, "b": {}})), Err(ExpectedError::NotSingleFunction(2)));
        assert_eq!(ExpectedCall::from_bfcl(&json!({})), Err(ExpectedError::NotSingleFunction(0)));
        assert!(matches!(ExpectedCall::from_bfcl(&json!({"f": {"x": 1}})), Err(ExpectedError::AllowedNotArray { .. })));
        assert!(matches!(ExpectedCall::from_bfcl(&json!({"f": []})), Err(ExpectedError::ArgsNotObject { .. })));
    }
}
