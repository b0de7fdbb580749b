"""logic_grid: a small zebra-style puzzle. Houses in a row, each with one
value of every attribute (name, color, pet, ...); clues relate them; one
question whose answer the clues determine.

Generation adds random clues that are true of a hidden arrangement, keeping
only those that narrow what constraint propagation (arc consistency plus
all-different singles) can deduce, until propagation alone pins the answer.
Propagation is sound, so the answer is unique; every kept clue narrowed the
deduction when it was added; no search runs at generation time. Inline
puzzles are checked by a complete solver (propagation plus branching).
"""

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


def _single(d: int) -> bool:
    return d & (d - 1) == 0


def propagate(dom: list[int], n: int, k: int, binary: list[tuple[int, int, int]]) -> bool:
    """Narrows ``dom`` (a bitmask of possible houses per variable
    ``attr * n + value``) in place to a fixpoint of: each binary constraint
    made arc-consistent, and per attribute the values' houses all different
    (naked and hidden singles). ``False`` on a contradiction. Sound: every
    arrangement satisfying the constraints stays inside ``dom``."""
    full = (1 << n) - 1
    changed = True
    while changed:
        changed = False
        for code, x, y in binary:
            dx, dy = dom[x], dom[y]
            if code == 0:
                nx = ny = dx & dy
            elif code == 1:
                nx = dx & ~dy if _single(dy) else dx
                ny = dy & ~dx if _single(dx) else dy
            elif code == 2:
                ny = dy & (dx << 1)
                nx = dx & (dy >> 1)
            elif code == 3:
                ny = dy & ((dx << 1) | (dx >> 1))
                nx = dx & ((dy << 1) | (dy >> 1))
            else:
                low = dx & -dx
                ny = dy & full & ~((low << 1) - 1)
                nx = dx & ((1 << (dy.bit_length() - 1)) - 1) if dy else 0
            if nx != dx or ny != dy:
                if not nx or not ny:
                    return False
                dom[x], dom[y] = nx, ny
                changed = True
        for a in range(k):
            base = a * n
            fixed = 0
            for v in range(base, base + n):
                d = dom[v]
                if _single(d):
                    if fixed & d:
                        return False
                    fixed |= d
            for v in range(base, base + n):
                d = dom[v]
                if not _single(d) and d & fixed:
                    d &= ~fixed
                    if not d:
                        return False
                    dom[v] = d
                    changed = True
            for h in range(n):
                bit = 1 << h
                if fixed & bit:
                    continue
                only = -1
                for v in range(base, base + n):
                    if dom[v] & bit:
                        if only >= 0:
                            only = -2
                            break
                        only = v
                if only == -1:
                    return False
                if only >= 0:
                    dom[only] = bit
                    changed = True
    return True


def _binary(clues: list[list[Any]]) -> list[tuple[int, int, int]]:
    return [(_CODE[cl[0]], cl[1], cl[2]) for cl in clues if cl[0] not in UNARY]


def _domains(n: int, k: int, clues: list[list[Any]]) -> list[int] | None:
    full = (1 << n) - 1
    dom = [full] * (n * k)
    for cl in clues:
        if cl[0] == "at":
            dom[cl[1]] &= 1 << cl[2]
        elif cl[0] == "not_at":
            dom[cl[1]] &= full & ~(1 << cl[2])
    if any(d == 0 for d in dom):
        return None
    return dom


def solve(n: int, k: int, clues: list[list[Any]]) -> list[int] | None:
    """One arrangement (the house of each variable) satisfying ``clues``, or
    ``None``: propagation, then branching on a smallest undecided domain."""
    dom = _domains(n, k, clues)
    if dom is None:
        return None
    binary = _binary(clues)

    def rec(dom: list[int]) -> list[int] | None:
        if not propagate(dom, n, k, binary):
            return None
        best, size = -1, 99
        for v, d in enumerate(dom):
            if not _single(d):
                s = bin(d).count("1")
                if s < size:
                    best, size = v, s
        if best < 0:
            return [d.bit_length() - 1 for d in dom]
        d = dom[best]
        while d:
            bit = d & -d
            d ^= bit
            trial = list(dom)
            trial[best] = bit
            found = rec(trial)
            if found is not None:
                return found
        return None

    return rec(dom)


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
        x = a * n + rng.below(n)
        return ["same", x, _at(truth, b, truth[x], n)]
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
        return ["not_at", x, rng.choice([h for h in range(n) if h != hx])]
    h = rng.choice(houses)
    b = rng.below(k)
    y = _at(truth, b, h, n)
    if rng.random() < 0.5 and t == "next_to":
        x, y = y, x
    return [t, x, y]


def _at(truth: list[int], attr: int, house: int, n: int) -> int:
    """The variable of attribute ``attr`` in ``house``."""
    for v in range(n):
        if truth[attr * n + v] == house:
            return attr * n + v
    raise ValueError("not a permutation")


def _is_goal(cl: list[Any], question: list[Any]) -> bool:
    """Whether a clue states the question's answer outright."""
    kind, x, y = question
    if kind == "house":
        return bool(cl[0] == "at" and cl[1] == x)
    return cl[0] == "same" and sorted([cl[1], cl[2]]) == sorted([x, y])


def _determined(dom: list[int], question: list[Any]) -> bool:
    kind, x, y = question
    return _single(dom[x]) and (kind == "house" or _single(dom[y]))


def _with(dom: list[int], n: int, k: int, binary: list[tuple[int, int, int]], clue: list[Any]) -> list[int] | None:
    """The domains after adding ``clue`` (``None`` on a contradiction)."""
    trial = list(dom)
    t = clue[0]
    if t == "at":
        trial[clue[1]] &= 1 << clue[2]
        extra = binary
    elif t == "not_at":
        trial[clue[1]] &= ~(1 << clue[2])
        extra = binary
    else:
        extra = [*binary, (_CODE[t], clue[1], clue[2])]
    if not trial[clue[1]] or not propagate(trial, n, k, extra):
        return None
    return trial


def generate(rng: Any, level: int) -> dict[str, Any]:
    n, k, weights = _LEVELS[level]
    attr_names = ["name", *rng.sample(ATTR_ORDER[1:], k - 1)]
    attributes = [{"name": a, "values": rng.sample(ATTRS[a][0], n)} for a in attr_names]
    truth: list[int] = []
    for _ in range(k):
        perm = list(range(n))
        rng.shuffle(perm)
        truth += perm
    # The question: a house, or another attribute of someone.
    x = rng.below(n * k)
    if rng.random() < 0.3:
        question = ["house", x, x]
    else:
        b = rng.choice([a for a in range(k) if a != x // n])
        question = ["attr", x, _at(truth, b, truth[x], n)]
    # Add clues true of the hidden arrangement, keeping only those that
    # narrow what propagation can deduce, until it deduces the answer.
    full = (1 << n) - 1
    dom = [full] * (n * k)
    binary: list[tuple[int, int, int]] = []
    clues: list[list[Any]] = []
    while not _determined(dom, question):
        chosen = None
        for _ in range(40):
            cand = _random_clue(rng, weights, truth, n, k)
            if _is_goal(cand, question):
                continue
            trial = _with(dom, n, k, binary, cand)
            if trial is not None and trial != dom:
                chosen = (cand, trial)
                break
        if chosen is None:
            # Pin a value whose house is still open (never the asked one).
            open_ = [v for v in range(n * k) if not _single(dom[v]) and v not in question[1:]]
            if not open_:
                open_ = [v for v in range(n * k) if not _single(dom[v])]
            v = rng.choice(open_)
            cand = ["at", v, truth[v]]
            trial = _with(dom, n, k, binary, cand)
            assert trial is not None
            chosen = (cand, trial)
        cand, dom = chosen
        clues.append(cand)
        if cand[0] not in UNARY:
            binary.append((_CODE[cand[0]], cand[1], cand[2]))
    rng.shuffle(clues)
    return {
        "houses": n,
        "attributes": attributes,
        "clues": [_to_public(cl, attributes, n) for cl in clues],
        "question": _question_public(question, attributes, n),
        "answer": _answer_text(question, truth, attributes, n),
    }


def unique_answer(n: int, k: int, clues: list[list[Any]], question: list[Any], sol: list[int]) -> bool:
    """Whether every arrangement satisfying ``clues`` answers ``question`` as ``sol`` does."""
    kind, x, y = question
    neg = ["not_at", x, sol[x]] if kind == "house" else ["not_same", x, y]
    return solve(n, k, [*clues, neg]) is None


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
            raise c.bad('logic_grid task field `attributes` must be a list of {"name", "values"}')
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
            h: Any = cl.get("house")
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
        raise c.bad(
            'logic_grid task field `question` must be {"ask": "house" or an attribute, "of": [attribute, value]}'
        )
    x = var(q.get("of"), "question field `of`")
    if q["ask"] != "house" and q["ask"] == q["of"][0]:
        raise c.bad("logic_grid question asks for the attribute it names")
    sol = solve(n, k, clues)
    if sol is None:
        raise c.bad("logic_grid clues contradict each other: no arrangement satisfies them all")
    if q["ask"] == "house":
        question = ["house", x, x]
    else:
        b = names.index(q["ask"])
        question = ["attr", x, _at(sol, b, sol[x], n)]
    if not unique_answer(n, k, clues, question, sol):
        raise c.bad("logic_grid clues do not determine the answer to the question")
    return {
        "houses": n,
        "attributes": clean_attrs,
        "clues": public,
        "question": {"ask": q["ask"], "of": list(q["of"])},
        "answer": _answer_text(question, sol, clean_attrs, n),
    }
