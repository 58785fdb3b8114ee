"""A store that goes silent still gets its bucket closed: the idle timeout, on real Kafka and Redis."""

from __future__ import annotations

import time

import orjson
import pytest
import redis

from footfall.schemas.keys import RedisKeys
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import redis_buckets, send_all

pytestmark = pytest.mark.integration


def test_silent_store_bucket_closes_on_the_idle_timeout(services, worker_factory, unique_prefix):
    minute_ms = 60_000
    boundary = int(time.time() * 1000) // minute_ms * minute_ms  # the latest minute boundary, in the past
    events = [
        {"event_id": f"e{i}", "store_id": "quiet-1", "kind": "door", "ts": boundary - 5_000 + i * 1000,
         "schema_version": 1, "door_id": "d", "sensor_id": "c", "direction": "in"}
        for i in range(4)
    ]  # four people in the last 5 seconds of the bucket [boundary - 60 s, boundary), then silence
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker = worker_factory(bucket_s=60, grace_s=0, idle_timeout_s=2).start()
    send_all(services.bootstrap, f"{unique_prefix}.events", [(b"quiet-1", orjson.dumps(e)) for e in events])
    client = redis.Redis.from_url(services.redis_url)
    key = ("quiet-1", boundary - minute_ms)

    wait_until(lambda: key in redis_buckets(client, unique_prefix), 60, "the bucket record")
    record = redis_buckets(client, unique_prefix)[key]
    assert record["status"] == "open" and record["arrivals"] == 4
    # Nothing else is sent: the watermark (boundary - 2 s) moves on with the wall clock once the store
    # has been silent for 2 s, and the bucket closes with its 4 arrivals.
    wait_until(lambda: redis_buckets(client, unique_prefix)[key]["status"] == "closed", 30,
               "the bucket closed by the idle timeout")
    record = redis_buckets(client, unique_prefix)[key]
    assert record["arrivals"] == 4 and record["events"] == 4
    stats = {k.decode(): int(v) for k, v in client.hgetall(RedisKeys(unique_prefix).stats).items()}
    assert stats["idle_ticks"] >= 1
    assert "events" in stats and stats["events"] == 4
    assert worker.alive
