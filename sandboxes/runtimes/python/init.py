# Runs once per runtime, inside `envhub_init`, before the snapshot is taken
# (sandboxes/src/runtime/python.rs): imports the modules that checks commonly use, so
# each run finds them loaded, and defines `run`, which `envhub_run` calls once
# per fresh instance of the snapshot, and `setup`, which `envhub_setup` calls
# to prepare state that many runs share.
#
# `run(argv)` behaves like `python -S -c <argv[0]> argv[1:]` started in
# /work with /work first on sys.path: the program runs as `__main__` (file
# name `main.py`), SystemExit gives the exit status, an uncaught exception
# prints its traceback and gives 1, atexit functions run, and stdout and
# stderr are flushed; the status is returned.
import sys
import os

# Modules loaded into the snapshot. A module missing from this build is
# skipped; any other failure stops the init, so a broken runtime is noticed.
PRELOAD = [
    "abc", "argparse", "array", "ast", "atexit", "base64", "binascii", "bisect", "calendar", "cmath",
    "collections", "collections.abc", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal",
    "difflib", "enum", "fractions", "functools", "gc", "hashlib", "heapq", "io", "itertools", "json",
    "keyword", "linecache", "math", "numbers", "operator", "pprint", "queue", "random", "re", "statistics",
    "string", "struct", "textwrap", "time", "traceback", "types", "typing", "unicodedata", "warnings",
    "weakref", "zlib", "_ast", "_random",
]
for _name in PRELOAD:
    try:
        __import__(_name)
    except ModuleNotFoundError as e:
        if e.name != _name:
            raise
del _name

import atexit as _atexit
import builtins as _builtins
import gc as _gc
import random as _random
import types as _types


def _exit_status(code):
    # What CPython does with SystemExit's code when the program ends.
    if code is None:
        return 0
    if isinstance(code, int):
        return (code + 2**31) % 2**32 - 2**31  # as C's int, which carries it out
    try:
        sys.stderr.write(str(code) + "\n")
    except BaseException:
        pass
    return 1


def _flush():
    status = 0
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:
            status = 120
    return status


def _fresh_module(name):
    module = _types.ModuleType(name)
    module.__dict__["__builtins__"] = _builtins
    sys.modules[name] = module
    return module


def _report(e):
    # The traceback without this file's frame: it starts in the caller's code.
    tb = e.__traceback__
    sys.excepthook(type(e), e, tb.tb_next if tb is not None else None)


def run(argv):
    source = argv[0] if argv else ""
    sys.argv = ["main.py"] + list(argv[1:])
    os.chdir("/work")
    sys.path.insert(0, "/work")
    # Seeded like a fresh interpreter: from the run's own random bytes.
    _random.seed()
    main = _fresh_module("__main__")
    try:
        exec(compile(source, "main.py", "exec"), main.__dict__)
        status = 0
    except SystemExit as e:
        status = _exit_status(e.code)
    except BaseException as e:
        _report(e)
        status = 1
    try:
        _atexit._run_exitfuncs()
    except BaseException:
        pass
    return _flush() or status


def setup(argv):
    # Runs a request's `setup` source as the module `envhub_setup` (in
    # sys.modules, so programs import it). The host keeps the memory this
    # leaves behind and starts each run with the same `setup` from it, so the
    # setup must not leave files open. Output is flushed (and discarded by
    # the host); the status is 0, or 1 after printing the traceback.
    source = argv[0] if argv else ""
    os.chdir("/work")
    module = _fresh_module("envhub_setup")
    try:
        exec(compile(source, "setup.py", "exec"), module.__dict__)
        status = 0
    except BaseException as e:
        sys.modules.pop("envhub_setup", None)
        _report(e)
        status = 1
    status = _flush() or status
    _gc.collect()
    _gc.freeze()
    return status


# The snapshot holds every object made so far; freezing them keeps the
# collector from walking them in every run.
_gc.collect()
_gc.freeze()
