//! Exact values: Laurent polynomials with rational coefficients.
//!
//! A value is a sum of terms `c * s1^k1 * s2^k2 * ... * sqrt(r)` where `c` is a
//! big rational, the `s_i` are symbols (free variables and the transcendental
//! constants π and e) with integer exponents, and `r` is a square-free positive
//! integer. Square roots of distinct square-free integers are linearly
//! independent over the rationals and π, e are treated as independent
//! transcendentals, so this form is canonical: two values are equal exactly
//! when their term maps are equal.

use super::MathError;
use num_bigint::{BigInt, BigUint};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};
use std::collections::BTreeMap;

/// Symbol name used for π inside monomials.
pub(crate) const PI: &str = "\\pi";
/// Symbol name used for Euler's number inside monomials.
pub(crate) const EULER: &str = "\\e";

/// Largest prime-search bound used when extracting square factors.
const TRIAL_BOUND: u32 = 10_000;
/// Largest absolute exponent of a symbol we keep exactly.
const MAX_SYMBOL_EXP: i64 = 10_000;
/// Largest integer power expanded for a multi-term base.
const MAX_MULTI_POW: u64 = 64;

/// Step and size accounting shared by all exact and numeric computations.
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    steps_left: u64,
    /// Largest number of bits of a numerator or denominator.
    pub max_bits: u64,
    /// Largest number of terms of a polynomial.
    pub max_terms: usize,
}

impl Meter {
    /// A meter with the given limits.
    pub(crate) fn new(max_steps: u64, max_bits: u64, max_terms: usize) -> Self {
        Meter { steps_left: max_steps, max_bits, max_terms }
    }

    /// Charge `n` steps, failing once the budget is spent.
    pub(crate) fn step(&mut self, n: u64) -> Result<(), MathError> {
        if self.steps_left < n {
            self.steps_left = 0;
            Err(MathError::Budget)
        } else {
            self.steps_left -= n;
            Ok(())
        }
    }

    fn check_rat(&self, r: &BigRational) -> Result<(), MathError> {
        if r.numer().bits() > self.max_bits || r.denom().bits() > self.max_bits {
            Err(MathError::TooLarge)
        } else {
            Ok(())
        }
    }

    fn charge_rat(&mut self, r: &BigRational) -> Result<(), MathError> {
        self.step(1 + (r.numer().bits() + r.denom().bits()) / 256)
    }
}

/// A monomial: symbol exponents and a square-free radicand (1 = no root).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Mono {
    /// Symbol → non-zero exponent.
    pub vars: BTreeMap<String, i64>,
    /// Square-free radicand; one means "no square root".
    pub rad: BigUint,
}

impl Mono {
    fn one() -> Self {
        Mono { vars: BTreeMap::new(), rad: BigUint::one() }
    }

    fn is_one(&self) -> bool {
        self.vars.is_empty() && self.rad.is_one()
    }
}

/// An exact value (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Poly {
    /// Monomial → non-zero coefficient.
    pub terms: BTreeMap<Mono, BigRational>,
}

fn rat_int(n: BigInt) -> BigRational {
    BigRational::from_integer(n)
}

impl Poly {
    /// The zero value.
    pub(crate) fn zero() -> Self {
        Poly { terms: BTreeMap::new() }
    }

    /// A rational constant.
    pub(crate) fn rational(r: BigRational) -> Self {
        let mut p = Poly::zero();
        if !r.is_zero() {
            p.terms.insert(Mono::one(), r);
        }
        p
    }

    /// The integer one.
    pub(crate) fn one() -> Self {
        Poly::rational(BigRational::one())
    }

    /// A symbol (variable or named constant) to the first power.
    pub(crate) fn symbol(name: &str) -> Self {
        let mut m = Mono::one();
        m.vars.insert(name.to_string(), 1);
        let mut p = Poly::zero();
        p.terms.insert(m, BigRational::one());
        p
    }

    /// Whether this is exactly zero.
    pub(crate) fn is_zero(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value as a rational, if it is one.
    pub(crate) fn as_rational(&self) -> Option<BigRational> {
        if self.terms.is_empty() {
            return Some(BigRational::zero());
        }
        if self.terms.len() == 1 {
            let (m, c) = self.terms.iter().next()?;
            if m.is_one() {
                return Some(c.clone());
            }
        }
        None
    }

    /// Whether any term mentions a free variable (anything except π and e).
    pub(crate) fn has_free_vars(&self) -> bool {
        self.terms.keys().any(|m| m.vars.keys().any(|v| v != PI && v != EULER))
    }

    /// Sum.
    pub(crate) fn add(&self, o: &Poly, m: &mut Meter) -> Result<Poly, MathError> {
        m.step(1 + o.terms.len() as u64)?;
        let mut out = self.clone();
        for (k, c) in &o.terms {
            m.charge_rat(c)?;
            let sum = match out.terms.get(k) {
                Some(x) => x + c,
                None => c.clone(),
            };
            m.check_rat(&sum)?;
            if sum.is_zero() {
                out.terms.remove(k);
            } else {
                out.terms.insert(k.clone(), sum);
            }
        }
        if out.terms.len() > m.max_terms {
            return Err(MathError::TooLarge);
        }
        Ok(out)
    }

    /// Negation.
    pub(crate) fn neg(&self) -> Poly {
        Poly { terms: self.terms.iter().map(|(k, c)| (k.clone(), -c.clone())).collect() }
    }

    /// Difference.
    pub(crate) fn sub(&self, o: &Poly, m: &mut Meter) -> Result<Poly, MathError> {
        self.add(&o.neg(), m)
    }

    /// Multiplication by a rational.
    pub(crate) fn scale(&self, k: &BigRational, m: &mut Meter) -> Result<Poly, MathError> {
        if k.is_zero() {
            return Ok(Poly::zero());
        }
        let mut out = Poly::zero();
        for (mono, c) in &self.terms {
            let v = c * k;
            m.charge_rat(&v)?;
            m.check_rat(&v)?;
            out.terms.insert(mono.clone(), v);
        }
        Ok(out)
    }

    fn mul_mono(a: &Mono, b: &Mono, m: &mut Meter) -> Result<(Mono, BigRational), MathError> {
        let mut vars = a.vars.clone();
        for (v, e) in &b.vars {
            let ne = vars.get(v).copied().unwrap_or(0).saturating_add(*e);
            if ne.abs() > MAX_SYMBOL_EXP {
                return Err(MathError::TooLarge);
            }
            if ne == 0 {
                vars.remove(v);
            } else {
                vars.insert(v.clone(), ne);
            }
        }
        let (rad, factor) = if a.rad.is_one() {
            (b.rad.clone(), BigUint::one())
        } else if b.rad.is_one() {
            (a.rad.clone(), BigUint::one())
        } else {
            m.step(1 + (a.rad.bits() + b.rad.bits()) / 64)?;
            let g = a.rad.gcd(&b.rad);
            ((&a.rad / &g) * (&b.rad / &g), g)
        };
        Ok((Mono { vars, rad }, rat_int(BigInt::from(factor))))
    }

    /// Product.
    pub(crate) fn mul(&self, o: &Poly, m: &mut Meter) -> Result<Poly, MathError> {
        let n = (self.terms.len() as u64).saturating_mul(o.terms.len() as u64);
        m.step(1 + n)?;
        let mut out = Poly::zero();
        for (ka, ca) in &self.terms {
            for (kb, cb) in &o.terms {
                let (mono, factor) = Self::mul_mono(ka, kb, m)?;
                let c = ca * cb * factor;
                m.charge_rat(&c)?;
                m.check_rat(&c)?;
                let mut single = Poly::zero();
                single.terms.insert(mono, c);
                out = out.add(&single, m)?;
            }
        }
        Ok(out)
    }

    /// Multiplicative inverse; only single terms are invertible exactly.
    pub(crate) fn inv(&self, m: &mut Meter) -> Result<Poly, MathError> {
        if self.terms.len() != 1 {
            return Err(MathError::NotExact);
        }
        let (mono, c) = self.terms.iter().next().ok_or(MathError::NotExact)?;
        let r = rat_int(BigInt::from(mono.rad.clone()));
        // 1/(c*sqrt(r)) = sqrt(r)/(c*r)
        let denom = c * &r;
        if denom.is_zero() {
            return Err(MathError::NotExact);
        }
        let coef = denom.recip();
        m.charge_rat(&coef)?;
        m.check_rat(&coef)?;
        let vars = mono.vars.iter().map(|(k, e)| (k.clone(), -e)).collect();
        let mut out = Poly::zero();
        out.terms.insert(Mono { vars, rad: mono.rad.clone() }, coef);
        Ok(out)
    }

    /// Integer power.
    pub(crate) fn pow_int(&self, n: &BigInt, m: &mut Meter) -> Result<Poly, MathError> {
        m.step(1)?;
        if n.is_zero() {
            return Ok(Poly::one());
        }
        if self.is_zero() {
            return if n.is_positive() { Ok(Poly::zero()) } else { Err(MathError::NotExact) };
        }
        if n.is_negative() {
            return self.inv(m)?.pow_int(&-n, m);
        }
        if self.terms.len() == 1 {
            let (mono, c) = self.terms.iter().next().ok_or(MathError::NotExact)?;
            let unit_coef = c.numer().abs().is_one() && c.denom().is_one();
            if unit_coef && mono.is_one() {
                let odd = n.is_odd();
                return Ok(Poly::rational(if odd && c.is_negative() {
                    -BigRational::one()
                } else {
                    BigRational::one()
                }));
            }
            let Some(k) = n.to_u64() else {
                return Err(MathError::TooLarge);
            };
            // Estimate the size before computing anything.
            let cb = c.numer().bits().max(c.denom().bits()).saturating_sub(1);
            let rb = mono.rad.bits().saturating_sub(1);
            let est = cb.saturating_add(rb / 2).saturating_mul(k);
            if est > m.max_bits {
                return Err(MathError::TooLarge);
            }
            let Ok(k32) = u32::try_from(k) else {
                return Err(MathError::TooLarge);
            };
            m.step(1 + est / 64)?;
            let mut coef =
                BigRational::new(num_traits::pow::Pow::pow(c.numer(), k32), num_traits::pow::Pow::pow(c.denom(), k32));
            let rad_pow = num_traits::pow::Pow::pow(&mono.rad, k32 / 2);
            coef *= rat_int(BigInt::from(rad_pow));
            m.check_rat(&coef)?;
            let mut vars = BTreeMap::new();
            for (v, e) in &mono.vars {
                let ne = e.checked_mul(k as i64).ok_or(MathError::TooLarge)?;
                if ne.abs() > MAX_SYMBOL_EXP {
                    return Err(MathError::TooLarge);
                }
                vars.insert(v.clone(), ne);
            }
            let rad = if k32 % 2 == 1 { mono.rad.clone() } else { BigUint::one() };
            let mut out = Poly::zero();
            out.terms.insert(Mono { vars, rad }, coef);
            return Ok(out);
        }
        let Some(k) = n.to_u64() else {
            return Err(MathError::TooLarge);
        };
        if k > MAX_MULTI_POW {
            return Err(MathError::TooLarge);
        }
        let mut result = Poly::one();
        let mut base = self.clone();
        let mut e = k;
        while e > 0 {
            if e & 1 == 1 {
                result = result.mul(&base, m)?;
            }
            e >>= 1;
            if e > 0 {
                base = base.mul(&base, m)?;
            }
        }
        Ok(result)
    }

    /// Rational power; exact only for integer exponents, perfect roots of
    /// rationals and square roots of rationals.
    pub(crate) fn pow_rat(&self, e: &BigRational, m: &mut Meter) -> Result<Poly, MathError> {
        if e.is_integer() {
            return self.pow_int(e.numer(), m);
        }
        let r = self.as_rational().ok_or(MathError::NotExact)?;
        let q = e.denom().to_u32().ok_or(MathError::NotExact)?;
        if q > 64 {
            return Err(MathError::NotExact);
        }
        if r.is_negative() && q % 2 == 0 {
            return Err(MathError::NotExact);
        }
        let a = r.numer().abs().to_biguint().ok_or(MathError::NotExact)?;
        let b = r.denom().to_biguint().ok_or(MathError::NotExact)?;
        m.step(1 + (a.bits() + b.bits()) / 32)?;
        let ra = a.nth_root(q);
        let rb = b.nth_root(q);
        let base = if num_traits::pow::Pow::pow(&ra, q) == a && num_traits::pow::Pow::pow(&rb, q) == b {
            let mut v = BigRational::new(BigInt::from(ra), BigInt::from(rb));
            if r.is_negative() {
                v = -v;
            }
            Poly::rational(v)
        } else if q == 2 {
            sqrt_rational(&r, m)?
        } else {
            return Err(MathError::NotExact);
        };
        base.pow_int(e.numer(), m)
    }
}

/// Exact square root of a non-negative rational as `s * sqrt(f)`.
pub(crate) fn sqrt_rational(r: &BigRational, m: &mut Meter) -> Result<Poly, MathError> {
    if r.is_negative() {
        return Err(MathError::NotExact);
    }
    if r.is_zero() {
        return Ok(Poly::zero());
    }
    // sqrt(p/q) = sqrt(p*q)/q
    let n = (r.numer() * r.denom()).to_biguint().ok_or(MathError::NotExact)?;
    let (s, f) = split_square(&n, m)?;
    let coef = BigRational::new(BigInt::from(s), r.denom().clone());
    let mut out = Poly::zero();
    out.terms.insert(Mono { vars: BTreeMap::new(), rad: f }, coef);
    Ok(out)
}

/// Write `n = s^2 * f` with `f` square-free; fails with `NotExact` when the
/// square-free part cannot be certified by trial division.
fn split_square(n: &BigUint, m: &mut Meter) -> Result<(BigUint, BigUint), MathError> {
    if n.bits() > 4096 {
        return Err(MathError::NotExact);
    }
    let mut rest = n.clone();
    let mut s = BigUint::one();
    let mut f = BigUint::one();
    let cost = 1 + n.bits() / 64;
    let mut p: u32 = 2;
    while p <= TRIAL_BOUND {
        let pb = BigUint::from(p);
        if &pb * &pb > rest {
            break;
        }
        m.step(cost)?;
        let mut k = 0u32;
        while (&rest % &pb).is_zero() {
            rest /= &pb;
            k += 1;
        }
        for _ in 0..k / 2 {
            s *= &pb;
        }
        if k % 2 == 1 {
            f *= &pb;
        }
        p = if p == 2 { 3 } else { p + 2 };
    }
    if rest.is_one() {
        return Ok((s, f));
    }
    let root = rest.sqrt();
    if &root * &root == rest {
        return Ok((s * root, f));
    }
    let bound = BigUint::from(TRIAL_BOUND) * BigUint::from(TRIAL_BOUND);
    if p > TRIAL_BOUND && rest >= bound {
        return Err(MathError::NotExact);
    }
    // Either the loop stopped because p^2 > rest (so rest is prime) or rest
    // has no factor below the bound and is below bound^2 (so it is prime).
    Ok((s, f * rest))
}

/// `n!` for a non-negative integer `n`.
pub(crate) fn factorial(n: &BigRational, m: &mut Meter) -> Result<Poly, MathError> {
    if !n.is_integer() || n.is_negative() {
        return Err(MathError::NotExact);
    }
    let k = n.numer().to_u64().ok_or(MathError::TooLarge)?;
    if k > 2 {
        let kf = k as f64;
        let est = kf * kf.log2() - std::f64::consts::LOG2_E * kf;
        if est > m.max_bits as f64 {
            return Err(MathError::TooLarge);
        }
    }
    let mut acc = BigInt::one();
    for i in 2..=k {
        m.step(1 + acc.bits() / 256)?;
        acc *= i;
    }
    Ok(Poly::rational(rat_int(acc)))
}

/// Binomial coefficient for integer arguments.
pub(crate) fn binomial(n: &BigRational, k: &BigRational, m: &mut Meter) -> Result<Poly, MathError> {
    if !n.is_integer() || !k.is_integer() {
        return Err(MathError::NotExact);
    }
    let n = n.numer();
    let k = k.numer();
    if k.is_negative() || k > n {
        return Ok(Poly::zero());
    }
    let kk = std::cmp::min(k.clone(), n - k);
    let kk = kk.to_u64().ok_or(MathError::TooLarge)?;
    let mut acc = BigInt::one();
    for i in 0..kk {
        m.step(1 + acc.bits() / 256)?;
        acc = acc * (n - BigInt::from(i)) / BigInt::from(i + 1);
        if acc.bits() > m.max_bits {
            return Err(MathError::TooLarge);
        }
    }
    Ok(Poly::rational(rat_int(acc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter() -> Meter {
        Meter::new(1_000_000, 1 << 17, 512)
    }

    fn r(n: i64) -> BigRational {
        BigRational::from_integer(BigInt::from(n))
    }

    #[test]
    fn sqrt8_is_2_sqrt2() {
        let mut m = meter();
        let a = sqrt_rational(&r(8), &mut m).unwrap();
        let b = sqrt_rational(&r(2), &mut m).unwrap().scale(&r(2), &mut m).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn inverse_sqrt3() {
        let mut m = meter();
        let s3 = sqrt_rational(&r(3), &mut m).unwrap();
        let inv = s3.inv(&mut m).unwrap();
        let want = s3.scale(&BigRational::new(1.into(), 3.into()), &mut m).unwrap();
        assert_eq!(inv, want);
    }

    #[test]
    fn binomial_square() {
        let mut m = meter();
        let x = Poly::symbol("x");
        let xp1 = x.add(&Poly::one(), &mut m).unwrap();
        let sq = xp1.pow_int(&BigInt::from(2), &mut m).unwrap();
        let x2 = x.mul(&x, &mut m).unwrap();
        let two_x = x.scale(&r(2), &mut m).unwrap();
        let want = x2.add(&two_x, &mut m).unwrap().add(&Poly::one(), &mut m).unwrap();
        assert_eq!(sq, want);
    }

    #[test]
    fn huge_power_is_too_large() {
        let mut m = meter();
        let two = Poly::rational(r(2));
        let e = BigInt::from(10u64).pow(12);
        assert_eq!(two.pow_int(&e, &mut m), Err(MathError::TooLarge));
    }

    #[test]
    fn factorial_limits() {
        let mut m = meter();
        assert!(factorial(&r(2006), &mut m).is_ok());
        assert_eq!(factorial(&r(1_000_000), &mut m), Err(MathError::TooLarge));
    }

    #[test]
    fn cube_root_exact() {
        let mut m = meter();
        let v = Poly::rational(r(8)).pow_rat(&BigRational::new(1.into(), 3.into()), &mut m).unwrap();
        assert_eq!(v, Poly::rational(r(2)));
        let w = Poly::rational(r(2)).pow_rat(&BigRational::new(1.into(), 3.into()), &mut m);
        assert_eq!(w, Err(MathError::NotExact));
    }
}
