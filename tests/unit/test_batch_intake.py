"""The batch intake's own rules, with small fakes (the real consumer: tests/integration/test_batch_intake.py).

- `FlowWorker.process_batch` applies each record exactly once, as `process` does one message at a time;
- it drops the rest of a batch once `still_current()` turns false (a rebalance), and the offset ledger
  then expects the first record it did not apply;
- `BatchIntake` gives the events topic's records to the worker a partition at a time, and every other
  topic's records to Faust's callback one by one, in order;
- `MarkerCommits` commits the offset after the newest saved marker of each partition, and survives a
  failed commit.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from footfall.stream.batch_intake import BatchIntake, MarkerCommits
from footfall.stream.worker import BATCH_SLICE
from tests.unit.test_flush_failures import event, make_counter


def record(offset: int, value: bytes, key: bytes = b"s1") -> SimpleNamespace:
    return SimpleNamespace(offset=offset, key=key, value=value, headers=())


def test_a_batch_counts_each_event_once_and_a_replayed_batch_nothing():
    async def scenario():
        worker, _, _, _ = make_counter()
        records = [record(i, event(i % 40)) for i in range(60)]  # ids 0..39, then 0..19 again: 20 repeats
        await worker.process_batch("t.events", 0, records, lambda: True)
        assert (worker.stats["events"], worker.stats["duplicates"]) == (40, 20)
        assert worker.checkpoint.ledger.next_offset(0) == 60
        await worker.process_batch("t.events", 0, records, lambda: True)  # fetched again after a seek
        assert (worker.stats["events"], worker.stats["duplicates"], worker.stats["replayed"]) == (40, 20, 60)

    asyncio.run(scenario())


def test_a_batch_no_longer_current_is_dropped_from_the_next_slice_on():
    async def scenario():
        worker, _, _, _ = make_counter()
        records = [record(i, event(i)) for i in range(BATCH_SLICE * 2 + 10)]
        answers = iter([True, False])
        await worker.process_batch("t.events", 0, records, lambda: next(answers))
        assert worker.stats["events"] == BATCH_SLICE
        assert worker.checkpoint.ledger.next_offset(0) == BATCH_SLICE  # read from there again later
        await worker.process_batch("t.events", 0, records, lambda: False)
        assert worker.stats["events"] == BATCH_SLICE

    asyncio.run(scenario())


class FakeConsumer:
    def __init__(self) -> None:
        self.flow_active, self.should_stop = True, False
        self._buffered_partitions: set[TP] = set()
        self._read_offset: dict[TP, int | None] = {}
        self._commit_every = None
        self._n_acked = 0
        self.delivered: list[tuple[str, int, int]] = []
        self.suspend_flow = asyncio.Event()
        self.commits: list[dict[TP, int]] = []
        self.fail_commits = 0

    def _to_message(self, tp: TP, rec: Any) -> Any:
        return SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=rec.offset)

    async def callback(self, message: Any) -> None:
        self.delivered.append((message.topic, message.partition, message.offset))

    async def wait_first(self, *coros: Any) -> None:
        await coros[0]
        coros[1].close()

    async def _commit(self, offsets: dict[TP, int]) -> bool:
        if self.fail_commits:
            self.fail_commits -= 1
            raise RuntimeError("rebalance in progress")
        self.commits.append(dict(offsets))
        return True


class BatchRecorder:
    revocations = 0

    def __init__(self) -> None:
        self.batches: list[tuple[int, list[int]]] = []

    async def process_batch(self, topic: str, partition: int, records: list[Any], still_current: Any) -> None:
        assert still_current()
        self.batches.append((partition, [r.offset for r in records]))


def recording_intake(generation: int) -> tuple[FakeConsumer, BatchRecorder, SimpleNamespace, BatchIntake]:
    consumer, worker = FakeConsumer(), BatchRecorder()
    app = SimpleNamespace(consumer=consumer, consumer_generation_id=generation,
                          topics=SimpleNamespace(acks_enabled_for=lambda topic: False))
    return consumer, worker, app, BatchIntake(app, "p.events", worker)


def test_events_go_a_partition_at_a_time_and_other_topics_one_by_one():
    async def scenario():
        consumer, worker, app, intake = recording_intake(generation=3)
        events0, events1, changelog, paused = TP("p.events", 0), TP("p.events", 1), TP("app-changelog", 0), \
            TP("p.events", 2)
        fetched = {TP("p.events", 3): [], events0: [record(5, b""), record(6, b"")],
                   changelog: [record(0, b""), record(1, b"")], events1: [record(9, b"")], paused: [record(1, b"")]}
        await intake._deliver(consumer, fetched, {events0, events1, changelog, TP("p.events", 3)}, 3, 0)
        assert worker.batches == [(0, [5, 6]), (1, [9])]
        assert consumer.delivered == [("app-changelog", 0, 0), ("app-changelog", 0, 1)]
        assert consumer._read_offset[events0] == 6 and consumer._read_offset[changelog] == 1
        # A rebalance since the fetch (a new generation): nothing of it is delivered.
        app.consumer_generation_id = 4
        await intake._deliver(consumer, {events0: [record(7, b"")]}, {events0}, 3, 0)
        assert worker.batches == [(0, [5, 6]), (1, [9])]

    asyncio.run(scenario())


def test_partitions_take_turns_so_none_waits_for_another_whole_batch():
    async def scenario():
        consumer, worker, _, intake = recording_intake(generation=1)
        p0, p1 = TP("p.events", 0), TP("p.events", 1)
        fetched = {p0: [record(i, b"") for i in range(600)], p1: [record(i, b"") for i in range(300)]}
        await intake._deliver(consumer, fetched, {p0, p1}, 1, 0)
        assert worker.batches == [(0, list(range(0, 256))), (1, list(range(0, 256))),
                                  (0, list(range(256, 512))), (1, list(range(256, 300))),
                                  (0, list(range(512, 600)))]

    asyncio.run(scenario())


class FakeStallReader:
    """The input topic's end offsets, and its records from wherever the catch-up asks."""

    def __init__(self, end: int) -> None:
        self.end, self.reads = end, []

    async def beginning_offsets(self, topic, partitions):
        return {p: 0 for p in partitions}

    async def end_offsets(self, topic, partitions):
        return {p: self.end for p in partitions}

    async def read(self, topic, partition, start, end, timeout_s=30.0):
        self.reads.append((start, end))
        return [SimpleNamespace(key=b"s1", value=event(i), offset=i, headers=()) for i in range(start, end)]


def test_a_partition_whose_replays_are_delivered_is_not_read_ahead_again():
    async def scenario():
        worker, _, _, _ = make_counter()
        reader = FakeStallReader(end=40)
        worker.checkpoint.range_reader = reader
        await worker.process_batch("t.events", 0, [record(i, event(i)) for i in range(10)], lambda: True)
        worker.checkpoint._progress_at[0] -= 20  # nothing delivered for 20 s: the guard reads ahead
        assert await worker.catch_up("t.events", [0], 15.0) == 30
        assert reader.reads == [(10, 40)]
        worker.checkpoint._progress_at[0] -= 20  # 20 s later, more input waits (to offset 45)
        reader.end = 45
        # The consumer now delivers what the guard already applied: replays, but deliveries all the same.
        await worker.process_batch("t.events", 0, [record(i, event(i)) for i in range(10, 20)], lambda: True)
        assert await worker.catch_up("t.events", [0], 15.0) == 0
        assert reader.reads == [(10, 40)] and worker.stats["replayed"] == 10
        assert worker.stats["events"] == 40

    asyncio.run(scenario())


def test_marker_commits_take_the_newest_markers_and_survive_a_failed_commit():
    async def scenario():
        consumer = FakeConsumer()
        commits = MarkerCommits(SimpleNamespace(consumer=consumer), "p.events")
        consumer.fail_commits = 1
        commits.saved({0: 10, 1: 4})
        await asyncio.sleep(0.01)
        assert consumer.commits == [] and commits.committed == 0
        commits.saved({0: 12})
        commits.saved({0: 11, 2: 3})  # while the first runs: merged, the newest offset per partition kept
        await asyncio.sleep(0.01)
        assert consumer.commits == [{TP("p.events", 0): 13, TP("p.events", 2): 4}]
        assert commits.committed == 1

    asyncio.run(scenario())


def test_a_failed_seek_while_the_flow_is_stopped_does_not_end_the_fetch_loop():
    # Measured in the fault suite: the assignment changed under the seek (aiokafka's IllegalStateError), the
    # fetch loop ended, and the consumer's thread with it.
    async def scenario():
        consumer, worker, app, intake = recording_intake(generation=1)
        fetcher = SimpleNamespace(_stopped=asyncio.Event())
        consumer._stopped = asyncio.Event()
        consumer.diag = SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None)
        consumer.consumer_stopped_errors = (ConnectionError,)
        app.should_stop = False
        fetches = []

        async def wait_next_records(timeout):
            fetches.append(consumer.flow_active)
            if len(fetches) == 3:
                fetcher._stopped.set()
            return {TP("p.events", 0): [record(len(fetches), b"")]}, {TP("p.events", 0)}

        async def perform_seek():
            raise RuntimeError("No current assignment for partition p.events[0]")

        consumer._wait_next_records, consumer.perform_seek = wait_next_records, perform_seek
        consumer.flow_active = False
        await asyncio.wait_for(intake.drain(fetcher), 5)
        assert fetches == [False, False, False] and worker.batches == []

    asyncio.run(scenario())
