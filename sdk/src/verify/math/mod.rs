//! Math answer verification: extract a final answer from a model completion
//! and decide whether it equals a reference ("gold") answer.
//!
//! Pipeline: [`extract_answer`] finds the answer text (last `\boxed{}`,
//! GSM8K `#### N`, "final answer is …", "answer: …", optionally the last
//! number); the text is normalised (delimiters, `\left`/`\right`, `\dfrac`,
//! text wrappers, units, digit grouping, degree signs, unicode symbols),
//! parsed into a small answer tree, and compared.
//!
//! Values are compared exactly where possible: big rationals, and sums of
//! terms `rational · π^k · e^j · x^n · √(square-free)`, which is a canonical
//! form (so `\sqrt8 = 2\sqrt2`, `1/\sqrt3 = \sqrt3/3`, `2x+2 = 2(x+1)`).
//! Anything else (trigonometry, logarithms, cube roots of non-cubes, division
//! by sums) is compared numerically with a *relative* tolerance only, so tiny
//! values are never rounded to zero (`10^{-20} ≠ 0`, `1/2004! ≠ 1/2006!`).
//! Every computation runs under a [`Budget`] of steps, bits, terms and
//! nesting depth; nothing uses threads, signals, clocks or files.
//!
//! Documented decisions on ambiguous inputs:
//! * Decimals are exact: `0.5 = \frac12`, but an answer `0.333` is not `\frac13`.
//!   A decimal *gold* with at least two significant digits is taken as
//!   rounded: a non-decimal answer matches it when it rounds to the gold at
//!   the gold's precision (gold `0.67` accepts `\frac23`, not `0.666`).
//!   Irrational golds accept decimal answers only within `rel_tolerance`.
//! * Percent: `p\%` matches both `p` and `p/100` (gold `0.5` accepts `50\%`,
//!   gold `50` accepts `50\%`), unless [`MathConfig::percent_matches_fraction`]
//!   is off, in which case `p\%` matches only `p`.
//! * `1,000` is one thousand only outside brackets, when every group after
//!   the first has exactly three digits, and when the gold is not itself a
//!   tuple, list, set or interval; otherwise commas separate items.
//! * Bare lists (`1, 2`, `x=1, x=2`) and `\{…\}` are unordered; parenthesised
//!   tuples are ordered. `(a, b)` also equals the open interval `(a, b)`.
//!   A bare list compared with a tuple is compared in order.
//! * `x = 5` equals `5`; generally a relation made of `=`/`≈`/`∈` stands for
//!   its last member when compared with a non-relation.
//! * Equations are equal up to rearrangement and non-zero scaling;
//!   inequalities up to rearrangement and positive scaling, and a
//!   one-variable inequality equals the matching interval.
//! * `a \pm b` is the set `{a+b, a-b}`. Mixed numbers: `2\frac12 = 5/2`.
//! * Degrees are dropped (`90^\circ = 90`); units and trailing words after a
//!   number are dropped (`12 cm = 12`).
//! * Column or row matrices equal tuples with the same entries.
//! * Text answers (words, or a whole `\text{…}`) compare case- and
//!   space-insensitively and never equal a mathematical answer.
//! * `\log` is the natural logarithm; `i` is an ordinary symbol.

mod equiv;
mod eval;
mod expr;
mod extract;
mod latex;
mod normalize;

use equiv::{Cmp, Cx};
use expr::Meter;
use serde::{Deserialize, Serialize};

/// Internal failure of parsing or exact evaluation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MathError {
    /// The text is not a recognised answer.
    #[error("cannot parse answer: {0}")]
    Parse(String),
    /// A value exceeds the size budget.
    #[error("value exceeds the size budget")]
    TooLarge,
    /// The step budget is spent.
    #[error("step budget exhausted")]
    Budget,
    /// No exact representation; evaluate numerically instead.
    #[error("no exact representation")]
    NotExact,
}

/// Limits on the work done for one comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Abstract steps (roughly: arithmetic operations weighted by size).
    pub max_steps: u64,
    /// Largest numerator or denominator, in bits, of any exact value.
    pub max_bits: u64,
    /// Largest number of terms of any exact polynomial.
    pub max_terms: usize,
    /// Deepest nesting the parser accepts.
    pub max_depth: usize,
    /// Longest answer text (in characters) that is parsed.
    pub max_input_chars: usize,
    /// Largest number of elements of a set compared without regard to order.
    pub max_elements: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_steps: 2_000_000,
            max_bits: 1 << 17,
            max_terms: 512,
            max_depth: 64,
            max_input_chars: 4_000,
            max_elements: 64,
        }
    }
}

/// Which extraction counts as "the requested form" for a format reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnswerForm {
    /// The answer must be in `\boxed{}` (or `\fbox{}`).
    Boxed,
    /// The answer must follow `####`.
    Gsm8k,
    /// Any extraction counts.
    Any,
}

/// Settings for extraction and comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MathConfig {
    /// Fall back to the last number in the completion when nothing else is found.
    pub last_number_fallback: bool,
    /// Relative tolerance for numeric (non-exact) comparison.
    pub rel_tolerance: f64,
    /// Treat a decimal gold with ≥ 2 significant digits as rounded (see module docs).
    pub gold_decimal_rounding: bool,
    /// Let `p\%` also match `p/100`, not only `p`.
    pub percent_matches_fraction: bool,
    /// The form that [`Verdict::in_requested_form`] checks for.
    pub requested_form: AnswerForm,
    /// Work limits.
    pub budget: Budget,
}

impl Default for MathConfig {
    fn default() -> Self {
        MathConfig {
            last_number_fallback: true,
            rel_tolerance: 1e-9,
            gold_decimal_rounding: true,
            percent_matches_fraction: true,
            requested_form: AnswerForm::Boxed,
            budget: Budget::default(),
        }
    }
}

/// Where an extracted answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtractSource {
    /// The last `\boxed{…}` or `\fbox{…}`.
    Boxed,
    /// Text after `####`.
    Gsm8k,
    /// "The final answer is …".
    FinalAnswerPhrase,
    /// "Answer: …" or "the answer is …".
    AnswerColon,
    /// The last number in the text (fallback).
    LastNumber,
}

/// An answer found in a completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extracted {
    /// The answer text as written (delimiters removed).
    pub text: String,
    /// How it was found.
    pub source: ExtractSource,
}

/// Which input could not be understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// The reference answer.
    Gold,
    /// The model's answer.
    Answer,
}

/// Result of comparing two answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Equivalence {
    /// The answers are equal.
    Equal,
    /// The answers differ.
    NotEqual,
    /// A value or the work needed exceeded the [`Budget`]; treated as not equal.
    TooLarge,
    /// Numeric evaluation was undefined (e.g. division by zero, infinities).
    Indeterminate,
    /// One side could not be parsed (and the texts differ).
    Unparseable(Side),
}

impl Equivalence {
    /// Whether this counts as a match.
    pub fn is_equal(self) -> bool {
        self == Equivalence::Equal
    }
}

/// Why a verdict was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerdictReason {
    /// No answer could be extracted from the completion.
    NoAnswer,
    /// The extracted answer was compared with the gold.
    Compared(Equivalence),
}

/// Outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the completion's answer equals the gold.
    pub correct: bool,
    /// The extracted answer, if any.
    pub extracted: Option<Extracted>,
    /// Why.
    pub reason: VerdictReason,
    /// Whether the answer was given in [`MathConfig::requested_form`].
    pub in_requested_form: bool,
}

/// Find the final answer in a model completion.
pub fn extract_answer(completion: &str, cfg: &MathConfig) -> Option<Extracted> {
    extract::extract(completion, cfg.last_number_fallback)
        .map(|(text, source)| Extracted { text: normalize::strip_delims(&text), source })
}

/// The bare answer inside a gold string, which may be `\boxed{…}`, a GSM8K
/// solution ending in `#### N`, or the answer itself.
pub fn gold_text(gold: &str) -> String {
    if let Some(b) = extract::last_boxed(gold) {
        return b;
    }
    if let Some(g) = extract::gsm8k(gold) {
        return g;
    }
    gold.to_string()
}

/// Extract the answer from `completion` and compare it with `gold`.
pub fn verify(gold: &str, completion: &str, cfg: &MathConfig) -> Verdict {
    let Some(ex) = extract_answer(completion, cfg) else {
        return Verdict { correct: false, extracted: None, reason: VerdictReason::NoAnswer, in_requested_form: false };
    };
    let eq = equivalent(gold, &ex.text, cfg);
    let in_form = match cfg.requested_form {
        AnswerForm::Boxed => ex.source == ExtractSource::Boxed,
        AnswerForm::Gsm8k => ex.source == ExtractSource::Gsm8k,
        AnswerForm::Any => true,
    };
    Verdict {
        correct: eq.is_equal(),
        extracted: Some(ex),
        reason: VerdictReason::Compared(eq),
        in_requested_form: in_form,
    }
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Compare a gold answer with a bare answer (no extraction from prose; the
/// gold may still be wrapped in `\boxed{}` or follow `####`).
pub fn equivalent(gold: &str, answer: &str, cfg: &MathConfig) -> Equivalence {
    let gold = normalize::strip_delims(&gold_text(gold));
    let answer = normalize::strip_delims(answer);
    let b = &cfg.budget;
    if gold.chars().count() > b.max_input_chars || answer.chars().count() > b.max_input_chars {
        return Equivalence::TooLarge;
    }
    if normalize::is_text_answer(&gold) || normalize::is_text_answer(&answer) {
        let (kg, ka) = (normalize::text_key(&gold), normalize::text_key(&answer));
        return if !kg.is_empty() && kg == ka { Equivalence::Equal } else { Equivalence::NotEqual };
    }
    let gn = normalize::normalize(&gold);
    let an = normalize::normalize(&answer);
    let same_text = !gn.is_empty() && squash(&gn) == squash(&an);
    if same_text {
        return Equivalence::Equal;
    }
    let g = match latex::parse(&gn, true, b.max_depth, b.max_bits) {
        Ok(g) => g,
        Err(MathError::TooLarge) => return Equivalence::TooLarge,
        Err(_) => return Equivalence::Unparseable(Side::Gold),
    };
    let a = match latex::parse(&an, !g.is_collection(), b.max_depth, b.max_bits) {
        Ok(a) => a,
        Err(MathError::TooLarge) => return Equivalence::TooLarge,
        Err(_) => return Equivalence::Unparseable(Side::Answer),
    };
    let g = equiv::expand_pm(g);
    let a = equiv::expand_pm(a);
    let mut cx = Cx {
        m: Meter::new(b.max_steps, b.max_bits, b.max_terms),
        rel_tol: cfg.rel_tolerance,
        gold_rounding: cfg.gold_decimal_rounding,
        percent_fraction: cfg.percent_matches_fraction,
        max_elements: b.max_elements,
    };
    match cx.compare(&g, &a) {
        Cmp::Equal => Equivalence::Equal,
        Cmp::NotEqual => Equivalence::NotEqual,
        Cmp::TooLarge => Equivalence::TooLarge,
        Cmp::Indeterminate => Equivalence::Indeterminate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(g: &str, a: &str) -> Equivalence {
        equivalent(g, a, &MathConfig::default())
    }

    #[test]
    fn basics() {
        assert_eq!(eq("0.5", "\\frac12"), Equivalence::Equal);
        assert_eq!(eq("\\frac{\\sqrt3}{3}", "\\frac{1}{\\sqrt3}"), Equivalence::Equal);
        assert_eq!(eq("10^{-20}", "0"), Equivalence::NotEqual);
        assert_eq!(eq("(1,2]", "[1,2]"), Equivalence::NotEqual);
        assert_eq!(eq("y=2x+1", "2x-y+1=0"), Equivalence::Equal);
        assert_eq!(eq("\\text{Monday}", "monday"), Equivalence::Equal);
    }

    #[test]
    fn verdict_form() {
        let cfg = MathConfig::default();
        let v = verify("72", "blah\n#### 72", &cfg);
        assert!(v.correct);
        assert!(!v.in_requested_form);
        let v = verify("72", "so \\boxed{72}", &cfg);
        assert!(v.correct && v.in_requested_form);
        let v = verify("72", "no idea", &cfg);
        assert_eq!(v.reason, VerdictReason::NoAnswer);
    }
}
