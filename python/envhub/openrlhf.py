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

import os
from collections.abc import Sequence
from typing import Any

from . import _adapt, _native

__all__ = ["reward_func", "split_response"]


def split_response(query: str, prompt: str) -> str:
    """The response in a query (prompt followed by response): the text after
    the prompt (or the whole query when it does not start with the prompt),
    without trailing end-of-turn tokens, as ``envhub reward-server`` cuts it."""
    return _native.openrlhf_response(query, prompt)


def reward_func(
    queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **_: Any
) -> dict[str, Any]:
    """OpenRLHF's ``.py`` remote reward: scores each response in the
    environment ``$ENVHUB_REWARD_ENV`` (default ``math``), exactly as
    ``envhub reward-server`` answers ``/get_reward``: each label is the
    sample's task (a task object or its JSON) or its reference answer; a
    completion that makes the environment hit a limit scores 0."""
    env = _adapt.cached_env(os.environ.get("ENVHUB_REWARD_ENV", "math"))
    return env._openrlhf_reward(list(queries), list(prompts), list(labels))
