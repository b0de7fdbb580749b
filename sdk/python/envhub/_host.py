"""Pure host functions (envhub's own verifiers) called from Python guests.

A guest run cannot call into the host directly, so calls are answered by
replay: a call whose answer the run was not given stops the run, the host
computes every call the run asked for (deterministically, with the Rust
verifiers) and runs the request again with the answers. The results are pure
functions of their arguments, so the replayed run makes the same calls and
ends with the same response on every machine.
"""

from __future__ import annotations

from typing import Any

from ._protocol import canonical

_answers: dict[str, Any] = {}
_asked: list[list[Any]] = []


class NeedHost(BaseException):
    """Raised (and caught by the driver) when a host call has no answer yet.
    A ``BaseException``, so environments' ``except Exception`` does not swallow it."""


def load_answers(answers: list[list[Any]]) -> None:
    """Installs the host's answers: ``[[name, args, result], ...]``."""
    _answers.clear()
    _asked.clear()
    for name, args, result in answers:
        _answers[canonical([name, args])] = result


def asked() -> list[list[Any]]:
    """The calls this run needs answered: ``[[name, args], ...]``."""
    return list(_asked)


def call(name: str, args: dict[str, Any]) -> Any:
    """The answer of host function ``name`` on ``args`` (see the module docs)."""
    key = canonical([name, args])
    if key in _answers:
        result = _answers[key]
        if isinstance(result, dict) and "error" in result and len(result) == 1:
            raise RuntimeError(f"host function {name}: {result['error']}")
        return result
    if [name, args] not in _asked:
        _asked.append([name, args])
    raise NeedHost(name)
