"""`footfall stack`: a local broker and Redis that outlive the command, and a broker check.

`up` starts a detached `LocalStack` (Apache Kafka or Tansu, and Redis) and
records it in `<run-dir>/stack.json`; `down` stops what is recorded there;
`status` tells whether each recorded process lives and answers; `check` runs
`brokercheck.run_checks` against a broker and exits 1 when one check fails.

Examples
--------
::

    eval "$(footfall stack up)"      # starts Kafka + Redis, exports FOOTFALL_BROKER / FOOTFALL_REDIS_URL
    footfall stack status
    footfall stack check             # the recorded broker, else FOOTFALL_BROKER
    footfall stack down

"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import sys
import textwrap
from pathlib import Path

from footfall.scripts import brokercheck
from footfall.scripts.stack import TANSU_WARNING, LocalStack, StackError, _alive, read_state, stop_recorded
from footfall.stream.preflight import redact

__all__ = ["register"]

logger = logging.getLogger(__name__)

DEFAULT_RUN_DIR = "run/stack"
#: How long `status` waits for a service to answer.
PROBE_TIMEOUT_S = 3.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `footfall stack` and its actions `up`, `down`, `status`, `check`."""
    parser = subparsers.add_parser(
        "stack", help="start, stop, inspect and check a local broker + Redis",
        description="A local broker (Apache Kafka or Tansu) and Redis on loopback and free ports, started "
        "detached and recorded in <run-dir>/stack.json; and a check of what footfall needs from a broker.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    up = actions.add_parser(
        "up", help="start a detached broker and Redis",
        description="Start a broker and Redis that keep running after this command, and print the "
        "FOOTFALL_BROKER / FOOTFALL_REDIS_URL exports to use them (stdout is eval-able).",
    )
    up.add_argument("--broker", choices=("kafka", "tansu"), default="kafka",
                    help="kafka: Apache Kafka (default); tansu: no JVM, but wrong end offsets (see `stack check`)")
    _add_run_dir(up)
    up.add_argument("--no-redis", action="store_true", help="start the broker only")
    up.add_argument("--secure", action="store_true",
                    help="Kafka on SASL_SSL (SCRAM-SHA-512) and Redis on TLS with an ACL user; certificates and "
                    "passwords made fresh, the clients' FOOTFALL_* settings in <run-dir>/client.env (0600)")
    up.set_defaults(func=run_up)

    down = actions.add_parser("down", help="stop the recorded stack",
                              description="Stop the processes recorded in <run-dir>/stack.json.")
    _add_run_dir(down)
    down.set_defaults(func=run_down)

    status = actions.add_parser(
        "status", help="show the recorded services and whether they answer",
        description="For each service recorded in <run-dir>/stack.json: its pid, whether it lives, and whether "
        "it answers (broker: metadata request; Redis: PING). Exit 0 when all do, 1 otherwise.",
    )
    _add_run_dir(status)
    status.set_defaults(func=run_status)

    check = actions.add_parser(
        "check", help="check that a broker does what footfall relies on",
        description="Run the broker semantics checks (end offsets after multi-record batches, compacted "
        "changelog topics, consumer group rebalancing and committed offsets) on uuid-named topics, print a "
        "report, and exit 0 when every check passes, 1 otherwise.",
    )
    check.add_argument("--bootstrap", metavar="HOST:PORT", default=None,
                       help="broker to check (default: the broker recorded in --run-dir, else FOOTFALL_BROKER)")
    _add_run_dir(check)
    check.add_argument("--topic-prefix", default=None,
                       help="prefix of the temporary check topics (default: footfall)")
    check.set_defaults(func=run_check)


def _add_run_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", type=Path, default=Path(DEFAULT_RUN_DIR),
                        help=f"where stack.json, logs and data live (default: {DEFAULT_RUN_DIR})")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _quiet_clients(level: int) -> None:
    """Raise the Kafka clients' log level to `level` unless footfall runs with --log-level debug.

    Their INFO lines (connections, metadata), the refused connections while a broker starts,
    and the warnings about the rebalances and retries the checks provoke on purpose would
    drown the tool's own output; each command reports real failures itself.
    """
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in ("kafka", "aiokafka"):
            logging.getLogger(name).setLevel(level)


def _warning_box(text: str) -> str:
    lines = textwrap.wrap(text, 86)
    rule = "!" * 92
    return "\n".join([rule, *(f"!! {line:<86} !!" for line in lines), rule])


# -- up / down --------------------------------------------------------------------------------


def run_up(args: argparse.Namespace) -> int:
    """Start a detached stack in `args.run_dir`; refuse when one is already running there."""
    run_dir: Path = args.run_dir
    recorded = read_state(run_dir)
    running = {name: svc for name, svc in recorded.items() if _alive(svc["pid"])}
    if running:
        listed = ", ".join(f"{name} (pid {svc['pid']}, {svc['url']})" for name, svc in running.items())
        print(f"a stack is already running in {run_dir}: {listed}\n"
              f"stop it first: footfall stack down --run-dir {run_dir}", file=sys.stderr)
        return 1
    if recorded:
        _progress(f"{run_dir}/stack.json records services that are no longer running; starting afresh")
        with contextlib.suppress(FileNotFoundError):
            (run_dir / "stack.json").unlink()

    def progress(message: str) -> None:
        if TANSU_WARNING not in message:  # shown boxed at the end instead, where it is seen
            _progress(message)

    _quiet_clients(logging.CRITICAL)  # "connection refused" until the broker listens; start() reports real failures
    stack = LocalStack(run_dir, broker=args.broker, redis=not args.no_redis, attached=False, secure=args.secure,
                       progress=progress)
    try:
        stack.start()
    except StackError as exc:
        print(f"footfall stack up: {exc}", file=sys.stderr)
        return 1

    broker = stack.services["broker"]
    if args.secure:  # secrets stay in the private file: stdout sources it rather than printing them
        env_file = run_dir.resolve() / "client.env"
        print(f"# broker: {stack.bootstrap} (Apache Kafka, SASL_SSL SCRAM-SHA-512, pid {broker.pid})")
        if "redis" in stack.services:
            print(f"# redis:  {redact(stack.redis_url)} (TLS, ACL user; pid {stack.services['redis'].pid})")
        print(f"# the clients' settings, passwords and CA file: {env_file} (readable by you only)")
        print(f"# logs in {run_dir / 'logs'}; stop with: footfall stack down --run-dir {run_dir}")
        print(f"set -a; . {shlex.quote(str(env_file))}; set +a")
        return 0
    exports = [f"FOOTFALL_BROKER={stack.bootstrap}"]
    # stdout is shell: comments and one export line, so `eval "$(footfall stack up)"` works.
    print(f"# broker: {stack.bootstrap} ({broker.name}, pid {broker.pid})")
    if "redis" in stack.services:
        print(f"# redis:  {stack.redis_url} (pid {stack.services['redis'].pid})")
        exports.append(f"FOOTFALL_REDIS_URL={stack.redis_url}")
    print(f"# logs in {run_dir / 'logs'}; stop with: footfall stack down --run-dir {run_dir}")
    if args.broker == "tansu":
        print("# WARNING: Tansu loses table counts on worker restarts; see `footfall stack check`")
    print(f"export {' '.join(exports)}")
    if args.broker == "tansu":
        _progress(_warning_box(f"WARNING: {TANSU_WARNING}"))
    return 0


def run_down(args: argparse.Namespace) -> int:
    """Stop the processes recorded in `args.run_dir`."""
    run_dir: Path = args.run_dir
    recorded = read_state(run_dir)
    if not recorded:
        print(f"no stack recorded in {run_dir}")
        return 0
    stopped = stop_recorded(run_dir)
    for name, svc in recorded.items():
        verb = "stopped" if name in stopped else "was not running"
        print(f"{name:<7} {svc['name']:<6} pid {svc['pid']:<8} {verb}")
    return 0


# -- status -----------------------------------------------------------------------------------


def run_status(args: argparse.Namespace) -> int:
    """Show each recorded service: pid, alive, answering. Exit 0 when all live and answer."""
    run_dir: Path = args.run_dir
    recorded = read_state(run_dir)
    if not recorded:
        print(f"no stack recorded in {run_dir} (start one with: footfall stack up --run-dir {run_dir})")
        return 1
    healthy = True
    _quiet_clients(logging.CRITICAL)  # a service that does not answer is reported in the table
    print(f"{'service':<8} {'kind':<6} {'pid':>8}  {'process':<7}  {'answers':<7}  url / detail")
    for name, svc in recorded.items():
        alive = _alive(svc["pid"])
        if not alive:
            answers, detail = False, "process gone"
        elif name == "redis":
            answers, detail = probe_redis(svc["url"])
        else:
            answers, detail = probe_broker(svc["url"], security=_recorded_security(run_dir))
        healthy = healthy and alive and answers
        print(f"{name:<8} {svc['name']:<6} {svc['pid']:>8}  {'alive' if alive else 'dead':<7}  "
              f"{'yes' if answers else 'no':<7}  {redact(svc['url'])} ({detail})")
    return 0 if healthy else 1


def _recorded_security(run_dir: Path) -> dict:
    """The Kafka security options of a secured stack recorded in `run_dir` (none for a plain one)."""
    env_file = run_dir / "client.env"
    if not env_file.exists():
        return {}
    from footfall.stream.settings import Settings

    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return Settings.from_env(env).kafka.security()


def probe_broker(bootstrap: str, timeout_s: float = PROBE_TIMEOUT_S, security: dict | None = None) -> tuple[bool, str]:
    """Whether a broker at `bootstrap` answers a metadata request within `timeout_s`, and what it said."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> str:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000),
                                    **(security or {}))
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            return f"metadata: {len(cluster.get('brokers', []))} broker(s)"
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    try:
        return True, asyncio.run(asyncio.wait_for(probe(), timeout=timeout_s))
    except Exception as exc:  # any failure to answer is the answer "no"
        return False, f"no metadata: {type(exc).__name__}: {exc}".rstrip(": ")


def probe_redis(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Whether Redis at `url` answers PING within `timeout_s`."""
    import redis

    try:
        with redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s) as client:
            return bool(client.ping()), "PONG"
    except Exception as exc:  # any failure to answer is the answer "no"
        return False, f"no PONG: {type(exc).__name__}: {exc}"


# -- check ------------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    """Run the broker checks, print the report; 0 when all pass, 1 when one fails, 2 on bad settings."""
    from footfall.stream.settings import Settings, SettingsError, kafka_security

    # How to speak to the broker: FOOTFALL_KAFKA_* (default plain text), or a recorded secured stack's client.env.
    bootstrap, source, environ = args.bootstrap, "--bootstrap", dict(os.environ)
    if bootstrap is None:
        broker = read_state(args.run_dir).get("broker")
        if broker is not None:
            bootstrap, source = broker["url"], f"recorded in {args.run_dir}/stack.json ({broker['name']})"
            client_env = Path(args.run_dir) / "client.env"
            if client_env.exists():
                environ = dict(line.split("=", 1) for line in client_env.read_text().splitlines() if "=" in line)
        else:
            try:
                bootstrap, source = Settings.from_env(os.environ).broker, "FOOTFALL_BROKER or its default"
            except SettingsError as exc:
                print(f"footfall stack check: {exc}", file=sys.stderr)
                return 2
    try:
        kafka = Settings(broker=bootstrap, **kafka_security(environ)).kafka
    except SettingsError as exc:
        print(f"footfall stack check: {exc}", file=sys.stderr)
        return 2
    _progress(f"broker {bootstrap} ({source}) over {kafka.protocol}")
    _quiet_clients(logging.ERROR)
    results = brokercheck.run_checks(bootstrap, topic_prefix=args.topic_prefix, progress=_progress, kafka=kafka)
    print(brokercheck.format_report(results))
    return 0 if all(result.ok for result in results) else 1
