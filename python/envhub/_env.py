"""Environments from Python: load, reset/step, score, score in batches."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Iterable, Mapping
from typing import Any

from . import _bundle, _native
from ._native import Episode, Score, StepResult

__all__ = ["Env", "Episode", "Score", "StepResult", "load"]

Task = Mapping[str, Any]
Action = str | Mapping[str, Any]


class Env(_native.Env):
    """An environment loaded in envhub's sandbox.

    Build one with :func:`load`. An ``Env`` is safe to share between threads
    and survives ``fork`` (a child process reloads it in a sandbox of its own).
    Every call runs in a fresh sandbox instance with the GIL released.

    Attributes (from the native core): ``info`` (dict), ``digest``
    (``sha256:<hex>``), ``manifest``, ``path``, ``config``; methods
    ``reset(split=, index=, *, task=, seed=0, config=None) -> Episode``,
    ``score(task, completion, *, seed=0, config=None) -> Score`` and
    ``score_batch(tasks, completions, *, threads=None, seed=0, config=None,
    return_exceptions=False) -> list[Score]``.
    """

    def __reduce__(self) -> tuple[Any, tuple[str, str, dict[str, Any]]]:
        # Pickled by reference to its file and digest (for process pools):
        # the receiving process loads it again and checks it is the same.
        return (_reload, (self.path, self.digest, self.config))

    def __repr__(self) -> str:
        info = self.info
        return f"Env({info['name']}@{info['version']}, {self.digest[:19]}...)"

    async def ascore(
        self,
        task: Task,
        completion: Action,
        *,
        seed: int = 0,
        config: Mapping[str, Any] | None = None,
    ) -> Score:
        """:meth:`score` on the event loop's default executor: the sandbox
        call releases the GIL, so many ``ascore`` calls run in parallel."""
        call = functools.partial(self.score, task, completion, seed=seed, config=config)
        return await asyncio.get_running_loop().run_in_executor(None, call)

    async def ascore_batch(
        self,
        tasks: Iterable[Task],
        completions: Iterable[Action],
        *,
        threads: int | None = None,
        seed: int = 0,
        config: Mapping[str, Any] | None = None,
        return_exceptions: bool = False,
    ) -> list[Score | BaseException]:
        """:meth:`score_batch` off the event loop (it uses every core itself)."""
        call: functools.partial[list[Score | BaseException]] = functools.partial(
            self.score_batch,
            list(tasks),
            list(completions),
            threads=threads,
            seed=seed,
            config=config,
            return_exceptions=return_exceptions,
        )
        return await asyncio.get_running_loop().run_in_executor(None, call)


def load(
    ref: str | os.PathLike[str],
    *,
    hub: str | None = None,
    config: Mapping[str, Any] | None = None,
    lockfile: str | os.PathLike[str] | None = None,
    locked: bool | None = None,
) -> Env:
    """Loads an environment, resolved exactly as the ``envhub`` CLI does.

    ``ref`` is a first-party name (``"math"``; from ``./environments/``, the
    packages this installation ships, ``$ENVHUB_PACKAGES`` or the hub's
    ``envhub/NAME``), a ``.envpkg`` or ``.wasm`` path, an environment crate
    directory, or ``owner/name@REQ``. Hub packages come from ``hub`` (else
    ``$ENVHUB_HUB`` or the CLI's login), are checked against their digest
    before anything runs and are pinned in ``lockfile`` (``envhub.lock``);
    ``locked=True`` (or ``ENVHUB_LOCKED=1``) uses only the pinned digests.
    ``config`` is the environment configuration of every episode (e.g.
    ``{"weights": {"format": 0.1}}``); per-call ``config`` overrides its keys.

    Raises :class:`~envhub.errors.NotFoundError`,
    :class:`~envhub.errors.DigestMismatchError`,
    :class:`~envhub.errors.HubError` and the sandbox's errors.
    """
    return Env(
        ref,
        hub=hub,
        config=config,
        lockfile=lockfile,
        locked=locked,
        package_dirs=_bundle.package_dirs(),
    )


def _reload(path: str, digest: str, config: dict[str, Any]) -> Env:
    """Unpickles an :class:`Env`: the same file, which must still hold the same package."""
    env = Env(path, config=config, package_dirs=_bundle.package_dirs())
    if env.digest != digest:
        from .errors import DigestMismatchError

        raise DigestMismatchError(f"{path} now holds {env.digest}, not the pickled {digest}")
    return env
