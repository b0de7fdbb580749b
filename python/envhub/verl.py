"""verl adapter: envhub environments as verl's custom reward function.

In a verl config (0.9: ``reward.custom_reward_function``)::

    reward.custom_reward_function.path=pkg://envhub.verl
    reward.custom_reward_function.name=compute_score

Conventions followed (verl 0.9.1,
``verl/experimental/reward_loop/reward_manager/naive.py`` and ``remote.py``;
the legacy ``verl/workers/reward_manager/{naive,batch,prime}.py``):

- the naive, dapo, rate-limited and remote managers call
  ``compute_score(data_source=..., solution_str=..., ground_truth=...,
  extra_info=..., **reward_kwargs)`` with keywords; the legacy prime manager
  calls it positionally in a process pool and needs a number back;
- a float is logged as ``acc``; a dict must hold ``"score"`` and the same
  keys for every sample (verl takes the key set from the first one);
- the legacy batch manager calls ``compute_score_batch(data_sources=...,
  solution_strs=..., ground_truths=..., extra_infos=...)`` and expects a
  list back;
- ``reward_kwargs`` (``+reward.custom_reward_function.reward_kwargs.env=math``)
  override call arguments.

The environment is ``data_source`` when it names one (``"envhub/math"``,
``"envhub/math@^0.1"``, or ``"envhub:REF"`` for any reference), else the
``env`` reward keyword. The task is ``ground_truth`` when it is a task
object (a dict or JSON object string), else ``{"answer": ground_truth,
"question": extra_info["question"]}`` (the question empty when absent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import _adapt, _native
from .errors import BadArgumentError

__all__ = ["compute_score", "compute_score_batch"]


def _env_ref(data_source: Any, env: str | None) -> str:
    if env:
        return env
    source = str(data_source or "")
    if source.startswith("envhub:"):
        return source.removeprefix("envhub:")
    if source.startswith("envhub/"):
        return source
    raise BadArgumentError(
        f"data_source `{source}` is not an envhub environment: set data_source to `envhub/NAME` "
        "(or `envhub:REF`) in the dataset, or pass "
        "+reward.custom_reward_function.reward_kwargs.env=REF"
    )


def _task(ground_truth: Any, extra_info: Mapping[str, Any] | None) -> dict[str, Any]:
    question = extra_info.get("question") if extra_info else None
    return _native.task_from_label(ground_truth, question if isinstance(question, str) else "")


def _result(score: Any, details: bool) -> float | dict[str, float]:
    reward = _adapt.reward_or_raise(score, 0)
    if not details:
        return reward
    # The same keys for every sample: the total and the declared components.
    components = getattr(score, "components", None) or {}
    return {"score": reward, **{f"envhub/{k}": float(v) for k, v in components.items()}}


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    *,
    env: str | None = None,
    hub: str | None = None,
    config: Mapping[str, Any] | None = None,
    details: bool = False,
    **_: Any,
) -> float | dict[str, float]:
    """The reward of ``solution_str`` (the decoded response) for one sample:
    a float, or with ``details=True`` a dict with ``"score"`` and each reward
    component (as ``envhub/NAME``). A completion that makes the environment
    hit a limit scores 0.0; a bad task or environment raises."""
    environment = _adapt.cached_env(_env_ref(data_source, env), hub=hub, config=config)
    results = environment.score_batch(
        [_task(ground_truth, extra_info)], [solution_str], threads=1, return_exceptions=True
    )
    return _result(results[0], details)


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    env: str | None = None,
    hub: str | None = None,
    config: Mapping[str, Any] | None = None,
    details: bool = False,
    threads: int | None = None,
    **_: Any,
) -> list[float | dict[str, float]]:
    """:func:`compute_score` for a whole batch (the legacy batch reward
    manager's plural call), scored on every core; results in input order."""
    n = len(solution_strs)
    if len(data_sources) != n or len(ground_truths) != n:
        raise BadArgumentError(
            f"{len(data_sources)} data_sources, {n} solution_strs and {len(ground_truths)} "
            "ground_truths: give one of each per sample"
        )
    infos = list(extra_infos) if extra_infos is not None else [None] * n
    groups: dict[str, list[int]] = {}
    for i, source in enumerate(data_sources):
        groups.setdefault(_env_ref(source, env), []).append(i)
    out: list[float | dict[str, float]] = [0.0] * n
    for ref, indices in groups.items():
        environment = _adapt.cached_env(ref, hub=hub, config=config)
        tasks = [_task(ground_truths[i], infos[i]) for i in indices]
        results = environment.score_batch(
            tasks, [solution_strs[i] for i in indices], threads=threads, return_exceptions=True
        )
        for i, r in zip(indices, results, strict=True):
            out[i] = _result(r, details)
    return out
