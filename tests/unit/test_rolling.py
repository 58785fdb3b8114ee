"""BucketBaseline against brute force (mean of the last N, the EW recurrence, last week's
bucket), known values, and state round trips in the middle of a sequence."""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.windows.rolling import WEEK_MS, BucketBaseline

SETTINGS = settings(max_examples=200, deadline=None)
QUANTITIES = ("arrivals", "sales")
DAY = 86_400_000


@dataclass
class Model:
    """Every accepted bucket, recomputed from scratch."""

    window_size: int
    fading_factor: float
    accepted: dict[int, dict[str, float]] = field(default_factory=dict)  # start -> values
    order: list[int] = field(default_factory=list)  # starts, in the order taken in

    def update(self, start: int, values: dict[str, float]) -> bool:
        if self.order and start <= self.order[-1]:
            return False
        self.accepted[start] = values
        self.order.append(start)
        return True

    def mean(self, q: str) -> float | None:
        last = [self.accepted[s][q] for s in self.order[-self.window_size :]]
        return sum(last) / len(last) if last else None

    def ewm(self, q: str) -> float | None:
        m = None
        for s in self.order:
            x = self.accepted[s][q]
            m = x if m is None else self.fading_factor * x + (1 - self.fading_factor) * m
        return m

    def last_week(self, start: int) -> dict[str, float] | None:
        if self.order and start <= self.order[-1]:
            return None  # only asked for a bucket newer than the last one
        return self.accepted.get(start - WEEK_MS)


@dataclass(frozen=True)
class Scenario:
    bucket_ms: int
    window_size: int
    fading_factor: float
    buckets: list[tuple[int, dict[str, float]]]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Closed buckets, mostly in order with gaps (nights, quiet hours), sometimes a week apart, some repeats."""
    bucket_ms = draw(st.sampled_from([DAY, DAY // 2, DAY // 4, DAY // 24]))
    per_week = WEEK_MS // bucket_ms
    n = draw(st.integers(-(10**5), 10**5))
    buckets = []
    steps = draw(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**20), st.integers(0, 500),
                                    st.floats(0, 1e4, allow_nan=False)), max_size=50))
    for kind, step, arrivals, sales in steps:
        # next bucket, a gap, exactly a week on, or back (already taken in or older)
        n += [1, 1 + step % (2 * per_week), per_week, -(step % (2 * per_week))][kind]
        buckets.append((n * bucket_ms, {"arrivals": arrivals, "sales": sales}))
    return Scenario(bucket_ms, draw(st.integers(1, 6)), draw(st.sampled_from([0.1, 0.25, 0.5, 1.0])), buckets)


def build(scenario: Scenario) -> BucketBaseline:
    return BucketBaseline(scenario.bucket_ms, QUANTITIES, scenario.window_size, scenario.fading_factor)


def round_trip(baseline: BucketBaseline) -> BucketBaseline:
    """Through JSON bytes, as a Faust table changelog would carry it."""
    state = orjson.loads(orjson.dumps(baseline.to_state()))
    return BucketBaseline.from_state(state, bucket_ms=baseline.bucket_ms, quantities=baseline.quantities,
                                     window_size=baseline.window_size, fading_factor=baseline.fading_factor)


def close(a: float | None, b: float | None) -> bool:
    return a is None if b is None else a == pytest.approx(b, rel=1e-9, abs=1e-9)


# -- properties ------------------------------------------------------------------------------------------


@SETTINGS
@given(scenarios())
def test_baseline_matches_brute_force_at_every_step(scenario: Scenario) -> None:
    model = Model(scenario.window_size, scenario.fading_factor)
    baseline = build(scenario)
    for start, values in scenario.buckets:
        c = baseline.compare(start, values)
        lw = model.last_week(start)
        assert baseline.last_week(start) == lw
        for q in QUANTITIES:
            v = values[q]
            assert c[q]["value"] == v
            assert c[q]["last_week"] == (None if lw is None else lw[q])
            assert close(c[q]["baseline"], model.mean(q))
            assert close(c[q]["ewm"], model.ewm(q))
            for name, ref in [("vs_last_week", c[q]["last_week"]), ("vs_baseline", c[q]["baseline"]),
                              ("vs_ewm", c[q]["ewm"])]:
                if ref is None:
                    assert c[q][name] is None
                else:
                    assert c[q][name]["diff"] == v - ref
                    assert c[q][name]["ratio"] == (v / ref if ref else None)
        assert baseline.update(start, values) is model.update(start, values)
        got = baseline.get()
        for q in QUANTITIES:
            assert close(got[q]["mean"], model.mean(q))
            assert close(got[q]["ewm"], model.ewm(q))
        assert len(baseline.to_state()["week"]) <= baseline.buckets_per_week
        assert len(baseline.to_state()["q"]["arrivals"]["w"]) <= scenario.window_size


@SETTINGS
@given(scenarios(), st.integers(0, 50))
def test_round_trip_in_the_middle_gives_identical_later_outputs(scenario: Scenario, cut: int) -> None:
    original = build(scenario)
    for start, values in scenario.buckets[:cut]:
        original.update(start, values)
    restored = round_trip(original)
    assert restored.to_state() == orjson.loads(orjson.dumps(original.to_state()))
    for q in QUANTITIES:
        # the EW mean's Rust state, byte for byte
        assert restored._ewm[q]._ewmean.__getstate__() == original._ewm[q]._ewmean.__getstate__()
    for start, values in scenario.buckets[cut:]:
        assert restored.compare(start, values) == original.compare(start, values)  # exact, not approx
        assert restored.update(start, values) == original.update(start, values)
        assert restored.get() == original.get()
        assert restored.to_state() == original.to_state()


@SETTINGS
@given(scenarios())
def test_reading_changes_nothing(scenario: Scenario) -> None:
    baseline = build(scenario)
    for start, values in scenario.buckets:
        before = baseline.to_state()
        baseline.compare(start, values)
        baseline.last_week(start)
        baseline.get()
        assert baseline.to_state() == before
        baseline.update(start, values)


# -- known values -----------------------------------------------------------------------------------------


def test_known_values() -> None:
    # River's EWMean docstring values, fading_factor 0.5, and hand-worked means of 3
    xs = [1, 3, 5, 4, 6, 8, 7, 9, 11]
    ewm = [1.0, 2.0, 3.5, 3.75, 4.875, 6.4375, 6.71875, 7.859375, 9.4296875]
    mean3 = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    baseline = BucketBaseline(bucket_ms=DAY, quantities=("arrivals",), window_size=3, fading_factor=0.5)
    for day, x in enumerate(xs):
        baseline.update(day * DAY, {"arrivals": x})
        got = baseline.get()["arrivals"]
        assert got["ewm"] == ewm[day]
        assert got["mean"] == pytest.approx(mean3[day])


def test_last_week_timeline() -> None:
    # hourly buckets; Monday 09:00 of week 1 and of week 2, with gaps (nights) in between
    #
    #   week 1: Mon 09:00 (120)  Mon 10:00 (90)  ... Sun 23:00 (5)
    #   week 2: Mon 09:00 (150)  -> last week 120;  Mon 11:00 (80) -> week 1 had no 11:00: None
    H = 3_600_000
    monday = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
    baseline = BucketBaseline(bucket_ms=H, quantities=("arrivals",), window_size=2, fading_factor=0.5)
    baseline.update(monday + 9 * H, {"arrivals": 120})
    baseline.update(monday + 10 * H, {"arrivals": 90})
    baseline.update(monday + 6 * 24 * H + 23 * H, {"arrivals": 5})
    c = baseline.compare(monday + WEEK_MS + 9 * H, {"arrivals": 150})["arrivals"]
    assert c["last_week"] == 120
    assert c["vs_last_week"] == {"diff": 30, "ratio": 1.25}
    assert c["baseline"] == 47.5  # (90 + 5) / 2
    assert baseline.update(monday + WEEK_MS + 9 * H, {"arrivals": 150})
    # Mon 10:00 of week 1 is still known; week 1 had no Mon 11:00
    assert baseline.last_week(monday + WEEK_MS + 10 * H) == {"arrivals": 90}
    assert baseline.last_week(monday + WEEK_MS + 11 * H) is None
    assert baseline.update(monday + WEEK_MS + 11 * H, {"arrivals": 80})
    # 11:00 of week 2 skipped 10:00: 10:00 of week 1 (index 10) is now over a week old and dropped
    assert "10" not in baseline.to_state()["week"]
    assert baseline.last_week(monday + 2 * WEEK_MS + 9 * H) == {"arrivals": 150}


def test_zero_reference_has_no_ratio() -> None:
    baseline = BucketBaseline(bucket_ms=DAY, quantities=("arrivals",), window_size=2)
    baseline.update(0, {"arrivals": 0})
    c = baseline.compare(WEEK_MS, {"arrivals": 4})["arrivals"]
    assert c["vs_last_week"] == {"diff": 4, "ratio": None}
    assert c["vs_baseline"] == {"diff": 4.0, "ratio": None}


def test_old_and_repeated_buckets_are_refused() -> None:
    baseline = BucketBaseline(bucket_ms=DAY, quantities=("arrivals",))
    assert baseline.update(2 * DAY, {"arrivals": 3})
    before = baseline.to_state()
    assert not baseline.update(2 * DAY, {"arrivals": 3})  # the same bucket again (a replay)
    assert not baseline.update(DAY, {"arrivals": 3})  # an older one
    assert baseline.to_state() == before


def test_extra_keys_are_ignored() -> None:
    # a FlowCounts result carries every counter; only the followed ones are read
    baseline = BucketBaseline(bucket_ms=DAY, quantities=("arrivals",))
    baseline.update(0, {"arrivals": 3, "departures": 2, "sales": 10.5})
    assert baseline.get() == {"arrivals": {"mean": 3.0, "ewm": 3.0}}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bucket_ms": 0},  # empty buckets
        {"bucket_ms": 11 * 60_000},  # 11 minutes do not divide a week
        {"window_size": 0},  # nothing to average
        {"fading_factor": 0.0},  # never moves
        {"fading_factor": 1.5},  # beyond 1
        {"quantities": ()},  # nothing followed
    ],
)
def test_invalid_arguments_raise(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BucketBaseline(**kwargs)


@pytest.mark.parametrize(
    ("start", "values"),
    [
        (1, {"arrivals": 1, "departures": 1, "transactions": 1}),  # not a bucket start
        (0, {"arrivals": 1, "departures": 1}),  # transactions missing
        (0, {"arrivals": float("nan"), "departures": 1, "transactions": 1}),  # not finite
        (0, {"arrivals": "1", "departures": 1, "transactions": 1}),  # not a number
    ],
)
def test_invalid_buckets_raise(start: int, values: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BucketBaseline().update(start, values)
    with pytest.raises(ValueError):
        BucketBaseline().compare(start, values)


# -- state ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [None, {}, {"last": None}])  # no state yet: a new store
def test_from_empty_state(state: dict[str, Any] | None) -> None:
    baseline = BucketBaseline.from_state(state)
    assert baseline.to_state() == BucketBaseline().to_state()
    assert baseline.get()["arrivals"] == {"mean": None, "ewm": None}


def test_from_state_follows_a_changed_configuration() -> None:
    baseline = BucketBaseline(bucket_ms=DAY, quantities=("arrivals", "sales"), window_size=4)
    for day, (a, s) in enumerate([(10, 1.5), (20, 2.5), (30, 3.5), (40, 4.5)]):
        baseline.update(day * DAY, {"arrivals": a, "sales": s})
    state = orjson.loads(orjson.dumps(baseline.to_state()))
    # a smaller window keeps the newest values; a new quantity starts empty; a dropped one goes
    changed = BucketBaseline.from_state(state, bucket_ms=DAY, quantities=("departures", "arrivals"), window_size=2)
    assert changed.get()["arrivals"]["mean"] == 35.0
    assert changed.get()["departures"] == {"mean": None, "ewm": None}
    assert changed.last_week(7 * DAY) == {"departures": None, "arrivals": 10}
    c = changed.compare(7 * DAY, {"departures": 1, "arrivals": 5})
    assert c["departures"]["vs_last_week"] is None
    with pytest.raises(ValueError):
        BucketBaseline.from_state(state, bucket_ms=DAY // 2, quantities=("arrivals",))


def test_copy_and_pickle() -> None:
    for params in BucketBaseline._unit_test_params():
        baseline = BucketBaseline(**params)
        start = 5 * baseline.bucket_ms
        baseline.update(start, dict.fromkeys(baseline.quantities, 2))
        for clone in (copy.deepcopy(baseline), pickle.loads(pickle.dumps(baseline))):
            assert clone.to_state() == baseline.to_state()
            nxt = start + baseline.bucket_ms
            values = dict.fromkeys(baseline.quantities, 7)
            assert clone.compare(nxt, values) == baseline.compare(nxt, values)
        assert round_trip(baseline).to_state() == baseline.to_state()


def test_busy_store_state_is_small() -> None:
    # 15-minute buckets, open around the clock for two weeks: the worst case for the week ring
    baseline = BucketBaseline()
    t0 = 1_767_225_600_000
    for i in range(2 * 7 * 96):
        baseline.update(t0 + i * 900_000, {"arrivals": 500 + i % 50, "departures": 480 + i % 40,
                                           "transactions": 75 + i % 9})
    assert len(baseline.to_state()["week"]) == 672
    assert len(orjson.dumps(baseline.to_state())) < 20_000
