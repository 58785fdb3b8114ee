"""A new store's forecast: its vertical's hour-of-week shape, scaled to the store's own level.

A store with no history has nothing for the other candidates to learn from:
the seasonal naives need a day (a week), Holt-Winters and SNARIMAX two days,
and the calendar regression knows only the slots it has seen. `VerticalProfile`
forecasts from the first closed bucket: the expected count of a bucket is

    level_per_h * shape[hour of the week, local time] * bucket length in hours

where `shape` is the vertical's relative level in each of the 168 hours of a
week (`operators.forecasting.vertical_profiles`, measured on real counts) and `level_per_h`
is the store's own, estimated with a prior: `k_h` hours of an assumed typical level
(`PRIOR_LEVEL_PER_H`) are counted as if observed, so the first bucket moves the estimate only as
far as it should and a few hours of counts take over. Both sums fade (a store's
level drifts over the seasons).

It is one more candidate of the online selection: first in line while no
candidate has been scored enough (cold), and then judged like every other one.

Examples
--------
A retail store at 15-minute buckets on Monday morning in London. Before any data, the prior
level (15 an hour) times the shape at Monday 09:00 (2.18) times a quarter hour; after four
quarters at twice that, the level is (4 * 2 * 8.175 + 0.5 * 15) / (4 * 2.18 * 0.25 + 0.5) = 27.2
an hour, and 10:00 (shape 2.73) expects 27.2 * 2.73 * 0.25 = 18.56:

>>> import datetime as dt
>>> monday_9 = int(dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC).timestamp() * 1000)
>>> quarter = 900_000
>>> profile = VerticalProfile("retail", quarter, tz="Europe/London")
>>> profile.forecast(1, monday_9)
[8.175]
>>> for i in range(4):
...     ts_ms = monday_9 + i * quarter
...     profile.learn_one(2 * profile.expected(ts_ms, profile.prior_level_per_h), ts_ms)
>>> round(profile.level_per_h, 1)
27.2
>>> [round(v, 2) for v in profile.forecast(2, monday_9 + 4 * quarter)]
[18.56, 18.56]

"""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import numpy as np

from footfall.operators.forecasting.forecasters import Forecaster, local_steps
from footfall.operators.forecasting.vertical_profiles import SHAPES

__all__ = ["PRIOR_LEVEL_PER_H", "VerticalProfile"]

HOUR_MS = 3_600_000

#: A store's level before it has counts: arrivals per hour averaged over the whole week (closed hours
#: included). Assumed, not measured (no public per-store counts were found): a shop open 60 hours a
#: week with 40 arrivals an hour averages about 14. With `k_h` of half an hour, a store's first
#: hour of counts outweighs it.
PRIOR_LEVEL_PER_H: dict[str, float] = {"retail": 15.0, "bank": 8.0, "telecom": 6.0}


class VerticalProfile(Forecaster):
    """The vertical's hour-of-week shape times the store's estimated level (see the module docstring).

    Parameters
    ----------
    vertical
        `retail`, `bank` or `telecom`; an unknown or missing vertical takes the retail shape.
    bucket_ms
        Bucket length.
    tz
        The store's time zone: the shape is in local time.
    k_h
        Weight of the prior, in hours of the vertical's typical level.
    fading
        Per-bucket decay of both sums (0.999 at 15 minutes: a half-life of about a week).

    """

    def __init__(self, vertical: str | None, bucket_ms: int, tz: str = "UTC", k_h: float = 0.5,
                 fading: float = 0.999) -> None:
        super().__init__(bucket_ms)
        self.name = "vertical_profile"
        self.vertical = vertical if vertical in SHAPES else "retail"
        self.shape = SHAPES[self.vertical]
        self.prior_level_per_h = PRIOR_LEVEL_PER_H[self.vertical]
        self.tz = tz
        self.k_h = k_h
        self.fading = fading
        self._zone = ZoneInfo(tz)
        # Counts observed, and the hours of shape they were expected over (both faded).
        self._count = 0.0
        self._shape_h = 0.0

    @classmethod
    def _unit_test_params(cls):
        yield {"vertical": "retail", "bucket_ms": 900_000}
        yield {"vertical": "bank", "bucket_ms": 3_600_000, "tz": "Europe/Madrid", "k_h": 1.0}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_zone")  # a ZoneInfo pickles by key anyway; keep the saved state plain
        state.pop("shape")  # the vertical's, shared: saved, each store's copy took 5 KB of memory per series
        return state

    def __setstate__(self, state: dict) -> None:
        state.pop("shape", None)
        self.__dict__.update(state)
        self.shape = SHAPES[self.vertical]
        self._zone = ZoneInfo(self.tz)

    def _shape_at(self, ts_ms: int) -> float:
        """Mean of the shape over the bucket starting at `ts_ms` (a bucket may span hours)."""
        total, n = 0.0, max(1, math.ceil(self.bucket_ms / HOUR_MS))
        step = self.bucket_ms // n
        for i in range(n):
            local = dt.datetime.fromtimestamp((ts_ms + i * step) / 1000, self._zone)
            total += self.shape[local.weekday() * 24 + local.hour]
        return total / n

    @property
    def level_per_h(self) -> float:
        """The store's estimated level, in counts per hour at a shape of 1.0."""
        return (self._count + self.k_h * self.prior_level_per_h) / (self._shape_h + self.k_h)

    def expected(self, ts_ms: int, level_per_h: float) -> float:
        """The count of the bucket starting at `ts_ms` at a given level."""
        return level_per_h * self._shape_at(ts_ms) * self.bucket_ms / HOUR_MS

    def learn_one(self, y: float | None, ts_ms: int) -> None:
        self.n_seen += 1
        if y is None or not math.isfinite(y):
            return
        self._count = self._count * self.fading + y
        self._shape_h = self._shape_h * self.fading + self._shape_at(ts_ms) * self.bucket_ms / HOUR_MS

    def forecast(self, horizon: int, start_ms: int) -> list[float | None]:
        return self.forecast_array(horizon, start_ms).tolist()

    def forecast_array(self, horizon: int, start_ms: int) -> np.ndarray:
        """`expected` of each bucket, the shape read for all of them at once (one UTC offset over the horizon)."""
        level = self.level_per_h
        n = max(1, math.ceil(self.bucket_ms / HOUR_MS))
        step = self.bucket_ms // n
        shape = np.asarray(self.shape, dtype=float)
        total = np.zeros(horizon)
        for i in range(n):
            local = local_steps(start_ms + i * step, horizon, self.bucket_ms, self._zone)
            if local is None:
                return np.array([self.expected(start_ms + h * self.bucket_ms, level) for h in range(horizon)])
            total += shape[(local // HOUR_MS + 72) % 168]  # 1970-01-01 was a Thursday: hour 72 of its week
        return level * (total / n) * self.bucket_ms / HOUR_MS
