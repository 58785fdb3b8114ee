"""`footfall alerts`: the open alerts now, or (`--follow`) every alert change as it happens.

Without `--follow` it reads the open alerts from Redis (`<p>:store:<id>:alerts`) and
exits. With `--follow` it consumes the alerts topic (`<p>.alerts`) from its end
(`--from-beginning`: from its start) and prints each change: opened, updated,
resolved. `--json` prints one JSON object per line (the record as published),
for scripts; otherwise one line for people:

    2026-11-25 14:30 Europe/London  OPENED    critical  retail-001  arrivals_high  arrivals 312, expected 120-180

Examples
--------
::

    footfall alerts                        # open alerts now
    footfall alerts --follow               # live, until Ctrl-C
    footfall alerts --follow --json --store bank-002 --max 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import zoneinfo
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

import orjson

__all__ = ["format_alert", "register", "run"]


def format_alert(record: Mapping[str, Any]) -> str:
    """One line for people: when (store's local time), what happened, how bad, where, and why.

    >>> print(format_alert({"state": "opened", "severity": "critical", "store_id": "retail-001",
    ...     "kind": "arrivals_high", "tz": "Europe/London", "updated_ms": 1_795_617_000_000,
    ...     "explanation": "arrivals 312, expected 120-180"}))
    2026-11-25 14:30 Europe/London  OPENED    critical  retail-001  arrivals_high  arrivals 312, expected 120-180

    """
    tz = record.get("tz") or "UTC"
    try:
        zone = zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone, tz = zoneinfo.ZoneInfo("UTC"), "UTC"
    when = dt.datetime.fromtimestamp(int(record.get("updated_ms") or 0) / 1000, zone)
    return (f"{when:%Y-%m-%d %H:%M} {tz}  {str(record.get('state', '?')).upper():<8}  "
            f"{record.get('severity', '?'):<8}  {record.get('store_id', '?')}  {record.get('kind', '?')}  "
            f"{record.get('explanation', '')}")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "alerts", help="show open alerts, or follow alert changes live",
        description="Print the open alerts (from Redis), or with --follow every alert change as the worker "
        "publishes it (from the alerts topic). Uses FOOTFALL_BROKER, FOOTFALL_REDIS_URL and FOOTFALL_TOPIC_PREFIX.",
    )
    parser.add_argument("--follow", action="store_true", help="keep printing alert changes as they come")
    parser.add_argument("--json", action="store_true", help="one JSON object per line (for scripts)")
    parser.add_argument("--store", help="only this store's alerts")
    parser.add_argument("--from-beginning", action="store_true",
                        help="with --follow: start from the oldest change the topic holds, not from now")
    parser.add_argument("--max", type=int, default=0, metavar="N", help="with --follow: stop after N changes")
    parser.add_argument("--timeout-s", type=float, default=0.0,
                        help="with --follow: stop after this many seconds (0: never)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from footfall.stream.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"footfall alerts: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    try:
        if not args.follow:
            return _print_open(settings, args, out)
        printed = 0
        for record in _follow(settings, args.from_beginning, args.timeout_s):
            if args.store and record.get("store_id") != args.store:
                continue
            _print(record, args.json, out)
            printed += 1
            if args.max and printed >= args.max:
                break
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the broker or Redis: say which, no traceback
        print(f"footfall alerts: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _print(record: Mapping[str, Any], as_json: bool, out: TextIO) -> None:
    out.write((orjson.dumps(record).decode() if as_json else format_alert(record)) + "\n")
    out.flush()


def _print_open(settings: Any, args: argparse.Namespace, out: TextIO) -> int:
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    pattern = settings.redis_keys.store_pattern("alerts", args.store or "*")
    records = []
    for key in client.scan_iter(match=pattern, count=500):
        records += [orjson.loads(v) for v in client.hvals(key)]
    records.sort(key=lambda r: (r.get("updated_ms", 0), r.get("store_id", "")))
    for record in records:
        _print(record, args.json, out)
    if not args.json:
        print(f"{len(records)} open alert(s)", file=sys.stderr)
    return 0


def _follow(settings: Any, from_beginning: bool, timeout_s: float) -> Iterator[dict[str, Any]]:
    from kafka import KafkaConsumer, TopicPartition

    from footfall.scripts.producer import quiet_client_logs

    quiet_client_logs()
    topic = settings.topic("alerts")
    # Every partition assigned by hand, no consumer group: nothing to join (ready at once), no offsets kept.
    consumer = KafkaConsumer(bootstrap_servers=settings.broker, enable_auto_commit=False, consumer_timeout_ms=500)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise RuntimeError(f"no topic {topic} on {settings.broker} (has a worker run with this prefix?)")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        if from_beginning:
            consumer.seek_to_beginning(*assigned)
        else:
            consumer.seek_to_end(*assigned)
            for tp in assigned:
                consumer.position(tp)  # fix "now" before anything is printed
        print(f"following {topic} on {settings.broker} from {'its start' if from_beginning else 'now'} "
              "(Ctrl-C to stop)", file=sys.stderr, flush=True)
        deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
        while deadline is None or time.monotonic() < deadline:
            for message in consumer:  # returns after consumer_timeout_ms without a message
                try:
                    yield orjson.loads(message.value)
                except orjson.JSONDecodeError:
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    return
    finally:
        consumer.close()
