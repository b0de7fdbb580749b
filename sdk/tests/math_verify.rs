//! Table-driven tests for `envhub_sdk::verify::math`.
//!
//! The cases live in `tests/data/math_cases.jsonl` (one JSON object per
//! line: `gold`, `completion`, `expected`, `category`), which is also the
//! input of `scripts/math_verify_peer.py`.

use envhub_sdk::verify::math::{
    Equivalence, ExtractSource, MathConfig, VerdictReason, equivalent, extract_answer, verify,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    gold: String,
    completion: String,
    expected: bool,
    category: String,
}

const CASES: &str = include_str!("data/math_cases.jsonl");

fn cases() -> Vec<Case> {
    CASES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1)))
        .collect()
}

#[test]
fn case_file_all_agree() {
    let cfg = MathConfig::default();
    let cases = cases();
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let v = verify(&c.gold, &c.completion, &cfg);
        if v.correct != c.expected {
            failures.push(format!(
                "line {} [{}] gold={:?} extracted={:?} expected={} got {:?}",
                i + 1,
                c.category,
                c.gold,
                v.extracted.as_ref().map(|e| &e.text),
                c.expected,
                v.reason
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases disagree:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn case_file_has_both_labels_per_category() {
    let cases = cases();
    let mut cats: Vec<&str> = cases.iter().map(|c| c.category.as_str()).collect();
    cats.sort_unstable();
    cats.dedup();
    assert!(cats.len() >= 20, "categories: {cats:?}");
    assert!(cases.iter().filter(|c| !c.expected).count() >= 60);
}

#[test]
fn verdict_fields() {
    let cfg = MathConfig::default();
    let v = verify("\\frac12", "so \\boxed{0.5}", &cfg);
    assert!(v.correct);
    assert!(v.in_requested_form);
    assert_eq!(v.reason, VerdictReason::Compared(Equivalence::Equal));
    assert_eq!(v.extracted.as_ref().map(|e| e.text.as_str()), Some("0.5"));

    let v = verify("12", "Answer: 12", &cfg);
    assert!(v.correct);
    assert!(!v.in_requested_form);

    let strict = MathConfig { last_number_fallback: false, ..MathConfig::default() };
    let v = verify("12", "it is 12", &strict);
    assert_eq!(v.reason, VerdictReason::NoAnswer);
    assert!(!v.correct);
}

#[test]
fn extraction_sources() {
    let cfg = MathConfig::default();
    let src = |s: &str| extract_answer(s, &cfg).map(|e| e.source);
    assert_eq!(src("x \\boxed{1}"), Some(ExtractSource::Boxed));
    assert_eq!(src("x\n#### 1"), Some(ExtractSource::Gsm8k));
    assert_eq!(src("The final answer is 3."), Some(ExtractSource::FinalAnswerPhrase));
    assert_eq!(src("Answer: 3"), Some(ExtractSource::AnswerColon));
    assert_eq!(src("we get 3 and 4"), Some(ExtractSource::LastNumber));
    assert_eq!(src("nothing"), None);
}

#[test]
fn huge_values_return_too_large_or_not_equal() {
    let cfg = MathConfig::default();
    let towers = [
        ("2^{2^{2^{2^{2^{2}}}}}", "1"),
        ("10^{10^{10}}", "10^{10^{10}}+1"),
        ("1000000!", "5"),
        ("1", "(10^{10^{10}})!"),
        ("9^{9^{9^{9}}}", "9^{9^{9^{8}}}"),
        ("2", "\\sqrt{10^{10^{10}}}"),
        ("x", "(x+1)^{100000}"),
        ("(1+\\sqrt{2})^{1000000}", "0"),
        ("\\binom{10^{9}}{5 \\cdot 10^{8}}", "1"),
        ("1e9999999", "1"),
    ];
    for (g, a) in towers {
        let r = equivalent(g, a, &cfg);
        assert!(
            matches!(r, Equivalence::TooLarge | Equivalence::NotEqual | Equivalence::Indeterminate),
            "{g} vs {a}: {r:?}"
        );
    }
}

/// Tiny deterministic generator (no dependencies, no clock).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[test]
fn garbage_never_panics() {
    let pieces = [
        "\\frac",
        "\\sqrt",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "\\{",
        "\\}",
        "^",
        "_",
        "!",
        "1",
        "0",
        "9",
        ".",
        ",",
        "x",
        "y",
        "e",
        "=",
        "<",
        "\\le",
        "-",
        "+",
        "\\pm",
        "\\cdot",
        "/",
        "%",
        "\\%",
        "\\boxed{",
        "####",
        "$",
        "\\text{",
        "\\begin{pmatrix}",
        "\\end{pmatrix}",
        "&",
        "\\\\",
        "\\infty",
        "\\pi",
        "\\cup",
        "|",
        "\\left",
        "\\right",
        " ",
        "é",
        "−",
        "√",
        "°",
        "\\sin",
        "\\log_",
        "10^{10^{",
        "!",
        "2^",
        "\\binom",
        "\\,",
        "{,}",
        "answer:",
        "cm",
        "\\",
        "'",
        "1,000",
        "\\mathbb",
        "R",
        "\\lfloor",
        "\u{0}",
        "😀",
    ];
    let cfg = MathConfig::default();
    let mut rng = Lcg(12345);
    for _ in 0..3000 {
        let len = (rng.next() % 24) as usize;
        let mut s = String::new();
        for _ in 0..len {
            s.push_str(pieces[(rng.next() as usize) % pieces.len()]);
        }
        let len2 = (rng.next() % 12) as usize;
        let mut t = String::new();
        for _ in 0..len2 {
            t.push_str(pieces[(rng.next() as usize) % pieces.len()]);
        }
        let _ = verify(&s, &t, &cfg);
        let _ = equivalent(&t, &s, &cfg);
        let _ = extract_answer(&s, &cfg);
    }
    // Raw bytes-ish strings, deep nesting and long inputs.
    let deep = "(".repeat(10_000) + &")".repeat(10_000);
    let _ = equivalent(&deep, "1", &cfg);
    let braces = "\\boxed{".repeat(5_000);
    let _ = verify("1", &braces, &cfg);
    let long = "1+".repeat(50_000) + "1";
    let _ = equivalent(&long, "1", &cfg);
    let minus = "-".repeat(20_000) + "1";
    let _ = equivalent(&minus, "1", &cfg);
    let fracs = "\\frac".repeat(3_000);
    let _ = equivalent(&fracs, "1", &cfg);
}

#[test]
fn hostile_completions_stay_linear() {
    // Many unclosed boxes and a very long completion: must finish promptly
    // (this would take minutes with a quadratic scan).
    let cfg = MathConfig::default();
    let s = "\\boxed{".repeat(200_000);
    let v = verify("1", &s, &cfg);
    assert!(!v.correct);
    let long = "word 1 ".repeat(200_000) + "\\boxed{2}";
    assert!(verify("2", &long, &cfg).correct);
}
