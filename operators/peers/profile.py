"""A store's hour-of-week profile: arrivals in each of the 168 local hours of the week, as shares.

Closed buckets go in one at a time: a bucket's start, read in the store's time zone, gives
its cell (`weekday * 24 + hour`, Monday 00:00 = 0) and its local week (Monday first). A
bucket shorter than an hour adds into the hour it starts in; a bucket of `None` arrivals is
a gap and adds nothing (a gap is not zero).

The profile keeps a ring of the last `weeks` local weeks, each 168 sums of arrivals and 168
hours of coverage (a 15-minute bucket covers a quarter of its hour), so its state is bounded:
`2 * weeks * 168` floats. A cell's level is its arrivals per covered hour over the weeks
kept, so a store open fewer weeks (or a cell missed one week) is the mean over the weeks
seen, never diluted by weeks it was not seen. On the day clocks go back one local hour
occurs twice: it is covered twice and its mean stays an hourly rate.

`shares()` normalises the levels to sum to 1 over the cells seen, so only the shape counts;
a cell never seen is NaN (unknown), not 0.

Examples
--------
Two weeks of one hour each Monday 09:00 and Tuesday 09:00 local (Pacific/Auckland, NZDT,
UTC+13), hourly buckets; the second Tuesday was a gap:

>>> import datetime as dt
>>> from footfall.operators.windows.localtime import wall_time_ms
>>> profile = HourOfWeekProfile(tz="Pacific/Auckland", weeks=4)
>>> for day, arrivals in [(dt.date(2026, 1, 5), 30), (dt.date(2026, 1, 6), 10),
...                       (dt.date(2026, 1, 12), 50), (dt.date(2026, 1, 13), None)]:
...     _ = profile.update(wall_time_ms(day, "Pacific/Auckland", 9), arrivals, bucket_ms=3_600_000)
...     print(day, profile.get()[[9, 33]], profile.weeks_seen)
2026-01-05 [30. nan] 1
2026-01-06 [30. 10.] 1
2026-01-12 [40. 10.] 2
2026-01-13 [40. 10.] 2
>>> profile.shares()[[9, 33]], int(np.isnan(profile.shares()).sum())
(array([0.8, 0.2]), 166)

"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from footfall.operators.windows.localtime import Zone, hour_of_week, local_day

__all__ = ["CELLS", "HOUR_MS", "HourOfWeekProfile", "local_week"]

CELLS = 168
HOUR_MS = 3_600_000


def local_week(day: dt.date) -> int:
    """The index of `day`'s Monday-first week (0 = the week of 0001-01-01, a Monday).

    >>> local_week(dt.date(2026, 1, 5)), local_week(dt.date(2026, 1, 11)), local_week(dt.date(2026, 1, 12))
    (105660, 105660, 105661)

    """
    return (day.toordinal() - 1) // 7


class HourOfWeekProfile:
    """Arrivals per local hour of the week over the last `weeks` weeks (see the module docstring).

    Parameters
    ----------
    tz
        The store's IANA time zone.
    weeks
        Weeks kept (the ring's length): 6 holds any calendar month whole.

    """

    def __init__(self, tz: Zone = "UTC", weeks: int = 6) -> None:
        if weeks < 1:
            raise ValueError(f"weeks must be at least 1, got {weeks}")
        self.tz = tz
        self.weeks = weeks
        self.week_ids = np.full(weeks, -1, dtype=np.int64)  # the local week each slot holds, -1 empty
        self.arrivals = np.zeros((weeks, CELLS))
        self.covered_h = np.zeros((weeks, CELLS))

    def update(self, bucket_start_ms: int, arrivals: float | None, bucket_ms: int = HOUR_MS) -> bool:
        """Take one closed bucket in; returns False for one older than the weeks kept (ignored).

        `arrivals=None` is a gap: nothing is added, and the cell stays unseen if nothing else
        covers it.
        """
        if not 0 < bucket_ms <= HOUR_MS:
            raise ValueError(f"bucket_ms must be in (0, 1 h], got {bucket_ms}")
        if arrivals is not None and (arrivals < 0 or arrivals != arrivals):
            raise ValueError(f"arrivals must be a count >= 0 or None, got {arrivals}")
        week = local_week(local_day(bucket_start_ms, self.tz))
        slot = week % self.weeks
        if self.week_ids[slot] != week:
            if week < self.week_ids[slot] or week <= self.newest_week - self.weeks:
                return False  # older than the ring holds
            self.week_ids[slot] = week
            self.arrivals[slot] = 0.0
            self.covered_h[slot] = 0.0
        if arrivals is None:
            return True
        cell = hour_of_week(bucket_start_ms, self.tz)
        self.arrivals[slot, cell] += arrivals
        self.covered_h[slot, cell] += bucket_ms / HOUR_MS
        return True

    @property
    def newest_week(self) -> int:
        """The latest local week taken in (-1 before any bucket)."""
        return int(self.week_ids.max())

    def _kept(self) -> np.ndarray:
        """Slots of the last `weeks` weeks (a slot not overwritten for longer is stale)."""
        return (self.week_ids >= 0) & (self.week_ids > self.newest_week - self.weeks)

    @property
    def weeks_seen(self) -> int:
        """Weeks kept that have at least one covered hour."""
        kept = self._kept()
        return int((self.covered_h[kept].sum(axis=1) > 0).sum())

    def get(self) -> np.ndarray:
        """Arrivals per covered hour in each of the 168 cells; NaN where never covered."""
        kept = self._kept()
        covered = self.covered_h[kept].sum(axis=0)
        total = self.arrivals[kept].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(covered > 0, total / np.where(covered > 0, covered, 1.0), np.nan)

    def shares(self) -> np.ndarray:
        """The levels normalised to sum 1 over the cells seen (NaN elsewhere); all NaN with no arrivals."""
        level = self.get()
        total = np.nansum(level)
        if not total > 0:
            return np.full(CELLS, np.nan)
        return level / total

    def to_state(self) -> dict[str, Any]:
        """Plain data: the ring's week ids, arrivals and covered hours (only the slots in use)."""
        used = [int(i) for i in np.flatnonzero(self.week_ids >= 0)]
        return {"slots": used, "week_ids": [int(self.week_ids[i]) for i in used],
                "arrivals": [self.arrivals[i].tolist() for i in used],
                "covered_h": [self.covered_h[i].tolist() for i in used]}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, tz: Zone = "UTC", weeks: int = 6) -> HourOfWeekProfile:
        """Rebuild from `to_state()` (None: an empty profile).

        >>> p = HourOfWeekProfile(weeks=2)
        >>> p.update(0, 5)
        True
        >>> q = HourOfWeekProfile.from_state(p.to_state(), weeks=2)
        >>> bool(np.array_equal(q.get(), p.get(), equal_nan=True)), q.newest_week == p.newest_week
        (True, True)

        """
        profile = cls(tz=tz, weeks=weeks)
        for slot, week, arrivals, covered in zip(state["slots"], state["week_ids"], state["arrivals"],
                                                 state["covered_h"], strict=True) if state else ():
            profile.week_ids[slot] = week
            profile.arrivals[slot] = arrivals
            profile.covered_h[slot] = covered
        return profile

    @classmethod
    def _unit_test_params(cls):
        yield {"tz": "Pacific/Auckland", "weeks": 4}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        # 2026-03-16T00:00Z on, every 29 hours for 6 weeks (over NZDT's end): the ring wraps.
        steps = [("update", (1_773_619_200_000 + i * 29 * HOUR_MS, None if i % 7 == 3 else float(i % 5)), {})
                 for i in range(35)]
        return {"steps": steps, "reads": [("weeks_seen",), ("newest_week",), ("to_state",)],
                "empty": [(("weeks_seen",), 0), (("newest_week",), -1)]}
