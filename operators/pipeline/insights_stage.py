"""The insights stage: each local day of a store, its weekday × hour heatmap and its totals in perspective.

Every closed bucket is learned: its counts of `arrivals`, `transactions` and `tickets_issued`
go to the local day and hour it starts in (`context.tz`), in a four-week heatmap
(`insights.heatmap.HourlyHeatmap`) and a year of daily totals (`insights.daily.DailyTotals`).
At the closed bucket that ends a local day (or, after a silence no bucket covered, at the
first bucket of a later day) the stage gives an `InsightsOutput` for that day:

- `heatmap`: per series, the mean count per weekday × local hour over the last 28 days,
  and over how many days each mean is;
- `today`: the day's totals against the same weekday last week and last year (364 days
  back), as counts and %, null where the reference day has no data;
- `week`, when the day is a Sunday (ISO weeks close then): the week against the one
  before, with Welch's t-test of the daily totals and the correlation of daily arrivals
  with transactions (retail) or tickets issued (bank, telecom) over four weeks
  (`insights.weekly`).

A retail store's record covers arrivals and transactions, a bank's or telecom shop's
arrivals and tickets issued; a store whose vertical is not known yet, all three.

Examples
--------
>>> from footfall.operators.pipeline.stage import ClosedBucket, StoreContext
>>> ctx = StoreContext("shop-1", bucket_ms=3_600_000, tz="Europe/London", vertical="retail")
>>> stage = Insights().build(ctx, None)
>>> day_start = 1_772_409_600_000  # Monday 2026-03-02 00:00 GMT
>>> outputs = []
>>> for h in range(24):
...     kpis = {"arrivals": 10 if 9 <= h < 18 else 0, "transactions": 2 if 9 <= h < 18 else 0}
...     outputs += stage.on_bucket_closed(ClosedBucket(day_start + h * 3_600_000, 3_600_000, kpis), ctx)
>>> [record] = outputs
>>> record.day, record.series, record.today["arrivals"]["total"], record.today["arrivals"]["last_week"]
('2026-03-02', ['arrivals', 'transactions'], 90, None)
>>> record.heatmap["arrivals"]["mean"][0][9], record.heatmap["arrivals"]["weeks"][0][9], record.week is None
(10.0, 1, True)

"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from footfall.operators.insights.daily import DailyTotals
from footfall.operators.insights.heatmap import HourlyHeatmap
from footfall.operators.insights.weekly import day_against_references, weekly_summary
from footfall.operators.pipeline.stage import ClosedBucket, OpenBucket, StoreContext, build_only_sample
from footfall.operators.windows.localtime import day_bounds_ms
from footfall.schemas.events import Event

__all__ = ["SERIES", "Insights", "InsightsOutput", "StoreInsights"]

#: Bucket counters followed: the store's traffic, its sales and its queue tickets.
SERIES: tuple[str, ...] = ("arrivals", "transactions", "tickets_issued")
#: What a store of each vertical is shown, and the series its arrivals are correlated with.
VERTICAL_SERIES: dict[str | None, tuple[str, ...]] = {
    "retail": ("arrivals", "transactions"), "bank": ("arrivals", "tickets_issued"),
    "telecom": ("arrivals", "tickets_issued"),
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class InsightsOutput:
    """One local day of a store: its heatmap, its totals against last week and last year, its week at a Sunday."""

    kind: ClassVar[str] = "insights"
    day: str
    day_start_ms: int
    day_end_ms: int
    made_at_ms: int
    series: list[str]
    heatmap_from: str
    heatmap: dict[str, dict[str, list[list[Any]]]]
    today: dict[str, dict[str, Any]]
    week: dict[str, Any] | None = None

    @property
    def slot(self) -> str:
        return f"insights:{self.day}"

    def fields(self) -> dict[str, Any]:
        return {"day": self.day, "day_start_ms": self.day_start_ms, "day_end_ms": self.day_end_ms,
                "made_at_ms": self.made_at_ms, "series": list(self.series), "heatmap_from": self.heatmap_from,
                "heatmap": self.heatmap, "today": self.today, "week": self.week}


@dataclass(frozen=True)
class Insights:
    """Configuration of the insights stage (see the module docstring).

    Parameters
    ----------
    heatmap_days
        Local days the heatmap averages over (28: four of each weekday).
    series
        Bucket counters followed.

    """

    name: ClassVar[str] = "insights"
    heatmap_days: int = 28
    series: tuple[str, ...] = SERIES

    def __post_init__(self) -> None:
        if self.heatmap_days < 7:
            raise ValueError(f"heatmap_days must cover a week at least, got {self.heatmap_days}")

    @classmethod
    def from_settings(cls, settings: Any) -> Insights:
        """The defaults: nothing of it is configured yet."""
        return cls()

    @classmethod
    def _unit_test_params(cls):
        yield {}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        return build_only_sample(StoreContext("s1", 3_600_000, "Europe/London", "north", "retail"))

    def build(self, context: StoreContext, state: Any | None) -> StoreInsights:
        if not state:
            return StoreInsights(self, context.tz)
        return StoreInsights(self, context.tz, HourlyHeatmap.from_state(state["heatmap"]),
                             DailyTotals.from_state(state["daily"]), state["day"], state["reported"])


class StoreInsights:
    """One store's heatmap and daily totals, and its day's insights at each local day's close."""

    event_kinds: ClassVar[frozenset[str]] = frozenset()  # buckets carry every count it reads

    def __init__(self, config: Insights, tz: str, heatmap: HourlyHeatmap | None = None,
                 daily: DailyTotals | None = None, day: int | None = None, reported: int | None = None) -> None:
        self.config = config
        self.heatmap = heatmap or HourlyHeatmap(config.series, config.heatmap_days)
        self.daily = daily or DailyTotals(config.series)
        self._zone = ZoneInfo(tz)
        self._tz = tz
        self._day = day  # ordinal of the local day of the latest bucket learned
        self._day_end_ms = None if day is None else day_bounds_ms(dt.date.fromordinal(day), tz)[1]
        self._reported = reported  # ordinal of the latest day given out
        self.changed = False

    def on_event(self, event: Event, context: StoreContext) -> None:
        return None  # buckets carry every count this stage reads

    def on_partial(self, bucket: OpenBucket, context: StoreContext) -> list[InsightsOutput]:
        return []

    def on_bucket_closed(self, bucket: ClosedBucket, context: StoreContext) -> list[InsightsOutput]:
        if context.tz != self._tz:  # the store's zone was changed: its days are read in the new one from now
            self._zone, self._tz = ZoneInfo(context.tz), context.tz
            self._day_end_ms = None if self._day is None else day_bounds_ms(dt.date.fromordinal(self._day),
                                                                            context.tz)[1]
        self.changed = True
        local = (_EPOCH + dt.timedelta(milliseconds=bucket.start_ms)).astimezone(self._zone)
        day, ordinal = local.date(), local.toordinal()
        outputs = []
        if self._day is not None and ordinal > self._day and self._reported != self._day:
            # The day before ended without its last bucket (a silence no bucket covered): it is over now.
            outputs.append(self._report(dt.date.fromordinal(self._day), bucket.start_ms, context))
        self.heatmap.update(day, local.hour, bucket.kpis)
        self.daily.update(day, bucket.kpis)
        if self._day is None or ordinal > self._day:
            self._day, self._day_end_ms = ordinal, day_bounds_ms(day, self._zone)[1]
        if ordinal == self._day and bucket.end_ms >= self._day_end_ms and self._reported != ordinal:
            outputs.append(self._report(day, bucket.end_ms, context))
        return outputs

    def _report(self, day: dt.date, made_at_ms: int, context: StoreContext) -> InsightsOutput:
        self._reported = day.toordinal()
        series = [s for s in VERTICAL_SERIES.get(context.vertical, self.config.series) if s in self.config.series]
        partner = "transactions" if context.vertical not in ("bank", "telecom") else "tickets_issued"
        start_ms, end_ms = day_bounds_ms(day, self._zone)
        heatmap = {name: {"mean": [[None if m is None else round(m, 3) for m in row] for row in cell["mean"]],
                          "weeks": cell["weeks"]}
                   for name, cell in self.heatmap.get(day).items() if name in series}
        week = weekly_summary(self.daily, day, series, partner) if day.weekday() == 6 else None
        return InsightsOutput(day.isoformat(), start_ms, end_ms, made_at_ms, series,
                              (day - dt.timedelta(days=self.config.heatmap_days - 1)).isoformat(), heatmap,
                              day_against_references(self.daily, day, series), week)

    def to_state(self) -> dict[str, Any]:
        return {"heatmap": self.heatmap.to_state(), "daily": self.daily.to_state(), "day": self._day,
                "reported": self._reported}
