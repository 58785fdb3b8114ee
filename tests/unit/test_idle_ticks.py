"""Idle ticks: due once per bucket close, and due again until one is known to be delivered."""

from __future__ import annotations

import asyncio

import orjson

from footfall.stream.intake import TICK_HEADER
from footfall.stream.settings import Settings
from footfall.stream.worker import FlowWorker
from tests.unit.test_flush_failures import FakeRangeReader, FakeRedis, FakeTable, FakeTopic, event


def test_a_tick_is_due_until_it_is_delivered_then_not_before_the_next_close():
    async def scenario():
        settings = Settings(pseudonym_secret="0123456789abcdef-secret", idle_timeout_s=2, bucket_s=60, grace_s=0)
        topics = {name: FakeTopic(name) for name in ("events", "aggregates", "dead-letter")}
        worker = FlowWorker(settings, FakeTable(), topics["events"], topics["aggregates"], topics["dead-letter"],
                            FakeRedis())
        worker.checkpoint.range_reader = FakeRangeReader()
        await worker.process(b"s1", event(1), "t.events", 0, 0)  # one event at 1_780_000_001_000
        store = worker.stores["s1"]
        later = store.wall_ms + 70_000  # 70 s of silence: the bucket [1_779_999_960_000, +60 s) is due to close
        due = worker.stores.idle_ticks(later)
        assert [store_id for store_id, _ in due] == ["s1"]
        assert worker.stores.idle_ticks(later + 1_000) != [], "not delivered: due again"
        worker.stores.ticked("s1", due[0][1])
        assert worker.stores.idle_ticks(later + 2_000) == [], "delivered: nothing more until the next close"
        assert worker.stores.idle_ticks(later + 61_000) == [], "the same close is not ticked twice"
        body = orjson.dumps({"advance_to_ms": due[0][1]})
        await worker.process(b"s1", body, "t.events", 0, 1, [(TICK_HEADER, body)])  # the tick comes back, applied
        assert worker.stores.idle_ticks(later + 61_000) != [], "the next bucket's close is due in its turn"

    asyncio.run(scenario())


def idle_worker() -> tuple[FlowWorker, FakeTopic]:
    settings = Settings(pseudonym_secret="0123456789abcdef-secret", idle_timeout_s=2, bucket_s=60, grace_s=0)
    topics = {name: FakeTopic(name) for name in ("events", "aggregates", "dead-letter")}
    worker = FlowWorker(settings, FakeTable(), topics["events"], topics["aggregates"], topics["dead-letter"],
                        FakeRedis())
    worker.checkpoint.range_reader = FakeRangeReader()
    return worker, topics["events"]


def test_a_tick_whose_delivery_failed_is_sent_again_at_the_next_round():
    async def scenario():
        worker, events = idle_worker()
        await worker.process(b"s1", event(1), "t.events", 0, 0)
        later = worker.stores["s1"].wall_ms + 70_000  # the bucket is due to close by the idle timeout
        events.fail_next = 1  # the producer fails once
        assert await worker.send_idle_ticks(later) == 0
        assert events.sent == [] and worker.stats["idle_tick_failures"] == 1
        assert await worker.send_idle_ticks(later + 1_000) == 1, "the next round sends it again"
        (key, body), = events.sent
        assert key == b"s1" and events.headers[0] == [(TICK_HEADER, body)]
        assert orjson.loads(body)["advance_to_ms"] >= worker.stores["s1"].pipeline.next_close_ms()
        assert await worker.send_idle_ticks(later + 2_000) == 0 and len(events.sent) == 1, "delivered: sent once"
        await worker.process(b"s1", body, "t.events", 0, 1, [(TICK_HEADER, body)])  # applied: the bucket closes
        await worker.flush()
        assert worker.stats["idle_ticks"] == 1
        closed = [r for r in worker.checkpoint.redis.published if r["type"] == "bucket" and r["status"] == "closed"]
        assert [r["events"] for r in closed] == [1]

    asyncio.run(scenario())


def test_a_tick_the_producer_would_not_take_is_sent_again_at_the_next_round():
    async def scenario():
        worker, events = idle_worker()
        await worker.process(b"s1", event(1), "t.events", 0, 0)
        await worker.process(b"s2", event(2, store="s2"), "t.events", 1, 0)
        later = max(worker.stores[s].wall_ms for s in ("s1", "s2")) + 70_000
        events.raise_next = 1  # the first send raises before the message is handed over
        assert await worker.send_idle_ticks(later) == 1, "the other store's tick still goes out"
        assert await worker.send_idle_ticks(later + 1_000) == 1
        assert sorted(key for key, _ in events.sent) == [b"s1", b"s2"]
        assert await worker.send_idle_ticks(later + 2_000) == 0

    asyncio.run(scenario())
