"""envhub/reasoning: procedurally generated reasoning puzzles with exact,
verifier-based scoring. Every task is a pure function of (split, index,
level); see README.md for the families and their inline-task schemas."""

from __future__ import annotations

from typing import Any, ClassVar

import envhub
from families import FAMILIES, FAMILY_NAMES
from families._common import BOXED_INSTRUCTION, MAX_ANSWER_CHARS, extract

LEVELS = (1, 2, 3, 4, 5)
DEFAULT_LEVEL = 2
# The `extracted` metric is cut to this many characters.
MAX_METRIC_CHARS = 500


def _level(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in LEVELS:
        raise envhub.EnvError.bad_request(f"{where} must be an integer from 1 to 5 (got {value!r})")
    return value


class Reasoning(envhub.SingleTurn):
    name = "envhub/reasoning"
    version = "0.1.0"
    description = (
        "Procedural reasoning puzzles with exact verifiers: countdown, arithmetic puzzles, logic grids, "
        "sudoku, graphs, ciphers, sorting, counting, sequences, base conversion, knights and knaves; levels 1-5"
    )
    splits: ClassVar[dict[str, int | None]] = {"train": None, "test": 1000, **{f: None for f in FAMILY_NAMES}}
    components: ClassVar[dict[str, float]] = {"correct": 1.0, "format": 0.0}

    def task(self, split: str, index: int, rng: envhub.Rng) -> dict[str, Any]:
        level = _level(self.config.get("level", DEFAULT_LEVEL), "config.level")
        family = rng.choice(FAMILY_NAMES) if split in ("train", "test") else split
        fields = FAMILIES[family].generate(rng, level)
        return {"family": family, "level": level, **fields}

    def inline_task(self, task: Any) -> dict[str, Any]:
        if not isinstance(task, dict):
            raise envhub.EnvError.invalid_task("an inline task is a JSON object")
        family = task.get("family")
        if family not in FAMILIES:
            raise envhub.EnvError.invalid_task(
                f"inline task field `family` must be one of: {', '.join(FAMILY_NAMES)} (got {family!r})"
            )
        level = task.get("level")
        if level is not None and (isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS):
            raise envhub.EnvError.invalid_task("inline task field `level` must be an integer from 1 to 5 when given")
        module = FAMILIES[family]
        fields = module.inline(task)
        # An answer given with a puzzle whose answer is computed must agree.
        if "answer" in task and "answer" in fields and family != "sequence":
            given = task["answer"]
            agrees = envhub.canonical(given) == envhub.canonical(fields["answer"])
            if not agrees and isinstance(given, str) and len(given) <= MAX_ANSWER_CHARS:
                agrees = bool(module.check(fields, given))
            if not agrees:
                raise envhub.EnvError.invalid_task(
                    f"inline task field `answer` ({given!r}) disagrees with the answer computed from the puzzle "
                    f"({fields['answer']!r})"
                )
        return {"family": family, "level": level, **fields}

    def prompt(self, task: dict[str, Any]) -> str:
        return f"{FAMILIES[task['family']].prompt(task)}\n\n{BOXED_INSTRUCTION}"

    def score(self, task: dict[str, Any], completion: str) -> tuple[dict[str, float], dict[str, Any]]:
        family = FAMILIES[task["family"]]
        extracted, boxed = extract(completion)
        correct = False
        if extracted is not None and len(extracted) <= MAX_ANSWER_CHARS:
            correct = bool(family.check(task, extracted))
        shown = (
            extracted
            if extracted is None or len(extracted) <= MAX_METRIC_CHARS
            else extracted[:MAX_METRIC_CHARS] + "..."
        )
        metrics = {"family": task["family"], "level": task.get("level"), "extracted": shown}
        return {"correct": 1.0 if correct else 0.0, "format": 1.0 if boxed else 0.0}, metrics

    def reference(self, task: dict[str, Any]) -> str | None:
        ans = FAMILIES[task["family"]].answer(task)
        if ans is None:
            return None
        return f"Working through the problem gives the answer.\n\n\\boxed{{{ans}}}"
