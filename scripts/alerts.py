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
    FOOTFALL_WEBHOOK_SECRET=... footfall alerts --webhook https://ops.example/hooks/footfall
    footfall alerts --webhook https://ops.example/hooks/staffing --kind staffing --secret-file /etc/footfall/hook.key

With `--webhook URL` it forwards every change (with `--kind staffing`: every staffing record of
`<p>.staffing`) to the URL as a signed JSON POST, with retries and a dead-letter file, keeping its
place in the topic in its own consumer group: see `footfall.scripts.webhooks`.
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
    parser.add_argument("--store", action="append", default=[], metavar="STORE",
                        help="only this store's alerts (repeat for several)")
    parser.add_argument("--from-beginning", action="store_true",
                        help="with --follow: start from the oldest change the topic holds, not from now")
    parser.add_argument("--max", type=int, default=0, metavar="N", help="with --follow: stop after N changes")
    parser.add_argument("--timeout-s", type=float, default=0.0,
                        help="with --follow or --webhook: stop after this many seconds (0: never)")
    hook = parser.add_argument_group(
        "webhook", "forward each change as a signed JSON POST (implies following the topic; see README "
        "'Exports and webhooks')")
    hook.add_argument("--webhook", metavar="URL", help="POST every change to this http(s) URL")
    hook.add_argument("--kind", choices=("alerts", "staffing"), default="alerts",
                      help="with --webhook: which records: alert changes (<p>.alerts, default) or staffing "
                      "advice (<p>.staffing)")
    hook.add_argument("--secret-file", metavar="PATH",
                      help="file holding the HMAC-SHA256 signing secret (else $FOOTFALL_WEBHOOK_SECRET)")
    hook.add_argument("--unsigned", action="store_true", help="send without a signature (no secret needed)")
    hook.add_argument("--group-id", help="consumer group keeping the forwarder's place "
                      "(default <topic>-webhook-<hash of the URL>)")
    hook.add_argument("--dead-letter-file", metavar="PATH",
                      help="JSONL file for changes never delivered (default "
                      "$XDG_STATE_HOME/footfall/webhooks/<group id>.dead-letter.jsonl, ~/.local/state when unset)")
    hook.add_argument("--retry-for-s", type=_positive, default=600.0, metavar="S",
                      help="keep retrying one change this long before dead-lettering it (default 600)")
    hook.add_argument("--backoff-base-s", type=_positive, default=0.5, metavar="S",
                      help="first retry after about this long, doubling each time (default 0.5)")
    hook.add_argument("--backoff-max-s", type=_positive, default=30.0, metavar="S",
                      help="longest wait between two attempts (default 30)")
    hook.add_argument("--request-timeout-s", type=_positive, default=10.0, metavar="S",
                      help="time-out of one POST (default 10)")
    parser.set_defaults(func=run)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from footfall.stream.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"footfall alerts: {exc}", file=sys.stderr)
        return 2
    if args.webhook:
        return _forward(settings, args)
    if args.kind != "alerts":
        print("footfall alerts: --kind is for --webhook", file=sys.stderr)
        return 2
    out = sys.stdout
    try:
        if not args.follow:
            return _print_open(settings, args, out)
        printed = 0
        for record in _follow(settings, args.from_beginning, args.timeout_s):
            if args.store and record.get("store_id") not in args.store:
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
    records = []
    for store in args.store or ["*"]:
        pattern = settings.redis_keys.store_pattern("alerts", store)
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
    consumer = KafkaConsumer(**settings.kafka.kafka_python(), enable_auto_commit=False, consumer_timeout_ms=500)
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


def _forward(settings: Any, args: argparse.Namespace) -> int:
    """`--webhook`: run a `webhooks.Forwarder` until Ctrl-C, SIGTERM, `--max` or `--timeout-s`."""
    import signal
    import urllib.parse
    from pathlib import Path

    from footfall.scripts import webhooks

    name = "footfall alerts"
    url = urllib.parse.urlsplit(args.webhook)
    if url.scheme not in ("http", "https") or not url.netloc:
        print(f"{name}: --webhook must be an http:// or https:// URL, got {args.webhook!r}", file=sys.stderr)
        return 2
    try:
        secret = webhooks.read_secret(args.secret_file, os.environ)
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    if secret is None and not args.unsigned:
        print(f"{name}: --webhook needs a signing secret: --secret-file PATH or ${webhooks.SECRET_ENV} "
              "(or --unsigned to send without a signature)", file=sys.stderr)
        return 2
    if secret is not None and args.unsigned:
        print(f"{name}: --unsigned given with a secret: choose one", file=sys.stderr)
        return 2
    try:
        backoff = webhooks.Backoff(base_s=args.backoff_base_s, max_s=max(args.backoff_max_s, args.backoff_base_s))
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    topic = settings.topic(args.kind)
    group_id = args.group_id or webhooks.default_group_id(topic, args.webhook)
    dead_letter = Path(args.dead_letter_file) if args.dead_letter_file else (
        webhooks.default_state_dir(os.environ) / "webhooks" / f"{group_id}.dead-letter.jsonl")
    sender = webhooks.WebhookSender(args.webhook, secret, backoff=backoff, retry_for_s=args.retry_for_s,
                                    timeout_s=args.request_timeout_s)
    forwarder = webhooks.Forwarder(settings.kafka, topic, group_id, sender, webhooks.DeadLetterLog(dead_letter),
                                   stores=frozenset(args.store), from_beginning=args.from_beginning)

    def stop(signum: int, frame: Any) -> None:
        print(f"{name}: stopping after the delivery in flight", file=sys.stderr, flush=True)
        sender.stop.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"forwarding {topic} on {settings.broker} to {args.webhook} (group {group_id}, "
          f"{'unsigned' if secret is None else 'signed'}; dead letters: {dead_letter})", file=sys.stderr, flush=True)
    try:
        forwarder.run(max_changes=args.max, timeout_s=args.timeout_s)
    except Exception as exc:  # the broker: say what, no traceback
        print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = webhooks.forwarder_summary(forwarder)
    print(f"{name}: {summary['delivered']} delivered, {summary['dead_lettered']} dead-lettered, "
          f"{summary['skipped']} skipped (other stores)", file=sys.stderr, flush=True)
    return 0
