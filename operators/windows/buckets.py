"""Tumbling event-time buckets for one store, closed by a robust watermark; late data restates them.

A bucket `[start, start + bucket_ms)` takes every event whose time falls in it. It
closes when the store's watermark reaches `end + grace_ms`, and is handed out
(`pop_closed`) as revision 1. Nothing here reads a clock: time is the events' own.

The watermark (robust to a few skewed clocks)
---------------------------------------------
The watermark is the store's event time "now". An event at most `lead_ms` ahead of
it (default: the longer of a bucket and the grace) moves it on at once, as in-order
traffic does. An event further ahead is *not trusted alone*: it is counted in its
(future) bucket, but moves the watermark only once `corroboration` events (default
3, itself included) have come at or beyond one time more than `lead_ms` ahead;
the watermark then moves to the latest such time (the `corroboration`-th newest of
those events). So fewer than `corroboration` skewed events pending at once close no
bucket: one event 59 minutes ahead leaves the next hour's honest traffic on time.
A real jump (a store's first events after a night with no idle ticks) closes its
buckets `corroboration - 1` events later than the old rule would. `advance` (an idle
store's wall clock) is trusted and moves it directly. The watermark never goes back.

Restating closed buckets (late data within the horizon)
-------------------------------------------------------
A bucket handed out is kept, compact, while it closed less than `restate_horizon_ms`
before the watermark (`late_by_ms < restate_horizon_ms`). An event landing in such a
bucket is counted into it and the bucket comes out again of `pop_restated` as its next
revision (2, 3, ...; several events between two calls make one revision). Only an
event whose bucket closed `restate_horizon_ms` or more before the watermark (or one
not kept: older than `max_gap_ms`, or closed before this state kept closed buckets)
is late: `update` returns None and the caller dead-letters it with `late_by_ms`.
An event in a bucket the watermark passed but not handed out yet simply counts
towards its first revision.

State: the open buckets (at most `grace_ms / bucket_ms + 2` in order, plus any a
skewed event opened ahead), the closed ones of the horizon (`(restate_horizon_ms +
grace_ms) / bucket_ms + 1` at most, 98 for 24 h of 15-minute buckets; an empty one
is stored as its revision alone), and fewer than `corroboration` pending times.

Empty buckets are real: once a store has sent its first event, every bucket the
watermark closes is handed out, with zeros where nothing happened (a quiet night
closes as zeros). Heartbeats move the watermark too, so a silent but healthy
sensor still closes its store's buckets. After a silence longer than
`max_gap_ms`, only the empty buckets of its last `max_gap_ms` are handed out.

Examples
--------
Buckets of 10 s with 5 s of grace, restated up to 30 s after their close; the timeline::

    [0s------10s)[10s-----20s)[20s----
      3s  12s  9s (wm 12s < 10s+5s: counts)  16s (closes [0,10))  8s (restates [0,10): revision 2)

>>> from footfall.schemas.events import DoorEvent
>>> def person(ts_ms):
...     return DoorEvent(event_id=str(ts_ms), store_id="s", ts_ms=ts_ms, region=None, zone=None,
...                      vertical=None, door_id="d", sensor_id="c", count_in=1, count_out=0, interval_s=0)
>>> buckets = TumblingBuckets(bucket_ms=10_000, grace_ms=5_000, restate_horizon_ms=30_000)
>>> for ts_ms in [3_000, 12_000, 9_000, 16_000, 8_000]:
...     placed = buckets.update(person(ts_ms))
...     closed = [(start, counts["arrivals"]) for start, counts in buckets.pop_closed()]
...     restated = [(start, counts["arrivals"], rev) for start, counts, rev in buckets.pop_restated()]
...     print(ts_ms, placed, closed, restated, buckets.watermark_ms)
3000 0 [] [] 3000
12000 10000 [] [] 12000
9000 0 [] [] 12000
16000 10000 [(0, 2)] [] 16000
8000 0 [] [(0, 3, 2)] 16000

Once the watermark is 30 s or more past a bucket's close, its events are late:

>>> buckets.advance(50_000)
>>> [(start, counts["arrivals"]) for start, counts in buckets.pop_closed()]
[(10000, 2), (20000, 0), (30000, 0)]
>>> buckets.update(person(1_000)), buckets.late_by_ms(1_000), buckets.update(person(11_000))
(None, 35000, 10000)
>>> [(start, counts["arrivals"], rev) for start, counts, rev in buckets.pop_restated()]
[(10000, 3, 2)]

One skewed event 50 s ahead is counted in its bucket but closes nothing alone; three
events at or past one time more than `lead_ms` (10 s here) ahead move the watermark there:

>>> buckets = TumblingBuckets(bucket_ms=10_000, grace_ms=5_000)
>>> [buckets.update(person(ts_ms)) for ts_ms in (1_000, 55_000, 2_000, 9_000, 14_000)]
[0, 50000, 0, 0, 10000]
>>> buckets.watermark_ms, buckets.pop_closed(), buckets.get(50_000)["arrivals"]
(14000, [], 1)
>>> [buckets.update(person(ts_ms)) for ts_ms in (40_000, 41_000)], buckets.watermark_ms
([40000, 40000], 40000)

"""

from __future__ import annotations

import bisect
from array import array
from typing import Any

from footfall.operators.frozen import embedded, freeze, thaw
from footfall.operators.kpis.flow import FlowCounts
from footfall.operators.protocols import WindowAggregation
from footfall.schemas.events import Event

__all__ = ["DAY_MS", "TumblingBuckets"]

DAY_MS = 86_400_000


class TumblingBuckets:
    """One store's open buckets, the closed ones it may restate, its watermark, and each bucket's aggregation.

    Parameters
    ----------
    bucket_ms
        Bucket length in milliseconds. Buckets align to the UNIX epoch (UTC), which
        is also local-hour aligned in every time zone whose offset is a whole number
        of `bucket_ms` (all zones for 15-minute buckets).
    grace_ms
        How long past a bucket's end (in event time) it stays open: its late events count
        in its first revision.
    aggregation
        What a bucket computes, any `protocols.WindowAggregation` (`initialize`/`agg`/`result`):
        `FlowCounts` by default, `store.BucketKpis` in `StoreFlow`.
    max_gap_ms
        Longest run of empty buckets handed out at once, after a long silence (default a week).
    restate_horizon_ms
        How long after its close (in event time) a bucket still takes late events, as a new
        revision (default 24 h; 0: never, every event of a closed bucket is late).
    lead_ms
        How far ahead of the watermark one event may move it alone (default: the longer of
        `bucket_ms` and `grace_ms`).
    corroboration
        Events needed at or beyond a time further ahead than `lead_ms` before the watermark
        moves there (default 3; 1: any event moves it, the old rule).

    """

    __slots__ = ("_agg", "_ahead", "_closed", "_closed_to", "_kept", "_open", "_restated", "bucket_ms",
                 "corroboration", "grace_ms", "lead_ms", "max_gap_ms", "restate_horizon_ms", "watermark_ms")

    def __init__(
        self,
        bucket_ms: int,
        grace_ms: int,
        aggregation: WindowAggregation[Any] | None = None,
        max_gap_ms: int = 7 * DAY_MS,
        restate_horizon_ms: int = DAY_MS,
        lead_ms: int | None = None,
        corroboration: int = 3,
    ) -> None:
        if bucket_ms <= 0:
            raise ValueError(f"bucket_ms must be positive, got {bucket_ms}")
        if grace_ms < 0:
            raise ValueError(f"grace_ms must be >= 0, got {grace_ms}")
        if max_gap_ms < bucket_ms:
            raise ValueError(f"max_gap_ms must be at least one bucket, got {max_gap_ms}")
        if restate_horizon_ms < 0:
            raise ValueError(f"restate_horizon_ms must be >= 0, got {restate_horizon_ms}")
        if lead_ms is not None and lead_ms < 0:
            raise ValueError(f"lead_ms must be >= 0, got {lead_ms}")
        if corroboration < 1:
            raise ValueError(f"corroboration must be >= 1, got {corroboration}")
        self.bucket_ms = bucket_ms
        self.grace_ms = grace_ms
        self._agg: WindowAggregation[Any] = aggregation or FlowCounts()
        self.max_gap_ms = max_gap_ms
        self.restate_horizon_ms = restate_horizon_ms
        self.lead_ms = max(bucket_ms, grace_ms) if lead_ms is None else lead_ms
        self.corroboration = corroboration
        self._open: dict[int, Any] = {}
        # Buckets handed out and still restatable: {"<start>": [revision handed out last, state or None (empty)]},
        # kept as one JSON object's bytes (`operators.frozen`) while no late event restates one, and as that
        # dict from the first restating event to the next `pop_restated` or `pop_closed`. It is read again only
        # then and when the state is saved: as Python lists and dicts a day of them (96 at 15 minutes) took
        # 43 KB of a store's memory, as one bytes object per bucket 21 KB, as one object 7-12 KB
        # (tracemalloc, `footfall.scripts.statesize`). `pop_closed` parses and writes it again at each close.
        self._closed: bytes | dict[str, list[Any]] = b"{}"
        # Starts of the kept closed buckets, ascending: which are kept, without reading `_closed`.
        self._kept = array("q")
        # Closed buckets counted into since the last `pop_restated`.
        self._restated: set[int] = set()
        # Times of events further than lead_ms ahead, not yet corroborated (ascending, fewer than corroboration).
        self._ahead: list[int] = []
        # Start of the first bucket not handed out yet (None before the first close).
        self._closed_to: int | None = None
        self.watermark_ms: int | None = None

    @classmethod
    def _unit_test_params(cls):
        yield {"bucket_ms": 60_000, "grace_ms": 10_000}
        yield {"bucket_ms": 900_000, "grace_ms": 0}
        yield {"bucket_ms": 60_000, "grace_ms": 0, "restate_horizon_ms": 0, "corroboration": 1}

    def bucket_of(self, ts_ms: int) -> int:
        """Start of the bucket that holds `ts_ms`."""
        return ts_ms - ts_ms % self.bucket_ms

    def is_closed(self, bucket_start_ms: int) -> bool:
        """Whether the watermark has passed the bucket's close (end + grace)."""
        return self.watermark_ms is not None and self.watermark_ms >= bucket_start_ms + self.bucket_ms + self.grace_ms

    def handed_out(self, bucket_start_ms: int) -> bool:
        """Whether the bucket was handed out already (an event in it restates it, or is late)."""
        return self._closed_to is not None and bucket_start_ms < self._closed_to

    def late_by_ms(self, ts_ms: int) -> int:
        """How far the watermark is past the closing time of `ts_ms`'s bucket (>= 0 when closed)."""
        if self.watermark_ms is None:
            return -1
        return self.watermark_ms - (self.bucket_of(ts_ms) + self.bucket_ms + self.grace_ms)

    def restatable(self, bucket_start_ms: int) -> bool:
        """Whether a bucket handed out still takes events (kept, closed less than the horizon ago)."""
        return self.kept(bucket_start_ms) and self.late_by_ms(bucket_start_ms) < self.restate_horizon_ms

    def kept(self, bucket_start_ms: int) -> bool:
        """Whether a bucket handed out is still kept for restating."""
        i = bisect.bisect_left(self._kept, bucket_start_ms)
        return i < len(self._kept) and self._kept[i] == bucket_start_ms

    def _entries(self) -> dict[str, list[Any]]:
        """The kept closed buckets as a dict, parsed once until `_freeze`."""
        if isinstance(self._closed, bytes):
            self._closed = thaw(self._closed)
        return self._closed  # type: ignore[return-value]

    def _freeze(self) -> None:
        if not isinstance(self._closed, bytes):
            self._closed = freeze(self._closed)

    def too_old(self, bucket_start_ms: int) -> bool:
        """Whether a bucket never opened nor handed out closed the horizon or more ago (before the
        store's first bucket, say): too old to open now, as a handed-out one would be to restate."""
        return (bucket_start_ms not in self._open and not self.handed_out(bucket_start_ms)
                and 0 < self.restate_horizon_ms <= self.late_by_ms(bucket_start_ms))

    def update(self, event: Event) -> int | None:
        """Count `event`; return its bucket's start, or None when it is late and was not counted.

        The bucket may be open, closed but not handed out yet, or handed out and restatable
        (`handed_out` tells; it then comes out of the next `pop_restated`).
        """
        start = self.bucket_of(event.ts_ms)
        if self.handed_out(start):
            if not self.restatable(start):
                return None
            entry = self._entries()[str(start)]
            entry[1] = self._agg.agg(entry[1] if entry[1] is not None else self._agg.initialize(), event)
            self._restated.add(start)
            return start
        if self.too_old(start):
            return None
        state = self._open.get(start)
        if state is None:
            state = self._agg.initialize()
        self._open[start] = self._agg.agg(state, event)
        self._observe(event.ts_ms)
        return start

    def _observe(self, ts_ms: int) -> None:
        """Move the watermark for an event at `ts_ms` (the rule in the module docstring)."""
        wm = self.watermark_ms
        if wm is None:
            self.watermark_ms = ts_ms
            return
        if ts_ms <= wm:
            return
        if ts_ms - wm <= self.lead_ms:
            self._move_to(ts_ms)
            return
        bisect.insort(self._ahead, ts_ms)
        if len(self._ahead) >= self.corroboration:
            self._move_to(self._ahead[-self.corroboration])

    def _move_to(self, ts_ms: int) -> None:
        self.watermark_ms = ts_ms
        if self._ahead and self._ahead[0] <= ts_ms:
            del self._ahead[: bisect.bisect_right(self._ahead, ts_ms)]

    def advance(self, ts_ms: int) -> None:
        """Move the watermark to `ts_ms` without counting anything (never backwards; trusted, no corroboration).

        For time that passes with no events: an idle store's wall clock, say. Buckets
        it closes come out of the next `pop_closed`.
        """
        if self.watermark_ms is None or ts_ms > self.watermark_ms:
            self._move_to(ts_ms)

    def next_close_ms(self) -> int | None:
        """Watermark at which the oldest bucket not handed out yet closes (None before any event)."""
        starts = list(self._open)
        if self._closed_to is not None:
            starts.append(self._closed_to)
        if not starts:
            return None
        return min(starts) + self.bucket_ms + self.grace_ms

    def get(self, bucket_start_ms: int) -> dict[str, Any] | None:
        """Result of a bucket still held (open, or closed but not yet popped), else None."""
        state = self._open.get(bucket_start_ms)
        return None if state is None else self._agg.result(state)

    def revision(self, bucket_start_ms: int) -> int:
        """The latest revision handed out of a bucket still kept (0: not handed out, or no longer kept)."""
        if not self.kept(bucket_start_ms):
            return 0
        revision: int = self._entries()[str(bucket_start_ms)][0]
        self._freeze()
        return revision

    def open_buckets(self) -> list[int]:
        """Starts of the open buckets, oldest first."""
        return sorted(self._open)

    def closed_kept(self) -> int:
        """How many closed buckets are kept for restating."""
        return len(self._kept)

    def pop_closed(self) -> list[tuple[int, dict[str, Any]]]:
        """Remove and return `(start, result)` of every bucket the watermark has closed, oldest first (revision 1).

        Buckets without events in between are handed out too, with the aggregation's empty result.
        Each is kept for restating while within the horizon.
        """
        if self.watermark_ms is None:
            return []
        self._prune()
        starts = list(self._open)
        if self._closed_to is not None:
            starts.append(self._closed_to)
        if not starts:
            return []
        first = min(starts)
        # The newest bucket the watermark has closed: start + bucket + grace <= watermark.
        last = self.bucket_of(self.watermark_ms - self.grace_ms - self.bucket_ms)
        if last < first:
            return []
        oldest_empty = last - self.max_gap_ms + self.bucket_ms
        keep = self.restate_horizon_ms > 0
        out = []
        kept: dict[str, list[Any]] = {}
        for start in range(first, last + self.bucket_ms, self.bucket_ms):
            state = self._open.pop(start, None)
            if state is None:
                if start < oldest_empty:
                    continue
                out.append((start, self._agg.result(self._agg.initialize())))
            else:
                out.append((start, self._agg.result(state)))
            if keep and self.late_by_ms(start) < self.restate_horizon_ms:
                kept[str(start)] = [1, state]
        self._closed_to = last + self.bucket_ms
        if kept:  # newer than every bucket kept: they go at the end, in order
            self._entries().update(kept)
            self._kept.extend(int(k) for k in kept)
            self._freeze()
        return out

    def pop_restated(self) -> list[tuple[int, dict[str, Any], int]]:
        """`(start, result, revision)` of every closed bucket counted into since the last call, oldest first.

        Each call hands out a bucket's next revision (2, 3, ...) with all it holds now.
        """
        out = []
        if self._restated:
            entries = self._entries()
            for start in sorted(self._restated):
                entry = entries.get(str(start))
                if entry is None:
                    continue
                entry[0] += 1
                # A copy: `result` may keep parts of the state it is given (a restated bucket takes more events).
                state = self._agg.initialize() if entry[1] is None else thaw(freeze(entry[1]))
                out.append((start, self._agg.result(state), entry[0]))
            self._freeze()
        self._restated.clear()
        return out

    def _prune(self) -> None:
        """Forget the closed buckets that left the horizon (their events are late from now on)."""
        if not self._kept or self.watermark_ms is None:
            return
        # late_by_ms(start) >= horizon  <=>  start <= watermark - bucket - grace - horizon
        edge = self.watermark_ms - self.bucket_ms - self.grace_ms - self.restate_horizon_ms
        if self._kept[0] > edge:
            return
        # `_kept` is ascending, so the scan stops at the first one inside the horizon.
        gone = []
        for start in self._kept:
            if start > edge:
                break
            if start not in self._restated:
                gone.append(start)
        if gone:
            entries = self._entries()
            for start in gone:
                del entries[str(start)]
            dropped = set(gone)
            self._kept = array("q", [s for s in self._kept if s not in dropped])
            self._freeze()

    # -- plain-data state, for Faust tables ------------------------------------------------------

    def to_state(self, embed: bool = False) -> dict[str, Any]:
        """Plain JSON-able state (bucket starts as string keys, as JSON objects need).

        `closed` maps a kept closed bucket to `[revision, state]` (`state` null: empty); `ahead`
        lists the uncorroborated times; `restated` the closed buckets not yet handed out again.
        With `embed`, `closed` is its JSON bytes for `orjson.dumps` to write as they are
        (`operators.frozen.embedded`).
        """
        # Copies: a saved state must not change with later updates.
        state: dict[str, Any] = {
            "wm": self.watermark_ms,
            "closed_to": self._closed_to,
            "open": {str(k): list(v) for k, v in self._open.items()},
        }
        if self._kept:
            self._freeze()
            state["closed"] = embedded(self._closed) if embed else thaw(self._closed)  # type: ignore[arg-type]
        if self._ahead:
            state["ahead"] = list(self._ahead)
        if self._restated:
            state["restated"] = sorted(self._restated)
        return state

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any] | None,
        *,
        bucket_ms: int,
        grace_ms: int,
        aggregation: WindowAggregation[Any] | None = None,
        max_gap_ms: int = 7 * DAY_MS,
        restate_horizon_ms: int = DAY_MS,
        lead_ms: int | None = None,
        corroboration: int = 3,
    ) -> TumblingBuckets:
        """Rebuild from `to_state()` output (None gives an empty one; a state without `closed`: none kept yet)."""
        buckets = cls(bucket_ms, grace_ms, aggregation, max_gap_ms, restate_horizon_ms, lead_ms, corroboration)
        if state:
            buckets.watermark_ms = state.get("wm")
            buckets._closed_to = state.get("closed_to")
            buckets._open = {int(k): list(v) for k, v in state.get("open", {}).items()}
            closed = sorted((int(k), v) for k, v in state.get("closed", {}).items())
            buckets._kept = array("q", [start for start, _ in closed])
            buckets._closed = freeze({str(start): [int(rev), s] for start, (rev, s) in closed})
            ahead = sorted(int(t) for t in state.get("ahead", ()))
            buckets._ahead = ahead[-(corroboration - 1):] if corroboration > 1 else []
            buckets._restated = {int(s) for s in state.get("restated", ()) if buckets.kept(int(s))}
        return buckets
