"""Streaming quantiles of durations (dwell, wait, service times) with a bounded, documented error.

Values go into a fixed grid of log-spaced bins, as in DDSketch [^1]: bin `i` holds
the values in `(min_s * g**(i-1), min_s * g**i]` with `g = (1 + rel_error) / (1 - rel_error)`,
and is read back as `min_s * 2 * g**i / (g + 1)`, which is within `rel_error` of
every value in the bin. Values below `min_s` (0 s waits are common) share one bin,
read back as the smallest value seen.

Error bound. `get(q)` interpolates between the estimates of the two order statistics
around rank `q * (n - 1)`, as `numpy.quantile(xs, q)` (its default, linear method)
does between the true values, so with `x = numpy.quantile(xs, q)`:

- `|get(q) - x| <= rel_error * x` when those two values are `>= min_s`;
- `|get(q) - x| <= rel_error * x + min_s` always (values below `min_s` are off by
  less than `min_s`, in absolute terms).

The smallest and largest values are kept exactly and bin estimates are clamped to
them, so a single value, the minimum (`q=0`) and the maximum (`q=1`) come back exact.

Size. With the defaults (2 %, 1 s) values from 1 s to 1 day span 286 bins; the
state keeps only the bins from the lowest to the highest one used, as a list of
ints: a few hundred bytes of JSON for a day of dwell times. Two sketches with the
same grid merge exactly by adding counts (across buckets, services or stores).

Why not River's `stats.Quantile` (P² algorithm): in river 0.26 it is a Rust object
(`RsQuantile`) exposing only `update`/`get`; it pickles, through 170 opaque bytes of
the Rust struct, and those restore it exactly, but they are not plain data (they
can't be read, validated or merged, and their layout belongs to river's build, so
an upgrade may not read an old changelog); one instance follows a single `q`
(p50 and p90 need two); and P² is a heuristic with no error bound.

Examples
--------
>>> sketch = QuantileSketch()
>>> for x in [30, 60, 90, 120, 600]:
...     sketch.update(x)
...     print(sketch.count, round(sketch.mean, 1), round(sketch.get(0.5), 1), round(sketch.get(0.9), 1))
1 30.0 30.0 30.0
2 45.0 45.0 57.0
3 60.0 60.4 84.1
4 75.0 75.2 111.0
5 180.0 90.1 407.7
>>> sketch.get(0.0), sketch.get(1.0)
(30.0, 600.0)

References
----------
[^1]: Masson, C., Rim, J. E. and Lee, H. K., 2019. DDSketch: a fast and fully-mergeable quantile
    sketch with relative-error guarantees. Proceedings of the VLDB Endowment, 12(12), pp. 2195-2205.

"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["QuantileSketch"]


class QuantileSketch:
    """Quantiles, count and mean of non-negative values (seconds), on a fixed log-spaced grid.

    Parameters
    ----------
    rel_error
        Relative error of a quantile of values `>= min_s` (see the module docstring), in (0, 1).
    min_s
        Smallest value the relative error holds for; values below it share one bin
        (absolute error < `min_s`).

    """

    __slots__ = ("_bins", "_i0", "_log_gamma", "_low", "_max", "_min", "_n", "_sum", "gamma", "min_s", "rel_error")

    def __init__(self, rel_error: float = 0.02, min_s: float = 1.0) -> None:
        if not 0 < rel_error < 1:
            raise ValueError(f"rel_error must be in (0, 1), got {rel_error}")
        if not min_s > 0:
            raise ValueError(f"min_s must be positive, got {min_s}")
        self.rel_error = rel_error
        self.min_s = min_s
        self.gamma = (1 + rel_error) / (1 - rel_error)
        self._log_gamma = math.log(self.gamma)
        self._n = 0
        self._sum = 0.0
        self._min: float | None = None
        self._max: float | None = None
        self._low = 0  # values below min_s
        self._i0 = 0  # grid index of _bins[0]
        self._bins: list[int] = []

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"rel_error": 0.01, "min_s": 0.1}

    # -- statistics -------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """How many values were seen."""
        return self._n

    @property
    def mean(self) -> float | None:
        """Exact mean of the values seen (None before any)."""
        return self._sum / self._n if self._n else None

    @property
    def total(self) -> float:
        """Exact sum of the values seen."""
        return self._sum

    @property
    def min(self) -> float | None:
        return self._min

    @property
    def max(self) -> float | None:
        return self._max

    def update(self, x: float) -> None:
        """Add one value (seconds, finite, >= 0)."""
        x = float(x)
        if not (x >= 0 and math.isfinite(x)):
            raise ValueError(f"value must be finite and >= 0, got {x}")
        self._n += 1
        self._sum += x
        if self._min is None or x < self._min:
            self._min = x
        if self._max is None or x > self._max:
            self._max = x
        if x < self.min_s:
            self._low += 1
            return
        i = max(0, math.ceil(math.log(x / self.min_s) / self._log_gamma))
        self._add_bin(i, 1)

    def _add_bin(self, i: int, count: int) -> None:
        if not self._bins:
            self._i0 = i
            self._bins = [count]
            return
        if i < self._i0:
            self._bins[:0] = [0] * (self._i0 - i)
            self._i0 = i
        j = i - self._i0
        if j >= len(self._bins):
            self._bins.extend([0] * (j - len(self._bins) + 1))
        self._bins[j] += count

    def _value_at(self, rank: int) -> float:
        """Estimate of the value of 0-based `rank` among the sorted values, clamped to [min, max]."""
        assert self._min is not None and self._max is not None
        if rank == 0:
            return self._min
        if rank == self._n - 1:
            return self._max
        if rank < self._low:
            return self._min
        rank -= self._low
        for j, c in enumerate(self._bins):
            if rank < c:
                estimate = self.min_s * 2 * self.gamma ** (self._i0 + j) / (self.gamma + 1)
                return min(max(estimate, self._min), self._max)
            rank -= c
        return self._max  # not reached while counts add up

    def get(self, q: float) -> float | None:
        """Estimate of quantile `q` in [0, 1] (linear interpolation between ranks, as numpy); None when empty."""
        if not 0 <= q <= 1:
            raise ValueError(f"q must be in [0, 1], got {q}")
        if self._n == 0:
            return None
        h = q * (self._n - 1)
        k = math.floor(h)
        value = self._value_at(k)
        frac = h - k
        if frac > 0:
            value += frac * (self._value_at(k + 1) - value)
        return value

    def merge(self, other: QuantileSketch) -> None:
        """Add all of `other`'s values to this sketch (same `rel_error` and `min_s` needed)."""
        if (other.rel_error, other.min_s) != (self.rel_error, self.min_s):
            raise ValueError(
                f"cannot merge sketches with different grids: ({self.rel_error}, {self.min_s}) "
                f"vs ({other.rel_error}, {other.min_s})"
            )
        if other._n == 0:
            return
        self._n += other._n
        self._sum += other._sum
        assert other._min is not None and other._max is not None
        self._min = other._min if self._min is None else min(self._min, other._min)
        self._max = other._max if self._max is None else max(self._max, other._max)
        self._low += other._low
        for j, c in enumerate(other._bins):
            if c:
                self._add_bin(other._i0 + j, c)

    # -- plain-data state -------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state; the grid (`rel_error`, `min_s`) is configuration, not state."""
        return {
            "n": self._n, "sum": self._sum, "min": self._min, "max": self._max,
            "low": self._low, "i0": self._i0, "bins": list(self._bins),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, *, rel_error: float = 0.02, min_s: float = 1.0) -> QuantileSketch:
        """Rebuild from `to_state()` output (None gives an empty sketch)."""
        sketch = cls(rel_error, min_s)
        if state:
            sketch._n = state["n"]
            sketch._sum = float(state["sum"])
            sketch._min = None if state["min"] is None else float(state["min"])
            sketch._max = None if state["max"] is None else float(state["max"])
            sketch._low = state["low"]
            sketch._i0 = state["i0"]
            sketch._bins = list(state["bins"])
        return sketch

    def __repr__(self) -> str:
        return f"QuantileSketch(n={self._n}, p50={self.get(0.5)}, p90={self.get(0.9)})"
