"""Live and latest-bucket hashes written as one JSON argument hold what an HSET of each field would.

The sink hands Redis a record's fields as one JSON object and a Lua script sets them (redis-py's
packing of 80 fields a record was the worker's largest cost at thousands of stores). The reference
here is redis-py's own HSET of the same fields, on the session's real Redis, with awkward strings:
NUL, escapes, non-BMP characters, long values, texts that look like JSON.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import redis

from footfall.stream.settings import Settings
from footfall.stream.sinks import RedisSink, _flat

pytestmark = pytest.mark.integration

AWKWARD = ["x\u0000y", 'é\n\t"\\', "", "\u2028 \U0001f600", "1.5", "null", "[1, 2]", "z" * 5000]


def record(kind: str, store_id: str, n: int) -> dict[str, Any]:
    fields: dict[str, Any] = {f"f{i}": AWKWARD[i % len(AWKWARD)] for i in range(n)}
    fields.update({"type": kind, "store_id": store_id, "region": "r-1", "bucket_start_ms": 1_780_290_000_000,
                   "bucket_start": "2026-06-01T05:00:00Z", "status": "open", "day": "2026-06-01",
                   "count": 7, "ratio": 0.125, "nothing": None, "nested": {"a": [1, None, "b"]}})
    return fields


async def write(sink: RedisSink, records: list[dict[str, Any]]) -> None:
    """The records' writes as a flush queues them, in one pipeline; then the sink's client closes."""
    try:
        async with sink.client.pipeline(transaction=False) as pipe:
            await sink._queue_records(pipe, records)
            await pipe.execute()
    finally:
        await sink.client.aclose()


def test_live_and_latest_hashes_hold_what_hset_of_each_field_would(services, unique_prefix):
    settings = Settings(broker="unused:9092", redis_url=services.redis_url, topic_prefix=unique_prefix,
                        pseudonym_secret="0123456789abcdef-secret")
    keys, plain = settings.redis_keys, redis.Redis.from_url(services.redis_url)
    sink = RedisSink(settings)
    live, bucket = record("live", "s-1", 300), record("bucket", "s-2", 90)

    try:
        # Fields the live record no longer has must go; the latest bucket hash keeps others.
        plain.hset(keys.store_live("s-1"), "stale", "1")
        plain.hset(keys.store_latest("s-2"), "kept", "1")
        asyncio.run(write(sink, [live, bucket]))
        for key, rec, extra in ((keys.store_live("s-1"), live, {}), (keys.store_latest("s-2"), bucket, {"kept": "1"})):
            reference = f"{unique_prefix}:reference"
            plain.delete(reference)
            plain.hset(reference, mapping={**_flat(rec), **extra})
            assert plain.hgetall(key) == plain.hgetall(reference)
            assert 0 < plain.ttl(key) <= settings.bucket_retention_days * 86_400
            assert orjson.loads(plain.hget(key, "nested")) == {"a": [1, None, "b"]}
            assert plain.hget(key, "f0") == "x\u0000y".encode()
    finally:
        for key in plain.scan_iter(f"{unique_prefix}:*"):
            plain.delete(key)
        plain.close()


def test_a_records_other_writes_are_what_rediss_own_commands_make(services, unique_prefix):
    """One script per record runs the stream, day-hash, expiry and channel writes the sink made command by
    command before: compared with those commands sent by redis-py itself, a restated revision included."""
    settings = Settings(broker="unused:9092", redis_url=services.redis_url, topic_prefix=unique_prefix,
                        pseudonym_secret="0123456789abcdef-secret", history_maxlen=10)
    keys, plain = settings.redis_keys, redis.Redis.from_url(services.redis_url)
    sink = RedisSink(settings)
    buckets = []
    for i in range(25):  # past the history's bound of 10 (approximate: whole nodes are trimmed)
        rec = record("bucket", "s-3", 5)
        rec.update({"bucket_start_ms": 1_780_290_000_000 + i * 900_000, "bucket_start": f"b{i:02d}", "count": i})
        buckets.append(rec)
    restated = {**buckets[3], "restated": True, "revision": 2, "count": 99}
    live = record("live", "s-3", 5)
    records = [*buckets, restated, live]
    pubsub = plain.pubsub()
    pubsub.subscribe(keys.live_channel("s-3"))
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"

    try:
        asyncio.run(write(sink, records))
        # The reference: redis-py's commands, as the sink sent them before, under other keys.
        ref = f"{unique_prefix}:ref"
        for rec in records[:-1]:
            body = orjson.dumps(rec)
            plain.xadd(f"{ref}:history", {"record": body}, maxlen=10, approximate=True)
            plain.hset(f"{ref}:day", rec["bucket_start"], body)
            plain.expire(f"{ref}:day", settings.bucket_retention_days * 86_400)
        history = [fields for _, fields in plain.xrange(keys.store_history("s-3"))]
        assert history == [fields for _, fields in plain.xrange(f"{ref}:history")]
        assert history[-1] == {b"record": orjson.dumps(restated)} and len(history) < 25
        day = keys.store_day("s-3", "2026-06-01")
        assert plain.hgetall(day) == plain.hgetall(f"{ref}:day")
        assert 0 < plain.ttl(day) <= settings.bucket_retention_days * 86_400
        # The latest bucket hash: the newest bucket, not the restated older one.
        assert plain.hget(keys.store_latest("s-3"), "bucket_start") == b"b24"
        heard = []
        while (message := pubsub.get_message(timeout=2)) is not None:
            heard.append(message["data"])
        assert heard == [orjson.dumps(r) for r in records]
    finally:
        pubsub.close()
        for key in plain.scan_iter(f"{unique_prefix}:*"):
            plain.delete(key)
        plain.close()
