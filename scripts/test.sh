#!/usr/bin/env bash
# Every test: builds the guest modules the tests load, then runs the whole
# workspace's tests (release profile: wasmtime is slow unoptimised), then the
# Python package's.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-guests.sh
cargo test --release --workspace "$@"
# The Python package: lint, `pip install ./python`, pytest over the install.
scripts/test-python.sh
