"""Two workers that both think they own a partition, on the session's real Redis: the older one is refused.

Worker A holds partition 0 at the group's generation 3, is frozen, and worker B takes the
partition over at generation 4. When A wakes and flushes what it held, nothing of it may
reach Redis, the output topic or its changelog: the closed bucket B wrote must not revert
to A's older open record. The workers are `FlowWorker`s over the real `RedisSink` (their
Kafka topics and changelog tables are in-memory stand-ins: what is checked here is the
Redis fence and what the checkpoint leaves out of Kafka and the changelog).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import redis

from footfall.operators.pipeline.persistence import marker_key
from footfall.stream.settings import Settings
from footfall.stream.sinks import RedisSink
from footfall.stream.worker import FlowWorker
from tests.unit.test_flush_failures import FakeRangeReader, FakeTable, FakeTopic

pytestmark = pytest.mark.integration

T0 = 1_780_290_000_000  # 2026-06-01T05:00:00Z
MIN = 60_000


def door(i: int, ts_ms: int) -> bytes:
    return orjson.dumps({"event_id": f"e{i}", "store_id": "s1", "kind": "door", "ts": ts_ms, "schema_version": 1,
                         "door_id": "d", "sensor_id": "c", "direction": "in"})


def make_worker(settings: Settings) -> tuple[FlowWorker, dict[str, FakeTopic], FakeTable, RedisSink]:
    topics = {name: FakeTopic(name) for name in ("events", "aggregates", "dead-letter")}
    table, sink = FakeTable(), RedisSink(settings)
    worker = FlowWorker(settings, table, topics["events"], topics["aggregates"], topics["dead-letter"], sink)
    worker.checkpoint.range_reader = FakeRangeReader()
    return worker, topics, table, sink


def run_and_clean(scenario: Coroutine[Any, Any, None], plain: redis.Redis, prefix: str) -> None:
    """Run the scenario, then delete the prefix's keys from the session's Redis."""
    try:
        asyncio.run(scenario)
    finally:
        for key in plain.scan_iter(f"{prefix}:*"):
            plain.delete(key)
        plain.close()


def test_a_worker_that_lost_its_partition_writes_nothing_of_it(services, unique_prefix):
    settings = Settings(broker="unused:9092", redis_url=services.redis_url, topic_prefix=unique_prefix,
                        pseudonym_secret="0123456789abcdef-secret", idle_timeout_s=0, bucket_s=900, grace_s=0)
    keys = settings.redis_keys
    plain = redis.Redis.from_url(services.redis_url)

    plain.set(keys.written_marker, b"1")  # this Redis kept its data: no rebuild from the output topics

    async def scenario() -> None:
        a, a_topics, a_table, a_sink = make_worker(settings)
        b, _b_topics, _b_table, b_sink = make_worker(settings)
        a.owners.assigned({0}, generation=3)
        # A counts two events of the 05:00 bucket and publishes it, open.
        for i in range(2):
            await a.process(b"s1", door(i, T0 + i * MIN), "t.events", 0, i)
        await a.flush()
        assert plain.hget(keys.store_latest("s1"), "status") == b"open"
        assert int(plain.get(a.owners.key(0))) == 3
        # A freezes before its next flush with a third event counted. B takes partition 0 over at
        # generation 4, applies the same three events and a fourth that closes the 05:00 bucket.
        await a.process(b"s1", door(2, T0 + 2 * MIN), "t.events", 0, 2)
        b.owners.assigned({0}, generation=4)
        for i in range(3):
            await b.process(b"s1", door(i, T0 + i * MIN), "t.events", 0, i)
        await b.process(b"s1", door(3, T0 + 16 * MIN), "t.events", 0, 3)
        await b.flush()
        assert int(plain.get(b.owners.key(0))) == 4
        day_key, bucket_field = keys.store_day("s1", "2026-06-01"), "2026-06-01T05:00:00Z"
        closed = orjson.loads(plain.hget(day_key, bucket_field))
        assert closed["status"] == "closed" and closed["arrivals"] == 3
        # A wakes and flushes what it held: refused, everywhere.
        sent_before, changelog_before = len(a_topics["aggregates"].sent), list(a_table.changelog)
        await a.process(b"s1", door(4, T0 + 3 * MIN), "t.events", 0, 4)
        await a.flush()
        assert orjson.loads(plain.hget(day_key, bucket_field)) == closed, "the closed bucket did not revert"
        assert a.owners.lost == {0}
        assert a.stats["partitions_lost"] == 1 and a.stats["fenced_records"] >= 1
        assert len(a_topics["aggregates"].sent) == sent_before, "nothing more of partition 0 went to Kafka"
        assert a_table.changelog == changelog_before, "no state nor marker of partition 0 was saved"
        assert "s1" not in a.stores, "its stores left memory"
        # Faust gives the partition back to A at a later rebalance: A writes again, and B is refused.
        a.owners.assigned({0}, generation=5)
        await a.process(b"s1", door(5, T0 + 31 * MIN), "t.events", 0, 5)
        await a.flush()
        assert int(plain.get(a.owners.key(0))) == 5
        assert marker_key(0) in {key for _, key in a_table.changelog}
        await b.process(b"s1", door(6, T0 + 32 * MIN), "t.events", 0, 6)
        await b.flush()
        assert b.owners.lost == {0} and b.stats["fenced_records"] >= 1
        await a_sink.close()
        await b_sink.close()

    run_and_clean(scenario(), plain, unique_prefix)


def test_a_redis_that_lost_the_owner_keys_is_claimed_again(services, unique_prefix):
    settings = Settings(broker="unused:9092", redis_url=services.redis_url, topic_prefix=unique_prefix,
                        pseudonym_secret="0123456789abcdef-secret", idle_timeout_s=0)
    plain = redis.Redis.from_url(services.redis_url)

    plain.set(settings.redis_keys.written_marker, b"1")

    async def scenario() -> None:
        old, _, _, old_sink = make_worker(settings)
        new, _, new_table, new_sink = make_worker(settings)
        old.owners.assigned({0}, generation=6)
        new.owners.assigned({0}, generation=7)
        await new.process(b"s1", door(0, T0), "t.events", 0, 0)
        await new.flush()
        plain.delete(new.owners.key(0))  # Redis restarted empty
        # The older worker claims first, then the newer one: the newer generation wins whatever the order.
        await old.process(b"s1", door(1, T0 + MIN), "t.events", 0, 1)
        await old.flush()
        assert int(plain.get(old.owners.key(0))) == 6
        await new.process(b"s1", door(1, T0 + MIN), "t.events", 0, 1)
        await new.flush()
        assert int(plain.get(new.owners.key(0))) == 7 and not new.owners.lost
        await old.process(b"s1", door(2, T0 + 2 * MIN), "t.events", 0, 2)
        await old.flush()
        assert old.owners.lost == {0}
        assert new.stats["flush_failed"] == 0 and marker_key(0) in {key for _, key in new_table.changelog}
        await old_sink.close()
        await new_sink.close()

    run_and_clean(scenario(), plain, unique_prefix)


class InputLog:
    """Partition 0 of the input topic, read back by offset (as `stream.refetch.RangeReader` does)."""

    def __init__(self, values: list[bytes]) -> None:
        self.values = values

    async def beginning_offsets(self, topic, partitions):
        return {p: 0 for p in partitions}

    async def read(self, topic, partition, start, end, timeout_s=30.0):
        return [SimpleNamespace(key=b"s1", value=self.values[offset], offset=offset, headers=None)
                for offset in range(start, min(end, len(self.values)))]


def test_a_group_created_again_takes_its_partitions_once_the_old_claims_lapse(services, unique_prefix):
    """The consumer group was deleted: its new generations start at 1, below what Redis holds (9).

    While the old holder's claim is alive, the newly assigned worker writes nothing of the partition and
    applies none of its messages (it may be a worker frozen since its assignment); once the claim lapses it
    takes the partition, reads it from its marker, and counts on.
    """
    settings = Settings(broker="unused:9092", redis_url=services.redis_url, topic_prefix=unique_prefix,
                        pseudonym_secret="0123456789abcdef-secret", idle_timeout_s=0, bucket_s=900, grace_s=0)
    keys = settings.redis_keys
    plain = redis.Redis.from_url(services.redis_url)
    plain.set(keys.written_marker, b"1")

    async def scenario() -> None:
        old, _, old_table, old_sink = make_worker(settings)
        old.owners.assigned({0}, generation=9)
        await old.process(b"s1", door(0, T0), "t.events", 0, 0)
        await old.flush()
        assert int(plain.get(old.owners.key(0))) == 9 and plain.exists(old.owners.alive_key(0))
        # The group is created again; the new worker starts from what the old one saved.
        new, new_topics, new_table, new_sink = make_worker(settings)
        new_table.data.update(old_table.data)
        new.owners.assigned({0}, generation=1)
        await new.refresh_owners()
        assert new.owners.contested == {0: 1} and new.owners.lost == {0}
        await new.process(b"s1", door(1, T0 + MIN), "t.events", 0, 1)
        await new.flush()
        assert new.stats["messages_not_owned"] == 1 and "s1" not in new.stores
        assert new_topics["aggregates"].sent == [] and int(plain.get(new.owners.key(0))) == 9
        await new.refresh_owners()  # the old claim is still alive: still contested
        assert new.owners.contested == {0: 1}
        plain.delete(old.owners.alive_key(0))  # the old holder stopped refreshing and its claim lapsed
        await new.refresh_owners()
        assert new.owners.contested == {} and new.owners.lost == set() and new.stats["partitions_won"] == 1
        assert int(plain.get(new.owners.key(0))) == 1
        # The message skipped while contested is read back from the marker before the next one.
        new.checkpoint.range_reader = InputLog([door(0, T0), door(1, T0 + MIN)])
        await new.process(b"s1", door(2, T0 + 2 * MIN), "t.events", 0, 2)
        await new.flush()
        bucket = orjson.loads(plain.hget(keys.store_day("s1", "2026-06-01"), "2026-06-01T05:00:00Z"))
        assert bucket["arrivals"] == 3 and new.stats["flush_failed"] == 0
        await old_sink.close()
        await new_sink.close()

    run_and_clean(scenario(), plain, unique_prefix)
