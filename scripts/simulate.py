"""`footfall simulate`: simulated stores send events to Kafka, paced on a simulated clock.

The stores and their events come from `footfall.scripts.simulation` (pure and
deterministic); this module only paces them and sends them. The simulated clock
runs `--speed` simulated seconds per real second from `--start` (by default one
day ago, so the first day replays at speed). It never runs ahead of the real
clock: once it catches up it goes on in real time, so no event carries a
future timestamp (only the deliberately malformed ones do).

Examples
--------
A simulated day of 20 stores, as fast as possible, to stdout::

    footfall simulate --stores 20 --start 2024-03-04T00:00:00Z --duration 24 --speed 0 --dry-run

A day in 15 minutes into Kafka, with a surge at `retail-001` 10 h after the start::

    footfall simulate --speed 96 --anomaly retail-001:surge:10:2:3
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, Protocol

from footfall.scripts.producer import ProducerError, StdoutSink, events_producer, sigterm_as_interrupt
from footfall.scripts.simulation import (
    ANOMALY_KINDS,
    Anomaly,
    SimMessage,
    StoreProfile,
    generate,
    make_stores,
    take_events,
)

__all__ = ["main", "parse_anomaly", "parse_start_ms", "register", "run"]

logger = logging.getLogger(__name__)

HOUR_MS = 3_600_000


class _Sink(Protocol):
    messages_failed: int

    def send(self, key: str, value: bytes, *, events: int = 1) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `simulate` subcommand."""
    parser = subparsers.add_parser(
        "simulate",
        help="send simulated store, bank and telecom events to Kafka",
        description="Simulated stores (retail, bank branches, telecom shops) send door, visit, till, queue and "
        "heartbeat events to the events topic, paced on a simulated clock that never runs ahead of real time.",
    )
    parser.add_argument("--stores", type=int, default=20, help="number of stores (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed and start, same events (default 0)")
    parser.add_argument("--speed", type=float, default=96.0,
                        help="simulated seconds per real second; 96 = a day in 15 minutes, 0 = as fast as possible "
                        "(default 96)")
    parser.add_argument("--start", default=None,
                        help="simulated start, ISO-8601 (UTC when no offset is given); default: one day before now")
    parser.add_argument("--duration", type=float, default=None,
                        help="simulated hours to run (default: until Ctrl-C)")
    parser.add_argument("--malformed-fraction", type=float, default=0.0,
                        help="probability that a malformed input follows each valid event (default 0)")
    parser.add_argument("--duplicate-fraction", type=float, default=0.0,
                        help="probability that a valid event is sent twice (same event_id; default 0)")
    parser.add_argument("--late-fraction", type=float, default=0.0,
                        help="probability that a valid event is followed by one 3 hours older, too late to count "
                        "(default 0)")
    parser.add_argument("--reorder-fraction", type=float, default=0.0,
                        help="probability that a valid event is held back up to --reorder-max-s, arriving out of "
                        "order (default 0)")
    parser.add_argument("--reorder-max-s", type=float, default=120.0,
                        help="longest hold-back of a reordered event, in seconds (default 120: within the 300 s "
                        "default grace)")
    parser.add_argument("--batch", type=int, default=1,
                        help="events per message; above 1 a store's events travel as JSON arrays (default 1)")
    parser.add_argument("--anomaly", action="append", default=[], metavar="STORE:KIND:START_H:HOURS[:FACTOR]",
                        help=f"inject an anomaly ({'|'.join(ANOMALY_KINDS)}) START_H simulated hours after the start, "
                        "lasting HOURS; FACTOR multiplies (surge) or divides (drop) the arrival rate (default 3); "
                        "repeatable")
    parser.add_argument("--max-events", type=int, default=None, help="stop after this many valid events")
    parser.add_argument("--broker", default=None, help="Kafka bootstrap servers (default: FOOTFALL_BROKER)")
    parser.add_argument("--topic-prefix", default=None, help="topic prefix (default: FOOTFALL_TOPIC_PREFIX)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print messages to stdout (store_id TAB payload) instead of sending them")
    parser.add_argument("--progress-s", type=float, default=5.0,
                        help="seconds between progress lines on stderr (default 5; 0 = none)")
    parser.set_defaults(func=run)
    return parser


def parse_start_ms(text: str | None, now_ms: int) -> int:
    """The simulated start: ISO-8601 text (UTC when naive), or one day before `now_ms` on a whole minute.

    Examples
    --------
    >>> parse_start_ms("2024-03-04T00:00:00Z", now_ms=0)
    1709510400000
    >>> parse_start_ms("2024-03-04 01:00:00+01:00", now_ms=0)
    1709510400000
    >>> parse_start_ms(None, now_ms=1_709_596_830_000)
    1709510400000

    """
    if text is None:
        start = now_ms - 86_400_000
        return start - start % 60_000
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def parse_anomaly(spec: str, start_ms: int, store_ids: set[str] | None = None) -> Anomaly:
    """An `Anomaly` from `STORE:KIND:START_H:HOURS[:FACTOR]`, hours counted from `start_ms`.

    Examples
    --------
    >>> a = parse_anomaly("retail-001:surge:10:2:4", start_ms=0)
    >>> a.kind, a.start_ms, a.end_ms, a.factor
    ('surge', 36000000, 43200000, 4.0)
    >>> parse_anomaly("bank-002:stuck_zero:1.5:0.5", start_ms=0).end_ms
    7200000

    """
    parts = spec.split(":")
    if len(parts) not in (4, 5):
        raise ValueError(f"--anomaly {spec!r}: expected STORE:KIND:START_H:HOURS[:FACTOR]")
    store_id, kind = parts[0], parts[1]
    if store_ids is not None and store_id not in store_ids:
        raise ValueError(f"--anomaly {spec!r}: no store {store_id!r} in this simulation")
    try:
        offset_h, hours = float(parts[2]), float(parts[3])
        factor = float(parts[4]) if len(parts) == 5 else 3.0
    except ValueError:
        raise ValueError(f"--anomaly {spec!r}: START_H, HOURS and FACTOR must be numbers") from None
    begin = start_ms + round(offset_h * HOUR_MS)
    return Anomaly(store_id, kind, begin, begin + round(hours * HOUR_MS), factor)


def _iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(args: argparse.Namespace) -> int:
    """Run `footfall simulate`; returns the exit code."""
    now_ms = int(time.time() * 1000)
    try:
        start_ms = parse_start_ms(args.start, now_ms)
    except ValueError as exc:
        print(f"footfall simulate: --start {args.start!r}: {exc}", file=sys.stderr)
        return 2
    fractions = (args.malformed_fraction, args.duplicate_fraction, args.late_fraction, args.reorder_fraction)
    if args.stores < 1 or args.batch < 1 or args.speed < 0 or not all(0 <= f <= 1 for f in fractions) or (
            args.reorder_max_s < 0):
        print("footfall simulate: --stores and --batch must be >= 1, --speed and --reorder-max-s >= 0, and the "
              "--*-fraction options in [0, 1]", file=sys.stderr)
        return 2
    if start_ms > now_ms:
        logger.warning("start %s is in the future: nothing is sent before the real clock reaches it", _iso(start_ms))
    stores = make_stores(args.stores, args.seed)
    try:
        anomalies = [parse_anomaly(spec, start_ms, {s.store_id for s in stores}) for spec in args.anomaly]
    except ValueError as exc:
        print(f"footfall simulate: {exc}", file=sys.stderr)
        return 2
    end_ms = None if args.duration is None else start_ms + round(args.duration * HOUR_MS)
    messages = take_events(
        generate(stores, start_ms=start_ms, end_ms=end_ms, seed=args.seed, anomalies=anomalies,
                 malformed_fraction=args.malformed_fraction, batch_size=args.batch,
                 duplicate_fraction=args.duplicate_fraction, late_fraction=args.late_fraction,
                 reorder_fraction=args.reorder_fraction, reorder_max_ms=round(args.reorder_max_s * 1000)),
        args.max_events,
    )

    sink: _Sink
    if args.dry_run:
        sink, target = StdoutSink(), "stdout"
    else:
        from footfall.stream.settings import SettingsError

        try:
            sink = events_producer(os.environ, broker=args.broker, topic_prefix=args.topic_prefix)
        except (SettingsError, ProducerError) as exc:
            print(f"footfall simulate: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, SettingsError) else 1
        target = sink.topic
    _describe(stores, anomalies, start_ms, end_ms, args, target)
    return _pump(messages, sink, start_ms=start_ms, speed=args.speed, progress_s=args.progress_s, target=target)


def _describe(stores: list[StoreProfile], anomalies: list[Anomaly], start_ms: int, end_ms: int | None,
              args: argparse.Namespace, target: str) -> None:
    verticals = {v: sum(s.vertical == v for s in stores) for v in ("retail", "bank", "telecom")}
    span = "until Ctrl-C" if end_ms is None else f"to {_iso(end_ms)}"
    speed = "as fast as possible" if args.speed == 0 else f"{args.speed:g}x"
    print(f"simulating {len(stores)} stores ({', '.join(f'{n} {v}' for v, n in verticals.items())}) "
          f"from {_iso(start_ms)} {span}, {speed}, seed {args.seed}, to {target}", file=sys.stderr)
    for a in anomalies:
        print(f"  anomaly {a.kind} at {a.store_id} {_iso(a.start_ms)}..{_iso(a.end_ms)} factor {a.factor:g}",
              file=sys.stderr)


def _pump(messages: Iterator[SimMessage], sink: _Sink, *, start_ms: int, speed: float, progress_s: float,
          target: str) -> int:
    """Send `messages` paced on the simulated clock; print progress and a summary; return the exit code."""
    t0 = time.monotonic()
    n_messages = n_events = n_malformed = n_duplicates = n_late = 0
    sim_ms = start_ms
    last_print = t0
    last_events = 0
    stopped = "end of simulation"
    code = 0

    def progress(now: float) -> None:
        nonlocal last_print, last_events
        rate = (n_events - last_events) / max(now - last_print, 1e-9)
        print(f"sim {_iso(sim_ms)} | {n_events:,} events ({rate:,.0f}/s) in {n_messages:,} messages | "
              f"{n_malformed:,} malformed", file=sys.stderr)
        last_print, last_events = now, n_events

    try:
        with sigterm_as_interrupt():
            for message in messages:
                sim_ms = message.ts_ms
                # Due when the simulated clock reaches it, and never before the real clock does.
                due_s = 0.0 if speed == 0 else t0 + (message.ts_ms - start_ms) / 1000 / speed - time.monotonic()
                wait_s = max(due_s, message.ts_ms / 1000 - time.time())
                while wait_s > 0.002:
                    if wait_s > 0.05 and isinstance(sink, StdoutSink):
                        sink.flush()  # show what is due before a pause
                    time.sleep(min(wait_s, 0.5))
                    now = time.monotonic()
                    # While waiting for the clock, report only news (or once a minute).
                    if progress_s and now - last_print >= (progress_s if n_events != last_events else 60.0):
                        progress(now)
                    due_s = 0.0 if speed == 0 else t0 + (message.ts_ms - start_ms) / 1000 / speed - now
                    wait_s = max(due_s, message.ts_ms / 1000 - time.time())
                sink.send(message.store_id, message.payload, events=message.events)
                n_messages += 1
                n_events += message.events
                n_malformed += message.malformed
                n_duplicates += message.duplicates
                n_late += message.late
                if progress_s and n_messages % 256 == 0:
                    now = time.monotonic()
                    if now - last_print >= progress_s:
                        progress(now)
    except KeyboardInterrupt:
        stopped = "interrupted (Ctrl-C or SIGTERM)"
    except BrokenPipeError:
        stopped = "stdout closed"
        _silence_stdout()
    finally:
        try:
            sink.close()
        except BrokenPipeError:
            _silence_stdout()
        except Exception as exc:  # delivery failures: report, exit non-zero
            logger.error("closing the producer failed: %s: %s", type(exc).__name__, exc)
            code = 1
    failed = sink.messages_failed
    if failed:
        code = 1
    elapsed = time.monotonic() - t0
    faults = f" (of which {n_duplicates:,} duplicates and {n_late:,} late)" if n_duplicates or n_late else ""
    print(f"{stopped}: {n_events:,} events{faults} and {n_malformed:,} malformed in {n_messages:,} messages "
          f"to {target}, "
          f"simulated up to {_iso(sim_ms)}, {elapsed:.1f} s ({n_events / max(elapsed, 1e-9):,.0f} events/s)"
          + (f", {failed:,} messages FAILED" if failed else ""), file=sys.stderr)
    return code


def _silence_stdout() -> None:
    # The reader went away (`| head`): point stdout at /dev/null so the exit flush does not fail again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    """`python -m footfall.scripts.simulate ...`, the same as `footfall simulate ...`."""
    from footfall.scripts import cli

    return cli.main(["simulate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
