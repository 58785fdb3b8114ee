"""SlidingCounts against a brute-force recomputation at every step, plus drawn timelines.

The model keeps every event seen and recomputes each window from scratch with the
module's rule: an event at `ts` counts in window `W` when its slot start
`floor(ts / slot) * slot` is after `watermark - W`; `update` says False when that does
not hold even for the largest window.
"""

from __future__ import annotations

import copy
import datetime as dt
import pickle
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.windows.sliding import SlidingCounts

SETTINGS = settings(max_examples=200, deadline=None)
QUANTITIES = ("arrivals", "departures", "transactions")


@dataclass
class Model:
    slot_ms: int
    events: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    watermark_ms: int | None = None

    def slot_start(self, ts_ms: int) -> int:
        return (ts_ms // self.slot_ms) * self.slot_ms

    def update(self, ts_ms: int, counts: dict[str, int], largest_ms: int) -> bool:
        self.watermark_ms = ts_ms if self.watermark_ms is None else max(self.watermark_ms, ts_ms)
        self.events.append((ts_ms, counts))
        return self.slot_start(ts_ms) > self.watermark_ms - largest_ms

    def get(self, window_ms: int) -> dict[str, int]:
        out = dict.fromkeys(QUANTITIES, 0)
        for ts_ms, counts in self.events:
            if self.watermark_ms is not None and self.slot_start(ts_ms) > self.watermark_ms - window_ms:
                for q, n in counts.items():
                    out[q] += n
        return out


@dataclass(frozen=True)
class Scenario:
    slot_ms: int
    windows_ms: tuple[int, ...]
    events: list[tuple[int, dict[str, int]]]


# Mostly small counts; some at and past what a 2-byte slot holds before it widens (JSON, as orjson writes it,
# takes ints up to 2**64 - 1: the sums stay below).
COUNT = st.one_of(st.integers(0, 5), st.sampled_from([40_000, 65_535, 65_536, 2**40]))
COUNTS = st.dictionaries(st.sampled_from(QUANTITIES), COUNT, max_size=3)
STEPS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2**24), st.integers(0, 2), st.integers(0, 2**24), COUNTS),
                 max_size=60)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Events on one clock that mostly moves forward; some come back within or beyond the windows."""
    slot_ms = draw(st.sampled_from([1, 7, 10, 1_000, 10_000]))
    windows_ms = tuple(k * slot_ms for k in draw(st.lists(st.integers(1, 12), min_size=1, max_size=3)))
    largest = max(windows_ms)
    clock = draw(st.integers(-(10**6), 10**12))
    events = []
    # Fixed strategies, scaled here: building strategies per event makes hypothesis slow.
    for step_kind, step, back_kind, back, counts in draw(STEPS):
        clock += step % ([1, slot_ms + 1, 2 * largest + 1][step_kind])  # stay, a slot, up to two windows
        back %= [1, largest + slot_ms + 1, 3 * largest + 1][back_kind]  # in order, around the edge, far back
        events.append((clock - back, counts))
    return Scenario(slot_ms, windows_ms, events)


def round_trip(counter: SlidingCounts) -> SlidingCounts:
    """Through JSON bytes, as a Faust table changelog would carry it."""
    state = orjson.loads(orjson.dumps(counter.to_state()))
    return SlidingCounts.from_state(state, quantities=counter.quantities, windows_ms=counter.windows_ms,
                                    slot_ms=counter.slot_ms)


# -- properties ------------------------------------------------------------------------------------------


@SETTINGS
@given(scenarios(), st.data())
def test_counts_match_brute_force_at_every_step(scenario: Scenario, data: st.DataObject) -> None:
    largest = max(scenario.windows_ms)
    model = Model(scenario.slot_ms)
    # the original and copies restored from its state at random points, all fed the same events
    replicas = [SlidingCounts(QUANTITIES, scenario.windows_ms, scenario.slot_ms)]
    for ts_ms, counts in scenario.events:
        expected = model.update(ts_ms, counts, largest)
        for counter in replicas:
            assert counter.update(ts_ms, counts) is expected
            assert counter.watermark_ms == model.watermark_ms
            # every window, and every slot multiple up to the largest (windows nest)
            previous = dict.fromkeys(QUANTITIES, 0)
            for k in range(1, largest // scenario.slot_ms + 1):
                got = counter.get(k * scenario.slot_ms)
                assert got == model.get(k * scenario.slot_ms)
                assert all(got[q] >= previous[q] for q in QUANTITIES)
                previous = got
            assert counter.get_all() == {w: model.get(w) for w in sorted(set(scenario.windows_ms))}
            if not expected:
                assert counter.late_by_ms(ts_ms) >= 0
        if len(replicas) < 3 and data.draw(st.integers(0, 7), label="restore") == 0:
            restored = round_trip(replicas[0])
            assert restored.to_state() == orjson.loads(orjson.dumps(replicas[0].to_state()))
            replicas.append(restored)


@SETTINGS
@given(scenarios())
def test_state_stays_bounded_and_reading_changes_nothing(scenario: Scenario) -> None:
    counter = SlidingCounts(QUANTITIES, scenario.windows_ms, scenario.slot_ms)
    for ts_ms, counts in scenario.events:
        counter.update(ts_ms, counts)
        before = counter.to_state()
        counter.get_all()
        assert counter.to_state() == before
        assert all(len(slots) <= counter.n_slots for slots in before["counts"].values())


@SETTINGS
@given(scenarios())
def test_ignored_events_change_nothing_and_the_edge_is_within_a_slot(scenario: Scenario) -> None:
    largest = max(scenario.windows_ms)
    counter = SlidingCounts(QUANTITIES, scenario.windows_ms, scenario.slot_ms)
    for ts_ms, counts in scenario.events:
        before = counter.to_state()
        counted = counter.update(ts_ms, counts)
        age_ms = counter.watermark_ms - ts_ms
        if age_ms <= largest - scenario.slot_ms:
            assert counted  # less than W - slot old: always counted
        if age_ms >= largest:
            assert not counted  # W old or more: never
        if not counted:
            assert counter.to_state() == before


# -- drawn timelines --------------------------------------------------------------------------------------


def test_docstring_timeline() -> None:
    # slots of 10 s, windows of 30 s and 60 s
    #
    #  slots  [0s)[10s)[20s)[30s)[40s)[50s)[60s)[70s)
    #           5s  12s  25s             58s       75s
    #                 21s (late, still in the 60 s window at wm 75 s: slot 20 s > 75 s - 60 s)
    #          3s (late: slot 0 s <= 15 s, ignored)
    counter = SlidingCounts(quantities=("arrivals",), windows_ms=(30_000, 60_000), slot_ms=10_000)
    steps = []
    for ts_ms in [5_000, 12_000, 25_000, 58_000, 75_000, 21_000, 3_000]:
        counted = counter.update(ts_ms, {"arrivals": 1})
        steps.append((ts_ms, counted, counter.get(30_000)["arrivals"], counter.get(60_000)["arrivals"]))
    assert steps == [
        (5_000, True, 1, 1),
        (12_000, True, 2, 2),
        (25_000, True, 3, 3),
        (58_000, True, 1, 4),
        (75_000, True, 2, 3),
        (21_000, True, 2, 4),
        (3_000, False, 2, 4),
    ]


def test_window_edge_is_a_slot_start() -> None:
    # watermark 60_000, window 30_000: slots starting after 30_000, i.e. 40_000 and 50_000 and 60_000...
    #
    #        29_999 30_000     39_999 40_000           60_000 (wm)
    #             |  |              |  |                |
    #   [20s-----)[30s-------------)[40s---)[50s---)[60s---)
    #                 not counted        counted
    counter = SlidingCounts(quantities=("arrivals",), windows_ms=(30_000,), slot_ms=10_000)
    counter.update(60_000, {})
    assert counter.update(39_999, {"arrivals": 1}) is False  # slot 30_000 is not > 30_000
    assert counter.update(40_000, {"arrivals": 1}) is True
    assert counter.get(30_000) == {"arrivals": 1}
    # a watermark later in its slot keeps the same window: resolution is one slot
    counter.update(69_999, {})
    assert counter.get(30_000) == {"arrivals": 1}
    counter.update(70_000, {})  # next slot: 40_000 leaves
    assert counter.get(30_000) == {"arrivals": 0}


def test_watermark_jump_clears_everything() -> None:
    counter = SlidingCounts(quantities=("arrivals",), windows_ms=(60_000,), slot_ms=10_000)
    for t in range(0, 60_000, 5_000):
        counter.update(t, {"arrivals": 1})
    assert counter.get(60_000) == {"arrivals": 12}
    counter.update(10**9, {})
    assert counter.get(60_000) == {"arrivals": 0}
    assert counter.to_state()["counts"] == {"arrivals": []}


def test_negative_times_use_floor_slots() -> None:
    # -1 ms is in slot [-10, 0), not [0, 10)
    counter = SlidingCounts(quantities=("arrivals",), windows_ms=(10,), slot_ms=10)
    counter.update(5, {"arrivals": 1})
    assert counter.update(-1, {"arrivals": 1}) is False
    assert counter.slot_of(-1) == -10
    assert counter.get(10) == {"arrivals": 1}


def test_durations_as_timedelta() -> None:
    counter = SlidingCounts(windows_ms=(dt.timedelta(minutes=5),), slot_ms=dt.timedelta(seconds=10))
    assert (counter.windows_ms, counter.slot_ms, counter.n_slots) == ((300_000,), 10_000, 30)
    counter.update(0, {"arrivals": 2})
    assert counter.get(dt.timedelta(minutes=5))["arrivals"] == 2


def test_defaults() -> None:
    counter = SlidingCounts()
    assert counter.windows_ms == (300_000, 900_000, 3_600_000)
    assert counter.slot_ms == 10_000
    assert counter.n_slots == 360
    assert counter.get_all() == {w: {"arrivals": 0, "departures": 0, "transactions": 0} for w in counter.windows_ms}
    assert counter.late_by_ms(0) == -1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"slot_ms": 0},  # no slots
        {"windows_ms": ()},  # no window
        {"windows_ms": (15_000,), "slot_ms": 10_000},  # not a multiple of the slot
        {"windows_ms": (0,)},  # empty window
        {"quantities": ()},  # nothing counted
        {"quantities": ("arrivals", "arrivals")},  # twice the same
        {"slot_ms": 1.5},  # not ms
    ],
)
def test_invalid_arguments_raise(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SlidingCounts(**kwargs)


@pytest.mark.parametrize(
    "counts",
    [
        {"visits": 1},  # unknown quantity
        {"arrivals": -1},  # negative count
        {"arrivals": 1.0},  # not an int
        {"arrivals": True},  # a bool is not a count
    ],
)
def test_invalid_counts_raise(counts: dict[str, Any]) -> None:
    counter = SlidingCounts()
    with pytest.raises(ValueError):
        counter.update(0, counts)


@pytest.mark.parametrize("window_ms", [0, 5_000, 3_610_000])  # empty, off the slot grid, beyond the largest
def test_invalid_window_raises(window_ms: int) -> None:
    with pytest.raises(ValueError):
        SlidingCounts().get(window_ms)


# -- state ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [None, {}, {"wm": None}])  # no state yet: a new store
def test_from_empty_state(state: dict[str, Any] | None) -> None:
    counter = SlidingCounts.from_state(state)
    assert counter.watermark_ms is None
    assert counter.to_state() == SlidingCounts().to_state()


def test_state_is_oldest_first_without_leading_zeros() -> None:
    counter = SlidingCounts(quantities=("arrivals", "departures"), windows_ms=(40,), slot_ms=10)
    counter.update(15, {"arrivals": 1})
    counter.update(37, {"arrivals": 2, "departures": 1})
    # slots 0, 10, 20, 30 (watermark 37); arrivals in 10 and 30, departures in 30
    assert counter.to_state() == {"wm": 37, "slot_ms": 10, "counts": {"arrivals": [1, 0, 2], "departures": [1]}}


def test_from_state_follows_a_changed_configuration() -> None:
    counter = SlidingCounts(quantities=("arrivals", "departures"), windows_ms=(20, 40), slot_ms=10)
    for t, n in [(0, 1), (10, 2), (20, 3), (35, 4)]:
        counter.update(t, {"arrivals": n, "departures": 1})
    state = orjson.loads(orjson.dumps(counter.to_state()))
    # a shorter largest window keeps only its slots; a new quantity starts at zero; a dropped one goes
    shorter = SlidingCounts.from_state(state, quantities=("arrivals", "transactions"), windows_ms=(20,), slot_ms=10)
    assert shorter.get(20) == {"arrivals": 7, "transactions": 0}
    assert shorter.to_state()["counts"] == {"arrivals": [3, 4], "transactions": []}
    # a longer one keeps everything it had
    longer = SlidingCounts.from_state(state, quantities=("arrivals",), windows_ms=(100,), slot_ms=10)
    assert longer.get(40) == {"arrivals": 10}
    with pytest.raises(ValueError):
        SlidingCounts.from_state(state, quantities=("arrivals",), windows_ms=(20,), slot_ms=5)


def test_copy_pickle_and_params() -> None:
    for params in SlidingCounts._unit_test_params():
        counter = SlidingCounts(**params)
        counter.update(1_000, dict.fromkeys(counter.quantities, 1))
        for clone in (copy.deepcopy(counter), pickle.loads(pickle.dumps(counter)), round_trip(counter)):
            assert clone.to_state() == counter.to_state()
            assert clone.get_all() == counter.get_all()


def test_busy_store_state_is_small() -> None:
    # 2,000 arrivals and departures an hour and 300 transactions, one event each, for two hours
    counter = SlidingCounts()
    t0 = 1_767_225_600_000
    for i in range(4_000):
        counter.update(t0 + i * 1_800, {"arrivals": 1})
        counter.update(t0 + i * 1_800 + 900, {"departures": 1})
        if i % 7 == 0:
            counter.update(t0 + i * 1_800 + 500, {"transactions": 1})
    assert counter.get(3_600_000)["arrivals"] == 2_000
    assert len(orjson.dumps(counter.to_state())) < 4_096


def test_a_slot_widens_past_what_its_kind_holds_and_keeps_every_count() -> None:
    counter = SlidingCounts(("arrivals",), (30_000,), 10_000)
    expected = 0
    for n in (65_535, 1, 2**63 - 65_537, 1, 2**70):
        counter.update(5_000, {"arrivals": n})
        expected += n
        assert counter.get(30_000) == {"arrivals": expected}
        if expected < 2**64:  # what JSON as orjson writes it holds
            assert round_trip(counter).get(30_000) == {"arrivals": expected}
    counter.update(200_000, {"arrivals": 1})  # every slot left the window: back to 2-byte counts
    assert counter.get(30_000) == {"arrivals": 1}
