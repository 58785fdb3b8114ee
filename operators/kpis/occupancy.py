"""How many people are inside a store now, from door counts, with a daily reset to empty.

Occupancy is entries minus exits over all of a store's doors, kept at zero or
above: an exit that would take it below zero clamps it at 0, and the people it
could not remove are added to `drift` (door sensors miss people, mostly in
crowds). Counts are applied per event, net: an interval report of 5 in and 3 out
adds 2.

Errors pile up, so once a day, at a local wall-clock time when the store is
closed (04:00 by default, in the store's time zone), occupancy is set to 0 and
what was left is recorded as `reset_residual` (people counted in and never out).
The reset is driven by event time, never by a clock: `update` applies any reset
due at or before its event's time before counting, and `advance` applies them
without counts (call it on heartbeats, so a quiet store still resets). An event
older than the last reset belongs to a day already closed: it is not counted and
`late` rises.

Examples
--------
A small shop in London, reset at 04:00 local time (03:00 UTC in summer). Two doors;
at 21:00 two people are still inside by the counts, one exit too many was seen
earlier:

>>> import datetime as dt
>>> def ms(text):
...     return int(dt.datetime.fromisoformat(text).timestamp() * 1000)
>>> occupancy = Occupancy(tz="Europe/London", reset_at="04:00")
>>> for ts, entries, exits in [
...     ("2026-06-01T09:00:00+01:00", 3, 0),  # door A
...     ("2026-06-01T09:05:00+01:00", 0, 4),  # door B: one exit more than inside
...     ("2026-06-01T12:00:00+01:00", 5, 1),
...     ("2026-06-01T21:00:00+01:00", 0, 2),
...     ("2026-06-02T09:00:00+01:00", 1, 0),  # the next morning: reset at 04:00 first
... ]:
...     occupancy.update(ms(ts), entries, exits)
...     print(occupancy.get(), occupancy.drift, occupancy.reset_residual)
3 0 None
0 1 None
4 1 None
2 1 None
1 1 2
>>> occupancy.last_reset_ms == ms("2026-06-02T04:00:00+01:00")
True

"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DailyReset", "Occupancy"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
_DAY = dt.timedelta(days=1)


def _ms(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // _MS


def _parse_time(at: str | dt.time) -> dt.time:
    if isinstance(at, dt.time):
        if at.tzinfo is not None:
            raise ValueError(f"reset time must be a local wall-clock time without tzinfo, got {at}")
        return at
    try:
        return dt.time.fromisoformat(at)
    except (TypeError, ValueError):
        raise ValueError(f"reset time must be 'HH:MM' or 'HH:MM:SS', got {at!r}") from None


class DailyReset:
    """Instants (UTC epoch ms) at which a store's day starts: a local wall-clock time in its time zone.

    Parameters
    ----------
    tz
        IANA time-zone name of the store (`Europe/London`).
    at
        Local wall-clock time, `HH:MM` or `HH:MM:SS` (or a naive `datetime.time`).

    On a day the time does not exist (clocks jump over it), the reset is at the
    first instant after the gap; on a day it occurs twice, at the first one.

    Examples
    --------
    >>> import datetime as dt
    >>> reset = DailyReset("Europe/London", "01:30")
    >>> for day in [dt.date(2026, 3, 28), dt.date(2026, 3, 29), dt.date(2026, 10, 25)]:
    ...     print(dt.datetime.fromtimestamp(reset.instant_ms(day) / 1000, dt.UTC).isoformat())
    2026-03-28T01:30:00+00:00
    2026-03-29T01:00:00+00:00
    2026-10-25T00:30:00+00:00

    """

    __slots__ = ("_time", "_zone", "at", "tz")

    def __init__(self, tz: str = "UTC", at: str | dt.time = "04:00") -> None:
        try:
            self._zone = ZoneInfo(tz)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(f"unknown time zone {tz!r}") from None
        self._time = _parse_time(at)
        self.tz = tz
        self.at = self._time.isoformat()

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"tz": "Europe/London", "at": "01:30"}

    def _wall(self, ts_ms: int) -> dt.datetime:
        """Local wall-clock time (naive) of an instant."""
        return (_EPOCH + ts_ms * _MS).astimezone(self._zone).replace(tzinfo=None)

    def instant_ms(self, day: dt.date) -> int:
        """The reset instant of local date `day`."""
        wall = dt.datetime.combine(day, self._time)
        first = _ms(wall.replace(tzinfo=self._zone, fold=0))  # fold=0: the first of two occurrences
        if self._wall(first) == wall:
            return first
        # `wall` falls in a gap. fold=0 and fold=1 read it with the offsets before and after
        # the jump, giving one instant on each side of it; the first instant whose wall time
        # is >= `wall` is the end of the gap (wall time only jumps forward there).
        other = _ms(wall.replace(tzinfo=self._zone, fold=1))
        lo, hi = min(first, other), max(first, other)  # wall(lo) < wall <= wall(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._wall(mid) >= wall:
                hi = mid
            else:
                lo = mid
        return hi

    def next_after(self, ts_ms: int) -> int:
        """The first reset instant strictly after `ts_ms`."""
        day = self._wall(ts_ms).date() - _DAY
        while (instant := self.instant_ms(day)) <= ts_ms:
            day += _DAY
        return instant

    def last_at_or_before(self, ts_ms: int) -> int:
        """The latest reset instant at or before `ts_ms`."""
        day = self._wall(ts_ms).date() + _DAY
        while (instant := self.instant_ms(day)) > ts_ms:
            day -= _DAY
        return instant


class Occupancy:
    """People inside one store (all doors together), never negative, reset daily on event time.

    Parameters
    ----------
    tz
        The store's IANA time zone, for the daily reset.
    reset_at
        Local wall-clock time of the daily reset (`HH:MM`); choose one when the store is closed.

    Attributes
    ----------
    occupancy
        People inside now (`get()`).
    drift
        People that exits could not remove because occupancy was already 0, in total
        since the operator started (never reset; the difference between two readings
        is the drift in between).
    reset_residual
        Occupancy removed by the latest daily reset (None before the first one).
    last_reset_ms, next_reset_ms
        Latest reset applied, next one due (None before the first event).
    late
        Events not counted because they were older than the latest reset, in total.

    """

    __slots__ = ("daily_reset", "drift", "last_reset_ms", "late", "next_reset_ms", "occupancy", "reset_residual")

    def __init__(self, tz: str = "UTC", reset_at: str | dt.time = "04:00") -> None:
        self.daily_reset = DailyReset(tz, reset_at)
        self.occupancy = 0
        self.drift = 0
        self.reset_residual: int | None = None
        self.last_reset_ms: int | None = None
        self.next_reset_ms: int | None = None
        self.late = 0

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"tz": "Europe/London", "reset_at": "04:00"}
        yield {"tz": "America/Sao_Paulo", "reset_at": "00:00"}

    def advance(self, ts_ms: int) -> None:
        """Apply the daily resets due at or before `ts_ms` (event time), without counts."""
        if self.next_reset_ms is None:
            # The first event: nothing to reset yet (a reset at or before it would find 0).
            self.next_reset_ms = self.daily_reset.next_after(ts_ms)
            return
        if ts_ms < self.next_reset_ms:
            return
        # Several resets may have passed without events; the first one empties the store,
        # so all of the residual is that one's.
        self.reset_residual = self.occupancy
        self.occupancy = 0
        self.last_reset_ms = self.daily_reset.last_at_or_before(ts_ms)
        self.next_reset_ms = self.daily_reset.next_after(ts_ms)

    def update(self, ts_ms: int, entries: int, exits: int) -> None:
        """Count `entries` in and `exits` out at `ts_ms` (UTC epoch ms), after any reset due by then."""
        if entries < 0 or exits < 0:
            raise ValueError(f"entries and exits must be >= 0, got {entries} and {exits}")
        self.advance(ts_ms)
        if self.last_reset_ms is not None and ts_ms < self.last_reset_ms:
            self.late += 1
            return
        inside = self.occupancy + entries - exits
        if inside < 0:
            self.drift -= inside
            inside = 0
        self.occupancy = inside

    def get(self) -> int:
        """People inside now."""
        return self.occupancy

    def summary(self) -> dict[str, Any]:
        """Everything worth publishing, as plain data."""
        return self.to_state()

    # -- plain-data state, for Faust tables ------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state (the time zone and reset time are configuration, not state)."""
        return {
            "occupancy": self.occupancy,
            "drift": self.drift,
            "reset_residual": self.reset_residual,
            "last_reset_ms": self.last_reset_ms,
            "next_reset_ms": self.next_reset_ms,
            "late": self.late,
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any] | None, *, tz: str = "UTC", reset_at: str | dt.time = "04:00"
    ) -> Occupancy:
        """Rebuild from `to_state()` output (None gives an empty one)."""
        occupancy = cls(tz, reset_at)
        if state:
            occupancy.occupancy = state["occupancy"]
            occupancy.drift = state["drift"]
            occupancy.reset_residual = state["reset_residual"]
            occupancy.last_reset_ms = state["last_reset_ms"]
            occupancy.next_reset_ms = state["next_reset_ms"]
            occupancy.late = state["late"]
        return occupancy
