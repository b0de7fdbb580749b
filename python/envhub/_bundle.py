"""What a wheel built by ``scripts/build-wheel.sh`` carries besides the code:
the first-party environment packages and the CPython-for-WASI runtime that
``code:python`` environments run policy code in."""

from __future__ import annotations

from pathlib import Path

BUNDLE = Path(__file__).parent / "_bundled"


def package_dirs() -> list[str]:
    """Directories of first-party packages shipped with this installation."""
    packages = BUNDLE / "packages"
    return [str(packages)] if packages.is_dir() else []


def python_runtime() -> str | None:
    """The shipped CPython-for-WASI runtime directory, if any."""
    runtime = BUNDLE / "python-runtime"
    return str(runtime) if (runtime / "python.wasm").is_file() else None
