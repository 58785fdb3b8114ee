"""Weekday × hour heatmap of a store's counts over its last local weeks.

Each closed bucket adds its counts to the local day and hour it starts in (`context.tz`). The
heatmap's cell (weekday, hour) is the mean of that hour's count over the days of that weekday,
within the last `days` local days, on which the hour was seen: an hour missing from a day (no
bucket of it closed, or the hour clocks skip when they go forward) does not count as a zero, and
`weeks` says how many days each mean is over. The hour clocks go back repeats on the day they do
holds both its occurrences (the day's count for that hour, as a till reads it).

State: a ring of `days` local days (28 by default), each with 24 counts per series and a mask of
the hours seen, keyed by the day's ordinal: bounded whatever the store's history.

Examples
--------
>>> import datetime as dt
>>> hm = HourlyHeatmap(series=("arrivals",), days=14)
>>> monday = dt.date(2026, 3, 2)
>>> for week, count in enumerate([4, 6]):
...     hm.update(monday + dt.timedelta(weeks=week), 9, {"arrivals": count})
...     cell = hm.get(monday + dt.timedelta(weeks=week))["arrivals"]
...     print(cell["mean"][0][9], cell["weeks"][0][9], cell["mean"][0][10])
4.0 1 None
5.0 2 None
>>> hm.get(monday + dt.timedelta(days=14))["arrivals"]["weeks"][0][9]  # the first Monday is out of the window
1

"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["HourlyHeatmap"]

HOURS = 24
WEEKDAYS = 7


class HourlyHeatmap:
    """Counts per local day and hour over the last `days` days; means per weekday × hour (see the module).

    Parameters
    ----------
    series
        The counters followed (bucket KPI names, e.g. `arrivals`, `transactions`).
    days
        Local days kept, ending at the latest day seen (28: four weeks).

    """

    def __init__(self, series: Sequence[str] = ("arrivals",), days: int = 28) -> None:
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        if not series or len(set(series)) != len(series):
            raise ValueError(f"series must be distinct names, got {list(series)}")
        self.series = tuple(series)
        self.days = days
        # Slot i holds the day whose ordinal is congruent to i mod `days`, or is None.
        self._ordinal: list[int | None] = [None] * days
        self._seen: list[int] = [0] * days  # bit h set: hour h of that day was seen
        self._counts: list[list[list[int]]] = [self._empty_day() for _ in range(days)]
        self._latest: int | None = None

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"series": ("arrivals", "transactions"), "days": 14}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        series = params.get("series", ("arrivals",))
        start = dt.date(2026, 3, 2)
        steps = [("update", (start + dt.timedelta(days=d), h, {s: 3 * d + h + i for i, s in enumerate(series)}), {})
                 for d in (0, 1, 7, 9, 14) for h in (9, 17)]
        reads = [("get", (start + dt.timedelta(days=14),), {})]
        empty = [(("get", (start,), {}), {s: {"mean": [[None] * HOURS for _ in range(WEEKDAYS)],
                                               "weeks": [[0] * HOURS for _ in range(WEEKDAYS)]} for s in series})]
        return {"steps": steps, "reads": reads, "empty": empty}

    def _empty_day(self) -> list[list[int]]:
        return [[0] * HOURS for _ in self.series]

    def update(self, day: dt.date, hour: int, counts: Mapping[str, Any]) -> None:
        """Add `counts` (series -> count; missing series count 0) to local `day`, hour `hour` (0-23)."""
        if not 0 <= hour < HOURS:
            raise ValueError(f"hour must be in 0..23, got {hour}")
        ordinal = day.toordinal()
        if self._latest is not None and ordinal <= self._latest - self.days:
            return  # older than the window: it can never be read
        slot = ordinal % self.days
        if self._ordinal[slot] != ordinal:  # a day new to the ring takes the slot of one `days` older
            self._ordinal[slot], self._seen[slot], self._counts[slot] = ordinal, 0, self._empty_day()
        self._seen[slot] |= 1 << hour
        row = self._counts[slot]
        for i, name in enumerate(self.series):
            row[i][hour] += int(counts.get(name) or 0)
        if self._latest is None or ordinal > self._latest:
            self._latest = ordinal

    def get(self, until: dt.date) -> dict[str, dict[str, list[list[Any]]]]:
        """Per series: `mean` (7 weekdays, Monday first, × 24 hours; None where no day had the hour) and
        `weeks` (how many days each mean is over), over the `days` local days ending at `until`."""
        last = until.toordinal()
        sums = [[[0] * HOURS for _ in range(WEEKDAYS)] for _ in self.series]
        weeks = [[0] * HOURS for _ in range(WEEKDAYS)]
        for slot, ordinal in enumerate(self._ordinal):
            if ordinal is None or not last - self.days < ordinal <= last:
                continue
            weekday, seen, row = dt.date.fromordinal(ordinal).weekday(), self._seen[slot], self._counts[slot]
            for hour in range(HOURS):
                if seen >> hour & 1:
                    weeks[weekday][hour] += 1
                    for i in range(len(self.series)):
                        sums[i][weekday][hour] += row[i][hour]
        return {name: {"mean": [[s / n if n else None for s, n in zip(sums[i][w], weeks[w], strict=True)]
                                for w in range(WEEKDAYS)],
                       "weeks": [list(w) for w in weeks]}
                for i, name in enumerate(self.series)}

    def to_state(self) -> dict[str, Any]:
        # Only the days held, as [ordinal, hours-seen mask, counts per series]: a new store's state is tiny.
        held = [[o, self._seen[slot], [list(r) for r in self._counts[slot]]]
                for slot, o in enumerate(self._ordinal) if o is not None]
        return {"series": list(self.series), "days": self.days, "held": held}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> HourlyHeatmap:
        out = cls(state["series"], state["days"])
        for ordinal, seen, counts in state["held"]:
            slot = ordinal % out.days
            out._ordinal[slot], out._seen[slot], out._counts[slot] = ordinal, seen, [list(r) for r in counts]
            out._latest = ordinal if out._latest is None else max(out._latest, ordinal)
        return out
