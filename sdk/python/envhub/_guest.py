"""The driver the host runs: ``prepare`` once per host (imports the
package's ``env`` module into the snapshot every call starts from), then
``serve`` once per call (one request on stdin, one response on stdout)."""

from __future__ import annotations

import json
import sys
from typing import Any

from . import _host
from ._protocol import PROTOCOL_VERSION, EnvError, error, ok
from ._single_turn import Environment

_env: Environment | None = None

# Exit statuses the host reads as typed errors.
STATUS_RECURSION = 4


def _find(module: Any) -> Environment:
    explicit = getattr(module, "ENV", None)
    if isinstance(explicit, Environment):
        return explicit
    found = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Environment) and v.__module__ == module.__name__
    ]
    if len(found) != 1:
        names = ", ".join(sorted(c.__name__ for c in found)) or "none"
        raise TypeError(
            f"{module.__name__}.py must define exactly one envhub.SingleTurn or envhub.Environment "
            f"subclass (found: {names}), or set ENV to an instance"
        )
    return found[0]()


def prepare(module_name: str = "env") -> None:
    """Imports the environment module and makes its environment."""
    global _env
    module = __import__(module_name)
    _env = _find(module)


def _source(req: dict[str, Any]) -> dict[str, Any]:
    split, index, task = req.get("split"), req.get("index"), req.get("task")
    if task is not None and split is None and index is None:
        return {"task": task}
    if split is not None and index is not None and task is None:
        if not isinstance(split, str) or isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise EnvError.bad_request("invalid request: `split` must be a string and `index` a non-negative integer")
        return {"split": split, "index": index}
    if split is not None and index is None and task is None:
        raise EnvError.bad_request("invalid request: field `split` needs field `index`")
    if index is not None and split is None and task is None:
        raise EnvError.bad_request("invalid request: field `index` needs field `split`")
    if task is None:
        raise EnvError.bad_request("invalid request: give either `split` and `index`, or an inline `task`")
    raise EnvError.bad_request("invalid request: give either `split` and `index`, or an inline `task`, not both")


def handle(env: Environment, req: Any) -> dict[str, Any]:
    """The whole protocol for one request, as ``envhub_sdk::guest::handle``."""
    try:
        if not isinstance(req, dict):
            raise EnvError.bad_request("invalid request: not a JSON object")
        if req.get("v") != PROTOCOL_VERSION:
            raise EnvError(
                "unsupported_version",
                f"request is protocol v{req.get('v')}; this environment speaks v{PROTOCOL_VERSION}",
            )
        op = req.get("op")
        if op == "info":
            return ok(env.info())
        if op == "reset":
            config = req.get("config") or {}
            seed = req.get("seed", 0)
            if not isinstance(config, dict):
                raise EnvError.bad_request("invalid request: `config` must be an object")
            return ok(env.reset(_source(req), int(seed), config))
        if op == "step":
            action = req.get("action")
            if not isinstance(action, dict):
                raise EnvError.bad_request("invalid request: `action` must be a message object")
            return ok(env.step(req.get("state"), action))
        if op == "validate":
            return ok(env.validate(_source(req)))
        raise EnvError.bad_request(f"invalid request: unknown op {op!r}")
    except EnvError as e:
        return error(e.kind, e.message)


def serve() -> None:
    """Answers the request on stdin (line 1; line 2 may hold host answers)."""
    lines = sys.stdin.read().split("\n", 1)
    out = sys.stdout
    # What the environment prints goes to stderr: stdout is the response.
    sys.stdout = sys.stderr
    try:
        try:
            request = json.loads(lines[0])
        except ValueError as e:
            response: dict[str, Any] = error("bad_request", f"invalid request: {e}")
        else:
            answers = json.loads(lines[1]) if len(lines) > 1 and lines[1].strip() else []
            _host.load_answers(answers)
            if _env is None:
                raise RuntimeError("the environment was not prepared")
            try:
                response = handle(_env, request)
            except _host.NeedHost:
                response = {"host_calls": _host.asked()}
            except RecursionError:
                raise SystemExit(STATUS_RECURSION) from None
    finally:
        sys.stdout = out
    text = json.dumps(response, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    out.write(text)
    out.flush()
