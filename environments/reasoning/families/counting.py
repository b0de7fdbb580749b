"""counting: count a letter in a word or sentence (levels 1-2), words with a
property (level 3), numbers with one or two properties (levels 4-5)."""

from __future__ import annotations

from typing import Any

from . import _common as c

NAME = "counting"

KINDS = ("letter", "words", "numbers")
NUMBER_CONDITIONS = {"even": 0, "odd": 0, "gt": 1, "lt": 1, "div": 1, "prime": 0}
WORD_CONDITIONS = ("contains", "starts_with", "ends_with", "longer_than")


def _prime(n: int) -> bool:
    """Deterministic Miller-Rabin (exact for every n below 3.3e24)."""
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    for p in small:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _num_ok(cond: list[Any], x: int) -> bool:
    name = cond[0]
    if name == "even":
        return x % 2 == 0
    if name == "odd":
        return x % 2 == 1
    if name == "gt":
        return bool(x > cond[1])
    if name == "lt":
        return bool(x < cond[1])
    if name == "div":
        return bool(x % cond[1] == 0)
    return _prime(x)


def _word_ok(cond: list[Any], w: str) -> bool:
    name, arg = cond
    if name == "contains":
        return arg in w
    if name == "starts_with":
        return w.startswith(arg)
    if name == "ends_with":
        return w.endswith(arg)
    return bool(len(w) > arg)


def count(task: dict[str, Any]) -> int:
    if task["kind"] == "letter":
        return int(task["text"].lower().count(task["letter"]))
    if task["kind"] == "words":
        return sum(all(_word_ok(cd, w) for cd in task["conditions"]) for w in task["words"])
    return sum(all(_num_ok(cd, x) for cd in task["conditions"]) for x in task["numbers"])


def _num_condition(rng: Any, hi: int) -> list[Any]:
    name = rng.choice(list(NUMBER_CONDITIONS))
    if name == "gt" or name == "lt":
        return [name, rng.randint(hi // 5, hi - hi // 5)]
    if name == "div":
        return [name, rng.randint(3, 9)]
    return [name]


def _word_condition(rng: Any, words: list[str]) -> list[Any]:
    name = rng.choice(list(WORD_CONDITIONS))
    w = rng.choice(words)
    if name == "contains":
        return [name, rng.choice(w)]
    if name == "starts_with":
        return [name, w[0]]
    if name == "ends_with":
        return [name, w[-1]]
    return [name, rng.randint(3, 6)]


def generate(rng: Any, level: int) -> dict[str, Any]:
    if level <= 2:
        words = [rng.choice(c.WORDS) for _ in range(1 if level == 1 else rng.randint(4, 6))]
        text = " ".join(words)
        if level == 2 and rng.random() < 0.5:
            text = text.capitalize()
        letter = (
            rng.choice(text.lower().replace(" ", ""))
            if rng.random() < 0.85
            else rng.choice("abcdefghijklmnopqrstuvwxyz")
        )
        task: dict[str, Any] = {"kind": "letter", "text": text, "letter": letter}
    elif level == 3:
        words = rng.sample(c.WORDS, 8)
        task = {"kind": "words", "words": words, "conditions": [_word_condition(rng, words)]}
    else:
        size, hi, nconds = (12, 99, 1) if level == 4 else (18, 199, 2)
        numbers = [rng.randint(1, hi) for _ in range(size)]
        conds = [_num_condition(rng, hi)]
        while len(conds) < nconds:
            cd = _num_condition(rng, hi)
            if cd[0] != conds[0][0] and {cd[0], conds[0][0]} != {"even", "odd"}:
                conds.append(cd)
        task = {"kind": "numbers", "numbers": numbers, "conditions": conds}
    task["answer"] = count(task)
    return task


def _num_text(cond: list[Any]) -> str:
    name = cond[0]
    if name in ("even", "odd", "prime"):
        return str(name)
    if name == "gt":
        return f"greater than {cond[1]}"
    if name == "lt":
        return f"less than {cond[1]}"
    return f"divisible by {cond[1]}"


def _word_text(cond: list[Any]) -> str:
    name, arg = cond
    if name == "contains":
        return f'contain the letter "{arg}"'
    if name == "starts_with":
        return f'start with "{arg}"'
    if name == "ends_with":
        return f'end with "{arg}"'
    return f"have more than {arg} letters"


def prompt(task: dict[str, Any]) -> str:
    if task["kind"] == "letter":
        return (
            f'How many times does the letter "{task["letter"]}" appear in the text below '
            f"(counting upper and lower case alike)?\n\n    {task['text']}\n\nAnswer with the number alone."
        )
    if task["kind"] == "words":
        conds = " and ".join(_word_text(cd) for cd in task["conditions"])
        return f"Words: {', '.join(task['words'])}\n\nHow many of these words {conds}? Answer with the number alone."
    conds = " and ".join(_num_text(cd) for cd in task["conditions"])
    nums = ", ".join(str(x) for x in task["numbers"])
    return f"Numbers: {nums}\n\nHow many of these numbers are {conds}? Answer with the number alone."


# The answer is an integer the task holds.
check = c.check_int_answer
answer = c.stored_answer


def inline(task: dict[str, Any]) -> dict[str, Any]:
    kind = c.need(task, "kind", NAME)
    if kind not in KINDS:
        raise c.bad('counting task field `kind` must be "letter", "words" or "numbers"')
    if kind == "letter":
        text = c.need_str(task, "text", NAME, 20000)
        letter = c.need_str(task, "letter", NAME, 1).lower()
        if not ("a" <= letter <= "z"):
            raise c.bad("counting task field `letter` must be one letter a-z")
        out: dict[str, Any] = {"kind": kind, "text": text, "letter": letter}
    else:
        conds = c.need_list(task, "conditions", NAME, 1, 5)
        if kind == "words":
            words = c.need_list(task, "words", NAME, 1, 2000)
            if not all(isinstance(w, str) and w for w in words):
                raise c.bad("counting task field `words` must hold non-empty strings")
            for cd in conds:
                ok = isinstance(cd, list) and len(cd) == 2 and cd[0] in WORD_CONDITIONS
                if ok and cd[0] == "longer_than":
                    ok = c.is_int(cd[1]) and cd[1] >= 0
                elif ok:
                    ok = isinstance(cd[1], str) and len(cd[1]) >= 1
                if not ok:
                    raise c.bad(
                        'counting task field `conditions` must hold ["contains"|"starts_with"|"ends_with", '
                        'letters] or ["longer_than", n]'
                    )
            out = {"kind": kind, "words": [w.lower() for w in words], "conditions": [list(cd) for cd in conds]}
            out["conditions"] = [[cd[0], cd[1].lower() if isinstance(cd[1], str) else cd[1]] for cd in conds]
        else:
            numbers = c.need_list(task, "numbers", NAME, 1, 5000)
            if not all(c.is_int(x) and abs(x) <= 10**12 for x in numbers):
                raise c.bad("counting task field `numbers` must hold integers")
            for cd in conds:
                ok = isinstance(cd, list) and len(cd) >= 1 and cd[0] in NUMBER_CONDITIONS
                ok = ok and len(cd) == 1 + NUMBER_CONDITIONS[cd[0]]
                ok = ok and all(c.is_int(a) for a in cd[1:]) and not (cd[0] == "div" and cd[1] == 0)
                if not ok:
                    raise c.bad(
                        'counting task field `conditions` must hold ["even"], ["odd"], ["prime"], '
                        '["gt", n], ["lt", n] or ["div", n] (n not 0)'
                    )
            out = {"kind": kind, "numbers": list(numbers), "conditions": [list(cd) for cd in conds]}
    out["answer"] = count(out)
    return out
