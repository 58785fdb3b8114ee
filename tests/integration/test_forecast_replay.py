"""Live forecasts through the real stack equal the offline ones, across a crash of the worker.

Three weeks of calit2's door counts go to Kafka as one interval report per half
hour; a worker counts them, learns each closed bucket and publishes forecasts to
Redis. The worker is killed (SIGKILL: no flush, no commit) mid-stream and
restarted. Every forecast published, before and after the crash, repeats
included, must equal what `StoreForecasts` makes offline from the same counts in
one uninterrupted run: the restored models continue exactly where they were.
The offline side runs the worker's own operators (decoding, `StoreFlow`,
`StoreModels`: forecasts and the watches whose verdicts they learn) over the
same messages, without Kafka, Redis or Faust.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import zoneinfo

import orjson
import pytest
import redis
from kafka import KafkaProducer

from footfall.schemas.keys import RedisKeys
from footfall.scripts.forecastreplay import PER_MESSAGE, compare, offline_records, published_records, series_events
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests import SHARED_DATA
from tests.integration.conftest import PSEUDONYM_SECRET, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared data sets not present"),
]

CALIT2 = SHARED_DATA / "calit2" / "calit2_counts.csv"
HALF_HOUR = 1_800_000
TZ = "America/Los_Angeles"


def _calit2_in(weeks: int) -> tuple[list[int], list[float | None]]:
    zone = zoneinfo.ZoneInfo(TZ)
    starts, values = [], []
    with open(CALIT2, newline="") as f:
        for row in csv.DictReader(f):
            local = dt.datetime.fromisoformat(row["timestamp"]).replace(tzinfo=zone)
            starts.append(int(local.timestamp() * 1000))
            values.append(float(row["in_count"]))
            if len(starts) == weeks * 7 * 48:
                break
    return starts, values


@pytest.mark.parametrize("interruption", ["kill_9", "rebalance"])
def test_published_forecasts_equal_offline_ones_across_an_interruption(services, worker_factory, unique_prefix,
                                                                       interruption):
    starts, values = _calit2_in(weeks=3)
    # The file's half hours follow each other without a gap: the stack and the offline run see the same.
    assert all(b - a == HALF_HOUR for a, b in itertools.pairwise(starts))
    events = series_events(starts, values, HALF_HOUR, "calit2", "retail", grace_ms=300_000)
    settings = dict(bucket_s=1800, timezone=TZ, idle_timeout_s=0, forecast_horizon_h=24, history_maxlen=100_000)
    offline = offline_records(events, Settings(pseudonym_secret=PSEUDONYM_SECRET, **settings), PER_MESSAGE)
    assert len(offline) == len(starts)

    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker = worker_factory(**settings).start()
    client = redis.Redis.from_url(services.redis_url)
    history = RedisKeys(unique_prefix).store_forecast_history("calit2")
    producer = KafkaProducer(bootstrap_servers=services.bootstrap, linger_ms=5)
    half = len(events) // 2
    half -= half % PER_MESSAGE  # the same messages as offline: what a bucket's close reads depends on them
    for i in range(0, half, PER_MESSAGE):
        producer.send(f"{unique_prefix}.events", key=b"calit2", value=orjson.dumps(events[i:i + PER_MESSAGE]))
    producer.flush()
    wait_until(lambda: client.xlen(history) >= 300, 120, "the first forecasts published")
    if interruption == "kill_9":  # a crash: no flush, no commit; the same worker comes back
        worker.stop(signal.SIGKILL)
        assert client.xlen(history) < 2 * len(starts), "the crash must come mid-stream"
        worker.start()
    else:  # a second worker joins, the first leaves: the store's partition and its models move over
        second = worker_factory(**settings).start()
        wait_until(lambda: "assigned" in second.log_text().lower() or "first message" in second.log_text(), 60,
                   "the second worker in the group")
        worker.stop(signal.SIGTERM)
    for i in range(half, len(events), PER_MESSAGE):
        producer.send(f"{unique_prefix}.events", key=b"calit2", value=orjson.dumps(events[i:i + PER_MESSAGE]))
    producer.flush()
    producer.close()
    last = max(offline)

    def done() -> bool:
        latest = client.hget(RedisKeys(unique_prefix).store_forecast("calit2"), "arrivals")
        return latest is not None and orjson.loads(latest)["made_at_ms"] == last

    wait_until(done, 180, "the forecast made at the last bucket")
    if interruption == "rebalance":
        assert "first message" in second.log_text(), "the second worker must have taken the store over"
    # Repeats (buckets learned again after the crash) must be identical to the first publication.
    by_made_at: dict[int, list[dict]] = {}
    for _, fields in client.xrange(history):
        record = orjson.loads(fields[b"record"])
        if record["series"] == "arrivals":
            by_made_at.setdefault(record["made_at_ms"], []).append(record)
    repeats = {k: v for k, v in by_made_at.items() if len(v) > 1}
    for made_at, records in repeats.items():
        assert all(r["points"] == records[0]["points"] and r["model"] == records[0]["model"] for r in records), made_at
    comparison = compare(published_records(client, unique_prefix, "calit2"), offline)
    assert comparison.missing == [], comparison.summary()
    assert comparison.mismatches == [], comparison.summary()
    assert comparison.equal == len(offline)
    # After a week of history the store is no longer cold.
    assert any(not r["cold"] for r in published_records(client, unique_prefix, "calit2").values())


def test_evaluate_forecast_replay_command(services, tmp_path):
    rows = tmp_path / "calit2_4_days.csv"
    with open(CALIT2, newline="") as f:
        lines = f.readlines()[: 1 + 4 * 48]
    rows.write_text("".join(lines))
    env = {**os.environ, "FOOTFALL_BROKER": services.bootstrap, "FOOTFALL_REDIS_URL": services.redis_url}
    result = subprocess.run(
        [sys.executable, "-m", "footfall.scripts.cli", "evaluate", "forecast", "--csv", str(rows),
         "--timestamp-col", "timestamp", "--value-col", "in_count", "--freq", "30min", "--tz", TZ,
         "--horizon-h", "6", "--replay", "--out", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "replay_report.json").read_text())["comparison"]
    assert report["all_equal"] and report["compared"] == report["offline"] == 4 * 48, report
    assert "192 of 192 offline forecasts compared" in result.stdout
