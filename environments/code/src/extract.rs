//! Getting the code out of a completion.

/// One fenced block: its language tag (lower-cased, may be empty) and body.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Block<'a> {
    lang: String,
    body: &'a str,
}

/// The fenced blocks of `text` (```` ``` ```` or `~~~` fences, optional
/// language tag); an unterminated last block runs to the end of the text.
fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, &str)> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        let trimmed = line.trim();
        let fence = if trimmed.starts_with("```") {
            Some("```")
        } else if trimmed.starts_with("~~~") {
            Some("~~~")
        } else {
            None
        };
        let Some(fence) = fence else { continue };
        match &open {
            None => {
                let lang = trimmed.trim_start_matches(fence).trim().to_ascii_lowercase();
                let lang = lang.split_whitespace().next().unwrap_or("").to_owned();
                open = Some((lang, pos, fence));
            }
            Some((lang, body_start, f)) if *f == fence && trimmed.trim_start_matches(fence).trim().is_empty() => {
                out.push(Block { lang: lang.clone(), body: &text[*body_start..start] });
                open = None;
            }
            Some(_) => {}
        }
    }
    if let Some((lang, body_start, _)) = open {
        out.push(Block { lang, body: &text[body_start..] });
    }
    out
}

fn is_python(lang: &str) -> bool {
    matches!(lang, "python" | "py" | "python3" | "py3")
}

/// The code in `completion`: the last fenced block tagged Python; else the
/// last untagged fenced block; else the whole completion. Leading blank lines
/// go, indentation stays (a body-only completion starts indented).
pub fn code(completion: &str) -> (String, bool) {
    let all = blocks(completion);
    let chosen = all
        .iter()
        .rev()
        .find(|b| is_python(&b.lang))
        .or_else(|| all.iter().rev().find(|b| b.lang.is_empty()))
        .map(|b| b.body);
    let fenced = chosen.is_some();
    let text = chosen.unwrap_or(completion);
    let mut lines: Vec<&str> = text.lines().skip_while(|l| l.trim().is_empty()).collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    (lines.join("\n"), fenced)
}

/// Whether `code` defines function `name` at top level.
pub fn defines(code: &str, name: &str) -> bool {
    code.lines().any(|l| {
        let rest = l.strip_prefix("async def ").or_else(|| l.strip_prefix("def "));
        rest.is_some_and(|r| r.trim_start().strip_prefix(name).is_some_and(|r| r.trim_start().starts_with('(')))
    })
}

/// A function body to append after a prompt: when its first line is not
/// indented (the model dropped the indentation), every line is indented by
/// four spaces.
pub fn as_body(code: &str) -> String {
    let first = code.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.starts_with([' ', '\t']) {
        code.to_owned()
    } else {
        code.lines()
            .map(|l| if l.trim().is_empty() { String::new() } else { format!("    {l}") })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_last_python_block() {
        let c =
            "Here:\n```python\ndef f(): return 1\n```\nand better:\n```py\ndef f(): return 2\n```\n```text\nout\n```";
        assert_eq!(code(c), ("def f(): return 2".to_owned(), true));
    }

    #[test]
    fn untagged_and_unterminated_blocks() {
        assert_eq!(code("```\nprint(1)\n```").0, "print(1)");
        assert_eq!(code("sure\n```python\nprint(2)\n").0, "print(2)");
        assert_eq!(code("```json\n{}\n```\n```\nx = 1\n```").0, "x = 1");
    }

    #[test]
    fn bare_completions_keep_indentation() {
        assert_eq!(code("\n    return x + 1\n\n").0, "    return x + 1");
        assert!(!code("    return 1").1);
    }

    #[test]
    fn detects_definitions() {
        assert!(defines("from x import y\ndef add(a, b):\n    return a + b", "add"));
        assert!(defines("async def add (a):", "add"));
        assert!(!defines("def add_one(a):", "add"));
        assert!(!defines("    def add(a):", "add"));
    }

    #[test]
    fn bodies_get_indented() {
        assert_eq!(as_body("return 1"), "    return 1");
        assert_eq!(as_body("x = 1\n\nreturn x"), "    x = 1\n\n    return x");
        assert_eq!(as_body("    return 1"), "    return 1");
    }
}
