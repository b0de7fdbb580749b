#!/usr/bin/env bash
# The virtual environment the Python package is built and tested in
# (.venv/python): maturin, the linters and test tools, and the peers the
# tests drive (the openenv-core client and transformers' tool-schema reader),
# all pinned. Prints the venv's python. Needs PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv/python
stamp="$venv/.envhub-requirements"
want=$(cat scripts/python-env.sh python/tests/openenv-client-requirements.txt | sha256sum | cut -c1-16)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade 'pip==25.3' >&2
    "$venv/bin/pip" install --quiet 'maturin==1.16.0' 'pytest==9.2.0' 'ruff==0.17.6' 'mypy==2.4.1' >&2
    # The real OpenEnv client (openenv-core 0.3.0) with just what its client imports.
    "$venv/bin/pip" install --quiet --no-deps -r python/tests/openenv-client-requirements.txt >&2
    # transformers' get_json_schema reads the tools of TRL environments (no torch needed).
    "$venv/bin/pip" install --quiet 'transformers==5.24.0' >&2
    echo "$want" >"$stamp"
fi
echo "$(pwd)/$venv/bin/python"
