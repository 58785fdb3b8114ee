"""StoreFlow against a brute-force model of one store, and known values of its KPIs.

The model keeps every event, decides its fate by the documented rules (an event whose
bucket was handed out longer than the restate horizon ago is late; a repeated id is a
duplicate; an event in a bucket handed out within the horizon restates it; else it
counts; the watermark moves alone by at most the lead, further only corroborated), and
recomputes buckets, days, sliding windows and occupancy from the list of counted
events, from scratch.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from footfall.operators.pipeline.store import StoreFlow, StoreParams
from footfall.operators.windows.localtime import day_bounds_ms, local_day
from footfall.schemas.events import DoorEvent, Event, PosEvent, QueueEvent, VisitEvent

MIN = 60_000
HOUR = 3_600_000
# 2026-06-01T05:00:00Z, an hour after the 04:00 UTC reset: a run of at most 120 events 10 minutes apart
# (20 hours) ends before the next one; events drawn earlier may cross the last (see `histories`).
T0 = 1_780_290_000_000


def make_event(kind: str, event_id: str, ts_ms: int, n: int) -> Event:
    env = {"event_id": event_id, "store_id": "s", "ts_ms": ts_ms, "region": None, "zone": None, "vertical": None}
    if kind == "door":
        return DoorEvent(**env, door_id=f"d{n % 3}", sensor_id="c", count_in=n % 4, count_out=(n // 4) % 4,
                         interval_s=0)
    if kind == "visit":
        leave = n % 2 == 1
        return VisitEvent(**env, action="leave" if leave else "arrive", visit_id=None, visitor_id=None,
                          dwell_s=float(30 + n % 600) if leave else None)
    if kind == "pos":
        return PosEvent(**env, transaction_id=f"t{n}", amount=(n % 5000) / 100, items=n % 7, currency="EUR",
                        till_id=None, customer_id=None)
    return QueueEvent(**env, action="issued", ticket_id=f"A{n}", service="teller", counter=None, customer_id=None,
                      wait_s=None, service_s=None)


@st.composite
def histories(draw: st.DrawFn) -> tuple[StoreParams, list[Event]]:
    """A store's events: mostly in order, some out of order within grace, duplicates, and late ones."""
    bucket_ms = draw(st.sampled_from([5 * MIN, 15 * MIN, 60 * MIN]))
    grace_ms = draw(st.sampled_from([0, MIN, 5 * MIN, 20 * MIN]))
    params = StoreParams(bucket_ms=bucket_ms, grace_ms=grace_ms, dedupe_horizon_ms=48 * HOUR)
    n_events = draw(st.integers(1, 120))
    clock = T0
    events: list[Event] = []
    for n in range(n_events):
        clock += draw(st.integers(0, 10 * MIN))
        shape = draw(st.sampled_from(["now", "now", "now", "earlier", "much_earlier", "repeat", "ahead", "too_old"]))
        if shape == "repeat" and events:
            events.append(draw(st.sampled_from(events)))  # the same event id again
            continue
        ts = clock
        if shape == "earlier":
            ts = clock - draw(st.integers(0, grace_ms + bucket_ms))
        elif shape == "much_earlier":
            ts = clock - draw(st.integers(0, 3 * HOUR))  # up to 3 hours back, across the 04:00 reset too
        elif shape == "ahead":  # a skewed clock, up to an hour ahead
            ts = clock + draw(st.integers(0, HOUR))
        elif shape == "too_old" and clock >= T0 + 2 * HOUR:  # beyond the 24-hour restate horizon: late
            ts = clock - 30 * HOUR
        kind = draw(st.sampled_from(["door", "door", "visit", "pos", "queue"]))
        events.append(make_event(kind, f"e{n}", ts, n))
    return params, events


def _reset_after(ts_ms: int) -> int:
    """The first 04:00 UTC strictly after `ts_ms` (the store's daily reset in these histories)."""
    day_ms = 24 * HOUR
    instant = ts_ms - ts_ms % day_ms + 4 * HOUR
    return instant if instant > ts_ms else instant + day_ms


def brute_force(params: StoreParams, events: list[Event]) -> dict[str, Any]:
    """Fates, the watermark and the counted events, as if buckets were handed out after each event."""
    seen: set[str] = set()
    watermark = None
    pending: list[int] = []  # times further than the lead ahead, not corroborated yet
    lead = max(params.bucket_ms, params.grace_ms)
    closed_to = first_out = None  # buckets handed out: [first_out, closed_to)
    opened: set[int] = set()
    counted: list[Event] = []
    at: list[int] = []  # each counted event's time in the store's clocks: at most the watermark
    fates = []
    for e in events:
        start = e.ts_ms - e.ts_ms % params.bucket_ms
        restating = closed_to is not None and start < closed_to
        if restating and (start < first_out or watermark - (start + params.bucket_ms + params.grace_ms)
                          >= params.restate_horizon_ms):
            fates.append("late")
            continue
        if (not restating and start not in opened and watermark is not None
                and 0 < params.restate_horizon_ms <= watermark - (start + params.bucket_ms + params.grace_ms)):
            fates.append("late")  # never opened nor handed out, and closed the horizon or more ago
            continue
        if e.event_id in seen:
            fates.append("duplicate")
            continue
        seen.add(e.event_id)
        fates.append("restated" if restating else "counted")
        counted.append(e)
        if not restating:
            opened.add(start)
            if watermark is None or watermark < e.ts_ms <= watermark + lead:
                watermark = e.ts_ms
            elif e.ts_ms > watermark:
                pending.append(e.ts_ms)
                if len(pending) >= 3:
                    watermark = sorted(pending)[-3]
            pending = [t for t in pending if t > watermark]
        at.append(min(e.ts_ms, watermark))
        # hand out what the watermark closed
        last = watermark - params.grace_ms - params.bucket_ms
        last -= last % params.bucket_ms
        first = closed_to if closed_to is not None else min(opened)
        if last >= first:
            first_out = first if first_out is None else first_out
            closed_to = last + params.bucket_ms
            opened = {s for s in opened if s >= closed_to}
    buckets: dict[int, Counter] = defaultdict(Counter)
    days: dict[str, Counter] = defaultdict(Counter)
    for e in counted:
        start = e.ts_ms - e.ts_ms % params.bucket_ms
        for target in (buckets[start], days[local_day(e.ts_ms, params.tz).isoformat()]):
            target["events"] += 1
            if isinstance(e, DoorEvent):
                target["arrivals"] += e.count_in
                target["departures"] += e.count_out
            elif isinstance(e, VisitEvent):
                target["arrivals" if e.action == "arrive" else "departures"] += 1
            elif isinstance(e, PosEvent):
                target["transactions"] += 1
                target["cents"] += round(e.amount * 100)
            elif isinstance(e, QueueEvent):
                target["tickets_issued"] += 1
    # Occupancy counts each event at its time in the store's clocks (`at`: an event ahead of the
    # watermark counts at the watermark) and empties at 04:00 UTC once a door or visit event's time reaches
    # it; an event before the latest reset applied is not counted in it.
    occupancy = drift = 0
    next_reset = last_reset = None
    for e, t in zip(counted, at, strict=True):
        if not isinstance(e, DoorEvent | VisitEvent):
            continue  # only people at doors move occupancy and its clock
        if next_reset is None:
            next_reset = _reset_after(t)
        elif t >= next_reset:
            occupancy, last_reset, next_reset = 0, _reset_after(t) - 24 * HOUR, _reset_after(t)
        if last_reset is not None and t < last_reset:
            continue
        delta_in = e.count_in if isinstance(e, DoorEvent) else int(isinstance(e, VisitEvent) and e.action == "arrive")
        delta_out = e.count_out if isinstance(e, DoorEvent) else int(isinstance(e, VisitEvent) and e.action == "leave")
        inside = occupancy + delta_in - delta_out
        drift += max(0, -inside)
        occupancy = max(0, inside)
    return {"fates": fates, "counted": counted, "at": at, "watermark": watermark, "buckets": buckets, "days": days,
            "occupancy": occupancy, "drift": drift, "first_out": first_out}


def run(params: StoreParams, events: list[Event], split_at: set[int] = frozenset()) -> tuple[StoreFlow, list, dict]:
    """Feed `events`; after each index in `split_at`, save the state as JSON and start again from it."""
    store = StoreFlow(params)
    fates, closed = [], {}
    for i, e in enumerate(events):
        fates.append(store.update(e))
        closed.update(store.pop_closed())
        closed.update((start, record) for start, record, _ in store.pop_restated())  # the latest revision
        if i in split_at:
            store = StoreFlow.from_state(orjson.loads(orjson.dumps(store.to_state())), params)
    return store, fates, closed


COUNTED = ("arrivals", "departures", "transactions", "tickets_issued", "events")


def _doors(*events: tuple[int, int, int]) -> list[Event]:
    return [DoorEvent(event_id=f"e{i}", store_id="s", ts_ms=ts, region=None, zone=None, vertical=None, door_id="d",
                      sensor_id="c", count_in=count_in, count_out=count_out, interval_s=0)
            for i, (ts, count_in, count_out) in enumerate(events)]


@settings(max_examples=150, deadline=None)
@given(histories(), st.sets(st.integers(0, 119), max_size=5))
# The first event a moment before the 04:00 reset, then people at 05:00, ahead of the watermark until three agree:
# the first two count at the watermark, before the reset, which empties the store once the watermark passes it.
@example((StoreParams(bucket_ms=HOUR, grace_ms=MIN), _doors((T0 - HOUR - 1, 0, 0), (T0, 1, 0), (T0, 2, 0),
                                                              (T0, 3, 0), (T0, 0, 1))), set())
def test_every_count_equals_the_brute_force_model(history, split_at):
    params, events = history
    want = brute_force(params, events)
    store, fates, closed = run(params, events, split_at)

    assert fates == want["fates"]
    assert store.duplicates == fates.count("duplicate") and store.late == fates.count("late")
    assert store.restated == fates.count("restated")
    assert store.watermark_ms == want["watermark"]
    # Closed buckets: every bucket from the first counted one up to the watermark's reach, empty ones as zeros.
    wm = want["watermark"]
    last_closed = wm - wm % params.bucket_ms - params.bucket_ms
    while last_closed + params.bucket_ms + params.grace_ms > wm:
        last_closed -= params.bucket_ms
    first = min(want["buckets"])
    assert sorted(closed) == list(range(first, last_closed + 1, params.bucket_ms))
    open_starts = set(store.buckets.open_buckets())
    assert not open_starts & set(closed)
    # Late: only the too old ones, and those in a bucket before the store's first handed out.
    assert all(fate != "late" or e.ts_ms < T0 or e.ts_ms < (want["first_out"] or 0)
               for fate, e in zip(fates, events, strict=True))
    for start in set(want["buckets"]) | set(closed):
        got = closed.get(start) or store.bucket(start)
        expected = want["buckets"].get(start, Counter())
        assert {k: got[k] for k in COUNTED} == {k: expected[k] for k in COUNTED}, start
        assert round(got["sales"] * 100) == expected["cents"]
        assert got["conversion_rate"] == (expected["transactions"] / expected["arrivals"]
                                          if expected["arrivals"] else None)
    # Window counts sum to the total.
    total = sum((closed.get(s) or store.bucket(s))["events"] for s in set(closed) | open_starts)
    assert total == len(want["counted"])
    for day, expected in want["days"].items():
        got = store.day(day)
        assert {k: got[k] for k in COUNTED} == {k: expected[k] for k in COUNTED}
    # Sliding windows: counted events in the slots after watermark - W.
    live = store.live()
    slot = params.slot_ms
    for window_ms, name in [(5 * MIN, "5m"), (15 * MIN, "15m"), (60 * MIN, "60m")]:
        newest_slot = wm // slot
        inside = [e for e, t in zip(want["counted"], want["at"], strict=True)
                  if newest_slot - t // slot < window_ms // slot]
        arrivals = sum(
            e.count_in if isinstance(e, DoorEvent) else int(isinstance(e, VisitEvent) and e.action == "arrive")
            for e in inside
        )
        assert live["windows"][name]["arrivals"] == arrivals
        assert live["windows"][name]["transactions"] == sum(isinstance(e, PosEvent) for e in inside)
    assert live["occupancy"]["occupancy"] == want["occupancy"]
    assert live["occupancy"]["drift"] == want["drift"]


@settings(max_examples=60, deadline=None)
@given(histories(), st.sets(st.integers(0, 119), min_size=1, max_size=10))
def test_state_round_trip_through_json_changes_nothing(history, split_at):
    params, events = history
    straight, fates_a, closed_a = run(params, events)
    resumed, fates_b, closed_b = run(params, events, split_at)
    assert fates_a == fates_b
    assert closed_a == closed_b
    assert straight.to_state() == resumed.to_state()
    assert straight.live() == resumed.live()


def _versus(value, reference):
    """The documented `vs_*` of a value against a reference (None without one; ratio None against 0)."""
    if reference is None:
        return None
    return {"diff": value - reference, "ratio": value / reference if reference else None}


@settings(max_examples=100, deadline=None)
@given(histories(), st.sets(st.integers(0, 119), max_size=5))
def test_a_restated_bucket_is_compared_with_what_its_first_revision_was(history, split_at):
    """Every revision of a bucket carries its new values against the references of its first revision
    (last week, rolling mean, EW mean as they were at its close), across saves to JSON and back."""
    params, events = history
    store = StoreFlow(params)
    references: dict[int, dict[str, tuple]] = {}
    for i, e in enumerate(events):
        store.update(e)
        for start, record in store.pop_closed():
            if "compare" in record:
                references[start] = {q: (c["last_week"], c["baseline"], c["ewm"]) for q, c in record["compare"].items()}
        for start, record, _ in store.pop_restated():
            if start not in references:
                assert "compare" not in record
                continue
            for q, (last_week, mean, ewm) in references[start].items():
                value = record[q]
                assert record["compare"][q] == {
                    "value": value, "last_week": last_week, "vs_last_week": _versus(value, last_week),
                    "baseline": mean, "vs_baseline": _versus(value, mean), "ewm": ewm, "vs_ewm": _versus(value, ewm)}
        if i in split_at:
            store = StoreFlow.from_state(orjson.loads(orjson.dumps(store.to_state())), params)


def _door(event_id: str, ts_ms: int, count_in: int) -> DoorEvent:
    return DoorEvent(event_id=event_id, store_id="s", ts_ms=ts_ms, region=None, zone=None, vertical=None,
                     door_id="d", sensor_id="c", count_in=count_in, count_out=0, interval_s=0)


def test_restated_buckets_keep_their_references_a_day_long():
    """A day of hourly buckets, then a late event in each of them, oldest first, after a save and a restore."""
    params = StoreParams(bucket_ms=HOUR, grace_ms=MIN)
    store = StoreFlow(params)
    first = {}
    for h in range(30):
        store.update(_door(f"a{h}", T0 + h * HOUR, h + 1))
        first.update((start, record["compare"]["arrivals"]) for start, record in store.pop_closed())
    store = StoreFlow.from_state(orjson.loads(orjson.dumps(store.to_state())), params)
    wm = store.watermark_ms
    restated = []
    for h in range(30):
        start = T0 + h * HOUR
        store.update(_door(f"late{h}", start + MIN, 1))
        restated += [(s, r["compare"]["arrivals"]) for s, r, _ in store.pop_restated()]
    # Within the 24 h horizon (closed less than 24 h before the watermark): each restated against its first refs.
    # (The newest two are still open: their late events simply count.)
    assert [s for s, _ in restated] == [s for s in sorted(first) if wm - (s + HOUR + MIN) < params.restate_horizon_ms]
    assert len(restated) == 24
    for start, compare in restated:
        was = first[start]
        assert compare["value"] == was["value"] + 1
        assert (compare["last_week"], compare["baseline"], compare["ewm"]) == (was["last_week"], was["baseline"],
                                                                               was["ewm"])


def test_to_state_is_a_copy():
    store = StoreFlow()
    store.update(make_event("visit", "a", T0, 1))
    saved = orjson.dumps(store.to_state())
    state = store.to_state()
    store.update(make_event("visit", "b", T0 + 1000, 3))
    store.update(make_event("door", "c", T0 + 2000, 5))
    assert orjson.dumps(state) == saved


# -- known values -------------------------------------------------------------------------------------


def visit(event_id: str, ts_ms: int, action: str = "arrive", dwell_s: float | None = None) -> VisitEvent:
    return VisitEvent(event_id=event_id, store_id="s", ts_ms=ts_ms, region=None, zone=None, vertical="retail",
                      action=action, visit_id=None, visitor_id=None, dwell_s=dwell_s)


def test_a_dst_day_in_london_has_92_buckets_and_its_own_totals():
    # 2026-03-29, Europe/London: 00:00 GMT (00:00Z) to 00:00 BST (23:00Z): 23 hours.
    params = StoreParams(bucket_ms=15 * MIN, grace_ms=0, tz="Europe/London")
    start_ms, end_ms = day_bounds_ms(dt.date(2026, 3, 29), "Europe/London")
    assert (end_ms - start_ms) == 23 * HOUR
    store = StoreFlow(params)
    store.update(visit("before", start_ms - 1))  # 23:59:59.999 on the 28th
    store.update(visit("first", start_ms))
    store.update(visit("last", end_ms - 1))  # 23:59:59.999 BST = 22:59:59.999Z
    store.update(visit("next", end_ms))  # 00:00 BST on the 30th
    store.advance(end_ms + 15 * MIN)
    closed = dict(store.pop_closed())
    of_day = [s for s in closed if start_ms <= s < end_ms]
    assert len(of_day) == 92
    assert sum(closed[s]["arrivals"] for s in of_day) == 2
    assert store.day("2026-03-28")["arrivals"] == 1
    assert store.day("2026-03-29")["arrivals"] == 2
    assert store.day("2026-03-30")["arrivals"] == 1


def test_an_autumn_dst_day_has_100_buckets():
    params = StoreParams(bucket_ms=15 * MIN, grace_ms=0, tz="Europe/London")
    start_ms, end_ms = day_bounds_ms(dt.date(2026, 10, 25), "Europe/London")
    store = StoreFlow(params)
    store.update(visit("first", start_ms))
    store.advance(end_ms + 15 * MIN)
    closed = dict(store.pop_closed())
    assert len([s for s in closed if start_ms <= s < end_ms]) == 100


def test_occupancy_that_would_go_negative_stops_at_zero_and_records_drift():
    store = StoreFlow(StoreParams(tz="UTC", reset_at="04:00"))
    t = T0
    store.update(visit("in1", t))
    store.update(visit("out1", t + 1000, "leave", 60.0))
    store.update(visit("out2", t + 2000, "leave", 120.0))  # nobody left inside: stays 0, drift 1
    store.update(visit("in2", t + 3000))
    assert store.live()["occupancy"]["occupancy"] == 1
    assert store.live()["occupancy"]["drift"] == 1
    # The next 04:00 UTC resets it to 0, the residual recorded.
    next_reset = T0 + 23 * HOUR
    store.advance(next_reset)
    occupancy = store.live()["occupancy"]
    assert occupancy["occupancy"] == 0 and occupancy["reset_residual"] == 1


def test_closed_bucket_compared_with_last_week_and_baseline():
    params = StoreParams(bucket_ms=60 * MIN, grace_ms=0, baseline_window=2, baseline_fading=0.5)
    store = StoreFlow(params)
    week = 7 * 24 * HOUR
    arrivals_at = {T0: 10, T0 + HOUR: 20, T0 + 2 * HOUR: 30, T0 + week: 40}
    n = 0
    for hour_start, count in arrivals_at.items():
        for _ in range(count):
            n += 1
            store.update(visit(f"v{n}", hour_start + n))
    store.advance(T0 + week + 2 * HOUR)
    closed = dict(store.pop_closed())
    compare = closed[T0 + week]["compare"]["arrivals"]
    assert compare["value"] == 40
    assert compare["last_week"] == 10
    assert compare["vs_last_week"] == {"diff": 30, "ratio": 4.0}
    # The two buckets before it are the empty hours just before T0 + week: mean 0, EW mean 0.
    assert compare["baseline"] == 0 and compare["ewm"] == pytest.approx(0.0, abs=1e-12)
    # Known values one bucket later: the rolling mean of (0, 40) is 20; the EW mean 0.5 * 40 + 0.5 * 0 = 20.
    compare_next = closed[T0 + week + HOUR]["compare"]["arrivals"]
    assert compare_next["last_week"] == 20
    assert compare_next["baseline"] == pytest.approx(20.0) and compare_next["ewm"] == pytest.approx(20.0)


def test_dwell_and_conversion_of_a_bucket_by_hand():
    store = StoreFlow(StoreParams(bucket_ms=15 * MIN, grace_ms=0))
    for i, dwell in enumerate([60.0, 120.0, 180.0, 240.0, 600.0]):
        store.update(visit(f"a{i}", T0 + i))
        store.update(visit(f"l{i}", T0 + 100 + i, "leave", dwell))
    store.update(make_event("pos", "p1", T0 + 500, 1234))  # 12.34
    store.update(make_event("pos", "p2", T0 + 600, 766))  # 7.66
    store.advance(T0 + 15 * MIN)
    (_, bucket), = store.pop_closed()
    assert bucket["visitors"] == 5 and bucket["transactions"] == 2
    assert bucket["conversion_rate"] == 0.4
    assert bucket["avg_basket"] == pytest.approx(10.0)
    assert bucket["sales_per_visitor"] == pytest.approx(4.0)
    assert bucket["dwell_mean_s"] == pytest.approx(240.0)
    assert bucket["dwell_p50_s"] == pytest.approx(180.0, rel=0.02)
    # Quantiles interpolate between ranks (numpy's default): p90 = 240 + 0.6 * (600 - 240) = 456.
    assert bucket["dwell_p90_s"] == pytest.approx(456.0, rel=0.02)


@settings(max_examples=60, deadline=None)
@given(histories(), histories(), st.lists(st.booleans(), min_size=240, max_size=240))
def test_interleaving_stores_changes_nothing(history_a, history_b, picks):
    # Two stores' events interleaved at random into one stream, routed to one StoreFlow per store as the
    # worker routes them, end exactly as each store's events fed alone.
    params, events_a = history_a
    _, events_b = history_b
    alone_a, _, closed_a = run(params, events_a)
    alone_b, _, closed_b = run(params, events_b)
    flows = {"a": StoreFlow(params), "b": StoreFlow(params)}
    closed: dict[str, dict] = {"a": {}, "b": {}}
    queues = {"a": list(events_a), "b": list(events_b)}
    for pick in picks + [True] * len(events_a) + [False] * len(events_b):
        name = "a" if pick else "b"
        if not queues[name]:
            continue
        flows[name].update(queues[name].pop(0))
        closed[name].update(flows[name].pop_closed())
        closed[name].update((start, record) for start, record, _ in flows[name].pop_restated())
    assert closed["a"] == closed_a and closed["b"] == closed_b
    assert flows["a"].to_state() == alone_a.to_state() and flows["b"].to_state() == alone_b.to_state()
