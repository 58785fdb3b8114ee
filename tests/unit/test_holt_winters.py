"""`CompactHoltWinters` against River's own HoltWinters, run beside it on the same series: the reference."""

from __future__ import annotations

import itertools
import math
import pickle
import random
import statistics

import pytest
from river import time_series

from footfall.operators.forecasting.holt_winters import CompactHoltWinters


def river_model(alpha: float, beta: float, gamma: float, m: int) -> time_series.HoltWinters:
    return time_series.HoltWinters(alpha=alpha, beta=beta, gamma=gamma, seasonality=m)


def river_learn(model: time_series.HoltWinters, y: float) -> None:
    """River's learn_one, started the additive way (River's own start is the multiplicative form)."""
    if not model._initialized and len(model._first_values) + 1 >= max(2, model.seasonality):
        first = [*model._first_values, y]
        model.level.append(statistics.mean(first))
        model.trend.append(statistics.mean(b - a for a, b in itertools.pairwise(first)))
        model.season.extend([v - model.level[-1] for v in first])
        model._initialized, model._first_values = True, []
        return
    model.learn_one(y)


def series(rng: random.Random, n: int, m: int) -> list[float]:
    return [max(0.0, 20 + 15 * math.sin(2 * math.pi * i / m) + 0.02 * i + rng.gauss(0, 4)) for i in range(n)]


@pytest.mark.parametrize(("alpha", "beta", "gamma", "m"), [(0.2, 0.01, 0.2, 24), (0.5, 0.1, 0.3, 2),
                                                            (0.3, 0.05, 0.1, 1), (0.2, 0.01, 0.2, 96)])
def test_it_forecasts_as_river_does_bit_for_bit_at_every_step(alpha: float, beta: float, gamma: float,
                                                                 m: int) -> None:
    rng = random.Random(m)
    river, compact = river_model(alpha, beta, gamma, m), CompactHoltWinters(alpha, beta, gamma, m)
    for y in series(rng, 5 * m + 30, m):
        river_learn(river, y)
        compact.learn_one(y)
        if not river._initialized:
            assert not compact.initialized
            continue
        horizon = rng.choice([1, m, 2 * m + 3])
        assert compact.forecast(horizon) == list(river.forecast(horizon))


@pytest.mark.parametrize("learned", [0, 5, 24, 25, 60])
def test_a_river_model_taken_over_goes_on_as_river_would(learned: int) -> None:
    values = series(random.Random(learned), learned + 50, 24)
    river = river_model(0.2, 0.01, 0.2, 24)
    for y in values[:learned]:
        river_learn(river, y)
    compact = pickle.loads(pickle.dumps(CompactHoltWinters.from_river(river)))
    for y in values[learned:]:
        river_learn(river, y)
        compact.learn_one(y)
    assert compact.forecast(30) == list(river.forecast(30))


def test_other_configurations_are_refused() -> None:
    with pytest.raises(ValueError, match="converts"):
        CompactHoltWinters.from_river(time_series.HoltWinters(alpha=0.2, beta=0.1, gamma=0.2, seasonality=4,
                                                              multiplicative=True))
    with pytest.raises(ValueError, match="beta and gamma"):
        CompactHoltWinters(0.2, 0.0, 0.2, 4)
