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
import functools
import math
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import numpy as np

from footfall.operators.forecasting.holt_winters import CompactHoltWinters
from footfall.operators.forecasting.snarimax import CompactSnarimax
from footfall.operators.windows.localtime import local_day

__all__ = ["CalendarRegression", "Forecaster", "HoltWintersForecaster", "SeasonalNaive", "SnarimaxForecaster",
           "local_steps"]


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


def _as_list(values: np.ndarray) -> list[float | None]:
    return [None if v != v else v for v in values.tolist()]  # NaN: none


_EPOCH_WEEKDAY_MIN = 3 * 1440  # 1970-01-01 was a Thursday
_EPOCH = dt.date(1970, 1, 1)


@functools.lru_cache(maxsize=256)
def local_steps(start_ms: int, horizon: int, step_ms: int, zone: ZoneInfo) -> np.ndarray | None:
    """Local wall-clock epoch ms of `start_ms + i * step_ms` for `i < horizon`, or None across a change of offset.

    One UTC offset over the whole span (no daylight-saving change inside it) makes local time a shift of UTC.
    The array is read-only and shared: every calendar candidate of every series of a store asks for the
    same span at each closed bucket (three time-zone conversions each, measured at 3 % of a bucket's work).
    """
    end_ms = start_ms + max(horizon - 1, 0) * step_ms
    first = dt.datetime.fromtimestamp(start_ms / 1000, zone).utcoffset()
    if first is None or dt.datetime.fromtimestamp(end_ms / 1000, zone).utcoffset() != first:
        return None
    middle = dt.datetime.fromtimestamp((start_ms + end_ms) // 2 / 1000, zone).utcoffset()
    if middle != first:
        return None
    offset_ms = int(first.total_seconds() * 1000)
    steps = start_ms + offset_ms + np.arange(horizon, dtype=np.int64) * step_ms
    steps.flags.writeable = False
    return steps


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
        # The last m values (NaN: a gap), oldest at n_seen % m. float32: counts are exact in it up to 2**24,
        # and a week of 15-minute buckets takes 2.6 KB instead of 5.3.
        self._ring = np.full(m, np.nan, dtype=np.float32)

    def __setstate__(self, state: dict) -> None:
        last = state.pop("_last", None)
        self.__dict__.update(state)
        if last is not None:  # saved before the ring: a deque of the last m values
            self._ring = np.full(self.m, np.nan, dtype=np.float32)
            for i, v in enumerate(last, start=self.n_seen - len(last)):
                self._ring[i % self.m] = math.nan if v is None else v
        self._ring = self._ring.astype(np.float32, copy=False)  # saved before float32

    @classmethod
    def _unit_test_params(cls):
        yield {"m": 4, "bucket_ms": 6 * 3_600_000}
        yield {"m": 1, "bucket_ms": 900_000, "name": "last_value"}

    def learn_one(self, y: float | None, ts_ms: int) -> None:
        self._ring[self.n_seen % self.m] = math.nan if y is None else y
        self.n_seen += 1

    def forecast_array(self, horizon: int, start_ms: int) -> np.ndarray:
        if self.n_seen < self.m:
            return np.full(horizon, np.nan)
        return self._ring[(self.n_seen + np.arange(horizon)) % self.m]

    def forecast(self, horizon: int, start_ms: int) -> list[float | None]:
        return _as_list(self.forecast_array(horizon, start_ms))


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

    def _forecast_array(self, horizon: int, start_ms: int) -> np.ndarray:
        return np.array(self._forecast(horizon, start_ms), dtype=float)

    def forecast_array(self, horizon: int, start_ms: int) -> np.ndarray:
        """`forecast` as an array (NaN for None), computed without a Python float per step where it can be."""
        if self.n_seen < self.warm_up:
            return np.full(horizon, np.nan)
        values = self._forecast_array(horizon, start_ms)
        clipped = np.minimum(np.maximum(values, 0.0), 3 * max(self._max_seen, 1.0))
        return np.where(np.isfinite(values), clipped, np.nan)


class HoltWintersForecaster(_RiverForecaster):
    """River's additive Holt-Winters with a season of `m` buckets.

    The model is `holt_winters.CompactHoltWinters`: River's updates in River's order (forecasts
    equal bit for bit), as floats and one ring instead of River's deques: 7.1 KB per series in RAM
    with River's object, 1.6 KB this way (tracemalloc). It starts the additive way: River (read in 0.26.1) starts
    an additive season as the first values divided by their mean, the multiplicative form, so a
    first day of zeros (a store opening at night, a closed day) divides by zero, and any other first
    season starts on the wrong scale; the additive start is the first values minus their mean. A
    River model saved by an older worker is taken over as it is.
    """

    def __init__(self, m: int, bucket_ms: int, alpha: float = 0.2, beta: float = 0.01, gamma: float = 0.2) -> None:
        super().__init__(bucket_ms)
        self.name = "holt_winters"
        self.m = m
        self.warm_up = 2 * m  # the level and season start from the first season
        self.model = CompactHoltWinters(alpha=alpha, beta=beta, gamma=gamma, m=m)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if not isinstance(self.model, CompactHoltWinters):  # saved as River's HoltWinters
            if self.model._initialized:  # saved when the first season was still kept
                self.model._first_values = []
            self.model = CompactHoltWinters.from_river(self.model)

    @classmethod
    def _unit_test_params(cls):
        yield {"m": 4, "bucket_ms": 6 * 3_600_000}
        yield {"m": 2, "bucket_ms": 3_600_000, "alpha": 0.5, "beta": 0.1, "gamma": 0.3}

    def _learn(self, y: float, ts_ms: int) -> None:
        self.model.learn_one(y)

    def _forecast(self, horizon: int, start_ms: int) -> list[float]:
        return self.model.forecast(horizon)

    def _forecast_array(self, horizon: int, start_ms: int) -> np.ndarray:
        return self.model.forecast_array(horizon)


class SnarimaxForecaster(_RiverForecaster):
    """River's SNARIMAX on `log1p(y)`, seasonally differenced by `m` buckets (a day).

    The model is `snarimax.CompactSnarimax`: River's SNARIMAX(p, 0, 0)(1, 1, 0)_m with a
    standardised SGD regression, learning update for update as River does (forecasts equal to
    1e-9), kept as two rings of floats. River's own object held 15.9 KB per series in RAM, 3.3 KB
    this way, and its forecast built feature dicts and ran the pipeline per step (2 ms of a
    96-bucket forecast). A River model saved by an older worker is taken over as it is.
    """

    def __init__(self, m: int, bucket_ms: int, p: int = 2, lr: float = 0.005) -> None:
        super().__init__(bucket_ms)
        self.name = "snarimax_log1p"
        self.warm_up = 2 * m
        self.model = CompactSnarimax(p=p, m=m, lr=lr, intercept_lr=0.05)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if not isinstance(self.model, CompactSnarimax):  # saved as River's SNARIMAX
            self.model = CompactSnarimax.from_river(self.model)

    @classmethod
    def _unit_test_params(cls):
        yield {"m": 4, "bucket_ms": 6 * 3_600_000}

    def _learn(self, y: float, ts_ms: int) -> None:
        self.model.learn_one(math.log1p(y))

    def _forecast(self, horizon: int, start_ms: int) -> list[float]:
        return [math.expm1(min(v, 50.0)) for v in self.model.forecast(horizon)]

    def _forecast_array(self, horizon: int, start_ms: int) -> np.ndarray:
        return np.expm1(np.minimum(np.array(self.model.forecast(horizon), dtype=float), 50.0))


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
        # Per slot of the week, the EW mean of log1p counts (NaN: not seen yet); the holiday shift's and
        # the level's running means as [n, mean] (River's `stats.EWMean` and `stats.Mean`, same updates).
        # float32 (log1p counts to 7 digits): 2.6 KB a week of 15-minute slots instead of 5.3.
        self._slot_mean = np.full(-(-7 * 86_400_000 // bucket_ms), np.nan, dtype=np.float32)
        self._shift = [0.0, 0.0]
        self._level = [0.0, 0.0]  # every ordinary bucket: the guess for a slot not seen yet
        self._zone = ZoneInfo(tz)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_zone", None)
        return state

    def __setstate__(self, state: dict) -> None:
        slots = state.pop("slots", None)
        shift, level = state.pop("holiday_shift", None), state.pop("level", None)
        self.__dict__.update(state)
        self._zone = ZoneInfo(self.tz)
        if slots is not None:  # saved before the arrays: River EWMean per slot seen, River Means
            self._slot_mean = np.full(-(-7 * 86_400_000 // self.bucket_ms), np.nan, dtype=np.float32)
            for slot, mean in slots.items():
                self._slot_mean[slot] = mean.get()
            self._shift = [float(shift.n), float(shift.get())]
            self._level = [float(level.n), float(level.get())]
        self._slot_mean = self._slot_mean.astype(np.float32, copy=False)  # saved before float32

    @classmethod
    def _unit_test_params(cls):
        yield {"bucket_ms": 3_600_000}
        yield {"bucket_ms": 900_000, "tz": "Europe/London", "holidays": (dt.date(2026, 12, 25),)}

    def slot_of(self, ts_ms: int) -> int:
        local = dt.datetime.fromtimestamp(ts_ms / 1000, self._zone)
        minute_of_week = local.weekday() * 1440 + local.hour * 60 + local.minute
        return minute_of_week * 60_000 // self.bucket_ms

    @staticmethod
    def _mean_update(mean: list[float], x: float) -> None:
        mean[0] += 1.0
        mean[1] += (1.0 / mean[0]) * (x - mean[1])

    def _learn(self, y: float, ts_ms: int) -> None:
        slot, z = self.slot_of(ts_ms), math.log1p(y)
        seen = self._slot_mean[slot]
        if self.holidays and local_day(ts_ms, self.tz) in self.holidays:
            if seen == seen:
                self._mean_update(self._shift, z - float(seen))
            return
        f = self.fading_factor
        self._slot_mean[slot] = z if seen != seen else f * z + (1 - f) * float(seen)
        self._mean_update(self._level, z)

    def _log_effects(self, horizon: int, start_ms: int) -> np.ndarray:
        local = local_steps(start_ms, horizon, self.bucket_ms, self._zone)
        if local is None:  # a change of UTC offset inside the horizon: slot by slot
            slots = np.array([self.slot_of(start_ms + h * self.bucket_ms) for h in range(horizon)], dtype=np.int64)
        else:
            slots = (local // 60_000 + _EPOCH_WEEKDAY_MIN) % 10_080 * 60_000 // self.bucket_ms
        z = self._slot_mean[slots].astype(float)
        z = np.where(np.isnan(z), self._level[1], z)
        if self.holidays:
            days = [local_day(start_ms + h * self.bucket_ms, self.tz) for h in range(horizon)] if local is None \
                else [_EPOCH + dt.timedelta(days=int(d)) for d in (local // 86_400_000).tolist()]
            z = z + np.array([self._shift[1] if d in self.holidays else 0.0 for d in days])
        return z

    def _forecast(self, horizon: int, start_ms: int) -> list[float]:
        # math's expm1, not numpy's: numpy's vectorised one differs from it in the last bit on some CPUs
        # (8 % of values here, AVX-512), and a forecast must not depend on the machine that made it.
        return list(map(math.expm1, np.minimum(self._log_effects(horizon, start_ms), 50.0).tolist()))

    def _forecast_array(self, horizon: int, start_ms: int) -> np.ndarray:
        return np.array(self._forecast(horizon, start_ms))
