"""`footfall replay`: stream a CSV of timestamped counts (or till transactions) into Kafka.

Counts mode: each row with a value becomes one door interval report, `count_in`
= the value (and `count_out` from `--out-col`), over `interval_s` seconds from
the row's timestamp. Several `--value-col` make several stores, one per column
(`<store-id>-<column slug>`), e.g. the 21 Auckland pedestrian sensors. Empty
cells are skipped and counted: gaps stay gaps.

Transactions mode (`--events-mode transactions --id-col COL`): the rows of one
transaction id (one row per item line, as in a till export) become one `pos`
event at the transaction's timestamp with `items` = its rows and `amount` 0.0.

Timestamps are local wall-clock times in `--timezone` unless they carry an
offset; local times that do not exist or repeat at daylight-saving changes are
read with `fold=0` (the offset before the change). Event ids are
`<store>-<row number>` (counts) or `<store>-tx<id>` (transactions), so replaying
a file twice sends the same ids.

Examples
--------
::

    footfall replay --csv calit2_counts.csv --timestamp-col timestamp --value-col in_count \\
        --out-col out_count --timezone America/Los_Angeles --store-id calit2
    footfall replay --csv auckland_hourly_counts.csv --timestamp-col timestamp_local \\
        --value-col "45 Queen Street" --value-col "30 Queen Street" --store-id akl --timezone Pacific/Auckland
    footfall replay --csv bread_basket_transactions.csv --timestamp-col timestamp_local \\
        --events-mode transactions --id-col transaction --store-id bread-basket --timezone Europe/London
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import itertools
import logging
import os
import re
import sys
import time
import zoneinfo
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from footfall.schemas.events import MAX_COUNT, MAX_INTERVAL_S, STORE_ID_PATTERN, VERTICALS
from footfall.scripts.producer import sigterm_as_interrupt

__all__ = [
    "ReplayEvent",
    "ReplayStats",
    "infer_interval_s",
    "local_to_utc_ms",
    "main",
    "register",
    "rows_to_events",
    "run",
    "slug",
    "store_ids_for",
    "transactions_to_events",
]

logger = logging.getLogger(__name__)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
_STORE_ID = re.compile(STORE_ID_PATTERN)
#: Cell values that mean "no data", like an empty cell.
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
#: Rows read to infer the interval when `--interval-s` is not given.
INFER_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    """One event to send: Kafka key `store_id`, event time `ts_ms` (UTC epoch ms), the JSON object `event`."""

    store_id: str
    ts_ms: int
    event: dict[str, Any]


@dataclass
class ReplayStats:
    """What a replay read and made; filled in as the events are drawn."""

    rows: int = 0
    events: int = 0
    empty_cells: int = 0
    bad_values: int = 0
    bad_timestamps: int = 0
    count_in: int = 0
    count_out: int = 0
    items: int = 0
    first_ts_ms: int | None = None
    last_ts_ms: int | None = None
    per_store: Counter[str] = field(default_factory=Counter)

    def _saw(self, store_id: str, ts_ms: int) -> None:
        self.events += 1
        self.per_store[store_id] += 1
        if self.first_ts_ms is None or ts_ms < self.first_ts_ms:
            self.first_ts_ms = ts_ms
        if self.last_ts_ms is None or ts_ms > self.last_ts_ms:
            self.last_ts_ms = ts_ms


def slug(text: str) -> str:
    """Lower case, runs of anything but letters and digits as one `-`.

    Examples
    --------
    >>> slug("188 Quay Street Lower Albert (EW)")
    '188-quay-street-lower-albert-ew'
    >>> slug("in_count")
    'in-count'

    """
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def store_ids_for(value_cols: Sequence[str], store_id: str) -> list[str]:
    """The store id of each value column: `store_id` for one column, `<store_id>-<slug>` for several.

    Ids longer than 64 characters are cut and given a short hash, so they stay distinct.

    Examples
    --------
    >>> store_ids_for(["calls"], "bank-calls")
    ['bank-calls']
    >>> store_ids_for(["45 Queen Street", "150 K Road"], "akl")
    ['akl-45-queen-street', 'akl-150-k-road']

    """
    if not value_cols:
        raise ValueError("at least one value column is needed")
    if len(value_cols) == 1:
        ids = [store_id]
    else:
        ids = []
        for col in value_cols:
            sid = f"{store_id}-{slug(col) or 'column'}"
            if len(sid) > 64:
                sid = f"{sid[:55]}-{hashlib.blake2b(col.encode(), digest_size=4).hexdigest()}"
            ids.append(sid)
    for sid in ids:
        if not _STORE_ID.fullmatch(sid):
            raise ValueError(f"store id {sid!r} must match {STORE_ID_PATTERN}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"value columns give clashing store ids: {ids}")
    return ids


def _parse_local(text: str, zone: dt.tzinfo) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone, fold=0)
    return parsed


def local_to_utc_ms(text: str, zone: dt.tzinfo) -> int:
    """UTC epoch ms of an ISO-8601 timestamp, read as wall-clock time in `zone` when it has no offset.

    Times that do not exist (clocks going forward) or repeat (going back) are
    read with `fold=0`: the offset in force before the change.

    Examples
    --------
    >>> london = zoneinfo.ZoneInfo("Europe/London")
    >>> for text in ["2017-03-26 00:30:00", "2017-03-26 01:30:00", "2017-03-26 02:30:00", "2017-10-29 01:30:00"]:
    ...     print(text, "->", (_EPOCH + local_to_utc_ms(text, london) * _MS).strftime("%Y-%m-%d %H:%M UTC"))
    2017-03-26 00:30:00 -> 2017-03-26 00:30 UTC
    2017-03-26 01:30:00 -> 2017-03-26 01:30 UTC
    2017-03-26 02:30:00 -> 2017-03-26 01:30 UTC
    2017-10-29 01:30:00 -> 2017-10-29 00:30 UTC
    >>> local_to_utc_ms("2017-03-26T02:30:00Z", london)
    1490495400000

    """
    return (_parse_local(text, zone) - _EPOCH) // _MS


def _iso_utc(ts_ms: int) -> str:
    return (_EPOCH + ts_ms * _MS).isoformat().replace("+00:00", "Z")


def infer_interval_s(timestamps: Iterable[str]) -> int:
    """The most common positive step between consecutive timestamps, in wall-clock seconds.

    Ties go to the shorter step; steps are taken on the clock as written, so a
    daylight-saving change does not distort them.

    Examples
    --------
    >>> infer_interval_s(["2003-03-03 07:00:00", "2003-03-03 07:05:00", "2003-03-03 07:10:00",
    ...                   "2003-03-04 07:00:00", "2003-03-04 07:05:00"])
    300

    """
    steps: Counter[int] = Counter()
    previous: dt.datetime | None = None
    for text in timestamps:
        if not text or not text.strip():
            continue
        try:
            current = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            continue
        if previous is not None and (previous.tzinfo is None) == (current.tzinfo is None):
            step = round((current - previous).total_seconds())
            if step > 0:
                steps[step] += 1
        previous = current
    if not steps:
        raise ValueError("cannot infer the interval: fewer than two increasing timestamps")
    best = max(steps.values())
    return min(step for step, n in steps.items() if n == best)


def _count(text: str | None) -> int | None:
    """The cell as a count: None when missing, ValueError when not a whole number in range."""
    if text is None or text.strip().lower() in MISSING:
        return None
    value = float(text)  # accepts "94" and "94.0"
    if not value.is_integer() or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"{text!r} is not a count between 0 and {MAX_COUNT}")
    return int(value)


class _Warner:
    """Logs the first few problems of a replay, then only counts them."""

    def __init__(self, limit: int = 5) -> None:
        self.left = limit

    def __call__(self, message: str, *args: Any) -> None:
        if self.left > 0:
            self.left -= 1
            logger.warning(message + ("" if self.left else " (further such warnings suppressed)"), *args)


def rows_to_events(
    rows: Iterable[Mapping[str, str | None]],
    *,
    timestamp_col: str,
    value_cols: Sequence[str],
    store_id: str,
    interval_s: int,
    out_col: str | None = None,
    timezone: str = "UTC",
    timestamp_marks: str = "start",
    region: str | None = None,
    vertical: str | None = None,
    door_id: str = "main",
    sensor_id: str = "replay",
    stats: ReplayStats | None = None,
) -> Iterator[ReplayEvent]:
    """Door interval reports from rows of timestamped counts (counts mode).

    Parameters
    ----------
    rows
        CSV rows as mappings (e.g. from `csv.DictReader`), data rows numbered from 1.
    timestamp_col, value_cols, out_col
        Column names: the timestamp, the counts in (one store per column), the
        counts out (one value column only; 0 when not given).
    store_id
        The store, or the prefix of the stores when there are several value columns.
    interval_s
        Length of the interval each row counts.
    timezone
        IANA zone of timestamps without an offset.
    timestamp_marks
        `start`: a row's timestamp starts its interval; `end`: it ends it (as in
        "counts for the previous half hour"), and the event's `ts` is moved back
        by `interval_s`.
    stats
        Filled in with rows, events, skipped cells and totals.

    Examples
    --------
    >>> rows = [{"t": "2017-03-26 00:00", "n": "3"}, {"t": "2017-03-26 01:00", "n": ""},
    ...         {"t": "2017-03-26 02:00", "n": "5.0"}]
    >>> stats = ReplayStats()
    >>> for e in rows_to_events(rows, timestamp_col="t", value_cols=["n"], store_id="s1", interval_s=3600,
    ...                         timezone="Europe/London", stats=stats):
    ...     print(e.event["event_id"], e.event["ts"], e.event["count_in"], e.event["interval_s"])
    s1-1 2017-03-26T00:00:00Z 3 3600
    s1-3 2017-03-26T01:00:00Z 5 3600
    >>> stats.rows, stats.events, stats.empty_cells, stats.count_in
    (3, 2, 1, 8)

    """
    if out_col is not None and len(value_cols) != 1:
        raise ValueError("--out-col goes with exactly one value column")
    if not 1 <= interval_s <= MAX_INTERVAL_S:
        raise ValueError(f"interval_s must be between 1 and {MAX_INTERVAL_S}")
    if timestamp_marks not in ("start", "end"):
        raise ValueError("timestamp_marks must be 'start' or 'end'")
    if vertical is not None and vertical not in VERTICALS:
        raise ValueError(f"vertical must be one of {', '.join(VERTICALS)}")
    stats = stats if stats is not None else ReplayStats()
    zone = zoneinfo.ZoneInfo(timezone)
    shift_ms = interval_s * 1000 if timestamp_marks == "end" else 0
    columns = list(zip(value_cols, store_ids_for(value_cols, store_id), strict=True))
    envelope: dict[str, Any] = {}
    if region is not None:
        envelope["region"] = region
    if vertical is not None:
        envelope["vertical"] = vertical
    warn = _Warner()
    for row_number, row in enumerate(rows, start=1):
        stats.rows += 1
        ts_text = row.get(timestamp_col)
        try:
            ts_ms = local_to_utc_ms(ts_text or "", zone) - shift_ms
        except ValueError:
            stats.bad_timestamps += 1
            warn("row %d: bad timestamp %r in column %r, row skipped", row_number, ts_text, timestamp_col)
            continue
        ts = _iso_utc(ts_ms)
        count_out = 0
        if out_col is not None:
            try:
                count_out = _count(row.get(out_col)) or 0
            except ValueError as exc:
                stats.bad_values += 1
                warn("row %d column %r: %s; count_out taken as 0", row_number, out_col, exc)
        for col, sid in columns:
            try:
                count_in = _count(row.get(col))
            except ValueError as exc:
                stats.bad_values += 1
                warn("row %d column %r: %s; cell skipped", row_number, col, exc)
                continue
            if count_in is None:
                stats.empty_cells += 1
                continue
            stats.count_in += count_in
            stats.count_out += count_out
            stats._saw(sid, ts_ms)
            yield ReplayEvent(sid, ts_ms, {
                "event_id": f"{sid}-{row_number}", "store_id": sid, "kind": "door", "ts": ts, "schema_version": 1,
                **envelope, "door_id": door_id, "sensor_id": sensor_id,
                "count_in": count_in, "count_out": count_out, "interval_s": interval_s,
            })


def transactions_to_events(
    rows: Iterable[Mapping[str, str | None]],
    *,
    timestamp_col: str,
    id_col: str,
    store_id: str,
    timezone: str = "UTC",
    region: str | None = None,
    vertical: str | None = None,
    stats: ReplayStats | None = None,
) -> Iterator[ReplayEvent]:
    """One `pos` event per distinct transaction id (transactions mode), in order of first appearance.

    `items` is the number of rows of the transaction, `amount` 0.0 (item lines
    carry no prices), `ts` the timestamp of its first row. All rows are read
    before the first event is made, since a transaction's rows need not be
    adjacent.

    Examples
    --------
    >>> rows = [{"t": "2016-10-30 09:58:11", "tx": "1"}, {"t": "2016-10-30 10:05:34", "tx": "2"},
    ...         {"t": "2016-10-30 10:05:34", "tx": "2"}, {"t": "2016-10-30 10:07:57", "tx": ""}]
    >>> stats = ReplayStats()
    >>> for e in transactions_to_events(rows, timestamp_col="t", id_col="tx", store_id="bakery",
    ...                                 timezone="Europe/London", stats=stats):
    ...     print(e.event["event_id"], e.event["ts"], e.event["items"], e.event["amount"])
    bakery-tx1 2016-10-30T09:58:11Z 1 0.0
    bakery-tx2 2016-10-30T10:05:34Z 2 0.0
    >>> stats.rows, stats.events, stats.empty_cells, stats.items
    (4, 2, 1, 3)

    """
    if not _STORE_ID.fullmatch(store_id):
        raise ValueError(f"store id {store_id!r} must match {STORE_ID_PATTERN}")
    stats = stats if stats is not None else ReplayStats()
    zone = zoneinfo.ZoneInfo(timezone)
    warn = _Warner()
    found: dict[str, list[int]] = {}  # id -> [ts_ms, rows]
    for row_number, row in enumerate(rows, start=1):
        stats.rows += 1
        tx = (row.get(id_col) or "").strip()
        if not tx:
            stats.empty_cells += 1
            continue
        entry = found.get(tx)
        if entry is not None:
            entry[1] += 1
            continue
        ts_text = row.get(timestamp_col)
        try:
            ts_ms = local_to_utc_ms(ts_text or "", zone)
        except ValueError:
            stats.bad_timestamps += 1
            warn("row %d: bad timestamp %r in column %r, row skipped", row_number, ts_text, timestamp_col)
            continue
        found[tx] = [ts_ms, 1]
    envelope: dict[str, Any] = {}
    if region is not None:
        envelope["region"] = region
    if vertical is not None:
        envelope["vertical"] = vertical
    for tx, (ts_ms, n_rows) in found.items():
        stats.items += n_rows
        stats._saw(store_id, ts_ms)
        yield ReplayEvent(store_id, ts_ms, {
            "event_id": f"{store_id}-tx{tx}"[:128], "store_id": store_id, "kind": "pos", "ts": _iso_utc(ts_ms),
            "schema_version": 1, **envelope, "transaction_id": tx[:128], "amount": 0.0, "items": n_rows,
        })


# -- command line ------------------------------------------------------------------------------


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `replay` subcommand."""
    parser = subparsers.add_parser(
        "replay",
        help="stream a CSV of timestamped counts or transactions into Kafka",
        description="Each row of a CSV of timestamped counts becomes a door interval report (one store per value "
        "column); or, with --events-mode transactions, each transaction id a till event.",
    )
    parser.add_argument("--csv", required=True, type=Path, help="the CSV file (header row first)")
    parser.add_argument("--timestamp-col", required=True, help="column of the timestamps (ISO-8601)")
    parser.add_argument("--value-col", action="append", default=[],
                        help="column of counts in; repeat for several stores (counts mode)")
    parser.add_argument("--out-col", default=None, help="column of counts out (one value column only)")
    parser.add_argument("--store-id", default=None,
                        help="store id, or the prefix of the per-column store ids (default: slug of the file name)")
    parser.add_argument("--timezone", default="UTC", help="IANA zone of timestamps without an offset (default UTC)")
    parser.add_argument("--interval-s", type=int, default=None,
                        help="seconds each row counts (default: the most common step between timestamps)")
    parser.add_argument("--timestamp-marks", choices=("start", "end"), default="start",
                        help="whether a row's timestamp starts or ends its interval (default start)")
    parser.add_argument("--events-mode", choices=("counts", "transactions"), default="counts",
                        help="counts: door interval reports; transactions: one pos event per --id-col value")
    parser.add_argument("--id-col", default=None, help="transaction id column (transactions mode)")
    parser.add_argument("--region", default=None, help="region of the events")
    parser.add_argument("--vertical", choices=VERTICALS, default=None, help="vertical of the events")
    parser.add_argument("--door-id", default="main", help="door_id of the door events (default main)")
    parser.add_argument("--speed", type=float, default=0.0,
                        help="data seconds per real second; 0 = as fast as possible (default 0)")
    parser.add_argument("--batch", type=int, default=1, help="events per message, JSON arrays above 1 (default 1)")
    parser.add_argument("--max-rows", type=int, default=None, help="read at most this many data rows")
    parser.add_argument("--broker", default=None, help="Kafka bootstrap servers (default: FOOTFALL_BROKER)")
    parser.add_argument("--topic-prefix", default=None, help="topic prefix (default: FOOTFALL_TOPIC_PREFIX)")
    parser.add_argument("--dry-run", action="store_true", help="print messages (store_id TAB payload) to stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.set_defaults(func=run)
    return parser


def _fail(message: str) -> int:
    print(f"footfall replay: {message}", file=sys.stderr)
    return 2


def _data_rows(path: Path) -> int:
    with path.open("rb") as f:
        return max(0, sum(1 for _ in f) - 1)


def run(args: argparse.Namespace) -> int:
    """Run `footfall replay`; returns the exit code."""
    path: Path = args.csv
    if not path.is_file():
        return _fail(f"no such file: {path}")
    try:
        zoneinfo.ZoneInfo(args.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return _fail(f"--timezone {args.timezone!r} is not an IANA time zone")
    if args.batch < 1 or args.speed < 0:
        return _fail("--batch must be >= 1 and --speed >= 0")
    with path.open(newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), [])
    needed = [args.timestamp_col]
    if args.events_mode == "counts":
        if not args.value_col:
            return _fail("counts mode needs at least one --value-col")
        needed += args.value_col + ([args.out_col] if args.out_col else [])
    else:
        if not args.id_col:
            return _fail("--events-mode transactions needs --id-col")
        needed.append(args.id_col)
    missing = [c for c in needed if c not in header]
    if missing:
        return _fail(f"{path.name} has no column {', '.join(map(repr, missing))}; columns: {', '.join(header)}")
    store_id = args.store_id or slug(path.stem)

    interval_s = args.interval_s
    if args.events_mode == "counts" and interval_s is None:
        with path.open(newline="", encoding="utf-8-sig") as f:
            head = itertools.islice(csv.DictReader(f), INFER_ROWS)
            try:
                interval_s = infer_interval_s(row.get(args.timestamp_col) or "" for row in head)
            except ValueError as exc:
                return _fail(f"{exc}; give --interval-s")
        logger.info("interval inferred from the timestamps: %d s", interval_s)

    sink, target = _open_sink(args)
    if sink is None:
        return _fail(target)
    stats = ReplayStats()
    total = _data_rows(path)
    if args.max_rows is not None:
        total = min(total, args.max_rows)
    code = 0
    t0 = time.monotonic()
    stopped = "done"
    with path.open(newline="", encoding="utf-8-sig") as f:
        from tqdm import tqdm

        reader: Iterable[dict[str, str | None]] = csv.DictReader(f)
        if args.max_rows is not None:
            reader = itertools.islice(reader, args.max_rows)
        bar = tqdm(reader, total=total, unit="rows", file=sys.stderr, disable=args.no_progress, mininterval=0.5,
                   desc=path.name)
        try:
            if args.events_mode == "counts":
                events = rows_to_events(
                    bar, timestamp_col=args.timestamp_col, value_cols=args.value_col, out_col=args.out_col,
                    store_id=store_id, interval_s=interval_s, timezone=args.timezone,
                    timestamp_marks=args.timestamp_marks, region=args.region, vertical=args.vertical,
                    door_id=args.door_id, stats=stats,
                )
            else:
                events = transactions_to_events(
                    bar, timestamp_col=args.timestamp_col, id_col=args.id_col, store_id=store_id,
                    timezone=args.timezone, region=args.region, vertical=args.vertical, stats=stats,
                )
            with sigterm_as_interrupt():
                _send(events, sink, batch=args.batch, speed=args.speed)
        except ValueError as exc:
            bar.close()
            sink.close()
            return _fail(str(exc))
        except KeyboardInterrupt:
            stopped = "interrupted (Ctrl-C or SIGTERM)"
        except BrokenPipeError:
            stopped = "stdout closed"
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        finally:
            bar.close()
            try:
                sink.close()
            except BrokenPipeError:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    failed = sink.messages_failed
    if failed:
        code = 1
    elapsed = time.monotonic() - t0
    span = ""
    if stats.first_ts_ms is not None and stats.last_ts_ms is not None:
        span = f", event time {_iso_utc(stats.first_ts_ms)} .. {_iso_utc(stats.last_ts_ms)}"
    totals = (f"count_in {stats.count_in:,}, count_out {stats.count_out:,}" if args.events_mode == "counts"
              else f"items {stats.items:,}")
    print(f"{stopped}: {stats.rows:,} rows -> {stats.events:,} events in {sink.messages_sent:,} messages to {target} "
          f"({len(stats.per_store)} store{'' if len(stats.per_store) == 1 else 's'}; {totals}; "
          f"skipped: {stats.empty_cells:,} empty cells, "
          f"{stats.bad_values:,} bad values, {stats.bad_timestamps:,} bad timestamps){span}; {elapsed:.1f} s"
          + (f"; {failed:,} messages FAILED" if failed else ""), file=sys.stderr)
    return code


def _open_sink(args: argparse.Namespace) -> tuple[Any, str]:
    """The dry-run or Kafka sink and its name; (None, reason) when Kafka cannot be used."""
    from footfall.scripts.producer import ProducerError, StdoutSink, events_producer
    from footfall.stream.settings import SettingsError

    if args.dry_run:
        return StdoutSink(), "stdout"
    try:
        producer = events_producer(os.environ, broker=args.broker, topic_prefix=args.topic_prefix)
    except (SettingsError, ProducerError) as exc:
        return None, str(exc)
    return producer, producer.topic


def _send(events: Iterable[ReplayEvent], sink: Any, *, batch: int, speed: float) -> None:
    """Send events (batched per store when `batch` > 1), paced at `speed` data seconds per real second.

    Batches still open when the events end or the run is interrupted are sent.
    """
    import orjson

    buffers: dict[str, list[dict[str, Any]]] = {}

    def flush_all() -> None:
        for store_id in list(buffers):
            batch_events = buffers.pop(store_id)
            sink.send(store_id, orjson.dumps(batch_events), events=len(batch_events))

    t0 = time.monotonic()
    first_ts_ms: int | None = None
    try:
        for e in events:
            if speed > 0:
                if first_ts_ms is None:
                    first_ts_ms = e.ts_ms
                wait_s = t0 + (e.ts_ms - first_ts_ms) / 1000 / speed - time.monotonic()
                if wait_s > 0.002:
                    flush_all()  # what is due goes out before a pause
                    time.sleep(wait_s)
            if batch == 1:
                sink.send(e.store_id, orjson.dumps(e.event))
                continue
            buffer = buffers.setdefault(e.store_id, [])
            buffer.append(e.event)
            if len(buffer) >= batch:
                sink.send(e.store_id, orjson.dumps(buffer), events=len(buffer))
                del buffers[e.store_id]
    finally:
        flush_all()


def main(argv: list[str] | None = None) -> int:
    """`python -m footfall.scripts.replay ...`, the same as `footfall replay ...`."""
    from footfall.scripts import cli

    return cli.main(["replay", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
