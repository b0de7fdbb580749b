"""The verl adapter, called as verl 0.9.1's reward managers call it:
keywords (naive/dapo/remote, verl/experimental/reward_loop/reward_manager/),
positionally in a process pool (legacy prime), plural keywords (legacy batch)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

import envhub
import envhub.verl

GSM8K_ROW = {
    "data_source": "envhub/math",
    "reward_model": {"style": "rule", "ground_truth": "72"},
    "extra_info": {"split": "train", "index": 0, "question": "How many clips?"},
}


def test_naive_manager_call() -> None:
    row = GSM8K_ROW
    score = envhub.verl.compute_score(
        data_source=row["data_source"],
        solution_str="48 + 24 = 72 clips.\n#### 72",
        ground_truth=row["reward_model"]["ground_truth"],
        extra_info=dict(row["extra_info"], num_turns=1, rollout_reward_scores={}),
    )
    assert score == 1.0 and isinstance(score, float)
    wrong = envhub.verl.compute_score(
        data_source="envhub/math", solution_str=r"\boxed{71}", ground_truth="72", extra_info=None
    )
    assert wrong == 0.0


def test_details_give_the_same_keys_for_every_sample() -> None:
    a = envhub.verl.compute_score("envhub/math", r"\boxed{1}", "1", None, details=True)
    b = envhub.verl.compute_score("envhub/math", "no answer", "2", None, details=True)
    assert isinstance(a, dict) and isinstance(b, dict)
    assert a.keys() == b.keys() and a["score"] == 1.0 and b["score"] == 0.0
    assert "envhub/correct" in a


def test_the_environment_comes_from_data_source_or_reward_kwargs() -> None:
    task = '{"question": "q", "answer": "5"}'
    assert envhub.verl.compute_score("envhub:math", r"\boxed{5}", task) == 1.0
    assert envhub.verl.compute_score("openai/gsm8k", r"\boxed{5}", "5", env="math") == 1.0
    with pytest.raises(envhub.BadArgumentError, match=r"reward_kwargs\.env"):
        envhub.verl.compute_score("openai/gsm8k", r"\boxed{5}", "5")


def _prime_call(args: tuple[str, str, str, dict[str, object]]) -> float:
    return float(envhub.verl.compute_score(*args))  # positional, as the prime manager calls it


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_prime_manager_calls_positionally_in_a_process_pool(start: str) -> None:
    envhub.load("math")  # loaded in the parent first: a forked child reloads it
    jobs = [
        ("envhub/math", rf"\boxed{{{i}}}", str(i if i % 2 else i + 1), {"index": i})
        for i in range(8)
    ]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(start)) as pool:
        scores = list(pool.map(_prime_call, jobs))
    assert scores == [0.0 if i % 2 == 0 else 1.0 for i in range(8)]


def test_batch_manager_plural_call() -> None:
    n = 50
    scores = envhub.verl.compute_score_batch(
        data_sources=["envhub/math"] * n,
        solution_strs=[rf"\boxed{{{i}}}" for i in range(n)],
        ground_truths=[str(i) for i in range(n)],
        extra_infos=[{"index": i} for i in range(n)],
    )
    assert scores == [1.0] * n
    with pytest.raises(envhub.BadArgumentError, match="one of each"):
        envhub.verl.compute_score_batch(["envhub/math"], ["a", "b"], ["1", "2"])
