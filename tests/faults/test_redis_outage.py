"""A Redis outage, then Redis back empty: no record repeated on the output topics, consumption paused at the
bound, and Redis rebuilt from the topics so that every bucket equals a brute-force count of what was sent."""

from __future__ import annotations

import time
from collections import Counter

import orjson
import pytest
import redis

from tests.faults.faultkit import brute, counted, days_off, door_events, metric, rollups_off
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import read_topic, send_all

pytestmark = [pytest.mark.integration, pytest.mark.faults]

MINUTE_MS = 60_000
BUCKET_MS = 900_000


def test_a_redis_outage_repeats_nothing_and_redis_comes_back_whole(services, worker_factory, unique_prefix,
                                                                   own_redis):
    _, port = own_redis.start_worker(services, worker_factory, unique_prefix, max_pending_records=10,
                                     idle_timeout_s=0)
    t0 = (int(time.time() * 1000) - 120 * MINUTE_MS) // BUCKET_MS * BUCKET_MS
    events = door_events(t0, 600, stores=6)  # 5 s apart: 50 minutes, buckets closing as they go
    first, second = events[:300], events[300:]
    topic = f"{unique_prefix}.events"
    send_all(services.bootstrap, topic, [(e["store_id"].encode(), orjson.dumps(e)) for e in first])
    client = redis.Redis.from_url(own_redis.url)

    wait_until(lambda: counted(client, unique_prefix) == brute(first), 60, "the first half counted")

    own_redis.kill()  # down: the second half arrives meanwhile
    outage_started = time.monotonic()
    # Sent as traffic keeps coming, over about 15 s (not all at once, before any flush could fail).
    send_all(services.bootstrap, topic, [(e["store_id"].encode(), orjson.dumps(e)) for e in second],
             pause_every=10, pause_s=0.5)
    # The records waiting pass the bound: the worker stops consuming, the rest waits in Kafka.
    wait_until(lambda: metric(port, "footfall_consumer_lag") > 0 and metric(port, "footfall_pending_records") >= 10,
               60, "consumption paused at the bound")
    time.sleep(max(0.0, 20 - (time.monotonic() - outage_started)))  # 20 s down, flushing every second
    assert metric(port, "footfall_pending_records") <= 10 + 12  # the bound, plus what one message can add

    own_redis.start()  # back, empty (no persistence)
    client = redis.Redis.from_url(own_redis.url)
    wait_until(lambda: counted(client, unique_prefix) == brute(events), 120,
               "every bucket, before and during the outage, in Redis")
    assert client.exists(f"{unique_prefix}:meta:written")
    # Rebuilt too: the chain's roll-up of every bucket and each store's day total.
    wait_until(lambda: rollups_off(client, unique_prefix, brute(events)) == 0, 60, "the roll-ups rebuilt")
    wait_until(lambda: days_off(client, unique_prefix, events) == 0, 60, "the day totals rebuilt")

    # Each record reached the output topic once: no two identical records.
    out = [r.value for r in read_topic(services.bootstrap, f"{unique_prefix}.aggregates")]
    repeats = [v for v, n in Counter(out).items() if n > 1]
    assert not repeats, f"{len(repeats)} records repeated, e.g. {repeats[0][:200]!r}"
