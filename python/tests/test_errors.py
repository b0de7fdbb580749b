"""Every failure is a typed exception carrying the CLI's message and kind;
the sandbox serves on after each."""

from __future__ import annotations

from pathlib import Path

import pytest

import envhub
from conftest import HOSTILE_WASM, cli, make_package


def hostile(tmp_path: Path, **limits: int) -> envhub.Env:
    path = tmp_path / f"hostile-{abs(hash(tuple(sorted(limits.items()))))}.envpkg"
    path.write_bytes(make_package(HOSTILE_WASM.read_bytes(), limits=limits or None))
    return envhub.load(path)


@pytest.mark.parametrize(
    ("mode", "limits", "error", "kind"),
    [
        ("loop", {"fuel": 100_000_000}, envhub.OutOfFuelError, "out_of_fuel"),
        ("loop", {"fuel": 1_000_000_000_000, "deadline_ms": 200}, envhub.DeadlineError, "deadline"),
        ("alloc", {}, envhub.MemoryLimitError, "memory_limit"),
        ("recurse", {}, envhub.StackOverflowError, "stack_overflow"),
        ("flood", {}, envhub.OutputLimitError, "output_too_large"),
        ("panic", {}, envhub.GuestError, "guest_panic"),
        ("exit", {}, envhub.GuestError, "guest_exit"),
        ("garbage", {}, envhub.GuestError, "malformed_response"),
    ],
)
def test_sandbox_failures_are_typed(
    tmp_path: Path, mode: str, limits: dict[str, int], error: type[envhub.EnvhubError], kind: str
) -> None:
    env = hostile(tmp_path, **limits)
    with pytest.raises(error) as caught:
        env.score({"mode": mode}, "x")
    assert caught.value.kind == kind
    limits_hit = {"out_of_fuel", "deadline", "memory_limit", "stack_overflow", "output_too_large"}
    assert isinstance(caught.value, envhub.LimitError) == (kind in limits_hit)
    # The host serves on: a well-behaved call right after works.
    assert envhub.load("math").score({"answer": "1"}, "1").reward == 1.0


def test_bad_tasks_and_actions_are_value_errors() -> None:
    math = envhub.load("math")
    with pytest.raises(envhub.BadTaskError) as bad_task:
        math.score({"question": "no answer"}, "1")
    assert bad_task.value.kind == "invalid_task" and isinstance(bad_task.value, ValueError)
    with pytest.raises(envhub.BadTaskError) as unknown_split:
        math.reset("no-such-split", 0)
    assert unknown_split.value.kind == "unknown_split"
    assert "arithmetic-easy" in str(unknown_split.value), "the message lists the splits"
    with pytest.raises(envhub.BadArgumentError, match="assistant"):
        math.score({"answer": "1"}, {"role": "user", "content": "1"})
    with pytest.raises(envhub.BadArgumentError, match="task"):
        math.reset()
    with pytest.raises(envhub.BadArgumentError):
        math.score({"answer": object()}, "1")  # type: ignore[dict-item]


def test_the_message_is_the_clis(tmp_path: Path) -> None:
    proc = cli("score", "math", "--task", '{"question": "x"}', "--completion", "1", check=False)
    assert proc.returncode == 1, "a refused task fails the command"
    line = proc.stdout.strip()
    with pytest.raises(envhub.BadTaskError) as err:
        envhub.load("math").score({"question": "x"}, "1")
    import json

    assert json.loads(line)["error"]["message"] in str(err.value)


def test_unknown_references_say_what_was_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(envhub.NotFoundError) as err:
        envhub.load("no-such-env")
    text = str(err.value)
    assert err.value.kind == "not_found" and isinstance(err.value, LookupError)
    for part in ["no-such-env", "environments/no-such-env", "ENVHUB_HUB"]:
        assert part in text, text
    with pytest.raises(envhub.NotFoundError):
        envhub.load(tmp_path / "missing.envpkg")


def test_corrupt_packages_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.envpkg"
    bad.write_bytes(b"not a package")
    with pytest.raises(envhub.EnvhubError, match="package"):
        envhub.load(bad)
    wasm = tmp_path / "bad.wasm"
    wasm.write_bytes(b"\0asm garbage")
    with pytest.raises(envhub.EnvhubError) as err:
        envhub.load(wasm)
    assert err.value.kind == "invalid_module"


def test_an_unreachable_hub_is_a_hub_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(envhub.HubError) as err:
        envhub.load("envhub/math@^0.1", hub="http://127.0.0.1:1")
    assert "cannot reach the hub at http://127.0.0.1:1" in str(err.value)
    with pytest.raises(envhub.HubError, match="which hub"):
        envhub.pull("envhub/math")
