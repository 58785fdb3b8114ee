"""The staffing stage: how many counters a bank branch or telecom shop needs, for each interval ahead.

At each closed bucket of a store with a queue, the forecasts-and-alerts stage has just
forecast its `tickets_issued` for the next buckets. For each of them this stage finds the
fewest counters that serve `target_sl` of the customers within `answer_s`
(`staffing.erlang.StaffingTarget`), staffing on the forecast's upper 80 % bound (a
quiet forecast should not leave a queue when the day runs busy): Erlang A once the store's
customers have been seen to give up (their mean patience is learned from abandoned
tickets, censored by the waits of those served), Erlang C before. The mean service time
is learned from served tickets (`staffing.estimators`). Beside each recommendation it
says how the queue would do with the counters open now (serving, or busy within the last two
service times: `StoreStaffing.counters_open`), and, when those are too few for the next
interval, an advice line in words:
"3 counters open, service level heading to 61 %; 4 bring it to 86 %".
Each service (teller, advice, repair...) also gets its share of the next interval's
tickets and the counters it would need on its own (`services`); the advice staffs the
pooled line, as a branch's counters call any ticket.

A store without queue tickets, or before its first served ticket, gets no staffing record.
A retail store gets associates for each interval instead: forecast visitors per hour over a
target shopper-to-associate ratio (`shoppers_per_associate`, ShopperTrak's STAR metric), with
the queue fields None. The ratio is the store's to set: events carry no associates on the
floor, so the ratio at which conversion peaks cannot be learned from them.

Examples
--------
>>> from footfall.operators.pipeline.stage import ClosedBucket, ForecastOutput, StoreContext
>>> from footfall.operators.forecasting.forecast_select import Forecast
>>> from footfall.operators.forecasting.store_forecast import PublishedForecast
>>> from footfall.schemas.events import QueueEvent
>>> config = StaffingAdvice(answer_s=600, target_sl=0.8)
>>> ctx = StoreContext("bank-001", bucket_ms=900_000, tz="UTC", vertical="bank")
>>> stage = config.build(ctx, None)
>>> def served(i, counter, service_s=300.0, wait_s=120.0):
...     return QueueEvent(event_id=f"q{i}", store_id="bank-001", ts_ms=600_000 + i, region=None, zone=None,
...                       vertical="bank", action="served", ticket_id=f"A{i}", service="teller", counter=counter,
...                       customer_id=None, wait_s=wait_s, service_s=service_s)
>>> for i in range(4):
...     stage.on_event(served(i, counter=str(1 + i % 2)), ctx)
>>> forecast = Forecast(0, 900_000, 900_000, "m", [6.0, 12.0], [4.0, 9.0], [8.0, 15.0], [3.0, 8.0], [9.0, 17.0])
>>> outputs = [ForecastOutput(PublishedForecast("tickets_issued", False, forecast))]
>>> [record] = stage.on_bucket_closed(ClosedBucket(0, 900_000, {}, outputs), ctx)
>>> [(p["arrivals"], p["agents"], round(p["service_level"], 3)) for p in record.points]
[(8.0, 4, 0.974), (15.0, 6, 0.92)]
>>> record.advice  # 8 customers of 5 minutes each in 15 minutes: 2 counters cannot keep up
'2 counters open, service level heading to 0 %; 4 bring it to 97 %'
>>> stage.on_event(served(9, counter="3"), ctx)
>>> stage.on_bucket_closed(ClosedBucket(0, 900_000, {}, outputs), ctx)[0].advice
'3 counters open, service level heading to 59 %; a 4th brings it to 97 %'

A shop floor: 8 visitors per quarter hour at the upper bound are 32 an hour, 3 associates at 15 each.

>>> shop = StoreContext("shop-1", bucket_ms=900_000, tz="UTC", vertical="retail")
>>> outputs = [ForecastOutput(PublishedForecast("arrivals", False, forecast))]
>>> [floor] = config.build(shop, None).on_bucket_closed(ClosedBucket(0, 900_000, {}, outputs), shop)
>>> floor.model, [(p["arrivals"], p["agents"]) for p in floor.points]
('ratio', [(8.0, 3), (15.0, 4)])

"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from footfall.operators.pipeline.stage import ClosedBucket, ForecastOutput, OpenBucket, StoreContext
from footfall.operators.quality.grade import INCOMPLETE
from footfall.operators.staffing.erlang import StaffingTarget
from footfall.operators.staffing.estimators import Patience, ServiceTime
from footfall.schemas.events import Event, QueueEvent

__all__ = ["StaffingAdvice", "StaffingOutput", "StoreStaffing"]

#: The forecast series staffing reads, and the bound it staffs on.
SERIES = "tickets_issued"
QUANTILES = ("forecast", "hi80", "hi95")
#: Retail stores staff their floor on forecast visitors.
RETAIL_SERIES = "arrivals"
#: Open tickets followed at most (a branch has tens waiting; the rest are tickets whose end was lost).
MAX_OPEN_TICKETS = 500
#: Counters and services followed at most per store (a branch has a handful; the rest is bad input).
MAX_COUNTERS = 200
MAX_SERVICES = 20
#: A counter counts as open for two mean service times after its last call or end, within these bounds.
MIN_OPEN_WINDOW_S = 300.0
MAX_OPEN_WINDOW_S = 1800.0


@dataclass(frozen=True)
class StaffingOutput:
    """One store's staffing for each forecast interval ahead, and the advice line for now.

    Queue stores (`model` erlang_c or erlang_a) get counters; retail stores (`model` ratio)
    get associates in `points[...]["agents"]`, with the queue fields None.
    """

    kind: ClassVar[str] = "staffing"
    made_at_ms: int
    bucket_ms: int
    model: str
    answer_s: float | None
    target_sl: float | None
    shrinkage: float
    quantile: str
    aht_s: float | None
    service_cv: float | None
    patience_s: float | None
    counters_active: int | None
    points: list[dict[str, Any]] = field(default_factory=list)
    advice: str | None = None
    services: list[dict[str, Any]] = field(default_factory=list)
    shoppers_per_associate: float | None = None
    quality: str | None = None  # the grade of the bucket it was made at (retail: its forecasts' door counts)

    @property
    def slot(self) -> str:
        return f"staffing:{self.made_at_ms}"

    def fields(self) -> dict[str, Any]:
        return {"made_at_ms": self.made_at_ms, "bucket_ms": self.bucket_ms, "model": self.model,
                "answer_s": self.answer_s, "target_sl": self.target_sl, "shrinkage": self.shrinkage,
                "quantile": self.quantile, "aht_s": self.aht_s, "service_cv": self.service_cv,
                "patience_s": self.patience_s, "counters_active": self.counters_active, "points": self.points,
                "advice": self.advice, "services": self.services,
                "shoppers_per_associate": self.shoppers_per_associate, "quality": self.quality}


@dataclass(frozen=True)
class StaffingAdvice:
    """Configuration of the staffing stage (see the module docstring).

    Parameters
    ----------
    answer_s
        Target answer time: a customer served within it counts as on time (the store's queue target).
    target_sl
        Share of customers to serve within `answer_s`.
    shrinkage
        Share of scheduled time staff are not at a counter (breaks, back office).
    quantile
        The forecast value staffed on: `forecast` (the mean), `hi80` or `hi95`.
    service_fading, patience_fading
        How fast the learned service time and patience forget (`staffing.estimators`).
    shoppers_per_associate
        Retail: the target shopper-to-associate ratio, visitors per hour one associate serves.

    """

    name: ClassVar[str] = "staffing"
    answer_s: float = 600.0
    target_sl: float = 0.8
    shrinkage: float = 0.0
    quantile: str = "hi80"
    service_fading: float = 0.01
    patience_fading: float = 0.002
    shoppers_per_associate: float = 15.0

    def __post_init__(self) -> None:
        if not self.shoppers_per_associate > 0:
            raise ValueError(f"shoppers_per_associate must be positive, got {self.shoppers_per_associate}")
        if self.quantile not in QUANTILES:
            raise ValueError(f"quantile must be one of {', '.join(QUANTILES)}, not {self.quantile!r}")
        StaffingTarget(interval_s=1.0, aht_s=1.0, answer_s=self.answer_s, target_sl=self.target_sl,
                       shrinkage=self.shrinkage)  # validates the rest

    @classmethod
    def from_settings(cls, settings: Any) -> StaffingAdvice:
        """From the worker's settings (`target_wait_s`, `staffing_target_sl`, `staffing_shrinkage`, ...)."""
        return cls(answer_s=settings.target_wait_s, target_sl=settings.staffing_target_sl,
                   shrinkage=settings.staffing_shrinkage,
                   shoppers_per_associate=settings.staffing_shoppers_per_associate)

    @classmethod
    def _unit_test_params(cls):
        yield {}

    def build(self, context: StoreContext, state: Any | None) -> StoreStaffing:
        stage = StoreStaffing(self)
        if state:
            stage.service = ServiceTime.from_state(state["service"])
            stage.patience = Patience.from_state(state["patience"])
            # Tickets saved before counters were followed have two steps: their counter is unknown.
            stage.tickets = {k: [*v, None][:3] for k, v in state.get("tickets", {}).items()}
            stage.counters = dict(state.get("counters", {}))
            stage.services = {k: ServiceQueue.from_state(v) for k, v in state.get("services", {}).items()}
        return stage


class StoreStaffing:
    """One store's service times, patience and counters, and its staffing at each closed bucket."""

    event_kinds: ClassVar[frozenset[str]] = frozenset({"queue"})

    def __init__(self, config: StaffingAdvice) -> None:
        self.config = config
        self.service = ServiceTime(config.service_fading)
        self.patience = Patience(config.patience_fading)
        self.tickets: dict[str, list[Any]] = {}  # open ticket -> [issued_ms, called_ms, counter]
        self.counters: dict[str, int] = {}  # counter -> last call or end seen there, event time
        self.services: dict[str, ServiceQueue] = {}
        self.changed = False

    def on_event(self, event: Event, context: StoreContext) -> None:
        if not isinstance(event, QueueEvent):
            return
        self.changed = True
        # A served ticket's wait and service time, an abandoned one's wait: as the event gives them, or
        # from its earlier steps (issued, called) when it does not, as the store's queue KPIs do.
        ticket = self.tickets.setdefault(event.ticket_id, [None, None, None])
        service = self._service(event.service)
        if event.action == "issued":
            if ticket[0] is None:
                self._issued(event.service)
            ticket[0] = event.ts_ms
        elif event.action == "called":
            ticket[1] = event.ts_ms
        if event.counter is not None and event.action in ("called", "served", "no_show"):
            ticket[2] = event.counter
            self.counters.pop(event.counter, None)  # re-inserted last: the dict stays oldest first
            self.counters[event.counter] = max(event.ts_ms, ticket[1] or event.ts_ms)
            while len(self.counters) > MAX_COUNTERS:
                del self.counters[next(iter(self.counters))]
        if event.action in ("served", "abandoned", "no_show"):
            del self.tickets[event.ticket_id]
        while len(self.tickets) > MAX_OPEN_TICKETS:  # tickets whose end never came: the oldest go
            del self.tickets[next(iter(self.tickets))]
        issued_ms, called_ms = ticket[0], ticket[1]
        if event.action == "served":
            wait_s = event.wait_s
            if wait_s is None and issued_ms is not None and called_ms is not None and called_ms >= issued_ms:
                wait_s = (called_ms - issued_ms) / 1000
            service_s = event.service_s
            if service_s is None and called_ms is not None and event.ts_ms >= called_ms:
                service_s = (event.ts_ms - called_ms) / 1000
            if service_s is not None:
                self.service.update(service_s)
                if service is not None:
                    service.service.update(service_s)
            if wait_s is not None:
                self.patience.update(wait_s, abandoned=False)
                if service is not None:
                    service.patience.update(wait_s, abandoned=False)
        elif event.action == "abandoned":
            wait_s = event.wait_s
            if wait_s is None and issued_ms is not None and event.ts_ms >= issued_ms:
                wait_s = (event.ts_ms - issued_ms) / 1000
            if wait_s is not None:
                self.patience.update(wait_s, abandoned=True)
                if service is not None:
                    service.patience.update(wait_s, abandoned=True)

    def _service(self, name: str | None) -> ServiceQueue | None:
        if not name:
            return None
        found = self.services.get(name)
        if found is None and len(self.services) < MAX_SERVICES:  # more kinds than that: only the pooled line
            c = self.config
            found = self.services[name] = ServiceQueue(ServiceTime(c.service_fading), Patience(c.patience_fading))
        return found

    def _issued(self, name: str | None) -> None:
        # Each service's share of tickets, faded like the service times: sums over services stay <= 1/fading.
        keep = 1.0 - self.config.service_fading
        for queue in self.services.values():
            queue.issued *= keep
        if name and name in self.services:
            self.services[name].issued += 1.0

    def counters_open(self, at_ms: int, aht_s: float) -> int:
        """Counters serving a ticket now, or that called or ended one within the last two service times.

        Two mean service times (5 to 30 minutes): a counter open to a queue calls again within
        one service time, and one quiet for longer than two is not serving the line. Counters
        that ever served in the last hour, as the queue KPIs count them, over-state the
        staffing: on real call-centre records the hour's distinct agents over-predicted the
        service level by 34 points (see the README's evaluation).
        """
        window_ms = int(1000 * min(MAX_OPEN_WINDOW_S, max(MIN_OPEN_WINDOW_S, 2 * aht_s)))
        serving = {t[2] for t in self.tickets.values() if t[1] is not None and t[2] is not None}
        recent = {c for c, last in self.counters.items() if at_ms - window_ms <= last}
        return len(serving | recent)

    def on_bucket_closed(self, bucket: ClosedBucket, context: StoreContext) -> list[StaffingOutput]:
        forecasts = {o.published.series: o.published.forecast for o in bucket.earlier
                     if isinstance(o, ForecastOutput)}
        if context.vertical == "retail" and RETAIL_SERIES in forecasts:
            graded = bucket.graded
            return [self._associates(bucket, forecasts[RETAIL_SERIES], None if graded is None else graded.quality)]
        aht_s = self.service.get()
        forecast = forecasts.get(SERIES)
        if forecast is None or not aht_s:
            return []
        c, patience_s = self.config, self.patience.get()
        interval_s = forecast.bucket_ms / 1000
        aht_s, patience_s = _rounded(aht_s), None if patience_s is None else _rounded(patience_s)
        active = self.counters_open(bucket.start_ms + bucket.bucket_ms, aht_s)
        bounds = self._bounds(forecast)
        points = []
        for h, arrivals in enumerate(bounds, start=1):
            arrivals = round(max(0.0, arrivals), 1)  # a tenth of a customer changes nothing; it lets answers repeat
            need = _required(arrivals, interval_s, aht_s, c.answer_s, c.target_sl, patience_s, c.shrinkage)
            now = _metrics(arrivals, interval_s, aht_s, c.answer_s, c.target_sl, patience_s, active)
            points.append({"target_ms": forecast.start_ms + (h - 1) * forecast.bucket_ms, "h": h,
                           "arrivals": arrivals, "agents": need.agents, "scheduled": need.scheduled,
                           "service_level": need.service_level, "asa_s": need.asa_s, "abandon": need.abandon,
                           "sl_at_active": None if now is None else now.service_level,
                           "abandon_at_active": None if now is None else now.abandon})
        services = self._per_service(bounds[0] if bounds else 0.0, interval_s)
        return [StaffingOutput(bucket.start_ms, forecast.bucket_ms, "erlang_c" if patience_s is None else "erlang_a",
                               c.answer_s, c.target_sl, c.shrinkage, c.quantile, aht_s, self.service.cv(),
                               patience_s, active, points, _advice(active, points[0]) if points else None,
                               services=services)]

    def _bounds(self, forecast: Any) -> list[float]:
        return {"forecast": forecast.values, "hi80": forecast.hi80, "hi95": forecast.hi95}[self.config.quantile]

    def _per_service(self, arrivals: float, interval_s: float) -> list[dict[str, Any]]:
        """Each service's share of the next interval's tickets, and the counters it would need on its own."""
        c = self.config
        total = sum(q.issued for q in self.services.values())
        out = []
        for name, queue in sorted(self.services.items()):
            aht_s = queue.service.get()
            if not total or not aht_s:
                continue
            share = queue.issued / total
            mine = round(max(0.0, arrivals) * share, 1)
            patience_s = queue.patience.get()
            aht_s, patience_s = _rounded(aht_s), None if patience_s is None else _rounded(patience_s)
            need = _required(mine, interval_s, aht_s, c.answer_s, c.target_sl, patience_s, c.shrinkage)
            out.append({"service": name, "share": round(share, 4), "arrivals": mine, "aht_s": aht_s,
                        "patience_s": patience_s, "agents": need.agents, "service_level": need.service_level})
        return out

    def _associates(self, bucket: ClosedBucket, forecast: Any, quality: str | None = None) -> StaffingOutput:
        """A shop floor's associates per interval: forecast visitors per hour over the target ratio.

        `quality` (the bucket's data-quality grade) is passed on: on incomplete door counts the forecast did
        not learn the bucket (`StoreWatch.learn_bucket`), and the advice says so.
        """
        c = self.config
        per_hour = 3_600_000 / forecast.bucket_ms
        points = []
        for h, arrivals in enumerate(self._bounds(forecast), start=1):
            arrivals = round(max(0.0, arrivals), 1)
            associates = math.ceil(arrivals * per_hour / c.shoppers_per_associate - 1e-9) if arrivals else 0
            points.append({"target_ms": forecast.start_ms + (h - 1) * forecast.bucket_ms, "h": h,
                           "arrivals": arrivals, "agents": associates,
                           "scheduled": math.ceil(associates / (1.0 - c.shrinkage) - 1e-9),
                           "service_level": None, "asa_s": None, "abandon": None, "sl_at_active": None,
                           "abandon_at_active": None})
        advice = None
        if quality in INCOMPLETE:
            advice = (f"door counts were {quality} in the last bucket: the visitors forecast did not learn it, "
                      "and holds to what it expected")
        return StaffingOutput(bucket.start_ms, forecast.bucket_ms, "ratio", None, None, c.shrinkage, c.quantile,
                              None, None, None, None, points, advice, shoppers_per_associate=c.shoppers_per_associate,
                              quality=quality)

    def on_partial(self, bucket: OpenBucket, context: StoreContext) -> list[StaffingOutput]:
        return []

    def to_state(self) -> dict[str, Any]:
        return {"service": self.service.to_state(), "patience": self.patience.to_state(),
                "tickets": {k: list(v) for k, v in self.tickets.items()}, "counters": dict(self.counters),
                "services": {k: q.to_state() for k, q in self.services.items()}}


@dataclass
class ServiceQueue:
    """One service's line in a store: its faded share of tickets, service time and patience."""

    service: ServiceTime
    patience: Patience
    issued: float = 0.0

    def to_state(self) -> dict[str, Any]:
        return {"issued": self.issued, "service": self.service.to_state(), "patience": self.patience.to_state()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ServiceQueue:
        return cls(ServiceTime.from_state(state["service"]), Patience.from_state(state["patience"]),
                   state["issued"])


def _rounded(seconds: float) -> float:
    # Whole seconds: the estimates move a little with every ticket; rounded, the same questions recur.
    return float(max(1, round(seconds)))


# Pure and deterministic, so answers are cached: the same interval is asked about again at every
# bucket boundary (a forecast point moves little), and Erlang A costs about 50 µs a point.
@functools.lru_cache(maxsize=8192)
def _required(arrivals: float, interval_s: float, aht_s: float, answer_s: float, target_sl: float,
              patience_s: float | None, shrinkage: float) -> Any:
    return StaffingTarget(interval_s=interval_s, aht_s=aht_s, answer_s=answer_s, target_sl=target_sl,
                          patience_s=patience_s, shrinkage=shrinkage).required(arrivals)


@functools.lru_cache(maxsize=8192)
def _metrics(arrivals: float, interval_s: float, aht_s: float, answer_s: float, target_sl: float,
             patience_s: float | None, agents: int) -> Any:
    if agents <= 0:
        return None
    return StaffingTarget(interval_s=interval_s, aht_s=aht_s, answer_s=answer_s, target_sl=target_sl,
                          patience_s=patience_s).metrics(arrivals, agents)


def _advice(active: int, next_interval: Mapping[str, Any]) -> str | None:
    """The advice line when the counters active now are too few for the next interval, else None."""
    agents = next_interval["agents"]
    if active >= agents or active <= 0:
        return None
    heading = next_interval["sl_at_active"]
    counters = "counter" if active == 1 else "counters"
    more = f"a {_ordinal(agents)} brings it" if agents == active + 1 else f"{agents} bring it"
    return (f"{active} {counters} open, service level heading to {_pct(heading)}; "
            f"{more} to {_pct(next_interval['service_level'])}")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _pct(share: float | None) -> str:
    return "-" if share is None or not math.isfinite(share) else f"{100 * share:.0f} %"
