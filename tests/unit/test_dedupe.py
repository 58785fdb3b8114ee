"""RecentEventIds against a brute-force dict of id -> latest remembered time, plus timelines.

The model follows the module's rule: the watermark is the highest time seen; an id is
remembered while the slot of its latest time ends after `watermark - horizon`
(`slot >= floor((watermark - horizon) / slot_ms)`); a duplicate refreshes it; an event
whose own slot is already past that edge is reported new and not remembered.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import pickle
import random
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.windows.dedupe import RecentEventIds, digest

SETTINGS = settings(max_examples=200, deadline=None)


@dataclass
class Model:
    horizon_ms: int
    slot_ms: int
    last_seen: dict[str, int] = field(default_factory=dict)  # id -> latest time remembered
    watermark_ms: int | None = None

    def first_slot(self) -> int:
        assert self.watermark_ms is not None
        return (self.watermark_ms - self.horizon_ms) // self.slot_ms

    def remembered(self) -> set[str]:
        return {i for i, t in self.last_seen.items() if t // self.slot_ms >= self.first_slot()}

    def seen(self, event_id: str, ts_ms: int) -> bool:
        self.watermark_ms = ts_ms if self.watermark_ms is None else max(self.watermark_ms, ts_ms)
        if event_id in self.remembered():
            self.last_seen[event_id] = max(self.last_seen[event_id], ts_ms)
            return True
        if ts_ms // self.slot_ms >= self.first_slot():
            self.last_seen[event_id] = ts_ms
        return False


@dataclass(frozen=True)
class Scenario:
    horizon_ms: int
    slot_ms: int
    events: list[tuple[str, int]]


STEPS = st.lists(st.tuples(st.integers(0, 11), st.integers(0, 2), st.integers(0, 2**24), st.integers(0, 2),
                           st.integers(0, 2**24)), max_size=80)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A few ids re-sent on a clock that mostly moves forward, within and beyond the horizon, out of order."""
    slot_ms = draw(st.sampled_from([1, 10, 1_000, 60_000]))
    horizon_ms = draw(st.one_of(st.just(0), st.integers(1, 5).map(lambda k: k * slot_ms), st.integers(0, 300_000)))
    span = horizon_ms + slot_ms
    clock = draw(st.integers(-(10**6), 10**12))
    events = []
    for n, step_kind, step, back_kind, back in draw(STEPS):
        clock += step % [1, slot_ms + 1, 2 * span + 1][step_kind]  # same time, within a slot, up to 2 horizons
        back %= [1, span + 1, 3 * span + 1][back_kind]  # in order, around the horizon, far back
        events.append((f"e-{n}", clock - back))
    return Scenario(horizon_ms, slot_ms, events)


def round_trip(ids: RecentEventIds) -> RecentEventIds:
    """Through JSON bytes, as a Faust table changelog would carry it."""
    state = orjson.loads(orjson.dumps(ids.to_state()))
    return RecentEventIds.from_state(state, horizon_ms=ids.horizon_ms, slot_ms=ids.slot_ms)


# -- properties ------------------------------------------------------------------------------------------


@SETTINGS
@given(scenarios(), st.data())
def test_matches_brute_force_at_every_step(scenario: Scenario, data: st.DataObject) -> None:
    model = Model(scenario.horizon_ms, scenario.slot_ms)
    replicas = [RecentEventIds(scenario.horizon_ms, scenario.slot_ms)]
    for event_id, ts_ms in scenario.events:
        expected = model.seen(event_id, ts_ms)
        for ids in replicas:
            assert ids.seen(event_id, ts_ms) is expected
            assert ids.watermark_ms == model.watermark_ms
            assert len(ids) == len(model.remembered())
            state = ids.to_state()
            assert sum(len(joined) for joined in state["ids"].values()) == 8 * len(model.remembered())
            # Slot by slot, what is saved is what the brute force remembers (saved slots are joined once and
            # kept until they change: a stale one would show here).
            saved = {(int(slot), joined[i:i + 8]) for slot, joined in state["ids"].items()
                     for i in range(0, len(joined), 8)}
            assert saved == {(model.last_seen[e] // scenario.slot_ms, digest(e)) for e in model.remembered()}
        if len(replicas) < 3 and data.draw(st.integers(0, 9), label="restore") == 0:
            restored = round_trip(replicas[0])
            assert restored.to_state() == orjson.loads(orjson.dumps(replicas[0].to_state()))
            replicas.append(restored)


@SETTINGS
@given(scenarios())
def test_a_resend_with_the_same_time_within_the_horizon_is_always_caught(scenario: Scenario) -> None:
    # What a retrying producer does: the same event (id and time) again, later on the stream.
    ids = RecentEventIds(scenario.horizon_ms, scenario.slot_ms)
    for event_id, ts_ms in scenario.events:
        first = ids.seen(event_id, ts_ms)
        edge_ms = ids.watermark_ms - scenario.horizon_ms
        kept = ts_ms // scenario.slot_ms >= edge_ms // scenario.slot_ms  # its slot ends after the edge
        assert ids.seen(event_id, ts_ms) is (first or kept)
        if ts_ms >= edge_ms:
            assert kept  # within the horizon: always remembered


class BoundedModel:
    """The rule with a bound, by brute force: each remembered id with (slot, filing number); past `max_ids`
    the smallest pair goes (the earliest slot, the first filed there), counted."""

    def __init__(self, horizon_ms: int, slot_ms: int, max_ids: int) -> None:
        self.horizon_ms, self.slot_ms, self.max_ids = horizon_ms, slot_ms, max_ids
        self.filed: dict[str, tuple[int, int]] = {}
        self.watermark_ms: int | None = None
        self.n = 0
        self.overflow = 0

    def seen(self, event_id: str, ts_ms: int) -> bool:
        self.watermark_ms = ts_ms if self.watermark_ms is None else max(self.watermark_ms, ts_ms)
        first = (self.watermark_ms - self.horizon_ms) // self.slot_ms
        self.filed = {i: v for i, v in self.filed.items() if v[0] >= first}
        slot = ts_ms // self.slot_ms
        self.n += 1
        if event_id in self.filed:
            if slot > self.filed[event_id][0]:
                self.filed[event_id] = (slot, self.n)
            return True
        if slot >= first:
            self.filed[event_id] = (slot, self.n)
            while len(self.filed) > self.max_ids:
                del self.filed[min(self.filed, key=self.filed.__getitem__)]
                self.overflow += 1
        return False


@SETTINGS
@given(scenarios(), st.integers(1, 6), st.data())
def test_bounded_matches_brute_force_and_counts_its_overflow(scenario: Scenario, max_ids: int,
                                                             data: st.DataObject) -> None:
    model = BoundedModel(scenario.horizon_ms, scenario.slot_ms, max_ids)
    replicas = [RecentEventIds(scenario.horizon_ms, scenario.slot_ms, max_ids=max_ids)]
    overflow = [0]
    for event_id, ts_ms in scenario.events:
        expected = model.seen(event_id, ts_ms)
        for k, ids in enumerate(replicas):
            assert ids.seen(event_id, ts_ms) is expected
            assert len(ids) == len(model.filed) <= max_ids
            assert {i: ids.slot_of(i) for i in model.filed} == {i: v[0] for i, v in model.filed.items()}
            if k == 0:
                overflow[0] += ids.take_overflow()
        assert overflow[0] == model.overflow
        if len(replicas) < 3 and data.draw(st.integers(0, 9), label="restore") == 0:
            state = orjson.loads(orjson.dumps(replicas[0].to_state()))
            restored = RecentEventIds.from_state(state, horizon_ms=scenario.horizon_ms, slot_ms=scenario.slot_ms,
                                                 max_ids=max_ids)
            assert restored.take_overflow() == 0 and restored.to_state() == state
            replicas.append(restored)


def test_bound_keeps_the_newest_and_a_forgotten_repeat_counts_again() -> None:
    ids = RecentEventIds(horizon_ms=600_000, slot_ms=60_000, max_ids=3)
    assert [ids.seen(i, t) for i, t in [("a", 0), ("b", 60_000), ("c", 60_000), ("a", 120_000), ("d", 120_000)]] \
        == [False, False, False, True, False]
    # `a` was refreshed to slot 2: the oldest is `b` (slot 1, filed before `c`)
    assert ids.take_overflow() == 1 and len(ids) == 3
    assert ids.seen("b", 60_000) is False, "forgotten for the bound: its repeat counts again"
    assert ids.seen("a", 0) is True and ids.seen("d", 0) is True
    assert ids.take_overflow() == 1  # `b`, filed at slot 1 again, pushed out `c`, filed there before it
    assert len(ids) == 3


def test_restoring_a_state_larger_than_the_bound_keeps_the_newest() -> None:
    big = RecentEventIds(horizon_ms=600_000, slot_ms=60_000, max_ids=100)
    for n in range(10):
        big.seen(f"e{n}", n * 60_000)
    small = RecentEventIds.from_state(big.to_state(), horizon_ms=600_000, slot_ms=60_000, max_ids=4)
    assert small.take_overflow() == 6
    assert [small.seen(f"e{n}", 540_000) for n in (9, 8, 7, 6, 5)] == [True] * 4 + [False]


@pytest.mark.parametrize("horizon_ms", [0, 60_000, 1_200_000, 7 * 86_400_000])
@pytest.mark.parametrize("max_bytes", [65_536, 1_000_000])
def test_a_full_memory_fits_in_its_share_of_the_limit(horizon_ms: int, max_bytes: int) -> None:
    from footfall.operators.windows.dedupe import max_ids_for

    slot_ms = 60_000
    bound = max_ids_for(max_bytes, horizon_ms, slot_ms)
    ids = RecentEventIds(horizon_ms, slot_ms, max_ids=bound)
    t0 = 10**13  # 14-digit slot numbers... and one id per slot at most as often as the horizon allows
    n_slots = horizon_ms // slot_ms + 1
    for n in range(bound + 500):
        ids.seen(f"id-{n}", t0 + (n % n_slots) * slot_ms)
    assert len(ids) == bound
    assert len(orjson.dumps(ids.to_state())) <= max_bytes // 2


# -- timelines and edges -----------------------------------------------------------------------------------


def test_horizon_edge_is_a_slot_end() -> None:
    # horizon 60 s, slots of 10 s; `a` seen at 5 s, in the slot [0 s, 10 s)
    #
    #   [0s---10s)                                  wm 69.999 s: edge 9.999 s < 10 s -> kept
    #        5s(a)                                  wm 70 s:     edge 10 s, slot ended -> forgotten
    ids = RecentEventIds(horizon_ms=60_000, slot_ms=10_000)
    assert ids.seen("a", 5_000) is False
    assert ids.seen("x", 69_999) is False
    assert ids.seen("a", 5_000) is True  # 64.999 s old: more than the horizon, but its slot is kept
    ids2 = RecentEventIds(horizon_ms=60_000, slot_ms=10_000)
    ids2.seen("a", 5_000)
    ids2.seen("x", 70_000)
    assert len(ids2) == 1
    assert ids2.seen("a", 5_000) is False  # too old to check: new, not remembered
    assert len(ids2) == 1
    assert ids2.seen("a", 10_000) is False  # its slot is kept: remembered now
    assert ids2.seen("a", 10_000) is True


def test_duplicates_refresh_the_memory() -> None:
    # a sensor retrying the same id every 40 s, horizon 60 s: caught every time
    ids = RecentEventIds(horizon_ms=60_000, slot_ms=1_000)
    assert ids.seen("r", 0) is False
    for t in range(40_000, 400_000, 40_000):
        assert ids.seen("r", t) is True
    assert len(ids) == 1
    assert ids.to_state()["ids"] == {"360": digest("r")}


def test_zero_horizon_remembers_the_watermark_slot_only() -> None:
    ids = RecentEventIds(horizon_ms=0, slot_ms=10)
    assert ids.seen("a", 100) is False
    assert ids.seen("a", 105) is True  # same slot [100, 110)
    assert ids.seen("b", 110) is False
    assert ids.seen("a", 109) is False  # slot [100, 110) ended at the watermark 110
    assert len(ids) == 1


def test_digest_is_stable_blake2b() -> None:
    # 6-byte blake2b, base64url: the same in every process and release
    assert digest("e-1") == "cS4Kn4_E"
    raw = hashlib.blake2b(b"store-7/evt-000123", digest_size=6).digest()
    assert digest("store-7/evt-000123") == "".join(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[(int.from_bytes(raw) >> s) & 63]
        for s in range(42, -1, -6)
    )
    assert all(len(digest(str(i))) == 8 for i in range(1_000))
    assert digest("ü-ß") != digest("u-ss")


def test_durations_as_timedelta() -> None:
    ids = RecentEventIds(horizon_ms=dt.timedelta(minutes=15), slot_ms=dt.timedelta(minutes=1))
    assert (ids.horizon_ms, ids.slot_ms) == (900_000, 60_000)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"horizon_ms": -1},  # negative horizon
        {"horizon_ms": 1_000, "slot_ms": 0},  # empty slots
        {"horizon_ms": 1.5},  # not ms
    ],
)
def test_invalid_arguments_raise(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RecentEventIds(**kwargs)


# -- state ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [None, {}, {"wm": None}])  # no state yet: a new store
def test_from_empty_state(state: dict[str, Any] | None) -> None:
    ids = RecentEventIds.from_state(state, horizon_ms=60_000)
    assert ids.watermark_ms is None
    assert len(ids) == 0
    assert ids.to_state() == {"wm": None, "slot_ms": 60_000, "ids": {}}


def test_state_layout() -> None:
    ids = RecentEventIds(horizon_ms=60_000, slot_ms=10_000)
    ids.seen("a", 5_000)
    ids.seen("b", 12_000)
    ids.seen("c", 14_000)
    ids.seen("a", 15_000)  # refreshed: filed once, under its latest slot
    assert ids.to_state() == {"wm": 15_000, "slot_ms": 10_000, "ids": {"1": digest("b") + digest("c") + digest("a")}}


def test_from_state_with_a_shorter_horizon_forgets_at_once() -> None:
    ids = RecentEventIds(horizon_ms=600_000, slot_ms=10_000)
    ids.seen("a", 0)
    ids.seen("b", 300_000)
    state = orjson.loads(orjson.dumps(ids.to_state()))
    shorter = RecentEventIds.from_state(state, horizon_ms=60_000, slot_ms=10_000)
    assert len(shorter) == 1
    assert shorter.seen("a", 300_000) is False
    assert shorter.seen("b", 300_000) is True
    with pytest.raises(ValueError):
        RecentEventIds.from_state(state, horizon_ms=60_000, slot_ms=1_000)


def test_copy_pickle_and_params() -> None:
    for params in RecentEventIds._unit_test_params():
        ids = RecentEventIds(**params)
        ids.seen("a", 1_000)
        for clone in (copy.deepcopy(ids), pickle.loads(pickle.dumps(ids)), round_trip(ids)):
            assert clone.to_state() == ids.to_state()
            assert clone.seen("a", 1_000) is True


@pytest.mark.parametrize(("horizon_ms", "limit"), [(900_000, 10_500), (3_600_000, 40_000)])
def test_busy_store_state_is_small(horizon_ms: int, limit: int) -> None:
    # 2,000 arrivals and 2,000 departures an hour as single events, plus 300 transactions, for two hours
    ids = RecentEventIds(horizon_ms=horizon_ms)
    t0 = 1_767_225_600_000
    for i in range(2 * 4_300):
        ids.seen(f"store-7/{i:08d}", t0 + i * 3_600_000 // 4_300)
    assert abs(len(ids) - 4_300 * horizon_ms / 3_600_000) < 4_300 * 60_000 / 3_600_000 + 2  # within a slot
    assert len(orjson.dumps(ids.to_state())) < limit


def test_a_digest_straddling_two_remembered_ones_is_not_a_match() -> None:
    ids = RecentEventIds(horizon_ms=60_000, slot_ms=10_000)
    ids.seen("a", 1_000)
    ids.seen("b", 2_000)
    a, b = (bytes(ids._by_slot[0][i : i + 6]) for i in (0, 6))
    assert ids._find(a) == (0, 0) and ids._find(b) == (0, 6)
    assert ids._find(a[3:] + b[:3]) is None  # found by `find` at offset 3, between the two


def test_thousands_of_ids_at_once_match_brute_force_as_the_memory_grows_and_shrinks() -> None:
    # Busy, quiet, busy again: up to ~12,000 ids remembered at once, then a few hundred, then thousands; a third
    # of the events re-send an earlier id (at its own time or now). Checked at every event against the rule.
    rng = random.Random(7)
    horizon_ms, slot_ms = 1_200_000, 60_000
    ids = RecentEventIds(horizon_ms, slot_ms)
    last_seen: dict[str, int] = {}
    sent: list[tuple[str, int]] = []
    clock, watermark = 1_767_225_600_000, None
    for i in range(40_000):
        clock += 100 if i < 15_000 or i >= 30_000 else 10_000
        if sent and rng.random() < 0.3:
            event_id, ts_ms = rng.choice(sent[-15_000:])
            ts_ms = ts_ms if rng.random() < 0.5 else clock
        else:
            event_id, ts_ms = f"evt-{i}", clock
            sent.append((event_id, ts_ms))
        watermark = ts_ms if watermark is None else max(watermark, ts_ms)
        first_slot = (watermark - horizon_ms) // slot_ms
        if event_id in last_seen and last_seen[event_id] // slot_ms >= first_slot:
            last_seen[event_id] = max(last_seen[event_id], ts_ms)
            expected = True
        else:
            if ts_ms // slot_ms >= first_slot:
                last_seen[event_id] = ts_ms
            expected = False
        assert ids.seen(event_id, ts_ms) is expected, i
        if i % 10_000 == 9_999:
            ids = round_trip(ids)
            assert len(ids) == sum(1 for t in last_seen.values() if t // slot_ms >= first_slot)
