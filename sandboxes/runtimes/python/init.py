# Runs once per runtime, inside `envhub_init`, before the snapshot is taken
# (sandboxes/src/code.rs): imports the modules that checks commonly use, so
# each run finds them loaded, and defines `run`, which `envhub_run` calls once
# per fresh instance of the snapshot.
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
        return code & 0xFFFFFFFF if code < 0 else code
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


def run(argv):
    source = argv[0] if argv else ""
    sys.argv = ["main.py"] + list(argv[1:])
    os.chdir("/work")
    sys.path.insert(0, "/work")
    # Seeded like a fresh interpreter: from the run's own random bytes.
    _random.seed()
    main = _types.ModuleType("__main__")
    main.__dict__["__builtins__"] = _builtins
    sys.modules["__main__"] = main
    try:
        exec(compile(source, "main.py", "exec"), main.__dict__)
        status = 0
    except SystemExit as e:
        status = _exit_status(e.code)
    except BaseException as e:
        tb = e.__traceback__
        # Drop this function's frame: the traceback starts in main.py.
        sys.excepthook(type(e), e, tb.tb_next if tb is not None else None)
        status = 1
    try:
        _atexit._run_exitfuncs()
    except BaseException:
        pass
    return _flush() or status


# The snapshot holds every object made so far; freezing them keeps the
# collector from walking them in every run.
_gc.collect()
_gc.freeze()
