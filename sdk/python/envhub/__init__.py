"""envhub for environment authors writing Python.

An environment is a class in ``env.py``: a :class:`SingleTurn` (one prompt,
one scored answer) or an :class:`Environment` (multi-turn, tools). envhub runs
it in a sandbox on a pinned CPython for WebAssembly with fixed clocks, a
fixed hash seed, seeded randomness and no network, so the same package,
request and seed give the same response bytes on every machine.

>>> class Echo(SingleTurn):
...     name = "alice/echo"
...     version = "0.1.0"
...     splits = {"train": None}
...     components = {"correct": 1.0}
...     def task(self, split, index, rng):
...         return {"word": rng.choice(["cat", "dog"])}
...     def prompt(self, task):
...         return f"Repeat the word {task['word']}."
...     def score(self, task, completion):
...         return {"correct": float(completion.strip() == task["word"])}
...     def reference(self, task):
...         return task["word"]
"""

from __future__ import annotations

from typing import Any

from . import _host
from ._protocol import EnvError, canonical, inline_id, message, text_of
from ._rng import Rng, stable_hash
from ._single_turn import Environment, SingleTurn

__all__ = [
    "EnvError",
    "Environment",
    "Rng",
    "SingleTurn",
    "canonical",
    "extract_answer",
    "inline_id",
    "match_tool_calls",
    "message",
    "parse_tool_calls",
    "stable_hash",
    "text_of",
    "verify_math",
]

__version__ = "0.1.0"


def verify_math(gold: str, completion: str, **config: Any) -> dict[str, Any]:
    """envhub's math verifier (the one ``envhub/math`` grades with): extracts
    the answer from ``completion`` and compares it with ``gold``. Returns
    ``{"correct": bool, "extracted": str | None, "source": str | None,
    "verdict": str}``. Needs the capability ``verify:math``."""
    result: dict[str, Any] = _host.call("math.verify", {"gold": gold, "completion": completion, "config": config})
    return result


def extract_answer(completion: str) -> str | None:
    """The final answer envhub's math verifier finds in ``completion``
    (``\\boxed{}``, ``#### N``, "the answer is", the last math span, ...).
    Needs the capability ``verify:math``."""
    result = _host.call("math.extract", {"completion": completion})
    return result if isinstance(result, str) else None


def parse_tool_calls(action: dict[str, Any] | str) -> list[dict[str, Any]]:
    """The tool calls in an assistant turn: OpenAI ``tool_calls`` or calls
    written in the text (``<tool_call>{...}</tool_call>``, JSON), each
    ``{"name", "arguments"}`` or ``{"error"}``. Needs ``verify:tools``."""
    message_ = action if isinstance(action, dict) else {"role": "assistant", "content": action}
    result: list[dict[str, Any]] = _host.call("tools.parse", {"message": message_})
    return result


def match_tool_calls(expected: list[dict[str, Any]], calls: list[dict[str, Any]]) -> dict[str, Any]:
    """BFCL-style matching of ``calls`` against ``expected`` calls (names,
    required and allowed argument values, parallel calls in any order):
    ``{"matched": bool, "reason": str | None}``. Needs ``verify:tools``."""
    result: dict[str, Any] = _host.call("tools.match", {"expected": expected, "calls": calls})
    return result
