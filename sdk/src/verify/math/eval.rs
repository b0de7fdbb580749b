//! Evaluation of scalar answer trees: exactly (to [`Poly`]) or numerically.

use super::MathError;
use super::expr::{self, EULER, Meter, PI, Poly};
use super::latex::Node;
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive};

/// Evaluate exactly. `NotExact` means "try numerically instead".
pub(crate) fn exact(n: &Node, m: &mut Meter) -> Result<Poly, MathError> {
    m.step(1)?;
    match n {
        Node::Num(x) => Ok(Poly::rational(x.value.clone())),
        Node::Var(v) => Ok(Poly::symbol(v)),
        Node::Pi => Ok(Poly::symbol(PI)),
        Node::E => Ok(Poly::symbol(EULER)),
        Node::Neg(a) => Ok(exact(a, m)?.neg()),
        Node::Add(v) => {
            let mut acc = Poly::zero();
            for t in v {
                let x = exact(t, m)?;
                acc = acc.add(&x, m)?;
            }
            Ok(acc)
        }
        Node::Mul(v) => {
            let mut acc = Poly::one();
            for t in v {
                let x = exact(t, m)?;
                acc = acc.mul(&x, m)?;
            }
            Ok(acc)
        }
        Node::Div(a, b) => {
            let d = exact(b, m)?;
            let num = exact(a, m)?;
            num.mul(&d.inv(m)?, m)
        }
        Node::Pow(a, b) => {
            let e = exact(b, m)?;
            let Some(e) = e.as_rational() else {
                return Err(MathError::NotExact);
            };
            if matches!(**a, Node::E) && !e.is_integer() {
                return Err(MathError::NotExact);
            }
            exact(a, m)?.pow_rat(&e, m)
        }
        Node::Root(i, a) => {
            let i = exact(i, m)?.as_rational().ok_or(MathError::NotExact)?;
            if !i.is_integer() || !i.is_positive() {
                return Err(MathError::NotExact);
            }
            let inv = BigRational::new(BigInt::from(1), i.numer().clone());
            exact(a, m)?.pow_rat(&inv, m)
        }
        Node::Fact(a) => {
            let v = exact(a, m)?.as_rational().ok_or(MathError::NotExact)?;
            expr::factorial(&v, m)
        }
        Node::Binom(a, b) => {
            let x = exact(a, m)?.as_rational().ok_or(MathError::NotExact)?;
            let y = exact(b, m)?.as_rational().ok_or(MathError::NotExact)?;
            expr::binomial(&x, &y, m)
        }
        Node::Percent(a) => {
            let x = exact(a, m)?;
            x.scale(&BigRational::new(1.into(), 100.into()), m)
        }
        Node::Abs(a) => {
            let x = exact(a, m)?;
            match x.as_rational() {
                Some(r) => Ok(Poly::rational(r.abs())),
                None => Err(MathError::NotExact),
            }
        }
        _ => Err(MathError::NotExact),
    }
}

/// Deterministic pseudo-random value in `[0.5, 2.5)` for a variable at a
/// sample point.
fn var_value(name: &str, point: u32) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(point.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 29;
    0.5 + (h % 1_000_003) as f64 / 1_000_003.0 * 2.0
}

fn rat_f64(r: &BigRational) -> f64 {
    r.to_f64().unwrap_or(f64::NAN)
}

/// Evaluate numerically with free variables set by sample point `point`.
/// Unsupported forms evaluate to NaN.
pub(crate) fn numeric(n: &Node, point: u32, m: &mut Meter) -> Result<f64, MathError> {
    m.step(1)?;
    Ok(match n {
        Node::Num(x) => rat_f64(&x.value),
        Node::Var(v) => var_value(v, point),
        Node::Pi => std::f64::consts::PI,
        Node::E => std::f64::consts::E,
        Node::Inf => f64::INFINITY,
        Node::Neg(a) => -numeric(a, point, m)?,
        Node::Add(v) => {
            let mut s = 0.0;
            for t in v {
                s += numeric(t, point, m)?;
            }
            s
        }
        Node::Mul(v) => {
            let mut s = 1.0;
            for t in v {
                s *= numeric(t, point, m)?;
            }
            s
        }
        Node::Div(a, b) => numeric(a, point, m)? / numeric(b, point, m)?,
        Node::Pow(a, b) => {
            let x = numeric(a, point, m)?;
            let y = numeric(b, point, m)?;
            if x < 0.0 && y.fract() != 0.0 {
                // Odd roots of negatives, e.g. (-8)^(1/3), are real.
                let inv = 1.0 / y;
                if (inv.round() - inv).abs() < 1e-12 && (inv.round() as i64) % 2 != 0 {
                    -(-x).powf(y)
                } else {
                    f64::NAN
                }
            } else {
                x.powf(y)
            }
        }
        Node::Root(i, a) => {
            let k = numeric(i, point, m)?;
            let x = numeric(a, point, m)?;
            if x < 0.0 && k.fract() == 0.0 && (k as i64) % 2 != 0 { -(-x).powf(1.0 / k) } else { x.powf(1.0 / k) }
        }
        Node::Fact(a) => {
            let x = numeric(a, point, m)?;
            if x < 0.0 || x.fract() != 0.0 {
                f64::NAN
            } else if x > 170.0 {
                f64::INFINITY
            } else {
                let mut p = 1.0;
                let mut i = 2.0;
                while i <= x {
                    p *= i;
                    i += 1.0;
                }
                p
            }
        }
        Node::Binom(a, b) => {
            let x = numeric(a, point, m)?;
            let y = numeric(b, point, m)?;
            if y.fract() != 0.0 || !(0.0..=1e6).contains(&y) {
                f64::NAN
            } else {
                let mut p = 1.0;
                let mut i = 0.0;
                while i < y {
                    p = p * (x - i) / (i + 1.0);
                    i += 1.0;
                }
                p
            }
        }
        Node::Percent(a) => numeric(a, point, m)? / 100.0,
        Node::Abs(a) => numeric(a, point, m)?.abs(),
        Node::Func(name, a, base) => {
            let x = numeric(a, point, m)?;
            match name.as_str() {
                "sin" => x.sin(),
                "cos" => x.cos(),
                "tan" => x.tan(),
                "cot" => 1.0 / x.tan(),
                "sec" => 1.0 / x.cos(),
                "csc" => 1.0 / x.sin(),
                "arcsin" => x.asin(),
                "arccos" => x.acos(),
                "arctan" => x.atan(),
                "sinh" => x.sinh(),
                "cosh" => x.cosh(),
                "tanh" => x.tanh(),
                "exp" => x.exp(),
                "ln" => x.ln(),
                "log10" => x.log10(),
                "floor" => x.floor(),
                "ceil" => x.ceil(),
                "log" => match base {
                    Some(b) => x.ln() / numeric(b, point, m)?.ln(),
                    None => x.ln(),
                },
                _ => f64::NAN,
            }
        }
        _ => f64::NAN,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::math::latex::parse;

    fn ex(s: &str) -> Result<Poly, MathError> {
        let mut m = Meter::new(1_000_000, 1 << 17, 512);
        exact(&parse(s, true, 64, 1 << 17).unwrap(), &mut m)
    }

    fn num(s: &str) -> f64 {
        let mut m = Meter::new(1_000_000, 1 << 17, 512);
        numeric(&parse(s, true, 64, 1 << 17).unwrap(), 0, &mut m).unwrap()
    }

    #[test]
    fn radicals_canonical() {
        assert_eq!(ex("\\sqrt{8}"), ex("2\\sqrt{2}"));
        assert_eq!(ex("\\frac{1}{\\sqrt3}"), ex("\\frac{\\sqrt3}{3}"));
        assert_eq!(ex("\\sqrt{12}\\sqrt{3}"), ex("6"));
    }

    #[test]
    fn polynomial_identity() {
        assert_eq!(ex("2x+2"), ex("2(x+1)"));
        assert_eq!(ex("(x+1)^2"), ex("x^2+2x+1"));
        assert_ne!(ex("(x+1)^2"), ex("x^2+1"));
    }

    #[test]
    fn non_exact_falls_back() {
        assert_eq!(ex("\\sin(1)"), Err(MathError::NotExact));
        assert!((num("\\sin(\\pi/6)") - 0.5).abs() < 1e-12);
        assert!((num("\\sqrt[3]{-8}") + 2.0).abs() < 1e-12);
    }

    #[test]
    fn towers_are_too_large() {
        assert_eq!(ex("2^{2^{2^{2^{2^{2}}}}}"), Err(MathError::TooLarge));
        assert_eq!(ex("10^{10^{10}}"), Err(MathError::TooLarge));
        assert_eq!(ex("1000000!"), Err(MathError::TooLarge));
    }
}
