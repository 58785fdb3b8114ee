"""River's additive Holt-Winters as a few floats and one ring: the same updates, a fifth of the memory.

`CompactHoltWinters` is River's `time_series.HoltWinters(alpha, beta, gamma, seasonality=m)`
(additive, with a trend), the configuration `forecasters.HoltWintersForecaster` uses, with
the additive start (the first season minus its mean; River starts an additive season in the
multiplicative form, see `HoltWintersForecaster`). River keeps its level, trend and season as
deque subclasses of Python floats; here they are two floats each and a float64 ring of `m + 1`
values, updated by the same expressions in the same order, so the forecasts are River's bit for bit
(`tests/unit/test_holt_winters.py`, River run beside it as the reference). A River model saved
by an older worker is taken over as it is (`from_river`).

Examples
--------
A season seen exactly again and again is forecast as it is (level 3.25, no trend):

>>> model = CompactHoltWinters(alpha=0.2, beta=0.01, gamma=0.2, m=4)
>>> for y in [3.0, 5.0, 2.0, 3.0] * 3:
...     model.learn_one(y)
>>> [round(v, 9) for v in model.forecast(6)]
[3.0, 5.0, 2.0, 3.0, 3.0, 5.0]

"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

import numpy as np

__all__ = ["CompactHoltWinters"]


class CompactHoltWinters:
    """Additive Holt-Winters with a trend and a season of `m` steps (see the module docstring)."""

    __slots__ = ("alpha", "beta", "first", "gamma", "level", "m", "prev_level", "prev_trend", "season",
                 "season_seen", "trend")

    def __init__(self, alpha: float, beta: float, gamma: float, m: int) -> None:
        if m < 1 or not beta or not gamma:
            raise ValueError("a season of at least one step, and beta and gamma set, are needed")
        self.alpha, self.beta, self.gamma, self.m = alpha, beta, gamma, m
        self.first: list[float] | None = []  # the first season, until it starts the model
        self.level = self.prev_level = self.trend = self.prev_trend = 0.0
        self.season = np.zeros(m + 1)  # River's deque of the last m + 1 season values, as a ring
        self.season_seen = 0

    @property
    def initialized(self) -> bool:
        return self.first is None

    def _season_back(self, lag: int) -> float:
        """River's `season[-lag]`."""
        return float(self.season[(self.season_seen - lag) % (self.m + 1)])

    def _append_season(self, value: float) -> None:
        self.season[self.season_seen % (self.m + 1)] = value
        self.season_seen += 1

    def learn_one(self, y: float) -> None:
        """River's `HoltWinters.learn_one(y)`, started the additive way."""
        if self.first is not None:
            self.first.append(y)
            if len(self.first) >= max(2, self.m):
                first, self.first = self.first, None
                self.level = statistics.mean(first)
                self.trend = statistics.mean(b - a for a, b in itertools.pairwise(first))
                for v in first:
                    self._append_season(v - self.level)
            return
        alpha, beta, gamma, m = self.alpha, self.beta, self.gamma, self.m
        season_m = self._season_back(m)
        # River's expressions, in River's order: the same floats.
        self.prev_level, self.level = self.level, alpha * (y - season_m) + (1 - alpha) * (self.level + self.trend)
        self.prev_trend, self.trend = self.trend, beta * (self.level - self.prev_level) + (1 - beta) * self.trend
        self._append_season(gamma * (y - self.prev_level - self.prev_trend) + (1 - gamma) * season_m)

    def forecast(self, horizon: int) -> list[float]:
        """River's `forecast`: `level + (h + 1) * trend + season[-m + h % m]`."""
        return self.forecast_array(horizon).tolist()

    def forecast_array(self, horizon: int) -> np.ndarray:
        """`forecast` for all steps at once."""
        if self.first is not None:
            raise ValueError(f"forecasting needs {max(2, self.m)} values seen")
        m = self.m
        steps = np.arange(horizon)
        lags = m - steps % m  # season[-m + h % m] is season[-(m - h % m)]
        season = self.season[(self.season_seen - lags) % (m + 1)]
        return (self.level + (steps + 1) * self.trend) + season

    @classmethod
    def from_river(cls, model: Any) -> CompactHoltWinters:
        """The same model from a River `HoltWinters` of this configuration (as older workers saved it)."""
        if model.multiplicative or model.trend is None or model.season is None:
            raise ValueError("only an additive Holt-Winters with a trend and a season converts")
        compact = cls(model.alpha, model.beta, model.gamma, model.seasonality)
        if not model._initialized:
            compact.first = list(model._first_values)
            return compact
        compact.first = None
        levels, trends = list(model.level), list(model.trend)
        compact.level, compact.trend = levels[-1], trends[-1]
        compact.prev_level = levels[-2] if len(levels) > 1 else 0.0
        compact.prev_trend = trends[-2] if len(trends) > 1 else 0.0
        for value in model.season:
            compact._append_season(value)
        return compact
