//! The `calculator` tool: an exact arithmetic evaluator.
//!
//! Expressions use `+ - * / %`, `^` (or `**`) with an integer exponent,
//! parentheses, unary minus and decimal literals. Arithmetic is on exact
//! rationals (128-bit numerator and denominator), so `0.1 + 0.2` is `0.3`
//! and `1/3` stays `1/3`. Overflow, division by zero and oversized inputs are
//! errors, never panics.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Value, json};

use super::ToolError;

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 1_000;
/// Deepest nesting of parentheses and unary operators.
const MAX_DEPTH: usize = 64;
/// Largest exponent magnitude of `^`.
const MAX_EXPONENT: i128 = 256;

/// An exact rational number in lowest terms with a positive denominator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rational {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    // Both are non-negative here (callers pass unsigned_abs-safe values).
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl Rational {
    /// The integer `n`.
    pub fn int(n: i128) -> Self {
        Rational { num: n, den: 1 }
    }

    /// `num / den` in lowest terms; `None` when `den` is zero or the
    /// normalisation overflows.
    pub fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let (mut num, mut den) = (num, den);
        if den < 0 {
            num = num.checked_neg()?;
            den = den.checked_neg()?;
        }
        let g = gcd(num.checked_abs()?, den);
        if g > 1 {
            num /= g;
            den /= g;
        }
        Some(Rational { num, den })
    }

    /// Whether the value is an integer.
    pub fn is_integer(&self) -> bool {
        self.den == 1
    }

    fn checked_add(self, o: Self) -> Option<Self> {
        let g = gcd(self.den, o.den);
        let l = (self.den / g).checked_mul(o.den)?;
        let a = self.num.checked_mul(l / self.den)?;
        let b = o.num.checked_mul(l / o.den)?;
        Rational::new(a.checked_add(b)?, l)
    }

    fn checked_neg(self) -> Option<Self> {
        Some(Rational { num: self.num.checked_neg()?, den: self.den })
    }

    fn checked_sub(self, o: Self) -> Option<Self> {
        self.checked_add(o.checked_neg()?)
    }

    fn checked_mul(self, o: Self) -> Option<Self> {
        // Cross-reduce first to keep the intermediates small.
        let g1 = gcd(self.num.checked_abs()?, o.den).max(1);
        let g2 = gcd(o.num.checked_abs()?, self.den).max(1);
        let num = (self.num / g1).checked_mul(o.num / g2)?;
        let den = (self.den / g2).checked_mul(o.den / g1)?;
        Rational::new(num, den)
    }

    fn checked_div(self, o: Self) -> Option<Self> {
        if o.num == 0 {
            return None;
        }
        self.checked_mul(Rational::new(o.den, o.num)?)
    }

    /// The remainder of floored division (the sign follows the divisor).
    fn checked_rem(self, o: Self) -> Option<Self> {
        if o.num == 0 {
            return None;
        }
        let q = self.checked_div(o)?;
        let floor = q.num.div_euclid(q.den);
        self.checked_sub(o.checked_mul(Rational::int(floor))?)
    }

    fn checked_pow(self, exp: i128) -> Option<Self> {
        let base = if exp < 0 { Rational::new(self.den, self.num)? } else { self };
        let mut e = exp.checked_abs()?;
        let mut acc = Rational::int(1);
        let mut b = base;
        while e > 0 {
            if e & 1 == 1 {
                acc = acc.checked_mul(b)?;
            }
            e >>= 1;
            if e > 0 {
                b = b.checked_mul(b)?;
            }
        }
        Some(acc)
    }

    /// A decimal rendering with at most `digits` fractional digits, rounded
    /// half away from zero (used for an approximate view of `1/3`).
    pub fn to_decimal(&self, digits: u32) -> String {
        let neg = self.num < 0;
        let n = self.num.unsigned_abs();
        let d = self.den.unsigned_abs();
        let int = n / d;
        let mut rem = n % d;
        if d > u128::MAX / 10 {
            // Too fine to expand digit by digit without overflow.
            return format!("{:.*}", digits as usize, self.num as f64 / self.den as f64);
        }
        let mut frac = Vec::new();
        for _ in 0..digits {
            rem *= 10;
            frac.push((rem / d) as u8);
            rem %= d;
        }
        let mut int = int;
        if rem * 2 >= d {
            // Round up, carrying through the digits.
            let mut i = frac.len();
            loop {
                if i == 0 {
                    int += 1;
                    break;
                }
                i -= 1;
                if frac[i] == 9 {
                    frac[i] = 0;
                } else {
                    frac[i] += 1;
                    break;
                }
            }
        }
        while frac.last() == Some(&0) {
            frac.pop();
        }
        let mut s = String::new();
        if neg && (int != 0 || !frac.is_empty()) {
            s.push('-');
        }
        s.push_str(&int.to_string());
        if !frac.is_empty() {
            s.push('.');
            s.extend(frac.iter().map(|d| char::from(b'0' + d)));
        }
        s
    }

    /// Whether the value has a finite decimal expansion.
    pub fn is_terminating(&self) -> bool {
        let mut d = self.den;
        while d % 2 == 0 {
            d /= 2;
        }
        while d % 5 == 0 {
            d /= 5;
        }
        d == 1
    }
}

impl PartialOrd for Rational {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Rational {
    fn cmp(&self, other: &Self) -> Ordering {
        // Denominators are positive; compare a/b with c/d as a*d with c*b,
        // falling back to floats only if that overflows.
        match (self.num.checked_mul(other.den), other.num.checked_mul(self.den)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => {
                let a = self.num as f64 / self.den as f64;
                let b = other.num as f64 / other.den as f64;
                a.partial_cmp(&b).unwrap_or(Ordering::Equal)
            }
        }
    }
}

/// The canonical text: an integer (`42`), an exact decimal (`12.5`) or a
/// fraction in lowest terms (`1/3`).
impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_integer() {
            write!(f, "{}", self.num)
        } else if self.is_terminating() {
            // A terminating expansion has at most as many digits as the
            // power of 2 or 5 in the denominator: below 128 for an i128.
            f.write_str(&self.to_decimal(128))
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

/// Why an expression could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// The text is not a well-formed expression.
    #[error("syntax error at character {pos}: {msg}")]
    Syntax {
        /// Zero-based character offset.
        pos: usize,
        /// What was expected.
        msg: String,
    },
    /// Division (or `%`) by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A result too large to represent exactly.
    #[error("overflow: the result is too large to compute exactly")]
    Overflow,
    /// `^` with a non-integer or oversized exponent.
    #[error("the exponent of ^ must be an integer between -{MAX_EXPONENT} and {MAX_EXPONENT}")]
    BadExponent,
    /// The expression is too long or too deeply nested.
    #[error("expression too long or too deeply nested (at most {MAX_EXPRESSION_LEN} characters)")]
    TooComplex,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn syntax(&self, msg: &str) -> CalcError {
        CalcError::Syntax { pos: self.pos, msg: msg.to_owned() }
    }

    fn enter(&mut self) -> Result<(), CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH { Err(CalcError::TooComplex) } else { Ok(()) }
    }

    fn expr(&mut self) -> Result<Rational, CalcError> {
        self.enter()?;
        let mut acc = self.term()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let rhs = self.term()?;
            acc = if op == b'+' { acc.checked_add(rhs) } else { acc.checked_sub(rhs) }.ok_or(CalcError::Overflow)?;
        }
        self.depth -= 1;
        Ok(acc)
    }

    fn term(&mut self) -> Result<Rational, CalcError> {
        let mut acc = self.unary()?;
        loop {
            match self.peek() {
                Some(b'*') if self.s.get(self.pos + 1) != Some(&b'*') => {
                    self.pos += 1;
                    let rhs = self.unary()?;
                    acc = acc.checked_mul(rhs).ok_or(CalcError::Overflow)?;
                }
                Some(op @ (b'/' | b'%')) => {
                    self.pos += 1;
                    let rhs = self.unary()?;
                    if rhs == Rational::int(0) {
                        return Err(CalcError::DivisionByZero);
                    }
                    acc = if op == b'/' { acc.checked_div(rhs) } else { acc.checked_rem(rhs) }
                        .ok_or(CalcError::Overflow)?;
                }
                _ => return Ok(acc),
            }
        }
    }

    fn unary(&mut self) -> Result<Rational, CalcError> {
        match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                self.enter()?;
                let v = self.unary()?.checked_neg().ok_or(CalcError::Overflow)?;
                self.depth -= 1;
                Ok(v)
            }
            Some(b'+') => {
                self.pos += 1;
                self.enter()?;
                let v = self.unary()?;
                self.depth -= 1;
                Ok(v)
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Rational, CalcError> {
        let base = self.primary()?;
        let is_pow = match self.peek() {
            Some(b'^') => {
                self.pos += 1;
                true
            }
            Some(b'*') if self.s.get(self.pos + 1) == Some(&b'*') => {
                self.pos += 2;
                true
            }
            _ => false,
        };
        if !is_pow {
            return Ok(base);
        }
        self.enter()?;
        // Right-associative; the exponent may carry a sign.
        let exp = self.unary()?;
        self.depth -= 1;
        if !exp.is_integer() || exp.num.unsigned_abs() > MAX_EXPONENT.unsigned_abs() {
            return Err(CalcError::BadExponent);
        }
        if base == Rational::int(0) && exp.num < 0 {
            return Err(CalcError::DivisionByZero);
        }
        base.checked_pow(exp.num).ok_or(CalcError::Overflow)
    }

    fn primary(&mut self) -> Result<Rational, CalcError> {
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let v = self.expr()?;
                if self.peek() != Some(b')') {
                    return Err(self.syntax("expected `)`"));
                }
                self.pos += 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => self.number(),
            Some(_) => Err(self.syntax("expected a number or `(`")),
            None => Err(self.syntax("unexpected end of expression")),
        }
    }

    fn number(&mut self) -> Result<Rational, CalcError> {
        let start = self.pos;
        let mut num: i128 = 0;
        let mut den: i128 = 1;
        let mut digits = 0;
        let mut seen_dot = false;
        while let Some(&c) = self.s.get(self.pos) {
            if c.is_ascii_digit() {
                num =
                    num.checked_mul(10).and_then(|n| n.checked_add(i128::from(c - b'0'))).ok_or(CalcError::Overflow)?;
                if seen_dot {
                    den = den.checked_mul(10).ok_or(CalcError::Overflow)?;
                }
                digits += 1;
            } else if c == b'.' && !seen_dot {
                seen_dot = true;
            } else {
                break;
            }
            self.pos += 1;
        }
        if digits == 0 {
            self.pos = start;
            return Err(self.syntax("malformed number"));
        }
        Rational::new(num, den).ok_or(CalcError::Overflow)
    }
}

/// Evaluates an arithmetic expression exactly.
pub fn evaluate(expression: &str) -> Result<Rational, CalcError> {
    if expression.len() > MAX_EXPRESSION_LEN {
        return Err(CalcError::TooComplex);
    }
    let mut p = Parser { s: expression.as_bytes(), pos: 0, depth: 0 };
    let v = p.expr()?;
    if p.peek().is_some() {
        return Err(p.syntax("unexpected character"));
    }
    Ok(v)
}

/// Reads a number as a policy may write it in a final answer or a file:
/// an optionally signed decimal (`-12.50`) or a fraction (`7/3`), with
/// surrounding whitespace, a trailing period and `,` thousands separators
/// ignored.
pub fn parse_number(text: &str) -> Option<Rational> {
    let t = text.trim();
    let t = t.strip_suffix('.').unwrap_or(t).trim();
    let t: String = t.chars().filter(|c| *c != ',').collect();
    if t.is_empty() || t.len() > 80 {
        return None;
    }
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.as_str()),
    };
    let ok_char = |c: char| c.is_ascii_digit() || c == '.' || c == '/';
    if body.is_empty() || !body.chars().all(ok_char) || body.starts_with('/') {
        return None;
    }
    let v = evaluate(body).ok()?;
    if neg { v.checked_neg() } else { Some(v) }
}

/// The JSON Schema of the tool's arguments.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "expression": {
                "type": "string",
                "description": "Arithmetic with + - * / % ^, parentheses and decimal numbers, e.g. \"(12.5 + 3) * 4\".",
                "minLength": 1,
                "maxLength": MAX_EXPRESSION_LEN
            }
        },
        "required": ["expression"],
        "additionalProperties": false
    })
}

/// Runs the tool on validated arguments.
pub fn call(args: &Value) -> Result<Value, ToolError> {
    let expression = args.get("expression").and_then(Value::as_str).unwrap_or_default();
    let v = evaluate(expression).map_err(|e| ToolError::Invalid(e.to_string()))?;
    if v.is_terminating() {
        Ok(json!({ "result": v.to_string() }))
    } else {
        Ok(json!({ "result": v.to_string(), "approx": v.to_decimal(12) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str) -> String {
        evaluate(s).map(|v| v.to_string()).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn exact_arithmetic() {
        assert_eq!(ev("0.1 + 0.2"), "0.3");
        assert_eq!(ev("1/3"), "1/3");
        assert_eq!(ev("1/3 * 3"), "1");
        assert_eq!(ev("2 + 3 * 4"), "14");
        assert_eq!(ev("(2 + 3) * 4"), "20");
        assert_eq!(ev("2 ^ 3 ^ 2"), "512");
        assert_eq!(ev("2 ** 10"), "1024");
        assert_eq!(ev("-2 ^ 2"), "-4");
        assert_eq!(ev("2 ^ -2"), "0.25");
        assert_eq!(ev("7 % 3"), "1");
        assert_eq!(ev("-7 % 3"), "2");
        assert_eq!(ev("17 * 23.75 * (100 - 8) / 100"), "371.45");
        assert_eq!(ev(" 3 - - 2"), "5");
        assert_eq!(ev("1.5e3"), "error: syntax error at character 3: unexpected character");
    }

    #[test]
    fn errors_not_panics() {
        assert_eq!(evaluate("1/0"), Err(CalcError::DivisionByZero));
        assert_eq!(evaluate("5 % 0"), Err(CalcError::DivisionByZero));
        assert_eq!(evaluate("0 ^ -1"), Err(CalcError::DivisionByZero));
        assert_eq!(evaluate("10 ^ 200"), Err(CalcError::Overflow));
        assert_eq!(evaluate("2 ^ 0.5"), Err(CalcError::BadExponent));
        assert_eq!(evaluate("99999999999999999999999999999999999999999"), Err(CalcError::Overflow));
        assert!(matches!(evaluate(""), Err(CalcError::Syntax { .. })));
        assert!(matches!(evaluate("(1"), Err(CalcError::Syntax { .. })));
        assert!(matches!(evaluate("1 +"), Err(CalcError::Syntax { .. })));
        assert!(matches!(evaluate("abc"), Err(CalcError::Syntax { .. })));
        assert!(matches!(evaluate("."), Err(CalcError::Syntax { .. })));
        assert_eq!(evaluate(&"(".repeat(500)), Err(CalcError::TooComplex));
        assert_eq!(evaluate(&"-".repeat(500)), Err(CalcError::TooComplex));
        assert_eq!(evaluate(&"1+".repeat(600)), Err(CalcError::TooComplex));
        // Large but representable intermediates.
        assert_eq!(ev("(2^100) / (2^99)"), "2");
        let min = "-170141183460469231731687303715884105727 - 1";
        assert_eq!(evaluate(&format!("2 ^ ({min})")), Err(CalcError::Overflow));
    }

    #[test]
    fn approximations_round() {
        let v = evaluate("2/3").expect("ok");
        assert_eq!(v.to_decimal(4), "0.6667");
        assert_eq!(evaluate("-1/3").expect("ok").to_decimal(2), "-0.33");
        assert_eq!(evaluate("0.9999").expect("ok").to_decimal(2), "1");
    }

    #[test]
    fn answers_parse_leniently_but_exactly() {
        assert_eq!(parse_number(" 371.45 "), evaluate("371.45").ok());
        assert_eq!(parse_number("371.450"), evaluate("371.45").ok());
        assert_eq!(parse_number("1,234.5."), evaluate("1234.5").ok());
        assert_eq!(parse_number("-7/3"), evaluate("-7/3").ok());
        assert_eq!(parse_number("3+4"), None);
        assert_eq!(parse_number("about 3"), None);
        assert_eq!(parse_number(""), None);
    }

    #[test]
    fn tool_reports_exact_and_approximate() {
        assert_eq!(call(&json!({"expression": "1/4"})).expect("ok"), json!({"result": "0.25"}));
        assert_eq!(
            call(&json!({"expression": "10/3"})).expect("ok"),
            json!({"result": "10/3", "approx": "3.333333333333"})
        );
        assert!(call(&json!({"expression": "1/0"})).is_err());
    }
}
