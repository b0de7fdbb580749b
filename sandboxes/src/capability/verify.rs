//! envhub's verifiers as pure host functions for Python environments:
//! `math.verify`, `math.extract` (capability `verify:math`), `tools.parse`
//! and `tools.match` (capability `verify:tools`). A Python guest asks for
//! them by replay (see `envhub/_host.py` in the Python guest SDK): each is a
//! pure function of its JSON arguments, so a replayed run sees the same
//! answers on every machine.

use envhub_sdk::verify::math::{MathConfig, VerdictReason, extract_answer, verify};
use envhub_sdk::verify::tools::{
    ExpectedCall, MatchOptions, ParseOptions, ToolCall, ToolSpec, match_calls, parse_message,
};
use serde_json::{Value, json};

/// The capability each host function needs.
pub(crate) fn capability_of(name: &str) -> Option<&'static str> {
    match name {
        "math.verify" | "math.extract" => Some("verify:math"),
        "tools.parse" | "tools.match" => Some("verify:tools"),
        _ => None,
    }
}

fn text(args: &Value, field: &str) -> Result<String, String> {
    args.get(field).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| format!("`{field}` must be a string"))
}

fn math_config(args: &Value) -> Result<MathConfig, String> {
    let mut cfg = MathConfig::default();
    if let Some(options) = args.get("config").and_then(Value::as_object) {
        for (key, value) in options {
            match (key.as_str(), value) {
                ("last_number_fallback", Value::Bool(b)) => cfg.last_number_fallback = *b,
                ("percent_matches_fraction", Value::Bool(b)) => cfg.percent_matches_fraction = *b,
                ("gold_decimal_rounding", Value::Bool(b)) => cfg.gold_decimal_rounding = *b,
                _ => {
                    return Err(format!(
                        "unknown math option `{key}`; options: last_number_fallback, percent_matches_fraction, gold_decimal_rounding (booleans)"
                    ));
                }
            }
        }
    }
    Ok(cfg)
}

/// Answers host function `name` on `args`; a bad argument is an `Err`
/// message the guest sees as an exception.
pub(crate) fn call(name: &str, args: &Value) -> Result<Value, String> {
    match name {
        "math.verify" => {
            let cfg = math_config(args)?;
            let v = verify(&text(args, "gold")?, &text(args, "completion")?, &cfg);
            let verdict = match v.reason {
                VerdictReason::NoAnswer => "no_answer".to_owned(),
                VerdictReason::Compared(eq) => format!("{eq:?}").to_ascii_lowercase(),
            };
            Ok(json!({
                "correct": v.correct,
                "extracted": v.extracted.as_ref().map(|e| e.text.clone()),
                "source": v.extracted.as_ref().map(|e| format!("{:?}", e.source)),
                "verdict": verdict,
            }))
        }
        "math.extract" => {
            let e = extract_answer(&text(args, "completion")?, &MathConfig::default());
            Ok(e.map_or(Value::Null, |e| Value::String(e.text)))
        }
        "tools.parse" => {
            let message = args.get("message").ok_or("`message` is missing")?;
            let turn = parse_message(message, &ParseOptions::default()).map_err(|e| e.to_string())?;
            let calls: Vec<Value> = turn
                .calls
                .into_iter()
                .map(|c| match c {
                    Ok(call) => json!({ "name": call.name, "arguments": call.arguments }),
                    Err(e) => json!({ "error": e.to_string() }),
                })
                .collect();
            Ok(Value::Array(calls))
        }
        "tools.match" => {
            let expected = ExpectedCall::list_from_bfcl(args.get("expected").unwrap_or(&Value::Null))
                .map_err(|e| format!("`expected`: {e}"))?;
            let calls: Vec<ToolCall> = serde_json::from_value(args.get("calls").cloned().unwrap_or(Value::Null))
                .map_err(|e| format!("`calls` must be a list of {{\"name\", \"arguments\"}}: {e}"))?;
            let tools: Vec<ToolSpec> = match args.get("tools") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(specs)) => specs
                    .iter()
                    .map(ToolSpec::from_json)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("`tools`: {e}"))?,
                Some(_) => return Err("`tools` must be a list of tool specs".into()),
            };
            Ok(match match_calls(&calls, &expected, &tools, &MatchOptions::default()) {
                Ok(()) => json!({ "matched": true, "reason": null }),
                Err(m) => json!({ "matched": false, "reason": m.to_string() }),
            })
        }
        other => Err(format!("no host function `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_answer_in_json() {
        let v = call("math.verify", &json!({"gold": "1/2", "completion": "so \\boxed{0.5}"})).expect("verify");
        assert_eq!((v["correct"].clone(), v["extracted"].clone()), (json!(true), json!("0.5")));
        assert_eq!(call("math.extract", &json!({"completion": "#### 7"})).expect("extract"), json!("7"));
        let calls = call("tools.parse", &json!({"message": {"role": "assistant", "content": "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": 1}}</tool_call>"}}))
            .expect("parse");
        assert_eq!(calls, json!([{"name": "f", "arguments": {"x": 1}}]));
        let m = call(
            "tools.match",
            &json!({"expected": [{"f": {"x": [1]}}], "calls": [{"name": "f", "arguments": {"x": 1}}]}),
        )
        .expect("match");
        assert_eq!(m["matched"], json!(true));
        assert!(call("math.verify", &json!({"gold": 1})).is_err());
        assert!(call("math.verify", &json!({"gold": "1", "completion": "1", "config": {"nope": true}})).is_err());
        assert!(call("net.fetch", &json!({})).is_err());
        assert_eq!(capability_of("tools.match"), Some("verify:tools"));
    }
}
