"""QuantileSketch: within its documented error of numpy.quantile, exact where promised, lossless state."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.kpis.quantiles import QuantileSketch

# Durations as the sketch sees them: many below 1 s (0 s waits), most between 1 s and a day.
durations = st.one_of(
    st.just(0.0),
    st.floats(0, 1, exclude_max=True),
    st.floats(1, 86_400),
    st.integers(0, 86_400).map(float),
)


def round_trip(sketch: QuantileSketch) -> QuantileSketch:
    return QuantileSketch.from_state(orjson.loads(orjson.dumps(sketch.to_state())), rel_error=sketch.rel_error,
                                     min_s=sketch.min_s)


def sketch_of(xs: list[float], **params: float) -> QuantileSketch:
    sketch = QuantileSketch(**params)
    for x in xs:
        sketch.update(x)
    return sketch


def allowed_error(xs: list[float], q: float, rel_error: float, min_s: float) -> float:
    """The documented bound: rel_error * x, plus min_s when a value around the quantile is below min_s."""
    ordered = sorted(xs)
    h = q * (len(ordered) - 1)
    around = ordered[math.floor(h)], ordered[math.ceil(h)]
    truth = float(np.quantile(ordered, q))
    return rel_error * truth + (min_s if min(around) < min_s else 0.0) + 1e-9 * max(1.0, truth)


@settings(max_examples=300, deadline=None)
@given(st.lists(durations, min_size=1, max_size=300), st.floats(0, 1))
def test_quantile_within_documented_error_of_numpy(xs: list[float], q: float) -> None:
    sketch = sketch_of(xs)
    estimate = sketch.get(q)
    assert estimate is not None
    assert abs(estimate - float(np.quantile(xs, q))) <= allowed_error(xs, q, 0.02, 1.0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.1, 1e6), min_size=1, max_size=200), st.sampled_from([0.5, 0.9, 0.99]),
       st.sampled_from([0.005, 0.01, 0.05]))
def test_other_grids_keep_their_bound(xs: list[float], q: float, rel_error: float) -> None:
    sketch = sketch_of(xs, rel_error=rel_error, min_s=0.1)
    estimate = sketch.get(q)
    assert estimate is not None
    assert abs(estimate - float(np.quantile(xs, q))) <= allowed_error(xs, q, rel_error, 0.1)


@given(st.lists(durations, min_size=1, max_size=100))
def test_count_mean_min_max_are_exact(xs: list[float]) -> None:
    sketch = sketch_of(xs)
    assert sketch.count == len(xs)
    assert sketch.mean == pytest.approx(sum(xs) / len(xs), rel=1e-12, abs=1e-12)
    assert (sketch.min, sketch.max) == (min(xs), max(xs))
    assert (sketch.get(0.0), sketch.get(1.0)) == (min(xs), max(xs))


@pytest.mark.parametrize(
    ("xs", "q", "expected"),
    [
        ([], 0.5, None),  # nothing seen
        ([42.0], 0.5, 42.0),  # one value comes back exactly
        ([42.0], 0.9, 42.0),
        ([0.0, 0.0, 0.0], 0.9, 0.0),  # all zero waits: the low bin reads back as the minimum
        ([0.0, 0.0, 0.0, 0.0, 100.0], 0.5, 0.0),  # the median of mostly-zero waits is 0
        ([30.0, 60.0], 0.5, 45.0),  # between the exact minimum and maximum
        ([30.0, 60.0, 90.0, 120.0, 600.0], 0.0, 30.0),  # q=0 is the minimum
        ([30.0, 60.0, 90.0, 120.0, 600.0], 1.0, 600.0),  # q=1 is the maximum
    ],
)
def test_known_small_examples(xs: list[float], q: float, expected: float | None) -> None:
    assert sketch_of(xs).get(q) == expected


def test_hand_worked_bins() -> None:
    # g = 1.02 / 0.98; 90 s is in bin ceil(log(90) / log(g)) = 113, read back as 2 g**113 / (g + 1).
    g = 1.02 / 0.98
    sketch = sketch_of([30.0, 60.0, 90.0, 120.0, 600.0])
    assert math.ceil(math.log(90) / math.log(g)) == 113
    assert sketch.get(0.5) == pytest.approx(2 * g**113 / (g + 1))
    assert abs(sketch.get(0.5) - 90) <= 0.02 * 90
    # p90: rank 3.6 -> 0.4 of the way from the estimate of 120 to the exact maximum 600
    e120 = 2 * g ** math.ceil(math.log(120) / math.log(g)) / (g + 1)
    assert sketch.get(0.9) == pytest.approx(e120 + 0.6 * (600 - e120))


def test_state_is_small_and_plain() -> None:
    # A day of dwell times, 1 s to a full day: at most 286 bins, a couple of KB of JSON at worst.
    sketch = sketch_of([float(x) for x in np.geomspace(1, 86_400, 5_000)])
    state = sketch.to_state()
    assert len(state["bins"]) <= 286
    assert len(orjson.dumps(state)) < 2_000
    assert state["n"] == 5_000
    # Typical dwell (2 to 60 minutes): about 85 bins, a few hundred bytes.
    rng = np.random.default_rng(7)
    typical = sketch_of([float(x) for x in rng.uniform(120, 3_600, 2_000)])
    assert len(orjson.dumps(typical.to_state())) < 600


@given(st.lists(durations, max_size=50), st.lists(durations, max_size=50))
def test_round_trip_is_lossless(before: list[float], after: list[float]) -> None:
    sketch = sketch_of(before)
    restored = round_trip(sketch)
    assert restored.to_state() == sketch.to_state()
    for x in after:
        sketch.update(x)
        restored.update(x)
    assert restored.to_state() == sketch.to_state()
    for q in (0.0, 0.5, 0.9, 1.0):
        assert restored.get(q) == sketch.get(q)


@given(st.lists(durations, max_size=60), st.lists(durations, max_size=60))
def test_merge_equals_one_sketch_of_both(left: list[float], right: list[float]) -> None:
    merged = sketch_of(left)
    merged.merge(sketch_of(right))
    whole = sketch_of(left + right)
    got, want = merged.to_state(), whole.to_state()
    assert got.pop("sum") == pytest.approx(want.pop("sum"))  # float addition order differs
    if not want["bins"]:  # an empty grid has no position: where it starts doesn't matter
        got.pop("i0"), want.pop("i0")
    assert got == want


def test_merge_needs_the_same_grid() -> None:
    with pytest.raises(ValueError, match="different grids"):
        QuantileSketch().merge(QuantileSketch(rel_error=0.01))


@pytest.mark.parametrize("x", [-1.0, float("nan"), float("inf")])  # impossible durations
def test_bad_values_raise(x: float) -> None:
    with pytest.raises(ValueError):
        QuantileSketch().update(x)


@pytest.mark.parametrize("params", [{"rel_error": 0}, {"rel_error": 1}, {"min_s": 0}])
def test_bad_parameters_raise(params: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        QuantileSketch(**params)


@pytest.mark.parametrize("q", [-0.1, 1.1])
def test_bad_q_raises(q: float) -> None:
    with pytest.raises(ValueError):
        QuantileSketch().get(q)


def test_unit_test_params_shared_checks() -> None:
    for params in QuantileSketch._unit_test_params():
        sketch = QuantileSketch(**params)
        assert (sketch.get(0.5), sketch.count, sketch.mean) == (None, 0, None)  # reading before data
        for x in [0.0, 3.0, 700.0]:
            sketch.update(x)
        for clone in (copy.deepcopy(sketch), pickle.loads(pickle.dumps(sketch)), round_trip(sketch)):
            assert clone.to_state() == sketch.to_state()
            assert clone.get(0.5) == sketch.get(0.5)
        state = sketch.to_state()
        sketch.get(0.9)  # reading never mutates
        assert sketch.to_state() == state
    assert QuantileSketch.from_state(None).to_state() == QuantileSketch().to_state()
