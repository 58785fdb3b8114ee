"""Forecasters and online selection against brute-force recomputations and constructed cases."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.forecasting.forecast_select import OnlineSelector, ResidualIntervals
from footfall.operators.forecasting.forecasters import (
    CalendarRegression,
    Forecaster,
    HoltWintersForecaster,
    SeasonalNaive,
)

HOUR = 3_600_000
# 2026-03-02T00:00:00Z, a Monday.
MONDAY = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp() * 1000)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.lists(st.one_of(st.none(), st.integers(0, 500).map(float)), min_size=1, max_size=80),
       st.integers(1, 30))
def test_seasonal_naive_is_the_value_whole_seasons_back(m, values, horizon):
    naive = SeasonalNaive(m, HOUR)
    for i, y in enumerate(values):
        naive.learn_one(y, i * HOUR)
    t = len(values) - 1
    got = naive.forecast(horizon, (t + 1) * HOUR)
    for h in range(1, horizon + 1):
        seasons_back = math.ceil(h / m)
        source = t + h - seasons_back * m
        expected = values[source] if len(values) >= m else None
        assert got[h - 1] == expected


def test_a_gap_is_fed_to_river_as_the_models_own_forecast_and_forecasts_are_never_negative():
    day = [0.0, 0.0, 10.0, 50.0, 40.0, 5.0]
    with_gap = HoltWintersForecaster(m=6, bucket_ms=4 * HOUR)
    imputed = HoltWintersForecaster(m=6, bucket_ms=4 * HOUR)
    series = day * 5
    for i, y in enumerate(series):
        if i == 20:
            guess = imputed.forecast(1, i * 4 * HOUR)[0]
            with_gap.learn_one(None, i * 4 * HOUR)
            imputed.learn_one(guess, i * 4 * HOUR)
        else:
            with_gap.learn_one(y, i * 4 * HOUR)
            imputed.learn_one(y, i * 4 * HOUR)
    assert with_gap.forecast(12, 30 * 4 * HOUR) == imputed.forecast(12, 30 * 4 * HOUR)
    assert all(v is not None and v >= 0 for v in with_gap.forecast(12, 30 * 4 * HOUR))


def test_calendar_regression_learns_a_weekly_profile_and_a_holiday():
    # Hourly counts: 20 + 2 x hour-of-day on weekdays, 3 at weekends; a public holiday has 30 % of a weekday.
    holiday = dt.date(2026, 3, 25)
    model = CalendarRegression(HOUR, tz="UTC", holidays=[holiday, dt.date(2026, 3, 11)])

    def truth(ts_ms: int) -> float:
        moment = dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC)
        if moment.weekday() >= 5:
            return 3.0
        weekday = 20.0 + 2 * moment.hour
        return 0.3 * weekday if moment.date() in (holiday, dt.date(2026, 3, 11)) else weekday

    for i in range(24 * 7 * 8):
        model.learn_one(truth(MONDAY + i * HOUR), MONDAY + i * HOUR)
    start = MONDAY + 24 * 7 * 3 * HOUR + 2 * 24 * HOUR  # Wednesday 2026-03-25: the holiday
    forecast = model.forecast(48, start)
    for h, value in enumerate(forecast):
        ts = start + h * HOUR
        assert value is not None and abs(value - truth(ts)) <= 0.15 * truth(ts) + 0.5, (h, value, truth(ts))


class _Fixed(Forecaster):
    """A candidate that forecasts the truth plus a fixed error per horizon (for selection tests)."""

    def __init__(self, name: str, errors: list[float], truth) -> None:
        super().__init__(HOUR)
        self.name = name
        self.errors = errors
        self.truth = truth

    def learn_one(self, y, ts_ms):
        self.n_seen += 1

    def forecast(self, horizon, start_ms):
        return [self.truth(start_ms + h * HOUR) + self.errors[h] for h in range(horizon)]


def test_forecasts_are_judged_only_when_their_bucket_closes_and_each_horizon_picks_its_best():
    def truth(ts_ms):
        return 100.0 + (ts_ms // HOUR) % 7

    near = _Fixed("good_near", [0.5, 9.0, 9.0], truth)  # best one bucket ahead
    far = _Fixed("good_far", [4.0, 1.0, 1.0], truth)  # best two and three ahead
    selector = OnlineSelector([near, far], horizon=3, bucket_ms=HOUR, min_scored=5, fading_factor=0.1)
    for i in range(3):
        selector.learn_one(truth(i * HOUR), i * HOUR)
    # After bucket 2, forecasts made after buckets 0 and 1 for bucket 2 were scored: h=1 once (from 1), h=2 once.
    assert selector.scored["good_near"] == [2, 1, 0]
    for i in range(3, 30):
        selector.learn_one(truth(i * HOUR), i * HOUR)
    published = selector.forecast()
    assert published.models == ["good_near", "good_far", "good_far"]
    expected = [truth(30 * HOUR) + 0.5, truth(31 * HOUR) + 1.0, truth(32 * HOUR) + 1.0]
    assert published.values == expected
    assert [n for n, _ in selector.ranking(1)] == ["good_near", "good_far"]
    assert [n for n, _ in selector.ranking(2)] == ["good_far", "good_near"]


class _Noisy(Forecaster):
    """A candidate off the truth by its own noise level, with no value now and then (for selection tests)."""

    def __init__(self, name: str, noise: float, gaps: float, seed: int) -> None:
        super().__init__(HOUR)
        self.name, self.noise, self.gaps, self.seed = name, noise, gaps, seed

    def learn_one(self, y, ts_ms):
        self.n_seen += 1

    def forecast(self, horizon, start_ms):
        rng = random.Random(f"{self.seed}:{start_ms}")  # the same forecast each time it is asked
        return [None if rng.random() < self.gaps else 50.0 + rng.gauss(0, self.noise) for _ in range(horizon)]


@pytest.mark.parametrize("seed", range(6))
def test_each_horizon_publishes_the_most_trusted_candidate_that_has_a_value(seed):
    """Against the rule written out plainly: per horizon, the candidates scored `min_scored` times at its
    scored horizon (the nearest at or below it) by error, then the others in the order given; the
    first with a value."""
    rng = random.Random(seed)
    horizon = rng.choice([5, 12, 24])
    scored_horizons = sorted({1, *rng.sample(range(2, horizon + 1), rng.randint(0, horizon // 2))})
    candidates = [_Noisy(f"c{i}", rng.choice([0.5, 2.0, 8.0]), rng.choice([0.0, 0.1, 0.4]), seed * 10 + i)
                  for i in range(rng.randint(2, 5))]
    selector = OnlineSelector(candidates, horizon, HOUR, min_scored=rng.choice([3, 10, 40]),
                              scored_horizons=scored_horizons)
    checked = 0
    for i in range(80):
        selector.learn_one(50.0 + rng.gauss(0, 1), MONDAY + i * HOUR)
        published = selector.forecast()
        latest = selector.candidate_forecasts()
        errors, scored = selector.errors, selector.scored
        expected_models, expected_values = [], []
        for h in range(1, horizon + 1):
            slot = max(j for j, s in enumerate(scored_horizons) if s <= h)
            ready = sorted((c.name for c in candidates if scored[c.name][slot] >= selector.min_scored),
                           key=lambda name: errors[name][slot])
            order = ready + [c.name for c in candidates if c.name not in ready]
            first = next((name for name in order if latest[name][h - 1] is not None), None)
            expected_models.append(first)
            expected_values.append(None if first is None else latest[first][h - 1])
        if None in expected_models:
            assert published is None
            continue
        assert published.models == expected_models
        assert published.values == pytest.approx(expected_values, rel=1e-12)
        checked += 1
    assert checked > 20


def test_a_gap_scores_nothing():
    naive = SeasonalNaive(1, HOUR, name="last")
    selector = OnlineSelector([naive], horizon=1, bucket_ms=HOUR, min_scored=1)
    for i, y in enumerate([5.0, 6.0, None, None, 7.0]):
        selector.learn_one(y, i * HOUR)
    # Forecasts for buckets 1, 2, 3, 4 were made; 2 and 3 were gaps; the one for 4 came from a gap (None).
    assert selector.scored["last"] == [1]


def test_empirical_intervals_cover_as_promised_on_noise():
    rng = random.Random(4)
    intervals = ResidualIntervals(horizon=1, window=400)
    inside80 = inside95 = n = 0
    for i in range(3000):
        forecast = 50.0
        actual = forecast + rng.gauss(0, 7)
        if i >= 400:
            lo80, hi80, lo95, hi95 = intervals.interval(1, forecast)
            inside80 += lo80 <= actual <= hi80
            inside95 += lo95 <= actual <= hi95
            n += 1
        intervals.add(1, actual - forecast, forecast)
    assert abs(inside80 / n - 0.80) < 0.03
    assert abs(inside95 / n - 0.95) < 0.02


def _synthetic(n: int, seed: int = 3) -> list[float | None]:
    rng = random.Random(seed)
    values: list[float | None] = []
    for i in range(n):
        hour = (i % 24)
        level = 5 + 40 * max(0.0, math.sin(math.pi * (hour - 7) / 13)) if 7 <= hour <= 20 else 2
        values.append(None if rng.random() < 0.02 else float(rng.randint(0, 4) + round(level)))
    return values


@settings(max_examples=8, deadline=None)
@given(st.sets(st.integers(24, 24 * 12 - 1), min_size=1, max_size=4))
def test_a_restored_selector_publishes_exactly_what_an_uninterrupted_one_would(save_at):
    from footfall.operators.forecasting.store_forecast import candidates_for

    values = _synthetic(24 * 12)
    starts = [MONDAY + i * HOUR for i in range(len(values))]

    def fresh() -> OnlineSelector:
        return OnlineSelector(candidates_for(HOUR), horizon=12, bucket_ms=HOUR, min_scored=12,
                              scored_horizons=[1, 2, 4, 8, 12])

    straight, resumed = fresh(), fresh()
    for i, (start, y) in enumerate(zip(starts, values, strict=True)):
        straight.learn_one(y, start)
        resumed.learn_one(y, start)
        if i in save_at:  # a worker stops here and another starts from the saved bytes
            resumed = OnlineSelector.from_bytes(resumed.to_bytes())
        a, b = straight.forecast(), resumed.forecast()
        assert (a is None) == (b is None)
        if a is not None:
            assert (a.values, a.models, a.lo80, a.hi95) == (b.values, b.models, b.lo80, b.hi95), i


def test_holt_winters_starts_an_additive_season_from_differences_even_after_a_day_of_zeros():
    from footfall.operators.forecasting.forecasters import HoltWintersForecaster

    # Hand-worked start: first season 1, 5, 9, 3 -> level 4.5, trend mean(4, 4, -6) = 2/3,
    # season 1 - 4.5, 5 - 4.5, 9 - 4.5, 3 - 4.5; one bucket ahead: 4.5 + 2/3 - 3.5.
    model = HoltWintersForecaster(m=4, bucket_ms=HOUR)
    for i, y in enumerate([1.0, 5.0, 9.0, 3.0]):
        model.learn_one(y, i * HOUR)
    assert [model.model._season_back(lag) for lag in (4, 3, 2, 1)] == [-3.5, 0.5, 4.5, -1.5]
    raw = model.model.forecast(2)
    assert raw[0] == pytest.approx(4.5 + 2 / 3 - 3.5)
    assert raw[1] == pytest.approx(4.5 + 2 * 2 / 3 + 0.5)
    # River's own start divides by the first season's mean: a first day of zeros must not break it.
    closed_first_day = HoltWintersForecaster(m=4, bucket_ms=HOUR)
    for i, y in enumerate([0.0] * 4 + [2.0, 6.0, 10.0, 4.0] * 3):
        closed_first_day.learn_one(y, i * HOUR)
    assert all(v is not None and v >= 0 for v in closed_first_day.forecast(4, 16 * HOUR))
