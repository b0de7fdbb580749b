"""The TRL adapters, called exactly as trl 1.16's GRPOTrainer calls reward
functions and environment factories (trl/trainer/grpo_trainer.py)."""

from __future__ import annotations

import inspect
import json
import pickle

import pytest

import envhub
import envhub.trl


def trl_call(func, prompts, completions, **columns):  # type: ignore[no-untyped-def]
    """What GRPOTrainer._calculate_rewards passes: keywords only, every
    non-prompt column as a per-completion list, plus the trainer's extras."""
    logged: dict[str, list[object]] = {}
    return func(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1, 2, 3] for _ in completions],
        **columns,
        trainer_state=object(),
        log_extra=lambda column, values: logged.setdefault(column, values),
        log_metric=lambda name, value: logged.setdefault(name, [value]),
    )


def test_reward_func_on_a_standard_dataset() -> None:
    f = envhub.trl.reward_func("math")
    assert f.__name__ == "envhub_math"
    prompts = ["What is 2+2?", "What is 3+3?"] * 2  # GRPO repeats each prompt G times
    completions = [r"\boxed{4}", r"\boxed{6}", "5", r"so \boxed{7}"]
    rewards = trl_call(f, prompts, completions, answer=["4", "6", "4", "6"])
    assert rewards == [1.0, 1.0, 0.0, 0.0]
    # The same as scoring each one directly.
    env = envhub.load("math")
    direct = [
        env.score({"question": p, "answer": a}, c).reward
        for p, a, c in zip(prompts, ["4", "6", "4", "6"], completions, strict=True)
    ]
    assert rewards == direct


def test_reward_func_on_a_conversational_dataset_scores_the_last_assistant_turn() -> None:
    f = envhub.trl.reward_func("math", name="correctness")
    assert f.__name__ == "correctness"
    prompt = [{"role": "system", "content": "Box it."}, {"role": "user", "content": "2+2?"}]
    multi_turn = [
        {
            "role": "assistant",
            "content": "thinking",
            "tool_calls": [
                {"type": "function", "function": {"name": "calc", "arguments": {"e": "2+2"}}}
            ],
        },
        {"role": "tool", "name": "calc", "content": "4"},
        {"role": "assistant", "content": r"The answer is \boxed{4}"},
    ]
    completions = [
        [{"role": "assistant", "content": r"\boxed{4}"}],
        multi_turn,
        [{"role": "assistant", "content": [{"type": "text", "text": r"\boxed{5}"}]}],
    ]
    rewards = trl_call(f, [prompt] * 3, completions, answer=["4"] * 3)
    assert rewards == [1.0, 1.0, 0.0]


def test_column_maps_and_task_columns() -> None:
    mapped = envhub.trl.reward_func("math", answer="solution")
    assert trl_call(mapped, ["q"], [r"\boxed{3}"], solution=["3"], other=["x"]) == [1.0]
    with pytest.raises(envhub.BadArgumentError, match="column `solution`"):
        trl_call(mapped, ["q"], ["3"], answer=["3"])
    from_task = envhub.trl.reward_func("math")
    tasks = [json.dumps({"question": "q", "answer": "9"}), {"answer": "8"}]
    assert trl_call(from_task, ["q", "q"], [r"\boxed{9}", r"\boxed{9}"], task=tasks) == [1.0, 0.0]
    with pytest.raises(envhub.BadTaskError, match="answer"):
        trl_call(from_task, ["q"], ["1"], question=["no answer column"])


def test_reward_funcs_are_picklable_for_async_grpo() -> None:
    f = envhub.trl.reward_func("math", answer="answer")
    g = pickle.loads(pickle.dumps(f))
    assert g.__name__ == f.__name__
    assert trl_call(g, ["q"], [r"\boxed{1}"], answer=["1"]) == [1.0]


def tool_methods(cls: type) -> dict[str, object]:
    """How GRPOTrainer finds an environment's tools: every public function
    of the class except reset and get_reward."""
    return {
        name: fn
        for name, fn in inspect.getmembers(cls, predicate=inspect.isfunction)
        if not name.startswith("_") and name not in ("reset", "get_reward")
    }


def test_environment_factory_exposes_the_tools_with_schemas_trl_can_read() -> None:
    factory = envhub.trl.environment_factory("tools")
    instance = factory()  # TRL calls the factory with no arguments
    tools = tool_methods(type(instance))
    info_tools = {t["function"]["name"]: t for t in envhub.load("tools").info["tools"]}
    assert set(tools) == set(info_tools)
    transformers = pytest.importorskip("transformers.utils")
    for name, method in tools.items():
        bound = getattr(instance, name)
        schema = transformers.get_json_schema(bound)  # what apply_chat_template(tools=...) calls
        assert schema["function"]["name"] == name
        want = info_tools[name]["function"]["parameters"]
        assert set(schema["function"]["parameters"].get("properties", {})) == set(
            want.get("properties", {})
        )
        assert set(schema["function"]["parameters"].get("required", [])) == set(
            want.get("required", [])
        )
        assert inspect.getdoc(method)


def test_an_environment_factory_episode_scores_like_a_direct_one() -> None:
    factory = pickle.loads(pickle.dumps(envhub.trl.environment_factory("tools")))
    env = factory()
    # A dataset row naming a task of the environment's own (and TRL's prompt column).
    opening = env.reset(prompt=[{"role": "user", "content": ""}], split="test", index=0)
    assert opening and "customer" in opening.lower()
    assert env.get_reward() is None
    result = env.calculator(expression="6 * 80.61 * 0.85")  # type: ignore[attr-defined]
    assert json.loads(result)["result"]
    # The final answer is not a tool call: environment_reward steps it.
    direct = envhub.load("tools").reset("test", 0)
    call = {
        "role": "assistant",
        "tool_calls": [
            {
                "type": "function",
                "function": {"name": "calculator", "arguments": {"expression": "6 * 80.61 * 0.85"}},
            }
        ],
    }
    answer = json.loads(direct.step(call).messages[0]["content"])["result"]
    final = [{"role": "assistant", "content": answer}]
    want = direct.step(final[0]).reward
    assert want >= 1.0, "the right total earns the success reward"
    assert envhub.trl.environment_reward(completions=[final], environments=[env]) == [want]
    assert env.get_reward() == want
    with pytest.raises(envhub.BadArgumentError, match="environments"):
        envhub.trl.environment_reward(completions=[final])
