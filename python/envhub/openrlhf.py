"""OpenRLHF adapter: a remote reward function.

OpenRLHF (0.11, ``--reward.remote_url``) POSTs ``{"query": [...],
"prompts": [...], "labels": [...]}`` and reads ``rewards``, ``scores`` and
``extra_logs``; ``query`` is the prompt followed by the response, special
tokens kept. Two ways to serve it:

- ``envhub reward-server --env math --addr 127.0.0.1:5000`` (Rust, all
  cores), then ``--reward.remote_url http://127.0.0.1:5000/get_reward``;
- a ``.py`` URL: ``--reward.remote_url /path/to/rewards.py`` whose
  ``reward_func`` is this module's (``from envhub.openrlhf import
  reward_func``), with the environment in ``$ENVHUB_REWARD_ENV`` (default
  ``math``).

Each label is the task: a JSON task object, or a reference answer (then the
task is ``{"answer": label, "question": prompt}``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from . import _adapt
from .errors import BadArgumentError

__all__ = ["reward_func", "split_response", "task_from_label"]


def split_response(query: str, prompt: str) -> str:
    """The response in a query (prompt followed by response): the text after
    the prompt, or the whole query when it does not start with the prompt."""
    return query[len(prompt) :] if query.startswith(prompt) else query


def task_from_label(label: Any, prompt: str) -> dict[str, Any]:
    """The inline task of one sample."""
    if isinstance(label, dict):
        return label
    if isinstance(label, str) and label.lstrip().startswith("{"):
        try:
            parsed = json.loads(label)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"answer": label if isinstance(label, str) else json.dumps(label), "question": prompt}


def reward_func(
    queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **_: Any
) -> dict[str, Any]:
    """OpenRLHF's ``.py`` remote reward: scores each response in the
    environment ``$ENVHUB_REWARD_ENV`` (default ``math``)."""
    n = len(queries)
    if len(prompts) != n or len(labels) != n:
        raise BadArgumentError(
            f"{n} queries, {len(prompts)} prompts and {len(labels)} labels: give one of each"
        )
    env = _adapt.cached_env(os.environ.get("ENVHUB_REWARD_ENV", "math"))
    tasks = [task_from_label(label, p) for label, p in zip(labels, prompts, strict=True)]
    responses = [split_response(q, p) for q, p in zip(queries, prompts, strict=True)]
    results = env.score_batch(tasks, responses, return_exceptions=True)
    rewards = [_adapt.reward_or_raise(r, i) for i, r in enumerate(results)]
    return {"rewards": rewards, "scores": rewards, "extra_logs": {}}
