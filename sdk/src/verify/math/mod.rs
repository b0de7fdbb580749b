//! Math answer verification: extract a final answer from a model completion
//! and decide whether it equals a reference ("gold") answer.
//!
//! Pipeline: [`extract_answer`] finds the answer text (see the extraction
//! order below); the text is normalised (delimiters, `\left`/`\right`,
//! `\dfrac`, text wrappers, units, digit grouping, degree signs, unicode
//! symbols), parsed into a small answer tree, and compared.
//!
//! Extraction, first match wins (only the text after the last `</think>` is
//! read when an answer is there):
//! 1. the last `\boxed{}`/`\fbox{}`, joined with the boxes just before it
//!    when only separators stand between them (`\boxed{1} and \boxed{2}` is
//!    the list `1, 2`; a gap with a sentence break or a retraction such as
//!    "wait" or "but" ends the answer at the last box) — unless a "final
//!    answer" or "answer is" phrase comes after the last box, which then wins;
//! 2. GSM8K's `#### N`;
//! 3. "the final answer is …", then "answer: …" / "the answer is …"; within
//!    the phrase a leading math span, else the value a sentence states
//!    ("The largest $n$ is 34" → 34), else for prose the last math span or
//!    number in it;
//! 4. the last math span `$…$`, `$$…$$`, `\(…\)`, `\[…\]` (inline spans do
//!    not cross lines; `\$` is a dollar sign) — unless a sentence of six or
//!    more words after it states a number, which then wins;
//! 5. the whole completion when it is one expression (`\frac{10}{9}`, `1 000`);
//! 6. optionally the last number (thousands groups, a leading `.5`, a decimal
//!    comma, `a/b`; digits glued to letters are not numbers, units are).
//!
//! A gold is read the same way when it is a whole solution (boxes, `####`,
//! "The final answer is …", or math spans joined by "or"/"and"). A gold that
//! is a choice letter (`B`, `(B)`, `\text{(B)}`) is matched against the
//! letter the completion's answer starts with (`(D) $\frac34$` is D), else
//! the last choice it marks; an answer naming two choices names none.
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
//! * Decimals are exact: `0.5 = \frac12`, but an answer `0.333` (or `0.3333`,
//!   `2.6667`) is not `\frac13` (`\frac83`). Only a decimal answer with
//!   [`MathConfig::answer_rounding_digits`] (15) or more significant digits
//!   is read as rounded, so a float printed at full precision matches the
//!   fraction it is (`0.0833333333333333 = \frac1{12}`).
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
//! * An answer `x = 5` equals `5`; an answer chain of `=`/`∈` stands for its
//!   last member before any `≈` (`x = 5+5+1 = 11` → 11, `p = \frac5{12}
//!   \approx 0.42` → 5/12). A gold relation stands for its last member only
//!   when what it names holds no number (`x = 5`, `(p,q) = (3,2)`,
//!   `\frac{NO}{BO} = \frac1{\sqrt6}`): a gold equation such as `2x + z = 1`
//!   or `7 = 11a + c` is never just `1` or `11a + c`. Chains naming a value by
//!   the same thing compare their values (`x = 11` vs `x = 5+5+1 = 11`).
//! * `a : b` is the ratio `a/b`. `p=5, q=2; p=7, q=2` is the list of tuples
//!   `(5,2), (7,2)`.
//! * A lone `1,22` (or `0,111`, `1000,99`) is a decimal comma unless the gold
//!   is a collection; `1,000` and `12,345` are thousands, `1, 22` a list.
//! * `a \le |q| \le b` is `q ∈ [-b,-a] ∪ [a,b]`; a union of finite sets is
//!   one set; sums and products of numeric matrices are worked out.
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
    /// Read a decimal *answer* with at least this many significant digits as
    /// rounded, so it matches an exact gold that rounds to it (see module
    /// docs); 0 turns this off.
    pub answer_rounding_digits: u32,
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
            answer_rounding_digits: 15,
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
    /// The last math span (`$…$`, `\(…\)`, `\[…\]`, `$$…$$`).
    LastMath,
    /// The whole completion, which is one expression.
    Whole,
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

/// The bare answer inside a gold string, which may be the answer itself,
/// `\boxed{…}` (several boxes form a list), a GSM8K solution ending in
/// `#### N`, a solution ending in "The final answer is …", or text with the
/// answer in math spans.
pub fn gold_text(gold: &str) -> String {
    extract::gold_answer(gold)
}

/// Extract the answer from `completion` and compare it with `gold`.
pub fn verify(gold: &str, completion: &str, cfg: &MathConfig) -> Verdict {
    if let Some(letter) = extract::choice_letter(&gold_text(gold)) {
        return verify_choice(letter, completion, cfg);
    }
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

/// The text after the last top-level `=` of an answer, if it has one.
fn last_member(s: &str) -> Option<&str> {
    let mut depth = 0i32;
    let mut at = None;
    for (i, ch) in s.char_indices() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            '=' if depth == 0 => at = Some(i),
            _ => {}
        }
    }
    let rest = s.get(at? + 1..)?.trim();
    (!rest.is_empty()).then_some(rest)
}

/// A multiple-choice gold (`B`, `(B)`, `\text{(B)}`): the completion's
/// choice is the letter its answer starts with (`(D) $\frac34$`), else the
/// last choice it marks (`**A**`, `(C)`, `option B`).
fn verify_choice(letter: char, completion: &str, cfg: &MathConfig) -> Verdict {
    let extracted = extract_answer(completion, cfg);
    let from_answer = extracted.as_ref().and_then(|e| extract::choice_letter(&e.text).map(|l| (l, e.source)));
    let chosen = from_answer.or_else(|| extract::last_choice(completion).map(|l| (l, ExtractSource::AnswerColon)));
    let Some((got, source)) = chosen else {
        return Verdict { correct: false, extracted, reason: VerdictReason::NoAnswer, in_requested_form: false };
    };
    let eq = if got == letter { Equivalence::Equal } else { Equivalence::NotEqual };
    let in_form = match cfg.requested_form {
        AnswerForm::Boxed => source == ExtractSource::Boxed,
        AnswerForm::Gsm8k => source == ExtractSource::Gsm8k,
        AnswerForm::Any => true,
    };
    Verdict {
        correct: eq.is_equal(),
        extracted: Some(Extracted { text: got.to_string(), source }),
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
    let gn = normalize::decimal_comma(&gn).unwrap_or(gn);
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
    // A lone `1,22` is a decimal comma, unless the gold is a collection.
    let an = if g.is_collection() { an } else { normalize::decimal_comma(&an).unwrap_or(an) };
    let thousands = !g.is_collection();
    let a = match latex::parse(&an, thousands, b.max_depth, b.max_bits) {
        Ok(a) => a,
        Err(MathError::TooLarge) => return Equivalence::TooLarge,
        // A chain we cannot read whole (`\det(AB) = 2 \cdot 12 = 24`) still
        // ends in the value it states.
        Err(_) => match last_member(&an).map(|t| latex::parse(t, thousands, b.max_depth, b.max_bits)) {
            Some(Ok(a)) => a,
            Some(Err(MathError::TooLarge)) => return Equivalence::TooLarge,
            _ => return Equivalence::Unparseable(Side::Answer),
        },
    };
    let g = equiv::expand_pm(g);
    let a = equiv::expand_pm(a);
    let mut cx = Cx {
        m: Meter::new(b.max_steps, b.max_bits, b.max_terms),
        rel_tol: cfg.rel_tolerance,
        gold_rounding: cfg.gold_decimal_rounding,
        percent_fraction: cfg.percent_matches_fraction,
        max_elements: b.max_elements,
        answer_rounding_digits: cfg.answer_rounding_digits,
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
