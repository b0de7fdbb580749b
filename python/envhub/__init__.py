"""envhub: sandboxed RL environments with deterministic rewards, from Python.

>>> import envhub
>>> env = envhub.load("math")
>>> env.score({"question": "1/2 + 1/2?", "answer": "1"}, "so \\\\boxed{1}").reward
1.0

Environments are WebAssembly modules run by wasmtime with fuel and memory
limits, fixed clocks and seeded randomness: the same package, task and
completion give the same reward bytes on every machine, exactly as
``envhub score`` does. Adapters for trainers live in :mod:`envhub.trl`,
:mod:`envhub.verl` and :mod:`envhub.openrlhf`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from . import _bundle, _native
from ._env import Env, Episode, Score, StepResult, load
from .errors import (
    BadActionError,
    BadArgumentError,
    BadTaskError,
    DeadlineError,
    DigestMismatchError,
    EnvhubError,
    GuestError,
    HubError,
    LimitError,
    MemoryLimitError,
    NotFoundError,
    OutOfFuelError,
    OutputLimitError,
    StackOverflowError,
)

__version__: str = _native.__version__

__all__ = [
    "BadActionError",
    "BadArgumentError",
    "BadTaskError",
    "DeadlineError",
    "DigestMismatchError",
    "Env",
    "EnvhubError",
    "Episode",
    "GuestError",
    "HubError",
    "LimitError",
    "MemoryLimitError",
    "NotFoundError",
    "OutOfFuelError",
    "OutputLimitError",
    "Pulled",
    "Score",
    "StackOverflowError",
    "StepResult",
    "VerifyReport",
    "__version__",
    "load",
    "pull",
    "verify",
]

_native.configure(python_runtime=_bundle.python_runtime())


@dataclass(frozen=True)
class Pulled:
    """A package resolved on a hub, verified and pinned (what ``envhub pull`` prints)."""

    name: str
    version: str
    digest: str
    source: str
    path: str
    from_lockfile: bool


def pull(
    ref: str,
    *,
    hub: str | None = None,
    locked: bool = False,
    lockfile: str | os.PathLike[str] | None = None,
) -> Pulled:
    """Resolves ``owner/name@REQ`` as ``envhub pull`` does: the lockfile's pin
    if it satisfies the requirement, else the highest non-yanked match on the
    hub; downloads it into the pull cache after checking its digest and pins
    it in ``lockfile`` (``./envhub.lock``) unless ``locked``."""
    got = _native.pull(ref, hub=hub, locked=locked, lockfile=lockfile)
    return Pulled(**got)


@dataclass(frozen=True)
class VerifyReport:
    """What replaying a trajectory file found (``envhub verify --json``)."""

    trajectories: int
    verified: int
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every trajectory's every reward was reproduced bit for bit."""
        return not self.mismatches and self.verified == self.trajectories


def verify(path: str | os.PathLike[str], *, envs: list[str] | None = None) -> VerifyReport:
    """Replays every trajectory in the JSONL file ``path`` through the
    environment with its recorded digest (found among ``envs``, the pull
    cache and the recorded source) and compares every reward bit for bit."""
    got = _native.verify(os.fspath(path), envs=envs, package_dirs=_bundle.package_dirs())
    return VerifyReport(
        trajectories=got["trajectories"], verified=got["verified"], mismatches=got["mismatches"]
    )
