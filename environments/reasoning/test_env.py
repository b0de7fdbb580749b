"""Tests for envhub/reasoning, run natively:

    PYTHONPATH=sdk/python:environments/reasoning python3 -m pytest environments/reasoning/test_env.py

Plain functions and asserts (pytest-compatible; ``python3 test_env.py``
runs them without pytest, and ``python3 test_env.py --bench`` prints the
median time of a reset and a step per family and level)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import env
from envhub import EnvError, Rng, canonical
from envhub._guest import handle
from families import FAMILIES, FAMILY_NAMES, arithmetic_puzzle, mini_sudoku
from families._common import extract

LEVELS = (1, 2, 3, 4, 5)
INDICES = range(50)
ENV = env.Reasoning()


def make(split: str, index: int, level: int) -> dict[str, Any]:
    """A task as reset would make it, through a JSON round trip (as the
    state travels), without the SDK's source key."""
    ENV.config = {"level": level}
    task = ENV.task(split, index, Rng.for_task(split, index))
    ENV.config = {}
    return json.loads(json.dumps(task, sort_keys=True))


def score(task: dict[str, Any], completion: str) -> tuple[dict[str, float], dict[str, Any]]:
    result = ENV.score(task, completion)
    assert isinstance(result, tuple)
    return result


def boxed(answer: str) -> str:
    return f"Some reasoning.\n\n\\boxed{{{answer}}}"


# Plausible wrong answers, per family ---------------------------------------


def wrong_answers(task: dict[str, Any]) -> list[str]:
    fam = task["family"]
    ref = FAMILIES[fam].answer(task)
    out = ["", "42x", "none"]
    if fam == "countdown":
        total = sum(task["numbers"])
        if total != task["target"]:
            out.append(" + ".join(str(n) for n in task["numbers"]))
        out.append(f"({task['solution']}) + {task['numbers'][0]}")  # uses a number once too often
        if task["target"] not in task["numbers"]:
            out.append(f"{task['target']}")  # the target alone
        out.append(f"{task['target'] + 1000} - 1000")  # numbers that are not given
    elif fam == "arithmetic_puzzle":
        alphabet = "0123456789" if task["kind"] == "digits" else "".join(task["ops"])
        sol = list(task["solution"])
        for a in alphabet:
            trial = [a, *sol[1:]]
            eq = arithmetic_puzzle.fill(task, trial)
            if eq is not None and not arithmetic_puzzle.holds(eq):
                out.append(", ".join(trial))
                break
        out.append(", ".join(sol[:-1]))  # one symbol short
    elif fam == "logic_grid":
        q = task["question"]
        if q["ask"] == "house":
            out.append(str(int(task["answer"]) % task["houses"] + 1))
        else:
            values = next(a["values"] for a in task["attributes"] if a["name"] == q["ask"])
            out.append(next(v for v in values if v != task["answer"]))
    elif fam == "mini_sudoku":
        rows = [list(r) for r in task["solution"]]
        r0 = rows[0]
        r0[0], r0[1] = r0[1], r0[0]  # rows stay valid, columns break
        out.append("/".join("".join(r) for r in rows))
        out.append("/".join(task["solution"][:-1]))
    elif fam == "caesar":
        out.append(task["ciphertext"])
        words = task["plaintext"].split()
        out.append(" ".join([*words[:-1], words[-1][::-1] + "x"]))
    elif fam == "sorting":
        items = list(task["answer"])
        items[0], items[-1] = items[-1], items[0]
        out.append(", ".join(items))
        out.append(", ".join(task["items"][:-1]))
    elif fam == "base_conversion":
        from_value = int(task["answer"], task["to_base"])
        from families.base_conversion import to_base

        out.append(to_base(from_value + 1, task["to_base"]))
        out.append(task["value"] if task["value"] != task["answer"] else "zz")
    elif fam == "knights_knaves":
        flipped = [[p, "knave" if k == "knight" else "knight"] for p, k in task["answer"]]
        out.append(", ".join(f"{p}: {k}" for p, k in [flipped[0], *task["answer"][1:]]))
        out.append(", ".join(f"{p}: {k}" for p, k in task["answer"][:-1]))
    else:  # integer answers: graph_path, graph_components, counting, sequence
        out.append(str(int(task["answer"]) + 1))
        out.append(str(int(task["answer"]) - 1))
    assert ref not in out
    return out


# Generated tasks -------------------------------------------------------------


def test_reference_earns_full_reward_and_wrong_answers_none() -> None:
    for fam in FAMILY_NAMES:
        for level in LEVELS:
            for i in INDICES:
                task = make(fam, i, level)
                assert task["family"] == fam and task["level"] == level
                ref = ENV.reference(task)
                assert ref is not None, (fam, level, i)
                comps, metrics = score(task, ref)
                assert comps == {"correct": 1.0, "format": 1.0}, (fam, level, i, ref, metrics)
                assert metrics["family"] == fam and metrics["level"] == level
                for bad in wrong_answers(task):
                    comps, metrics = score(task, boxed(bad))
                    assert comps["correct"] == 0.0, (fam, level, i, bad)
                    assert comps["format"] == 1.0
                # the "Answer:" line earns `correct` but not `format`
                ans = FAMILIES[fam].answer(task)
                comps, metrics = score(task, f"thinking...\nAnswer: {ans}\n")
                assert comps == {"correct": 1.0, "format": 0.0}, (fam, level, i, metrics)
                # no answer at all
                comps, metrics = score(task, "I do not know.")
                assert comps == {"correct": 0.0, "format": 0.0} and metrics["extracted"] is None


def test_prompts_end_with_the_answer_format() -> None:
    for fam in FAMILY_NAMES:
        for level in LEVELS:
            task = make(fam, 7, level)
            p = ENV.prompt(task)
            assert isinstance(p, str) and p.endswith("Give your final answer as \\boxed{...}."), p
            assert "Answer with" in p
            # the prompt never shows the stored solution verbatim (where it is long enough to matter)
            ans = FAMILIES[fam].answer(task)
            if ans is not None and len(ans) >= 6 and fam not in ("caesar",):
                assert ans not in p, (fam, level)


def test_deterministic_and_varied() -> None:
    for fam in [*FAMILY_NAMES, "train", "test"]:
        for level in LEVELS:
            seen = set()
            for i in range(30):
                a, b = make(fam, i, level), make(fam, i, level)
                assert canonical(a) == canonical(b), (fam, level, i)
                seen.add(canonical(a))
            assert len(seen) >= 20, (fam, level, len(seen))
    # levels change the task
    assert canonical(make("logic_grid", 3, 1)) != canonical(make("logic_grid", 3, 5))


def test_levels_grow() -> None:
    def size(fam: str, level: int, f: Any) -> float:
        return sum(f(make(fam, i, level)) for i in range(20)) / 20

    assert size("countdown", 1, lambda t: len(t["numbers"])) < size("countdown", 5, lambda t: len(t["numbers"]))
    assert size("logic_grid", 1, lambda t: len(t["clues"])) < size("logic_grid", 3, lambda t: len(t["clues"]))
    assert size("logic_grid", 3, lambda t: len(t["clues"])) < size("logic_grid", 5, lambda t: len(t["clues"]))
    assert size("mini_sudoku", 1, lambda t: t["size"]) < size("mini_sudoku", 5, lambda t: t["size"])
    assert size("graph_path", 1, lambda t: len(t["nodes"])) < size("graph_path", 5, lambda t: len(t["nodes"]))
    assert size("knights_knaves", 1, lambda t: len(t["people"])) < size("knights_knaves", 5, lambda t: len(t["people"]))
    assert size("sorting", 1, lambda t: len(t["items"])) < size("sorting", 5, lambda t: len(t["items"]))


def test_train_and_test_mix_every_family() -> None:
    for split in ("train", "test"):
        seen = {make(split, i, 2)["family"] for i in range(300)}
        assert seen == set(FAMILY_NAMES), (split, set(FAMILY_NAMES) - seen)
    assert canonical(make("train", 5, 2)) != canonical(make("test", 5, 2))


def test_generated_tasks_are_valid_inline_tasks() -> None:
    # Every generated task, sent back inline, is accepted and gets the same answer.
    for fam in FAMILY_NAMES:
        for level in LEVELS:
            for i in range(20):
                task = make(fam, i, level)
                again = ENV.inline_task(task)
                if "answer" in task:
                    assert again["answer"] == task["answer"], (fam, level, i)
                comps, _ = score(again, ENV.reference(task) or "")
                assert comps["correct"] == 1.0, (fam, level, i)


def test_logic_grid_answers_are_unique() -> None:
    # The complete solver finds no arrangement with another answer.
    for level in LEVELS:
        for i in range(40):
            task = make("logic_grid", i, level)
            ENV.inline_task(task)  # raises unless the clues determine the answer


def test_sudoku_grids_are_valid() -> None:
    for level in LEVELS:
        for i in range(40):
            t = make("mini_sudoku", i, level)
            flat = [int(ch) for row in t["solution"] for ch in row]
            assert mini_sudoku.valid(t, flat)
            blanks = sum(row.count(".") for row in t["grid"])
            assert blanks == mini_sudoku._LEVELS[level][3]


# Verifiers: more than one right answer, and tricks ------------------------------


def inline(**fields: Any) -> dict[str, Any]:
    return ENV.inline_task(fields)


def correct(task: dict[str, Any], completion: str) -> bool:
    return score(task, completion)[0]["correct"] == 1.0


def test_countdown_verifier() -> None:
    t = inline(family="countdown", numbers=[1, 2, 3, 4], target=10)
    for ok in [
        "1 + 2 + 3 + 4",
        "4 * 3 - 2",
        "(1 + 4) * 2",
        "2 * (4 + 1) = 10",
        "10 = 4*3-2",
        "4 \\times 3 - 2",
        "(4 \u00d7 3) \u2212 2",
        "4 x 3 - 2",
    ]:
        assert correct(t, boxed(ok)), ok
    for bad in [
        "4 * 3 - 2 - 0",
        "2 * 5",
        "4 * 4 - 3 - 2 - 1",
        "1 + 2 + 3 + 4 = 11",
        "12 - 2",
        "-2 + 12",
        "__import__('os')",
        "4 ** 2 - 6",
        "1 / 0 + 10",
        "(" * 60 + "10" + ")" * 60,
        "34 / 3 - 1 / 3 - 1",
    ]:
        assert not correct(t, boxed(bad)), bad
    # rationals in between are fine; the value must be exact
    t = inline(family="countdown", numbers=[1, 5, 5, 5], target=24)
    assert "solution" in t and correct(t, ENV.reference(t) or "")
    assert correct(t, boxed("5 * (5 - 1 / 5)"))
    assert not correct(t, boxed("5 * 5 * 1")) and not correct(t, boxed("5 * 5 - 1 / 1"))


def test_arithmetic_puzzle_verifier() -> None:
    t = inline(family="arithmetic_puzzle", kind="digits", puzzle="?? + ?? = 30", solution=["1", "5", "1", "5"])
    for ok in ["1, 0, 2, 0", "1,1,1,9", "15 + 15 = 30", "2 0 1 0", "2010"]:
        assert correct(t, boxed(ok)), ok
    for bad in ["21 + 09 = 30", "1, 3, 1, 8", "12 + 18 = 31", "1, 2, 1", "1, 2, 1, 8, 0", "a, b, c, d", "+, +, +, +"]:
        assert not correct(t, boxed(bad)), bad
    t = inline(family="arithmetic_puzzle", kind="operators", puzzle="2 ? 2 = 4", ops=["+", "*"])
    assert correct(t, boxed("+")) and correct(t, boxed("*")) and correct(t, boxed("2 \\times 2 = 4"))
    assert not correct(t, boxed("-"))
    t = inline(family="arithmetic_puzzle", kind="operators", puzzle="8 ? 4 ? 2 = 6", ops=["+", "-", "*", "/"])
    assert correct(t, boxed("-, /")) and correct(t, boxed("-, +")) and not correct(t, boxed("+, -"))


def test_sudoku_verifier_accepts_any_valid_completion() -> None:
    # Two solutions: the 1s and 2s of the top-left block can swap.
    t = inline(family="mini_sudoku", grid=["..34", "..12", "2143", "4321"])
    assert correct(t, boxed("1234/3412/2143/4321"))
    assert not correct(t, boxed("2134/3412/2143/4321"))  # breaks a column and a box
    t = inline(family="mini_sudoku", grid=["1234", "3412", "....", "...."])
    sols = ["1234/3412/2143/4321", "1234/3412/4321/2143", "1234/3412/2341/4123", "1234/3412/4123/2341"]
    valid = [s for s in sols if mini_sudoku.valid(t, [int(ch) for ch in s if ch.isdigit()])]
    assert len(valid) >= 2
    for s in valid:
        assert correct(t, boxed(s)), s
        assert correct(t, boxed(s.replace("/", "\n"))), s
        assert correct(t, "Answer: " + " / ".join(" ".join(r) for r in s.split("/")))
    assert not correct(t, boxed("4321/3412/2143/1234"))  # changes givens
    assert correct(t, boxed("Row 1: 1234 / Row 2: 3412 / Row 3: 2143 / Row 4: 4321"))


def test_logic_grid_inline_and_answers() -> None:
    base: dict[str, Any] = {
        "family": "logic_grid",
        "attributes": [{"name": "name", "values": ["Ann", "Ben"]}, {"name": "pet", "values": ["cat", "dog"]}],
        "clues": [
            {"type": "at", "x": ["name", "Ann"], "house": 1},
            {"type": "same", "x": ["name", "Ben"], "y": ["pet", "dog"]},
        ],
        "question": {"ask": "pet", "of": ["name", "Ann"]},
    }
    t = ENV.inline_task(base)
    assert t["answer"] == "cat"
    for ok in ["cat", "Cat", "the cat", "\\text{cat}", "**cat**"]:
        assert correct(t, boxed(ok)), ok
    assert not correct(t, boxed("dog")) and not correct(t, boxed("cat or dog"))
    t = ENV.inline_task({**base, "question": {"ask": "house", "of": ["pet", "dog"]}})
    assert t["answer"] == "2" and correct(t, boxed("2")) and correct(t, boxed("house 2")) and not correct(t, boxed("1"))
    under = {**base, "clues": base["clues"][:1]}
    try:
        ENV.inline_task(under)
    except EnvError as e:
        assert e.kind == "invalid_task" and "do not determine" in e.message
    else:
        raise AssertionError("an underdetermined puzzle was accepted")


def test_knights_knaves_parsing() -> None:
    t = inline(
        family="knights_knaves",
        people=["Ann", "Ben"],
        statements=[{"speaker": "Ann", "says": ["knave", "Ben"]}, {"speaker": "Ben", "says": ["same", "Ann", "Ben"]}],
    )
    assert t["answer"] == [["Ann", "knight"], ["Ben", "knave"]]
    for ok in [
        "Ann: knight, Ben: knave",
        "Ann is a knight and Ben is a knave",
        "Ben: knave; Ann: knight",
        "knight, knave",
        "ANN - Knight, BEN - Knave",
    ]:
        assert correct(t, boxed(ok)), ok
    for bad in [
        "Ann: knave, Ben: knight",
        "Ann: knight",
        "Ann: knight, Ben: knave, Ann: knave",
        "knight",
        "Ann and Ben are knights",
    ]:
        assert not correct(t, boxed(bad)), bad


def test_other_verifiers() -> None:
    t = inline(family="base_conversion", value="ff", from_base=16, to_base=2)
    assert t["answer"] == "11111111"
    for ok in ["11111111", "0b11111111", "1111 1111", "(11111111)_2", "011111111"]:
        assert correct(t, boxed(ok)), ok
    assert not correct(t, boxed("255"))
    t = inline(family="sorting", items=[3, "-1.5", 2], key="value", order="descending")
    assert (
        correct(t, boxed("3, 2, -1.5")) and correct(t, boxed("[3, 2.0, -1.50]")) and not correct(t, boxed("-1.5, 2, 3"))
    )
    t = inline(family="sorting", items=["bb", "a", "ccc", "dd"], key="length")
    assert t["answer"] == ["a", "bb", "dd", "ccc"] and correct(t, boxed("a, bb, dd, ccc"))
    t = inline(family="caesar", cipher="caesar", key=3, plaintext="Hello World")
    assert t["ciphertext"] == "khoor zruog" and correct(t, boxed("Hello world")) and not correct(t, boxed("hello"))
    t = inline(family="caesar", cipher="vigenere", key="key", plaintext="attack at dawn")
    assert t["ciphertext"] == "kxrkgi kx bkal" and correct(t, boxed("attack at dawn"))
    t = inline(family="counting", kind="letter", text="Strawberry", letter="R")
    assert t["answer"] == 3 and correct(t, boxed("3")) and correct(t, "Answer: **3**") and not correct(t, boxed("2"))
    t = inline(family="counting", kind="numbers", numbers=[2, 3, 4, 9, 11], conditions=[["prime"], ["gt", 2]])
    assert t["answer"] == 2
    t = inline(family="counting", kind="words", words=["apple", "Avocado", "pear"], conditions=[["starts_with", "a"]])
    assert t["answer"] == 2
    t = inline(family="graph_path", edges=[["A", "B", 1], ["B", "C", 2], ["A", "C", 5]], source="A", target="C")
    assert t["answer"] == 3 and correct(t, boxed("3"))
    t = inline(family="graph_components", nodes=[1, 2, 3, 4], edges=[[1, 2]])
    assert t["answer"] == 3
    t = inline(family="graph_components", nodes=["a", "b", "c"], edges=[["a", "b"]], question="largest")
    assert t["answer"] == 2
    # a matching answer may come with the puzzle, in the task's form or as an answer text
    assert inline(family="sorting", key="value", items=[2, 1], answer="1, 2")["answer"] == ["1", "2"]
    assert inline(family="graph_components", nodes=[1, 2], edges=[], answer=2)["answer"] == 2
    t = inline(family="mini_sudoku", grid=["1234", "3412", "....", "...."], solution=["1234", "3412", "4321", "2143"])
    assert t["solution"][2] == "4321" and correct(t, boxed("1234/3412/2143/4321"))
    t = inline(family="sequence", terms=[1, 1, 2, 3, 5], answer=8)
    assert correct(t, boxed("8")) and correct(t, boxed("8.0")) and not correct(t, boxed("13"))


def test_extraction() -> None:
    assert extract("\\boxed{1} then \\boxed{2}") == ("2", True)
    assert extract("\\boxed{\\frac{1}{2}}") == ("\\frac{1}{2}", True)
    assert extract("\\boxed{1} and a broken \\boxed{2") == ("1", True)
    assert extract("<think>\\boxed{9}</think> Answer: 3") == ("3", False)
    assert extract("Answer: 5\nmore text\nFinal answer: 7.") == ("7", False)
    assert extract("Answer:\n\n  12\n") == ("12", False)
    assert extract("$\\boxed{\\text{cat}}$") == ("cat", True)
    assert extract("nothing here") == (None, False)
    assert extract("\\boxed {4}") == ("4", True)


def test_inline_reference_and_ids() -> None:
    t = {"family": "sequence", "terms": [2, 4, 6], "answer": 8}
    r = handle(ENV, {"v": 1, "op": "validate", "task": t})
    assert r["ok"]["actions"][0]["content"].endswith("\\boxed{8}")
    a = handle(ENV, {"v": 1, "op": "reset", "task": t})["ok"]["task_id"]
    b = handle(ENV, {"v": 1, "op": "reset", "task": dict(reversed(list(t.items())))})["ok"]["task_id"]
    assert a == b and a.startswith("inline/")


# Refusals ----------------------------------------------------------------------

MALFORMED: list[tuple[Any, str]] = [
    ([1, 2], "JSON object"),
    ({}, "`family`"),
    ({"family": "chess"}, "`family`"),
    ({"family": "countdown", "numbers": [1, 2], "target": 3, "level": 9}, "`level`"),
    ({"family": "countdown", "target": 3}, "`numbers`"),
    ({"family": "countdown", "numbers": [1, "2"], "target": 3}, "`numbers`"),
    ({"family": "countdown", "numbers": [1, 2]}, "`target`"),
    ({"family": "countdown", "numbers": [1, 2], "target": 100}, "no solution"),
    ({"family": "countdown", "numbers": [1, 2], "target": 3, "solution": "1 * 2"}, "`solution`"),
    ({"family": "arithmetic_puzzle", "kind": "digits"}, "`puzzle`"),
    ({"family": "arithmetic_puzzle", "puzzle": "1? = 12"}, "`kind`"),
    ({"family": "arithmetic_puzzle", "kind": "letters", "puzzle": "1? = 12"}, "`kind`"),
    ({"family": "arithmetic_puzzle", "kind": "digits", "puzzle": "12 = 12"}, "`puzzle`"),
    ({"family": "arithmetic_puzzle", "kind": "digits", "puzzle": "1? = 1x"}, "`puzzle`"),
    ({"family": "arithmetic_puzzle", "kind": "operators", "puzzle": "1 ? 1 = 5", "ops": ["+"]}, "`solution`"),
    ({"family": "arithmetic_puzzle", "kind": "operators", "puzzle": "1 ? 1 = 2", "ops": ["^"]}, "`ops`"),
    ({"family": "arithmetic_puzzle", "kind": "digits", "puzzle": "1? = 12", "solution": ["3"]}, "`solution`"),
    ({"family": "logic_grid", "clues": [], "question": {}}, "`attributes`"),
    (
        {"family": "logic_grid", "attributes": [{"name": "hat", "values": ["a", "b"]}], "clues": [], "question": {}},
        "attribute",
    ),
    (
        {
            "family": "logic_grid",
            "attributes": [{"name": "name", "values": ["A", "B"]}, {"name": "pet", "values": ["cat"]}],
            "clues": [],
            "question": {},
        },
        "same number",
    ),
    (
        {
            "family": "logic_grid",
            "attributes": [{"name": "name", "values": ["A", "B"]}],
            "question": {"ask": "house", "of": ["name", "A"]},
        },
        "`clues`",
    ),
    (
        {
            "family": "logic_grid",
            "attributes": [{"name": "name", "values": ["A", "B"]}],
            "clues": [{"type": "near", "x": ["name", "A"]}],
            "question": {"ask": "house", "of": ["name", "A"]},
        },
        "`type`",
    ),
    (
        {
            "family": "logic_grid",
            "attributes": [{"name": "name", "values": ["A", "B"]}],
            "clues": [{"type": "at", "x": ["name", "C"], "house": 1}],
            "question": {"ask": "house", "of": ["name", "A"]},
        },
        "`x`",
    ),
    (
        {
            "family": "logic_grid",
            "attributes": [{"name": "name", "values": ["A", "B"]}],
            "clues": [{"type": "at", "x": ["name", "A"], "house": 3}],
            "question": {"ask": "house", "of": ["name", "A"]},
        },
        "`house`",
    ),
    (
        {
            "family": "logic_grid",
            "attributes": [{"name": "name", "values": ["A", "B"]}],
            "clues": [{"type": "at", "x": ["name", "A"], "house": 1}],
            "question": {"ask": "color", "of": ["name", "A"]},
        },
        "`question`",
    ),
    (
        {
            "family": "logic_grid",
            "attributes": [{"name": "name", "values": ["A", "B"]}],
            "clues": [{"type": "at", "x": ["name", "A"], "house": 1}, {"type": "at", "x": ["name", "B"], "house": 1}],
            "question": {"ask": "house", "of": ["name", "A"]},
        },
        "contradict",
    ),
    ({"family": "mini_sudoku"}, "`grid`"),
    ({"family": "mini_sudoku", "grid": ["12", "21"]}, "`grid`"),
    ({"family": "mini_sudoku", "grid": ["1234", "3412", "2143", "432"]}, "4 cells"),
    ({"family": "mini_sudoku", "grid": ["1234", "3412", "2143", "43x1"]}, "digits"),
    ({"family": "mini_sudoku", "grid": ["11..", "....", "....", "...."]}, "no solution"),
    ({"family": "mini_sudoku", "grid": ["....", "....", "....", "...."], "box": [3, 1]}, "`box`"),
    (
        {"family": "mini_sudoku", "grid": ["1...", "....", "....", "...."], "solution": "2134/3412/2143/4321"},
        "`solution`",
    ),
    ({"family": "graph_components", "nodes": [1, 2], "edges": [], "answer": 1}, "`answer`"),
    (
        {
            "family": "logic_grid",
            "attributes": [{"name": "name", "values": ["A", "B"]}],
            "clues": [{"type": "at", "x": ["name", "A"], "house": 1}],
            "question": {"ask": "house", "of": ["name", "A"]},
            "answer": "2",
        },
        "`answer`",
    ),
    ({"family": "sorting", "key": "value", "items": [2, 1], "answer": "2, 1"}, "`answer`"),
    ({"family": "graph_path", "source": "A", "target": "B"}, "`edges`"),
    ({"family": "graph_path", "edges": [["A", "B"]], "source": "A", "target": "B"}, "`edges`"),
    ({"family": "graph_path", "edges": [["A", "B", -1]], "source": "A", "target": "B"}, "weights"),
    ({"family": "graph_path", "edges": [["A", "B", 1]], "target": "B"}, "`source`"),
    ({"family": "graph_path", "edges": [["A", "B", 1]], "source": "A", "target": "Z"}, "`target`"),
    (
        {"family": "graph_path", "nodes": ["A", "B", "C"], "edges": [["A", "B", 1]], "source": "A", "target": "C"},
        "reached",
    ),
    ({"family": "graph_components", "edges": []}, "`nodes`"),
    ({"family": "graph_components", "nodes": [1, 2]}, "`edges`"),
    ({"family": "graph_components", "nodes": [1, 2], "edges": [[1, 3]]}, "`edges`"),
    ({"family": "graph_components", "nodes": [1, 1], "edges": []}, "twice"),
    ({"family": "graph_components", "nodes": [1, 2], "edges": [], "question": "smallest"}, "`question`"),
    ({"family": "caesar", "cipher": "caesar", "key": 3}, "`plaintext`"),
    ({"family": "caesar", "cipher": "rot", "key": 3, "plaintext": "hi"}, "`cipher`"),
    ({"family": "caesar", "cipher": "caesar", "key": 30, "plaintext": "hi"}, "`key`"),
    ({"family": "caesar", "cipher": "vigenere", "key": 3, "plaintext": "hi"}, "`key`"),
    ({"family": "caesar", "cipher": "caesar", "key": 3, "plaintext": "hi 2u"}, "`plaintext`"),
    ({"family": "sorting", "items": [1, 2]}, "`key`"),
    ({"family": "sorting", "key": "value"}, "`items`"),
    ({"family": "sorting", "key": "value", "items": ["x"]}, "`items`"),
    ({"family": "sorting", "key": "length", "items": ["a1"]}, "`items`"),
    ({"family": "sorting", "key": "value", "items": [1], "order": "up"}, "`order`"),
    ({"family": "counting", "text": "abc", "letter": "a"}, "`kind`"),
    ({"family": "counting", "kind": "letter", "letter": "a"}, "`text`"),
    ({"family": "counting", "kind": "letter", "text": "abc", "letter": "ab"}, "`letter`"),
    ({"family": "counting", "kind": "numbers", "numbers": [1], "conditions": [["div", 0]]}, "`conditions`"),
    ({"family": "counting", "kind": "numbers", "numbers": [1]}, "`conditions`"),
    ({"family": "counting", "kind": "words", "words": ["a"], "conditions": [["longer_than", "x"]]}, "`conditions`"),
    ({"family": "sequence", "answer": 3}, "`terms`"),
    ({"family": "sequence", "terms": [1, 2]}, "`answer`"),
    ({"family": "sequence", "terms": [1, 2.5], "answer": 3}, "`terms`"),
    ({"family": "base_conversion", "value": "12", "to_base": 2}, "`from_base`"),
    ({"family": "base_conversion", "value": "12", "from_base": 2, "to_base": 10}, "`value`"),
    ({"family": "base_conversion", "value": "12", "from_base": 10, "to_base": 40}, "`to_base`"),
    ({"family": "knights_knaves", "statements": []}, "`people`"),
    ({"family": "knights_knaves", "people": ["A", "B"]}, "`statements`"),
    (
        {"family": "knights_knaves", "people": ["A", "B"], "statements": [{"speaker": "C", "says": ["knight", "A"]}]},
        "`speaker`",
    ),
    (
        {"family": "knights_knaves", "people": ["A", "B"], "statements": [{"speaker": "A", "says": ["knight", "C"]}]},
        "`says`",
    ),
    (
        {"family": "knights_knaves", "people": ["A", "B"], "statements": [{"speaker": "A", "says": ["knight", "B"]}]},
        "more than one",
    ),
    (
        {"family": "knights_knaves", "people": ["A"], "statements": [{"speaker": "A", "says": ["knave", "A"]}]},
        "no consistent",
    ),
]


def test_malformed_inline_tasks_are_refused() -> None:
    for task, needle in MALFORMED:
        try:
            ENV.inline_task(task)
        except EnvError as e:
            assert e.kind == "invalid_task", (task, e)
            assert needle in e.message, (task, e.message, needle)
        else:
            raise AssertionError(f"accepted malformed task {task}")
        r = handle(ENV, {"v": 1, "op": "reset", "task": task})
        assert r["error"]["kind"] == "invalid_task", r


def test_bad_levels_are_refused() -> None:
    for level in (0, 6, -1, "3", True, 2.5, None):
        r = handle(ENV, {"v": 1, "op": "reset", "split": "train", "index": 0, "config": {"level": level}})
        assert r["error"]["kind"] == "bad_request", (level, r)
        assert "1 to 5" in r["error"]["message"]
        try:
            make("countdown", 0, level)  # type: ignore[arg-type]
        except EnvError as e:
            assert e.kind == "bad_request"
        else:
            raise AssertionError(level)


# The protocol --------------------------------------------------------------------


def test_protocol() -> None:
    info = handle(ENV, {"v": 1, "op": "info"})["ok"]
    assert info["name"] == "envhub/reasoning" and info["version"] == "0.1.0" and info["max_turns"] == 1
    assert info["splits"] == {"train": None, "test": 1000, **{f: None for f in FAMILY_NAMES}}
    assert info["reward_components"] == [{"name": "correct", "weight": 1.0}, {"name": "format", "weight": 0.0}]
    assert info["capabilities"] == [] and info["description"] == env.Reasoning.description

    for split in ["train", "test", *FAMILY_NAMES]:
        for level in (1, 5):
            req = {"v": 1, "op": "reset", "split": split, "index": 3, "seed": 7, "config": {"level": level}}
            r1, r2 = handle(ENV, req), handle(ENV, json.loads(json.dumps(req)))
            assert canonical(r1) == canonical(r2)
            ok = r1["ok"]
            assert ok["task_id"] == f"{split}/3"
            assert ok["messages"][0]["role"] == "user" and ok["messages"][0]["content"].endswith("\\boxed{...}.")
            state = json.loads(json.dumps(ok["state"], sort_keys=True))  # as a host with sorted maps would
            task = {k: v for k, v in state["task"].items() if k != "_envhub_source"}
            ref = ENV.reference(task)
            step = handle(ENV, {"v": 1, "op": "step", "state": state, "action": {"role": "assistant", "content": ref}})[
                "ok"
            ]
            assert step["done"] is True and step["reward"] == {
                "total": 1.0,
                "components": {"correct": 1.0, "format": 1.0},
            }
            assert step["metrics"]["family"] == task["family"] and step["metrics"]["level"] == level
            wrong = handle(
                ENV, {"v": 1, "op": "step", "state": state, "action": {"role": "assistant", "content": "\\boxed{?}"}}
            )
            assert wrong["ok"]["reward"]["total"] == 0.0
            again = handle(
                ENV, {"v": 1, "op": "step", "state": step["state"], "action": {"role": "assistant", "content": ref}}
            )
            assert again["error"]["kind"] == "episode_over"

    # reward weights from the config
    r = handle(ENV, {"v": 1, "op": "reset", "split": "sequence", "index": 0, "config": {"weights": {"format": 0.5}}})[
        "ok"
    ]
    task = {k: v for k, v in r["state"]["task"].items() if k != "_envhub_source"}
    s = handle(
        ENV,
        {"v": 1, "op": "step", "state": r["state"], "action": {"role": "assistant", "content": ENV.reference(task)}},
    )
    assert s["ok"]["reward"]["total"] == 1.5

    # validate: split tasks (default level) and inline tasks
    for split in ["train", "test", *FAMILY_NAMES]:
        v = handle(ENV, {"v": 1, "op": "validate", "split": split, "index": 11})["ok"]
        content = v["actions"][0]["content"]
        r = handle(ENV, {"v": 1, "op": "reset", "split": split, "index": 11})["ok"]
        s = handle(
            ENV, {"v": 1, "op": "step", "state": r["state"], "action": {"role": "assistant", "content": content}}
        )
        assert s["ok"]["reward"]["components"]["correct"] == 1.0, split

    # errors
    assert handle(ENV, {"v": 1, "op": "reset", "split": "nope", "index": 0})["error"]["kind"] == "unknown_split"
    assert handle(ENV, {"v": 1, "op": "reset", "split": "test", "index": 1000})["error"]["kind"] == "index_out_of_range"
    assert handle(ENV, {"v": 1, "op": "reset", "split": "test", "index": 999})["ok"]
    assert handle(ENV, {"v": 1, "op": "reset", "split": "train", "index": 10**12})["ok"]
    assert handle(ENV, {"v": 1, "op": "validate", "task": {"family": "nope"}})["error"]["kind"] == "invalid_task"


def test_long_and_hostile_completions_are_cheap() -> None:
    task = make("countdown", 0, 5)
    for completion in [
        "\\boxed{" * 5000,
        "{" * 10000 + "\\boxed{1}",
        "Answer: " + "(" * 3000,
        "\\boxed{" + "1+" * 5000 + "1}",
    ]:
        t0 = time.perf_counter()
        comps, _ = score(task, completion)
        assert comps["correct"] == 0.0
        assert time.perf_counter() - t0 < 0.5


def test_independent_of_the_hash_seed() -> None:
    if sys.platform == "wasi":
        return  # no subprocesses in the sandbox
    import os
    import subprocess

    code = (
        "import hashlib, env; from envhub import canonical; from envhub._guest import handle; e = env.Reasoning(); "
        "h = hashlib.sha256(); "
        "req = lambda s, i, lv: {'v': 1, 'op': 'reset', 'split': s, 'index': i, 'config': {'level': lv}}; "
        "[h.update(canonical(handle(e, req(s, i, lv))).encode()) "
        "for s in ['train', *env.FAMILY_NAMES] for lv in (1, 5) for i in range(8)]; print(h.hexdigest())"
    )
    outs = set()
    for seed in ("0", "1", "4242"):
        envvars = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join(sys.path)}
        r = subprocess.run([sys.executable, "-c", code], env=envvars, capture_output=True, text=True, check=True)
        outs.add(r.stdout.strip())
    assert len(outs) == 1, outs


# Benchmark -----------------------------------------------------------------------


def bench(levels: tuple[int, ...] = (1, 3, 5), n: int = 200) -> dict[str, dict[int, float]]:
    """Median milliseconds of a reset and a step (task generation, prompt,
    reference scoring) through the protocol, per family and level."""
    out: dict[str, dict[int, float]] = {}
    for fam in FAMILY_NAMES:
        out[fam] = {}
        for level in levels:
            times = []
            for i in range(n):
                t0 = time.perf_counter()
                r = handle(ENV, {"v": 1, "op": "reset", "split": fam, "index": i, "config": {"level": level}})["ok"]
                task = {k: v for k, v in r["state"]["task"].items() if k != "_envhub_source"}
                ref = FAMILIES[fam].answer(task)
                handle(
                    ENV,
                    {
                        "v": 1,
                        "op": "step",
                        "state": r["state"],
                        "action": {"role": "assistant", "content": f"\\boxed{{{ref}}}"},
                    },
                )
                times.append(time.perf_counter() - t0)
            times.sort()
            out[fam][level] = times[len(times) // 2] * 1000
    return out


if __name__ == "__main__":
    if "--bench" in sys.argv:
        results = bench()
        print(f"{'family':18s} " + " ".join(f"L{lv} ms".rjust(8) for lv in (1, 3, 5)))
        for fam, row in results.items():
            print(f"{fam:18s} " + " ".join(f"{row[lv]:8.3f}" for lv in (1, 3, 5)))
    else:
        failed = 0
        for name, fn in sorted(globals().items()):
            if name.startswith("test_") and callable(fn):
                try:
                    fn()
                    print(f"ok   {name}")
                except Exception as e:
                    failed += 1
                    print(f"FAIL {name}: {e!r}")
        sys.exit(1 if failed else 0)
