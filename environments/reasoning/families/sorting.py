"""sorting: sort numbers or words by a stated key (value, alphabetical
order, length, digit sum, last letter), ties broken as the prompt says."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from . import _common as c

NAME = "sorting"

# key: (items are numbers, description)
KEYS: dict[str, tuple[bool, str]] = {
    "value": (True, "by value"),
    "alphabetical": (False, "alphabetically"),
    "length": (False, "by length (number of letters), ties in alphabetical order"),
    "digit_sum": (True, "by the sum of the digits of each number (ignoring any sign or decimal point), ties by value"),
    "last_letter": (False, "by their last letter, ties in alphabetical order"),
}
ORDERS = ("ascending", "descending")
_NUM = re.compile(r"-?\d{1,12}(\.\d{1,6})?")


def _num(s: str) -> Fraction:
    return Fraction(s)


def _key(key: str, item: str) -> tuple[Any, ...]:
    if key == "value":
        return (_num(item),)
    if key == "alphabetical":
        return (item,)
    if key == "length":
        return (len(item), item)
    if key == "digit_sum":
        return (sum(int(ch) for ch in item if ch.isdigit()), _num(item))
    return (item[-1], item)


def sort_items(key: str, order: str, items: list[str]) -> list[str]:
    out = sorted(items, key=lambda it: _key(key, it))
    return out[::-1] if order == "descending" else out


def _decimal(rng: Any) -> str:
    cents = rng.randint(-9999, 9999)
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def generate(rng: Any, level: int) -> dict[str, Any]:
    order = "ascending"
    if level == 1:
        key, items = "value", [str(x) for x in rng.sample(range(1, 100), 5)]
    elif level == 2:
        key, items = "value", [str(x) for x in rng.sample(range(-99, 100), 7)]
        order = rng.choice(ORDERS)
    elif level == 3:
        key, items = "alphabetical", rng.sample(c.WORDS, 7)
        order = rng.choice(ORDERS)
    elif level == 4:
        if rng.random() < 0.5:
            key, items = "value", list(dict.fromkeys(_decimal(rng) for _ in range(8)))
        else:
            key, items = "length", rng.sample(c.WORDS, 8)
        order = rng.choice(ORDERS)
    else:
        if rng.random() < 0.5:
            key, items = "digit_sum", [str(x) for x in rng.sample(range(10, 1000), 10)]
        else:
            key, items = "last_letter", rng.sample(c.WORDS, 10)
        order = rng.choice(ORDERS)
    return {"items": items, "key": key, "order": order, "answer": sort_items(key, order, items)}


def prompt(task: dict[str, Any]) -> str:
    numeric, how = KEYS[task["key"]]
    kind = "numbers" if numeric else "words"
    order = task["order"]
    if order == "descending":
        order += " order (the exact reverse of ascending order" + (", ties included)" if "ties" in how else ")")
    else:
        order += " order"
    return (
        f"Sort these {kind} {how}, in {order}:\n\n    {', '.join(task['items'])}\n\n"
        f"Answer with the sorted {kind}, separated by commas."
    )


def _items(answer: str) -> list[str]:
    s = answer.strip().strip("[]()")
    parts = s.split(",") if "," in s else s.split()
    return [p.strip().strip("'\"") for p in parts if p.strip()]


def check(task: dict[str, Any], answer: str) -> bool:
    got = _items(answer)
    want = task["answer"]
    if len(got) != len(want):
        return False
    if KEYS[task["key"]][0]:
        for g, w in zip(got, want, strict=False):
            if not _NUM.fullmatch(g) or _num(g) != _num(w):
                return False
        return True
    return bool([g.lower() for g in got] == want)


def answer(task: dict[str, Any]) -> str | None:
    return ", ".join(task["answer"])


def inline(task: dict[str, Any]) -> dict[str, Any]:
    key = c.need(task, "key", NAME)
    if key not in KEYS:
        raise c.bad(f"sorting task field `key` must be one of: {', '.join(KEYS)}")
    order = task.get("order", "ascending")
    if order not in ORDERS:
        raise c.bad('sorting task field `order` must be "ascending" or "descending"')
    raw = c.need_list(task, "items", NAME, 1, 500)
    items = []
    if KEYS[key][0]:
        for x in raw:
            s = str(x) if c.is_int(x) else x
            if not isinstance(s, str) or not _NUM.fullmatch(s):
                raise c.bad(
                    'sorting task field `items` must hold integers or decimal strings like "-3.25" for this key'
                )
            items.append(s)
    else:
        for x in raw:
            if not (isinstance(x, str) and x.isalpha() and x.isascii()):
                raise c.bad("sorting task field `items` must hold words of letters for this key")
            items.append(x.lower())
    return {"items": items, "key": key, "order": order, "answer": sort_items(key, order, items)}
