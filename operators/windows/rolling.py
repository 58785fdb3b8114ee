"""Baselines of closed buckets: a rolling mean, an exponentially weighted mean, and last week.

Fed one closed bucket at a time (what `TumblingBuckets.pop_closed` hands out, oldest
first), `BucketBaseline` keeps, per quantity:

- the mean of the last `window_size` closed buckets, with River's
  `utils.Rolling(stats.Mean, window_size=...)`;
- an exponentially weighted mean, River's `stats.EWMean(fading_factor)`: the first
  bucket sets it, then `ewm = fading_factor * x + (1 - fading_factor) * ewm`;
- the value of each bucket of the last seven days, so a new bucket meets the same
  bucket one week before (`bucket_start_ms - 7 days`, in UTC: for the first week after
  a DST change that is an hour off in local time).

`compare` sets a new bucket against those three; call it before `update` with the same
bucket, so the bucket is not compared with itself. Buckets with no events (a closed
shop at night) never close, so "the last N closed buckets" skips them.

Examples
--------
Daily buckets, a rolling mean of 3 days, `fading_factor=0.5`; day 7 meets day 0:

>>> DAY = 86_400_000
>>> baseline = BucketBaseline(bucket_ms=DAY, quantities=("arrivals",), window_size=3, fading_factor=0.5)
>>> print("day value last_week vs_last_week baseline vs_baseline ewm")
day value last_week vs_last_week baseline vs_baseline ewm
>>> for day, arrivals in enumerate([10, 12, 14, 12, 16, 8, 12, 15]):
...     c = baseline.compare(day * DAY, {"arrivals": arrivals})["arrivals"]
...     _ = baseline.update(day * DAY, {"arrivals": arrivals})
...     vs_lw, vs_b = c["vs_last_week"], c["vs_baseline"]
...     print(day, arrivals, c["last_week"], vs_lw and vs_lw["ratio"],
...           c["baseline"] and round(c["baseline"], 2), vs_b and round(vs_b["ratio"], 2), c["ewm"])
0 10 None None None None None
1 12 None None 10.0 1.2 10.0
2 14 None None 11.0 1.27 11.0
3 12 None None 12.0 1.0 12.5
4 16 None None 12.67 1.26 12.25
5 8 None None 14.0 0.57 14.125
6 12 None None 12.0 1.0 11.0625
7 15 10 1.5 12.0 1.25 11.53125
>>> baseline.get()
{'arrivals': {'mean': 11.666..., 'ewm': 13.265625}}

"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from river import stats, utils

from footfall.operators.kpis.durations import to_ms
from footfall.operators.windows.week_ring import WeekRing

__all__ = ["BucketBaseline"]

WEEK_MS = 7 * 86_400_000
#: What a store compares by default, in the names `FlowCounts` uses.
QUANTITIES = ("arrivals", "departures", "transactions")

Number = int | float


def _versus(value: Number, reference: Number | None) -> dict[str, Number | None] | None:
    """`value - reference` and `value / reference` (None when the reference is 0), or None without one."""
    if reference is None:
        return None
    return {"diff": value - reference, "ratio": value / reference if reference else None}


class BucketBaseline:
    """One store's baselines of closed buckets, per quantity.

    Parameters
    ----------
    bucket_ms
        Bucket length (ms or timedelta); it must divide a week. Bucket starts are multiples of it.
    quantities
        The quantities followed; `update` and `compare` read these keys and ignore others.
    window_size
        How many closed buckets the rolling mean covers.
    fading_factor
        Weight of the newest bucket in the exponentially weighted mean, in (0, 1].

    """

    __slots__ = (
        "_ewm",
        "_rolling",
        "_week",
        "bucket_ms",
        "buckets_per_week",
        "fading_factor",
        "last_bucket_ms",
        "quantities",
        "window_size",
    )

    def __init__(
        self,
        bucket_ms: int | dt.timedelta = 900_000,
        quantities: Iterable[str] = QUANTITIES,
        window_size: int = 8,
        fading_factor: float = 0.25,
    ) -> None:
        self.bucket_ms = to_ms(bucket_ms, "bucket_ms")
        self.quantities = tuple(quantities)
        if self.bucket_ms <= 0 or WEEK_MS % self.bucket_ms:
            raise ValueError(f"bucket_ms must be a positive divisor of a week ({WEEK_MS} ms), got {self.bucket_ms}")
        if not self.quantities or len(set(self.quantities)) != len(self.quantities):
            raise ValueError(f"quantities must be distinct names, at least one, got {self.quantities}")
        if window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        if not 0 < fading_factor <= 1:
            raise ValueError(f"fading_factor must be in (0, 1], got {fading_factor}")
        self.window_size = window_size
        self.fading_factor = fading_factor
        #: Entries of the week ring: one per bucket of the week.
        self.buckets_per_week = WEEK_MS // self.bucket_ms
        self._rolling = {q: utils.Rolling(stats.Mean, window_size=window_size) for q in self.quantities}
        self._ewm = {q: stats.EWMean(fading_factor=fading_factor) for q in self.quantities}
        # Bucket-of-week index -> values (in `quantities` order; None = not known). Only the
        # buckets (last - 1 week, last] are kept, so an entry at index i is *the* bucket of
        # that week position in the last seven days, never an older one. In arrays: as a dict of
        # lists it was the largest part of a store's memory (`operators.windows.week_ring`). In float32:
        # the values are mostly counts, which it holds exactly; any other value is kept apart, unchanged.
        self._week = WeekRing(self.buckets_per_week, len(self.quantities), "float32")
        self.last_bucket_ms: int | None = None

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"bucket_ms": 86_400_000, "quantities": ("arrivals",), "window_size": 3, "fading_factor": 0.5}
        yield {"bucket_ms": 3_600_000, "quantities": ("arrivals", "sales"), "window_size": 1, "fading_factor": 1.0}

    def _bucket_number(self, bucket_start_ms: int) -> int:
        if bucket_start_ms % self.bucket_ms:
            raise ValueError(f"bucket_start_ms={bucket_start_ms} is not a multiple of bucket_ms={self.bucket_ms}")
        return bucket_start_ms // self.bucket_ms

    def _values(self, values: Mapping[str, Number]) -> list[Number]:
        out = []
        for q in self.quantities:
            if q not in values:
                raise ValueError(f"values lack {q!r}; this baseline follows {self.quantities}")
            v = values[q]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ValueError(f"value of {q!r} must be a finite number, got {v!r}")
            out.append(v)
        return out

    def update(self, bucket_start_ms: int, values: Mapping[str, Number]) -> bool:
        """Take in a closed bucket; False (and nothing changes) when it is not newer than the last one."""
        n = self._bucket_number(bucket_start_ms)
        row = self._values(values)
        if self.last_bucket_ms is not None and bucket_start_ms <= self.last_bucket_ms:
            return False
        for q, v in zip(self.quantities, row, strict=True):
            self._rolling[q].update(v)
            self._ewm[q].update(v)
        # Week ring: the buckets (last_n - week, last_n] become (n - week, n]; the entries of
        # the skipped buckets last_n + 1 .. n - 1 now hold buckets older than a week: drop them.
        if self.last_bucket_ms is None or n - self.last_bucket_ms // self.bucket_ms >= self.buckets_per_week:
            self._week.clear()
        else:
            for m in range(self.last_bucket_ms // self.bucket_ms + 1, n):
                self._week.discard(m % self.buckets_per_week)
        self._week.put(n % self.buckets_per_week, row)
        self.last_bucket_ms = bucket_start_ms
        return True

    def last_week(self, bucket_start_ms: int) -> dict[str, Number | None] | None:
        """Values of the bucket one week before `bucket_start_ms` (a bucket newer than the last one), or None."""
        n = self._bucket_number(bucket_start_ms)
        if self.last_bucket_ms is None:
            return None
        last_n = self.last_bucket_ms // self.bucket_ms
        # Only (last_n - week, last_n] is kept: n - week is in it when last_n < n <= last_n + week.
        if not last_n < n <= last_n + self.buckets_per_week:
            return None
        row = self._week.get(n % self.buckets_per_week)
        return None if row is None else dict(zip(self.quantities, row, strict=True))

    def get(self) -> dict[str, dict[str, float | None]]:
        """Per quantity, the rolling `mean` and the `ewm`, None before the first bucket."""
        out: dict[str, dict[str, float | None]] = {}
        for q in self.quantities:
            rolling = self._rolling[q]
            out[q] = {
                "mean": rolling.get() if rolling.window else None,
                "ewm": self._ewm[q].get() if rolling.window else None,
            }
        return out

    def compare(self, bucket_start_ms: int, values: Mapping[str, Number]) -> dict[str, dict[str, Any]]:
        """Set a new closed bucket against last week and the baselines (call before `update`).

        Per quantity: `value`; `last_week`, `baseline` (rolling mean) and `ewm`, each None
        when unknown; and `vs_last_week`, `vs_baseline`, `vs_ewm`: `{"diff", "ratio"}` of
        the value to that reference (`ratio` None when the reference is 0), or None.
        """
        row = self._values(values)
        week = self.last_week(bucket_start_ms) or {}
        current = self.get()
        out: dict[str, dict[str, Any]] = {}
        for q, v in zip(self.quantities, row, strict=True):
            lw, mean, ewm = week.get(q), current[q]["mean"], current[q]["ewm"]
            out[q] = {
                "value": v,
                "last_week": lw,
                "vs_last_week": _versus(v, lw),
                "baseline": mean,
                "vs_baseline": _versus(v, mean),
                "ewm": ewm,
                "vs_ewm": _versus(v, ewm),
            }
        return out

    # -- plain-data state, for Faust tables ------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state.

        `q[name]` = `{"w": last window_size values, oldest first, "m": their running mean
        as River holds it, "e": the EW mean}`; `week` = bucket-of-week index -> values in
        `names` order.
        """
        return {
            "bucket_ms": self.bucket_ms,
            "last": self.last_bucket_ms,
            "names": list(self.quantities),
            "q": {
                q: {
                    "w": [args[0] for args, _ in self._rolling[q].window],
                    "m": self._rolling[q].get(),
                    "e": self._ewm[q].get() if self._rolling[q].window else None,
                }
                for q in self.quantities
            },
            "week": {str(i): row for i, row in self._week.items()},
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any] | None,
        *,
        bucket_ms: int | dt.timedelta = 900_000,
        quantities: Iterable[str] = QUANTITIES,
        window_size: int = 8,
        fading_factor: float = 0.25,
    ) -> BucketBaseline:
        """Rebuild from `to_state()` output (None gives an empty one).

        A quantity new to the state starts empty; one no longer configured is dropped; a
        smaller `window_size` keeps the newest values. A different `bucket_ms` raises ValueError.
        """
        baseline = cls(bucket_ms, quantities, window_size, fading_factor)
        if not state or state.get("last") is None:
            return baseline
        if state.get("bucket_ms") != baseline.bucket_ms:
            raise ValueError(f"state has bucket_ms={state.get('bucket_ms')}, this baseline {baseline.bucket_ms}")
        baseline.last_bucket_ms = int(state["last"])
        saved = state.get("q", {})
        for q in baseline.quantities:
            if q not in saved:
                continue
            values = saved[q]["w"]
            rolling = baseline._rolling[q]
            # Re-feeding the window rebuilds River's deque of (args, kwargs) exactly as
            # `Rolling.update` builds it, so later reverts drop the right values.
            for v in values[-window_size:]:
                rolling.update(v)
            if len(values) <= window_size and values:
                # A Mean that has seen update/revert pairs carries rounding of its own history:
                # re-fed, it can differ in the last bits. River's `Mean._from_state(n, mean)`
                # (river/stats/mean.py) sets both fields, so later outputs are identical.
                rolling.obj = stats.Mean._from_state(float(len(values)), float(saved[q]["m"]))
            if saved[q].get("e") is not None:
                # River 0.26's EWMean wraps a Rust `RsEWMean` (rust_src/ewmean.rs): its state is
                # (mean, alpha, 1 - alpha, initialized), and its first update does exactly
                # `mean = x; initialized = true`. Feeding the saved mean once therefore sets the
                # internal value as River stores it, bit for bit (checked in the tests by
                # comparing `RsEWMean.__getstate__()` bytes), through the public API.
                baseline._ewm[q].update(float(saved[q]["e"]))
        names = list(state.get("names", []))
        columns = [names.index(q) if q in names else None for q in baseline.quantities]
        for i, row in state.get("week", {}).items():
            baseline._week.put(int(i), [None if c is None else row[c] for c in columns])
        return baseline
