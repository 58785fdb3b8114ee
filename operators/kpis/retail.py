"""Shop KPIs of one bucket (or day): visitors, conversion, basket, dwell, for retail and telecom shops.

An aggregation in three pure methods, like `flow.FlowCounts`, so `TumblingBuckets`
can run it per bucket; `merge` adds two states up (buckets into a day).

Definitions:

- `visitors`: people in through door counters plus visits that started (`arrive`),
  as `flow`'s `arrivals`: a store reports its traffic by one of the two, not both.
- `transactions`, `items`, `sales`: POS events, items and amounts summed (`sales`
  rounded to cents in the result).
- `conversion_rate` = transactions / visitors (a fraction; may exceed 1 when
  people buy twice or sensors miss entries; None with 0 visitors).
- `avg_basket` = sales / transactions, `items_per_transaction` = items /
  transactions (None with 0 transactions); `sales_per_visitor` = sales / visitors
  (None with 0 visitors).
- `dwell_mean_s` (exact), `dwell_p50_s`, `dwell_p90_s` (`QuantileSketch`, 2 %
  error) over visit `leave` events that carry `dwell_s`; `dwell_n` counts them.
  None when there are none.

Examples
--------
>>> from footfall.schemas.events import DoorEvent, PosEvent, VisitEvent
>>> envelope = {"event_id": "e", "store_id": "s", "ts_ms": 0, "region": None, "zone": None, "vertical": "retail"}
>>> events = [
...     DoorEvent(**envelope, door_id="d", sensor_id="c", count_in=8, count_out=0, interval_s=60),
...     PosEvent(**envelope, transaction_id="t1", amount=30.0, items=2, currency="EUR", till_id=None,
...              customer_id=None),
...     VisitEvent(**envelope, action="leave", visit_id="v1", visitor_id=None, dwell_s=300.0),
...     PosEvent(**envelope, transaction_id="t2", amount=12.5, items=3, currency="EUR", till_id=None,
...              customer_id=None),
...     VisitEvent(**envelope, action="arrive", visit_id="v2", visitor_id=None, dwell_s=None),
... ]
>>> kpis = RetailKpis()
>>> state = kpis.initialize()
>>> for event in events:
...     state = kpis.agg(state, event)
...     r = kpis.result(state)
...     print(r["visitors"], r["transactions"], r["conversion_rate"], r["avg_basket"], r["dwell_mean_s"])
8 0 0.0 None None
8 1 0.125 30.0 None
8 1 0.125 30.0 300.0
8 2 0.25 21.25 300.0
9 2 0.2222222222222222 21.25 300.0

"""

from __future__ import annotations

from typing import Any

from footfall.operators.kpis.quantiles import QuantileSketch
from footfall.schemas.events import DoorEvent, Event, PosEvent, VisitEvent

__all__ = ["RetailKpis"]

# State: [visitors, transactions, items, sales, dwell sketch state].
_VISITORS, _TRANSACTIONS, _ITEMS, _SALES, _DWELL = range(5)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


class RetailKpis:
    """Visitors, sales, conversion and dwell of the events in one bucket (see the module docstring).

    State: the plain list `[visitors, transactions, items, sales, dwell_sketch_state]`.
    """

    @classmethod
    def _unit_test_params(cls):
        yield {}

    def initialize(self) -> list[Any]:
        return [0, 0, 0, 0.0, QuantileSketch().to_state()]

    def agg(self, state: list[Any], event: Event) -> list[Any]:
        """A new state: `state` with `event` folded in (`state` itself is left unchanged); other kinds are ignored."""
        # A shallow copy is enough: its slots are replaced, never changed in place (the dwell
        # sketch's state is rebuilt by `to_state`). See `flow.FlowCounts.agg` for the cost.
        state = list(state)
        if isinstance(event, DoorEvent):
            state[_VISITORS] += event.count_in
        elif isinstance(event, VisitEvent):
            if event.action == "arrive":
                state[_VISITORS] += 1
            elif event.dwell_s is not None:
                dwell = QuantileSketch.from_state(state[_DWELL])
                dwell.update(event.dwell_s)
                state[_DWELL] = dwell.to_state()
        elif isinstance(event, PosEvent):
            state[_TRANSACTIONS] += 1
            state[_ITEMS] += event.items
            state[_SALES] += event.amount
        return state

    def merge(self, state: list[Any], other: list[Any]) -> list[Any]:
        """A new state holding both (e.g. a day from its buckets)."""
        dwell = QuantileSketch.from_state(state[_DWELL])
        dwell.merge(QuantileSketch.from_state(other[_DWELL]))
        return [
            state[_VISITORS] + other[_VISITORS],
            state[_TRANSACTIONS] + other[_TRANSACTIONS],
            state[_ITEMS] + other[_ITEMS],
            state[_SALES] + other[_SALES],
            dwell.to_state(),
        ]

    def result(self, state: list[Any]) -> dict[str, Any]:
        visitors, transactions, items, sales = state[_VISITORS], state[_TRANSACTIONS], state[_ITEMS], state[_SALES]
        dwell = QuantileSketch.from_state(state[_DWELL])
        return {
            "visitors": visitors,
            "transactions": transactions,
            "items": items,
            "sales": round(sales, 2),
            "conversion_rate": _ratio(transactions, visitors),
            "avg_basket": _ratio(sales, transactions),
            "sales_per_visitor": _ratio(sales, visitors),
            "items_per_transaction": _ratio(items, transactions),
            "dwell_n": dwell.count,
            "dwell_mean_s": dwell.mean,
            "dwell_p50_s": dwell.get(0.5),
            "dwell_p90_s": dwell.get(0.9),
        }
