"""A worker refuses to start on state made with other state-shaping settings, on real Kafka and Redis.

The stores' saved state is made of buckets of `FOOTFALL_BUCKET_S`: a restart with another length
must neither misread it nor dead-letter valid events. The worker exits non-zero before consuming,
naming the setting, both values and what to do; restarted with the old value it goes on, exactly.
"""

from __future__ import annotations

import time
from collections import Counter

import orjson
import pytest
import redis
from kafka import KafkaConsumer, TopicPartition

from footfall.schemas.keys import RedisKeys
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.faults.faultkit import bucket_row
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import redis_buckets, send_all

pytestmark = pytest.mark.integration


def door(i: int, store: str, ts_ms: int) -> tuple[bytes, bytes]:
    return store.encode(), orjson.dumps({"event_id": f"{store}-{i}", "store_id": store, "kind": "door", "ts": ts_ms,
                                         "schema_version": 1, "door_id": "d", "sensor_id": "c", "direction": "in"})


def stats(client: redis.Redis, prefix: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(RedisKeys(prefix).stats).items()}


def dead_letters_on_topic(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        begins, ends = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        return sum(ends[tp] - begins[tp] for tp in tps)
    finally:
        consumer.close()


def test_a_changed_bucket_length_is_refused_and_the_old_one_goes_on_exactly(services, worker_factory, unique_prefix):
    events_topic = f"{unique_prefix}.events"
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    client = redis.Redis.from_url(services.redis_url)
    t0 = int(time.time() * 1000) - 20_000
    first = [door(i, f"s{i % 2}", t0 + i * 500) for i in range(6)]
    later = [door(i, f"s{i % 2}", t0 + i * 500) for i in range(6, 10)]
    settings = {"bucket_s": 60, "grace_s": 60, "idle_timeout_s": 0}

    worker = worker_factory(**settings).start()
    send_all(services.bootstrap, events_topic, first)
    wait_until(lambda: stats(client, unique_prefix).get("events") == 6, 90, "the first 6 events counted")
    assert worker.stop() == 0

    # The same state, another bucket length: refused before anything is consumed.
    send_all(services.bootstrap, events_topic, later)
    refused = worker_factory(**{**settings, "bucket_s": 300}).start()
    deadline = time.monotonic() + 90
    while refused.alive and time.monotonic() < deadline:
        time.sleep(0.25)
    assert not refused.alive, "the worker started on state made with another bucket length"
    assert refused.proc is not None and refused.proc.returncode != 0
    log = refused.log_text()
    assert "refusing to start" in log
    assert "FOOTFALL_BUCKET_S is 300 now" in log and "FOOTFALL_BUCKET_S=60" in log, log[-3000:]
    assert "FOOTFALL_APP_ID" in log, "says what to do"
    assert stats(client, unique_prefix).get("events") == 6, "nothing consumed"
    assert not client.hgetall(RedisKeys(unique_prefix).dead_letter_counts), "nothing dead-lettered"
    assert dead_letters_on_topic(services.bootstrap, f"{unique_prefix}.dead-letter") == 0

    # Back to the old length: it goes on from where the state was, every event counted once.
    restarted_at = time.monotonic()
    again = worker_factory(**settings).start()
    wait_until(lambda: stats(client, unique_prefix).get("events") == 10, 90, "all 10 events counted")
    expected = Counter()
    for key, value in first + later:
        event = orjson.loads(value)
        expected[(key.decode(), event["ts"] - event["ts"] % 60_000)] += 1
    wait_until(lambda: {k: r["events"] for k, r in redis_buckets(client, unique_prefix).items()} == expected, 30,
               "per-bucket counts equal to the events sent")
    bucket_row("bucket length changed across a restart (refused), then the old one", len(first) + len(later),
               expected, Counter({k: r["events"] for k, r in redis_buckets(client, unique_prefix).items()}),
               {k.decode(): int(v) for k, v in client.hgetall(RedisKeys(unique_prefix).dead_letter_counts).items()},
               time.monotonic() - restarted_at, refused_exit_code=refused.proc.returncode)
    found = stats(client, unique_prefix)
    assert found["events"] == 10 and not found.get("duplicates") and not found.get("late")
    assert not client.hgetall(RedisKeys(unique_prefix).dead_letter_counts)
    assert dead_letters_on_topic(services.bootstrap, f"{unique_prefix}.dead-letter") == 0
    assert again.alive
    assert again.stop() == 0
