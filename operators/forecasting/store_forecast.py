"""A store's live forecasts: one online selection per series, learned at each closed bucket.

The series follow the vertical: `arrivals` for every store, `transactions` for
retail, `tickets_issued` for banks and telecom shops (a store whose vertical is
not known yet forecasts arrivals only, and adds its series when it is). Each
series has its own `OnlineSelector` over `candidates` (the same set `footfall
evaluate forecast` scores offline, so the published forecasts are the offline
ones), and publishes the next `horizon` buckets with 80 % and 95 % intervals.

`learn_bucket` is idempotent: a bucket at or before the last one learned is
ignored, so a re-applied input (after a crash) changes nothing; a skipped
bucket is learned as a gap. A store is `cold` until it has a week of buckets
(a full weekly season): its forecast then comes mostly from its vertical's
profile (`operators.forecasting.cold_start`).

Examples
--------
>>> hour = 3_600_000
>>> forecasts = StoreForecasts(bucket_ms=hour, horizon=3, tz="UTC", vertical="bank")
>>> monday = 1_763_942_400_000  # 2025-11-24 00:00 UTC, a Monday
>>> published = forecasts.learn_bucket(monday + 9 * hour, {"arrivals": 12, "tickets_issued": 7})
>>> [(p.series, p.cold, len(p.forecast.values)) for p in published]
[('arrivals', True, 3), ('tickets_issued', True, 3)]
>>> published[0].forecast.model
'vertical_profile'
>>> forecasts.learn_bucket(monday + 9 * hour, {"arrivals": 12, "tickets_issued": 7})  # the same bucket again
[]

"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from footfall.operators import pickled
from footfall.operators.forecasting.cold_start import VerticalProfile
from footfall.operators.forecasting.forecast_select import Forecast, OnlineSelector
from footfall.operators.forecasting.forecasters import (
    CalendarRegression,
    Forecaster,
    HoltWintersForecaster,
    SeasonalNaive,
    SnarimaxForecaster,
)

__all__ = ["SERIES", "PublishedForecast", "StoreForecasts", "candidates_for", "log_spaced", "make_selector",
           "series_for"]

DAY_MS = 86_400_000

#: Series forecast per vertical (None: not known yet).
SERIES: dict[str | None, tuple[str, ...]] = {
    None: ("arrivals",),
    "retail": ("arrivals", "transactions"),
    "bank": ("arrivals", "tickets_issued"),
    "telecom": ("arrivals", "tickets_issued"),
}


def series_for(vertical: str | None) -> tuple[str, ...]:
    """The series a store of `vertical` forecasts."""
    return SERIES.get(vertical, SERIES[None])


def log_spaced(horizon: int) -> list[int]:
    """Horizons 1, 2, 3, then 2^k and 3 * 2^k up to `horizon`, and `horizon`: the ones scored.

    Scoring every one of 96 horizons costs state and time for little: neighbours rank alike.

    >>> log_spaced(96)
    [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96]
    >>> log_spaced(5)
    [1, 2, 3, 4, 5]

    """
    marks = {1, 2, 3, horizon}
    k = 2
    while 2**k <= horizon:
        marks.add(2**k)
        if 3 * 2 ** (k - 1) <= horizon:
            marks.add(3 * 2 ** (k - 1))
        k += 1
    return sorted(m for m in marks if m <= horizon)


def candidates_for(bucket_ms: int, tz: str = "UTC", vertical: str | None = None,
                   holidays: Iterable[dt.date] = ()) -> list[Forecaster]:
    """The candidates of one series, the cold-start profile first (it leads while nothing is scored)."""
    daily = max(1, DAY_MS // bucket_ms)
    return [
        VerticalProfile(vertical, bucket_ms, tz=tz),
        SeasonalNaive(daily, bucket_ms, name="seasonal_naive_daily"),
        SeasonalNaive(7 * daily, bucket_ms, name="seasonal_naive_weekly"),
        HoltWintersForecaster(daily, bucket_ms),
        SnarimaxForecaster(daily, bucket_ms),
        CalendarRegression(bucket_ms, tz=tz, holidays=holidays),
    ]


def make_selector(bucket_ms: int, horizon: int, tz: str = "UTC", vertical: str | None = None,
                  holidays: Iterable[dt.date] = (), mode: str = "best", all_horizons: bool = False) -> OnlineSelector:
    """The selection footfall runs on one series, in the worker and in `footfall evaluate forecast` alike.

    A candidate must be scored for a day of buckets before it is ranked; the scored
    horizons are `log_spaced(horizon)` (all of them with `all_horizons`).
    """
    daily = max(1, DAY_MS // bucket_ms)
    return OnlineSelector(
        candidates_for(bucket_ms, tz, vertical, holidays), horizon, bucket_ms, mode=mode, min_scored=daily,
        scored_horizons=None if all_horizons else log_spaced(horizon),
    )


@dataclass(frozen=True)
class PublishedForecast:
    """One series' forecast as the worker publishes it."""

    series: str
    cold: bool
    forecast: Forecast


class StoreForecasts:
    """One store's selectors, one per series (see the module docstring).

    Parameters
    ----------
    bucket_ms
        Bucket length (the store's closed buckets).
    horizon
        Buckets ahead to forecast.
    tz
        The store's time zone (calendar slots and the vertical's shape are local).
    vertical
        The store's vertical, if known.
    holidays
        Local dates that are public holidays.
    cold_buckets
        Buckets of history before the store is no longer cold (default: a week).
    restart_after_ms
        A silence longer than this (default 28 days) starts the series over.

    """

    def __init__(self, bucket_ms: int, horizon: int, tz: str = "UTC", vertical: str | None = None,
                 holidays: Iterable[dt.date] = (), cold_buckets: int | None = None,
                 restart_after_ms: int = 28 * DAY_MS) -> None:
        self.bucket_ms = bucket_ms
        self.horizon = horizon
        self.tz = tz
        self.vertical = vertical
        self.holidays = tuple(sorted(set(holidays)))
        self.cold_buckets = cold_buckets if cold_buckets is not None else 7 * max(1, DAY_MS // bucket_ms)
        self.restart_after_ms = restart_after_ms
        self.selectors: dict[str, OnlineSelector] = {}
        self.learned: dict[str, int] = {}  # series -> buckets learned
        self.last_ms: int | None = None

    def set_vertical(self, vertical: str | None) -> None:
        """The store's vertical, once known: its series are added from the next bucket."""
        if vertical is not None:
            self.vertical = vertical

    def learn_bucket(self, start_ms: int, values: Mapping[str, float | int | None]) -> list[PublishedForecast]:
        """Learn the closed bucket starting at `start_ms`; return the new forecasts (none for a repeat)."""
        if self.last_ms is not None and start_ms <= self.last_ms:
            return []
        for name in series_for(self.vertical):
            if name not in self.selectors:
                self.selectors[name] = make_selector(self.bucket_ms, self.horizon, self.tz, self.vertical,
                                                     self.holidays)
                self.learned[name] = 0
        published = []
        for name, selector in list(self.selectors.items()):
            # Buckets skipped since the last one learned are gaps (not zeros: nothing is known of them).
            # After a silence longer than `restart_after_ms` the series starts over: learning weeks of
            # gaps one by one would stall the worker, and the old seasons say little about the new ones.
            if selector.last_ms is not None and start_ms - selector.last_ms > self.restart_after_ms:
                selector = self.selectors[name] = make_selector(self.bucket_ms, self.horizon, self.tz,
                                                                self.vertical, self.holidays)
                self.learned[name] = 0
            if selector.last_ms is not None:
                for gap_ms in range(selector.last_ms + self.bucket_ms, start_ms, self.bucket_ms):
                    selector.learn_one(None, gap_ms)
                    self.learned[name] += 1
            value = values.get(name)
            selector.learn_one(None if value is None else float(value), start_ms)
            self.learned[name] += 1
            forecast = selector.forecast()
            if forecast is not None:
                published.append(PublishedForecast(name, self.learned[name] < self.cold_buckets, forecast))
        self.last_ms = start_ms
        return published

    def to_bytes(self) -> bytes:
        """Everything, compressed (`operators.pickled`)."""
        return pickled.dump(self)

    @staticmethod
    def from_bytes(blob: bytes) -> StoreForecasts:
        """Forecasts saved by `to_bytes`, to continue exactly where they were."""
        return pickled.load(blob, StoreForecasts)
