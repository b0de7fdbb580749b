"""The README's "Use from Python" snippets run as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from conftest import REPO, Server


def snippets() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_there_is_a_snippet_per_trainer() -> None:
    found = "\n".join(snippets())
    for needle in [
        "envhub.load",
        "envhub.trl",
        "envhub.verl",
        "envhub.openrlhf",
        "GenericEnvClient",
    ]:
        assert needle in found


@pytest.mark.parametrize("index", range(len(snippets())))
def test_snippet_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = snippets()[index]
    monkeypatch.chdir(tmp_path)
    server = None
    if "127.0.0.1:8000" in code:
        pytest.importorskip("openenv")
        server = Server("openenv", "serve", "tools", "--addr", "127.0.0.1:0")
        code = code.replace("http://127.0.0.1:8000", server.url)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"README snippet {index}", "exec"), {"__name__": "__readme__"})
    finally:
        if server is not None:
            server.stop()
    printed = out.getvalue()
    # A comment after a print says what it prints ("..." stands for anything).
    for line in code.splitlines():
        if line.lstrip().startswith("print(") and "  # " in line:
            claim = line.split("  # ", 1)[1].strip()
            pattern = ".*".join(re.escape(part) for part in claim.split("..."))
            assert re.search(pattern, printed), f"{claim!r} not in {printed!r}"
