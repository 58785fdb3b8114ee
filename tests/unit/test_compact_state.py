"""The forecasting and alerting state kept as fixed-size arrays, against brute-force recomputations."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import pickle
import random
import statistics
from collections import deque

import numpy as np
import pytest
from river import linear_model, optim, preprocessing, time_series

from footfall.operators.alerting.detectors import Expected, ResidualDetector
from footfall.operators.alerting.rules import EntryExitDrift, SilentSensor
from footfall.operators.forecasting.cold_start import VerticalProfile
from footfall.operators.forecasting.forecast_select import OnlineSelector, ResidualIntervals, _quantile
from footfall.operators.forecasting.forecasters import (
    CalendarRegression,
    HoltWintersForecaster,
    SeasonalNaive,
    SnarimaxForecaster,
)
from footfall.operators.windows.localtime import local_day

HOUR = 3_600_000
QUARTER = 900_000
# 2026-03-23T00:00:00Z, a Monday; the clocks in London go forward on Sunday 2026-03-29.
MONDAY = int(dt.datetime(2026, 3, 23, tzinfo=dt.UTC).timestamp() * 1000)


def _counts(n: int, bucket_ms: int, seed: int = 3) -> list[float | None]:
    rng = random.Random(seed)
    out: list[float | None] = []
    for i in range(n):
        hour = (i * bucket_ms // HOUR) % 24
        level = 3 + 30 * max(0.0, math.sin(math.pi * (hour - 8) / 12))
        out.append(None if rng.random() < 0.03 else float(rng.randint(0, 5) + round(level)))
    return out


def test_intervals_are_the_quantiles_of_the_last_window_residuals():
    rng = random.Random(7)
    intervals = ResidualIntervals(horizon=3, window=50, min_residuals=10)
    kept = [deque[float](maxlen=50) for _ in range(3)]
    for i in range(400):
        h, r, f = rng.randint(1, 3), rng.gauss(0, 5), rng.uniform(0, 40)
        intervals.add(h, r, f)
        kept[h - 1].append(float(np.float16(r / math.sqrt(f + 1.0))))  # residuals are kept in float16
        if i % 7:
            continue
        every = intervals.all_quantiles()
        assert intervals.all_quantiles() is every  # nothing added since: the same, not sorted again
        for h in (1, 2, 3):
            residuals = list(kept[h - 1]) if len(kept[h - 1]) >= 10 else [r for d in kept for r in d]
            got = intervals.quantiles(h)
            if len(residuals) < 10:
                assert got is None and math.isnan(every[h - 1, 0])
                continue
            ordered = sorted(residuals)
            want = tuple(_quantile(ordered, q) for q in (0.10, 0.90, 0.025, 0.975))
            assert got == want
            assert tuple(every[h - 1].tolist()) == want  # all horizons at once: the same numbers to the bit


def test_the_selector_scores_and_publishes_what_a_brute_force_replay_says():
    bucket, horizon, scored = HOUR, 12, [1, 2, 4, 8, 12]
    candidates = [SeasonalNaive(24, bucket, name="daily"), SeasonalNaive(1, bucket, name="last"),
                  CalendarRegression(bucket)]
    shadow = pickle.loads(pickle.dumps(candidates))  # the same candidates, learned apart
    selector = OnlineSelector(candidates, horizon, bucket, min_scored=10, fading_factor=0.05,
                              scored_horizons=scored)
    values = _counts(24 * 9, bucket)
    made: dict[int, dict[str, list[float | None]]] = {}  # origin -> candidate -> its forecast
    for i, y in enumerate(values):
        ts = MONDAY + i * bucket
        selector.learn_one(y, ts)
        for c in shadow:
            c.learn_one(y, ts)
        made[i] = {c.name: c.forecast(horizon, ts + bucket) for c in shadow}
    # Errors and counts: every forecast whose bucket closed with a value, in order, through the EW mean.
    for slot, h in enumerate(scored):
        for c in shadow:
            mean, exact_mean, n = 0.0, 0.0, 0
            for i, y in enumerate(values):
                origin = i - h
                if origin < 0 or y is None:
                    continue
                exact = made[origin][c.name][h - 1]
                if exact is None:
                    continue
                f = float(np.float32(exact))  # forecasts wait for their bucket in float32
                mean = abs(y - f) if n == 0 else 0.05 * abs(y - f) + 0.95 * mean
                exact_mean = abs(y - exact) if n == 0 else 0.05 * abs(y - exact) + 0.95 * exact_mean
                n += 1
            assert selector.scored[c.name][slot] == n
            assert selector.errors[c.name][slot] == mean
            assert mean == pytest.approx(exact_mean, rel=1e-6)  # what keeping float32 costs
    # Published: at each horizon the best-ranked candidate with a value there.
    last = made[len(values) - 1]
    published = selector.forecast()
    for j in range(horizon):
        slot = max(s for s, h in enumerate(scored) if h <= j + 1)
        ranked = sorted((c.name for c in shadow if selector.scored[c.name][slot] >= 10),
                        key=lambda name: selector.errors[name][slot])
        order = ranked + [c.name for c in shadow if c.name not in ranked]
        best = next(name for name in order if last[name][j] is not None)
        assert (published.models[j], published.values[j]) == (best, last[best][j])
        q = selector.intervals.quantiles(slot + 1)
        assert (published.lo80[j], published.hi80[j], published.lo95[j], published.hi95[j]) == \
            ResidualIntervals.band(slot + 1, published.values[j], q)
    assert selector.candidate_forecasts() == last


@pytest.mark.parametrize("bucket_ms", [QUARTER, 2 * HOUR])
@pytest.mark.parametrize("tz", ["UTC", "Europe/London", "America/New_York"])
def test_calendar_and_profile_forecasts_read_each_bucket_as_the_slow_way_does(bucket_ms, tz):
    holidays = [dt.date(2026, 3, 27), dt.date(2026, 3, 30)]
    calendar = CalendarRegression(bucket_ms, tz=tz, holidays=holidays)
    profile = VerticalProfile("bank", bucket_ms, tz=tz)
    n = 7 * 24 * HOUR // bucket_ms
    for i, y in enumerate(_counts(n, bucket_ms)):
        calendar.learn_one(y, MONDAY + i * bucket_ms)
        profile.learn_one(y, MONDAY + i * bucket_ms)
    horizon = 2 * 24 * HOUR // bucket_ms
    for start in (MONDAY + n * bucket_ms - 2 * 24 * HOUR, MONDAY + n * bucket_ms):  # across the DST change, after
        slow = []
        for h in range(horizon):
            ts = start + h * bucket_ms
            mean = calendar._slot_mean[calendar.slot_of(ts)]
            z = calendar._level[1] if math.isnan(mean) else float(mean)
            if local_day(ts, tz) in calendar.holidays:
                z += calendar._shift[1]
            slow.append(math.expm1(min(z, 50.0)))
        assert calendar.forecast(horizon, start) == [min(max(v, 0.0), 3 * max(calendar._max_seen, 1.0))
                                                     for v in slow]
        level = profile.level_per_h
        assert profile.forecast(horizon, start) == [profile.expected(start + h * bucket_ms, level)
                                                    for h in range(horizon)]


def test_river_candidates_forecast_as_river_does():
    values = [v if v is not None else 0.0 for v in _counts(24 * 6, HOUR)]
    holt, snarimax = HoltWintersForecaster(24, HOUR), SnarimaxForecaster(24, HOUR)
    # River's SNARIMAX in the configuration the forecaster's compact model stands for, run beside it.
    river = time_series.SNARIMAX(p=2, d=0, q=0, m=24, sp=1, sd=1, sq=0,
                                 regressor=preprocessing.StandardScaler() | linear_model.LinearRegression(
                                     optimizer=optim.SGD(0.005), intercept_lr=0.05))
    river_holt_model = time_series.HoltWinters(alpha=0.2, beta=0.01, gamma=0.2, seasonality=24)
    for i, y in enumerate(values):
        holt.learn_one(y, i * HOUR)
        snarimax.learn_one(y, i * HOUR)
        river.learn_one(math.log1p(y))
        if i == 23:  # the additive start (River's own is the multiplicative form), then River's updates
            first = values[:24]
            river_holt_model.level.append(statistics.mean(first))
            river_holt_model.trend.append(statistics.mean(b - a for a, b in itertools.pairwise(first)))
            river_holt_model.season.extend([v - river_holt_model.level[-1] for v in first])
            river_holt_model._initialized = True
        elif i > 23:
            river_holt_model.learn_one(y)
    ceiling = 3 * max(values)
    river_holt = [min(max(v, 0.0), ceiling) for v in river_holt_model.forecast(60)]
    assert holt.forecast_array(60, 0).tolist() == river_holt
    river_snarimax = [math.expm1(min(v, 50.0)) for v in river.forecast(60)]
    assert snarimax.forecast(60, 0) == pytest.approx([min(max(v, 0.0), ceiling) for v in river_snarimax],
                                                     rel=1e-9)
    assert snarimax.forecast_array(60, 0).tolist() == pytest.approx(
        [min(max(v, 0.0), ceiling) for v in river_snarimax], rel=1e-9)


def test_states_saved_before_the_arrays_still_load():
    naive = SeasonalNaive(3, HOUR)
    old = {"bucket_ms": HOUR, "n_seen": 5, "m": 3, "name": "n", "_last": deque([4.0, None, 6.0], maxlen=3)}
    naive.__setstate__(old)
    assert naive.forecast(4, 0) == [4.0, None, 6.0, 4.0]

    detector, e = ResidualDetector(slot_min=1), Expected(10.0, 8.0, 12.0, 6.0, 14.0)
    state = dict(detector.__dict__, slots={5: [2.0, 0.1, 0.7]}, scale=0.3)
    restored = ResidualDetector.__new__(ResidualDetector)
    restored.__setstate__(state)
    assert restored.unit(e, 5) == max(0.7 * math.sqrt(11.0), 1.0)
    assert ResidualDetector.from_state(restored.to_state()).to_state() == restored.to_state()

    silent = SilentSensor()
    restored_silent = SilentSensor.__new__(SilentSensor)
    restored_silent.__setstate__(dict(silent.__dict__, slots={10: [0.2, 3.0]}))
    assert restored_silent.zero_share(10) == (0.2 + 0.5) / 4.0
    assert restored_silent.zero_share(11) == 0.5


def test_drift_pickled_as_a_deque_loads_into_the_ring_and_sums_as_before():
    window, rng = 5, random.Random(4)
    pairs = [(float(rng.randint(0, 60)), float(rng.randint(0, 60))) for _ in range(12)]
    drift = EntryExitDrift(window=window, min_gap=5.0)
    for a, d in pairs:
        drift.learn_one(a, d)
    last = pairs[-window:]
    assert drift.pairs == last
    assert drift._sums() == (sum(a for a, _ in last), sum(d for _, d in last))
    old = EntryExitDrift.__new__(EntryExitDrift)
    old.__setstate__({"window": window, "min_gap": 5.0, "ratio": 0.3, "pairs": deque(pairs, maxlen=window)})
    assert old.pairs == last and old.score_one() == drift.score_one()
    assert pickle.loads(pickle.dumps(drift)).pairs == last
    assert EntryExitDrift.from_state(drift.to_state()).pairs == last


def test_a_snarimax_forecaster_saved_with_rivers_model_loads_and_goes_on_as_river_would():
    values = [v if v is not None else 0.0 for v in _counts(24 * 5, HOUR)]
    river = time_series.SNARIMAX(p=2, d=0, q=0, m=24, sp=1, sd=1, sq=0,
                                 regressor=preprocessing.StandardScaler() | linear_model.LinearRegression(
                                     optimizer=optim.SGD(0.005), intercept_lr=0.05))
    old = SnarimaxForecaster(24, HOUR)
    for i, y in enumerate(values[:24 * 3]):
        old.learn_one(y, i * HOUR)
        river.learn_one(math.log1p(y))
    old.model = river  # as an older worker kept it
    loaded = pickle.loads(pickle.dumps(old))
    reference = pickle.loads(pickle.dumps(river))
    for i, y in enumerate(values[24 * 3:], start=24 * 3):
        loaded.learn_one(y, i * HOUR)
        reference.learn_one(math.log1p(y))
    ceiling = 3 * max(values)
    expected = [min(max(math.expm1(min(v, 50.0)), 0.0), ceiling) for v in reference.forecast(30)]
    assert type(loaded.model).__name__ == "CompactSnarimax"
    assert loaded.forecast(30, 0) == pytest.approx(expected, rel=1e-9)


def test_pending_expectations_answer_as_a_dict_of_lists_does_under_random_use():
    from footfall.operators.alerting.pending import PendingExpectations

    rng = random.Random(5)
    for capacity in (1, 3, 25):
        pending, reference = PendingExpectations(capacity), {}
        for _ in range(2_000):
            start = rng.randrange(40) * 900_000
            op = rng.random()
            if op < 0.5:
                values = [rng.uniform(-1e6, 1e6) for _ in range(5)]
                pending.put(start, values)
                reference[start] = values
            elif op < 0.6:
                pending.drop_through(start)
                reference = {t: v for t, v in reference.items() if t > start}
            assert (start in pending) == (start in reference)
            got = pending.get(start)
            assert got == (None if start not in reference else tuple(reference[start]))
            assert len(pending) == len(reference)
        assert list(pending.items()) == sorted(reference.items())
        again = pickle.loads(pickle.dumps(pending))
        assert list(again.items()) == sorted(reference.items())


def test_a_watch_pickled_with_a_dict_of_pending_forecasts_loads_and_judges_as_before():
    from footfall.operators.alerting.watch import StoreWatch
    from footfall.operators.forecasting.forecast_select import Forecast

    bucket = 900_000
    t0 = 1_795_600_800_000
    watch = StoreWatch("retail-001", bucket_ms=bucket, tz="UTC", lead_ms=4 * bucket, warmup_ms=0)
    for i in range(30):
        start = t0 + i * bucket
        watch.note_forecast(Forecast(start - bucket, start, bucket, "m", [100.0 + j for j in range(8)],
                                     [90.0] * 8, [110.0] * 8, [80.0] * 8, [120.0] * 8))
        watch.learn_bucket(start, start + bucket, 100.0 + (i % 3))
    legacy = pickle.loads(pickle.dumps(watch))
    legacy.pending = {t: list(v) for t, v in watch.pending.items()}  # as kept before the arrays
    loaded = pickle.loads(pickle.dumps(legacy))
    assert loaded.to_state() == watch.to_state()
    assert [loaded.expected_for(t0 + i * bucket) for i in range(28, 36)] == [
        watch.expected_for(t0 + i * bucket) for i in range(28, 36)]
    assert any(watch.expected_for(t0 + i * bucket) is not None for i in range(30, 36))


def test_signals_are_scored_as_rivers_gaussian_scorer_fits_them_and_old_pickles_load():
    from river import anomaly

    from footfall.operators.alerting.detectors import MultiSignalDetector

    rng = random.Random(8)
    detector = MultiSignalDetector(grace_period=10, threshold=3.0)
    river = {k: anomaly.GaussianScorer(grace_period=10) for k in ("dwell_s", "queue_wait_s")}
    for i in range(300):
        x = {"dwell_s": rng.lognormvariate(6, 0.3), "queue_wait_s": None if i % 7 == 0 else rng.expovariate(0.02)}
        best, name = 0.0, None
        for key, value in x.items():  # the score by hand, from River's scorer
            g = river[key].gaussian
            if value is None or g.n_samples < 10 or g.sigma <= 1e-12:
                continue
            surprise = -math.log10(max(1 - river[key].score_one(None, math.log1p(value)), 1e-300)) / 3.0
            if surprise > best:
                best, name = surprise, key
        score, got = detector.explain(x)
        assert got == name and score == pytest.approx(best, rel=1e-6, abs=1e-9)
        detector.learn_one(x)
        for key, value in x.items():
            if value is not None:
                river[key].learn_one(None, math.log1p(value))
    legacy = pickle.loads(pickle.dumps(detector))
    legacy.__dict__["scorers"] = river  # as pickled before: River's scorers
    loaded = pickle.loads(pickle.dumps(legacy))
    probe = {"dwell_s": 900.0, "queue_wait_s": 400.0}
    assert loaded.explain(probe) == detector.explain(probe)
    assert loaded.to_state() == detector.to_state()


def test_the_model_named_is_the_most_used_and_a_tie_goes_to_the_one_used_first():
    selector = OnlineSelector([SeasonalNaive(1, HOUR, name=f"m{i}") for i in range(4)], horizon=8, bucket_ms=HOUR)
    rng = random.Random(3)
    for _ in range(500):
        models = [rng.randrange(-1, 4) for _ in range(rng.randint(1, 8))]
        counts = {m: models.count(m) for m in models}
        top = max(counts.values())
        first = next(m for m in models if counts[m] == top)  # by hand: the first of the most used
        want = "blend" if first < 0 else f"m{first}"
        assert selector._most_used(np.array(models, dtype=np.int16)) == (want, {want: 1.0})


def test_a_huge_residual_is_capped_not_kept_as_infinity():
    intervals = ResidualIntervals(horizon=1, window=20, min_residuals=5)
    for r in [1e9, -1e9, 1.0, 2.0, 3.0, 4.0]:
        intervals.add(1, r, forecast=0.0)
    q = intervals.all_quantiles()[0]
    assert np.isfinite(q).all() and q.max() <= 60_000 and q.min() >= -60_000
    assert intervals.quantiles(1) == tuple(q.tolist())


def test_adding_residuals_at_several_horizons_at_once_keeps_what_one_add_each_keeps():
    rng = np.random.default_rng(4)
    one, many = ResidualIntervals(horizon=13, window=20), ResidualIntervals(horizon=13, window=20)
    for _ in range(300):
        hs = np.sort(rng.choice(np.arange(1, 14), size=rng.integers(1, 14), replace=False))
        residuals = rng.normal(0, 30, len(hs)) * rng.choice([1.0, 1e-3, 1e4], len(hs))
        forecasts = rng.uniform(-1, 500, len(hs))
        for h, r, f in zip(hs.tolist(), residuals.tolist(), forecasts.tolist(), strict=True):
            one.add(h, r, f)
        many.add_many(hs, residuals, forecasts)
    assert np.array_equal(one._added, many._added)
    assert one._ring.tobytes() == many._ring.tobytes()
