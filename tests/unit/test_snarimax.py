"""`CompactSnarimax` against River's own SNARIMAX, run beside it on the same series: the reference."""

from __future__ import annotations

import math
import random

import pytest
from river import linear_model, optim, preprocessing, time_series

from footfall.operators.forecasting.snarimax import CompactSnarimax


def river_model(p: int, m: int, lr: float, intercept_lr: float) -> time_series.SNARIMAX:
    return time_series.SNARIMAX(p=p, d=0, q=0, m=m, sp=1, sd=1, sq=0,
                                regressor=preprocessing.StandardScaler() | linear_model.LinearRegression(
                                    optimizer=optim.SGD(lr), intercept_lr=intercept_lr))


def series(rng: random.Random, n: int, m: int) -> list[float]:
    """log1p of Poisson-like counts with a season of m steps and a trend, as the forecaster sees them."""
    return [math.log1p(max(0.0, 20 + 15 * math.sin(2 * math.pi * i / m) + 0.01 * i + rng.gauss(0, 4)))
            for i in range(n)]


@pytest.mark.parametrize(("p", "m", "lr"), [(2, 24, 0.005), (0, 5, 0.01), (1, 1, 0.02), (3, 7, 0.005),
                                            (7, 7, 0.01), (2, 96, 0.005)])
def test_it_learns_and_forecasts_as_river_does_at_every_step(p: int, m: int, lr: float) -> None:
    rng = random.Random(p * 100 + m)
    river, compact = river_model(p, m, lr, 0.05), CompactSnarimax(p, m, lr, 0.05)
    scaler, regression = river.regressor.steps.values()
    for i, y in enumerate(series(rng, 5 * m + 40, m)):
        river.learn_one(y)
        compact.learn_one(y)
        if i + 1 < m:
            with pytest.raises(ValueError):
                compact.forecast(3)
            continue
        horizon = rng.choice([1, 2, m, 2 * m + 3])
        assert compact.forecast(horizon) == pytest.approx(list(river.forecast(horizon)), rel=1e-9, abs=1e-12)
    keys = [f"y-{t}" for t in range(1, p + 1)] + [f"sy-{m}"]
    assert compact.means == pytest.approx([scaler.means[k] for k in keys], rel=1e-12)
    assert compact.vars == pytest.approx([scaler.vars[k] for k in keys], rel=1e-12)
    assert compact.weights == pytest.approx([regression._weights.get(k, 0.0) for k in keys], rel=1e-9)
    assert compact.intercept == pytest.approx(regression.intercept, rel=1e-9)


@pytest.mark.parametrize("learned", [0, 3, 24, 30, 48, 100])
def test_a_river_model_taken_over_goes_on_as_river_would(learned: int) -> None:
    rng = random.Random(learned)
    values = series(rng, learned + 60, 24)
    river = river_model(2, 24, 0.005, 0.05)
    for y in values[:learned]:
        river.learn_one(y)
    compact = CompactSnarimax.from_river(river)
    for seen, y in enumerate(values[learned:], start=learned + 1):
        river.learn_one(y)
        compact.learn_one(y)
        if seen >= 24:
            assert compact.forecast(30) == pytest.approx(list(river.forecast(30)), rel=1e-9, abs=1e-12)
    assert compact.hist_seen >= 24 and compact.diff_seen >= 24


def test_other_river_configurations_are_refused() -> None:
    with pytest.raises(ValueError, match="converts"):
        CompactSnarimax.from_river(time_series.SNARIMAX(p=2, d=1, q=0, m=24, sp=1, sd=1))
    with pytest.raises(ValueError, match="p must be"):
        CompactSnarimax(5, 4, 0.01, 0.05)
