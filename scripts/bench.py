"""`footfall bench`: events/s, latency, CPU and memory of the worker next to two baselines, on one broker.

Three pipelines, each in its own process and on its own fresh topics, Redis keys
and consumer group, for two message shapes (one event per message; a JSON array
of 100 events per message):

- **a** `raw`: aiokafka consume -> orjson decode -> produce, plus the worker's
  Redis pipeline per message (`scripts/benchpipes.py` says exactly what it does);
- **b** `faust`: a Faust passthrough agent with the worker's app settings, same work;
- **c** `worker`: the real `footfall worker` (validation, pseudonyms, offset ledger,
  per-store `StoreFlow`: buckets, KPIs, sliding windows, occupancy, queues, days,
  duplicates, baselines; table + changelog, aggregates, live records, Redis).

Per pipeline and shape:

1. *throughput*: N events (10 N in batches) are produced before the pipeline starts
   (a backlog, so the producer is not in the measured path); events/s = events counted in
   Redis (`<p>:stats` field `events`, written in the same pipeline as the
   records, polled every 5 ms) over the time from the first to the last event
   reaching Redis. CPU seconds of the pipeline process (`/proc/<pid>/stat`) over
   that window give CPU per 1,000 events;
2. *latency*: with the pipeline caught up, events are produced at a fixed rate
   for a while; a Redis subscriber (`PSUBSCRIBE <p>:live:*`) maps the
   `last_event_id` of each published record back to the time its message was
   handed to the producer: produced -> Redis updated and published, per message;
3. *check*: the events in Redis (sum of `events` over the per-bucket records of
   the day hashes) must equal the events produced; peak RSS (`VmHWM`) is read.

Then, offline (no I/O), the size of one store's saved state (`scripts/statesize.py`):
`StoreFlow` run over simulated days of busy stores of each vertical, measured as the
worker writes it to the changelog (`--state-only` runs just that).

`--profile DIR` runs the pipelines under cProfile (main thread only: Faust's
consumer thread is not in it) to see where their time goes.

Examples
--------
::

    footfall bench                          # own Apache Kafka + Redis, ~2-4 min on 2 cores
    footfall bench --only c --events 5000 --json run/bench.json
    footfall bench --broker 127.0.0.1:9092 --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
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

from footfall.stream.settings import Settings

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

#: Pipeline letter -> (short name, what it does).
PIPELINES: dict[str, tuple[str, str]] = {
    "a": ("raw aiokafka", "aiokafka consumer -> orjson decode -> aiokafka producer (value passthrough to "
                          "<p>.aggregates) + in-memory counts per (store, bucket) + the worker's Redis pipeline "
                          "(RedisSink.publish: latest HSET, XADD, day HSET+EXPIRE, PUBLISH, stats HINCRBY), "
                          "one awaited pipeline per message"),
    "b": ("faust passthrough", "Faust agent with the worker's app settings (no table): topic.send(value) + the same "
                               "counts and Redis pipeline as a"),
    "c": ("footfall worker", "`footfall worker`: decode + validate + pseudonymise, table + changelog, offset ledger, "
                             "TumblingBuckets, aggregates and Redis coalesced per store and bucket "
                             "every FOOTFALL_LIVE_INTERVAL_S (default 1 s; latency samples only published records)"),
}
#: Message shape -> events per message.
MODES: dict[str, int] = {"single": 1, "batch": 100}

DEFAULT_EVENTS = 20_000
DEFAULT_STORES = 8
#: Events/s of the latency phase. Measured on 2 cores with the broker alongside: single-event messages at
#: 500/s keep the Faust pipelines 60-70 % busy and their p50 swings from ms to ~1 s; 250/s stays clear of that.
DEFAULT_RATE = 250
DEFAULT_PACED_S = 10.0
POLL_S = 0.005
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
        Backlog events of the batch mode (None: 10 x `events`, as batches go about 10-40x faster).
    stores
        Stores the events come from (message key = `store_id`).
    rate
        Events per second in the paced latency phase.
    paced_s
        Length of the paced phase in seconds.
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
    rate: float = DEFAULT_RATE
    paced_s: float = DEFAULT_PACED_S
    pipelines: tuple[str, ...] = tuple(PIPELINES)
    modes: tuple[str, ...] = tuple(MODES)
    partitions: int = 4
    stall_timeout_s: float = 90.0
    keep_data: bool = False
    profile_dir: Path | None = None

    def __post_init__(self) -> None:
        sizes = (self.events, self.batch_events or 1, self.stores, self.rate, self.paced_s)
        if min(sizes) <= 0:
            raise ValueError("events, batch_events, stores, rate and paced_s must be positive")
        unknown = set(self.pipelines) - set(PIPELINES) | set(self.modes) - set(MODES)
        if unknown or not self.pipelines or not self.modes:
            raise ValueError(f"unknown or no pipelines/modes: {sorted(unknown)}")

    def backlog_events(self, mode: str) -> int:
        """Backlog size of `mode`."""
        if mode == "single":
            return self.events
        return self.batch_events if self.batch_events is not None else 10 * self.events


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
    throughput_window_s: float | None = None
    events_per_s: float | None = None
    cpu_s_per_1k_events: float | None = None
    cpu_s_per_1k_paced: float | None = None
    paced_busy_pct: float | None = None
    machine_busy_pct: float | None = None
    cpu_s_total: float | None = None
    peak_rss_mb: float | None = None
    paced_events: int = 0
    paced_messages: int = 0
    paced_events_per_s: float | None = None
    latency_samples: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    events_produced: int = 0
    events_in_redis: int | None = None
    stats_events: int | None = None
    log: str = ""
    error: str | None = None

    @property
    def counts_match(self) -> bool:
        return self.events_in_redis == self.events_produced


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

    def ratios(self) -> dict[str, dict[str, float | None]]:
        """Per mode, throughput of c over a and over b."""
        out: dict[str, dict[str, float | None]] = {}
        for mode in self.config.modes:
            rates = {p: (r.events_per_s if (r := self.result(p, mode)) and not r.error else None) for p in PIPELINES}
            c = rates.get("c")
            out[mode] = {f"c/{p}": (c / rates[p] if c and rates.get(p) else None) for p in ("a", "b")}
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "config": dataclasses.asdict(self.config),
            "broker": self.broker, "broker_kind": self.broker_kind, "redis_url": self.redis_url,
            "cpus": self.cpus, "python": self.python, "started_at": self.started_at, "elapsed_s": self.elapsed_s,
            "loadavg_start": self.loadavg_start, "loadavg_end": self.loadavg_end, "stopped_by": self.stopped_by,
            "pipelines": {k: {"name": n, "does": d} for k, (n, d) in PIPELINES.items()},
            "results": [{**dataclasses.asdict(r), "counts_match": r.counts_match} for r in self.results],
            "ratios": self.ratios(),
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

    """

    VERTICALS = ("retail", "bank", "telecom")

    def __init__(self, stores: int, seed: int = 7) -> None:
        self.store_ids = [f"store-{i:03d}" for i in range(stores)]
        self._rng = random.Random(seed)

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
               factory.message("p", 0, 0, [now_ms])[:2]]
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
    """The subprocess that runs `pipeline` ("a", "b" or "c") with `settings`, under cProfile if asked."""
    env = dict(os.environ)  # PATH, HOME... for the child; its configuration comes from `settings`
    python = [sys.executable]
    if profile_path is not None:
        python += ["-m", "cProfile", "-o", str(profile_path)]
    if pipeline == "c":
        env.update(settings.to_env())
        cmd = [*python, "-m", "footfall.scripts.cli", "--log-level", settings.log_level, "worker"]
    else:
        cmd = [*python, "-m", "footfall.scripts.benchpipes", "raw" if pipeline == "a" else "faust",
               "--broker", settings.broker, "--redis-url", settings.redis_url, "--prefix", settings.topic_prefix,
               "--app-id", settings.app_id, "--partitions", str(settings.partitions),
               "--data-dir", settings.data_dir, "--log-level", settings.log_level]
    return PipelineProcess(cmd, env, log_path)


# -- measuring -------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.99)
    (2.0, 4.0)

    """
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


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


async def measure_throughput(
    client: Any, settings: Settings, proc: PipelineProcess, result: PipelineResult, stall_timeout_s: float,
) -> None:
    """Poll `<p>:stats` events every `POLL_S` from the process start until the whole backlog is counted."""
    want = result.backlog_events
    prev_t = time.perf_counter()  # the last poll that saw no event yet
    first: tuple[float, float, int, float | None] | None = None  # (last empty poll, first poll, count, cpu)
    machine_first: tuple[int, int] | None = None
    count, last_change = 0, time.monotonic()
    while True:
        now_count = await _stats_events(client, settings)
        t = time.perf_counter()
        if now_count and first is None:
            first = (prev_t, t, now_count, proc.cpu_s())
            machine_first = _machine_jiffies()
            result.startup_s = t - proc.started
            logger.info("  first events in Redis after %.1f s; counting %d events", result.startup_s, want)
        if now_count >= want:
            cpu_end = proc.cpu_s()
            # Everything on the machine, the bench's broker and Redis included: 100 = every core busy.
            result.machine_busy_pct = _busy_pct(machine_first, _machine_jiffies())
            break
        if now_count != count:
            count, last_change = now_count, time.monotonic()
        _raise_if_stuck(proc, count, want, last_change, stall_timeout_s)
        prev_t = t
        await asyncio.sleep(POLL_S)
    assert first is not None
    empty_t, first_t, first_count, cpu_first = first
    # Each boundary lies between two polls: take the middle (the whole interval when one poll saw it all).
    start_t = (empty_t + first_t) / 2 if first_t != t else empty_t
    end_t = (prev_t + t) / 2 if first_t != t else t
    result.throughput_window_s = end_t - start_t
    result.events_per_s = want / result.throughput_window_s
    if cpu_first is not None and cpu_end is not None and now_count > first_count:
        result.cpu_s_per_1k_events = (cpu_end - cpu_first) / (now_count - first_count) * 1000


async def measure_latency(
    client: Any, producer: Any, settings: Settings, factory: EventFactory, proc: PipelineProcess,
    result: PipelineResult, config: BenchConfig, per_message: int,
) -> None:
    """Produce at `config.rate` events/s for `config.paced_s`; time each message to its first PUBLISH."""
    topic = settings.topic("events")
    n_messages = max(1, round(config.rate * config.paced_s / per_message))
    interval_s = per_message / config.rate
    message_of: dict[str, int] = {}
    sent_at: list[float] = []
    seen_at: dict[int, float] = {}
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
            t = time.perf_counter()
            try:
                index = message_of.get(orjson.loads(msg["data"]).get("last_event_id"))
            except (orjson.JSONDecodeError, AttributeError):
                continue
            if index is not None and index not in seen_at:
                seen_at[index] = t

    listener = asyncio.create_task(listen())
    try:
        base = result.backlog_events
        cpu_start = proc.cpu_s()
        t0 = time.perf_counter()
        for j in range(n_messages):
            delay = t0 + j * interval_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            _check_cancelled()
            now_ms = int(time.time() * 1000)
            key, value, ids = factory.message("p", j * per_message, j % len(factory.store_ids),
                                              [now_ms] * per_message)
            for event_id in ids:
                message_of[event_id] = j
            sent_at.append(time.perf_counter())
            await producer.send(topic, value=value, key=key)
        sent_span = sent_at[-1] - sent_at[0]
        result.paced_messages = n_messages
        result.paced_events = n_messages * per_message
        result.paced_events_per_s = result.paced_events / sent_span if sent_span > 0 else None
        await producer.flush()
        await _wait_for_count(client, settings, proc, base + result.paced_events, config.stall_timeout_s)
        cpu_end = proc.cpu_s()
        if cpu_start is not None and cpu_end is not None:
            result.cpu_s_per_1k_paced = (cpu_end - cpu_start) / result.paced_events * 1000
            result.paced_busy_pct = (cpu_end - cpu_start) / (time.perf_counter() - t0) * 100
        deadline = time.monotonic() + 5.0
        while len(seen_at) < n_messages and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        with contextlib.suppress(Exception):
            await pubsub.punsubscribe()
            await pubsub.aclose()
    latencies = sorted((seen_at[j] - sent_at[j]) * 1000 for j in seen_at)
    result.latency_samples = len(latencies)
    if latencies:
        result.p50_ms = percentile(latencies, 0.50)
        result.p99_ms = percentile(latencies, 0.99)
        result.max_ms = latencies[-1]
    if len(latencies) < n_messages:
        logger.warning("  %d of %d paced messages were never seen on %s", n_messages - len(latencies), n_messages,
                       settings.redis_keys.live_channel("*"))


async def events_in_redis(client: Any, settings: Settings) -> int:
    """Sum of `events` over every per-bucket record in the day hashes (`<p>:store:*:buckets:*`)."""
    total = 0
    async for key in client.scan_iter(match=settings.redis_keys.store_pattern("buckets:*"), count=1000):
        for raw in await client.hvals(key):
            total += int(orjson.loads(raw)["events"])
    return total


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


async def produce_backlog(producer: Any, topic: str, factory: EventFactory, events: int, per_message: int) -> int:
    """Send the backlog and wait until Kafka has it all; return the number of messages."""
    now_ms = int(time.time() * 1000)
    futures = []
    for key, value in factory.backlog(events, per_message, now_ms):
        futures.append(await producer.send(topic, value=value, key=key))
    await producer.flush()
    await asyncio.gather(*futures)  # raises when a delivery failed
    return len(futures)


async def run_one(
    pipeline: str, mode: str, config: BenchConfig, broker: str, redis_url: str, run_dir: Path, run_id: str,
    client: Any, producer: Any, offsets: Any,
) -> PipelineResult:
    """Measure `pipeline` in `mode` on fresh topics, keys and app id; never raises BenchError."""
    from footfall.stream.topics import ensure_topics

    per_message = MODES[mode]
    prefix = f"bench-{run_id}-{pipeline}-{mode}"
    settings = Settings(
        broker=broker, redis_url=redis_url, topic_prefix=prefix, app_id=f"{prefix}-app",
        partitions=config.partitions, pseudonym_secret=secrets.token_hex(16),
        data_dir=str(run_dir / prefix / "data"), log_level="warning",
    )
    result = PipelineResult(pipeline, mode, prefix, log=str(run_dir / prefix / "pipeline.log"))
    factory = EventFactory(config.stores)
    proc: PipelineProcess | None = None
    try:
        await asyncio.to_thread(ensure_topics, settings)
        await wait_for_leaders(offsets, settings.topic("events"), settings.partitions)
        t = time.perf_counter()
        result.backlog_events = config.backlog_events(mode)
        result.backlog_messages = await produce_backlog(producer, settings.topic("events"), factory,
                                                        result.backlog_events, per_message)
        result.backlog_produce_s = time.perf_counter() - t
        logger.info("%s %-18s %-6s backlog of %d events in %d messages produced in %.1f s; starting the pipeline",
                    pipeline, PIPELINES[pipeline][0], mode, result.backlog_events, result.backlog_messages,
                    result.backlog_produce_s)
        profile = config.profile_dir / f"{prefix}.prof" if config.profile_dir else None
        proc = pipeline_process(pipeline, settings, Path(result.log), profile).start()
        await measure_throughput(client, settings, proc, result, config.stall_timeout_s)
        logger.info("  throughput %.0f events/s over %.2f s; paced phase: %g events/s for %g s",
                    result.events_per_s, result.throughput_window_s, config.rate, config.paced_s)
        await measure_latency(client, producer, settings, factory, proc, result, config, per_message)
        result.events_produced = result.backlog_events + result.paced_events
        result.peak_rss_mb = proc.peak_rss_mb()
        result.cpu_s_total = proc.cpu_s()
        result.stats_events = await _stats_events(client, settings)
        result.events_in_redis = await events_in_redis(client, settings)
        logger.info("  latency p50 %.1f ms p99 %.1f ms (%d messages); %d/%d events in Redis",
                    result.p50_ms or math.nan, result.p99_ms or math.nan, result.latency_samples,
                    result.events_in_redis, result.events_produced)
        if not result.counts_match:
            result.error = f"{result.events_in_redis} events in Redis, {result.events_produced} produced"
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
    handle_signals: bool = False,
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
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=0, max_batch_size=262_144,
                                max_request_size=2_097_152)
    offsets = AIOKafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False)
    await producer.start()
    await offsets.start()
    try:
        for mode in config.modes:
            for pipeline in config.pipelines:
                _check_cancelled()
                report.results.append(
                    await run_one(pipeline, mode, config, broker, redis_url, run_dir, run_id, client, producer,
                                  offsets)
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
    run_dir: Path | None = None, handle_signals: bool = False,
) -> BenchReport:
    """Run the bench; start an attached Kafka (or Tansu) and/or Redis for what is not given.

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
    report: BenchReport | None = None
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
            report = BenchReport(config, broker, described, redis_url,
                                 started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            with asyncio.Runner(loop_factory=_new_loop) as runner:
                try:
                    runner.run(bench(config, broker, redis_url, run_path, report, handle_signals))
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
    """The bench's printed output: what ran, the table, the ratios."""
    c = report.config
    sizes = ", ".join(f"{mode} {c.backlog_events(mode)}" for mode in c.modes)
    lines = [
        f"footfall bench: broker {report.broker} ({report.broker_kind}), Redis {report.redis_url}, "
        f"{report.cpus} CPUs, Python {report.python}, {c.stores} stores, {c.partitions} partitions, "
        f"load average {report.loadavg_start} at start, {report.loadavg_end} at end",
        "pipelines (each its own process, topics, Redis keys and consumer group):",
        *(f"  {k}  {name}: {does}" for k, (name, does) in PIPELINES.items() if k in c.pipelines),
        f"modes: single = one event per Kafka message; batch = a JSON array of {MODES['batch']} events per message.",
        "events: door per-person events, keyed by store_id, event times over the last hours (all valid, none late).",
        f"events/s: a backlog ({sizes} events) is produced before the pipeline starts, so the producer is not "
        "in the measured path;",
        "  events/s = backlog / time from the first to the last event reaching Redis (<p>:stats `events`, "
        f"polled every {POLL_S * 1000:.0f} ms).",
        f"latency: then {c.rate:g} events/s for {c.paced_s:g} s; producer.send() -> the record's PUBLISH on "
        "<p>:live:<store> (after its Redis writes)",
        "  reaching a PSUBSCRIBE client in the bench, matched by last_event_id; one sample per message (lat n).",
        "CPU s/1k: user+system CPU of the pipeline process per 1,000 events, over the throughput window (max) and "
        "the paced phase; busy %: its CPU in the paced phase",
        "  (100 = one core: the pipelines are single-threaded, near 100 latency is queueing); RSS MB: its VmHWM.",
        "in Redis: sum of `events` over the per-bucket records in the day hashes / events produced "
        "(backlog + paced).",
        *(["PROFILED under cProfile: these numbers are not comparable with unprofiled runs."]
          if c.profile_dir else []),
        "",
    ]
    header = (f"{'pipeline':<21} {'mode':<6} {'events':>7} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'lat n':>6} {'CPU s/1k max':>12} {'CPU s/1k paced':>14} {'busy %':>6} {'RSS MB':>6}  "
              f"{'in Redis':<20}")
    header = header.rstrip()
    lines += [header, "-" * len(header)]
    for r in report.results:
        name = f"{r.pipeline} {PIPELINES[r.pipeline][0]}"
        redis_col = "-" if r.events_in_redis is None else (
            f"{r.events_in_redis}/{r.events_produced} {'ok' if r.counts_match else 'MISMATCH'}")
        lines.append(
            f"{name:<21} {r.mode:<6} {r.backlog_events:>7} {_num(r.events_per_s, ',.0f'):>9} "
            f"{_num(r.p50_ms, '.1f'):>7} {_num(r.p99_ms, '.1f'):>7} {r.latency_samples:>6} "
            f"{_num(r.cpu_s_per_1k_events, '.3f'):>12} {_num(r.cpu_s_per_1k_paced, '.3f'):>14} "
            f"{_num(r.paced_busy_pct, '.0f'):>6} {_num(r.peak_rss_mb, '.0f'):>6}  {redis_col}"
        )
        if r.error:
            lines.append(f"    ERROR: {r.error}")
    lines.append("")
    for mode, ratios in report.ratios().items():
        shown = ", ".join(f"{k} = {_num(v, '.2f')}" for k, v in ratios.items())
        lines.append(f"throughput ratios, {mode}: {shown}")
    busy = [r.machine_busy_pct for r in report.results if r.machine_busy_pct is not None]
    if busy:
        lines.append(f"machine CPU busy during the throughput windows (all processes, all cores): "
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
        help="measure events/s, latency, CPU and memory of the worker against two baselines",
        description="Measure, on one broker and Redis, (a) a raw aiokafka pipe, (b) a Faust passthrough agent and "
        "(c) the footfall worker, each with one event per message and with batches of 100: events/s over a "
        "pre-produced backlog (first to last event reaching Redis), end-to-end latency p50/p99 at a paced rate "
        "(produced -> PUBLISH seen by a Redis subscriber), CPU per 1,000 events and peak RSS of the pipeline "
        "process, and a check that every event produced reached Redis. Starts its own Apache Kafka and Redis "
        "unless --broker/--redis-url are given. Progress on stderr, the table on stdout.",
    )
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS,
                        help=f"backlog events per pipeline, single-event mode (default {DEFAULT_EVENTS})")
    parser.add_argument("--batch-events", type=int,
                        help="backlog events per pipeline, batch mode (default 10 x --events)")
    parser.add_argument("--stores", type=int, default=DEFAULT_STORES, help=f"stores (default {DEFAULT_STORES})")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE,
                        help=f"events/s of the paced latency phase (default {DEFAULT_RATE})")
    parser.add_argument("--paced-s", type=float, default=DEFAULT_PACED_S,
                        help=f"seconds of the paced latency phase (default {DEFAULT_PACED_S:g})")
    parser.add_argument("--only", default=",".join(PIPELINES), help="pipelines to run, e.g. a,c (default a,b,c)")
    parser.add_argument("--modes", default=",".join(MODES), help="single,batch (default both)")
    parser.add_argument("--broker", help="use this Kafka (host:port) instead of starting one")
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
        config = BenchConfig(events=args.events, batch_events=args.batch_events, stores=args.stores, rate=args.rate,
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
    report = run_bench(config, broker=args.broker, redis_url=args.redis_url, broker_kind=args.broker_kind,
                       run_dir=args.run_dir, handle_signals=True)
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
    return 1 if any(r.error for r in report.results) else 0
