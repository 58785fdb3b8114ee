"""Tumbling event-time buckets for one store, closed by its watermark after a grace period.

A bucket `[start, start + bucket_ms)` takes every event whose time falls in it.
The store's watermark is the highest event time seen so far; a bucket closes
when the watermark reaches `end + grace_ms`, and is handed out once, final.
An event whose bucket has already closed is late: it is not counted (its bucket
was already published as final) and `update` says so, so the caller can
dead-letter it with `late_by_ms`. Nothing here reads a clock: time is the
events' own.

Only open buckets are kept, so the state stays small: at most
`grace_ms / bucket_ms + 2` buckets while events arrive in order.

Empty buckets are real: once a store has sent its first event, every bucket the
watermark closes is handed out, with zeros where nothing happened (a quiet night
closes as zeros). Heartbeats move the watermark too, so a silent but healthy
sensor still closes its store's buckets. After a silence longer than
`max_gap_ms`, only the empty buckets of its last `max_gap_ms` are handed out.

Examples
--------
Buckets of 10 s with 5 s of grace; the timeline::

    [0s------10s)[10s-----20s)[20s----
          3s  12s    9s(ok: wm 12s < 10s+5s)   16s(closes [0,10))   8s(late)

>>> from footfall.schemas.events import DoorEvent
>>> def person(ts_ms):
...     return DoorEvent(event_id=str(ts_ms), store_id="s", ts_ms=ts_ms, region=None, zone=None,
...                      vertical=None, door_id="d", sensor_id="c", count_in=1, count_out=0, interval_s=0)
>>> buckets = TumblingBuckets(bucket_ms=10_000, grace_ms=5_000)
>>> for ts_ms in [3_000, 12_000, 9_000, 16_000, 8_000]:
...     placed = buckets.update(person(ts_ms))
...     closed = [(start, counts["arrivals"]) for start, counts in buckets.pop_closed()]
...     print(ts_ms, placed, closed, buckets.watermark_ms)
3000 0 [] 3000
12000 10000 [] 12000
9000 0 [] 12000
16000 10000 [(0, 2)] 16000
8000 None [] 16000
>>> buckets.late_by_ms(8_000)
1000

"""

from __future__ import annotations

from typing import Any

from footfall.operators.kpis.flow import FlowCounts
from footfall.operators.protocols import WindowAggregation
from footfall.schemas.events import Event

__all__ = ["TumblingBuckets"]


class TumblingBuckets:
    """One store's open buckets, its watermark, and the aggregation each bucket runs.

    Parameters
    ----------
    bucket_ms
        Bucket length in milliseconds. Buckets align to the UNIX epoch (UTC), which
        is also local-hour aligned in every time zone whose offset is a whole number
        of `bucket_ms` (all zones for 15-minute buckets).
    grace_ms
        How long past a bucket's end (in event time) its late events still count.
    aggregation
        What a bucket computes, any `protocols.WindowAggregation` (`initialize`/`agg`/`result`):
        `FlowCounts` by default, `store.BucketKpis` in `StoreFlow`.
    max_gap_ms
        Longest run of empty buckets handed out at once, after a long silence (default a week).

    """

    __slots__ = ("_agg", "_closed_to", "_open", "bucket_ms", "grace_ms", "max_gap_ms", "watermark_ms")

    def __init__(
        self,
        bucket_ms: int,
        grace_ms: int,
        aggregation: WindowAggregation[Any] | None = None,
        max_gap_ms: int = 7 * 86_400_000,
    ) -> None:
        if bucket_ms <= 0:
            raise ValueError(f"bucket_ms must be positive, got {bucket_ms}")
        if grace_ms < 0:
            raise ValueError(f"grace_ms must be >= 0, got {grace_ms}")
        self.bucket_ms = bucket_ms
        self.grace_ms = grace_ms
        self._agg: WindowAggregation[Any] = aggregation or FlowCounts()
        if max_gap_ms < bucket_ms:
            raise ValueError(f"max_gap_ms must be at least one bucket, got {max_gap_ms}")
        self.max_gap_ms = max_gap_ms
        self._open: dict[int, Any] = {}
        # Start of the first bucket not handed out yet (None before the first close).
        self._closed_to: int | None = None
        self.watermark_ms: int | None = None

    @classmethod
    def _unit_test_params(cls):
        yield {"bucket_ms": 60_000, "grace_ms": 10_000}
        yield {"bucket_ms": 900_000, "grace_ms": 0}

    def bucket_of(self, ts_ms: int) -> int:
        """Start of the bucket that holds `ts_ms`."""
        return ts_ms - ts_ms % self.bucket_ms

    def is_closed(self, bucket_start_ms: int) -> bool:
        """Whether the bucket starting at `bucket_start_ms` has closed (late events are refused)."""
        return self.watermark_ms is not None and self.watermark_ms >= bucket_start_ms + self.bucket_ms + self.grace_ms

    def late_by_ms(self, ts_ms: int) -> int:
        """How far the watermark is past the closing time of `ts_ms`'s bucket (>= 0 when late)."""
        if self.watermark_ms is None:
            return -1
        return self.watermark_ms - (self.bucket_of(ts_ms) + self.bucket_ms + self.grace_ms)

    def update(self, event: Event) -> int | None:
        """Count `event`; return its bucket's start, or None when it is late and was not counted."""
        start = self.bucket_of(event.ts_ms)
        if self.is_closed(start):
            return None
        state = self._open.get(start)
        if state is None:
            state = self._agg.initialize()
        self._open[start] = self._agg.agg(state, event)
        if self.watermark_ms is None or event.ts_ms > self.watermark_ms:
            self.watermark_ms = event.ts_ms
        return start

    def advance(self, ts_ms: int) -> None:
        """Move the watermark to `ts_ms` without counting anything (never backwards).

        For time that passes with no events: an idle store's wall clock, say. Buckets
        it closes come out of the next `pop_closed`.
        """
        if self.watermark_ms is None or ts_ms > self.watermark_ms:
            self.watermark_ms = ts_ms

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

    def open_buckets(self) -> list[int]:
        """Starts of the open buckets, oldest first."""
        return sorted(self._open)

    def pop_closed(self) -> list[tuple[int, dict[str, Any]]]:
        """Remove and return `(start, result)` of every bucket the watermark has closed, oldest first.

        Buckets without events in between are handed out too, with the aggregation's empty result.
        """
        if self.watermark_ms is None:
            return []
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
        out = []
        for start in range(first, last + self.bucket_ms, self.bucket_ms):
            state = self._open.pop(start, None)
            if state is None:
                if start < oldest_empty:
                    continue
                state = self._agg.initialize()
            out.append((start, self._agg.result(state)))
        self._closed_to = last + self.bucket_ms
        return out

    # -- plain-data state, for Faust tables ------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state (bucket starts as string keys, as JSON objects need)."""
        # Copies: a saved state must not change with later updates.
        return {
            "wm": self.watermark_ms,
            "closed_to": self._closed_to,
            "open": {str(k): list(v) for k, v in self._open.items()},
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any] | None,
        *,
        bucket_ms: int,
        grace_ms: int,
        aggregation: WindowAggregation[Any] | None = None,
        max_gap_ms: int = 7 * 86_400_000,
    ) -> TumblingBuckets:
        """Rebuild from `to_state()` output (None gives an empty one)."""
        buckets = cls(bucket_ms, grace_ms, aggregation, max_gap_ms)
        if state:
            buckets.watermark_ms = state.get("wm")
            buckets._closed_to = state.get("closed_to")
            buckets._open = {int(k): list(v) for k, v in state.get("open", {}).items()}
        return buckets
