#!/usr/bin/env bash
# Benchmarks, with peers measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-guests.sh
cargo bench -p envhub-tests --bench sandbox_calls
scripts/bench-math-verify.sh
