//! Agreement of the math verifier with a labelled cases file, per category:
//! `cargo run --release -p envhub-sdk --example math_eval -- CASES.jsonl [-v]`.
//! Each line is `{"gold", "completion", "expected", "category"}`; `-v` lists
//! the disagreements.

use std::collections::BTreeMap;

use envhub_sdk::verify::math::{MathConfig, verify};
use serde_json::Value;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.iter().find(|a| !a.starts_with('-')) else {
        eprintln!("usage: math_eval CASES.jsonl [-v]");
        std::process::exit(2);
    };
    let verbose = args.iter().any(|a| a == "-v");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let cfg = MathConfig::default();
    let mut by_category: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        let (gold, completion) = (case["gold"].as_str().unwrap_or(""), case["completion"].as_str().unwrap_or(""));
        let expected = case["expected"].as_bool().unwrap_or(false);
        let v = verify(gold, completion, &cfg);
        let entry = by_category.entry(case["category"].as_str().unwrap_or("").to_owned()).or_default();
        entry.1 += 1;
        if v.correct == expected {
            entry.0 += 1;
        } else if verbose {
            println!(
                "line {} [{}] gold={gold:?} completion={:?} extracted={:?} expected={expected} got {:?}",
                i + 1,
                case["category"].as_str().unwrap_or(""),
                completion.chars().take(160).collect::<String>(),
                v.extracted.as_ref().map(|e| &e.text),
                v.reason
            );
        }
    }
    let (mut agree, mut total) = (0, 0);
    for (category, (a, n)) in &by_category {
        println!("{category:<50} {a:>4}/{n:<4}");
        agree += a;
        total += n;
    }
    println!("{:<50} {agree:>4}/{total:<4} = {:.4}", "all", agree as f64 / total.max(1) as f64);
}
