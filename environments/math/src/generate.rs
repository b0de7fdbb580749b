//! Seeded procedural generators. Task `index` of split `kind-level` depends
//! on nothing but the split name and the index, so every machine generates
//! the same task.

use envhub_sdk::Rng;

use crate::Task;

/// The generated splits: `kind-level` for four kinds and three levels.
pub const SPLITS: &[&str] = &[
    "arithmetic-easy",
    "arithmetic-medium",
    "arithmetic-hard",
    "fractions-easy",
    "fractions-medium",
    "fractions-hard",
    "linear-easy",
    "linear-medium",
    "linear-hard",
    "word-easy",
    "word-medium",
    "word-hard",
];

/// An exact rational in lowest terms with a positive denominator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    num: i128,
    den: i128,
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

impl Ratio {
    /// `num / den` reduced; `den` must not be 0 (generators never divide by 0).
    pub fn new(num: i128, den: i128) -> Ratio {
        let sign = if den < 0 { -1 } else { 1 };
        let g = gcd(num, den);
        Ratio { num: sign * num / g, den: (sign * den / g).max(1) }
    }

    fn add(self, o: Ratio) -> Ratio {
        Ratio::new(self.num * o.den + o.num * self.den, self.den * o.den)
    }

    fn sub(self, o: Ratio) -> Ratio {
        Ratio::new(self.num * o.den - o.num * self.den, self.den * o.den)
    }

    fn mul(self, o: Ratio) -> Ratio {
        Ratio::new(self.num * o.num, self.den * o.den)
    }

    fn div(self, o: Ratio) -> Ratio {
        Ratio::new(self.num * o.den, self.den * o.num)
    }

    /// LaTeX: `7`, `-\frac{3}{4}`.
    pub fn latex(self) -> String {
        if self.den == 1 {
            return self.num.to_string();
        }
        let sign = if self.num < 0 { "-" } else { "" };
        format!("{sign}\\frac{{{}}}{{{}}}", self.num.abs(), self.den)
    }
}

fn nonzero(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    loop {
        let v = rng.range_i64(lo, hi);
        if v != 0 {
            return v;
        }
    }
}

fn paren(v: i64) -> String {
    if v < 0 { format!("({v})") } else { v.to_string() }
}

fn arithmetic(rng: &mut Rng, level: u8) -> (String, String) {
    match level {
        0 => {
            let (a, b) = (rng.range_i64(2, 99), rng.range_i64(2, 99));
            let ops = [('+', a + b), ('-', a - b), ('*', a * b)];
            let (op, v) = ops[rng.below(3) as usize];
            let shown = if op == '*' { "\\times".to_owned() } else { op.to_string() };
            (format!("Compute ${a} {shown} {b}$."), v.to_string())
        }
        1 => {
            let (a, b, c) = (rng.range_i64(2, 50), rng.range_i64(2, 20), rng.range_i64(2, 20));
            let d = rng.range_i64(1, 100);
            (format!("Compute ${a} + {b} \\times {c} - {d}$."), (a + b * c - d).to_string())
        }
        _ => {
            let (a, b) = (rng.range_i64(-30, 30), rng.range_i64(-30, 30));
            let c = nonzero(rng, -9, 9);
            let q = rng.range_i64(-12, 12);
            let e = rng.range_i64(2, 3) as u32;
            let base = rng.range_i64(-5, 5);
            // (a - b) * c + (q * c) / c + base^e, with an exact division.
            let v = (a - b) * c + q + base.pow(e);
            (
                format!(
                    "Compute $({} - {}) \\cdot {} + \\frac{{{}}}{{{}}} + {}^{{{e}}}$.",
                    a,
                    paren(b),
                    paren(c),
                    q * c,
                    c,
                    paren(base)
                ),
                v.to_string(),
            )
        }
    }
}

fn fraction(rng: &mut Rng, max: i64) -> Ratio {
    Ratio::new(i128::from(rng.range_i64(1, max)), i128::from(rng.range_i64(2, max)))
}

fn fractions(rng: &mut Rng, level: u8) -> (String, String) {
    let max = [6, 12, 20][usize::from(level.min(2))];
    let (x, y) = (fraction(rng, max), fraction(rng, max));
    type Op = fn(Ratio, Ratio) -> Ratio;
    let ops: &[(&str, Op)] = &[("+", Ratio::add), ("-", Ratio::sub), ("\\times", Ratio::mul), ("\\div", Ratio::div)];
    let n_ops = if level == 0 { 2 } else { 4 };
    let (op, f) = ops[rng.below(n_ops) as usize];
    let mut value = f(x, y);
    let mut question = format!("{} {op} {}", x.latex(), y.latex());
    if level == 2 {
        let z = fraction(rng, max);
        value = value.add(z);
        question = format!("\\left({question}\\right) + {}", z.latex());
    }
    (format!("Compute ${question}$ and give the answer as a reduced fraction."), value.latex())
}

fn term(coef: i64, var: &str) -> String {
    match coef {
        1 => var.to_owned(),
        -1 => format!("-{var}"),
        c => format!("{c}{var}"),
    }
}

fn signed(v: i64) -> String {
    if v < 0 { format!("- {}", -v) } else { format!("+ {v}") }
}

fn linear(rng: &mut Rng, level: u8) -> (String, String) {
    match level {
        0 => {
            let a = nonzero(rng, 2, 9);
            let x = rng.range_i64(-20, 20);
            let b = rng.range_i64(-30, 30);
            (format!("Solve for $x$: ${} {} = {}$.", term(a, "x"), signed(b), a * x + b), x.to_string())
        }
        1 => {
            let (a, c) = (nonzero(rng, -9, 9), nonzero(rng, -9, 9));
            let a = if a == c { a + 1 } else { a };
            let (b, d) = (rng.range_i64(-30, 30), rng.range_i64(-30, 30));
            // a x + b = c x + d  =>  x = (d - b) / (a - c)
            let x = Ratio::new(i128::from(d - b), i128::from(a - c));
            let (lhs, rhs) = (format!("{} {}", term(a, "x"), signed(b)), format!("{} {}", term(c, "x"), signed(d)));
            (format!("Solve for $x$: ${lhs} = {rhs}$."), x.latex())
        }
        _ => {
            let (x, y) = (rng.range_i64(-10, 10), rng.range_i64(-10, 10));
            let (a, b) = (nonzero(rng, -6, 6), nonzero(rng, -6, 6));
            let (c, mut d) = (nonzero(rng, -6, 6), nonzero(rng, -6, 6));
            if a * d == b * c {
                d += if d > 0 { 1 } else { -1 };
                if a * d == b * c {
                    d += 1;
                }
            }
            let (e, f) = (a * x + b * y, c * x + d * y);
            let q = format!(
                "Solve the system $\\begin{{cases}} {} {} = {e} \\\\ {} {} = {f} \\end{{cases}}$ and give $(x, y)$.",
                term(a, "x"),
                signed_term(b, "y"),
                term(c, "x"),
                signed_term(d, "y")
            );
            (q, format!("({x}, {y})"))
        }
    }
}

fn signed_term(coef: i64, var: &str) -> String {
    match coef {
        1 => format!("+ {var}"),
        -1 => format!("- {var}"),
        c if c < 0 => format!("- {}{var}", -c),
        c => format!("+ {c}{var}"),
    }
}

const NAMES: &[&str] = &["Ada", "Bilal", "Chen", "Dana", "Emeka", "Freya", "Goran", "Hana", "Ines", "Jun"];
const ITEMS: &[(&str, &str)] =
    &[("apples", "bags"), ("pencils", "boxes"), ("stickers", "sheets"), ("cookies", "trays"), ("marbles", "jars")];

fn word(rng: &mut Rng, level: u8) -> (String, String) {
    let name = *rng.choose(NAMES).unwrap_or(&"Ada");
    let (item, pack) = *rng.choose(ITEMS).unwrap_or(&("apples", "bags"));
    match level {
        0 => {
            let (have, got) = (rng.range_i64(3, 40), rng.range_i64(2, 30));
            (
                format!("{name} has {have} {item} and gets {got} more. How many {item} does {name} have now?"),
                (have + got).to_string(),
            )
        }
        1 => {
            let (packs, per, gave) = (rng.range_i64(2, 9), rng.range_i64(3, 12), rng.range_i64(1, 10));
            let have = rng.range_i64(0, 20);
            let total = have + packs * per - gave;
            (
                format!(
                    "{name} has {have} {item}. {name} buys {packs} {pack} with {per} {item} in each, then gives away {gave}. How many {item} does {name} have left?"
                ),
                total.to_string(),
            )
        }
        _ => {
            let price_cents = rng.range_i64(25, 400);
            let count = rng.range_i64(3, 30);
            let discount = [10, 20, 25, 50][rng.below(4) as usize];
            // Total in cents after a percentage discount, as an exact decimal in dollars.
            let total = Ratio::new(i128::from(price_cents * count * (100 - discount)), 100 * 100);
            let dollars = format!("{}.{:02}", price_cents / 100, price_cents % 100);
            (
                format!(
                    "One {} of {item} costs ${dollars}. {name} buys {count} of them with a {discount}% discount on the total. How many dollars does {name} pay?",
                    pack.trim_end_matches('s')
                ),
                total.latex(),
            )
        }
    }
}

/// The generated task `index` of `split`, or `None` if `split` is not a generated split.
pub fn task(split: &str, index: u64) -> Option<Task> {
    let (kind, level) = split.split_once('-')?;
    let level = match level {
        "easy" => 0,
        "medium" => 1,
        "hard" => 2,
        _ => return None,
    };
    let mut rng = Rng::for_task(split, index);
    let (question, answer) = match kind {
        "arithmetic" => arithmetic(&mut rng, level),
        "fractions" => fractions(&mut rng, level),
        "linear" => linear(&mut rng, level),
        "word" => word(&mut rng, level),
        _ => return None,
    };
    Some(Task { id: format!("{split}/{index}"), question, answer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_reduce_and_print() {
        assert_eq!(Ratio::new(6, -8).latex(), "-\\frac{3}{4}");
        assert_eq!(Ratio::new(10, 5).latex(), "2");
        assert_eq!(Ratio::new(1, 3).add(Ratio::new(1, 6)).latex(), "\\frac{1}{2}");
        assert_eq!(Ratio::new(3, 1).div(Ratio::new(3, 4)).latex(), "4");
    }

    #[test]
    fn every_split_generates_deterministically() {
        for split in SPLITS {
            for index in [0, 1, 17, 1_000_000] {
                let a = task(split, index).expect("generated split");
                assert_eq!(Some(a.clone()), task(split, index), "{split}#{index}");
                assert!(!a.question.is_empty() && !a.answer.is_empty());
            }
            assert_ne!(task(split, 0), task(split, 1), "{split}: tasks vary with the index");
        }
        assert_eq!(task("arithmetic-impossible", 0), None);
        assert_eq!(task("gsm8k-sample", 0), None);
    }
}
