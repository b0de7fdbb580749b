"""mini_sudoku: fill a partly blank grid (4x4, 6x6 or 9x9) so that every
row, column and box holds each digit once. Grids are made by shuffling a
known valid grid (relabelled digits, rows within bands, bands, columns within
stacks, stacks; transposed when boxes are square), then blanking cells. Any
completed grid that keeps the givens and follows the rules is correct."""

from __future__ import annotations

import re
from typing import Any

from . import _common as c

NAME = "mini_sudoku"

# level: (size, box rows, box cols, blanks)
_LEVELS = {
    1: (4, 2, 2, 4),
    2: (4, 2, 2, 8),
    3: (6, 2, 3, 12),
    4: (6, 2, 3, 18),
    5: (9, 3, 3, 36),
}
BOXES = {4: (2, 2), 6: (2, 3), 8: (2, 4), 9: (3, 3)}


def _shuffle_groups(rng: Any, groups: int, size: int) -> list[int]:
    """A permutation of ``groups * size`` lines that keeps each group of
    ``size`` together (groups shuffled, lines within groups shuffled)."""
    order = list(range(groups))
    rng.shuffle(order)
    out = []
    for g in order:
        inner = list(range(size))
        rng.shuffle(inner)
        out += [g * size + i for i in inner]
    return out


def solved_grid(rng: Any, n: int, br: int, bc: int) -> list[list[int]]:
    base = [[(bc * (i % br) + i // br + j) % n for j in range(n)] for i in range(n)]
    digits = list(range(1, n + 1))
    rng.shuffle(digits)
    rows = _shuffle_groups(rng, n // br, br)
    cols = _shuffle_groups(rng, n // bc, bc)
    grid = [[digits[base[r][cc]] for cc in cols] for r in rows]
    if br == bc and rng.random() < 0.5:
        grid = [list(col) for col in zip(*grid, strict=False)]
    return grid


def generate(rng: Any, level: int) -> dict[str, Any]:
    n, br, bc, blanks = _LEVELS[level]
    sol = solved_grid(rng, n, br, bc)
    cells = rng.sample(range(n * n), blanks)
    puzzle = [row[:] for row in sol]
    for cell in cells:
        puzzle[cell // n][cell % n] = 0
    return {
        "size": n,
        "box": [br, bc],
        "grid": ["".join(str(d) if d else "." for d in row) for row in puzzle],
        "solution": ["".join(str(d) for d in row) for row in sol],
    }


def prompt(task: dict[str, Any]) -> str:
    n = task["size"]
    br, bc = task["box"]
    lines = []
    for r, row in enumerate(task["grid"]):
        if r and r % br == 0:
            lines.append("-" * (2 * n + 2 * (n // bc - 1) - 1))
        cells = []
        for j, ch in enumerate(row):
            if j and j % bc == 0:
                cells.append("|")
            cells.append(ch)
        lines.append(" ".join(cells))
    grid = "\n".join(lines)
    return (
        f"Solve this {n}x{n} sudoku. Fill every '.' with a digit from 1 to {n} so that each row, each column "
        f"and each {br}x{bc} box (separated by | and -) contains every digit from 1 to {n} exactly once.\n\n"
        f"{grid}\n\n"
        f"Answer with the completed grid as {n} rows of {n} digits, from top to bottom, separated by '/'."
    )


def _digits(task: dict[str, Any], answer: str) -> list[int] | None:
    n = task["size"]
    digits = re.findall(r"\d", answer)
    if len(digits) == n * n:
        return [int(d) for d in digits]
    rows = [r for r in re.split(r"[/\n;]|\\\\", answer) if r.strip()]
    if len(rows) == n:
        out: list[str] = []
        for r in rows:
            ds = re.findall(r"\d", r)
            if len(ds) < n:
                return None
            out += ds[-n:]
        return [int(d) for d in out]
    return None


def valid(task: dict[str, Any], flat: list[int]) -> bool:
    """Whether ``flat`` (row-major) follows the rules and keeps the givens."""
    n = task["size"]
    br, bc = task["box"]
    want = list(range(1, n + 1))
    for r, row in enumerate(task["grid"]):
        for j, ch in enumerate(row):
            if ch != "." and int(ch) != flat[r * n + j]:
                return False
    for i in range(n):
        if sorted(flat[i * n : i * n + n]) != want:
            return False
        if sorted(flat[i::n]) != want:
            return False
    for r0 in range(0, n, br):
        for c0 in range(0, n, bc):
            box = [flat[r * n + cc] for r in range(r0, r0 + br) for cc in range(c0, c0 + bc)]
            if sorted(box) != want:
                return False
    return True


def check(task: dict[str, Any], answer: str) -> bool:
    flat = _digits(task, answer)
    return flat is not None and valid(task, flat)


def answer(task: dict[str, Any]) -> str | None:
    sol = task.get("solution")
    return "/".join(sol) if isinstance(sol, list) else None


def solve(n: int, br: int, bc: int, grid: list[list[int]], budget: int = 10_000) -> list[list[int]] | None:
    """A completion by backtracking with bitmasks (most constrained cell
    first); ``None`` if there is none or the budget of steps runs out."""
    full = (1 << (n + 1)) - 2
    rows, cols, boxes = [0] * n, [0] * n, [0] * n
    g = [row[:] for row in grid]

    def bi(r: int, cc: int) -> int:
        return (r // br) * (n // bc) + cc // bc

    for r in range(n):
        for cc in range(n):
            d = g[r][cc]
            if d:
                bit = 1 << d
                if (rows[r] | cols[cc] | boxes[bi(r, cc)]) & bit:
                    return None
                rows[r] |= bit
                cols[cc] |= bit
                boxes[bi(r, cc)] |= bit
    steps = [0]

    def rec() -> bool:
        steps[0] += 1
        if steps[0] > budget:
            return False
        best, best_free, best_count = None, 0, 99
        for r in range(n):
            for cc in range(n):
                if not g[r][cc]:
                    free = full & ~(rows[r] | cols[cc] | boxes[bi(r, cc)])
                    cnt = bin(free).count("1")
                    if cnt < best_count:
                        best, best_free, best_count = (r, cc), free, cnt
                        if cnt <= 1:
                            break
            if best_count <= 1:
                break
        if best is None:
            return True
        r, cc = best
        b = bi(r, cc)
        for d in range(1, n + 1):
            bit = 1 << d
            if best_free & bit:
                g[r][cc] = d
                rows[r] |= bit
                cols[cc] |= bit
                boxes[b] |= bit
                if rec():
                    return True
                rows[r] &= ~bit
                cols[cc] &= ~bit
                boxes[b] &= ~bit
                g[r][cc] = 0
        return False

    return g if rec() else None


def inline(task: dict[str, Any]) -> dict[str, Any]:
    rows = c.need_list(task, "grid", NAME, 4, 9)
    n = len(rows)
    if n not in BOXES:
        raise c.bad("mini_sudoku task field `grid` must have 4, 6, 8 or 9 rows")
    br, bc = BOXES[n]
    if "box" in task:
        box = task["box"]
        if not (
            isinstance(box, list) and len(box) == 2 and all(c.is_int(b) and b > 0 for b in box) and box[0] * box[1] == n
        ):
            raise c.bad(f"mini_sudoku task field `box` must be [rows, cols] with rows * cols = {n}")
        br, bc = box
    grid: list[list[int]] = []
    for r in rows:
        if isinstance(r, list):
            cells = r
        elif isinstance(r, str):
            cells = [ch for ch in r if not ch.isspace()]
        else:
            raise c.bad("mini_sudoku task field `grid` rows must be strings or lists")
        if len(cells) != n:
            raise c.bad(f"mini_sudoku task field `grid`: every row needs {n} cells")
        row = []
        for ch in cells:
            if ch in (".", "0", "_", 0, None):
                row.append(0)
            elif isinstance(ch, str) and ch.isdigit() and 1 <= int(ch) <= n:
                row.append(int(ch))
            elif c.is_int(ch) and 1 <= ch <= n:
                row.append(ch)
            else:
                raise c.bad(f"mini_sudoku task field `grid`: cells are digits 1 to {n} or '.' for blanks")
        grid.append(row)
    out = {"size": n, "box": [br, bc], "grid": ["".join(str(d) if d else "." for d in row) for row in grid]}
    given = task.get("solution")
    if given is not None:
        text = (
            "/".join("".join(str(d) for d in r) if isinstance(r, list) else str(r) for r in given)
            if isinstance(given, list)
            else given
        )
        flat = _digits(out, text) if isinstance(text, str) else None
        if flat is None or not valid(out, flat):
            raise c.bad("mini_sudoku task field `solution` is not a valid completion of `grid`")
        out["solution"] = ["".join(str(d) for d in flat[i * n : i * n + n]) for i in range(n)]
        return out
    sol = solve(n, br, bc, grid)
    if sol is None:
        raise c.bad(
            "mini_sudoku task has no solution (the givens break the rules, or the search gave up: "
            "give `solution` with hard puzzles)"
        )
    out["solution"] = ["".join(str(d) for d in row) for row in sol]
    return out
