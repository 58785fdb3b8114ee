"""RetailKpis: hand-worked buckets for a shop and a telecom store, merging, running inside TumblingBuckets."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from footfall.operators.kpis.retail import RetailKpis
from footfall.operators.windows.buckets import TumblingBuckets
from footfall.schemas.events import DoorEvent, Event, Heartbeat, PosEvent, QueueEvent, VisitEvent


def envelope(ts_ms: int = 0, vertical: str = "retail") -> dict[str, Any]:
    return {"event_id": f"e{ts_ms}", "store_id": "s", "ts_ms": ts_ms, "region": None, "zone": None,
            "vertical": vertical}


def door(count_in: int, count_out: int = 0, ts_ms: int = 0) -> DoorEvent:
    return DoorEvent(**envelope(ts_ms), door_id="d", sensor_id="c", count_in=count_in, count_out=count_out,
                     interval_s=60)


def arrive(ts_ms: int = 0) -> VisitEvent:
    return VisitEvent(**envelope(ts_ms, "telecom"), action="arrive", visit_id="v", visitor_id=None, dwell_s=None)


def leave(dwell_s: float | None, ts_ms: int = 0) -> VisitEvent:
    return VisitEvent(**envelope(ts_ms, "telecom"), action="leave", visit_id="v", visitor_id=None, dwell_s=dwell_s)


def sale(amount: float, items: int = 1, ts_ms: int = 0) -> PosEvent:
    return PosEvent(**envelope(ts_ms), transaction_id="t", amount=amount, items=items, currency="EUR", till_id=None,
                    customer_id=None)


def result(events: list[Event]) -> dict[str, Any]:
    kpis = RetailKpis()
    state = kpis.initialize()
    for event in events:
        state = kpis.agg(state, event)
    return kpis.result(state)


def test_hand_worked_shop_bucket() -> None:
    # 40 in through two doors (exits don't matter), 6 sales for 251.40 and 15 items.
    events = [door(25, 3), door(15, 20), sale(19.99, 1), sale(45.50, 3), sale(5.01, 1), sale(120.00, 6),
              sale(30.90, 2), sale(30.00, 2)]
    assert result(events) == {
        "visitors": 40, "transactions": 6, "items": 15, "sales": 251.40,
        "conversion_rate": 0.15,  # 6 / 40
        "avg_basket": pytest.approx(41.90),  # 251.40 / 6
        "sales_per_visitor": pytest.approx(6.285),  # 251.40 / 40
        "items_per_transaction": 2.5,  # 15 / 6
        "dwell_n": 0, "dwell_mean_s": None, "dwell_p50_s": None, "dwell_p90_s": None,
    }


def test_hand_worked_telecom_shop_bucket() -> None:
    # A telecom shop tracks visits: 5 arrivals, 4 leaves with dwell 120, 300, 600, 1500 s, one without dwell;
    # 2 contracts sold. Queue tickets and heartbeats don't change shop KPIs.
    dwells = [120.0, 300.0, 600.0, 1500.0]
    heartbeat = Heartbeat(**envelope(), sensor_id="c", status="ok", device_id=None)
    ticket = QueueEvent(**envelope(), action="issued", ticket_id="A1", service="repair", counter=None,
                        customer_id=None, wait_s=None, service_s=None)
    events = [arrive() for _ in range(5)] + [leave(d) for d in dwells] + [leave(None), sale(49.0, 1),
                                                                        sale(699.0, 2), heartbeat, ticket]
    r = result(events)
    assert (r["visitors"], r["transactions"], r["items"], r["sales"]) == (5, 2, 3, 748.0)
    assert r["conversion_rate"] == 0.4
    assert r["avg_basket"] == 374.0
    assert r["sales_per_visitor"] == pytest.approx(149.6)
    assert r["items_per_transaction"] == 1.5
    assert (r["dwell_n"], r["dwell_mean_s"]) == (4, 630.0)  # (120 + 300 + 600 + 1500) / 4
    assert r["dwell_p50_s"] == pytest.approx(450.0, rel=0.02)  # numpy: (300 + 600) / 2
    assert r["dwell_p90_s"] == pytest.approx(np.quantile(dwells, 0.9), rel=0.02)  # 1230


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([], {"visitors": 0, "conversion_rate": None, "avg_basket": None, "sales_per_visitor": None,
              "items_per_transaction": None}),  # an empty bucket: no ratios
        ([sale(10.0)], {"visitors": 0, "conversion_rate": None, "avg_basket": 10.0,
                        "sales_per_visitor": None}),  # a sale with no counted visitor
        ([door(3)], {"visitors": 3, "conversion_rate": 0.0, "avg_basket": None,
                     "sales_per_visitor": 0.0}),  # visitors, no sale
        ([door(1), sale(5.0), sale(7.0)], {"conversion_rate": 2.0}),  # conversion is not capped at 1
        ([door(1), sale(0.0, 0)], {"transactions": 1, "avg_basket": 0.0,
                                   "items_per_transaction": 0.0}),  # a void is a transaction
        ([sale(0.1), sale(0.2)], {"sales": 0.3, "avg_basket": pytest.approx(0.15)}),  # sales rounded to cents
    ],
)
def test_edge_cases(events: list[Event], expected: dict[str, Any]) -> None:
    r = result(events)
    assert {k: r[k] for k in expected} == expected


event_lists = st.lists(
    st.one_of(
        st.integers(0, 50).map(door),
        st.just(arrive()),
        st.floats(0, 86_400).map(leave),
        st.tuples(st.floats(0, 1_000), st.integers(0, 20)).map(lambda a: sale(*a)),
    ),
    max_size=40,
)


@given(event_lists, event_lists)
def test_merge_of_two_buckets_equals_one_bucket(left: list[Event], right: list[Event]) -> None:
    kpis = RetailKpis()
    a, b, whole = kpis.initialize(), kpis.initialize(), kpis.initialize()
    for event in left:
        a = kpis.agg(a, event)
    for event in right:
        b = kpis.agg(b, event)
    for event in left + right:
        whole = kpis.agg(whole, event)
    merged, expected = kpis.result(kpis.merge(a, b)), kpis.result(whole)
    for key, value in expected.items():
        assert merged[key] == (value if value is None or isinstance(value, int) else pytest.approx(value)), key


def test_runs_per_bucket_in_tumbling_buckets_through_json() -> None:
    # TumblingBuckets takes any initialize/agg/result aggregation whose state is a list.
    params: dict[str, Any] = {"bucket_ms": 900_000, "grace_ms": 60_000, "aggregation": RetailKpis()}
    buckets = TumblingBuckets.from_state(None, **params)
    events = [door(10, 0, 0), sale(20.0, 2, 60_000), leave(600.0, 120_000),
              door(4, 0, 900_000), sale(8.0, 1, 960_000), sale(12.0, 1, 1_000_000), door(1, 0, 1_900_000)]
    closed = []
    for event in events:
        state = orjson.loads(orjson.dumps(buckets.to_state()))  # as a Faust table stores it
        buckets = TumblingBuckets.from_state(state, **params)
        assert buckets.update(event) is not None
        closed += buckets.pop_closed()
    assert [(start, r["visitors"], r["transactions"], r["conversion_rate"], r["dwell_mean_s"])
            for start, r in closed] == [(0, 10, 1, 0.1, 600.0), (900_000, 4, 2, 0.5, None)]


def test_state_round_trip_and_shared_checks() -> None:
    for params in RetailKpis._unit_test_params():
        kpis = RetailKpis(**params)
        state = kpis.initialize()
        assert kpis.result(state)["visitors"] == 0  # reading before data
        for event in [door(5), sale(9.99, 2), leave(321.0), leave(0.5)]:
            state = kpis.agg(state, event)
        before = copy.deepcopy(state)
        kpis.result(state)  # reading never mutates
        assert state == before
        restored = orjson.loads(orjson.dumps(state))
        assert restored == state and kpis.result(restored) == kpis.result(state)
        assert pickle.loads(pickle.dumps(state)) == state
        assert len(orjson.dumps(state)) < 400
