"""Forecasters of a store's counts per bucket, learned one closed bucket at a time.

Every forecaster has River's time-series shape: `learn_one(y, ts_ms)` takes the
value of the bucket starting at `ts_ms` (None for a gap: no data, which is not
zero), and `forecast(horizon, start_ms)` returns the next `horizon` buckets'
point forecasts, starting at `start_ms`, never negative. Candidates:

- `SeasonalNaive(m)`: the value one season earlier (a day, or a week);
- `HoltWintersForecaster`: River's additive `time_series.HoltWinters` with a daily season;
- `SnarimaxForecaster`: River's `time_series.SNARIMAX` on `log1p` of the counts
  (variance-stabilised: counts vary more when they are high), seasonally differenced by a day;
- `CalendarRegression`: `log1p` counts regressed on one-hot slot-of-week features and a
  public-holiday flag (a configurable calendar), fitted online with River's `stats`.

A gap is fed to the River models as their own one-step forecast, so their
seasonal positions stay aligned; the gap itself is never scored or learned as data.

Examples
--------
Two days of a tiny series with 4 buckets a day: the daily seasonal naive repeats the last day.

>>> day = [1.0, 5.0, 9.0, 3.0]
>>> naive = SeasonalNaive(m=4, bucket_ms=6 * 3_600_000)
>>> for i, y in enumerate(day + day):
...     naive.learn_one(y, i * naive.bucket_ms)
>>> naive.forecast(6, start_ms=8 * naive.bucket_ms)
[1.0, 5.0, 9.0, 3.0, 1.0, 5.0]

"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from collections import deque
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from river import linear_model, optim, preprocessing, stats, time_series

from footfall.operators.windows.localtime import local_day

__all__ = ["CalendarRegression", "Forecaster", "HoltWintersForecaster", "SeasonalNaive", "SnarimaxForecaster"]


class Forecaster:
    """Base: a name, the bucket length, and what every candidate answers before it has data."""

    name = "forecaster"

    def __init__(self, bucket_ms: int) -> None:
        if bucket_ms <= 0:
            raise ValueError(f"bucket_ms must be positive, got {bucket_ms}")
        self.bucket_ms = bucket_ms
        self.n_seen = 0  # buckets learned, gaps included

    def learn_one(self, y: float | None, ts_ms: int) -> None:
        raise NotImplementedError

    def forecast(self, horizon: int, start_ms: int) -> list[float | None]:
        raise NotImplementedError


class SeasonalNaive(Forecaster):
    """The value `m` buckets earlier (through the seasons in between for a horizon beyond `m`).

    None where that value is a gap or not seen yet.
    """

    def __init__(self, m: int, bucket_ms: int, name: str | None = None) -> None:
        super().__init__(bucket_ms)
        if m < 1:
            raise ValueError(f"m must be >= 1, got {m}")
        self.m = m
        self.name = name or f"seasonal_naive_{m}"
        self._last: deque[float | None] = deque(maxlen=m)

    @classmethod
    def _unit_test_params(cls):
        yield {"m": 4, "bucket_ms": 6 * 3_600_000}
        yield {"m": 1, "bucket_ms": 900_000, "name": "last_value"}

    def learn_one(self, y: float | None, ts_ms: int) -> None:
        self._last.append(y)
        self.n_seen += 1

    def forecast(self, horizon: int, start_ms: int) -> list[float | None]:
        if len(self._last) < self.m:
            return [None] * horizon
        return [self._last[h % self.m] for h in range(horizon)]


def _clip(values: Iterable[float | None], upper: float) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        out.append(None if v is None or not math.isfinite(v) else min(max(v, 0.0), upper))
    return out


class _RiverForecaster(Forecaster):
    """Shared by the River candidates: gap handling, warm-up, and a ceiling on wild forecasts."""

    warm_up = 1  # buckets before forecasts are trusted

    def __init__(self, bucket_ms: int) -> None:
        super().__init__(bucket_ms)
        self._max_seen = 0.0

    def _learn(self, y: float, ts_ms: int) -> None:
        raise NotImplementedError

    def _forecast(self, horizon: int, start_ms: int) -> list[float]:
        raise NotImplementedError

    def learn_one(self, y: float | None, ts_ms: int) -> None:
        if y is None or not math.isfinite(y):
            if self.n_seen < self.warm_up:
                return  # nothing to keep aligned yet
            guess = self.forecast(1, ts_ms)[0]
            y_model = guess if guess is not None else 0.0
        else:
            y_model = y
            self._max_seen = max(self._max_seen, y)
        self._learn(y_model, ts_ms)
        self.n_seen += 1

    def forecast(self, horizon: int, start_ms: int) -> list[float | None]:
        if self.n_seen < self.warm_up:
            return [None] * horizon
        # A diverging online model must not publish absurd numbers: at most 3 times the highest count seen.
        return _clip(self._forecast(horizon, start_ms), 3 * max(self._max_seen, 1.0))


class HoltWintersForecaster(_RiverForecaster):
    """River's additive Holt-Winters with a season of `m` buckets."""

    def __init__(self, m: int, bucket_ms: int, alpha: float = 0.2, beta: float = 0.01, gamma: float = 0.2) -> None:
        super().__init__(bucket_ms)
        self.name = "holt_winters"
        self.m = m
        self.warm_up = 2 * m  # River initialises level and season from the first seasons
        self.model = time_series.HoltWinters(alpha=alpha, beta=beta, gamma=gamma, seasonality=m)

    @classmethod
    def _unit_test_params(cls):
        yield {"m": 4, "bucket_ms": 6 * 3_600_000}
        yield {"m": 2, "bucket_ms": 3_600_000, "alpha": 0.5, "beta": 0.1, "gamma": 0.3}

    def _learn(self, y: float, ts_ms: int) -> None:
        model = self.model
        if not model._initialized and len(model._first_values) + 1 >= max(2, model.seasonality):
            # River (read in 0.26.1) starts an additive season as the first values divided by their
            # mean, the multiplicative form: a first day of zeros (a store opening at night, a closed
            # day) then divides by zero, and any other first season starts on the wrong scale. The
            # additive start is the first values minus their mean.
            first = [*model._first_values, y]
            model._first_values = first
            model.level.append(statistics.mean(first))
            if model.trend is not None:
                model.trend.append(statistics.mean(b - a for a, b in itertools.pairwise(first)))
            model.season.extend([v - model.level[-1] for v in first])
            model._initialized = True
            return
        model.learn_one(y)

    def _forecast(self, horizon: int, start_ms: int) -> list[float]:
        return list(self.model.forecast(horizon))


class SnarimaxForecaster(_RiverForecaster):
    """River's SNARIMAX on `log1p(y)`, seasonally differenced by `m` buckets (a day)."""

    def __init__(self, m: int, bucket_ms: int, p: int = 2, lr: float = 0.005) -> None:
        super().__init__(bucket_ms)
        self.name = "snarimax_log1p"
        self.warm_up = 2 * m
        self.model = time_series.SNARIMAX(
            p=p, d=0, q=0, m=m, sp=1, sd=1, sq=0,
            regressor=preprocessing.StandardScaler() | linear_model.LinearRegression(
                optimizer=optim.SGD(lr), intercept_lr=0.05),
        )

    @classmethod
    def _unit_test_params(cls):
        yield {"m": 4, "bucket_ms": 6 * 3_600_000}

    def _learn(self, y: float, ts_ms: int) -> None:
        self.model.learn_one(math.log1p(y))

    def _forecast(self, horizon: int, start_ms: int) -> list[float]:
        return [math.expm1(min(v, 50.0)) for v in self.model.forecast(horizon)]


class CalendarRegression(_RiverForecaster):
    """`log1p(y)` as a slot-of-week effect plus a public-holiday effect, each learned online.

    The slot effect is an exponentially weighted mean (River `stats.EWMean`) of `log1p`
    counts in that local slot of the week, on ordinary days; the holiday effect is the
    mean (River `stats.Mean`) of how far holiday buckets fall from their slot's effect.
    It is a regression on one-hot calendar features, fitted by backfitting. We first
    used River's `linear_model.LinearRegression` on the same features: on 8 weeks of a
    weekly profile with two holidays at 30 % of a weekday, plain SGD (rate 0.3) diverged
    and AdaGrad learned about half the holiday's true effect; these two means learn it
    (`tests/unit/test_forecasting.py`).

    Parameters
    ----------
    bucket_ms
        Bucket length; slots of the week are `week / bucket_ms` (672 for 15 minutes).
    tz
        The store's time zone: slots are local (09:00 on Monday is 09:00 local, summer or winter).
    holidays
        Local dates that are public holidays (a configurable calendar).
    fading_factor
        Weight of the newest week in a slot's mean.

    """

    def __init__(self, bucket_ms: int, tz: str = "UTC", holidays: Iterable[dt.date] = (),
                 fading_factor: float = 0.3) -> None:
        super().__init__(bucket_ms)
        self.name = "calendar_regression"
        self.tz = tz
        self.holidays = frozenset(holidays)
        self.fading_factor = fading_factor
        self.warm_up = 1
        self.slots: dict[int, stats.EWMean] = {}
        self.holiday_shift = stats.Mean()
        self.level = stats.Mean()  # every ordinary bucket: the guess for a slot not seen yet

    @classmethod
    def _unit_test_params(cls):
        yield {"bucket_ms": 3_600_000}
        yield {"bucket_ms": 900_000, "tz": "Europe/London", "holidays": (dt.date(2026, 12, 25),)}

    def slot_of(self, ts_ms: int) -> int:
        local = dt.datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(self.tz))
        minute_of_week = local.weekday() * 1440 + local.hour * 60 + local.minute
        return minute_of_week * 60_000 // self.bucket_ms

    def _slot_effect(self, slot: int) -> float:
        mean = self.slots.get(slot)
        return mean.get() if mean is not None else self.level.get()

    def _learn(self, y: float, ts_ms: int) -> None:
        slot, z = self.slot_of(ts_ms), math.log1p(y)
        if local_day(ts_ms, self.tz) in self.holidays:
            if slot in self.slots:
                self.holiday_shift.update(z - self.slots[slot].get())
            return
        self.slots.setdefault(slot, stats.EWMean(fading_factor=self.fading_factor)).update(z)
        self.level.update(z)

    def _forecast(self, horizon: int, start_ms: int) -> list[float]:
        out = []
        for h in range(horizon):
            ts = start_ms + h * self.bucket_ms
            z = self._slot_effect(self.slot_of(ts))
            if local_day(ts, self.tz) in self.holidays:
                z += self.holiday_shift.get()
            out.append(math.expm1(min(z, 50.0)))
        return out
