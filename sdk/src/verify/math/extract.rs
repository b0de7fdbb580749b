//! Locating the final answer inside a model completion.

use super::ExtractSource;

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

/// Content of the last well-formed `\boxed{..}` / `\fbox{..}` / `\boxed x`.
pub(crate) fn last_boxed(s: &str) -> Option<String> {
    let mut starts: Vec<(usize, usize)> = s
        .match_indices("\\boxed")
        .map(|(i, m)| (i, m.len()))
        .chain(s.match_indices("\\fbox").map(|(i, m)| (i, m.len())))
        .collect();
    starts.sort_unstable();
    let matches = brace_matches(s);
    for &(i, len) in starts.iter().rev() {
        let after = i + len;
        let rest = s.get(after..)?;
        let trimmed = rest.trim_start();
        let off = after + (rest.len() - trimmed.len());
        if trimmed.starts_with('{') {
            if let Some(&end) = matches.get(&off) {
                let inner = s.get(off + 1..end - 1)?;
                return Some(inner.trim().to_string());
            }
            continue;
        }
        if off == after {
            // `\boxedx` is not a box.
            continue;
        }
        let tok: String = trimmed.chars().take_while(|c| !c.is_whitespace() && *c != '$').collect();
        let tok = tok.trim_end_matches(['.', ',']).to_string();
        if !tok.is_empty() {
            return Some(tok);
        }
    }
    None
}

/// Text after the last `####` (GSM8K style) up to the end of its line.
pub(crate) fn gsm8k(s: &str) -> Option<String> {
    let i = s.rfind("####")?;
    let rest = s.get(i + 4..)?;
    let line = rest.lines().next().unwrap_or("");
    let t = line.trim().trim_end_matches('.').trim();
    if t.is_empty() { None } else { Some(t.to_string()) }
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
    if v.is_empty() { None } else { Some(v.to_string()) }
}

/// Text after the last occurrence of any of `phrases` (ASCII case-insensitive).
fn after_phrase(s: &str, phrases: &[&str]) -> Option<String> {
    let low = s.to_ascii_lowercase();
    let (pos, len) =
        phrases.iter().filter_map(|p| low.rfind(p).map(|i| (i, p.len()))).max_by_key(|&(i, l)| (i + l, l))?;
    let rest = s.get(pos + len..)?;
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("is").filter(|r| r.starts_with([' ', ':'])).unwrap_or(rest);
    answer_span(rest)
}

/// "The final answer is ..." phrasing.
pub(crate) fn final_answer_phrase(s: &str) -> Option<String> {
    after_phrase(s, &["final answer is", "final answer:", "final answer"])
}

/// "Answer: ..." / "the answer is ..." phrasing.
pub(crate) fn answer_colon(s: &str) -> Option<String> {
    after_phrase(s, &["answer:", "answer is"])
}

/// The last number in the text (sign, thousands groups, decimals, `a/b`).
pub(crate) fn last_number(s: &str) -> Option<String> {
    let c: Vec<char> = s.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let mut last = None;
    let mut i = 0;
    while i < c.len() {
        if !c[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = if i > 0 && c[i - 1] == '-' { i - 1 } else { i };
        let mut j = i;
        while at(j).is_ascii_digit() {
            j += 1;
        }
        while at(j) == ','
            && at(j + 1).is_ascii_digit()
            && at(j + 2).is_ascii_digit()
            && at(j + 3).is_ascii_digit()
            && !at(j + 4).is_ascii_digit()
        {
            j += 4;
        }
        if at(j) == '.' && at(j + 1).is_ascii_digit() {
            j += 1;
            while at(j).is_ascii_digit() {
                j += 1;
            }
        }
        if at(j) == '/' && at(j + 1).is_ascii_digit() {
            j += 1;
            while at(j).is_ascii_digit() {
                j += 1;
            }
        }
        last = Some(c[start..j].iter().collect::<String>());
        i = j;
    }
    last
}

/// Run the extractors in priority order.
pub(crate) fn extract(s: &str, last_number_fallback: bool) -> Option<(String, ExtractSource)> {
    if let Some(b) = last_boxed(s) {
        return Some((b, ExtractSource::Boxed));
    }
    if let Some(g) = gsm8k(s) {
        return Some((g, ExtractSource::Gsm8k));
    }
    if let Some(f) = final_answer_phrase(s) {
        return Some((f, ExtractSource::FinalAnswerPhrase));
    }
    if let Some(a) = answer_colon(s) {
        return Some((a, ExtractSource::AnswerColon));
    }
    if last_number_fallback && let Some(n) = last_number(s) {
        return Some((n, ExtractSource::LastNumber));
    }
    None
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
    fn phrases() {
        assert_eq!(gsm8k("so\n#### 1,234\n").as_deref(), Some("1,234"));
        assert_eq!(
            final_answer_phrase("The final answer is $\\frac12$. I hope it is correct.").as_deref(),
            Some("\\frac12")
        );
        assert_eq!(final_answer_phrase("Final Answer: 3.5.").as_deref(), Some("3.5"));
        assert_eq!(answer_colon("**Answer:** 42").as_deref(), Some("42"));
        assert_eq!(answer_colon("So the answer is 7 apples.").as_deref(), Some("7 apples"));
    }

    #[test]
    fn numbers() {
        assert_eq!(last_number("I have 3 apples and -4.5 pears").as_deref(), Some("-4.5"));
        assert_eq!(last_number("total 1,000 items").as_deref(), Some("1,000"));
        assert_eq!(last_number("no digits"), None);
    }
}
