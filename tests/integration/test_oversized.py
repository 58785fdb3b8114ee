"""Oversized messages on real Kafka and Redis: dead-lettered as excerpts, and the worker goes on.

Honest events, then two ~1.04 MB messages, a mis-keyed JSON batch and bytes that are not even
UTF-8 (over `FOOTFALL_MAX_MESSAGE_BYTES`' 1,000,000 default but under the 1 MiB the decoder used
to accept: before, the blob's whole-bytes dead letter and the batch's re-route were refused by the
producer, kept for resending, and every later checkpoint failed with them), then more honest
events; the worker is restarted and more honest events follow. Every honest event is counted
exactly once (brute-force totals against Redis's bucket records), each oversized message is on
the dead-letter topic with reason `too_large`, an excerpt within the bound and the sha256 of
what was sent, and records kept flowing after them.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import signal
import time

import orjson
import pytest
import redis
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from footfall.schemas.keys import RedisKeys
from footfall.schemas.messages import EXCERPT_BYTES
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import PSEUDONYM_SECRET, wait_until
from tests.integration.flowdata import make_valid_traffic
from tests.integration.test_pipeline import assert_totals_match, counted_events, read_topic, redis_buckets, send_all

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
OVERSIZED_BYTES = 1_040_000


def oversized_message(store_id: str, ts_ms: int) -> bytes:
    """A JSON batch of valid door events of `store_id`, ~1.04 MB in all (each padded with an ignored member)."""
    events, size, n = [], 2, 0
    while size < OVERSIZED_BYTES - 1_200:
        event = {"event_id": f"oversized-{n}", "store_id": store_id, "kind": "door", "ts": ts_ms,
                 "schema_version": 1, "door_id": "d", "sensor_id": "c", "direction": "in", "pad": "x" * 900}
        events.append(event)
        size += len(orjson.dumps(event)) + 1
        n += 1
    raw = orjson.dumps(events)
    return raw + b" " * (OVERSIZED_BYTES - len(raw))


def as_dead_lettered(original: bytes) -> bytes:
    """What a dead letter carries of `original`: JSON with each event's extra member (`pad`) as the pseudonym of
    its JSON text (HMAC-SHA256 under the worker's secret, computed here), other bytes as they are."""
    try:
        doc = orjson.loads(original)
    except orjson.JSONDecodeError:
        return original
    for event in doc:
        digest = hmac.new(PSEUDONYM_SECRET.encode(), orjson.dumps(event["pad"]), hashlib.sha256).hexdigest()
        event["pad"] = "h1:" + digest[:32]
    return orjson.dumps(doc)


def test_an_oversized_message_is_dead_lettered_as_an_excerpt_and_never_wedges(services, worker_factory,
                                                                              unique_prefix):
    prefix, broker = unique_prefix, services.bootstrap
    # The events topic made to carry the oversized message whatever the broker's default; the worker's
    # own topics (dead letters, changelog) keep the broker's defaults.
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        admin.create_topics([NewTopic(f"{prefix}.events", num_partitions=4, replication_factor=1,
                                      topic_configs={"max.message.bytes": "2000000"})])
    finally:
        admin.close()
    ensure_topics(Settings(broker=broker, topic_prefix=prefix, partitions=4))

    rng = random.Random(7)
    now = int(time.time() * 1000)
    traffic = make_valid_traffic(rng, stores=6, events_per_store=300, start_ms=now - 4 * HOUR_MS,
                                 span_ms=3 * HOUR_MS)
    store_id = traffic.valid_events[0]["store_id"]
    big = oversized_message(store_id, now - 2 * HOUR_MS)
    blob = b"\xff" + bytes(rng.getrandbits(8) for _ in range(OVERSIZED_BYTES - 1))  # not even UTF-8
    assert 1_000_000 < len(big) < 1_048_576
    third = len(traffic.messages) // 3
    part_a, part_b, part_c = (traffic.messages[:third], traffic.messages[third:2 * third],
                              traffic.messages[2 * third:])

    client = redis.Redis.from_url(services.redis_url)
    keys = RedisKeys(prefix)
    worker = worker_factory(grace_s=86_400).start()
    # Mis-keyed (its events belong to `store_id`): before, re-routing it whole was refused by the producer;
    # the blob's whole-bytes dead letter was refused too.
    send_all(broker, f"{prefix}.events", [*part_a, (b"another-store", big), (store_id.encode(), blob), *part_b])

    def dead_letters() -> list:
        return [r for r in read_topic(broker, f"{prefix}.dead-letter")
                if dict(r.headers).get("footfall.reason") == b"too_large"]

    wait_until(lambda: len(dead_letters()) >= 2, 120, "the oversized messages on the dead-letter topic")
    # Records keep flowing after it: the events sent after the oversized message are counted.
    wait_until(lambda: worker.alive and counted_events(client, prefix) >= _valid_in(traffic, part_a + part_b),
               120, "the events around the oversized message counted")

    assert worker.stop(signal.SIGTERM) == 0
    worker.start()
    send_all(broker, f"{prefix}.events", part_c)
    want = len(traffic.valid_events)
    wait_until(lambda: counted_events(client, prefix) >= want, 180,
               f"{want} events counted (so far {counted_events(client, prefix)})")
    time.sleep(2)  # anything counted twice would show now
    assert counted_events(client, prefix) == want, "events were counted more than once"
    assert_totals_match(redis_buckets(client, prefix), traffic.expected_buckets())

    found = dead_letters()
    originals = {hashlib.sha256(m).hexdigest().encode(): m for m in (big, blob)}
    assert {dict(r.headers)["footfall.original.sha256"] for r in found} == set(originals)
    for record in found:
        headers = dict(record.headers)
        original = originals[headers["footfall.original.sha256"]]
        assert 0 < len(record.value) <= EXCERPT_BYTES
        # The first bytes of the message, a producer's extra members pseudonymised (README, "Privacy").
        assert record.value == as_dead_lettered(original)[: len(record.value)], "the excerpt: its first bytes"
        assert int(headers["footfall.original.bytes"]) == len(original)
        assert int(headers["footfall.excerpt.bytes"]) == len(record.value)
    stats = {k.decode(): int(v) for k, v in client.hgetall(keys.stats).items()}
    assert stats.get("flush_failed", 0) == 0, stats
    assert int(client.hget(keys.dead_letter_counts, "too_large") or 0) >= 2
    assert worker.alive


def _valid_in(traffic, messages) -> int:
    """Valid events the worker counts from `messages` (those of `traffic.valid_events` they carry)."""
    ids = set()
    for _, value in messages:
        doc = orjson.loads(value)
        for event in doc if isinstance(doc, list) else [doc]:
            if isinstance(event, dict):
                ids.add((event.get("store_id"), event.get("event_id")))
    return sum(1 for e in traffic.valid_events if (e["store_id"], e["event_id"]) in ids)
