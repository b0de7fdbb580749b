#!/usr/bin/env bash
# The Python checks. The package: ruff and mypy, `pip install ./python` (as
# the README says; maturin reuses the workspace's compiled crates), then
# pytest over the installed package. The Python that runs in the sandbox (the
# guest SDK, Python environments) and the scripts: ruff, mypy, and each
# environment's own test_env.py, natively against the guest SDK.
# Expects the guests built (scripts/build-guests.sh).
set -euo pipefail
source "$(dirname "$0")/common.sh"

python=$(scripts/python-env.sh)
bin=$(dirname "$python")
export PATH="$bin:$PATH"  # the build backend runs `maturin`
(cd python && "$bin/ruff" check envhub tests && "$bin/ruff" format --check envhub tests && "$bin/mypy")

guests=(sdk/python scripts)
for env in environments/*/; do
    [ -f "$env/env.py" ] && guests+=("$env")
done
"$bin/ruff" check "${guests[@]}" && "$bin/ruff" format --check "${guests[@]}"
"$bin/mypy" --strict --python-version 3.11 sdk/python/envhub
for env in environments/*/; do
    [ -f "$env/env.py" ] || continue
    (cd "$env" && MYPYPATH="$repo/sdk/python" "$bin/mypy" --strict --python-version 3.11 --exclude 'test_.*\.py$' .)
    if [ -f "$env/test_env.py" ]; then
        PYTHONPATH="$repo/sdk/python:$repo/$env" "$python" -m pytest -q -p no:cacheprovider "$env/test_env.py"
    fi
done

scripts/build-wheel.sh --stage
"$python" -m pip install --quiet --no-build-isolation --force-reinstall --no-deps ./python
# The tests must see the installed package, not the checkout's sources.
installed=$(cd /tmp && "$python" -c 'import envhub; print(envhub.__file__)')
case "$installed" in
    "$repo/python/"*) echo "envhub imports from the checkout ($installed), not the installed wheel" >&2; exit 1 ;;
esac
"$python" -m pytest -q -p no:cacheprovider python/tests "$@"
