#!/usr/bin/env bash
# The Python package against the CLI in one run: score_batch vs `envhub score
# --batch` (10k math lines), Env.score's overhead above the sandbox call, and
# the reward server's requests/s under wrk. Installs the package into
# .venv/python (and wrk from Debian) if needed.
set -euo pipefail
source "$(dirname "$0")/common.sh"

if ! command -v wrk >/dev/null; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk
fi
[ -x "$target/release/envhub" ] || scripts/build-guests.sh
python=$(scripts/python-env.sh)
PATH="$(dirname "$python"):$PATH"
scripts/build-wheel.sh --stage
"$python" -m pip install --quiet --no-build-isolation --force-reinstall --no-deps ./python
cd /tmp && ENVHUB_HOME="${ENVHUB_HOME:-$repo/target/bench-home}" \
    "$python" "$repo/scripts/bench_python.py" "$target/release/envhub" "$repo/sdk/tests/data/math_cases.jsonl"
