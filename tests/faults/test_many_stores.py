"""6,000 distinct store ids through one worker: idle stores leave memory (`FOOTFALL_STORE_IDLE_EVICT_S`), so
the stores held fall back once their buckets closed; an evicted store's next events continue its counts
exactly; ids outside `FOOTFALL_STORE_IDS` are dead-lettered; a store's current-state keys expire in Redis."""

from __future__ import annotations

import re
import time
from collections import Counter

import orjson
import pytest
import redis

from footfall.schemas.keys import RedisKeys
from footfall.scripts.stack import free_port
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.faults.test_redis_lost_before_checkpoint import health
from tests.faults.test_redis_outage import metric
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import redis_buckets, send_all

pytestmark = [pytest.mark.integration, pytest.mark.faults]

# 6,000: enough to see the stores held climb past 1,000 and fall back. With 20,000 (3 minutes alone) the
# worker, sharing 2 cores with the rest of the suite, took 5-12 s a flush and evicted too slowly to pass.
STORES = 6_000
BUCKET_MS = 60_000


def door(event_id: str, store: str, ts_ms: int) -> dict:
    return {"event_id": event_id, "store_id": store, "kind": "door", "ts": ts_ms, "schema_version": 1,
            "door_id": "main", "sensor_id": "cnt-1", "direction": "in"}


def test_thousands_of_store_ids_leave_memory_when_idle_and_come_back_whole(services, worker_factory, unique_prefix):
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    port = free_port()
    worker = worker_factory(web_enabled="true", web_port=port, bucket_s=60, grace_s=0, idle_timeout_s=1,
                            store_idle_evict_s=2, forecast_horizon_h=0, store_ids="many-*").start()
    wait_until(lambda: health(port) == 200, 90, "the worker up")
    client = redis.Redis.from_url(services.redis_url)
    topic = f"{unique_prefix}.events"

    # One event per store, each a second before its bucket's end: an idle tick closes it a second or two later.
    now = int(time.time() * 1000)
    bucket = (now - 10 * BUCKET_MS) // BUCKET_MS * BUCKET_MS
    first = [door(f"a-{n}", f"many-{n:05d}", bucket + BUCKET_MS - 1_000) for n in range(STORES)]
    messages = [(e["store_id"].encode(), orjson.dumps(e)) for e in first]
    messages.append((b"other-1", orjson.dumps(door("x-1", "other-1", bucket))))  # not an allowed id
    peak = 0

    def in_memory() -> float:
        nonlocal peak
        held = metric(port, "footfall_stores_in_memory")
        peak = max(peak, int(held))
        return held

    send_all(services.bootstrap, topic, messages, pause_every=2_000, pause_s=0.2)

    def counted() -> Counter:
        return Counter({key: int(r["arrivals"]) for key, r in redis_buckets(client, unique_prefix).items()
                        if r["arrivals"] and r["status"] == "closed"})

    brute = Counter((e["store_id"], e["ts"] // BUCKET_MS * BUCKET_MS) for e in first)
    wait_until(lambda: in_memory() >= 0 and counted() == brute, 300, "every store's bucket closed in Redis",
               interval_s=2)
    wait_until(lambda: in_memory() <= 50, 120, "the idle stores evicted from memory", interval_s=1)

    def evicted() -> list[int]:
        pattern = r"evicted \d+ idle stores from memory \(\d+ left, (\d+) since start\)"
        return [int(n) for n in re.findall(pattern, worker.log_text())]

    # The last few stores leave at the next eviction pass after the gauge read 50 or fewer (measured: 5,954 of
    # 6,000 logged at that moment): wait for the log to say every store left.
    wait_until(lambda: bool(evicted()) and evicted()[-1] >= STORES, 60, "the log saying every store was evicted",
               interval_s=1)
    assert client.hget(RedisKeys(unique_prefix).dead_letter_counts, "unknown_store") == b"1"
    assert not client.exists(RedisKeys(unique_prefix).store_latest("other-1"))

    # Evicted stores come back on their next events: the same bucket again (a restated revision), a repeat of
    # the event counted before the eviction (a duplicate: their dedupe memory came back too), and a new bucket.
    back = [f"many-{n:05d}" for n in range(0, STORES, 1_000)]
    later = (int(time.time() * 1000)) // BUCKET_MS * BUCKET_MS
    second = [door(f"b-{s}", s, bucket + 30_000) for s in back] + [door(f"c-{s}", s, later + 1_000) for s in back]
    repeats = [e for e in first if e["store_id"] in back]
    send_all(services.bootstrap, topic, [(e["store_id"].encode(), orjson.dumps(e)) for e in second + repeats])
    brute_back = Counter((e["store_id"], e["ts"] // BUCKET_MS * BUCKET_MS) for e in first + second
                         if e["store_id"] in back)

    def counted_back() -> Counter:
        return Counter({key: int(r["arrivals"]) for key, r in redis_buckets(client, unique_prefix).items()
                        if key[0] in back and r["arrivals"]})

    wait_until(lambda: counted_back() == brute_back, 120, "the returning stores' buckets = brute force")
    assert counted() == brute + Counter({(s, bucket): 1 for s in back}), "the others unchanged, the restated ones 2"
    keys = RedisKeys(unique_prefix)
    for store in back[:3]:
        assert 0 < client.ttl(keys.store_latest(store)) <= 8 * 86_400
        assert 0 < client.ttl(keys.store_live(store)) <= 8 * 86_400
    wait_until(lambda: in_memory() <= 50, 120, "the returned stores evicted again", interval_s=1)
    assert peak >= 1_000, f"stores in memory peaked at {peak}"
