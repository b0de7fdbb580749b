# Sourced by the scripts: the repository root as the working directory,
# $repo, and $target, the absolute cargo target directory (exported as
# CARGO_TARGET_DIR, so maturin and cargo share one).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$repo/$target" ;; esac
export CARGO_TARGET_DIR="$target"
