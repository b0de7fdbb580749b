"""sequence: the next term of an integer sequence. Level 1 arithmetic,
2 arithmetic or geometric, 3 quadratic or geometric with negative ratio,
4 Fibonacci-like or affine recurrences, 5 cubic, interleaved or
three-term recurrences."""

from __future__ import annotations

from typing import Any

from . import _common as c

NAME = "sequence"


def _nonzero(rng: Any, lo: int, hi: int) -> int:
    while True:
        v = rng.randint(lo, hi)
        if v != 0:
            return int(v)


def _terms(rule: str, rng: Any, count: int) -> list[int]:
    if rule == "arithmetic":
        a, d = rng.randint(-20, 30), _nonzero(rng, -12, 12)
        return [a + d * i for i in range(count)]
    if rule == "geometric":
        a, r = rng.randint(1, 6), rng.choice([2, 3, -2, -3, 4])
        return [a * r**i for i in range(count)]
    if rule == "quadratic":
        a, b, k = _nonzero(rng, -3, 3), rng.randint(-6, 6), rng.randint(-10, 10)
        return [a * i * i + b * i + k for i in range(1, count + 1)]
    if rule == "cubic":
        a, b, k = _nonzero(rng, -2, 2), rng.randint(-4, 4), rng.randint(-10, 10)
        return [a * i**3 + b * i + k for i in range(1, count + 1)]
    if rule == "fibonacci":
        seq = [rng.randint(1, 9), rng.randint(1, 9)]
        while len(seq) < count:
            seq.append(seq[-1] + seq[-2])
        return seq
    if rule == "affine":
        r, k = rng.choice([2, 3, -2]), _nonzero(rng, -6, 6)
        seq = [rng.randint(1, 9)]
        while len(seq) < count:
            seq.append(r * seq[-1] + k)
        return seq
    if rule == "tribonacci":
        seq = [rng.randint(0, 5), rng.randint(1, 5), rng.randint(1, 5)]
        while len(seq) < count:
            seq.append(seq[-1] + seq[-2] + seq[-3])
        return seq
    # interleaved: even positions one arithmetic sequence, odd another
    a, d = rng.randint(1, 20), _nonzero(rng, -7, 9)
    b, e = rng.randint(1, 20), _nonzero(rng, -7, 9)
    return [a + d * (i // 2) if i % 2 == 0 else b + e * (i // 2) for i in range(count)]


_LEVELS = {
    1: (["arithmetic"], 5),
    2: (["arithmetic", "geometric"], 5),
    3: (["quadratic", "geometric"], 6),
    4: (["fibonacci", "affine", "quadratic"], 6),
    5: (["cubic", "interleaved", "tribonacci", "affine"], 7),
}


def generate(rng: Any, level: int) -> dict[str, Any]:
    rules, shown = _LEVELS[level]
    rule = rng.choice(rules)
    if level == 1:
        a, d = rng.randint(1, 20), rng.randint(2, 9)
        seq = [a + d * i for i in range(shown + 1)]
    else:
        seq = _terms(rule, rng, shown + (2 if rule == "interleaved" else 0) + 1)
    return {"terms": seq[:-1], "rule": rule, "answer": seq[-1]}


def prompt(task: dict[str, Any]) -> str:
    terms = ", ".join(str(t) for t in task["terms"])
    return (
        f"Find the next term of this integer sequence, which follows a simple rule:\n\n    {terms}, ?\n\n"
        "Answer with the next term alone."
    )


# The answer is an integer the task holds.
check = c.check_int_answer
answer = c.stored_answer


def inline(task: dict[str, Any]) -> dict[str, Any]:
    terms = c.need_list(task, "terms", NAME, 2, 200)
    if not all(c.is_int(t) for t in terms):
        raise c.bad("sequence task field `terms` must hold integers")
    ans = c.need(task, "answer", NAME)
    if not c.is_int(ans):
        raise c.bad("sequence task field `answer` must be an integer (the next term)")
    rule = task.get("rule", "inline")
    if not isinstance(rule, str):
        raise c.bad("sequence task field `rule` must be a string")
    return {"terms": list(terms), "rule": rule, "answer": ans}
