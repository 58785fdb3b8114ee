"""Shared checks run on every operator of `footfall.operators` that declares `_unit_test_params`.

Every module of the package is imported, so a new operator is picked up as soon as it declares
`_unit_test_params`. Each operator is built with every parameter set, driven by its sample inputs
and checked for:

- clone: a `copy.deepcopy` (or the operator's own `clone()`) behaves like a twin built and fed
  separately, and feeding the clone leaves the original alone;
- state round trip (`protocols.Stateful`): `from_state(to_state())`, through JSON text, behaves
  like the twin on further inputs and ends with the twin's state. The state is plain JSON data.
  A state returned by `to_state`, or passed to `from_state`, does not change with later updates;
- inputs unchanged: an input (event, dict, list, aggregation state) is the same after feeding it;
- before any data: the reads (`get`, `score_one`, `forecast`, `result(initialize())`, ...)
  return their documented empty value, and reading changes nothing.

A `protocols.WindowAggregation` is driven through `Folded`, which holds one state: its `agg`,
its state round trip (the state is the table value) and the state passed in are checked that way.

Sample inputs come, in this order, from the operator's own `_unit_test_inputs(params)`
classmethod, from `SAMPLES` below (keyed by class name), or from its family's sample
(`FAMILY_SAMPLES`: aggregations are fed events, forecasters a series). Each is a `Sample`: the
steps that feed the operator, the reads taken after each step, and the documented values of
reads before any data. `_unit_test_inputs(params)` returns the same as a dict of tuples:
`{"steps": [(method, args, kwargs), ...], "reads": [(method, args, kwargs), ...],
"empty": [((method, args, kwargs), value), ...]}`. A dotted method name (`book.open_alerts`)
reads through an attribute. `from_state` is called with the state and the constructor's keywords
(only the state where it takes nothing else), or as `RESTORE` says for the class.

Every comparison is against a twin built and fed separately, never against the object's own
earlier output. `test_sample_inputs_reach_the_state` makes sure a sample's first half changes
what its second half gives, so the clone and round-trip checks can fail.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import importlib
import inspect
import json
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import footfall.operators
from footfall.operators.alerting.detectors import Expected
from footfall.operators.forecasting.cold_start import PRIOR_LEVEL_PER_H
from footfall.operators.forecasting.forecast_select import Forecast
from footfall.operators.forecasting.vertical_profiles import SHAPES
from footfall.operators.kpis.flow import COUNTERS
from footfall.operators.kpis.quantiles import QuantileSketch
from footfall.operators.pipeline.stage import StoreContext
from footfall.operators.protocols import Detector, Forecaster, Stateful, Statistic, WindowAggregation
from footfall.schemas.events import DoorEvent, Heartbeat, PosEvent, QueueEvent, VisitEvent

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
T0 = 1_790_164_800_000  # 2026-09-23T12:00:00Z, a Wednesday: 13:00 in London, 14:00 in Madrid


# -- discovery --------------------------------------------------------------------------------------


def operator_classes() -> list[type]:
    """Every class of every module of `footfall.operators` that defines `_unit_test_params` itself."""
    found = []
    for info in sorted(pkgutil.walk_packages(footfall.operators.__path__, f"{footfall.operators.__name__}."),
                       key=lambda i: i.name):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and "_unit_test_params" in vars(cls):
                found.append(cls)
    return found


CLASSES = operator_classes()
CASES = [pytest.param(cls, params, id=f"{cls.__name__}-{i}")
         for cls in CLASSES for i, params in enumerate(cls._unit_test_params())]


# -- driving an operator ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One method call, or attribute read, on an operator (`name` may be dotted: `book.open_alerts`)."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def on(self, op: Any) -> Any:
        member = op
        for part in self.name.split("."):
            member = getattr(member, part)
        return member(*self.args, **self.kwargs) if callable(member) else member


def call(name: str, *args: Any, **kwargs: Any) -> Call:
    return Call(name, args, kwargs)


@dataclass
class Sample:
    """Sample inputs of one operator: `steps` feed it, `reads` are taken after each step.

    `empty` pairs reads before any data with their documented values. `stateless` marks an
    operator that holds configuration only: nothing it is given changes what it gives later.
    """

    steps: list[Call]
    reads: list[Call]
    empty: list[tuple[Call, Any]]
    stateless: bool = False

    def halves(self) -> tuple[list[Call], list[Call]]:
        middle = len(self.steps) // 2
        return self.steps[:middle], self.steps[middle:]


class Folded:
    """A `WindowAggregation` holding one state, so the shared checks drive it like any stateful operator."""

    def __init__(self, aggregation: Any, state: Any = None) -> None:
        self.aggregation = aggregation
        self.state = aggregation.initialize() if state is None else state
        #: Every state passed to `agg`, with a copy taken before: `agg` must leave it unchanged.
        self.passed: list[tuple[Any, Any]] = []

    def agg(self, event: Any) -> Any:
        self.passed.append((self.state, copy.deepcopy(self.state)))
        self.state = self.aggregation.agg(self.state, event)
        return self.aggregation.result(self.state)

    def result(self) -> Any:
        return self.aggregation.result(self.state)

    def to_state(self) -> Any:
        return self.state  # not a copy: a later `agg` must leave a state it was given unchanged


def build(cls: type, params: Mapping[str, Any]) -> Any:
    """A new operator (its own copy of `params`: they may hold objects), wrapped in `Folded` if an aggregation."""
    op = cls(**copy.deepcopy(dict(params)))
    return Folded(op) if isinstance(op, WindowAggregation) else op


def clone(subject: Any) -> Any:
    own = getattr(subject, "clone", None)
    return own() if callable(own) else copy.deepcopy(subject)


def restore(cls: type, params: Mapping[str, Any], state: Any) -> Any:
    """`cls.from_state(state)`, given the constructor's `params` unless the state holds its configuration."""
    subject = build(cls, params)
    if isinstance(subject, Folded):
        return Folded(subject.aggregation, state)
    if cls.__name__ in RESTORE:
        return RESTORE[cls.__name__](cls, copy.deepcopy(dict(params)), state)
    if len(inspect.signature(cls.from_state).parameters) == 1:
        return cls.from_state(state)
    return cls.from_state(state, **copy.deepcopy(dict(params)))


def run(subject: Any, steps: Sequence[Call], reads: Sequence[Call]) -> list[Any]:
    """The reads first, then per step what it returned and every read after it (deep copies: later steps can't
    change them)."""
    out = [comparable([read.on(subject) for read in reads])]
    for step in steps:
        given = step.on(subject)
        out.append(comparable([given, *(read.on(subject) for read in reads)]))
    return out


def comparable(value: Any) -> Any:
    """A deep copy to compare with `==`; an object without equality of its own compares by its `to_state()`."""
    if isinstance(value, list | tuple):
        return type(value)(comparable(v) for v in value) if not hasattr(value, "_fields") else copy.deepcopy(value)
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if hasattr(value, "to_state") and type(value).__eq__ is object.__eq__:
        return (type(value).__name__, comparable(value.to_state()))
    return copy.deepcopy(value)


def json_plain(state: Any) -> Any:
    """`state` after a trip through JSON text; raises on anything JSON has no type for."""
    return json.loads(json.dumps(state, allow_nan=False))


# -- sample inputs, per family and per operator -----------------------------------------------------

ENV = {"store_id": "s1", "region": "north", "zone": None, "vertical": "retail"}


def door(i: int, ts_ms: int, n_in: int = 1, n_out: int = 0) -> DoorEvent:
    return DoorEvent(event_id=f"d{i}", ts_ms=ts_ms, **ENV, door_id="main", sensor_id="c1", count_in=n_in,
                     count_out=n_out, interval_s=60)


def visit(i: int, ts_ms: int, action: str, dwell_s: float | None = None) -> VisitEvent:
    return VisitEvent(event_id=f"v{i}-{action}", ts_ms=ts_ms, **ENV, action=action, visit_id=f"v{i}", visitor_id=None,
                      dwell_s=dwell_s)


def sale(i: int, ts_ms: int, amount: float, items: int = 1) -> PosEvent:
    return PosEvent(event_id=f"p{i}", ts_ms=ts_ms, **ENV, transaction_id=f"t{i}", amount=amount, items=items,
                    currency="EUR", till_id=None, customer_id=None)


def ticket(ts_ms: int, action: str, ticket_id: str, counter: str | None = None, service: str = "teller",
           wait_s: float | None = None, service_s: float | None = None) -> QueueEvent:
    return QueueEvent(event_id=f"{ticket_id}-{action}-{ts_ms}", ts_ms=ts_ms, **{**ENV, "vertical": "bank"},
                      action=action, ticket_id=ticket_id, service=service, counter=counter, customer_id=None,
                      wait_s=wait_s, service_s=service_s)


def heartbeat(i: int, ts_ms: int) -> Heartbeat:
    return Heartbeat(event_id=f"h{i}", ts_ms=ts_ms, **ENV, sensor_id="c1", status="ok", device_id=None)


def mixed_events(t0: int = T0) -> list[Any]:
    """One of each kind of event and action, and a few more, a minute apart."""
    events = [
        door(1, 0, 3, 1), sale(1, 0, 12.5, 2), visit(1, 0, "arrive"), visit(1, 0, "leave", 300.0),
        ticket(0, "issued", "A1"), ticket(0, "called", "A1", "c1"), ticket(0, "served", "A1", "c1"),
        ticket(0, "abandoned", "A2"), ticket(0, "no_show", "A3"), heartbeat(1, 0), visit(2, 0, "leave", 45.5),
        sale(2, 0, 0.1), door(2, 0, 0, 2), visit(3, 0, "leave"), sale(3, 0, 0.2, 3), visit(4, 0, "arrive"),
    ]
    return [dataclasses.replace(e, ts_ms=t0 + i * 60_000) for i, e in enumerate(events)]


def aggregation_sample(folded: Folded) -> Sample:
    empty = EMPTY_RESULTS.get(type(folded.aggregation).__name__)
    return Sample(
        steps=[call("agg", e) for e in mixed_events()],
        reads=[call("result")],
        empty=[] if empty is None else [(call("result"), empty)],
    )


FORECAST_T0 = 1_798_153_200_000  # 2026-12-24T23:00:00Z: 15-minute buckets reach Christmas Day
FORECAST_READ_MS = FORECAST_T0 + 13 * HOUR_MS  # forecasts read from 12:00Z on Christmas Day, when shops are open
SERIES = [3.0, 8.0, 12.0, 5.0, None, 9.0, 13.0, 6.0, 4.0, 10.0, 11.0, 5.0, 7.0, 12.0]


def forecaster_sample(op: Any) -> Sample:
    b = op.bucket_ms
    return Sample(
        steps=[call("learn_one", y, FORECAST_T0 + i * b) for i, y in enumerate(SERIES)],
        reads=[call("forecast", 3, FORECAST_READ_MS)],
        # Documented: None where the forecaster cannot tell yet, everywhere before any data.
        empty=[(call("forecast", 3, FORECAST_READ_MS), [None, None, None])],
    )


#: Families whose inputs fit every member: any aggregation folds events, any forecaster learns a series.
FAMILY_SAMPLES: list[tuple[type, Callable[[Any], Sample]]] = [
    (Folded, aggregation_sample),
    (Forecaster, forecaster_sample),
]

#: `result(initialize())` of each aggregation, as documented: zero counts, None ratios and quantiles.
EMPTY_RETAIL = {
    "visitors": 0, "transactions": 0, "items": 0, "sales": 0.0, "conversion_rate": None, "avg_basket": None,
    "sales_per_visitor": None, "items_per_transaction": None, "dwell_n": 0, "dwell_mean_s": None,
    "dwell_p50_s": None, "dwell_p90_s": None,
}
EMPTY_FLOW = {**dict.fromkeys(COUNTERS, 0), "sales": 0.0}
EMPTY_RESULTS: dict[str, dict[str, Any]] = {
    "FlowCounts": EMPTY_FLOW,
    "RetailKpis": EMPTY_RETAIL,
    "BucketKpis": {**EMPTY_FLOW, **EMPTY_RETAIL},
}


def quantile_sketch_sample(op: QuantileSketch) -> Sample:
    other = QuantileSketch(op.rel_error, op.min_s)
    for x in [12.0, 45.0, 0.2]:
        other.update(x)
    return Sample(
        steps=[*(call("update", x) for x in [30, 0.5, 60, 600, 0]), call("merge", other),
               *(call("update", x) for x in [90.5, 1e-3, 7200, 61])],
        reads=[call("get", 0.5), call("get", 0.9), call("count"), call("mean"), call("min"), call("max"),
               call("total")],
        empty=[(call("get", 0.5), None), (call("count"), 0), (call("mean"), None), (call("min"), None),
               (call("max"), None), (call("total"), 0.0)],
    )


def occupancy_sample(op: Any) -> Sample:
    return Sample(
        steps=[call("update", T0, 3, 0), call("update", T0 + 300_000, 0, 4),  # one exit too many: drift
               call("update", T0 + 17 * HOUR_MS, 5, 1),  # after the next morning's reset
               call("update", T0 + 2 * HOUR_MS, 1, 0),  # older than that reset: late
               call("update", T0 + 18 * HOUR_MS, 0, 2), call("advance", T0 + 40 * HOUR_MS),
               call("update", T0 + 21 * HOUR_MS, 1, 0), call("update", T0 + 45 * HOUR_MS, 2, 1),
               call("update", T0 + 46 * HOUR_MS, 0, 5), call("update", T0 + 47 * HOUR_MS, 1, 0)],
        reads=[call("get"), call("drift"), call("reset_residual"), call("late"), call("last_reset_ms"),
               call("next_reset_ms")],
        empty=[(call("get"), 0), (call("drift"), 0), (call("reset_residual"), None), (call("late"), 0),
               (call("summary"), {"occupancy": 0, "drift": 0, "reset_residual": None, "last_reset_ms": None,
                                  "next_reset_ms": None, "late": 0})],
    )


def daily_reset_sample(op: Any) -> Sample:
    # Configuration only (no state): what it answers must not depend on what it answered before.
    days = [dt.date(2026, 3, 28), dt.date(2026, 3, 29), dt.date(2026, 10, 25), dt.date(2026, 10, 26)]
    return Sample(
        steps=[*(call("instant_ms", d) for d in days), call("next_after", T0), call("last_at_or_before", T0),
               call("next_after", T0 + 200 * DAY_MS)],
        reads=[],
        empty=[],
        stateless=True,
    )


def sliding_counts_sample(op: Any) -> Sample:
    q, s = op.quantities, op.slot_ms
    counts = [{q[0]: 1}, {q[-1]: 2}, {q[0]: 1, q[-1]: 1}, {}, {q[0]: 3}, {q[0]: 0}, {q[-1]: 1}, {q[0]: 1},
              {q[0]: 2}, {q[-1]: 4}, {}]
    times = [0.5, 1.2, 2.5, 5.8, 7.5, 2.1, 0.3, 40.0, 39.5, 500.0, 501.0]
    return Sample(
        steps=[call("update", int(f * s), c) for f, c in zip(times, counts, strict=True)],
        reads=[call("get_all"), call("watermark_ms"), call("late_by_ms", int(0.3 * s))],
        empty=[(call("get_all"), {w: dict.fromkeys(q, 0) for w in op.windows_ms}), (call("watermark_ms"), None),
               (call("late_by_ms", 0), -1)],
    )


def bucket_baseline_sample(op: Any) -> Sample:
    b, week = op.bucket_ms, op.buckets_per_week
    steps = []
    for k, n in enumerate([0, 1, 2, 4, 4, 7, week + 1, week + 2, week + 4, 3 * week + 5, 3 * week + 6]):
        values = {name: (10 + (7 * k + 3 * j) % 11) * (1.25 if name == "sales" else 1)
                  for j, name in enumerate(op.quantities)}
        steps += [call("compare", n * b, values), call("update", n * b, values)]
    return Sample(
        steps=steps,
        reads=[call("get"), call("last_bucket_ms")],
        empty=[(call("get"), {q: {"mean": None, "ewm": None} for q in op.quantities}), (call("last_week", b), None),
               (call("last_bucket_ms"), None)],
    )


def tumbling_buckets_sample(op: Any) -> Sample:
    b, g = op.bucket_ms, op.grace_ms

    def person(i: int, t: float) -> Call:
        return call("update", door(i, int(t), 1 + i % 3, i % 2))

    #  [0-----b)[b-----2b)[2b----3b)[3b----4b)[4b----5b)[5b----6b)
    #    x  x      x         x                               x x    (each bucket closes at its end + g)
    steps = [person(0, 0.3 * b), call("pop_closed"), person(1, 1.2 * b), call("pop_closed"), person(2, 0.9 * b),
             call("pop_closed"), person(3, 2.1 * b + g), call("pop_closed"),  # closes [0, b) and [b, 2b)
             call("advance", 3 * b + g), call("pop_closed"),  # closes [2b, 3b): nothing is open now
             person(4, 0.8 * b),  # late
             call("advance", 5 * b + g), call("pop_closed"),  # [3b, 4b) and [4b, 5b) close empty
             person(5, 5.5 * b + g), call("pop_closed"), person(6, 5.6 * b + g), call("pop_closed"),
             call("update", heartbeat(9, 7 * b + g)), call("advance", 9 * b + g), call("advance", 3 * b),
             call("pop_closed"), call("late_by_ms", int(0.8 * b))]
    return Sample(
        steps=steps,
        reads=[call("open_buckets"), call("watermark_ms"), call("next_close_ms"), call("get", b)],
        empty=[(call("pop_closed"), []), (call("open_buckets"), []), (call("get", 0), None),
               (call("next_close_ms"), None), (call("late_by_ms", 0), -1), (call("watermark_ms"), None)],
    )


def recent_event_ids_sample(op: Any) -> Sample:
    s = op.slot_ms
    seen = [("a", 0), ("b", 3), ("a", 5.5), ("c", 7), ("b", 5), ("a", 11), ("d", 20), ("a", 2), ("b", 19.5),
            ("d", 21), ("e", 40)]
    return Sample(
        steps=[call("seen", event_id, int(f * s)) for event_id, f in seen],
        reads=[call("__len__"), call("watermark_ms")],
        empty=[(call("__len__"), 0), (call("watermark_ms"), None)],
    )


def queue_kpis_sample(op: Any) -> Sample:
    def m(minutes: float) -> int:
        return T0 + int(minutes * 60_000)

    events = [
        ticket(m(0), "issued", "A1"), ticket(m(1), "issued", "A2"), ticket(m(2), "called", "A1", "c1"),
        ticket(m(6), "served", "A1", "c1"), ticket(m(7), "issued", "A3"), ticket(m(15), "called", "A2", "c1"),
        ticket(m(15), "called", "A2", "c1"),  # a duplicate
        ticket(m(16), "abandoned", "A3", wait_s=540.0), ticket(m(17), "served", "A4", "c2", service="loans",
                                                                service_s=300.0),
        ticket(m(18), "issued", "A4", service="loans"),  # its issue after its end
        ticket(m(19), "no_show", "A2", "c1"),
        *(ticket(m(20 + i), "issued", f"B{i}") for i in range(12)),
        ticket(m(40), "called", "B3", "c2", wait_s=1_000.0),
        ticket(m(41), "served", "A1", "c1"), ticket(m(42), "called", "A2", "c1"),  # late steps of ended tickets
    ]
    steps = [call("update", e) for e in events]
    steps += [call("advance", m(7 * 60)),  # hours later: open tickets go stale
              call("update", ticket(m(24 * 60), "issued", "C1")),  # the next day, after a daily reset
              call("update", ticket(m(24 * 60 + 5), "called", "C1", "c1")),
              call("update", ticket(m(30), "issued", "D1"))]  # before that reset: late when there is one
    return Sample(
        steps=steps,
        reads=[call("get"), call("waiting_now")],
        empty=[(call("get"), EMPTY_QUEUE), (call("waiting_now"), 0)],
    )


EMPTY_QUEUE_KPIS = {
    "issued": 0, "waiting_now": 0, "in_service_now": 0, "called": 0, "served": 0, "abandoned": 0, "no_show": 0,
    "expired": 0, "wait_n": 0, "wait_mean_s": None, "wait_p50_s": None, "wait_p90_s": None, "service_n": 0,
    "service_mean_s": None, "service_level_pct": None, "sl_within_target": 0, "sl_answered": 0,
    "sl_abandoned_late": 0, "counters_active": 0,
    "est_wait_s": 0.0,  # documented: 0.0 when nobody is waiting
    "est_wait_checked": 0, "est_wait_mae_s": None, "est_wait_bias_s": None,  # documented: None before the first
}
EMPTY_QUEUE = {"services": {}, "total": EMPTY_QUEUE_KPIS, "as_of_ms": None, "ignored": 0, "evicted": 0, "late": 0,
               "reset_dropped": 0, "last_reset_ms": None}


def horizon_scores_sample(op: Any) -> Sample:
    h2, h3 = min(2, op.horizons), min(3, op.horizons)
    rows = [(1, 20.0, 18.0, 16.0, 21.0, 14.0, 23.0), (1, 17.0, 19.0, 18.0, 22.0, None, None),
            (h2, 16.0, 20.0, None, None, None, None), (h2, None, 21.0, 15.0, 25.0, None, None),
            (h3, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0), (1, 5.0, 5.0, None, None, None, None),
            (h2, 9.0, float("nan"), None, None, None, None)]
    return Sample(
        steps=[call("add", *row) for row in rows],
        reads=[call("result", 2.75), call("overall", None)],
        empty=[(call("result", 2.75), {}),
               (call("overall", None), {"n": 0, "mae": None, "rmse": None, "mase": None, "smape": None,
                                        "coverage80": None, "coverage95": None})],
    )


EXPECTED = Expected(100.0, 87.0, 113.0, 80.0, 120.0)


def residual_detector_sample(op: Any) -> Sample:
    steps = []
    for i, y in enumerate([104.0, 97.0, 101.0, 96.0, 240.0, 99.0, 60.0, 55.0, 58.0, 100.0, 103.0, 0.0]):
        steps += [call("score_one", y, EXPECTED, slot=i % 3),
                  call("learn_one", y, EXPECTED, learned=min(max(y, 80.0), 120.0), slot=i % 3)]
        if i == 8:
            steps.append(call("reset_cusum"))
    return Sample(
        steps=steps,
        reads=[call("score_one", 130.0, EXPECTED), call("score_one", 70.0, EXPECTED, slot=1), call("scale"),
               call("cusum_up"), call("cusum_down")],
        # Documented: high = anomalous; a count at its forecast before anything is learned scores 0.
        empty=[(call("score_one", 100.0, EXPECTED), 0.0), (call("score_one", 100.0, EXPECTED, slot=2), 0.0),
               (call("scale"), None)],
    )


def multi_signal_sample(op: Any) -> Sample:
    steps = []
    for i in range(60):
        x = {"queue_wait_s": 60.0 + (7 * i) % 11 - 5, "dwell_s": 600.0 + (13 * i) % 17 - 8,
             "conversion_rate": None, "constant": 3.0}
        steps += [call("score_one", x), call("learn_one", x)]
    probe = {"queue_wait_s": 75.0, "dwell_s": 600.0, "constant": 3.0}
    return Sample(
        steps=steps,
        reads=[call("score_one", probe), call("explain", probe)],
        # Documented: a signal is scored only after `grace_period` values.
        empty=[(call("score_one", probe), 0.0), (call("explain", probe), (0.0, None))],
    )


def queue_wait_breach_sample(op: Any) -> Sample:
    return Sample(
        steps=[call("learn_one", w) for w in [700.0, 300.0, None, 720.0, 1500.0, 900.0, 200.0, 650.0, None, 950.0]],
        reads=[call("score_one"), call("hit")],
        empty=[(call("score_one"), 0.0), (call("hit"), None)],
    )


def silent_sensor_sample(op: Any) -> Sample:
    steps = [call("learn_one", 3.0, None, None, slot=10, judge=False) for _ in range(4)]
    steps += [call("learn_one", 0.0, 40.0, 12.0, slot=10) for _ in range(5)]
    steps += [call("learn_one", None, 40.0, 12.0, slot=10), call("learn_one", 5.0, 40.0, 12.0, slot=11),
              call("learn_one", 0.0, 3.2, 0.0, slot=11), call("learn_one", 0.0, 3.2, 0.0, slot=11),
              call("learn_one", 0.0, None, None)]
    return Sample(
        steps=steps,
        reads=[call("score_one"), call("hit"), call("zero_share", 10), call("zero_share", 11)],
        # Documented: one half before any bucket of the slot.
        empty=[(call("score_one"), 0.0), (call("hit"), None), (call("zero_share", 10), 0.5)],
    )


def entry_exit_drift_sample(op: Any) -> Sample:
    pairs = [(50, 48), (60, 50), (None, 3), (55, 30), (40, 10), (20, 60), (0, 0), (35, 5)]
    return Sample(
        steps=[call("learn_one", a, d) for a, d in pairs],
        reads=[call("score_one"), call("hit")],
        empty=[(call("score_one"), 0.0), (call("hit"), None)],
    )


def alert_book_sample(op: Any) -> Sample:
    b = 900_000

    def raised(kind: str, severity: str, i: int, observed: float) -> Call:
        return call("raise_alert", kind, severity, bucket_start_ms=T0 + i * b, bucket_end_ms=T0 + (i + 1) * b,
                    now_ms=T0 + (i + 1) * b, observed=observed, expected=10.0, expected_lo=5.0, expected_hi=15.0,
                    score=observed / 15.0, explanation=f"{kind} {observed}")

    steps = [raised("arrivals_high", "warning", 0, 30.0), raised("arrivals_high", "critical", 1, 50.0),
             raised("arrivals_high", "critical", 1, 50.0), call("clear", "arrivals_high", T0 + 3 * b),
             raised("queue_wait", "warning", 3, 20.0), call("clear", "arrivals_high", T0 + 7 * b),
             raised("arrivals_high", "warning", 8, 40.0), call("clear", "queue_wait", T0 + 9 * b),
             call("clear", "arrivals_high", T0 + 14 * b), raised("arrivals_high", "info", 40, 16.0)]
    return Sample(
        steps=steps,
        reads=[call("open_alerts"), call("recent")],
        empty=[(call("open_alerts"), []), (call("clear", "arrivals_high", T0), [])],
    )


def store_watch_sample(op: Any) -> Sample:
    b, h = op.bucket_ms, op.lead + 1
    counts = [98, 103, 101, 400, 97, 99, 0, 0, 0, 0, 100, 102, 250, 260, None, 99, 101]
    steps = []
    for i, count in enumerate(counts):
        start = T0 + i * b
        steps.append(call("note_forecast", Forecast(start - b, start, b, "m", [100.0] * h, [87.0] * h, [113.0] * h,
                                                    [80.0] * h, [120.0] * h)))
        signals = {"occupancy": 40.0 + 30 * (i % 3), "departures": 90.0 + i,
                   "queue_wait_s": [200, 700, 800, 900][i % 4], "dwell_s": 300.0 + 7 * i}
        steps.append(call("learn_bucket", start, start + b, count, signals=signals))
        if i == 5:
            steps.append(call("learn_bucket", start, start + b, 500))  # a repeat: judged already
        steps.append(call("check_partial", start + b + b // 2, start + b, start + 2 * b, 20.0 * (i % 4) + 90))
    return Sample(
        steps=steps,
        reads=[call("expected_for", T0 + len(counts) * b), call("judged"), call("flag_run"),
               call("book.open_alerts")],
        empty=[(call("expected_for", T0), None), (call("judged"), 0), (call("book.open_alerts"), []),
               (call("check_partial", T0 + b // 2, T0, T0 + b, 1_000.0), [])],
    )


def store_flow_sample(op: Any) -> Sample:
    events = [door(1, T0 + 60_000, 3), sale(1, T0 + 120_000, 20.0), door(1, T0 + 130_000),  # a duplicate
              door(2, T0 + 16 * 60_000, 1, 2), visit(1, T0 + 17 * 60_000, "arrive"),
              visit(1, T0 + 30 * 60_000, "leave", 780.0), ticket(T0 + 31 * 60_000, "issued", "A1"),
              door(3, T0 + 50_000), door(4, T0 + 21 * 60_000), door(5, T0 + 10 * 60_000),  # the last one late
              heartbeat(1, T0 + 40 * 60_000), door(6, T0 + DAY_MS + 60_000, 2, 1),
              ticket(T0 + DAY_MS + 120_000, "called", "A1", "c1")]
    steps = []
    for e in events:
        steps += [call("update", e), call("pop_closed")]
        if e.event_id == "h1":
            steps.append(call("pop_touched"))
    steps += [call("advance", T0 + DAY_MS + HOUR_MS), call("pop_closed"), call("pop_touched")]
    windows = {"5m": 300_000, "15m": 900_000, "60m": 3_600_000}
    sliding = ("arrivals", "departures", "transactions", "tickets_issued")
    return Sample(
        steps=steps,
        reads=[call("live"), call("next_close_ms")],
        empty=[(call("live"), {
            "as_of_ms": None, "windows": {name: dict.fromkeys(sliding, 0) for name in windows},
            "occupancy": {"occupancy": 0, "drift": 0, "reset_residual": None, "last_reset_ms": None,
                          "next_reset_ms": None, "late": 0},
            "day": None, "today": None, "same_day_last_week": None, "queue": None, "duplicates": 0, "late": 0,
            "restated": 0,
        }), (call("pop_closed"), []), (call("pop_touched"), []), (call("next_close_ms"), None)],
    )


def store_pipeline_sample(op: Any) -> Sample:
    flow = store_flow_sample(op.flow)
    steps = [call("pop_outputs", live=True) if c.name == "pop_touched" else
             call("pop_outputs") if c.name == "pop_closed" else c for c in flow.steps]
    return Sample(
        steps=steps,
        reads=[call("flow.live"), call("next_close_ms"), call("region"), call("vertical")],
        empty=[(call("flow.live"), flow.empty[0][1]), (call("pop_outputs"), []), (call("next_close_ms"), None),
               (call("region"), None), (call("vertical"), None)],
    )


def stage_factory_sample(op: Any) -> Sample:
    # Configuration only (a `StageFactory`): each store's stage it builds starts from the state given.
    context = StoreContext("s1", 900_000, "Europe/London", "north", "retail", T0, 12.0, None)
    return Sample(steps=[call("build", context, None), call("build", context, None), call("build", context, None)],
                  reads=[], empty=[], stateless=True)


def vertical_profile_sample(op: Any) -> Sample:
    sample = forecaster_sample(op)
    # Documented: before any data, the prior level times the vertical's shape at that local hour of the
    # week, times the bucket's length in hours (buckets of at most an hour here: one hour's shape).
    assert op.bucket_ms <= HOUR_MS
    expected = []
    for k in range(3):
        local = dt.datetime.fromtimestamp((FORECAST_READ_MS + k * op.bucket_ms) / 1000, ZoneInfo(op.tz))
        shape = SHAPES[op.vertical][local.weekday() * 24 + local.hour]
        expected.append(PRIOR_LEVEL_PER_H[op.vertical] * shape * op.bucket_ms / HOUR_MS)
    assert all(v > 0 for v in expected)  # open hours: a zero shape would tell nothing
    sample.empty = [(call("forecast", 3, FORECAST_READ_MS), pytest.approx(expected, rel=1e-12))]
    return sample


#: Sample inputs of the operators no family sample fits, by class name.
SAMPLES: dict[str, Callable[[Any], Sample]] = {
    "AlertBook": alert_book_sample,
    "BucketBaseline": bucket_baseline_sample,
    "DailyReset": daily_reset_sample,
    "EntryExitDrift": entry_exit_drift_sample,
    "ForecastsAndAlerts": stage_factory_sample,
    "StaffingAdvice": stage_factory_sample,
    "HorizonScores": horizon_scores_sample,
    "MultiSignalDetector": multi_signal_sample,
    "Occupancy": occupancy_sample,
    "QuantileSketch": quantile_sketch_sample,
    "QueueKpis": queue_kpis_sample,
    "QueueWaitBreach": queue_wait_breach_sample,
    "RecentEventIds": recent_event_ids_sample,
    "ResidualDetector": residual_detector_sample,
    "SilentSensor": silent_sensor_sample,
    "SlidingCounts": sliding_counts_sample,
    "StoreFlow": store_flow_sample,
    "StorePipeline": store_pipeline_sample,
    "StoreWatch": store_watch_sample,
    "TumblingBuckets": tumbling_buckets_sample,
    "VerticalProfile": vertical_profile_sample,
}

#: How to call `from_state` where it takes more than the state and the constructor's keywords (see
#: `protocols.Stateful`): a pipeline's state comes in two parts, the flow's and each stage's.
RESTORE: dict[str, Callable[[type, dict[str, Any], Any], Any]] = {
    "StorePipeline": lambda cls, params, state: cls.from_state(params.pop("store_id"), params.pop("params", None),
                                                               params.pop("stages", ()), state, None),
}


def _as_call(spec: Sequence[Any]) -> Call:
    name, *rest = spec
    args = tuple(rest[0]) if rest else ()
    kwargs = dict(rest[1]) if len(rest) > 1 else {}
    return Call(name, args, kwargs)


def sample_for(cls: type, params: Mapping[str, Any], subject: Any) -> Sample | None:
    """The operator's sample inputs: its own `_unit_test_inputs`, else `SAMPLES`, else its family's; or None."""
    if "_unit_test_inputs" in vars(cls):
        given = cls._unit_test_inputs(copy.deepcopy(dict(params)))
        return Sample([_as_call(s) for s in given["steps"]], [_as_call(r) for r in given.get("reads", [])],
                      [(_as_call(r), v) for r, v in given.get("empty", [])], bool(given.get("stateless", False)))
    if cls.__name__ in SAMPLES:
        return SAMPLES[cls.__name__](subject)
    for family, make in FAMILY_SAMPLES:
        if isinstance(subject, family):
            return make(subject)
    return None


def subject_and_sample(cls: type, params: Mapping[str, Any]) -> tuple[Any, Sample]:
    subject = build(cls, params)
    sample = sample_for(cls, params, subject)
    if sample is None:
        pytest.skip(f"{cls.__name__} has no sample inputs (test_every_operator_has_sample_inputs fails for it)")
    return subject, sample


# -- the checks -------------------------------------------------------------------------------------
def test_every_operator_has_sample_inputs() -> None:
    missing = sorted({f"{case.values[0].__module__}.{case.values[0].__name__}" for case in CASES
                      if sample_for(case.values[0], case.values[1], build(*case.values)) is None})
    assert not missing, (f"these declare `_unit_test_params` but have no sample inputs: give each a "
                         f"`_unit_test_inputs(params)` classmethod, or add it to SAMPLES in {__name__}: {missing}")



@pytest.mark.parametrize(("cls", "params"), CASES)
def test_sample_inputs_reach_the_state(cls: type, params: dict[str, Any]) -> None:
    """A sample's first half changes what its second half gives: else the checks below could not fail."""
    subject, sample = subject_and_sample(cls, params)
    head, tail = sample.halves()
    assert head and tail, "a sample needs steps in both halves"
    run(subject, head, sample.reads)
    fresh = build(cls, params)
    if sample.stateless:
        assert not isinstance(subject, Stateful)
        assert run(subject, tail, sample.reads) == run(fresh, tail, sample.reads)
    else:
        assert run(subject, tail, sample.reads) != run(fresh, tail, sample.reads)


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_a_clone_behaves_like_a_twin_and_is_independent(cls: type, params: dict[str, Any]) -> None:
    original, sample = subject_and_sample(cls, params)
    head, tail = sample.halves()
    run(original, head, sample.reads)
    copied = clone(original)
    assert copied is not original

    twin = build(cls, params)
    run(twin, head, sample.reads)
    assert run(copied, tail, sample.reads) == run(twin, tail, sample.reads)

    # The clone went on alone: the original is still where the head left it.
    other_twin = build(cls, params)
    run(other_twin, head, sample.reads)
    assert run(original, tail, sample.reads) == run(other_twin, tail, sample.reads)


#: Operators whose state goes out as plain data: `Stateful` ones, and aggregations (the state is the table value).
STATEFUL_CASES = [case for case in CASES if isinstance(build(*case.values), Folded | Stateful)]


@pytest.mark.parametrize(("cls", "params"), STATEFUL_CASES)
def test_state_round_trip(cls: type, params: dict[str, Any]) -> None:
    op, sample = subject_and_sample(cls, params)
    head, tail = sample.halves()
    run(op, head, sample.reads)
    state = op.to_state()
    # Plain data: JSON text holds it, and it comes back equal (no tuples, no int keys, no objects).
    text = json.dumps(state, allow_nan=False)
    assert json.loads(text) == state
    saved = copy.deepcopy(state)

    restored = restore(cls, params, json.loads(text))
    given = json.loads(text)
    restored_from_given = restore(cls, params, given)
    twin = build(cls, params)
    run(twin, head, sample.reads)
    assert run(restored, tail, sample.reads) == run(twin, tail, sample.reads)
    assert json_plain(restored.to_state()) == json_plain(twin.to_state())

    # Later updates change neither a state passed in nor a state returned.
    run(restored_from_given, tail, sample.reads)
    assert given == json.loads(text)
    run(op, tail, sample.reads)
    assert state == saved


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_inputs_are_not_changed(cls: type, params: dict[str, Any]) -> None:
    subject, sample = subject_and_sample(cls, params)
    before = [comparable((step.args, dict(step.kwargs))) for step in sample.steps]
    run(subject, sample.steps, sample.reads)
    for step, (args, kwargs) in zip(sample.steps, before, strict=True):
        assert comparable((step.args, dict(step.kwargs))) == (args, kwargs), f"{step.name} changed its input"
    for given, copied in getattr(subject, "passed", []):
        assert given == copied, "agg changed the state passed in"


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_before_any_data(cls: type, params: dict[str, Any]) -> None:
    subject, sample = subject_and_sample(cls, params)
    assert sample.empty or sample.stateless, "document the reads before any data in the sample's `empty`"
    for read, documented in sample.empty:
        assert read.on(subject) == documented, read
    if isinstance(subject, Stateful) and not isinstance(subject, Folded):
        if len(inspect.signature(cls.from_state).parameters) > 1:
            # Configuration passed apart from the state: `from_state(None)` is an empty operator.
            empty = restore(cls, params, None)
            for read, documented in sample.empty:
                assert read.on(empty) == documented, read
        assert json_plain(subject.to_state()) == json_plain(build(cls, params).to_state())
    # Reading changed nothing: fed now, it gives what a twin never read gives.
    twin = build(cls, params)
    assert run(subject, sample.steps, sample.reads) == run(twin, sample.steps, sample.reads)


def test_every_family_is_covered() -> None:
    """Each declared family has at least one operator in the suite: its sample inputs are in use."""
    built = [build(*case.values) for case in CASES]
    for family in (Statistic, Forecaster, Detector, Stateful):
        assert any(isinstance(op, family) for op in built), family.__name__
    assert any(isinstance(op, Folded) for op in built), "WindowAggregation"

