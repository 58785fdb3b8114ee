"""The time one sensor's reports cover: merged half-open intervals of epoch milliseconds.

`CoveredIntervals` keeps `[lo, hi)` intervals sorted, disjoint and not touching (two that
meet or overlap are merged), so `covered_ms(lo, hi)` is the length of their union within a
window. Only the time not yet handed out is kept: `trim(before_ms)` forgets everything
before a closed bucket's end and clips later additions there (a report of time already
handed out changes nothing any more).

Bounded: at most `max_intervals` are kept. One more bridges the smallest gap between two
neighbours (the gap then counts as covered: an over-statement by `bridged_ms`, counted),
so a sensor that reports many scattered instants costs a fixed amount of state.

Examples
--------
>>> cover = CoveredIntervals()
>>> for lo, hi in [(0, 60_000), (60_000, 120_000), (300_000, 360_000), (90_000, 150_000)]:
...     cover.add(lo, hi)
>>> cover.intervals()
[(0, 150000), (300000, 360000)]
>>> cover.covered_ms(0, 900_000), cover.covered_ms(100_000, 320_000)
(210000, 70000)
>>> cover.trim(120_000)
>>> cover.intervals(), cover.covered_ms(0, 900_000)
([(120000, 150000), (300000, 360000)], 90000)
>>> cover.add(0, 130_000)  # before the trim: only [120 s, 130 s) could count, and it is covered
>>> cover.intervals()
[(120000, 150000), (300000, 360000)]

"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

__all__ = ["CoveredIntervals"]


class CoveredIntervals:
    """Merged half-open intervals `[lo, hi)` of epoch ms, bounded (see the module docstring).

    Parameters
    ----------
    max_intervals
        Disjoint intervals kept at most; one more bridges the smallest gap.
    floor_ms
        Time before it is never kept (None: no floor yet).

    """

    __slots__ = ("_his", "_los", "bridged_ms", "floor_ms", "max_intervals")

    def __init__(self, max_intervals: int = 256, floor_ms: int | None = None) -> None:
        if max_intervals < 1:
            raise ValueError(f"max_intervals must be at least 1, got {max_intervals}")
        self.max_intervals = max_intervals
        self.floor_ms = floor_ms
        self.bridged_ms = 0  # gap time counted as covered because of the bound
        self._los: list[int] = []
        self._his: list[int] = []

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"max_intervals": 2}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        adds = [(0, 60_000), (120_000, 180_000), (240_000, 250_000), (50_000, 130_000), (400_000, 460_000),
                (300_000, 310_000), (500_000, 520_000), (305_000, 400_000)]
        steps = [("add", pair, {}) for pair in adds[:4]] + [("trim", (100_000,), {})]
        steps += [("add", pair, {}) for pair in adds[4:]] + [("trim", (450_000,), {})]
        reads = [("covered_ms", (0, 600_000), {}), ("covered_ms", (110_000, 320_000), {}), ("intervals", (), {})]
        return {"steps": steps, "reads": reads,
                "empty": [(("covered_ms", (0, 600_000), {}), 0), (("intervals", (), {}), [])]}

    def __len__(self) -> int:
        return len(self._los)

    def add(self, lo: int, hi: int) -> None:
        """Cover `[lo, hi)` (clipped to the floor); nothing if empty."""
        if self.floor_ms is not None and lo < self.floor_ms:
            lo = self.floor_ms
        if hi <= lo:
            return
        los, his = self._los, self._his
        if los and los[-1] <= lo <= his[-1]:  # the common case: the next report of a sensor reporting steadily
            if hi > his[-1]:
                his[-1] = hi
                # It may now reach the intervals after it? None: it is the last one.
            return
        # First interval that could touch [lo, hi): the last one starting at or before lo, if it reaches lo.
        i = bisect_right(los, lo) - 1
        if i < 0 or his[i] < lo:
            i += 1
        j = i
        while j < len(los) and los[j] <= hi:  # every interval touching [lo, hi) merges into it
            lo, hi = min(lo, los[j]), max(hi, his[j])
            j += 1
        los[i:j] = [lo]
        his[i:j] = [hi]
        if len(los) > self.max_intervals:
            self._bridge()

    def _bridge(self) -> None:
        """Merge the two neighbours with the smallest gap (the earliest such pair on ties)."""
        los, his = self._los, self._his
        k = min(range(len(los) - 1), key=lambda n: los[n + 1] - his[n])
        self.bridged_ms += los[k + 1] - his[k]
        his[k] = his[k + 1]
        del los[k + 1], his[k + 1]

    def covered_ms(self, lo: int, hi: int) -> int:
        """Milliseconds of `[lo, hi)` covered."""
        total = 0
        los, his = self._los, self._his
        start = max(bisect_right(his, lo), 0)  # intervals ending at or before lo cannot overlap
        for k in range(start, len(los)):
            a = los[k]
            if a >= hi:
                break
            b = his[k]
            total += min(b, hi) - max(a, lo)
        return total

    def trim(self, before_ms: int) -> None:
        """Forget the time before `before_ms`, and never keep any again."""
        if self.floor_ms is None or before_ms > self.floor_ms:
            self.floor_ms = before_ms
        los, his = self._los, self._his
        k = bisect_right(his, before_ms)  # intervals ending at or before it go
        if k:
            del los[:k], his[:k]
        if los and los[0] < before_ms:
            los[0] = before_ms

    def intervals(self) -> list[tuple[int, int]]:
        """The intervals kept, oldest first."""
        return list(zip(self._los, self._his, strict=True))

    def to_state(self) -> dict[str, Any]:
        return {"max_intervals": self.max_intervals, "floor_ms": self.floor_ms, "bridged_ms": self.bridged_ms,
                "intervals": [[a, b] for a, b in zip(self._los, self._his, strict=True)]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> CoveredIntervals:
        out = cls(state["max_intervals"], state["floor_ms"])
        out.bridged_ms = state["bridged_ms"]
        out._los = [int(a) for a, _ in state["intervals"]]
        out._his = [int(b) for _, b in state["intervals"]]
        return out
