"""`footfall demo`: broker + Redis + worker + simulator + dashboard, with live per-store lines.

Starts (unless told to use running services) Apache Kafka and Redis on free
loopback ports, the footfall worker, the store simulator and the live dashboard
page (whose URL it prints), then prints a live table of every store's current
bucket from Redis pub/sub until Ctrl-C or `--duration`. Everything it started
is stopped on the way out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from footfall.schemas.keys import CHAIN, RedisKeys

__all__ = ["register", "run"]


def demo_start(now: dt.datetime) -> str:
    """Where the simulated clock starts: 09:00 UTC of the latest weekday before today.

    The simulator's own default, one day back, fell on a Sunday every Monday: the European and
    American stores are closed, and at the demo's speed nothing came for up to 8 minutes (at 600x,
    the test's speed, for over a minute). At 09:00 UTC the Paris and London stores are open.

    >>> demo_start(dt.datetime(2026, 12, 7, 6, 43, tzinfo=dt.UTC))  # a Monday: the Friday before
    '2026-12-04T09:00:00Z'
    >>> demo_start(dt.datetime(2026, 12, 9, 23, 0, tzinfo=dt.UTC))  # a Wednesday: Tuesday
    '2026-12-08T09:00:00Z'

    """
    day = now.date() - dt.timedelta(days=1)
    while day.weekday() >= 5:  # Saturday, Sunday
        day -= dt.timedelta(days=1)
    return f"{day.isoformat()}T09:00:00Z"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the whole thing locally: Kafka + Redis + worker + simulator, with live output",
        description="Start Apache Kafka (KRaft, from Maven Central) and Redis on free loopback ports, the footfall "
        "worker and a store simulator, and print live per-store aggregates from Redis. Ctrl-C stops everything.",
    )
    parser.add_argument("--broker", choices=("kafka", "tansu"), default="kafka",
                        help="broker to start (default kafka; tansu: no JVM, but loses state on restart)")
    parser.add_argument("--use-running", action="store_true",
                        help="use FOOTFALL_BROKER / FOOTFALL_REDIS_URL instead of starting a stack")
    parser.add_argument("--run-dir", default="run/demo", help="logs and data (default run/demo)")
    parser.add_argument("--stores", type=int, default=12, help="simulated stores (default 12, all verticals)")
    parser.add_argument("--speed", type=float, default=96.0,
                        help="simulated seconds per real second (default 96: a day in 15 minutes)")
    parser.add_argument("--malformed-fraction", type=float, default=0.01,
                        help="fraction of malformed events the simulator sends (default 0.01)")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: Ctrl-C)")
    parser.add_argument("--every", type=float, default=3.0, help="seconds between live tables (default 3)")
    parser.add_argument("--show", type=int, default=15, help="stores per table (default 15)")
    parser.add_argument("--dashboard-port", type=int, default=8765,
                        help="port of the live dashboard page on 127.0.0.1 (default 8765, a free one if taken; "
                        "0: no dashboard)")
    parser.set_defaults(func=run)


class LiveBoard:
    """The latest record per store, fed by Redis pub/sub on `<p>:live:*`."""

    def __init__(self, redis_url: str, keys: RedisKeys) -> None:
        import redis

        self.client = redis.Redis.from_url(redis_url)
        self.keys = keys
        self.latest: dict[str, dict[str, Any]] = {}  # newest bucket record per store
        self.live: dict[str, dict[str, Any]] = {}  # newest live record per store
        self.updates = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe(self.keys.live_channel("*"))
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=0.5)
            if message and message["type"] == "pmessage":
                record = orjson.loads(message["data"])
                with self._lock:
                    target = self.live if record.get("type") == "live" else self.latest
                    target[record["store_id"]] = record
                    self.updates += 1
        pubsub.close()

    def table(self, show: int) -> str:
        with self._lock:
            records = sorted(self.latest.values(), key=lambda r: r["store_id"])
            live = dict(self.live)
            updates = self.updates
        stats = {k.decode(): int(v) for k, v in self.client.hgetall(self.keys.stats).items()}
        dead = {k.decode(): int(v) for k, v in self.client.hgetall(self.keys.dead_letter_counts).items()}
        lines = [
            f"-- {time.strftime('%H:%M:%S')}  events counted {stats.get('events', 0):,}  "
            f"dead-lettered {sum(dead.values()):,} {dict(sorted(dead.items())) if dead else ''}  "
            f"late {stats.get('late', 0)}  updates pushed {updates:,}",
            f"{'store':<13} {'vertical':<8} {'bucket (UTC)':<17} {'in':>5} {'out':>5} {'sales':>6} {'revenue':>9} "
            f"{'tickets':>7} {'served':>6} {'abandon':>7} {'in 15m':>6} {'inside':>6} {'waiting':>7}",
        ]
        for r in records[:show]:
            now = live.get(r["store_id"], {})
            in_15m = (now.get("windows") or {}).get("15m", {}).get("arrivals", "-")
            inside = (now.get("occupancy") or {}).get("occupancy", "-")
            waiting = ((now.get("queue") or {}).get("total") or {}).get("waiting_now", "-")
            lines.append(
                f"{r['store_id']:<13} {r.get('vertical') or '-':<8} {r['bucket_start'][:16]:<17} {r['arrivals']:>5} "
                f"{r['departures']:>5} {r['transactions']:>6} {r['sales']:>9.2f} {r['tickets_issued']:>7} "
                f"{r['tickets_served']:>6} {r['tickets_abandoned']:>7} {in_15m:>6} {inside:>6} {waiting:>7}"
            )
        if len(records) > show:
            lines.append(f"... and {len(records) - show} more stores")
        return "\n".join(lines)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.client.close()


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen | None, name: str, timeout_s: float = 30.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop within {timeout_s:.0f} s: killing it", file=sys.stderr)
        proc.kill()
        proc.wait(timeout=10)


def _dashboard_port(wanted: int) -> int:
    """`wanted` if it is free on loopback, else a free port."""
    from footfall.scripts.dashboard import port_is_free
    from footfall.scripts.stack import free_port

    return wanted if port_is_free("127.0.0.1", wanted) else free_port()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from footfall.scripts.stack import LocalStack, StackError
    from footfall.stream.settings import Settings, SettingsError
    from footfall.stream.topics import ensure_topics

    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    stack: LocalStack | None = None
    worker = simulator = dashboard = None
    board: LiveBoard | None = None
    # SIGTERM ends the demo as Ctrl-C does, so everything below is cleaned up.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.use_running:
            base = Settings.from_env(os.environ)
            broker, redis_url = base.broker, base.redis_url
        else:
            print(f"starting the local stack in {run_dir} ...", file=sys.stderr)
            stack = LocalStack(run_dir / "stack", broker=args.broker, progress=lambda m: print(m, file=sys.stderr))
            stack.start()
            broker, redis_url = stack.bootstrap, stack.redis_url
        secret_file = run_dir / "pseudonym-secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_hex(24))
            secret_file.chmod(0o600)
        settings = Settings.from_env(
            os.environ, broker=broker, redis_url=redis_url, pseudonym_secret=secret_file.read_text().strip(),
        )
        ensure_topics(settings)
        env = {**os.environ, **settings.to_env()}
        cli = [sys.executable, "-m", "footfall.scripts.cli"]
        worker = _spawn([*cli, "worker"], env, run_dir / "logs" / "worker.log")
        simulator = _spawn(
            [*cli, "simulate", "--stores", str(args.stores), "--speed", str(args.speed),
             "--malformed-fraction", str(args.malformed_fraction), "--start", demo_start(dt.datetime.now(dt.UTC))],
            env, run_dir / "logs" / "simulator.log",
        )
        dashboard_line = ""
        if args.dashboard_port:
            port = _dashboard_port(args.dashboard_port)
            dashboard = _spawn([*cli, "dashboard", "--host", "127.0.0.1", "--port", str(port)], env,
                               run_dir / "logs" / "dashboard.log")
            dashboard_line = f"\n  dashboard   http://127.0.0.1:{port}/  (live page: every store, alerts, forecasts)"
        keys = settings.redis_keys
        channels = " ".join(f"'{c}'" for c in (keys.live_channel("*"), keys.forecast_channel("*"),
                                                keys.alerts_channel))
        print(
            f"""
footfall demo is running ({'Apache Kafka' if args.broker == 'kafka' else 'Tansu'} at {broker}, Redis at {redis_url}).
Where to look:{dashboard_line}
  topics      {settings.topic('events')} -> {settings.topic('aggregates')}, {settings.topic('predictions')},
              {settings.topic('alerts')}, {settings.topic('staffing')}, {settings.topic('dead-letter')}
  redis       redis-cli -u {redis_url} hgetall {keys.store_latest('retail-001')}
              redis-cli -u {redis_url} hgetall {keys.store_live('retail-001')}
              redis-cli -u {redis_url} hget {keys.store_forecast('retail-001')} arrivals
              redis-cli -u {redis_url} hgetall {keys.rollup_live('chain', CHAIN)}
              redis-cli -u {redis_url} psubscribe {channels}
              redis-cli -u {redis_url} hgetall {keys.dead_letter_counts}
  alerts      FOOTFALL_BROKER={broker} FOOTFALL_REDIS_URL={redis_url} footfall alerts --follow
  logs        {run_dir / 'logs'} (worker.log, simulator.log, dashboard.log, kafka.log, redis.log)
Ctrl-C stops everything.
""",
            flush=True,
        )
        board = LiveBoard(redis_url, keys)
        started = time.monotonic()
        while not args.duration or time.monotonic() - started < args.duration:
            time.sleep(args.every)
            if dashboard is not None and dashboard.poll() is not None:
                print(f"the dashboard exited with code {dashboard.returncode}; see "
                      f"{run_dir / 'logs' / 'dashboard.log'}", file=sys.stderr)
                dashboard = None
            if worker.poll() is not None:
                print(f"the worker exited with code {worker.returncode}; see {run_dir / 'logs' / 'worker.log'}",
                      file=sys.stderr)
                return 1
            print(board.table(args.show), flush=True)
        return 0
    except KeyboardInterrupt:
        print("\nstopping ...", file=sys.stderr)
        return 0
    except (StackError, SettingsError, RuntimeError) as exc:
        print(f"footfall demo: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if board is not None:
            board.close()
        _stop(dashboard, "dashboard")
        _stop(simulator, "simulator")
        _stop(worker, "worker")
        if stack is not None:
            stack.stop()
