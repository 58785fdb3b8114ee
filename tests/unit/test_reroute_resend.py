"""Re-routed events: a resend is recognised by its exact source partition and offset, whenever it comes.

A message keyed by one store may hold another store's events; the worker sends those back to the
events topic under their store's key, with a header naming the source partition and offset. Here the
first of two such re-routes fails and is resent at the next flush, after the second one is out: both
are counted once, and a later repeat of either (its source re-applied after a crash) is not counted.
"""

from __future__ import annotations

import asyncio

from footfall.stream.intake import REROUTED_HEADER
from footfall.stream.stores import ReroutedSeen
from tests.unit.test_flush_failures import event, make_counter


def test_a_reroute_resent_after_later_ones_is_counted_once():
    async def scenario():
        worker, topics, _, redis = make_counter()
        events = topics["events"]
        events.fail_next = 1  # the first re-route's delivery fails
        await worker.process(b"s1", event(1, store="s2"), "t.events", 0, 5)  # s2's event under s1's key
        await worker.process(b"s1", event(2, store="s2"), "t.events", 0, 6)
        await worker.flush()
        assert worker.stats["flush_failed"] == 1 and len(events.sent) == 1
        await worker.flush()  # the failed re-route is sent again: it comes after the later one
        sources = [dict(h)[REROUTED_HEADER] for h in events.headers]
        assert sources == [b"0:6", b"0:5"]

        # s2's partition (1) reads the re-routes in the order the broker has them.
        rerouted = list(zip(events.sent, events.headers, strict=True))
        for offset, ((key, value), headers) in enumerate(rerouted):
            await worker.process(key, value, "t.events", 1, offset, headers)
        assert worker.stats["rerouted"] == 2
        assert worker.stats["events"] == 2, "2 re-routed, 2 counted"
        assert worker.stats["rerouted_repeats"] == 0

        # Sent once more (the source partition re-applied after a crash): repeats, not counted again.
        for offset, ((key, value), headers) in enumerate(rerouted, start=len(rerouted)):
            await worker.process(key, value, "t.events", 1, offset, headers)
        assert worker.stats["events"] == 2 and worker.stats["rerouted_repeats"] == 2
        await worker.flush()
        bucket = [r for r in redis.published if r["type"] == "bucket" and r["store_id"] == "s2"][-1]
        assert bucket["events"] == 2

    asyncio.run(scenario())


def test_what_a_store_has_seen_of_re_routes_survives_a_restart():
    async def scenario():
        worker, topics, table, _ = make_counter()
        await worker.process(b"s1", event(1, store="s2"), "t.events", 0, 5)
        await worker.process(b"s1", event(2, store="s2"), "t.events", 0, 6)
        rerouted = list(zip(topics["events"].sent, topics["events"].headers, strict=True))
        await worker.process(*rerouted[1][0], "t.events", 1, 0, rerouted[1][1])  # only 0:6 has arrived
        await worker.flush()

        restarted, _, _, _ = make_counter()
        restarted.stores.table = restarted.checkpoint.table = table  # the same changelog, read back
        await restarted.process(*rerouted[1][0], "t.events", 1, 1, rerouted[1][1])  # 0:6 again: a repeat
        await restarted.process(*rerouted[0][0], "t.events", 1, 2, rerouted[0][1])  # 0:5, late: counted
        assert restarted.stats["rerouted_repeats"] == 1 and restarted.stats["events"] == 1

    asyncio.run(scenario())


def test_seen_re_routes_are_bounded_per_source_and_read_the_earlier_scheme():
    seen = ReroutedSeen(limit=2)
    assert [seen.first_time("3", o) for o in (10, 12, 11)] == [True, True, True]
    assert seen.to_state() == {"3": {"floor": 10, "seen": [11, 12]}}
    assert not seen.first_time("3", 9), "below the remembered ones: taken as applied"
    assert seen.first_time("4", 9), "each source partition on its own"
    old = ReroutedSeen.from_state({"0": 7})  # the earlier scheme: the highest offset applied
    assert not old.first_time("0", 7) and old.first_time("0", 8)
    assert ReroutedSeen.from_state(seen.to_state()).to_state() == seen.to_state()
