"""Simulated stores, bank branches and telecom shops: deterministic event streams, no I/O.

Customers arrive as a non-homogeneous Poisson process whose rate follows the
store's local clock: a daily shape per vertical (retail lunch and evening peaks,
bank morning and lunch peaks, telecom afternoon and evening) times a weekday
factor (busier Saturdays in retail, banks closed on Sunday), and zero outside
opening hours. Arrival times are drawn by thinning[^1], which is exact for any
rate function, so the counts follow `arrival_rate_per_h` and a test can check
them against its integral.

Each arrival then produces the events of its vertical:

- retail: door counter in and out (after a dwell time), a till transaction for
  a fraction of visitors;
- bank: door counter in and out, and for most visitors a queue ticket through a
  first-come-first-served pool of counters: `issued`, then `abandoned` when the
  patience runs out first, else `called` and `served` or `no_show`;
- telecom: a Wi-Fi visit sensor (`arrive`, `leave` with `dwell_s`, the device's
  MAC address as `visitor_id`), a till transaction for a fraction of visitors,
  and `repair` queue tickets.

The counters open follow the store's roster (`StoreProfile.roster`, one count per
local hour of the week): a ticket is called by the first counter both free and open
at that moment (`counter-1` to `counter-n` when the roster says `n`); a counter
closing finishes its customer first, and the customers still waiting at closing
time are called by the last open hour's counters. `make_stores` staffs each hour
for a comfortable queue by the store's own arrival profile (`comfortable_roster`:
at most 85 % busy, 90 % called within 10 minutes by Erlang C), then understaffs on
purpose: one counter on its lunch break at 12:00-14:00 and one or two peak hours
short, so that queues build there (waits of several minutes, abandoned tickets, a
service level well under 100 %) and staffing advice has something to say, while
the other hours run smoothly. `understaffed` takes counters away from any store;
`rostered` gives a store the roster `make_stores` would (again after changing its
arrival rate).

Door counters either send one event per person (`direction`) or an interval
report every 60 s (`count_in`, `count_out`, `interval_s`); every sensor sends a
heartbeat every five minutes around opening hours. Anomalies (surge, drop,
stuck-at-zero counters) and malformed messages can be injected; each message
says how many valid and how many malformed events it holds, so tests know what
a decoder must accept and reject.

Time is a parameter (`start_ms`, `end_ms`), never the wall clock: the same
stores, seed and times give the same bytes.

Examples
--------
>>> stores = make_stores(3, seed=7)
>>> start_ms = 1_709_539_200_000  # 2024-03-04T08:00:00Z, a Monday
>>> messages = list(generate(stores, start_ms=start_ms, end_ms=start_ms + 6 * 3_600_000, seed=7))
>>> sorted({orjson.loads(m.payload)["kind"] for m in messages})
['door', 'heartbeat', 'pos', 'queue', 'visit']
>>> all(a.ts_ms <= b.ts_ms for a, b in zip(messages, messages[1:]))
True

References
----------
[^1]: Lewis, P. A. W. and Shedler, G. S. (1979). Simulation of nonhomogeneous Poisson
    processes by thinning. Naval Research Logistics Quarterly, 26(3), 403-413.

"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import heapq
import logging
import math
import random
import re
import zoneinfo
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from footfall.schemas.events import STORE_ID_PATTERN, VERTICALS

__all__ = [
    "ANOMALY_KINDS",
    "DEFAULT_REGIONS",
    "HEARTBEAT_MS",
    "LUNCH_HOURS",
    "MALFORMED_KINDS",
    "Anomaly",
    "Door",
    "Region",
    "SimMessage",
    "StoreProfile",
    "arrival_rate_per_h",
    "comfortable_roster",
    "daily_shape",
    "generate",
    "make_stores",
    "opening_periods_ms",
    "rostered",
    "take_events",
    "understaffed",
    "weekly_factor",
]

logger = logging.getLogger(__name__)

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
#: Every sensor sends a heartbeat this often (simulated time).
HEARTBEAT_MS = 300_000
#: Interval door counters report this often; `interval_s` of their reports.
REPORT_INTERVAL_MS = 60_000
#: Sensors wake this long before opening (heartbeats only).
WAKE_BEFORE_OPEN_MS = 15 * MINUTE_MS
#: Sensors keep reporting this long after closing (last customers leaving, staff).
REPORT_AFTER_CLOSE_MS = 60 * MINUTE_MS
#: The last customers are out this long after closing at the latest.
LAST_EXIT_AFTER_CLOSE_MS = 55 * MINUTE_MS
ANOMALY_KINDS = ("surge", "drop", "stuck_zero")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_STORE_ID = re.compile(STORE_ID_PATTERN)

# Daily shape per vertical: a baseline plus Gaussian bumps (centre_h, width_h, height), local hours.
_DAILY_SHAPES: dict[str, tuple[float, tuple[tuple[float, float, float], ...]]] = {
    "retail": (0.55, ((12.75, 1.0, 0.8), (17.75, 1.4, 1.0))),
    "bank": (0.45, ((9.75, 0.8, 0.9), (12.5, 0.8, 1.1), (16.25, 0.6, 0.3))),
    "telecom": (0.4, ((13.0, 1.5, 0.5), (17.5, 1.6, 1.1))),
}
# Weekday factors, Monday first.
_WEEKLY: dict[str, tuple[float, ...]] = {
    "retail": (0.85, 0.85, 0.9, 0.95, 1.1, 1.45, 0.8),
    "bank": (1.25, 1.0, 0.95, 1.0, 1.2, 0.8, 0.0),
    "telecom": (0.9, 0.9, 0.95, 1.0, 1.1, 1.3, 0.9),
}
# Queue services: name -> (share of tickets, ticket letter, median service s, lognormal sigma, mean patience s).
_BANK_SERVICES = {
    "teller": (0.75, "T", 180.0, 0.5, 900.0),
    "advice": (0.15, "A", 900.0, 0.4, 1800.0),
    "business": (0.1, "B", 600.0, 0.5, 1200.0),
}
_REPAIR = ("repair", 1.0, "R", 720.0, 0.5, 1500.0)
_BANK_TICKET_SHARE = 0.85
_TELECOM_REPAIR_SHARE = 0.1
_NO_SHOW_SHARE = 0.04
_LOYALTY_SHARE = 0.4
# A comfortable hour (`comfortable_roster`): counters at most this busy, and (Erlang C) this share
# of the customers called within this many seconds.
_COMFORT_UTILISATION = 0.85
_COMFORT_SL = 0.9
_COMFORT_ANSWER_S = 600.0
# At a short-staffed peak hour, the service level (Erlang C, same answer time) is under this.
_SHORT_SL = 0.6
#: Local hours (12:00-14:00) when one counter of a `make_stores` branch or shop is on its lunch break.
LUNCH_HOURS = (12, 13)


@dataclass(frozen=True, slots=True)
class Region:
    """Where stores are: a name for roll-ups, an IANA time zone and the till currency."""

    name: str
    timezone: str
    currency: str


DEFAULT_REGIONS: tuple[Region, ...] = (
    Region("paris", "Europe/Paris", "EUR"),
    Region("london", "Europe/London", "GBP"),
    Region("new-york", "America/New_York", "USD"),
    Region("auckland", "Pacific/Auckland", "NZD"),
)


@dataclass(frozen=True, slots=True)
class Door:
    """A door and its counter.

    Parameters
    ----------
    door_id, sensor_id
        As in door events.
    reporting
        `person`: one event per person with `direction`; `interval`: a report of
        `count_in`/`count_out` every 60 s.
    share
        Relative share of the store's traffic through this door.

    """

    door_id: str
    sensor_id: str
    reporting: str = "person"
    share: float = 1.0

    def __post_init__(self) -> None:
        if self.reporting not in ("person", "interval"):
            raise ValueError(f"door {self.door_id!r}: reporting must be 'person' or 'interval'")
        if not self.share > 0:
            raise ValueError(f"door {self.door_id!r}: share must be > 0")


@dataclass(frozen=True, slots=True)
class StoreProfile:
    """One simulated store, branch or shop.

    Parameters
    ----------
    store_id
        Event `store_id` and Kafka key, e.g. `retail-001`.
    vertical
        `retail`, `bank` or `telecom`.
    region
        Region name, for roll-ups.
    timezone
        IANA time zone of the opening hours and of the daily shape.
    opening_hours
        Seven entries, Monday first: `(open_h, close_h)` in local hours
        (`0 <= open_h < close_h <= 24`), or None when closed that day.
    base_rate_per_h
        Arrivals per hour where the daily shape and weekday factor are 1.
    doors
        Door counters (retail and bank); telecom shops count with `visit_sensor_id`.
    capacity
        Most people the store is meant to hold (for occupancy ratios; not enforced).
    visit_sensor_id
        Wi-Fi visit sensor of a telecom shop, None elsewhere.
    counters
        Service counters (bank) or repair desks (telecom) calling queue tickets:
        how many the store has.
    conversion
        Share of visitors who buy something (retail, telecom).
    tills
        Tills in use, for `till_id`.
    currency
        ISO 4217 code of till amounts.
    roster
        Counters open in each local hour of the week: seven rows, Monday first, of
        24 counts (hour 0 first), each at most `counters`; one row of 24 counts
        stands for every day alike. When the roster says `n`, `counter-1` to
        `counter-n` call tickets; a counter closing finishes its customer first,
        and the customers still waiting at closing time are called by the counters
        of the last open hour. Empty (the default): all `counters` are open all the
        time. `counters` may be left at 0 with a roster: it becomes the roster's
        largest count. `make_stores` gives each branch and shop the counters it
        needs for a comfortable hour (`comfortable_roster`), less one at lunch and
        at one or two of its peak hours; `understaffed` takes counters away.

    Examples
    --------
    >>> branch = StoreProfile("bank-009", "bank", "london", "Europe/London",
    ...                       ((9, 17),) * 5 + (None, None), 20.0, (Door("main", "cnt-1"),), 60,
    ...                       roster=(0,) * 9 + (3, 4, 3, 2, 2, 3, 3, 2) + (0,) * 7)
    >>> branch.counters, len(branch.roster), branch.roster[6][10]
    (4, 7, 4)
    >>> monday_noon = 1_709_553_600_000  # 2024-03-04T12:00:00Z = 12:00 in London
    >>> branch.counters_at(monday_noon), branch.counters_at(monday_noon - 2 * 3_600_000)
    (2, 4)

    """

    store_id: str
    vertical: str
    region: str
    timezone: str
    opening_hours: tuple[tuple[float, float] | None, ...]
    base_rate_per_h: float
    doors: tuple[Door, ...]
    capacity: int
    visit_sensor_id: str | None = None
    counters: int = 0
    conversion: float = 0.0
    tills: int = 1
    currency: str = "EUR"
    roster: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.roster:
            rows = tuple(tuple(row) for row in self.roster) if not isinstance(self.roster[0], int) else (
                (tuple(self.roster),) * 7)  # one day for every day
            if len(rows) != 7 or any(len(row) != 24 for row in rows):
                raise ValueError(f"{self.store_id}: roster needs 7 rows of 24 counts (or one row of 24)")
            if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for row in rows for n in row):
                raise ValueError(f"{self.store_id}: roster counts must be integers >= 0")
            most = max(max(row) for row in rows)
            if self.counters == 0:
                object.__setattr__(self, "counters", most)
            elif most > self.counters:
                raise ValueError(f"{self.store_id}: roster opens {most} counters, the store has {self.counters}")
            object.__setattr__(self, "roster", rows)
        if not _STORE_ID.fullmatch(self.store_id):
            raise ValueError(f"store_id {self.store_id!r} must match {STORE_ID_PATTERN}")
        if self.vertical not in VERTICALS:
            raise ValueError(f"{self.store_id}: vertical must be one of {', '.join(VERTICALS)}")
        zoneinfo.ZoneInfo(self.timezone)  # raises on an unknown zone
        if len(self.opening_hours) != 7:
            raise ValueError(f"{self.store_id}: opening_hours needs 7 entries, Monday first")
        for hours in self.opening_hours:
            if hours is not None and not 0 <= hours[0] < hours[1] <= 24:
                raise ValueError(f"{self.store_id}: opening hours {hours} must satisfy 0 <= open < close <= 24")
        if self.base_rate_per_h < 0:
            raise ValueError(f"{self.store_id}: base_rate_per_h must be >= 0")
        if self.vertical in ("bank", "telecom") and self.counters < 1:
            raise ValueError(f"{self.store_id}: a {self.vertical} store needs counters >= 1")
        if self.vertical == "telecom" and self.visit_sensor_id is None:
            raise ValueError(f"{self.store_id}: a telecom shop needs a visit_sensor_id")
        if not 0 <= self.conversion <= 1:
            raise ValueError(f"{self.store_id}: conversion must be in [0, 1]")

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def counters_at(self, ts_ms: int) -> int:
        """Counters open at instant `ts_ms` (UTC epoch ms) by the roster: `counters` without one."""
        if not self.roster:
            return self.counters
        local = _local(ts_ms, self.zone)
        return self.roster[local.weekday()][local.hour]

    @property
    def sensor_ids(self) -> tuple[str, ...]:
        """Every sensor that sends heartbeats."""
        ids = tuple(d.sensor_id for d in self.doors)
        return ids + ((self.visit_sensor_id,) if self.visit_sensor_id else ())


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An injected incident at one store during `[start_ms, end_ms)` (UTC epoch ms).

    Parameters
    ----------
    kind
        `surge` multiplies the arrival rate by `factor`, `drop` divides it by
        `factor`, `stuck_zero` makes the counting sensors report zeros (interval
        reports 0/0, per-person door and visit events suppressed) while their
        heartbeats go on.

    """

    store_id: str
    kind: str
    start_ms: int
    end_ms: int
    factor: float = 3.0

    def __post_init__(self) -> None:
        if self.kind not in ANOMALY_KINDS:
            raise ValueError(f"anomaly kind must be one of {', '.join(ANOMALY_KINDS)}, not {self.kind!r}")
        if self.end_ms <= self.start_ms:
            raise ValueError("anomaly end_ms must be after start_ms")
        if not self.factor > 0:
            raise ValueError("anomaly factor must be > 0")

    def covers(self, ts_ms: int) -> bool:
        return self.start_ms <= ts_ms < self.end_ms


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One Kafka message: key `store_id`, value `payload`, sent at simulated time `ts_ms`.

    `events` valid events and `malformed` invalid ones are inside: a decoder
    must return exactly `events` events and `malformed` rejects. Of the valid
    events, `duplicates` repeat an event already sent and `late` are too old
    to count (see `generate`'s `duplicate_fraction` and `late_fraction`).
    """

    store_id: str
    ts_ms: int
    payload: bytes
    events: int
    malformed: int
    duplicates: int = 0
    late: int = 0


# -- arrival rate ------------------------------------------------------------------------------


def daily_shape(vertical: str, hour: float) -> float:
    """Relative arrival rate of a vertical at local `hour` (0..24), before weekday factors.

    Examples
    --------
    >>> for hour in [8, 10, 12.75, 15, 17.75, 20]:
    ...     print(hour, round(daily_shape("retail", hour), 2))
    8 0.55
    10 0.57
    12.75 1.35
    15 0.76
    17.75 1.55
    20 0.82

    """
    baseline, bumps = _DAILY_SHAPES[vertical]
    return baseline + sum(height * math.exp(-0.5 * ((hour - centre) / width) ** 2) for centre, width, height in bumps)


def weekly_factor(vertical: str, weekday: int) -> float:
    """Weekday factor of a vertical (Monday = 0).

    Examples
    --------
    >>> for weekday in range(7):
    ...     print(weekday, weekly_factor("bank", weekday), weekly_factor("retail", weekday))
    0 1.25 0.85
    1 1.0 0.85
    2 0.95 0.9
    3 1.0 0.95
    4 1.2 1.1
    5 0.8 1.45
    6 0.0 0.8

    """
    return _WEEKLY[vertical][weekday]


@functools.cache
def _shape_bound(vertical: str) -> float:
    """An upper bound of `daily_shape` (baseline plus all bump heights)."""
    baseline, bumps = _DAILY_SHAPES[vertical]
    return baseline + sum(height for _, _, height in bumps)


@functools.cache
def _shape_max(vertical: str) -> float:
    return max(daily_shape(vertical, h / 100) for h in range(2401))


def _local(ts_ms: int, zone: dt.tzinfo) -> dt.datetime:
    return (_EPOCH + dt.timedelta(milliseconds=ts_ms)).astimezone(zone)


def _local_hour(local: dt.datetime) -> float:
    return local.hour + local.minute / 60 + (local.second + local.microsecond / 1e6) / 3600


def arrival_rate_per_h(store: StoreProfile, ts_ms: int, anomalies: Iterable[Anomaly] = ()) -> float:
    """Expected arrivals per hour at `store` at instant `ts_ms` (UTC epoch ms).

    `base_rate_per_h` times the daily shape at the local hour times the weekday
    factor, zero outside opening hours; surge anomalies of this store multiply
    it by their factor, drop anomalies divide it.

    Examples
    --------
    >>> shop = StoreProfile("retail-001", "retail", "paris", "Europe/Paris",
    ...                     ((9, 20),) * 6 + (None,), 100.0, (Door("main", "cnt-1"),), 200)
    >>> monday_utc = 1_709_510_400_000  # 2024-03-04T00:00:00Z; Paris is UTC+1
    >>> for hour_utc in [7, 8, 11, 16, 19]:
    ...     print(hour_utc, round(arrival_rate_per_h(shop, monday_utc + hour_utc * 3_600_000), 1))
    7 0.0
    8 46.8
    11 98.1
    16 120.4
    19 0.0
    >>> surge = Anomaly("retail-001", "surge", monday_utc + 11 * 3_600_000, monday_utc + 12 * 3_600_000, 2.0)
    >>> round(arrival_rate_per_h(shop, monday_utc + 11 * 3_600_000, [surge]), 1)
    196.2

    """
    local = _local(ts_ms, store.zone)
    hours = store.opening_hours[local.weekday()]
    if hours is None:
        return 0.0
    hour = _local_hour(local)
    if not hours[0] <= hour < hours[1]:
        return 0.0
    rate = store.base_rate_per_h * daily_shape(store.vertical, hour) * weekly_factor(store.vertical, local.weekday())
    for anomaly in anomalies:
        if anomaly.store_id == store.store_id and anomaly.covers(ts_ms):
            if anomaly.kind == "surge":
                rate *= anomaly.factor
            elif anomaly.kind == "drop":
                rate /= anomaly.factor
    return rate


def opening_periods_ms(store: StoreProfile, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """Opening periods `(open_ms, close_ms)` (UTC epoch ms) that overlap `[start_ms, end_ms)`, not clipped.

    Local opening times that do not exist or are ambiguous (daylight-saving
    changes) are read with `fold=0`.

    Examples
    --------
    >>> bank = StoreProfile("bank-002", "bank", "london", "Europe/London",
    ...                     ((9, 17),) * 5 + ((9, 12.5), None), 30.0, (Door("main", "cnt-1"),), 60, counters=4)
    >>> saturday = 1_711_756_800_000  # 2024-03-30T00:00:00Z; clocks go forward on Sunday the 31st
    >>> for open_ms, close_ms in opening_periods_ms(bank, saturday, saturday + 3 * 86_400_000):
    ...     print((open_ms - saturday) / 3_600_000, (close_ms - saturday) / 3_600_000)
    9.0 12.5
    56.0 64.0

    """
    zone = store.zone
    first = _local(start_ms, zone).date() - dt.timedelta(days=1)
    last = _local(end_ms, zone).date()
    periods = []
    day = first
    while day <= last:
        hours = store.opening_hours[day.weekday()]
        if hours is not None:
            midnight = dt.datetime.combine(day, dt.time(), tzinfo=zone)
            # Aware + timedelta is wall-clock arithmetic: 9.5 h after local midnight is 09:30 local.
            open_ms = _to_ms(midnight + dt.timedelta(hours=hours[0]))
            close_ms = _to_ms(midnight + dt.timedelta(hours=hours[1]))
            if close_ms > start_ms and open_ms < end_ms:
                periods.append((open_ms, close_ms))
        day += dt.timedelta(days=1)
    return periods


def _to_ms(moment: dt.datetime) -> int:
    return (moment.astimezone(dt.UTC) - _EPOCH) // dt.timedelta(milliseconds=1)


# -- counter rosters ---------------------------------------------------------------------------


def _queue_profile(vertical: str) -> tuple[float, float]:
    """(share of arrivals that take a ticket, mean service time in s) of a vertical's queue."""
    if vertical == "bank":
        mean_s = sum(share * median * math.exp(sigma**2 / 2) for share, _, median, sigma, _ in _BANK_SERVICES.values())
        return _BANK_TICKET_SHARE, mean_s
    if vertical == "telecom":
        _, _, _, median, sigma, _ = _REPAIR
        return _TELECOM_REPAIR_SHARE, median * math.exp(sigma**2 / 2)
    raise ValueError(f"a {vertical} store has no queue")


def _hourly_loads(store: StoreProfile) -> list[list[float | None]]:
    """Offered load (Erlangs) of the store's queue in each local hour of the week; None when closed all hour.

    The arrival rate at the busiest of 12 evenly spaced moments of the open part of the
    hour, times the ticket share, times the mean service time.
    """
    share, mean_s = _queue_profile(store.vertical)
    loads: list[list[float | None]] = []
    for weekday, hours in enumerate(store.opening_hours):
        factor = store.base_rate_per_h * weekly_factor(store.vertical, weekday) * share * mean_s / 3600
        row: list[float | None] = [None] * 24
        for hour in range(24):
            if hours is None:
                continue
            a, b = max(hour, hours[0]), min(hour + 1, hours[1])
            if a >= b:
                continue
            row[hour] = factor * max(daily_shape(store.vertical, a + (b - a) * (k + 0.5) / 12) for k in range(12))
        loads.append(row)
    return loads


def _erlang_c_service_level(load: float, agents: int, aht_s: float, answer_s: float) -> float:
    """Share of customers called within `answer_s` (Erlang C, M/M/agents); 0 when `agents <= load`."""
    if agents <= load:
        return 0.0
    b = 1.0
    for n in range(1, agents + 1):  # Erlang B by its recursion
        b = load * b / (n + load * b)
    c = agents * b / (agents - load * (1 - b))
    return 1 - c * math.exp(-(agents - load) * answer_s / aht_s)


def comfortable_roster(store: StoreProfile) -> tuple[tuple[int, ...], ...]:
    """Counters a branch or shop needs in each local hour of the week for a comfortable queue.

    From the store's own arrival profile (`arrival_rate_per_h`: base rate, daily
    shape, weekday factor), the share of arrivals that take a ticket and the mean
    service time give each hour's offered load `A` in Erlangs (at the hour's busiest
    moment: the rate at the busiest of 12 evenly spaced moments of its open part).
    The hour gets the fewest counters `n >= 1` that are at most 85 % busy
    (`A / n <= 0.85`) and, by Erlang C, call 90 % of the customers within 10 minutes;
    an hour the store is closed throughout gets 0.

    Examples
    --------
    >>> branch = StoreProfile("bank-009", "bank", "london", "Europe/London",
    ...                       ((9, 17),) * 5 + ((9, 12.5), None), 20.0, (Door("main", "cnt-1"),), 60, counters=9)
    >>> roster = comfortable_roster(branch)
    >>> roster[0][8:18]  # Monday 08:00-17:59
    (0, 4, 4, 4, 5, 4, 3, 3, 3, 0)
    >>> roster[5][8:14], sum(roster[6])  # Saturday morning; closed on Sunday
    ((0, 3, 3, 3, 4, 0), 0)

    """
    _, mean_s = _queue_profile(store.vertical)
    roster = []
    for row in _hourly_loads(store):
        counts = []
        for load in row:
            n = 0
            if load is not None:
                n = max(1, math.ceil(load / _COMFORT_UTILISATION))
                while _erlang_c_service_level(load, n, mean_s, _COMFORT_ANSWER_S) < _COMFORT_SL:
                    n += 1
            counts.append(n)
        roster.append(tuple(counts))
    return tuple(roster)


def understaffed(store: StoreProfile, hours: Iterable[int], by: int = 1,
                 weekdays: Iterable[int] = range(7)) -> StoreProfile:
    """`store` with `by` counters fewer open at local `hours` (0-23) of `weekdays` (Monday = 0).

    Starts from the store's roster, or from all its counters open all the time
    without one. An hour keeps at least one counter open when it had any.

    Examples
    --------
    >>> branch = StoreProfile("bank-009", "bank", "london", "Europe/London",
    ...                       ((9, 17),) * 5 + (None, None), 20.0, (Door("main", "cnt-1"),), 60, counters=3)
    >>> short = understaffed(branch, hours=[12, 13], by=1, weekdays=range(5))
    >>> short.counters, short.roster[0][11:15], short.roster[5][11:15]
    (3, (3, 2, 2, 3), (3, 3, 3, 3))
    >>> understaffed(short, hours=range(24), by=5).roster[0][11:15]
    (1, 1, 1, 1)

    """
    if by < 0:
        raise ValueError("by must be >= 0")
    rows = [list(row) for row in (store.roster or ((store.counters,) * 24,) * 7)]
    for weekday in weekdays:
        for hour in hours:
            if rows[weekday][hour] > 0:
                rows[weekday][hour] = max(1, rows[weekday][hour] - by)
    return replace(store, roster=tuple(tuple(row) for row in rows))


def rostered(store: StoreProfile, seed: int) -> StoreProfile:
    """A bank branch or telecom shop with the roster `make_stores` gives it, for its own arrival rate.

    The comfortable roster (`comfortable_roster`), one counter on its lunch break at
    `LUNCH_HOURS`, and one or two peak hours short: drawn (from `seed` and the store's
    id) among the three busiest hours of the day outside lunch (offered load summed
    over the week) that need two counters or more somewhere, where the store opens the
    most counters that leave Erlang C's share called within 10 minutes under 60 %
    (fewer than it needs, at least one). `counters` becomes the most a comfortable hour
    needs. Re-roster a store after changing its `base_rate_per_h`: its roster was
    sized for the old rate. A retail store comes back unchanged.

    Examples
    --------
    >>> bank = make_stores(2, seed=1)[1]
    >>> busier = rostered(replace(bank, base_rate_per_h=2 * bank.base_rate_per_h), seed=1)
    >>> bank.counters, busier.counters, busier.roster[0][8:18]
    (5, 9, (0, 8, 6, 6, 8, 7, 4, 5, 5, 0))

    """
    if store.vertical not in ("bank", "telecom"):
        return store  # no queue, no counters to roster
    rng = random.Random(f"footfall-roster:{seed}:{store.store_id}")
    loads = _hourly_loads(store)
    _, mean_s = _queue_profile(store.vertical)
    comfortable = comfortable_roster(store)
    busiest = sorted((h for h in range(24) if h not in LUNCH_HOURS and max(row[h] for row in comfortable) >= 2),
                     key=lambda h: (-sum(row[h] or 0.0 for row in loads), h))[:3]
    peaks = rng.sample(busiest, min(len(busiest), rng.choice((1, 2))))
    roster = [list(row) for row in understaffed(replace(store, counters=0, roster=comfortable), LUNCH_HOURS).roster]
    for weekday, row in enumerate(roster):
        for hour in peaks:
            load = loads[weekday][hour]
            if load is not None and row[hour] > 1:
                n = row[hour] - 1
                while n > 1 and _erlang_c_service_level(load, n, mean_s, _COMFORT_ANSWER_S) >= _SHORT_SL:
                    n -= 1
                row[hour] = n
    return replace(store, counters=max(map(max, comfortable)), roster=tuple(tuple(row) for row in roster))


# -- stores ------------------------------------------------------------------------------------


def make_stores(n: int, seed: int, regions: Sequence[Region] = DEFAULT_REGIONS) -> list[StoreProfile]:
    """`n` plausible stores of the three verticals in turn (retail, bank, telecom), from `seed`.

    Ids number the stores across verticals: `retail-001`, `bank-002`, `telecom-003`, ...
    Door counters alternate between per-person and 60 s interval reporting.

    Bank branches and telecom shops get a roster (`StoreProfile.roster`): in each
    local hour of the week the counters a comfortable hour needs by their own arrival
    profile (`comfortable_roster`), less one counter on its lunch break at 12:00-14:00
    (`LUNCH_HOURS`), and at one or two of the store's peak hours (drawn from its three
    busiest hours outside lunch) short-staffed: the most counters that leave Erlang
    C's share called within 10 minutes under 60 %. There queues build (waits of
    several minutes, abandoned tickets) while the other hours run smoothly. `counters`
    is the most counters a comfortable hour needs. The rosters are drawn from the
    seed and each store's id, apart from the other stores' draws.

    Examples
    --------
    >>> for store in make_stores(4, seed=1):
    ...     print(store.store_id, store.region, store.opening_hours[0], round(store.base_rate_per_h),
    ...           [d.reporting for d in store.doors], store.counters)
    retail-001 london (10, 21) 118 ['person'] 0
    bank-002 auckland (9, 17) 22 ['interval', 'person'] 5
    telecom-003 london (10, 20) 30 [] 3
    retail-004 new-york (9.5, 20) 63 ['interval', 'person', 'interval'] 0
    >>> bank = make_stores(2, seed=1)[1]
    >>> bank.roster[0][8:18]  # Monday 08:00-17:59 local: short at 10 and 11, a counter on break at 12 and 13
    (0, 5, 3, 3, 4, 4, 3, 3, 3, 0)
    >>> comfortable_roster(bank)[0][8:18]
    (0, 5, 5, 5, 5, 5, 3, 3, 3, 0)

    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not regions:
        raise ValueError("regions must not be empty")
    rng = random.Random(f"footfall-stores:{seed}")
    stores = []
    for i in range(n):
        vertical = VERTICALS[i % len(VERTICALS)]
        store_id = f"{vertical}-{i + 1:03d}"
        region = regions[rng.randrange(len(regions))]
        doors: tuple[Door, ...] = ()
        if vertical in ("retail", "bank"):
            n_doors = rng.choice((1, 2, 2, 3)) if vertical == "retail" else rng.choice((1, 2))
            names = ("main", "side", "car-park")
            doors = tuple(
                Door(names[k], f"cnt-{k + 1}", "person" if (i + k) % 2 == 0 else "interval",
                     share=1.0 if k == 0 else round(rng.uniform(0.2, 0.6), 2))
                for k in range(n_doors)
            )
        peak_factor = _shape_max(vertical) * max(_WEEKLY[vertical])
        if vertical == "retail":
            base = rng.uniform(60, 180)
            opening = rng.choice((9, 9.5, 10))
            closing = rng.choice((19, 20, 21))
            sunday = (11, 17) if rng.random() < 0.6 else None
            hours = ((opening, closing),) * 6 + (sunday,)
            capacity = _round_up(base * peak_factor * 0.3 * 1.6, 10)
            stores.append(StoreProfile(
                store_id, vertical, region.name, region.timezone, hours, round(base, 1), doors, capacity,
                conversion=round(rng.uniform(0.2, 0.35), 3), tills=1 + int(base // 60), currency=region.currency,
            ))
        elif vertical == "bank":
            base = rng.uniform(8, 25)
            weekday = (9, 17)
            thursday = (9, 18) if rng.random() < 0.5 else weekday
            saturday = (9, 12.5) if rng.random() < 0.5 else None
            hours = (weekday, weekday, weekday, thursday, weekday, saturday, None)
            stores.append(rostered(StoreProfile(
                store_id, vertical, region.name, region.timezone, hours, round(base, 1), doors,
                _round_up(base * peak_factor * 0.25 * 1.6, 10), counters=1, currency=region.currency,
            ), seed))
        else:
            base = rng.uniform(15, 40)
            sunday = (12, 18) if rng.random() < 0.7 else None
            hours = ((10, 20),) * 6 + (sunday,)
            stores.append(rostered(StoreProfile(
                store_id, vertical, region.name, region.timezone, hours, round(base, 1), doors,
                _round_up(base * peak_factor * 0.25 * 1.6, 10), visit_sensor_id="wifi-1",
                counters=1, conversion=round(rng.uniform(0.15, 0.3), 3), tills=2, currency=region.currency,
            ), seed))
    return stores


def _round_up(x: float, step: int) -> int:
    return max(step, step * math.ceil(x / step))


# -- per-store simulation ----------------------------------------------------------------------


def _iso_utc(ts_ms: int) -> str:
    return (_EPOCH + dt.timedelta(milliseconds=ts_ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_local(ts_ms: int, zone: dt.tzinfo) -> str:
    return _local(ts_ms, zone).isoformat(timespec="milliseconds")


def _mac(rng: random.Random) -> str:
    return ":".join(f"{b:02x}" for b in rng.getrandbits(48).to_bytes(6, "big"))


@dataclass
class _StoreSim:
    """The mutable state of one store while `generate` runs (internal)."""

    store: StoreProfile
    seed: int
    tag: str
    anomalies: tuple[Anomaly, ...]
    start_ms: int
    rng: random.Random = field(init=False)
    pending: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)
    seq: int = 0
    numbers: dict[str, int] = field(default_factory=dict)
    bins: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    free: list[int] = field(default_factory=list)  # per counter (index 0 = counter-1): free from this time
    slot: tuple[int, int, int] = (0, 0, 0)  # (start, end, counters open): the last local hour of the roster read
    phases: dict[str, int] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)
    visitors: list[str] = field(default_factory=list)
    door_cum: list[float] = field(init=False)
    rate_bound_per_h: float = field(init=False)
    raisers: tuple[tuple[Anomaly, float], ...] = field(init=False)
    stuck: tuple[Anomaly, ...] = field(init=False)

    def __post_init__(self) -> None:
        store = self.store
        self.rng = random.Random(f"footfall-sim:{self.seed}:{store.store_id}")
        for sensor in store.sensor_ids:
            self.phases[sensor] = self.rng.randrange(HEARTBEAT_MS)
            self.devices[sensor] = _mac(self.rng)
        self.bins = {d.door_id: {} for d in store.doors if d.reporting == "interval"}
        self.free = [0] * store.counters
        shares = [d.share for d in store.doors]
        total = sum(shares)
        self.door_cum = [sum(shares[: k + 1]) / total for k in range(len(shares))]
        self.rate_bound_per_h = store.base_rate_per_h * _shape_bound(store.vertical) * max(_WEEKLY[store.vertical])
        # Anomalies that can raise the rate, with the most they multiply it by.
        self.raisers = tuple(
            (a, a.factor if a.kind == "surge" else 1 / a.factor)
            for a in self.anomalies
            if (a.kind == "surge" and a.factor > 1) or (a.kind == "drop" and a.factor < 1)
        )
        self.stuck = tuple(a for a in self.anomalies if a.kind == "stuck_zero")

    # -- helpers

    def _is_stuck(self, ts_ms: int) -> bool:
        return any(a.covers(ts_ms) for a in self.stuck)

    def _next(self, name: str) -> int:
        self.numbers[name] = n = self.numbers.get(name, 0) + 1
        return n

    def _push(self, emit_ms: int, kind: str, ts: int | str, fields: dict[str, Any]) -> None:
        self.seq += 1
        store = self.store
        event = {
            "event_id": f"{store.store_id}-{self.tag}-{self.seq}",
            "store_id": store.store_id,
            "kind": kind,
            "ts": ts,
            "schema_version": 1,
            "region": store.region,
            "vertical": store.vertical,
            **fields,
        }
        heapq.heappush(self.pending, (emit_ms, self.seq, event))

    def _door(self) -> Door:
        u = self.rng.random()
        for door, edge in zip(self.store.doors, self.door_cum, strict=True):
            if u < edge:
                return door
        return self.store.doors[-1]

    def _pass_door(self, ts_ms: int, direction: str) -> None:
        door = self._door()
        if door.reporting == "interval":
            minute = ts_ms - ts_ms % REPORT_INTERVAL_MS
            counts = self.bins[door.door_id].setdefault(minute, [0, 0])
            counts[direction == "out"] += 1
        elif not self._is_stuck(ts_ms):
            self._push(ts_ms, "door", ts_ms, {"door_id": door.door_id, "sensor_id": door.sensor_id,
                                              "direction": direction})

    def _pos(self, ts_ms: int, amount: float, items: int) -> None:
        fields: dict[str, Any] = {
            "transaction_id": f"{self.tag}-{self._next('transaction')}",
            "amount": round(amount, 2),
            "items": items,
            "currency": self.store.currency,
            "till_id": f"till-{self.rng.randrange(self.store.tills) + 1}",
        }
        if self.rng.random() < _LOYALTY_SHARE:
            fields["customer_id"] = f"L{self.rng.randrange(10**9):09d}"
        self._push(ts_ms, "pos", _iso_local(ts_ms, self.store.zone), fields)

    def _open_at(self, ts_ms: int) -> tuple[int, int]:
        """(counters open at `ts_ms` by the roster, when that local hour ends)."""
        start, end, n = self.slot
        if not start <= ts_ms < end:
            local = _local(ts_ms, self.store.zone)
            n = self.store.roster[local.weekday()][local.hour]
            start = ts_ms - (local.minute * MINUTE_MS + local.second * 1000 + local.microsecond // 1000)
            end = start + HOUR_MS
            self.slot = (start, end, n)
        return n, end

    def _call_time(self, counter: int, ts_ms: int, close_ms: int) -> float:
        """First instant from `ts_ms` when `counter` (0 = counter-1) is open by the roster, or inf.

        From `close_ms` on, the counters of the store's last open hour call the customers still waiting.
        """
        if not self.store.roster:
            return ts_ms
        t = ts_ms
        while t < close_ms:
            n, end = self._open_at(t)
            if counter < n:
                return t
            t = end
        return max(t, close_ms) if counter < max(1, self._open_at(close_ms - 1)[0]) else math.inf

    def _ticket(self, ts_ms: int, close_ms: int, service: str, letter: str, median_s: float, sigma: float,
                patience_s: float) -> int:
        """Issue a ticket at `ts_ms`, run it through the counters; return when its customer leaves.

        The counters call in order of issue (first come, first served): this ticket goes to the
        counter that is first both free and open by the roster, the one free longest on a tie.
        """
        rng = self.rng
        ticket = f"{letter}{self._next('ticket:' + letter):04d}-{self.tag}"
        base = {"ticket_id": ticket, "service": service}
        self._push(ts_ms, "queue", _iso_utc(ts_ms), {"action": "issued", **base})
        free = self.free
        call_ms, _, counter = min(
            (self._call_time(k, max(ts_ms, free_ms), close_ms), free_ms, k) for k, free_ms in enumerate(free)
        )
        call_ms = int(call_ms)  # finite: counter-1 calls from closing time on at the latest
        wait_ms = call_ms - ts_ms
        patience_ms = int(rng.expovariate(1 / patience_s) * 1000)
        if wait_ms > patience_ms:
            gone_ms = ts_ms + patience_ms
            self._push(gone_ms, "queue", _iso_utc(gone_ms),
                       {"action": "abandoned", **base, "wait_s": round(patience_ms / 1000, 1)})
            return gone_ms + int(rng.uniform(10_000, 60_000))
        desk = {"counter": f"counter-{counter + 1}"}
        self._push(call_ms, "queue", _iso_utc(call_ms),
                   {"action": "called", **base, **desk, "wait_s": round(wait_ms / 1000, 1)})
        if wait_ms > 60_000 and rng.random() < _NO_SHOW_SHARE:  # gave up unseen while waiting
            done_ms = call_ms + 60_000
            self._push(done_ms, "queue", _iso_utc(done_ms), {"action": "no_show", **base, **desk})
            free[counter] = done_ms
            return ts_ms + int(wait_ms * rng.uniform(0.2, 0.9))
        service_ms = int(min(rng.lognormvariate(math.log(median_s), sigma), 4 * 3600) * 1000)
        done_ms = call_ms + service_ms
        self._push(done_ms, "queue", _iso_utc(done_ms), {
            "action": "served", **base, **desk,
            "wait_s": round(wait_ms / 1000, 1), "service_s": round(service_ms / 1000, 1),
        })
        free[counter] = done_ms + int(rng.uniform(5_000, 30_000))
        return done_ms + int(rng.uniform(20_000, 90_000))

    # -- one arrival per vertical

    def _arrive(self, ts_ms: int, close_ms: int) -> None:
        rng = self.rng
        store = self.store
        if store.vertical == "retail":
            self._pass_door(ts_ms, "in")
            dwell_ms = int(min(max(rng.lognormvariate(math.log(900), 0.6), 60), 3 * 3600) * 1000)
            exit_ms = min(ts_ms + dwell_ms, close_ms + LAST_EXIT_AFTER_CLOSE_MS)
            if rng.random() < store.conversion:
                pay_ms = ts_ms + int((exit_ms - ts_ms) * rng.uniform(0.6, 0.95))
                self._pos(pay_ms, rng.lognormvariate(math.log(25), 0.8), min(1 + int(rng.expovariate(1 / 1.8)), 40))
            self._pass_door(exit_ms, "out")
        elif store.vertical == "bank":
            self._pass_door(ts_ms, "in")
            if rng.random() < _BANK_TICKET_SHARE:
                u = rng.random()
                for service, (share, letter, median, sigma, patience) in _BANK_SERVICES.items():  # noqa: B007
                    u -= share
                    if u < 0:
                        break
                exit_ms = self._ticket(ts_ms, close_ms, service, letter, median, sigma, patience)
            else:
                exit_ms = ts_ms + int(rng.uniform(120_000, 480_000))
            self._pass_door(min(exit_ms, close_ms + LAST_EXIT_AFTER_CLOSE_MS), "out")
        else:
            visit_id = f"v-{self.tag}-{self._next('visit')}"
            if self.visitors and rng.random() < 0.15:
                visitor = self.visitors[rng.randrange(len(self.visitors))]  # a returning device
            else:
                visitor = _mac(rng)
                if len(self.visitors) < 5_000:
                    self.visitors.append(visitor)
            sensor = {"visit_id": visit_id, "visitor_id": visitor}
            if not self._is_stuck(ts_ms):
                self._push(ts_ms, "visit", _iso_utc(ts_ms), {"action": "arrive", **sensor})
            if rng.random() < _TELECOM_REPAIR_SHARE:
                service, _, letter, median, sigma, patience = _REPAIR
                exit_ms = self._ticket(ts_ms, close_ms, service, letter, median, sigma, patience)
            else:
                exit_ms = ts_ms + int(min(max(rng.lognormvariate(math.log(600), 0.6), 60), 2 * 3600) * 1000)
            exit_ms = min(exit_ms, close_ms + LAST_EXIT_AFTER_CLOSE_MS)
            if rng.random() < store.conversion:
                pay_ms = ts_ms + int((exit_ms - ts_ms) * rng.uniform(0.5, 0.95))
                amount = rng.lognormvariate(math.log(30), 0.6) if rng.random() < 0.7 else rng.lognormvariate(
                    math.log(400), 0.5)
                self._pos(pay_ms, amount, 1 + int(rng.expovariate(1 / 0.7)))
            if not self._is_stuck(exit_ms):
                self._push(exit_ms, "visit", _iso_utc(exit_ms),
                           {"action": "leave", **sensor, "dwell_s": round((exit_ms - ts_ms) / 1000, 1)})

    # -- one chunk of simulated time

    def advance(self, c0: int, c1: int) -> list[tuple[int, int, dict[str, Any]]]:
        """Simulate `[c0, c1)`; return the events sent in it as `(emit_ms, seq, event)`, in order."""
        store = self.store
        rng = self.rng
        periods = opening_periods_ms(store, c0 - 2 * HOUR_MS, c1 + HOUR_MS)
        # Arrivals by thinning: candidates at the bound rate, each kept with probability rate / bound.
        for open_ms, close_ms in periods:
            a, b = max(open_ms, c0), min(close_ms, c1)
            if a >= b:
                continue
            bound = self.rate_bound_per_h * math.prod(
                m for anomaly, m in self.raisers if anomaly.start_ms < b and anomaly.end_ms > a
            )
            if bound > 0:
                per_ms = bound / HOUR_MS
                t = float(a)
                while True:
                    t += rng.expovariate(per_ms)
                    if t >= b:
                        break
                    ts_ms = int(t)
                    if rng.random() * bound < arrival_rate_per_h(store, ts_ms, self.anomalies):
                        self._arrive(ts_ms, close_ms)
        for w0, w1 in _merged((o - WAKE_BEFORE_OPEN_MS, c + REPORT_AFTER_CLOSE_MS) for o, c in periods):
            self._reports(max(w0, c0), min(w1, c1), c1)
            self._heartbeats(max(w0, c0, self.start_ms), min(w1, c1))
        out = []
        pending = self.pending
        while pending and pending[0][0] < c1:
            out.append(heapq.heappop(pending))
        return out

    def _reports(self, w0: int, w1: int, c1: int) -> None:
        """Interval door reports sent in `(c0, c1]` for minutes in `[w0, w1)` (`w0 >= c0`).

        Each report covers the minute before it is sent.
        """
        if w1 <= w0 or not self.bins:
            return
        # The report for minute m is sent at m + 60 s: here those with m + 60 s in (c0, c1] and m in
        # the window. Chunks after the first start on a whole minute, so m >= c0 there.
        first = w0 - w0 % REPORT_INTERVAL_MS
        for door in self.store.doors:
            if door.reporting != "interval":
                continue
            bins = self.bins[door.door_id]
            minute = first
            while minute < w1 and minute + REPORT_INTERVAL_MS <= c1:
                counts = bins.pop(minute, None) or (0, 0)
                if self._is_stuck(minute):
                    counts = (0, 0)
                self._push(minute + REPORT_INTERVAL_MS, "door", minute, {
                    "door_id": door.door_id, "sensor_id": door.sensor_id,
                    "count_in": counts[0], "count_out": counts[1], "interval_s": REPORT_INTERVAL_MS // 1000,
                })
                minute += REPORT_INTERVAL_MS

    def _heartbeats(self, h0: int, h1: int) -> None:
        for sensor, phase in self.phases.items():
            k = -((phase - h0) // HEARTBEAT_MS)  # first k with phase + k * period >= h0
            ts_ms = phase + k * HEARTBEAT_MS
            while ts_ms < h1:
                status = "degraded" if self.rng.random() < 0.005 else "ok"
                self._push(ts_ms, "heartbeat", ts_ms,
                           {"sensor_id": sensor, "status": status, "device_id": self.devices[sensor]})
                ts_ms += HEARTBEAT_MS


def _merged(windows: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for w0, w1 in sorted(windows):
        if merged and w0 <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], w1)
        else:
            merged.append([w0, w1])
    return [(w0, w1) for w0, w1 in merged]


# -- malformed payloads ------------------------------------------------------------------------

#: The kinds of malformed input `generate` injects, in turn at random.
MALFORMED_KINDS = (
    "not_json", "array_of_non_objects", "nan_token", "not_utf8", "empty",
    "missing_field", "wrong_type", "negative_count", "huge_string", "future_ts", "ancient_ts",
    "unknown_kind", "bad_version", "conflicting_door",
)
_MESSAGE_LEVEL = frozenset(MALFORMED_KINDS[:5])
_REQUIRED = {
    "door": ("door_id", "sensor_id"), "visit": ("action",), "pos": ("transaction_id", "amount", "items"),
    "queue": ("action", "ticket_id", "service"), "heartbeat": ("sensor_id",),
}
_TEN_YEARS_MS = 10 * 365 * 86_400_000


def _malformed(rng: random.Random, base: dict[str, Any], event_id: str, ts_ms: int) -> tuple[bool, Any, int]:
    """A bad input derived from the valid event `base`: `(whole_message, payload, rejects)`.

    `whole_message` payloads are bytes that must travel alone; the others are
    JSON objects that may travel inside a batch, each rejected on its own.
    """
    kind = MALFORMED_KINDS[rng.randrange(len(MALFORMED_KINDS))]
    obj = dict(base, event_id=event_id)
    door = {
        "event_id": event_id, "store_id": base["store_id"], "kind": "door", "ts": ts_ms, "schema_version": 1,
        "door_id": "main", "sensor_id": "cnt-1", "count_in": 0, "count_out": 0, "interval_s": 60,
    }
    if kind == "not_json":
        text = orjson.dumps(obj)
        return True, text[: rng.randrange(1, len(text) - 1)], 1
    if kind == "array_of_non_objects":
        items = [rng.choice((1, -2.5, "door", None, True, [1, 2])) for _ in range(rng.randrange(1, 5))]
        return True, orjson.dumps(items), len(items)
    if kind == "nan_token":
        return True, orjson.dumps(obj)[:-1] + b',"measured":NaN}', 1
    if kind == "not_utf8":
        obj["zone"] = "caf\u00e9"
        return True, orjson.dumps(obj).decode("utf-8").encode("latin-1"), 1
    if kind == "empty":
        return True, b"", 1
    if kind == "missing_field":
        names = ("event_id", "store_id", "kind", "ts", "schema_version", *_REQUIRED[obj["kind"]])
        del obj[names[rng.randrange(len(names))]]
    elif kind == "wrong_type":
        name, value = rng.choice((("schema_version", "1"), ("ts", True), ("event_id", 12345), ("kind", 7)))
        obj[name] = value
    elif kind == "negative_count":
        obj = dict(door, count_in=-rng.randrange(1, 50))
    elif kind == "huge_string":
        obj["zone"] = "x" * 20_000
    elif kind == "future_ts":
        obj["ts"] = _iso_utc(ts_ms + _TEN_YEARS_MS)
    elif kind == "ancient_ts":
        obj["ts"] = "1969-07-20T20:17:40Z"
    elif kind == "unknown_kind":
        obj["kind"] = "teleport"
    elif kind == "bad_version":
        obj["schema_version"] = 2
    else:  # conflicting_door: one person and an interval report at once
        obj = dict(door, direction="in", count_in=1)
    return False, obj, 1


# -- the merged stream -------------------------------------------------------------------------


def _run_tag(seed: int, start_ms: int) -> str:
    """Short id of a run, in every event id, so two runs into one topic never share ids."""
    return hashlib.blake2b(f"{seed}:{start_ms}".encode(), digest_size=4).hexdigest()


def generate(
    stores: Sequence[StoreProfile],
    *,
    start_ms: int,
    end_ms: int | None = None,
    seed: int = 0,
    anomalies: Sequence[Anomaly] = (),
    malformed_fraction: float = 0.0,
    batch_size: int = 1,
    batch_linger_ms: int = 10_000,
    chunk_ms: int = HOUR_MS,
    duplicate_fraction: float = 0.0,
    late_fraction: float = 0.0,
    late_by_ms: int = 26 * HOUR_MS,
    reorder_fraction: float = 0.0,
    reorder_max_ms: int = 120_000,
) -> Iterator[SimMessage]:
    """Messages of all `stores` during `[start_ms, end_ms)`, in nondecreasing send time.

    Parameters
    ----------
    stores
        The stores, e.g. from `make_stores`.
    start_ms, end_ms
        Simulated time span, UTC epoch ms; `end_ms=None` runs forever (lazily).
        Events are dropped when sent at or after `end_ms`.
    seed
        Random seed; with the same stores and span, the same seed gives the same bytes.
    anomalies
        Incidents to inject (see `Anomaly`).
    malformed_fraction
        After each valid event, a malformed input follows with this probability;
        the kinds are `MALFORMED_KINDS`.
    batch_size
        1: one event per message (a JSON object). Above 1: each store's events
        travel as JSON arrays of up to `batch_size` events, sent when full or
        `batch_linger_ms` after their first event. Malformed inputs that are not
        JSON objects always travel alone.
    chunk_ms
        Simulated time handled per step; only memory and laziness depend on it.
    duplicate_fraction
        Each valid event is sent a second time, right after, with this probability
        (a sensor's retry): same `event_id`, a duplicate to drop.
    late_fraction, late_by_ms
        After each valid event, with this probability, a new event of the same store
        whose time is `late_by_ms` earlier (a buffer uploaded too late): past the
        restatement horizon (24 h by default; later data restates its closed bucket)
        and any grace period shorter than that, it must not count.
    reorder_fraction, reorder_max_ms
        Each valid event is held back, with this probability, by up to
        `reorder_max_ms` of send time (its time unchanged), so it arrives after later
        events: out of order, and within grace when `reorder_max_ms` is below it.

    Examples
    --------
    >>> shop = StoreProfile("retail-001", "retail", "london", "Europe/London",
    ...                     ((9, 20),) * 7, 120.0, (Door("main", "cnt-1"),), 200, conversion=0.3)
    >>> nine = 1_709_542_800_000  # 2024-03-04T09:00:00Z = 09:00 in London
    >>> for m in generate([shop], start_ms=nine, end_ms=nine + 180_000, seed=3):
    ...     event = orjson.loads(m.payload)
    ...     print(round((m.ts_ms - nine) / 1000, 1), event["kind"], event.get("direction") or event.get("status"))
    38.9 door in
    58.3 door in
    78.0 door in
    115.4 door in
    >>> batched = list(generate([shop], start_ms=nine, end_ms=nine + 1_800_000, seed=3, batch_size=5,
    ...                         batch_linger_ms=120_000, malformed_fraction=0.2))
    >>> sum(m.events for m in batched), sum(m.malformed for m in batched), len(batched)
    (70, 20, 24)

    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    for name, fraction in [("malformed_fraction", malformed_fraction), ("duplicate_fraction", duplicate_fraction),
                           ("late_fraction", late_fraction), ("reorder_fraction", reorder_fraction)]:
        if not 0 <= fraction <= 1:
            raise ValueError(f"{name} must be in [0, 1]")
    if late_by_ms <= 0 or reorder_max_ms < 0:
        raise ValueError("late_by_ms must be > 0 and reorder_max_ms >= 0")
    if end_ms is not None and end_ms <= start_ms:
        return
    ids = [s.store_id for s in stores]
    if len(set(ids)) != len(ids):
        raise ValueError("store ids must be unique")
    known = set(ids)
    for anomaly in anomalies:
        if anomaly.store_id not in known:
            raise ValueError(f"anomaly for unknown store {anomaly.store_id!r}")
    tag = _run_tag(seed, start_ms)
    sims = [
        _StoreSim(s, seed, tag, tuple(a for a in anomalies if a.store_id == s.store_id), start_ms) for s in stores
    ]
    items = _merged_items(sims, start_ms, end_ms, chunk_ms)
    if duplicate_fraction or late_fraction or reorder_fraction:
        items = _with_faults(items, random.Random(f"footfall-faults:{seed}"), tag, duplicate_fraction, late_fraction,
                             late_by_ms, reorder_fraction, reorder_max_ms)
    if malformed_fraction > 0:
        items = _with_malformed(items, random.Random(f"footfall-malformed:{seed}"), malformed_fraction, tag)
    if batch_size == 1:
        for emit_ms, store_id, whole, payload, bad, fault in items:
            if whole:
                yield SimMessage(store_id, emit_ms, payload, 0, bad)
            else:
                yield SimMessage(store_id, emit_ms, orjson.dumps(payload), 1 - bad, bad,
                                 int(fault == "duplicate"), int(fault == "late"))
    else:
        yield from _batched(items, batch_size, batch_linger_ms)


# An item: (emit_ms, store_id, whole_message, payload, malformed count, fault). `payload` is bytes when
# `whole_message`, else an event object (valid when the malformed count is 0); `fault` is None,
# "duplicate" or "late".
_Item = tuple[int, str, bool, Any, int, str | None]


def _merged_items(sims: list[_StoreSim], start_ms: int, end_ms: int | None, chunk_ms: int) -> Iterator[_Item]:
    c0 = start_ms
    while end_ms is None or c0 < end_ms:
        c1 = (c0 // chunk_ms + 1) * chunk_ms
        if end_ms is not None:
            c1 = min(c1, end_ms)
        chunk = []
        for index, sim in enumerate(sims):
            chunk.extend((emit_ms, index, seq, event) for emit_ms, seq, event in sim.advance(c0, c1))
        chunk.sort(key=lambda item: item[:3])
        for emit_ms, index, _, event in chunk:
            yield emit_ms, sims[index].store.store_id, False, event, 0, None
        c0 = c1


def _with_faults(
    items: Iterable[_Item], rng: random.Random, tag: str, duplicate_fraction: float, late_fraction: float,
    late_by_ms: int, reorder_fraction: float, reorder_max_ms: int,
) -> Iterator[_Item]:
    """Duplicates, late events and held-back events (see `generate`), in nondecreasing send time."""
    held: list[tuple[int, int, _Item]] = []  # (send at, sequence, item): a heap
    for n, item in enumerate(items, start=1):
        emit_ms, store_id, _, event, _, _ = item
        while held and held[0][0] <= emit_ms:
            yield heapq.heappop(held)[2]
        if rng.random() < reorder_fraction:
            delay = rng.randint(1, max(1, reorder_max_ms))
            heapq.heappush(held, (emit_ms + delay, n, (emit_ms + delay, *item[1:])))
        else:
            yield item
        if rng.random() < duplicate_fraction:
            yield emit_ms, store_id, False, dict(event), 0, "duplicate"
        if rng.random() < late_fraction:
            late = {**event, "event_id": f"{store_id}-{tag}-late{n}", "ts": _shift_ts(event["ts"], -late_by_ms)}
            yield emit_ms, store_id, False, late, 0, "late"
    while held:
        yield heapq.heappop(held)[2]


def _shift_ts(ts: int | str, delta_ms: int) -> int | str:
    """`ts` (epoch ms, or ISO-8601 with an offset) moved by `delta_ms`, in the same form."""
    if isinstance(ts, int):
        return ts + delta_ms
    moved = dt.datetime.fromisoformat(ts) + dt.timedelta(milliseconds=delta_ms)
    return moved.isoformat(timespec="milliseconds")


def _with_malformed(items: Iterable[_Item], rng: random.Random, fraction: float, tag: str) -> Iterator[_Item]:
    n = 0
    for item in items:
        yield item
        if rng.random() < fraction:
            n += 1
            emit_ms, store_id, _, event, _, _ = item
            whole, payload, bad = _malformed(rng, event, f"{store_id}-{tag}-m{n}", emit_ms)
            yield emit_ms, store_id, whole, payload, bad, None


def _batched(items: Iterable[_Item], batch_size: int, linger_ms: int) -> Iterator[SimMessage]:
    buffers: dict[str, list[tuple[Any, int, str | None]]] = {}
    generation: dict[str, int] = {}
    deadlines: deque[tuple[int, str, int]] = deque()

    def flush(store_id: str, ts_ms: int) -> SimMessage:
        batch = buffers.pop(store_id)
        generation[store_id] = generation.get(store_id, 0) + 1
        bad = sum(b for _, b, _ in batch)
        return SimMessage(store_id, ts_ms, orjson.dumps([obj for obj, _, _ in batch]), len(batch) - bad, bad,
                          sum(f == "duplicate" for _, _, f in batch), sum(f == "late" for _, _, f in batch))

    for emit_ms, store_id, whole, payload, bad, fault in items:
        while deadlines and deadlines[0][0] <= emit_ms:
            deadline, sid, gen = deadlines.popleft()
            if generation.get(sid, 0) == gen and sid in buffers:
                yield flush(sid, deadline)
        if whole:
            yield SimMessage(store_id, emit_ms, payload, 0, bad)
            continue
        buffer = buffers.get(store_id)
        if buffer is None:
            buffer = buffers[store_id] = []
            deadlines.append((emit_ms + linger_ms, store_id, generation.get(store_id, 0)))
        buffer.append((payload, bad, fault))
        if len(buffer) >= batch_size:
            yield flush(store_id, emit_ms)
    for deadline, sid, gen in deadlines:
        if generation.get(sid, 0) == gen and sid in buffers:
            yield flush(sid, deadline)


def take_events(messages: Iterable[SimMessage], max_events: int | None) -> Iterator[SimMessage]:
    """Messages until `max_events` valid events have been passed (the last message may overshoot in batches).

    Examples
    --------
    >>> msgs = [SimMessage("s", t, b"[]", n, 0) for t, n in [(1, 2), (2, 2), (3, 2)]]
    >>> for m in take_events(msgs, 3):
    ...     print(m.ts_ms, m.events)
    1 2
    2 2

    """
    if max_events is None:
        yield from messages
        return
    total = 0
    if max_events <= 0:
        return
    for message in messages:
        yield message
        total += message.events
        if total >= max_events:
            return
