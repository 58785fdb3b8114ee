"""Each sensor's uptime over a store's local day: the share of the day its reports covered.

`DailyUptime` adds up, per sensor, the milliseconds its reports covered in each closed
stretch of time (`add(lo, hi, covered)`, a stretch within one local day: `pieces` splits a
bucket at local midnights, for zones whose offset is not a multiple of the bucket). When a
stretch reaches the end of its local day, the day is reported: per sensor, covered
milliseconds over the day's length, which is 23 or 25 hours on the days clocks change
(`windows.localtime.day_bounds_ms`). A day whose last stretch never came (a silence no bucket
covered) is reported at the first stretch of a later day, over its whole length. A day first
seen after its start (a store's first: the stage was not there at its midnight) is not
reported: its early hours would read as down.

Sensors given with no time covered (`known`) are reported at 0.

Examples
--------
Europe/London, 29 March 2026: clocks go forward, the day is 23 hours. A sensor that covered
11.5 hours of it was up half the day.

>>> HOUR = 3_600_000
>>> uptime = DailyUptime("Europe/London")
>>> day_start = 1_774_742_400_000  # 2026-03-29 00:00 GMT
>>> uptime.add(day_start, day_start + 12 * HOUR, {"c1": 11.5 * HOUR, "c2": 0}, ["c1", "c2"])
[]
>>> [report] = uptime.add(day_start + 12 * HOUR, day_start + 23 * HOUR, {"c2": 11 * HOUR}, ["c1", "c2"])
>>> report["day"], report["hours"], report["sensors"]
('2026-03-29', 23.0, {'c1': 0.5, 'c2': 0.4783})
>>> uptime.pieces(day_start + 22 * HOUR, day_start + 24 * HOUR)  # across midnight
[(1774821600000, 1774825200000), (1774825200000, 1774828800000)]

"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from footfall.operators.windows.localtime import day_bounds_ms

__all__ = ["DailyUptime"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
_HOUR_MS = 3_600_000


class DailyUptime:
    """Per sensor, covered time per local day of `tz`, reported as shares at each day's end."""

    __slots__ = ("_covered", "_day", "_end", "_reported", "_start", "_whole", "_zone", "tz")

    def __init__(self, tz: str = "UTC") -> None:
        self.tz = tz
        self._zone = ZoneInfo(tz)
        self._day: int | None = None  # ordinal of the local day being added up
        self._start = self._end = 0
        self._covered: dict[str, float] = {}
        self._reported: int | None = None  # ordinal of the latest day reported
        self._whole = False  # the day being added up was followed from its start

    @classmethod
    def _unit_test_params(cls):
        yield {"tz": "Europe/London"}
        yield {"tz": "Asia/Kolkata"}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        h = _HOUR_MS
        t0 = 1_774_569_600_000  # 2026-03-27 00:00Z: London's days of 24 and 23 hours, Kolkata's offset of 5:30
        steps = []
        for k in range(0, 60, 6):
            for lo, hi in DailyUptime(params["tz"]).pieces(t0 + k * h, t0 + (k + 6) * h):
                steps.append(("add", (lo, hi, {"c1": (hi - lo) // 2, "c2": (hi - lo) * (k % 3) // 3}, ["c1"]), {}))
        return {"steps": steps, "reads": [("reported_day", (), {})], "empty": [(("reported_day", (), {}), None)]}

    def reported_day(self) -> str | None:
        """The latest local day reported (ISO 8601); None before any."""
        return None if self._reported is None else dt.date.fromordinal(self._reported).isoformat()

    def _day_of(self, ts_ms: int) -> dt.date:
        return (_EPOCH + ts_ms * _MS).astimezone(self._zone).date()

    def pieces(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """`[lo, hi)` split at the local midnights inside it."""
        out = []
        while lo < hi:
            if self._day is not None and self._start <= lo < self._end:
                end = self._end
            else:
                end = day_bounds_ms(self._day_of(lo), self._zone)[1]
            out.append((lo, min(hi, end)))
            lo = min(hi, end)
        return out

    def add(self, lo: int, hi: int, covered: Mapping[str, float], known: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Add each sensor's covered ms of `[lo, hi)` (within one local day); return the days that ended."""
        out = []
        if self._day is not None and self._start <= lo < self._end:
            ordinal = self._day
        else:
            day = self._day_of(lo)
            ordinal = day.toordinal()
            if self._day is not None and ordinal < self._day:
                return out  # older than the day being added up: it was reported already
            if self._day is not None and self._reported != self._day:
                out += self._report()  # the day ended without its last stretch: it is over now
            self._start, self._end = day_bounds_ms(day, self._zone)
            self._whole = self._day is not None or lo <= self._start
            self._day, self._covered = ordinal, {}
        for sensor in known:
            self._covered.setdefault(sensor, 0)
        for sensor, ms in covered.items():
            self._covered[sensor] = self._covered.get(sensor, 0) + ms
        if hi >= self._end and self._reported != ordinal:
            out += self._report()
        return out

    def _report(self) -> list[dict[str, Any]]:
        """The day being added up, as reported (none if it was not followed from its start); it is over."""
        assert self._day is not None
        self._reported = self._day
        if not self._whole:
            return []
        length = self._end - self._start
        return [{"day": dt.date.fromordinal(self._day).isoformat(), "day_start_ms": self._start,
                 "day_end_ms": self._end, "hours": length / _HOUR_MS,
                 "sensors": {s: round(ms / length, 4) for s, ms in sorted(self._covered.items())}}]

    def to_state(self) -> dict[str, Any]:
        return {"tz": self.tz, "day": self._day, "covered": dict(self._covered), "reported": self._reported,
                "whole": self._whole}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> DailyUptime:
        out = cls(state["tz"])
        out._covered = dict(state["covered"])
        out._reported = state["reported"]
        out._whole = bool(state.get("whole", True))
        if state["day"] is not None:
            out._day = state["day"]
            out._start, out._end = day_bounds_ms(dt.date.fromordinal(state["day"]), out._zone)
        return out
