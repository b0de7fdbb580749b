"""knights_knaves: on an island knights always tell the truth and knaves
always lie; from what the islanders say, tell who is which. Generated
puzzles have exactly one consistent assignment (checked over all 2^n)."""

from __future__ import annotations

import re
from typing import Any

from . import _common as c

NAME = "knights_knaves"

# level: (people, statement kinds)
_LEVELS = {
    1: (2, ["knight", "knave", "same", "differ"]),
    2: (3, ["knight", "knave", "same", "differ"]),
    3: (3, ["knight", "knave", "same", "differ", "and", "or"]),
    4: (4, ["knave", "same", "differ", "and", "or", "count"]),
    5: (5, ["differ", "and", "or", "implies", "count", "same"]),
}
ATOMS = ("knight", "knave")
PAIRS = ("same", "differ")
JOINS = ("and", "or", "implies")


def truth(f: list[Any], world: dict[str, bool]) -> bool:
    """The value of statement ``f`` when ``world[name]`` says who is a knight."""
    op = f[0]
    if op == "knight":
        return world[f[1]]
    if op == "knave":
        return not world[f[1]]
    if op == "same":
        return world[f[1]] == world[f[2]]
    if op == "differ":
        return world[f[1]] != world[f[2]]
    if op == "and":
        return truth(f[1], world) and truth(f[2], world)
    if op == "or":
        return truth(f[1], world) or truth(f[2], world)
    if op == "implies":
        return (not truth(f[1], world)) or truth(f[2], world)
    if op == "not":
        return not truth(f[1], world)
    return bool(sum(world.values()) == f[1])  # count: exactly n knights


def _worlds(people: list[str]) -> list[dict[str, bool]]:
    return [{p: bool(m >> i & 1) for i, p in enumerate(people)} for m in range(1 << len(people))]


def consistent(people: list[str], statements: list[dict[str, Any]]) -> list[dict[str, bool]]:
    """Every assignment in which knights' statements are true and knaves' false."""
    return [w for w in _worlds(people) if all(truth(s["says"], w) == w[s["speaker"]] for s in statements)]


def _atom(rng: Any, speaker: str, people: list[str]) -> list[Any]:
    others = [p for p in people if p != speaker]
    return [rng.choice(ATOMS), rng.choice(others)]


def _statement(rng: Any, kinds: list[str], speaker: str, people: list[str]) -> list[Any]:
    kind = rng.choice(kinds)
    others = [p for p in people if p != speaker]
    if kind in ATOMS:
        return [kind, rng.choice(others)]
    if kind in PAIRS:
        if len(others) >= 2 and rng.random() < 0.5:
            a, b = rng.sample(others, 2)
        else:
            a, b = speaker, rng.choice(others)
        return [kind, a, b]
    if kind in JOINS:
        f = _atom(rng, speaker, people)
        g = _atom(rng, speaker, people)
        while g[1] == f[1] and len(others) > 1:
            g = _atom(rng, speaker, people)
        return [kind, f, g]
    return ["count", rng.randint(0, len(people))]


def generate(rng: Any, level: int) -> dict[str, Any]:
    n, kinds = _LEVELS[level]
    people = rng.sample(c.NAMES, n)
    while True:
        world = {p: rng.random() < 0.5 for p in people}
        statements = []
        for p in people:
            while True:
                f = _statement(rng, kinds, p, people)
                if truth(f, world) == world[p]:
                    break
            statements.append({"speaker": p, "says": f})
        if len(consistent(people, statements)) == 1:
            break
    return {
        "people": people,
        "statements": statements,
        "answer": [[p, "knight" if world[p] else "knave"] for p in people],
    }


def _name(p: str, speaker: str) -> str:
    return "I" if p == speaker else p


def text(f: list[Any], speaker: str, top: bool = True) -> str:
    op = f[0]
    if op in ATOMS:
        return "I am a " + op if f[1] == speaker else f"{f[1]} is a {op}"
    if op in PAIRS:
        a, b = f[1], f[2]
        if b == speaker:
            a, b = b, a
        kind = "the same kind" if op == "same" else "different kinds"
        if a == speaker:
            return f"{b} and I are {kind}"
        return f"{a} and {b} are {kind}"
    if op == "and":
        return f"{text(f[1], speaker, False)} and {text(f[2], speaker, False)}"
    if op == "or":
        return f"{text(f[1], speaker, False)} or {text(f[2], speaker, False)}"
    if op == "implies":
        return f"if {text(f[1], speaker, False)}, then {text(f[2], speaker, False)}"
    if op == "not":
        return f"it is not true that {text(f[1], speaker, False)}"
    k = f[1]
    return f"exactly {k} of us {'is a knight' if k == 1 else 'are knights'}"


def prompt(task: dict[str, Any]) -> str:
    people = task["people"]
    lines = [
        "On an island every inhabitant is either a knight, who always tells the truth, or a knave, who always lies. "
        f'You meet {len(people)} inhabitants: {", ".join(people)}. ("Or" means at least one; "us" means '
        f"{'both' if len(people) == 2 else 'all ' + str(len(people))} of them.)",
        "",
    ]
    for s in task["statements"]:
        t = text(s["says"], s["speaker"])
        lines.append(f'{s["speaker"]} says: "{t[0].upper() + t[1:]}."')
    lines.append("")
    lines.append(
        "Who is a knight and who is a knave? Answer with every inhabitant and their kind, "
        f"in this form: {', '.join(p + ': knight/knave' for p in people[:2])}"
        + (", and so on." if len(people) > 2 else ".")
    )
    return "\n".join(lines)


_KIND = re.compile(r"\b(knights?|knaves?)\b")


def parse(task: dict[str, Any], answer: str) -> dict[str, str] | None:
    """``{name: "knight"|"knave"}`` from ``Alice: knight, Bob is a knave``
    (or bare kinds in the listed order)."""
    s = answer.lower()
    people = task["people"]
    found: dict[str, str] = {}
    for p in people:
        m = re.search(r"\b" + re.escape(p.lower()) + r"\b\W*(?:is\s+)?(?:an?\s+)?(knight|knave)s?\b", s)
        if m is None:
            found = {}
            break
        found[p] = m.group(1)
    if found:
        for p in people:  # a name given two different kinds is no answer
            kinds = re.findall(r"\b" + re.escape(p.lower()) + r"\b\W*(?:is\s+)?(?:an?\s+)?(knight|knave)s?\b", s)
            if len(set(kinds)) > 1:
                return None
        return found
    if not any(re.search(r"\b" + re.escape(p.lower()) + r"\b", s) for p in people):
        kinds = [k.rstrip("s") for k in _KIND.findall(s)]
        if len(kinds) == len(people):
            return dict(zip(people, kinds, strict=False))
    return None


def check(task: dict[str, Any], answer: str) -> bool:
    got = parse(task, answer)
    return got is not None and all(got[p] == k for p, k in task["answer"])


def answer(task: dict[str, Any]) -> str | None:
    return ", ".join(f"{p}: {k}" for p, k in task["answer"])


def _formula_ok(f: Any, people: list[str], depth: int = 0) -> bool:
    if not isinstance(f, list) or not f or depth > 6:
        return False
    op = f[0]
    if op in ATOMS:
        return len(f) == 2 and f[1] in people
    if op in PAIRS:
        return len(f) == 3 and f[1] in people and f[2] in people
    if op in JOINS:
        return len(f) == 3 and _formula_ok(f[1], people, depth + 1) and _formula_ok(f[2], people, depth + 1)
    if op == "not":
        return len(f) == 2 and _formula_ok(f[1], people, depth + 1)
    if op == "count":
        return len(f) == 2 and c.is_int(f[1]) and 0 <= f[1] <= len(people)
    return False


def inline(task: dict[str, Any]) -> dict[str, Any]:
    people = c.need_list(task, "people", NAME, 1, 10)
    if not all(isinstance(p, str) and re.fullmatch(r"[A-Za-z][A-Za-z' -]{0,30}", p) for p in people):
        raise c.bad("knights_knaves task field `people` must hold names (letters)")
    if len({p.lower() for p in people}) != len(people):
        raise c.bad("knights_knaves task field `people` lists a name twice")
    raw = c.need_list(task, "statements", NAME, 1, 50)
    statements = []
    for i, s in enumerate(raw):
        if not isinstance(s, dict) or s.get("speaker") not in people:
            raise c.bad(f"knights_knaves statement {i + 1} needs a `speaker` from `people`")
        if not _formula_ok(s.get("says"), people):
            raise c.bad(
                f'knights_knaves statement {i + 1} field `says` is not a statement: use ["knight"|"knave", name], '
                '["same"|"differ", name, name], ["and"|"or"|"implies", s, s], ["not", s] or ["count", n]'
            )
        statements.append({"speaker": s["speaker"], "says": s["says"]})
    worlds = consistent(people, statements)
    if len(worlds) != 1:
        raise c.bad(
            "knights_knaves statements have no consistent assignment"
            if not worlds
            else "knights_knaves statements allow more than one assignment"
        )
    w = worlds[0]
    return {
        "people": list(people),
        "statements": statements,
        "answer": [[p, "knight" if w[p] else "knave"] for p in people],
    }
