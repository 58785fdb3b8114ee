"""Forecast scores per horizon: MAE, RMSE, MASE, sMAPE and interval coverage, from sums and counts.

The protocol is strictly online: a forecast made at origin `t` for bucket `t + h`
is scored (`HorizonScores.add`) only once that bucket has closed and its value is
known, and the MASE scale comes from history known at the origin, never from the
buckets being forecast. A missing value (None or NaN: a store closed, a feed gap)
is skipped, never read as 0: a 0 would score a silent sensor as a perfect forecast
of an empty shop.

- `seasonal_naive_scale(history, m)`: the MASE denominator [^1], the mean of
  `|y[t] - y[t-m]|` over the pairs where both values are present.
- `smape_term(actual, forecast)`: `200 * |F - A| / (|A| + |F|)`, in percent (0 to 200).
- `HorizonScores`: per horizon `h` (1-based), `n`, `mae`, `rmse`, `mase = mae / scale`,
  `smape` (mean of the terms) and `coverage80`/`coverage95`, the share of forecasts
  with that interval whose actual lies in `[lo, hi]`. Forecasts without an interval
  don't count for its coverage. `overall` pools every horizon.

Only sums and counts are kept (no lists of errors), so the state stays a few numbers
per horizon however long the stream runs.

Examples
--------
Hourly arrivals with a daily pattern of period 2 (to keep the numbers small); the
scale is the mean of `|14-10|, |13-12|, |15-14|, |18-13|` = 11 / 4:

>>> scale = seasonal_naive_scale([10, 12, 14, 13, 15, 18], m=2)
>>> scale
2.75
>>> scores = HorizonScores(horizons=2)
>>> for horizon, actual, forecast, lo80, hi80 in [
...     (1, 20, 18, 16, 21),        # |e| = 2, inside [16, 21]
...     (1, 17, 19, 18, 22),        # |e| = 2, outside [18, 22]
...     (2, 16, 20, None, None),    # |e| = 4, no interval
...     (2, None, 21, 15, 25),      # the bucket's value is missing: skipped
... ]:
...     scores.add(horizon, actual, forecast, lo80=lo80, hi80=hi80)
...     r = scores.result(scale)
...     print(horizon, {h: (s["n"], s["mae"], s["coverage80"]) for h, s in r.items()})
1 {1: (1, 2.0, 1.0)}
1 {1: (2, 2.0, 0.5)}
2 {1: (2, 2.0, 0.5), 2: (1, 4.0, None)}
2 {1: (2, 2.0, 0.5), 2: (1, 4.0, None)}
>>> r[1]["rmse"], round(r[1]["mase"], 4), round(r[1]["smape"], 4)  # sMAPE: (200*2/38 + 200*2/36) / 2
(2.0, 0.7273, 10.8187)
>>> overall = scores.overall(scale)
>>> overall["n"], round(overall["mae"], 4), round(overall["rmse"], 4), overall["coverage80"], overall["coverage95"]
(3, 2.6667, 2.8284, 0.5, None)
>>> scores.result(None)[1]["mase"] is None
True

References
----------
[^1]: Hyndman, R. J. and Koehler, A. B., 2006. Another look at measures of forecast accuracy.
    International Journal of Forecasting, 22(4), pp. 679-688.

"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["HorizonScores", "seasonal_naive_scale", "smape_term"]


def _missing(value: float | None) -> bool:
    # NaN is how pandas/numpy-fed callers spell "no value"; it must not reach the sums.
    return value is None or math.isnan(value)


def seasonal_naive_scale(history: Sequence[float | None], m: int) -> float | None:
    """Mean absolute error of the seasonal naive forecast `y[t-m]` over `history` (the MASE denominator).

    Parameters
    ----------
    history
        Values per bucket, oldest first, one position per bucket: a missing bucket is
        None or NaN in its place (not dropped), so `y[t-m]` stays `m` buckets back.
    m
        Seasonal period in buckets (1 gives the plain naive forecast).

    Returns None when no `t` has both `y[t]` and `y[t-m]` present.

    >>> seasonal_naive_scale([10, None, 14, float("nan"), 15, 18], m=2)  # (|14-10| + |15-14|) / 2
    2.5
    >>> seasonal_naive_scale([10, 12], m=2) is None
    True

    """
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    total = 0.0
    pairs = 0
    for now, season_ago in zip(history[m:], history, strict=False):
        if _missing(now) or _missing(season_ago):
            continue
        total += abs(now - season_ago)
        pairs += 1
    return total / pairs if pairs else None


def smape_term(actual: float, forecast: float) -> float:
    """One forecast's symmetric absolute percentage error, `200 * |F - A| / (|A| + |F|)`, in [0, 200].

    When both are 0 the forecast is exact and the term is 0.0 (by convention: the
    formula is 0/0 there). An empty bucket forecast as empty is common at night.

    >>> smape_term(10, 12), smape_term(0, 0), smape_term(0, 3)
    (18.18..., 0.0, 200.0)

    """
    denominator = abs(actual) + abs(forecast)
    if denominator == 0:
        return 0.0
    return 200.0 * abs(forecast - actual) / denominator


class _Sums:
    """Running sums and counts of one horizon (or of all pooled)."""

    __slots__ = ("abs_error", "hits80", "hits95", "n", "n80", "n95", "smape", "squared_error")

    def __init__(self) -> None:
        self.n = 0
        self.abs_error = 0.0
        self.squared_error = 0.0
        self.smape = 0.0
        self.n80 = 0  # scored forecasts that had an 80 % interval
        self.hits80 = 0
        self.n95 = 0
        self.hits95 = 0

    def merge(self, other: _Sums) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def result(self, scale: float | None) -> dict[str, float | int | None]:
        mae = self.abs_error / self.n if self.n else None
        return {
            "n": self.n,
            "mae": mae,
            "rmse": math.sqrt(self.squared_error / self.n) if self.n else None,
            # A scale of 0 means the history never moved: any error is infinitely worse, which says nothing.
            "mase": mae / scale if mae is not None and scale else None,
            "smape": self.smape / self.n if self.n else None,
            "coverage80": self.hits80 / self.n80 if self.n80 else None,
            "coverage95": self.hits95 / self.n95 if self.n95 else None,
        }


def _interval(lo: float | None, hi: float | None, name: str) -> tuple[float, float] | None:
    """The interval `[lo, hi]`, or None when the forecast has none (both bounds missing)."""
    lo_missing, hi_missing = _missing(lo), _missing(hi)
    if lo_missing and hi_missing:
        return None
    if lo_missing or hi_missing:
        raise ValueError(f"{name} interval needs both bounds, got lo={lo}, hi={hi}")
    assert lo is not None and hi is not None
    if lo > hi:
        raise ValueError(f"{name} interval has lo > hi: [{lo}, {hi}]")
    return lo, hi


class HorizonScores:
    """Scores of forecasts 1 to `horizons` buckets ahead, each horizon kept apart (see the module docstring).

    Parameters
    ----------
    horizons
        Largest horizon scored, in buckets (`H`); `add` takes horizons 1 to `H`.

    """

    __slots__ = ("_sums", "horizons")

    def __init__(self, horizons: int) -> None:
        if horizons < 1:
            raise ValueError(f"horizons must be >= 1, got {horizons}")
        self.horizons = horizons
        self._sums = [_Sums() for _ in range(horizons)]

    @classmethod
    def _unit_test_params(cls):
        yield {"horizons": 1}
        yield {"horizons": 24}

    def add(
        self,
        horizon: int,
        actual: float | None,
        forecast: float | None,
        lo80: float | None = None,
        hi80: float | None = None,
        lo95: float | None = None,
        hi95: float | None = None,
    ) -> None:
        """Score one forecast `horizon` buckets ahead against the bucket's `actual` value.

        Ignored when `actual` or `forecast` is missing (None or NaN). An interval counts
        towards its coverage when both its bounds are present; inclusive at both ends.
        """
        if not 1 <= horizon <= self.horizons:
            raise ValueError(f"horizon must be in 1..{self.horizons}, got {horizon}")
        if _missing(actual) or _missing(forecast):
            return
        assert actual is not None and forecast is not None
        if not (math.isfinite(actual) and math.isfinite(forecast)):
            raise ValueError(f"actual and forecast must be finite, got {actual}, {forecast}")
        # Validate both intervals before touching the sums, so a bad call leaves no trace.
        interval80 = _interval(lo80, hi80, "80 %")
        interval95 = _interval(lo95, hi95, "95 %")
        sums = self._sums[horizon - 1]
        error = forecast - actual
        sums.n += 1
        sums.abs_error += abs(error)
        sums.squared_error += error * error
        sums.smape += smape_term(actual, forecast)
        if interval80 is not None:
            sums.n80 += 1
            sums.hits80 += interval80[0] <= actual <= interval80[1]
        if interval95 is not None:
            sums.n95 += 1
            sums.hits95 += interval95[0] <= actual <= interval95[1]

    @staticmethod
    def _check_scale(scale: float | None) -> float | None:
        if scale is None or math.isnan(scale):
            return None
        if scale < 0:
            raise ValueError(f"scale is a mean of absolute values, it can't be negative: {scale}")
        return scale

    def result(self, scale: float | None) -> dict[int, dict[str, float | int | None]]:
        """Scores per horizon (1-based), for the horizons with at least one scored forecast.

        `mase` is None when `scale` is None, NaN or 0; a coverage is None when no scored
        forecast of that horizon had the interval.
        """
        scale = self._check_scale(scale)
        return {h: sums.result(scale) for h, sums in enumerate(self._sums, start=1) if sums.n}

    def overall(self, scale: float | None) -> dict[str, float | int | None]:
        """Scores over all horizons pooled (one dict); `n` is 0 and every score None before any forecast."""
        scale = self._check_scale(scale)
        pooled = _Sums()
        for sums in self._sums:
            pooled.merge(sums)
        return pooled.result(scale)

    def __repr__(self) -> str:
        return f"HorizonScores(horizons={self.horizons}, n={sum(s.n for s in self._sums)})"
