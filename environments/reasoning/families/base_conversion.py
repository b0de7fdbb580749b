"""base_conversion: write a number given in one base in another (bases 2
to 36, digits beyond 9 are the letters a-z)."""

from __future__ import annotations

import re
from typing import Any

from . import _common as c

NAME = "base_conversion"

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def to_base(n: int, base: int) -> str:
    if n == 0:
        return "0"
    sign = "-" if n < 0 else ""
    n = abs(n)
    out = []
    while n:
        n, r = divmod(n, base)
        out.append(DIGITS[r])
    return sign + "".join(reversed(out))


def generate(rng: Any, level: int) -> dict[str, Any]:
    if level == 1:
        value, src, dst = rng.randint(2, 63), 10, 2
    elif level == 2:
        value, src, dst = rng.randint(16, 255), 2, 10
    elif level == 3:
        value = rng.randint(100, 4095)
        src, dst = rng.choice([(10, 16), (16, 10), (2, 16), (16, 2), (10, 8)])
    elif level == 4:
        value = rng.randint(200, 99_999)
        src, dst = rng.sample([2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16], 2)
    else:
        value = rng.randint(10**5, 10**9)
        src, dst = rng.sample([b for b in range(2, 37) if b != 10] + [10, 10, 10], 2)
        if src == dst:
            dst = 36 if src != 36 else 2
    return {"value": to_base(value, src), "from_base": src, "to_base": dst, "answer": to_base(value, dst)}


def _base_name(b: int) -> str:
    names = {2: "binary", 8: "octal", 10: "decimal", 16: "hexadecimal"}
    return f"base {b}" + (f" ({names[b]})" if b in names else "")


def prompt(task: dict[str, Any]) -> str:
    extra = ""
    if max(task["from_base"], task["to_base"]) > 10:
        extra = " Digits above 9 are written as the letters a, b, c, ... (a = 10)."
    return (
        f"Convert the {_base_name(task['from_base'])} number {task['value']} "
        f"to {_base_name(task['to_base'])}.{extra}\n\n"
        "Answer with the digits alone (no prefix such as 0x), in lowercase."
    )


def normalise(answer: str, base: int) -> str | None:
    s = answer.strip().lower().replace(" ", "")
    for sub in (f"_{{{base}}}", f"_{base}"):
        if s.endswith(sub):
            s = s[: -len(sub)]
    s = s.replace("_", "").replace(",", "")
    s = re.sub(r"^\((.*)\)$", r"\1", s)
    s = s.replace("{", "").replace("}", "")
    sign = ""
    if s.startswith("-"):
        sign, s = "-", s[1:]
    prefix = {2: "0b", 8: "0o", 16: "0x"}.get(base)
    if prefix and s.startswith(prefix):
        s = s[2:]
    if not s or any(ch not in DIGITS[:base] for ch in s):
        return None
    s = s.lstrip("0") or "0"
    return sign + s if s != "0" else s


def check(task: dict[str, Any], answer: str) -> bool:
    return bool(normalise(answer, task["to_base"]) == task["answer"])


def answer(task: dict[str, Any]) -> str | None:
    return str(task["answer"])


def inline(task: dict[str, Any]) -> dict[str, Any]:
    src = c.need_int(task, "from_base", NAME, 2, 36)
    dst = c.need_int(task, "to_base", NAME, 2, 36)
    raw = c.need(task, "value", NAME)
    if c.is_int(raw):
        raw = str(raw)
    if not isinstance(raw, str):
        raise c.bad("base_conversion task field `value` must be a string of digits")
    digits = normalise(raw, src)
    if digits is None or len(digits) > 200:
        raise c.bad(f"base_conversion task field `value` is not a number in base {src}")
    value = int(digits, src)
    return {"value": digits, "from_base": src, "to_base": dst, "answer": to_base(value, dst)}
