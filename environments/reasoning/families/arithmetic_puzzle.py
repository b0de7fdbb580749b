"""arithmetic_puzzle: an equation with missing digits (levels 1-3) or
missing operators (levels 4-5), each shown as ``?``. Any filling that makes
the equation true (exactly, usual precedence, no leading zeros) is correct."""

from __future__ import annotations

from typing import Any

from . import _common as c

NAME = "arithmetic_puzzle"

KINDS = ("digits", "operators")


def _hide_digits(rng: Any, text: str, k: int) -> tuple[str, list[str]]:
    spots = [i for i, ch in enumerate(text) if ch.isdigit()]
    hide = sorted(rng.sample(spots, min(k, len(spots))))
    chars = list(text)
    for i in hide:
        chars[i] = "?"
    return "".join(chars), [text[i] for i in hide]


def generate(rng: Any, level: int) -> dict[str, Any]:
    if level <= 3:
        if level == 1:
            a, b = rng.randint(10, 89), rng.randint(10, 89)
            op, k = "+", 1
        elif level == 2:
            a, b = rng.randint(100, 899), rng.randint(100, 899)
            op, k = rng.choice(["+", "-"]), 2
            if op == "-" and a < b:
                a, b = b, a
        else:
            a = rng.randint(12, 99)
            b = rng.randint(3, 9) if rng.random() < 0.5 else rng.randint(11, 39)
            op, k = "*", 3
        value = a + b if op == "+" else a - b if op == "-" else a * b
        full = f"{a} {op} {b} = {value}"
        puzzle, solution = _hide_digits(rng, full, k)
        return {"kind": "digits", "puzzle": puzzle, "ops": [], "solution": solution}
    count, ops = (4, ["+", "-", "*"]) if level == 4 else (5, ["+", "-", "*", "/"])
    while True:
        nums = [rng.randint(1, 12) for _ in range(count)]
        chosen = [rng.choice(ops) for _ in range(count - 1)]
        expr = " ".join(f"{n} {o}" for n, o in zip(nums, chosen, strict=False)) + f" {nums[-1]}"
        try:
            value, _ = c.evaluate_text(expr)
        except ValueError:
            continue
        if value.denominator == 1 and value >= 0:
            break
    puzzle = " ? ".join(str(n) for n in nums) + f" = {int(value)}"
    return {"kind": "operators", "puzzle": puzzle, "ops": ops, "solution": chosen}


def prompt(task: dict[str, Any]) -> str:
    n = task["puzzle"].count("?")
    if task["kind"] == "digits":
        what = "Each ? stands for one missing digit (0-9); numbers have no leading zeros."
        how = (
            f"Answer with the {n} missing digit{'s' if n > 1 else ''} in order from left to right, separated by commas."
        )
    else:
        names = " ".join(task["ops"])
        what = (
            f"Each ? stands for one missing operator from: {names}. The usual precedence applies "
            "(* and / before + and -, left to right otherwise) and division is exact."
        )
        how = f"Answer with the {n} missing operators in order from left to right, separated by commas."
    return f"Fill in the missing symbols so that the equation is true:\n\n    {task['puzzle']}\n\n{what} {how}"


def _fills(task: dict[str, Any], answer: str) -> list[str] | None:
    s = c.normalise_ops(answer)
    puzzle = task["puzzle"].replace(" ", "")
    if "=" in s:
        compact = s.replace(" ", "")
        if len(compact) != len(puzzle):
            return None
        out = []
        for p, a in zip(puzzle, compact, strict=False):
            if p == "?":
                out.append(a)
            elif p != a:
                return None
        return out
    parts = [p.strip() for p in s.split(",")] if "," in s else s.split()
    if len(parts) == 1 and len(parts[0]) == puzzle.count("?") and task["kind"] == "digits":
        parts = list(parts[0])  # "37" for two digits
    return parts


def fill(task: dict[str, Any], fills: list[str]) -> str | None:
    """The puzzle with its ``?`` replaced by ``fills`` (``None`` when a fill
    does not fit its slot)."""
    if len(fills) != task["puzzle"].count("?"):
        return None
    allowed = "0123456789" if task["kind"] == "digits" else "".join(task["ops"])
    out, k = [], 0
    for ch in task["puzzle"]:
        if ch == "?":
            f = fills[k]
            k += 1
            if len(f) != 1 or f not in allowed:
                return None
            out.append(f)
        else:
            out.append(ch)
    return "".join(out)


def holds(equation: str) -> bool:
    """Whether ``left = right`` is true exactly (no leading zeros)."""
    try:
        tokens = c.tokenize(equation)
    except ValueError:
        return False
    if tokens.count("=") != 1:
        return False
    for t in tokens:
        if t.isdigit() and len(t) > 1 and t[0] == "0":
            return False
    k = tokens.index("=")
    try:
        left, _ = c.evaluate(tokens[:k])
        right, _ = c.evaluate(tokens[k + 1 :])
    except ValueError:
        return False
    return left == right


def check(task: dict[str, Any], answer: str) -> bool:
    fills = _fills(task, answer)
    if fills is None:
        return False
    eq = fill(task, fills)
    return eq is not None and holds(eq)


def answer(task: dict[str, Any]) -> str | None:
    sol = task.get("solution")
    return ", ".join(sol) if isinstance(sol, list) else None


def _search(task: dict[str, Any], limit: int = 5000) -> list[str] | None:
    slots = task["puzzle"].count("?")
    alphabet = list("0123456789") if task["kind"] == "digits" else list(task["ops"])
    if len(alphabet) ** slots > limit:
        return None
    fills = [alphabet[0]] * slots

    def rec(i: int) -> bool:
        if i == slots:
            eq = fill(task, fills)
            return eq is not None and holds(eq)
        for a in alphabet:
            fills[i] = a
            if rec(i + 1):
                return True
        return False

    return list(fills) if rec(0) else None


def inline(task: dict[str, Any]) -> dict[str, Any]:
    puzzle = " ".join(c.need_str(task, "puzzle", NAME, 300).split())
    kind = c.need(task, "kind", NAME)
    if kind not in KINDS:
        raise c.bad('arithmetic_puzzle task field `kind` must be "digits" or "operators"')
    ops = task.get("ops", ["+", "-", "*", "/"] if kind == "operators" else [])
    if (
        not isinstance(ops, list)
        or any(o not in ("+", "-", "*", "/") for o in ops)
        or (kind == "operators" and not ops)
    ):
        raise c.bad('arithmetic_puzzle task field `ops` must be a non-empty list of "+", "-", "*", "/"')
    if puzzle.count("?") == 0 or puzzle.count("=") != 1:
        raise c.bad("arithmetic_puzzle task field `puzzle` must hold one `=` and at least one `?`")
    if any(ch not in "0123456789+-*/()=? " for ch in puzzle):
        raise c.bad("arithmetic_puzzle task field `puzzle` may hold only digits, + - * / ( ) = ? and spaces")
    out: dict[str, Any] = {"kind": kind, "puzzle": puzzle, "ops": sorted(set(ops), key="+-*/".index)}
    sol = task.get("solution")
    if sol is not None:
        if isinstance(sol, str):
            sol = _fills(out, sol)
        if not isinstance(sol, list) or not all(isinstance(s, str) for s in sol):
            raise c.bad("arithmetic_puzzle task field `solution` must be a list of the symbols filling each ?")
        eq = fill(out, sol)
        if eq is None or not holds(eq):
            raise c.bad("arithmetic_puzzle task field `solution` does not make the equation true")
    else:
        sol = _search(out)
        if sol is None:
            raise c.bad(
                "arithmetic_puzzle task has no `solution` and none was found "
                "(give `solution` for puzzles with many missing symbols)"
            )
    out["solution"] = list(sol)
    return out
