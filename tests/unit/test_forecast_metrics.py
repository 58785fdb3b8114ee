"""Forecast scores against hand-worked numbers and a brute-force recomputation from explicit lists."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.evaluation.forecast_metrics import HorizonScores, seasonal_naive_scale, smape_term

NAN = float("nan")
METRICS = ("mae", "rmse", "mase", "smape", "coverage80", "coverage95")


def present(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def assert_scores_equal(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    assert got["n"] == want["n"]
    for name in METRICS:
        if want[name] is None:
            assert got[name] is None, name
        else:
            assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-9), name


# -- seasonal_naive_scale ------------------------------------------------------------------------


def test_seasonal_naive_scale_hand_worked() -> None:
    history = [20, 30, 24, 33, 18, 36]
    # m=2: |24-20| + |33-30| + |18-24| + |36-33| = 4 + 3 + 6 + 3 = 16, over 4 pairs
    assert seasonal_naive_scale(history, m=2) == 4.0
    # m=1: |30-20| + |24-30| + |33-24| + |18-33| + |36-18| = 10 + 6 + 9 + 15 + 18 = 58, over 5 pairs
    assert seasonal_naive_scale(history, m=1) == pytest.approx(11.6)


def test_seasonal_naive_scale_skips_gaps_instead_of_reading_zero() -> None:
    history = [20, None, 24, NAN, 18, 36]
    # m=2 pairs (t, t-2): (24, 20) -> 4; (NaN, None) skip; (18, 24) -> 6; (36, NaN) skip. 10 / 2 = 5
    assert seasonal_naive_scale(history, m=2) == 5.0
    # Zero-filled it would be (4 + 0 + 6 + 36) / 4 = 11.5: the gap must not look like an empty shop.
    assert seasonal_naive_scale([20, 0, 24, 0, 18, 36], m=2) == 11.5


@pytest.mark.parametrize(
    ("history", "m"),
    [
        ([], 1),  # nothing at all
        ([5], 1),  # one value, no pair
        ([5, 7], 2),  # shorter than one season plus one
        ([5, None, None, 7], 2),  # every pair has a gap: (None, 5), (7, None)
        ([NAN, NAN, NAN], 1),  # only NaNs
    ],
)
def test_seasonal_naive_scale_none_without_a_pair(history: list, m: int) -> None:
    assert seasonal_naive_scale(history, m) is None


@pytest.mark.parametrize("m", [0, -1])
def test_seasonal_naive_scale_rejects_a_period_below_one(m: int) -> None:
    with pytest.raises(ValueError, match="m must be"):
        seasonal_naive_scale([1, 2, 3], m)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.just(NAN), st.integers(0, 500).map(float), st.floats(0, 1e4)), max_size=60),
    st.integers(1, 8),
)
def test_seasonal_naive_scale_matches_brute_force(history: list, m: int) -> None:
    diffs = [abs(history[t] - history[t - m]) for t in range(m, len(history))
             if present(history[t]) and present(history[t - m])]
    expected = sum(diffs) / len(diffs) if diffs else None
    got = seasonal_naive_scale(history, m)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-12)


# -- smape_term ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "forecast", "expected"),
    [
        (0, 0, 0.0),  # both zero: exact, by the documented convention (0/0 otherwise)
        (0.0, -0.0, 0.0),  # signed zeros are still both zero
        (10, 10, 0.0),  # exact
        (0, 5, 200.0),  # 200 * 5 / (0 + 5): the maximum
        (5, 0, 200.0),  # symmetric in actual and forecast
        (10, 12, 200 * 2 / 22),  # 18.18...
        (12, 10, 200 * 2 / 22),  # same, swapped
        (100, 50, 200 * 50 / 150),  # 66.66...
        (-10, 10, 200.0),  # 200 * 20 / (10 + 10)
    ],
)
def test_smape_term(actual: float, forecast: float, expected: float) -> None:
    assert smape_term(actual, forecast) == pytest.approx(expected, rel=1e-12)


# -- HorizonScores: hand-worked ------------------------------------------------------------------


def hand_worked_scores() -> HorizonScores:
    scores = HorizonScores(horizons=2)
    # horizon, actual, forecast       |e|  e^2  sMAPE term
    scores.add(1, 10, 12)           # 2    4    200*2/22 = 18.181818
    scores.add(1, 20, 15)           # 5    25   200*5/35 = 28.571429
    scores.add(1, 0, 0)             # 0    0    0 (both zero)
    scores.add(1, 8, 4)             # 4    16   200*4/12 = 66.666667
    scores.add(2, 30, 36)           # 6    36   200*6/66 = 18.181818
    scores.add(2, 12, 9)            # 3    9    200*3/21 = 28.571429
    return scores


def test_hand_worked_scores_per_horizon() -> None:
    scale = seasonal_naive_scale([20, 30, 24, 33, 18, 36], m=2)  # 16 / 4 = 4.0, worked above
    result = hand_worked_scores().result(scale)
    assert set(result) == {1, 2}
    # horizon 1: n=4; MAE = (2+5+0+4)/4 = 2.75; RMSE = sqrt((4+25+0+16)/4) = sqrt(11.25) = 3.354102;
    # MASE = 2.75/4 = 0.6875; sMAPE = (18.181818 + 28.571429 + 0 + 66.666667)/4 = 113.419913/4 = 28.354978
    h1 = result[1]
    assert h1["n"] == 4
    assert h1["mae"] == 2.75
    assert h1["rmse"] == pytest.approx(3.354102, abs=1e-6)
    assert h1["mase"] == 0.6875
    assert h1["smape"] == pytest.approx(28.354978, abs=1e-6)
    assert h1["coverage80"] is None and h1["coverage95"] is None  # no forecast had an interval
    # horizon 2: n=2; MAE = (6+3)/2 = 4.5; RMSE = sqrt((36+9)/2) = sqrt(22.5) = 4.743416;
    # MASE = 4.5/4 = 1.125; sMAPE = (18.181818 + 28.571429)/2 = 23.376623
    h2 = result[2]
    assert h2["n"] == 2
    assert h2["mae"] == 4.5
    assert h2["rmse"] == pytest.approx(4.743416, abs=1e-6)
    assert h2["mase"] == 1.125
    assert h2["smape"] == pytest.approx(23.376623, abs=1e-6)


def test_hand_worked_scores_overall() -> None:
    overall = hand_worked_scores().overall(4.0)
    # n = 4 + 2 = 6; MAE = (11 + 9)/6 = 3.333333; RMSE = sqrt((45 + 45)/6) = sqrt(15) = 3.872983;
    # MASE = 3.333333/4 = 0.833333; sMAPE = (113.419913 + 46.753247)/6 = 160.173160/6 = 26.695527
    assert overall["n"] == 6
    assert overall["mae"] == pytest.approx(3.333333, abs=1e-6)
    assert overall["rmse"] == pytest.approx(3.872983, abs=1e-6)
    assert overall["mase"] == pytest.approx(0.833333, abs=1e-6)
    assert overall["smape"] == pytest.approx(26.695527, abs=1e-6)
    assert overall["coverage80"] is None and overall["coverage95"] is None


def test_both_zero_counts_as_an_exact_forecast_in_smape() -> None:
    scores = HorizonScores(horizons=1)
    scores.add(1, 0, 0)  # term 0 (convention), not NaN and not skipped
    scores.add(1, 10, 30)  # term 200*20/40 = 100
    result = scores.result(None)[1]
    assert result["n"] == 2
    assert result["smape"] == 50.0  # (0 + 100)/2


def test_coverage_counts_only_forecasts_with_that_interval() -> None:
    scores = HorizonScores(horizons=1)
    # actual, forecast, 80 % interval, 95 % interval       in 80?  in 95?
    scores.add(1, 10, 10, 8, 12, 6, 14)                  # yes     yes
    scores.add(1, 12, 10, lo80=8, hi80=12)               # yes (hi inclusive), no 95 interval
    scores.add(1, 5, 10, lo95=5, hi95=15)                # no 80 interval, yes (lo inclusive)
    scores.add(1, 20, 10, 8, 12, 6, 25)                  # no      yes
    scores.add(1, 9, 10)                                 # no intervals: counts for n only
    scores.add(1, 9, 10, NAN, NAN, None, None)           # NaN bounds: no interval either
    result = scores.result(None)[1]
    assert result["n"] == 6
    assert result["coverage80"] == pytest.approx(2 / 3)  # 2 hits of 3 with an 80 % interval (not 2/6)
    assert result["coverage95"] == 1.0  # 3 hits of 3 with a 95 % interval (not 3/6)
    assert scores.overall(None)["coverage80"] == pytest.approx(2 / 3)


def test_gaps_are_skipped_not_scored_as_zero() -> None:
    scores = HorizonScores(horizons=3)
    scores.add(1, 10, 12, 11, 13)  # |e| = 2, outside [11, 13]
    before = scores.result(2.0)
    scores.add(1, None, 12, 0, 100)  # missing actual (bucket value unknown)
    scores.add(1, NAN, 12, 0, 100)  # missing actual as NaN
    scores.add(1, 10, None, 0, 100)  # missing forecast
    scores.add(1, 10, NAN, 0, 100)  # missing forecast as NaN
    scores.add(2, None, 5)  # horizon 2 only ever has gaps
    assert scores.result(2.0) == before
    assert set(before) == {1}  # horizon 2 and 3: nothing scored, so not reported
    assert before[1]["n"] == 1 and before[1]["mae"] == 2.0 and before[1]["coverage80"] == 0.0
    # A None read as 0 would have added |12 - 0| = 12 to the errors and a hit in [0, 100].
    assert scores.overall(2.0) == before[1]


@pytest.mark.parametrize(
    "scale",
    [
        None,  # no history pair to scale by
        0,  # the history never moved
        0.0,
        NAN,  # a NaN scale from upstream is no scale either
    ],
)
def test_mase_is_none_without_a_usable_scale(scale: float | None) -> None:
    scores = hand_worked_scores()
    result = scores.result(scale)
    assert result[1]["mase"] is None and result[2]["mase"] is None
    assert result[1]["mae"] == 2.75  # the other scores do not depend on the scale
    assert scores.overall(scale)["mase"] is None


def test_negative_scale_is_rejected() -> None:
    with pytest.raises(ValueError, match="scale"):
        hand_worked_scores().result(-1.0)
    with pytest.raises(ValueError, match="scale"):
        hand_worked_scores().overall(-1.0)


def test_nothing_scored_yet() -> None:
    scores = HorizonScores(horizons=4)
    assert scores.result(1.0) == {}
    assert scores.overall(1.0) == {"n": 0, **dict.fromkeys(METRICS)}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.add(0, 1, 1), "horizon"),  # horizons are 1-based
        (lambda s: s.add(3, 1, 1), "horizon"),  # beyond H=2
        (lambda s: s.add(1, 1, 1, lo80=0), "both bounds"),  # half an interval
        (lambda s: s.add(1, 1, 1, lo95=0, hi95=NAN), "both bounds"),  # half an interval, NaN
        (lambda s: s.add(1, 1, 1, lo80=5, hi80=2), "lo > hi"),  # inverted interval
        (lambda s: s.add(1, math.inf, 1), "finite"),  # an infinite actual would poison the sums
        (lambda s: s.add(1, 1, -math.inf), "finite"),
    ],
)
def test_impossible_input_is_rejected_and_leaves_no_trace(call, match: str) -> None:
    scores = HorizonScores(horizons=2)
    scores.add(1, 10, 12, 11, 13)
    before = scores.result(1.0)
    with pytest.raises(ValueError, match=match):
        call(scores)
    assert scores.result(1.0) == before


@pytest.mark.parametrize("horizons", [0, -3])
def test_needs_at_least_one_horizon(horizons: int) -> None:
    with pytest.raises(ValueError, match="horizons"):
        HorizonScores(horizons)


# -- HorizonScores against brute force -----------------------------------------------------------

values = st.one_of(
    st.none(),
    st.just(NAN),
    st.just(0.0),
    st.integers(0, 500).map(float),
    st.floats(-1e4, 1e4, allow_nan=False),
)
intervals = st.one_of(
    st.none(),
    st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=2, max_size=2).map(sorted),
    st.integers(0, 500).map(lambda x: [float(x), float(x)]),  # a point interval: hit only on the dot
)


@st.composite
def forecast_logs(draw):
    horizons = draw(st.integers(1, 5))
    rows = draw(st.lists(
        st.tuples(st.integers(1, horizons), values, values, intervals, intervals),
        max_size=60,
    ))
    return horizons, rows


def brute_force(rows: list, scale: float | None) -> dict:
    """Scores from the explicit list of scored (actual, forecast, interval80, interval95) rows."""
    n = len(rows)
    if n == 0:
        return {"n": 0, **dict.fromkeys(METRICS)}
    errors = [f - a for a, f, _, _ in rows]
    mae = sum(abs(e) for e in errors) / n
    terms = [200 * abs(f - a) / (abs(a) + abs(f)) if abs(a) + abs(f) > 0 else 0.0 for a, f, _, _ in rows]
    with80 = [(a, i80) for a, _, i80, _ in rows if i80 is not None]
    with95 = [(a, i95) for a, _, _, i95 in rows if i95 is not None]
    return {
        "n": n,
        "mae": mae,
        "rmse": math.sqrt(sum(e * e for e in errors) / n),
        "mase": mae / scale if scale else None,
        "smape": sum(terms) / n,
        "coverage80": sum(lo <= a <= hi for a, (lo, hi) in with80) / len(with80) if with80 else None,
        "coverage95": sum(lo <= a <= hi for a, (lo, hi) in with95) / len(with95) if with95 else None,
    }


@settings(max_examples=300, deadline=None)
@given(forecast_logs(), st.one_of(st.none(), st.just(0.0), st.floats(0.01, 1e3)))
def test_scores_match_brute_force(log, scale: float | None) -> None:
    horizons, rows = log
    scores = HorizonScores(horizons)
    for horizon, actual, forecast, i80, i95 in rows:
        scores.add(horizon, actual, forecast, *(i80 or (None, None)), *(i95 or (None, None)))
    scored = [(h, a, f, i80, i95) for h, a, f, i80, i95 in rows if present(a) and present(f)]

    result = scores.result(scale)
    assert set(result) == {h for h, *_ in scored}
    for h, got in result.items():
        assert_scores_equal(got, brute_force([row for g, *row in scored if g == h], scale))
    assert_scores_equal(scores.overall(scale), brute_force([row for _, *row in scored], scale))
    # Reading never mutates.
    assert scores.result(scale) == result
