"""Real data through the real stack: `footfall replay` -> Kafka -> worker -> Redis, exact per bucket.

The expected counts come straight from the CSV files with the csv module and zoneinfo,
written apart from the replay tool. Buckets without a row close as zeros (empty buckets
are real), so every bucket not in the CSV must hold zeros.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import subprocess
import sys
import zoneinfo
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import redis

from footfall.schemas.keys import RedisKeys
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests import SHARED_DATA
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import redis_buckets

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data sets not present"),
]


def _utc_ms(local: str, tz: str) -> int:
    # fold=0 for repeated and skipped wall-clock times, as documented for the replay tool.
    return int(dt.datetime.fromisoformat(local).replace(tzinfo=zoneinfo.ZoneInfo(tz)).timestamp() * 1000)


def _rows(path: Path, limit: int | None) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows if limit is None else rows[:limit]


def _replay(services, prefix: str, args: list[str]) -> None:
    env = {**os.environ, "FOOTFALL_BROKER": services.bootstrap, "FOOTFALL_TOPIC_PREFIX": prefix}
    result = subprocess.run([sys.executable, "-m", "footfall.scripts.cli", "replay", *args, "--speed", "0",
                             "--batch", "100", "--no-progress"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def _check(services, prefix: str, expected: dict[tuple[str, int], Counter], fields: tuple[str, ...]) -> None:
    client = redis.Redis.from_url(services.redis_url)
    keys = RedisKeys(prefix)
    want_events = sum(c["events"] for c in expected.values())
    wait_until(lambda: int(client.hget(keys.stats, "events") or 0) >= want_events, 180,
               f"{want_events} events counted")

    def complete() -> bool:
        found = redis_buckets(client, prefix)
        return all(k in found and all(found[k][f] == c[f] for f in fields) for k, c in expected.items())

    # The counters are written after the records they count; a slow flush may still be writing the last ones.
    with contextlib.suppress(AssertionError):  # the asserts below say what is missing or wrong
        wait_until(complete, 30, "every bucket written")
    found = redis_buckets(client, prefix)
    missing = [k for k in expected if k not in found]
    assert not missing, f"{len(missing)} buckets missing, first {missing[:3]}"
    wrong = [(k, f, found[k][f], c[f]) for k, c in expected.items() for f in fields if found[k][f] != c[f]]
    assert not wrong, f"{len(wrong)} wrong counts, first {wrong[:5]}"
    extra = [k for k in found if k not in expected and (found[k]["events"] or any(found[k][f] for f in fields))]
    assert not extra, f"buckets with counts the CSV does not have: {extra[:5]}"
    assert int(client.hget(keys.stats, "late") or 0) == 0
    assert not client.hgetall(keys.dead_letter_counts)


@pytest.fixture
def replay_worker(services, worker_factory, unique_prefix):
    def start(bucket_s: int):
        ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
        # Counts only: forecasting every bucket of these files would double the run for nothing these
        # tests check (tests/integration/test_forecast_replay.py replays with forecasts on).
        return worker_factory(bucket_s=bucket_s, forecast_horizon_h=0).start()

    return start


def test_calit2_door_counts_per_half_hour(services, replay_worker, unique_prefix):
    path = SHARED_DATA / "calit2" / "calit2_counts.csv"
    expected: dict[tuple[str, int], Counter] = defaultdict(Counter)
    for row in _rows(path, None):
        key = ("calit2", _utc_ms(row["timestamp"], "America/Los_Angeles") // 1_800_000 * 1_800_000)
        expected[key].update(arrivals=int(row["in_count"]), departures=int(row["out_count"]), events=1)
    replay_worker(1800)
    _replay(services, unique_prefix, ["--csv", str(path), "--timestamp-col", "timestamp", "--value-col", "in_count",
                                      "--out-col", "out_count", "--timezone", "America/Los_Angeles",
                                      "--store-id", "calit2"])
    _check(services, unique_prefix, expected, ("arrivals", "departures"))


def test_bank_calls_per_five_minutes(services, replay_worker, unique_prefix):
    path = SHARED_DATA / "bank_calls" / "bank_calls_5min.csv"
    rows = 8_000
    expected: dict[tuple[str, int], Counter] = defaultdict(Counter)
    for row in _rows(path, rows):
        expected[("bank-calls", _utc_ms(row["timestamp_local"], "UTC") // 300_000 * 300_000)].update(
            arrivals=int(row["calls"]), events=1)
    replay_worker(300)
    _replay(services, unique_prefix, ["--csv", str(path), "--timestamp-col", "timestamp_local", "--value-col",
                                      "calls", "--store-id", "bank-calls", "--max-rows", str(rows)])
    _check(services, unique_prefix, expected, ("arrivals",))


def test_auckland_three_sensors_per_hour_across_dst(services, replay_worker, unique_prefix):
    # 8,000 hours from 2019-01-01: the April 2019 fall-back and the September 2019 spring-forward
    # (whose non-existent 02:00 row lands on the same instant as 03:00, so the two add up).
    path = SHARED_DATA / "auckland_pedestrians" / "auckland_hourly_counts.csv"
    sensors = ["45 Queen Street", "150 K Road", "Te Ara Tahuhu Walkway"]
    rows = 8_000
    expected: dict[tuple[str, int], Counter] = defaultdict(Counter)
    for row in _rows(path, rows):
        start = _utc_ms(row["timestamp_local"], "Pacific/Auckland") // 3_600_000 * 3_600_000
        for sensor in sensors:
            if row[sensor].strip():  # an empty cell is a gap, not a zero
                slug = "".join(ch if ch.isalnum() else "-" for ch in sensor.lower()).strip("-")
                while "--" in slug:
                    slug = slug.replace("--", "-")
                expected[(f"akl-{slug}", start)].update(arrivals=int(row[sensor]), events=1)
    replay_worker(3600)
    args = ["--csv", str(path), "--timestamp-col", "timestamp_local", "--timezone", "Pacific/Auckland",
            "--store-id", "akl", "--max-rows", str(rows)]
    for sensor in sensors:
        args += ["--value-col", sensor]
    _replay(services, unique_prefix, args)
    _check(services, unique_prefix, expected, ("arrivals",))


def test_bread_basket_transactions_per_quarter_hour(services, replay_worker, unique_prefix):
    path = SHARED_DATA / "bread_basket" / "bread_basket_transactions.csv"
    first_seen: dict[str, str] = {}
    items: Counter[str] = Counter()
    for row in _rows(path, None):
        first_seen.setdefault(row["transaction"], row["timestamp_local"])
        items[row["transaction"]] += 1
    expected: dict[tuple[str, int], Counter] = defaultdict(Counter)
    for tx, local in first_seen.items():
        key = ("bread-basket", _utc_ms(local, "Europe/London") // 900_000 * 900_000)
        expected[key].update(transactions=1, items=items[tx], events=1)
    replay_worker(900)
    _replay(services, unique_prefix, ["--csv", str(path), "--timestamp-col", "timestamp_local", "--events-mode",
                                      "transactions", "--id-col", "transaction", "--timezone", "Europe/London",
                                      "--store-id", "bread-basket"])
    _check(services, unique_prefix, expected, ("transactions", "items"))
