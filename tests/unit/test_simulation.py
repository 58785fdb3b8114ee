"""The simulator: deterministic, ordered, schema-valid, and its arrivals follow its own rate function."""

from __future__ import annotations

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
    generate,
    make_stores,
    take_events,
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
