"""`footfall scale`: N simulated stores live at S x real time into one worker; staleness, CPU, memory, changelog.

The stores and their traffic come from `footfall simulate` (a subprocess: `make_stores` and
`generate`, paced on the wall clock, simulated time = start + S x elapsed, never ahead of the
real clock). One `footfall worker` subprocess counts them. Every second the harness samples:

- the worker's CPU (`/proc/<pid>/stat` utime + stime, all threads; 100 % = one core) and RSS
  (`VmRSS`, peak `VmHWM` of `/proc/<pid>/status`);
- events offered (sum of the events topic's end offsets: the simulator sends one event per
  message) and applied (`<p>:stats` `events`, written by the worker with each flush); their
  difference is the worker's backlog, and "applied lag" how long ago (in whole samples) the
  events applied by a sample had all been offered: the freshness `emitted_at_ms` cannot show
  (a record built late from an old backlog is still emitted "now").

Throughout, a Redis subscriber (`PSUBSCRIBE <p>:live:*`) takes every record the worker
publishes; for live records (`type` `live`) staleness = receive time (wall clock, ms) -
`emitted_at_ms`. A Kafka consumer reads the `<app id>-stores-changelog` topic from the
start and adds up key + value bytes per record by the record's timestamp: changelog bytes
per bucket boundary are the bytes timestamped within +-`--window-s` of the wall-clock moment
the simulated clock crossed the boundary (buckets close `grace_s / speed` later: at 12x and
the default 300 s grace, 25 s later, inside the window). Whether the worker left its group:
its log, from its first "Worker ready" to the end of the measurement (before it is stopped), is
searched for the consumer's rebalance lines (revoked partitions, rejoins, failed heartbeats);
`rebalances` counts group joins after the first.

By default the simulated span ends at a past 13:50 UTC + S x minutes, so that Paris, London
and New York stores are open (traffic at the real hour could be night everywhere), and a
bucket boundary passes 10 simulated minutes in. Starts its own Apache Kafka and Redis on free
ports unless --broker/--redis-url are given.

Examples
--------
::

    footfall scale --stores 1000 --speed 12 --minutes 3
    footfall scale --stores 20 --speed 60 --minutes 0.7 --broker 127.0.0.1:9092 --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import array
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from footfall.stream.kafka_access import KafkaAccess
from footfall.stream.settings import Settings, kafka_security

__all__ = ["ScaleConfig", "ScaleReport", "default_start_ms", "format_report", "register", "run", "run_scale"]

logger = logging.getLogger(__name__)

#: The target of the scale issue.
TARGET_STORES, TARGET_SPEED, TARGET_RSS_MB, TARGET_P99_S = 10_000, 12.0, 2048.0, 2.0
#: Lines of a worker log that say its consumer left or rejoined its group (aiokafka / Faust wording).
REBALANCE_LINE = re.compile(r"rebalanc|revok|heartbeat failed|session timed out|leav(e|ing) group|left the group|"
                            r"unknownmemberid|illegalgeneration", re.IGNORECASE)
JOINED_LINE = re.compile(r"successfully synced group", re.IGNORECASE)  # aiokafka, once per (re)join
READY_LINE = "Worker ready"  # faust.tables.recovery, after the first assignment and restore


@dataclass(frozen=True)
class ScaleConfig:
    """One scale run: `stores` at `speed` x real time for `minutes` of wall time."""

    stores: int
    speed: float = 12.0
    minutes: float = 3.0
    bucket_s: int = 900
    seed: int = 0
    start_ms: int | None = None
    partitions: int = 4
    window_s: float = 30.0
    startup_timeout_s: float = 120.0
    #: Run the worker under cProfile, its profile written here when it stops (None: not profiled).
    profile_path: Path | None = None
    #: The worker's FOOTFALL_CHECKPOINT_INTERVAL_S (None: its default).
    checkpoint_interval_s: float | None = None

    def __post_init__(self) -> None:
        if self.stores < 1 or self.speed <= 0 or self.minutes <= 0 or self.window_s < 0:
            raise ValueError("stores, speed and minutes must be positive")


@dataclass
class ScaleReport:
    config: ScaleConfig
    broker: str
    prefix: str
    sim_start: str = ""
    sim_end: str = ""
    wall_s: float = 0.0
    boundaries: list[str] = field(default_factory=list)
    live_records: int = 0
    bucket_records: int = 0
    stale_ms: dict[str, float | None] = field(default_factory=dict)
    stale_boundary_ms: dict[str, float | None] = field(default_factory=dict)
    stale_boundary_n: int = 0
    cpu_pct_mean: float | None = None
    cpu_pct_max: float | None = None
    rss_mb_last: float | None = None
    rss_mb_peak: float | None = None
    stores_in_redis: int = 0
    offered_events: int = 0
    applied_events: int = 0
    offered_per_s: float | None = None
    applied_per_s: float | None = None
    backlog_events_max: int = 0
    backlog_events_end: int = 0
    lag_s_p99: float | None = None
    lag_s_max: float | None = None
    changelog_bytes: int = 0
    changelog_records: int = 0
    changelog_bytes_per_boundary: list[int] = field(default_factory=list)
    changelog_bytes_per_s_outside: float | None = None
    rebalances: int = 0
    left_group: bool = False
    rebalance_lines: list[str] = field(default_factory=list)
    worker_exit: int | None = None
    simulator_summary: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list)
    loadavg: str = ""
    error: str | None = None

    def target_verdict(self) -> str:
        c = self.config
        if c.stores < TARGET_STORES or c.speed < TARGET_SPEED:
            return f"n/a (the target is {TARGET_STORES:,} stores at {TARGET_SPEED:g}x)"
        p99 = self.stale_boundary_ms.get("p99") or self.stale_ms.get("p99")
        ok = (self.rss_mb_peak is not None and self.rss_mb_peak <= TARGET_RSS_MB and p99 is not None
              and p99 < TARGET_P99_S * 1000 and not self.left_group and self.error is None)
        return "MET" if ok else "NOT MET"

    def to_json(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["target"] = self.target_verdict()
        return doc


# -- measuring threads -----------------------------------------------------------------------------------


class LiveListener(threading.Thread):
    """`PSUBSCRIBE <p>:live:*`: per live record, (receive wall s, now - emitted_at_ms)."""

    def __init__(self, redis_url: str, pattern: str) -> None:
        super().__init__(name="scale-live", daemon=True)
        import redis

        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(pattern)
        self.stop_event = threading.Event()
        self.at_s = array.array("d")
        self.stale_ms = array.array("d")
        self.buckets = 0
        self.stores: set[bytes] = set()

    def run(self) -> None:
        while not self.stop_event.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message is None:
                continue
            now_ms = time.time() * 1000
            try:
                record = orjson.loads(message["data"])
            except orjson.JSONDecodeError:
                continue
            if record.get("type") == "live" and isinstance(record.get("emitted_at_ms"), int):
                self.at_s.append(now_ms / 1000)
                self.stale_ms.append(now_ms - record["emitted_at_ms"])
                self.stores.add(message["channel"])
            elif record.get("type") == "bucket":
                self.buckets += 1

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)
        with contextlib.suppress(Exception):
            self.pubsub.close()
            self.client.close()


class ChangelogReader(threading.Thread):
    """Reads the worker's table changelog from the start: (record timestamp s, key + value bytes)."""

    def __init__(self, kafka: KafkaAccess, topic: str) -> None:
        super().__init__(name="scale-changelog", daemon=True)
        self.kafka, self.topic = kafka, topic
        self.stop_event = threading.Event()
        self.at_s = array.array("d")
        self.sizes = array.array("q")
        self.error: str | None = None

    def run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        try:
            consumer = KafkaConsumer(**self.kafka.kafka_python(), group_id=None,
                                     enable_auto_commit=False, client_id="footfall-scale-changelog",
                                     fetch_max_bytes=16 * 1024 * 1024)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return
        try:
            while not self.stop_event.is_set():  # the worker creates the topic as it starts
                parts = consumer.partitions_for_topic(self.topic)
                if parts:
                    break
                consumer.topics()  # refresh metadata
                self.stop_event.wait(1.0)
            else:
                return
            consumer.assign([TopicPartition(self.topic, p) for p in sorted(parts)])
            consumer.seek_to_beginning()
            while not self.stop_event.is_set():
                for records in consumer.poll(timeout_ms=500, max_records=50_000).values():
                    for r in records:
                        self.at_s.append(r.timestamp / 1000)
                        self.sizes.append((r.serialized_key_size or 0) + max(r.serialized_value_size, 0))
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            logger.warning("changelog reader stopped: %s", self.error)
        finally:
            consumer.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)


class SimulatorProcess:
    """`footfall simulate` as a subprocess; its stderr is read to time its clock's start and keep its summary."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        from footfall.scripts.stack import _die_with_parent

        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent,
                                     text=True, bufsize=1)
        self.started_wall_s: float | None = None
        self.last_line = ""
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, name="scale-sim-stderr", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if self.started_wall_s is None and line.startswith("simulating "):
                self.started_wall_s = time.time()  # `_pump` takes its t0 right after printing this
                self.ready.set()
            self.last_line = line.strip()
            self.log.write(line)
            self.log.flush()
        self.ready.set()

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.reader.join(timeout=5)
        self.log.close()
        return self.proc.returncode


def _vm_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {"p50": round(rank(0.5), 1), "p99": round(rank(0.99), 1), "max": round(ordered[-1], 1)}


def _iso(ms: float) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_start_ms(now_ms: int, speed: float, minutes: float) -> int:
    """The latest 13:50 UTC whose simulated span (speed x minutes) ends before `now_ms` (less a minute).

    >>> _iso(default_start_ms(1_764_914_400_000, 12, 3))  # 2025-12-05T06:00Z: yesterday's
    '2025-12-04T13:50:00Z'
    """
    span_ms = speed * minutes * 60_000 + 60_000
    day = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).replace(hour=13, minute=50, second=0, microsecond=0)
    while day.timestamp() * 1000 + span_ms > now_ms:
        day -= dt.timedelta(days=1)
    return int(day.timestamp() * 1000)


def _rebalance_lines(log_text: str) -> tuple[int, list[str]]:
    """(group joins after the first, rebalance lines after the worker's first `Ready`)."""
    start = log_text.find(READY_LINE)
    after = log_text[start:] if start >= 0 else log_text
    joins = sum(1 for line in log_text.splitlines() if JOINED_LINE.search(line))
    lines = [line.strip()[:200] for line in after.splitlines() if REBALANCE_LINE.search(line)]
    return max(0, joins - 1), lines


# -- the run ---------------------------------------------------------------------------------------------


def run_scale(config: ScaleConfig, *, broker: str | None = None, redis_url: str | None = None,
              run_dir: Path | None = None, environ: dict[str, str] | None = None) -> ScaleReport:
    """Run one scale measurement; starts a local Kafka and/or Redis for what is not given.

    With `broker` given, `environ`'s `FOOTFALL_KAFKA_*` (TLS, SASL; default: the process's
    environment) apply to every Kafka client of the run, the worker's and the simulator's included;
    a broker the harness starts itself is spoken to in plain text.
    """
    from footfall.scripts.stack import LocalStack

    own_dir = run_dir is None
    run_path = Path(tempfile.mkdtemp(prefix="footfall-scale-")) if run_dir is None else run_dir
    run_path.mkdir(parents=True, exist_ok=True)
    report: ScaleReport | None = None
    security = kafka_security(os.environ if environ is None else environ) if broker is not None else {}
    try:
        with contextlib.ExitStack() as stack:
            if broker is None or redis_url is None:
                local = LocalStack(run_path / "stack", broker="kafka" if broker is None else "none",
                                   redis=redis_url is None, progress=logger.info)
                stack.enter_context(local)
                broker = broker or local.bootstrap
                redis_url = redis_url or local.redis_url
            report = _measure(config, broker, redis_url, run_path, security)
    finally:
        if own_dir and report is not None and report.error is None:
            shutil.rmtree(run_path, ignore_errors=True)
        else:
            logger.info("logs kept in %s", run_path)
    return report


def _measure(config: ScaleConfig, broker: str, redis_url: str, run_path: Path,
             security: dict[str, Any]) -> ScaleReport:
    import redis
    from kafka import KafkaConsumer, TopicPartition

    from footfall.scripts.bench import pipeline_process
    from footfall.stream.topics import ensure_topics

    prefix = f"scale-{secrets.token_hex(4)}"
    settings = Settings(broker=broker, redis_url=redis_url, topic_prefix=prefix, app_id=f"{prefix}-worker",
                        **security,
                        partitions=config.partitions, pseudonym_secret=secrets.token_hex(16), bucket_s=config.bucket_s,
                        data_dir=str(run_path / "data"), log_level="info",
                        **({} if config.checkpoint_interval_s is None
                           else {"checkpoint_interval_s": config.checkpoint_interval_s}))
    report = ScaleReport(config, broker, prefix)
    now_ms = int(time.time() * 1000)
    start_ms = config.start_ms if config.start_ms is not None else default_start_ms(now_ms, config.speed,
                                                                                   config.minutes)
    span_ms = round(config.speed * config.minutes * 60_000)
    if start_ms + span_ms > now_ms:
        raise ValueError(f"the simulated span {_iso(start_ms)} + {span_ms / 60_000:g} min ends in the future: "
                         "the simulator never runs ahead of the real clock; start earlier")
    report.sim_start, report.sim_end = _iso(start_ms), _iso(start_ms + span_ms)
    bucket_ms = config.bucket_s * 1000
    boundaries = list(range(start_ms - start_ms % bucket_ms + bucket_ms, start_ms + span_ms, bucket_ms))
    report.boundaries = [_iso(b) for b in boundaries]
    ensure_topics(settings)

    client = redis.Redis.from_url(redis_url)
    listener = LiveListener(redis_url, settings.redis_keys.live_channel("*"))
    listener.start()
    changelog = ChangelogReader(settings.kafka, f"{settings.app_id}-stores-changelog")
    changelog.start()
    offsets = KafkaConsumer(**settings.kafka.kafka_python(), group_id=None, enable_auto_commit=False,
                            client_id="footfall-scale-offsets")
    events_tps = [TopicPartition(settings.topic("events"), p) for p in range(config.partitions)]
    worker_log = run_path / "worker.log"
    worker = pipeline_process("c", settings, worker_log, config.profile_path).start()
    sim: SimulatorProcess | None = None
    measured_log_bytes = 0
    t0 = time.time()
    boundary_walls: list[float] = []
    try:
        deadline = time.monotonic() + config.startup_timeout_s
        while READY_LINE not in worker_log.read_text(errors="replace"):
            if worker.exited() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not get ready (exit {worker.exited()}); see {worker_log}")
            time.sleep(0.5)
        logger.info("worker ready (pid %d); simulating %d stores at %gx from %s for %g min of wall time",
                    worker.pid, config.stores, config.speed, report.sim_start, config.minutes)
        env = dict(os.environ)
        env.update(settings.to_env())
        cmd = [sys.executable, "-m", "footfall.scripts.cli", "--log-level", "warning", "simulate",
               "--stores", str(config.stores), "--speed", f"{config.speed:g}", "--start", report.sim_start,
               "--duration", f"{span_ms / 3_600_000:.6f}", "--seed", str(config.seed), "--progress-s", "10"]
        sim = SimulatorProcess(cmd, env, run_path / "simulator.log")
        if not sim.ready.wait(timeout=config.startup_timeout_s) or sim.started_wall_s is None:
            raise RuntimeError(f"the simulator did not start: {sim.last_line}")
        t0 = sim.started_wall_s
        boundary_walls += [t0 + (b - start_ms) / config.speed / 1000 for b in boundaries]
        end_wall = t0 + config.minutes * 60
        cpu_prev, t_prev = worker.cpu_s(), time.time()
        tick = 1.0
        while time.time() < end_wall:
            time.sleep(max(0.0, min(tick - (time.time() - t_prev), end_wall - time.time())))
            now = time.time()
            cpu = worker.cpu_s()
            if worker.exited() is not None:
                raise RuntimeError(f"the worker exited with {worker.exited()}; see {worker_log}")
            offered = sum(offsets.end_offsets(events_tps).values())
            applied = int(client.hget(settings.redis_key("stats"), "events") or 0)
            sample = {"t_s": round(now - t0, 2), "sim": _iso(start_ms + (now - t0) * 1000 * config.speed),
                      "cpu_pct": None if cpu is None or cpu_prev is None else round(100 * (cpu - cpu_prev)
                                                                                   / (now - t_prev), 1),
                      "rss_mb": _vm_rss_mb(worker.pid), "offered": offered, "applied": applied,
                      "live_records": len(listener.stale_ms)}
            report.samples.append(sample)
            cpu_prev, t_prev = cpu, now
            if len(report.samples) % 15 == 0:
                logger.info("t=%3.0f s sim %s cpu %s%% rss %.0f MB offered %d applied %d live records %d",
                            sample["t_s"], sample["sim"][11:16], sample["cpu_pct"], sample["rss_mb"] or 0, offered,
                            applied, sample["live_records"])
        measured_log_bytes = worker_log.stat().st_size
        report.wall_s = time.time() - t0
        report.rss_mb_peak = worker.peak_rss_mb()
        report.rss_mb_last = _vm_rss_mb(worker.pid)
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        logger.error("scale run failed: %s", report.error)
        report.wall_s = time.time() - t0
    finally:
        if sim is not None:
            sim.stop()
            report.simulator_summary = sim.last_line
        listener.stop()
        changelog.stop()
        report.worker_exit = _stop(worker)
        offsets.close()
        with contextlib.suppress(Exception):
            for key in client.scan_iter(settings.redis_keys.every_key_pattern(), count=1000):
                client.delete(key)
        client.close()
    _summarise(report, listener, changelog, boundary_walls, t0, config.window_s)
    text = worker_log.read_text(errors="replace")
    report.rebalances, report.rebalance_lines = _rebalance_lines(text[:measured_log_bytes] if measured_log_bytes
                                                                 else text)
    report.left_group = bool(report.rebalances or report.rebalance_lines)
    report.rebalance_lines = report.rebalance_lines[:10]
    with contextlib.suppress(OSError):
        report.loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return report


def _stop(worker: Any) -> int | None:
    """SIGTERM the worker's process group (SIGKILL after 60 s); its exit code."""
    proc = worker.proc
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill_now()
    return proc.returncode


def _summarise(report: ScaleReport, listener: LiveListener, changelog: ChangelogReader, boundary_walls: list[float],
               t0: float, window_s: float) -> None:
    samples = report.samples
    at, stale = list(listener.at_s), list(listener.stale_ms)
    report.live_records, report.bucket_records = len(stale), listener.buckets
    report.stores_in_redis = len(listener.stores)
    report.stale_ms = _percentiles(stale)
    near = [s for a, s in zip(at, stale, strict=True) if any(abs(a - b) <= window_s for b in boundary_walls)]
    report.stale_boundary_ms, report.stale_boundary_n = _percentiles(near), len(near)
    cpus = [s["cpu_pct"] for s in samples if s["cpu_pct"] is not None]
    if cpus:
        report.cpu_pct_mean, report.cpu_pct_max = round(sum(cpus) / len(cpus), 1), max(cpus)
    if samples:
        first, last = samples[0], samples[-1]
        report.offered_events, report.applied_events = last["offered"], last["applied"]
        span = max(last["t_s"] - first["t_s"], 1e-9)
        report.offered_per_s = round((last["offered"] - first["offered"]) / span, 1)
        report.applied_per_s = round((last["applied"] - first["applied"]) / span, 1)
        backlogs = [s["offered"] - s["applied"] for s in samples]
        report.backlog_events_max, report.backlog_events_end = max(backlogs), backlogs[-1]
        # Consumer lag in time: per sample, how long ago the events now applied had all been offered.
        lags, j = [], 0
        for sample in samples:
            while j < len(samples) and samples[j]["offered"] < sample["applied"]:
                j += 1
            lags.append(max(0.0, sample["t_s"] - samples[min(j, len(samples) - 1)]["t_s"]))
        report.lag_s_p99, report.lag_s_max = _percentiles(lags)["p99"], round(max(lags), 1)
    c_at, c_size = list(changelog.at_s), list(changelog.sizes)
    end = t0 + report.wall_s
    inside = [(a, n) for a, n in zip(c_at, c_size, strict=True) if t0 <= a <= end]
    report.changelog_records, report.changelog_bytes = len(inside), sum(n for _, n in inside)
    report.changelog_bytes_per_boundary = [sum(n for a, n in inside if abs(a - b) <= window_s)
                                           for b in boundary_walls]
    outside = [n for a, n in inside if all(abs(a - b) > window_s for b in boundary_walls)]
    covered = sum(min(b + window_s, end) - max(b - window_s, t0) for b in boundary_walls)
    outside_s = report.wall_s - covered
    report.changelog_bytes_per_s_outside = round(sum(outside) / outside_s, 1) if outside_s > 5 else None


# -- output ----------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _row(label: str, *values: float | None) -> str:
    return f"{label:<40} {' / '.join(_ms(v) for v in values):>14}"


def format_report(report: ScaleReport) -> str:
    c = report.config
    s, b = report.stale_ms, report.stale_boundary_ms
    lines = [
        f"footfall scale: {c.stores:,} stores at {c.speed:g}x for {report.wall_s:.0f} s of wall time, one worker "
        f"(prefix {report.prefix}, broker {report.broker})",
        f"simulated {report.sim_start} .. {report.sim_end}; bucket boundaries passed: "
        f"{', '.join(x[11:16] for x in report.boundaries) or 'none'} (window +-{c.window_s:g} s)",
        "",
        f"{'measure':<40} {'value':>14}",
        f"{'live records received':<40} {report.live_records:>14,}",
        f"{'stores seen live':<40} {report.stores_in_redis:>14,}",
        _row("staleness p50 / p99 / max (ms)", s.get("p50"), s.get("p99"), s.get("max")),
        _row("  near boundaries p50 / p99 / max (ms)", b.get("p50"), b.get("p99"), b.get("max"))
        + f"  ({report.stale_boundary_n:,} records)",
        _row("worker CPU mean / max (% of one core)", report.cpu_pct_mean, report.cpu_pct_max),
        _row("worker RSS peak / at end (MB)", report.rss_mb_peak, report.rss_mb_last),
        _row("events/s offered / applied", report.offered_per_s, report.applied_per_s),
        f"{'events offered / applied (total)':<40} {report.offered_events:,} / {report.applied_events:,}",
        f"{'worker backlog max / at end (events)':<40} {report.backlog_events_max:,} / {report.backlog_events_end:,}",
        _row("applied lag p99 / max (s, 1 s samples)", report.lag_s_p99, report.lag_s_max),
        f"{'changelog bytes (records) in the run':<40} {report.changelog_bytes:>14,}  ({report.changelog_records:,})",
        f"{'changelog bytes per boundary (+-window)':<40} "
        f"{', '.join(f'{x:,}' for x in report.changelog_bytes_per_boundary) or '-'}",
        f"{'changelog bytes/s away from boundaries':<40} {_ms(report.changelog_bytes_per_s_outside):>14}",
        f"{'rebalances / left its group':<40} {report.rebalances:>7} / {'YES' if report.left_group else 'no'}",
    ]
    lines += [f"    {line}" for line in report.rebalance_lines]
    lines.append(f"target (10k stores, 12x, <= 2 GB RSS, p99 < 2 s, never evicted): {report.target_verdict()}")
    if report.simulator_summary:
        lines.append(f"simulator: {report.simulator_summary}")
    lines.append(f"load average at end: {report.loadavg}")
    if report.error:
        lines.append(f"ERROR: {report.error}")
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "scale", help="N simulated stores live at S x speed into one worker: staleness, CPU, RSS, changelog",
        description=__doc__.split("Examples")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stores", type=int, default=1000, help="simulated stores (default 1000)")
    parser.add_argument("--speed", type=float, default=12.0, help="simulated seconds per real second (default 12)")
    parser.add_argument("--minutes", type=float, default=3.0, help="wall-clock minutes to run (default 3)")
    parser.add_argument("--bucket-s", type=int, default=900, help="the worker's bucket length (default 900)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    parser.add_argument("--start", help="simulated start, ISO 8601 (default: the latest 13:50 UTC whose span ends "
                        "in the past)")
    parser.add_argument("--window-s", type=float, default=30.0,
                        help="wall seconds either side of a bucket boundary counted as 'near' it (default 30)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the events topic (default 4)")
    parser.add_argument("--broker", help="use this Kafka (host:port) instead of starting one; FOOTFALL_KAFKA_* "
                        "(TLS, SASL) then apply to every client of the run")
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--run-dir", type=Path,
                        help="keep logs here (default: a temp folder, removed if the run succeeded)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the summary (with samples) as JSON")
    parser.add_argument("--checkpoint-interval-s", type=float, metavar="S",
                        help="the worker's FOOTFALL_CHECKPOINT_INTERVAL_S (default: the worker's default)")
    parser.add_argument("--profile", type=Path, metavar="PATH",
                        help="run the worker under cProfile (main thread) and write its profile here when it stops")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """`footfall scale`: 0 when the run completed (whatever its figures), 1 when it failed, 2 on bad options."""
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        start_ms = None
        if args.start:
            parsed = dt.datetime.fromisoformat(args.start)
            start_ms = int((parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp() * 1000)
        config = ScaleConfig(stores=args.stores, speed=args.speed, minutes=args.minutes, bucket_s=args.bucket_s,
                             seed=args.seed, start_ms=start_ms, partitions=args.partitions, window_s=args.window_s,
                             profile_path=args.profile, checkpoint_interval_s=args.checkpoint_interval_s)
        report = run_scale(config, broker=args.broker, redis_url=args.redis_url, run_dir=args.run_dir)
    except ValueError as exc:
        print(f"footfall scale: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    doc = report.to_json()
    summary = {k: v for k, v in doc.items() if k != "samples"}
    print(json.dumps(summary, default=str))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return 1 if report.error else 0
