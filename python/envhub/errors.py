"""The exceptions envhub raises.

Every exception carries the same message the ``envhub`` CLI prints and a
stable machine-readable :attr:`EnvhubError.kind` (``"out_of_fuel"``,
``"invalid_task"``, ``"digest_mismatch"``, ...).
"""

from __future__ import annotations

__all__ = [
    "BadActionError",
    "BadArgumentError",
    "BadTaskError",
    "DeadlineError",
    "DigestMismatchError",
    "EnvhubError",
    "GuestError",
    "HubError",
    "LimitError",
    "MemoryLimitError",
    "NotFoundError",
    "OutOfFuelError",
    "OutputLimitError",
    "StackOverflowError",
]


class EnvhubError(Exception):
    """Base class of every envhub error."""

    kind: str = "envhub_error"
    """A stable name of what went wrong, as the CLI and trajectories record it."""


class NotFoundError(EnvhubError, LookupError):
    """No environment answers to the reference: no such file, crate,
    first-party package, hub package or matching version."""

    kind = "not_found"


class DigestMismatchError(EnvhubError):
    """A downloaded package is not the one its digest names; it was discarded
    and nothing ran."""

    kind = "digest_mismatch"


class HubError(EnvhubError):
    """The hub could not be reached, none is configured, or it refused."""

    kind = "hub_error"


class BadArgumentError(EnvhubError, ValueError):
    """An argument from the caller is malformed, or the environment refused it
    (``kind`` ``"bad_request"``: a reset config it does not take)."""

    kind = "bad_argument"


class BadTaskError(EnvhubError, ValueError):
    """The environment refused the task: an inline task not in its schema,
    an unknown split or an index out of range."""

    kind = "invalid_task"


class BadActionError(EnvhubError, ValueError):
    """The environment refused the action, or the episode is over."""

    kind = "invalid_action"


class GuestError(EnvhubError):
    """The environment itself failed: it panicked, trapped, exited, or wrote
    something that is not a protocol response."""

    kind = "guest_error"


class LimitError(EnvhubError):
    """A call hit one of its sandbox limits."""

    kind = "limit"


class OutOfFuelError(LimitError):
    """The call ran more instructions than its fuel allows (deterministic)."""

    kind = "out_of_fuel"


class MemoryLimitError(LimitError):
    """The call asked for more memory than its limit."""

    kind = "memory_limit"


class DeadlineError(LimitError):
    """The wall-clock backstop fired before the fuel ran out (not deterministic)."""

    kind = "deadline"


class StackOverflowError(LimitError):
    """The call exhausted its stack (e.g. unbounded recursion)."""

    kind = "stack_overflow"


class OutputLimitError(LimitError):
    """The environment wrote more output than its limit."""

    kind = "output_too_large"
