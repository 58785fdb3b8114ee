"""The recovery watch's logic, with a stand-in for Faust's recovery service and for Kafka.

That it unsticks a real worker is shown on a real broker (tests/faults/test_recovery_stall.py).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from faust.types import TP

from footfall.stream.recovery_watch import RecoveryWatch, as_faust_message, stalled_partitions


@dataclass
class Recovery:
    in_recovery: bool = True
    active_highwaters: dict = field(default_factory=dict)
    active_offsets: dict = field(default_factory=dict)
    active_tps: set = field(default_factory=set)


def test_stalled_partitions_are_the_offsets_left_to_restore_brute_force():
    rng = random.Random(7)
    for _ in range(500):
        recovery = Recovery()
        expected = {}
        for p in range(rng.randint(0, 5)):
            tp = TP("c", p)
            highwater = rng.randint(-1, 30)  # Faust's: the offset of the last record, -1 for an empty partition
            restored = rng.choice([None, -1, *range(0, 31)])
            recovery.active_highwaters[tp] = highwater
            if restored is not None:
                recovery.active_offsets[tp] = restored
            done = -1 if restored is None else restored
            offsets_left = [o for o in range(0, highwater + 1) if o > done]
            if offsets_left:
                expected[tp] = (offsets_left[0], offsets_left[-1] + 1)
        assert stalled_partitions(recovery) == expected
        recovery.in_recovery = False
        assert stalled_partitions(recovery) == {}


def record(offset: int, partition: int = 1) -> SimpleNamespace:
    return SimpleNamespace(topic="app-stores-changelog", partition=partition, offset=offset,
                           timestamp=1_700_000_000_123, timestamp_type=0, headers=[("h", b"v")],
                           key=b'"store-1"', value=b'{"n": %d}' % offset,
                           checksum=None, serialized_key_size=9, serialized_value_size=8)


class Reader:
    """Kafka as a dict of offsets -> record; a compacted partition has holes. Fails from read `fail_at` on."""

    def __init__(self, log: dict[int, SimpleNamespace], fail_at: int | None = None) -> None:
        self.log, self.reads, self.fail_at = log, [], fail_at

    async def read(self, topic: str, partition: int, start: int, end: int) -> list:
        self.reads.append((topic, partition, start, end))
        if self.fail_at is not None and len(self.reads) > self.fail_at:
            raise TimeoutError("broker away")
        return [self.log[o] for o in sorted(self.log) if start <= o < end]


class Channel:
    def __init__(self, on_deliver=None) -> None:
        self.delivered, self.on_deliver = [], on_deliver

    async def deliver(self, message) -> None:
        self.delivered.append(message)
        if self.on_deliver:
            self.on_deliver(message)


class Table:
    changelog_topic = SimpleNamespace(get_topic_name=lambda: "app-stores-changelog")


def watch_of(recovery: Recovery, reader: Reader, channel: Channel, clock: list[float]):
    table = Table()
    app = SimpleNamespace(tables=SimpleNamespace(recovery=recovery, _channels={table: channel}),
                          consumer_generation_id=5)
    totals: Counter[str] = Counter()

    def count(name: str, n: int) -> None:
        totals[name] += n

    return app, totals, RecoveryWatch(app, reader, stall_s=10.0, count=count, clock=lambda: clock[0])


def test_a_partition_restoring_nothing_for_stall_s_is_fed_the_missing_range_and_nothing_else():
    tp = TP("app-stores-changelog", 1)
    recovery = Recovery(active_highwaters={tp: 12}, active_offsets={tp: 3}, active_tps={tp})
    log = {o: record(o) for o in (0, 2, 3, 5, 8, 9, 12)}  # compacted: holes
    reader, channel, clock = Reader(log), Channel(), [100.0]
    _, totals, watch = watch_of(recovery, reader, channel, clock)
    assert asyncio.run(watch.check()) == 0  # first seen
    clock[0] = 109.9
    assert asyncio.run(watch.check()) == 0  # not yet stalled for 10 s
    clock[0] = 110.0
    assert asyncio.run(watch.check()) == 4
    assert reader.reads == [("app-stores-changelog", 1, 4, 13)]
    assert [m.offset for m in channel.delivered] == [5, 8, 9, 12]
    assert totals == {"recovery_fed": 4}
    message = channel.delivered[0]
    assert (message.tp, message.topic, message.partition, message.key, message.value) == (
        tp, "app-stores-changelog", 1, b'"store-1"', b'{"n": 5}')
    assert message.timestamp == 1_700_000_000.123 and message.headers == [("h", b"v")]
    assert message.generation_id == 5
    clock[0] = 115.0
    assert asyncio.run(watch.check()) == 0  # just fed: the recovery gets stall_s to apply them


def test_a_recovery_that_moves_is_left_alone():
    tp = TP("app-stores-changelog", 1)
    recovery = Recovery(active_highwaters={tp: 100}, active_offsets={tp: 0}, active_tps={tp})
    reader, channel, clock = Reader({o: record(o) for o in range(101)}), Channel(), [0.0]
    _, _, watch = watch_of(recovery, reader, channel, clock)
    for step in range(1, 30):
        clock[0] = step * 6.0
        recovery.active_offsets[tp] = step  # restores slowly, but restores
        assert asyncio.run(watch.check()) == 0
    recovery.active_offsets[tp] = 100  # done
    clock[0] = 1000.0
    assert asyncio.run(watch.check()) == 0 and reader.reads == []


def test_feeding_stops_when_a_rebalance_comes_meanwhile():
    tp = TP("app-stores-changelog", 1)
    recovery = Recovery(active_highwaters={tp: 9}, active_offsets={tp: -1}, active_tps={tp})
    app_box = {}

    def rebalance_after_three(message) -> None:
        if message.offset == 2:
            app_box["app"].consumer_generation_id = 6

    reader, channel, clock = Reader({o: record(o) for o in range(10)}), Channel(rebalance_after_three), [0.0]
    app, totals, watch = watch_of(recovery, reader, channel, clock)
    app_box["app"] = app
    asyncio.run(watch.check())
    clock[0] = 10.0
    assert asyncio.run(watch.check()) == 3
    assert [m.offset for m in channel.delivered] == [0, 1, 2] and totals == {"recovery_fed": 3}


def test_a_faust_message_made_by_the_watch_has_every_field_faust_s_consumer_gives():
    # The fields Faust's aiokafka driver copies from a ConsumerRecord (`Consumer._to_message`).
    r = record(4)
    m = as_faust_message(r, 3)
    assert (m.topic, m.partition, m.offset, m.timestamp, m.timestamp_type, m.headers, m.key, m.value, m.checksum,
            m.serialized_key_size, m.serialized_value_size, m.tp, m.generation_id) == (
        r.topic, r.partition, r.offset, r.timestamp / 1000.0, r.timestamp_type, r.headers, r.key, r.value,
        r.checksum, r.serialized_key_size, r.serialized_value_size, TP(r.topic, r.partition), 3)


def test_a_long_range_is_fed_in_chunks_and_a_failed_read_keeps_what_was_handed_over(monkeypatch):
    import footfall.stream.recovery_watch as recovery_watch

    monkeypatch.setattr(recovery_watch, "FEED_CHUNK", 4)
    tp = TP("app-stores-changelog", 1)
    recovery = Recovery(active_highwaters={tp: 12}, active_offsets={tp: -1}, active_tps={tp})
    log = {o: record(o) for o in range(13) if o != 5}
    reader, channel, clock = Reader(log, fail_at=2), Channel(), [0.0]
    _, totals, watch = watch_of(recovery, reader, channel, clock)
    asyncio.run(watch.check())
    clock[0] = 10.0
    with pytest.raises(TimeoutError):  # the timer logs it and looks again at its next tick
        asyncio.run(watch.check())
    assert reader.reads == [("app-stores-changelog", 1, 0, 4), ("app-stores-changelog", 1, 4, 8),
                            ("app-stores-changelog", 1, 8, 12)]
    assert [m.offset for m in channel.delivered] == [0, 1, 2, 3, 4, 6, 7] and totals == {"recovery_fed": 7}
