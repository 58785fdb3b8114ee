"""Adding a per-store capability is a stage module and one registration line: shown end to end.

The toy stage (`tests/integration/toystage.py`) is named by `FOOTFALL_EXTRA_STAGES` (the same
line `operators.pipeline.store_pipeline.STAGES` would hold for a built-in one). Through a real worker, Kafka and
Redis, its own record kind reaches its own topic and Redis keys, valid against the JSON Schema
generated from its declaration; its state survives a restart of the worker. Every record is
compared with a brute-force computation from the events sent.
"""

from __future__ import annotations

import time
from typing import Any

import jsonschema
import orjson
import pytest
import redis
from kafka import KafkaConsumer

from footfall.schemas.keys import RedisKeys
from footfall.schemas.records import record_schema
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import send_all
from tests.integration.toystage import PEAK

pytestmark = pytest.mark.integration

MINUTE_MS = 60_000
# Arrivals per one-minute bucket, per store, before and after the restart. Each store's last bucket
# stays open (nothing after it moves its event time on); the others close.
BEFORE = {"toy-a": [3, 7, 2, 5], "toy-b": [4, 1, 6]}
AFTER = {"toy-a": [2, 1, 1], "toy-b": [0, 9, 2]}


def door_events(store_id: str, first_bucket: int, arrivals: list[int], t0: int) -> list[dict[str, Any]]:
    events = []
    for b, n in enumerate(arrivals, start=first_bucket):
        start = t0 + b * MINUTE_MS
        # An empty bucket still gets one event with nobody in it: a heartbeat keeps event time moving.
        events += [{"event_id": f"{store_id}-{b}-{i}", "store_id": store_id, "kind": "door",
                    "ts": start + 1_000 + i * 100, "schema_version": 1, "door_id": "d", "sensor_id": "c",
                    "direction": "in"} for i in range(n)]
        if n == 0:
            events.append({"event_id": f"{store_id}-{b}-hb", "store_id": store_id, "kind": "heartbeat",
                           "ts": start + 1_000, "schema_version": 1, "sensor_id": "c"})
    return events


def expected_peaks(t0: int) -> dict[tuple[str, int], dict[str, int]]:
    """Brute force: every closed bucket's arrivals and the store's largest closed bucket up to it."""
    out = {}
    for store_id in BEFORE:
        counts = BEFORE[store_id] + AFTER[store_id]
        peak = 0
        for b, n in enumerate(counts[:-1]):  # the last bucket stays open
            peak = max(peak, n)
            out[(store_id, t0 + b * MINUTE_MS)] = {"arrivals": n, "peak_arrivals": peak}
    return out


def topic_records(bootstrap: str, topic: str, want: int, timeout_s: float = 60) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=1_000)
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < want and time.monotonic() < deadline:
            found += [orjson.loads(m.value) for m in consumer]
    finally:
        consumer.close()
    return found


def test_a_toy_stage_publishes_its_own_records_through_kafka_and_redis(services, worker_factory, unique_prefix):
    t0 = (int(time.time() * 1000) - 3 * 3_600_000) // MINUTE_MS * MINUTE_MS  # three hours ago, on a minute
    topic = f"{unique_prefix}.events"
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4,
                           extra_stages="tests.integration.toystage:PeakArrivals"))
    worker = worker_factory(bucket_s=60, grace_s=0, idle_timeout_s=0, forecast_horizon_h=0,
                            extra_stages="tests.integration.toystage:PeakArrivals").start()
    client = redis.Redis.from_url(services.redis_url)
    keys = RedisKeys(unique_prefix)

    def closed_peaks() -> dict[tuple[str, int], dict[str, Any]]:
        found = {}
        for store_id in BEFORE:
            for _, fields in client.xrange(keys.store_record_history(store_id, "peak")):
                record = orjson.loads(fields[b"record"])
                found[(record["store_id"], record["bucket_start_ms"])] = record
        return found

    send_all(services.bootstrap, topic, [(s.encode(), orjson.dumps(e)) for s, counts in BEFORE.items()
                                         for e in door_events(s, 0, counts, t0)])
    before = sum(len(c) - 1 for c in BEFORE.values())
    wait_until(lambda: len(closed_peaks()) >= before, 90, "the peak records of the first batch")
    assert worker.stop() == 0
    worker.start()  # the stage's state comes back from the changelog
    send_all(services.bootstrap, topic, [(s.encode(), orjson.dumps(e)) for s, counts in AFTER.items()
                                         for e in door_events(s, len(BEFORE[s]), counts, t0)])
    want = expected_peaks(t0)
    wait_until(lambda: len(closed_peaks()) >= len(want), 90, "the peak records of the second batch")

    schema = record_schema(PEAK)
    from_redis = closed_peaks()
    assert set(from_redis) == set(want)
    for key, record in from_redis.items():
        jsonschema.validate(record, schema)
        assert {k: record[k] for k in ("arrivals", "peak_arrivals")} == want[key], key
    # toy-a's peak of 7 came before the restart: it is still the peak after it.
    assert from_redis[("toy-a", t0 + 5 * MINUTE_MS)]["peak_arrivals"] == 7

    on_topic = topic_records(services.bootstrap, f"{unique_prefix}.peaks", len(want))
    assert {(r["store_id"], r["bucket_start_ms"]) for r in on_topic} == set(want)
    for record in on_topic:  # a record sent twice (a message re-applied after the restart) holds the same values
        jsonschema.validate(record, schema)
        assert {k: record[k] for k in ("arrivals", "peak_arrivals")} == want[(record["store_id"],
                                                                              record["bucket_start_ms"])]
    for store_id in BEFORE:  # the latest per store, replaced whole
        latest = orjson.loads(client.get(keys.store_record(store_id, "peak")))
        newest = max(start for s, start in want if s == store_id)
        assert latest["bucket_start_ms"] == newest and latest["type"] == "peak"
        jsonschema.validate(latest, schema)
    assert worker.alive
