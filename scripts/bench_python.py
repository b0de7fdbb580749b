"""The Python package's benchmark, each figure beside its peer in one run:

1. score_batch from Python vs `envhub score --batch` on the same 10k math lines
   (whole-command wall time for the CLI; the same threads for both);
2. per-call overhead of Env.score above the sandbox call itself (the same
   call timed from Rust inside the extension);
3. reward-server requests/s under a concurrent client (wrk, one OpenRLHF
   sample per request).

Usage: bench_python.py ENVHUB_BIN CASES_JSONL
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import envhub


def lines_for(cases_path: Path, n: int) -> list[dict[str, object]]:
    cases = [json.loads(line) for line in cases_path.open()]
    return [
        {"task": {"question": "", "answer": c["gold"]}, "completion": c["completion"]}
        for c in (cases[i % len(cases)] for i in range(n))
    ]


def bench_batch(envhub_bin: str, lines: list[dict[str, object]], threads: int, rounds: int = 5) -> None:
    env = envhub.load("math")
    batch = Path(tempfile.mkdtemp()) / "lines.jsonl"
    batch.write_text("".join(json.dumps(x) + "\n" for x in lines))
    tasks = [x["task"] for x in lines]
    completions = [x["completion"] for x in lines]
    env.score_batch(tasks[:200], completions[:200], threads=threads)  # warm
    cli_times, py_times = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(
            [envhub_bin, "score", env.path, "--batch", str(batch), "--threads", str(threads), "--out", os.devnull],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        cli_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        scores = env.score_batch(tasks, completions, threads=threads)
        py_times.append(time.perf_counter() - start)
        assert len(scores) == len(lines)
    cli, py = statistics.median(cli_times), statistics.median(py_times)
    n = len(lines)
    ratios = [c / p for c, p in zip(cli_times, py_times, strict=True)]
    print(
        f"score_batch, {n} math lines, {threads} threads: python {n / py:,.0f}/s ({py:.3f} s), "
        f"envhub score --batch {n / cli:,.0f}/s ({cli:.3f} s): python/CLI throughput "
        f"{statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f}; target >= 0.9x)"
    )


def bench_overhead(n: int = 3000, rounds: int = 5) -> None:
    env = envhub.load("math")
    task = {"question": "What is 1/2 + 1/4?", "answer": "3/4"}
    completion = r"1/2 + 1/4 = 2/4 + 1/4, so the answer is \boxed{\frac{3}{4}}."
    env.score(task, completion)
    overheads, natives, pythons = [], [], []
    for _ in range(rounds):
        native = statistics.median(env._time_score(task, completion, n)) / 1e3
        samples = []
        for _ in range(n):
            start = time.perf_counter_ns()
            env.score(task, completion)
            samples.append(time.perf_counter_ns() - start)
        python = statistics.median(samples) / 1e3
        natives.append(native)
        pythons.append(python)
        overheads.append(python - native)
    print(
        f"Env.score per call: python {statistics.median(pythons):.1f} us, sandbox call from Rust "
        f"{statistics.median(natives):.1f} us: overhead {statistics.median(overheads):.1f} us "
        f"(min {min(overheads):.1f}, max {max(overheads):.1f}; target <= 20 us)"
    )


def bench_reward_server(envhub_bin: str, seconds: int = 5) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        print("reward server: wrk not installed, skipped")
        return
    log = tempfile.NamedTemporaryFile(suffix=".log", delete=False)
    server = subprocess.Popen(
        [envhub_bin, "reward-server", "--env", envhub.load("math").path, "--addr", "127.0.0.1:0"],
        stdout=log,
        stderr=log,
    )
    try:
        for _ in range(200):
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", Path(log.name).read_text())
            if found:
                break
            time.sleep(0.05)
        else:
            raise SystemExit("the reward server did not start")
        prompt = "<|im_start|>user\nWhat is 6 times 7?<|im_end|>\n<|im_start|>assistant\n"
        body = {"query": [prompt + r"So the answer is \boxed{42}.<|im_end|>"], "prompts": [prompt], "labels": ["42"]}
        script = Path(tempfile.mkdtemp()) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
        )
        out = subprocess.run(
            [wrk, "-t2", "-c16", f"-d{seconds}s", "-s", str(script), "--latency", found.group(1) + "/get_reward"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        p50 = re.search(r"50%\s+(\S+)", out)
        p99 = re.search(r"99%\s+(\S+)", out)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        print(
            f"reward server (wrk, 2 threads, 16 connections, {seconds} s, one OpenRLHF sample per request): "
            f"{float(rps.group(1)) if rps else 0:,.0f} requests/s, latency p50 {p50.group(1) if p50 else '?'} "
            f"p99 {p99.group(1) if p99 else '?'}, non-2xx {errors.group(1) if errors else 0}"
        )
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    envhub_bin, cases = sys.argv[1], Path(sys.argv[2])
    threads = os.cpu_count() or 1
    lines = lines_for(cases, 10_000)
    bench_batch(envhub_bin, lines, threads)
    bench_overhead()
    bench_reward_server(envhub_bin)


if __name__ == "__main__":
    main()
