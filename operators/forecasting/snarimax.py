"""River's seasonal AR model as a few numbers: the same learning, a fifth of the memory.

`CompactSnarimax` is River's `time_series.SNARIMAX(p, d=0, q=0, m, sp=1, sd=1, sq=0)` with the
regressor `preprocessing.StandardScaler() | linear_model.LinearRegression(optim.SGD(lr),
intercept_lr)`, the configuration `forecasters.SnarimaxForecaster` uses, kept as two rings of
`m` floats (the series and its seasonal differences) and four short lists (the scaler's counts,
means and variances and the weights, one per lag feature) instead of River's deques of floats,
feature dicts, defaultdicts and pipeline. Measured on a simulated retail store's arrivals after
8 days of 15-minute buckets (`tracemalloc` of the unpickled model): River's model held 15.9 KB
in RAM, this one 3.3 KB; a store has two, one per series. It learns as River does, update for
update: the forecasts match River's to 1e-9 (`tests/unit/test_snarimax.py`, River run beside it
as the reference; on calit2 every published forecast is the same), and a River model saved by an
older worker is taken over as it is (`from_river`).

Examples
--------
>>> from river import linear_model, optim, preprocessing, time_series
>>> river = time_series.SNARIMAX(p=2, d=0, q=0, m=4, sp=1, sd=1, sq=0,
...     regressor=preprocessing.StandardScaler() | linear_model.LinearRegression(
...         optimizer=optim.SGD(0.01), intercept_lr=0.05))
>>> compact = CompactSnarimax(p=2, m=4, lr=0.01, intercept_lr=0.05)
>>> for y in [3.0, 5.0, 2.0, 1.0] * 6:
...     river.learn_one(y)
...     compact.learn_one(y)
>>> [round(v, 9) for v in compact.forecast(3)] == [round(v, 9) for v in river.forecast(3)]
True

"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CompactSnarimax"]

#: River's `LinearRegression(clip_gradient=1e12)` default.
CLIP_GRADIENT = 1e12


class CompactSnarimax:
    """SNARIMAX(p, 0, 0)(1, 1, 0)_m on a standardised linear regression (see the module docstring).

    Parameters
    ----------
    p
        Autoregressive lags of the differenced series (at most `m`).
    m
        Season length in steps; the series is differenced at lag `m`, and lag `m` of the
        differences is the seasonal feature.
    lr
        The weights' SGD learning rate.
    intercept_lr
        The intercept's learning rate.

    """

    # Slots: no per-object dict (0.2 KB of the 3.5 KB the model took with one, measured).
    __slots__ = ("counts", "diff_seen", "hist_seen", "intercept", "intercept_lr", "lags", "lr", "m", "means",
                 "p", "vars", "weights", "y_diff", "y_hist")

    def __init__(self, p: int, m: int, lr: float, intercept_lr: float) -> None:
        if not 0 <= p <= m:
            raise ValueError(f"p must be between 0 and m={m}, got {p}")
        self.p, self.m, self.lr, self.intercept_lr = p, m, lr, intercept_lr
        #: The lag of each feature in the differenced series, River's order: y-1 .. y-p, then sy-m.
        self.lags = [*range(1, p + 1), m]
        k = len(self.lags)
        # Per feature, as River's StandardScaler and LinearRegression keep them (Python floats: one
        # update touches each a few times, where numpy scalars would cost more than the arithmetic).
        self.counts = [0] * k
        self.means = [0.0] * k
        self.vars = [0.0] * k
        self.weights = [0.0] * k
        self.intercept = 0.0
        # Rings of the last `m` values, the newest at `(seen - 1) % m`.
        self.y_hist = np.zeros(m)
        self.y_diff = np.zeros(m)
        self.hist_seen = 0
        self.diff_seen = 0

    @staticmethod
    def _lag(ring: np.ndarray, seen: int, lag: int) -> float:
        return float(ring[(seen - lag) % len(ring)])

    def _features(self) -> list[tuple[int, float]]:
        """(feature index, value) of the lags the differenced series has: River leaves the others out."""
        return [(k, self._lag(self.y_diff, self.diff_seen, lag)) for k, lag in enumerate(self.lags)
                if lag <= self.diff_seen]

    def _scaled(self, features: list[tuple[int, float]]) -> list[tuple[int, float]]:
        means, vars_ = self.means, self.vars
        return [(k, (x - means[k]) / vars_[k] ** 0.5 if vars_[k] else 0.0) for k, x in features]

    def learn_one(self, y: float) -> None:
        """River's `SNARIMAX.learn_one(y)`."""
        m = self.m
        if self.hist_seen >= m:
            features = self._features()
            y_diff = y - self._lag(self.y_hist, self.hist_seen, m)
            self.y_diff[self.diff_seen % m] = y_diff
            self.diff_seen += 1
            # River's pipeline: the scaler learns the features, then the regression learns them scaled.
            counts, means, vars_ = self.counts, self.means, self.vars
            for k, x in features:
                counts[k] += 1
                old_mean = means[k]
                means[k] += (x - old_mean) / counts[k]
                vars_[k] += ((x - old_mean) * (x - means[k]) - vars_[k]) / counts[k]
            scaled = self._scaled(features)
            weights = self.weights
            raw = self.intercept
            for k, x in scaled:
                raw += weights[k] * x
            gradient = min(max(2 * (raw - y_diff), -CLIP_GRADIENT), CLIP_GRADIENT)
            self.intercept -= self.intercept_lr * gradient
            for k, x in scaled:
                weights[k] -= self.lr * (x * gradient)
        self.y_hist[self.hist_seen % m] = y
        self.hist_seen += 1

    def forecast(self, horizon: int) -> list[float]:
        """River's `SNARIMAX.forecast(horizon)`: each step's prediction feeds the next; needs `m` values seen."""
        m = self.m
        if self.hist_seen < m:
            raise ValueError(f"forecasting needs {m} values seen, {self.hist_seen} were")
        # Oldest first, growing at the end: lag l at [-l].
        history = _chronological(self.y_hist, self.hist_seen)
        diffs = _chronological(self.y_diff, self.diff_seen)
        # The regression is linear in the scaled lags: fold the scaler into one coefficient per lag.
        coefs, intercept = [], self.intercept
        for k in range(len(self.lags)):
            coef = self.weights[k] / self.vars[k] ** 0.5 if self.vars[k] else 0.0
            coefs.append(coef)
            intercept -= coef * self.means[k]
        terms = list(zip(coefs, self.lags, self.means, strict=True))
        out = []
        if len(diffs) >= m and self.p == 2:  # the configuration used, written out (a third of the loop's time)
            (c1, _, _), (c2, _, _), (cm, _, _) = terms
            for _ in range(horizon):
                pred = intercept + c1 * diffs[-1] + c2 * diffs[-2] + cm * diffs[-m]
                diffs.append(pred)
                value = pred + history[-m]
                history.append(value)
                out.append(value)
            return out
        for _ in range(horizon):
            pred = intercept
            for coef, lag, mean in terms:
                if lag <= len(diffs):
                    pred += coef * diffs[-lag]
                else:  # River leaves a lag the series does not have out: the scaler's shift folded in is undone
                    pred += coef * mean
            diffs.append(pred)
            value = pred + history[-m]
            history.append(value)
            out.append(value)
        return out

    @classmethod
    def from_river(cls, model: Any) -> CompactSnarimax:
        """The same model from a River `SNARIMAX` of this configuration (as older workers saved it)."""
        if model.d or model.q or model.sq or model.sp != 1 or model.sd != 1:
            raise ValueError("only SNARIMAX(p, 0, 0)(1, 1, 0)_m converts")
        scaler, regression = model.regressor.steps.values()
        def rate(lr: Any) -> float:  # a number, or River's constant scheduler of it
            return float(getattr(lr, "learning_rate", lr))

        compact = cls(model.p, model.m, rate(regression.optimizer.lr), rate(regression.intercept_lr))
        for k, lag in enumerate(compact.lags):
            key = f"y-{lag}" if k < model.p else f"sy-{lag}"
            compact.counts[k] = int(scaler.counts.get(key, 0))
            compact.means[k] = float(scaler.means.get(key, 0.0))
            compact.vars[k] = float(scaler.vars.get(key, 0.0))
            compact.weights[k] = float(regression._weights.get(key, 0.0))
        compact.intercept = float(regression.intercept)
        # River's deques run newest first; as many values as River kept, with the ring's own counter.
        for ring, values, attr in ((compact.y_hist, list(model.y_hist), "hist_seen"),
                                   (compact.y_diff, list(model.y_diff), "diff_seen")):
            for i, value in enumerate(reversed(values)):
                ring[i % compact.m] = value
            setattr(compact, attr, len(values))
        return compact


def _chronological(ring: np.ndarray, seen: int) -> list[float]:
    """The ring's values oldest first (only those written)."""
    m = len(ring)
    if seen < m:
        return ring[:seen].tolist()
    at = seen % m
    return np.concatenate((ring[at:], ring[:at])).tolist()
