"""`footfall replay` and `footfall simulate` against a real Kafka: what the CLI sends is what lands in the topic."""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from footfall.schemas import Limits, decode_message
from footfall.scripts.simulation import generate, make_stores, take_events
from tests import SHARED_DATA

pytestmark = pytest.mark.integration

BANK_CALLS = SHARED_DATA / "bank_calls" / "bank_calls_5min.csv"
AUCKLAND = SHARED_DATA / "auckland_pedestrians" / "auckland_hourly_counts.csv"
LIMITS = Limits(min_ts_ms=0, max_future_ms=3_600_000)


def run_cli(services, prefix: str, *args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, FOOTFALL_BROKER=services.bootstrap, FOOTFALL_TOPIC_PREFIX=prefix)
    result = subprocess.run(
        [sys.executable, "-m", "footfall.scripts.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def consume_all(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list:
    """Every record of `topic`, from the beginning up to the end offsets seen now."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        deadline = time.monotonic() + timeout_s
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            assert time.monotonic() < deadline, f"no metadata for {topic}"
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, f"read {len(records)} records of {topic} before the deadline"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def decoded_events(records: list) -> tuple[list, int]:
    """Valid events and the number of rejects over all records; each event sits under its store's key."""
    events, rejects = [], 0
    now_ms = int(time.time() * 1000)
    for r in records:
        d = decode_message(r.value, now_ms=now_ms, limits=LIMITS)
        assert all(e.store_id == r.key.decode() for e in d.events)
        events.extend(d.events)
        rejects += len(d.rejects)
    return events, rejects


def test_replay_sends_the_csv_slice(services, unique_prefix: str, tmp_path: Path):
    # 400 rows of bank calls, with three cells blanked to check that gaps stay gaps end to end.
    with BANK_CALLS.open(newline="") as f:
        rows = [row for _, row in zip(range(401), csv.reader(f), strict=False)]
    for i in (5, 6, 200):
        rows[i][1] = ""
    path = tmp_path / "slice.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    expected = [int(r[1]) for r in rows[1:] if r[1]]

    result = run_cli(services, unique_prefix, "replay", "--csv", str(path), "--timestamp-col", "timestamp_local",
                     "--value-col", "calls", "--store-id", "bank-calls", "--vertical", "bank", "--batch", "7",
                     "--no-progress")
    assert "3 empty cells" in result.stderr

    records = consume_all(services.bootstrap, f"{unique_prefix}.events")
    events, rejects = decoded_events(records)
    assert rejects == 0
    assert len(events) == len(expected) == 397
    assert sum(e.count_in for e in events) == sum(expected)
    assert len({e.event_id for e in events}) == len(events)
    assert len(records) == -(-len(expected) // 7)  # batches of 7, the last one partial
    assert {r.key for r in records} == {b"bank-calls"} and len({r.partition for r in records}) == 1


def test_replay_of_several_sensors_keys_each_store(services, unique_prefix: str, tmp_path: Path):
    columns = ["45 Queen Street", "150 K Road", "188 Quay Street Lower Albert (EW)"]  # the last is empty in 2019
    run_cli(services, unique_prefix, "replay", "--csv", str(AUCKLAND), "--timestamp-col", "timestamp_local",
            *[arg for c in columns for arg in ("--value-col", c)], "--store-id", "akl",
            "--timezone", "Pacific/Auckland", "--max-rows", "240", "--no-progress")
    with AUCKLAND.open(newline="") as f:
        rows = [row for _, row in zip(range(240), csv.DictReader(f), strict=False)]

    events, rejects = decoded_events(consume_all(services.bootstrap, f"{unique_prefix}.events"))
    assert rejects == 0
    per_store = Counter()
    for e in events:
        per_store[e.store_id] += e.count_in
    assert per_store == {
        "akl-45-queen-street": sum(int(r["45 Queen Street"]) for r in rows),
        "akl-150-k-road": sum(int(r["150 K Road"]) for r in rows),
    }
    first = min(e.ts_ms for e in events)
    assert first == int(dt.datetime(2018, 12, 31, 17, tzinfo=dt.UTC).timestamp() * 1000)  # 06:00 NZDT


def test_simulate_sends_what_the_generator_makes(services, unique_prefix: str):
    args = dict(stores=3, seed=11, start="2024-03-04T00:00:00Z", duration_h=24, max_events=2500,
                malformed=0.01, batch=5)
    result = run_cli(services, unique_prefix, "simulate", "--stores", str(args["stores"]), "--seed", str(args["seed"]),
                     "--start", args["start"], "--duration", str(args["duration_h"]), "--speed", "0",
                     "--max-events", str(args["max_events"]), "--malformed-fraction", str(args["malformed"]),
                     "--batch", str(args["batch"]), "--progress-s", "0")
    start_ms = int(dt.datetime.fromisoformat(args["start"]).timestamp() * 1000)
    expected = list(take_events(
        generate(make_stores(args["stores"], args["seed"]), start_ms=start_ms,
                 end_ms=start_ms + args["duration_h"] * 3_600_000, seed=args["seed"],
                 malformed_fraction=args["malformed"], batch_size=args["batch"]),
        args["max_events"],
    ))
    assert f"{sum(m.events for m in expected):,} events" in result.stderr

    records = consume_all(services.bootstrap, f"{unique_prefix}.events")
    assert Counter((r.key.decode(), r.value) for r in records) == Counter((m.store_id, m.payload) for m in expected)
    events, rejects = decoded_events(records)
    assert len(events) == sum(m.events for m in expected) >= args["max_events"]
    assert rejects == sum(m.malformed for m in expected) > 0
    assert sum(e.count_in for e in events if e.kind == "door") == sum(
        e.count_in for m in expected for e in decode_message(m.payload, now_ms=int(time.time() * 1000),
                                                              limits=LIMITS).events if e.kind == "door")
    # A store's messages stay in one partition, in the order they were made.
    for store_id in {m.store_id for m in expected}:
        mine = [r for r in records if r.key.decode() == store_id]
        assert len({r.partition for r in mine}) == 1
        assert [r.value for r in sorted(mine, key=lambda r: r.offset)] == [
            m.payload for m in expected if m.store_id == store_id
        ]
