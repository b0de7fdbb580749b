//! String-level clean-up of an extracted answer before parsing: delimiters,
//! spacing commands, text wrappers, units, digit grouping, degree signs.

/// Unit words and abbreviations dropped after a number (lower case).
const UNITS: &[&str] = &[
    "cm", "mm", "km", "m", "meter", "meters", "metre", "metres", "in", "inch", "inches", "ft", "foot", "feet", "yd",
    "yard", "yards", "mi", "mile", "miles", "mph", "kmh", "kph", "sq", "square", "cubic", "unit", "units", "dollar",
    "dollars", "cent", "cents", "degree", "degrees", "deg", "rad", "radian", "radians", "h", "hr", "hrs", "hour",
    "hours", "min", "mins", "minute", "minutes", "s", "sec", "secs", "second", "seconds", "day", "days", "week",
    "weeks", "month", "months", "year", "years", "kg", "g", "gram", "grams", "mg", "lb", "lbs", "pound", "pounds",
    "oz", "ounce", "ounces", "l", "liter", "liters", "litre", "litres", "ml", "gallon", "gallons", "per", "each",
    "percent",
];

/// Words that are functions, never units.
const KEEP_WORDS: &[&str] =
    &["sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "arcsin", "arccos", "arctan"];

/// Text-style commands whose argument is unwrapped (or dropped when a unit).
const TEXT_CMDS: &[&str] = &[
    "text",
    "textbf",
    "textit",
    "textrm",
    "textnormal",
    "textsf",
    "mbox",
    "hbox",
    "mathrm",
    "mathbf",
    "mathit",
    "mathsf",
    "emph",
    "operatorname",
];

/// Commands that only affect layout and are dropped.
const LAYOUT_CMDS: &[&str] = &[
    "left",
    "right",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "displaystyle",
    "textstyle",
    "scriptstyle",
    "limits",
    "nolimits",
    "quad",
    "qquad",
    "dots",
    "ldots",
    "cdots",
    "hline",
    "boxed",
    "fbox",
];

/// Remove surrounding math delimiters (`$..$`, `$$..$$`, `\(..\)`, `\[..\]`).
pub(crate) fn strip_delims(s: &str) -> String {
    let mut cur = s.trim();
    for _ in 0..8 {
        // Only one span: `$a$ or $b$` starts and ends with `$` but is two.
        let one = |x: &str, close: &str| !x.replace("\\$", "").contains(close);
        let next = if let Some(x) = cur.strip_prefix("$$").and_then(|x| x.strip_suffix("$$")).filter(|x| one(x, "$")) {
            x
        } else if let Some(x) = cur.strip_prefix('$').and_then(|x| x.strip_suffix('$')).filter(|x| one(x, "$")) {
            x
        } else if let Some(x) = cur.strip_prefix("\\(").and_then(|x| x.strip_suffix("\\)")).filter(|x| one(x, "\\)")) {
            x
        } else if let Some(x) = cur.strip_prefix("\\[").and_then(|x| x.strip_suffix("\\]")).filter(|x| one(x, "\\]")) {
            x
        } else {
            break;
        };
        cur = next.trim();
    }
    cur.to_string()
}

fn map_unicode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '−' | '–' | '—' | '‐' | '‑' => out.push('-'),
            '×' | '⋅' => out.push_str("\\times "),
            '·' => out.push_str("\\cdot "),
            '÷' => out.push_str("\\div "),
            'π' => out.push_str("\\pi "),
            '√' => out.push_str("\\sqrt"),
            '∞' => out.push_str("\\infty "),
            '≤' => out.push_str("\\le "),
            '≥' => out.push_str("\\ge "),
            '≠' => out.push_str("\\ne "),
            '±' => out.push_str("\\pm "),
            '∓' => out.push_str("\\mp "),
            '∪' => out.push_str("\\cup "),
            '∈' => out.push_str("\\in "),
            '∅' => out.push_str("\\emptyset "),
            '°' => {}
            '\u{a0}' | '\u{2009}' | '\u{202f}' | '\u{2002}' | '\u{2003}' => out.push(' '),
            '½' => out.push_str("\\frac{1}{2}"),
            '¼' => out.push_str("\\frac{1}{4}"),
            '¾' => out.push_str("\\frac{3}{4}"),
            '²' => out.push_str("^2"),
            '³' => out.push_str("^3"),
            c => out.push(c),
        }
    }
    out
}

/// Index just past the brace group starting at `start` (which must be `{`).
fn group_end(c: &[char], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < c.len() {
        match c[i] {
            '\\' => i += 1,
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether `word` (lower case) is a unit word or abbreviation.
pub(crate) fn is_unit(word: &str) -> bool {
    UNITS.contains(&word)
}

fn is_unit_phrase(s: &str) -> bool {
    let words: Vec<String> =
        s.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()).map(str::to_ascii_lowercase).collect();
    !words.is_empty()
        && s.chars().all(|c| c.is_ascii_alphabetic() || c.is_whitespace() || ".^23/".contains(c))
        && words.iter().all(|w| UNITS.contains(&w.as_str()))
}

/// Skip a `^2`, `^3`, `^{2}` or `^{3}` at `i`, returning the new index.
fn skip_unit_power(c: &[char], i: usize) -> usize {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    if at(i) == '^' {
        if matches!(at(i + 1), '2' | '3') {
            return i + 2;
        }
        if at(i + 1) == '{' && matches!(at(i + 2), '2' | '3') && at(i + 3) == '}' {
            return i + 4;
        }
    }
    i
}

/// Command-aware pass: unwrap or drop text commands, drop layout commands.
fn commands(s: &str, depth: usize) -> String {
    let c: Vec<char> = s.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < c.len() {
        if c[i] != '\\' || !at(i + 1).is_ascii_alphabetic() {
            out.push(c[i]);
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while at(j).is_ascii_alphabetic() {
            j += 1;
        }
        let name: String = c[i + 1..j].iter().collect();
        if TEXT_CMDS.contains(&name.as_str()) {
            let mut k = j;
            while at(k) == ' ' {
                k += 1;
            }
            if at(k) == '{'
                && let Some(end) = group_end(&c, k)
            {
                let inner: String = c[k + 1..end - 1].iter().collect();
                if is_unit_phrase(&inner) {
                    i = skip_unit_power(&c, end);
                } else {
                    out.push(' ');
                    if depth < 8 {
                        out.push_str(&commands(&inner, depth + 1));
                    }
                    out.push(' ');
                    i = end;
                }
                continue;
            }
            i = j;
            continue;
        }
        if let Some(rest) = ["qquad", "quad"].iter().find_map(|q| name.strip_prefix(q)).filter(|r| !r.is_empty()) {
            // `\quadx_2`: a spacing command glued to a variable.
            out.push(' ');
            out.push_str(rest);
            i = j;
            continue;
        }
        if LAYOUT_CMDS.contains(&name.as_str()) {
            i = j;
            if (name == "left" || name == "right") && at(i) == '.' {
                i += 1;
            }
            out.push(' ');
            continue;
        }
        match name.as_str() {
            "dfrac" | "tfrac" | "cfrac" => out.push_str("\\frac"),
            "vert" | "lvert" | "rvert" | "mid" => out.push('|'),
            "degree" | "circ" => {}
            "lbrace" => out.push_str("\\{"),
            "rbrace" => out.push_str("\\}"),
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            _ => {
                out.push('\\');
                out.push_str(&name);
                if at(j).is_ascii_digit() || at(j).is_alphabetic() {
                    // Keep `\sqrt3` and `\pi r` apart from what follows.
                    out.push(' ');
                }
            }
        }
        i = j;
    }
    out
}

/// Join digit groups written with `{,}`, `\,` or a space (`1\,000`, `1 000`).
fn digit_groups(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let three_after = |k: usize| {
        at(k).is_ascii_digit()
            && at(k + 1).is_ascii_digit()
            && at(k + 2).is_ascii_digit()
            && !at(k + 3).is_ascii_digit()
    };
    let mut out = String::with_capacity(s.len());
    let mut run = 0usize; // length of the current digit run
    let has_comma = s.contains(',');
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_ascii_digit() {
            run += 1;
            out.push(ch);
            i += 1;
            continue;
        }
        if run > 0 {
            if ch == '{' && at(i + 1) == ',' && at(i + 2) == '}' {
                if three_after(i + 3) {
                    i += 3;
                    run = 0;
                } else {
                    out.push('.');
                    i += 3;
                }
                continue;
            }
            if ch == '\\' && at(i + 1) == ',' && three_after(i + 2) {
                i += 2;
                run = 0;
                continue;
            }
            if ch == ' ' && run <= 3 && three_after(i + 1) && !has_comma {
                i += 1;
                run = 0;
                continue;
            }
        }
        run = 0;
        out.push(ch);
        i += 1;
    }
    out
}

/// `\\frac`, `\\left` (a doubled backslash, as answers escaped once too
/// often carry) as `\frac`, `\left`: a doubled backslash followed by a
/// command name of two or more letters. A matrix row break `\\` is never
/// followed directly by a command name in practice.
fn single_backslash_commands(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < c.len() {
        if c[i] == '\\' && c.get(i + 1) == Some(&'\\') {
            let letters = c[i + 2..].iter().take_while(|ch| ch.is_ascii_alphabetic()).count();
            let before_ok = i == 0 || c[i - 1] != '\\';
            if letters >= 2 && before_ok {
                out.push('\\');
                i += 2;
                continue;
            }
            out.push_str("\\\\");
            i += 2;
            continue;
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// `\ ` (a control space) as a space; a row break `\\` followed by a space stays.
fn escaped_spaces(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < c.len() {
        if c[i] == '\\' && c.get(i + 1) == Some(&'\\') {
            out.push_str("\\\\");
            i += 2;
        } else if c[i] == '\\' && c.get(i + 1) == Some(&' ') {
            out.push(' ');
            i += 2;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Replace the words "and"/"or" between items with commas, also when glued
/// between closing and opening brackets or digits and letters (`(1,2)or(2,1)`).
fn conjunctions(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut glued = String::with_capacity(s.len());
    let mut i = 0;
    while i < c.len() {
        let word = ["or", "and"].into_iter().find(|w| {
            let n = w.len();
            i > 0
                && (c[i - 1] == ')' || c[i - 1] == ']' || c[i - 1].is_ascii_digit())
                && c[i..].iter().take(n).collect::<String>() == *w
                && c.get(i + n).is_some_and(|&next| {
                    next == '(' || next == '[' || next.is_ascii_alphabetic() || next.is_ascii_digit()
                })
        });
        if let Some(w) = word {
            glued.push_str(" , ");
            i += w.len();
            continue;
        }
        glued.push(c[i]);
        i += 1;
    }
    let mut out = String::with_capacity(glued.len());
    for (k, w) in glued.split(' ').enumerate() {
        if k > 0 {
            out.push(' ');
        }
        let lw = w.to_ascii_lowercase();
        if lw == "and" || lw == "or" {
            out.push(',');
        } else {
            out.push_str(w);
        }
    }
    out
}

/// Drop trailing unit words after a number: `12 cm`, `5 apples`, `3 m^2`.
fn trailing_units(s: &str) -> String {
    let mut cur = s.trim().to_string();
    for _ in 0..6 {
        let t = cur.trim_end().trim_end_matches('.').trim_end();
        let c: Vec<char> = t.chars().collect();
        let mut end = c.len();
        // optional ^2 / ^{2}
        let mut pow_start = end;
        if end >= 2 && c[end - 2] == '^' && matches!(c[end - 1], '2' | '3') {
            pow_start = end - 2;
        } else if end >= 4
            && c[end - 4] == '^'
            && c[end - 3] == '{'
            && matches!(c[end - 2], '2' | '3')
            && c[end - 1] == '}'
        {
            pow_start = end - 4;
        }
        end = pow_start;
        let mut start = end;
        while start > 0 && c[start - 1].is_ascii_alphabetic() {
            start -= 1;
        }
        if start == end {
            break;
        }
        let before = if start > 0 { c[start - 1] } else { ' ' };
        let word: String = c[start..end].iter().collect::<String>().to_ascii_lowercase();
        let rest: String = c[..start].iter().collect();
        let listed = UNITS.contains(&word.as_str()) && word.len() >= 2;
        let generic = word.len() >= 3 && !KEEP_WORDS.contains(&word.as_str());
        let powered_ok = pow_start == c.len() || listed;
        let ok = (listed && (before == ' ' || before.is_ascii_digit() || before == '}')) || (generic && before == ' ');
        if ok && powered_ok && rest.chars().any(|ch| ch.is_ascii_digit()) {
            cur = rest;
            continue;
        }
        break;
    }
    cur.trim().to_string()
}

/// Normalise an answer string into the dialect the parser reads.
pub(crate) fn normalize(s: &str) -> String {
    let s = strip_delims(s);
    let s = single_backslash_commands(&s);
    let s = map_unicode(&s);
    let s = s
        .replace("^{\\circ}", "")
        .replace("^\\circ", "")
        .replace("^{°}", "")
        .replace(",\\! ", "{,}")
        .replace(",\\!", "{,}")
        .replace("\\%", "%")
        .replace("\\$", " ")
        .replace('$', " ")
        .replace("\\!", "")
        .replace("\\;", " ")
        .replace("\\:", " ")
        .replace('~', " ")
        .replace("\\{,\\}", "{,}");
    let s = escaped_spaces(&s);
    let s = digit_groups(&s);
    let s = s.replace("\\,", " ");
    let s = commands(&s, 0);
    let s = conjunctions(&s);
    let s = trailing_units(&s);
    let s = s.trim().trim_end_matches('.').trim();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `1,22` (or `0,111`, `1000,99`) as `1.22`: a number whose only separator
/// is one comma that cannot be a thousands separator (the group after it is
/// not three digits, or the part before it is `0` or longer than three
/// digits). `None` for anything else (`1,000`, `1, 2`, `x,y`).
pub(crate) fn decimal_comma(s: &str) -> Option<String> {
    let t = s.trim();
    let (sign, body) = t.strip_prefix('-').map_or(("", t), |b| ("-", b));
    let (head, tail) = body.split_once(',')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(head) || !digits(tail) {
        return None;
    }
    let thousands = tail.len() == 3 && head.len() <= 3 && head != "0";
    (!thousands).then(|| format!("{sign}{head}.{tail}"))
}

fn unwrap_text(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        if c[i] == '\\' && at(i + 1).is_ascii_alphabetic() {
            let mut j = i + 1;
            while at(j).is_ascii_alphabetic() {
                j += 1;
            }
            let name: String = c[i + 1..j].iter().collect();
            if TEXT_CMDS.contains(&name.as_str())
                && at(j) == '{'
                && let Some(end) = group_end(&c, j)
            {
                out.push(' ');
                out.extend(&c[j + 1..end - 1]);
                out.push(' ');
                i = end;
                continue;
            }
            out.extend(&c[i..j]);
            i = j;
            continue;
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// Case- and space-insensitive key used to compare text answers.
pub(crate) fn text_key(s: &str) -> String {
    unwrap_text(&strip_delims(s)).chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Whether an answer is a textual answer (a word or phrase, not mathematics):
/// either a whole `\text{...}` without digits, or plain words of two or more
/// letters with no digits, commands or operators.
pub(crate) fn is_text_answer(s: &str) -> bool {
    let s = strip_delims(s);
    let s = s.trim().trim_end_matches('.');
    for cmd in ["\\text{", "\\textbf{", "\\mbox{", "\\textit{", "\\textrm{"] {
        if let Some(rest) = s.strip_prefix(cmd) {
            let c: Vec<char> = s.chars().collect();
            let open = cmd.chars().count() - 1;
            if group_end(&c, open) == Some(c.len()) {
                let inner = rest.trim_end_matches('}');
                return !inner.chars().any(|ch| ch.is_ascii_digit()) && inner.chars().any(char::is_alphabetic);
            }
        }
    }
    let u = unwrap_text(s);
    if u.chars().any(|ch| ch.is_ascii_digit() || "\\^_{}=+*/<>|".contains(ch)) {
        return false;
    }
    let mut run = 0;
    let mut best = 0;
    for ch in u.chars() {
        if ch.is_alphabetic() {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best >= 2 && u.chars().all(|ch| ch.is_alphabetic() || " ,.'-()!?".contains(ch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_text() {
        assert_eq!(normalize("12\\text{ cm}^2"), "12");
        assert_eq!(normalize("5 apples"), "5");
        assert_eq!(normalize("\\$1{,}000"), "1000");
        assert_eq!(normalize("1\\,000"), "1000");
        assert_eq!(normalize("1 000 000"), "1000000");
        assert_eq!(normalize("90^\\circ"), "90");
        assert_eq!(normalize("\\left( 1, 2 \\right]"), "( 1, 2 ]");
        assert_eq!(normalize("\\dfrac{1}{2}"), "\\frac{1}{2}");
        assert_eq!(normalize("x = 2 \\text{ or } x = 3"), "x = 2 , x = 3");
        assert_eq!(normalize("2\\pi"), "2\\pi");
        assert_eq!(normalize("3\\sin"), "3\\sin");
    }

    #[test]
    fn text_detection() {
        assert!(is_text_answer("\\text{Monday}"));
        assert!(is_text_answer("Monday"));
        assert!(is_text_answer("\\text{(C)}"));
        assert!(!is_text_answer("x"));
        assert!(!is_text_answer("2x+1"));
        assert!(!is_text_answer("\\pi"));
        assert_eq!(text_key("\\text{(C)}"), "c");
        assert_eq!(text_key("No Solution."), "nosolution");
    }

    #[test]
    fn delimiters() {
        assert_eq!(strip_delims("$$ 5 $$"), "5");
        assert_eq!(strip_delims("\\( \\frac12 \\)"), "\\frac12");
        assert_eq!(strip_delims("\\[3\\]"), "3");
    }
}
