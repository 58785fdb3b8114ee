"""Idle stores leave memory (`FOOTFALL_STORE_IDLE_EVICT_S`) and come back from the table with their counts whole;
store ids outside `FOOTFALL_STORE_IDS` are dead-lettered as `unknown_store`.

The worker here runs on the fakes of `test_flush_failures`; eviction is driven with explicit clocks
(`evict_idle(now_ms)`), and checked against brute force: a worker that never evicts, given the same
messages, and a rule written out independently of `StoreRegistry.evictable`.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import orjson
import pytest

from footfall.stream.intake import TICK_HEADER
from footfall.stream.settings import Settings, SettingsError
from footfall.stream.worker import FlowWorker
from tests.unit.test_flush_failures import FakeRangeReader, FakeRedis, FakeTable, FakeTopic

SECRET = "0123456789abcdef-secret"
T0 = 1_780_000_000_000
HOUR_MS = 3_600_000


def make_worker(**settings) -> tuple[FlowWorker, dict[str, FakeTopic], FakeTable, FakeRedis]:
    params = {"pseudonym_secret": SECRET, "bucket_s": 60, "grace_s": 0, "forecast_horizon_h": 0,
              "store_idle_evict_s": 10, "checkpoint_interval_s": 0, **settings}  # every flush saves
    topics = {name: FakeTopic(name) for name in ("events", "aggregates", "dead-letter")}
    table, redis = FakeTable(), FakeRedis()
    worker = FlowWorker(Settings(**params), table, topics["events"], topics["aggregates"], topics["dead-letter"],
                        redis)
    worker.checkpoint.range_reader = FakeRangeReader()
    return worker, topics, table, redis


def door(i: int, store: str, ts_ms: int) -> dict:
    return {"event_id": f"e{i}", "store_id": store, "kind": "door", "ts": ts_ms, "schema_version": 1,
            "door_id": "d", "sensor_id": "c", "direction": "in"}


def closed_counts(redis: FakeRedis) -> Counter:
    """Events per (store, bucket) of the newest revision of each closed bucket published."""
    latest: dict[tuple[str, int], int] = {}
    for r in redis.published:
        if r["type"] == "bucket" and r["status"] == "closed":
            latest[(r["store_id"], r["bucket_start_ms"])] = r["events"]
    return Counter({k: v for k, v in latest.items() if v})


def open_counts(redis: FakeRedis) -> dict[tuple[str, int], int]:
    latest: dict[tuple[str, int], int] = {}
    for r in redis.published:
        if r["type"] == "bucket":
            latest[(r["store_id"], r["bucket_start_ms"])] = r["events"]
    return latest


def far(worker: FlowWorker) -> int:
    """A wall clock at which every store in memory has been idle past the eviction setting."""
    return max((worker.stores[s].wall_ms for s in list(worker.stores._stores)), default=0) + 3_600_000


def test_a_random_workload_evicted_at_random_counts_as_a_worker_that_never_evicts():
    """Brute force: the same messages, one worker evicting at random moments, one never; every bucket the same."""
    async def scenario(seed: int):
        rng = random.Random(seed)
        evicting, _, _, redis_e = make_worker(idle_timeout_s=0)
        keeping, _, _, redis_k = make_worker(idle_timeout_s=0, store_idle_evict_s=0)
        stores = [f"s{n}" for n in range(12)]
        offsets: Counter = Counter()
        sent = 0
        for _ in range(400):
            store = rng.choice(stores)
            partition = int(store[1:]) % 4
            ts = T0 + rng.randrange(0, 20 * 60_000)  # 20 one-minute buckets, some late, some duplicates
            events = [door(rng.randrange(0, 300), store, ts + rng.randrange(0, 5_000))
                      for _ in range(rng.randrange(1, 4))]
            body = orjson.dumps(events)
            for worker in (evicting, keeping):
                await worker.process(store.encode(), body, "t.events", partition, offsets[partition])
            offsets[partition] += 1
            sent += len(events)
            if rng.random() < 0.3:
                for worker in (evicting, keeping):
                    await worker.flush()
            if rng.random() < 0.2:
                evicting.stores.evict_idle(far(evicting))
        for worker in (evicting, keeping):
            await worker.flush()
        assert evicting.stores.evicted > 0 and len(evicting.stores) < len(keeping.stores)
        assert open_counts(redis_e) == open_counts(redis_k)
        assert closed_counts(redis_e) == closed_counts(redis_k)
        assert evicting.stats == keeping.stats
        assert sum(open_counts(redis_e).values()) <= sent

    for seed in range(5):
        asyncio.run(scenario(seed))


def reference_evictable(worker: FlowWorker, table: FakeTable, store_id: str, now_ms: int, evict_ms: int,
                        ticks_on: bool) -> bool:
    """The rule, written out: idle since its last event, nothing unsaved, and (ticks on) nothing left to close."""
    store = worker.stores[store_id]
    saved = table.data.get(store_id)  # the JSON bytes the worker sent to the changelog
    saved = None if saved is None else orjson.loads(saved)
    if now_ms - store.wall_ms < evict_ms or store_id in worker.stores.dirty or saved is None:
        return False
    if (saved["partition"], saved["offset"]) != (store.partition, store.offset):
        return False
    if ticks_on:
        if store.pipeline.flow.buckets.open_buckets():
            return False
        if store.ticked_to_ms > (store.pipeline.watermark_ms or -1):
            return False
    return True


@pytest.mark.parametrize("ticks_on", [False, True])
def test_eviction_decisions_match_the_rule_written_out(ticks_on):
    async def scenario(seed: int):
        rng = random.Random(seed)
        worker, topics, table, _ = make_worker(idle_timeout_s=2 if ticks_on else 0)
        events_topic = topics["events"]
        stores = [f"s{n}" for n in range(10)]
        offsets: Counter = Counter()
        for step in range(300):
            store = rng.choice(stores)
            partition = int(store[1:]) % 2
            action = rng.random()
            if action < 0.5:
                body = orjson.dumps([door(step, store, T0 + step * 5_000)])
                await worker.process(store.encode(), body, "t.events", partition, offsets[partition])
                offsets[partition] += 1
                # its wall clock, spread out, so that some are idle past the setting and others not
                if store in worker.stores._stores:
                    worker.stores[store].wall_ms = T0 + rng.randrange(0, 60_000)
            elif action < 0.7:
                await worker.flush()
            elif action < 0.85 and ticks_on:
                now = T0 + rng.randrange(60_000, 400_000)
                await worker.send_idle_ticks(now)
                for key, body in events_topic.sent:  # some ticks come back now, others stay on their way
                    if rng.random() < 0.5:
                        p = int(key.decode()[1:]) % 2
                        await worker.process(key, body, "t.events", p, offsets[p], [(TICK_HEADER, body)])
                        offsets[p] += 1
                events_topic.sent.clear()
            else:
                now = T0 + rng.randrange(0, 120_000)
                ids = list(worker.stores._stores)
                expected = {s for s in ids if reference_evictable(worker, table, s, now, 10_000, ticks_on)}
                assert set(worker.stores.evict_idle(now)) == expected
                assert not expected & set(worker.stores._stores)
                assert set(worker.stores._stores) == set(ids) - expected

    for seed in range(8):
        asyncio.run(scenario(seed))


def test_a_store_not_saved_is_not_evicted_until_it_is():
    async def scenario():
        worker, _, table, _ = make_worker(idle_timeout_s=0)
        await worker.process(b"s1", orjson.dumps(door(1, "s1", T0)), "t.events", 0, 0)
        later = far(worker)
        assert worker.stores.evict_idle(later) == [], "dirty: its state is not in the table yet"
        worker.stores.dirty.discard("s1")  # as when its state was too large to save (`state_too_large`)
        assert worker.stores.evict_idle(later) == [], "not dirty, but the table does not hold it"
        worker.stores.dirty.add("s1")
        await worker.flush()
        assert worker.stores.evict_idle(later) == ["s1"] and worker.stores.evicted == 1
        assert len(worker.stores) == 0 and "s1" in table.data

    asyncio.run(scenario())


def test_with_idle_ticks_a_store_leaves_only_once_its_last_bucket_closed():
    async def scenario():
        worker, topics, _, redis = make_worker(idle_timeout_s=2)
        events_topic = topics["events"]
        await worker.process(b"s1", orjson.dumps([door(1, "s1", T0 + 1_000), door(2, "s1", T0 + 2_000)]),
                             "t.events", 0, 0)
        await worker.flush()
        store = worker.stores["s1"]
        later = store.wall_ms + HOUR_MS
        assert worker.stores.evict_idle(later) == [], "its bucket is open: the ticks must close it first"
        assert await worker.send_idle_ticks(later) == 1
        (key, body), = events_topic.sent
        await worker.flush()
        assert worker.stores.evict_idle(later) == [], "a tick is on its way back"
        await worker.process(key, body, "t.events", 0, 1, [(TICK_HEADER, body)])
        assert worker.stores.evict_idle(later) == [], "the tick's result is not saved yet"
        await worker.flush()
        assert closed_counts(redis) == Counter({("s1", T0 // 60_000 * 60_000): 2})
        assert worker.stores.evict_idle(later) == ["s1"]
        assert worker.stores.idle_ticks(later + HOUR_MS) == [], "no more ticks for it"

    asyncio.run(scenario())


def test_an_evicted_store_comes_back_on_its_next_event_and_its_counts_continue():
    async def scenario():
        worker, _, _, redis = make_worker(idle_timeout_s=0)
        bucket = T0 // 60_000 * 60_000
        await worker.process(b"s1", orjson.dumps([door(1, "s1", bucket + 1_000), door(2, "s1", bucket + 2_000)]),
                             "t.events", 0, 0)
        await worker.flush()
        assert worker.stores.evict_idle(far(worker)) == ["s1"]
        # the same bucket again, with a duplicate of an event counted before the eviction
        await worker.process(b"s1", orjson.dumps([door(2, "s1", bucket + 2_000), door(3, "s1", bucket + 3_000)]),
                             "t.events", 0, 1)
        await worker.process(b"s1", orjson.dumps([door(2, "s1", bucket + 2_000)]), "t.events", 0, 0)  # a re-read
        await worker.flush()
        assert open_counts(redis)[("s1", bucket)] == 3
        assert worker.stats["duplicates"] == 1 and worker.stats["events"] == 3

    asyncio.run(scenario())


def test_load_saved_brings_a_partition_in_once_per_assignment_so_evicted_stores_stay_out():
    async def scenario():
        worker, _, _, _ = make_worker(idle_timeout_s=2)
        for n in range(20):
            await worker.process(f"s{n}".encode(), orjson.dumps(door(n, f"s{n}", T0)), "t.events", n % 2, n // 2)
        await worker.flush()
        stores = worker.stores
        stores.forget({0, 1})  # a rebalance: memory forgets, the table is the truth
        stores.load_saved({0, 1})
        assert len(stores) == 20
        tick = orjson.dumps({"advance_to_ms": T0 + HOUR_MS})  # their buckets closed by ticks
        for n in range(20):
            await worker.process(f"s{n}".encode(), tick, "t.events", n % 2, 10 + n // 2, [(TICK_HEADER, tick)])
        await worker.flush()
        for s in stores._stores.values():  # idle long
            s.wall_ms -= HOUR_MS
        assert len(stores.evict_idle()) == 20
        stores.load_saved({0, 1})
        assert len(stores) == 0, "evicted stores are not loaded back for ticks"
        stores.forget({1})  # partition 1 assigned again
        stores.load_saved({0, 1})
        assert sorted(stores._stores) == sorted(f"s{n}" for n in range(1, 20, 2))

    asyncio.run(scenario())


def test_eviction_off_keeps_every_store():
    async def scenario():
        worker, _, _, _ = make_worker(idle_timeout_s=0, store_idle_evict_s=0)
        await worker.process(b"s1", orjson.dumps(door(1, "s1", T0)), "t.events", 0, 0)
        await worker.flush()
        assert worker.stores.evict_idle(far(worker) + 10 * 86_400_000) == [] and len(worker.stores) == 1

    asyncio.run(scenario())


def test_store_ids_outside_the_allow_list_are_dead_lettered_as_unknown_store():
    async def scenario():
        worker, topics, table, _ = make_worker(idle_timeout_s=0, store_ids="bank-*, retail-0??")
        body = orjson.dumps([door(1, "bank-7", T0), door(2, "retail-012", T0), door(3, "retail-0123", T0),
                             door(4, "Bank-7", T0), door(5, "bank-7", T0)])
        await worker.process(b"bank-7", body, "t.events", 0, 0)
        await worker.flush()
        reasons = Counter(dict(h)["footfall.reason"].decode() for h in topics["dead-letter"].headers)
        assert reasons == Counter({"unknown_store": 2})
        assert sorted(orjson.loads(v)["event_id"] for _, v in topics["dead-letter"].sent) == ["e3", "e4"]
        rerouted = [orjson.loads(v) for k, v in topics["events"].sent]
        assert [[e["store_id"] for e in batch] for batch in rerouted] == [["retail-012"]]
        assert sorted(worker.stores._stores) == ["bank-7"] and "retail-0123" not in table.data
        assert worker.stats["events"] == 2 and worker.stats["rejected"] == 2

    asyncio.run(scenario())


def test_store_id_settings_are_checked():
    s = Settings(store_ids=" bank-*,,retail-0?? ")
    assert s.store_id_patterns == ("bank-*", "retail-0??")
    assert s.store_allowed("bank-1") and s.store_allowed("retail-001") and not s.store_allowed("retail-0001")
    assert Settings().store_allowed("anything")
    with pytest.raises(SettingsError, match="FOOTFALL_STORE_IDS"):
        Settings(store_ids="bank *")
    for bad in (-1, 0.5, float("nan")):
        with pytest.raises(SettingsError, match="FOOTFALL_STORE_IDLE_EVICT_S"):
            Settings(store_idle_evict_s=bad)
    assert Settings.from_env({"FOOTFALL_STORE_IDLE_EVICT_S": "2"}).store_idle_evict_s == 2.0
