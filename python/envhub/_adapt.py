"""What the trainer adapters share: turning a trainer's dataset row into an
inline task, a prompt into text, a completion into an action, and a cache of
loaded environments per process."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ._env import Env, load
from .errors import BadArgumentError, LimitError

_CACHE: dict[tuple[str, str | None, str], Env] = {}
_CACHE_LOCK = threading.Lock()


def cached_env(ref: str, *, hub: str | None = None, config: Mapping[str, Any] | None = None) -> Env:
    """The environment ``ref`` names, loaded once per process and configuration."""
    key = (ref, hub, json.dumps(dict(config or {}), sort_keys=True))
    with _CACHE_LOCK:
        env = _CACHE.get(key)
        if env is None:
            env = load(ref, hub=hub, config=config)
            _CACHE[key] = env
        return env


def text_of(content: Any) -> str:
    """Message content as text: a str, or the text parts of a content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return str(content)


def prompt_text(prompt: Any) -> str:
    """The task text of a prompt: the string itself, or the last user
    message of a conversation."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence):
        for message in reversed(prompt):
            if isinstance(message, Mapping) and message.get("role") == "user":
                return text_of(message.get("content"))
    return ""


def completion_action(completion: Any) -> str | dict[str, Any]:
    """The policy's answer in a completion: a string as it is, or, in a
    conversation (assistant, tool, ..., assistant), its last assistant message."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return dict(completion)
    if isinstance(completion, Sequence):
        for message in reversed(completion):
            if isinstance(message, Mapping) and message.get("role", "assistant") == "assistant":
                return dict(message)
        return ""
    kind = type(completion).__name__
    raise BadArgumentError(f"a completion is a str or a list of messages, not {kind}")


def _as_task(value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise BadArgumentError(f"{what} is not JSON: {e}") from None
    if not isinstance(value, Mapping):
        raise BadArgumentError(f"{what} must be a task object (a dict or a JSON object string)")
    return dict(value)


def task_from_row(
    row: Mapping[str, Any], prompt: Any, column_map: Mapping[str, str]
) -> dict[str, Any]:
    """The inline task for one dataset row.

    - With a ``column_map`` (task field -> column), exactly those fields.
    - Else a ``task`` column (a dict or a JSON string) is the task.
    - Else every column is a task field, and ``question`` and ``prompt``
      default to the prompt's text, so question/answer datasets such as
      GSM8K (``question``, ``answer``) work as they are.
    """
    if column_map:
        task: dict[str, Any] = {}
        for field, column in column_map.items():
            if column in row:
                task[field] = row[column]
            elif column == "prompt":
                task[field] = prompt_text(prompt)
            else:
                columns = ", ".join(sorted(row)) or "none"
                raise BadArgumentError(
                    f"task field `{field}` maps to column `{column}`, which the row lacks "
                    f"(columns: {columns})"
                )
        return task
    if "task" in row and row["task"] is not None:
        return _as_task(row["task"], "the `task` column")
    task = {k: v for k, v in row.items() if v is not None}
    text = prompt_text(prompt)
    task.setdefault("question", text)
    task.setdefault("prompt", text)
    return task


def reward_or_raise(result: Any, index: int) -> float:
    """The reward of one batch item: a limit hit by the completion (out of
    fuel, memory, ...) scores 0.0; any other error is a configuration
    problem and is raised."""
    if isinstance(result, LimitError):
        return 0.0
    if isinstance(result, BaseException):
        if hasattr(result, "add_note"):  # Python >= 3.11
            result.add_note(f"while scoring item {index}")
        raise result
    return float(result.reward)
