"""The peer figure for tests/benches/python_env.rs: reset + step latency of a
Python environment run natively (no sandbox) with the guest SDK, requests and
responses through JSON as the sandboxed driver does.

    PYTHONPATH=sdk/python python3 scripts/python_env_native.py ENV_DIR SPLIT N [CONFIG_JSON]

Prints one JSON object: median and p99 in milliseconds, and the version.
"""

import json
import sys
import time
from typing import Any

from envhub._guest import _find, handle


def call(env: Any, request: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = json.loads(json.dumps(handle(env, json.loads(json.dumps(request)))))
    if "ok" not in response:
        raise SystemExit(f"{request['op']} failed: {response}")
    return response["ok"]


def main() -> None:
    env_dir, split, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    config = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    sys.path.insert(0, env_dir)
    env = _find(__import__("env"))
    samples = []
    for i in range(n + 50):
        source = {"split": split, "index": i}
        action = call(env, {"v": 1, "op": "validate", **source})["actions"][0]
        t = time.perf_counter()
        reset = call(env, {"v": 1, "op": "reset", **source, "seed": 0, "config": config})
        call(env, {"v": 1, "op": "step", "state": reset["state"], "action": action})
        if i >= 50:
            samples.append(time.perf_counter() - t)
    samples.sort()
    print(
        json.dumps(
            {
                "median_ms": samples[len(samples) // 2] * 1e3,
                "p99_ms": samples[min(len(samples) - 1, len(samples) * 99 // 100)] * 1e3,
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
