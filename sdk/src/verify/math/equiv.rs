//! Equivalence of two parsed answers: structures first, then scalars
//! (exactly where possible, numerically otherwise).

use super::MathError;
use super::eval::{exact, numeric};
use super::expr::{Meter, Poly};
use super::latex::{Node, RelOp};
use num_traits::{Signed, Zero};

/// Outcome of comparing two parsed answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Equal,
    NotEqual,
    TooLarge,
    Indeterminate,
}

/// Comparison context: budget meter and the tolerances in force.
pub(crate) struct Cx {
    pub m: Meter,
    pub rel_tol: f64,
    pub gold_rounding: bool,
    pub percent_fraction: bool,
    pub max_elements: usize,
    /// Significant digits a decimal answer needs to be read as rounded (0: never).
    pub answer_rounding_digits: u32,
}

fn from_err(e: MathError) -> Cmp {
    match e {
        MathError::TooLarge | MathError::Budget => Cmp::TooLarge,
        _ => Cmp::Indeterminate,
    }
}

/// Whether any node below contains `±`.
fn has_pm(n: &Node) -> bool {
    match n {
        Node::Pm(..) => true,
        Node::Neg(a) | Node::Fact(a) | Node::Abs(a) | Node::Percent(a) => has_pm(a),
        Node::Func(_, a, b) => has_pm(a) || b.as_deref().is_some_and(has_pm),
        Node::Div(a, b) | Node::Pow(a, b) | Node::Root(a, b) | Node::Binom(a, b) => has_pm(a) || has_pm(b),
        Node::Add(v) | Node::Mul(v) | Node::Rel(v, _) => v.iter().any(has_pm),
        _ => false,
    }
}

/// Replace every `a ± b` by `a + b` (`plus`) or `a - b`; signs are correlated,
/// so `a ± b ∓ c` gives `{a+b-c, a-b+c}`.
fn subst_pm(n: &Node, plus: bool) -> Node {
    let b = |x: &Node| Box::new(subst_pm(x, plus));
    match n {
        Node::Pm(x, y) => {
            let y2 = subst_pm(y, plus);
            Node::Add(vec![subst_pm(x, plus), if plus { y2 } else { Node::Neg(Box::new(y2)) }])
        }
        Node::Neg(a) => Node::Neg(b(a)),
        Node::Fact(a) => Node::Fact(b(a)),
        Node::Abs(a) => Node::Abs(b(a)),
        Node::Percent(a) => Node::Percent(b(a)),
        Node::Func(f, a, base) => Node::Func(f.clone(), b(a), base.as_deref().map(b)),
        Node::Div(x, y) => Node::Div(b(x), b(y)),
        Node::Pow(x, y) => Node::Pow(b(x), b(y)),
        Node::Root(x, y) => Node::Root(b(x), b(y)),
        Node::Binom(x, y) => Node::Binom(b(x), b(y)),
        Node::Add(v) => Node::Add(v.iter().map(|x| subst_pm(x, plus)).collect()),
        Node::Mul(v) => Node::Mul(v.iter().map(|x| subst_pm(x, plus)).collect()),
        Node::Rel(v, ops) => Node::Rel(v.iter().map(|x| subst_pm(x, plus)).collect(), ops.clone()),
        other => other.clone(),
    }
}

fn flatten_pm(v: &[Node]) -> Vec<Node> {
    let mut out = Vec::new();
    for e in v {
        if has_pm(e) {
            out.push(subst_pm(e, true));
            out.push(subst_pm(e, false));
        } else {
            out.push(e.clone());
        }
    }
    out
}

/// Turn `±` at the top level (or in a list/set) into a set of two answers.
pub(crate) fn expand_pm(n: Node) -> Node {
    match n {
        Node::List(v) => Node::List(flatten_pm(&v)),
        Node::Set(v) => Node::Set(flatten_pm(&v)),
        other if has_pm(&other) => Node::Set(flatten_pm(std::slice::from_ref(&other))),
        other => other,
    }
}

fn has_var(n: &Node) -> bool {
    match n {
        Node::Var(_) => true,
        Node::Neg(a) | Node::Fact(a) | Node::Abs(a) | Node::Percent(a) => has_var(a),
        Node::Func(_, a, b) => has_var(a) || b.as_deref().is_some_and(has_var),
        Node::Div(a, b) | Node::Pow(a, b) | Node::Root(a, b) | Node::Binom(a, b) | Node::Pm(a, b) => {
            has_var(a) || has_var(b)
        }
        Node::Add(v) | Node::Mul(v) | Node::Tuple(v) | Node::Set(v) | Node::List(v) => v.iter().any(has_var),
        _ => false,
    }
}

fn inf_sign(n: &Node) -> Option<i8> {
    match n {
        Node::Inf => Some(1),
        Node::Neg(a) => inf_sign(a).map(|s| -s),
        Node::Add(v) if v.len() == 1 => inf_sign(&v[0]),
        _ => None,
    }
}

fn is_decimal_literal(n: &Node) -> Option<(u32, u32)> {
    match n {
        Node::Num(x) => x.frac_digits.map(|d| (d, x.sig_digits)),
        Node::Neg(a) => is_decimal_literal(a),
        _ => None,
    }
}

fn close(x: f64, y: f64, tol: f64) -> bool {
    x == y || (x - y).abs() <= tol * x.abs().max(y.abs())
}

/// Combine results that must all be equal.
fn all_of(results: impl IntoIterator<Item = Cmp>) -> Cmp {
    let mut worst = Cmp::Equal;
    for r in results {
        match r {
            Cmp::NotEqual => return Cmp::NotEqual,
            Cmp::TooLarge => worst = Cmp::TooLarge,
            Cmp::Indeterminate if worst == Cmp::Equal => worst = Cmp::Indeterminate,
            _ => {}
        }
    }
    worst
}

/// Whether a numeric literal occurs in `n` (digits in subscripts are part
/// of a variable's name and do not count).
fn has_num(n: &Node) -> bool {
    match n {
        Node::Num(_) => true,
        Node::Var(_) | Node::Pi | Node::E | Node::Inf => false,
        Node::Neg(a) | Node::Fact(a) | Node::Abs(a) | Node::Percent(a) => has_num(a),
        Node::Func(_, a, b) => has_num(a) || b.as_deref().is_some_and(has_num),
        Node::Div(a, b) | Node::Pow(a, b) | Node::Root(a, b) | Node::Binom(a, b) | Node::Pm(a, b) => {
            has_num(a) || has_num(b)
        }
        Node::Add(v) | Node::Mul(v) | Node::Tuple(v) | Node::Set(v) | Node::List(v) | Node::Union(v) => {
            v.iter().any(has_num)
        }
        _ => true,
    }
}

/// The value an `=`/`∈` chain names: its last member before any `≈`
/// (`x = 5+5+1 = 11` → 11, `p = \frac{5}{12} \approx 0.42` → 5/12).
fn chain_value(v: &[Node], ops: &[RelOp]) -> Option<usize> {
    if v.len() < 2 {
        return None;
    }
    let exact = ops.iter().take_while(|o| matches!(o, RelOp::Eq | RelOp::In)).count();
    if exact < ops.len() && !ops[exact..].iter().all(|o| *o == RelOp::Approx) {
        return None;
    }
    Some(exact.max(1))
}

/// The value an answer's relation names (`x = 5` → 5, `2 + 3 = 5` → 5).
fn value_of_answer(n: &Node) -> Option<&Node> {
    match n {
        Node::Rel(v, ops) => chain_value(v, ops).map(|k| &v[k]),
        _ => None,
    }
}

/// The value a gold relation names: only when what it names it by holds no
/// number (`x = 5`, `\frac{NO}{BO} = \frac{1}{\sqrt6}`, `(p, q) = (3, 2)`), so
/// an equation such as `2x + z = 1` or `7 = 11a + c` is never its last member.
fn value_of_gold(n: &Node) -> Option<&Node> {
    match n {
        Node::Rel(v, ops) if !has_num(&v[0]) && has_var(&v[0]) => chain_value(v, ops).map(|k| &v[k]),
        _ => None,
    }
}

/// A union of finite sets as one set (`\{1,3\} \cup \{2,4\}` = `\{1,2,3,4\}`).
fn finite_union(n: &Node) -> Option<Node> {
    let Node::Union(parts) = n else { return None };
    let mut items = Vec::new();
    for p in parts {
        let Node::Set(v) = p else { return None };
        items.extend(v.iter().cloned());
    }
    Some(Node::Set(items))
}

fn interval(lo: Node, hi: Node, lo_closed: bool, hi_closed: bool) -> Node {
    Node::Interval { lo: Box::new(lo), hi: Box::new(hi), lo_closed, hi_closed }
}

/// The quantity an inequality bounds: the one member that is a variable or
/// a product or function of variables without numbers (`x`, `f(x)`, `|z|`
/// is not one: it is two-sided), not negated.
fn bounded_quantity(n: &Node) -> Option<&Node> {
    let Node::Rel(v, _) = n else { return None };
    let quantity = |x: &Node| has_var(x) && !has_num(x) && !matches!(x, Node::Neg(_) | Node::Add(_) | Node::Abs(_));
    let mut found = v.iter().filter(|x| quantity(x));
    let one = found.next()?;
    found.next().is_none().then_some(one)
}

/// `x < 3` → `(-∞, 3)`, `1 \le x < 2` → `[1, 2)`, `x \in I` → `I`.
fn rel_to_interval(n: &Node) -> Option<Node> {
    let Node::Rel(v, ops) = n else { return None };
    let neg_inf = || Node::Neg(Box::new(Node::Inf));
    let lone = |x: &Node| bounded_quantity(n) == Some(x);
    match (v.as_slice(), ops.as_slice()) {
        ([x, set], [RelOp::In]) if lone(x) => Some(set.clone()),
        ([x, c], [op]) if lone(x) && !has_var(c) => match op {
            RelOp::Lt | RelOp::Le => Some(interval(neg_inf(), c.clone(), false, *op == RelOp::Le)),
            RelOp::Gt | RelOp::Ge => Some(interval(c.clone(), Node::Inf, *op == RelOp::Ge, false)),
            _ => None,
        },
        ([c, x], [op]) if lone(x) && !has_var(c) => match op {
            RelOp::Lt | RelOp::Le => Some(interval(c.clone(), Node::Inf, *op == RelOp::Le, false)),
            RelOp::Gt | RelOp::Ge => Some(interval(neg_inf(), c.clone(), false, *op == RelOp::Ge)),
            _ => None,
        },
        ([a, x, b], [o1, o2]) if lone(x) && !has_var(a) && !has_var(b) => {
            let lt = |o: &RelOp| matches!(o, RelOp::Lt | RelOp::Le);
            let gt = |o: &RelOp| matches!(o, RelOp::Gt | RelOp::Ge);
            if lt(o1) && lt(o2) {
                Some(interval(a.clone(), b.clone(), *o1 == RelOp::Le, *o2 == RelOp::Le))
            } else if gt(o1) && gt(o2) {
                Some(interval(b.clone(), a.clone(), *o2 == RelOp::Ge, *o1 == RelOp::Ge))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// `a \le |q| \le b` (or `|q| \le b`) with non-negative numbers `a`, `b`, as
/// the quantity `q` and the set it ranges over: `[-b, -a] ∪ [a, b]` (or `[-b, b]`).
fn abs_rel_to_set(n: &Node) -> Option<(&Node, Node)> {
    let Node::Rel(v, ops) = n else { return None };
    let lt = |o: &RelOp| matches!(o, RelOp::Lt | RelOp::Le);
    let number = |x: &Node| !has_var(x) && matches!(x, Node::Num(_) | Node::Div(..));
    let neg = |x: &Node| Node::Neg(Box::new(x.clone()));
    match (v.as_slice(), ops.as_slice()) {
        ([Node::Abs(q), b], [o]) if lt(o) && number(b) => {
            let closed = *o == RelOp::Le;
            Some((q, interval(neg(b), b.clone(), closed, closed)))
        }
        ([a, Node::Abs(q), b], [o1, o2]) if lt(o1) && lt(o2) && number(a) && number(b) => {
            let (ca, cb) = (*o1 == RelOp::Le, *o2 == RelOp::Le);
            Some((q, Node::Union(vec![interval(neg(b), neg(a), cb, ca), interval(a.clone(), b.clone(), ca, cb)])))
        }
        _ => None,
    }
}

/// Sums and products of numeric matrices, worked out entry by entry
/// (`A + B`, `A B`, `k A`), so they compare with the matrix they equal.
fn fold_matrices(n: &Node) -> Option<Node> {
    let as_matrix = |x: &Node| match x {
        Node::Matrix(m) => Some(m.clone()),
        other => fold_matrices(other).and_then(|f| if let Node::Matrix(m) = f { Some(m) } else { None }),
    };
    match n {
        Node::Add(terms) if terms.len() > 1 => {
            let mut acc: Option<Vec<Vec<Node>>> = None;
            for t in terms {
                let (m, negate) = match t {
                    Node::Neg(x) => (as_matrix(x)?, true),
                    x => (as_matrix(x)?, false),
                };
                let m: Vec<Vec<Node>> = if negate {
                    m.into_iter().map(|r| r.into_iter().map(|e| Node::Neg(Box::new(e))).collect()).collect()
                } else {
                    m
                };
                acc = Some(match acc {
                    None => m,
                    Some(a) => {
                        if a.len() != m.len() || a.iter().zip(&m).any(|(r, s)| r.len() != s.len()) {
                            return None;
                        }
                        a.into_iter()
                            .zip(m)
                            .map(|(r, s)| r.into_iter().zip(s).map(|(x, y)| Node::Add(vec![x, y])).collect())
                            .collect()
                    }
                });
            }
            acc.map(Node::Matrix)
        }
        Node::Mul(factors) if factors.len() > 1 && factors.iter().any(|f| as_matrix(f).is_some()) => {
            let mut acc: Option<Vec<Vec<Node>>> = None;
            let mut scale: Vec<Node> = Vec::new();
            for f in factors {
                match as_matrix(f) {
                    Some(m) => {
                        acc = Some(match acc {
                            None => m,
                            Some(a) => {
                                let inner = m.len();
                                if a.iter().any(|r| r.len() != inner) || inner == 0 {
                                    return None;
                                }
                                let cols = m[0].len();
                                a.iter()
                                    .map(|r| {
                                        (0..cols)
                                            .map(|j| {
                                                Node::Add(
                                                    (0..inner)
                                                        .map(|k| Node::Mul(vec![r[k].clone(), m[k][j].clone()]))
                                                        .collect(),
                                                )
                                            })
                                            .collect()
                                    })
                                    .collect()
                            }
                        });
                    }
                    None if !matches!(f, Node::Tuple(_) | Node::List(_) | Node::Set(_)) => scale.push(f.clone()),
                    None => return None,
                }
            }
            let m = acc?;
            if scale.is_empty() {
                return Some(Node::Matrix(m));
            }
            Some(Node::Matrix(
                m.into_iter()
                    .map(|r| r.into_iter().map(|e| Node::Mul(scale.iter().cloned().chain([e]).collect())).collect())
                    .collect(),
            ))
        }
        _ => None,
    }
}

fn is_intervalish(n: &Node) -> bool {
    matches!(n, Node::Interval { .. } | Node::Union(_)) || matches!(n, Node::Tuple(v) if v.len() == 2)
}

fn diff(l: &Node, r: &Node) -> Node {
    Node::Add(vec![l.clone(), Node::Neg(Box::new(r.clone()))])
}

impl Cx {
    /// Compare gold `g` with answer `a`.
    pub(crate) fn compare(&mut self, g: &Node, a: &Node) -> Cmp {
        if let Err(e) = self.m.step(1) {
            return from_err(e);
        }
        if let Some(u) = finite_union(g) {
            return self.compare(&u, a);
        }
        if let Some(m) = fold_matrices(g) {
            return self.compare(&m, a);
        }
        if let Some(m) = fold_matrices(a) {
            return self.compare(g, &m);
        }
        if let Some((q, set)) = abs_rel_to_set(g) {
            return match a {
                Node::Rel(v, ops) if v.len() == 2 && ops == &[RelOp::In] && &v[0] == q => self.compare(&set, &v[1]),
                Node::Rel(..) => Cmp::NotEqual,
                _ => self.compare(&set, a),
            };
        }
        if let Some(u) = finite_union(a) {
            return self.compare(g, &u);
        }
        if g == a {
            return Cmp::Equal;
        }
        // Singleton sets/lists equal their element.
        if let Node::Set(v) | Node::List(v) = g
            && v.len() == 1
            && !a.is_collection()
        {
            return self.compare(&v[0], a);
        }
        if let Node::Set(v) | Node::List(v) = a
            && v.len() == 1
            && !g.is_collection()
        {
            return self.compare(g, &v[0]);
        }
        match (g, a) {
            (Node::Rel(..), Node::Rel(..)) => self.rel_vs_rel(g, a),
            (Node::Rel(..), _) if is_intervalish(a) && rel_to_interval(g).is_some() => {
                let gi = rel_to_interval(g).unwrap_or(Node::Inf);
                self.compare(&gi, a)
            }
            (_, Node::Rel(..)) if is_intervalish(g) && rel_to_interval(a).is_some() => {
                let ai = rel_to_interval(a).unwrap_or(Node::Inf);
                self.compare(g, &ai)
            }
            (Node::Rel(..), _) => match value_of_gold(g) {
                Some(v) => self.compare(v, a),
                None => Cmp::NotEqual,
            },
            (_, Node::Rel(..)) => match value_of_answer(a) {
                Some(v) => self.compare(g, v),
                None => Cmp::NotEqual,
            },
            (
                Node::Interval { lo, hi, lo_closed, hi_closed },
                Node::Interval { lo: lo2, hi: hi2, lo_closed: lc2, hi_closed: hc2 },
            ) => {
                if lo_closed != lc2 || hi_closed != hc2 {
                    return Cmp::NotEqual;
                }
                self.ordered(&[(**lo).clone(), (**hi).clone()], &[(**lo2).clone(), (**hi2).clone()])
            }
            (Node::Interval { lo, hi, lo_closed: false, hi_closed: false }, Node::Tuple(v))
            | (Node::Tuple(v), Node::Interval { lo, hi, lo_closed: false, hi_closed: false })
                if v.len() == 2 =>
            {
                let iv = [(**lo).clone(), (**hi).clone()];
                if matches!(g, Node::Tuple(_)) { self.ordered(v, &iv) } else { self.ordered(&iv, v) }
            }
            (Node::Union(x), Node::Union(y)) => self.unordered(x, y),
            (Node::Tuple(x), Node::Tuple(y)) | (Node::Tuple(x), Node::List(y)) | (Node::List(x), Node::Tuple(y)) => {
                self.ordered(x, y)
            }
            (Node::Set(x) | Node::List(x), Node::Set(y) | Node::List(y)) => self.unordered(x, y),
            (Node::Matrix(x), Node::Matrix(y)) => {
                if x.len() != y.len() || x.iter().zip(y).any(|(r, s)| r.len() != s.len()) {
                    return Cmp::NotEqual;
                }
                let fx: Vec<Node> = x.iter().flatten().cloned().collect();
                let fy: Vec<Node> = y.iter().flatten().cloned().collect();
                self.ordered(&fx, &fy)
            }
            (Node::Matrix(x), Node::Tuple(y)) => match vector_of(x) {
                Some(v) => self.ordered(&v, y),
                None => Cmp::NotEqual,
            },
            (Node::Tuple(x), Node::Matrix(y)) => match vector_of(y) {
                Some(v) => self.ordered(x, &v),
                None => Cmp::NotEqual,
            },
            _ if g.is_collection() || a.is_collection() => Cmp::NotEqual,
            _ if matches!(g, Node::Set(_) | Node::List(_)) || matches!(a, Node::Set(_) | Node::List(_)) => {
                Cmp::NotEqual
            }
            _ => self.scalar(g, a),
        }
    }

    fn ordered(&mut self, x: &[Node], y: &[Node]) -> Cmp {
        if x.len() != y.len() {
            return Cmp::NotEqual;
        }
        let mut worst = Cmp::Equal;
        for (p, q) in x.iter().zip(y) {
            let r = self.compare(p, q);
            worst = all_of([worst, r]);
            if worst == Cmp::NotEqual {
                return worst;
            }
        }
        worst
    }

    /// Set equality: every gold element matches some answer element and
    /// vice versa (multiplicities ignored).
    fn unordered(&mut self, x: &[Node], y: &[Node]) -> Cmp {
        if x.len() > self.max_elements || y.len() > self.max_elements {
            return Cmp::TooLarge;
        }
        let mut table = vec![vec![Cmp::NotEqual; y.len()]; x.len()];
        for (i, p) in x.iter().enumerate() {
            for (j, q) in y.iter().enumerate() {
                table[i][j] = self.compare(p, q);
            }
        }
        let mut worst = Cmp::Equal;
        let mut judge = |cells: Vec<Cmp>| {
            if cells.contains(&Cmp::Equal) {
                return;
            }
            let r = if cells.contains(&Cmp::TooLarge) {
                Cmp::TooLarge
            } else if cells.contains(&Cmp::Indeterminate) {
                Cmp::Indeterminate
            } else {
                Cmp::NotEqual
            };
            worst = match (worst, r) {
                (Cmp::NotEqual, _) | (_, Cmp::NotEqual) => Cmp::NotEqual,
                (Cmp::TooLarge, _) | (_, Cmp::TooLarge) => Cmp::TooLarge,
                _ => Cmp::Indeterminate,
            };
        };
        for row in &table {
            judge(row.clone());
        }
        for j in 0..y.len() {
            judge(table.iter().map(|r| r[j]).collect());
        }
        worst
    }

    fn rel_vs_rel(&mut self, g: &Node, a: &Node) -> Cmp {
        let (Node::Rel(gv, gops), Node::Rel(av, aops)) = (g, a) else {
            return Cmp::NotEqual;
        };
        let eqish = |o: &RelOp| matches!(o, RelOp::Eq | RelOp::Approx);
        // Chains that name a value by the same thing: `x = 11` and `x = 5+5+1 = 11`.
        if (gv.len() > 2 || av.len() > 2)
            && gv[0] == av[0]
            && let (Some(x), Some(y)) = (value_of_gold(g), value_of_answer(a))
        {
            return self.compare(x, y);
        }
        if gv.len() == 2 && av.len() == 2 && eqish(&gops[0]) && eqish(&aops[0]) {
            let r = self.proportional(&diff(&gv[0], &gv[1]), &diff(&av[0], &av[1]), false);
            if r == Cmp::Equal {
                return r;
            }
            // `x = 5` against `y = 5`: both name a value.
            let lone = |v: &[Node]| matches!(v[0], Node::Var(_)) && !has_var(&v[1]);
            if lone(gv) && lone(av) {
                return self.compare(&gv[1], &av[1]);
            }
            return r;
        }
        if let (Some(gi), Some(ai)) = (rel_to_interval(g), rel_to_interval(a))
            && bounded_quantity(g) == bounded_quantity(a)
        {
            return self.compare(&gi, &ai);
        }
        let (gv, gops) = orient(gv, gops);
        let (av, aops) = orient(av, aops);
        if gops != aops {
            return Cmp::NotEqual;
        }
        if gv.len() == 2 && av.len() == 2 {
            let positive = !matches!(gops[0], RelOp::Ne | RelOp::Eq | RelOp::Approx);
            return self.proportional(&diff(&gv[0], &gv[1]), &diff(&av[0], &av[1]), positive);
        }
        self.ordered(&gv, &av)
    }

    /// Whether `q = k p` for a constant `k ≠ 0` (`k > 0` when `positive`).
    fn proportional(&mut self, p: &Node, q: &Node, positive: bool) -> Cmp {
        let ep = exact(p, &mut self.m);
        let eq = exact(q, &mut self.m);
        match (ep, eq) {
            (Ok(pp), Ok(qq)) => match poly_ratio(&pp, &qq, &mut self.m) {
                Ok(Some(k)) if !positive || k.is_positive() => Cmp::Equal,
                Ok(_) => Cmp::NotEqual,
                Err(e) => from_err(e),
            },
            (Err(e @ (MathError::TooLarge | MathError::Budget)), _)
            | (_, Err(e @ (MathError::TooLarge | MathError::Budget))) => from_err(e),
            _ => {
                let mut ratio: Option<f64> = None;
                for pt in 0..3 {
                    let (x, y) = match (numeric(p, pt, &mut self.m), numeric(q, pt, &mut self.m)) {
                        (Ok(x), Ok(y)) => (x, y),
                        (Err(e), _) | (_, Err(e)) => return from_err(e),
                    };
                    if !x.is_finite() || !y.is_finite() {
                        return Cmp::Indeterminate;
                    }
                    if x == 0.0 || y == 0.0 {
                        if x == y {
                            continue;
                        }
                        return Cmp::NotEqual;
                    }
                    let r = y / x;
                    if positive && r < 0.0 {
                        return Cmp::NotEqual;
                    }
                    match ratio {
                        None => ratio = Some(r),
                        Some(r0) if close(r0, r, self.rel_tol.max(1e-9)) => {}
                        Some(_) => return Cmp::NotEqual,
                    }
                }
                Cmp::Equal
            }
        }
    }

    fn scalar(&mut self, g: &Node, a: &Node) -> Cmp {
        if self.percent_fraction {
            if let Node::Percent(x) = g {
                let alt = Node::Div(x.clone(), Box::new(hundred()));
                let r1 = self.scalar_plain(x, a);
                if r1 == Cmp::Equal {
                    return r1;
                }
                return self.scalar_plain(&alt, a);
            }
            if let Node::Percent(y) = a {
                let alt = Node::Div(y.clone(), Box::new(hundred()));
                let r1 = self.scalar_plain(g, y);
                if r1 == Cmp::Equal {
                    return r1;
                }
                return self.scalar_plain(g, &alt);
            }
        } else {
            if let Node::Percent(x) = g {
                return self.scalar_plain(x, strip_percent(a));
            }
            if let Node::Percent(y) = a {
                return self.scalar_plain(g, y);
            }
        }
        self.scalar_plain(g, a)
    }

    fn scalar_plain(&mut self, g: &Node, a: &Node) -> Cmp {
        if g == a {
            return Cmp::Equal;
        }
        match (inf_sign(g), inf_sign(a)) {
            (Some(x), Some(y)) => return if x == y { Cmp::Equal } else { Cmp::NotEqual },
            (Some(_), None) | (None, Some(_)) => return Cmp::NotEqual,
            _ => {}
        }
        let eg = exact(g, &mut self.m);
        let ea = exact(a, &mut self.m);
        match (eg, ea) {
            (Err(e @ (MathError::TooLarge | MathError::Budget)), _)
            | (_, Err(e @ (MathError::TooLarge | MathError::Budget))) => from_err(e),
            (Ok(pg), Ok(pa)) => {
                let d = match pg.sub(&pa, &mut self.m) {
                    Ok(d) => d,
                    Err(e) => return from_err(e),
                };
                if d.is_zero() {
                    return Cmp::Equal;
                }
                if self.gold_rounding_match(g, a) || self.answer_rounding_match(g, a) {
                    return Cmp::Equal;
                }
                if pg.has_free_vars() || pa.has_free_vars() {
                    return Cmp::NotEqual;
                }
                if pg.as_rational().is_some() && pa.as_rational().is_some() {
                    return Cmp::NotEqual;
                }
                // Irrational values that differ exactly may still be a decimal
                // approximation within the relative tolerance.
                self.numeric_cmp(g, a, 1)
            }
            _ => {
                let pts = if has_var(g) || has_var(a) { 3 } else { 1 };
                let r = self.numeric_cmp(g, a, pts);
                if r == Cmp::NotEqual && (self.gold_rounding_match(g, a) || self.answer_rounding_match(g, a)) {
                    return Cmp::Equal;
                }
                r
            }
        }
    }

    fn numeric_cmp(&mut self, g: &Node, a: &Node, points: u32) -> Cmp {
        for pt in 0..points {
            let (x, y) = match (numeric(g, pt, &mut self.m), numeric(a, pt, &mut self.m)) {
                (Ok(x), Ok(y)) => (x, y),
                (Err(e), _) | (_, Err(e)) => return from_err(e),
            };
            if !x.is_finite() || !y.is_finite() {
                return Cmp::Indeterminate;
            }
            if !close(x, y, self.rel_tol) {
                return Cmp::NotEqual;
            }
        }
        Cmp::Equal
    }

    /// A decimal gold with at least two significant digits is read as
    /// rounded: a non-decimal answer (fraction, radical, π) matches when it
    /// rounds to the gold at the gold's number of decimal places.
    fn gold_rounding_match(&mut self, g: &Node, a: &Node) -> bool {
        if !self.gold_rounding || is_decimal_literal(a).is_some() || has_var(a) {
            return false;
        }
        let Some((digits, sig)) = is_decimal_literal(g) else {
            return false;
        };
        if sig < 2 || digits == 0 || digits > 15 {
            return false;
        }
        let (Ok(x), Ok(y)) = (numeric(g, 0, &mut self.m), numeric(a, 0, &mut self.m)) else {
            return false;
        };
        if !x.is_finite() || !y.is_finite() {
            return false;
        }
        let half_ulp = 0.5 * 10f64.powi(-(digits as i32));
        (x - y).abs() <= half_ulp * (1.0 + 1e-9)
    }
}

impl Cx {
    /// A decimal answer with at least [`Cx::answer_rounding_digits`]
    /// significant digits, against an exact gold that is not a decimal,
    /// matches when the gold rounds to it at its last written place
    /// (`2.6667` for `\frac83`, `0.0833333333333333` for `\frac1{12}`;
    /// `2.6666` and `0.333` do not).
    fn answer_rounding_match(&mut self, g: &Node, a: &Node) -> bool {
        if self.answer_rounding_digits == 0 || is_decimal_literal(g).is_some() || has_var(g) {
            return false;
        }
        let Some((digits, sig)) = is_decimal_literal(a) else {
            return false;
        };
        if sig < self.answer_rounding_digits || digits == 0 || digits > 20 {
            return false;
        }
        let (Ok(x), Ok(y)) = (numeric(g, 0, &mut self.m), numeric(a, 0, &mut self.m)) else {
            return false;
        };
        if !x.is_finite() || !y.is_finite() {
            return false;
        }
        let half_ulp = 0.5 * 10f64.powi(-(digits as i32));
        (x - y).abs() <= half_ulp.max(4.0 * f64::EPSILON * x.abs()) * (1.0 + 1e-9)
    }
}

fn strip_percent(n: &Node) -> &Node {
    match n {
        Node::Percent(x) => x,
        other => other,
    }
}

fn hundred() -> Node {
    Node::Num(super::latex::Number {
        value: num_rational::BigRational::from_integer(100.into()),
        frac_digits: None,
        sig_digits: 1,
    })
}

/// Flip `>`/`≥` relations into `<`/`≤` by reversing the chain.
fn orient(v: &[Node], ops: &[RelOp]) -> (Vec<Node>, Vec<RelOp>) {
    if ops.iter().any(|o| matches!(o, RelOp::Gt | RelOp::Ge)) {
        let nv: Vec<Node> = v.iter().rev().cloned().collect();
        let nops = ops
            .iter()
            .rev()
            .map(|o| match o {
                RelOp::Gt => RelOp::Lt,
                RelOp::Ge => RelOp::Le,
                RelOp::Lt => RelOp::Gt,
                RelOp::Le => RelOp::Ge,
                other => *other,
            })
            .collect();
        (nv, nops)
    } else {
        (v.to_vec(), ops.to_vec())
    }
}

fn vector_of(rows: &[Vec<Node>]) -> Option<Vec<Node>> {
    if rows.len() == 1 {
        return rows.first().cloned();
    }
    if rows.iter().all(|r| r.len() == 1) {
        return Some(rows.iter().filter_map(|r| r.first().cloned()).collect());
    }
    None
}

/// `Some(k)` when `q = k p` with a rational `k ≠ 0`.
fn poly_ratio(p: &Poly, q: &Poly, m: &mut Meter) -> Result<Option<num_rational::BigRational>, MathError> {
    if p.is_zero() || q.is_zero() {
        return Ok(None);
    }
    let Some((mono, c)) = p.terms.iter().next() else {
        return Ok(None);
    };
    let Some(d) = q.terms.get(mono) else {
        return Ok(None);
    };
    let k = d / c;
    if k.is_zero() {
        return Ok(None);
    }
    let scaled = p.scale(&k, m)?;
    Ok(if &scaled == q { Some(k) } else { None })
}
