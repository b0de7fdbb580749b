"""Python environments from the trainer's side: a scaffold from
``envhub new --python`` builds, passes its own tests through this package
(the sandbox, as trainers run it) and is lint- and type-clean; first-party
``envhub/reasoning`` loads by name and scores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import envhub
from conftest import REPO, cli

BIN = Path(sys.executable).parent


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(args), cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_a_scaffold_builds_passes_its_own_tests_and_is_lint_and_type_clean(
    tmp_path: Path,
) -> None:
    cli("new", "--python", "alice/scaffold", cwd=tmp_path)
    env_dir = tmp_path / "scaffold"
    cli("build", cwd=env_dir)
    cli("test", cwd=env_dir)
    tests = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=env_dir)
    assert "3 passed" in tests.stdout, tests.stdout
    # Clean under a user's settings (envhub is not first-party there).
    ruff = [str(BIN / "ruff"), "--isolated", "--line-length", "120"]
    run(*ruff[:1], "check", *ruff[1:], "--select", "E,F,W,I,B,UP,RUF", ".", cwd=env_dir)
    run(*ruff[:1], "format", *ruff[1:], "--check", ".", cwd=env_dir)
    # Type-checked against the guest SDK the package vendors.
    run(str(BIN / "mypy"), "--strict", "env.py", cwd=env_dir, MYPYPATH=str(REPO / "sdk" / "python"))

    env = envhub.load(str(env_dir))
    assert env.info["name"] == "alice/scaffold"
    with pytest.raises(envhub.BadTaskError, match="non-empty string"):
        env.score({"word": ""}, "x")


def test_reasoning_loads_by_name_and_grades_each_family_exactly() -> None:
    env = envhub.load("reasoning")
    families = [s for s in env.info["splits"] if s not in ("train", "test")]
    assert len(families) >= 10, families
    task = {"family": "countdown", "numbers": [3, 7, 8, 25], "target": 199}
    assert env.score(task, "so \\boxed{7*25 + 3*8}").reward == 1.0
    assert env.score(task, "so \\boxed{8*25 - 1}").reward == 0.0  # 1 is not given
    for family in families:
        episode = env.reset(split=family, index=3, config={"level": 4})
        assert episode.messages[-1]["content"], family
        # A wrong answer earns nothing, whatever the family.
        assert episode.step("\\boxed{no}").reward == 0.0, family
    with pytest.raises(envhub.BadArgumentError, match="level"):
        env.reset(split="countdown", index=0, config={"level": 9})
