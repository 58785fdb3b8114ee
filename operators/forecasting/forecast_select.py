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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from footfall.operators import pickled
from footfall.operators.forecasting.forecasters import Forecaster

__all__ = ["Forecast", "OnlineSelector", "ResidualIntervals", "candidate_array"]

T = TypeVar("T")

Z80, Z95 = 1.2815515655446004, 1.959963984540054
#: How scaled residuals are kept, and the most they may be (float16 ends at 65,504).
RESIDUAL_DTYPE, RESIDUAL_CAP = np.float16, 60_000.0
#: The quantiles of the scaled residuals an interval is read from: 80 % (10, 90) and 95 % (2.5, 97.5).
_LEVELS = (0.10, 0.90, 0.025, 0.975)


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

    The residuals are kept in one fixed-size array, a ring of `window` per horizon (a deque
    of Python floats per horizon took five times the memory).
    """

    def __init__(self, horizon: int, window: int = 200, min_residuals: int = 20) -> None:
        self.horizon = horizon
        self.window = window
        self.min_residuals = min_residuals
        # float16: the ring is the selector's biggest array (13 scored horizons x 200: 5 KB, 10 in float32).
        # Its 11 significant bits put an interval's bound within 0.05 % of its distance from the forecast
        # (a band of +-30 around 150 moves by at most 0.015), far inside the noise of 200 residuals.
        # Quantiles are taken in float64 of these values; a residual is capped at +-60,000 (float16 ends at 65,504).
        self._ring = np.zeros((horizon, window), dtype=RESIDUAL_DTYPE)
        self._added = np.zeros(horizon, dtype=np.int64)  # residuals ever added per horizon
        # `all_quantiles` as of a number of residuals ever added (not saved): a bucket that adds none (a closed
        # hour, forecast empty and empty) publishes the same intervals without sorting again.
        self._quantiles_at: tuple[int, np.ndarray] | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_quantiles_at", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self._quantiles_at = None
        if "_by_h" in state:  # saved before the ring: a deque of floats per horizon
            by_h = state.pop("_by_h")
            window = by_h[0].maxlen if by_h and by_h[0].maxlen else 200
            self.__init__(len(by_h), window, state["min_residuals"])  # type: ignore[misc]
            for i, d in enumerate(by_h):
                for r in d:
                    self._push(i, r)
            return
        self.__dict__.update(state)
        self._ring = self._ring.astype(RESIDUAL_DTYPE, copy=False)  # saved before float16

    def _push(self, i: int, scaled: float) -> None:
        self._ring[i, self._added[i] % self.window] = min(max(scaled, -RESIDUAL_CAP), RESIDUAL_CAP)
        self._added[i] += 1

    def add(self, h: int, residual: float, forecast: float) -> None:
        self._push(h - 1, residual / math.sqrt(max(forecast, 0.0) + 1.0))

    def add_many(self, hs: np.ndarray, residuals: np.ndarray, forecasts: np.ndarray) -> None:
        """`add` at several distinct horizons at once (the same numbers as one `add` each, in a few array steps)."""
        i = np.asarray(hs, dtype=np.int64) - 1
        scaled = np.asarray(residuals, dtype=float) / np.sqrt(np.maximum(forecasts, 0.0) + 1.0)
        self._ring[i, self._added[i] % self.window] = np.minimum(np.maximum(scaled, -RESIDUAL_CAP), RESIDUAL_CAP)
        self._added[i] += 1

    def _held(self, i: int) -> np.ndarray:
        return self._ring[i, :min(int(self._added[i]), self.window)]

    def quantiles(self, h: int) -> tuple[float, float, float, float] | None:
        """The scaled residuals' 10, 90, 2.5 and 97.5 % quantiles at horizon `h` (None: too few yet).

        Computed once per horizon and reused for every forecast scaled from it (`band`).
        """
        residuals = self._held(h - 1)
        if len(residuals) < self.min_residuals:
            residuals = np.concatenate([self._held(i) for i in range(self.horizon)])
        if len(residuals) < self.min_residuals:
            return None
        ordered = np.sort(residuals).astype(float)
        q10, q90, q025, q975 = (float(_quantile(ordered, q)) for q in _LEVELS)
        return q10, q90, q025, q975

    def all_quantiles(self) -> np.ndarray:
        """`quantiles(h)` of every horizon, one row each (NaN: too few yet), the same numbers to the bit; read-only.

        One sort of the whole ring (the empty places of a ring not yet full pushed to the end as
        infinities) and each quantile read at every horizon at once; the pooled residuals of the
        horizons that have too few of their own are sorted once, not once per such horizon. Per
        horizon, in Python, this took a fifth of a store's bucket until every ring had filled.
        """
        added = int(self._added.sum())
        if self._quantiles_at is not None and self._quantiles_at[0] == added:
            return self._quantiles_at[1]
        out = np.full((self.horizon, 4), np.nan)
        held = np.minimum(self._added, self.window)
        own = np.flatnonzero(held >= max(self.min_residuals, 1))
        if len(own):
            n = held[own]
            ring = self._ring[own]
            if (n < self.window).any():
                ring = np.where(np.arange(self.window)[None, :] < n[:, None], ring, RESIDUAL_DTYPE(np.inf))
            ordered = np.sort(ring, axis=1).astype(float)
            rows = np.arange(len(own))
            for j, q in enumerate(_LEVELS):
                rank = q * (n - 1)  # as `_quantile`: float64 rank, its floor, the next rank capped
                low = np.floor(rank).astype(np.int64)
                high = np.minimum(low + 1, n - 1)
                a, b = ordered[rows, low], ordered[rows, high]
                out[own, j] = a + (b - a) * (rank - low)
        if len(own) < self.horizon:
            pooled = np.concatenate([self._held(i) for i in range(self.horizon)])
            if len(pooled) >= self.min_residuals and len(pooled):
                ordered = np.sort(pooled).astype(float)
                rest = np.setdiff1d(np.arange(self.horizon), own)
                out[rest] = [_quantile(ordered, q) for q in _LEVELS]
        out.flags.writeable = False
        self._quantiles_at = (added, out)
        return out

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

    @staticmethod
    def bands(values: np.ndarray, hs: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
        """`band` of every value at once: `values[i]` at scored horizon `hs[i]` (1-based) with `quantiles[i]` (rows
        of `all_quantiles`); the result's rows are lo80, hi80, lo95, hi95."""
        spread = np.sqrt(np.maximum(values, 0.0) + 1.0)
        empirical = values[None, :] + quantiles.T * spread[None, :]
        sd = spread * np.sqrt(hs.astype(float))
        poisson = np.stack([values - Z80 * sd, values + Z80 * sd, values - Z95 * sd, values + Z95 * sd])
        out = np.where(np.isnan(quantiles[:, 0])[None, :], poisson, empirical)
        return np.maximum(out, 0.0)


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


def _as_array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=float)


def candidate_array(candidate: Forecaster, horizon: int, start_ms: int) -> np.ndarray:
    """A candidate's forecast as an array, NaN where it has none (`forecast_array` when it has one)."""
    method = getattr(candidate, "forecast_array", None)
    return method(horizon, start_ms) if method is not None else _as_array(candidate.forecast(horizon, start_ms))


class OnlineSelector:
    """Candidates scored on delayed labels; the best (or a blend) published (see the module docstring).

    State is fixed-size arrays: per candidate and scored horizon the weighted error (the update of
    River's `stats.EWMean`, the first value taken as it is) and the count scored; the forecasts
    waiting for their bucket in one ring per scored horizon `h` of `h` rows (candidates' values and
    the published one, NaN for none); the published values and who made them. The candidates'
    latest forecasts and the published intervals are recomputed when asked (`candidate_forecasts`,
    `forecast`): nothing they depend on changes between two buckets.
    """

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
        self.fading_factor = fading_factor
        # Horizons scored (all by default). Scoring fewer keeps the state small: a horizon between two
        # scored ones is judged, and its interval taken, from the nearest scored one below it.
        self.scored_horizons = sorted(set(scored_horizons)) if scored_horizons is not None else list(
            range(1, horizon + 1))
        if not self.scored_horizons or self.scored_horizons[0] != 1 or self.scored_horizons[-1] > horizon:
            raise ValueError(f"scored_horizons must start at 1 and stay within 1..{horizon}")
        n, k = len(self.scored_horizons), len(self.candidates)
        # Per candidate and scored horizon: weighted mean absolute error, and how many forecasts it holds.
        self._error = np.zeros((k, n))
        self._count = np.zeros((k, n), dtype=np.int64)
        self.intervals = ResidualIntervals(n, interval_window)
        rows = sum(self.scored_horizons)
        self._due = np.full(rows, -1, dtype=np.int64)  # the bucket each waiting row is for (-1: none)
        # Its candidates' forecasts, and the published one; float32 (7 digits are plenty to score a forecast
        # of counts) halves the second-biggest array: 316 rows x 7 at 15-minute buckets, 9 KB instead of 18.
        self._waiting = np.full((rows, k + 1), np.nan, dtype=np.float32)
        self._published: tuple[int, int, np.ndarray, np.ndarray, str, dict[str, float]] | None = None
        self.last_ms: int | None = None
        self._derive()

    def _derive(self) -> None:
        """What follows from the configuration (not saved)."""
        hs = np.asarray(self.scored_horizons, dtype=np.int64)
        self._hs = hs
        self._offsets = np.concatenate([[0], np.cumsum(hs)[:-1]]).astype(np.int64)
        # The scored horizon each horizon is judged at (its slot), and the horizons each slot covers.
        self._slot = np.searchsorted(hs, np.arange(1, self.horizon + 1), side="right") - 1
        self._names = [c.name for c in self.candidates]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for derived in ("_hs", "_offsets", "_slot", "_names"):
            state.pop(derived, None)
        return state

    def __setstate__(self, state: dict) -> None:
        if "errors" in state:  # saved before the arrays: River EWMeans, dicts of pending forecasts
            self._from_legacy(state)
            return
        self.__dict__.update(state)
        self._waiting = self._waiting.astype(np.float32, copy=False)  # saved before float32
        self._derive()

    def _from_legacy(self, state: dict) -> None:
        self.__dict__.update({k: state[k] for k in ("candidates", "horizon", "bucket_ms", "mode", "min_scored",
                                                    "scored_horizons", "intervals", "last_ms")})
        names = [c.name for c in self.candidates]
        errors, scored = state["errors"], state["scored"]
        first = errors[names[0]][0]
        self.fading_factor = getattr(first, "fading_factor", 0.005)
        self._error = np.array([[e.get() for e in errors[name]] for name in names], dtype=float)
        self._count = np.array([scored[name] for name in names], dtype=np.int64)
        rows, k = sum(self.scored_horizons), len(names)
        self._due = np.full(rows, -1, dtype=np.int64)
        self._waiting = np.full((rows, k + 1), np.nan, dtype=np.float32)
        self._derive()
        for target, entries in state["_pending"].items():
            for slot, by_candidate, published in entries:
                row = self._row(slot, target)
                self._due[row] = target
                self._waiting[row, :k] = [math.nan if by_candidate.get(n) is None else by_candidate[n] for n in names]
                self._waiting[row, k] = math.nan if published is None else published
        old: Forecast | None = state["_published"]
        self._published = None
        if old is not None:
            index = {n: i for i, n in enumerate(names)}
            self._published = (old.made_at_ms, old.start_ms, np.array(old.values, dtype=float),
                               np.array([index.get(m, -1) for m in old.models], dtype=np.int16), old.model,
                               dict(old.weights))

    def _row(self, slot: int, target_ms: int) -> int:
        return int(self._offsets[slot] + (target_ms // self.bucket_ms) % self._hs[slot])

    @property
    def scored(self) -> dict[str, list[int]]:
        """Per candidate, how many forecasts were scored at each scored horizon."""
        return {name: [int(c) for c in row] for name, row in zip(self._names, self._count, strict=True)}

    @property
    def errors(self) -> dict[str, list[float]]:
        """Per candidate, the weighted mean absolute error at each scored horizon."""
        return {name: [float(e) for e in row] for name, row in zip(self._names, self._error, strict=True)}

    # -- learning ---------------------------------------------------------------------------------

    def learn_one(self, y: float | None, ts_ms: int) -> None:
        """Take the value of the bucket starting at `ts_ms` (None: a gap), then forecast the next buckets."""
        known = y is not None and math.isfinite(y)
        k = len(self.candidates)
        rows = self._offsets + (ts_ms // self.bucket_ms) % self._hs
        due = self._due[rows] == ts_ms
        if due.any():
            slots, rows = np.nonzero(due)[0], rows[due]
            self._due[rows] = -1
            if known:
                waiting = self._waiting[rows]  # one row per slot scored now
                forecasts = waiting[:, :k].T.astype(float)  # candidates x slots
                have = ~np.isnan(forecasts)
                error = np.abs(y - forecasts)
                old = self._error[:, slots]
                f = self.fading_factor
                self._error[:, slots] = np.where(have, np.where(self._count[:, slots] == 0, error,
                                                                f * error + (1 - f) * old), old)
                self._count[:, slots] += have
                # A bucket forecast empty that stayed empty (a closed hour) says nothing about the spread of
                # an open one; kept, such exact zeros filled most of the window at stores closed at night
                # and collapsed the 80 % band of their open hours to the point forecast (measured).
                published = waiting[:, k].astype(float)
                scored = ~np.isnan(published) & ~((y == 0) & (published < 0.5))
                if scored.any():
                    self.intervals.add_many(slots[scored] + 1, y - published[scored], published[scored])
        for candidate in self.candidates:
            candidate.learn_one(y if known else None, ts_ms)
        self.last_ms = ts_ms
        start = ts_ms + self.bucket_ms
        latest = self._candidate_matrix(start)
        self._published = self._publish(latest, ts_ms, start)
        targets = start + (self._hs - 1) * self.bucket_ms
        rows = self._offsets + (targets // self.bucket_ms) % self._hs
        self._due[rows] = targets
        self._waiting[rows, :k] = latest[:, self._hs - 1].T
        self._waiting[rows, k] = self._published[2][self._hs - 1] if self._published is not None else math.nan

    def _candidate_matrix(self, start_ms: int) -> np.ndarray:
        return np.stack([candidate_array(c, self.horizon, start_ms) for c in self.candidates])

    def _ready(self, slots: Sequence[int]) -> np.ndarray:
        return (self._count[:, slots] >= self.min_scored).all(axis=1)

    def ranking(self, h: int | None = None) -> list[tuple[str, float]]:
        """Candidates scored at least `min_scored` times at horizon `h` (all horizons: their mean), best first."""
        slots = list(range(len(self.scored_horizons))) if h is None else [int(self._slot[h - 1])]
        ready = []
        for i in np.nonzero(self._ready(slots))[0].tolist():
            errors = self._error[i, slots].tolist()
            ready.append((self._names[i], sum(errors) / len(slots)))
        return sorted(ready, key=lambda item: item[1])

    def _order(self, slot: int) -> np.ndarray:
        """Candidates in order of trust at a scored horizon: ranked ones by error, then the rest as given."""
        ready = np.nonzero(self._ready([slot]))[0]
        ranked = ready[np.argsort(self._error[ready, slot], kind="stable")]
        rest = np.nonzero(~self._ready([slot]))[0]
        return np.concatenate([ranked, rest])

    def _orders(self) -> np.ndarray:
        """`_order(slot)` of every scored horizon at once, one column each (candidates x slots)."""
        ready = self._count >= self.min_scored
        # lexsort: by readiness first (ready ones first), then by error among the ready; stable, so the
        # rest keep the order given, as `_order` has it.
        return np.lexsort((np.where(ready, self._error, 0.0), ~ready), axis=0)

    def _publish(self, latest: np.ndarray, made_at_ms: int,
                 start_ms: int) -> tuple[int, int, np.ndarray, np.ndarray, str, dict[str, float]] | None:
        # Candidates in order of trust: scored ones by error, then the rest in the order given. Each
        # horizon takes the most trusted candidate that has a value for it (a seasonal naive has none
        # where a season ago was a gap). Rankings are per scored horizon: computed once each.
        if self.mode == "best":
            # Every horizon at once (a loop over the scored horizons took half of a bucket's forecasting).
            steps = np.arange(self.horizon)
            order = self._orders()[:, self._slot]  # candidates in order of trust, per horizon
            have = ~np.isnan(latest[order, steps])
            if not have.any(axis=0).all():
                return None
            models = order[have.argmax(axis=0), steps].astype(np.int16)
            values = latest[models, steps]
            return made_at_ms, start_ms, values, models, *self._most_used(models)
        values = np.empty(self.horizon)
        models = np.empty(self.horizon, dtype=np.int16)
        weights: dict[str, float] = {}
        have_all = ~np.isnan(latest)
        bounds = [*self._hs.tolist(), self.horizon + 1]
        for slot in range(len(self.scored_horizons)):
            lo, hi = bounds[slot] - 1, min(bounds[slot + 1] - 1, self.horizon)
            if lo >= hi:
                continue
            order = self._order(slot)
            have = have_all[order, lo:hi]
            if not have.any(axis=0).all():
                return None
            if self.mode == "blend":
                ready = set(np.nonzero(self._ready([slot]))[0].tolist())
                for j in range(lo, hi):
                    usable = [int(i) for i in order if have_all[i, j]]
                    scored = [i for i in usable if i in ready]
                    if len(scored) > 1:
                        inverse = {i: 1.0 / max(float(self._error[i, slot]), 1e-9) for i in scored}
                        total = sum(inverse.values())
                        weights = {self._names[i]: w / total for i, w in inverse.items()}
                        values[j] = sum(w * float(latest[i, j]) for i, w in zip(inverse, weights.values(),
                                                                                strict=True))
                        models[j] = -1
                    else:
                        values[j], models[j] = latest[usable[0], j], usable[0]
                continue
            first = order[have.argmax(axis=0)]
            models[lo:hi] = first
            values[lo:hi] = latest[first, np.arange(lo, hi)]
        model, alone = self._most_used(models)
        return made_at_ms, start_ms, values, models, model, weights or alone

    def _most_used(self, models: np.ndarray) -> tuple[str, dict[str, float]]:
        # The most used; a tie goes to the one first used (the nearer horizon). Not `max(set(...))`:
        # a set's order of strings changes between processes, and a restarted worker must agree.
        counts = np.bincount(models + 1)  # index 0: a blend (-1)
        tied = np.flatnonzero(counts == counts.max()) - 1
        best = int(tied[0]) if len(tied) == 1 else int(models[np.isin(models, tied).argmax()])
        model = "blend" if best < 0 else self._names[best]
        return model, {model: 1.0}

    # -- results ----------------------------------------------------------------------------------

    def forecast(self) -> Forecast | None:
        """The published forecast of the next `horizon` buckets (None before any candidate can forecast)."""
        if self._published is None:
            return None
        made_at_ms, start_ms, values, models, model, weights = self._published
        quantiles = self.intervals.all_quantiles()[self._slot]
        lo80, hi80, lo95, hi95 = ResidualIntervals.bands(values, self._slot + 1, quantiles).tolist()
        names = [*self._names, "blend"]  # index -1: a blend
        return Forecast(made_at_ms, start_ms, self.bucket_ms, model, values.tolist(), lo80, hi80, lo95, hi95,
                        [names[i] for i in models.tolist()], dict(weights))

    def to_bytes(self) -> bytes:
        """The whole selector, candidates included, as compressed bytes (`operators.pickled`)."""
        return pickled.dump(self)

    @staticmethod
    def from_bytes(blob: bytes) -> OnlineSelector:
        """A selector saved by `to_bytes`, to continue exactly where it was."""
        return pickled.load(blob, OnlineSelector)

    def candidate_forecasts(self) -> dict[str, list[float | None]]:
        """Every candidate's latest forecast of the next `horizon` buckets."""
        if self.last_ms is None:
            return {}
        start = self.last_ms + self.bucket_ms
        return {c.name: list(c.forecast(self.horizon, start)) for c in self.candidates}
