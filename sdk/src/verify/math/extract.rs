//! Locating the final answer inside a model completion (or a gold solution).
//!
//! Order, first match wins: the boxed answer (the last `\boxed{}`, joined
//! with the boxes just before it when only separators stand between them:
//! `\boxed{1} and \boxed{2}`), GSM8K's `#### N`, "the final answer is …",
//! "answer: …" / "the answer is …", the last math span (`$…$`, `$$…$$`,
//! `\(…\)`, `\[…\]`; inline spans on one line), the whole completion when it
//! is one expression, and the last number. Only the text after the last
//! `</think>` is read when there is an answer there, so a draft inside the
//! reasoning never outranks the final answer.

use super::ExtractSource;
use super::normalize;

/// For every `{` (by byte index) the byte index just past its matching `}`,
/// computed in one pass; escaped braces (`\{`, `\}`) are skipped.
fn brace_matches(s: &str) -> std::collections::HashMap<usize, usize> {
    let mut out = std::collections::HashMap::new();
    let mut stack = Vec::new();
    let mut escaped = false;
    for (i, ch) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' => escaped = true,
            '{' => stack.push(i),
            '}' => {
                if let Some(open) = stack.pop() {
                    out.insert(open, i + 1);
                }
            }
            _ => {}
        }
    }
    out
}

/// A box: where it starts and ends in the text, and what it holds.
struct Boxed {
    start: usize,
    end: usize,
    inner: String,
}

/// Every well-formed `\boxed{..}` / `\fbox{..}` / `\boxed x`, outermost only,
/// in text order.
fn boxes(s: &str) -> Vec<Boxed> {
    let mut starts: Vec<(usize, usize)> = s
        .match_indices("\\boxed")
        .map(|(i, m)| (i, m.len()))
        .chain(s.match_indices("\\fbox").map(|(i, m)| (i, m.len())))
        .collect();
    starts.sort_unstable();
    let matches = brace_matches(s);
    let mut out: Vec<Boxed> = Vec::new();
    for (i, len) in starts {
        if out.last().is_some_and(|b| i < b.end) {
            continue; // inside the previous box
        }
        let after = i + len;
        let Some(rest) = s.get(after..) else { continue };
        let trimmed = rest.trim_start();
        let off = after + (rest.len() - trimmed.len());
        if trimmed.starts_with('{') {
            if let Some(&end) = matches.get(&off)
                && let Some(inner) = s.get(off + 1..end - 1)
            {
                out.push(Boxed { start: i, end, inner: inner.trim().to_string() });
            }
            continue;
        }
        if off == after {
            continue; // `\boxedx` is not a box.
        }
        let tok: String = trimmed.chars().take_while(|c| !c.is_whitespace() && *c != '$').collect();
        let end = off + tok.len();
        let tok = tok.trim_end_matches(['.', ',']).to_string();
        if !tok.is_empty() {
            out.push(Boxed { start: i, end, inner: tok });
        }
    }
    out
}

/// Whether two boxes with `gap` between them give one answer together:
/// the gap is short and holds no sentence or paragraph break, so
/// `\boxed{1} and \boxed{2}` joins but `\boxed{3}. Wait, … \boxed{5}` does not.
fn joins(gap: &str) -> bool {
    if gap.chars().count() > 80 || gap.contains("\n\n") {
        return false;
    }
    let c: Vec<char> = gap.chars().collect();
    let sentence_end = c.windows(3).any(|w| ".!?".contains(w[0]) && w[1].is_whitespace() && w[2].is_uppercase());
    let retracts = ["but", "wait", "actually", "instead", "however", "not", "no", "correct", "wrong"]
        .iter()
        .any(|w| gap.to_ascii_lowercase().split(|ch: char| !ch.is_ascii_alphabetic()).any(|x| x == *w));
    !sentence_end && !retracts
}

/// The boxed answer: the last box and the boxes it joins with (see [`joins`]),
/// as one comma-separated list.
pub(crate) fn boxed_answer(s: &str) -> Option<String> {
    let all = boxes(s);
    let last = all.len().checked_sub(1)?;
    let mut first = last;
    while first > 0 && s.get(all[first - 1].end..all[first].start).is_some_and(joins) {
        first -= 1;
    }
    let items: Vec<&str> = all[first..].iter().map(|b| b.inner.as_str()).collect();
    Some(items.join(", "))
}

/// Content of the last well-formed box alone.
#[cfg(test)]
pub(crate) fn last_boxed(s: &str) -> Option<String> {
    boxes(s).pop().map(|b| b.inner)
}

/// Text after the last `####` (GSM8K style) up to the end of its line.
pub(crate) fn gsm8k(s: &str) -> Option<String> {
    let i = s.rfind("####")?;
    let rest = s.get(i + 4..)?;
    let line = rest.lines().next().unwrap_or("");
    let t = line.trim().trim_end_matches('.').trim();
    if t.is_empty() { None } else { Some(t.to_string()) }
}

/// The inner text of each math span in `s` (`$$…$$`, `$…$`, `\(…\)`, `\[…\]`),
/// in order. `\$` is a dollar sign, not a delimiter; `$…$` and `\(…\)` must
/// stay on one line, display spans may cross lines.
pub(crate) fn math_spans(s: &str) -> Vec<String> {
    math_span_ranges(s).into_iter().map(|(_, inner, _)| inner).collect()
}

/// [`math_spans`] with where each span starts and ends (delimiters included).
fn math_span_ranges(s: &str) -> Vec<(usize, String, usize)> {
    scan_math(s).0
}

/// The math spans of `s` (start, inner text, end), and the byte ranges of
/// inline spans that cross lines (not math spans).
#[allow(clippy::type_complexity)]
fn scan_math(s: &str) -> (Vec<(usize, String, usize)>, Vec<(usize, usize)>) {
    // Delimiters are ASCII, so byte positions found here are char boundaries.
    let b = s.as_bytes();
    let starts = |k: usize, pat: &[u8]| b.get(k..).is_some_and(|r| r.starts_with(pat));
    let find = |from: usize, close: &[u8]| -> Option<usize> {
        let mut k = from;
        while k < b.len() {
            if b[k] == b'\\' && close == b"$" {
                k += 2; // an escaped character, e.g. `\$`
                continue;
            }
            if starts(k, close) {
                return Some(k);
            }
            k += 1;
        }
        None
    };
    // Once a closing delimiter is missing after some point, it is missing
    // after every later point too: never search for it again (linear time).
    let mut unclosed = [false; 4];
    let mut out = Vec::new();
    let mut broken = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let (kind, open, close, inline): (usize, &[u8], &[u8], bool) = if starts(i, b"\\$") {
            i += 2;
            continue;
        } else if starts(i, b"$$") {
            (0, b"$$", b"$$", false)
        } else if b[i] == b'$' {
            (1, b"$", b"$", true)
        } else if starts(i, b"\\(") {
            (2, b"\\(", b"\\)", true)
        } else if starts(i, b"\\[") {
            (3, b"\\[", b"\\]", false)
        } else {
            i += 1;
            continue;
        };
        let from = i + open.len();
        match if unclosed[kind] { None } else { find(from, close) } {
            Some(end) => {
                let inner = s.get(from..end).unwrap_or("");
                let one_line = !(inline && inner.contains('\n'));
                if !one_line {
                    broken.push((i, end + close.len()));
                } else if !inner.trim().is_empty() {
                    out.push((i, inner.trim().to_string(), end + close.len()));
                }
                i = end + close.len();
            }
            None => {
                unclosed[kind] = true;
                i = from;
            }
        }
    }
    (out, broken)
}

/// The last math span, if any, and the prose after it.
fn last_math(s: &str) -> Option<(String, &str)> {
    let (_, span, end) = math_span_ranges(s).pop()?;
    Some((span, s.get(end..).unwrap_or("")))
}

/// Where the last box ends.
fn last_box_end(s: &str) -> Option<usize> {
    boxes(s).last().map(|b| b.end)
}

/// Cut a free-text answer at the end of its sentence (a `.` that is not a
/// decimal point), or take a leading math region whole.
fn answer_span(rest: &str) -> Option<String> {
    let t = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ':' || c == '*');
    let line = t.lines().next().unwrap_or("");
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if let Some(inner) = line.strip_prefix(open)
            && let Some(end) = inner.find(close)
        {
            let v = inner.get(..end)?.trim();
            if !v.is_empty() {
                return Some(v.to_string());
            }
        }
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut end = line.len();
    for (k, &(i, c)) in chars.iter().enumerate() {
        if c == '.' {
            let next = chars.get(k + 1).map(|x| x.1);
            if next.is_none_or(char::is_whitespace) {
                end = i;
                break;
            }
        }
    }
    let v = line.get(..end)?.trim().trim_matches('*').trim().trim_end_matches('.').trim();
    if v.is_empty() {
        return None;
    }
    let value = statement_value(v).unwrap_or(v);
    Some(prose_value(value).unwrap_or(value).to_string())
}

/// In a prose answer ("Jane started growing Sphere 3 hours ago") the
/// mathematics it holds: its last math span, else its last number. `None`
/// for short text answers ("Tuesday", "no solution") and for mathematics.
fn prose_value(v: &str) -> Option<&str> {
    let words = v.split_whitespace().filter(|w| w.chars().all(char::is_alphabetic) && w.len() >= 2).count();
    if words < 3 {
        return None;
    }
    if let Some(span) = math_spans(v).pop() {
        return v.find(span.as_str()).map(|k| &v[k..k + span.len()]);
    }
    let n = last_number(v)?;
    v.rfind(n.as_str()).map(|k| &v[k..k + n.len()])
}

/// In a sentence that states the answer ("The largest $n$ is 34", "the
/// minimum value is $-\frac12$, attained at 0"), the value it states: what
/// follows the last " is " / " are " / " equals ", up to a comma after a math
/// span. `None` when the sentence states nothing that way.
fn statement_value(v: &str) -> Option<&str> {
    let low = v.to_ascii_lowercase();
    let (at, len) = [" is ", " are ", " equals ", " was "]
        .iter()
        .filter_map(|w| low.rfind(w).map(|i| (i, w.len())))
        .max_by_key(|&(i, _)| i)?;
    let value = v.get(at + len..)?.trim();
    // Keep a leading math span without what follows it ("$x+1$, with remainder 0").
    if value.starts_with('$') || value.starts_with("\\(") {
        let spans = math_spans(value);
        return spans.first().and_then(|first| value.find(first.as_str()).map(|k| &value[k..k + first.len()]));
    }
    (!value.is_empty()).then_some(value)
}

/// Text after the last occurrence of any of `phrases` (ASCII case-insensitive).
/// Text after the last occurrence of any of `phrases` (ASCII
/// case-insensitive), with where the phrase starts.
fn after_phrase(s: &str, phrases: &[&str]) -> Option<(usize, String)> {
    let low = s.to_ascii_lowercase();
    let (pos, len) =
        phrases.iter().filter_map(|p| low.rfind(p).map(|i| (i, p.len()))).max_by_key(|&(i, l)| (i + l, l))?;
    let rest = s.get(pos + len..)?;
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("is").filter(|r| r.starts_with([' ', ':'])).unwrap_or(rest);
    answer_span(rest).map(|a| (pos, a))
}

const FINAL_ANSWER: &[&str] = &["final answer is", "final answer:", "final answer"];
const ANSWER: &[&str] = &["answer:", "answer is"];

/// "The final answer is ..." phrasing.
pub(crate) fn final_answer_phrase(s: &str) -> Option<String> {
    after_phrase(s, FINAL_ANSWER).map(|x| x.1)
}

/// "Answer: ..." / "the answer is ..." phrasing.
#[cfg(test)]
pub(crate) fn answer_colon(s: &str) -> Option<String> {
    after_phrase(s, ANSWER).map(|x| x.1)
}

/// Whether `c` may stand next to a number that is a whole token (a digit
/// glued to letters, as in `AZYUK2A` or `x2`, is part of a word).
fn number_boundary(c: char) -> bool {
    !(c.is_alphabetic() || c.is_ascii_digit()) && c != '_' && c != '\\'
}

/// The last number in the text: sign, thousands groups (`1,000`, `1 000`),
/// decimals (a leading `.5`, a decimal comma `2,74`), fractions `a/b`.
/// Digits glued to letters are not numbers.
pub(crate) fn last_number(s: &str) -> Option<String> {
    let c: Vec<char> = s.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let digits = |mut k: usize| {
        while at(k).is_ascii_digit() {
            k += 1;
        }
        k
    };
    let mut last = None;
    let mut i = 0;
    while i < c.len() {
        let leading_dot = c[i] == '.' && at(i + 1).is_ascii_digit() && (i == 0 || !at(i - 1).is_ascii_digit());
        if !c[i].is_ascii_digit() && !leading_dot {
            i += 1;
            continue;
        }
        let mut start = i;
        if start > 0 && c[start - 1] == '-' {
            start -= 1;
        }
        let before = if start > 0 { c[start - 1] } else { ' ' };
        let mut j = if leading_dot { i } else { digits(i) };
        // Thousands groups: `,ddd` or ` ddd` (the first group at most 3 digits).
        let head = j - i;
        if !leading_dot && head <= 3 {
            for sep in [',', ' '] {
                while at(j) == sep
                    && at(j + 1).is_ascii_digit()
                    && digits(j + 1) == j + 4
                    && !(sep == ' ' && at(j + 4) == ',')
                {
                    j += 4;
                }
            }
        }
        if (at(j) == '.' || at(j) == ',') && at(j + 1).is_ascii_digit() && (at(j) == '.' || digits(j + 1) != j + 4) {
            j = digits(j + 1);
        }
        if at(j) == '/' && at(j + 1).is_ascii_digit() {
            j = digits(j + 1);
        }
        let mut after = at(j);
        // A unit glued to the number (`12cm`, `1,000.99m²`).
        let unit_len = c[j..].iter().take_while(|ch| ch.is_ascii_alphabetic()).count();
        if unit_len > 0 {
            let unit: String = c[j..j + unit_len].iter().collect::<String>().to_ascii_lowercase();
            if normalize::is_unit(&unit) && number_boundary(at(j + unit_len)) {
                after = at(j + unit_len);
            }
        }
        if number_boundary(before) && (number_boundary(after) || after == '\0') {
            last = Some(c[start..j].iter().collect::<String>());
        }
        i = j.max(i + 1);
    }
    last
}

/// The choice letter (A to J) an answer names: `B`, `(B)`, `B)`, `B.`,
/// `\text{(B)}`, `\textbf{B}` alone or at the start of the answer (`(D) $\frac34$`).
pub(crate) fn choice_letter(s: &str) -> Option<char> {
    let mut t = normalize::strip_delims(s);
    for cmd in ["\\textbf{", "\\text{", "\\mathrm{", "\\mathbf{"] {
        if let Some(rest) = t.strip_prefix(cmd)
            && let Some(close) = rest.find('}')
        {
            t = format!("{}{}", &rest[..close], &rest[close + 1..]);
        }
    }
    let t = t.trim().trim_matches('*').trim();
    let c: Vec<char> = t.chars().collect();
    let letter = |ch: char| ('A'..='J').contains(&ch);
    let (l, rest) = match c.as_slice() {
        ['(', l, ')', rest @ ..] if letter(*l) => (*l, rest),
        [l, ')' | '.' | ':', rest @ ..] if letter(*l) => (*l, rest),
        [l] if letter(*l) => (*l, &[][..]),
        [l, rest @ ..] if letter(*l) && rest.first().is_some_and(|ch| ch.is_whitespace()) && s.contains('$') => {
            (*l, rest)
        }
        _ => return None,
    };
    // Whatever follows the label must not be more of a word (`Bob`), nor
    // another choice (`(A) or (C)` names no single choice).
    let more = rest.windows(3).any(|w| w[0] == '(' && letter(w[1]) && w[2] == ')');
    (rest.first().is_none_or(|ch| !ch.is_alphanumeric()) && !more).then_some(l)
}

/// The last choice a completion marks: `(C)`, `**C**`, `\textbf{C}`,
/// `option C`, `choice C`, `answer is C`.
pub(crate) fn last_choice(s: &str) -> Option<char> {
    let s = final_part(s);
    let c: Vec<char> = s.chars().collect();
    let letter = |k: usize| c.get(k).copied().filter(|ch| ('A'..='J').contains(ch));
    let word_end = |k: usize| c.get(k).is_none_or(|ch| !ch.is_alphanumeric());
    let mut last = None;
    for i in 0..c.len() {
        let found = if c[i] == '(' && c.get(i + 2) == Some(&')') {
            letter(i + 1)
        } else if c[i] == '*' && c.get(i + 1) == Some(&'*') && c.get(i + 3) == Some(&'*') {
            letter(i + 2)
        } else if c[i] == '{'
            && c.get(i + 2) == Some(&'}')
            && i >= 6
            && c[i - 6..i].iter().copied().eq("textbf".chars())
        {
            letter(i + 1)
        } else {
            None
        };
        if let Some(l) = found {
            last = Some(l);
        }
    }
    let low = s.to_ascii_lowercase();
    for phrase in ["option ", "choice ", "answer is ", "answer: "] {
        if let Some(at) = low.rfind(phrase) {
            let k = s.get(..at + phrase.len()).map_or(0, |p| p.chars().count());
            if let Some(l) = letter(k).filter(|_| word_end(k + 1)) {
                last = last.or(Some(l));
            }
        }
    }
    last
}

/// The text after the last `</think>` when an answer is there (the final
/// answer), else the whole text.
fn final_part(s: &str) -> &str {
    match s.rfind("</think>") {
        Some(i) if !s[i + 8..].trim().is_empty() => &s[i + 8..],
        _ => s,
    }
}

/// Whether the whole text reads as one mathematical expression (not prose):
/// it parses, and has no run of four or more letters outside commands.
fn is_expression(s: &str, max_depth: usize, max_bits: u64) -> bool {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 400 {
        return false;
    }
    // Prose: a word of two or more letters standing alone, or a longer run
    // of letters outside a command.
    let wordy = t.split_whitespace().any(|w| {
        let w = w.trim_matches(|c: char| ",.;:!?".contains(c));
        w.chars().count() >= 2 && w.chars().all(|c| c.is_alphabetic() || c == '\'')
    });
    if wordy || t.contains('\'') && t.contains(' ') {
        return false;
    }
    let mut run = 0;
    let mut in_command = false;
    for ch in t.chars() {
        if ch == '\\' {
            in_command = true;
            run = 0;
        } else if ch.is_alphabetic() {
            if !in_command {
                run += 1;
                if run >= 4 {
                    return false;
                }
            }
        } else {
            in_command = false;
            run = 0;
        }
    }
    super::latex::parse(&normalize::normalize(t), true, max_depth, max_bits).is_ok()
}

/// Run the extractors in priority order.
pub(crate) fn extract(s: &str, last_number_fallback: bool) -> Option<(String, ExtractSource)> {
    let s = final_part(s);
    // A stated answer after the last box ("… \boxed{255} … The final answer
    // is $10,455$") is the one the completion ends on.
    let phrase = after_phrase(s, FINAL_ANSWER)
        .map(|(at, a)| (at, a, ExtractSource::FinalAnswerPhrase))
        .or_else(|| after_phrase(s, ANSWER).map(|(at, a)| (at, a, ExtractSource::AnswerColon)));
    if let Some(end) = last_box_end(s) {
        if let Some((at, a, source)) = phrase
            && at > end
        {
            return Some((a, source));
        }
        return boxed_answer(s).map(|b| (b, ExtractSource::Boxed));
    }
    if let Some(g) = gsm8k(s) {
        return Some((g, ExtractSource::Gsm8k));
    }
    if let Some((_, a, source)) = phrase {
        return Some((a, source));
    }
    if let Some((m, tail)) = last_math(s) {
        // A conclusion in prose after the last formula ("Therefore, there
        // are 12 sequences …") states the answer.
        let words = tail.split_whitespace().count();
        if last_number_fallback
            && words >= 6
            && let Some(n) = last_number(tail)
        {
            return Some((n, ExtractSource::LastNumber));
        }
        return Some((m, ExtractSource::LastMath));
    }
    if is_expression(s, 64, 1 << 17) {
        return Some((s.trim().to_string(), ExtractSource::Whole));
    }
    if last_number_fallback && let Some(n) = last_number(&without_broken_inline_math(s)) {
        return Some((n, ExtractSource::LastNumber));
    }
    None
}

/// `s` without the contents of inline math that crosses lines (`$ \n 9 \n $`,
/// `\( \n 9 \n \)`): malformed mathematics, not prose to take a number from.
fn without_broken_inline_math(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for (start, end) in scan_math(s).1 {
        out.push_str(s.get(at..start).unwrap_or(""));
        out.push(' ');
        at = end;
    }
    out.push_str(s.get(at..).unwrap_or(""));
    out
}

/// The answer inside a gold string: its boxed answer, `#### N`, "the final
/// answer is …" (a whole reference solution), the gold itself when it is
/// an answer, or its math spans (`$21,16$ or $11$`: all of them when only
/// connecting words stand between them, else the last one).
pub(crate) fn gold_answer(gold: &str) -> String {
    if let Some(b) = boxed_answer(gold) {
        return b;
    }
    if let Some(g) = gsm8k(gold) {
        return g;
    }
    if let Some(f) = final_answer_phrase(gold) {
        return f;
    }
    let bare = normalize::strip_delims(gold);
    if !bare.contains('$') && !bare.contains("\\(") {
        return bare;
    }
    let spans = math_span_ranges(gold);
    if spans.is_empty() {
        return bare;
    }
    let mut outside = String::new();
    let mut at = 0;
    for (start, _, end) in &spans {
        outside.push_str(gold.get(at..*start).unwrap_or(""));
        outside.push(' ');
        at = *end;
    }
    outside.push_str(gold.get(at..).unwrap_or(""));
    let connectors = outside
        .replace(',', " ")
        .split_whitespace()
        .all(|w| matches!(w.to_ascii_lowercase().as_str(), "or" | "and" | ";" | "\\quad"));
    let inners: Vec<String> = spans.into_iter().map(|(_, inner, _)| inner).collect();
    if connectors {
        return inners.join(", ");
    }
    inners.last().cloned().unwrap_or(bare)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed() {
        assert_eq!(last_boxed("a \\boxed{1} b \\boxed{\\frac{1}{2}}").as_deref(), Some("\\frac{1}{2}"));
        assert_eq!(last_boxed("$\\boxed 5$").as_deref(), Some("5"));
        assert_eq!(last_boxed("\\fbox{x}").as_deref(), Some("x"));
        assert_eq!(last_boxed("\\boxed{\\{1,2\\}}").as_deref(), Some("\\{1,2\\}"));
        assert_eq!(last_boxed("\\boxed{2} then \\boxed{unclosed").as_deref(), Some("2"));
        assert_eq!(last_boxed("no box"), None);
    }

    #[test]
    fn several_boxes_join_only_when_nothing_but_separators_stand_between() {
        assert_eq!(boxed_answer("roots $\\boxed{-2}$ and $\\boxed{1}$.").as_deref(), Some("-2, 1"));
        assert_eq!(boxed_answer("\\boxed{1},\\boxed{2},\\boxed{3}").as_deref(), Some("1, 2, 3"));
        assert_eq!(
            boxed_answer("\\boxed{k = 45} \\quad \\text{and} \\quad \\boxed{n = 2}").as_deref(),
            Some("k = 45, n = 2")
        );
        assert_eq!(boxed_answer("So \\boxed{3}. Wait, that is wrong. It is \\boxed{5}").as_deref(), Some("5"));
        assert_eq!(boxed_answer("\\boxed{3}, but actually \\boxed{5}").as_deref(), Some("5"));
        assert_eq!(boxed_answer("\\boxed{\\boxed{7}}").as_deref(), Some("\\boxed{7}"));
    }

    #[test]
    fn spans() {
        assert_eq!(math_spans("a $x$ b \\(y\\) c \\[z\\] $$w$$"), ["x", "y", "z", "w"]);
        assert_eq!(math_spans("costs \\$5 and $x$"), ["x"]);
        assert_eq!(math_spans("Answer $ \\frac{1}{2} \\$ = \\frac{10}{9} $"), ["\\frac{1}{2} \\$ = \\frac{10}{9}"]);
        assert!(math_spans("Answer $ \n 9 \n $").is_empty(), "inline spans stay on one line");
        assert_eq!(math_spans("Answer \\[ \n 9 \n \\]"), ["9"]);
        assert!(math_spans("Soucis : 2,74 $ a..").is_empty());
    }

    #[test]
    fn phrases() {
        assert_eq!(gsm8k("so\n#### 1,234\n").as_deref(), Some("1,234"));
        assert_eq!(
            final_answer_phrase("The final answer is $\\frac12$. I hope it is correct.").as_deref(),
            Some("\\frac12")
        );
        assert_eq!(final_answer_phrase("Final Answer: 3.5.").as_deref(), Some("3.5"));
        assert_eq!(final_answer_phrase("Final Answer: The largest $n$ is 34.").as_deref(), Some("34"));
        assert_eq!(
            final_answer_phrase("Final answer: the quotient is $x+1$, with remainder 0").as_deref(),
            Some("x+1")
        );
        assert_eq!(answer_colon("**Answer:** 42").as_deref(), Some("42"));
        assert_eq!(answer_colon("So the answer is 7 apples.").as_deref(), Some("7 apples"));
    }

    #[test]
    fn numbers() {
        assert_eq!(last_number("I have 3 apples and -4.5 pears").as_deref(), Some("-4.5"));
        assert_eq!(last_number("total 1,000 items").as_deref(), Some("1,000"));
        assert_eq!(last_number("it is 1 000").as_deref(), Some("1 000"));
        assert_eq!(last_number("so .4").as_deref(), Some(".4"));
        assert_eq!(last_number("Soucis : 2,74 $ a..").as_deref(), Some("2,74"));
        assert_eq!(last_number("not 10 but 1,000.99€").as_deref(), Some("1,000.99"));
        assert_eq!(last_number("AZYUK2A"), None);
        assert_eq!(last_number("no digits"), None);
    }

    #[test]
    fn think_blocks() {
        let s = "<think>maybe \\boxed{12}</think>The answer is \\boxed{13}.";
        assert_eq!(extract(s, true).map(|x| x.0).as_deref(), Some("13"));
        let s = "<think>draft \\boxed{12}</think>So the total is 13.";
        assert_eq!(extract(s, true).map(|x| x.0).as_deref(), Some("13"));
    }

    #[test]
    fn whole_expressions_and_last_spans() {
        assert_eq!(extract("\\frac{10}{9}", true), Some(("\\frac{10}{9}".into(), ExtractSource::Whole)));
        assert_eq!(extract("-\\frac{10}{9}", true).map(|x| x.0).as_deref(), Some("-\\frac{10}{9}"));
        assert_eq!(extract("we get 3 and 4", true).map(|x| x.1), Some(ExtractSource::LastNumber));
        assert_eq!(extract("Therefore $x \\geq 5$ is the solution.", true).map(|x| x.0).as_deref(), Some("x \\geq 5"));
    }

    #[test]
    fn gold_answers() {
        assert_eq!(gold_answer("$[0,1)$"), "[0,1)");
        assert_eq!(gold_answer("$21,16$ or $11$"), "21,16, 11");
        assert_eq!(gold_answer("\\boxed{1} papers and \\boxed{2} bins"), "1, 2");
        assert_eq!(gold_answer("x = 5"), "x = 5");
        assert_eq!(gold_answer("Final Answer: The final answer is $[2,5)$. I hope it is correct."), "[2,5)");
    }
}
