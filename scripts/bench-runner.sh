#!/usr/bin/env bash
# Runner benchmarks: overhead per turn with an instant policy on the math
# environment, and SmolLM2-135M decode tokens/s on this machine's CPU (if
# scripts/fetch-model.sh has fetched it). Figures are medians of a few runs;
# on a shared or loaded machine compare ratios, not absolutes.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-guests.sh
uptime
cargo bench -p envhub-runner --bench runner "$@"
