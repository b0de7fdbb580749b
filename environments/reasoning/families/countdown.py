"""countdown: reach a target with the given numbers, each at most once, and
+ - * / (with parentheses). Any expression that evaluates exactly to the
target with a sub-multiset of the numbers is correct."""

from __future__ import annotations

from collections import Counter
from typing import Any

from . import _common as c

NAME = "countdown"

LARGE = [25, 50, 75, 100]

# level: (how many small, how many large, small max, uses (lo, hi), target range)
_LEVELS = {
    1: (3, 0, 10, (2, 2), (3, 60)),
    2: (4, 0, 10, (3, 3), (10, 99)),
    3: (4, 0, 13, (4, 4), (10, 150)),
    4: (4, 1, 10, (4, 5), (20, 400)),
    5: (4, 2, 10, (5, 6), (101, 999)),
}


def _build(rng: Any, numbers: list[int], uses: int) -> c.Expr:
    chosen = rng.sample(numbers, uses)
    items = [c.Expr.num(n) for n in chosen]
    while len(items) > 1:
        i, j = rng.sample(range(len(items)), 2)
        a, b = items[i], items[j]
        if a.value < b.value:
            a, b = b, a
        ops = ["+", "*"] if a.value * b.value <= 2000 and b.value != 1 else ["+"]
        if a.value != b.value:
            ops.append("-")
        if b.value > 1 and a.value % b.value == 0:
            ops += ["/", "/"]
        op = rng.choice(ops)
        merged = c.Expr.combine(a, op, b)
        items = [x for k, x in enumerate(items) if k not in (i, j)] + [merged]
    return items[0]


def generate(rng: Any, level: int) -> dict[str, Any]:
    small, large, small_max, (ulo, uhi), (tlo, thi) = _LEVELS[level]
    best = None
    for _ in range(60):
        numbers = [rng.randint(1, small_max) for _ in range(small)] + rng.sample(LARGE, large)
        rng.shuffle(numbers)
        expr = _build(rng, numbers, rng.randint(ulo, uhi))
        t = expr.value
        if t.denominator != 1:
            continue
        target = int(t)
        best = (numbers, target, expr.text)
        if tlo <= target <= thi and target not in numbers:
            break
    assert best is not None
    numbers, target, solution = best
    return {"numbers": numbers, "target": target, "solution": solution}


def prompt(task: dict[str, Any]) -> str:
    nums = ", ".join(str(n) for n in task["numbers"])
    t = task["target"]
    return (
        f"Numbers: {nums}\nTarget: {t}\n\n"
        f"Write an arithmetic expression that equals exactly {t}, using some or all of the numbers above "
        "(each at most once; a number listed twice may be used twice) with +, -, *, / and parentheses. "
        "Numbers cannot be glued together into new numbers, and there is no unary minus. "
        f"Answer with the expression alone (you may end it with = {t})."
    )


def _split_target(answer: str, target: int) -> str | None:
    s = c.normalise_ops(answer)
    if "=" not in s:
        return s
    parts = [p.strip() for p in s.split("=")]
    if len(parts) != 2:
        return None
    a, b = parts
    if b == str(target):
        return a
    if a == str(target):
        return b
    return None


def check(task: dict[str, Any], answer: str) -> bool:
    expr = _split_target(answer, task["target"])
    if expr is None or not expr:
        return False
    try:
        value, used = c.evaluate(c.tokenize(expr))
    except ValueError:
        return False
    if value != task["target"]:
        return False
    avail = Counter(task["numbers"])
    for n, k in Counter(used).items():
        if avail[n] < k:
            return False
    return True


def _solve(numbers: list[int], target: int) -> str | None:
    """A solution by exhaustive pairing (only for up to 4 numbers)."""
    found: list[str] = []

    def rec(items: list[c.Expr]) -> bool:
        for e in items:
            if e.value == target:
                found.append(e.text)
                return True
        n = len(items)
        for i in range(n):
            for j in range(n):
                if i == j:
                    continue
                a, b = items[i], items[j]
                rest = [items[k] for k in range(n) if k != i and k != j]
                for op in "+-*/":
                    if op in "+*" and i > j:
                        continue
                    if op == "/" and b.value == 0:
                        continue
                    if rec([*rest, c.Expr.combine(a, op, b)]):
                        return True
        return False

    rec([c.Expr.num(n) for n in numbers])
    return found[0] if found else None


def answer(task: dict[str, Any]) -> str | None:
    sol = task.get("solution")
    return sol if isinstance(sol, str) else None


def inline(task: dict[str, Any]) -> dict[str, Any]:
    numbers = c.need_list(task, "numbers", NAME, 1, 8)
    for n in numbers:
        if not c.is_int(n) or not 1 <= n <= 1_000_000:
            raise c.bad("countdown task field `numbers` must hold integers from 1 to 1000000")
    target = c.need_int(task, "target", NAME, 0, 10**12)
    out: dict[str, Any] = {"numbers": list(numbers), "target": target}
    sol = task.get("solution")
    if sol is not None:
        if not isinstance(sol, str) or not check(out, sol):
            raise c.bad("countdown task field `solution` is not an expression of the numbers equal to the target")
        out["solution"] = sol
    elif len(numbers) <= 4:
        found = _solve(list(numbers), target)
        if found is None:
            raise c.bad("countdown task has no solution: the target cannot be made from `numbers`")
        out["solution"] = found
    return out
