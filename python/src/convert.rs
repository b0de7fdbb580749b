//! Python values to the protocol's JSON types and back.

use envhub_sdk::Message;
use pyo3::prelude::*;
use pyo3::types::PyString;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::errors;

/// A Python object (dict, list, str, number, bool, None) as JSON.
pub fn to_json(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    pythonize::depythonize::<Value>(obj).map_err(|e| {
        errors::bad_argument(
            py,
            format!("{what} must be made of dicts, lists, strings, numbers, booleans and None: {e}"),
        )
    })
}

/// A JSON object from an optional Python dict (`None` is empty).
pub fn to_object(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Map<String, Value>> {
    match obj {
        None => Ok(Map::new()),
        Some(o) if o.is_none() => Ok(Map::new()),
        Some(o) => match to_json(py, o, what)? {
            Value::Object(map) => Ok(map),
            other => Err(errors::bad_argument(py, format!("{what} must be a dict, not {}", json_type(&other)))),
        },
    }
}

/// A Rust value as a Python object.
pub fn to_py<'py, T: Serialize + ?Sized>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "None",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a str",
        Value::Array(_) => "a list",
        Value::Object(_) => "a dict",
    }
}

/// An assistant turn from a string or an OpenAI assistant message dict
/// (read as [`Message::assistant_from_json`] reads it).
pub fn action(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Message> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Message::assistant(s.to_str()?));
    }
    let value = to_json(py, obj, "the action")?;
    Message::assistant_from_json(value).map_err(|e| errors::bad_argument(py, format!("the action: {e}")))
}
