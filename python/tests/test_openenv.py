"""`envhub openenv serve` against the real openenv-core client (0.3.0,
GenericEnvClient over WebSocket /ws) and OpenEnv's own conformance checks."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import envhub
from conftest import Server

openenv = pytest.importorskip("openenv", reason="install tests/openenv-client-requirements.txt")
websockets = pytest.importorskip("websockets")
from openenv import GenericEnvClient  # noqa: E402


@pytest.fixture(scope="module")
def tools_server() -> Iterator[Server]:
    s = Server("openenv", "serve", "tools", "--addr", "127.0.0.1:0", "--max-sessions", "4")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def math_server() -> Iterator[Server]:
    s = Server("openenv", "serve", "math", "--addr", "127.0.0.1:0", "--split", "arithmetic-easy")
    yield s
    s.stop()


def test_a_tool_episode_through_the_openenv_client(tools_server: Server) -> None:
    direct = envhub.load("tools").reset("test", 0)
    with GenericEnvClient(base_url=tools_server.url).sync() as env:
        result = env.reset(split="test", index=0, seed=0)
        assert result.reward is None and result.done is False
        assert result.observation["task_id"] == direct.task_id
        assert result.observation["messages"] == direct.messages
        assert result.observation["tools"] == direct.tools
        call = {
            "type": "function",
            "function": {"name": "calculator", "arguments": {"expression": "6 * 80.61 * 0.85"}},
        }
        result = env.step({"tool_calls": [call]})
        want = direct.step({"tool_calls": [call]})
        assert result.observation["messages"] == want.messages and result.done is False
        answer = json.loads(want.messages[0]["content"])["result"]
        # OpenEnv's MCP action form is accepted too; then the final answer.
        mcp = env.step(
            {"type": "call_tool", "tool_name": "calculator", "arguments": {"expression": "1+1"}}
        )
        assert json.loads(mcp.observation["messages"][0]["content"]) == {"result": "2"}
        direct.step(
            {
                "tool_calls": [
                    {
                        "type": "function",
                        "function": {"name": "calculator", "arguments": {"expression": "1+1"}},
                    }
                ]
            }
        )
        final = env.step({"content": answer})
        expected = direct.step(answer)
        assert final.done is True and final.reward == expected.reward >= 1.0
        assert final.observation["components"] == expected.components
        state = env.state()
        assert state["step_count"] == 3 and state["done"] is True and state["task_id"] == "test/0"
        with pytest.raises(RuntimeError, match="EXECUTION_ERROR"):
            env.step({"content": "after the end"})
        with pytest.raises(RuntimeError, match="VALIDATION_ERROR"):
            env.step({"role": "user", "content": "x"})


def test_async_clients_run_sessions_side_by_side(math_server: Server) -> None:
    async def one(i: int) -> float | None:
        async with GenericEnvClient(base_url=math_server.url) as env:
            await env.reset(seed=i)  # the index defaults to the seed
            task = await env.state()
            assert task["task_id"] == f"arithmetic-easy/{i}"
            result = await env.step({"content": "\\boxed{0}"})
            return result.reward

    rewards = asyncio.run(asyncio_gather(*(one(i) for i in range(6))))
    direct = envhub.load("math")
    assert rewards == [
        direct.reset("arithmetic-easy", i).step("\\boxed{0}").reward for i in range(6)
    ]


async def asyncio_gather(*coros: Any) -> list[Any]:
    return list(await asyncio.gather(*coros))


def test_inline_tasks_and_config(math_server: Server) -> None:
    with GenericEnvClient(base_url=math_server.url).sync() as env:
        env.reset(task={"question": "1/2+1/2", "answer": "1"}, config={"weights": {"format": 0.5}})
        result = env.step({"content": "\\boxed{1}"})
        assert result.reward == 1.5 and result.done
        with pytest.raises(RuntimeError, match="VALIDATION_ERROR"):
            env.reset(seed=-1)
        with pytest.raises(RuntimeError, match="unknown_split"):
            env.reset(split="nope")


async def raw_session(url: str, frames: list[str | bytes]) -> list[dict[str, Any]]:
    replies = []
    async with websockets.connect(url.replace("http://", "ws://") + "/ws") as ws:
        for frame in frames:
            await ws.send(frame)
            replies.append(json.loads(await ws.recv()))
    return replies


def test_bad_frames_get_openenv_error_codes_and_the_session_lives(math_server: Server) -> None:
    frames: list[str | bytes] = [
        "{not json",
        json.dumps({"type": "dance"}),
        json.dumps({"type": "step"}),
        json.dumps({"type": "step", "data": {"content": "x"}}),
        json.dumps({"type": "reset", "data": {"task": "not an object"}}),
        json.dumps({"type": "mcp", "data": {"jsonrpc": "2.0", "method": "tools/list", "id": 1}}),
        json.dumps({"type": "reset", "data": {}}),
    ]
    replies = asyncio.run(raw_session(math_server.url, frames))
    codes = [r["data"].get("code") if r["type"] == "error" else r["type"] for r in replies]
    assert codes == [
        "INVALID_JSON",
        "UNKNOWN_TYPE",
        "VALIDATION_ERROR",
        "EXECUTION_ERROR",
        "VALIDATION_ERROR",
        "mcp",
        "observation",
    ]
    assert "reset" in replies[3]["data"]["message"]
    assert replies[5]["data"]["error"]["code"] == -32603


def test_binary_frames_end_the_session(math_server: Server) -> None:
    [reply] = asyncio.run(raw_session(math_server.url, [b"\x00\x01"]))
    assert reply["data"]["code"] == "SESSION_ERROR"


def test_capacity_is_reached_then_freed(tools_server: Server) -> None:
    async def main() -> dict[str, Any]:
        url = tools_server.url.replace("http://", "ws://") + "/ws"
        held = [await websockets.connect(url) for _ in range(4)]
        try:
            async with websockets.connect(url) as extra:
                refused = json.loads(await extra.recv())
                await extra.wait_closed()
        finally:
            for ws in held:
                await ws.close()
        return refused

    refused = asyncio.run(main())
    assert refused["data"]["code"] == "CAPACITY_REACHED"
    with GenericEnvClient(base_url=tools_server.url).sync() as env:
        assert env.reset(split="test", index=1).observation["task_id"] == "test/1"


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_stateless_http_reset_and_step_carry_the_episode_state(math_server: Server) -> None:
    status, reset = http("POST", math_server.url + "/reset", json.dumps({"index": 2}).encode())
    assert status == 200 and reset["done"] is False and reset["reward"] is None
    state = reset["observation"]["envhub_state"]
    status, step = http(
        "POST",
        math_server.url + "/step",
        json.dumps({"action": {"content": "\\boxed{0}"}, "state": state}).encode(),
    )
    assert status == 200 and step["done"] is True
    assert (
        step["reward"] == envhub.load("math").reset("arithmetic-easy", 2).step("\\boxed{0}").reward
    )
    assert http("POST", math_server.url + "/reset")[0] == 200, "no body is a default reset"
    for body, needle in [
        (b'{"action": {"content": "x"}}', "state"),
        (b"{}", "action"),
        (b"[1]", "object"),
        (b"{bad", "JSON"),
    ]:
        status, answer = http("POST", math_server.url + "/step", body)
        assert status == 422 and needle in json.dumps(answer["detail"])
    status, _ = http("POST", math_server.url + "/step", b"x" * (17 << 20))
    assert status == 413
    assert http("GET", math_server.url + "/health") == (200, {"status": "healthy"})


def test_openenv_validate_passes(math_server: Server) -> None:
    """OpenEnv's own checker (openenv/cli/_validation.py, what `openenv
    validate --url` runs): every criterion of a running environment."""
    path = Path(openenv.__file__).parent / "cli" / "_validation.py"
    spec = importlib.util.spec_from_file_location("openenv_validation", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.validate_running_environment(math_server.url)
    assert report["passed"] is True, json.dumps(report, indent=1)
    assert (
        report["summary"]["required_passed_count"] == report["summary"]["required_total_count"] == 6
    )
    status, metadata = http("GET", math_server.url + "/metadata")
    assert status == 200
    assert metadata["name"] == "envhub/math" and metadata["readme_content"]


def test_an_unknown_environment_or_split_fails_to_start() -> None:
    from conftest import cli

    proc = cli("openenv", "serve", "no-such-env", "--addr", "127.0.0.1:0", check=False)
    assert proc.returncode != 0 and "no environment `no-such-env`" in proc.stderr
    proc = cli("openenv", "serve", "math", "--split", "nope", "--addr", "127.0.0.1:0", check=False)
    assert proc.returncode != 0 and "no split `nope`" in proc.stderr


def test_a_huge_frame_closes_that_session_only(math_server: Server) -> None:
    async def main() -> None:
        url = math_server.url.replace("http://", "ws://") + "/ws"
        ws = await websockets.connect(url, max_size=None)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.send(json.dumps({"type": "reset", "data": {"pad": "x" * (17 << 20)}}))
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    asyncio.run(main())
    with GenericEnvClient(base_url=math_server.url).sync() as env:
        assert env.reset(index=1).observation["task_id"] == "arithmetic-easy/1"


def test_resets_without_an_index_walk_through_the_split() -> None:
    server = Server(
        "openenv", "serve", "math", "--addr", "127.0.0.1:0", "--split", "fractions-easy"
    )
    try:
        ids = []
        for _ in range(3):
            with GenericEnvClient(base_url=server.url).sync() as env:
                ids.append(env.reset().observation["task_id"])
        assert ids == ["fractions-easy/0", "fractions-easy/1", "fractions-easy/2"]
    finally:
        server.stop()
