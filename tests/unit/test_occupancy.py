"""Occupancy and DailyReset: hand-worked sequences, DST days, brute force, lossless state."""

from __future__ import annotations

import copy
import datetime as dt
import pickle

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.kpis.occupancy import DailyReset, Occupancy

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def ms(text: str) -> int:
    """UTC epoch ms of an ISO-8601 time with offset."""
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def round_trip(occupancy: Occupancy, **config: str) -> Occupancy:
    return Occupancy.from_state(orjson.loads(orjson.dumps(occupancy.to_state())), **config)


# -- hand-worked ----------------------------------------------------------------------------------


def test_hand_worked_day_with_a_missed_entry() -> None:
    occupancy = Occupancy()  # UTC, reset at 04:00
    steps = [
        # ts,                       in, out, occupancy, drift
        ("2026-05-04T09:00:00Z", 2, 0, 2, 0),
        ("2026-05-04T09:01:00Z", 0, 1, 1, 0),
        ("2026-05-04T09:02:00Z", 0, 3, 0, 2),  # 3 out, 1 inside: clamps at 0, 2 people of drift
        ("2026-05-04T09:03:00Z", 0, 1, 0, 3),  # nobody inside, one more out
        ("2026-05-04T09:04:00Z", 4, 1, 3, 3),  # an interval report: net +3
        ("2026-05-04T09:05:00Z", 1, 5, 0, 4),  # net -4 from 3: 0, one more of drift
        ("2026-05-04T09:06:00Z", 0, 0, 0, 4),  # an empty interval changes nothing
        ("2026-05-04T18:00:00Z", 7, 2, 5, 4),
    ]
    for ts, entries, exits, expected, drift in steps:
        occupancy.update(ms(ts), entries, exits)
        assert (occupancy.get(), occupancy.drift) == (expected, drift), ts
    assert occupancy.reset_residual is None and occupancy.last_reset_ms is None
    assert occupancy.next_reset_ms == ms("2026-05-05T04:00:00Z")
    occupancy.update(ms("2026-05-05T04:00:00Z"), 1, 0)  # exactly at the reset: reset first, then count
    assert (occupancy.get(), occupancy.reset_residual, occupancy.drift) == (1, 5, 4)
    assert occupancy.last_reset_ms == ms("2026-05-05T04:00:00Z")
    assert occupancy.next_reset_ms == ms("2026-05-06T04:00:00Z")


def test_advance_resets_without_counts_and_late_events_are_not_counted() -> None:
    occupancy = Occupancy()
    occupancy.update(ms("2026-05-04T20:00:00Z"), 6, 1)
    occupancy.advance(ms("2026-05-05T03:59:59.999Z"))  # not yet
    assert occupancy.get() == 5
    occupancy.advance(ms("2026-05-05T04:00:30Z"))  # a heartbeat after the reset
    assert (occupancy.get(), occupancy.reset_residual) == (0, 5)
    occupancy.update(ms("2026-05-05T03:30:00Z"), 2, 0)  # late: belongs to the day already closed
    assert (occupancy.get(), occupancy.late) == (0, 1)
    occupancy.update(ms("2026-05-05T08:00:00Z"), 2, 0)
    occupancy.update(ms("2026-05-05T07:00:00Z"), 1, 0)  # out of order but after the reset: counted
    assert (occupancy.get(), occupancy.late) == (3, 1)


def test_days_without_events_reset_once_with_all_the_residual() -> None:
    occupancy = Occupancy()
    occupancy.update(ms("2026-05-04T20:00:00Z"), 4, 0)
    occupancy.update(ms("2026-05-08T10:00:00Z"), 1, 0)  # four resets passed; the first emptied the store
    assert (occupancy.get(), occupancy.reset_residual) == (1, 4)
    assert occupancy.last_reset_ms == ms("2026-05-08T04:00:00Z")
    assert occupancy.next_reset_ms == ms("2026-05-09T04:00:00Z")


def test_multi_door_interleaving_equals_summed_counts() -> None:
    # Door A reports intervals, door B per person; each minute has one report from each.
    door_a = [(0, 3, 0), (60_000, 2, 1), (120_000, 0, 2), (180_000, 1, 1)]
    door_b = [(30_000, 1, 0), (90_000, 0, 1), (150_000, 1, 0), (210_000, 0, 1)]
    base = ms("2026-05-04T10:00:00Z")
    interleaved = Occupancy()
    for ts, entries, exits in sorted(door_a + door_b):
        interleaved.update(base + ts, entries, exits)
    summed = Occupancy()
    for (ts, in_a, out_a), (_, in_b, out_b) in zip(door_a, door_b, strict=True):
        summed.update(base + ts, in_a + in_b, out_a + out_b)
    total_in = sum(e for _, e, _ in door_a + door_b)
    total_out = sum(x for _, _, x in door_a + door_b)
    assert interleaved.get() == summed.get() == total_in - total_out == 2
    assert interleaved.drift == summed.drift == 0


# -- DST ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "at", "day", "expected_utc"),
    [
        ("Europe/London", "04:00", "2026-03-28", "2026-03-28T04:00:00Z"),  # GMT
        ("Europe/London", "04:00", "2026-03-29", "2026-03-29T03:00:00Z"),  # clocks went forward at 01:00 UTC
        ("Europe/London", "04:00", "2026-10-25", "2026-10-25T04:00:00Z"),  # clocks went back at 01:00 UTC
        ("Europe/London", "01:30", "2026-03-29", "2026-03-29T01:00:00Z"),  # no 01:30: first instant after the gap
        ("Europe/London", "01:00", "2026-03-29", "2026-03-29T01:00:00Z"),  # the gap starts at 01:00: same
        ("Europe/London", "02:00", "2026-03-29", "2026-03-29T01:00:00Z"),  # 02:00 BST exists: the same instant
        ("Europe/London", "01:30", "2026-10-25", "2026-10-25T00:30:00Z"),  # 01:30 twice: the first (BST)
        ("Europe/London", "00:59:59", "2026-10-25", "2026-10-24T23:59:59Z"),  # just before the overlap
        ("America/New_York", "02:30", "2026-03-08", "2026-03-08T07:00:00Z"),  # 02:30 skipped: 03:00 EDT
        ("Australia/Lord_Howe", "02:15", "2026-10-04", "2026-10-03T15:30:00Z"),  # a 30-minute gap: 02:30 +11
        ("UTC", "04:00", "2026-03-29", "2026-03-29T04:00:00Z"),
    ],
)
def test_reset_instants_around_dst(tz: str, at: str, day: str, expected_utc: str) -> None:
    assert DailyReset(tz, at).instant_ms(dt.date.fromisoformat(day)) == ms(expected_utc)


@pytest.mark.parametrize("day", ["2026-03-29", "2026-10-25"])  # London's short and long days
def test_next_and_last_reset_around_a_dst_day(day: str) -> None:
    reset = DailyReset("Europe/London", "04:00")
    d = dt.date.fromisoformat(day)
    before, on, after = (reset.instant_ms(d + dt.timedelta(days=k)) for k in (-1, 0, 1))
    assert on - before == (23 if d.month == 3 else 25) * HOUR_MS  # the local day of the change is short or long
    assert after - on == 24 * HOUR_MS
    assert reset.next_after(on - 1) == on
    assert reset.next_after(on) == after  # strictly after
    assert reset.last_at_or_before(on) == on
    assert reset.last_at_or_before(on - 1) == before


def test_occupancy_reset_across_spring_forward() -> None:
    occupancy = Occupancy(tz="Europe/London")  # 04:00 local: 04:00 UTC on the 28th, 03:00 UTC on the 29th
    occupancy.update(ms("2026-03-28T17:00:00Z"), 5, 2)
    occupancy.update(ms("2026-03-29T02:59:59Z"), 0, 0)  # 03:59:59 BST: not yet
    assert (occupancy.get(), occupancy.reset_residual) == (3, None)
    occupancy.update(ms("2026-03-29T03:00:00Z"), 2, 0)  # 04:00 BST: reset, then count
    assert (occupancy.get(), occupancy.reset_residual) == (2, 3)
    assert occupancy.last_reset_ms == ms("2026-03-29T03:00:00Z")
    assert occupancy.next_reset_ms == ms("2026-03-30T03:00:00Z")


def test_occupancy_reset_across_fall_back() -> None:
    occupancy = Occupancy(tz="Europe/London", reset_at="01:30")  # a time that occurs twice on the 25th
    occupancy.update(ms("2026-10-24T18:00:00Z"), 4, 0)
    occupancy.update(ms("2026-10-25T00:30:00Z"), 1, 0)  # the first 01:30 (BST): reset, then count
    assert (occupancy.get(), occupancy.reset_residual) == (1, 4)
    occupancy.update(ms("2026-10-25T01:30:00Z"), 1, 0)  # the second 01:30 (GMT): no second reset
    assert (occupancy.get(), occupancy.reset_residual) == (2, 4)
    assert occupancy.next_reset_ms == ms("2026-10-26T01:30:00Z")


# -- invariants -----------------------------------------------------------------------------------

# (gap since the previous event in ms, entries, exits): events over up to a few days.
steps = st.lists(
    st.tuples(st.integers(0, 10 * HOUR_MS), st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=60
)


def utc_resets_between(after_ms: int, upto_ms: int) -> bool:
    """Whether a 04:00 UTC instant falls in (after_ms, upto_ms]."""
    first = (after_ms - 4 * HOUR_MS) // DAY_MS * DAY_MS + DAY_MS + 4 * HOUR_MS  # first 04:00 after after_ms
    return first <= upto_ms


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**12), steps)
def test_matches_clamped_recurrence_with_daily_resets(start_ms: int, events: list[tuple[int, int, int]]) -> None:
    occupancy = Occupancy()
    inside = drift = 0
    previous = None
    ts = start_ms
    for gap, entries, exits in events:
        ts += gap
        if previous is not None and utc_resets_between(previous, ts):
            inside = 0
        inside += entries - exits
        if inside < 0:
            drift -= inside
            inside = 0
        previous = ts
        occupancy.update(ts, entries, exits)
        assert (occupancy.get(), occupancy.drift) == (inside, drift)
        occupancy = round_trip(occupancy)  # every step through JSON, as a Faust table does


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5 * DAY_MS), st.integers(0, 9), st.integers(0, 9)), max_size=60),
    st.sampled_from(["UTC", "Europe/London", "America/New_York"]),
)
def test_never_negative_in_any_order(events: list[tuple[int, int, int]], tz: str) -> None:
    occupancy = Occupancy(tz=tz)
    for ts, entries, exits in events:
        occupancy.update(ts, entries, exits)
        assert occupancy.get() >= 0
        assert occupancy.drift >= 0


@given(st.lists(st.tuples(st.integers(0, 3 * DAY_MS), st.integers(0, 9), st.integers(0, 9)), max_size=30))
def test_round_trip_is_lossless(events: list[tuple[int, int, int]]) -> None:
    occupancy = Occupancy(tz="Europe/London", reset_at="01:30")
    for ts, entries, exits in events:
        occupancy.update(ts, entries, exits)
        restored = round_trip(occupancy, tz="Europe/London", reset_at="01:30")
        assert restored.to_state() == occupancy.to_state()


# -- shapes and errors ----------------------------------------------------------------------------


def test_unit_test_params_shared_checks() -> None:
    for params in Occupancy._unit_test_params():
        occupancy = Occupancy(**params)
        assert occupancy.get() == 0  # reading before data
        occupancy.update(ms("2026-05-04T10:00:00Z"), 3, 1)
        state = occupancy.to_state()
        for clone in (copy.deepcopy(occupancy), pickle.loads(pickle.dumps(occupancy)), round_trip(occupancy, **params)):
            assert clone.to_state() == state
        occupancy.get(), occupancy.summary()  # reading never mutates
        assert occupancy.to_state() == state
        assert len(orjson.dumps(state)) < 200
    for params in DailyReset._unit_test_params():
        reset = DailyReset(**params)
        assert pickle.loads(pickle.dumps(reset)).next_after(0) == reset.next_after(0)
    assert Occupancy.from_state(None).to_state() == Occupancy().to_state()


@pytest.mark.parametrize(
    ("tz", "at"),
    [
        ("Mars/Olympus_Mons", "04:00"),  # no such zone
        ("UTC", "25:00"),  # no such time
        ("UTC", "4 am"),  # not HH:MM
        ("UTC", dt.time(4, tzinfo=dt.UTC)),  # a wall-clock time carries no zone
    ],
)
def test_bad_reset_configuration_raises(tz: str, at: str | dt.time) -> None:
    with pytest.raises(ValueError):
        Occupancy(tz=tz, reset_at=at)


@pytest.mark.parametrize(("entries", "exits"), [(-1, 0), (0, -1)])  # counts are never negative
def test_negative_counts_raise(entries: int, exits: int) -> None:
    with pytest.raises(ValueError):
        Occupancy().update(0, entries, exits)
