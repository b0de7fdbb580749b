"""TRL adapters: envhub environments as ``GRPOTrainer`` reward functions and
as its multi-turn ``environment_factory``.

Conventions followed (trl 1.16, ``trl/trainer/grpo_trainer.py``):

- reward functions are called with keywords only,
  ``f(prompts=..., completions=..., completion_ids=..., **columns,
  trainer_state=..., log_extra=..., log_metric=...)`` (and
  ``environments=...`` with an ``environment_factory``), where every dataset
  column but ``prompt`` is a list with one entry per completion, and return
  ``list[float | None]`` (``None``: not applicable to that sample); the
  metric name is the function's ``__name__`` (``trl/trainer/utils.py``
  ``get_callable_name``);
- completions are strings for standard datasets and message lists
  (assistant, then tool and assistant turns when tools are used) for
  conversational ones;
- ``AsyncGRPOTrainer`` pickles reward functions and the environment
  factory into a spawned process, so both are picklable objects here, not
  closures;
- ``environment_factory`` is called with no arguments; ``reset(**row)``
  gets the whole dataset row and may return a string that TRL appends to
  the last prompt message; every public method of the instance's class is
  a tool (type hints and a Google-style ``Args:`` section are required by
  ``transformers.utils.get_json_schema``); ``get_reward()`` adds a reward
  column named after the class.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import _adapt
from ._env import Env, Episode
from .errors import BadArgumentError

__all__ = [
    "EnvironmentFactory",
    "RewardFunc",
    "environment_factory",
    "environment_reward",
    "reward_func",
]

# Keyword arguments TRL adds that are not dataset columns.
_TRL_KWARGS = frozenset(
    {"trainer_state", "log_extra", "log_metric", "environments", "completion_ids", "completion"}
)


def _is_column(value: Any, n: int) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and len(value) == n


class RewardFunc:
    """A GRPO reward function scoring each completion in an envhub
    environment, on every core (made by :func:`reward_func`)."""

    def __init__(
        self,
        ref: str,
        *,
        hub: str | None = None,
        config: Mapping[str, Any] | None = None,
        name: str | None = None,
        threads: int | None = None,
        column_map: Mapping[str, str] | None = None,
    ) -> None:
        self.ref = ref
        self.hub = hub
        self.config = dict(config or {})
        self.threads = threads
        self.column_map = dict(column_map or {})
        self.__name__ = name or "envhub_" + ref.split("@")[0].replace("/", "_").replace(".", "_")

    def _env(self) -> Env:
        return _adapt.cached_env(self.ref, hub=self.hub, config=self.config)

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        n = len(completions)
        if len(prompts) != n:
            raise BadArgumentError(f"{len(prompts)} prompts but {n} completions")
        columns = {k: v for k, v in kwargs.items() if k not in _TRL_KWARGS and _is_column(v, n)}
        tasks = [
            _adapt.task_from_row({k: v[i] for k, v in columns.items()}, prompts[i], self.column_map)
            for i in range(n)
        ]
        actions = [_adapt.completion_action(c) for c in completions]
        env = self._env()
        results = env.score_batch(tasks, actions, threads=self.threads, return_exceptions=True)
        return [_adapt.reward_or_raise(r, i) for i, r in enumerate(results)]

    def __repr__(self) -> str:
        return f"envhub.trl.reward_func({self.ref!r}, name={self.__name__!r})"


def reward_func(
    ref: str,
    *,
    hub: str | None = None,
    config: Mapping[str, Any] | None = None,
    name: str | None = None,
    threads: int | None = None,
    **column_map: str,
) -> RewardFunc:
    """A ``GRPOTrainer`` reward function for environment ``ref``.

    Each completion is scored on an inline task built from its dataset row:
    ``column_map`` maps task fields to columns (``reward_func("math",
    answer="solution")``); without it a ``task`` column (dict or JSON) is the
    task, or else every column is a task field and ``question`` defaults to
    the prompt's text (so GSM8K's ``question``/``answer`` work as they are).
    A conversational completion is scored by its last assistant message.
    A completion that makes the environment hit a limit scores 0.0; a bad
    task raises :class:`~envhub.BadTaskError` naming the item.

    >>> GRPOTrainer(model=..., reward_funcs=[envhub.trl.reward_func("math")], train_dataset=ds)
    """
    return RewardFunc(
        ref, hub=hub, config=config, name=name, threads=threads, column_map=column_map
    )


_JSON_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
}


def _tool_method(spec: Mapping[str, Any]) -> Callable[..., str]:
    """A method calling tool ``spec`` (OpenAI function format), with the
    signature, type hints and Google-style docstring TRL reads."""
    function = spec["function"]
    name = function["name"]
    schema = function.get("parameters") or {}
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])

    def call(self: EnvhubEnvironment, **arguments: Any) -> str:
        return self._call_tool(name, arguments)

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    arg_docs = []
    ordered = sorted(properties, key=lambda p: p not in required)
    for prop in ordered:
        prop_schema = properties[prop]
        kind = prop_schema.get("type")
        hint = _JSON_TYPES.get(kind, Any) if isinstance(kind, str) else Any
        if prop not in required:
            hint = hint | None if hint is not Any else Any
        default = inspect.Parameter.empty if prop in required else None
        keyword = inspect.Parameter.KEYWORD_ONLY
        params.append(inspect.Parameter(prop, keyword, default=default, annotation=hint))
        annotations[prop] = hint
        description = prop_schema.get("description") or prop
        if isinstance(prop_schema.get("enum"), list):
            description += f" (choices: {json.dumps(prop_schema['enum'])})"
        arg_docs.append(f"    {prop}: {description}")
    annotations["return"] = str
    call.__name__ = call.__qualname__ = name
    call.__signature__ = inspect.Signature(params, return_annotation=str)  # type: ignore[attr-defined]
    call.__annotations__ = annotations
    description = function.get("description") or f"Call the `{name}` tool."
    args_section = "\n\nArgs:\n" + "\n".join(arg_docs) if arg_docs else ""
    call.__doc__ = f"{description}{args_section}\n\nReturns:\n    The tool's result."
    return call


class EnvhubEnvironment:
    """One TRL rollout's envhub episode. :func:`environment_factory` makes a
    subclass per environment whose public methods are the environment's
    tools; TRL pools instances and calls :meth:`reset` once per rollout."""

    _ref: str = ""
    _hub: str | None = None
    _config: dict[str, Any] = {}  # noqa: RUF012 - replaced per subclass
    _column_map: dict[str, str] = {}  # noqa: RUF012

    def __init__(self) -> None:
        self._episode: Episode | None = None
        self._reward: float | None = None
        self._calls = 0

    def _env(self) -> Env:
        return _adapt.cached_env(self._ref, hub=self._hub, config=self._config)

    def reset(self, **row: Any) -> str | None:
        """Starts an episode from the dataset row: ``split`` and ``index``
        columns name a task of the environment's own, otherwise the row is
        an inline task (as for :func:`reward_func`). Returns the
        environment's opening messages as text, which TRL appends to the
        prompt (an empty user message makes them the whole prompt)."""
        env = self._env()
        seed = int(row.get("seed") or 0)
        if row.get("split") is not None and row.get("index") is not None and not self._column_map:
            episode = env.reset(str(row["split"]), int(row["index"]), seed=seed)
        else:
            columns = {k: v for k, v in row.items() if k not in ("prompt", "seed")}
            task = _adapt.task_from_row(columns, row.get("prompt"), self._column_map)
            episode = env.reset(task=task, seed=seed)
        self._episode, self._reward, self._calls = episode, None, 0
        texts = [_adapt.text_of(m.get("content")) for m in episode.messages]
        return "\n\n".join(t for t in texts if t) or None

    def _call_tool(self, name: str, arguments: Mapping[str, Any]) -> str:
        if self._episode is None:
            return json.dumps({"error": "no episode: reset() first"})
        if self._episode.done:
            return json.dumps({"error": "the episode is over"})
        self._calls += 1
        call = {
            "id": f"call_{self._calls}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(dict(arguments))},
        }
        result = self._episode.step({"role": "assistant", "content": None, "tool_calls": [call]})
        self._reward = result.reward
        answers = [_adapt.text_of(m.get("content")) for m in result.messages]
        return "\n".join(answers)

    def _finish(self, completion: Any) -> float | None:
        """Ends the episode with the rollout's final assistant message (TRL
        does not pass it to the environment) and returns the reward."""
        if self._episode is not None and not self._episode.done:
            action = _adapt.completion_action(completion)
            if isinstance(action, dict):
                action = {k: v for k, v in action.items() if k != "tool_calls"}
            self._reward = self._episode.step(action).reward
        return self._reward

    def get_reward(self) -> float | None:
        """The episode's reward so far (``None`` before the first step)."""
        return self._reward


class EnvironmentFactory:
    """A picklable zero-argument factory of :class:`EnvhubEnvironment`
    instances for one envhub environment (made by :func:`environment_factory`)."""

    def __init__(
        self,
        ref: str,
        *,
        hub: str | None = None,
        config: Mapping[str, Any] | None = None,
        column_map: Mapping[str, str] | None = None,
    ) -> None:
        self.ref, self.hub = ref, hub
        self.config, self.column_map = dict(config or {}), dict(column_map or {})
        self._cls: type[EnvhubEnvironment] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The generated class is made again after unpickling.
        return {"ref": self.ref, "hub": self.hub, "config": self.config, "map": self.column_map}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.ref, self.hub = state["ref"], state["hub"]
        self.config, self.column_map = state["config"], state["map"]
        self._cls = None

    def environment_class(self) -> type[EnvhubEnvironment]:
        """The subclass with this environment's tools as methods."""
        if self._cls is None:
            env = _adapt.cached_env(self.ref, hub=self.hub, config=self.config)
            namespace: dict[str, Any] = {
                "_ref": self.ref,
                "_hub": self.hub,
                "_config": self.config,
                "_column_map": self.column_map,
                "__module__": __name__,
            }
            for tool in env.info.get("tools") or []:
                method = _tool_method(tool)
                if (
                    method.__name__.startswith("_")
                    or method.__name__ in namespace
                    or hasattr(EnvhubEnvironment, method.__name__)
                ):
                    raise BadArgumentError(
                        f"tool `{method.__name__}` cannot be a method (it is private or taken)"
                    )
                namespace[method.__name__] = method
            class_name = "Envhub" + "".join(
                part.capitalize() for part in env.info["name"].replace("/", "_").split("_")
            )
            self._cls = type(class_name, (EnvhubEnvironment,), namespace)
        return self._cls

    def __call__(self) -> EnvhubEnvironment:
        return self.environment_class()()


def environment_factory(
    ref: str,
    *,
    hub: str | None = None,
    config: Mapping[str, Any] | None = None,
    **column_map: str,
) -> EnvironmentFactory:
    """A TRL ``environment_factory`` for multi-turn environment ``ref``: one
    episode per rollout, the environment's tools as methods (TRL renders them
    in the chat template and runs the calls), the reward via
    ``get_reward()``. Pass :func:`environment_reward` as a reward function as
    well to score the rollout's final answer, which TRL does not hand to the
    environment by itself.

    >>> GRPOTrainer(model=..., environment_factory=envhub.trl.environment_factory("tools"),
    ...             reward_funcs=[envhub.trl.environment_reward], train_dataset=ds)
    """
    return EnvironmentFactory(ref, hub=hub, config=config, column_map=column_map)


def environment_reward(
    completions: Sequence[Any], environments: Sequence[Any] | None = None, **kwargs: Any
) -> list[float | None]:
    """A GRPO reward function for :func:`environment_factory` rollouts: steps
    each episode with its completion's final assistant message (if the
    episode is not over yet) and returns the episode's reward."""
    if environments is None:
        raise BadArgumentError(
            "environment_reward needs TRL's `environments` argument: "
            "use it together with environment_factory"
        )
    out: list[float | None] = []
    for env, completion in zip(environments, completions, strict=True):
        out.append(env._finish(completion) if isinstance(env, EnvhubEnvironment) else None)
    return out
