"""`footfall bench`: events/s, CPU, latency and memory of the worker next to two baselines doing the same work.

Three pipelines, each in its own process and on its own fresh topics, Redis keys
and consumer group, for two message shapes (one event per message; a JSON array
of 100 events per message). All three count the same way and write coalesced, as
the worker does with its default `FOOTFALL_LIVE_INTERVAL_S` (1 s): per message,
decode and count per (store, bucket); once per flush interval, one record per
touched (store, bucket) to `<p>.aggregates` (broker acknowledgements awaited), then
the same records to Redis in one pipeline. No pipeline writes Redis per message.

- **a** `raw`: aiokafka `getmany` -> orjson -> counts -> flush: records to Kafka, then one
  Redis pipeline of HSET latest + XADD history + PUBLISH per record (`scripts/benchpipes.py`);
- **b** `faust`: a Faust agent with the worker's app settings, the same counting and flushes;
- **c** `worker`: the real `footfall worker` (validation, pseudonyms, duplicates, offset
  ledger, the store pipeline and its stages, table + changelog; per flush one record per
  touched store-bucket and one live record per store, to Kafka and to Redis, with roll-ups).

Per mode, every pipeline gets the same backlog (the same events, byte for byte, produced
to its own topic before it starts). Per pipeline and mode:

1. *throughput*: the pipeline drains the backlog. The bench polls `<p>:stats` `events`
   (written with each flush's records) and the process's CPU (`/proc/<pid>/stat`, all
   threads) every 5 ms. Events/s = the events counted after the first flush seen (the
   pipeline already consumes then; its start-up is left out) over the time from that
   flush to the end of the drain, when the process's CPU stops (the last flush shows
   the last events up to one interval later: `drain_end`). When the backlog was (almost)
   gone by the first flush the figure is a lower bound (marked `>=`: raise the backlog).
   CPU over the same window gives CPU µs per event;
2. *latency*: with the pipeline caught up, events are produced at half (`--pace`) of its
   measured events/s for `--paced-s`; a Redis subscriber (`PSUBSCRIBE <p>:live:*`) reads
   each published bucket record, whose `last_event_id` says up to which message of that
   store it counts: each message's latency is from its hand-over to the producer to the
   first record of its store and bucket that includes it (visible in Redis: the PUBLISH
   follows the HSET and XADD). Coalescing puts up to one flush interval into it;
3. *check*: the events in Redis (per store and bucket the highest `events` over the
   bucket records of `<p>:store:*:history`, summed) must equal the events produced,
   backlog and paced; so must `<p>:stats` `events`. Otherwise the run fails.

Then, offline (no I/O), the size of one store's saved state (`scripts/statesize.py`):
`StoreFlow` run over simulated days of busy stores of each vertical, measured as the
worker writes it to the changelog (`--state-only` runs just that).

`--profile DIR` runs the pipelines under cProfile (main thread only: Faust's
consumer thread is not in it) to see where their time goes.

Examples
--------
::

    footfall bench                          # own Apache Kafka + Redis, about 6 minutes on 2 cores
    footfall bench --only c --events 5000 --json run/bench.json
    footfall bench --broker 127.0.0.1:9092 --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import math
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from footfall.stream.preflight import redact
from footfall.stream.settings import Settings, SettingsError, kafka_security

__all__ = [
    "MODES",
    "PIPELINES",
    "BenchConfig",
    "BenchError",
    "BenchReport",
    "EventFactory",
    "PipelineResult",
    "format_report",
    "register",
    "run",
    "run_bench",
]

logger = logging.getLogger(__name__)

#: Seconds between the flushes of every pipeline: the worker's `FOOTFALL_LIVE_INTERVAL_S` default.
FLUSH_S = Settings.live_interval_s

#: Pipeline letter -> (short name, what it does).
PIPELINES: dict[str, tuple[str, str]] = {
    "a": ("raw aiokafka", "aiokafka getmany -> orjson -> counts per (store, bucket) -> every flush: one record per "
                          "touched bucket to <p>.aggregates (acks awaited), then one Redis pipeline (HSET latest, "
                          "XADD history, PUBLISH <p>:live:<store>)"),
    "b": ("faust agent", "Faust agent with the worker's app settings (linger 5 ms, 64 KB batches, stream buffer "
                         "16k; no table): the same counting and flushes as a"),
    "c": ("footfall worker", "`footfall worker`: decode + validate + pseudonymise, duplicates, store pipeline and "
                             "stages, table + changelog, offset ledger; every flush: bucket and live records to "
                             "Kafka and Redis (with roll-ups), then the changelog"),
    "d": ("worker, per-message", "c with FOOTFALL_BATCH_INTAKE=false: Faust delivers each message to the worker's "
                                 "agent (c takes each partition's fetched records at once); not run unless asked "
                                 "(--only b,c,d)"),
    "e": ("worker, exactly_once", "c with FOOTFALL_PROCESSING_GUARANTEE=exactly_once: Faust's Kafka transactions "
                                  "(a transactional producer per partition, sends and changelog committed with the "
                                  "offsets); not run unless asked (--only a,b,c,e)"),
}
#: Pipelines run unless `--only` names others.
DEFAULT_PIPELINES = ("a", "b", "c")
#: Message shape -> events per message.
MODES: dict[str, int] = {"single": 1, "batch": 100}

#: Enough for (a), the fastest (about 130,000/s), to drain for over 1.5 s: its first flush comes up to 1 s into
#: the drain, and events/s needs `MIN_WINDOW_S` after it.
DEFAULT_EVENTS = 300_000
#: Most backlog events of the batch mode by default (10 x `events` otherwise): (c) takes about 80 s for these.
DEFAULT_BATCH_EVENTS_MAX = 2_000_000
DEFAULT_STORES = 8
#: The latency phase's rate as a share of the pipeline's measured events/s.
DEFAULT_PACE = 0.5
DEFAULT_PACED_S = 10.0
POLL_S = 0.005
#: Shortest throughput window taken as a measurement (CPU time comes in 10 ms ticks).
MIN_WINDOW_S = 0.5
#: A pipeline is busy at a poll when it used this much CPU in the window before (2 ticks of 10 ms) ...
BUSY_CPU_S = 0.02
BUSY_WINDOW_S = 0.05
#: ... and a busy stretch this close to the final flush's poll is that flush's own work.
FLUSH_GUARD_S = 0.1
#: Shortest pause of the paced producer: faster rates hand several messages over per tick.
MIN_TICK_S = 0.002
#: Backlog event times span this much, ending this long before the run (all inside the worker's limits).
BACKLOG_SPAN_MS = 2 * 3_600_000
BACKLOG_END_AGO_MS = 5 * 60_000


class BenchError(RuntimeError):
    """A pipeline did not start, stalled, or ended with other counts than were sent."""


@dataclass(frozen=True)
class BenchConfig:
    """What one bench run measures.

    Parameters
    ----------
    events
        Backlog events of the single-event mode (the throughput phase).
    batch_events
        Backlog events of the batch mode (None: 10 x `events`, as batches go about 10x faster, at most
        `DEFAULT_BATCH_EVENTS_MAX`).
    stores
        Stores the events come from (message key = `store_id`).
    pace
        Rate of the latency phase, as a share of the pipeline's measured events/s in that mode.
    paced_s
        Length of the latency phase in seconds.
    pipelines, modes
        Which of `PIPELINES` and `MODES` to run.
    partitions
        Partitions of every topic (the worker's default).
    stall_timeout_s
        A pipeline that counts nothing new in Redis for this long has failed.
    keep_data
        Leave the bench's Redis keys in place (topics are always left).
    profile_dir
        Run each pipeline under cProfile and write `<prefix>.prof` here (slower: numbers not comparable).

    """

    events: int = DEFAULT_EVENTS
    batch_events: int | None = None
    stores: int = DEFAULT_STORES
    pace: float = DEFAULT_PACE
    paced_s: float = DEFAULT_PACED_S
    pipelines: tuple[str, ...] = DEFAULT_PIPELINES
    modes: tuple[str, ...] = tuple(MODES)
    partitions: int = 4
    stall_timeout_s: float = 90.0
    keep_data: bool = False
    profile_dir: Path | None = None

    def __post_init__(self) -> None:
        sizes = (self.events, self.batch_events or 1, self.stores, self.pace, self.paced_s)
        if min(sizes) <= 0:
            raise ValueError("events, batch_events, stores, pace and paced_s must be positive")
        if self.pace >= 1:
            raise ValueError("pace must be below 1: at the full measured rate a pipeline only queues")
        unknown = set(self.pipelines) - set(PIPELINES) | set(self.modes) - set(MODES)
        if unknown or not self.pipelines or not self.modes:
            raise ValueError(f"unknown or no pipelines/modes: {sorted(unknown)}")

    def backlog_events(self, mode: str) -> int:
        """Backlog size of `mode`."""
        if mode == "single":
            return self.events
        return self.batch_events if self.batch_events is not None else min(10 * self.events,
                                                                           DEFAULT_BATCH_EVENTS_MAX)


@dataclass
class PipelineResult:
    """What one pipeline did in one mode. Times in seconds unless the name says otherwise."""

    pipeline: str
    mode: str
    prefix: str
    backlog_events: int = 0
    backlog_messages: int = 0
    backlog_produce_s: float = 0.0
    startup_s: float | None = None
    #: Flushes seen while the backlog drained, and whether events/s was measured (False: a lower bound).
    flushes: int = 0
    rate_exact: bool = False
    #: (seconds since the first, events counted) at each flush seen while the backlog drained.
    flush_counts: list[tuple[float, int]] = field(default_factory=list)
    throughput_window_s: float | None = None
    events_per_s: float | None = None
    cpu_us_per_event: float | None = None
    machine_busy_pct: float | None = None
    paced_target_events_per_s: float | None = None
    paced_events_per_s: float | None = None
    paced_events: int = 0
    paced_messages: int = 0
    cpu_us_per_event_paced: float | None = None
    paced_busy_pct: float | None = None
    paced_machine_busy_pct: float | None = None
    latency_samples: int = 0
    #: Per second of the latency phase: (second, messages timed, their p50 ms); shows queueing apart from stalls.
    latency_by_s: list[tuple[int, int, float]] = field(default_factory=list)
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    cpu_s_total: float | None = None
    peak_rss_mb: float | None = None
    events_produced: int = 0
    events_in_redis: int | None = None
    stats_events: int | None = None
    log: str = ""
    error: str | None = None

    @property
    def counts_match(self) -> bool:
        return self.events_in_redis == self.events_produced == self.stats_events


@dataclass
class BenchReport:
    """Every result of a run, with what was run on what."""

    config: BenchConfig
    broker: str
    broker_kind: str
    redis_url: str
    results: list[PipelineResult] = field(default_factory=list)
    cpus: int = field(default_factory=lambda: os.cpu_count() or 0)
    python: str = field(default_factory=platform.python_version)
    started_at: str = ""
    elapsed_s: float = 0.0
    loadavg_start: str = field(default_factory=lambda: _loadavg())
    loadavg_end: str = ""
    stopped_by: int | None = None

    def result(self, pipeline: str, mode: str) -> PipelineResult | None:
        return next((r for r in self.results if r.pipeline == pipeline and r.mode == mode), None)

    def ratios(self, measure: str = "events_per_s") -> dict[str, dict[str, float | None]]:
        """Per mode, c's `measure` (a `PipelineResult` field) over a's and over b's."""
        out: dict[str, dict[str, float | None]] = {}
        for mode in self.config.modes:
            values = {p: (getattr(r, measure) if (r := self.result(p, mode)) and not r.error else None)
                      for p in PIPELINES}
            c = values.get("c")
            out[mode] = {f"c/{p}": (c / values[p] if c and values.get(p) else None) for p in ("a", "b")}
            for other in ("d", "e"):
                if other in self.config.pipelines:
                    value = values.get(other)
                    out[mode][f"{other}/c"] = value / c if value and c else None
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "config": dataclasses.asdict(self.config),
            "broker": self.broker, "broker_kind": self.broker_kind, "redis_url": self.redis_url,
            "cpus": self.cpus, "python": self.python, "started_at": self.started_at, "elapsed_s": self.elapsed_s,
            "loadavg_start": self.loadavg_start, "loadavg_end": self.loadavg_end, "stopped_by": self.stopped_by,
            "flush_s": FLUSH_S,
            "pipelines": {k: {"name": n, "does": d} for k, (n, d) in PIPELINES.items()},
            "results": [{**dataclasses.asdict(r), "counts_match": r.counts_match} for r in self.results],
            "ratios": {"events_per_s": self.ratios(), "cpu_us_per_event": self.ratios("cpu_us_per_event")},
        }


def _loadavg() -> str:
    """1, 5 and 15 minute load averages (other work on the machine skews every number here)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _machine_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU time of the whole machine so far, all cores (`/proc/stat`), in clock ticks."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def _busy_pct(start: tuple[int, int] | None, end: tuple[int, int] | None) -> float | None:
    if start is None or end is None or end[1] <= start[1]:
        return None
    return (end[0] - start[0]) / (end[1] - start[1]) * 100


# -- events ----------------------------------------------------------------------------------


class EventFactory:
    """Door per-person events of several stores, keyed by `store_id`, valid under default `Limits`.

    Event ids carry the phase and a sequence number, so a published record's
    `last_event_id` leads back to its message.

    Examples
    --------
    >>> factory = EventFactory(stores=3, seed=1)
    >>> key, value, ids = factory.message("p", 0, store_index=1, ts_ms=[1_700_000_000_000])
    >>> key, orjson.loads(value)["kind"], ids
    (b'store-001', 'door', ['p000000000'])
    >>> _, value, ids = factory.message("p", 7, store_index=2, ts_ms=[1, 2])
    >>> ids, [e["store_id"] for e in orjson.loads(value)]
    (['p000000007', 'p000000008'], ['store-002', 'store-002'])
    >>> key, value = factory.paced_message(200, store_index=2, per_message=2, ts_ms=5)
    >>> key, [(e["event_id"], e["store_id"], e["ts"]) for e in orjson.loads(value)]
    (b'store-002', [('p000000200', 'store-002', 5), ('p000000201', 'store-002', 5)])
    >>> orjson.loads(factory.paced_message(3, store_index=0, per_message=1, ts_ms=9)[1])["event_id"]
    'p000000003'

    """

    VERTICALS = ("retail", "bank", "telecom")

    def __init__(self, stores: int, seed: int = 7) -> None:
        self.store_ids = [f"store-{i:03d}" for i in range(stores)]
        self._rng = random.Random(seed)
        self._templates: dict[tuple[int, int], list[bytes]] = {}

    def event(self, event_id: str, store_index: int, ts_ms: int) -> dict[str, Any]:
        store_id = self.store_ids[store_index]
        return {
            "event_id": event_id, "store_id": store_id, "kind": "door", "schema_version": 1, "ts": ts_ms,
            "region": f"region-{store_index % 4}", "vertical": self.VERTICALS[store_index % 3],
            "zone": "entrance", "door_id": "main", "sensor_id": f"{store_id}-door-1",
            "direction": "in" if self._rng.random() < 0.5 else "out",
        }

    def message(self, phase: str, first_seq: int, store_index: int, ts_ms: list[int]) -> tuple[bytes, bytes, list[str]]:
        """`(key, value, event ids)`: one event (one time given) or a JSON array (several)."""
        ids = [f"{phase}{first_seq + i:09d}" for i in range(len(ts_ms))]
        events = [self.event(eid, store_index, t) for eid, t in zip(ids, ts_ms, strict=True)]
        value = orjson.dumps(events[0] if len(events) == 1 else events)
        return self.store_ids[store_index].encode(), value, ids

    def paced_message(self, first_seq: int, store_index: int, per_message: int, ts_ms: int) -> tuple[bytes, bytes]:
        """`(key, value)` of `message("p", first_seq, ...)` with every event at `ts_ms`, filled into a template.

        About ten times cheaper than `message`: the paced phase of a fast pipeline asks for
        100,000s of events a second from a process that shares the machine with it.
        """
        parts = self._templates.get((store_index, per_message))
        if parts is None:
            events = [self.event("@ID@", store_index, 0) for _ in range(per_message)]
            template = orjson.dumps(events[0] if per_message == 1 else events)
            parts = self._templates[(store_index, per_message)] = template.split(b"@ID@")
        ts = b'"ts":%d,' % ts_ms
        body = b"".join(part + b"p%09d" % (first_seq + i) for i, part in enumerate(parts[:-1])) + parts[-1]
        return self.store_ids[store_index].encode(), body.replace(b'"ts":0,', ts)

    def backlog(self, events: int, per_message: int, now_ms: int) -> Iterator[tuple[bytes, bytes]]:
        """`events` events in messages of `per_message`, stores in turn, times rising over the last hours."""
        start_ms = now_ms - BACKLOG_END_AGO_MS - BACKLOG_SPAN_MS
        seq = 0
        index = 0
        while seq < events:
            n = min(per_message, events - seq)
            times = [start_ms + (seq + i) * BACKLOG_SPAN_MS // events for i in range(n)]
            key, value, _ = self.message("b", seq, index % len(self.store_ids), times)
            yield key, value
            seq += n
            index += 1


def check_events_valid(factory: EventFactory) -> None:
    """Raise `BenchError` unless the bench's messages decode without a reject under default `Limits`."""
    from footfall.schemas.events import Limits
    from footfall.schemas.messages import decode_message

    now_ms = int(time.time() * 1000)
    samples = [next(factory.backlog(1, 1, now_ms)), next(factory.backlog(100, 100, now_ms)),
               factory.paced_message(0, 0, 1, now_ms), factory.paced_message(0, 0, 100, now_ms)]
    for _, value in samples:
        decoded = decode_message(value, now_ms=now_ms, limits=Limits())
        if decoded.rejects or not decoded.events:
            raise BenchError(f"bench events do not validate: {decoded.rejects[:1]}")


# -- pipeline processes ----------------------------------------------------------------------


@dataclass
class PipelineProcess:
    """One pipeline's subprocess: started in its own session, dies with the bench."""

    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None
    started: float = 0.0

    def start(self) -> PipelineProcess:
        from footfall.scripts.stack import _die_with_parent

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # Its own session: Ctrl-C reaches the bench only, which stops it in order.
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        self.started = time.perf_counter()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def cpu_s(self) -> float | None:
        """User + system CPU seconds so far (`/proc/<pid>/stat` fields 14 and 15)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        except (OSError, AssertionError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float | None:
        """Peak resident memory (`VmHWM` of `/proc/<pid>/status`) in MiB."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except (OSError, AssertionError, ValueError):
            return None
        return None

    async def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM to its process group; SIGKILL after `timeout_s`. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if self.proc.poll() is None:
                logger.warning("pid=%d did not stop within %.0f s of SIGTERM; killing it", self.proc.pid, timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def kill_now(self) -> None:
        """Last resort on the way out (no event loop left)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)


def pipeline_process(
    pipeline: str, settings: Settings, log_path: Path, profile_path: Path | None = None,
) -> PipelineProcess:
    """The subprocess that runs `pipeline` ("a" to "e") with `settings`, under cProfile if asked."""
    env = dict(os.environ)  # PATH, HOME... for the child; its configuration comes from `settings`
    python = [sys.executable]
    if profile_path is not None:
        python += ["-m", "cProfile", "-o", str(profile_path)]
    if pipeline in ("c", "d", "e"):
        env.update(settings.to_env())
        cmd = [*python, "-m", "footfall.scripts.cli", "--log-level", settings.log_level, "worker"]
    else:
        # Only how to reach the brokers (TLS, SASL): the rest is given on the command line.
        env.update({var: value for var, value in settings.to_env().items() if var.startswith("FOOTFALL_KAFKA_")})
        cmd = [*python, "-m", "footfall.scripts.benchpipes", "raw" if pipeline == "a" else "faust",
               "--broker", settings.broker, "--redis-url", settings.redis_url, "--prefix", settings.topic_prefix,
               "--app-id", settings.app_id, "--partitions", str(settings.partitions),
               "--flush-s", str(settings.live_interval_s), "--data-dir", settings.data_dir,
               "--log-level", settings.log_level]
    return PipelineProcess(cmd, env, log_path)


# -- measuring -------------------------------------------------------------------------------


def percentile(samples: list[tuple[float, int]], q: float) -> float:
    """Nearest-rank percentile of `(value, weight)` samples sorted by value.

    >>> percentile([(1.0, 1), (2.0, 1), (3.0, 1), (4.0, 1)], 0.5), percentile([(1.0, 1), (2.0, 1), (4.0, 2)], 0.99)
    (2.0, 4.0)
    >>> percentile([(1.0, 3), (10.0, 1)], 0.5), percentile([(1.0, 3), (10.0, 1)], 0.99)
    (1.0, 10.0)

    """
    rank = max(1, math.ceil(q * sum(w for _, w in samples)))
    seen = 0
    for value, weight in samples:
        seen += weight
        if seen >= rank:
            return value
    return samples[-1][0]


async def _stats_events(client: Any, settings: Settings) -> int:
    """Events the pipeline has counted in Redis (`<p>:stats` field `events`)."""
    async with asyncio.timeout(10):
        value = await client.hget(settings.redis_keys.stats, "events")
    _check_cancelled()
    return int(value or 0)


async def _wait_for_count(
    client: Any, settings: Settings, proc: PipelineProcess, want: int, stall_timeout_s: float,
) -> None:
    """Return once `<p>:stats` counts `want` events; BenchError when the process dies or stalls."""
    count, last_change = -1, time.monotonic()
    while True:
        now_count = await _stats_events(client, settings)
        if now_count >= want:
            return
        if now_count != count:
            count, last_change = now_count, time.monotonic()
        _raise_if_stuck(proc, count, want, last_change, stall_timeout_s)
        await asyncio.sleep(0.05)


def _raise_if_stuck(proc: PipelineProcess, count: int, want: int, last_change: float, stall_timeout_s: float) -> None:
    """BenchError when the pipeline process died, or counted nothing new for `stall_timeout_s`."""
    if (code := proc.exited()) is not None:
        raise BenchError(f"the pipeline exited with code {code} at {count}/{want} events (log {proc.log_path})")
    if time.monotonic() - last_change > stall_timeout_s:
        raise BenchError(f"no progress for {stall_timeout_s:.0f} s at {count}/{want} events (log {proc.log_path})")


@dataclass(frozen=True)
class Poll:
    """One look at a pipeline: when, the events `<p>:stats` counted, its CPU seconds and the machine's jiffies."""

    t: float
    count: int
    cpu_s: float | None
    machine: tuple[int, int] | None


def drain_end(polls: list[Poll]) -> Poll:
    """When the pipeline ran out of backlog: the last CPU tick of its last busy stretch before its final flush.

    `polls` run from the poll that saw the flush before the last to the one that saw
    the last. That flush comes up to one interval after the last events; the process's
    CPU says when it stopped. A poll is busy when the process used `BUSY_CPU_S` in the
    `BUSY_WINDOW_S` before it (a working pipeline: about a tick per 10 ms; an idle one:
    a timer's tick now and then). The last busy stretch is the final flush itself when
    it starts within `FLUSH_GUARD_S` of the end and another came before; the drain
    ended at the last poll of the stretch before it that saw the CPU rise. Resolution:
    a clock tick or two. With no busy stretch, the drain ended at once: the first poll.

    >>> ticks = {t: t - 50 for t in range(50, 63)} | {t: 12 for t in range(63, 95)} | {95: 13, 96: 14, 97: 15}
    >>> polls = [Poll(t / 100, 0, ticks.get(t, 15) / 100, None) for t in range(50, 100)]
    >>> drain_end(polls).t  # busy to 0.62, idle, the final flush's 3 ticks at 0.95-0.97
    0.62
    >>> drain_end(polls[:20] + [Poll(t / 100, 0, 0.12, None) for t in range(70, 100)]).t  # no flush ticks
    0.62
    >>> drain_end([Poll(t / 100, 0, min(t, 98) / 100, None) for t in range(50, 100)]).t  # busy to the flush
    0.98

    """
    cpu = [poll.cpu_s for poll in polls if poll.cpu_s is not None]
    if len(cpu) < len(polls):
        return polls[-1]
    busy: list[int] = []
    k = 0
    for i, poll in enumerate(polls):
        while polls[k].t < poll.t - BUSY_WINDOW_S:
            k += 1
        if cpu[i] - cpu[k] >= BUSY_CPU_S:
            busy.append(i)
    runs: list[list[int]] = []
    for i in busy:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    if not runs:
        return polls[0]
    run = runs[-1]
    if len(runs) > 1 and polls[run[0]].t >= polls[-1].t - FLUSH_GUARD_S:
        run = runs[-2]  # the final flush's own work
    # Busy flags lag the CPU by up to a window: the drain ended at the last poll that saw it rise.
    rising = [i for i in range(max(1, run[0]), run[-1] + 1) if cpu[i] > cpu[i - 1]]
    return polls[rising[-1] if rising else run[0]]


async def measure_throughput(
    client: Any, settings: Settings, proc: PipelineProcess, result: PipelineResult, stall_timeout_s: float,
) -> None:
    """Poll `<p>:stats` events and the process's CPU every `POLL_S` until the whole backlog is counted.

    Events/s = the events counted after the first flush seen, over the time from that
    flush to the end of the drain (`drain_end`): the first flush comes while the
    pipeline already consumes, and whatever it started with is left out. When one
    flush showed the whole backlog, or the rest drained within `MIN_WINDOW_S`, the
    window starts at the process start instead and the figure is a lower bound
    (`rate_exact` False).
    """
    want = result.backlog_events
    polls = [Poll(proc.started, 0, 0.0, _machine_jiffies())]
    flushes: list[int] = []  # indexes into polls of those that saw a new count
    count, last_change = 0, time.monotonic()
    while True:
        now_count = await _stats_events(client, settings)
        polls.append(Poll(time.perf_counter(), now_count, proc.cpu_s(), _machine_jiffies()))
        if now_count != count:
            flushes.append(len(polls) - 1)
            if len(flushes) == 1:
                result.startup_s = polls[-1].t - proc.started
                logger.info("  first events in Redis after %.1f s; counting %d events", result.startup_s, want)
            count, last_change = now_count, time.monotonic()
        if now_count >= want:
            break
        _raise_if_stuck(proc, count, want, last_change, stall_timeout_s)
        await asyncio.sleep(POLL_S)
    # A flush landed between the poll before and the one that saw it: take the middle.
    seen = [dataclasses.replace(polls[i], t=(polls[i - 1].t + polls[i].t) / 2) for i in flushes]
    result.flushes = len(seen)
    result.flush_counts = [(round(f.t - seen[0].t, 3), f.count) for f in seen]
    first, last, result.rate_exact = polls[0], seen[-1], False
    if len(seen) >= 2:
        end = dataclasses.replace(drain_end(polls[flushes[-2]:]), count=want)
        if end.t - seen[0].t >= MIN_WINDOW_S:
            first, last, result.rate_exact = seen[0], end, True
    result.throughput_window_s = last.t - first.t
    result.events_per_s = (last.count - first.count) / result.throughput_window_s
    # Everything on the machine, the bench's broker and Redis included: 100 = every core busy.
    result.machine_busy_pct = _busy_pct(first.machine, last.machine)
    if first.cpu_s is not None and last.cpu_s is not None:
        result.cpu_us_per_event = (last.cpu_s - first.cpu_s) / (last.count - first.count) * 1e6


class PacedProducer:
    """Hands paced messages to Kafka in record batches per partition, and notes when, per store.

    `producer.send()` per message costs more CPU than a fast pipeline spends on the
    message; batches built here (partitioned as the producer would, by the key's
    murmur2) keep the bench's share of the machine small. `sent[store_index]` holds
    `[sent_at, first_j, last_j]`: the store's messages `first_j, first_j + stores, ...
    last_j` were handed over at `sent_at` (perf_counter seconds).
    """

    def __init__(self, producer: Any, topic: str, partitions: int, factory: EventFactory, per_message: int) -> None:
        from aiokafka.partitioner import DefaultPartitioner

        self.producer = producer
        self.topic = topic
        self.factory = factory
        self.per_message = per_message
        stores = len(factory.store_ids)
        every = list(range(partitions))
        self.partition_of = [DefaultPartitioner()(factory.store_ids[i].encode(), every, every) for i in range(stores)]
        self.sent: list[collections.deque[list[Any]]] = [collections.deque() for _ in range(stores)]
        self.futures: list[Any] = []

    async def send(self, first_j: int, end_j: int) -> None:
        """Hand over messages `first_j` to `end_j - 1` (message j: store j % stores, events from j * per_message)."""
        stores, per_message = len(self.factory.store_ids), self.per_message
        now_ms = int(time.time() * 1000)
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        span: dict[int, list[int]] = {}
        for j in range(first_j, end_j):
            store = j % stores
            key, value = self.factory.paced_message(j * per_message, store, per_message, now_ms)
            by_partition.setdefault(self.partition_of[store], []).append((key, value))
            span.setdefault(store, [j, j])[1] = j
        sent_at = time.perf_counter()
        for store, (first, last) in span.items():
            self.sent[store].append([sent_at, first, last])
        for partition, messages in by_partition.items():
            batch = self.producer.create_batch()
            for key, value in messages:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    self.futures.append(await self.producer.send_batch(batch, self.topic, partition=partition))
                    batch = self.producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            self.futures.append(await self.producer.send_batch(batch, self.topic, partition=partition))

    def seen(self, store: int, j: int, at: float) -> list[tuple[float, int]]:
        """A record of `store` counting up to message `j` was seen `at`: `(latency ms, messages)` of those it covers."""
        waiting, stores, out = self.sent[store], len(self.factory.store_ids), []
        while waiting and waiting[0][1] <= j:
            sent_at, first, last = waiting[0]
            upto = min(last, j)
            out.append(((at - sent_at) * 1000, (upto - first) // stores + 1))
            if upto == last:
                waiting.popleft()
            else:
                waiting[0][1] = upto + stores
        return out


async def measure_latency(
    client: Any, producer: Any, settings: Settings, factory: EventFactory, proc: PipelineProcess,
    result: PipelineResult, config: BenchConfig, per_message: int,
) -> None:
    """Produce at `config.pace` x the measured events/s for `config.paced_s`; time each message into Redis."""
    assert result.events_per_s is not None
    rate = result.paced_target_events_per_s = config.pace * result.events_per_s
    n_messages = max(1, round(rate * config.paced_s / per_message))
    interval_s = per_message / rate
    stores = len(factory.store_ids)
    paced = PacedProducer(producer, settings.topic("events"), settings.partitions, factory, per_message)
    samples: list[tuple[float, int]] = []  # (latency ms, messages)
    seen_at: list[float] = []  # when each sample was seen
    pubsub = client.pubsub()
    try:
        await pubsub.psubscribe(settings.redis_keys.live_channel("*"))
        deadline = time.monotonic() + 10.0
        while (msg := await pubsub.get_message(timeout=1.0)) is None or msg["type"] != "psubscribe":
            if time.monotonic() > deadline:
                raise BenchError("Redis did not confirm the PSUBSCRIBE within 10 s")
    except BaseException:
        await pubsub.aclose()
        raise

    async def listen() -> None:
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is None:
                continue
            at = time.perf_counter()
            try:
                record = orjson.loads(msg["data"])
                last_event_id = record.get("last_event_id") or ""
                if record.get("type") != "bucket" or not last_event_id.startswith("p"):
                    continue  # live records, closed buckets, the backlog's buckets
                j = int(last_event_id[1:]) // per_message
            except (orjson.JSONDecodeError, AttributeError, ValueError):
                continue
            for sample in paced.seen(j % stores, j, at):
                samples.append(sample)
                seen_at.append(at)

    listener = asyncio.create_task(listen())
    try:
        base = result.backlog_events
        cpu_start, machine_start = proc.cpu_s(), _machine_jiffies()
        t0 = t_last = time.perf_counter()
        j = 0
        while j < n_messages:
            _check_cancelled()
            due = min(n_messages, int((time.perf_counter() - t0) / interval_s) + 1)
            if due > j:
                await paced.send(j, due)
                j = due
                t_last = time.perf_counter()
            if j < n_messages:
                await asyncio.sleep(max(MIN_TICK_S, t0 + j * interval_s - time.perf_counter()))
        result.paced_messages = n_messages
        result.paced_events = n_messages * per_message
        result.paced_events_per_s = result.paced_events / (t_last - t0) if t_last > t0 else None
        await producer.flush()
        await asyncio.gather(*paced.futures)  # raises when a delivery failed
        await _wait_for_count(client, settings, proc, base + result.paced_events, config.stall_timeout_s)
        cpu_end = proc.cpu_s()
        result.paced_machine_busy_pct = _busy_pct(machine_start, _machine_jiffies())
        if cpu_start is not None and cpu_end is not None:
            result.cpu_us_per_event_paced = (cpu_end - cpu_start) / result.paced_events * 1e6
            result.paced_busy_pct = (cpu_end - cpu_start) / (time.perf_counter() - t0) * 100
        # The counters go to Redis with the records, so the last records are out: wait for the subscriber.
        deadline = time.monotonic() + 5.0
        while sum(n for _, n in samples) < n_messages and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        with contextlib.suppress(Exception):
            await pubsub.punsubscribe()
            await pubsub.aclose()
    by_s: dict[int, list[tuple[float, int]]] = {}
    for at, sample in zip(seen_at, samples, strict=True):
        by_s.setdefault(int(at - t0), []).append(sample)
    result.latency_by_s = [(second, sum(n for _, n in part), round(percentile(sorted(part), 0.5), 1))
                           for second, part in sorted(by_s.items())]
    samples.sort()
    result.latency_samples = sum(n for _, n in samples)
    if samples:
        result.p50_ms = percentile(samples, 0.50)
        result.p99_ms = percentile(samples, 0.99)
        result.max_ms = samples[-1][0]
    if result.latency_samples < n_messages:
        logger.warning("  %d of %d paced messages were never seen in a record on %s",
                       n_messages - result.latency_samples, n_messages, settings.redis_keys.live_channel("*"))


async def events_in_redis(client: Any, settings: Settings) -> int:
    """Events in the bucket records of Redis: per store and bucket the highest `events` in its history, summed.

    Every pipeline XADDs each bucket record it writes to `<p>:store:<id>:history`, and a
    bucket's count only grows, so the highest is its last.
    """
    best: dict[tuple[str, int], int] = {}
    async for key in client.scan_iter(match=settings.redis_keys.store_pattern("history"), count=1000):
        low = "-"
        while entries := await client.xrange(key, min=low, max="+", count=5000):
            for _, fields in entries:
                record = orjson.loads(fields[b"record"])
                if record.get("type") == "bucket":
                    slot = (record["store_id"], record["bucket_start_ms"])
                    best[slot] = max(best.get(slot, 0), int(record["events"]))
            low = "(" + entries[-1][0].decode()
    return sum(best.values())


async def delete_keys(client: Any, settings: Settings) -> None:
    keys = [key async for key in client.scan_iter(match=settings.redis_keys.every_key_pattern, count=1000)]
    for i in range(0, len(keys), 500):
        await client.unlink(*keys[i : i + 500])


# -- one pipeline in one mode ----------------------------------------------------------------


async def wait_for_leaders(consumer: Any, topic: str, partitions: int, timeout_s: float = 30.0) -> None:
    """Return once every partition of a new topic answers a ListOffsets request from its leader.

    Metadata names a leader before the broker serves the partition; producing then earns
    NotLeaderForPartition retries (harmless, but noisy). ListOffsets is retried by the client.
    """
    from aiokafka import TopicPartition

    tps = [TopicPartition(topic, p) for p in range(partitions)]
    try:
        await asyncio.wait_for(consumer.end_offsets(tps), timeout_s)
    except TimeoutError:
        raise BenchError(f"the partitions of {topic} had no serving leader within {timeout_s:.0f} s") from None


async def produce_backlog(
    producer: Any, topic: str, factory: EventFactory, events: int, per_message: int, now_ms: int,
) -> int:
    """Send the backlog and wait until Kafka has it all; return the number of messages."""
    futures = []
    for key, value in factory.backlog(events, per_message, now_ms):
        futures.append(await producer.send(topic, value=value, key=key))
    await producer.flush()
    await asyncio.gather(*futures)  # raises when a delivery failed
    return len(futures)


async def run_one(
    pipeline: str, mode: str, config: BenchConfig, broker: str, redis_url: str, run_dir: Path, run_id: str,
    client: Any, producer: Any, offsets: Any, backlog_now_ms: int, security: dict[str, Any] | None = None,
) -> PipelineResult:
    """Measure `pipeline` in `mode` on fresh topics, keys and app id; never raises BenchError."""
    from footfall.stream.topics import ensure_topics

    per_message = MODES[mode]
    prefix = f"bench-{run_id}-{pipeline}-{mode}"
    settings = Settings(
        broker=broker, redis_url=redis_url, topic_prefix=prefix, app_id=f"{prefix}-app", **(security or {}),
        partitions=config.partitions, pseudonym_secret=secrets.token_hex(16),
        data_dir=str(run_dir / prefix / "data"), log_level="warning", live_interval_s=FLUSH_S,
        processing_guarantee="exactly_once" if pipeline == "e" else "at_least_once",
        batch_intake=pipeline != "d",
    )
    result = PipelineResult(pipeline, mode, prefix, log=str(run_dir / prefix / "pipeline.log"))
    factory = EventFactory(config.stores)  # same seed, same backlog time: the same bytes for every pipeline
    proc: PipelineProcess | None = None
    try:
        await asyncio.to_thread(ensure_topics, settings)
        await wait_for_leaders(offsets, settings.topic("events"), settings.partitions)
        t = time.perf_counter()
        result.backlog_events = config.backlog_events(mode)
        result.backlog_messages = await produce_backlog(producer, settings.topic("events"), factory,
                                                        result.backlog_events, per_message, backlog_now_ms)
        result.backlog_produce_s = time.perf_counter() - t
        logger.info("%s %-15s %-6s backlog of %d events in %d messages produced in %.1f s; starting the pipeline",
                    pipeline, PIPELINES[pipeline][0], mode, result.backlog_events, result.backlog_messages,
                    result.backlog_produce_s)
        profile = config.profile_dir / f"{prefix}.prof" if config.profile_dir else None
        proc = pipeline_process(pipeline, settings, Path(result.log), profile).start()
        await measure_throughput(client, settings, proc, result, config.stall_timeout_s)
        logger.info("  throughput %s%.0f events/s over %.2f s; flushes (s, events): %s; paced phase: %.0f events/s "
                    "for %g s", "" if result.rate_exact else ">=", result.events_per_s, result.throughput_window_s,
                    " ".join(f"{t:.2f}:{n}" for t, n in result.flush_counts),
                    config.pace * (result.events_per_s or 0), config.paced_s)
        await measure_latency(client, producer, settings, factory, proc, result, config, per_message)
        result.events_produced = result.backlog_events + result.paced_events
        result.peak_rss_mb = proc.peak_rss_mb()
        result.cpu_s_total = proc.cpu_s()
        result.stats_events = await _stats_events(client, settings)
        result.events_in_redis = await events_in_redis(client, settings)
        logger.info("  latency p50 %.1f ms p99 %.1f ms (%d messages) at %.0f events/s; %d/%d events in Redis",
                    result.p50_ms or math.nan, result.p99_ms or math.nan, result.latency_samples,
                    result.paced_events_per_s or math.nan, result.events_in_redis, result.events_produced)
        if not result.counts_match:
            result.error = (f"NOT EVERY EVENT COUNTED: {result.events_in_redis} events in the bucket records in "
                            f"Redis, {result.stats_events} in <p>:stats, {result.events_produced} produced")
            logger.error("%s %s: %s", pipeline, mode, result.error)
    except BenchError as exc:
        result.error = str(exc)
        logger.error("%s %s failed: %s", pipeline, mode, exc)
    except Exception as exc:  # a broker or Redis error: record it, go on with the next pipeline
        result.error = f"{type(exc).__name__}: {exc}"
        logger.exception("%s %s failed", pipeline, mode)
    finally:
        if proc is not None:
            try:
                code = await proc.stop()
            except BaseException:
                proc.kill_now()
                raise
            if code not in (0, None, -signal.SIGTERM) and result.error is None:
                logger.warning("  the pipeline exited with code %s (log %s)", code, result.log)
        if not config.keep_data:
            with contextlib.suppress(Exception):
                await delete_keys(client, settings)
    return result


def _check_cancelled() -> None:
    """Raise CancelledError when this task was asked to stop, even if a library swallowed the request.

    On Python 3.11 `asyncio.wait_for` (which redis-py's asyncio client uses to send a command
    when `socket_timeout` is set) drops an outer cancellation that lands as the send completes;
    `Task.cancelling()` still counts it.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def bench(
    config: BenchConfig, broker: str, redis_url: str, run_dir: Path, report: BenchReport,
    handle_signals: bool = False, security: dict[str, Any] | None = None,
) -> None:
    """Every pipeline in every mode, one after the other, into `report.results`.

    With `handle_signals`, SIGINT and SIGTERM stop the run: the current pipeline
    is stopped, `report.stopped_by` names the signal, and the task is cancelled.
    """
    import redis.asyncio as aioredis
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    signals = (signal.SIGINT, signal.SIGTERM) if handle_signals and task is not None else ()

    def on_signal(signum: int) -> None:
        logger.warning("%s: stopping the bench and everything it started", signal.Signals(signum).name)
        report.stopped_by = signum
        if task is not None:
            task.cancel()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    check_events_valid(EventFactory(config.stores))
    if config.profile_dir is not None:
        config.profile_dir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    # No socket_timeout: with one, redis-py sends through asyncio.wait_for, which may drop a Ctrl-C on
    # Python 3.11 (see `_check_cancelled`); calls are bounded with asyncio.timeout instead.
    client = aioredis.Redis.from_url(redis_url, socket_timeout=None, socket_connect_timeout=10)
    # linger 0: a paced message leaves at once (the backlog still batches while a request is in flight).
    kafka = Settings(broker=broker, **(security or {})).kafka
    producer = AIOKafkaProducer(**kafka.aiokafka(), linger_ms=0, max_batch_size=262_144,
                                max_request_size=2_097_152)
    offsets = AIOKafkaConsumer(**kafka.aiokafka(), group_id=None, enable_auto_commit=False)
    await producer.start()
    await offsets.start()
    try:
        for mode in config.modes:
            backlog_now_ms = int(time.time() * 1000)  # one backlog per mode, the same bytes for every pipeline
            for pipeline in config.pipelines:
                _check_cancelled()
                report.results.append(
                    await run_one(pipeline, mode, config, broker, redis_url, run_dir, run_id, client, producer,
                                  offsets, backlog_now_ms, security)
                )
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        with contextlib.suppress(Exception):
            await offsets.stop()
        with contextlib.suppress(Exception):
            await producer.stop()
        await client.aclose()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def run_bench(
    config: BenchConfig, *, broker: str | None = None, redis_url: str | None = None, broker_kind: str = "kafka",
    run_dir: Path | None = None, handle_signals: bool = False, environ: dict[str, str] | None = None,
) -> BenchReport:
    """Run the bench; start an attached Kafka (or Tansu) and/or Redis for what is not given.

    With `broker` given, `environ`'s `FOOTFALL_KAFKA_*` (TLS, SASL; default: the process's
    environment) apply to every Kafka client of every pipeline; a broker the bench starts
    itself is spoken to in plain text.

    The temporary run folder (logs, stack data) is removed afterwards unless
    `run_dir` is given or a pipeline failed. With `handle_signals` (the CLI),
    SIGINT/SIGTERM end the run early: everything started is stopped and the
    partial report comes back with `stopped_by` set.
    """
    from footfall.scripts.stack import KAFKA_VERSION, LocalStack

    own_dir = run_dir is None
    run_path = Path(tempfile.mkdtemp(prefix="footfall-bench-")) if run_dir is None else run_dir
    run_path.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    loadavg_start = _loadavg()  # before a broker of our own starts: what else runs here
    report: BenchReport | None = None
    security = kafka_security(os.environ if environ is None else environ) if broker is not None else {}
    try:
        with contextlib.ExitStack() as stack:
            if broker is None or redis_url is None:
                kind = broker_kind if broker is None else "none"
                local = LocalStack(run_path / "stack", broker=kind, redis=redis_url is None, progress=logger.info)
                stack.enter_context(local)
                broker = broker or local.bootstrap
                redis_url = redis_url or local.redis_url
                described = {"kafka": f"Apache Kafka {KAFKA_VERSION} (local)", "tansu": "Tansu (local, memory)",
                             "none": "given"}[kind]
            else:
                described = "given"
            report = BenchReport(config, broker, described, redact(redis_url),  # its password never shown
                                 started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), loadavg_start=loadavg_start)
            with asyncio.Runner(loop_factory=_new_loop) as runner:
                try:
                    runner.run(bench(config, broker, redis_url, run_path, report, handle_signals, security))
                except asyncio.CancelledError:
                    if report.stopped_by is None:
                        raise
    finally:
        if report is not None:
            report.elapsed_s = time.monotonic() - started
            report.loadavg_end = _loadavg()
        failed = report is None or any(r.error for r in report.results)
        if own_dir and not failed:
            shutil.rmtree(run_path, ignore_errors=True)
        else:
            logger.info("logs and data kept in %s", run_path)
    return report


# -- output ----------------------------------------------------------------------------------


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_report(report: BenchReport) -> str:
    """The bench's printed output: what ran, the table, the ratios, the machine's load."""
    c = report.config
    sizes = ", ".join(f"{mode} {c.backlog_events(mode):,}" for mode in c.modes)
    lines = [
        f"footfall bench: broker {report.broker} ({report.broker_kind}), Redis {report.redis_url}, "
        f"{report.cpus} CPUs, Python {report.python}, {c.stores} stores, {c.partitions} partitions",
        f"load average {report.loadavg_start} at start, {report.loadavg_end} at end (1, 5, 15 min)",
        f"pipelines (each its own process, topics, Redis keys and consumer group; all flush every {FLUSH_S:g} s, "
        "none writes Redis per message):",
        *(f"  {k}  {name}: {does}" for k, (name, does) in PIPELINES.items() if k in c.pipelines),
        f"modes: single = one event per Kafka message; batch = a JSON array of {MODES['batch']} events per message.",
        "events: door per-person events, keyed by store_id; the same backlog bytes for every pipeline of a mode.",
        f"events/s: over a backlog ({sizes} events) produced before the pipeline starts: events counted in Redis "
        "(<p>:stats) after the first flush, over the time",
        "  from that flush to the end of the drain (when the process's CPU stops; '>=': under "
        f"{MIN_WINDOW_S:g} s from the first flush to the end, a lower bound from the process start).",
        "CPU us/ev: user+system CPU of the pipeline process (all threads) per event over that window "
        "(1 us/event = 0.001 CPU s per 1,000 events).",
        f"latency: then events at {c.pace:g} x the pipeline's events/s for {c.paced_s:g} s (paced ev/s: as "
        "achieved); per message, from its hand-over to the producer",
        "  to the first bucket record of its store counting it, read by a PSUBSCRIBE client (PUBLISH follows "
        f"the HSET and XADD). It includes up to one flush interval ({FLUSH_S:g} s) of",
        "  coalescing by design: with steady arrivals p50 is about half the interval plus the flush, p99 about "
        "the interval plus the flush. lat n: messages timed.",
        "busy %: the pipeline's CPU in the paced phase (100 = one core); RSS MB: its VmHWM.",
        "counted: events in Redis (per store and bucket the highest `events` in <p>:store:*:history, summed) / "
        "events produced (backlog + paced); <p>:stats agrees.",
        *(["PROFILED under cProfile: these numbers are not comparable with unprofiled runs."]
          if c.profile_dir else []),
        "",
    ]
    header = (f"{'pipeline':<18} {'mode':<6} {'backlog':>9} {'events/s':>10} {'CPU us/ev':>9} {'paced ev/s':>10} "
              f"{'p50 ms':>7} {'p99 ms':>7} {'lat n':>7} {'busy %':>6} {'RSS MB':>6}  counted")
    lines += [header, "-" * len(header)]
    for r in report.results:
        name = f"{r.pipeline} {PIPELINES[r.pipeline][0]}"
        rate = "-" if r.events_per_s is None else f"{'' if r.rate_exact else '>='}{r.events_per_s:,.0f}"
        counted = "-" if r.events_in_redis is None else (
            f"{r.events_in_redis:,}/{r.events_produced:,} {'ok' if r.counts_match else 'MISMATCH'}")
        lines.append(
            f"{name:<18} {r.mode:<6} {r.backlog_events:>9,} {rate:>10} {_num(r.cpu_us_per_event, '.1f'):>9} "
            f"{_num(r.paced_events_per_s, ',.0f'):>10} {_num(r.p50_ms, '.1f'):>7} {_num(r.p99_ms, '.1f'):>7} "
            f"{r.latency_samples:>7} {_num(r.paced_busy_pct, '.0f'):>6} {_num(r.peak_rss_mb, '.0f'):>6}  {counted}"
        )
        if r.error:
            lines.append(f"    ERROR: {r.error}")
    lines.append("")
    rates, cpus = report.ratios(), report.ratios("cpu_us_per_event")
    for mode in c.modes:
        shown = ", ".join(f"{k} = {_num(v, '.3g')}" for k, v in rates[mode].items())
        cpu = ", ".join(f"{k} = {_num(v, '.3g')}" for k, v in cpus[mode].items())
        lines.append(f"{mode}: events/s {shown}; CPU per event {cpu}")
    inexact = [f"{r.pipeline} {r.mode}" for r in report.results if r.events_per_s is not None and not r.rate_exact]
    if inexact:
        lines.append(f"lower bounds (the backlog was gone by the first flush): {', '.join(inexact)}: raise "
                     "--events / --batch-events for a measured rate")
    for r in report.results:
        if r.paced_events_per_s and r.paced_target_events_per_s and (
                r.paced_events_per_s < 0.9 * r.paced_target_events_per_s):
            lines.append(f"{r.pipeline} {r.mode}: the bench's producer reached {r.paced_events_per_s:,.0f} of the "
                         f"{r.paced_target_events_per_s:,.0f} events/s asked for the latency phase (shared CPUs)")
    for phase, busy in (("throughput windows", [r.machine_busy_pct for r in report.results]),
                        ("latency phases", [r.paced_machine_busy_pct for r in report.results])):
        busy = [b for b in busy if b is not None]
        if busy:
            lines.append(f"machine CPU busy during the {phase} (all processes, all cores; 100 = every core): "
                         f"{min(busy):.0f}-{max(busy):.0f} %")
    try:
        load_1min = float(report.loadavg_start.split()[0])
    except (ValueError, IndexError):
        load_1min = 0.0
    if report.cpus and load_1min > report.cpus / 2:
        lines.append(f"WARNING: the machine was already busy at start (load average {report.loadavg_start} on "
                     f"{report.cpus} CPUs): other work skews these numbers; rerun on a quiet machine to compare")
    if report.stopped_by is not None:
        lines.append(f"stopped early by {signal.Signals(report.stopped_by).name}: only the pipelines above finished")
    lines.append(f"elapsed {report.elapsed_s:.0f} s")
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bench",
        help="measure events/s, CPU, latency and memory of the worker against two baselines doing the same work",
        description="Measure, on one broker and Redis, (a) a raw aiokafka pipe, (b) a plain Faust agent and (c) the "
        "footfall worker, each with one event per message and with batches of 100. All three count events per "
        f"(store, bucket) and write coalesced, every {FLUSH_S:g} s (the worker's FOOTFALL_LIVE_INTERVAL_S): one "
        "record per touched bucket to Kafka (acks awaited) and to Redis in one pipeline; none writes Redis per "
        "message. Reports events/s over a pre-produced backlog, CPU per event, end-to-end latency p50/p99 at half "
        "of each pipeline's events/s (produced -> its bucket's record in Redis, up to one flush interval of it by "
        "design), peak RSS, the ratios c/a and c/b, and the machine's load; fails unless every event produced "
        "was counted in Redis. Starts its own Apache Kafka and Redis unless --broker/--redis-url are given. "
        "Progress on stderr, the table on stdout.",
    )
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS,
                        help=f"backlog events per pipeline, single-event mode (default {DEFAULT_EVENTS})")
    parser.add_argument("--batch-events", type=int,
                        help=f"backlog events per pipeline, batch mode (default 10 x --events, at most "
                        f"{DEFAULT_BATCH_EVENTS_MAX})")
    parser.add_argument("--stores", type=int, default=DEFAULT_STORES, help=f"stores (default {DEFAULT_STORES})")
    parser.add_argument("--pace", type=float, default=DEFAULT_PACE,
                        help="rate of the latency phase as a share of the pipeline's measured events/s "
                        f"(default {DEFAULT_PACE:g})")
    parser.add_argument("--paced-s", type=float, default=DEFAULT_PACED_S,
                        help=f"seconds of the latency phase (default {DEFAULT_PACED_S:g})")
    parser.add_argument("--only", default=",".join(DEFAULT_PIPELINES),
                        help="pipelines to run, e.g. a,c (default a,b,c; e: the worker under exactly_once)")
    parser.add_argument("--modes", default=",".join(MODES), help="single,batch (default both)")
    parser.add_argument("--broker", help="use this Kafka (host:port) instead of starting one; FOOTFALL_KAFKA_* "
                        "(TLS, SASL) then apply to every client of the run")
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--broker-kind", choices=("kafka", "tansu"), default="kafka",
                        help="broker to start when --broker is not given (default kafka)")
    parser.add_argument("--run-dir", type=Path, help="keep logs and stack data here (default: a temp folder)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--keep-data", action="store_true", help="leave the bench's Redis keys in place")
    parser.add_argument("--state-days", type=int, default=8,
                        help="also measure one store's saved state over this many simulated days (0: skip; default 8)")
    parser.add_argument("--state-rate", type=float, default=3.0,
                        help="arrival rates of the simulated stores for the state size, times the simulator's "
                        "defaults (default 3)")
    parser.add_argument("--state-only", action="store_true", help="only measure the state size (no broker needed)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="run each pipeline under cProfile, writing DIR/<prefix>.prof (slows them down)")
    parser.set_defaults(func=run)


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def run(args: argparse.Namespace) -> int:
    """`footfall bench`: 0 when every pipeline ran and counted every event, 1 otherwise."""
    if logging.getLogger().getEffectiveLevel() >= logging.INFO:
        # kafka-python serves only set-up here (broker readiness probe, topic creation), whose failures
        # raise; its per-connection lines (and "connection refused" while a broker starts) drown the progress.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        config = BenchConfig(events=args.events, batch_events=args.batch_events, stores=args.stores, pace=args.pace,
                             paced_s=args.paced_s, pipelines=_split(args.only), modes=_split(args.modes),
                             keep_data=args.keep_data, profile_dir=args.profile)
    except ValueError as exc:
        print(f"footfall bench: {exc}", file=sys.stderr)
        return 2
    sizes: list[Any] = []
    if args.state_days > 0 or args.state_only:
        from footfall.scripts.statesize import format_state_sizes, measure_state_sizes

        days = max(1, args.state_days)
        logger.info("state size: %d simulated days of 6 stores at %g x the simulator's rates ...", days,
                    args.state_rate)
        sizes = measure_state_sizes(days=days, stores=6, rate_factor=args.state_rate)
        if args.state_only:
            print(format_state_sizes(sizes, days))
            return 0
    try:
        report = run_bench(config, broker=args.broker, redis_url=args.redis_url, broker_kind=args.broker_kind,
                           run_dir=args.run_dir, handle_signals=True)
    except SettingsError as exc:  # FOOTFALL_KAFKA_* that cannot work, named
        print(f"footfall bench: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if sizes:
        print(format_state_sizes(sizes, max(1, args.state_days)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {**report.to_json(), "state_sizes": [dataclasses.asdict(x) for x in sizes]}
        args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        logger.info("results written to %s", args.json)
    if report.stopped_by is not None:
        print(f"footfall bench: stopped by {signal.Signals(report.stopped_by).name}; the results above are partial",
              file=sys.stderr)
        return 128 + report.stopped_by
    failed = [r for r in report.results if r.error]
    if failed:
        print(f"footfall bench: FAILED: {', '.join(f'{r.pipeline} {r.mode}' for r in failed)} (see ERROR above)",
              file=sys.stderr)
        return 1
    return 0
