"""Type stubs of the native core (``python/src``)."""

import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal, overload

__version__: str

class Score:
    """A scored completion."""

    @property
    def reward(self) -> float:
        """The total reward."""
    @property
    def components(self) -> dict[str, float]:
        """Each reward component's value."""
    @property
    def metrics(self) -> dict[str, Any]:
        """The environment's measurements (extracted answer, verdict, ...)."""
    @property
    def task_id(self) -> str:
        """The task's stable id."""
    @property
    def done(self) -> bool:
        """Whether the episode ended with this completion."""
    def __float__(self) -> float: ...

class StepResult:
    """What one step gave."""

    @property
    def reward(self) -> float:
        """The episode's total reward so far (final once ``done``)."""
    @property
    def components(self) -> dict[str, float]:
        """Each reward component's value."""
    @property
    def metrics(self) -> dict[str, Any]:
        """The environment's measurements."""
    @property
    def messages(self) -> list[dict[str, Any]]:
        """New messages for the policy (tool results, feedback), OpenAI format."""
    @property
    def done(self) -> bool:
        """Whether the episode is over."""

class Episode:
    """One episode: the opening messages and tools, and ``step``."""

    @property
    def task_id(self) -> str:
        """The task's stable id."""
    @property
    def messages(self) -> list[dict[str, Any]]:
        """The opening messages (system and user), OpenAI format."""
    @property
    def tools(self) -> list[dict[str, Any]]:
        """Tools offered in this episode, OpenAI function format."""
    @property
    def done(self) -> bool:
        """Whether the episode is over."""
    @property
    def state(self) -> Any:
        """The episode's opaque state, as the next ``step`` sends it."""
    def step(self, action: str | Mapping[str, Any]) -> StepResult:
        """Applies one policy turn: a str, or an OpenAI assistant message
        dict (tool calls included)."""

class Env:
    """An environment loaded in the sandbox."""

    def __new__(
        cls,
        reference: str | os.PathLike[str],
        *,
        hub: str | None = None,
        config: Mapping[str, Any] | None = None,
        lockfile: str | os.PathLike[str] | None = None,
        locked: bool | None = None,
        package_dirs: list[str] | None = None,
    ) -> Env: ...
    @property
    def info(self) -> dict[str, Any]:
        """The environment's ``info``: name, version, splits, tools, reward components."""
    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the package (or of the bare module)."""
    @property
    def manifest(self) -> dict[str, Any] | None:
        """The package manifest (``envhub.toml``), or None for a bare module."""
    @property
    def path(self) -> str:
        """The file the environment was loaded from."""
    @property
    def config(self) -> dict[str, Any]:
        """The default environment configuration of every episode."""
    def reset(
        self,
        split: str | None = None,
        index: int | None = None,
        *,
        task: Mapping[str, Any] | None = None,
        seed: int = 0,
        config: Mapping[str, Any] | None = None,
    ) -> Episode:
        """Starts an episode: task ``index`` of ``split``, or the inline ``task``."""
    def score(
        self,
        task: Mapping[str, Any],
        completion: str | Mapping[str, Any],
        *,
        seed: int = 0,
        config: Mapping[str, Any] | None = None,
    ) -> Score:
        """Scores ``completion`` as the first turn on the inline ``task``."""
    def _openrlhf_reward(
        self, queries: list[str], prompts: list[str], labels: list[Any]
    ) -> dict[str, Any]:
        """OpenRLHF's remote reward for one batch, as the reward server answers it."""
    def _time_score(self, task: Mapping[str, Any], completion: str, n: int) -> list[int]:
        """For the benchmark: each of n sandbox score calls made from Rust, in ns."""
    @overload
    def score_batch(
        self,
        tasks: Iterable[Mapping[str, Any]],
        completions: Iterable[str | Mapping[str, Any]],
        *,
        threads: int | None = None,
        seed: int = 0,
        config: Mapping[str, Any] | None = None,
        return_exceptions: Literal[False] = False,
    ) -> list[Score]: ...
    @overload
    def score_batch(
        self,
        tasks: Iterable[Mapping[str, Any]],
        completions: Iterable[str | Mapping[str, Any]],
        *,
        threads: int | None = None,
        seed: int = 0,
        config: Mapping[str, Any] | None = None,
        return_exceptions: bool,
    ) -> list[Score | BaseException]: ...

def openrlhf_response(query: str, prompt: str) -> str:
    """The response in an OpenRLHF query, cut as the reward server cuts it."""

def task_from_label(label: Any, prompt: str) -> dict[str, Any]:
    """A label's inline task: a task object (or its JSON), else
    ``{"answer": label, "question": prompt}``."""

def configure(*, python_runtime: str | None = None) -> bool:
    """Sets where the CPython-for-WASI runtime is, before the first load."""

def pull(
    spec: str,
    *,
    hub: str | None = None,
    locked: bool = False,
    lockfile: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Resolves, downloads, verifies and pins ``owner/name@REQ``."""

def verify(
    path: str | os.PathLike[str],
    *,
    envs: list[str] | None = None,
    package_dirs: list[str] | None = None,
) -> dict[str, Any]:
    """Replays a trajectory file; the report as a dict."""
