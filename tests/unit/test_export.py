"""`footfall export`: times, last revision, CSV flattening and daily sums, without a broker."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import subprocess
import sys
import zoneinfo
from collections import defaultdict
from typing import Any

import jsonschema
import orjson
import pytest

from footfall.schemas.records import record_schema
from footfall.scripts.export import (
    DAILY_COLUMNS,
    DAILY_SUMMED,
    LastRevisions,
    _offer,
    bucket_columns,
    daily_summaries,
    flatten,
    parse_time,
    write,
)

FOOTFALL = [sys.executable, "-m", "footfall.scripts.cli"]
COUNTS = ("arrivals", "departures", "door_in", "door_out", "visits_started", "visits_ended", "transactions", "items",
          "tickets_issued", "tickets_called", "tickets_served", "tickets_abandoned", "tickets_no_show", "heartbeats",
          "events", "visitors", "dwell_n")


def _versus(value: float, ref: float | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"diff": value - ref, "ratio": value / ref if ref else None}


def bucket(store_id: str, start_ms: int, rng: random.Random, *, status: str = "closed", tz: str = "UTC",
           region: str | None = "north") -> dict[str, Any]:
    """A complete bucket record, valid against the published schema."""
    counts = {name: rng.randrange(0, 50) for name in COUNTS}
    counts["visitors"] = counts["arrivals"]
    sales = round(rng.uniform(0, 900), 2)
    day = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).astimezone(
        zoneinfo.ZoneInfo(tz)).date().isoformat()
    record: dict[str, Any] = {
        "type": "bucket", "store_id": store_id, "region": region, "vertical": "retail", "tz": tz, "day": day,
        "bucket_start": dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bucket_start_ms": start_ms, "bucket_s": 900, "status": status, "revision": 1 if status == "closed" else 0,
        "restated": False, "quality": "ok" if status == "closed" else None, "held_back": [], **counts,
        "sales": sales,
        "conversion_rate": counts["transactions"] / counts["visitors"] if counts["visitors"] else None,
        "avg_basket": sales / counts["transactions"] if counts["transactions"] else None,
        "sales_per_visitor": sales / counts["visitors"] if counts["visitors"] else None,
        "items_per_transaction": counts["items"] / counts["transactions"] if counts["transactions"] else None,
        "dwell_mean_s": rng.uniform(60, 900) if counts["dwell_n"] else None,
        "dwell_p50_s": None, "dwell_p90_s": None, "watermark_ms": start_ms + 1_000_000,
        "last_event_id": None if status == "closed" else "e1", "emitted_at_ms": start_ms + 1_200_000,
    }
    if status == "closed":
        compare = {}
        for name in ("arrivals", "transactions", "tickets_issued"):
            last = rng.choice([None, float(rng.randrange(0, 40))])
            compare[name] = {"value": float(counts[name]), "last_week": last,
                             "vs_last_week": _versus(counts[name], last), "baseline": 12.5,
                             "vs_baseline": _versus(counts[name], 12.5), "ewm": None, "vs_ewm": None}
        record["compare"] = compare
    return record


# -- times -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "want"), [
    ("2026-11-24", dt.datetime(2026, 11, 24, tzinfo=dt.UTC)),
    ("2026-11-24T10:15", dt.datetime(2026, 11, 24, 10, 15, tzinfo=dt.UTC)),
    ("2026-11-24T10:15:00Z", dt.datetime(2026, 11, 24, 10, 15, tzinfo=dt.UTC)),
    ("2026-11-24T10:15:00.250+02:00", dt.datetime(2026, 11, 24, 8, 15, 0, 250_000, tzinfo=dt.UTC)),
])
def test_parse_time(text: str, want: dt.datetime):
    assert parse_time(text) == int(want.timestamp() * 1000)


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-13-01", "24/11/2026", "2026-11-24T25:00"])
def test_parse_time_refuses_what_is_not_a_time(text: str):
    with pytest.raises(ValueError, match="not a date"):
        parse_time(text)


@pytest.mark.parametrize(("argv", "message"), [
    (["--from", "2026-11-32", "--to", "2026-12-01"], "not a date"),
    (["--from", "2026-11-02", "--to", "2026-11-01"], "must be before --to"),
    (["--from", "2026-11-01", "--to", "2026-11-01"], "must be before --to"),
])
def test_bad_dates_exit_2_with_a_message(argv: list[str], message: str):
    result = subprocess.run([*FOOTFALL, "export", *argv], capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "FOOTFALL_BROKER": "127.0.0.1:1"})
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


# -- last revision -----------------------------------------------------------------------------------


def test_last_read_wins_without_revisions():
    rng = random.Random(1)
    kept = LastRevisions()
    first, second = bucket("a", 0, rng), bucket("a", 0, rng)
    kept.offer(first)
    kept.offer(second)
    kept.offer(bucket("b", 0, rng))
    assert len(kept) == 2
    assert next(kept.records()) == second != first


def test_highest_revision_wins_whatever_the_order():
    rng = random.Random(2)
    for order in ([1, 2, 3], [3, 1, 2], [2, 3, 1], [1, 3, 2]):
        kept = LastRevisions()
        records = {rev: bucket("a", 900_000, rng) | {"revision": rev} for rev in order}
        for rev in order:
            kept.offer(records[rev])
        assert list(kept.records()) == [records[3]]
    # equal revisions: the later one read
    kept = LastRevisions()
    a, b = bucket("a", 0, rng) | {"revision": 2}, bucket("a", 0, rng) | {"revision": 2}
    kept.offer(a)
    kept.offer(b)
    assert list(kept.records()) == [b] != [a]


def test_offer_keeps_closed_buckets_in_range_of_the_stores_asked():
    rng = random.Random(3)
    kept = LastRevisions()
    lo, hi = 10 * 900_000, 20 * 900_000
    candidates = [
        bucket("a", lo, rng),  # kept: first bucket of the range
        bucket("a", hi - 900_000, rng),  # kept: last
        bucket("a", hi, rng),  # `to` is exclusive
        bucket("a", lo - 900_000, rng),  # before
        bucket("a", lo + 900_000, rng, status="open"),  # open
        bucket("z", lo, rng),  # another store
    ]
    for record in candidates:
        _offer(kept, orjson.dumps(record), lo, hi, frozenset({"a"}))
    for value in (b"not json", b'"closed"', orjson.dumps({"type": "live", "status": "closed"}), None):
        _offer(kept, value, lo, hi, frozenset())
    assert [(r["store_id"], r["bucket_start_ms"]) for r in kept.records()] == [("a", lo), ("a", hi - 900_000)]


# -- CSV ------------------------------------------------------------------------------------------------


def test_columns_are_the_documented_fields_flattened():
    schema = record_schema("bucket")
    columns = bucket_columns()
    scalars = [name for name in schema["properties"] if name != "compare"]
    assert [c for c in columns if "." not in c] == scalars
    nested = [c for c in columns if c.startswith("compare.")]
    # 3 quantities x (value, last_week, baseline, ewm + 3 comparisons x (diff, ratio))
    assert len(nested) == 3 * (4 + 3 * 2)
    assert "compare.tickets_issued.vs_ewm.ratio" in nested
    assert len(set(columns)) == len(columns)
    assert bucket_columns() == columns  # stable


def test_csv_rows_hold_every_field_of_valid_records():
    rng = random.Random(4)
    validator = jsonschema.Draft202012Validator(record_schema("bucket"))
    records = [bucket(f"s{i % 3}", i * 900_000, rng, region=rng.choice(["north", None])) for i in range(40)]
    for record in records:
        validator.validate(record)
    columns = bucket_columns()
    out = io.StringIO()
    assert write(records, out, "csv", columns) == len(records)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == columns
    for record, row in zip(records, rows, strict=True):
        flat = flatten(record)
        assert set(flat) <= set(columns) | {f"compare.{q}.{v}" for q in ("arrivals", "transactions", "tickets_issued")
                                             for v in ("vs_last_week", "vs_baseline", "vs_ewm")}
        for column in columns:
            value = flat.get(column)
            if value is None:
                assert row[column] == "", column
            elif isinstance(value, bool):  # JSON's spelling, as documented
                assert row[column] == ("true" if value else "false"), column
            elif isinstance(value, float):
                assert float(row[column]) == value, column
            else:
                assert row[column] == str(value), column


def test_jsonl_is_the_records_as_published():
    rng = random.Random(5)
    records = [bucket("a", i * 900_000, rng) for i in range(5)]
    out = io.StringIO()
    write(records, out, "jsonl", bucket_columns())
    assert [orjson.loads(line) for line in out.getvalue().splitlines()] == records


# -- daily summaries ------------------------------------------------------------------------------


def test_daily_sums_equal_brute_force():
    rng = random.Random(6)
    records = []
    for store, tz in (("a", "UTC"), ("b", "Europe/London"), ("c", "America/New_York")):
        start = int(dt.datetime(2026, 3, 27, tzinfo=dt.UTC).timestamp() * 1000)  # over a DST change
        for i in range(4 * 24 * 4):
            if rng.random() < 0.8:
                records.append(bucket(store, start + i * 900_000, rng, tz=tz))
    rows = daily_summaries(records)
    want: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    for r in records:
        w = want[(r["store_id"], r["day"])]
        w["buckets"] += 1
        for name in DAILY_SUMMED:
            w[name] += r[name]
        w["dwell_sum"] += (r["dwell_mean_s"] or 0) * r["dwell_n"]
    assert [(r["store_id"], r["day"]) for r in rows] == sorted(want)
    for row in rows:
        w = want[(row["store_id"], row["day"])]
        assert list(row) == list(DAILY_COLUMNS)
        assert row["buckets"] == w["buckets"]
        for name in DAILY_SUMMED:
            if name == "sales":
                assert row[name] == pytest.approx(w[name], abs=0.005)
            else:
                assert row[name] == w[name] and isinstance(row[name], int), name
        assert row["conversion_rate"] == pytest.approx(w["transactions"] / w["visitors"], abs=1e-6)
        assert row["avg_basket"] == pytest.approx(row["sales"] / w["transactions"], abs=1e-6)
        assert row["dwell_mean_s"] == pytest.approx(w["dwell_sum"] / w["dwell_n"], abs=1e-6)
    # local days: New York's day starts at 04:00 or 05:00 UTC, so its first day is the 26th
    assert {r["day"] for r in rows if r["store_id"] == "c"} >= {"2026-03-26", "2026-03-30"}
    assert all(r["buckets"] <= 100 for r in rows)  # a local day of 15-minute buckets, 23-25 hours
