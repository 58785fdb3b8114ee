"""`footfall evaluate staffing`: is Erlang's queueing prediction right at the agents a call centre really had?

A per-call CSV (one row per call that asked for an agent: arrival time, outcome, wait,
service time, agent; the shape of the Anonymous Bank call-centre records) is replayed call
by call, in time order, through footfall's staffing operators (`staffing.estimators`
`ServiceTime` and `Patience`, `staffing.erlang.StaffingTarget`) and the dashboard's queue
KPIs (`kpis.queues.QueueKpis`), and two questions are scored:

1. **Per interval** (`staffing.csv`): with the calls the interval really had, and the agents
   it really had, does Erlang A predict its service level and abandonment? Beside it, the
   naive prediction "same interval a week earlier", and the agents Erlang A would have
   advised for "`target_sl` answered within `answer_s`".
2. **Per served call** (`wait_prediction.csv`): how long will a caller joining the queue now
   wait? Five predictions made at the call's arrival from the queue as it was then.

Protocol (strictly online)
--------------------------
The replay is an event sweep over every call's arrival, service start and end (abandonment
or service end), in time order; at the same instant, ends come first, then service starts,
then interval starts, then arrivals (in file order). What predicts an interval is learned
from calls that *ended* (service finished, or hung up) at or before the interval's start:
the mean service time (`ServiceTime`, faded) and the mean patience (`Patience`, exponential,
censored by the waits of those served, faded). A call that ends after the interval starts
teaches nothing to it, even if it arrived long before. Arrivals are not forecast: the
interval's actual offered calls are used, since the question is whether the queueing model
is right, not whether the forecast is. The agent count is the one figure taken from the
interval itself (below). Wait predictions likewise use only what is known at the arrival
instant: calls ended by then, the queue then.

Definitions
-----------
- **offered**: calls served or abandoned, by arrival interval. Rows whose outcome is one of
  `--ignore-outcomes` (default `phantom`, "a virtual call to be ignored" in the provider's
  words) are dropped when the CSV is read: they are not offered, do not wait in the
  reconstructed queue, and teach nothing. Rows with another unknown outcome, or unreadable
  fields, are counted as `bad_rows` and skipped.
- **sl_actual**: calls served with `wait_s <= answer_s`, over offered (abandoned calls count
  against it, whenever they hung up); **abandon_actual**: abandoned over offered. The same
  definitions as `erlang`'s service level and abandonment.
- **agents_observed**: the time-average number of calls in service *while at least one
  caller was waiting* in the interval. Why: when a caller is waiting, every agent who is
  answering this queue is busy (the switch hands a waiting call to the first free agent), so
  the agents in service at those moments are exactly the agents on the queue, which is what
  Erlang's N means. It leaves out, as Erlang should, agents who are logged on but doing other
  work (outbound calls, internet support, wrap-up after a call, breaks), which counting
  *distinct agents who served in the interval* would count as full-time agents; and unlike
  *mean busy agents* (service seconds / interval length, the carried load) it does not force
  the model to 100 % occupancy (agents idle and ready while nobody waits are not seen; they
  do not change the waiting that the service level is about). In an interval where nobody
  waited, it falls back to distinct named agents serving in the interval (nobody waiting
  means agents to spare; the prediction is then near 100 % whatever the count), and, with no
  named agent, to mean busy agents. The other two counts are written too
  (`distinct_servers`, `mean_busy_agents`) with Erlang's predictions at them, so the choice
  can be judged. A fractional count is used as it is: the predictions are interpolated
  linearly between the whole numbers of agents on each side (at least 1 agent).
- **sl_predicted_at_observed**, **abandon_predicted_at_observed**: Erlang A (Erlang C while
  no caller has yet been seen to hang up, abandonment then blank) for the interval's offered
  calls, the learned mean service time and patience, and `agents_observed`.
- **agents_recommended**: the fewest agents meeting `target_sl` within `answer_s` for the
  offered calls (`StaffingTarget.required`, Erlang A), **sl_predicted_at_recommended** its SL.
- **naive** (`sl_last_week`, `abandon_last_week`): the actual values of the interval starting
  7 days earlier at the same local time, when it had offered calls.
- In service means any served call between its service start (arrival + wait) and end, a named
  agent or not (`--no-server`); distinct agents count named agents only.
- Two diagnostic columns: `*_observed_mix`, the same Erlang A prediction with the mean service
  time of the interval's own call-type mix (each type at its own learned, online mean; needs
  `--type-col`); `*_hindsight_aht`, with the interval's *actual* mean service time of the calls
  it served. The latter is not a prediction: it splits Erlang's error into what the service-time
  estimate costs and what the model (and the agent count) costs.

Scores (`staffing_report.json`): MAE and bias of each prediction over intervals with at least
`--min-offered` calls that also have a week-earlier value; the wait-prediction errors; the
agents advised against those had, by time of day and at the busiest intervals; and Erlang A's
assumptions on the data: service times against the exponential (CV, KS distance, and the
log-normal of Brown et al. [^4]), the patience hazard by wait band (constant if exponential),
and one pool served first come first served (waits and abandonment by call type and priority,
the share of callers who entered service while an earlier caller was still waiting).

Wait predictions, for each served call, at its arrival (state: `queue_ahead` callers waiting,
`in_service` calls being served, an agent free or not; the learned service time and patience):

- `dashboard`: what footfall's dashboard shows, `QueueKpis`' `est_wait_s` =
  `waiting × mean service today / counters active in the last 30 min`, the operator itself
  fed with the calls' steps (issued, called by the agent, served or abandoned);
- `les`: the wait of the last caller to have entered service (last-to-enter-service [^2]);
- `queue_length`: `(queue_ahead + 1) × mean service / in_service` [^2];
- `erlang_a`: the Erlang A (M/M/n+M, first come first served) expected wait of a caller who
  finds `k = queue_ahead` callers waiting and `n = in_service` agents busy, *given that they
  are served* (`erlang_a_wait_s`): `sum_{j=1..k+1} 1 / (n/aht + j/patience)` [^1][^3];
- `erlang_a_offered`: the same without conditioning on being served, the wait the caller would
  have if they never hung up: `sum_{j=0..k} 1 / (n/aht + j/patience)` [^3].

The dashboard has no figure while callers wait before the first service of the day has ended
(its counts restart daily at `--reset-at`), LES none before the first service start. The last
three predict 0 for a call that found an agent free (it went straight to an agent:
`--queued-col` 0, or a zero wait when the CSV has no such column): the switch knows that at the
instant the call arrives. The dashboard formula and LES are taken as they are. Errors are
reported over served calls that queued (the callers a wait announcement is for) and over all
served calls, on the calls every method could predict.

Examples
--------
::

    footfall evaluate staffing --calls ../shared/data/bank_call_center/calls_1999H1.csv \\
        --tz Asia/Jerusalem --interval 1h --answer-s 20 --target-sl 0.8 --out run/eval/staffing

References
----------
[^1]: Whitt, W. (1999). Improving service by informing customers about anticipated delays.
    *Management Science*, 45(2), 192-207.
[^2]: Ibrahim, R. and Whitt, W. (2009). Real-time delay estimation based on delay history.
    *Manufacturing & Service Operations Management*, 11(3), 397-415.
[^3]: Ibrahim, R. and Whitt, W. (2009). Real-time delay estimation in overloaded multiserver
    queues with abandonments. *Management Science*, 55(10), 1729-1742.
[^4]: Brown, L., Gans, N., Mandelbaum, A., Sakov, A., Shen, H., Zeltyn, S. and Zhao, L. (2005).
    Statistical analysis of a telephone call center: a queueing-science perspective. *JASA*,
    100(469), 36-50.

"""

from __future__ import annotations

import argparse
import bisect
import csv
import datetime as dt
import heapq
import itertools
import json
import math
import statistics
import sys
import time
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from footfall.operators.kpis.queues import QueueKpis
from footfall.operators.staffing.erlang import StaffingTarget
from footfall.operators.staffing.estimators import Patience, ServiceTime
from footfall.schemas.events import QueueEvent

__all__ = [
    "METHODS",
    "STAFFING_COLUMNS",
    "WAIT_COLUMNS",
    "Call",
    "Columns",
    "Replay",
    "erlang_a_wait_s",
    "evaluate",
    "read_calls",
    "register",
    "run",
]

#: Wait prediction methods, in the order they are written and reported.
METHODS = ("dashboard", "les", "queue_length", "erlang_a", "erlang_a_offered")

STAFFING_COLUMNS = (
    "interval_start", "offered", "agents_observed", "sl_predicted_at_observed", "abandon_predicted_at_observed",
    "agents_recommended", "sl_predicted_at_recommended", "sl_actual", "abandon_actual",
    "served", "answered_in_time", "abandoned", "model", "aht_s", "service_cv", "patience_s", "agents_source",
    "agents_when_queued", "distinct_servers", "mean_busy_agents", "queued_share",
    "sl_predicted_at_distinct", "abandon_predicted_at_distinct", "sl_predicted_at_busy",
    "abandon_predicted_at_busy", "abandon_predicted_at_recommended", "sl_last_week", "abandon_last_week",
    "aht_mix_s", "sl_predicted_at_observed_mix", "abandon_predicted_at_observed_mix",
    "aht_actual_s", "sl_hindsight_aht", "abandon_hindsight_aht",
)
WAIT_COLUMNS = ("arrival", "predicted_wait_s", "actual_wait_s", "method", "queued", "queue_ahead", "in_service")

#: Same-instant order of the sweep's events (see the module docstring).
_END, _START, _MARK, _ARRIVE = 0, 1, 2, 3
#: Agent definitions, as (key, column suffix, words).
AGENT_DEFINITIONS = (
    ("observed", "at_observed", "agents_observed: in service while someone waited"),
    ("distinct", "at_distinct", "distinct named agents serving in the interval"),
    ("busy", "at_busy", "mean busy agents (service seconds / interval)"),
)


# -- reading -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Columns:
    """Which CSV column holds what, and what the outcome values are (defaults: the bank call-centre file).

    `queued`, `priority` and `type` are optional: an empty name, or a default name absent from
    the file, means no such column.
    """

    arrival: str = "arrival"
    outcome: str = "outcome"
    wait: str = "wait_s"
    service: str = "service_s"
    server: str = "server"
    queued: str = "via_queue"
    priority: str = "priority"
    type: str = "type"
    served_value: str = "served"
    abandoned_value: str = "abandoned"
    ignore_values: tuple[str, ...] = ("phantom",)
    no_server: str = "NO_SERVER"


@dataclass(frozen=True, slots=True)
class Call:
    """One offered call. Times are UTC epoch seconds; `arrival` is the local wall-clock text as written."""

    arrival: str
    arrival_s: float
    wait_s: float
    service_s: float
    served: bool
    server: str | None
    queued: bool
    priority: str | None = None
    type: str | None = None

    @property
    def leave_s(self) -> float:
        """When the call left the queue: answered, or hung up."""
        return self.arrival_s + self.wait_s

    @property
    def end_s(self) -> float:
        """When the call ended: service finished, or hung up."""
        return self.arrival_s + self.wait_s + (self.service_s if self.served else 0.0)


@dataclass
class CallLog:
    """The calls read from a CSV, sorted by arrival (stable), and what was left out."""

    calls: list[Call]
    rows: int = 0
    ignored: Counter = field(default_factory=Counter)
    bad_rows: int = 0
    bad_examples: list[str] = field(default_factory=list)
    has_queued: bool = False
    has_priority: bool = False
    has_type: bool = False


def _to_utc_s(local: dt.datetime, zone: dt.tzinfo) -> float:
    if local.tzinfo is not None:
        return local.timestamp()
    return local.replace(tzinfo=zone).timestamp()


def read_calls(path: Path, columns: Columns = Columns(), tz: str = "UTC") -> CallLog:
    """Every served or abandoned call of a per-call CSV (see `Columns`), in arrival order.

    Times without an offset are local wall-clock times in `tz`. Raises ValueError when a
    required column is missing; unreadable rows are counted (`bad_rows`), not fatal.
    """
    zone = zoneinfo.ZoneInfo(tz)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        names = reader.fieldnames or []
        required = (columns.arrival, columns.outcome, columns.wait, columns.service, columns.server)
        missing = [c for c in required if c not in names]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(map(repr, missing))} (columns: {', '.join(names)})")
        optional = {}
        for key in ("queued", "priority", "type"):
            name = getattr(columns, key)
            optional[key] = name if name and name in names else None
        log = CallLog(calls=[], has_queued=optional["queued"] is not None,
                      has_priority=optional["priority"] is not None, has_type=optional["type"] is not None)
        ignore = set(columns.ignore_values)
        for line, row in enumerate(reader, start=2):
            log.rows += 1
            outcome = row[columns.outcome]
            if outcome in ignore:
                log.ignored[outcome] += 1
                continue
            try:
                if outcome not in (columns.served_value, columns.abandoned_value):
                    raise ValueError(f"unknown outcome {outcome!r}")
                text = row[columns.arrival].strip()
                local = dt.datetime.fromisoformat(text)
                wait_s = float(row[columns.wait])
                served = outcome == columns.served_value
                service_s = float(row[columns.service]) if served else 0.0
                if not (math.isfinite(wait_s) and math.isfinite(service_s)) or wait_s < 0 or service_s < 0:
                    raise ValueError(f"wait {wait_s} or service {service_s} negative or not finite")
                server = row[columns.server].strip()
                if optional["queued"] is not None:
                    queued = row[optional["queued"]].strip() not in ("0", "", "false", "False")
                else:
                    queued = wait_s > 0 or not served
                log.calls.append(Call(
                    arrival=text, arrival_s=_to_utc_s(local, zone), wait_s=wait_s, service_s=service_s,
                    served=served, server=server if server and server != columns.no_server else None,
                    queued=queued,
                    priority=row[optional["priority"]].strip() if optional["priority"] else None,
                    type=row[optional["type"]].strip() if optional["type"] else None,
                ))
            except (ValueError, TypeError, AttributeError) as exc:
                log.bad_rows += 1
                if len(log.bad_examples) < 5:
                    log.bad_examples.append(f"line {line}: {exc}")
    log.calls.sort(key=lambda c: c.arrival_s)  # stable: same-second calls keep the file's order
    return log


# -- the interval grid --------------------------------------------------------------------------------


class Grid:
    """Consecutive intervals of `interval_s` on the local wall clock of `tz`, as UTC epoch bounds.

    Interval `i` is `[bounds[i], bounds[i + 1])`; `starts[i]` is its local start. A local hour that
    does not exist (the spring clock change) is an interval of zero length; the autumn one lasts
    two hours.
    """

    def __init__(self, interval_s: int, tz: str, first_s: float, last_s: float) -> None:
        if interval_s <= 0 or 86_400 % interval_s:
            raise ValueError(f"the interval must divide a day, got {interval_s} s")
        zone = zoneinfo.ZoneInfo(tz)
        self.interval_s = interval_s
        local = dt.datetime.fromtimestamp(first_s, zone).replace(tzinfo=None)
        start = dt.datetime.combine(local.date(), dt.time())
        step = dt.timedelta(seconds=interval_s)
        self.starts: list[dt.datetime] = []
        self.bounds: list[float] = []
        moment = start
        while True:
            bound = _to_utc_s(moment, zone)
            self.starts.append(moment)
            self.bounds.append(bound)
            if bound > last_s:
                break
            moment += step
        self.starts.pop()  # the last bound only closes the last interval

    def __len__(self) -> int:
        return len(self.starts)

    def index(self, t_s: float) -> int:
        """The interval holding instant `t_s`."""
        return bisect.bisect_right(self.bounds, t_s) - 1


# -- Erlang A wait given the queue ------------------------------------------------------------------


def erlang_a_wait_s(queue_ahead: int, agents: int, aht_s: float, patience_s: float | None, *,
                    served: bool = True) -> float:
    """Expected wait in an Erlang A queue of a caller who finds every agent busy and `queue_ahead` callers waiting.

    First come, first served, `agents` agents each finishing at rate `1 / aht_s`, every waiting
    caller hanging up at rate `1 / patience_s` (exponential patience; None: nobody hangs up, Erlang
    C). With `j` callers ahead the caller moves up one place at the next service completion or
    abandonment ahead, at rate `r_j = agents / aht_s + j / patience_s`, memorylessly; so their
    offered wait (until an agent takes them, were they infinitely patient) is a sum of
    independent exponentials of rates `r_k, ..., r_0`, with mean `sum_j 1 / r_j` [^1]. Given that
    they are served, i.e. that their own exponential patience outlasts that wait, each phase is
    tilted by their own hang-up rate (the Laplace transform at `s + 1/patience_s` over its value at
    `1/patience_s`), so the mean is `sum_j 1 / (r_j + 1 / patience_s)`.

    Parameters
    ----------
    queue_ahead
        Callers waiting ahead of this one, >= 0.
    agents
        Agents on the queue, all busy, >= 1.
    aht_s
        Mean service time in seconds, > 0.
    patience_s
        Mean patience in seconds, > 0; None for infinitely patient callers.
    served
        True: the mean wait of those who are served; False: the mean offered wait.

    Examples
    --------
    >>> round(erlang_a_wait_s(0, 2, aht_s=200, patience_s=None), 6)  # one phase, rate 2 / 200
    100.0
    >>> round(erlang_a_wait_s(1, 2, aht_s=200, patience_s=100, served=False), 6)  # 1/0.01 + 1/0.02
    150.0
    >>> round(erlang_a_wait_s(1, 2, aht_s=200, patience_s=100), 6)  # 1/0.02 + 1/0.03
    83.333333

    References
    ----------
    [^1]: Ibrahim, R. and Whitt, W. (2009). Real-time delay estimation in overloaded multiserver
        queues with abandonments. *Management Science*, 55(10), 1729-1742.

    """
    if queue_ahead < 0 or agents < 1 or not aht_s > 0 or (patience_s is not None and not patience_s > 0):
        raise ValueError(f"need queue_ahead >= 0, agents >= 1, aht_s > 0, patience_s > 0; got "
                         f"{queue_ahead}, {agents}, {aht_s}, {patience_s}")
    mu = agents / aht_s
    theta = 0.0 if patience_s is None else 1.0 / patience_s
    tilt = theta if served else 0.0
    return math.fsum(1.0 / (mu + j * theta + tilt) for j in range(queue_ahead + 1))


# -- the replay ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What the evaluation is asked: interval, target, estimators' memory, dashboard's day and time zone."""

    interval_s: int = 3600
    answer_s: float = 20.0
    target_sl: float = 0.8
    tz: str = "UTC"
    min_offered: int = 30
    service_fading: float = 0.01
    patience_fading: float = 0.002
    reset_at: str = "04:00"


class Replay:
    """The event sweep (see the module docstring): per-interval figures and per-call wait predictions.

    After `run()`: for each interval, `offered`, `served`, `answered`, `abandoned`, the
    time-integrals `busy_s`, `queued_s`, `busy_queued_s`, the named `servers` serving in it and
    `learned` (mean service, its CV and mean patience at its start); `waits`: for each served call
    in arrival order, `(call index, queue_ahead, in_service, predictions by METHODS)`.
    """

    def __init__(self, calls: Sequence[Call], settings: Settings,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.calls = calls
        self.settings = settings
        self.progress = progress
        self.grid = Grid(settings.interval_s, settings.tz, calls[0].arrival_s, max(c.end_s for c in calls))
        n = len(self.grid)
        self.offered = [0] * n
        self.served = [0] * n
        self.answered = [0] * n
        self.service_sum_s = [0.0] * n  # of served calls arriving in the interval (hindsight only)
        self.abandoned = [0] * n
        self.busy_s = [0.0] * n
        self.queued_s = [0.0] * n
        self.busy_queued_s = [0.0] * n
        self.servers: list[set[str]] = [set() for _ in range(n)]
        self.learned: dict[int, tuple[float | None, float | None, float | None]] = {}
        self.offered_by_type: dict[int, Counter] = defaultdict(Counter)
        self.learned_by_type: dict[int, dict[str, float]] = {}
        self.waits: list[tuple[int, int, int, tuple[float | None, ...]]] = []
        self.overtaken = Counter()  # queued served calls that entered service before an earlier caller, by priority
        self.queued_served = Counter()
        self.service = ServiceTime(settings.service_fading)
        self.service_by_type: dict[str, ServiceTime] = {}
        self.patience = Patience(settings.patience_fading)
        self.kpis = QueueKpis(target_wait_s=settings.answer_s, tz=settings.tz, reset_at=settings.reset_at)
        self.waiting = 0
        self.in_service = 0
        self.last_start_wait_s: float | None = None
        self.now = -math.inf
        self._line: list[tuple[float, int]] = []  # waiting queued callers (arrival_s, index): FIFO check
        self._gone: set[int] = set()

    # -- time ---------------------------------------------------------------------------------------

    def _advance(self, t: float) -> None:
        """Integrate the queue state over `[now, t)` into the intervals it spans."""
        if t <= self.now:
            return
        if self.in_service or self.waiting:
            a = self.now
            bounds = self.grid.bounds
            i = self.grid.index(a)
            while a < t:
                b = min(t, bounds[i + 1])
                d = b - a
                self.busy_s[i] += self.in_service * d
                if self.waiting:
                    self.queued_s[i] += d
                    self.busy_queued_s[i] += self.in_service * d
                a = b
                i += 1
        self.now = t

    def _queue_event(self, i: int, action: str, t: float, **fields: Any) -> None:
        call = self.calls[i]
        self.kpis.update(QueueEvent(
            event_id=f"{i}-{action}", store_id="calls", ts_ms=round(t * 1000), region=None, zone=None,
            vertical="bank", action=action, ticket_id=str(i), service="calls",
            counter=call.server if action in ("called", "served") else None, customer_id=None,
            wait_s=fields.get("wait_s"), service_s=fields.get("service_s")))

    # -- the sweep ----------------------------------------------------------------------------------

    def run(self) -> Replay:
        calls, grid = self.calls, self.grid
        heap: list[tuple[float, int, int]] = [(c.arrival_s, _ARRIVE, i) for i, c in enumerate(calls)]
        marks = sorted({grid.index(c.arrival_s) for c in calls})
        heap += [(grid.bounds[k], _MARK, k) for k in marks]
        heapq.heapify(heap)
        done, total = 0, len(calls)
        while heap:
            t, kind, i = heapq.heappop(heap)
            self._advance(t)
            if kind == _ARRIVE:
                self._arrive(i, t, heap)
                done += 1
                if self.progress is not None and (done % 5000 == 0 or done == total):
                    self.progress(done, total)
            elif kind == _START:
                self._start(i, t, heap)
            elif kind == _END:
                self._end(i, t)
            else:
                self.learned[i] = (self.service.get(), self.service.cv(), self.patience.get())
                self.learned_by_type[i] = {name: est.get() for name, est in self.service_by_type.items()}
        return self

    def _arrive(self, i: int, t: float, heap: list[tuple[float, int, int]]) -> None:
        call = self.calls[i]
        k = self.grid.index(t)
        self.offered[k] += 1
        if call.type is not None:
            self.offered_by_type[k][call.type] += 1
        if call.served:
            self.served[k] += 1
            self.answered[k] += call.wait_s <= self.settings.answer_s
            self.service_sum_s[k] += call.service_s
            self.waits.append((i, self.waiting, self.in_service, self._predict(call, t)))
        else:
            self.abandoned[k] += 1
        self._queue_event(i, "issued", t)
        self.waiting += 1  # for no time at all when it goes straight to an agent
        if call.queued:
            heapq.heappush(self._line, (call.arrival_s, i))
        heapq.heappush(heap, (call.leave_s, _START if call.served else _END, i))

    def _predict(self, call: Call, t: float) -> tuple[float | None, ...]:
        """Every method's wait prediction for a caller arriving now (before they join the queue)."""
        self.kpis.advance(round(t * 1000))
        dashboard = self.kpis.get()["total"]["est_wait_s"]
        aht_s, patience_s = self.service.get(), self.patience.get()
        ahead, busy = self.waiting, max(1, self.in_service)
        if not call.queued:  # an agent was free: the switch answers at once
            queue_length: float | None = 0.0
            erlang_served: float | None = 0.0
            erlang_offered: float | None = 0.0
        elif not aht_s:
            queue_length = erlang_served = erlang_offered = None
        else:
            queue_length = (ahead + 1) * aht_s / busy
            erlang_served = erlang_a_wait_s(ahead, busy, aht_s, patience_s or None)
            erlang_offered = erlang_a_wait_s(ahead, busy, aht_s, patience_s or None, served=False)
        return (dashboard, self.last_start_wait_s, queue_length, erlang_served, erlang_offered)

    def _start(self, i: int, t: float, heap: list[tuple[float, int, int]]) -> None:
        call = self.calls[i]
        self.waiting -= 1
        self.in_service += 1
        self.last_start_wait_s = call.wait_s
        self._queue_event(i, "called", t, wait_s=call.wait_s)
        if call.queued:
            self._gone.add(i)
            line = self._line
            while line and line[0][1] in self._gone:
                self._gone.discard(heapq.heappop(line)[1])
            self.queued_served[call.priority] += 1
            if line and line[0][0] < call.arrival_s:
                self.overtaken[call.priority] += 1
        heapq.heappush(heap, (call.end_s, _END, i))

    def _end(self, i: int, t: float) -> None:
        call = self.calls[i]
        if call.served:
            self.in_service -= 1
            self.service.update(call.service_s)
            if call.type is not None:
                by_type = self.service_by_type.get(call.type)
                if by_type is None:
                    by_type = self.service_by_type[call.type] = ServiceTime(self.settings.service_fading)
                by_type.update(call.service_s)
            self.patience.update(call.wait_s, abandoned=False)
            self._queue_event(i, "served", t, service_s=call.service_s)
            if call.server is not None:
                first = self.grid.index(call.leave_s)
                last = first if call.service_s == 0 else bisect.bisect_left(self.grid.bounds, call.end_s) - 1
                for k in range(first, last + 1):
                    self.servers[k].add(call.server)
        else:
            self.waiting -= 1
            self.patience.update(call.wait_s, abandoned=True)
            self._queue_event(i, "abandoned", t, wait_s=call.wait_s)
            if call.queued:
                self._gone.add(i)


# -- per-interval predictions ----------------------------------------------------------------------


def _interpolated(target: StaffingTarget, offered: int, agents: float) -> tuple[float, float | None]:
    """Service level and abandonment at a fractional number of agents: linear between the whole numbers around it."""
    agents = max(1.0, agents)
    low = math.floor(agents)
    w = agents - low
    m = target.metrics(offered, low)
    if w < 1e-9:
        return m.service_level, m.abandon
    h = target.metrics(offered, low + 1)
    sl = (1 - w) * m.service_level + w * h.service_level
    abandon = None if m.abandon is None or h.abandon is None else (1 - w) * m.abandon + w * h.abandon
    return sl, abandon


def interval_rows(replay: Replay) -> list[dict[str, Any]]:
    """One row per interval with offered calls (`STAFFING_COLUMNS`; numbers unrounded, None for blank)."""
    s, grid = replay.settings, replay.grid
    rows: list[dict[str, Any]] = []
    actual_by_start: dict[dt.datetime, tuple[float, float]] = {}
    week = dt.timedelta(days=7)
    for k in range(len(grid)):
        offered = replay.offered[k]
        if not offered:
            continue
        interval_s = grid.bounds[k + 1] - grid.bounds[k]
        sl_actual = replay.answered[k] / offered
        abandon_actual = replay.abandoned[k] / offered
        actual_by_start[grid.starts[k]] = (sl_actual, abandon_actual)
        distinct = len(replay.servers[k])
        busy = replay.busy_s[k] / interval_s
        when_queued = replay.busy_queued_s[k] / replay.queued_s[k] if replay.queued_s[k] > 0 else None
        if when_queued is not None:
            observed, source = when_queued, "queued"
        elif distinct:
            observed, source = float(distinct), "distinct"
        else:
            observed, source = busy, "busy"
        aht_s, cv, patience_s = replay.learned.get(k, (None, None, None))
        row: dict[str, Any] = dict.fromkeys(STAFFING_COLUMNS)
        row.update({
            "interval_start": grid.starts[k], "offered": offered, "agents_observed": observed,
            "sl_actual": sl_actual, "abandon_actual": abandon_actual, "served": replay.served[k],
            "answered_in_time": replay.answered[k], "abandoned": replay.abandoned[k], "aht_s": aht_s,
            "service_cv": cv, "patience_s": patience_s, "agents_source": source, "agents_when_queued": when_queued,
            "distinct_servers": distinct, "mean_busy_agents": busy, "queued_share": replay.queued_s[k] / interval_s,
        })
        last = actual_by_start.get(grid.starts[k] - week)
        if last is not None:
            row["sl_last_week"], row["abandon_last_week"] = last
        if aht_s and interval_s > 0:
            target = StaffingTarget(interval_s=interval_s, aht_s=aht_s, answer_s=s.answer_s, target_sl=s.target_sl,
                                    patience_s=patience_s)
            row["model"] = "erlang_c" if patience_s is None else "erlang_a"
            for key, suffix, _ in AGENT_DEFINITIONS:
                agents = {"observed": observed, "distinct": float(distinct), "busy": busy}[key]
                if agents <= 0 and key != "observed":
                    continue
                sl, abandon = _interpolated(target, offered, agents)
                row[f"sl_predicted_{suffix}"], row[f"abandon_predicted_{suffix}"] = sl, abandon
            mix = replay.offered_by_type.get(k)
            if mix:  # the interval's own call-type mix, each type at its own learned service time
                learned = replay.learned_by_type.get(k, {})
                aht_mix = math.fsum(n * (learned.get(name) or aht_s) for name, n in mix.items()) / offered
                by_mix = StaffingTarget(interval_s=interval_s, aht_s=aht_mix, answer_s=s.answer_s,
                                        target_sl=s.target_sl, patience_s=patience_s)
                row["aht_mix_s"] = aht_mix
                row["sl_predicted_at_observed_mix"], row["abandon_predicted_at_observed_mix"] = _interpolated(
                    by_mix, offered, observed)
            if replay.served[k] and replay.service_sum_s[k] > 0:  # hindsight: not a prediction, a diagnosis
                aht_actual = replay.service_sum_s[k] / replay.served[k]
                by_actual = StaffingTarget(interval_s=interval_s, aht_s=aht_actual, answer_s=s.answer_s,
                                           target_sl=s.target_sl, patience_s=patience_s)
                row["aht_actual_s"] = aht_actual
                row["sl_hindsight_aht"], row["abandon_hindsight_aht"] = _interpolated(by_actual, offered, observed)
            need = target.required(offered)
            row["agents_recommended"] = need.agents
            row["sl_predicted_at_recommended"] = need.service_level
            row["abandon_predicted_at_recommended"] = need.abandon
        rows.append(row)
    return rows


# -- scores ----------------------------------------------------------------------------------------------


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.fmean(values) if values else None


def hourly_scores(rows: Sequence[dict[str, Any]], min_offered: int) -> dict[str, Any]:
    """MAE and bias of SL and abandonment predictions over intervals with `min_offered` calls or more.

    `common`: the intervals where Erlang (at the observed agents) and the naive prediction both
    exist, every prediction scored on them; `erlang_all`: every eligible interval with an Erlang
    prediction.
    """
    eligible = [r for r in rows if r["offered"] >= min_offered]
    common = [r for r in eligible if r["sl_predicted_at_observed"] is not None and r["sl_last_week"] is not None
              and r["abandon_predicted_at_observed"] is not None]
    out: dict[str, Any] = {"min_offered": min_offered, "eligible_intervals": len(eligible),
                           "common_intervals": len(common), "predictions": {}}

    def score(subset: Sequence[dict[str, Any]], sl_key: str, ab_key: str) -> dict[str, Any]:
        pairs_sl = [(r[sl_key], r["sl_actual"]) for r in subset if r[sl_key] is not None]
        pairs_ab = [(r[ab_key], r["abandon_actual"]) for r in subset if r[ab_key] is not None]
        return {
            "n": len(pairs_sl),
            "sl_mae": _mean(abs(p - a) for p, a in pairs_sl), "sl_bias": _mean(p - a for p, a in pairs_sl),
            "abandon_mae": _mean(abs(p - a) for p, a in pairs_ab), "abandon_bias": _mean(p - a for p, a in pairs_ab),
        }

    for key, suffix, words in AGENT_DEFINITIONS:
        entry = score(common, f"sl_predicted_{suffix}", f"abandon_predicted_{suffix}")
        entry["words"] = f"Erlang A at {words}"
        out["predictions"][f"erlang_{key}"] = entry
    if any(r["sl_predicted_at_observed_mix"] is not None for r in common):
        entry = score(common, "sl_predicted_at_observed_mix", "abandon_predicted_at_observed_mix")
        entry["words"] = "Erlang A at agents_observed, service time by the interval's call-type mix"
        out["predictions"]["erlang_observed_type_mix"] = entry
    if any(r["sl_hindsight_aht"] is not None for r in common):
        entry = score(common, "sl_hindsight_aht", "abandon_hindsight_aht")
        entry["words"] = "(hindsight, not online) Erlang A at agents_observed with the interval's own mean service"
        out["predictions"]["hindsight_actual_service_time"] = entry
    naive = score(common, "sl_last_week", "abandon_last_week")
    naive["words"] = "naive: same interval a week earlier"
    out["predictions"]["naive_last_week"] = naive
    out["erlang_all"] = score(eligible, "sl_predicted_at_observed", "abandon_predicted_at_observed")
    out["mean_sl_actual"] = _mean(r["sl_actual"] for r in common)
    out["mean_abandon_actual"] = _mean(r["abandon_actual"] for r in common)
    return out


def wait_scores(replay: Replay) -> dict[str, Any]:
    """MAE, median absolute error and share within 60 s of each method, over queued and over all served calls.

    Only calls every method could predict are scored (the first calls, before any service
    ended, have no estimate); `predicted` counts each method's non-blank predictions.
    """
    out: dict[str, Any] = {"predicted": {m: 0 for m in METHODS}}
    subsets: dict[str, list[tuple[float, tuple[float, ...]]]] = {"queued": [], "all_served": []}
    for i, _, _, predictions in replay.waits:
        for m, p in zip(METHODS, predictions, strict=True):
            out["predicted"][m] += p is not None
        if any(p is None for p in predictions):
            continue
        call = replay.calls[i]
        subsets["all_served"].append((call.wait_s, predictions))
        if call.queued:
            subsets["queued"].append((call.wait_s, predictions))
    for name, items in subsets.items():
        table: dict[str, Any] = {"n": len(items), "mean_actual_wait_s": _mean(a for a, _ in items), "methods": {}}
        for j, m in enumerate(METHODS):
            errors = [abs(p[j] - a) for a, p in items]
            table["methods"][m] = {
                "mae_s": _mean(errors), "median_ae_s": statistics.median(errors) if errors else None,
                "within_60s": _mean(e <= 60 for e in errors), "bias_s": _mean(p[j] - a for a, p in items),
            }
        out[name] = table
    return out


def _peak_stats(subset: Sequence[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in subset if r["agents_recommended"] is not None]
    return {
        "intervals": len(subset),
        "mean_offered": _mean(r["offered"] for r in subset),
        "mean_agents_observed": _mean(r["agents_observed"] for r in subset),
        "mean_distinct_servers": _mean(r["distinct_servers"] for r in subset),
        "mean_busy_agents": _mean(r["mean_busy_agents"] for r in subset),
        "mean_agents_recommended": _mean(r["agents_recommended"] for r in scored),
        "max_agents_recommended": max((r["agents_recommended"] for r in scored), default=None),
        "share_recommended_above_observed": _mean(r["agents_recommended"] > r["agents_observed"] for r in scored),
        "share_recommended_above_distinct": _mean(r["agents_recommended"] > r["distinct_servers"] for r in scored),
        "mean_sl_actual": _mean(r["sl_actual"] for r in subset),
        "mean_abandon_actual": _mean(r["abandon_actual"] for r in subset),
        "mean_sl_predicted_at_observed": _mean(r["sl_predicted_at_observed"] for r in scored),
        "mean_sl_predicted_at_recommended": _mean(r["sl_predicted_at_recommended"] for r in scored),
    }


def peak_staffing(rows: Sequence[dict[str, Any]], min_offered: int, top: int = 20) -> dict[str, Any]:
    """Advised against observed agents: by time of day, at the two busiest, the busiest intervals, all eligible.

    Only intervals with `min_offered` calls or more count; the busiest times of day are those
    with the most offered calls on average over them.
    """
    eligible = [r for r in rows if r["offered"] >= min_offered]
    by_time: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in eligible:
        by_time[r["interval_start"].strftime("%H:%M")].append(r)
    busiest_times = sorted(by_time, key=lambda t: -statistics.fmean(r["offered"] for r in by_time[t]))[:2]
    busiest = sorted(rows, key=lambda r: -r["offered"])[:top]
    return {
        "busiest_times_of_day": busiest_times,
        "by_time_of_day": {t: _peak_stats(by_time[t]) for t in sorted(by_time)},
        "busiest_intervals": {**_peak_stats(busiest),
                                     "intervals_listed": [{"interval_start": r["interval_start"].isoformat(sep=" "),
                                                           "offered": r["offered"],
                                                           "agents_observed": r["agents_observed"],
                                                           "distinct_servers": r["distinct_servers"],
                                                           "agents_recommended": r["agents_recommended"]}
                                                          for r in busiest[:5]]},
        "all_eligible": _peak_stats(eligible),
    }


# -- Erlang A's assumptions on the data ------------------------------------------------------------


def _ks(sorted_values: Sequence[float], cdf: Callable[[float], float]) -> float:
    """Kolmogorov-Smirnov distance of a sample (sorted) from a continuous CDF; ties handled as one jump."""
    n = len(sorted_values)
    d, i = 0.0, 0
    while i < n:
        j = i
        while j < n and sorted_values[j] == sorted_values[i]:
            j += 1
        f = cdf(sorted_values[i])
        d = max(d, abs(f - i / n), abs(j / n - f))
        i = j
    return d


def service_check(calls: Sequence[Call]) -> dict[str, Any]:
    """Service times against the exponential Erlang assumes (and the log-normal Brown et al. found)."""
    values = sorted(c.service_s for c in calls if c.served and c.service_s > 0)
    if len(values) < 2:
        return {"n": len(values)}
    mean = statistics.fmean(values)
    sd = statistics.pstdev(values)
    logs = [math.log(v) for v in values]
    mu, sigma = statistics.fmean(logs), statistics.pstdev(logs)
    return {
        "n": len(values), "zero_service_served": sum(1 for c in calls if c.served and c.service_s == 0),
        "mean_s": mean, "median_s": statistics.median(values), "cv": sd / mean,
        "median_over_mean": statistics.median(values) / mean, "median_over_mean_if_exponential": math.log(2),
        "share_above_3_means": sum(v > 3 * mean for v in values) / len(values),
        "share_above_3_means_if_exponential": math.exp(-3),
        "share_below_tenth_mean": sum(v < 0.1 * mean for v in values) / len(values),
        "share_below_tenth_mean_if_exponential": -math.expm1(-0.1),
        "ks_exponential": _ks(values, lambda x: -math.expm1(-x / mean)),
        "ks_lognormal": _ks(values, lambda x: 0.5 * (1 + math.erf((math.log(x) - mu) / (sigma * math.sqrt(2))))),
        "lognormal_mu": mu, "lognormal_sigma": sigma,
    }


PATIENCE_BINS_S = (0, 10, 30, 60, 120, 300, 600, math.inf)


def patience_check(calls: Sequence[Call]) -> dict[str, Any]:
    """Patience of queued callers against the exponential Erlang A assumes.

    Exponential patience has a constant hazard (hang-ups per second of waiting among those still
    waiting). The hazard is estimated in wait bands, abandonments in the band over the seconds
    callers spent waiting in it (served callers' waits are censored patiences), and the
    survival curve from those piecewise-constant hazards is set beside the exponential with the
    same maximum-likelihood mean (total wait over abandonments).
    """
    queued = [c for c in calls if c.queued]
    abandoned = sum(not c.served for c in queued)
    total_wait = math.fsum(c.wait_s for c in queued)
    if not abandoned:
        return {"queued": len(queued), "abandoned": 0}
    mean = total_wait / abandoned
    bands = []
    cum_hazard = 0.0
    survival = {}
    for low, high in itertools.pairwise(PATIENCE_BINS_S):
        exposure = math.fsum(min(c.wait_s, high) - low for c in queued if c.wait_s > low)
        hangups = sum(1 for c in queued if not c.served and low <= c.wait_s < high)
        hazard = hangups / exposure if exposure else None
        bands.append({"from_s": low, "to_s": None if math.isinf(high) else high, "abandoned": hangups,
                      "exposure_s": exposure, "hazard_per_min": None if hazard is None else 60 * hazard,
                      "hazard_over_exponential": None if hazard is None else hazard * mean})
        if not math.isinf(high) and hazard is not None:
            cum_hazard += hazard * (high - low)
            survival[str(high)] = {"estimated": math.exp(-cum_hazard), "exponential": math.exp(-high / mean)}
    return {"queued": len(queued), "abandoned": abandoned, "mle_mean_patience_s": mean,
            "mean_wait_abandoned_s": _mean(c.wait_s for c in queued if not c.served),
            "hazard_bands": bands, "survival": survival}


def pool_and_priority_check(replay: Replay) -> dict[str, Any]:
    """One pool and first come, first served: waits by call type and priority, overtaking, specialised agents."""
    calls = replay.calls
    out: dict[str, Any] = {}
    if any(c.type is not None for c in calls):
        by_type: dict[str, list[Call]] = defaultdict(list)
        agents_by_type: dict[str, Counter] = defaultdict(Counter)
        agent_calls: Counter = Counter()
        for c in calls:
            by_type[c.type or ""].append(c)
            if c.served and c.server is not None:
                agents_by_type[c.type or ""][c.server] += 1
                agent_calls[c.server] += 1
        types = {}
        for name, group in sorted(by_type.items(), key=lambda kv: -len(kv[1])):
            queued = [c for c in group if c.queued]
            served_q = [c for c in queued if c.served]
            agents = agents_by_type[name]
            handled = sum(agents.values())
            # How concentrated: the fewest agents who together served 90 % of the type's calls.
            running, few = 0, 0
            for _, n in agents.most_common():
                if running >= 0.9 * handled:
                    break
                running, few = running + n, few + 1
            types[name] = {
                "offered": len(group), "share_queued": len(queued) / len(group),
                "mean_wait_served_queued_s": _mean(c.wait_s for c in served_q),
                "abandon_rate": sum(not c.served for c in group) / len(group),
                "agents_serving": len(agents),
                "share_by_top2_agents": sum(n for _, n in agents.most_common(2)) / handled if handled else None,
                "agents_serving_90pct": few,
                "main_agents": [a for a, _ in agents.most_common(3)],
                "share_of_main_agents_calls": [agents[a] / agent_calls[a] for a, _ in agents.most_common(3)],
            }
        out["types"] = types
    if any(c.priority is not None for c in calls):
        by_priority: dict[str, list[Call]] = defaultdict(list)
        for c in calls:
            by_priority[c.priority or ""].append(c)
        out["priorities"] = {
            p: {"offered": len(g), "share_queued": _mean(c.queued for c in g),
                "mean_wait_served_queued_s": _mean(c.wait_s for c in g if c.queued and c.served),
                "abandon_rate_queued": _mean(not c.served for c in g if c.queued),
                "share_overtaking": (replay.overtaken[p] / replay.queued_served[p]
                                     if replay.queued_served[p] else None)}
            for p, g in sorted(by_priority.items())
        }
    total = sum(replay.queued_served.values())
    out["share_overtaking"] = sum(replay.overtaken.values()) / total if total else None
    return out


# -- the whole evaluation ------------------------------------------------------------------------------


@dataclass
class Evaluation:
    replay: Replay
    rows: list[dict[str, Any]]
    doc: dict[str, Any]


def evaluate(log: CallLog, settings: Settings, progress: Callable[[int, int], None] | None = None) -> Evaluation:
    """Replay the calls, predict each interval and each served call's wait, and score it all."""
    if not log.calls:
        raise ValueError("no served or abandoned call in the file")
    replay = Replay(log.calls, settings, progress).run()
    rows = interval_rows(replay)
    doc: dict[str, Any] = {
        "settings": asdict(settings),
        "calls": {"rows": log.rows, "offered": len(log.calls), "served": sum(c.served for c in log.calls),
                  "abandoned": sum(not c.served for c in log.calls), "ignored": dict(log.ignored),
                  "bad_rows": log.bad_rows, "bad_examples": log.bad_examples,
                  "queued_column": log.has_queued, "dashboard_kpis_evicted": replay.kpis.evicted,
                  "dashboard_kpis_expired": replay.kpis.get()["total"]["expired"]},
        "intervals": {"with_offered_calls": len(rows),
                      "with_min_offered": sum(r["offered"] >= settings.min_offered for r in rows),
                      "agents_source": dict(Counter(r["agents_source"] for r in rows))},
        "definitions": {
            "agents_observed": "time-average calls in service while at least one caller waited in the interval "
                               "(every agent on the queue is busy then); no caller waited: distinct named agents "
                               "serving in the interval; none: mean busy agents",
            "offered": "served + abandoned by arrival interval; " + ", ".join(sorted(log.ignored) or ["no"])
                       + " rows dropped as read",
            "sl_actual": f"served with wait_s <= {settings.answer_s:g} s over offered",
            "online": "service time and patience from calls ended at or before the interval's start; the "
                      "interval's offered calls and agents_observed are the interval's own",
        },
        "hourly": hourly_scores(rows, settings.min_offered),
        "wait_prediction": wait_scores(replay),
        "peaks": peak_staffing(rows, settings.min_offered),
        "assumptions": {"service": service_check(log.calls), "patience": patience_check(log.calls),
                        "pool_and_priority": pool_and_priority_check(replay)},
    }
    return Evaluation(replay, rows, doc)


# -- output ----------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return f"{value:.9g}" if abs(value) < 1e6 else f"{value:.1f}"
    return str(value)


def write_staffing_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(STAFFING_COLUMNS)
        for r in rows:
            out.writerow([_fmt(r[c]) for c in STAFFING_COLUMNS])


def write_wait_csv(replay: Replay, path: Path) -> None:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(WAIT_COLUMNS)
        for i, ahead, busy, predictions in replay.waits:
            call = replay.calls[i]
            for m, p in zip(METHODS, predictions, strict=True):
                out.writerow([call.arrival, _fmt(p), _fmt(call.wait_s), m, int(call.queued), ahead, busy])


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _num(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def summary_text(doc: dict[str, Any]) -> str:
    """The markdown tables printed at the end of a run."""
    h = doc["hourly"]
    lines = [f"Per interval, intervals with >= {h['min_offered']} offered calls and a week-earlier value "
             f"({h['common_intervals']} of {h['eligible_intervals']}; actual SL {_pct(h['mean_sl_actual'])}, "
             f"abandonment {_pct(h['mean_abandon_actual'])}):", "",
             "| prediction | SL MAE | SL bias | abandonment MAE | abandonment bias |", "|---|---|---|---|---|"]
    for p in h["predictions"].values():
        lines.append(f"| {p['words']} | {_pct(p['sl_mae'])} | {_pct(p['sl_bias'])} | {_pct(p['abandon_mae'])} | "
                     f"{_pct(p['abandon_bias'])} |")
    w = doc["wait_prediction"]
    lines += ["", f"Wait prediction, served calls that queued (n = {w['queued']['n']}, mean wait "
              f"{_num(w['queued']['mean_actual_wait_s'])} s) | all served (n = {w['all_served']['n']}):", "",
              "| method | MAE s | median AE s | within 60 s | bias s | all: MAE s | all: median AE s | "
              "all: within 60 s |", "|---|---|---|---|---|---|---|---|"]
    for m in METHODS:
        q, a = w["queued"]["methods"][m], w["all_served"]["methods"][m]
        lines.append(f"| {m} | {_num(q['mae_s'])} | {_num(q['median_ae_s'])} | {_pct(q['within_60s'])} | "
                     f"{_num(q['bias_s'])} | {_num(a['mae_s'])} | {_num(a['median_ae_s'])} | {_pct(a['within_60s'])} |")
    pk = doc["peaks"]
    lines += ["", "Agents advised (target "
              f"{_pct(doc['settings']['target_sl'])} within {doc['settings']['answer_s']:g} s) against agents had:", "",
              "| intervals | n | offered | observed (busy while queued) | distinct agents | mean busy | advised | "
              "advised > observed | SL actual | SL predicted at observed |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    picked = [(f"at {t}", pk["by_time_of_day"][t]) for t in pk["busiest_times_of_day"]]
    for name, s in [*picked, (f"busiest {pk['busiest_intervals']['intervals']}", pk["busiest_intervals"]),
                    ("all eligible", pk["all_eligible"])]:
        lines.append(f"| {name} | {s['intervals']} | {_num(s['mean_offered'])} | "
                     f"{_num(s['mean_agents_observed'], 2)} | "
                     f"{_num(s['mean_distinct_servers'], 2)} | {_num(s['mean_busy_agents'], 2)} | "
                     f"{_num(s['mean_agents_recommended'], 2)} | {_pct(s['share_recommended_above_observed'])} | "
                     f"{_pct(s['mean_sl_actual'])} | {_pct(s['mean_sl_predicted_at_observed'])} |")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[dict[str, Any]], min_offered: int, path: Path) -> bool:
    """SL and abandonment by time of day (mean of predicted, naive and actual) and predicted against actual."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    eligible = [r for r in rows if r["offered"] >= min_offered and r["sl_predicted_at_observed"] is not None]
    if not eligible:
        return False
    times = sorted({r["interval_start"].strftime("%H:%M") for r in eligible})
    fig, axes = plt.subplots(2, 2, figsize=(14, 9), dpi=100)
    for col, (what, label) in enumerate([("sl", "service level"), ("abandon", "abandonment")]):
        ax = axes[0][col]
        series = [(f"{what}_actual", "actual", "black", "-"),
                  (f"{what}_predicted_at_observed", "Erlang A at agents observed", "tab:blue", "-"),
                  (f"{what}_predicted_at_distinct", "Erlang A at distinct agents", "tab:blue", ":"),
                  (f"{what}_hindsight_aht", "(hindsight) at agents observed, actual service time", "tab:green",
                   "-."),
                  (f"{what}_last_week", "naive: a week earlier", "tab:orange", "--")]
        for key, name, color, style in series:
            means = []
            for t in times:
                vals = [r[key] for r in eligible if r["interval_start"].strftime("%H:%M") == t and r[key] is not None]
                means.append(statistics.fmean(vals) if vals else math.nan)
            ax.plot(range(len(times)), means, color=color, ls=style, marker="o", ms=3, label=name)
        ax.set_xticks(range(len(times)), times, rotation=90, fontsize=7)
        ax.set_ylabel(f"{label} (mean over intervals)")
        ax.set_title(f"{label} by time of day, intervals with >= {min_offered} calls")
        ax.legend(fontsize=8)
        ax = axes[1][col]
        pairs = [(r[f"{what}_predicted_at_observed"], r[f"{what}_actual"]) for r in eligible
                 if r[f"{what}_predicted_at_observed"] is not None]
        ax.scatter([p for p, _ in pairs], [a for _, a in pairs], s=4, alpha=0.4, color="tab:blue")
        ax.plot([0, 1], [0, 1], color="gray", lw=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"{label} predicted (Erlang A at agents observed)")
        ax.set_ylabel(f"{label} actual")
        ax.set_title(f"each interval ({len(pairs)})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


class _Progress:
    """A tqdm bar on stderr, updated every few seconds when not a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.label, unit="call", file=sys.stderr,
                             mininterval=0.5 if sys.stderr.isatty() else 5.0)
        self._bar.update(done - self._bar.n)
        if done >= total:
            self._bar.close()


# -- command line ----------------------------------------------------------------------------------


def register(what: argparse._SubParsersAction) -> None:
    """Add `footfall evaluate staffing` to the `evaluate` subcommands."""
    p = what.add_parser(
        "staffing", help="replay a per-call CSV: Erlang A's SL and abandonment at the agents really had, and wait "
        "predictions, scored",
        description="Replay a per-call CSV (arrival, outcome, wait, service time, agent) strictly online through "
        "footfall's staffing operators: each interval's service level and abandonment predicted by Erlang A at the "
        "agents observed (service time and patience learned from calls ended before it starts) against what "
        "happened and against the same interval a week earlier; each served call's wait predicted at its arrival "
        "by five methods; the agents Erlang A would have advised.",
    )
    p.add_argument("--calls", type=Path, required=True, help="per-call CSV, one row per call that asked for an agent")
    p.add_argument("--out", type=Path, required=True, help="folder for staffing.csv, wait_prediction.csv, "
                   "staffing_report.json and staffing_plot.png")
    p.add_argument("--interval", default="1h", help="interval length: 15min, 30min, 1h ... (default 1h)")
    p.add_argument("--answer-s", type=float, default=20.0, help="answer-time target in seconds (default 20)")
    p.add_argument("--target-sl", type=float, default=0.8, help="service-level target for the advice (default 0.8)")
    p.add_argument("--min-offered", type=int, default=30,
                   help="intervals scored: at least this many offered calls (default 30)")
    p.add_argument("--tz", default="UTC", help="time zone of arrival times without an offset (default UTC)")
    p.add_argument("--service-fading", type=float, default=0.01, help="ServiceTime fading (default 0.01)")
    p.add_argument("--patience-fading", type=float, default=0.002, help="Patience fading (default 0.002)")
    p.add_argument("--reset-at", default="04:00", help="the dashboard KPIs' daily restart, local time (default 04:00)")
    cols = p.add_argument_group("columns and values (defaults: the Anonymous Bank call-centre file)")
    d = Columns()
    cols.add_argument("--arrival-col", default=d.arrival, help="time the caller asked for an agent (ISO-8601)")
    cols.add_argument("--outcome-col", default=d.outcome, help="outcome of the call")
    cols.add_argument("--wait-col", default=d.wait, help="seconds in queue, until answered or hanging up")
    cols.add_argument("--service-col", default=d.service, help="seconds of service (served calls)")
    cols.add_argument("--server-col", default=d.server, help="agent who served the call")
    cols.add_argument("--queued-col", default=d.queued, help="1 if the call joined the queue, 0 if an agent was free "
                      "(optional; without it a zero wait means an agent was free)")
    cols.add_argument("--priority-col", default=d.priority, help="priority class (optional; for the FIFO check)")
    cols.add_argument("--type-col", default=d.type, help="service type (optional; for the one-pool check)")
    cols.add_argument("--served-value", default=d.served_value, help="outcome of a served call")
    cols.add_argument("--abandoned-value", default=d.abandoned_value, help="outcome of a caller who hung up")
    cols.add_argument("--ignore-outcomes", default=",".join(d.ignore_values),
                      help="comma-separated outcomes dropped as read (default phantom)")
    cols.add_argument("--no-server", default=d.no_server, help="agent value meaning no named agent")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from footfall.scripts.evaluate import parse_freq_ms

    columns = Columns(
        arrival=args.arrival_col, outcome=args.outcome_col, wait=args.wait_col, service=args.service_col,
        server=args.server_col, queued=args.queued_col, priority=args.priority_col, type=args.type_col,
        served_value=args.served_value, abandoned_value=args.abandoned_value,
        ignore_values=tuple(v for v in args.ignore_outcomes.split(",") if v), no_server=args.no_server)
    try:
        interval_ms = parse_freq_ms(args.interval)
        if interval_ms % 1000:
            raise ValueError(f"{args.interval!r}: the interval must be whole seconds")
        if not 0 < args.target_sl < 1 or args.answer_s < 0 or args.min_offered < 1:
            raise ValueError("need 0 < --target-sl < 1, --answer-s >= 0, --min-offered >= 1")
        settings = Settings(interval_s=interval_ms // 1000, answer_s=args.answer_s, target_sl=args.target_sl,
                            tz=args.tz, min_offered=args.min_offered, service_fading=args.service_fading,
                            patience_fading=args.patience_fading, reset_at=args.reset_at)
        t0 = time.monotonic()
        log = read_calls(args.calls, columns, tz=args.tz)
        print(f"{args.calls}: {log.rows} rows, {len(log.calls)} offered calls, ignored {dict(log.ignored)}, "
              f"{log.bad_rows} bad rows", file=sys.stderr)
        result = evaluate(log, settings, progress=_Progress("replaying"))
    except (OSError, ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
        print(f"footfall evaluate staffing: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"source": {"calls": str(args.calls), "columns": asdict(columns), "interval": args.interval}, **result.doc}
    doc["elapsed_s"] = round(time.monotonic() - t0, 1)
    (args.out / "staffing_report.json").write_text(json.dumps(_json_safe(doc), indent=2) + "\n")
    write_staffing_csv(result.rows, args.out / "staffing.csv")
    write_wait_csv(result.replay, args.out / "wait_prediction.csv")
    plotted = plot(result.rows, settings.min_offered, args.out / "staffing_plot.png")
    print(summary_text(doc))
    print(f"written: {args.out}/staffing.csv, wait_prediction.csv, staffing_report.json"
          + (", staffing_plot.png" if plotted else " (no plot)") + f" in {doc['elapsed_s']} s", file=sys.stderr)
    return 0
