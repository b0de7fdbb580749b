"""Shared fixtures: the repository's built envhub CLI and packages, an
isolated ENVHUB_HOME, a hub on loopback, and helpers to run the CLI."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
if not TARGET.is_absolute():
    TARGET = REPO / TARGET
ENVHUB = TARGET / "release" / "envhub"
PACKAGES = TARGET / "envhub"
HOSTILE_WASM = TARGET / "wasm32-wasip1" / "release" / "envhub-hostile-guest.wasm"

# Before envhub makes its sandbox: caches in a fresh home, first-party
# packages from the build (so names resolve from any directory), no hub.
os.environ["ENVHUB_HOME"] = tempfile.mkdtemp(prefix="envhub-pytest-home-")
os.environ["ENVHUB_PACKAGES"] = str(PACKAGES)
for var in ("ENVHUB_HUB", "ENVHUB_TOKEN", "ENVHUB_LOCKED"):
    os.environ.pop(var, None)

if not ENVHUB.is_file() or not list(PACKAGES.glob("envhub-math-*.envpkg")):
    sys.exit(f"build envhub first (scripts/build-guests.sh): missing {ENVHUB} or {PACKAGES}")


def cli(
    *args: str, cwd: Path | None = None, check: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    """Runs the envhub CLI with the tests' environment."""
    proc = subprocess.run(
        [str(ENVHUB), *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"envhub {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


class Server:
    """A CLI server started on a free loopback port, stopped at the end."""

    def __init__(self, *args: str, **env: str) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="envhub-server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [str(ENVHUB), *args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        import time

        for _ in range(600):
            text = Path(self.log.name).read_text(errors="replace")
            found = re.search(r"http://127\.0\.0\.1:\d+", text)
            if found and "listening on" in text:
                return found.group(0)
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited ({self.proc.returncode}):\n{text}")
            time.sleep(0.05)
        raise AssertionError(f"server did not start:\n{Path(self.log.name).read_text()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def make_package(
    module: bytes, *, name: str = "test/hostile", limits: dict[str, int] | None = None
) -> bytes:
    """A package archive (tar.gz) holding `module` and a manifest with `limits`."""
    lines = [
        "[package]",
        f'name = "{name}"',
        'version = "0.1.0"',
        'description = "a package written by the Python tests"',
        'license = "Apache-2.0"',
    ]
    if limits:
        lines.append("[limits]")
        lines += [f"{k} = {v}" for k, v in limits.items()]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in [
            ("envhub.toml", ("\n".join(lines) + "\n").encode()),
            ("module.wasm", module),
        ]:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


@dataclass
class Hub:
    """An embedded hub with the first-party packages published."""

    url: str
    data: Path
    token: str


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data = tmp_path_factory.mktemp("hub")
    server = Server("serve", "--data", str(data), "--addr", "127.0.0.1:0")
    token = (data / "admin-token").read_text().strip()
    try:
        for pkg in sorted(PACKAGES.glob("envhub-math-*.envpkg")):
            cli("publish", str(pkg), "--hub", server.url, ENVHUB_TOKEN=token)
        yield Hub(server.url, data, token)
    finally:
        server.stop()


def score_with_cli(env: str, lines: list[dict[str, object]], tmp: Path) -> list[dict[str, object]]:
    """`envhub score ENV --batch` on `lines`; one answer per line."""
    batch = tmp / "batch.jsonl"
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = cli("score", env, "--batch", str(batch)).stdout
    return [json.loads(line) for line in out.splitlines()]
