"""Local calendar helpers against hand-worked UTC values, plus invariants over random instants.

The hand-worked values come from the zones' 2026 rules:

- Europe/London: GMT (+0) / BST (+1); forward on the last Sunday of March at 01:00 UTC
  (29 March), back on the last Sunday of October at 01:00 UTC (25 October).
- America/New_York: EST (-5) / EDT (-4); forward on the second Sunday of March at 02:00
  local (8 March, 07:00 UTC), back on the first Sunday of November at 02:00 EDT (1 November,
  06:00 UTC).
- Pacific/Auckland: NZST (+12) / NZDT (+13); back on the first Sunday of April at 03:00
  NZDT (5 April, 14:00 UTC the day before), forward on the last Sunday of September at
  02:00 NZST (27 September, 14:00 UTC the day before).
- America/Santiago: -4 / -3; forward on 6 September 2026 at 00:00 local (04:00 UTC):
  that day has no midnight.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.windows.localtime import (
    LocalDays,
    buckets_of_day,
    day_bounds_ms,
    hour_of_week,
    local_day,
    next_local_time_ms,
    wall_time_ms,
)

SETTINGS = settings(max_examples=200, deadline=None)
ZONES = ("Europe/London", "America/New_York", "Pacific/Auckland", "America/Santiago", "Asia/Kolkata", "UTC",
         "Australia/Lord_Howe", "Asia/Kathmandu")
H = 3_600_000
QUARTER = 900_000


def ms(iso: str) -> int:
    """UTC epoch ms of an ISO string with Z."""
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) * 1000


def iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def test_ms_helper_agrees_with_a_known_epoch() -> None:
    assert ms("2026-01-01T00:00:00Z") == 1_767_225_600_000  # as in schemas/events.py


# -- day bounds and buckets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "start", "end", "hours"),
    [
        # London, forward: midnight GMT to midnight BST
        ("Europe/London", dt.date(2026, 3, 29), "2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z", 23),
        # London, back: midnight BST to midnight GMT
        ("Europe/London", dt.date(2026, 10, 25), "2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z", 25),
        # London, the day before: plain 24 h
        ("Europe/London", dt.date(2026, 3, 28), "2026-03-28T00:00:00Z", "2026-03-29T00:00:00Z", 24),
        # London, summer: BST all day
        ("Europe/London", dt.date(2026, 7, 1), "2026-06-30T23:00:00Z", "2026-07-01T23:00:00Z", 24),
        # New York, forward: 00:00 EST (05:00Z) to 00:00 EDT (04:00Z)
        ("America/New_York", dt.date(2026, 3, 8), "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", 23),
        # New York, back: 00:00 EDT (04:00Z) to 00:00 EST (05:00Z)
        ("America/New_York", dt.date(2026, 11, 1), "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", 25),
        # Auckland, back: 00:00 NZDT (+13) to 00:00 NZST (+12)
        ("Pacific/Auckland", dt.date(2026, 4, 5), "2026-04-04T11:00:00Z", "2026-04-05T12:00:00Z", 25),
        # Auckland, forward: 00:00 NZST (+12) to 00:00 NZDT (+13)
        ("Pacific/Auckland", dt.date(2026, 9, 27), "2026-09-26T12:00:00Z", "2026-09-27T11:00:00Z", 23),
        # Santiago, forward at midnight: the day starts at 01:00 -03, the instant clocks jump
        ("America/Santiago", dt.date(2026, 9, 6), "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z", 23),
    ],
)
def test_day_bounds(tz: str, day: dt.date, start: str, end: str, hours: int) -> None:
    start_ms, end_ms = day_bounds_ms(day, tz)
    assert (iso(start_ms), iso(end_ms)) == (start, end)
    assert end_ms - start_ms == hours * H
    # 15-minute buckets tile the day: 4 per hour (92 on 23 h, 100 on 25 h)
    buckets = buckets_of_day(day, tz, QUARTER)
    assert len(buckets) == 4 * hours
    assert buckets[0] == start_ms
    assert buckets[-1] == end_ms - QUARTER
    assert buckets == list(range(start_ms, end_ms, QUARTER))


def test_day_bounds_accepts_a_tzinfo() -> None:
    assert day_bounds_ms(dt.date(2026, 3, 29), ZoneInfo("Europe/London")) == (
        ms("2026-03-29T00:00:00Z"),
        ms("2026-03-29T23:00:00Z"),
    )


def test_buckets_stick_out_where_the_offset_is_not_a_multiple() -> None:
    # Kolkata is UTC+05:30: its day 2026-01-01 runs 2025-12-31T18:30Z .. 2026-01-01T18:30Z.
    #   18:00Z        18:30Z                          18:00Z        18:30Z
    #   [---bucket----)...                        [---bucket----)
    #          [day starts                                 day ends)
    buckets = buckets_of_day(dt.date(2026, 1, 1), "Asia/Kolkata", H)
    assert iso(buckets[0]) == "2025-12-31T18:00:00Z"
    assert iso(buckets[-1]) == "2026-01-01T18:00:00Z"
    assert len(buckets) == 25
    # 15-minute buckets still tile it exactly
    assert len(buckets_of_day(dt.date(2026, 1, 1), "Asia/Kolkata", QUARTER)) == 96


def test_a_skipped_calendar_day_has_no_buckets() -> None:
    # Samoa moved across the date line: 2011-12-29 (UTC-10) was followed by 2011-12-31 (UTC+14).
    start_ms, end_ms = day_bounds_ms(dt.date(2011, 12, 30), "Pacific/Apia")
    assert start_ms == end_ms == ms("2011-12-30T10:00:00Z")
    assert buckets_of_day(dt.date(2011, 12, 30), "Pacific/Apia", QUARTER) == []
    assert local_day(start_ms - 1, "Pacific/Apia") == dt.date(2011, 12, 29)
    assert local_day(start_ms, "Pacific/Apia") == dt.date(2011, 12, 31)


def test_buckets_of_day_rejects_empty_buckets() -> None:
    with pytest.raises(ValueError):
        buckets_of_day(dt.date(2026, 1, 1), "UTC", 0)


# -- local day and hour of week -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "tz", "day", "how"),
    [
        ("2026-03-29T22:59:59.999Z", "Europe/London", dt.date(2026, 3, 29), 6 * 24 + 23),  # Sun 23:59 BST
        ("2026-03-29T23:00:00Z", "Europe/London", dt.date(2026, 3, 30), 0),  # Mon 00:00 BST
        ("2026-03-29T00:59:59.999Z", "Europe/London", dt.date(2026, 3, 29), 6 * 24 + 0),  # Sun 00:59 GMT
        ("2026-03-29T01:00:00Z", "Europe/London", dt.date(2026, 3, 29), 6 * 24 + 2),  # Sun 02:00 BST: no hour 1
        ("2026-10-25T00:30:00Z", "Europe/London", dt.date(2026, 10, 25), 6 * 24 + 1),  # Sun 01:30 BST
        ("2026-10-25T01:30:00Z", "Europe/London", dt.date(2026, 10, 25), 6 * 24 + 1),  # Sun 01:30 GMT: again
        ("2026-01-01T00:00:00Z", "America/New_York", dt.date(2025, 12, 31), 2 * 24 + 19),  # Wed 19:00 EST
        ("2026-01-01T00:00:00Z", "Pacific/Auckland", dt.date(2026, 1, 1), 3 * 24 + 13),  # Thu 13:00 NZDT
        ("2026-01-01T00:00:00Z", "Asia/Kathmandu", dt.date(2026, 1, 1), 3 * 24 + 5),  # Thu 05:45 +05:45
        ("1969-12-31T23:59:59.999Z", "UTC", dt.date(1969, 12, 31), 2 * 24 + 23),  # before the epoch: Wed 23:59
    ],
)
def test_local_day_and_hour_of_week(ts: str, tz: str, day: dt.date, how: int) -> None:
    ts_ms = ms(ts.replace(".999", "")) + (999 if ".999" in ts else 0)
    assert local_day(ts_ms, tz) == day
    assert hour_of_week(ts_ms, tz) == how


# -- wall-clock times -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "tz", "hh", "mm", "expected"),
    [
        # London 01:30 on 29 March does not exist (01:00 GMT -> 02:00 BST): the jump, 01:00Z
        (dt.date(2026, 3, 29), "Europe/London", 1, 30, "2026-03-29T01:00:00Z"),
        # London 01:00 on 29 March: the gap's first minute, same jump
        (dt.date(2026, 3, 29), "Europe/London", 1, 0, "2026-03-29T01:00:00Z"),
        # London 02:00 on 29 March: the first wall time after the gap, BST
        (dt.date(2026, 3, 29), "Europe/London", 2, 0, "2026-03-29T01:00:00Z"),
        # London 01:30 on 25 October occurs at 00:30Z (BST) and 01:30Z (GMT): the first
        (dt.date(2026, 10, 25), "Europe/London", 1, 30, "2026-10-25T00:30:00Z"),
        # New York 02:30 on 8 March does not exist: the jump at 07:00Z
        (dt.date(2026, 3, 8), "America/New_York", 2, 30, "2026-03-08T07:00:00Z"),
        # New York 01:30 on 1 November: 05:30Z (EDT) and 06:30Z (EST): the first
        (dt.date(2026, 11, 1), "America/New_York", 1, 30, "2026-11-01T05:30:00Z"),
        # Auckland 02:30 on 27 September does not exist (02:00 NZST -> 03:00 NZDT): 14:00Z the day before
        (dt.date(2026, 9, 27), "Pacific/Auckland", 2, 30, "2026-09-26T14:00:00Z"),
        # Auckland 02:30 on 5 April: 13:30Z (NZDT) and 14:30Z (NZST): the first
        (dt.date(2026, 4, 5), "Pacific/Auckland", 2, 30, "2026-04-04T13:30:00Z"),
        # Lord Howe moves by 30 minutes: 02:15 on 4 October 2026 is in the gap 02:00 -> 02:30
        (dt.date(2026, 10, 4), "Australia/Lord_Howe", 2, 15, "2026-10-03T15:30:00Z"),
        # an ordinary day
        (dt.date(2026, 6, 15), "Europe/London", 4, 0, "2026-06-15T03:00:00Z"),
    ],
)
def test_wall_time_ms(day: dt.date, tz: str, hh: int, mm: int, expected: str) -> None:
    assert iso(wall_time_ms(day, tz, hh, mm)) == expected


@pytest.mark.parametrize(
    ("ts", "tz", "hh", "mm", "expected"),
    [
        # a daily reset at 04:00 London: Saturday noon -> Sunday 04:00 BST
        ("2026-03-28T12:00:00Z", "Europe/London", 4, 0, "2026-03-29T03:00:00Z"),
        # exactly at the reset: the next one, a day later
        ("2026-03-29T03:00:00Z", "Europe/London", 4, 0, "2026-03-30T03:00:00Z"),
        # 1 ms before it: this one
        ("2026-03-29T02:59:59Z", "Europe/London", 4, 0, "2026-03-29T03:00:00Z"),
        # across the 25-hour day: 04:00 BST on Saturday, 04:00 GMT on Sunday
        ("2026-10-24T03:00:00Z", "Europe/London", 4, 0, "2026-10-25T04:00:00Z"),
        # 01:30 on the gap day: the jump
        ("2026-03-28T12:00:00Z", "Europe/London", 1, 30, "2026-03-29T01:00:00Z"),
        # 01:30 on the overlap day: the first...
        ("2026-10-24T12:00:00Z", "Europe/London", 1, 30, "2026-10-25T00:30:00Z"),
        # ...and from between the two occurrences, the next day's, not the second one
        ("2026-10-25T01:00:00Z", "Europe/London", 1, 30, "2026-10-26T01:30:00Z"),
        # New York 02:30 on the gap day
        ("2026-03-07T12:00:00Z", "America/New_York", 2, 30, "2026-03-08T07:00:00Z"),
        # Auckland 02:30, gap and overlap days
        ("2026-09-26T00:00:00Z", "Pacific/Auckland", 2, 30, "2026-09-26T14:00:00Z"),
        ("2026-04-04T00:00:00Z", "Pacific/Auckland", 2, 30, "2026-04-04T13:30:00Z"),
        # midnight that does not exist in Santiago: the day's first instant
        ("2026-09-05T12:00:00Z", "America/Santiago", 0, 0, "2026-09-06T04:00:00Z"),
        # Samoa's skipped day: 04:00 of 30 December 2011 resolves to the jump (31 December 00:00 +14)
        ("2011-12-29T22:00:00Z", "Pacific/Apia", 4, 0, "2011-12-30T10:00:00Z"),
    ],
)
def test_next_local_time_ms(ts: str, tz: str, hh: int, mm: int, expected: str) -> None:
    assert iso(next_local_time_ms(ms(ts), tz, hh, mm)) == expected


def test_wall_time_rejects_impossible_times() -> None:
    with pytest.raises(ValueError):
        wall_time_ms(dt.date(2026, 1, 1), "UTC", 24, 0)
    with pytest.raises(ValueError):
        next_local_time_ms(0, "UTC", 4, 60)


# -- invariants ------------------------------------------------------------------------------------------

instants = st.integers(ms("2000-01-01T00:00:00Z"), ms("2040-01-01T00:00:00Z"))


@SETTINGS
@given(instants, st.sampled_from(ZONES))
def test_local_days_partition_time(ts_ms: int, tz: str) -> None:
    day = local_day(ts_ms, tz)
    start_ms, end_ms = day_bounds_ms(day, tz)
    assert start_ms <= ts_ms < end_ms
    assert local_day(start_ms, tz) == day
    assert local_day(end_ms - 1, tz) == day
    assert day_bounds_ms(day + dt.timedelta(days=1), tz)[0] == end_ms  # days abut
    assert 22 * H <= end_ms - start_ms <= 26 * H
    buckets = buckets_of_day(day, tz, QUARTER)
    assert buckets[0] <= start_ms < buckets[0] + QUARTER
    assert buckets[-1] < end_ms <= buckets[-1] + QUARTER
    assert 0 <= hour_of_week(ts_ms, tz) < 168


@SETTINGS
@given(instants, st.sampled_from(ZONES), st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
def test_next_local_time_is_the_next_matching_instant(ts_ms: int, tz: str, hh: int, mm: int) -> None:
    nxt = next_local_time_ms(ts_ms, tz, hh, mm)
    assert ts_ms < nxt <= ts_ms + 2 * 24 * H
    zone = ZoneInfo(tz)
    wall = dt.datetime.fromtimestamp(nxt / 1000, zone)
    if (wall.hour, wall.minute) != (hh, mm):
        # only when hh:mm was in a gap: one ms earlier the clock read before hh:mm
        before = dt.datetime.fromtimestamp((nxt - 1) / 1000, zone).replace(tzinfo=None)
        assert before.time() < dt.time(hh, mm) < wall.replace(tzinfo=None).time() or before.date() < wall.date()
    # it is that local day's resolved hh:mm (so not a second occurrence)
    day = local_day(nxt, tz)
    assert nxt == wall_time_ms(day, tz, hh, mm)


@pytest.mark.parametrize("tz", ["Europe/London", "America/New_York", "Pacific/Auckland", "America/Santiago",
                                "Pacific/Apia", "Asia/Kolkata", "UTC"])
def test_local_days_give_the_date_local_day_gives_in_time_order_and_out_of_it(tz: str) -> None:
    # Pacific/Apia skipped 30 December 2011 whole; the others change their offsets in 2026.
    start = 1_293_840_000_000 if tz == "Pacific/Apia" else 1_767_225_600_000  # 2011-01-01Z / 2026-01-01Z
    rng = random.Random(tz)
    days = LocalDays(tz)
    ts = start
    for _ in range(20_000):
        # Mostly forward by up to an hour (a store's events), now and then a jump back or far ahead.
        # Some 6 years in all, through every change of offset and Apia's skipped day.
        ts += rng.choice([rng.randint(0, 3_600_000)] * 8 + [-rng.randint(0, 86_400_000),
                                                              rng.randint(0, 3 * 86_400_000)])
        assert days.iso(ts) == dt.datetime.fromtimestamp(ts / 1000, ZoneInfo(tz)).date().isoformat(), ts
    # Each midnight and the millisecond either side, in order: the remembered span ends exactly there.
    days = LocalDays(tz)
    day = dt.datetime.fromtimestamp(start / 1000, ZoneInfo(tz)).date()
    for _ in range(800):
        midnight = day_bounds_ms(day, tz)[1]
        for ts in (midnight - 1, midnight, midnight + 1):
            assert days.iso(ts) == dt.datetime.fromtimestamp(ts / 1000, ZoneInfo(tz)).date().isoformat(), ts
        day += dt.timedelta(days=1)
