#!/usr/bin/env bash
# The Python package's checks: ruff and mypy, `pip install ./python` (as the
# README says; maturin reuses the workspace's compiled crates), then pytest
# over the installed package. Expects the guests built (scripts/build-guests.sh).
set -euo pipefail
source "$(dirname "$0")/common.sh"

python=$(scripts/python-env.sh)
bin=$(dirname "$python")
export PATH="$bin:$PATH"  # the build backend runs `maturin`
(cd python && "$bin/ruff" check envhub tests && "$bin/ruff" format --check envhub tests && "$bin/mypy")

scripts/build-wheel.sh --stage
"$python" -m pip install --quiet --no-build-isolation --force-reinstall --no-deps ./python
# The tests must see the installed package, not the checkout's sources.
installed=$(cd /tmp && "$python" -c 'import envhub; print(envhub.__file__)')
case "$installed" in
    "$repo/python/"*) echo "envhub imports from the checkout ($installed), not the installed wheel" >&2; exit 1 ;;
esac
"$python" -m pytest -q -p no:cacheprovider python/tests "$@"
