"""Guest ABI v1 as Python sees it: requests in, ``{"ok": ...}`` or
``{"error": {"kind", "message"}}`` out, and the errors an environment raises."""

from __future__ import annotations

import json
from typing import Any

from ._rng import stable_hash

PROTOCOL_VERSION = 1

KINDS = (
    "bad_request",
    "unsupported_version",
    "unknown_split",
    "index_out_of_range",
    "invalid_task",
    "invalid_state",
    "invalid_action",
    "episode_over",
    "unsupported",
    "internal",
)


class EnvError(Exception):
    """An error the environment answers with instead of a result; ``kind`` is
    one of the protocol's kinds (``invalid_task``, ``unknown_split``, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown error kind {kind!r}; kinds are: {', '.join(KINDS)}")
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message

    @classmethod
    def invalid_task(cls, message: str) -> EnvError:
        """The inline task does not follow the environment's schema."""
        return cls("invalid_task", message)

    @classmethod
    def invalid_action(cls, message: str) -> EnvError:
        """The action is not something the environment can apply."""
        return cls("invalid_action", message)

    @classmethod
    def invalid_state(cls, message: str) -> EnvError:
        """A step carried a state this environment did not produce."""
        return cls("invalid_state", message)

    @classmethod
    def bad_request(cls, message: str) -> EnvError:
        """The request (or its config) is malformed."""
        return cls("bad_request", message)


def ok(value: Any) -> dict[str, Any]:
    return {"ok": value}


def error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"kind": kind, "message": message}}


def canonical(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same text for the same value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def inline_id(task: Any) -> str:
    """The stable id of an inline task: ``inline/`` and a hash of its canonical JSON."""
    return f"inline/{stable_hash(canonical(task).encode()):016x}"


def message(role: str, content: str) -> dict[str, Any]:
    """An OpenAI-style chat message."""
    return {"role": role, "content": content}


def text_of(action: Any) -> str:
    """The text of an assistant message (``""`` when it carries only tool calls)."""
    if isinstance(action, dict):
        content = action.get("content")
        return content if isinstance(content, str) else ""
    return ""
