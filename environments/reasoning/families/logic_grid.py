"""logic_grid: a small zebra-style puzzle. Houses in a row, each with one
value of every attribute (name, color, pet, ...); clues relate them; one
question whose answer the clues determine (checked by a solver when the
puzzle is made, and for inline puzzles).

Generation is counterexample-guided: starting from no clues, the solver looks
for an arrangement that satisfies the clues but answers the question
differently; a new clue that is true of the hidden solution and false of that
arrangement is added, until no such arrangement exists. Each step is one
small backtracking search, so puzzles are made in milliseconds and carry only
clues that were needed at the time."""

from __future__ import annotations

import re
from typing import Any

from . import _common as c

NAME = "logic_grid"

# attribute: (values, subject phrase, predicate phrase, question)
ATTRS: dict[str, tuple[list[str], str, str, str]] = {
    "name": (["Alice", "Bob", "Carol", "Dave", "Eve", "Frank"], "{v}", "is {v}", "What is the name of {s}?"),
    "color": (
        ["red", "green", "blue", "yellow", "white", "black"],
        "the person in the {v} house",
        "lives in the {v} house",
        "What color is the house of {s}?",
    ),
    "pet": (
        ["cat", "dog", "bird", "fish", "horse", "rabbit"],
        "the person who keeps the {v}",
        "keeps the {v}",
        "Which pet does {s} keep?",
    ),
    "drink": (
        ["tea", "coffee", "milk", "juice", "water", "soda"],
        "the person who drinks {v}",
        "drinks {v}",
        "What does {s} drink?",
    ),
    "sport": (
        ["tennis", "chess", "soccer", "golf", "hockey", "rugby"],
        "the person who plays {v}",
        "plays {v}",
        "Which sport does {s} play?",
    ),
}
ATTR_ORDER = ["name", "color", "pet", "drink", "sport"]

# Clue types: unary ``at``/``not_at`` (a value and a house), binary ``same``,
# ``not_same``, ``left_of`` (directly left), ``next_to``, ``before``
# (somewhere left).
UNARY = ("at", "not_at")
BINARY = ("same", "not_same", "left_of", "next_to", "before")
CLUE_TYPES = UNARY + BINARY

# level: (houses, attributes, clue-type weights)
_LEVELS = {
    1: (3, 2, {"at": 4, "not_at": 2, "same": 4, "not_same": 1, "left_of": 0, "next_to": 0, "before": 0}),
    2: (3, 3, {"at": 3, "not_at": 2, "same": 4, "not_same": 1, "left_of": 1, "next_to": 1, "before": 1}),
    3: (4, 3, {"at": 2, "not_at": 2, "same": 4, "not_same": 2, "left_of": 2, "next_to": 2, "before": 2}),
    4: (5, 3, {"at": 1, "not_at": 2, "same": 4, "not_same": 2, "left_of": 3, "next_to": 3, "before": 2}),
    5: (5, 4, {"at": 1, "not_at": 2, "same": 4, "not_same": 2, "left_of": 3, "next_to": 3, "before": 3}),
}

_CODE = {"same": 0, "not_same": 1, "left_of": 2, "next_to": 3, "before": 4}


def _holds(t: str, px: int, py: int) -> bool:
    if t == "same":
        return px == py
    if t == "not_same":
        return px != py
    if t == "left_of":
        return px + 1 == py
    if t == "next_to":
        return px - py in (1, -1)
    return px < py  # before


def solve(n: int, k: int, unary: list[tuple[str, int, int]], binary: list[tuple[str, int, int]]) -> list[int] | None:
    """One arrangement (the house of each variable ``attr * n + value``)
    satisfying the constraints, or ``None``. Variables are assigned in
    index order; each binary constraint is checked as soon as both of its
    variables have houses."""
    nv = n * k
    full = (1 << n) - 1
    dom = [full] * nv
    for t, x, h in unary:
        dom[x] &= (1 << h) if t == "at" else ~(1 << h)
    if any(d == 0 for d in dom):
        return None
    trig: list[list[tuple[int, int, int]]] = [[] for _ in range(nv)]
    for t, x, y in binary:
        trig[max(x, y)].append((_CODE[t], x, y))
    pos = [-1] * nv
    used = [0] * k

    def rec(i: int) -> bool:
        if i == nv:
            return True
        a = i // n
        free = dom[i] & ~used[a]
        checks = trig[i]
        for p in range(n):
            if not (free >> p) & 1:
                continue
            pos[i] = p
            ok = True
            for code, x, y in checks:
                px, py = pos[x], pos[y]
                if code == 0:
                    ok = px == py
                elif code == 1:
                    ok = px != py
                elif code == 2:
                    ok = px + 1 == py
                elif code == 3:
                    ok = px - py == 1 or py - px == 1
                else:
                    ok = px < py
                if not ok:
                    break
            if ok:
                used[a] |= 1 << p
                if rec(i + 1):
                    return True
                used[a] &= ~(1 << p)
        pos[i] = -1
        return False

    return list(pos) if rec(0) else None


def _split(clues: list[list[Any]]) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    unary, binary = [], []
    for cl in clues:
        (unary if cl[0] in UNARY else binary).append((cl[0], cl[1], cl[2]))
    return unary, binary


def _negated_goal(question: list[Any], truth: list[int], n: int) -> tuple[str, int, int]:
    kind, x, y = question
    if kind == "house":
        return ("not_at", x, truth[x])
    return ("not_same", x, y)


def _random_clue(rng: Any, weights: dict[str, int], truth: list[int], n: int, k: int) -> list[Any]:
    types = [t for t in CLUE_TYPES for _ in range(weights[t])]
    t = rng.choice(types)
    nv = n * k
    if t == "at":
        x = rng.below(nv)
        return ["at", x, truth[x]]
    if t == "not_at":
        x = rng.below(nv)
        h = rng.choice([h for h in range(n) if h != truth[x]])
        return ["not_at", x, h]
    if t == "same":
        a, b = rng.sample(range(k), 2)
        v = rng.below(n)
        x = a * n + v
        y = _at(truth, b, truth[x], n)
        return ["same", x, y]
    if t == "not_same":
        a, b = rng.sample(range(k), 2)
        x = a * n + rng.below(n)
        y = rng.choice([b * n + v for v in range(n) if truth[b * n + v] != truth[x]])
        return ["not_same", x, y]
    # positional: pick x, then a y in a house that fits
    x = rng.below(nv)
    hx = truth[x]
    if t == "left_of":
        houses = [hx + 1] if hx + 1 < n else []
    elif t == "next_to":
        houses = [h for h in (hx - 1, hx + 1) if 0 <= h < n]
    else:
        houses = list(range(hx + 1, n))
    if not houses:
        return ["at", x, hx]
    h = rng.choice(houses)
    b = rng.below(k)
    return [t, x, _at(truth, b, h, n)]


def _at(truth: list[int], attr: int, house: int, n: int) -> int:
    """The variable of attribute ``attr`` in ``house``."""
    for v in range(n):
        if truth[attr * n + v] == house:
            return attr * n + v
    raise ValueError("not a permutation")


def _clue_holds(cl: list[Any], pos: list[int]) -> bool:
    t, x, y = cl
    if t == "at":
        return pos[x] == y
    if t == "not_at":
        return pos[x] != y
    return _holds(t, pos[x], pos[y])


def _is_goal(cl: list[Any], question: list[Any], truth: list[int]) -> bool:
    """Whether a clue states the question's answer outright."""
    kind, x, y = question
    if kind == "house":
        return cl[0] == "at" and cl[1] == x
    return cl[0] == "same" and {cl[1], cl[2]} == {x, y}


def generate(rng: Any, level: int) -> dict[str, Any]:
    n, k, weights = _LEVELS[level]
    attr_names = ["name"] + rng.sample(ATTR_ORDER[1:], k - 1)
    attributes = [{"name": a, "values": rng.sample(ATTRS[a][0], n)} for a in attr_names]
    truth: list[int] = []
    for _ in range(k):
        perm = list(range(n))
        rng.shuffle(perm)
        truth += perm
    # The question: a house, or another attribute of someone.
    x = rng.below(n * k)
    if rng.random() < 0.3:
        question = ["house", x, 0]
    else:
        b = rng.choice([a for a in range(k) if a != x // n])
        question = ["attr", x, _at(truth, b, truth[x], n)]
    neg = _negated_goal(question, truth, n)
    clues: list[list[Any]] = []
    while True:
        unary, binary = _split(clues)
        (unary if neg[0] in UNARY else binary).append(neg)
        counter = solve(n, k, unary, binary)
        if counter is None:
            break
        clue = None
        for _ in range(30):
            cand = _random_clue(rng, weights, truth, n, k)
            if not _clue_holds(cand, counter) and not _is_goal(cand, question, truth):
                clue = cand
                break
        if clue is None:
            # Pin a variable the counterexample misplaces (never the asked one).
            wrong = [v for v in range(n * k) if counter[v] != truth[v] and v not in question[1:]]
            v = rng.choice(wrong)
            clue = ["at", v, truth[v]]
        clues.append(clue)
    rng.shuffle(clues)
    return {
        "houses": n,
        "attributes": attributes,
        "clues": [_to_public(cl, attributes, n) for cl in clues],
        "question": _question_public(question, attributes, n),
        "answer": _answer_text(question, truth, attributes, n),
    }


# Public (inline) form: values named ``[attribute, value]``, houses 1-based.


def _ref(var: int, attributes: list[dict[str, Any]], n: int) -> list[str]:
    a = attributes[var // n]
    return [a["name"], a["values"][var % n]]


def _to_public(cl: list[Any], attributes: list[dict[str, Any]], n: int) -> dict[str, Any]:
    t, x, y = cl
    if t in UNARY:
        return {"type": t, "x": _ref(x, attributes, n), "house": y + 1}
    return {"type": t, "x": _ref(x, attributes, n), "y": _ref(y, attributes, n)}


def _question_public(q: list[Any], attributes: list[dict[str, Any]], n: int) -> dict[str, Any]:
    kind, x, y = q
    if kind == "house":
        return {"ask": "house", "of": _ref(x, attributes, n)}
    return {"ask": attributes[y // n]["name"], "of": _ref(x, attributes, n)}


def _answer_text(q: list[Any], truth: list[int], attributes: list[dict[str, Any]], n: int) -> str:
    kind, x, y = q
    if kind == "house":
        return str(truth[x] + 1)
    return str(attributes[y // n]["values"][y % n])


def _subject(ref: list[str]) -> str:
    return ATTRS[ref[0]][1].format(v=ref[1])


def _pred(ref: list[str]) -> str:
    return ATTRS[ref[0]][2].format(v=ref[1])


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def clue_text(cl: dict[str, Any]) -> str:
    t, x = cl["type"], cl["x"]
    sx = _subject(x)
    if t == "at":
        return _cap(f"{sx} lives in house {cl['house']}.")
    if t == "not_at":
        return _cap(f"{sx} does not live in house {cl['house']}.")
    y = cl["y"]
    sy = _subject(y)
    if t == "same":
        if x[0] == "name" or y[0] != "name":
            return _cap(f"{sx} {_pred(y)}.")
        return _cap(f"{sy} {_pred(x)}.")
    if t == "not_same":
        return _cap(f"{sx} and {sy} are different people.")
    if t == "left_of":
        return _cap(f"{sx} lives directly to the left of {sy}.")
    if t == "next_to":
        return _cap(f"{sx} lives next to {sy}.")
    return _cap(f"{sx} lives somewhere to the left of {sy}.")


def prompt(task: dict[str, Any]) -> str:
    n = task["houses"]
    attrs = task["attributes"]
    lines = [
        f"There are {n} houses in a row, numbered 1 to {n} from left to right. "
        f"In each house lives one person. Each of these attributes takes each of its values exactly once:"
    ]
    for a in attrs:
        lines.append(f"- {a['name']}: {', '.join(a['values'])}")
    lines.append("")
    lines.append("Clues:")
    for i, cl in enumerate(task["clues"], 1):
        lines.append(f"{i}. {clue_text(cl)}")
    lines.append("")
    q = task["question"]
    if q["ask"] == "house":
        lines.append(f"Question: In which house does {_subject(q['of'])} live?")
        lines.append("Answer with the house number alone.")
    else:
        lines.append("Question: " + ATTRS[q["ask"]][3].format(s=_subject(q["of"])))
        lines.append(f"Answer with the {q['ask']} alone.")
    return "\n".join(lines)


def _norm(s: str) -> str:
    words = re.findall(r"[a-z0-9]+", s.lower())
    while words and words[0] in ("the", "a", "an"):
        words = words[1:]
    if len(words) > 1 and words[-1] == "house":
        words = words[:-1]
    return " ".join(words)


def check(task: dict[str, Any], answer: str) -> bool:
    if task["question"]["ask"] == "house":
        t = answer.lower().replace("house", "").replace("#", "").replace("no.", "").strip()
        v = c.parse_int(t)
        return v is not None and str(v) == task["answer"]
    got = _norm(answer)
    return bool(got) and got == _norm(task["answer"])


def answer(task: dict[str, Any]) -> str | None:
    return str(task["answer"])


# Inline tasks ------------------------------------------------------------


def inline(task: dict[str, Any]) -> dict[str, Any]:
    attributes = c.need_list(task, "attributes", NAME, 1, 5)
    n = None
    index: dict[tuple[str, str], int] = {}
    clean_attrs = []
    for ai, a in enumerate(attributes):
        if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not isinstance(a.get("values"), list):
            raise c.bad("logic_grid task field `attributes` must be a list of {\"name\", \"values\"}")
        if a["name"] not in ATTRS:
            raise c.bad(f"logic_grid attribute `{a['name']}` is not one of: {', '.join(ATTR_ORDER)}")
        vals = a["values"]
        if not all(isinstance(v, str) and v for v in vals) or len(set(vals)) != len(vals):
            raise c.bad(f"logic_grid attribute `{a['name']}` needs distinct non-empty string values")
        if n is None:
            n = len(vals)
        if len(vals) != n or not 2 <= n <= 6:
            raise c.bad("logic_grid task: every attribute needs the same number (2 to 6) of values, one per house")
        for vi, v in enumerate(vals):
            index[(a["name"], v)] = ai * n + vi
        clean_attrs.append({"name": a["name"], "values": list(vals)})
    names = [a["name"] for a in clean_attrs]
    if len(set(names)) != len(names):
        raise c.bad("logic_grid task field `attributes` names an attribute twice")
    assert n is not None
    houses = task.get("houses", n)
    if houses != n:
        raise c.bad("logic_grid task field `houses` must equal the number of values of each attribute")
    k = len(clean_attrs)

    def var(ref: Any, where: str) -> int:
        if not (isinstance(ref, list) and len(ref) == 2 and tuple(ref) in index):
            raise c.bad(f"logic_grid {where} must be [attribute, value] naming a listed value")
        return index[tuple(ref)]

    raw = c.need_list(task, "clues", NAME, 0, 200)
    clues, public = [], []
    for i, cl in enumerate(raw):
        where = f"clue {i + 1}"
        if not isinstance(cl, dict) or cl.get("type") not in CLUE_TYPES:
            raise c.bad(f"logic_grid {where} needs `type`, one of: {', '.join(CLUE_TYPES)}")
        x = var(cl.get("x"), f"{where} field `x`")
        if cl["type"] in UNARY:
            h = cl.get("house")
            if not c.is_int(h) or not 1 <= h <= n:
                raise c.bad(f"logic_grid {where} field `house` must be an integer from 1 to {n}")
            clues.append([cl["type"], x, h - 1])
            public.append({"type": cl["type"], "x": list(cl["x"]), "house": h})
        else:
            y = var(cl.get("y"), f"{where} field `y`")
            if x == y:
                raise c.bad(f"logic_grid {where} relates a value to itself")
            clues.append([cl["type"], x, y])
            public.append({"type": cl["type"], "x": list(cl["x"]), "y": list(cl["y"])})
    q = c.need(task, "question", NAME)
    if not isinstance(q, dict) or not (q.get("ask") == "house" or q.get("ask") in names):
        raise c.bad("logic_grid task field `question` must be {\"ask\": \"house\" or an attribute, \"of\": [attribute, value]}")
    x = var(q.get("of"), "question field `of`")
    if q["ask"] != "house" and q["ask"] == q["of"][0]:
        raise c.bad("logic_grid question asks for the attribute it names")
    unary, binary = _split(clues)
    sol = solve(n, k, unary, binary)
    if sol is None:
        raise c.bad("logic_grid clues contradict each other: no arrangement satisfies them all")
    if q["ask"] == "house":
        question = ["house", x, 0]
    else:
        b = names.index(q["ask"])
        question = ["attr", x, _at(sol, b, sol[x], n)]
    neg = _negated_goal(question, sol, n)
    (unary if neg[0] in UNARY else binary).append(neg)
    if solve(n, k, unary, binary) is not None:
        raise c.bad("logic_grid clues do not determine the answer to the question")
    return {
        "houses": n,
        "attributes": clean_attrs,
        "clues": public,
        "question": {"ask": q["ask"], "of": list(q["of"])},
        "answer": _answer_text(question, sol, clean_attrs, n),
    }
