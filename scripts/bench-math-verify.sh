#!/usr/bin/env bash
# Our sandboxed math environment against HF math-verify on the same labelled
# cases (sdk/tests/data/math_cases*.jsonl, and any files given), one thread
# each, in one run: agreement per category and throughput.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv/math-verify
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'math-verify==0.9.0'
fi
# Our two labelled case files, plus any files given as arguments (e.g. a
# held-out suite kept outside the repository).
cases=(sdk/tests/data/math_cases.jsonl sdk/tests/data/math_cases_graders.jsonl "$@")
scripts/build-guests.sh >/dev/null
ours=$(cargo bench --quiet -p envhub-tests --bench math_peer -- "${cases[@]}" 2>/dev/null | tail -n 1)
theirs=$("$venv/bin/python" scripts/math_verify_peer.py "${cases[@]}" | tail -n 1)
python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{'category':<28} {'cases':>5}  {'envhub':>7}  {'math-verify':>11}")
for cat, (a, n) in ours["per_category"].items():
    t = theirs["per_category"].get(cat, [0, n])[0]
    print(f"{cat:<28} {n:>5}  {a / n:>7.1%}  {t / n:>11.1%}")
print(f"{'all':<28} {ours['cases']:>5}  {ours['agreement']:>7.1%}  {theirs['agreement']:>11.1%}")
print(f"throughput (one thread): envhub through the sandbox {ours['per_second']:.0f} cases/s, "
      f"math-verify {theirs['per_second']:.1f} cases/s = {ours['per_second'] / theirs['per_second']:.0f}x")
PY
