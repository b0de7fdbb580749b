"""The seeded generator environments draw from: xoshiro256** seeded through
SplitMix64, the same stream as the Rust sdk's ``envhub_sdk::Rng`` for the same
seed, forever (rewards that depend on randomness must never change)."""

from __future__ import annotations

from collections.abc import MutableSequence, Sequence
from typing import TypeVar

T = TypeVar("T")

_M64 = (1 << 64) - 1


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & _M64


def _splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & _M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return state, z ^ (z >> 31)


def stable_hash(data: bytes) -> int:
    """FNV-1a over ``data``: a 64-bit hash that never changes (unlike ``hash()``)."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & _M64
    return h


class Rng:
    """A seeded generator with the familiar ``random.Random`` methods
    (``random``, ``randint``, ``randrange``, ``choice``, ``shuffle``,
    ``sample``, ``uniform``), each defined on the Rust sdk's primitives so both
    languages draw the same values from the same seed."""

    __slots__ = ("_s",)

    def __init__(self, seed: int = 0) -> None:
        state = seed & _M64
        s = []
        for _ in range(4):
            state, value = _splitmix64(state)
            s.append(value)
        self._s = s

    @classmethod
    def derive(cls, seed: int, parts: Sequence[bytes]) -> Rng:
        """A generator seeded from labelled parts (length-prefixed FNV-1a mixed
        into ``seed``), as ``Rng::derive``."""
        h = 0xCBF29CE484222325 ^ (seed & _M64)
        for part in parts:
            for b in len(part).to_bytes(8, "little") + bytes(part):
                h = ((h ^ b) * 0x100000001B3) & _M64
        return cls(h)

    @classmethod
    def for_task(cls, split: str, index: int) -> Rng:
        """The generator of task ``index`` of ``split`` (``Rng::for_task``)."""
        return cls.derive(0, [split.encode(), (index & _M64).to_bytes(8, "little")])

    def next_u64(self) -> int:
        """The next 64 random bits."""
        s = self._s
        result = (_rotl((s[1] * 5) & _M64, 7) * 9) & _M64
        t = (s[1] << 17) & _M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def below(self, n: int) -> int:
        """A uniform integer in ``[0, n)`` (0 when ``n`` is 0), unbiased
        (Lemire's multiply-shift with rejection, as ``Rng::below``)."""
        if n <= 0:
            return 0
        threshold = ((1 << 64) - n) % n
        while True:
            m = self.next_u64() * n
            if (m & _M64) >= threshold:
                return m >> 64

    def random(self) -> float:
        """A uniform float in ``[0, 1)`` with 53 random bits."""
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def randint(self, a: int, b: int) -> int:
        """A uniform integer in ``[a, b]`` (``a`` when ``b < a``), as ``Rng::range_i64``."""
        if b <= a:
            return a
        return a + self.below(b - a + 1)

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        """A uniform element of ``range(start, stop, step)``."""
        if stop is None:
            start, stop = 0, start
        if step == 0:
            raise ValueError("randrange() step must not be zero")
        n = len(range(start, stop, step))
        if n == 0:
            raise ValueError(f"empty range for randrange({start}, {stop}, {step})")
        return start + step * self.below(n)

    def uniform(self, a: float, b: float) -> float:
        """A float between ``a`` and ``b``."""
        return a + (b - a) * self.random()

    def chance(self, p: float) -> bool:
        """``True`` with probability ``p``."""
        return self.random() < p

    def choice(self, seq: Sequence[T]) -> T:
        """A uniformly chosen element (``IndexError`` when empty)."""
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        return seq[self.below(len(seq))]

    def shuffle(self, items: MutableSequence[T]) -> None:
        """Shuffles ``items`` in place (Fisher-Yates, as ``Rng::shuffle``)."""
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]

    def sample(self, population: Sequence[T], k: int) -> list[T]:
        """``k`` distinct elements in selection order (a partial Fisher-Yates
        over a copy of ``population``)."""
        pool = list(population)
        if not 0 <= k <= len(pool):
            raise ValueError("sample larger than population or is negative")
        for i in range(k):
            j = i + self.below(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]
