"""FlowCounts: every counter on hand-worked examples, and how sales are rounded."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from footfall.operators.kpis.flow import FlowCounts
from footfall.schemas.events import DoorEvent, Event, Heartbeat, PosEvent, QueueEvent, VisitEvent

ENVELOPE: dict[str, Any] = {"event_id": "e", "store_id": "s", "ts_ms": 0, "region": None, "zone": None,
                            "vertical": None}
ZERO: dict[str, Any] = {
    "arrivals": 0, "departures": 0, "door_in": 0, "door_out": 0, "visits_started": 0, "visits_ended": 0,
    "transactions": 0, "items": 0, "tickets_issued": 0, "tickets_called": 0, "tickets_served": 0,
    "tickets_abandoned": 0, "tickets_no_show": 0, "heartbeats": 0, "events": 0, "sales": 0.0,
}


def door(count_in: int, count_out: int, interval_s: int = 60) -> DoorEvent:
    return DoorEvent(**ENVELOPE, door_id="d", sensor_id="c", count_in=count_in, count_out=count_out,
                     interval_s=interval_s)


def visit(action: str) -> VisitEvent:
    return VisitEvent(**ENVELOPE, action=action, visit_id=None, visitor_id=None,
                      dwell_s=30.0 if action == "leave" else None)


def sale(amount: float, items: int = 1) -> PosEvent:
    return PosEvent(**ENVELOPE, transaction_id="t", amount=amount, items=items, currency="EUR", till_id=None,
                    customer_id=None)


def ticket(action: str) -> QueueEvent:
    return QueueEvent(**ENVELOPE, action=action, ticket_id="A1", service="teller", counter=None, customer_id=None,
                      wait_s=None, service_s=None)


def heartbeat() -> Heartbeat:
    return Heartbeat(**ENVELOPE, sensor_id="c", status="ok", device_id=None)


def counts(events: list[Event]) -> dict[str, Any]:
    flow = FlowCounts()
    state = flow.initialize()
    for event in events:
        state = flow.agg(state, event)
    return flow.result(state)


@pytest.mark.parametrize(
    ("events", "changed"),
    [
        ([], {}),  # nothing: every counter 0, sales 0.0
        ([door(7, 2)], {"arrivals": 7, "departures": 2, "door_in": 7, "door_out": 2, "events": 1}),  # interval
        ([door(1, 0, 0)], {"arrivals": 1, "door_in": 1, "events": 1}),  # one person in
        ([door(0, 1, 0)], {"departures": 1, "door_out": 1, "events": 1}),  # one person out
        ([door(0, 0)], {"events": 1}),  # an empty interval still is an event
        ([visit("arrive")], {"arrivals": 1, "visits_started": 1, "events": 1}),  # a visit starts
        ([visit("leave")], {"departures": 1, "visits_ended": 1, "events": 1}),  # a visit ends
        ([sale(12.5, 3)], {"transactions": 1, "items": 3, "sales": 12.5, "events": 1}),  # one sale
        ([sale(0.0, 0)], {"transactions": 1, "events": 1}),  # a zero sale (a void) is a transaction
        ([ticket("issued")], {"tickets_issued": 1, "events": 1}),  # queue: issued
        ([ticket("called")], {"tickets_called": 1, "events": 1}),  # queue: called
        ([ticket("served")], {"tickets_served": 1, "events": 1}),  # queue: served
        ([ticket("abandoned")], {"tickets_abandoned": 1, "events": 1}),  # queue: abandoned
        ([ticket("no_show")], {"tickets_no_show": 1, "events": 1}),  # queue: no show
        ([heartbeat()], {"heartbeats": 1, "events": 1}),  # a sensor is alive
        (
            # a mixed bucket: 5 + 1 + 1 arrivals (door interval, door person, visit), 3 + 1 departures,
            # 2 sales of 4 and 6 items for 10.25 + 4.75, two issued tickets and one served, a heartbeat
            [door(5, 3), door(1, 0, 0), visit("arrive"), visit("leave"), sale(10.25, 4), sale(4.75, 6),
             ticket("issued"), ticket("issued"), ticket("served"), heartbeat()],
            {"arrivals": 7, "departures": 4, "door_in": 6, "door_out": 3, "visits_started": 1,
             "visits_ended": 1, "transactions": 2, "items": 10, "sales": 15.0, "tickets_issued": 2,
             "tickets_served": 1, "heartbeats": 1, "events": 10},
        ),
    ],
)
def test_every_counter(events: list[Event], changed: dict[str, Any]) -> None:
    result = counts(events)
    assert result == {**ZERO, **changed}
    assert type(result["sales"]) is float


@pytest.mark.parametrize(
    ("amounts", "sales"),
    [
        ([0.1, 0.2], 0.3),  # the float sum 0.30000000000000004 is shown as 0.3
        ([19.999], 20.0),  # to the cent, up
        ([0.004, 0.004, 0.004], 0.01),  # summed first (0.012), then rounded: rounding each would give 0.0
        ([0.006], 0.01),  # below the half cent rounds up
        ([0.004], 0.0),  # below a half cent rounds down
        ([2.675], 2.67),  # Python docs, round(): 2.675 is stored as 2.67499999..., so 2.67
        ([1e7, 1e7, 0.01], 20_000_000.01),  # large totals keep their cents
        ([9.99] * 10, 99.9),  # 99.90000000000002 in floating point
    ],
)
def test_sales_are_rounded_to_cents_after_summing(amounts: list[float], sales: float) -> None:
    assert counts([sale(a) for a in amounts])["sales"] == sales


def test_result_does_not_change_the_state() -> None:
    flow = FlowCounts()
    state = flow.initialize()
    for event in [door(3, 1), sale(0.1), sale(0.2)]:
        state = flow.agg(state, event)
    before = copy.deepcopy(state)
    first = flow.result(state)
    assert flow.result(state) == first
    assert state == before
    assert state[-1] == 0.1 + 0.2  # the state keeps full precision; only the result rounds


def test_state_survives_json() -> None:
    flow = FlowCounts()
    state = flow.initialize()
    for event in [door(3, 1), visit("arrive"), sale(2.675, 2), ticket("called"), heartbeat()]:
        state = flow.agg(state, event)
    restored = orjson.loads(orjson.dumps(state))
    assert restored == state
    assert flow.result(restored) == flow.result(state)


def test_initialize_gives_a_fresh_state_each_time() -> None:
    flow = FlowCounts()
    a, b = flow.initialize(), flow.initialize()
    flow.agg(a, door(4, 0))
    assert flow.result(b) == ZERO
