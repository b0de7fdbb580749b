//! Tokenizer and recursive-descent parser from normalised LaTeX to an answer tree.

use super::MathError;
use num_bigint::BigInt;
use num_rational::BigRational;
use std::fmt::{self, Write as _};

/// A literal number.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Number {
    /// Exact value of the literal.
    pub value: BigRational,
    /// Digits after the decimal point when written as a decimal (`0.25` → 2).
    pub frac_digits: Option<u32>,
    /// Significant digits as written.
    pub sig_digits: u32,
}

/// Relation operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RelOp {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `\le`
    Le,
    /// `>`
    Gt,
    /// `\ge`
    Ge,
    /// `\ne`
    Ne,
    /// `\in`
    In,
    /// `\approx`
    Approx,
}

/// Answer tree: scalar expressions plus the structures answers come in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Num(Number),
    Var(String),
    Pi,
    E,
    Inf,
    Neg(Box<Node>),
    Add(Vec<Node>),
    Mul(Vec<Node>),
    Div(Box<Node>, Box<Node>),
    Pow(Box<Node>, Box<Node>),
    /// `Root(index, radicand)`
    Root(Box<Node>, Box<Node>),
    Fact(Box<Node>),
    Binom(Box<Node>, Box<Node>),
    /// `Func(name, argument, log base)`
    Func(String, Box<Node>, Option<Box<Node>>),
    Abs(Box<Node>),
    /// `a ± b`
    Pm(Box<Node>, Box<Node>),
    Percent(Box<Node>),
    Tuple(Vec<Node>),
    Set(Vec<Node>),
    /// A bare comma-separated list.
    List(Vec<Node>),
    Interval {
        lo: Box<Node>,
        hi: Box<Node>,
        lo_closed: bool,
        hi_closed: bool,
    },
    Union(Vec<Node>),
    Matrix(Vec<Vec<Node>>),
    Rel(Vec<Node>, Vec<RelOp>),
}

impl Node {
    /// Whether this is a structure of several items (tuple, set, list, ...).
    pub(crate) fn is_collection(&self) -> bool {
        match self {
            Node::Tuple(_) | Node::Interval { .. } | Node::Union(_) | Node::Matrix(_) => true,
            Node::Set(v) | Node::List(v) => v.len() != 1,
            Node::Rel(v, _) => v.iter().any(Node::is_collection),
            _ => false,
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, v: &[Node], sep: &str) -> fmt::Result {
            for (i, n) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{n}")?;
            }
            Ok(())
        }
        match self {
            Node::Num(n) => write!(f, "{}", n.value),
            Node::Var(v) => write!(f, "{v}"),
            Node::Pi => f.write_str("pi"),
            Node::E => f.write_str("e"),
            Node::Inf => f.write_str("inf"),
            Node::Neg(a) => write!(f, "(-{a})"),
            Node::Add(v) => {
                f.write_char('(')?;
                list(f, v, "+")?;
                f.write_char(')')
            }
            Node::Mul(v) => {
                f.write_char('(')?;
                list(f, v, "*")?;
                f.write_char(')')
            }
            Node::Div(a, b) => write!(f, "({a}/{b})"),
            Node::Pow(a, b) => write!(f, "({a}^{b})"),
            Node::Root(i, a) => write!(f, "root({i},{a})"),
            Node::Fact(a) => write!(f, "({a}!)"),
            Node::Binom(a, b) => write!(f, "binom({a},{b})"),
            Node::Func(n, a, b) => match b {
                Some(b) => write!(f, "{n}_{b}({a})"),
                None => write!(f, "{n}({a})"),
            },
            Node::Abs(a) => write!(f, "|{a}|"),
            Node::Pm(a, b) => write!(f, "({a}pm{b})"),
            Node::Percent(a) => write!(f, "({a}%)"),
            Node::Tuple(v) => {
                f.write_str("tuple(")?;
                list(f, v, ",")?;
                f.write_char(')')
            }
            Node::Set(v) => {
                f.write_str("set(")?;
                list(f, v, ",")?;
                f.write_char(')')
            }
            Node::List(v) => {
                f.write_str("list(")?;
                list(f, v, ",")?;
                f.write_char(')')
            }
            Node::Interval { lo, hi, lo_closed, hi_closed } => {
                write!(f, "{}{lo},{hi}{}", if *lo_closed { '[' } else { '(' }, if *hi_closed { ']' } else { ')' })
            }
            Node::Union(v) => list(f, v, "u"),
            Node::Matrix(rows) => {
                f.write_str("mat(")?;
                for r in rows {
                    f.write_char('[')?;
                    list(f, r, ",")?;
                    f.write_char(']')?;
                }
                f.write_char(')')
            }
            Node::Rel(v, ops) => {
                for (i, n) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, "{:?}", ops.get(i - 1).copied().unwrap_or(RelOp::Eq))?;
                    }
                    write!(f, "{n}")?;
                }
                Ok(())
            }
        }
    }
}

/// Lexical tokens.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Num(String),
    Ident(char),
    Cmd(String),
    Sym(char),
    /// `\{`
    LSet,
    /// `\}`
    RSet,
    /// `\\`
    RowSep,
    Le,
    Ge,
}

/// Split a normalised string into tokens. With `thousands`, digit groups such
/// as `1,234,567` at bracket depth zero become one number.
pub(crate) fn lex(s: &str, thousands: bool) -> Vec<Tok> {
    let c: Vec<char> = s.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut depth: i64 = 0;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        if ch.is_ascii_digit() || (ch == '.' && at(i + 1).is_ascii_digit()) {
            let mut num = String::new();
            while at(i).is_ascii_digit() {
                num.push(at(i));
                i += 1;
            }
            if thousands && depth == 0 && !num.is_empty() && num.len() <= 3 {
                while at(i) == ','
                    && at(i + 1).is_ascii_digit()
                    && at(i + 2).is_ascii_digit()
                    && at(i + 3).is_ascii_digit()
                    && !at(i + 4).is_ascii_digit()
                {
                    num.extend([at(i + 1), at(i + 2), at(i + 3)]);
                    i += 4;
                }
            }
            if at(i) == '.' && at(i + 1).is_ascii_digit() {
                num.push('.');
                i += 1;
                while at(i).is_ascii_digit() {
                    num.push(at(i));
                    i += 1;
                }
            }
            let e = at(i);
            if (e == 'e' || e == 'E')
                && (at(i + 1).is_ascii_digit()
                    || ((at(i + 1) == '-' || at(i + 1) == '+') && at(i + 2).is_ascii_digit()))
            {
                num.push('e');
                i += 1;
                if at(i) == '-' || at(i) == '+' {
                    num.push(at(i));
                    i += 1;
                }
                while at(i).is_ascii_digit() {
                    num.push(at(i));
                    i += 1;
                }
            }
            out.push(Tok::Num(num));
            continue;
        }
        if ch == '\\' {
            let n = at(i + 1);
            if n.is_ascii_alphabetic() {
                let mut name = String::new();
                i += 1;
                while at(i).is_ascii_alphabetic() {
                    name.push(at(i));
                    i += 1;
                }
                out.push(Tok::Cmd(name));
                continue;
            }
            i += 2;
            match n {
                '{' => {
                    depth += 1;
                    out.push(Tok::LSet)
                }
                '}' => {
                    depth -= 1;
                    out.push(Tok::RSet)
                }
                '\\' => out.push(Tok::RowSep),
                '%' => out.push(Tok::Sym('%')),
                '|' => out.push(Tok::Sym('|')),
                _ => {}
            }
            continue;
        }
        if ch == '!' && at(i + 1) == '=' {
            out.push(Tok::Cmd("ne".into()));
            i += 2;
            continue;
        }
        if ch == '<' && at(i + 1) == '=' {
            out.push(Tok::Le);
            i += 2;
            continue;
        }
        if ch == '>' && at(i + 1) == '=' {
            out.push(Tok::Ge);
            i += 2;
            continue;
        }
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if ch.is_alphabetic() {
            out.push(Tok::Ident(ch));
        } else {
            out.push(Tok::Sym(ch));
        }
        i += 1;
    }
    out
}

const FUNCS: &[&str] = &[
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "ln", "log", "exp",
    "lg",
];

const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Sigma",
    "Phi",
    "Psi",
    "Omega",
];

/// Commands that are operators rather than the start of an operand.
const OPERATOR_CMDS: &[&str] = &[
    "cdot", "times", "div", "pm", "mp", "cup", "cap", "le", "leq", "leqslant", "ge", "geq", "geqslant", "ne", "neq",
    "in", "approx", "simeq", "equiv", "lt", "gt", "end", "right", "rfloor", "rceil", "to", "quad", "qquad", "setminus",
];

fn relop(t: &Tok) -> Option<RelOp> {
    match t {
        Tok::Sym('=') => Some(RelOp::Eq),
        Tok::Sym('<') => Some(RelOp::Lt),
        Tok::Sym('>') => Some(RelOp::Gt),
        Tok::Le => Some(RelOp::Le),
        Tok::Ge => Some(RelOp::Ge),
        Tok::Cmd(c) => match c.as_str() {
            "le" | "leq" | "leqslant" => Some(RelOp::Le),
            "ge" | "geq" | "geqslant" => Some(RelOp::Ge),
            "lt" => Some(RelOp::Lt),
            "gt" => Some(RelOp::Gt),
            "ne" | "neq" => Some(RelOp::Ne),
            "in" => Some(RelOp::In),
            "approx" | "simeq" | "equiv" => Some(RelOp::Approx),
            _ => None,
        },
        _ => None,
    }
}

/// Parse a number literal such as `12`, `0.25`, `.5` or `3e-5`.
pub(crate) fn parse_number(s: &str, max_bits: u64) -> Result<Number, MathError> {
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s, None),
    };
    let (int_part, frac_part) = match mant.find('.') {
        Some(p) => (&mant[..p], Some(&mant[p + 1..])),
        None => (mant, None),
    };
    let digits: String = int_part.chars().chain(frac_part.unwrap_or("").chars()).collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(MathError::Parse(format!("bad number {s:?}")));
    }
    let frac_len = frac_part.map(str::len).unwrap_or(0);
    let e: i64 = match exp {
        Some(e) if e.len() > 7 => return Err(MathError::TooLarge),
        Some(e) => e.parse().map_err(|_| MathError::Parse(format!("bad exponent {s:?}")))?,
        None => 0,
    };
    let bits_est = (digits.len() as f64 + e.unsigned_abs() as f64 + frac_len as f64) * 3.33;
    if bits_est > max_bits as f64 {
        return Err(MathError::TooLarge);
    }
    let n: BigInt = digits.parse().map_err(|_| MathError::Parse(format!("bad number {s:?}")))?;
    let shift = e - frac_len as i64;
    let ten = BigInt::from(10u32);
    let p = num_traits::pow::Pow::pow(&ten, shift.unsigned_abs());
    let value = if shift >= 0 { BigRational::from_integer(n * p) } else { BigRational::new(n, p) };
    let sig = digits.trim_start_matches('0').len().max(1) as u32;
    Ok(Number {
        value,
        frac_digits: if exp.is_none() { frac_part.map(|f| f.len() as u32) } else { None },
        sig_digits: sig,
    })
}

fn int_node(n: i64) -> Node {
    Node::Num(Number { value: BigRational::from_integer(BigInt::from(n)), frac_digits: None, sig_digits: 1 })
}

fn is_int_literal(n: &Node) -> bool {
    matches!(n, Node::Num(Number { frac_digits: None, value, .. }) if value.is_integer())
}

fn mul(left: Node, right: Node) -> Node {
    match left {
        Node::Mul(mut v) => {
            v.push(right);
            Node::Mul(v)
        }
        l => Node::Mul(vec![l, right]),
    }
}

fn collapse_add(mut terms: Vec<Node>) -> Node {
    if terms.len() == 1 { terms.pop().unwrap_or(Node::Add(Vec::new())) } else { Node::Add(terms) }
}

/// Recursive-descent parser over a token list.
pub(crate) struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    max_depth: usize,
    max_bits: u64,
}

/// Parse a whole normalised answer. Top-level `;` separates groups of
/// answers (`p=5, q=2; p=7, q=2`): a group of assignments to variables is the
/// tuple of their values, and the groups form a list.
pub(crate) fn parse(s: &str, thousands: bool, max_depth: usize, max_bits: u64) -> Result<Node, MathError> {
    let toks = lex(s, thousands);
    let mut depth = 0i64;
    let mut groups: Vec<Vec<Tok>> = vec![Vec::new()];
    for t in toks {
        match t {
            Tok::Sym('(' | '[' | '{') | Tok::LSet => depth += 1,
            Tok::Sym(')' | ']' | '}') | Tok::RSet => depth -= 1,
            _ => {}
        }
        if depth == 0 && t == Tok::Sym(';') {
            groups.push(Vec::new());
        } else if let Some(g) = groups.last_mut() {
            g.push(t);
        }
    }
    groups.retain(|g| !g.is_empty());
    if groups.len() <= 1 {
        return parse_tokens(groups.pop().unwrap_or_default(), max_depth, max_bits);
    }
    let mut items = Vec::with_capacity(groups.len());
    for g in groups {
        items.push(assignments_as_tuple(parse_tokens(g, max_depth, max_bits)?));
    }
    Ok(Node::List(items))
}

/// `p = 5, q = 2` as `(5, 2)`; anything else as it is.
fn assignments_as_tuple(n: Node) -> Node {
    let Node::List(items) = &n else { return n };
    let values: Option<Vec<Node>> = items
        .iter()
        .map(|i| match i {
            Node::Rel(v, ops) if v.len() == 2 && ops == &[RelOp::Eq] && matches!(v[0], Node::Var(_)) => {
                Some(v[1].clone())
            }
            _ => None,
        })
        .collect();
    match values {
        Some(v) => Node::Tuple(v),
        None => n,
    }
}

fn parse_tokens(toks: Vec<Tok>, max_depth: usize, max_bits: u64) -> Result<Node, MathError> {
    let mut p = Parser { toks, pos: 0, depth: 0, max_depth, max_bits };
    let items = p.parse_list()?;
    if p.pos < p.toks.len() {
        return Err(MathError::Parse(format!("unexpected token {:?}", p.toks[p.pos])));
    }
    match items.len() {
        0 => Err(MathError::Parse("empty answer".into())),
        1 => Ok(items.into_iter().next().unwrap_or(Node::List(Vec::new()))),
        _ => Ok(Node::List(items)),
    }
}

fn err<T>(msg: &str) -> Result<T, MathError> {
    Err(MathError::Parse(msg.to_string()))
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn is_sym(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Sym(c))
    }

    fn is_cmd(&self, name: &str) -> bool {
        matches!(self.peek(), Some(Tok::Cmd(c)) if c == name)
    }

    fn expect(&mut self, t: Tok) -> Result<(), MathError> {
        if self.peek() == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(MathError::Parse(format!("expected {t:?}, found {:?}", self.peek())))
        }
    }

    fn enter(&mut self) -> Result<(), MathError> {
        self.depth += 1;
        if self.depth > self.max_depth { Err(MathError::Parse("nesting too deep".into())) } else { Ok(()) }
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Comma/semicolon separated items, stopping at anything else.
    fn parse_list(&mut self) -> Result<Vec<Node>, MathError> {
        let mut items = Vec::new();
        loop {
            while self.is_sym(',') || self.is_sym(';') {
                self.pos += 1;
            }
            match self.peek() {
                None | Some(Tok::Sym(')')) | Some(Tok::Sym(']')) | Some(Tok::Sym('}')) | Some(Tok::RSet) => break,
                _ => {}
            }
            items.push(self.parse_item()?);
            if !(self.is_sym(',') || self.is_sym(';')) {
                break;
            }
        }
        Ok(items)
    }

    fn parse_item(&mut self) -> Result<Node, MathError> {
        self.enter()?;
        let first = self.parse_union()?;
        let mut nodes = vec![first];
        let mut ops = Vec::new();
        while let Some(op) = self.peek().and_then(relop) {
            self.pos += 1;
            ops.push(op);
            nodes.push(self.parse_union()?);
        }
        self.leave();
        if ops.is_empty() { Ok(nodes.pop().unwrap_or(Node::List(Vec::new()))) } else { Ok(Node::Rel(nodes, ops)) }
    }

    fn parse_union(&mut self) -> Result<Node, MathError> {
        let first = self.parse_ratio()?;
        if !self.is_cmd("cup") {
            return Ok(first);
        }
        let mut parts = vec![first];
        while self.is_cmd("cup") {
            self.pos += 1;
            parts.push(self.parse_ratio()?);
        }
        Ok(Node::Union(parts))
    }

    /// `a : b` (a ratio) is `a / b`.
    fn parse_ratio(&mut self) -> Result<Node, MathError> {
        let mut left = self.parse_expr()?;
        while self.is_sym(':') {
            self.pos += 1;
            let right = self.parse_expr()?;
            left = Node::Div(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_expr(&mut self) -> Result<Node, MathError> {
        let mut terms = vec![self.parse_term()?];
        loop {
            match self.peek() {
                Some(Tok::Sym('+')) => {
                    self.pos += 1;
                    terms.push(self.parse_term()?);
                }
                Some(Tok::Sym('-')) => {
                    self.pos += 1;
                    terms.push(Node::Neg(Box::new(self.parse_term()?)));
                }
                Some(Tok::Cmd(c)) if c == "pm" || c == "mp" => {
                    let minus_first = c == "mp";
                    self.pos += 1;
                    let r = self.parse_term()?;
                    let r = if minus_first { Node::Neg(Box::new(r)) } else { r };
                    let l = collapse_add(std::mem::take(&mut terms));
                    terms.push(Node::Pm(Box::new(l), Box::new(r)));
                }
                _ => break,
            }
        }
        Ok(collapse_add(terms))
    }

    fn starts_operand(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_)) | Some(Tok::Ident(_)) => true,
            Some(Tok::Sym('(')) | Some(Tok::Sym('{')) => true,
            Some(Tok::Cmd(c)) => !OPERATOR_CMDS.contains(&c.as_str()),
            _ => false,
        }
    }

    fn parse_term(&mut self) -> Result<Node, MathError> {
        let mut left = self.parse_unary()?;
        let mut single = true;
        loop {
            match self.peek() {
                Some(Tok::Sym('*')) => {
                    self.pos += 1;
                    let r = self.parse_unary()?;
                    left = mul(left, r);
                }
                Some(Tok::Cmd(c)) if c == "cdot" || c == "times" => {
                    self.pos += 1;
                    let r = self.parse_unary()?;
                    left = mul(left, r);
                }
                Some(Tok::Sym('/')) => {
                    self.pos += 1;
                    let r = self.parse_unary()?;
                    left = Node::Div(Box::new(left), Box::new(r));
                }
                Some(Tok::Cmd(c)) if c == "div" => {
                    self.pos += 1;
                    let r = self.parse_unary()?;
                    left = Node::Div(Box::new(left), Box::new(r));
                }
                _ if self.starts_operand() => {
                    let is_frac = matches!(self.peek(), Some(Tok::Cmd(c)) if c == "frac");
                    let r = self.parse_power()?;
                    let int_frac = is_frac && matches!(&r, Node::Div(a, b) if is_int_literal(a) && is_int_literal(b));
                    if single && int_frac && is_int_literal(&left) {
                        // Mixed number: 2\frac12 = 5/2.
                        left = Node::Add(vec![left, r]);
                    } else if single && int_frac && matches!(&left, Node::Neg(a) if is_int_literal(a)) {
                        if let Node::Neg(a) = left {
                            left = Node::Neg(Box::new(Node::Add(vec![*a, r])));
                        } else {
                            return err("internal");
                        }
                    } else {
                        left = mul(left, r);
                    }
                }
                _ => break,
            }
            single = false;
        }
        Ok(left)
    }

    fn parse_unary(&mut self) -> Result<Node, MathError> {
        self.enter()?;
        let r = match self.peek() {
            Some(Tok::Sym('-')) => {
                self.pos += 1;
                Node::Neg(Box::new(self.parse_unary()?))
            }
            Some(Tok::Sym('+')) => {
                self.pos += 1;
                self.parse_unary()?
            }
            Some(Tok::Cmd(c)) if c == "pm" || c == "mp" => {
                self.pos += 1;
                let v = self.parse_unary()?;
                Node::Pm(Box::new(int_node(0)), Box::new(v))
            }
            _ => self.parse_power()?,
        };
        self.leave();
        Ok(r)
    }

    fn parse_power(&mut self) -> Result<Node, MathError> {
        let base = self.parse_postfix()?;
        if self.is_sym('^') {
            self.pos += 1;
            let e = self.parse_exp_arg()?;
            let mut n = Node::Pow(Box::new(base), Box::new(e));
            while self.is_sym('!') {
                self.pos += 1;
                n = Node::Fact(Box::new(n));
            }
            return Ok(n);
        }
        Ok(base)
    }

    fn parse_exp_arg(&mut self) -> Result<Node, MathError> {
        self.enter()?;
        let mut r = match self.peek() {
            Some(Tok::Sym('{')) => {
                self.pos += 1;
                let n = self.parse_group_body()?;
                self.expect(Tok::Sym('}'))?;
                n
            }
            Some(Tok::Sym('-')) => {
                self.pos += 1;
                Node::Neg(Box::new(self.parse_exp_arg()?))
            }
            Some(Tok::Sym('+')) => {
                self.pos += 1;
                self.parse_exp_arg()?
            }
            _ => self.parse_postfix()?,
        };
        if self.is_sym('^') {
            self.pos += 1;
            let e = self.parse_exp_arg()?;
            r = Node::Pow(Box::new(r), Box::new(e));
        }
        self.leave();
        Ok(r)
    }

    fn parse_group_body(&mut self) -> Result<Node, MathError> {
        let mut items = self.parse_list()?;
        match items.len() {
            0 => err("empty group"),
            1 => Ok(items.pop().unwrap_or(Node::List(Vec::new()))),
            _ => Ok(Node::List(items)),
        }
    }

    fn parse_postfix(&mut self) -> Result<Node, MathError> {
        let mut p = self.parse_primary()?;
        loop {
            if self.is_sym('!') {
                self.pos += 1;
                p = Node::Fact(Box::new(p));
            } else if self.is_sym('%') {
                self.pos += 1;
                p = Node::Percent(Box::new(p));
            } else if self.is_sym('\'') {
                self.pos += 1;
                p = match p {
                    Node::Var(v) => Node::Var(format!("{v}'")),
                    _ => return err("prime on non-variable"),
                };
            } else if self.is_sym('_') {
                self.pos += 1;
                let sub = self.arg()?;
                p = self.subscript(p, sub)?;
            } else {
                break;
            }
        }
        Ok(p)
    }

    fn subscript(&self, p: Node, sub: Node) -> Result<Node, MathError> {
        match p {
            Node::Var(v) => Ok(Node::Var(format!("{v}_{sub}"))),
            Node::Num(n) if n.frac_digits.is_none() && n.value.is_integer() => {
                // Base notation: 1011_2.
                let base = match &sub {
                    Node::Num(b) if b.value.is_integer() => b.value.numer().to_string().parse::<u32>().unwrap_or(0),
                    _ => 0,
                };
                if !(2..=36).contains(&base) {
                    return err("bad number base");
                }
                let digits = n.value.numer().to_string();
                let v = BigInt::parse_bytes(digits.as_bytes(), base)
                    .ok_or(MathError::Parse("digit out of range for base".into()))?;
                Ok(Node::Num(Number {
                    value: BigRational::from_integer(v),
                    frac_digits: None,
                    sig_digits: n.sig_digits,
                }))
            }
            _ => err("unsupported subscript"),
        }
    }

    /// A command argument: `{...}`, a single digit, a letter or a command.
    fn arg(&mut self) -> Result<Node, MathError> {
        match self.peek().cloned() {
            Some(Tok::Sym('{')) => {
                self.pos += 1;
                let n = self.parse_group_body()?;
                self.expect(Tok::Sym('}'))?;
                Ok(n)
            }
            Some(Tok::Num(s)) => {
                let mut chars = s.chars();
                let first = chars.next().unwrap_or('0');
                let rest: String = chars.collect();
                if first.is_ascii_digit() && !rest.is_empty() && !rest.contains(['e', 'E']) {
                    self.toks[self.pos] = Tok::Num(rest);
                    let v = first.to_digit(10).unwrap_or(0);
                    Ok(int_node(i64::from(v)))
                } else {
                    self.parse_primary()
                }
            }
            Some(Tok::Ident(_)) | Some(Tok::Cmd(_)) => self.parse_primary(),
            other => Err(MathError::Parse(format!("bad argument {other:?}"))),
        }
    }

    fn parse_primary(&mut self) -> Result<Node, MathError> {
        self.enter()?;
        let r = self.parse_primary_inner();
        self.leave();
        r
    }

    fn parse_primary_inner(&mut self) -> Result<Node, MathError> {
        let Some(t) = self.peek().cloned() else {
            return err("unexpected end");
        };
        self.pos += 1;
        match t {
            Tok::Num(s) => Ok(Node::Num(parse_number(&s, self.max_bits)?)),
            Tok::Ident('e') => Ok(Node::E),
            Tok::Ident('π') => Ok(Node::Pi),
            Tok::Ident(c) => Ok(Node::Var(c.to_string())),
            Tok::Sym('(') => self.bracket(false),
            Tok::Sym('[') => self.bracket(true),
            Tok::Sym('{') => {
                let n = self.parse_group_body()?;
                self.expect(Tok::Sym('}'))?;
                Ok(n)
            }
            Tok::LSet => {
                let items = self.parse_list()?;
                self.expect(Tok::RSet)?;
                Ok(Node::Set(items))
            }
            Tok::Sym('|') => {
                let e = self.parse_expr()?;
                self.expect(Tok::Sym('|'))?;
                Ok(Node::Abs(Box::new(e)))
            }
            Tok::Cmd(c) => self.command(&c),
            other => Err(MathError::Parse(format!("unexpected token {other:?}"))),
        }
    }

    fn bracket(&mut self, square: bool) -> Result<Node, MathError> {
        let mut items = self.parse_list()?;
        let close = match self.peek() {
            Some(Tok::Sym(')')) => ')',
            Some(Tok::Sym(']')) => ']',
            _ => return err("unclosed bracket"),
        };
        self.pos += 1;
        let hi_closed = close == ']';
        match items.len() {
            0 => err("empty brackets"),
            1 if square == hi_closed => Ok(items.pop().unwrap_or(Node::List(Vec::new()))),
            1 => err("mismatched brackets"),
            2 if square || hi_closed => {
                let hi = items.pop().unwrap_or(Node::Inf);
                let lo = items.pop().unwrap_or(Node::Inf);
                Ok(Node::Interval { lo: Box::new(lo), hi: Box::new(hi), lo_closed: square, hi_closed })
            }
            _ if square == hi_closed => Ok(Node::Tuple(items)),
            _ => err("mismatched brackets"),
        }
    }

    fn raw_group_name(&mut self) -> Result<String, MathError> {
        self.expect(Tok::Sym('{'))?;
        let mut name = String::new();
        while let Some(t) = self.peek().cloned() {
            self.pos += 1;
            match t {
                Tok::Sym('}') => return Ok(name),
                Tok::Ident(c) => name.push(c),
                Tok::Sym(c) => name.push(c),
                Tok::Num(s) => name.push_str(&s),
                _ => {}
            }
        }
        err("unclosed group")
    }

    fn environment(&mut self) -> Result<Node, MathError> {
        let name = self.raw_group_name()?;
        match name.as_str() {
            "pmatrix" | "bmatrix" | "Bmatrix" | "matrix" | "smallmatrix" | "array" => {}
            _ => return Err(MathError::Parse(format!("unsupported environment {name}"))),
        }
        if name == "array" && self.is_sym('{') {
            self.raw_group_name()?;
        }
        let mut rows: Vec<Vec<Node>> = Vec::new();
        let mut row: Vec<Node> = Vec::new();
        loop {
            if self.is_cmd("end") {
                self.pos += 1;
                self.raw_group_name()?;
                if !row.is_empty() {
                    rows.push(row);
                }
                break;
            }
            row.push(self.parse_item()?);
            match self.peek() {
                Some(Tok::Sym('&')) => self.pos += 1,
                Some(Tok::RowSep) => {
                    self.pos += 1;
                    rows.push(std::mem::take(&mut row));
                }
                Some(Tok::Cmd(c)) if c == "end" => {}
                _ => return err("bad matrix"),
            }
        }
        let width = rows.first().map(Vec::len).unwrap_or(0);
        if width == 0 || rows.iter().any(|r| r.len() != width) {
            return err("ragged matrix");
        }
        Ok(Node::Matrix(rows))
    }

    fn command(&mut self, c: &str) -> Result<Node, MathError> {
        match c {
            "frac" | "dfrac" | "tfrac" | "cfrac" => {
                let a = self.arg()?;
                let b = self.arg()?;
                Ok(Node::Div(Box::new(a), Box::new(b)))
            }
            "sqrt" => {
                let idx = if self.is_sym('[') {
                    self.pos += 1;
                    let i = self.parse_expr()?;
                    self.expect(Tok::Sym(']'))?;
                    i
                } else {
                    int_node(2)
                };
                let body = self.arg()?;
                Ok(Node::Root(Box::new(idx), Box::new(body)))
            }
            "pi" => Ok(Node::Pi),
            "infty" | "infin" => Ok(Node::Inf),
            "emptyset" | "varnothing" => Ok(Node::Set(Vec::new())),
            "binom" | "dbinom" | "tbinom" => {
                let a = self.arg()?;
                let b = self.arg()?;
                Ok(Node::Binom(Box::new(a), Box::new(b)))
            }
            "mathbb" => {
                let a = self.arg()?;
                if a == Node::Var("R".into()) {
                    Ok(Node::Interval {
                        lo: Box::new(Node::Neg(Box::new(Node::Inf))),
                        hi: Box::new(Node::Inf),
                        lo_closed: false,
                        hi_closed: false,
                    })
                } else {
                    Ok(a)
                }
            }
            "begin" => self.environment(),
            "lfloor" | "lceil" => {
                let e = self.parse_expr()?;
                let close = if c == "lfloor" { "rfloor" } else { "rceil" };
                if !self.is_cmd(close) {
                    return err("unclosed floor/ceil");
                }
                self.pos += 1;
                let name = if c == "lfloor" { "floor" } else { "ceil" };
                Ok(Node::Func(name.into(), Box::new(e), None))
            }
            "text" | "mathrm" | "textbf" | "mathbf" | "mbox" | "operatorname" | "mathit" => self.arg(),
            "left" | "right" | "displaystyle" | "big" | "Big" => self.parse_primary(),
            _ if FUNCS.contains(&c) => self.function(c),
            _ if GREEK.contains(&c) => Ok(Node::Var(c.to_string())),
            _ => Err(MathError::Parse(format!("unknown command \\{c}"))),
        }
    }

    fn function(&mut self, name: &str) -> Result<Node, MathError> {
        let mut power = None;
        let mut base = None;
        loop {
            if self.is_sym('^') {
                self.pos += 1;
                power = Some(self.parse_exp_arg()?);
            } else if self.is_sym('_') {
                self.pos += 1;
                base = Some(Box::new(self.arg()?));
            } else {
                break;
            }
        }
        let argument = if self.is_sym('(') {
            self.parse_power()?
        } else {
            let mut f = self.parse_power()?;
            while self.starts_operand()
                && !matches!(self.peek(), Some(Tok::Cmd(c)) if FUNCS.contains(&c.as_str()))
                && !self.is_sym('(')
            {
                let r = self.parse_power()?;
                f = mul(f, r);
            }
            f
        };
        let name = match name {
            "lg" => "log10",
            "exp" => "exp",
            n => n,
        };
        let f = Node::Func(name.to_string(), Box::new(argument), base);
        Ok(match power {
            Some(p) => Node::Pow(Box::new(f), Box::new(p)),
            None => f,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Node {
        parse(s, true, 64, 1 << 17).unwrap()
    }

    #[test]
    fn frac_shorthand() {
        assert_eq!(p("\\frac12").to_string(), "(1/2)");
        assert_eq!(p("\\frac1{2}").to_string(), "(1/2)");
        assert_eq!(p("\\sqrt3").to_string(), "root(2,3)");
    }

    #[test]
    fn mixed_number() {
        assert_eq!(p("2\\frac12").to_string(), "(2+(1/2))");
        assert_eq!(p("-2\\frac{1}{2}").to_string(), "(-(2+(1/2)))");
        assert_eq!(p("2\\frac{x}{2}").to_string(), "(2*(x/2))");
    }

    #[test]
    fn thousands_only_at_top_level() {
        assert_eq!(p("1,000").to_string(), "1000");
        assert_eq!(p("(1,000)").to_string(), "tuple(1,0)");
        assert_eq!(parse("1,000", false, 64, 1 << 17).unwrap().to_string(), "list(1,0)");
    }

    #[test]
    fn intervals_and_tuples() {
        assert!(matches!(p("(1,2]"), Node::Interval { lo_closed: false, hi_closed: true, .. }));
        assert!(matches!(p("(1,2)"), Node::Tuple(_)));
        assert!(matches!(p("(1)"), Node::Num(_)));
        assert!(parse("(1]", true, 64, 1 << 17).is_err());
    }

    #[test]
    fn scientific() {
        assert_eq!(p("3e5").to_string(), "300000");
        assert_eq!(p("2.5e-1").to_string(), "1/4");
    }

    #[test]
    fn depth_is_bounded() {
        let s = "(".repeat(500) + "1" + &")".repeat(500);
        assert!(parse(&s, true, 64, 1 << 17).is_err());
    }

    #[test]
    fn matrix() {
        let m = p("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}");
        assert!(matches!(m, Node::Matrix(ref r) if r.len() == 2 && r[0].len() == 2));
    }
}
