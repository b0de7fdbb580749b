"""The reasoning families. Each module defines ``NAME`` and:

- ``generate(rng, level) -> dict``: a task's fields (without ``family`` and
  ``level``), a pure function of the draws it makes from ``rng``;
- ``prompt(task) -> str``: the problem, ending with what the answer holds;
- ``check(task, answer) -> bool``: exact verification of an extracted answer;
- ``answer(task) -> str | None``: an answer that ``check`` accepts;
- ``inline(task) -> dict``: a user's task checked and completed (answers
  computed), raising ``EnvError.invalid_task`` when malformed.

``FAMILIES`` lists them in a fixed order: the ``train``/``test`` splits draw
uniformly from it, so appending is the only change that keeps old tasks.
"""

from __future__ import annotations

from types import ModuleType

from . import (
    arithmetic_puzzle,
    base_conversion,
    caesar,
    countdown,
    counting,
    graph_components,
    graph_path,
    knights_knaves,
    logic_grid,
    mini_sudoku,
    sequence,
    sorting,
)

FAMILY_LIST: list[ModuleType] = [
    countdown,
    arithmetic_puzzle,
    logic_grid,
    mini_sudoku,
    graph_path,
    graph_components,
    caesar,
    sorting,
    counting,
    sequence,
    base_conversion,
    knights_knaves,
]
FAMILY_NAMES: list[str] = [m.NAME for m in FAMILY_LIST]
FAMILIES: dict[str, ModuleType] = {m.NAME: m for m in FAMILY_LIST}
