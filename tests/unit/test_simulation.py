"""The simulator: deterministic, ordered, schema-valid, and its arrivals follow its own rate function."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import zoneinfo
from collections import Counter
from collections.abc import Iterable

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from footfall.schemas import Limits, decode_message
from footfall.scripts.simulation import (
    Anomaly,
    Door,
    SimMessage,
    StoreProfile,
    arrival_rate_per_h,
    comfortable_roster,
    generate,
    make_stores,
    opening_periods_ms,
    rostered,
    take_events,
    understaffed,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MONDAY = 1_709_510_400_000  # 2024-03-04T00:00:00Z
LIMITS = Limits(min_ts_ms=0, max_future_ms=DAY_MS)

RETAIL = StoreProfile(
    "retail-001", "retail", "london", "Europe/London", ((9, 20),) * 6 + ((11, 17),), 90.0,
    (Door("main", "cnt-1", "person"), Door("side", "cnt-2", "interval", share=0.5)), 150, conversion=0.3,
    tills=2, currency="GBP",
)
BANK = StoreProfile(
    "bank-002", "bank", "london", "Europe/London", ((9, 17),) * 5 + ((9, 12.5), None), 30.0,
    (Door("main", "cnt-1", "interval"),), 40, counters=4, currency="GBP",
)
TELECOM = StoreProfile(
    "telecom-003", "telecom", "paris", "Europe/Paris", ((10, 20),) * 6 + (None,), 40.0, (), 40,
    visit_sensor_id="wifi-1", counters=2, conversion=0.2,
)


def events_of(messages: Iterable[SimMessage]) -> list[dict]:
    """The valid event objects of messages without malformed content, flattened out of batches."""
    events = []
    for m in messages:
        assert m.malformed == 0
        doc = orjson.loads(m.payload)
        events.extend(doc if isinstance(doc, list) else [doc])
    return events


def ts_ms(event: dict) -> int:
    ts = event["ts"]
    if isinstance(ts, int):
        return ts
    return int(dt.datetime.fromisoformat(ts).timestamp() * 1000)


def arrivals(events: Iterable[dict], store_id: str) -> list[tuple[int, int]]:
    """(time, people) of each counted arrival: door ins (per person or interval) and visit arrivals."""
    found = []
    for e in events:
        if e["store_id"] != store_id:
            continue
        if e["kind"] == "door":
            n = int(e.get("direction") == "in") if "direction" in e else e["count_in"]
            if n:
                found.append((ts_ms(e), n))
        elif e["kind"] == "visit" and e["action"] == "arrive":
            found.append((ts_ms(e), 1))
    return found


def integral(store: StoreProfile, start_ms: int, end_ms: int, anomalies=(), step_ms: int = 60_000) -> float:
    """Expected arrivals in [start_ms, end_ms): midpoint rule on the rate, one evaluation per minute."""
    return sum(
        arrival_rate_per_h(store, t + step_ms // 2, anomalies) * step_ms / HOUR_MS
        for t in range(start_ms, end_ms, step_ms)
    )


def within_poisson(observed: int, expected: float, sigmas: float = 4.0) -> bool:
    return abs(observed - expected) <= sigmas * math.sqrt(max(expected, 1.0)) + 1


# -- determinism and order ---------------------------------------------------------------------


def test_same_seed_same_bytes_and_other_seed_other_bytes():
    stores = make_stores(6, seed=3)
    kwargs = dict(start_ms=MONDAY, end_ms=MONDAY + 12 * HOUR_MS, malformed_fraction=0.02, batch_size=4)
    first = list(generate(stores, seed=3, **kwargs))
    again = list(generate(make_stores(6, seed=3), seed=3, **kwargs))
    other = list(generate(stores, seed=4, **kwargs))
    assert first == again
    assert [m.payload for m in first] != [m.payload for m in other]
    assert make_stores(6, seed=3) != make_stores(6, seed=4)


def test_make_stores_gives_all_verticals_with_numbered_ids():
    stores = make_stores(9, seed=1)
    assert [s.store_id.rsplit("-", 1)[1] for s in stores] == [f"{i:03d}" for i in range(1, 10)]
    assert Counter(s.vertical for s in stores) == {"retail": 3, "bank": 3, "telecom": 3}
    for s in stores:
        assert s.store_id.startswith(s.vertical)
        if s.vertical == "bank":
            assert s.opening_hours[6] is None  # closed on Sunday
        zoneinfo.ZoneInfo(s.timezone)
    reporting = {d.reporting for s in stores for d in s.doors}
    assert reporting == {"person", "interval"}


def test_messages_are_in_time_order_and_never_ahead_of_their_send_time():
    messages = list(generate(make_stores(9, seed=5), start_ms=MONDAY, end_ms=MONDAY + DAY_MS, seed=5, batch_size=3))
    assert all(a.ts_ms <= b.ts_ms for a, b in itertools.pairwise(messages))
    for m in messages:
        for e in events_of([m]):
            assert ts_ms(e) <= m.ts_ms, (m.store_id, e)
            assert e["store_id"] == m.store_id


def test_event_ids_are_unique_across_stores_and_runs():
    stores = make_stores(6, seed=2)
    run_a = events_of(generate(stores, start_ms=MONDAY, end_ms=MONDAY + DAY_MS, seed=2))
    run_b = events_of(generate(stores, start_ms=MONDAY + DAY_MS, end_ms=MONDAY + 2 * DAY_MS, seed=2))
    ids = [e["event_id"] for e in run_a + run_b]
    assert len(ids) == len(set(ids))


# -- schema validity ---------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 8])
def test_valid_messages_decode_and_malformed_ones_are_rejected_as_declared(batch_size):
    end_ms = MONDAY + DAY_MS
    messages = list(generate(make_stores(9, seed=8), start_ms=MONDAY, end_ms=end_ms, seed=8,
                             malformed_fraction=0.05, batch_size=batch_size))
    reasons: Counter[str] = Counter()
    declared_bad = rejected = 0
    for m in messages:
        decoded = decode_message(m.payload, now_ms=end_ms + HOUR_MS, limits=LIMITS)
        assert len(decoded.events) == m.events, m
        assert len(decoded.rejects) == m.malformed, (m, decoded.rejects)
        if m.malformed:
            assert decoded.rejects
        assert all(e.store_id == m.store_id for e in decoded.events)
        declared_bad += m.malformed
        rejected += len(decoded.rejects)
        reasons.update(r.reason for r in decoded.rejects)
    assert rejected == declared_bad > 0
    # A variety of faults, not one kind repeated.
    assert {"not_json", "not_utf8", "not_an_object", "missing_field", "wrong_type", "out_of_range",
            "too_large", "bad_timestamp", "conflicting_fields", "empty"} <= set(reasons)


def test_every_kind_of_every_vertical_is_sent():
    events = events_of(generate([RETAIL, BANK, TELECOM], start_ms=MONDAY, end_ms=MONDAY + DAY_MS, seed=1))
    kinds = {(e["vertical"], e["kind"]) for e in events}
    assert kinds == {
        ("retail", "door"), ("retail", "pos"), ("retail", "heartbeat"),
        ("bank", "door"), ("bank", "queue"), ("bank", "heartbeat"),
        ("telecom", "visit"), ("telecom", "pos"), ("telecom", "queue"), ("telecom", "heartbeat"),
    }
    actions = {(e["service"], e["action"]) for e in events if e["kind"] == "queue"}
    assert {("teller", "issued"), ("teller", "called"), ("teller", "served"), ("repair", "served")} <= actions
    leaves = [e for e in events if e["kind"] == "visit" and e["action"] == "leave"]
    assert leaves and all(e["dwell_s"] > 0 and ":" in e["visitor_id"] for e in leaves)


# -- arrivals follow the rate ------------------------------------------------------------------


@pytest.mark.parametrize("store", [RETAIL, BANK, TELECOM], ids=lambda s: s.vertical)
def test_arrivals_match_the_integral_of_the_rate_per_local_hour(store):
    # Three weeks over the March 2024 clock change (31 March in London and Paris); ends at a
    # midnight, when every store has been closed for hours, so every arrival is reported.
    start_ms = 1_710_720_000_000  # 2024-03-18T00:00:00Z
    end_ms = start_ms + 21 * DAY_MS
    events = events_of(generate([store], start_ms=start_ms, end_ms=end_ms, seed=11))
    zone = zoneinfo.ZoneInfo(store.timezone)
    observed: Counter[int] = Counter()
    for t, n in arrivals(events, store.store_id):
        observed[dt.datetime.fromtimestamp(t / 1000, zone).hour] += n
    expected: Counter[int] = Counter()
    for t in range(start_ms, end_ms, 60_000):
        hour = dt.datetime.fromtimestamp(t / 1000, zone).hour
        expected[hour] += arrival_rate_per_h(store, t + 30_000) / 60
    total_expected = sum(expected.values())
    assert total_expected > 1000
    assert within_poisson(sum(observed.values()), total_expected)
    for hour in range(24):
        # Five sigmas per hour: 24 comparisons per store must not fail by chance.
        assert within_poisson(observed[hour], expected[hour], sigmas=5.0), (hour, observed[hour], expected[hour])


def test_no_arrivals_while_closed():
    start_ms = MONDAY
    events = events_of(generate([RETAIL, BANK, TELECOM], start_ms=start_ms, end_ms=start_ms + 7 * DAY_MS, seed=4))
    stores = {s.store_id: s for s in (RETAIL, BANK, TELECOM)}
    for store_id, store in stores.items():
        found = arrivals(events, store_id)
        assert found
        for t, _ in found:
            # An interval report covers [t, t + 60 s): someone came in during it, so it was open then.
            assert arrival_rate_per_h(store, t) > 0 or arrival_rate_per_h(store, t + 59_999) > 0, (store_id, t)
    sunday = start_ms + 6 * DAY_MS
    assert not [e for e in events if e["store_id"] == "bank-002" and sunday <= ts_ms(e) < sunday + DAY_MS]


@pytest.mark.parametrize("kind, factor", [("surge", 3.0), ("drop", 4.0)])
def test_rate_anomalies_scale_arrivals_in_their_window(kind, factor):
    # 11:00-15:00 London on five weekdays: one anomaly per day.
    days = [MONDAY + d * DAY_MS for d in range(5)]
    anomalies = [Anomaly("retail-001", kind, d + 11 * HOUR_MS, d + 15 * HOUR_MS, factor) for d in days]
    events = events_of(generate([RETAIL], start_ms=MONDAY, end_ms=MONDAY + 5 * DAY_MS, seed=6, anomalies=anomalies))
    found = arrivals(events, "retail-001")
    inside = sum(n for t, n in found if any(a.covers(t) for a in anomalies))
    plain = sum(integral(RETAIL, a.start_ms, a.end_ms) for a in anomalies)
    scaled = sum(integral(RETAIL, a.start_ms, a.end_ms, anomalies) for a in anomalies)
    assert scaled == pytest.approx(plain * (factor if kind == "surge" else 1 / factor))
    assert within_poisson(inside, scaled)
    outside = sum(n for t, n in found if not any(a.covers(t) for a in anomalies))
    assert within_poisson(outside, integral(RETAIL, MONDAY, MONDAY + 5 * DAY_MS) - plain)


def test_stuck_zero_counts_nothing_but_heartbeats_go_on():
    stuck = Anomaly("retail-001", "stuck_zero", MONDAY + 10 * HOUR_MS, MONDAY + 13 * HOUR_MS)
    dark = Anomaly("telecom-003", "stuck_zero", MONDAY + 10 * HOUR_MS, MONDAY + 13 * HOUR_MS)
    events = events_of(generate([RETAIL, TELECOM], start_ms=MONDAY, end_ms=MONDAY + DAY_MS, seed=9,
                                anomalies=[stuck, dark]))
    inside = [e for e in events if stuck.covers(ts_ms(e))]
    door = [e for e in inside if e["kind"] == "door"]
    assert door, "interval counters keep reporting"
    assert all("direction" not in e and e["count_in"] == 0 and e["count_out"] == 0 for e in door)
    assert len(door) == 3 * 60  # one 0/0 report a minute from the interval door
    beats = Counter((e["store_id"], e["sensor_id"]) for e in inside if e["kind"] == "heartbeat")
    # Three hours, one heartbeat per sensor every five minutes.
    assert beats == {("retail-001", "cnt-1"): 36, ("retail-001", "cnt-2"): 36, ("telecom-003", "wifi-1"): 36}
    assert not [e for e in inside if e["kind"] == "visit"]
    assert [e for e in inside if e["kind"] == "pos"], "tills do not depend on the counters"
    # After the fault, people are counted again.
    after = [n for t, n in arrivals(events, "retail-001") if stuck.end_ms <= t < stuck.end_ms + 3 * HOUR_MS]
    assert sum(after) > 50


# -- invariants --------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    batch_size=st.integers(2, 40),
    linger_ms=st.integers(0, 600_000),
    start_h=st.integers(0, 7 * 24),
)
def test_batching_only_groups_what_single_messages_carry(seed, batch_size, linger_ms, start_h):
    stores = [RETAIL, BANK, TELECOM]
    start_ms = MONDAY + start_h * HOUR_MS
    common = dict(start_ms=start_ms, end_ms=start_ms + 4 * HOUR_MS, seed=seed, malformed_fraction=0.02)
    single = list(generate(stores, **common))
    batched = list(generate(stores, **common, batch_size=batch_size, batch_linger_ms=linger_ms))

    def objects_per_store(messages: list[SimMessage]) -> dict[str, list[bytes]]:
        """Each store's JSON objects (valid or not), single or out of batches, in order."""
        out: dict[str, list[bytes]] = {}
        for m in messages:
            try:
                doc = orjson.loads(m.payload)
            except orjson.JSONDecodeError:
                continue  # a malformed message that travels alone in both modes
            elements = doc if isinstance(doc, list) else [doc]
            out.setdefault(m.store_id, []).extend(orjson.dumps(x) for x in elements if isinstance(x, dict))
        return out

    assert sum(m.events for m in single) == sum(m.events for m in batched)
    assert sum(m.malformed for m in single) == sum(m.malformed for m in batched)
    assert all(len(orjson.loads(m.payload)) <= batch_size for m in batched if m.events and m.payload[:1] == b"[")
    assert all(a.ts_ms <= b.ts_ms for a, b in itertools.pairwise(batched))
    # Each store's events arrive in the same order, whatever the grouping.
    assert objects_per_store(single) == objects_per_store(batched)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), start_h=st.integers(0, 7 * 24))
def test_other_stores_change_nothing_for_a_store(seed, start_h):
    start_ms = MONDAY + start_h * HOUR_MS
    span = dict(start_ms=start_ms, end_ms=start_ms + 6 * HOUR_MS, seed=seed)
    alone = events_of(generate([BANK], **span))
    together = [e for e in events_of(generate([RETAIL, BANK, TELECOM], **span)) if e["store_id"] == "bank-002"]
    assert alone == together


def test_take_events_stops_at_the_message_that_reaches_the_limit():
    messages = generate(make_stores(3, seed=1), start_ms=MONDAY, end_ms=MONDAY + DAY_MS, seed=1, batch_size=7)
    taken = list(take_events(messages, 500))
    total = sum(m.events for m in taken)
    assert 500 <= total < 500 + 7
    assert sum(m.events for m in taken[:-1]) < 500


def test_generation_is_lazy_without_an_end():
    messages = generate(make_stores(3, seed=1), start_ms=MONDAY, seed=1)
    first = [next(messages) for _ in range(100)]
    assert len(first) == 100


def test_injected_duplicates_late_and_reordered_events_are_what_they_say():
    from footfall.scripts.simulation import DEFAULT_REGIONS, generate, make_stores

    stores = make_stores(3, seed=2, regions=DEFAULT_REGIONS[:2])
    start_ms = int(dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC).timestamp() * 1000)
    plain = list(generate(stores, start_ms=start_ms, end_ms=start_ms + 3_600_000, seed=2))
    faulty = list(generate(stores, start_ms=start_ms, end_ms=start_ms + 3_600_000, seed=2, duplicate_fraction=0.1,
                           late_fraction=0.05, late_by_ms=7_200_000, reorder_fraction=0.2, reorder_max_ms=90_000))
    assert all(a.ts_ms <= b.ts_ms for a, b in itertools.pairwise(faulty))
    events = [orjson.loads(m.payload) for m in faulty]
    originals = {e["event_id"]: e for e in (orjson.loads(m.payload) for m in plain)}
    duplicates = sum(m.duplicates for m in faulty)
    late = [e for m, e in zip(faulty, events, strict=True) if m.late]
    assert duplicates > 10 and len(late) > 5
    # Every original is sent, once or twice (a duplicate is the same event, id and all).
    sent = Counter(e["event_id"] for e in events if e["event_id"] in originals)
    assert set(sent) == set(originals) and sum(sent.values()) - len(sent) == duplicates
    # A late event is an original moved 2 hours back, under a new id.
    for e in late:
        assert e["event_id"] not in originals
    # Held-back events arrive after events that happened later, but never more than 90 s late.
    position = {e["event_id"]: i for i, e in reversed(list(enumerate(events)))}
    order = sorted(originals, key=lambda i: position[i])
    send_at = {orjson.loads(m.payload)["event_id"]: m.ts_ms for m in faulty}
    plain_at = {orjson.loads(m.payload)["event_id"]: m.ts_ms for m in plain}
    delays = [send_at[i] - plain_at[i] for i in order]
    assert max(delays) <= 90_000 and sum(d > 0 for d in delays) > 10


# -- counter rosters ---------------------------------------------------------------------------

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def exact_ms(ts: int | str) -> int:
    """Epoch ms of an event time, exactly (no float rounding)."""
    if isinstance(ts, int):
        return ts
    return (dt.datetime.fromisoformat(ts) - _EPOCH) // dt.timedelta(milliseconds=1)


def local_ms(zone: zoneinfo.ZoneInfo, day: dt.date, hour: float) -> int:
    """Epoch ms of local `hour` (may be fractional) on `day` in `zone`."""
    return exact_ms((dt.datetime.combine(day, dt.time(), tzinfo=zone) + dt.timedelta(hours=hour)).isoformat())


def tickets_of(events: Iterable[dict], store_id: str) -> dict[str, dict]:
    """Each ticket's life from its queue events: issued, called (time, counter number, wait), end, abandoned."""
    found: dict[str, dict] = {}
    for e in events:
        if e["kind"] != "queue" or e["store_id"] != store_id:
            continue
        t = found.setdefault(e["ticket_id"], {})
        at = exact_ms(e["ts"])
        if e["action"] == "issued":
            t["issued"] = at
        elif e["action"] == "called":
            t["called"] = (at, int(e["counter"].removeprefix("counter-")), e["wait_s"])
        elif e["action"] in ("served", "no_show"):
            t["end"] = at
        elif e["action"] == "abandoned":
            t["abandoned"] = e["wait_s"]
    return found


def queue_profile(vertical: str) -> tuple[float, float]:
    """(ticket share, mean service s) from the simulator's service tables (lognormal mean = median e^(sigma^2/2))."""
    from footfall.scripts import simulation

    if vertical == "bank":
        services = simulation._BANK_SERVICES.values()
        mean_s = sum(share * median * math.exp(sigma**2 / 2) for share, _, median, sigma, _ in services)
        return simulation._BANK_TICKET_SHARE, mean_s
    _, _, _, median, sigma, _ = simulation._REPAIR
    return simulation._TELECOM_REPAIR_SHARE, median * math.exp(sigma**2 / 2)


def reference_loads(store: StoreProfile, week_monday: dt.date) -> dict[tuple[int, int], float]:
    """Offered load (Erlangs) of each open local (weekday, hour) of one week, from `arrival_rate_per_h`.

    The rate at the busiest of 12 evenly spaced moments of the open part of the hour, as
    `comfortable_roster` documents, read through the public rate function at those instants.
    """
    zone = zoneinfo.ZoneInfo(store.timezone)
    share, mean_s = queue_profile(store.vertical)
    loads = {}
    for weekday in range(7):
        day = week_monday + dt.timedelta(days=weekday)
        hours = store.opening_hours[weekday]
        for hour in range(24):
            if hours is None or max(hour, hours[0]) >= min(hour + 1, hours[1]):
                continue
            a, b = max(hour, hours[0]), min(hour + 1, hours[1])
            rate = max(arrival_rate_per_h(store, local_ms(zone, day, a + (b - a) * (k + 0.5) / 12)) for k in range(12))
            loads[weekday, hour] = rate * share * mean_s / 3600
    return loads


def rostered_stores(seeds=(0, 1, 2)) -> list[StoreProfile]:
    return [s for seed in seeds for s in make_stores(12, seed=seed) if s.vertical != "retail"]


# A week without a clock change in any default region (New York's is on Sunday 10 March at 02:00, when
# every store is closed): local hours map to the rate function one to one.
WEEK = dt.date(2024, 3, 4)


def test_roster_rows_and_counters():
    one_day = (0,) * 9 + (2, 3, 3, 1, 1, 2, 2, 2) + (0,) * 7
    branch = StoreProfile("bank-009", "bank", "london", "Europe/London", ((9, 17),) * 5 + (None, None), 20.0,
                          (Door("main", "cnt-1"),), 60, roster=one_day)
    assert branch.roster == (one_day,) * 7 and branch.counters == 3
    assert StoreProfile(**{**_fields(branch), "roster": [list(one_day)] * 7, "counters": 5}).roster == (one_day,) * 7
    zone = zoneinfo.ZoneInfo("Europe/London")
    for hour in range(24):
        assert branch.counters_at(local_ms(zone, WEEK, hour + 0.5)) == one_day[hour]
    assert BANK.roster == () and BANK.counters_at(MONDAY + 3 * HOUR_MS) == 4  # no roster: all counters, always
    for bad in [dict(roster=one_day, counters=2), dict(roster=(one_day,) * 6), dict(roster=(1,) * 23),
                dict(roster=(-1, *one_day[1:])), dict(roster=(0,) * 24)]:
        with pytest.raises(ValueError):
            StoreProfile(**{**_fields(branch), "counters": 0, "roster": (), **bad})


def _fields(store: StoreProfile) -> dict:
    return {name: getattr(store, name) for name in StoreProfile.__dataclass_fields__}


def test_comfortable_roster_is_the_fewest_counters_under_85_percent_busy_calling_90_percent_within_10_minutes():
    from footfall.operators.staffing.erlang import service_level

    for store in rostered_stores():
        _, mean_s = queue_profile(store.vertical)
        loads = reference_loads(store, WEEK)
        want = [[0] * 24 for _ in range(7)]
        for (weekday, hour), load in loads.items():
            n = 1
            while load / n > 0.85 or service_level(load, n, mean_s, 600) < 0.9:
                n += 1
            want[weekday][hour] = n
        assert comfortable_roster(store) == tuple(map(tuple, want)), store.store_id
        assert store.counters == max(map(max, want))


def test_make_stores_rosters_understaff_lunch_and_one_or_two_peak_hours_only():
    from footfall.operators.staffing.erlang import service_level

    stores = rostered_stores()
    assert len(stores) == 24  # 4 branches and 4 shops per seed
    shorted = 0
    for store in stores:
        _, mean_s = queue_profile(store.vertical)
        loads = reference_loads(store, WEEK)
        comfortable = comfortable_roster(store)
        short_hours = set()
        for weekday in range(7):
            for hour in range(24):
                need, have = comfortable[weekday][hour], store.roster[weekday][hour]
                if need == 0:
                    assert have == 0, (store.store_id, weekday, hour)  # closed all hour
                elif hour in (12, 13):
                    assert have == max(1, need - 1), (store.store_id, weekday, hour)  # one on the lunch break
                elif have != need:
                    # A short-staffed peak: fewer counters, and the service level sinks under 60 % (or one is left).
                    assert 1 <= have < need
                    assert have == 1 or service_level(loads[weekday, hour], have, mean_s, 600) < 0.6
                    assert have == need - 1 or service_level(loads[weekday, hour], have + 1, mean_s, 600) >= 0.6
                    short_hours.add(hour)
        # One or two peak hours a day, among its three busiest outside lunch (load summed over the week).
        week_load = Counter()
        for (_, hour), load in loads.items():
            week_load[hour] += load
        by_load = sorted(set(week_load) - {12, 13}, key=lambda h: -week_load[h])
        assert 1 <= len(short_hours) <= 2 and short_hours <= set(by_load[:3]), (store.store_id, short_hours)
        shorted += 1
        # And it has plenty of comfortably staffed hours.
        fine = sum(store.roster[d][h] == comfortable[d][h] > 0 for d in range(7) for h in range(24))
        open_hours = sum(comfortable[d][h] > 0 for d in range(7) for h in range(24))
        assert fine >= open_hours / 3, store.store_id
    assert shorted == len(stores)


def test_rosters_are_deterministic_from_the_seed():
    def rosters(seed: int) -> list:
        return [s.roster for s in make_stores(30, seed=seed)]

    assert rosters(4) == rosters(4)
    assert rosters(4) != rosters(5)
    # Rostering draws apart from the stores' own draws: every other attribute is as without a roster.
    for store in make_stores(30, seed=4):
        if store.roster:
            assert all(store.roster[d][h] <= store.counters for d in range(7) for h in range(24))


def test_understaffed_takes_counters_away_at_the_given_hours_only():
    short = understaffed(BANK, hours=[10, 11], by=2, weekdays=[0, 1])
    assert short.counters == 4 and BANK.roster == ()
    for weekday in range(7):
        for hour in range(24):
            assert short.roster[weekday][hour] == (2 if weekday < 2 and hour in (10, 11) else 4)
    assert understaffed(short, hours=range(24), by=9).roster == ((1,) * 24,) * 7  # an open hour keeps one
    with pytest.raises(ValueError):
        understaffed(BANK, hours=[10], by=-1)


def test_a_full_roster_behaves_as_no_roster():
    full = StoreProfile(**{**_fields(BANK), "roster": (4,) * 24})
    span = dict(start_ms=MONDAY, end_ms=MONDAY + 3 * DAY_MS, seed=5)
    assert [m.payload for m in generate([BANK], **span)] == [m.payload for m in generate([full], **span)]


def check_counters_follow_the_roster(store: StoreProfile, events: list[dict], start_ms: int, end_ms: int) -> int:
    """Brute-force checks of a store's queue against its roster; returns how many tickets were called.

    - each call at `t` is made by `counter-k` with `k <= allowed(t)`: the roster at `t`, or, for a
      customer still waiting at closing time, the last open hour's count (at least one);
    - at every call, the counters busy (between a call and its `served`/`no_show`) are at most the
      largest count allowed since the earliest of their calls: a closing counter finishes its customer;
    - no counter serves two customers at once; customers are called in order of issue.
    """
    tickets = tickets_of(events, store.store_id)
    periods = opening_periods_ms(store, start_ms - DAY_MS, end_ms + DAY_MS)

    def close_of(issued: int) -> int:
        [close] = [c for o, c in periods if o <= issued < c]
        return close

    def allowed(t: int, close: int) -> int:
        return store.counters_at(t) if t < close else max(1, store.counters_at(close - 1))

    calls = []  # (call, end, counter, issued)
    for ticket in tickets.values():
        if "called" not in ticket or "end" not in ticket:
            continue
        call, counter, _ = ticket["called"]
        close = close_of(ticket["issued"])
        assert 1 <= counter <= allowed(call, close), (ticket, allowed(call, close))
        calls.append((call, ticket["end"], counter, ticket["issued"], close))
    for call, _, _, _, close in calls:
        busy = [(c, k) for c, e, k, _, _ in calls if c <= call < e]
        assert len({k for _, k in busy}) == len(busy), "a counter serves two customers at once"
        earliest = min(c for c, _ in busy)
        hours = range(earliest, call + 1, 60_000)
        assert len(busy) <= max(max(allowed(t, close) for t in hours), allowed(call, close)), (call, busy)
    by_issue = sorted(calls, key=lambda c: c[3])
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(by_issue)), "not first come, first served"
    return len(calls)


@pytest.mark.parametrize("index", [1, 2, 4, 5])  # bank-002, telecom-003, bank-005, telecom-006
def test_no_more_counters_busy_than_the_roster_allows(index):
    store = make_stores(12, seed=0)[index]
    start_ms, end_ms = MONDAY, MONDAY + 4 * DAY_MS
    events = events_of(generate([store], start_ms=start_ms, end_ms=end_ms + DAY_MS, seed=3))
    assert check_counters_follow_the_roster(store, events, start_ms, end_ms) > 50


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), day=st.lists(st.integers(0, 4), min_size=24, max_size=24))
def test_no_more_counters_busy_than_any_roster_allows(seed, day):
    # A busy branch with a roster that changes every hour, closed counters (0) included.
    store = StoreProfile(**{**_fields(BANK), "base_rate_per_h": 60.0, "counters": 4, "roster": tuple(day)})
    events = events_of(generate([store], start_ms=MONDAY, end_ms=MONDAY + 2 * DAY_MS, seed=seed))
    check_counters_follow_the_roster(store, events, MONDAY, MONDAY + DAY_MS)


def test_understaffed_hours_queue_and_the_others_run_smoothly():
    # The demo's stores (12, seed 0), Monday to Friday.
    stores = [s for s in make_stores(12, seed=0) if s.vertical != "retail"]
    events = events_of(generate(stores, start_ms=MONDAY, end_ms=MONDAY + 6 * DAY_MS, seed=0))
    groups: dict[str, list[tuple[float, bool]]] = {"short": [], "fine": []}  # (wait s, gave up)
    for store in stores:
        comfortable = comfortable_roster(store)
        zone = zoneinfo.ZoneInfo(store.timezone)
        for ticket in tickets_of(events, store.store_id).values():
            if not MONDAY <= ticket["issued"] < MONDAY + 5 * DAY_MS:
                continue
            local = dt.datetime.fromtimestamp(ticket["issued"] / 1000, zone)
            need, have = comfortable[local.weekday()][local.hour], store.roster[local.weekday()][local.hour]
            if "abandoned" in ticket:
                groups["short" if have < need else "fine"].append((ticket["abandoned"], True))
            elif "called" in ticket:
                groups["short" if have < need else "fine"].append((ticket["called"][2], False))

    def stats(rows: list[tuple[float, bool]]) -> tuple[float, float, float, float]:
        n = len(rows)
        return (sum(w for w, _ in rows) / n, sum(w > 300 for w, _ in rows) / n,
                sum(w <= 600 and not gone for w, gone in rows) / n, sum(gone for _, gone in rows) / n)

    assert len(groups["short"]) > 500 and len(groups["fine"]) > 500
    short_wait, short_over5, short_sl, short_gone = stats(groups["short"])
    fine_wait, fine_over5, fine_sl, fine_gone = stats(groups["fine"])
    assert short_wait > 2.5 * fine_wait and short_wait > 90  # minutes of waiting, not seconds
    assert short_over5 > 3 * fine_over5 and short_over5 > 0.1
    assert short_sl < fine_sl - 0.08 and short_sl < 0.9
    assert short_gone > 2.5 * fine_gone
    assert fine_sl > 0.93 and fine_wait < 60


def test_make_stores_rosters_are_those_of_rostered():
    for seed in (0, 7):
        for store in make_stores(12, seed=seed):
            if store.roster:
                assert rostered(dataclasses.replace(store, roster=(), counters=1), seed) == store


def test_an_explicitly_understaffed_branch_queues_at_its_short_hours():
    # Afternoons (14:00-17:00 London) with 2 of the branch's 4 counters, Monday to Friday.
    short = understaffed(BANK, hours=[14, 15, 16], by=2, weekdays=range(5))
    span = dict(start_ms=MONDAY, end_ms=MONDAY + 6 * DAY_MS, seed=2)
    zone = zoneinfo.ZoneInfo("Europe/London")

    def afternoon_waits(store: StoreProfile) -> tuple[list[float], set[int]]:
        waits, counters = [], set()
        for ticket in tickets_of(events_of(generate([store], **span)), store.store_id).values():
            local = dt.datetime.fromtimestamp(ticket["issued"] / 1000, zone)
            if local.weekday() < 5 and 14 <= local.hour < 17:
                if "abandoned" in ticket:
                    waits.append(ticket["abandoned"])
                elif "called" in ticket:
                    waits.append(ticket["called"][2])
                    counters.add(ticket["called"][1])
        return waits, counters

    full_waits, full_counters = afternoon_waits(BANK)
    short_waits, short_counters = afternoon_waits(short)
    assert len(full_waits) > 200 and len(short_waits) > 200
    assert full_counters == {1, 2, 3, 4} and short_counters == {1, 2}
    assert sum(short_waits) / len(short_waits) > 3 * sum(full_waits) / len(full_waits)
    assert sum(w > 600 for w in short_waits) > 3 * max(1, sum(w > 600 for w in full_waits))
