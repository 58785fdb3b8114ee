"""The forecasts a watch keeps for buckets still to close, as two small arrays instead of a dict of lists.

A `StoreWatch` keeps, for each future bucket, the expectation (`detectors.Expected`:
mean, 80 % and 95 % bounds) made `lead` buckets before it, until the bucket closes.
A dict of five-float lists cost about 310 bytes per bucket kept (7.5 KB per series
at 15-minute buckets and a six-hour lead, measured with tracemalloc); here a bucket
is one int64 key and five float64 values in preallocated arrays, 48 bytes. The
values are kept as float64, so what comes back is what was put, bit for bit.

Examples
--------
>>> pending = PendingExpectations()
>>> pending.put(900_000, (10.0, 8.0, 12.0, 7.0, 13.0))
>>> pending.put(1_800_000, (20.0, 17.0, 23.0, 15.0, 25.0))
>>> 900_000 in pending, pending.get(900_000), pending.get(0)
(True, (10.0, 8.0, 12.0, 7.0, 13.0), None)
>>> pending.drop_through(900_000)
>>> [t for t, _ in pending.items()], len(pending)
([1800000], 1)

"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

__all__ = ["PendingExpectations"]

#: A free row: no bucket starts at the lowest int64.
_FREE = np.iinfo(np.int64).min


class PendingExpectations:
    """Bucket start (ms) -> five floats, in rows of two arrays that grow when full (they never need to when
    buckets close in turn: a watch holds at most `lead` + 1)."""

    __slots__ = ("_starts", "_values")

    WIDTH = 5

    def __init__(self, capacity: int = 4) -> None:
        self._starts = np.full(max(1, capacity), _FREE, dtype=np.int64)
        self._values = np.zeros((max(1, capacity), self.WIDTH))

    @classmethod
    def of(cls, items: Iterable[tuple[int, Sequence[float]]], capacity: int = 4) -> PendingExpectations:
        """From `(bucket start, values)` pairs, e.g. a saved state or the dict kept before these arrays."""
        pending = cls(capacity)
        for start, values in items:
            pending.put(int(start), values)
        return pending

    def _row(self, start_ms: int) -> int:
        try:  # a list's index over a few dozen ints: a third of the time of numpy's comparison and nonzero
            return self._starts.tolist().index(start_ms)
        except ValueError:
            return -1

    def __contains__(self, start_ms: int) -> bool:
        return self._row(start_ms) >= 0

    def __len__(self) -> int:
        return int(np.count_nonzero(self._starts != _FREE))

    def get(self, start_ms: int) -> tuple[float, ...] | None:
        row = self._row(start_ms)
        return None if row < 0 else tuple(self._values[row].tolist())

    def put(self, start_ms: int, values: Sequence[float]) -> None:
        if len(values) != self.WIDTH:
            raise ValueError(f"expected {self.WIDTH} values, got {len(values)}")
        row = self._row(start_ms)
        if row < 0:
            free = np.flatnonzero(self._starts == _FREE)
            if not len(free):  # full: double (only when buckets stop closing while forecasts keep coming)
                n = len(self._starts)
                self._starts = np.concatenate([self._starts, np.full(n, _FREE, dtype=np.int64)])
                self._values = np.concatenate([self._values, np.zeros((n, self.WIDTH))])
                free = np.array([n])
            row = int(free[0])
            self._starts[row] = start_ms
        self._values[row] = values

    def drop_through(self, start_ms: int) -> None:
        """Forget every bucket starting at or before `start_ms` (it has closed)."""
        self._starts[(self._starts != _FREE) & (self._starts <= start_ms)] = _FREE

    def items(self) -> Iterator[tuple[int, list[float]]]:
        """`(bucket start, values)` in order of bucket start."""
        held = np.flatnonzero(self._starts != _FREE)
        for row in held[np.argsort(self._starts[held], kind="stable")].tolist():
            yield int(self._starts[row]), self._values[row].tolist()

    def __getstate__(self) -> tuple[np.ndarray, np.ndarray]:
        return self._starts, self._values

    def __setstate__(self, state: tuple[np.ndarray, np.ndarray]) -> None:
        self._starts, self._values = state
