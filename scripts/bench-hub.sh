#!/usr/bin/env bash
# The hub benchmark: pulls/s of a 1 MB package under concurrent load (wrk on
# loopback) against nginx serving the same file in the same run, and publish
# latency. Installs wrk and nginx from Debian if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[ -f "${CARGO_TARGET_DIR:-target}/envhub/envhub-math-0.1.0.envpkg" ] || scripts/build-guests.sh
cargo bench -p envhub-hub --bench hub "$@"
