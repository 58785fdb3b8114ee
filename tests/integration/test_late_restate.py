"""Skewed clocks and a gateway's backfill on real Kafka and Redis: nothing honest is lost.

1. A store sends honest traffic, one event 59 minutes ahead (a skewed clock), then more honest
   traffic: no event is dead-lettered, the honest buckets close on time (revision 1) with their
   brute-force counts, and the store's watermark never takes the skewed time.
2. A store's gateway is offline for 2 hours of event time while the store's time moves on by idle
   ticks (the ticks a 2-hour silence brings, sent as the worker sends them; the worker's own, at
   `idle_timeout_s=1`, run too), then uploads its buffer in order: the buckets the ticks had closed
   empty are restated, and the last revision of every bucket in Redis, the region roll-ups and the
   day total equal brute force; nothing is dead-lettered.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Any

import orjson
import pytest
import redis

from footfall.schemas.keys import RedisKeys
from footfall.stream.intake import TICK_HEADER
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.faults.faultkit import bucket_row
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import redis_buckets, send_all

pytestmark = pytest.mark.integration

MIN = 60_000


def door(store_id: str, event_id: str, ts_ms: int) -> dict[str, Any]:
    return {"event_id": event_id, "store_id": store_id, "kind": "door", "ts": ts_ms, "schema_version": 1,
            "region": "north", "door_id": "d", "sensor_id": "c", "direction": "in"}


def counts_by_bucket(events: list[dict[str, Any]]) -> Counter[int]:
    return Counter(e["ts"] - e["ts"] % MIN for e in events)


def dead_letter_counts(client: redis.Redis, prefix: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(RedisKeys(prefix).dead_letter_counts).items()}


def stats(client: redis.Redis, prefix: str) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in client.hgetall(RedisKeys(prefix).stats).items()}


def test_one_skewed_event_makes_no_honest_event_late(services, worker_factory, unique_prefix):
    store = "skewed-1"
    now = int(time.time() * 1000)
    base = now - now % MIN - 5 * MIN
    honest = [door(store, f"h{i}", base + i * 5_000) for i in range(30)]  # 2.5 minutes
    skewed = door(store, "skewed", now + 59 * MIN)
    more = [door(store, f"h{i}", base + i * 5_000) for i in range(30, 60)]  # 2.5 more, all in the past
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker = worker_factory(bucket_s=60, grace_s=10, idle_timeout_s=1).start()
    send_all(services.bootstrap, f"{unique_prefix}.events",
             [(store.encode(), orjson.dumps(e)) for e in [*honest, skewed, *more]], pause_every=10, pause_s=0.05)
    client = redis.Redis.from_url(services.redis_url)
    want = counts_by_bucket([*honest, *more])
    honest_keys = {(store, start) for start in want}

    def honest_closed() -> bool:
        found = redis_buckets(client, unique_prefix)
        return all(k in found and found[k]["status"] == "closed" for k in honest_keys)

    # The last honest bucket closes by the worker's idle ticks (the store's time runs on with the wall clock).
    sent_at = time.monotonic()
    wait_until(honest_closed, 90, "every honest bucket closed")
    found = redis_buckets(client, unique_prefix)
    bucket_row("one event 59 min ahead, then honest traffic", 61,
               Counter({(store, s): n for s, n in counts_by_bucket([*honest, *more, skewed]).items()}),
               Counter({k: r["arrivals"] for k, r in found.items() if r["arrivals"]}),
               dead_letter_counts(client, unique_prefix), time.monotonic() - sent_at)
    for key in honest_keys:
        record = found[key]
        assert record["arrivals"] == want[key[1]], key
        assert (record["revision"], record["restated"]) == (1, False), key  # on time: never restated
    skewed_start = skewed["ts"] - skewed["ts"] % MIN
    assert found[(store, skewed_start)]["arrivals"] == 1  # counted in its own bucket, which is still open
    assert found[(store, skewed_start)]["status"] == "open"
    live = client.hgetall(RedisKeys(unique_prefix).store_live(store))
    assert int(live[b"as_of_ms"]) < now + 5 * MIN  # the store's time is the honest one
    assert "late" not in dead_letter_counts(client, unique_prefix)
    assert stats(client, unique_prefix).get("events") == 61
    assert worker.alive


def test_a_two_hour_backfill_restates_the_closed_buckets(services, worker_factory, unique_prefix):
    store = "backfill-1"
    now = int(time.time() * 1000)
    base = now - now % MIN - 3 * 60 * MIN  # three hours ago
    events = [door(store, f"e{i}", base + i * 20_000) for i in range(3 * 150)]  # 150 minutes, one every 20 s
    before = [e for e in events if e["ts"] < base + 10 * MIN]
    buffered = [e for e in events if base + 10 * MIN <= e["ts"] < base + 130 * MIN]
    after = [e for e in events if e["ts"] >= base + 130 * MIN]
    assert len(buffered) == 360
    topic = f"{unique_prefix}.events"
    key = store.encode()
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker = worker_factory(bucket_s=60, grace_s=5, idle_timeout_s=1).start()
    client = redis.Redis.from_url(services.redis_url)
    keys = RedisKeys(unique_prefix)

    send_all(services.bootstrap, topic, [(key, orjson.dumps(e)) for e in before])
    wait_until(lambda: stats(client, unique_prefix).get("events", 0) >= len(before), 60, "the traffic before")
    # The gateway goes offline: the store's time runs on by idle ticks, a minute at a time, for 2 hours
    # (the ticks such a silence brings, as the worker sends them: header footfall.tick).
    from kafka import KafkaProducer  # the ticks carry a header: send them here, not through send_all

    producer = KafkaProducer(bootstrap_servers=services.bootstrap, linger_ms=5)
    try:
        for t in range(base + 10 * MIN, base + 131 * MIN, MIN):
            body = orjson.dumps({"advance_to_ms": t})
            producer.send(topic, key=key, value=body, headers=[(TICK_HEADER, body)])
        producer.flush()
    finally:
        producer.close()
    last_closed_by_ticks = (store, base + 128 * MIN)
    wait_until(lambda: last_closed_by_ticks in redis_buckets(client, unique_prefix), 60,
               "the empty buckets closed by the ticks")
    assert redis_buckets(client, unique_prefix)[last_closed_by_ticks]["arrivals"] == 0
    # Back online: the buffer in order, in batches of 20, then live traffic, then the ticks that close it.
    batches = [buffered[i:i + 20] for i in range(0, len(buffered), 20)]
    upload_at = time.monotonic()
    send_all(services.bootstrap, topic, [(key, orjson.dumps(b)) for b in batches]
             + [(key, orjson.dumps(e)) for e in after])
    producer = KafkaProducer(bootstrap_servers=services.bootstrap)
    try:
        body = orjson.dumps({"advance_to_ms": base + 160 * MIN})
        producer.send(topic, key=key, value=body, headers=[(TICK_HEADER, body)])
        producer.flush()
    finally:
        producer.close()

    want = counts_by_bucket(events)
    every = {(store, start) for start in range(base, base + 150 * MIN, MIN)}

    def all_final() -> bool:
        found = redis_buckets(client, unique_prefix)
        return all(k in found and found[k]["status"] == "closed" and found[k]["arrivals"] == want[k[1]]
                   for k in every)

    wait_until(all_final, 90, "every bucket's last revision equal to brute force")
    found = redis_buckets(client, unique_prefix)
    bucket_row("gateway offline 2 h, then its buffer in order", len(before) + len(batches) + len(after),
               Counter({(store, s): n for s, n in want.items()}),
               Counter({k: r["arrivals"] for k, r in found.items() if r["arrivals"]}),
               dead_letter_counts(client, unique_prefix), time.monotonic() - upload_at,
               restated_buckets=sum(1 for r in found.values() if r["restated"]))
    restated = [k for k in every if k[1] in range(base + 10 * MIN, base + 129 * MIN) and found[k]["restated"]]
    assert len(restated) >= 100  # the buckets the ticks had closed empty came out again
    assert all(found[k]["revision"] >= 2 for k in restated)
    assert all(not found[k]["restated"] and found[k]["revision"] == 1 for k in every
               if k[1] < base + 10 * MIN or k[1] >= base + 130 * MIN)
    # The day total: the day hashes (the last revision of each bucket) and the region's roll-ups.
    days: Counter[str] = Counter()
    for e in events:
        days[dt.datetime.fromtimestamp(e["ts"] / 1000, dt.UTC).date().isoformat()] += 1
    for day, n in days.items():
        records = [orjson.loads(v) for v in client.hvals(keys.store_day(store, day))]
        assert sum(r["arrivals"] for r in records) == n, day
    for start in range(base, base + 150 * MIN, MIN):
        totals = {k.decode(): int(v) for k, v in client.hgetall(keys.rollup_totals("region", "north", start)).items()}
        assert totals.get("arrivals", 0) == want[start], start
        assert totals.get("members") == 1
    live = {k.decode(): v for k, v in client.hgetall(keys.store_live(store)).items()}
    today = orjson.loads(live["today"])
    assert today["arrivals"] == days[live["day"].decode() if isinstance(live["day"], bytes) else live["day"]]
    # restated: the buffered events of the buckets the ticks had closed (up to 02:09 past base; the last
    # tick, at 02:10, leaves [02:09, 02:10) open: its events count in its first revision)
    assert int(live["restated"]) == sum(e["ts"] < base + 129 * MIN for e in buffered) == 357
    assert dead_letter_counts(client, unique_prefix) == {}
    assert "late" not in stats(client, unique_prefix)
    assert worker.alive
