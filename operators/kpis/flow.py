"""What one bucket of customer flow counts: the aggregation of events into counters.

An aggregation is three pure methods, kept apart from where its state is stored
(`protocols.WindowAggregation`): `initialize()` makes an empty state, `agg(state, event)`
folds one event in and returns the new state, leaving the one passed in unchanged, and
`result(state)` reads it. The state is a plain list, so a Faust table (JSON) holds it
without a custom codec.

Counting rules:

- `arrivals` = people in through a door counter + visits that started;
  `departures` = people out + visits that ended. A store reports its traffic
  through door counters or through visit tracking; a store sending both for the
  same people would count them twice.
- queue tickets count per step (`tickets_issued`, `tickets_served`, ...).
- `sales` is the sum of POS amounts, `items` the sum of items sold.

Examples
--------
>>> from footfall.schemas.events import DoorEvent, PosEvent
>>> flow = FlowCounts()
>>> state = flow.initialize()
>>> door = DoorEvent(event_id="a", store_id="s", ts_ms=0, region=None, zone=None, vertical="retail",
...                  door_id="d", sensor_id="c", count_in=7, count_out=2, interval_s=60)
>>> state = flow.agg(state, door)
>>> sale = PosEvent(event_id="b", store_id="s", ts_ms=5, region=None, zone=None, vertical="retail",
...                 transaction_id="t", amount=12.5, items=3, currency="EUR", till_id=None, customer_id=None)
>>> state = flow.agg(state, sale)
>>> r = flow.result(state)
>>> r["arrivals"], r["departures"], r["transactions"], r["sales"], r["events"]
(7, 2, 1, 12.5, 2)

"""

from __future__ import annotations

from typing import Any

from footfall.schemas.events import DoorEvent, Event, Heartbeat, PosEvent, QueueEvent, VisitEvent

__all__ = ["COUNTERS", "FlowCounts"]

#: Integer counters of a bucket, in state order; `sales` (a float) comes after them.
COUNTERS: tuple[str, ...] = (
    "arrivals",
    "departures",
    "door_in",
    "door_out",
    "visits_started",
    "visits_ended",
    "transactions",
    "items",
    "tickets_issued",
    "tickets_called",
    "tickets_served",
    "tickets_abandoned",
    "tickets_no_show",
    "heartbeats",
    "events",
)
_I = {name: i for i, name in enumerate(COUNTERS)}
_SALES = len(COUNTERS)
_TICKET_INDEX = {
    "issued": _I["tickets_issued"],
    "called": _I["tickets_called"],
    "served": _I["tickets_served"],
    "abandoned": _I["tickets_abandoned"],
    "no_show": _I["tickets_no_show"],
}


class FlowCounts:
    """Counts arrivals, departures, sales and queue steps of the events in one bucket.

    State: a list of the `COUNTERS` (ints) followed by `sales` (float).
    """

    @classmethod
    def _unit_test_params(cls):
        yield {}

    def initialize(self) -> list[Any]:
        return [0] * len(COUNTERS) + [0.0]

    def agg(self, state: list[Any], event: Event) -> list[Any]:
        """A new state: `state` with `event` folded in (`state` itself is left unchanged)."""
        # A copy, not the state in place: the state passed in may be a saved table value or a
        # bucket's published state. Measured with timeit, the copy adds about 0.1 us an event to
        # this method, within the noise of the 8 to 10 us `StoreFlow` spends on one event.
        state = list(state)
        state[_I["events"]] += 1
        if isinstance(event, DoorEvent):
            state[_I["door_in"]] += event.count_in
            state[_I["door_out"]] += event.count_out
            state[_I["arrivals"]] += event.count_in
            state[_I["departures"]] += event.count_out
        elif isinstance(event, VisitEvent):
            if event.action == "arrive":
                state[_I["visits_started"]] += 1
                state[_I["arrivals"]] += 1
            else:
                state[_I["visits_ended"]] += 1
                state[_I["departures"]] += 1
        elif isinstance(event, PosEvent):
            state[_I["transactions"]] += 1
            state[_I["items"]] += event.items
            state[_SALES] += event.amount
        elif isinstance(event, QueueEvent):
            state[_TICKET_INDEX[event.action]] += 1
        elif isinstance(event, Heartbeat):
            state[_I["heartbeats"]] += 1
        return state

    def result(self, state: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = dict(zip(COUNTERS, state, strict=False))
        out["sales"] = round(state[_SALES], 2)
        return out
