"""The two kinds of environment, mirroring the Rust sdk: :class:`Environment`
(the protocol itself: info, reset, step, validate with JSON state) and
:class:`SingleTurn` (a prompt and one scored answer, with the state, reward
weights and ``validate`` handled)."""

from __future__ import annotations

from typing import Any, ClassVar

from ._protocol import EnvError, inline_id, message, text_of
from ._rng import Rng


class Environment:
    """A multi-turn environment: implement :meth:`info`, :meth:`reset` and
    :meth:`step` (and optionally :meth:`validate`) exactly as the protocol
    defines them. Every method must be a pure function of its arguments:
    what spans turns travels in ``state``."""

    def info(self) -> dict[str, Any]:
        """``{"name", "version", "description", "splits", "max_turns",
        "tools", "reward_components": [{"name", "weight"}], "capabilities"}``."""
        raise NotImplementedError

    def reset(self, task: dict[str, Any], seed: int, config: dict[str, Any]) -> dict[str, Any]:
        """Starts an episode. ``task`` is ``{"split", "index"}`` or
        ``{"task": {...}}`` (inline). Returns ``{"task_id", "messages",
        "tools", "state"}``."""
        raise NotImplementedError

    def step(self, state: Any, action: dict[str, Any]) -> dict[str, Any]:
        """Applies an assistant turn. Returns ``{"messages", "done",
        "reward": {"total", "components"}, "metrics", "state"}``."""
        raise NotImplementedError

    def validate(self, task: dict[str, Any]) -> dict[str, Any]:
        """``{"actions": [assistant messages]}`` that earn full reward."""
        raise EnvError("unsupported", "this environment has no reference actions")


def weights(components: dict[str, float], config: dict[str, Any]) -> dict[str, float]:
    """Each component's weight: its default, replaced by ``config["weights"]``
    where given (as the Rust sdk's ``reward::weights``)."""
    result = dict(components)
    overrides = config.get("weights")
    if overrides is None:
        return result
    if not isinstance(overrides, dict):
        raise EnvError.bad_request("config.weights must be an object of numbers")
    for name, w in overrides.items():
        if name not in result:
            known = ", ".join(components)
            raise EnvError.bad_request(f"config.weights names unknown component `{name}`; components are: {known}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w != w or w in (float("inf"), float("-inf")):
            raise EnvError.bad_request(f"config.weights.{name} must be a finite number")
        result[name] = float(w)
    return result


def weighted_total(weights_: dict[str, float], components: dict[str, float]) -> float:
    """``sum(weight * component)`` in component-name order (missing ones count 0)."""
    total = 0.0
    for name in sorted(weights_):
        total += weights_[name] * float(components.get(name, 0.0))
    return total


class SingleTurn(Environment):
    """A prompt-and-answer environment. Set the class attributes and
    implement :meth:`task`, :meth:`prompt` and :meth:`score` (and
    :meth:`reference` for ``envhub test``).

    ``self.config`` holds the episode's reset config (e.g. ``{"level": 3}``)
    while :meth:`task` and :meth:`prompt` run; reward weights are overridden
    per episode by ``{"weights": {...}}``.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = ""
    splits: ClassVar[dict[str, int | None]] = {}
    components: ClassVar[dict[str, float]] = {}
    capabilities: ClassVar[list[str]] = []
    config: dict[str, Any] = {}  # noqa: RUF012 - set per call

    def task(self, split: str, index: int, rng: Rng) -> dict[str, Any]:
        """Task ``index`` of ``split``; ``rng`` is the task's own seeded stream."""
        raise NotImplementedError

    def inline_task(self, task: Any) -> dict[str, Any]:
        """Checks an inline task (raise :class:`EnvError` ``invalid_task``); the
        default accepts any object."""
        if not isinstance(task, dict):
            raise EnvError.invalid_task("an inline task is a JSON object")
        return task

    def task_id(self, task: dict[str, Any]) -> str:
        """A stable id; the default is the split and index, or a hash of an inline task."""
        where = task.get("_envhub_source")
        if isinstance(where, str):
            return where
        return inline_id({k: v for k, v in task.items() if k != "_envhub_source"})

    def prompt(self, task: dict[str, Any]) -> str | list[dict[str, Any]]:
        """The opening messages, or one user message as a string."""
        raise NotImplementedError

    def score(
        self, task: dict[str, Any], completion: str
    ) -> dict[str, float] | tuple[dict[str, float], dict[str, Any]]:
        """Each component's value (and optionally metrics) for ``completion``."""
        raise NotImplementedError

    def reference(self, task: dict[str, Any]) -> str | None:
        """A completion that earns full reward, if any."""
        return None

    # The protocol, served from the methods above.

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "splits": dict(self.splits),
            "max_turns": 1,
            "tools": [],
            "reward_components": [{"name": n, "weight": float(w)} for n, w in self.components.items()],
            "capabilities": list(self.capabilities),
        }

    def _load(self, source: dict[str, Any]) -> dict[str, Any]:
        if "task" in source:
            task = dict(self.inline_task(source["task"]))
            task.pop("_envhub_source", None)
            return task
        split, index = source["split"], source["index"]
        if split not in self.splits:
            raise EnvError("unknown_split", f"no split `{split}`; splits are: {', '.join(self.splits)}")
        size = self.splits[split]
        if size is not None and index >= size:
            raise EnvError("index_out_of_range", f"split `{split}` has {size} tasks; index {index} is out of range")
        task = dict(self.task(split, index, Rng.for_task(split, index)))
        task["_envhub_source"] = f"{split}/{index}"
        return task

    def _prompt_messages(self, task: dict[str, Any]) -> list[dict[str, Any]]:
        visible = {k: v for k, v in task.items() if k != "_envhub_source"}
        p = self.prompt(visible)
        return [message("user", p)] if isinstance(p, str) else list(p)

    def reset(self, task: dict[str, Any], seed: int, config: dict[str, Any]) -> dict[str, Any]:
        self.config = config
        loaded = self._load(task)
        w = weights(self.components, config)
        return {
            "task_id": self.task_id(loaded),
            "messages": self._prompt_messages(loaded),
            "tools": [],
            "state": {"task": loaded, "weights": w},
        }

    def step(self, state: Any, action: dict[str, Any]) -> dict[str, Any]:
        self.config = {}
        if action.get("role") != "assistant":
            raise EnvError.invalid_action("the action must be an assistant message")
        if not isinstance(state, dict):
            raise EnvError.invalid_state("state must be the object returned by reset")
        if state.get("done") is True:
            raise EnvError("episode_over", "this single-turn episode is already over")
        task, w = state.get("task"), state.get("weights")
        if not isinstance(task, dict) or not isinstance(w, dict):
            raise EnvError.invalid_state("state must hold the `task` and `weights` reset gave")
        visible = {k: v for k, v in task.items() if k != "_envhub_source"}
        scored = self.score(visible, text_of(action))
        components, metrics = scored if isinstance(scored, tuple) else (scored, {})
        components = {k: float(v) for k, v in sorted(components.items())}
        return {
            "messages": [],
            "done": True,
            "reward": {"total": weighted_total(w, components), "components": components},
            "metrics": dict(metrics),
            "state": {**state, "done": True},
        }

    def validate(self, task: dict[str, Any]) -> dict[str, Any]:
        self.config = {}
        loaded = self._load(task)
        answer = self.reference({k: v for k, v in loaded.items() if k != "_envhub_source"})
        if answer is None:
            raise EnvError("unsupported", "this task has no reference answer")
        return {"actions": [{"role": "assistant", "content": answer}]}
