#!/usr/bin/env bash
# Our sandboxed math environment against HF math-verify on the same labelled
# cases (sdk/tests/data/math_cases.jsonl), one thread each, in one run.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv/math-verify
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'math-verify==0.9.0'
fi
cases=sdk/tests/data/math_cases.jsonl
ours=$(cargo bench --quiet -p envhub-tests --bench math_peer 2>/dev/null | tail -n 1)
theirs=$("$venv/bin/python" scripts/math_verify_peer.py "$cases" | tail -n 1)
echo "$ours"
echo "$theirs"
python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"throughput: envhub {ours['per_second']:.0f}/s vs math-verify {theirs['per_second']:.1f}/s "
      f"= {ours['per_second'] / theirs['per_second']:.0f}x")
print(f"agreement with labels: envhub {ours['agreement']:.4f}, math-verify {theirs['agreement']:.4f}")
PY
