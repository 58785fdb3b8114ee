"""Idle ticks: due once per bucket close, and due again until one is known to be delivered."""

from __future__ import annotations

import asyncio

import orjson

from footfall.stream.intake import TICK_HEADER
from footfall.stream.settings import Settings
from footfall.stream.worker import FlowWorker
from tests.unit.test_flush_failures import FakeRedis, FakeTable, FakeTopic, event


def test_a_tick_is_due_until_it_is_delivered_then_not_before_the_next_close():
    async def scenario():
        settings = Settings(pseudonym_secret="0123456789abcdef-secret", idle_timeout_s=2, bucket_s=60, grace_s=0)
        topics = {name: FakeTopic(name) for name in ("events", "aggregates", "dead-letter")}
        worker = FlowWorker(settings, FakeTable(), topics["events"], topics["aggregates"], topics["dead-letter"],
                            FakeRedis())
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
