"""Helpers shared by the families: answer extraction, a tiny exact
expression evaluator, word lists and inline-task field checks.

Everything here is deterministic and standard-library only; nothing depends
on ``hash()`` or on set iteration order.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from envhub import EnvError

# Answers longer than this are wrong without being parsed (keeps scoring fast
# whatever a completion holds).
MAX_ANSWER_CHARS = 4000

BOXED_INSTRUCTION = "Give your final answer as \\boxed{...}."

NAMES = [
    "Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi",
    "Ivan", "Judy", "Mallory", "Oscar", "Peggy", "Rupert", "Sybil", "Trent",
    "Victor", "Walter", "Xena", "Yara", "Zoe", "Quinn", "Nina", "Leo",
]  # fmt: skip

# Common English words (lowercase letters only, 3-8 letters, distinct).
WORDS = [
    "apple", "river", "stone", "green", "house", "light", "table", "water",
    "music", "paper", "dream", "cloud", "horse", "bread", "chair", "night",
    "sugar", "plant", "smile", "train", "ocean", "tiger", "lemon", "pilot",
    "story", "money", "heart", "field", "glass", "voice", "earth", "sound",
    "bird", "book", "cake", "door", "fire", "fish", "gold", "hand", "king",
    "lake", "moon", "nose", "rain", "ship", "snow", "star", "tree", "wind",
    "wolf", "wood", "blue", "cold", "dark", "fast", "good", "high", "kind",
    "long", "open", "warm", "wild", "bright", "castle", "garden", "market",
    "silver", "winter", "summer", "forest", "island", "mirror", "window",
    "yellow", "orange", "purple", "rabbit", "monkey", "planet", "rocket",
    "bottle", "candle", "basket", "button", "doctor", "farmer", "friend",
    "letter", "number", "pencil", "little", "happy", "quiet", "small",
    "young", "large", "early", "happy", "brave", "clever", "gentle",
    "cat", "dog", "sun", "sky", "sea", "car", "hat", "cup", "map", "box",
    "key", "egg", "pen", "red", "big", "old", "new", "hot", "day", "way",
    "blanket", "captain", "chicken", "kitchen", "morning", "picture",
    "rainbow", "teacher", "thunder", "village", "weather", "balloon",
    "journey", "library", "mountain", "elephant", "airplane", "question",
]  # fmt: skip
WORDS = list(dict.fromkeys(WORDS))  # drop duplicates, keep order
WORD_SET = frozenset(WORDS)


# Answer extraction -------------------------------------------------------

_ANSWER_RE = re.compile(r"answer\s*:", re.IGNORECASE)
_WRAPPERS = ("\\text", "\\textbf", "\\mathrm", "\\mathbf", "\\textit", "\\texttt", "\\operatorname")


def _balanced(text: str, open_at: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``open_at``, or -1."""
    depth = 0
    for i in range(open_at, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


_BOXED_RE = re.compile(r"\\boxed *\{")


def _last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` whose braces balance (one
    pass over the text, whatever it holds)."""
    opens = [m.end() - 1 for m in _BOXED_RE.finditer(text)]
    if not opens:
        return None
    close: dict[int, int] = {}
    stack: list[int] = []
    for i in range(opens[0], len(text)):
        ch = text[i]
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            close[stack.pop()] = i
    for j in reversed(opens):
        if j in close:
            return text[j + 1 : close[j]]
    return None


def clean(answer: str) -> str:
    """Strips the decoration models put around answers: ``$``, ``**``,
    ``\\text{...}``-style wrappers, LaTeX spaces, a trailing period."""
    s = answer.strip()
    for w in _WRAPPERS:
        while True:
            i = s.find(w + "{")
            if i < 0:
                break
            close = _balanced(s, i + len(w))
            if close < 0:
                break
            s = s[:i] + s[i + len(w) + 1 : close] + s[close + 1 :]
    s = s.replace("\\,", " ").replace("\\;", " ").replace("\\ ", " ").replace("~", " ")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.strip()
    for _ in range(3):
        before = s
        s = s.strip()
        if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
            s = s.strip("$")
        if s.startswith("**") and s.endswith("**") and len(s) >= 4:
            s = s[2:-2]
        if s.endswith(".") and not s[:-1].rstrip().endswith("."):
            s = s[:-1]
        if s == before:
            break
    return " ".join(s.split())


def extract(completion: str) -> tuple[str | None, bool]:
    """The final answer in ``completion`` and whether it was boxed: the last
    ``\\boxed{...}`` with balanced braces, else the text after the last
    ``Answer:`` on its line (the next non-empty line when that is empty).
    Only the text after the last ``</think>`` counts."""
    text = completion
    cut = text.rfind("</think>")
    if cut >= 0:
        text = text[cut + len("</think>") :]
    boxed = _last_boxed(text)
    if boxed is not None:
        return (clean(boxed) if len(boxed) <= MAX_ANSWER_CHARS else boxed), True
    last = None
    for m in _ANSWER_RE.finditer(text):
        last = m
    if last is None:
        return None, False
    rest = text[last.end() :]
    lines = rest.split("\n")
    first = lines[0].strip()
    if not first:
        first = next((ln.strip() for ln in lines[1:] if ln.strip()), "")
    if not first:
        return None, False
    return (clean(first) if len(first) <= MAX_ANSWER_CHARS else first), False


# Exact arithmetic expressions --------------------------------------------

_OPS = "+-*/"
_MAX_DEPTH = 40


def normalise_ops(s: str) -> str:
    """Maps the operator spellings models use onto ``+ - * /``."""
    # (times, middle dot, division sign, minus sign and en dash written as escapes; no letter is
    # valid in an expression, so a letter x is a times sign)
    for a, b in (
        ("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("\u00d7", "*"), ("\u00b7", "*"), ("\u00f7", "/"),
        ("\u2212", "-"), ("\u2013", "-"), ("\\left", ""), ("\\right", ""), ("\\(", "("), ("\\)", ")"),
        ("{", "("), ("}", ")"), ("[", "("), ("]", ")"), ("x", "*"), ("X", "*"),
    ):  # fmt: skip
        s = s.replace(a, b)
    return s


def tokenize(s: str) -> list[str]:
    """Integers, ``+ - * / ( ) =`` (whitespace between); ``ValueError`` on anything else."""
    tokens: list[str] = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch.isspace():
            i += 1
        elif ch in "0123456789":
            j = i
            while j < n and s[j] in "0123456789":
                j += 1
            tokens.append(s[i:j])
            i = j
        elif ch in "+-*/()=":
            tokens.append(ch)
            i += 1
        else:
            raise ValueError(f"unexpected character {ch!r}")
    return tokens


class _Parser:
    """expr := term (('+'|'-') term)*; term := atom (('*'|'/') atom)*;
    atom := INT | '(' expr ')'. Exact (``Fraction``), no unary minus."""

    def __init__(self, tokens: list[str]) -> None:
        self.t = tokens
        self.i = 0
        self.numbers: list[int] = []

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def expr(self, depth: int) -> Fraction:
        if depth > _MAX_DEPTH:
            raise ValueError("expression nested too deeply")
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            op = self.t[self.i]
            self.i += 1
            rhs = self.term(depth)
            value = value + rhs if op == "+" else value - rhs
        return value

    def term(self, depth: int) -> Fraction:
        value = self.atom(depth)
        while self.peek() in ("*", "/"):
            op = self.t[self.i]
            self.i += 1
            rhs = self.atom(depth)
            if op == "*":
                value = value * rhs
            else:
                if rhs == 0:
                    raise ValueError("division by zero")
                value = value / rhs
        return value

    def atom(self, depth: int) -> Fraction:
        tok = self.peek()
        if tok is None:
            raise ValueError("unexpected end of expression")
        if tok == "(":
            self.i += 1
            value = self.expr(depth + 1)
            if self.peek() != ")":
                raise ValueError("missing )")
            self.i += 1
            return value
        if tok.isdigit():
            self.i += 1
            self.numbers.append(int(tok))
            return Fraction(int(tok))
        raise ValueError(f"unexpected {tok!r}")


def evaluate(tokens: list[str]) -> tuple[Fraction, list[int]]:
    """The exact value of an expression's tokens and the integers it uses."""
    p = _Parser(tokens)
    value = p.expr(0)
    if p.i != len(tokens):
        raise ValueError(f"unexpected {tokens[p.i]!r}")
    return value, p.numbers


def evaluate_text(s: str) -> tuple[Fraction, list[int]]:
    return evaluate(tokenize(normalise_ops(s)))


class Expr:
    """A generated expression: its value, text and precedence (for
    minimal parentheses)."""

    __slots__ = ("prec", "text", "value")

    def __init__(self, value: Fraction, text: str, prec: int) -> None:
        self.value, self.text, self.prec = value, text, prec

    @staticmethod
    def num(n: int) -> Expr:
        return Expr(Fraction(n), str(n), 3)

    @staticmethod
    def combine(a: Expr, op: str, b: Expr) -> Expr:
        prec = 1 if op in "+-" else 2
        lt = f"({a.text})" if a.prec < prec else a.text
        rt = f"({b.text})" if b.prec < prec or (b.prec == prec and op in "-/") else b.text
        if op == "+":
            v = a.value + b.value
        elif op == "-":
            v = a.value - b.value
        elif op == "*":
            v = a.value * b.value
        else:
            v = a.value / b.value
        return Expr(v, f"{lt} {op} {rt}", prec)


# Normalisation helpers ---------------------------------------------------


def parse_int(answer: str) -> int | None:
    """An integer answer (``1,234``, ``+5``, ``-3``, ``5.0``), or ``None``."""
    s = answer.replace(",", "").replace(" ", "")
    if s.endswith(".0"):
        s = s[:-2]
    if re.fullmatch(r"[+-]?\d{1,40}", s):
        return int(s)
    return None


def check_int_answer(task: dict[str, Any], answer: str) -> bool:
    """Whether ``answer`` is the integer ``task["answer"]``."""
    v = parse_int(answer)
    return v is not None and v == task["answer"]


def stored_answer(task: dict[str, Any]) -> str | None:
    """The reference answer a task holds, as text."""
    return str(task["answer"])


def words_of(s: str) -> list[str]:
    """Lower-case words of letters only."""
    return re.findall(r"[a-z]+", s.lower())


# Inline-task field checks -------------------------------------------------


def bad(message: str) -> EnvError:
    return EnvError.invalid_task(message)


def need(task: dict[str, Any], field: str, family: str) -> Any:
    if field not in task:
        raise bad(f"{family} task is missing field `{field}`")
    return task[field]


def need_int(task: dict[str, Any], field: str, family: str, lo: int | None = None, hi: int | None = None) -> int:
    v = need(task, field, family)
    if isinstance(v, bool) or not isinstance(v, int):
        raise bad(f"{family} task field `{field}` must be an integer")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise bad(f"{family} task field `{field}` must be between {lo} and {hi}")
    return v


def need_str(task: dict[str, Any], field: str, family: str, max_len: int = 2000) -> str:
    v = need(task, field, family)
    if not isinstance(v, str) or not v.strip():
        raise bad(f"{family} task field `{field}` must be a non-empty string")
    if len(v) > max_len:
        raise bad(f"{family} task field `{field}` is longer than {max_len} characters")
    return v


def need_list(task: dict[str, Any], field: str, family: str, lo: int = 1, hi: int = 1000) -> list[Any]:
    v = need(task, field, family)
    if not isinstance(v, list):
        raise bad(f"{family} task field `{field}` must be a list")
    if not lo <= len(v) <= hi:
        raise bad(f"{family} task field `{field}` must have {lo} to {hi} entries")
    return v


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
