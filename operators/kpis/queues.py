"""Queue KPIs of a bank branch or telecom shop, per service type, from ticket steps.

A ticket is `issued`, then `called` to a counter, then `served`; or it ends
`abandoned` (the customer left) or `no_show` (called, nobody came). Each ticket
counts once per step, whatever the order or repetition of its events.

Definitions (per service, and for all services together in `total`):

- `issued`, `called`, `served`, `abandoned`, `no_show`: tickets that reached the
  step. A `served` or `no_show` with no call seen implies the call (counted in
  `called`, its wait known only from the event's `wait_s`).
- `waiting_now`: tickets issued and not yet called, served, abandoned or no-show.
  `in_service_now`: called and not yet ended.
- wait of a ticket (once, when it leaves the waiting line): the event's `wait_s`
  when given, else call (or abandon) time minus issue time. `wait_mean_s`,
  `wait_p50_s`, `wait_p90_s` are over answered (called) tickets only, i.e. the
  average speed of answer; p50/p90 come from a `QuantileSketch` (2 % error).
- service time of a served ticket: its `service_s` when given, else served time
  minus call time. `service_mean_s` is their mean.
- `service_level_pct` = 100 * answered within target / (answered + abandoned
  after target), the contact-centre definition that leaves out customers who
  gave up before the target: "answered" = tickets with a known wait that were
  called, "within target" = wait <= `target_wait_s`, "abandoned after target" =
  abandoned while waiting with a known wait > `target_wait_s`. None when the
  denominator is 0. Tickets whose wait is unknown are left out.
- `counters_active`: counters (desks) that called, served or no-showed a ticket
  of the service within the last `active_window_ms` of event time (the total
  counts distinct counters over all services).
- `est_wait_s`, the wait a customer taking a ticket now can expect:
  `waiting_now * service_mean_s / max(1, counters_active)`. It is 0.0 when nobody
  is waiting and None when no service time is known yet. It assumes every active
  counter serves this line and ignores the customers being served now: a rough,
  explainable figure, not a queueing model. On a bank call centre's real records it
  was nevertheless the closest of four predictions (mean absolute error 62 s, see the
  README's staffing evaluation), and each store measures its own: the estimate a
  ticket was shown when it was issued is compared with its actual wait once it is
  called. `est_wait_checked` tickets compared, `est_wait_mae_s` their mean absolute
  error and `est_wait_bias_s` their mean signed error (estimate minus actual wait;
  negative: the estimate runs short), None before the first.

Memory stays bounded: open tickets are at most `max_open` (the oldest are
dropped, `evicted`); a ticket with no step for `stale_after_ms` is dropped and
counted `expired` (its end event was lost); the last `max_closed` ended tickets
are remembered so duplicate or late steps of them are `ignored` (a late `issued`
still counts). Time is the events' own: `as_of_ms` is the latest event time seen.

With `tz` set, counts restart each day at `reset_at` local time (see
`occupancy.DailyReset`); tickets still open then are dropped (`reset_dropped`),
as are ended tickets remembered (ticket numbers are reused from day to day), and
events older than the reset are `late` and not counted. Without `tz`, counts run
since the operator started.

Examples
--------
>>> from footfall.schemas.events import QueueEvent
>>> def step(minute, action, ticket, counter=None):
...     return QueueEvent(event_id=f"{ticket}-{action}", store_id="b", ts_ms=minute * 60_000, region=None,
...                       zone=None, vertical="bank", action=action, ticket_id=ticket, service="teller",
...                       counter=counter, customer_id=None, wait_s=None, service_s=None)
>>> kpis = QueueKpis(target_wait_s=600)
>>> for event in [step(0, "issued", "A1"), step(1, "issued", "A2"), step(2, "called", "A1", "c1"),
...               step(6, "served", "A1", "c1"), step(7, "issued", "A3"), step(15, "called", "A2", "c1"),
...               step(15, "called", "A2", "c1")]:
...     kpis.update(event)
...     t = kpis.get()["total"]
...     print(event.action, t["waiting_now"], t["wait_mean_s"], t["service_mean_s"], t["service_level_pct"],
...           t["est_wait_s"])
issued 1 None None None None
issued 2 None None None None
called 1 120.0 None 100.0 None
served 1 120.0 240.0 100.0 240.0
issued 2 120.0 240.0 100.0 480.0
called 1 480.0 240.0 50.0 240.0
called 1 480.0 240.0 50.0 240.0
>>> kpis.ignored
1

"""

from __future__ import annotations

from typing import Any

from footfall.operators.kpis.ended_tickets import EndedTickets
from footfall.operators.kpis.occupancy import DailyReset
from footfall.operators.kpis.quantiles import QuantileSketch
from footfall.schemas.events import QueueEvent

__all__ = ["KPI_NAMES", "QueueKpis"]

# Steps a ticket went through, as bits.
_ISSUED, _CALLED, _SERVED, _ABANDONED, _NO_SHOW = 1, 2, 4, 8, 16
_WAIT = 32  # its wait has been recorded
_ENDED = _SERVED | _ABANDONED | _NO_SHOW
_STEP = {"issued": _ISSUED, "called": _CALLED, "served": _SERVED, "abandoned": _ABANDONED, "no_show": _NO_SHOW}
_COUNTER_STEPS = _CALLED | _SERVED | _NO_SHOW

# Integer counts of a service, in state order; the service-time sum (float) and the wait
# sketch follow them.
_COUNTS = (
    "issued", "called", "served", "abandoned", "no_show", "expired",
    "sl_within_target", "sl_answered", "sl_abandoned_late", "service_n",
)
_C = {name: i for i, name in enumerate(_COUNTS)}
_COUNT_OF_STEP = {_ISSUED: _C["issued"], _CALLED: _C["called"], _SERVED: _C["served"],
                  _ABANDONED: _C["abandoned"], _NO_SHOW: _C["no_show"]}

#: Keys of each KPI dict `get()` returns.
KPI_NAMES: tuple[str, ...] = (
    "issued", "waiting_now", "in_service_now", "called", "served", "abandoned", "no_show", "expired",
    "wait_n", "wait_mean_s", "wait_p50_s", "wait_p90_s", "service_n", "service_mean_s",
    "service_level_pct", "sl_within_target", "sl_answered", "sl_abandoned_late", "counters_active", "est_wait_s",
    "est_wait_checked", "est_wait_mae_s", "est_wait_bias_s",
)

# An open ticket: [service, steps, issued_ts_ms, left_waiting_ts_ms, last_ts_ms, the estimated waits
# shown when it was issued (its service's, all services'), None when there was none].
_SVC, _STEPS, _ISSUED_TS, _LEFT_TS, _LAST_TS, _SHOWN_SVC, _SHOWN_TOTAL = range(7)
_OPEN_LEN = 7


class _WaitCheck:
    """The estimated waits shown against the actual ones: count, sum of absolute and of signed errors."""

    __slots__ = ("abs_sum_s", "n", "signed_sum_s")

    def __init__(self, n: int = 0, abs_sum_s: float = 0.0, signed_sum_s: float = 0.0) -> None:
        self.n, self.abs_sum_s, self.signed_sum_s = n, abs_sum_s, signed_sum_s

    def update(self, shown_s: float, actual_s: float) -> None:
        self.n += 1
        self.abs_sum_s += abs(shown_s - actual_s)
        self.signed_sum_s += shown_s - actual_s

    def fields(self) -> dict[str, Any]:
        n = self.n
        return {"est_wait_checked": n, "est_wait_mae_s": self.abs_sum_s / n if n else None,
                "est_wait_bias_s": self.signed_sum_s / n if n else None}

    def to_state(self) -> list[float]:
        return [self.n, self.abs_sum_s, self.signed_sum_s]


class _Service:
    """Counts, service-time sum and wait sketch of one service."""

    __slots__ = ("check", "counts", "service_sum_s", "wait")

    def __init__(self, counts: list[int] | None = None, service_sum_s: float = 0.0,
                 wait: QuantileSketch | None = None, check: _WaitCheck | None = None) -> None:
        self.counts = counts if counts is not None else [0] * len(_COUNTS)
        self.service_sum_s = service_sum_s
        self.wait = wait if wait is not None else QuantileSketch()
        self.check = check if check is not None else _WaitCheck()

    def to_state(self) -> list[Any]:
        return [*self.counts, self.service_sum_s, self.wait.to_state(), self.check.to_state()]

    @classmethod
    def from_state(cls, state: list[Any]) -> _Service:
        n = len(_COUNTS)
        check = _WaitCheck(*state[n + 2]) if len(state) > n + 2 else None  # states saved before the check have none
        return cls(list(state[:n]), float(state[n]), QuantileSketch.from_state(state[n + 1]), check)


class QueueKpis:
    """Live queue KPIs of one branch or shop, per service type and in total (see the module docstring).

    Parameters
    ----------
    target_wait_s
        Service-level target: a ticket called within this wait counts as on time.
    active_window_ms
        A counter is active when it called or served a ticket this recently (event time).
    stale_after_ms
        An open ticket with no step for this long is dropped as `expired`.
    max_open
        Most open tickets tracked; beyond, the oldest are dropped as `evicted`.
    max_closed
        How many ended tickets are remembered to recognise duplicate or late steps.
    tz, reset_at
        Daily restart of the counts at `reset_at` local time in time zone `tz`; None: no restart.

    """

    __slots__ = (
        "_check", "_closed", "_counters", "_daily_reset", "_open", "_services", "active_window_ms", "as_of_ms",
        "evicted", "ignored", "last_reset_ms", "late", "max_closed", "max_open", "next_reset_ms", "reset_at",
        "reset_dropped", "stale_after_ms", "target_wait_s", "tz",
    )

    def __init__(
        self,
        target_wait_s: float = 600.0,
        active_window_ms: int = 30 * 60_000,
        stale_after_ms: int = 6 * 3_600_000,
        max_open: int = 500,
        max_closed: int = 128,
        tz: str | None = None,
        reset_at: str = "04:00",
    ) -> None:
        if target_wait_s < 0:
            raise ValueError(f"target_wait_s must be >= 0, got {target_wait_s}")
        for name, value in [("active_window_ms", active_window_ms), ("stale_after_ms", stale_after_ms),
                            ("max_open", max_open), ("max_closed", max_closed)]:
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.target_wait_s = target_wait_s
        self.active_window_ms = active_window_ms
        self.stale_after_ms = stale_after_ms
        self.max_open = max_open
        self.max_closed = max_closed
        self.tz = tz
        self.reset_at = reset_at
        self._daily_reset = DailyReset(tz, reset_at) if tz is not None else None
        self._open: dict[str, list[Any]] = {}
        self._closed = EndedTickets(max_closed)
        self._services: dict[str, _Service] = {}
        self._check = _WaitCheck()  # all services together
        self._counters: dict[str, dict[str, int]] = {}  # service -> counter -> last active ts_ms
        self.as_of_ms: int | None = None
        self.next_reset_ms: int | None = None
        self.last_reset_ms: int | None = None
        self.ignored = 0
        self.evicted = 0
        self.late = 0
        self.reset_dropped = 0

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"target_wait_s": 300, "max_open": 10, "max_closed": 5, "tz": "Europe/Madrid", "reset_at": "03:00"}

    # -- time -------------------------------------------------------------------------------------

    def advance(self, ts_ms: int) -> None:
        """Move event time to `ts_ms`: daily restart, stale tickets, idle counters (for heartbeats too)."""
        if self.as_of_ms is not None and ts_ms <= self.as_of_ms:
            return
        self.as_of_ms = ts_ms
        if self._daily_reset is not None:
            if self.next_reset_ms is None:
                self.next_reset_ms = self._daily_reset.next_after(ts_ms)
            elif ts_ms >= self.next_reset_ms:
                self._restart(ts_ms)
        stale_before = ts_ms - self.stale_after_ms
        for ticket in [t for t, rec in self._open.items() if rec[_LAST_TS] <= stale_before]:
            rec = self._open.pop(ticket)
            self._service(rec[_SVC]).counts[_C["expired"]] += 1
            self._remember(ticket, rec[_STEPS], ts_ms)  # remembered from now: its late steps are ignored
        self._closed.forget_ended_at_or_before(stale_before)
        idle_before = ts_ms - self.active_window_ms
        for service, counters in list(self._counters.items()):
            for counter in [c for c, last in counters.items() if last <= idle_before]:
                del counters[counter]
            if not counters:
                del self._counters[service]

    def _restart(self, ts_ms: int) -> None:
        assert self._daily_reset is not None
        # Everything open was last seen before the reset (else it would have fired earlier).
        self.reset_dropped = len(self._open)
        self._open.clear()
        self._closed.clear()
        self._services.clear()
        self._check = _WaitCheck()
        self.last_reset_ms = self._daily_reset.last_at_or_before(ts_ms)
        self.next_reset_ms = self._daily_reset.next_after(ts_ms)

    # -- steps ------------------------------------------------------------------------------------

    def _service(self, name: str) -> _Service:
        service = self._services.get(name)
        if service is None:
            service = self._services[name] = _Service()
        return service

    def _remember(self, ticket: str, steps: int, ts_ms: int) -> None:
        self._closed.remember(ticket, steps, ts_ms)

    def update(self, event: QueueEvent) -> None:
        """Fold one ticket step in. Duplicates, steps after the end and unknown tickets are safe."""
        bit = _STEP.get(event.action)
        if bit is None:
            raise ValueError(f"unknown queue action {event.action!r}")
        ts_ms = event.ts_ms
        self.advance(ts_ms)
        if self.last_reset_ms is not None and ts_ms < self.last_reset_ms:
            self.late += 1
            return
        ticket = event.ticket_id
        rec = self._open.get(ticket)
        if rec is None:
            closed = self._closed.steps_of(ticket)
            if closed is not None:
                if bit == _ISSUED and not closed & _ISSUED:  # its issue arrived after its end
                    self._closed.add_steps(ticket, _ISSUED)
                    self._service(event.service).counts[_C["issued"]] += 1
                else:
                    self.ignored += 1
                return
            rec = self._open[ticket] = [event.service, 0, None, None, ts_ms, None, None]
            while len(self._open) > self.max_open:
                oldest = next(iter(self._open))
                dropped = self._open.pop(oldest)
                self.evicted += 1
                self._remember(oldest, dropped[_STEPS], dropped[_LAST_TS])
        steps = rec[_STEPS]
        if steps & bit:
            self.ignored += 1
            return
        call_seen = bool(steps & _CALLED)
        service = self._service(rec[_SVC])
        counts = service.counts
        rec[_LAST_TS] = max(rec[_LAST_TS], ts_ms)
        if bit == _ISSUED:
            rec[_ISSUED_TS] = ts_ms
            if not steps:  # a ticket joining the line: the estimates a screen shows it now
                rec[_SHOWN_SVC], rec[_SHOWN_TOTAL] = self._estimates(rec[_SVC], ticket)
        elif bit == _CALLED or (bit == _ABANDONED and not steps & _CALLED):
            rec[_LEFT_TS] = ts_ms
        elif bit & (_SERVED | _NO_SHOW) and not steps & _CALLED:
            counts[_C["called"]] += 1  # served or no-show without a call seen: the call is implied
            steps |= _CALLED
        counts[_COUNT_OF_STEP[bit]] += 1
        steps |= bit
        if bit == _SERVED:
            service_s = event.service_s
            if service_s is None and call_seen and rec[_LEFT_TS] is not None and ts_ms >= rec[_LEFT_TS]:
                service_s = (ts_ms - rec[_LEFT_TS]) / 1000
            if service_s is not None:
                counts[_C["service_n"]] += 1
                service.service_sum_s += service_s
        if event.counter is not None and bit & _COUNTER_STEPS and ts_ms > self.as_of_ms - self.active_window_ms:
            counters = self._counters.setdefault(rec[_SVC], {})
            counters[event.counter] = max(counters.get(event.counter, ts_ms), ts_ms)
        if not steps & _WAIT and steps & (_CALLED | _ABANDONED):
            wait_s = event.wait_s if bit != _ISSUED else None
            issued_ts, left_ts = rec[_ISSUED_TS], rec[_LEFT_TS]
            if wait_s is None and issued_ts is not None and left_ts is not None and left_ts >= issued_ts:
                wait_s = (left_ts - issued_ts) / 1000
            if wait_s is not None:
                steps |= _WAIT
                if steps & _CALLED:
                    service.wait.update(wait_s)
                    if rec[_SHOWN_SVC] is not None:
                        service.check.update(rec[_SHOWN_SVC], wait_s)
                    if rec[_SHOWN_TOTAL] is not None:
                        self._check.update(rec[_SHOWN_TOTAL], wait_s)
                    counts[_C["sl_answered"]] += 1
                    counts[_C["sl_within_target"]] += wait_s <= self.target_wait_s
                elif wait_s > self.target_wait_s:
                    counts[_C["sl_abandoned_late"]] += 1
        rec[_STEPS] = steps
        if steps & _ENDED:
            del self._open[ticket]
            self._remember(ticket, steps, rec[_LAST_TS])

    def _estimates(self, name: str, ticket: str) -> tuple[float | None, float | None]:
        """`est_wait_s` of service `name` and of all services as they stand before `ticket` joins the line."""
        waiting_svc = waiting = 0
        for t, rec in self._open.items():
            if rec[_STEPS] & (_ISSUED | _CALLED) == _ISSUED and t != ticket:
                waiting += 1
                waiting_svc += rec[_SVC] == name
        service = self._services.get(name)
        mine = None
        if service is not None and any(service.counts):  # a line with no ticket before this one shows nothing
            n = service.counts[_C["service_n"]]
            mine = _est_wait(waiting_svc, service.service_sum_s / n if n else None,
                             len(self._counters.get(name, ())))
        n = sum(s.counts[_C["service_n"]] for s in self._services.values())
        mean = sum(s.service_sum_s for s in self._services.values()) / n if n else None
        counters = set().union(*self._counters.values()) if self._counters else set()
        return mine, _est_wait(waiting, mean, len(counters))

    # -- reading ----------------------------------------------------------------------------------

    def waiting_now(self) -> int:
        """Tickets waiting now, all services."""
        return sum(1 for rec in self._open.values() if rec[_STEPS] & (_ISSUED | _CALLED) == _ISSUED)

    def get(self) -> dict[str, Any]:
        """KPIs: `{"services": {service: kpis}, "total": kpis, "as_of_ms", "ignored", "evicted", ...}`."""
        waiting: dict[str, int] = {}
        in_service: dict[str, int] = {}
        for rec in self._open.values():
            line = in_service if rec[_STEPS] & _CALLED else waiting
            line[rec[_SVC]] = line.get(rec[_SVC], 0) + 1
        names = sorted(set(self._services) | set(waiting) | set(in_service) | set(self._counters))
        empty = _Service()
        total = _Service()
        services = {}
        for name in names:
            service = self._services.get(name, empty)
            services[name] = _kpis(service.counts, service.service_sum_s, service.wait, waiting.get(name, 0),
                                   in_service.get(name, 0), len(self._counters.get(name, ())), service.check)
            total.counts = [a + b for a, b in zip(total.counts, service.counts, strict=True)]
            total.service_sum_s += service.service_sum_s
            total.wait.merge(service.wait)
        counters = set().union(*self._counters.values()) if self._counters else set()
        return {
            "services": services,
            "total": _kpis(total.counts, total.service_sum_s, total.wait, sum(waiting.values()),
                           sum(in_service.values()), len(counters), self._check),
            "as_of_ms": self.as_of_ms, "ignored": self.ignored, "evicted": self.evicted, "late": self.late,
            "reset_dropped": self.reset_dropped, "last_reset_ms": self.last_reset_ms,
        }

    # -- plain-data state, for Faust tables ------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state (the parameters are configuration, not state)."""
        return {
            "as_of_ms": self.as_of_ms, "next_reset_ms": self.next_reset_ms, "last_reset_ms": self.last_reset_ms,
            "open": {t: list(rec) for t, rec in self._open.items()},
            "ended": self._closed.to_state(),
            "services": {name: s.to_state() for name, s in self._services.items()},
            "check": self._check.to_state(),
            "counters": {name: dict(c) for name, c in self._counters.items()},
            "ignored": self.ignored, "evicted": self.evicted, "late": self.late, "reset_dropped": self.reset_dropped,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, **params: Any) -> QueueKpis:
        """Rebuild from `to_state()` output with the same constructor `params` (None gives an empty one)."""
        kpis = cls(**params)
        if state:
            kpis.as_of_ms = state["as_of_ms"]
            kpis.next_reset_ms = state["next_reset_ms"]
            kpis.last_reset_ms = state["last_reset_ms"]
            # Tickets saved before the estimates were checked have five fields: none was shown to them.
            kpis._open = {t: [*rec, None, None][:_OPEN_LEN] for t, rec in state["open"].items()}
            kpis._check = _WaitCheck(*state.get("check", ()))
            # Saved before ended tickets were kept as digests: `closed`, by ticket id.
            kpis._closed = (EndedTickets.from_state(state["ended"], kpis.max_closed) if "ended" in state
                            else EndedTickets.from_tickets(state.get("closed", {}), kpis.max_closed))
            kpis._services = {name: _Service.from_state(s) for name, s in state["services"].items()}
            kpis._counters = {name: dict(c) for name, c in state["counters"].items()}
            kpis.ignored = state["ignored"]
            kpis.evicted = state["evicted"]
            kpis.late = state["late"]
            kpis.reset_dropped = state["reset_dropped"]
        return kpis


def _est_wait(waiting: int, service_mean_s: float | None, counters_active: int) -> float | None:
    if waiting == 0:
        return 0.0
    if service_mean_s is None:
        return None
    return waiting * service_mean_s / max(1, counters_active)


def _kpis(counts: list[int], service_sum_s: float, wait: QuantileSketch, waiting: int, in_service: int,
          counters_active: int, check: _WaitCheck) -> dict[str, Any]:
    """One service's (or all services') KPIs from its counters, its wait sketch and the queue now."""
    c = dict(zip(_COUNTS, counts, strict=True))
    service_n = c["service_n"]
    service_mean_s = service_sum_s / service_n if service_n else None
    denominator = c["sl_answered"] + c["sl_abandoned_late"]
    est_wait_s = _est_wait(waiting, service_mean_s, counters_active)
    return {
        "issued": c["issued"], "waiting_now": waiting, "in_service_now": in_service, "called": c["called"],
        "served": c["served"], "abandoned": c["abandoned"], "no_show": c["no_show"], "expired": c["expired"],
        "wait_n": wait.count, "wait_mean_s": wait.mean, "wait_p50_s": wait.get(0.5), "wait_p90_s": wait.get(0.9),
        "service_n": service_n, "service_mean_s": service_mean_s,
        "service_level_pct": 100 * c["sl_within_target"] / denominator if denominator else None,
        "sl_within_target": c["sl_within_target"], "sl_answered": c["sl_answered"],
        "sl_abandoned_late": c["sl_abandoned_late"], "counters_active": counters_active, "est_wait_s": est_wait_s,
        **check.fields(),
    }
