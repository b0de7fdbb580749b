#!/usr/bin/env python3
"""Run HF math-verify over a cases JSONL file and report agreement.

Usage: math_verify_peer.py CASES.jsonl [MORE.jsonl ...]

Each line of CASES.jsonl is {"gold": ..., "completion": ..., "expected": bool, ...}.
The gold is parsed as `$gold$` (falling back to the raw string when that
yields nothing) and the completion as is, then `verify(gold, answer)` is
compared with `expected`. Prints one JSON line:
{"name":"math-verify","cases":N,"seconds":S,"per_second":X,"agreement":A,
 "per_category":{"CATEGORY":[agreeing, cases], ...}}

Runs single-threaded in the main thread (math-verify's timeouts use signals).
Set MV_VERBOSE=1 to list disagreeing cases on stderr.
"""

import json
import os
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

from math_verify import parse, verify  # noqa: E402


def parse_gold(gold):
    parsed = parse("$" + gold + "$")
    if not parsed:
        parsed = parse(gold)
    return parsed


def judge(gold, completion):
    try:
        return bool(verify(parse_gold(gold), parse(completion)))
    except Exception:  # math-verify should not raise, but never let it abort a run
        return False


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cases = []
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            cases.extend(json.loads(line) for line in f if line.strip())
    per_category = {}
    verbose = os.environ.get("MV_VERBOSE") == "1"
    agree = 0
    start = time.perf_counter()
    for i, case in enumerate(cases):
        got = judge(case["gold"], case["completion"])
        cell = per_category.setdefault(case.get("category", ""), [0, 0])
        cell[1] += 1
        if got == bool(case["expected"]):
            agree += 1
            cell[0] += 1
        elif verbose:
            print(
                f"line {i + 1} [{case.get('category', '')}] gold={case['gold']!r} "
                f"expected={case['expected']} got={got}",
                file=sys.stderr,
            )
    seconds = time.perf_counter() - start
    n = len(cases)
    print(
        json.dumps(
            {
                "name": "math-verify",
                "cases": n,
                "seconds": round(seconds, 4),
                "per_second": round(n / seconds, 2) if seconds > 0 else None,
                "agreement": round(agree / n, 4) if n else None,
                "per_category": dict(sorted(per_category.items())),
            }
        )
    )


if __name__ == "__main__":
    main()
