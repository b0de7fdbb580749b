"""`envhub reward-server` answers OpenRLHF's remote reward requests
(openrlhf 0.11 utils/agent.py: one sample per POST, many in flight), and
envhub.openrlhf.reward_func serves its `.py` mode."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import envhub.openrlhf
from conftest import Server, cli

CHATML_PROMPT = "<|im_start|>user\nWhat is 6 times 7?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server("reward-server", "--env", "math", "--addr", "127.0.0.1:0")
    yield s
    s.stop()


def post(url: str, body: Any, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def openrlhf_request(prompt: str, response: str, label: str) -> dict[str, list[Any]]:
    # query = prompt + response, special tokens kept (decode with skip_special_tokens=False).
    return {"query": [prompt + response + "<|im_end|>"], "prompts": [prompt], "labels": [label]}


def test_one_sample_per_request_many_in_flight(server: Server) -> None:
    url = server.url + "/get_reward"
    jobs = [(rf"So the answer is \boxed{{{42 if i % 2 else 41}}}.", "42") for i in range(64)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda j: post(url, openrlhf_request(CHATML_PROMPT, *j)), jobs))
    for i, (status, body) in enumerate(answers):
        assert status == 200
        want = 1.0 if i % 2 else 0.0
        assert body["rewards"] == [want] and body["scores"] == [want]
        assert body["extra_logs"]["envhub/correct"] == [want]
        assert set(body["extra_logs"]) == {"envhub/correct", "envhub/format"}


def test_the_prompt_is_stripped_and_labels_may_be_tasks(server: Server) -> None:
    url = server.url + "/get_reward"
    # The prompt holds a number too: scoring the whole query would read it.
    prompt = "<|im_start|>user\nAdd 1000 and 1.<|im_end|>\n<|im_start|>assistant\n"
    status, body = post(url, openrlhf_request(prompt, "1001", "1001"))
    assert (status, body["rewards"]) == (200, [1.0])
    task = json.dumps({"question": "q", "answer": "7"})
    status, body = post(
        url, {"query": ["x 7", "x 8"], "prompts": ["x ", "x "], "labels": [task, task]}
    )
    assert (status, body["rewards"]) == (200, [1.0, 0.0])
    same = envhub.load("math").score({"answer": "1001", "question": prompt}, "1001")
    assert same.reward == 1.0


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"prompts": ["p"], "labels": ["1"]}, "missing field `query`"),
        ({"query": ["p1"], "prompts": ["p"]}, "missing field `labels`"),
        (
            {"query": ["a", "b"], "prompts": ["a"], "labels": ["1", "2"]},
            "2 queries, 1 prompt and 2 labels",
        ),
        ({"query": "a", "prompts": ["a"], "labels": ["1"]}, "`query` must be a list"),
        ({"query": [1], "prompts": ["a"], "labels": ["1"]}, "`query[0]` is not a string"),
        ([1, 2], "must be an object"),
        ({"query": ["x"], "prompts": [""], "labels": [{"question": "no answer"}]}, "sample 0"),
    ],
)
def test_bad_requests_are_400_naming_the_problem(server: Server, body: Any, needle: str) -> None:
    status, answer = post(server.url + "/get_reward", body)
    assert status == 400, answer
    assert needle in answer["error"]["message"]
    assert post(server.url + "/get_reward", openrlhf_request("p", "1", "1"))[0] == 200
    assert server.alive()


def test_malformed_and_huge_bodies(server: Server) -> None:
    status, answer = post(server.url + "/get_reward", None, raw=b"{not json")
    assert status == 400 and "not JSON" in answer["error"]["message"]
    huge = b'{"query": ["' + b"x" * (65 << 20) + b'"]}'
    try:
        status, _ = post(server.url + "/get_reward", None, raw=huge)
    except (ConnectionError, urllib.error.URLError):
        status = 413  # the server may close the connection while we still send
    assert status == 413
    assert post(server.url + "/get_reward", openrlhf_request("p", "1", "1"))[0] == 200


def test_generic_score_endpoint_answers_like_envhub_score(server: Server, tmp_path: Any) -> None:
    from conftest import score_with_cli

    lines = [
        {"task": {"answer": "1/2"}, "completion": r"\boxed{0.5}"},
        {"task": {"answer": "2"}, "completion": "3"},
    ]
    status, answers = post(server.url + "/score", lines)
    assert status == 200
    assert answers == score_with_cli("math", lines, tmp_path)
    status, single = post(server.url + "/score", lines[0])
    assert status == 200 and single == answers[0]


def test_an_unknown_environment_fails_to_start() -> None:
    proc = cli("reward-server", "--env", "no-such-env", "--addr", "127.0.0.1:0", check=False)
    assert proc.returncode != 0 and "no environment `no-such-env`" in proc.stderr


def test_the_python_reward_func_for_openrlhf_py_urls() -> None:
    # OpenRLHF calls reward_func(queries, prompts, labels) positionally, lists of one.
    query = CHATML_PROMPT + r"\boxed{42}<|im_end|>"
    out = envhub.openrlhf.reward_func([query], [CHATML_PROMPT], ["42"])
    logs = {"envhub/correct": [1.0], "envhub/format": [1.0]}
    assert out == {"rewards": [1.0], "scores": [1.0], "extra_logs": logs}
    assert envhub.openrlhf.split_response("abc", "zz") == "abc"
    assert envhub.openrlhf.split_response("p ok <|im_end|>\n<|endoftext|>", "p ") == "ok "
