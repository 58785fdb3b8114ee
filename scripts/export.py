"""`footfall export`: the closed buckets of a time range, and daily summaries, from the aggregates topic.

Reads `<p>.aggregates` once, partition by partition from the first message published at or after
`--from` less `FOOTFALL_MAX_FUTURE_S` (a closed bucket is published after its end, so nothing
earlier can be one of the range's; `offsets_for_times`), up to the first message published more
than `--settle-h` hours after `--to`, and never past the end offsets taken at the start, so it
always terminates. It keeps the closed bucket records (`"status": "closed"`) whose `bucket_start`
is in `[--from, --to)`, the last revision of each (store, bucket): the highest `revision` when
records carry one, else the last one read (a store's records are on one partition, in order).
`--store` (repeatable) and `--region` (repeatable; the region of the bucket's last revision)
select stores. Rows are written sorted by store and bucket start, as CSV (the columns below) or
JSONL (each record as published). Daily summaries (one row per store and local day) go to a
second file.

Memory: messages are streamed; what is held is one record per (store, bucket) in the range (its
last revision so far, as its JSON bytes), about 1.5 kB each: a month of 15-minute buckets of 100 stores is about
300 000 records, some 450 MB. Export shorter ranges, or fewer stores, to hold less.

Examples
--------
::

    footfall export --from 2026-11-01 --to 2026-11-08 --out week.csv           # and week.daily.csv
    footfall export --from 2026-11-24T08:00Z --to 2026-11-24T20:00Z --store bank-002 --format jsonl
    footfall export --from 2026-11-01 --to 2026-12-01 --region north --out nov.jsonl --no-daily
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import orjson

from footfall.stream.kafka_access import KafkaAccess

__all__ = [
    "DAILY_COLUMNS",
    "DAILY_SUMMED",
    "LastRevisions",
    "bucket_columns",
    "daily_summaries",
    "flatten",
    "parse_time",
    "register",
    "run",
]

#: Bucket counts summed into a daily summary (`sales` rounded to cents after summing).
DAILY_SUMMED = (
    "arrivals", "departures", "door_in", "door_out", "visits_started", "visits_ended", "transactions", "items",
    "tickets_issued", "tickets_called", "tickets_served", "tickets_abandoned", "tickets_no_show", "heartbeats",
    "events", "sales", "visitors", "dwell_n",
)
#: Columns of a daily summary row, in order (see `daily_summaries`).
DAILY_COLUMNS = (
    "store_id", "region", "vertical", "tz", "day", "bucket_s", "buckets", "first_bucket_start", "last_bucket_start",
    *DAILY_SUMMED,
    "conversion_rate", "avg_basket", "sales_per_visitor", "items_per_transaction", "dwell_mean_s",
)


class ExportError(Exception):
    """Something the user can fix: said in one line, exit status 1."""


# -- time -------------------------------------------------------------------------------------------


def parse_time(text: str) -> int:
    """Milliseconds since the epoch of a date (`2026-11-24`: midnight UTC) or an ISO 8601 date-time (naive: UTC).

    >>> parse_time("2026-11-24"), parse_time("2026-11-24T10:15:00Z"), parse_time("2026-11-24T11:15+01:00")
    (1795478400000, 1795515300000, 1795515300000)
    >>> parse_time("yesterday")
    Traceback (most recent call last):
    ...
    ValueError: not a date (YYYY-MM-DD) or ISO 8601 date-time: 'yesterday'
    """
    raw = text.strip()
    try:
        if len(raw) == 10:
            when = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.UTC)
        else:
            when = dt.datetime.fromisoformat(raw.replace("z", "Z"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD) or ISO 8601 date-time: {text!r}") from None
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


# -- last revision --------------------------------------------------------------------------------


class LastRevisions:
    """The last revision of each closed bucket offered: per (store, bucket start), the record that wins.

    A record with a `revision` replaces one with a lower revision and is ignored beside a higher one;
    equal revisions, or a record without one, go by order: the last offered wins. Records are held
    as their JSON bytes (about 1.3 kB for a closed bucket; a parsed dict takes three times that).

    >>> keep = LastRevisions()
    >>> for r in ({"store_id": "a", "bucket_start_ms": 0, "revision": 2, "arrivals": 5},
    ...           {"store_id": "a", "bucket_start_ms": 0, "revision": 1, "arrivals": 4}):
    ...     keep.offer(r)
    >>> [r["arrivals"] for r in keep.records()]
    [5]
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], tuple[int | None, bytes]] = {}

    def __len__(self) -> int:
        return len(self._by_key)

    def offer(self, record: Mapping[str, Any], raw: bytes | None = None) -> None:
        """Keep `record` (whose bytes are `raw`, if at hand) unless a higher revision of its bucket is kept."""
        key = (record["store_id"], record["bucket_start_ms"])
        revision = record.get("revision")
        if not isinstance(revision, int) or isinstance(revision, bool):
            revision = None
        held = self._by_key.get(key)
        if held is not None and revision is not None and held[0] is not None and revision < held[0]:
            return
        self._by_key[key] = (revision, raw if raw is not None else orjson.dumps(record))

    def records(self) -> Iterator[dict[str, Any]]:
        """The kept records, sorted by store and bucket start, parsed one at a time."""
        for key in sorted(self._by_key):
            yield orjson.loads(self._by_key[key][1])


# -- CSV ----------------------------------------------------------------------------------------------


def bucket_columns() -> list[str]:
    """The CSV columns: the bucket record's documented fields in schema order, nested ones flattened with dots.

    `compare` becomes `compare.arrivals.value`, `compare.arrivals.vs_last_week.diff`, ... (from
    `schemas/records.py`, so a field added there becomes a column).

    >>> cols = bucket_columns()
    >>> cols[:3], "compare.arrivals.vs_last_week.ratio" in cols, "compare" in cols
    (['type', 'store_id', 'region'], True, False)
    """
    from footfall.schemas.records import record_schema

    schema = record_schema("bucket")
    defs = schema.get("$defs", {})
    out: list[str] = []

    def resolve(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The object schema a property holds (through `$ref` and `anyOf` with null), or None for a scalar."""
        if "$ref" in node:
            return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
        for option in node.get("anyOf", ()):
            found = resolve(option)
            if found is not None:
                return found
        return node if node.get("type") == "object" and "properties" in node else None

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for name, prop in node["properties"].items():
            inner = resolve(prop)
            if inner is None:
                out.append(prefix + name)
            else:
                walk(inner, f"{prefix}{name}.")

    walk(schema, "")
    return out


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys (a null object is one null key: its columns stay empty).

    >>> flatten({"a": 1, "c": {"x": {"diff": 2, "ratio": None}, "y": None}})
    {'a': 1, 'c.x.diff': 2, 'c.x.ratio': None, 'c.y': None}
    """
    out: dict[str, Any] = {}
    for name, value in record.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{name}."))
        else:
            out[prefix + name] = value
    return out


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return value


def csv_rows(records: Iterable[Mapping[str, Any]], columns: list[str]) -> Iterator[list[Any]]:
    for record in records:
        flat = flatten(record)
        yield [_cell(flat.get(c)) for c in columns]


# -- daily summaries -------------------------------------------------------------------------------


def daily_summaries(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (store, local day) of the buckets given: `DAILY_SUMMED` summed, ratios of the sums.

    `day` is the buckets' own `day` (the local date of the bucket's start in the store's `tz`);
    `buckets` how many closed buckets the day has in the export (a day cut by `--from`/`--to`, or
    with buckets never closed, has fewer than a whole day's); `region`, `vertical` and `tz` are
    those of its last bucket. `conversion_rate` = transactions / visitors, `avg_basket` = sales /
    transactions, `sales_per_visitor` = sales / visitors, `items_per_transaction` = items /
    transactions (null when the divisor is 0), `dwell_mean_s` the mean of the buckets' mean dwell
    weighted by their `dwell_n` (exact: the mean of all dwell times of the day).

    >>> rows = daily_summaries([
    ...     {"store_id": "a", "day": "2026-11-24", "bucket_start": "x", "bucket_s": 900, "visitors": 10,
    ...      "transactions": 2, "sales": 10.005, "items": 3, "dwell_n": 1, "dwell_mean_s": 60.0},
    ...     {"store_id": "a", "day": "2026-11-24", "bucket_start": "y", "bucket_s": 900, "visitors": 30,
    ...      "transactions": 2, "sales": 10.0, "items": 5, "dwell_n": 3, "dwell_mean_s": 100.0}])
    >>> r = rows[0]
    >>> r["buckets"], r["visitors"], r["sales"], r["conversion_rate"], r["avg_basket"], r["dwell_mean_s"]
    (2, 40, 20.01, 0.1, 5.0025, 90.0)
    """
    days: dict[tuple[str, str], dict[str, Any]] = {}
    dwell_total: dict[tuple[str, str], float] = {}
    for record in records:
        key = (record["store_id"], record["day"])
        row = days.get(key)
        if row is None:
            row = days[key] = {"store_id": record["store_id"], "day": record["day"], "buckets": 0,
                               "first_bucket_start": record["bucket_start"], **dict.fromkeys(DAILY_SUMMED, 0)}
            row["sales"] = 0.0
            dwell_total[key] = 0.0
        row.update(region=record.get("region"), vertical=record.get("vertical"), tz=record.get("tz"),
                   bucket_s=record.get("bucket_s"), last_bucket_start=record["bucket_start"])
        row["buckets"] += 1
        for name in DAILY_SUMMED:
            row[name] += record.get(name) or 0
        if record.get("dwell_mean_s") is not None and record.get("dwell_n"):
            dwell_total[key] += record["dwell_mean_s"] * record["dwell_n"]
    out = []
    for key in sorted(days):
        row = days[key]
        row["sales"] = round(row["sales"], 2)
        row["conversion_rate"] = _ratio(row["transactions"], row["visitors"])
        row["avg_basket"] = _ratio(row["sales"], row["transactions"])
        row["sales_per_visitor"] = _ratio(row["sales"], row["visitors"])
        row["items_per_transaction"] = _ratio(row["items"], row["transactions"])
        row["dwell_mean_s"] = _ratio(dwell_total[key], row["dwell_n"])
        out.append({c: row.get(c) for c in DAILY_COLUMNS})
    return out


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b else None


# -- reading the topic ----------------------------------------------------------------------------


def read_closed_buckets(
    kafka: KafkaAccess, topic: str, from_ms: int, to_ms: int, *, lead_ms: int, settle_ms: int,
    stores: frozenset[str] = frozenset(), progress: bool = False, idle_s: float = 30.0,
) -> LastRevisions:
    """The last revision of every closed bucket of `topic` starting in `[from_ms, to_ms)` (of `stores`, if given)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError
    from tqdm import tqdm

    from footfall.scripts.producer import quiet_client_logs

    quiet_client_logs()
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.CRITICAL)  # connection failures: said once, by this tool
    try:
        consumer = KafkaConsumer(**kafka.kafka_python(), group_id=None, enable_auto_commit=False,
                                 request_timeout_ms=30_000, bootstrap_timeout_ms=10_000,
                                 max_partition_fetch_bytes=4 << 20)
    except KafkaError as exc:
        raise ExportError(f"cannot reach the Kafka broker at {kafka.bootstrap} (FOOTFALL_BROKER): {exc}") from None
    kept = LastRevisions()
    try:
        try:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise ExportError(f"no topic {topic} on {kafka.bootstrap} (has a worker run with this prefix?)")
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            end = consumer.end_offsets(tps)
            starts = consumer.offsets_for_times({tp: max(0, from_ms - lead_ms) for tp in tps})
            stops = consumer.offsets_for_times({tp: to_ms + settle_ms for tp in tps})
        except KafkaError as exc:
            raise ExportError(f"cannot read {topic} on {kafka.bootstrap}: {type(exc).__name__}: {exc}") from None
        stop = {tp: min(end[tp], stops[tp].offset if stops.get(tp) is not None else end[tp]) for tp in tps}
        start = {tp: starts[tp].offset if starts.get(tp) is not None else stop[tp] for tp in tps}
        todo = [tp for tp in tps if start[tp] < stop[tp]]
        bar = tqdm(total=sum(stop[tp] - start[tp] for tp in todo), unit="msg", file=sys.stderr, disable=not progress,
                   desc=f"reading {topic}", dynamic_ncols=True)
        if not todo:
            bar.close()
            return kept
        consumer.assign(todo)
        for tp in todo:
            consumer.seek(tp, start[tp])
        done_at = dict(start)
        remaining = set(todo)
        last_progress = time.monotonic()
        with bar:
            while remaining:
                batches = consumer.poll(timeout_ms=500, max_records=5000)
                for tp, messages in batches.items():
                    if tp not in remaining:
                        continue
                    for message in messages:
                        if message.offset >= stop[tp]:
                            break
                        _offer(kept, message.value, from_ms, to_ms, stores)
                for tp in list(remaining):
                    position = min(consumer.position(tp), stop[tp])
                    if position > done_at[tp]:
                        bar.update(position - done_at[tp])
                        done_at[tp] = position
                        last_progress = time.monotonic()
                    if position >= stop[tp]:
                        remaining.discard(tp)
                        consumer.pause(tp)
                if remaining and time.monotonic() - last_progress > idle_s:
                    left = {tp.partition: (done_at[tp], stop[tp]) for tp in remaining}
                    raise ExportError(f"no progress reading {topic} for {idle_s:g} s (partition: (at, until) "
                                      f"{left}); the broker may be gone")
                bar.set_postfix(buckets=len(kept), refresh=False)
    finally:
        consumer.close()
    return kept


def _offer(kept: LastRevisions, value: bytes | None, from_ms: int, to_ms: int, stores: frozenset[str]) -> None:
    if not value or b'"closed"' not in value:
        return  # open buckets and live records: most of the topic, skipped before parsing
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return
    if not isinstance(record, dict) or record.get("type") != "bucket" or record.get("status") != "closed":
        return
    start = record.get("bucket_start_ms")
    if not isinstance(start, int) or not from_ms <= start < to_ms:
        return
    if stores and record.get("store_id") not in stores:
        return
    kept.offer(record, value)


# -- writing ---------------------------------------------------------------------------------------


def write(records: Iterable[Mapping[str, Any]], out: TextIO, fmt: str, columns: list[str]) -> int:
    n = 0
    if fmt == "jsonl":
        for record in records:
            out.write(orjson.dumps(record).decode() + "\n")
            n += 1
        return n
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in csv_rows(records, columns):
        writer.writerow(row)
        n += 1
    return n


def daily_path(out: Path) -> Path:
    """`week.csv` -> `week.daily.csv`.

    >>> str(daily_path(Path("out/week.csv"))), str(daily_path(Path("nov")))
    ('out/week.daily.csv', 'nov.daily')
    """
    return out.with_name(f"{out.stem}.daily{out.suffix}")


# -- the command ------------------------------------------------------------------------------------

EPILOG = """\
CSV columns (bucket rows): the bucket record's fields in schema order (`footfall schemas show
bucket`), nested `compare` flattened with dots (compare.arrivals.value, compare.arrivals.last_week,
compare.arrivals.vs_last_week.diff, ...); null is an empty cell. JSONL: each record as published.
Daily rows: store_id region vertical tz day bucket_s buckets first_bucket_start last_bucket_start,
the sums of arrivals departures door_in door_out visits_started visits_ended transactions items
tickets_* heartbeats events sales visitors dwell_n, then conversion_rate avg_basket sales_per_visitor
items_per_transaction dwell_mean_s computed from the sums.

exit status: 0 done, 1 broker or topic trouble, 2 bad arguments.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export", help="closed buckets (last revision) and daily summaries of a time range, as CSV or JSONL",
        description="Export the closed bucket records of [--from, --to) from the aggregates topic, the last "
        "revision of each, and daily summaries per store and local day. Uses FOOTFALL_BROKER and "
        "FOOTFALL_TOPIC_PREFIX.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--from", dest="from_", required=True, metavar="TIME",
                        help="first bucket start, inclusive: YYYY-MM-DD (midnight UTC) or ISO 8601 (naive: UTC)")
    parser.add_argument("--to", required=True, metavar="TIME", help="last bucket start, exclusive; as --from")
    parser.add_argument("--store", action="append", default=[], metavar="STORE", help="only this store (repeatable)")
    parser.add_argument("--region", action="append", default=[], metavar="REGION",
                        help="only stores of this region (repeatable)")
    parser.add_argument("--format", choices=("csv", "jsonl"), default=None,
                        help="default: jsonl when --out ends in .jsonl or .json, else csv")
    parser.add_argument("--out", metavar="PATH", help="bucket rows to this file (default: standard output)")
    parser.add_argument("--daily", metavar="PATH",
                        help="daily summaries to this file (default with --out: <out stem>.daily.<ext>; "
                        "without --out: none)")
    parser.add_argument("--no-daily", action="store_true", help="no daily summaries")
    parser.add_argument("--progress", action="store_true", default=None,
                        help="show the progress bar (default: when standard error is a terminal)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")
    parser.add_argument("--settle-h", type=float, default=26.0, metavar="H",
                        help="read messages published up to this long after --to, for late revisions "
                        "(default 26: the 24 h restatement window and the grace)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from footfall.stream.settings import Settings, SettingsError

    name = "footfall export"
    try:
        from_ms, to_ms = parse_time(args.from_), parse_time(args.to)
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    if from_ms >= to_ms:
        print(f"{name}: --from ({args.from_}) must be before --to ({args.to})", file=sys.stderr)
        return 2
    if args.settle_h < 0:
        print(f"{name}: --settle-h must be >= 0", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    fmt = args.format or ("jsonl" if args.out and Path(args.out).suffix in (".jsonl", ".json") else "csv")
    daily = None if args.no_daily else (
        Path(args.daily) if args.daily else (daily_path(Path(args.out)) if args.out else None))
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    topic = settings.topic("aggregates")
    try:
        kept = read_closed_buckets(settings.kafka, topic, from_ms, to_ms, lead_ms=settings.max_future_s * 1000,
                                   settle_ms=int(args.settle_h * 3_600_000), stores=frozenset(args.store),
                                   progress=progress)
    except ExportError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    regions = set(args.region)

    def records() -> Iterator[dict[str, Any]]:
        return (r for r in kept.records() if not regions or r.get("region") in regions)

    try:
        n = _write_to(args.out, records(), fmt, bucket_columns())
        if daily is not None:
            summaries = daily_summaries(records())
            _write_to(str(daily), summaries, fmt, list(DAILY_COLUMNS))
    except OSError as exc:
        print(f"{name}: cannot write: {exc}", file=sys.stderr)
        return 1
    where = args.out or "standard output"
    print(f"{name}: {n} closed bucket(s) to {where}" + (f", {len(summaries)} daily row(s) to {daily}"
                                                        if daily is not None else ""), file=sys.stderr)
    return 0


def _write_to(path: str | None, records: Iterable[Mapping[str, Any]], fmt: str, columns: list[str]) -> int:
    if path is None:
        n = write(records, sys.stdout, fmt, columns)
        sys.stdout.flush()
        return n
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    with open(partial, "w", encoding="utf-8", newline="") as out:
        n = write(records, out, fmt, columns)
    partial.replace(target)  # a reader never sees half a file
    return n
