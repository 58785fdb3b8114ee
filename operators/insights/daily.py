"""A store's daily totals for a year, and a day against the same weekday a week and a year before.

`DailyTotals` keeps, per series, one total per local day in a ring of `days` slots (371: a
year of 52 weeks, 364 days, and one more week, so a week's close can still reach a year back).
A day the store gave nothing for (no bucket of it closed) stays None: a missing day is not a
zero, and a comparison with it is None too.

`compare(today, reference)` gives the change as a count and a percentage: None when the
reference day has no data, and the percentage None as well when the reference is 0 (no
growth rate from nothing).

Examples
--------
>>> import datetime as dt
>>> totals = DailyTotals(series=("arrivals",))
>>> monday = dt.date(2026, 3, 2)
>>> for offset, count in [(0, 120), (7, 150), (14, 0)]:
...     totals.update(monday + dt.timedelta(days=offset), {"arrivals": count})
...     print(totals.total("arrivals", monday + dt.timedelta(days=offset)))
120
150
0
>>> totals.total("arrivals", monday + dt.timedelta(days=1)) is None  # nothing came for that Tuesday
True
>>> compare(150, 120), compare(150, None), compare(3, 0)
((30, 25.0), (None, None), (3, None))

"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["LAST_WEEK_DAYS", "LAST_YEAR_DAYS", "DailyTotals", "compare"]

#: Days back to the same weekday last week, and last year (52 weeks: the same weekday).
LAST_WEEK_DAYS = 7
LAST_YEAR_DAYS = 364


def compare(today: int | None, reference: int | None) -> tuple[int | None, float | None]:
    """`(today - reference, percent change)`; None without either day, the percentage None when reference is 0."""
    if today is None or reference is None:
        return None, None
    change = today - reference
    return change, (100.0 * change / reference if reference else None)


class DailyTotals:
    """One total per series and local day, for the last `days` days (see the module docstring).

    Parameters
    ----------
    series
        The counters followed (bucket KPI names).
    days
        Local days kept, ending at the latest seen (371: a year back and a week more).

    """

    def __init__(self, series: Sequence[str] = ("arrivals",), days: int = LAST_YEAR_DAYS + 7) -> None:
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        if not series or len(set(series)) != len(series):
            raise ValueError(f"series must be distinct names, got {list(series)}")
        self.series = tuple(series)
        self.days = days
        self._latest: int | None = None  # ordinal of the latest day seen; slot = ordinal % days
        self._totals: dict[str, list[int | None]] = {s: [None] * days for s in self.series}

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"series": ("arrivals", "tickets_issued"), "days": 10}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        series = params.get("series", ("arrivals",))
        start = dt.date(2026, 3, 2)
        steps = [("update", (start + dt.timedelta(days=d), {s: 10 * d + i for i, s in enumerate(series)}), {})
                 for d in (0, 1, 3, 8, 9, 12)]
        reads = [("total", (series[0], start + dt.timedelta(days=d)), {}) for d in (1, 3, 9, 12)]
        return {"steps": steps, "reads": reads, "empty": [(("total", (series[0], start), {}), None)]}

    def update(self, day: dt.date, counts: Mapping[str, Any]) -> None:
        """Add `counts` (series -> count; missing series count 0) to local `day`; the day now has data."""
        ordinal = day.toordinal()
        latest = self._latest
        if latest is not None and ordinal <= latest - self.days:
            return  # older than the ring reaches
        if latest is None or ordinal > latest:
            # The days between the latest and this one had nothing: their slots (a year old) are cleared.
            first = ordinal - self.days + 1 if latest is None else max(latest + 1, ordinal - self.days + 1)
            for o in range(first, ordinal + 1):
                for ring in self._totals.values():
                    ring[o % self.days] = None
            self._latest = ordinal
        slot = ordinal % self.days
        for name, ring in self._totals.items():
            ring[slot] = (ring[slot] or 0) + int(counts.get(name) or 0)

    def total(self, series: str, day: dt.date) -> int | None:
        """The total of `series` on local `day`; None if the day has no data or is out of reach."""
        ordinal = day.toordinal()
        if self._latest is None or not self._latest - self.days < ordinal <= self._latest:
            return None
        return self._totals[series][ordinal % self.days]

    def to_state(self) -> dict[str, Any]:
        return {"series": list(self.series), "days": self.days, "latest": self._latest,
                "totals": {s: list(r) for s, r in self._totals.items()}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> DailyTotals:
        out = cls(state["series"], state["days"])
        out._latest = state["latest"]
        out._totals = {s: list(state["totals"][s]) for s in out.series}
        return out
