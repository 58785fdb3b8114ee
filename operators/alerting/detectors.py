"""Anomaly detectors for a store's closed buckets: forecast residuals, several signals at once, early warning.

Every detector has River's shape: `score_one(...)` reads (high = anomalous;
here 1 is the alert threshold) and `learn_one(...)` updates; `to_state()` /
`from_state()` carry the state as plain data.

- `ResidualDetector` judges a bucket's count against the forecast made for it
  (`Expected`: mean and 80 % / 95 % bounds). Residuals are standardised like the
  forecast intervals (`z = (y - mean) / sqrt(mean + 1)`) and divided by a robust
  online scale, the exponentially weighted mean of `|z|` (a mean absolute
  deviation; River `stats.EWMean` would do, but its state is not plain data).
  Two scores, each divided by its threshold: how far the count lies beyond the
  95 % interval (`point`), and a two-sided CUSUM[^1] of the scaled residuals
  (`S+ = max(0, S+ + r - k)`, `S- = max(0, S- - r - k)` against `h`, with `r`
  winsorised so one wild bucket moves it by a bounded step), which
  catches a sustained shift (a holiday, a closed road) that no single bucket
  shows. Judge against a forecast made some hours earlier (`StoreWatch` keeps
  them): a one-bucket-ahead forecast follows a shift within an hour or two and
  hides it.
- `value_to_learn` is what a forecaster (and the scale) should learn from a
  flagged bucket: the count clipped into the 95 % interval, so an outlier does
  not teach the models that judge the next buckets that it is normal.
- `MultiSignalDetector` scores a bucket's other signals (occupancy, dwell,
  conversion, queue wait, ...) each as a Gaussian (River's `stats.Var`: what
  `anomaly.GaussianScorer` fits) on `log1p` of the value; the score is the most
  surprising signal's.
- `early_warning` decides, for a bucket still open, whether it will end above
  its 95 % bound: certainly (the count so far is already above it) or very
  likely (even if the rest of the bucket only brings the forecast's share).

Examples
--------
A steady forecast of 100 per bucket, 95 % interval 80-120; counts near it, then a jump.
The scale settles near 0.39 (so one unit is 0.39 * sqrt(101) = 3.9 counts); 240 lies
(240 - 120) / 3.9 = 30.6 units beyond the interval, 3.8 times the `point` threshold,
and is learned as 120:

>>> detector = ResidualDetector(point=8.0, cusum_k=2.0, cusum_h=24.0)
>>> expected = Expected(100.0, 87.0, 113.0, 80.0, 120.0)
>>> for y in [104, 97, 101, 96, 240]:
...     score = detector.score_one(y, expected)
...     learned = value_to_learn(y, expected, flagged=score >= 1)
...     detector.learn_one(y, expected, learned)
...     print(y, round(score, 2), learned, round(detector.scale, 3))
104 0.0 104 0.398
97 0.0 97 0.396
101 0.0 101 0.39
96 0.0 96 0.39
240 3.82 120.0 0.422

References
----------
[^1]: Page, E. S., 1954. Continuous inspection schemes. Biometrika, 41(1/2), pp. 100-115.

"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from river import stats

__all__ = [
    "Assessment",
    "EarlyWarning",
    "Expected",
    "MultiSignalDetector",
    "ResidualDetector",
    "early_warning",
    "value_to_learn",
]


#: Highest CUSUM score of a bucket that does not confirm the CUSUM (`ResidualDetector(confirm=True)`).
_UNCONFIRMED = 0.99


class Expected(NamedTuple):
    """A forecast for one bucket: the point forecast and its 80 % and 95 % bounds."""

    mean: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float

    @classmethod
    def from_forecast(cls, forecast: Any, index: int) -> Expected:
        """The `index`-th bucket of a published `forecast_select.Forecast`."""
        i = index
        return cls(forecast.values[i], forecast.lo80[i], forecast.hi80[i], forecast.lo95[i], forecast.hi95[i])


def value_to_learn(observed: float, expected: Expected | None, flagged: bool) -> float:
    """What the models should learn from a bucket: the count, or, when flagged, the count clipped to the 95 % bounds.

    >>> e = Expected(100.0, 90.0, 110.0, 80.0, 120.0)
    >>> value_to_learn(300.0, e, True), value_to_learn(3.0, e, True), value_to_learn(300.0, e, False)
    (120.0, 80.0, 300.0)

    """
    if not flagged or expected is None:
        return observed
    return min(max(observed, expected.lo95), expected.hi95)


@dataclass(frozen=True)
class Assessment:
    """A bucket judged against its forecast: the score (1 = alert) and what makes it up."""

    score: float  # max(point / point threshold, CUSUM / h)
    direction: int  # +1 above the forecast, -1 below, 0 neither
    point: float  # distance beyond the 95 % interval in robust scale units
    residual: float  # (observed - mean) in robust scale units
    cusum_up: float
    cusum_down: float
    sustained: bool  # the CUSUM (evidence over several buckets), not one bucket, makes the score


class ResidualDetector:
    """Forecast residuals scored by distance beyond the interval and by a CUSUM (see the module docstring).

    Parameters
    ----------
    point
        Distance beyond the 95 % interval, in robust scale units, that alone is an alert.
    cusum_k
        Allowance per bucket (scale units): residuals below it do not accumulate.
    cusum_h
        CUSUM level that is an alert.
    fading
        Weight of the newest bucket in the robust scale.
    cap
        The CUSUM is held below `cap * cusum_h`, so it comes back down within a few buckets of the end of a shift.
    min_scale
        Smallest scale, in counts, a residual is divided by: on a quiet night one visitor is not an anomaly.
    winsor
        Largest step of the CUSUM per bucket (scale units; default `cusum_h / 4`).
    slot_fading, slot_min
        Per slot (e.g. local hour of the week, passed as `slot`), a scale of its own: the EW mean absolute
        deviation of `z` around its EW mean there, used (but never below half the global scale) once the slot
        has `slot_min` values. Forecasts miss some hours of the week more than others (a Saturday night
        after a weekday); their own scale keeps those misses from being alerts every week.
    scale_cap
        When set, a residual moves the scales by at most `scale_cap` times the current scale: the first
        buckets of an incident, not flagged yet, then cannot widen the scale they are judged by (None: off).
    confirm
        When True, the CUSUM alerts only on a bucket that is itself on or beyond the 95 % interval's
        bound on the CUSUM's side (a zero where that bound is zero confirms a drop): evidence summed
        over buckets that each look normal ("16, expected 15-36") is not something a person can act
        on, and on quiet simulated stores it made most false alerts.

    """

    def __init__(self, point: float = 8.0, cusum_k: float = 2.0, cusum_h: float = 24.0, fading: float = 0.02,
                 cap: float = 2.0, min_scale: float = 1.0, winsor: float | None = None, slot_fading: float = 0.3,
                 slot_min: int = 2, scale_cap: float | None = None, confirm: bool = False) -> None:
        if point <= 0 or cusum_h <= 0 or cusum_k < 0 or not 0 < fading <= 1 or cap < 1 or min_scale <= 0:
            raise ValueError("point, cusum_h, fading and min_scale must be > 0, cusum_k >= 0, cap >= 1")
        self.winsor = winsor if winsor is not None else cusum_h / 4
        self.slot_fading = slot_fading
        self.slot_min = slot_min
        self.scale_cap = scale_cap
        self.confirm = confirm
        # Per slot, a row [n, EW mean of z, EW mean of |z - mean|] (n = 0: not seen), in one array that grows
        # to the highest slot seen (168 for hours of the week): a dict of lists took 36 KB per watch.
        self.slots = np.zeros((0, 3))
        self.point = point
        self.cusum_k = cusum_k
        self.cusum_h = cusum_h
        self.fading = fading
        self.cap = cap
        self.min_scale = min_scale
        self.scale: float | None = None  # EW mean of |z|
        self.cusum_up = 0.0
        self.cusum_down = 0.0
        self.n = 0

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, float]]:
        yield {}
        yield {"point": 4.0, "cusum_k": 1.0, "cusum_h": 8.0, "fading": 0.1}

    def unit(self, expected: Expected, slot: int | None = None) -> float:
        """The robust scale of a residual at `expected` (and hour-of-week `slot`): one unit of `point`."""
        spread = math.sqrt(max(expected.mean, 0.0) + 1.0)
        scale = self.scale if self.scale is not None else 1.0
        if slot is not None and 0 <= slot < len(self.slots):
            n, _, spread_z = self.slots[slot].tolist()
            if n and n >= self.slot_min:
                scale = max(spread_z, 0.5 * scale)
        return max(scale * spread, self.min_scale)

    def assess(self, observed: float, expected: Expected, slot: int | None = None) -> Assessment:
        """The bucket's assessment; reads only."""
        unit = self.unit(expected, slot)
        residual = (observed - expected.mean) / unit
        beyond = max(observed - expected.hi95, expected.lo95 - observed, 0.0) / unit
        # Winsorised: one wild bucket (the point score's business) moves the CUSUM by at most `winsor`.
        step = min(max(residual, -self.winsor), self.winsor)
        up = max(0.0, self.cusum_up + step - self.cusum_k)
        down = max(0.0, self.cusum_down - step - self.cusum_k)
        up_score, down_score = up / self.cusum_h, down / self.cusum_h
        if self.confirm:
            up_score = up_score if observed >= expected.hi95 else min(up_score, _UNCONFIRMED)
            down_score = down_score if observed <= expected.lo95 else min(down_score, _UNCONFIRMED)
        score = max(beyond / self.point, up_score, down_score)
        sustained = max(up_score, down_score) > beyond / self.point
        if score <= 0:
            direction = 0
        elif not sustained:
            direction = 1 if observed > expected.mean else -1
        else:
            direction = 1 if up_score >= down_score else -1
        return Assessment(score, direction, beyond, residual, up, down, sustained)

    def score_one(self, observed: float, expected: Expected, slot: int | None = None) -> float:
        return self.assess(observed, expected, slot).score

    def learn_one(self, observed: float, expected: Expected, learned: float | None = None,
                  slot: int | None = None) -> None:
        """Move the CUSUM by the observed residual and the scales by the learned value (`observed` by default)."""
        a = self.assess(observed, expected, slot)
        limit = self.cap * self.cusum_h
        self.cusum_up = min(a.cusum_up, limit)
        self.cusum_down = min(a.cusum_down, limit)
        value = observed if learned is None else learned
        signed = (value - expected.mean) / math.sqrt(max(expected.mean, 0.0) + 1.0)
        if self.scale_cap is not None and self.scale is not None:
            bound = self.scale_cap * self.scale
            signed = min(max(signed, -bound), bound)
        z = abs(signed)
        self.scale = z if self.scale is None else (1 - self.fading) * self.scale + self.fading * z
        if slot is not None:
            if slot >= len(self.slots):
                self.slots = np.concatenate([self.slots, np.zeros((max(slot + 1, 168) - len(self.slots), 3))])
            n, mean, spread_z = self.slots[slot].tolist()
            if not n:
                self.slots[slot] = (1.0, signed, max(z, self.scale))
            else:
                f = self.slot_fading
                self.slots[slot] = (n + 1, (1 - f) * mean + f * signed, (1 - f) * spread_z + f * abs(signed - mean))
        self.n += 1

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if isinstance(self.slots, dict):  # saved before the array: slot -> [n, mean, spread]
            self.slots = self._slot_array(self.slots.items())

    @staticmethod
    def _slot_array(rows: Any) -> np.ndarray:
        rows = [(int(k), v) for k, v in rows]
        out = np.zeros((max([168, *(k + 1 for k, _ in rows)]) if rows else 0, 3))
        for k, v in rows:
            out[k] = [float(x) for x in v]
        return out

    def reset_cusum(self) -> None:
        """Forget accumulated evidence (e.g. after a gap in the data)."""
        self.cusum_up = self.cusum_down = 0.0

    def to_state(self) -> dict[str, Any]:
        return {"point": self.point, "cusum_k": self.cusum_k, "cusum_h": self.cusum_h, "fading": self.fading,
                "cap": self.cap, "min_scale": self.min_scale, "winsor": self.winsor, "slot_fading": self.slot_fading,
                "slot_min": self.slot_min, "scale_cap": self.scale_cap, "confirm": self.confirm,
                "slots": [[k, *row] for k, row in enumerate(self.slots.tolist()) if row[0]],
                "scale": self.scale, "cusum_up": self.cusum_up,
                "cusum_down": self.cusum_down, "n": self.n}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ResidualDetector:
        d = cls(state["point"], state["cusum_k"], state["cusum_h"], state["fading"], state["cap"],
                state["min_scale"], state["winsor"], state["slot_fading"], state["slot_min"], state.get("scale_cap"),
                bool(state.get("confirm", False)))
        d.slots = d._slot_array((k, (n, m, a)) for k, n, m, a in state["slots"])
        d.scale, d.cusum_up, d.cusum_down, d.n = state["scale"], state["cusum_up"], state["cusum_down"], state["n"]
        return d


class MultiSignalDetector:
    """Several per-bucket signals, each scored as a Gaussian fitted to `log1p(value)`.

    Each signal keeps River's `stats.Var` (ddof 1): the fit of `anomaly.GaussianScorer`,
    without the scorer and its `proba.Gaussian`, whose random generator (for sampling,
    never used here) took 2.5 of the 3.8 KB a signal cost (tracemalloc).

    The score of a bucket is `surprise / threshold` for its most surprising signal,
    where `surprise = -log10(1 - p)` and `p = 2 |CDF(x) - 1/2|` is the scorer's
    two-sided probability: 1 (the alert level) at `p = 1 - 10^-threshold`.
    Signals missing from a bucket are skipped; a signal is scored only after
    `grace_period` values, and not while it has been constant.

    Examples
    --------
    >>> detector = MultiSignalDetector(grace_period=5, threshold=3.0)
    >>> for wait, dwell in [(60, 600), (65, 640), (58, 580), (62, 610), (61, 590), (59, 620), (63, 605)]:
    ...     detector.learn_one({"queue_wait_s": wait, "dwell_s": dwell})
    >>> round(detector.score_one({"queue_wait_s": 62, "dwell_s": 600}), 2)
    0.05
    >>> score, signal = detector.explain({"queue_wait_s": 70, "dwell_s": 600})
    >>> round(score, 2), signal
    (1.09, 'queue_wait_s')

    """

    def __init__(self, grace_period: int = 48, threshold: float = 4.0) -> None:
        if grace_period < 2 or threshold <= 0:
            raise ValueError("grace_period must be >= 2 and threshold > 0")
        self.grace_period = grace_period
        self.threshold = threshold
        self.scorers: dict[str, stats.Var] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # Pickled before: River's GaussianScorer per signal, whose Gaussian holds the same Var.
        self.scorers = {k: getattr(getattr(v, "gaussian", None), "_var", v) for k, v in self.scorers.items()}

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, float]]:
        yield {}
        yield {"grace_period": 5, "threshold": 2.0}

    def explain(self, x: Mapping[str, float | None]) -> tuple[float, str | None]:
        """`(score, signal)`: the score and the signal that makes it (None before any is scored)."""
        best, name = 0.0, None
        for key, value in x.items():
            var = self.scorers.get(key)
            if var is None or value is None or not math.isfinite(value):
                continue
            sigma = var.get() ** 0.5  # as `proba.Gaussian.sigma`
            if var.mean.n < self.grace_period or sigma <= 1e-12:
                continue  # too few values, or a constant signal (no spread to judge by)
            # 1 - p is the two-sided tail erfc(|z| / sqrt 2), computed directly so that it does not round to 0.
            tail = math.erfc(abs(math.log1p(max(value, 0.0)) - var.mean.get()) / (sigma * math.sqrt(2)))
            surprise = -math.log10(max(tail, 1e-300)) / self.threshold
            if surprise > best:
                best, name = surprise, key
        return best, name

    def score_one(self, x: Mapping[str, float | None]) -> float:
        return self.explain(x)[0]

    def learn_one(self, x: Mapping[str, float | None]) -> None:
        for key, value in x.items():
            if value is None or not math.isfinite(value):
                continue
            var = self.scorers.get(key)
            if var is None:
                var = self.scorers[key] = stats.Var(ddof=1)
            var.update(math.log1p(max(value, 0.0)))

    def to_state(self) -> dict[str, Any]:
        signals = {}
        for key, var in self.scorers.items():  # River's Var: n, mean, sum of squared deviations
            signals[key] = [var.mean.n, var.mean._mean, var._S]
        return {"grace_period": self.grace_period, "threshold": self.threshold, "signals": signals}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> MultiSignalDetector:
        d = cls(state["grace_period"], state["threshold"])
        for key, (n, mean, s) in state["signals"].items():
            var = stats.Var(ddof=1)
            var.mean.n, var.mean._mean, var._S = float(n), float(mean), float(s)
            d.scorers[key] = var
        return d


@dataclass(frozen=True)
class EarlyWarning:
    """An open bucket's outlook: `certain` or `likely` to end above its 95 % bound, or None."""

    status: str | None
    projected: float  # count so far plus the forecast's share of the rest of the bucket
    bound: float


def early_warning(count_so_far: float, elapsed: float, expected: Expected, min_elapsed: float = 0.25,
                  margin: float = 0.0) -> EarlyWarning:
    """Will the bucket end above `expected.hi95`?

    `certain` when the count so far already exceeds it; `likely` when, after at
    least `min_elapsed` of the bucket, even the conservative projection
    `count_so_far + (1 - elapsed) * expected.mean` (the rest of the bucket brings
    only what the forecast expects for it) exceeds it by more than `margin`.

    >>> e = Expected(100.0, 90.0, 110.0, 80.0, 120.0)
    >>> early_warning(121, 0.5, e).status, early_warning(80, 0.5, e).status, early_warning(60, 0.5, e).status
    ('certain', 'likely', None)
    >>> early_warning(100, 0.1, e).status  # too early to call
    >>> early_warning(80, 0.5, e).projected
    130.0

    """
    if not 0 <= elapsed <= 1:
        raise ValueError(f"elapsed must be a fraction of the bucket, got {elapsed}")
    projected = count_so_far + (1 - elapsed) * max(expected.mean, 0.0)
    if count_so_far > expected.hi95:
        return EarlyWarning("certain", projected, expected.hi95)
    if elapsed >= min_elapsed and projected > expected.hi95 + margin:
        return EarlyWarning("likely", projected, expected.hi95)
    return EarlyWarning(None, projected, expected.hi95)
