"""The worker seen from outside: Prometheus metrics and a health verdict, from one snapshot of its state.

`WorkerSnapshot` is what the worker knows of itself at one moment (counters since start,
what waits for the next checkpoint, offsets applied and the partitions' ends, flush
timings, checkpoint age); `prometheus_text` renders it in the Prometheus text exposition
format (version 0.0.4) and `health` judges it. The worker serves both on its web port
(`FOOTFALL_WEB_ENABLED`, `FOOTFALL_WEB_PORT`) as `/metrics` and `/health`.

Health turns bad when checkpoints stop advancing while there is work: input waiting
(consumer lag) or records waiting to be published, and the last checkpoint older than
`max_checkpoint_age_s`. An idle worker (nothing to do) stays healthy however old its
last checkpoint: quiet is not broken.

Examples
--------
>>> snap = WorkerSnapshot(totals={"events": 120, "late": 2}, dead_letters={"malformed_json": 3},
...                       stores_in_memory=4, pending_records=7, pending_sends=0,
...                       next_offsets={0: 50, 1: 70}, end_offsets={0: 50, 1: 75},
...                       flush_count=3, flush_seconds_sum=0.06, last_flush_seconds=0.02,
...                       checkpoint_age_s=1.5)
>>> text = prometheus_text(snap)
>>> [line for line in text.splitlines() if line.startswith("footfall_consumer_lag")]
['footfall_consumer_lag{partition="0"} 0', 'footfall_consumer_lag{partition="1"} 5']
>>> health(snap, max_checkpoint_age_s=30)
(True, 'ok: last checkpoint 1.5 s ago, lag 5, 7 records pending')
>>> import dataclasses
>>> health(dataclasses.replace(snap, checkpoint_age_s=45.0), max_checkpoint_age_s=30)
(False, 'checkpoints stalled: last 45.0 s ago (limit 30 s) with lag 5 and 7 records pending')

"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["WorkerSnapshot", "health", "prometheus_text"]


@dataclass(frozen=True)
class WorkerSnapshot:
    """One moment of a worker's state, as the metrics and health endpoints read it."""

    totals: Mapping[str, int]  # counters since start: events, late, duplicates, flush_failed, ...
    dead_letters: Mapping[str, int]  # dead letters since start, by reason
    stores_in_memory: int
    pending_records: int  # records waiting for the next checkpoint
    pending_sends: int  # dead letters and re-routes waiting for the broker's confirmation
    next_offsets: Mapping[int, int] = field(default_factory=dict)  # partition -> next offset to apply
    end_offsets: Mapping[int, int | None] = field(default_factory=dict)  # partition -> log end (None: unknown)
    flush_count: int = 0
    flush_seconds_sum: float = 0.0
    last_flush_seconds: float | None = None
    checkpoint_age_s: float | None = None  # since the last checkpoint that saved everything; None: none yet

    def lag(self) -> dict[int, int]:
        """Messages waiting per partition (known ends only)."""
        return {p: max(0, end - self.next_offsets.get(p, 0)) for p, end in self.end_offsets.items()
                if end is not None}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def prometheus_text(snap: WorkerSnapshot) -> str:
    """The snapshot in the Prometheus text format: counters end in `_total`, one HELP and TYPE per metric."""
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}")

    metric("footfall_events_total", "counter", "Events counted since start.",
           [({}, snap.totals.get("events", 0))])
    metric("footfall_worker_counts_total", "counter",
           "The worker's counters since start, by name (late, duplicates, idle_ticks, flush_failed, ...).",
           [({"name": name}, count) for name, count in sorted(snap.totals.items()) if name != "events"])
    metric("footfall_dead_letters_total", "counter", "Messages sent to the dead-letter topic since start, by reason.",
           [({"reason": reason}, count) for reason, count in sorted(snap.dead_letters.items())])
    metric("footfall_stores_in_memory", "gauge", "Stores whose pipeline is in memory.",
           [({}, snap.stores_in_memory)])
    metric("footfall_pending_records", "gauge", "Records waiting for the next checkpoint.",
           [({}, snap.pending_records)])
    metric("footfall_pending_sends", "gauge", "Dead letters and re-routes waiting for the broker's confirmation.",
           [({}, snap.pending_sends)])
    metric("footfall_next_offset", "gauge", "Next input offset to apply, per partition.",
           [({"partition": str(p)}, o) for p, o in sorted(snap.next_offsets.items())])
    metric("footfall_consumer_lag", "gauge", "Input messages not applied yet, per partition (log end - next offset).",
           [({"partition": str(p)}, lag) for p, lag in sorted(snap.lag().items())])
    metric("footfall_flush_seconds", "summary", "Time each flush (publish, then checkpoint) took.",
           [])
    lines.append(f"footfall_flush_seconds_sum {_number(snap.flush_seconds_sum)}")
    lines.append(f"footfall_flush_seconds_count {snap.flush_count}")
    metric("footfall_last_flush_seconds", "gauge", "Time the last flush took.",
           [({}, snap.last_flush_seconds if snap.last_flush_seconds is not None else math.nan)])
    metric("footfall_checkpoint_age_seconds", "gauge",
           "Seconds since the last checkpoint that saved everything (NaN before the first).",
           [({}, snap.checkpoint_age_s if snap.checkpoint_age_s is not None else math.nan)])
    return "\n".join(lines) + "\n"


def health(snap: WorkerSnapshot, max_checkpoint_age_s: float) -> tuple[bool, str]:
    """(healthy, why): unhealthy when there is work and no checkpoint for `max_checkpoint_age_s`."""
    lag = sum(snap.lag().values())
    pending = snap.pending_records + snap.pending_sends
    busy = lag > 0 or pending > 0
    age = snap.checkpoint_age_s
    if busy and (age is None or age > max_checkpoint_age_s):
        last = "never" if age is None else f"last {age:.1f} s ago"
        return False, (f"checkpoints stalled: {last} (limit {max_checkpoint_age_s:g} s) with lag {lag} "
                       f"and {pending} records pending")
    last = "none yet" if age is None else f"last checkpoint {age:.1f} s ago"
    return True, f"ok: {last}, lag {lag}, {pending} records pending"
