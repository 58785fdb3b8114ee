"""Online model selection: candidates judged on delayed labels, the best one published, with intervals.

After each closed bucket, `OnlineSelector.learn_one(y, ts_ms)`:

1. scores every forecast made earlier for this bucket (a forecast is judged only
   when its bucket closes; a gap scores nothing): each candidate's absolute
   error goes into its exponentially weighted mean (River `stats.EWMean`), its
   residual into its interval estimate, both per horizon;
2. lets every candidate learn the value;
3. has every candidate forecast the next `horizon` buckets, and publishes one
   forecast: at each horizon, the candidate with the lowest weighted error at
   that horizon among those scored there at least `min_scored` times
   (`mode="best"`; the best model one bucket ahead is often not the best a day
   ahead), or the candidates weighted by inverse error (`mode="blend"`).
   Ranking by mean absolute error is ranking by MASE: the scale is the same for
   every candidate of a series.

Prediction intervals are empirical: the quantiles (10/90 %, 2.5/97.5 %) of the
last `interval_window` residuals of the published forecasts at that horizon
(leaving out buckets forecast empty that stayed empty: closed hours),
each divided by `sqrt(forecast + 1)` (counts spread more when they are high: a
quiet night gets a narrow band, a peak a wide one), scaled back and added to
the point forecast; before there are enough, the pooled residuals of all
horizons, and before that a Poisson-like band (variance = forecast + 1). Lower
bounds never go below zero.

Examples
--------
A series with a daily shape of 4 buckets: the daily seasonal naive is perfect, and gets chosen.

>>> from footfall.operators.forecasting.forecasters import SeasonalNaive
>>> bucket_ms = 6 * 3_600_000
>>> selector = OnlineSelector(
...     [SeasonalNaive(4, bucket_ms, name="daily"), SeasonalNaive(1, bucket_ms, name="last_value")],
...     horizon=2, bucket_ms=bucket_ms, min_scored=3)
>>> for i, y in enumerate([1, 5, 9, 3] * 4):
...     selector.learn_one(float(y), i * bucket_ms)
>>> published = selector.forecast()
>>> published.model, published.values
('daily', [1.0, 5.0])
>>> published.lo95[0] <= 1.0 <= published.hi95[0]
True

"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from river import stats

from footfall.operators import pickled
from footfall.operators.forecasting.forecasters import Forecaster

__all__ = ["Forecast", "OnlineSelector", "ResidualIntervals"]

T = TypeVar("T")

Z80, Z95 = 1.2815515655446004, 1.959963984540054


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class ResidualIntervals:
    """Intervals from the last residuals (actual - forecast) per horizon, scaled by `sqrt(forecast + 1)`.

    Five forecasts of 3 that were off by -2, -1, 0, 1 and 2: divided by sqrt(3 + 1) = 2,
    -1, -0.5, 0, 0.5, 1, whose 10 % quantile (rank 0.4) is -0.8 and 2.5 % (rank 0.1) -0.95.
    Around a forecast of 15, scaled by sqrt(16) = 4: 15 - 3.2, 15 + 3.2, 15 - 3.8, 15 + 3.8.

    >>> intervals = ResidualIntervals(horizon=1, window=100, min_residuals=5)
    >>> for r in [-2.0, -1.0, 0.0, 1.0, 2.0]:
    ...     intervals.add(1, r, forecast=3.0)
    >>> [round(v, 2) for v in intervals.interval(1, 15.0)]
    [11.8, 18.2, 11.2, 18.8]

    """

    def __init__(self, horizon: int, window: int = 200, min_residuals: int = 20) -> None:
        self.horizon = horizon
        self.min_residuals = min_residuals
        self._by_h = [deque[float](maxlen=window) for _ in range(horizon)]

    def add(self, h: int, residual: float, forecast: float) -> None:
        self._by_h[h - 1].append(residual / math.sqrt(max(forecast, 0.0) + 1.0))

    def quantiles(self, h: int) -> tuple[float, float, float, float] | None:
        """The scaled residuals' 10, 90, 2.5 and 97.5 % quantiles at horizon `h` (None: too few yet).

        Computed once per horizon and reused for every forecast scaled from it (`band`).
        """
        residuals = list(self._by_h[h - 1])
        if len(residuals) < self.min_residuals:
            residuals = [r for d in self._by_h for r in d]
        if len(residuals) < self.min_residuals:
            return None
        ordered = sorted(residuals)
        q10, q90, q025, q975 = (_quantile(ordered, q) for q in (0.10, 0.90, 0.025, 0.975))
        return q10, q90, q025, q975

    def interval(self, h: int, forecast: float) -> tuple[float, float, float, float]:
        """`(lo80, hi80, lo95, hi95)` around `forecast` at horizon `h` (1-based)."""
        return self.band(h, forecast, self.quantiles(h))

    @staticmethod
    def band(h: int, forecast: float,
             quantiles: tuple[float, float, float, float] | None) -> tuple[float, float, float, float]:
        """`interval` from quantiles already computed by `quantiles(h)`."""
        if quantiles is not None:
            spread = math.sqrt(max(forecast, 0.0) + 1.0)
            lo80, hi80, lo95, hi95 = (forecast + q * spread for q in quantiles)
        else:
            sd = math.sqrt(max(forecast, 0.0) + 1.0) * math.sqrt(h)
            lo80, hi80, lo95, hi95 = forecast - Z80 * sd, forecast + Z80 * sd, forecast - Z95 * sd, forecast + Z95 * sd
        return max(lo80, 0.0), max(hi80, 0.0), max(lo95, 0.0), max(hi95, 0.0)


@dataclass
class Forecast:
    """A published forecast: `values[i]` is for the bucket starting at `start_ms + i * bucket_ms`."""

    made_at_ms: int  # start of the last bucket learned
    start_ms: int
    bucket_ms: int
    model: str
    values: list[float]
    lo80: list[float] = field(default_factory=list)
    hi80: list[float] = field(default_factory=list)
    lo95: list[float] = field(default_factory=list)
    hi95: list[float] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # the candidate behind each value
    weights: dict[str, float] = field(default_factory=dict)


class OnlineSelector:
    """Candidates scored on delayed labels; the best (or a blend) published (see the module docstring)."""

    def __init__(
        self,
        candidates: Sequence[Forecaster],
        horizon: int,
        bucket_ms: int,
        mode: str = "best",
        fading_factor: float = 0.005,  # chosen on the shared data sets: 0.002 and 0.01 did worse on average
        min_scored: int = 48,
        interval_window: int = 200,
        scored_horizons: Sequence[int] | None = None,
    ) -> None:
        if not candidates:
            raise ValueError("at least one candidate is needed")
        if len({c.name for c in candidates}) != len(candidates):
            raise ValueError("candidate names must be distinct")
        if mode not in ("best", "blend"):
            raise ValueError(f"mode must be best or blend, got {mode!r}")
        self.candidates = list(candidates)
        self.horizon = horizon
        self.bucket_ms = bucket_ms
        self.mode = mode
        self.min_scored = min_scored
        # Horizons scored (all by default). Scoring fewer keeps the state small: a horizon between two
        # scored ones is judged, and its interval taken, from the nearest scored one below it.
        self.scored_horizons = sorted(set(scored_horizons)) if scored_horizons is not None else list(
            range(1, horizon + 1))
        if not self.scored_horizons or self.scored_horizons[0] != 1 or self.scored_horizons[-1] > horizon:
            raise ValueError(f"scored_horizons must start at 1 and stay within 1..{horizon}")
        self._slot = [max(i for i, s in enumerate(self.scored_horizons) if s <= h) for h in range(1, horizon + 1)]
        n = len(self.scored_horizons)
        # Per candidate and scored horizon: weighted mean absolute error, and how many forecasts it holds.
        self.errors = {c.name: [stats.EWMean(fading_factor=fading_factor) for _ in range(n)] for c in self.candidates}
        self.scored = {c.name: [0] * n for c in self.candidates}
        self.intervals = ResidualIntervals(n, interval_window)
        # target bucket -> (horizon, {candidate: forecast}, published forecast)
        self._pending: dict[int, list[tuple[int, dict[str, float | None], float | None]]] = {}
        self._latest: dict[str, list[float | None]] = {}
        self._published: Forecast | None = None
        self.last_ms: int | None = None

    # -- learning ---------------------------------------------------------------------------------

    def learn_one(self, y: float | None, ts_ms: int) -> None:
        """Take the value of the bucket starting at `ts_ms` (None: a gap), then forecast the next buckets."""
        known = y is not None and math.isfinite(y)
        for slot, by_candidate, published in self._pending.pop(ts_ms, []):
            if not known:
                continue
            for name, f in by_candidate.items():
                if f is not None:
                    self.errors[name][slot].update(abs(y - f))
                    self.scored[name][slot] += 1
            # A bucket forecast empty that stayed empty (a closed hour) says nothing about the spread of
            # an open one; kept, such exact zeros filled most of the window at stores closed at night
            # and collapsed the 80 % band of their open hours to the point forecast (measured).
            if published is not None and not (y == 0 and published < 0.5):
                self.intervals.add(slot + 1, y - published, published)
        for candidate in self.candidates:
            candidate.learn_one(y if known else None, ts_ms)
        self.last_ms = ts_ms
        start = ts_ms + self.bucket_ms
        self._latest = {c.name: c.forecast(self.horizon, start) for c in self.candidates}
        self._published = self._publish(ts_ms, start)
        for slot, h in enumerate(self.scored_horizons):
            target = start + (h - 1) * self.bucket_ms
            by_candidate = {name: values[h - 1] for name, values in self._latest.items()}
            published = self._published.values[h - 1] if self._published else None
            self._pending.setdefault(target, []).append((slot, by_candidate, published))

    def ranking(self, h: int | None = None) -> list[tuple[str, float]]:
        """Candidates scored at least `min_scored` times at horizon `h` (all horizons: their mean), best first."""
        horizons = range(len(self.scored_horizons)) if h is None else [self._slot[h - 1]]
        ready = []
        for name, errors in self.errors.items():
            if all(self.scored[name][i] >= self.min_scored for i in horizons):
                ready.append((name, sum(errors[i].get() for i in horizons) / len(horizons)))
        return sorted(ready, key=lambda item: item[1])

    def _publish(self, made_at_ms: int, start_ms: int) -> Forecast | None:
        # Candidates in order of trust: scored ones by error, then the rest in the order given. Each
        # horizon takes the most trusted candidate that has a value for it (a seasonal naive has none
        # where a season ago was a gap).
        values: list[float] = []
        models: list[str] = []
        weights: dict[str, float] = {}
        # Rankings and residual quantiles are per scored horizon: computed once each, not per horizon
        # (measured: per horizon they took 60 % of a 96-bucket forecast's time).
        ranked_at = [self.ranking(h) for h in self.scored_horizons]
        for i in range(self.horizon):
            ranked = ranked_at[self._slot[i]]
            errors = dict(ranked)
            order = [n for n, _ in ranked] + [c.name for c in self.candidates if c.name not in errors]
            have = [n for n in order if self._latest[n][i] is not None]
            if not have:
                return None
            if self.mode == "blend" and sum(n in errors for n in have) > 1:
                inverse = {n: 1.0 / max(errors[n], 1e-9) for n in have if n in errors}
                total = sum(inverse.values())
                weights = {n: w / total for n, w in inverse.items()}
                values.append(sum(w * float(self._latest[n][i]) for n, w in weights.items()))  # type: ignore[arg-type]
                models.append("blend")
            else:
                values.append(float(self._latest[have[0]][i]))  # type: ignore[arg-type]
                models.append(have[0])
        # The most used; a tie goes to the one first used (the nearer horizon). Not `max(set(...))`:
        # a set's order of strings changes between processes, and a restarted worker must agree.
        model = Counter(models).most_common(1)[0][0]
        forecast = Forecast(made_at_ms, start_ms, self.bucket_ms, model, values, models=models,
                            weights=weights or {model: 1.0})
        quantiles = [self.intervals.quantiles(slot + 1) for slot in range(len(self.scored_horizons))]
        for h, v in enumerate(values, start=1):
            slot = self._slot[h - 1]
            lo80, hi80, lo95, hi95 = self.intervals.band(slot + 1, v, quantiles[slot])
            forecast.lo80.append(lo80)
            forecast.hi80.append(hi80)
            forecast.lo95.append(lo95)
            forecast.hi95.append(hi95)
        return forecast

    # -- results ----------------------------------------------------------------------------------

    def forecast(self) -> Forecast | None:
        """The published forecast of the next `horizon` buckets (None before any candidate can forecast)."""
        return self._published

    def to_bytes(self) -> bytes:
        """The whole selector, candidates included, as compressed bytes (`operators.pickled`)."""
        return pickled.dump(self)

    @staticmethod
    def from_bytes(blob: bytes) -> OnlineSelector:
        """A selector saved by `to_bytes`, to continue exactly where it was."""
        return pickled.load(blob, OnlineSelector)

    def candidate_forecasts(self) -> dict[str, list[float | None]]:
        """Every candidate's latest forecast of the next `horizon` buckets."""
        return {name: list(values) for name, values in self._latest.items()}
