"""TumblingBuckets against a brute-force recomputation at every step, plus drawn timelines.

The model below keeps every counted event of every bucket and recomputes each bucket's
totals from scratch, following the counting rules of `operators/kpis/flow.py`:
arrivals = door count_in + visits that arrive, departures = door count_out + visits that
leave, transactions and items from POS, sales = sum of amounts (rounded to cents),
one ticket counter per queue step, heartbeats, and events = every counted event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.kpis.flow import FlowCounts
from footfall.operators.windows.buckets import TumblingBuckets
from footfall.schemas.events import DoorEvent, Event, Heartbeat, PosEvent, QueueEvent, VisitEvent

STORES = ("s-a", "s-b", "s-c")
QUEUE_STEPS = ("issued", "called", "served", "abandoned", "no_show")
SETTINGS = settings(max_examples=200, deadline=None)


# -- events --------------------------------------------------------------------------------------------


def envelope(store_id: str, ts_ms: int, n: int) -> dict[str, Any]:
    return {"event_id": f"{store_id}-{n}", "store_id": store_id, "ts_ms": ts_ms, "region": None, "zone": None,
            "vertical": None}


def heartbeat(ts_ms: int, store_id: str = "s") -> Heartbeat:
    return Heartbeat(event_id=f"hb{ts_ms}", store_id=store_id, ts_ms=ts_ms, region=None, zone=None, vertical=None,
                     sensor_id="c", status="ok", device_id=None)


def person(ts_ms: int, store_id: str = "s") -> DoorEvent:
    return DoorEvent(**envelope(store_id, ts_ms, ts_ms), door_id="d", sensor_id="c", count_in=1, count_out=0,
                     interval_s=0)


@st.composite
def event_at(draw: st.DrawFn, store_id: str, ts_ms: int, n: int) -> Event:
    env = envelope(store_id, ts_ms, n)
    kind = draw(st.sampled_from(["door", "door", "visit", "pos", "queue", "heartbeat"]))
    if kind == "door":
        return DoorEvent(**env, door_id="d", sensor_id="c", count_in=draw(st.integers(0, 50)),
                         count_out=draw(st.integers(0, 50)), interval_s=draw(st.sampled_from([0, 60, 300])))
    if kind == "visit":
        action = draw(st.sampled_from(["arrive", "leave"]))
        return VisitEvent(**env, action=action, visit_id=None, visitor_id=None,
                          dwell_s=draw(st.floats(0, 3600)) if action == "leave" else None)
    if kind == "pos":
        cents = draw(st.integers(0, 10_000_000))
        return PosEvent(**env, transaction_id=f"t{n}", amount=cents / 100, items=draw(st.integers(0, 40)),
                        currency="EUR", till_id=None, customer_id=None)
    if kind == "queue":
        return QueueEvent(**env, action=draw(st.sampled_from(QUEUE_STEPS)), ticket_id=f"A{n}", service="teller",
                          counter=None, customer_id=None, wait_s=None, service_s=None)
    return Heartbeat(**env, sensor_id="c", status="ok", device_id=None)


@dataclass(frozen=True)
class Scenario:
    bucket_ms: int
    grace_ms: int
    events: list[Event]
    horizon_ms: int = 0
    corroboration: int = 1
    lead_ms: int | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {"restate_horizon_ms": self.horizon_ms, "corroboration": self.corroboration, "lead_ms": self.lead_ms}


@st.composite
def scenarios(draw: st.DrawFn, stores: tuple[str, ...] = STORES) -> Scenario:
    """Events of several stores on one clock; each is on time, a little late (within grace) or later,
    and a few far ahead (a skewed clock); restated within a drawn horizon, the watermark corroborated."""
    bucket_ms = draw(st.one_of(st.sampled_from([1, 10, 1_000, 60_000, 900_000]), st.integers(1, 100_000)))
    grace_ms = draw(st.one_of(st.just(0), st.sampled_from([bucket_ms // 2, bucket_ms, 3 * bucket_ms]),
                              st.integers(0, 3 * bucket_ms)))
    span = bucket_ms + grace_ms
    horizon_ms = draw(st.one_of(st.just(0), st.integers(0, 4 * span)))
    corroboration = draw(st.integers(1, 4))
    lead_ms = draw(st.one_of(st.none(), st.integers(0, 2 * span)))
    clock = draw(st.integers(0, 10**12))
    events: list[Event] = []
    for n in range(draw(st.integers(0, 60))):
        clock += draw(st.one_of(st.integers(0, bucket_ms // 4 + 1), st.integers(0, 2 * span)))
        back = draw(st.one_of(st.just(0), st.integers(0, span), st.integers(0, 3 * span)))
        ahead = draw(st.one_of(st.just(0), st.just(0), st.just(0), st.integers(0, 6 * span)))
        store_id = draw(st.sampled_from(stores))
        events.append(draw(event_at(store_id, max(0, clock - back + ahead), n)))
    return Scenario(bucket_ms, grace_ms, events, horizon_ms, corroboration, lead_ms)


# -- the brute-force model ---------------------------------------------------------------------------------


def totals(events: list[Event]) -> dict[str, Any]:
    """A bucket's counters recomputed from its events."""
    out: dict[str, Any] = {
        "arrivals": 0, "departures": 0, "door_in": 0, "door_out": 0, "visits_started": 0, "visits_ended": 0,
        "transactions": 0, "items": 0, "tickets_issued": 0, "tickets_called": 0, "tickets_served": 0,
        "tickets_abandoned": 0, "tickets_no_show": 0, "heartbeats": 0, "events": len(events),
    }
    cents = 0
    for e in events:
        if isinstance(e, DoorEvent):
            out["arrivals"] += e.count_in
            out["door_in"] += e.count_in
            out["departures"] += e.count_out
            out["door_out"] += e.count_out
        elif isinstance(e, VisitEvent):
            started = e.action == "arrive"
            out["arrivals" if started else "departures"] += 1
            out["visits_started" if started else "visits_ended"] += 1
        elif isinstance(e, PosEvent):
            out["transactions"] += 1
            out["items"] += e.items
            cents += round(e.amount * 100)  # amounts are whole cents: sum them exactly
        elif isinstance(e, QueueEvent):
            out[f"tickets_{e.action}"] += 1
        elif isinstance(e, Heartbeat):
            out["heartbeats"] += 1
    out["sales"] = cents / 100
    return out


@dataclass
class Model:
    """One store, from scratch: the watermark rule, every counted event per bucket, revisions.

    The watermark: an event at most `lead_ms` ahead moves it there; one further ahead joins
    the pending times, and once `corroboration` of them are past the watermark it moves to
    the `corroboration`-th newest. An event in a bucket handed out restates it while the
    watermark is less than the horizon past the bucket's close, else it is late (so is one
    before the first bucket handed out, once buckets were handed out: never kept). An event in a
    bucket never opened nor handed out that closed the horizon or more ago is late too.
    """

    bucket_ms: int
    grace_ms: int
    horizon_ms: int = 0
    corroboration: int = 1
    lead_ms: int | None = None
    watermark_ms: int | None = None
    pending: list[int] = field(default_factory=list)
    counted: dict[int, list[Event]] = field(default_factory=dict)
    emitted: set[int] = field(default_factory=set)
    revisions: dict[int, int] = field(default_factory=dict)
    restated: set[int] = field(default_factory=set)
    n_counted: int = 0

    @property
    def lead(self) -> int:
        return max(self.bucket_ms, self.grace_ms) if self.lead_ms is None else self.lead_ms

    def start_of(self, ts_ms: int) -> int:
        return (ts_ms // self.bucket_ms) * self.bucket_ms

    def closed(self, start: int) -> bool:
        return self.watermark_ms is not None and self.watermark_ms >= start + self.bucket_ms + self.grace_ms

    def late_by(self, start: int) -> int:
        assert self.watermark_ms is not None
        return self.watermark_ms - (start + self.bucket_ms + self.grace_ms)

    def observe(self, ts_ms: int) -> None:
        wm = self.watermark_ms
        if wm is None or wm < ts_ms <= wm + self.lead:
            self.watermark_ms = ts_ms
        elif ts_ms > wm:
            self.pending.append(ts_ms)
            if len(self.pending) >= self.corroboration:
                self.watermark_ms = sorted(self.pending)[-self.corroboration]
        self.pending = [t for t in self.pending if t > self.watermark_ms]

    def update(self, event: Event) -> int | None:
        start = self.start_of(event.ts_ms)
        if self.emitted and start <= max(self.emitted):
            # handed out (or, before the first bucket handed out, never to be): restated within the horizon
            if start not in self.emitted or self.late_by(start) >= self.horizon_ms:
                return None
            self.restated.add(start)
        elif start not in self.counted and self.watermark_ms is not None and 0 < self.horizon_ms <= self.late_by(start):
            return None  # closed the horizon or more ago, never opened nor handed out: too old to open
        else:
            self.observe(event.ts_ms)
        self.counted.setdefault(start, []).append(event)
        self.n_counted += 1
        return start

    def due(self) -> list[tuple[int, dict[str, Any]]]:
        """Buckets closed and not yet handed out, oldest first: what pop_closed must return now.

        Every bucket from the store's first counted bucket up to the newest closed one, with
        zeros where nothing was counted (empty buckets are real).
        """
        if not self.counted or self.watermark_ms is None:
            return []
        starts = [
            s for s in range(min(self.counted), self.watermark_ms + 1, self.bucket_ms)
            if s not in self.emitted and self.closed(s)
        ]
        self.emitted.update(starts)
        self.revisions.update(dict.fromkeys(starts, 1))
        return [(s, totals(self.counted.get(s, []))) for s in starts]

    def restated_due(self) -> list[tuple[int, dict[str, Any], int]]:
        """What pop_restated must return now: each restated bucket's next revision, all its events."""
        out = []
        for s in sorted(self.restated):
            self.revisions[s] += 1
            out.append((s, totals(self.counted[s]), self.revisions[s]))
        self.restated.clear()
        return out

    def open(self) -> list[int]:
        return sorted(s for s in self.counted if s not in self.emitted)


def round_trip(buckets: TumblingBuckets) -> TumblingBuckets:
    """Through JSON bytes, as a Faust table changelog would carry it."""
    state = orjson.loads(orjson.dumps(buckets.to_state()))
    return TumblingBuckets.from_state(state, bucket_ms=buckets.bucket_ms, grace_ms=buckets.grace_ms,
                                      restate_horizon_ms=buckets.restate_horizon_ms, lead_ms=buckets.lead_ms,
                                      corroboration=buckets.corroboration)


# -- properties ------------------------------------------------------------------------------------------


@SETTINGS
@given(scenarios(), st.data())
def test_buckets_match_brute_force_at_every_step(scenario: Scenario, data: st.DataObject) -> None:
    b_ms, g_ms = scenario.bucket_ms, scenario.grace_ms
    models = {s: Model(b_ms, g_ms, scenario.horizon_ms, scenario.corroboration, scenario.lead_ms) for s in STORES}
    # Per store: the original and copies restored from its state at random points, all fed the same events.
    replicas: dict[str, list[TumblingBuckets]] = {s: [TumblingBuckets(b_ms, g_ms, **scenario.params)] for s in STORES}
    # Per store and bucket handed out: its latest revision's result.
    published: dict[str, dict[int, dict[str, Any]]] = {s: {} for s in STORES}

    def check_pop(store_id: str) -> None:
        expected = models[store_id].due()
        restated = models[store_id].restated_due()
        for b in replicas[store_id]:
            assert b.pop_closed() == expected
            assert b.pop_restated() == restated
        published[store_id].update(expected)
        published[store_id].update({s: result for s, result, _ in restated})

    for event in scenario.events:
        store_id, model = event.store_id, models[event.store_id]
        start = model.start_of(event.ts_ms)
        expected = model.update(event)
        for b in replicas[store_id]:
            assert b.update(event) == expected
            assert b.watermark_ms == model.watermark_ms
            assert b.is_closed(start) == model.closed(start)
            if expected is None:
                assert b.late_by_ms(event.ts_ms) == model.late_by(start) >= 0
                assert start not in model.emitted or model.late_by(start) >= scenario.horizon_ms
        if data.draw(st.booleans(), label="pop now"):
            check_pop(store_id)
        for b in replicas[store_id]:
            assert b.open_buckets() == model.open()
            for s in model.open():
                assert b.get(s) == totals(model.counted[s])
            # closed + open buckets hold every counted event, no late one
            emitted = sum(r["events"] for r in published[store_id].values())
            pending = sum(len(model.counted[s]) - published[store_id][s]["events"] for s in model.restated)
            assert emitted + pending + sum(b.get(s)["events"] for s in b.open_buckets()) == model.n_counted
        if len(replicas[store_id]) < 3 and data.draw(st.integers(0, 9), label="restore") == 0:
            restored = round_trip(replicas[store_id][0])
            assert restored.to_state() == orjson.loads(orjson.dumps(replicas[store_id][0].to_state()))
            replicas[store_id].append(restored)

    for store_id in STORES:
        check_pop(store_id)
        model = models[store_id]
        # Every bucket the watermark closed was handed out, empty ones included; its latest revision
        # holds every event counted into it.
        assert {s for s in model.counted if model.closed(s)} <= model.emitted
        for s in model.emitted:
            assert published[store_id][s] == totals(model.counted.get(s, []))
        for b in replicas[store_id]:
            assert b.pop_closed() == [] and b.pop_restated() == []  # never twice
            for s in model.emitted:
                assert b.get(s) is None
            # bounded: the closed buckets kept are those of the horizon
            assert b.closed_kept() <= (scenario.horizon_ms + g_ms) // b_ms + 2


@SETTINGS
@given(scenarios())
def test_interleaving_stores_changes_nothing(scenario: Scenario) -> None:
    def trace(events: list[Event]) -> dict[str, list[Any]]:
        buckets: dict[str, TumblingBuckets] = {}
        out: dict[str, list[Any]] = {}
        for e in events:
            b = buckets.setdefault(e.store_id, TumblingBuckets(scenario.bucket_ms, scenario.grace_ms))
            out.setdefault(e.store_id, []).append((b.update(e), b.pop_closed(), b.to_state()))
        return out

    merged = trace(scenario.events)
    for store_id in STORES:
        alone = trace([e for e in scenario.events if e.store_id == store_id])
        assert merged.get(store_id) == alone.get(store_id)


@SETTINGS
@given(st.lists(st.integers(0, 10**7), max_size=80).map(sorted), st.integers(1, 10**5), st.integers(0, 10**6))
def test_in_order_events_keep_few_buckets_open(times_ms: list[int], bucket_ms: int, grace_ms: int) -> None:
    # The module docstring: at most grace_ms / bucket_ms + 2 open buckets while events arrive in order,
    # plus one per uncorroborated time ahead (fewer than `corroboration`, 3 by default: a jump in
    # order further than lead_ms waits for two more events).
    # (A short max_gap_ms: with 1-ms buckets a week of empty buckets would be 6e8 records.)
    buckets = TumblingBuckets(bucket_ms, grace_ms, max_gap_ms=64 * bucket_ms)
    for t in times_ms:
        assert buckets.update(person(t)) is not None  # in order: never late
        buckets.pop_closed()
        assert buckets.pop_restated() == []  # in order: never a closed bucket again
        assert len(buckets.open_buckets()) <= grace_ms / bucket_ms + 2 + 2


# -- drawn timelines --------------------------------------------------------------------------------------


def test_docstring_timeline() -> None:
    # Buckets of 10 s, grace 5 s; events in arrival order 3s, 12s, 9s, 16s, 8s:
    #
    #    3s     9s  8s    12s       16s
    #    |      |   |     |         |
    # [0s---------10s)[10s--------20s)
    #                 close of [0,10) = 10s + 5s = 15s
    #
    # 9s arrives with the watermark at 12s < 15s: counted. 16s moves the watermark past 15s:
    # [0,10) closes with 3s and 9s. 8s then is 16s - 15s = 1s past its close: within the
    # horizon (30 s) it restates [0,10) as revision 2; with no horizon it is late.
    for horizon_ms, restated in [(30_000, [(0, 3, 2)]), (0, [])]:
        buckets = TumblingBuckets(bucket_ms=10_000, grace_ms=5_000, restate_horizon_ms=horizon_ms)
        steps = []
        for ts_ms in [3_000, 12_000, 9_000, 16_000, 8_000]:
            placed = buckets.update(person(ts_ms))
            closed = [(start, counts["arrivals"]) for start, counts in buckets.pop_closed()]
            steps.append((ts_ms, placed, closed, buckets.watermark_ms))
        assert steps == [
            (3_000, 0, [], 3_000),
            (12_000, 10_000, [], 12_000),
            (9_000, 0, [], 12_000),
            (16_000, 10_000, [(0, 2)], 16_000),
            (8_000, 0 if horizon_ms else None, [], 16_000),
        ]
        assert [(s, c["arrivals"], rev) for s, c, rev in buckets.pop_restated()] == restated
        assert buckets.late_by_ms(8_000) == 1_000
    assert buckets.open_buckets() == [10_000]
    assert buckets.get(10_000)["arrivals"] == 2


def test_bucket_boundaries() -> None:
    #  9_999  10_000
    #      |  |
    # [0------)[10_000------)
    buckets = TumblingBuckets(bucket_ms=10_000, grace_ms=0, restate_horizon_ms=0)
    assert buckets.update(person(0)) == 0  # the start belongs to the bucket
    assert buckets.update(person(9_999)) == 0  # end - 1 ms: still in [0, 10_000)
    assert buckets.pop_closed() == []  # watermark 9_999 < end + grace = 10_000
    assert buckets.update(person(10_000)) == 10_000  # the end opens the next bucket...
    assert [(s, c["arrivals"]) for s, c in buckets.pop_closed()] == [(0, 2)]  # ...and closes this one (grace 0)
    assert buckets.update(person(9_999)) is None  # end - 1 ms is now late (no restating)
    assert buckets.late_by_ms(9_999) == 0  # exactly at the close


def test_restate_horizon_boundary() -> None:
    # 10-s buckets, no grace, a horizon of 20 s: [0,10) closes at 10 s and restates while the
    # watermark is below 10 s + 20 s = 30 s.
    buckets = TumblingBuckets(bucket_ms=10_000, grace_ms=0, restate_horizon_ms=20_000)
    buckets.update(person(1_000))
    buckets.advance(29_999)
    assert [s for s, _ in buckets.pop_closed()] == [0, 10_000]
    assert buckets.handed_out(0) and buckets.restatable(0)
    assert buckets.update(person(5_000)) == 0  # late by 19.999 s < 20 s: restates
    assert [(s, c["arrivals"], rev) for s, c, rev in buckets.pop_restated()] == [(0, 2, 2)]
    assert buckets.update(person(6_000)) == 0
    assert buckets.update(person(7_000)) == 0  # two events, one revision
    assert [(s, c["arrivals"], rev) for s, c, rev in buckets.pop_restated()] == [(0, 4, 3)]
    assert buckets.revision(0) == 3
    buckets.advance(30_000)
    assert buckets.update(person(5_000)) is None  # late by exactly the horizon: late
    assert buckets.late_by_ms(5_000) == 20_000
    assert [s for s, _ in buckets.pop_closed()] == [20_000]  # and [0,10) leaves the horizon
    assert buckets.update(person(15_000)) == 10_000  # [10,20): late by 10 s, an empty bucket restated
    assert [(s, c["arrivals"], rev) for s, c, rev in buckets.pop_restated()] == [(10_000, 1, 2)]
    assert buckets.revision(0) == 0  # no longer kept


def test_close_waits_for_end_plus_grace() -> None:
    # [0-----10s) closes at 10s + 5s = 15s; a watermark of 14.999s keeps it open
    buckets = TumblingBuckets(bucket_ms=10_000, grace_ms=5_000)
    buckets.update(person(1_000))
    buckets.update(person(14_999))
    assert buckets.pop_closed() == []
    assert not buckets.is_closed(0)
    assert buckets.update(person(9_999)) == 0  # still within grace: counted
    buckets.update(person(15_000))
    assert buckets.is_closed(0)
    assert [(s, c["arrivals"]) for s, c in buckets.pop_closed()] == [(0, 2)]


def test_late_events_do_not_move_anything() -> None:
    buckets = TumblingBuckets(bucket_ms=1_000, grace_ms=0, restate_horizon_ms=2_000)
    buckets.update(person(400))
    buckets.advance(5_500)
    assert [s for s, _ in buckets.pop_closed()] == [0, 1_000, 2_000, 3_000, 4_000]
    before = buckets.to_state()
    assert buckets.update(person(10)) is None  # bucket [0, 1000) closed 4.5 s ago, beyond the 2 s horizon
    assert buckets.to_state() == before
    assert buckets.late_by_ms(10) == 5_500 - 1_000


def test_a_bucket_passed_but_not_handed_out_counts_in_its_first_revision() -> None:
    buckets = TumblingBuckets(bucket_ms=1_000, grace_ms=0, restate_horizon_ms=0)
    buckets.update(person(5_500))
    assert buckets.is_closed(0) and not buckets.handed_out(0)
    assert buckets.update(person(10)) == 0  # [0, 1000) is passed, not handed out yet: it counts
    assert [(s, c["arrivals"]) for s, c in buckets.pop_closed()] == [
        (0, 1), (1_000, 0), (2_000, 0), (3_000, 0), (4_000, 0)]


@pytest.mark.parametrize(
    ("ts_ms", "bucket_ms", "start"),
    [
        (0, 900_000, 0),  # the epoch starts a bucket
        (899_999, 900_000, 0),  # last ms of the first 15 minutes
        (900_000, 900_000, 900_000),  # first ms of the second
        (1_767_225_600_000 + 1, 900_000, 1_767_225_600_000),  # 2026-01-01T00:00:00.001Z: midnight's bucket
        (-1, 10, -10),  # before the epoch: floor, not truncation
    ],
)
def test_bucket_of(ts_ms: int, bucket_ms: int, start: int) -> None:
    assert TumblingBuckets(bucket_ms, 0).bucket_of(ts_ms) == start


@pytest.mark.parametrize(
    ("bucket_ms", "grace_ms"),
    [
        (0, 0),  # empty buckets
        (-1, 0),  # negative length
        (-60_000, 5_000),  # negative length, positive grace
        (60_000, -1),  # negative grace
    ],
)
def test_invalid_arguments_raise(bucket_ms: int, grace_ms: int) -> None:
    with pytest.raises(ValueError):
        TumblingBuckets(bucket_ms, grace_ms)


@pytest.mark.parametrize("state", [None, {}])  # no state yet: a new store
def test_from_empty_state(state: dict[str, Any] | None) -> None:
    buckets = TumblingBuckets.from_state(state, bucket_ms=1_000, grace_ms=0)
    assert buckets.watermark_ms is None
    assert buckets.open_buckets() == []
    assert buckets.pop_closed() == []
    assert buckets.late_by_ms(0) == -1
    assert buckets.to_state() == {"wm": None, "closed_to": None, "open": {}}


def test_a_quiet_night_closes_as_zeros() -> None:
    # 1-s buckets, no grace; events at 0.5 s and 4.5 s, then a heartbeat at 6 s:
    #   [0s-1s) [1s-2s) [2s-3s) [3s-4s) [4s-5s) [5s-6s)
    #     x                               x          ^ heartbeat: watermark 6 s closes up to [5s-6s)
    # (corroboration=1: each jump of several buckets moves the watermark alone, as with a lead of seconds)
    flow = FlowCounts()
    buckets = TumblingBuckets(1_000, 0, flow, corroboration=1)
    buckets.update(person(500))
    buckets.update(person(4_500))
    buckets.update(heartbeat(6_000))
    closed = [(s, c["arrivals"], c["events"]) for s, c in buckets.pop_closed()]
    assert closed == [(0, 1, 1), (1_000, 0, 0), (2_000, 0, 0), (3_000, 0, 0), (4_000, 1, 1), (5_000, 0, 0)]
    assert buckets.pop_closed() == []


def test_a_long_silence_hands_out_only_the_last_max_gap_of_empty_buckets() -> None:
    buckets = TumblingBuckets(1_000, 0, max_gap_ms=3_000, corroboration=1)
    buckets.update(person(500))
    assert [s for s, _ in buckets.pop_closed()] == []
    buckets.update(person(10_500))  # closes [0s-1s) .. [9s-10s): the count, then only the last 3 empty ones
    assert [(s, c["arrivals"]) for s, c in buckets.pop_closed()] == [(0, 1), (7_000, 0), (8_000, 0), (9_000, 0)]


def test_unit_test_params_build() -> None:
    for params in TumblingBuckets._unit_test_params():
        buckets = TumblingBuckets(**params)
        assert (buckets.bucket_ms, buckets.grace_ms) == (params["bucket_ms"], params["grace_ms"])
        assert round_trip(buckets).to_state() == buckets.to_state()
