//! Integration tests for `envhub_sdk::verify::tools`: parsing, schema validation,
//! BFCL-style matching, the BFCL loader and robustness against garbage input.

use envhub_sdk::verify::tools::bfcl::{self, BfclEntry, BfclError};
use envhub_sdk::verify::tools::{
    CallErrorKind, CallFormat, CallValidationError, ExpectedCall, MatchOptions, MessageError, Mismatch, ParseOptions,
    SchemaErrorKind, ToolCall, ToolSpec, match_call, match_calls, parse_message, parse_text, validate,
    validate_arguments, validate_call,
};
use serde_json::{Value, json};

const QUESTIONS: &str = include_str!("data/bfcl_questions.jsonl");
const ANSWERS: &str = include_str!("data/bfcl_possible_answers.jsonl");

fn opts() -> ParseOptions {
    ParseOptions::default()
}

fn fixture(id: &str) -> BfclEntry {
    bfcl::parse_jsonl(QUESTIONS, ANSWERS)
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("fixture {id} missing"))
}

fn call(name: &str, args: Value) -> ToolCall {
    ToolCall::new(name, args)
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

mod parsing {
    use super::*;

    #[test]
    fn openai_string_arguments() {
        let msg = json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": "call_abc",
                "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 3}"}
            }]
        });
        let turn = parse_message(&msg, &opts()).unwrap();
        assert_eq!(turn.format, Some(CallFormat::OpenAi));
        let calls = turn.into_calls().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].id.as_deref(), Some("call_abc"));
        assert_eq!(calls[0].name, "get_weather");
        assert_eq!(calls[0].arguments, json!({"city": "Paris", "days": 3}));
    }

    #[test]
    fn openai_object_arguments_and_empty_arguments() {
        let msg = json!({
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": "a", "arguments": {"x": [1, 2]}}},
                {"id": "2", "type": "function", "function": {"name": "b", "arguments": ""}},
                {"id": "3", "type": "function", "function": {"name": "c"}}
            ]
        });
        let turn = parse_message(&msg, &opts()).unwrap();
        assert_eq!(turn.content, "Checking.");
        let calls = turn.into_calls().unwrap();
        assert_eq!(calls[0].arguments, json!({"x": [1, 2]}));
        assert_eq!(calls[1].arguments, json!({}));
        assert_eq!(calls[2].arguments, json!({}));
    }

    #[test]
    fn openai_bad_call_is_reported_with_its_index() {
        let msg = json!({
            "role": "assistant",
            "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
                {"id": "2", "type": "function", "function": {"name": "b", "arguments": "{\"x\": 1,"}},
                {"id": "3", "type": "function", "function": {"arguments": "{}"}},
                {"id": "4", "type": "function", "function": {"name": "d", "arguments": "[1]"}},
                {"id": "5", "type": "code_interpreter", "function": {"name": "e"}},
                "nonsense"
            ]
        });
        let turn = parse_message(&msg, &opts()).unwrap();
        assert_eq!(turn.ok_calls().count(), 1);
        let errors: Vec<_> = turn.errors().collect();
        assert_eq!(errors.len(), 5);
        assert_eq!(errors[0].index, 1);
        assert!(matches!(errors[0].kind, CallErrorKind::InvalidArgumentsJson(_)));
        assert!(errors[0].to_string().starts_with("call 2: arguments are not valid JSON"), "{}", errors[0]);
        assert_eq!(errors[1].kind, CallErrorKind::MissingName);
        assert_eq!(errors[2].kind, CallErrorKind::ArgumentsNotObject("array"));
        assert_eq!(errors[3].kind, CallErrorKind::UnsupportedType("code_interpreter".into()));
        assert_eq!(errors[4].kind, CallErrorKind::NotAnObject("string"));
    }

    #[test]
    fn openai_legacy_function_call_and_content_parts() {
        let msg = json!({
            "role": "assistant",
            "content": [{"type": "text", "text": "Sure"}, {"type": "image_url", "image_url": {}}],
            "function_call": {"name": "f", "arguments": "{\"a\": true}"}
        });
        let turn = parse_message(&msg, &opts()).unwrap();
        assert_eq!(turn.content, "Sure");
        assert_eq!(turn.into_calls().unwrap()[0].arguments, json!({"a": true}));
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        assert_eq!(parse_message(&json!("hi"), &opts()), Err(MessageError::NotAnObject("string")));
        assert_eq!(
            parse_message(&json!({"role": "assistant", "tool_calls": {}}), &opts()),
            Err(MessageError::ToolCallsNotArray("object"))
        );
        assert_eq!(
            parse_message(&json!({"role": "assistant", "content": 5}), &opts()),
            Err(MessageError::InvalidContent("integer"))
        );
    }

    #[test]
    fn message_without_tool_calls_parses_text_content() {
        let msg = json!({
            "role": "assistant",
            "content": "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>",
            "tool_calls": []
        });
        let turn = parse_message(&msg, &opts()).unwrap();
        assert_eq!(turn.format, Some(CallFormat::Hermes));
        assert_eq!(turn.ok_calls().count(), 1);
    }

    #[test]
    fn hermes_multiple_calls_with_fences_and_parameters_key() {
        let text = "I'll look both up.\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n\
                    <tool_call>\n```json\n{\n  \"name\": \"get_weather\",\n  \"parameters\": {\"city\": \"Tokyo\"}\n}\n```\n</tool_call>\n\
                    <tool_call>{\"name\":\"get_time\",\"arguments\":\"{\\\"tz\\\": \\\"UTC\\\"}\"}</tool_call>";
        let turn = parse_text(text, &opts());
        assert_eq!(turn.format, Some(CallFormat::Hermes));
        assert_eq!(turn.content, "I'll look both up.");
        let calls = turn.into_calls().unwrap();
        let got: Vec<(&str, &Value)> = calls.iter().map(|c| (c.name.as_str(), &c.arguments)).collect();
        assert_eq!(
            got,
            [
                ("get_weather", &json!({"city": "Paris"})),
                ("get_weather", &json!({"city": "Tokyo"})),
                ("get_time", &json!({"tz": "UTC"})),
            ]
        );
    }

    #[test]
    fn hermes_unterminated_tag() {
        let text = "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"b\", \"arguments\": {}}";
        let turn = parse_text(text, &opts());
        assert_eq!(turn.calls.len(), 2);
        assert_eq!(turn.calls[0].as_ref().map(|c| c.name.as_str()), Ok("a"));
        let err = turn.calls[1].as_ref().unwrap_err();
        assert_eq!(err.index, 1);
        assert_eq!(err.kind, CallErrorKind::UnterminatedTag);
        assert_eq!(err.to_string(), "call 2: unterminated <tool_call> tag (missing </tool_call>)");
    }

    #[test]
    fn hermes_bad_json_in_one_call_keeps_the_others() {
        let text = "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\
                    <tool_call>{\"name\": \"b\", \"arguments\": {\"x\": }}</tool_call>\
                    <tool_call>   </tool_call>\
                    <tool_call>{\"arguments\": {}}</tool_call>";
        let turn = parse_text(text, &opts());
        assert_eq!(turn.calls.len(), 4);
        assert!(turn.calls[0].is_ok());
        let e1 = turn.calls[1].as_ref().unwrap_err();
        assert!(matches!(e1.kind, CallErrorKind::InvalidJson(_)));
        assert!(e1.to_string().starts_with("call 2: invalid JSON: "), "{e1}");
        assert_eq!(turn.calls[2].as_ref().unwrap_err().kind, CallErrorKind::EmptyTag);
        assert_eq!(turn.calls[3].as_ref().unwrap_err().kind, CallErrorKind::MissingName);
        let errs = turn.into_calls().unwrap_err();
        assert_eq!(errs.len(), 3);
    }

    #[test]
    fn no_calls_in_plain_text() {
        for text in ["", "The answer is 42.", "Use {braces} freely.", "[1] a citation", "```python\nprint('hi')\n```"] {
            let turn = parse_text(text, &opts());
            assert!(turn.has_no_calls(), "{text:?}");
            assert_eq!(turn.format, None);
            assert_eq!(turn.content, text.trim());
        }
    }

    #[test]
    fn json_fence_fallback() {
        let text = "Calling now:\n```json\n[{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"parameters\": {}}]\n```\nDone.";
        let turn = parse_text(text, &opts());
        assert_eq!(turn.format, Some(CallFormat::JsonFence));
        assert_eq!(turn.content, "Calling now:\n\nDone.");
        let names: Vec<_> = turn.ok_calls().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);

        let broken = "```json\n{\"name\": \"a\", \"arguments\": {\n```";
        let turn = parse_text(broken, &opts());
        assert!(matches!(turn.calls[0].as_ref().unwrap_err().kind, CallErrorKind::InvalidJson(_)));

        let off = ParseOptions { json_fence_fallback: false, ..opts() };
        assert!(parse_text(text, &off).has_no_calls());
    }

    #[test]
    fn bare_json_fallback() {
        let turn =
            parse_text("  {\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": \"{}\"}}  ", &opts());
        assert_eq!(turn.format, Some(CallFormat::BareJson));
        assert_eq!(turn.ok_calls().next().map(|c| c.name.as_str()), Some("f"));
        assert!(parse_text("{\"temperature\": 3}", &opts()).has_no_calls());
    }
}

// ---------------------------------------------------------------------------------------
// Schema validation
// ---------------------------------------------------------------------------------------

mod schema {
    use super::*;

    fn errors(schema: Value, args: Value) -> Vec<String> {
        match validate(&schema, &args, "arguments") {
            Ok(()) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    fn weather_tool() -> ToolSpec {
        ToolSpec::from_json(&json!({
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "minLength": 1},
                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                        "days": {"type": "integer", "minimum": 1, "maximum": 14}
                    },
                    "required": ["city"],
                    "additionalProperties": false
                }
            }
        }))
        .unwrap()
    }

    #[test]
    fn enum_message_matches_spec_example() {
        let tool = weather_tool();
        let err =
            validate_arguments(&tool, &call("get_weather", json!({"city": "Oslo", "unit": "kelvin"}))).unwrap_err();
        assert_eq!(err.to_string(), "arguments.unit: expected one of [\"celsius\",\"fahrenheit\"], got \"kelvin\"");
    }

    #[test]
    fn valid_arguments_pass() {
        let tool = weather_tool();
        let ok = call("get_weather", json!({"city": "Oslo", "unit": "celsius", "days": 3}));
        assert_eq!(validate_arguments(&tool, &ok), Ok(()));
        assert_eq!(validate_call(&[tool], &ok).map(|t| t.name.as_str()), Ok("get_weather"));
    }

    #[test]
    fn validate_call_reports_unknown_function_and_all_errors() {
        let tools = [weather_tool()];
        assert_eq!(
            validate_call(&tools, &call("get_wether", json!({}))).unwrap_err(),
            CallValidationError::UnknownFunction { name: "get_wether".into(), available: "get_weather".into() }
        );
        let err = validate_call(&tools, &call("get_weather", json!({"days": 0, "extra": 1}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid arguments for `get_weather`: arguments.city: missing required property; \
             arguments.days: expected a number >= 1, got 0; \
             arguments.extra: unexpected property (not in schema)"
        );
    }

    #[test]
    fn type_keyword() {
        assert_eq!(errors(json!({"type": "object"}), json!([])), ["arguments: expected object, got array"]);
        assert_eq!(
            errors(json!({"properties": {"n": {"type": "integer"}}}), json!({"n": 1.5})),
            ["arguments.n: expected integer, got number"]
        );
        assert!(errors(json!({"properties": {"n": {"type": "number"}}}), json!({"n": 2})).is_empty());
        assert!(errors(json!({"type": ["integer", "null"]}), json!(null)).is_empty());
        assert_eq!(errors(json!({"type": "null"}), json!(false)), ["arguments: expected null, got boolean"]);
        assert_eq!(errors(json!({"type": "boolean"}), json!("true")), ["arguments: expected boolean, got string"]);
    }

    #[test]
    fn const_keyword() {
        assert!(errors(json!({"const": 2}), json!(2.0)).is_empty());
        assert_eq!(errors(json!({"const": "v1"}), json!("v2")), ["arguments: expected \"v1\", got \"v2\""]);
    }

    #[test]
    fn required_and_additional_properties() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "required": ["a", "b c"],
            "additionalProperties": {"type": "integer"}
        });
        assert_eq!(
            errors(schema, json!({"x": 1, "y": "no"})),
            [
                "arguments.a: missing required property",
                "arguments[\"b c\"]: missing required property",
                "arguments.y: expected integer, got string",
            ]
        );
    }

    #[test]
    fn items_and_nested_paths() {
        let schema = json!({
            "type": "object",
            "properties": {
                "orders": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {
                        "type": "object",
                        "properties": {
                            "sku": {"type": "string", "maxLength": 4},
                            "qty": {"type": "integer", "exclusiveMinimum": 0},
                            "ship": {
                                "type": "object",
                                "properties": {"city": {"type": "string"}},
                                "required": ["city"]
                            }
                        },
                        "required": ["sku"]
                    }
                }
            }
        });
        assert_eq!(
            errors(
                schema.clone(),
                json!({"orders": [{"sku": "A1"}, {"sku": "TOOLONG", "qty": 0, "ship": {"city": 7}}]})
            ),
            [
                "arguments.orders[1].qty: expected a number > 0, got 0",
                "arguments.orders[1].ship.city: expected string, got integer",
                "arguments.orders[1].sku: expected at most 4 characters, got 7",
            ]
        );
        assert_eq!(
            errors(schema.clone(), json!({"orders": []})),
            ["arguments.orders: expected at least 1 items, got 0"]
        );
        assert_eq!(
            errors(schema, json!({"orders": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}, {"sku": "d"}]})),
            ["arguments.orders: expected at most 3 items, got 4"]
        );
    }

    #[test]
    fn numeric_bounds() {
        let s = json!({"minimum": 1, "maximum": 10});
        assert!(errors(s.clone(), json!(1)).is_empty());
        assert!(errors(s.clone(), json!(10.0)).is_empty());
        assert_eq!(errors(s.clone(), json!(0.5)), ["arguments: expected a number >= 1, got 0.5"]);
        assert_eq!(errors(s, json!(11)), ["arguments: expected a number <= 10, got 11"]);
        assert_eq!(errors(json!({"exclusiveMaximum": 5}), json!(5)), ["arguments: expected a number < 5, got 5"]);
        // Bounds do not apply to non-numbers.
        assert!(errors(json!({"minimum": 3}), json!("a")).is_empty());
    }

    #[test]
    fn string_lengths_count_characters() {
        let s = json!({"type": "string", "minLength": 2, "maxLength": 3});
        assert!(errors(s.clone(), json!("éé")).is_empty());
        assert_eq!(errors(s.clone(), json!("é")), ["arguments: expected at least 2 characters, got 1"]);
        assert_eq!(errors(s, json!("abcd")), ["arguments: expected at most 3 characters, got 4"]);
    }

    #[test]
    fn pattern_is_ignored() {
        assert!(errors(json!({"type": "string", "pattern": "^[0-9]+$"}), json!("abc")).is_empty());
    }

    #[test]
    fn any_of_one_of_all_of() {
        let any = json!({"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]});
        assert!(errors(any.clone(), json!("x")).is_empty());
        assert!(errors(any.clone(), json!(3)).is_empty());
        assert_eq!(
            errors(any, json!(-1)),
            ["arguments: matched none of the 2 anyOf alternatives (closest: arguments: expected string, got integer)"]
        );
        let one = json!({"oneOf": [{"type": "integer"}, {"type": "number"}]});
        assert!(errors(one.clone(), json!(1.5)).is_empty());
        assert_eq!(errors(one, json!(1)), ["arguments: matched 2 oneOf alternatives, expected exactly one"]);
        let all = json!({"allOf": [{"minimum": 0}, {"maximum": 5}]});
        assert_eq!(errors(all, json!(6)), ["arguments: expected a number <= 5, got 6"]);
    }

    #[test]
    fn bfcl_type_aliases() {
        let entry = fixture("simple_2");
        let tool = &entry.tools[0];
        let ok = call(
            "restaurant.book_table",
            json!({"location": {"city": "SF"}, "party_size": 4, "features": ["parking"]}),
        );
        assert_eq!(validate_arguments(tool, &ok), Ok(()));
        let bad = call(
            "restaurant.book_table",
            json!({"location": {"radius_km": "far"}, "party_size": 4, "features": ["pool"]}),
        );
        let err = validate_arguments(tool, &bad).unwrap_err();
        let kinds: Vec<(&str, &SchemaErrorKind)> = err.0.iter().map(|e| (e.path.as_str(), &e.kind)).collect();
        assert_eq!(kinds.len(), 3, "{err}");
        assert_eq!(kinds[0].0, "arguments.features[0]");
        assert_eq!(kinds[1], ("arguments.location.city", &SchemaErrorKind::MissingProperty));
        assert_eq!(kinds[2].0, "arguments.location.radius_km");
    }
}

// ---------------------------------------------------------------------------------------
// BFCL-style matching
// ---------------------------------------------------------------------------------------

mod matching {
    use super::*;

    fn check(entry: &BfclEntry, calls: &[ToolCall]) -> Result<(), Mismatch> {
        match_calls(calls, &entry.expected, &entry.tools, &MatchOptions::default())
    }

    #[test]
    fn simple_exact_and_optional_args() {
        let e = fixture("simple_0");
        assert_eq!(check(&e, &[call("calc_area", json!({"base": 10, "height": 5}))]), Ok(()));
        assert_eq!(check(&e, &[call("calc_area", json!({"base": 10, "height": 5, "unit": "Units"}))]), Ok(()));
    }

    #[test]
    fn missing_required_arg() {
        let e = fixture("simple_0");
        let err = check(&e, &[call("calc_area", json!({"base": 10}))]).unwrap_err();
        assert_eq!(err, Mismatch::MissingRequiredArg { function: "calc_area".into(), path: "arguments.height".into() });
        // Required by the ground truth even when the spec does not say so.
        let expected = [ExpectedCall::from_bfcl(&json!({"f": {"a": [1], "b": [2, ""]}})).unwrap()];
        let err = match_calls(&[call("f", json!({"b": 2}))], &expected, &[], &MatchOptions::default()).unwrap_err();
        assert!(matches!(err, Mismatch::MissingRequiredArg { ref path, .. } if path == "arguments.a"));
    }

    #[test]
    fn unexpected_arg() {
        let e = fixture("simple_0");
        let err = check(&e, &[call("calc_area", json!({"base": 10, "height": 5, "color": "red"}))]).unwrap_err();
        assert_eq!(err.to_string(), "`calc_area`: unexpected argument arguments.color");
    }

    #[test]
    fn value_not_allowed_with_path() {
        let e = fixture("simple_0");
        let err = check(&e, &[call("calc_area", json!({"base": 12, "height": 5}))]).unwrap_err();
        assert_eq!(
            err,
            Mismatch::ValueNotAllowed {
                function: "calc_area".into(),
                path: "arguments.base".into(),
                got: json!(12),
                allowed: vec![json!(10)],
            }
        );
        let err = check(&e, &[call("calc_area", json!({"base": 10, "height": 5, "unit": "cm"}))]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`calc_area`: arguments.unit: value \"cm\" is not among the allowed values [\"units\"]"
        );
    }

    #[test]
    fn int_accepted_for_float_but_not_float_for_int() {
        let e = fixture("simple_1");
        let opts = MatchOptions { dots_to_underscores: true, ..MatchOptions::default() };
        // y is a float param given as integer 6; expected 6.0.
        let calls = [call("math.hypot", json!({"x": 4.5, "y": 6}))];
        assert_eq!(match_calls(&calls, &e.expected, &e.tools, &opts), Ok(()));
        // base is an integer param; 10.0 is a type error, as in BFCL.
        let e0 = fixture("simple_0");
        let err = check(&e0, &[call("calc_area", json!({"base": 10.0, "height": 5}))]).unwrap_err();
        assert_eq!(
            err,
            Mismatch::WrongType {
                function: "calc_area".into(),
                path: "arguments.base".into(),
                expected: "integer".into(),
                got: "number",
            }
        );
        let lax = MatchOptions { check_types: false, ..MatchOptions::default() };
        let calls = [call("calc_area", json!({"base": 10.0, "height": 5}))];
        assert_eq!(match_calls(&calls, &e0.expected, &e0.tools, &lax), Ok(()));
    }

    #[test]
    fn dots_to_underscores_option() {
        let e = fixture("simple_1");
        let calls = [call("math_hypot", json!({"x": 4.5, "y": 6.0}))];
        assert!(matches!(check(&e, &calls), Err(Mismatch::WrongFunction { .. })));
        let opts = MatchOptions { dots_to_underscores: true, ..MatchOptions::default() };
        assert_eq!(match_calls(&calls, &e.expected, &e.tools, &opts), Ok(()));
    }

    #[test]
    fn string_normalisation() {
        let e = fixture("parallel_0");
        let calls = [
            call("get_current_weather", json!({"location": "boston,ma", "unit": "Fahrenheit"})),
            call("get_current_weather", json!({"location": "san francisco ca"})),
        ];
        assert_eq!(check(&e, &calls), Ok(()));
    }

    #[test]
    fn multiple_picks_one_function() {
        let e = fixture("multiple_0");
        assert_eq!(check(&e, &[call("get_stock_price", json!({"company": "AAPL"}))]), Ok(()));
        let err = check(
            &e,
            &[call("currency_exchange.convert", json!({"amount": 1, "from_currency": "USD", "to_currency": "EUR"}))],
        )
        .unwrap_err();
        assert_eq!(
            err,
            Mismatch::WrongFunction { expected: "get_stock_price".into(), got: "currency_exchange.convert".into() }
        );
    }

    #[test]
    fn parallel_in_any_order() {
        let e = fixture("parallel_0");
        let boston = call("get_current_weather", json!({"location": "Boston, MA", "unit": "fahrenheit"}));
        let sf = call("get_current_weather", json!({"location": "San Francisco, CA", "unit": "fahrenheit"}));
        assert_eq!(check(&e, &[boston.clone(), sf.clone()]), Ok(()));
        assert_eq!(check(&e, &[sf.clone(), boston.clone()]), Ok(()));
        // The same call twice cannot satisfy two different expected calls.
        let err = check(&e, &[boston.clone(), boston.clone()]).unwrap_err();
        match err {
            Mismatch::NoMatch { index, function, reason } => {
                assert_eq!(index, 1);
                assert_eq!(function, "get_current_weather");
                assert!(matches!(*reason, Mismatch::ValueNotAllowed { ref path, .. } if path == "arguments.location"));
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn parallel_multiple_and_list_values() {
        let e = fixture("parallel_multiple_0");
        let add = call("math.add", json!({"a": 3, "b": 7}));
        let sum = call("math.sum_list", json!({"numbers": [1, 2, 3.5]}));
        assert_eq!(check(&e, &[sum.clone(), add.clone()]), Ok(()));
        // Lists are ordered.
        let unordered = call("math.sum_list", json!({"numbers": [3.5, 2, 1]}));
        let err = check(&e, &[add.clone(), unordered]).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "expected call 2 (`math.sum_list`) matched no model call: `math.sum_list`: arguments.numbers[0]"
            ),
            "{err}"
        );
        // A missing function is reported as such.
        let err = check(&e, &[add.clone(), call("math.add", json!({"a": 3, "b": 7}))]).unwrap_err();
        assert!(
            matches!(err, Mismatch::NoMatch { ref reason, .. } if matches!(**reason, Mismatch::WrongFunction { .. }))
        );
    }

    #[test]
    fn wrong_count() {
        let e = fixture("parallel_0");
        let one = [call("get_current_weather", json!({"location": "Boston"}))];
        assert_eq!(check(&e, &one), Err(Mismatch::WrongCount { expected: 2, got: 1 }));
        assert_eq!(
            match_calls(&one, &[], &[], &MatchOptions::default()),
            Err(Mismatch::WrongCount { expected: 0, got: 1 })
        );
        assert_eq!(match_calls(&[], &[], &[], &MatchOptions::default()), Ok(()));
    }

    #[test]
    fn dict_args_recursive() {
        let e = fixture("simple_2");
        let ok = call(
            "restaurant.book_table",
            json!({"location": {"city": "San Francisco"}, "party_size": 4, "features": ["Outdoor Seating", "parking"]}),
        );
        assert_eq!(check(&e, &[ok]), Ok(()));
        let extra_key = call(
            "restaurant.book_table",
            json!({"location": {"city": "SF", "country": "US"}, "party_size": 4, "features": ["outdoor seating", "parking"]}),
        );
        assert_eq!(
            check(&e, &[extra_key]).unwrap_err().to_string(),
            "`restaurant.book_table`: unexpected argument arguments.location.country"
        );
        let wrong_radius = call(
            "restaurant.book_table",
            json!({"location": {"city": "SF", "radius_km": 9}, "party_size": 4, "features": ["outdoor seating", "parking"]}),
        );
        assert!(matches!(
            check(&e, &[wrong_radius]),
            Err(Mismatch::ValueNotAllowed { ref path, .. }) if path == "arguments.location.radius_km"
        ));
    }

    #[test]
    fn arguments_must_be_an_object() {
        let e = fixture("simple_0");
        let err = check(&e, &[call("calc_area", json!([10, 5]))]).unwrap_err();
        assert_eq!(err, Mismatch::ArgumentsNotObject { function: "calc_area".into(), got: "array" });
    }

    #[test]
    fn match_call_directly() {
        let e = fixture("simple_0");
        assert_eq!(
            match_call(
                &call("calc_area", json!({"base": 10, "height": 5})),
                &e.expected[0],
                &[],
                &MatchOptions::default()
            ),
            Ok(())
        );
    }
}

// ---------------------------------------------------------------------------------------
// BFCL loader
// ---------------------------------------------------------------------------------------

mod loader {
    use super::*;

    #[test]
    fn parse_entry_turns_a_pair_into_messages_tools_expected() {
        let q = QUESTIONS.lines().next().unwrap();
        let a = ANSWERS.lines().next().unwrap();
        let entry = bfcl::parse_entry_str(q, a).unwrap();
        assert_eq!(entry.id, "simple_0");
        assert_eq!(entry.messages.len(), 1);
        assert_eq!(entry.messages[0].role, "user");
        assert!(entry.messages[0].content.contains("triangle"));
        assert_eq!(entry.tools.len(), 1);
        assert_eq!(entry.tools[0].name, "calc_area");
        assert_eq!(entry.tools[0].required(), ["base", "height"]);
        assert_eq!(entry.expected.len(), 1);
        assert_eq!(entry.expected[0].name, "calc_area");
        assert_eq!(entry.expected[0].args["unit"], [json!("units"), json!("")]);
        assert!(entry.expected[0].is_optional("unit"));

        let same = bfcl::parse_entry(&serde_json::from_str(q).unwrap(), &serde_json::from_str(a).unwrap()).unwrap();
        assert_eq!(same, entry);
    }

    #[test]
    fn all_fixtures_load() {
        let entries: Vec<_> = bfcl::parse_jsonl(QUESTIONS, ANSWERS).into_iter().collect::<Result<_, _>>().unwrap();
        let ids: Vec<_> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["simple_0", "simple_1", "simple_2", "multiple_0", "parallel_0", "parallel_multiple_0"]);
        let pm = &entries[5];
        assert_eq!(pm.messages[0].role, "system");
        assert_eq!(pm.tools.len(), 2);
        assert_eq!(pm.expected.len(), 2);
    }

    #[test]
    fn loader_errors_are_typed() {
        let q = QUESTIONS.lines().next().unwrap();
        assert!(matches!(bfcl::parse_entry_str(q, "{"), Err(BfclError::Json(_))));
        assert_eq!(bfcl::parse_entry_str(q, r#"{"id": "simple_0"}"#), Err(BfclError::MissingField("ground_truth")));
        assert!(matches!(
            bfcl::parse_entry_str(q, r#"{"id": "simple_0", "ground_truth": {"f": {}}}"#),
            Err(BfclError::GroundTruth(_))
        ));
        assert!(matches!(
            bfcl::parse_entry_str(
                r#"{"id": "x", "question": [[]], "function": [{"name": 1}]}"#,
                r#"{"id": "x", "ground_truth": []}"#
            ),
            Err(BfclError::Tool { index: 0, .. })
        ));
        let results = bfcl::parse_jsonl(QUESTIONS, "");
        assert!(results.iter().all(|r| r == &Err(BfclError::MissingField("ground_truth"))));
    }

    /// The whole flow an environment runs: prompt from BFCL, reply in Hermes format,
    /// parse, validate, match.
    #[test]
    fn end_to_end_hermes_reply() {
        let entry = fixture("parallel_0");
        let reply = "<tool_call>\n{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"San Francisco, CA\", \"unit\": \"fahrenheit\"}}\n</tool_call>\n\
                     <tool_call>\n{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Boston, MA\", \"unit\": \"fahrenheit\"}}\n</tool_call>";
        let calls = parse_text(reply, &opts()).into_calls().unwrap();
        for c in &calls {
            validate_call(&entry.tools, c).unwrap();
        }
        assert_eq!(match_calls(&calls, &entry.expected, &entry.tools, &MatchOptions::default()), Ok(()));
    }
}

// ---------------------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------------------

mod garbage {
    use super::*;

    /// Small deterministic xorshift generator, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    const TOKENS: &[&str] = &[
        "<tool_call>",
        "</tool_call>",
        "<tool_call",
        "tool_call>",
        "{",
        "}",
        "[",
        "]",
        "\"",
        "\\",
        ":",
        ",",
        "\"name\"",
        "\"arguments\"",
        "\"parameters\"",
        "\"function\"",
        "\"f\"",
        "```",
        "```json\n",
        "\n",
        " ",
        "1",
        "-1e999",
        "1e400",
        "null",
        "true",
        "é",
        "😀",
        "\u{0}",
        "''",
        "\"{\\\"a\\\":1}\"",
    ];

    fn garbage_text(rng: &mut Rng) -> String {
        let n = rng.below(40);
        (0..n).map(|_| *rng.pick(TOKENS)).collect()
    }

    const KEYS: &[&str] = &[
        "type",
        "properties",
        "required",
        "items",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "anyOf",
        "oneOf",
        "allOf",
        "additionalProperties",
        "prefixItems",
        "uniqueItems",
        "nullable",
        "name",
        "arguments",
        "function",
        "parameters",
        "id",
        "question",
        "ground_truth",
        "role",
        "content",
        "tool_calls",
        "a",
        "",
    ];
    const STRINGS: &[&str] = &[
        "",
        "object",
        "string",
        "integer",
        "number",
        "float",
        "dict",
        "array",
        "tuple",
        "any",
        "null",
        "boolean",
        "function",
        "f",
        "user",
        "{\"a\":1}",
        "{",
        "<tool_call>",
    ];

    fn garbage_value(rng: &mut Rng, depth: usize) -> Value {
        let choice = if depth > 4 { rng.below(5) } else { rng.below(8) };
        match choice {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => json!(rng.next() as i64 % 20 - 5),
            3 => json!((rng.next() % 1000) as f64 / 7.0 - 50.0),
            4 => Value::String((*rng.pick(STRINGS)).to_owned()),
            5 | 6 => {
                let mut map = serde_json::Map::new();
                for _ in 0..rng.below(5) {
                    map.insert((*rng.pick(KEYS)).to_owned(), garbage_value(rng, depth + 1));
                }
                Value::Object(map)
            }
            _ => Value::Array((0..rng.below(4)).map(|_| garbage_value(rng, depth + 1)).collect()),
        }
    }

    #[test]
    fn garbage_text_never_panics() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let all_off = ParseOptions { hermes_tags: false, json_fence_fallback: false, bare_json_fallback: false };
        for _ in 0..3000 {
            let text = garbage_text(&mut rng);
            let turn = parse_text(&text, &opts());
            for e in turn.errors() {
                let _ = e.to_string();
            }
            let _ = parse_text(&text, &all_off);
            let _ = parse_message(&json!({"role": "assistant", "content": text}), &opts());
            let _ = bfcl::parse_entry_str(&text, &text);
        }
    }

    #[test]
    fn garbage_values_never_panic() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let tools: Vec<ToolSpec> =
            (0..40).filter_map(|_| ToolSpec::from_json(&garbage_value(&mut rng, 0)).ok()).collect();
        for _ in 0..3000 {
            let a = garbage_value(&mut rng, 0);
            let b = garbage_value(&mut rng, 0);
            if let Err(e) = validate(&a, &b, "arguments") {
                let _ = e.to_string();
            }
            let _ = parse_message(&a, &opts());
            let _ = ToolSpec::from_json(&a);
            let _ = bfcl::parse_entry(&a, &b);
            let expected: Vec<ExpectedCall> = match ExpectedCall::list_from_bfcl(&b) {
                Ok(list) => list,
                Err(_) => {
                    let name = rng.pick(&["f", "a", ""]).to_string();
                    vec![ExpectedCall { name, args: [("a".to_owned(), vec![b.clone(), json!("")])].into() }]
                }
            };
            let calls: Vec<ToolCall> = (0..expected.len())
                .map(|_| ToolCall::new(*rng.pick(&["f", "a", ""]), garbage_value(&mut rng, 0)))
                .collect();
            let tool_slice = &tools[..rng.below(tools.len() + 1)];
            if let Err(m) = match_calls(&calls, &expected, tool_slice, &MatchOptions::default()) {
                let _ = m.to_string();
            }
            let schema_tool = ToolSpec::new("f", None, a.clone());
            let _ = validate_call(&[schema_tool], &call("f", b.clone()));
        }
    }

    #[test]
    fn deep_nesting_never_panics() {
        let deep_text = format!("<tool_call>{}</tool_call>", "[".repeat(10_000));
        let turn = parse_text(&deep_text, &opts());
        assert!(matches!(turn.calls[0].as_ref().unwrap_err().kind, CallErrorKind::InvalidJson(_)));

        // A value deeper than the parser would accept, built by hand.
        let mut v = json!(1);
        for _ in 0..300 {
            v = json!({"a": [v]});
        }
        let mut schema = json!({"type": "integer"});
        for _ in 0..300 {
            schema = json!({"type": "object", "properties": {"a": {"type": "array", "items": schema}}});
        }
        let err = validate(&schema, &v, "arguments").unwrap_err();
        assert!(err.0.iter().any(|e| e.kind == SchemaErrorKind::TooDeep));
        let expected = [ExpectedCall { name: "f".into(), args: [("a".to_owned(), vec![v.clone()])].into() }];
        let _ = match_calls(&[call("f", json!({"a": v.clone()}))], &expected, &[], &MatchOptions::default());
    }
}
