"""Everything footfall keeps about one store, updated one event at a time.

`StoreFlow` puts the window operators and KPIs of one store together, in the
order that makes counts exact:

1. an event whose bucket was handed out `restate_horizon_ms` (24 h) or more before the
   watermark is **late**: not counted anywhere, counted in `late` (the worker dead-letters it);
2. a repeated `event_id` (within `dedupe_horizon_ms` of the store's watermark) is
   a **duplicate**: dropped, counted in `duplicates`;
3. anything else is counted, everywhere at once: its tumbling bucket (flow counts
   and shop KPIs), the sliding windows, occupancy, queue KPIs and its local day. An
   event in a bucket already handed out (a gateway's backfill after an outage, a slow
   upload) is **restated**: its bucket comes out again of `pop_restated` as a new
   revision, and it counts in `restated`.

The watermark is the buckets' (`TumblingBuckets`): robust to a few skewed clocks, an
event far ahead of it counts in its own bucket but moves it only when corroborated.
The store's other clocks follow that watermark, never an event alone: an event ahead
of it counts in the sliding windows, occupancy and queues at the watermark (it arrived
now), and is remembered by the de-duplication from there. An event older than the
de-duplication horizon (a backfill) is remembered from the watermark on too, so its
re-send within `dedupe_horizon_ms` is a duplicate.

Closed buckets come out of `pop_closed`, each compared with the same bucket a
week earlier and with the rolling baselines of the buckets before it (a restated
revision keeps those references, compared with its new values); `live()`
is the store's state now (last 5/15/60 minutes, occupancy, today against the
same weekday last week, queues). The whole state goes out through `to_state()`
as plain data and comes back, unchanged, through `from_state()`.

Examples
--------
Buckets of 15 minutes with 5 minutes of grace, in Europe/London:

>>> from footfall.schemas.events import DoorEvent, PosEvent
>>> def door(i, ts_ms, n_in=1, n_out=0):
...     return DoorEvent(event_id=f"d{i}", store_id="s1", ts_ms=ts_ms, region="north", zone=None,
...                      vertical="retail", door_id="main", sensor_id="c1", count_in=n_in, count_out=n_out,
...                      interval_s=0)
>>> def sale(i, ts_ms, amount):
...     return PosEvent(event_id=f"p{i}", store_id="s1", ts_ms=ts_ms, region="north", zone=None,
...                     vertical="retail", transaction_id=f"t{i}", amount=amount, items=1, currency="GBP",
...                     till_id=None, customer_id=None)
>>> store = StoreFlow(StoreParams(bucket_ms=900_000, grace_ms=300_000, tz="Europe/London"))
>>> noon = 1_790_164_800_000  # 2026-09-23T12:00:00Z, 13:00 in London
>>> events = [door(1, noon + 60_000, 3), sale(1, noon + 120_000, 20.0), door(1, noon + 130_000),
...           door(2, noon + 16 * 60_000, 1, 2), door(3, noon + 50_000), door(4, noon + 21 * 60_000),
...           door(5, noon + 10 * 60_000)]
>>> [store.update(e) for e in events[:6]]
['counted', 'counted', 'duplicate', 'counted', 'counted', 'counted']
>>> [(start - noon) // 60_000 for start, record in store.pop_closed()]
[0]
>>> closed = store.last_closed
>>> closed["arrivals"], closed["transactions"], closed["conversion_rate"], closed["sales_per_visitor"]
(4, 1, 0.25, 5.0)

The last event, at 13:10, comes after its bucket was handed out: it restates it (revision 2).

>>> store.update(events[6])
'restated'
>>> [((start - noon) // 60_000, record["arrivals"], revision) for start, record, revision in store.pop_restated()]
[(0, 5, 2)]
>>> live = store.live()
>>> live["windows"]["15m"]["arrivals"], live["occupancy"]["occupancy"], live["today"]["arrivals"]
(3, 5, 7)
>>> store.duplicates, store.late, store.restated
(1, 0, 1)

"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from footfall.operators.frozen import embedded, freeze, thaw
from footfall.operators.kpis.flow import FlowCounts
from footfall.operators.kpis.occupancy import Occupancy
from footfall.operators.kpis.queues import QueueKpis
from footfall.operators.kpis.retail import RetailKpis
from footfall.operators.windows.buckets import TumblingBuckets
from footfall.operators.windows.dedupe import RecentEventIds
from footfall.operators.windows.localtime import LocalDays, local_day
from footfall.operators.windows.rolling import BucketBaseline, _versus
from footfall.operators.windows.sliding import SlidingCounts
from footfall.schemas.events import DoorEvent, Event, PosEvent, QueueEvent, VisitEvent

__all__ = ["BucketKpis", "StoreFlow", "StoreParams"]

#: Quantities of the sliding windows and of the closed-bucket comparisons.
COMPARED = ("arrivals", "transactions", "tickets_issued")
SLIDING = ("arrivals", "departures", "transactions", "tickets_issued")


def _window_name(window_ms: int) -> str:
    minutes, seconds = divmod(window_ms // 1000, 60)
    return f"{minutes}m" if not seconds else f"{window_ms // 1000}s"


class BucketKpis:
    """The aggregation of one bucket or day: `FlowCounts` and `RetailKpis` side by side.

    State: `[flow_state, retail_state]`; the result is both results in one dict
    (`transactions`, `items` and `sales` appear in both and agree).
    """

    def __init__(self) -> None:
        self.flow = FlowCounts()
        self.retail = RetailKpis()

    @classmethod
    def _unit_test_params(cls):
        yield {}

    def initialize(self) -> list[Any]:
        return [self.flow.initialize(), self.retail.initialize()]

    def agg(self, state: list[Any], event: Event) -> list[Any]:
        """A new state: both halves with `event` folded in (`state` itself is left unchanged)."""
        return [self.flow.agg(state[0], event), self.retail.agg(state[1], event)]

    def result(self, state: list[Any]) -> dict[str, Any]:
        return {**self.flow.result(state[0]), **self.retail.result(state[1])}


@dataclass(frozen=True)
class StoreParams:
    """How one store is counted (configuration; never part of the saved state).

    Parameters
    ----------
    bucket_ms, grace_ms
        Tumbling bucket length, and how long past its end late events still count.
    tz
        The store's IANA time zone: its days, and the daily reset of occupancy and queues.
    reset_at
        Local time of the daily reset (`HH:MM`), best when the store is closed.
    dedupe_horizon_ms
        How long an `event_id` is remembered: a repeat within it is a duplicate.
    target_wait_s
        Queue service-level target.
    windows_ms
        Sliding windows (multiples of `slot_ms`).
    baseline_window, baseline_fading
        Closed buckets in the rolling baseline; weight of the newest in the EW mean.
    days_kept
        Local days whose totals are kept (8: today and the same day last week).
    max_gap_ms
        Longest run of empty buckets handed out at once after a long silence.
    restate_horizon_ms
        How long after its close a bucket still takes late events, as a new revision (24 h);
        older events are late. Costs one kept bucket per `bucket_ms` of it.
    watermark_lead_ms
        How far ahead of the watermark one event may move it alone (None: the longer of
        `bucket_ms` and `grace_ms`).
    watermark_corroboration
        Events needed at or beyond a time further ahead than the lead before the watermark
        moves there (3: one or two skewed events close nothing).

    """

    bucket_ms: int = 900_000
    grace_ms: int = 300_000
    tz: str = "UTC"
    reset_at: str = "04:00"
    dedupe_horizon_ms: int = 1_200_000
    target_wait_s: float = 600.0
    windows_ms: tuple[int, ...] = (300_000, 900_000, 3_600_000)
    slot_ms: int = 10_000
    baseline_window: int = 8
    baseline_fading: float = 0.25
    days_kept: int = 8
    max_gap_ms: int = 7 * 86_400_000
    restate_horizon_ms: int = 86_400_000
    watermark_lead_ms: int | None = None
    watermark_corroboration: int = 3

    def buckets_kwargs(self) -> dict[str, Any]:
        """The `TumblingBuckets` parameters besides the aggregation."""
        return {"bucket_ms": self.bucket_ms, "grace_ms": self.grace_ms, "max_gap_ms": self.max_gap_ms,
                "restate_horizon_ms": self.restate_horizon_ms, "lead_ms": self.watermark_lead_ms,
                "corroboration": self.watermark_corroboration}


class StoreFlow:
    """One store's buckets, windows, occupancy, queues, days and baselines (see the module docstring)."""

    __slots__ = (
        "_days_of", "_kpis", "_refs", "baseline", "buckets", "days", "dedupe", "duplicates", "last_closed", "late",
        "occupancy", "params", "queues", "restated", "sliding", "touched",
    )

    def __init__(self, params: StoreParams | None = None) -> None:
        p = params or StoreParams()
        self.params = p
        self._kpis = BucketKpis()
        self._days_of = LocalDays(p.tz)
        self.buckets = TumblingBuckets(aggregation=self._kpis, **p.buckets_kwargs())
        self.dedupe = RecentEventIds(p.dedupe_horizon_ms)
        self.sliding = SlidingCounts(SLIDING, p.windows_ms, p.slot_ms)
        self.occupancy = Occupancy(p.tz, p.reset_at)
        self.queues: QueueKpis | None = None  # made on the first queue event: most stores have none
        self.baseline = BucketBaseline(p.bucket_ms, COMPARED, p.baseline_window, p.baseline_fading)
        # Local ISO date -> BucketKpis state. Only the day counted into last is kept as lists; the others
        # (read by `live` for the same day last week, counted into only by a late event) as their JSON bytes
        # (`operators.frozen`): as lists of Python numbers they took 8-16 KB of a store's memory, as bytes 1-3.
        self.days: dict[str, list[Any] | bytes] = {}
        self.duplicates = 0
        self.late = 0
        #: Events counted into a bucket already handed out (each restates it), in total.
        self.restated = 0
        # Closed buckets kept for restating -> the references their first revision was compared with
        # (per COMPARED quantity: last week, rolling mean, EW mean), so a new revision compares the same.
        # All of them as one JSON object's bytes, `{"<start>": [9 numbers]}` as saved, read only when a late event
        # restates a bucket, at a close and at a save: a day of them as lists of Python floats took 34 KB of a
        # store's memory, as a dict of JSON bytes a bucket 20 KB (a dict slot, an int and a bytes object each),
        # as one object 10 KB. At a close it is parsed and written again: about 60 us, beside 2.3 ms for the close.
        self._refs: bytes = b"{}"
        #: Buckets counted into since the last `pop_touched` (start -> last event id).
        self.touched: dict[int, str] = {}
        #: The newest record `pop_closed` returned.
        self.last_closed: dict[str, Any] | None = None

    @classmethod
    def _unit_test_params(cls):
        yield {}

    @property
    def watermark_ms(self) -> int | None:
        return self.buckets.watermark_ms

    # -- events -----------------------------------------------------------------------------------

    def update(self, event: Event) -> str:
        """Take one event: `"counted"`, `"restated"` (counted into a bucket already handed out),
        `"duplicate"` (dropped) or `"late"` (its bucket closed more than the restate horizon ago)."""
        buckets, ts = self.buckets, event.ts_ms
        start = buckets.bucket_of(ts)
        restating = buckets.handed_out(start)
        if (not buckets.restatable(start)) if restating else buckets.too_old(start):
            self.late += 1
            return "late"
        wm = buckets.watermark_ms
        if self.dedupe.seen(event.event_id, self._dedupe_time(ts, wm)):
            self.duplicates += 1
            return "duplicate"
        buckets.update(event)
        if restating:
            self.restated += 1
        else:
            self.touched[start] = event.event_id
        wm = buckets.watermark_ms
        if wm is not None and ts > wm:
            ts = wm  # ahead of the watermark (not corroborated yet): it counts now in the store's clocks
        counts: dict[str, int] | None = None
        if isinstance(event, DoorEvent):
            counts = {"arrivals": event.count_in, "departures": event.count_out}
            self.occupancy.update(ts, event.count_in, event.count_out)
        elif isinstance(event, VisitEvent):
            arrive = event.action == "arrive"
            counts = {"arrivals": 1} if arrive else {"departures": 1}
            self.occupancy.update(ts, 1 if arrive else 0, 0 if arrive else 1)
        elif isinstance(event, PosEvent):
            counts = {"transactions": 1}
        elif isinstance(event, QueueEvent):
            if self.queues is None:
                self.queues = QueueKpis(self.params.target_wait_s, tz=self.params.tz, reset_at=self.params.reset_at)
            self.queues.update(event if ts == event.ts_ms else dataclasses.replace(event, ts_ms=ts))
            if event.action == "issued":
                counts = {"tickets_issued": 1}
        # The windows' clock follows the watermark; an event at the watermark (the usual one) moves it
        # with its own counts, in one call.
        behind = self.sliding.watermark_ms is None or wm > self.sliding.watermark_ms  # type: ignore[operator]
        if behind and (counts is None or ts != wm):
            self.sliding.update(wm, {})  # type: ignore[arg-type]
        if counts is not None:
            self.sliding.update(ts, counts)
        self._count_day(event)
        return "restated" if restating else "counted"

    def _dedupe_time(self, ts_ms: int, wm: int | None) -> int:
        """The time an event is checked and remembered at: its own, or the watermark when it is far
        ahead (not corroborated: it must not expire the ids remembered) or older than the horizon
        (a backfill: remembered from now, so a re-send of it is recognised)."""
        if wm is None:
            return ts_ms
        if ts_ms > wm + self.buckets.lead_ms or ts_ms < wm - self.params.dedupe_horizon_ms:
            return wm
        return ts_ms

    def _count_day(self, event: Event) -> None:
        day = self._days_of.iso(event.ts_ms)
        state = self.days.get(day)
        # At most one day is kept as lists: when this one was not, the one that was is frozen below.
        switched = not isinstance(state, list)
        if state is None:
            state = self._kpis.initialize()
            self.days[day] = state
            if len(self.days) > self.params.days_kept:
                for old in sorted(self.days)[: len(self.days) - self.params.days_kept]:
                    del self.days[old]
        elif isinstance(state, bytes):
            state = thaw(state)
        if day in self.days:  # not when it was just dropped, older than every day kept
            self.days[day] = self._kpis.agg(state, event)
            if switched:
                for other, kept in self.days.items():
                    if other != day and not isinstance(kept, bytes):
                        self.days[other] = freeze(kept)

    def advance(self, ts_ms: int) -> None:
        """Let event time reach `ts_ms` with no events (an idle store); closes buckets, never counts."""
        self.buckets.advance(ts_ms)
        self.sliding.update(ts_ms, {})
        self.occupancy.advance(ts_ms)
        if self.queues is not None:
            self.queues.advance(ts_ms)

    def next_close_ms(self) -> int | None:
        """Watermark at which the oldest bucket not handed out yet closes (None before any event)."""
        return self.buckets.next_close_ms()

    # -- results ----------------------------------------------------------------------------------

    def pop_closed(self) -> list[tuple[int, dict[str, Any]]]:
        """`(start, record)` of every bucket closed since the last call, oldest first (each its revision 1).

        A record holds the bucket's counts and KPIs and, under `compare`, each of
        `COMPARED` against the same bucket last week and the rolling baselines.
        """
        out = []
        new_refs: dict[str, list[Any]] = {}
        for start, counts in self.buckets.pop_closed():
            self.touched.pop(start, None)
            record = dict(counts)
            if self.baseline.last_bucket_ms is None or start > self.baseline.last_bucket_ms:
                record["compare"] = self.baseline.compare(start, counts)
                self.baseline.update(start, counts)
                if self.buckets.kept(start):
                    new_refs[str(start)] = [x for q in COMPARED for x in _refs_of(record["compare"][q])]
            out.append((start, record))
            self.last_closed = record
        if out:
            refs = thaw(self._refs)
            refs.update(new_refs)
            # Only those of buckets still kept: the others left the restate horizon.
            self._refs = freeze({k: v for k, v in refs.items() if self.buckets.kept(int(k))})
        return out

    def pop_restated(self) -> list[tuple[int, dict[str, Any], int]]:
        """`(start, record, revision)` of every closed bucket counted into since the last call, oldest first.

        The record is the bucket's counts and KPIs with every event now, and a `compare` against
        the references its first revision was compared with. Nothing else learns from it: the
        baselines (like the pipeline's stages) saw the bucket once, at its close.
        """
        out = []
        refs_by_start: dict[str, list[Any]] | None = None
        for start, counts, revision in self.buckets.pop_restated():
            record = dict(counts)
            if refs_by_start is None:
                refs_by_start = thaw(self._refs)
            refs = refs_by_start.get(str(start))
            if refs is not None:
                record["compare"] = {q: _compared(counts[q], refs[3 * i: 3 * i + 3]) for i, q in enumerate(COMPARED)}
            out.append((start, record, revision))
        return out

    def pop_touched(self) -> list[tuple[int, dict[str, Any], str]]:
        """`(start, kpis, last_event_id)` of the open buckets counted into since the last call."""
        out = []
        for start, event_id in sorted(self.touched.items()):
            counts = self.buckets.get(start)
            if counts is not None:
                out.append((start, counts, event_id))
        self.touched.clear()
        return out

    def bucket(self, start_ms: int) -> dict[str, Any] | None:
        """KPIs of an open bucket, or None."""
        return self.buckets.get(start_ms)

    def day(self, day: dt.date | str) -> dict[str, Any] | None:
        """Totals and KPIs of a local day still kept, or None."""
        state = self.days.get(day if isinstance(day, str) else day.isoformat())
        if state is None:
            return None
        return self._kpis.result(thaw(state) if isinstance(state, bytes) else state)

    def live(self) -> dict[str, Any]:
        """The store now, as of its watermark: windows, occupancy, today vs a week ago, queues."""
        wm = self.watermark_ms
        today = local_day(wm, self.params.tz) if wm is not None else None
        return {
            "as_of_ms": wm,
            "windows": {_window_name(w): self.sliding.get(w) for w in self.sliding.windows_ms},
            "occupancy": self.occupancy.summary(),
            "day": today.isoformat() if today else None,
            "today": self.day(today) if today else None,
            "same_day_last_week": self.day(today - dt.timedelta(days=7)) if today else None,
            "queue": self.queues.get() if self.queues is not None else None,
            "duplicates": self.duplicates,
            "late": self.late,
            "restated": self.restated,
        }

    # -- plain-data state, for Faust tables ------------------------------------------------------

    def to_state(self, embed: bool = False) -> dict[str, Any]:
        """Plain JSON-able state (the parameters are configuration, not state).

        `embed`: the parts kept as JSON bytes stay bytes for `orjson.dumps` to write as they are
        (`operators.frozen.embedded`): for a caller that serialises the state at once.
        """
        buckets = self.buckets.to_state(embed)
        keep = embedded if embed else thaw
        # TumblingBuckets copies one level of an open bucket; a BucketKpis state nests two. (Its closed
        # buckets' states come out new: they are kept as bytes.) Serialised at once (`embed`), nothing can
        # change it before it is written: no copies (they were a tenth of a save's time).
        current = _as_is if embed else _bucket_copy
        if not embed:
            buckets["open"] = {k: _bucket_copy(v) for k, v in buckets["open"].items()}
        return {
            "buckets": buckets,
            "recent_event_ids": self.dedupe.to_state(),
            "sliding": self.sliding.to_state(),
            "occupancy": self.occupancy.to_state(),
            "queues": self.queues.to_state() if self.queues is not None else None,
            "baseline": self.baseline.to_state(),
            "days": {day: keep(s) if isinstance(s, bytes) else current(s) for day, s in self.days.items()},
            "duplicates": self.duplicates,
            "late": self.late,
            "restated": self.restated,
            "refs": keep(self._refs),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, params: StoreParams | None = None) -> StoreFlow:
        """Rebuild from `to_state()` output (None gives an empty store)."""
        store = cls(params)
        if not state:
            return store
        p = store.params
        store.buckets = TumblingBuckets.from_state(state["buckets"], aggregation=store._kpis, **p.buckets_kwargs())
        store.dedupe = RecentEventIds.from_state(state["recent_event_ids"], horizon_ms=p.dedupe_horizon_ms)
        store.sliding = SlidingCounts.from_state(state["sliding"], quantities=SLIDING, windows_ms=p.windows_ms,
                                                 slot_ms=p.slot_ms)
        store.occupancy = Occupancy.from_state(state["occupancy"], tz=p.tz, reset_at=p.reset_at)
        if state.get("queues") is not None:
            store.queues = QueueKpis.from_state(state["queues"], target_wait_s=p.target_wait_s, tz=p.tz,
                                                reset_at=p.reset_at)
        store.baseline = BucketBaseline.from_state(state["baseline"], bucket_ms=p.bucket_ms, quantities=COMPARED,
                                                   window_size=p.baseline_window, fading_factor=p.baseline_fading)
        newest = max(state["days"], default=None)  # the day counted into next, most likely
        store.days = {day: [list(s[0]), _retail_copy(s[1])] if day == newest else freeze(s)
                      for day, s in state["days"].items()}
        store.duplicates = state["duplicates"]
        store.late = state["late"]
        store.restated = state.get("restated", 0)
        store._refs = freeze(state.get("refs", {}))
        return store


def _refs_of(compared: dict[str, Any]) -> list[Any]:
    """What a bucket was compared with: last week, the rolling mean, the EW mean."""
    return [compared["last_week"], compared["baseline"], compared["ewm"]]


def _compared(value: Any, refs: list[Any]) -> dict[str, Any]:
    """A value against the references `_refs_of` kept, as `BucketBaseline.compare` gives it."""
    last_week, mean, ewm = refs
    return {"value": value, "last_week": last_week, "vs_last_week": _versus(value, last_week), "baseline": mean,
            "vs_baseline": _versus(value, mean), "ewm": ewm, "vs_ewm": _versus(value, ewm)}


def _bucket_copy(state: list[Any]) -> list[Any]:
    """A copy of a `BucketKpis` state (flow counts, retail KPIs) deep enough that later updates do not change it."""
    return [list(state[0]), _retail_copy(state[1])]


def _as_is(state: list[Any]) -> list[Any]:
    return state


def _retail_copy(state: list[Any]) -> list[Any]:
    """A copy of a `RetailKpis` state deep enough that later updates do not change it."""
    sketch = dict(state[4])
    sketch["bins"] = list(sketch["bins"])
    return [*state[:4], sketch]
