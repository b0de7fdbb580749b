"""Hub references from Python resolve, verify and pin exactly as `envhub
pull` does; trajectories verify as `envhub verify` does."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import envhub
from conftest import Hub, cli


def test_hub_references_are_pulled_verified_and_locked(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = envhub.load("envhub/math@^0.1", hub=hub.url)
    lock = (tmp_path / "envhub.lock").read_text()
    assert 'name = "envhub/math"' in lock and env.digest in lock and hub.url in lock
    # The CLI reads the same lockfile and resolves to the same digest.
    info = json.loads(cli("info", "envhub/math@^0.1", "--json", cwd=tmp_path).stdout)
    assert info["digest"] == env.digest
    # Locked: only the pinned digest, even with the hub gone.
    locked = envhub.load("envhub/math@^0.1", hub="http://127.0.0.1:1", locked=True)
    assert locked.digest == env.digest
    with pytest.raises(envhub.NotFoundError, match="--locked"):
        envhub.load("envhub/tools@^0.1", hub=hub.url, locked=True)
    # A bare first-party name falls back to envhub/NAME on the hub.
    monkeypatch.setenv("ENVHUB_PACKAGES", str(tmp_path / "none"))
    monkeypatch.setenv("ENVHUB_HUB", hub.url)
    assert envhub.load("math", lockfile=tmp_path / "other.lock").digest == env.digest


def test_pull_reports_the_resolution(hub: Hub, tmp_path: Path) -> None:
    lockfile = tmp_path / "pinned.lock"
    pulled = envhub.pull("envhub/math@0.1", hub=hub.url, lockfile=lockfile)
    assert (pulled.name, pulled.source) == ("envhub/math", hub.url)
    assert pulled.digest.startswith("sha256:") and Path(pulled.path).is_file()
    assert not pulled.from_lockfile
    again = envhub.pull("envhub/math@0.1", hub=hub.url, lockfile=lockfile)
    assert again.from_lockfile and again.digest == pulled.digest
    with pytest.raises(envhub.NotFoundError, match="no version of envhub/math"):
        envhub.pull("envhub/math@^9", hub=hub.url, lockfile=lockfile)
    with pytest.raises(envhub.NotFoundError, match="not on"):
        envhub.pull("nobody/nothing", hub=hub.url, lockfile=lockfile)
    with pytest.raises(envhub.EnvhubError, match="semver"):
        envhub.pull("envhub/math@not-a-version", hub=hub.url, lockfile=lockfile)


def test_a_tampered_download_is_a_digest_mismatch(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh home, so nothing is cached yet; the blob on the hub is altered.
    monkeypatch.setenv("ENVHUB_HOME", str(tmp_path / "home"))
    digest = envhub.pull("envhub/math", hub=hub.url, lockfile=tmp_path / "a.lock").digest
    hex_ = digest.removeprefix("sha256:")
    blob = hub.data / "blobs" / "sha256" / hex_[:2] / hex_
    original = blob.read_bytes()
    try:
        blob.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        monkeypatch.setenv("ENVHUB_HOME", str(tmp_path / "home2"))
        with pytest.raises(envhub.DigestMismatchError) as err:
            envhub.pull("envhub/math", hub=hub.url, lockfile=tmp_path / "b.lock")
        assert err.value.kind == "digest_mismatch" and "nothing was run" in str(err.value)
        assert not (tmp_path / "home2" / "packages" / "sha256" / f"{hex_}.envpkg").exists()
    finally:
        blob.write_bytes(original)


class _Policy(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that answers every chat with one boxed number."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        message = {"role": "assistant", "content": "The answer is \\boxed{4}"}
        self._send(
            {
                "id": "x",
                "object": "chat.completion",
                "model": "scripted",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
        )


@pytest.fixture
def policy() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Policy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_verify_replays_trajectories_as_the_cli_does(tmp_path: Path, policy: str) -> None:
    out = tmp_path / "trajectories.jsonl"
    cli(
        "run",
        "math",
        "--policy",
        policy,
        "--tasks",
        "3",
        "--group-size",
        "2",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    report = envhub.verify(out)
    assert report.ok and report.trajectories == report.verified == 6
    lines = out.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["reward"]["total"] = edited["reward"]["total"] + 1e-12
    lines[1] = json.dumps(edited)
    bad = tmp_path / "edited.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    report = envhub.verify(bad)
    assert not report.ok and report.verified == 5
    assert [(m["line"], m["kind"]) for m in report.mismatches] == [(2, "reward_mismatch")]
    cli_report = json.loads(cli("verify", str(bad), "--json", check=False).stdout)
    assert cli_report["mismatches"] == report.mismatches
    with pytest.raises(envhub.NotFoundError):
        envhub.verify(tmp_path / "absent.jsonl")
