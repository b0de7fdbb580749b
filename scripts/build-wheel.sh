#!/usr/bin/env bash
# Builds the envhub Python wheel into target/wheels/, shipping the built
# first-party environments (target/envhub/*.envpkg) and the pinned
# CPython-for-WASI runtime, so `envhub.load("math")` (and "tools", "code")
# works from any directory. The native core is compiled by maturin in the
# workspace's target directory, reusing what the Rust build compiled.
#
#   scripts/build-wheel.sh            # builds the guests first if needed
#   scripts/build-wheel.sh --stage    # only stage python/envhub/_bundled/
set -euo pipefail
source "$(dirname "$0")/common.sh"

if ! ls "$target"/envhub/envhub-*.envpkg >/dev/null 2>&1; then
    scripts/build-guests.sh
fi
bundle=python/envhub/_bundled
rm -rf "$bundle"
mkdir -p "$bundle/packages" "$bundle/python-runtime/lib"
cp "$target"/envhub/envhub-*.envpkg "$bundle/packages/"
runtime=sandboxes/runtimes/python
if [ -f "$runtime/python.wasm" ]; then
    cp "$runtime/python.wasm" "$bundle/python-runtime/"
    cp "$runtime/lib/python311.zip" "$bundle/python-runtime/lib/"
fi
[ "${1:-}" = "--stage" ] && exit 0

python=$(scripts/python-env.sh)
"$python" -m maturin build --release --strip --manifest-path python/Cargo.toml --out "$target/wheels" >&2
ls -t "$target"/wheels/envhub-*.whl | head -n 1
