"""Batch intake: the events topic's fetched records go to the worker a partition's batch at a time.

Faust hands each fetched message to the agent one by one: a `ConsumerMessage`, two tasks
(`wait_first` of the conductor's callback and the flow's suspension), the conductor's
dispatch, the stream's queue, event and acknowledgement. For one event a message that
machinery costs about as much CPU as the worker's own work (measured with
`footfall bench --only c,d`: `d` is the worker with this intake off). So the worker takes
over the one loop of Faust's fetcher (`Consumer._drain_messages`) and gives each
partition's records of a fetch to `FlowWorker.process_batch` at once.

What stays Faust's: the group membership, heartbeats and rebalances (the consumer, its
thread and its hooks), the table, its changelog and its recovery (records of every other
topic, changelogs included, still go through Faust's own per-message path, unchanged),
and the producer.

What changes:

- the worker's records are never acknowledged to Faust, so Faust commits no offset of
  the events topic; `MarkerCommits` commits the checkpoint's markers instead, after
  they are saved: the group's committed offset is never past the last checkpoint;
- a batch fetched in an earlier generation, or while a rebalance stopped the flow, or
  before its partition was revoked (`FlowWorker.revocations`) is dropped, not applied:
  the consumer seeks back to the committed offsets and the offset ledger reads back any
  range the worker did not see (`stream.offsets`), so dropping is always safe;
- under `FOOTFALL_PROCESSING_GUARANTEE=exactly_once` it is not used: Faust's transactions
  commit the offsets the agent acknowledges.

`FOOTFALL_BATCH_INTAKE=false` keeps Faust's per-message delivery to the agent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from faust.types import TP

__all__ = ["BatchIntake", "BatchWorker", "MarkerCommits"]

logger = logging.getLogger(__name__)

#: Faust's name for the consumer's "fetching" diagnostic flag (`faust.transport.consumer.CONSUMER_FETCHING`).
FETCHING_FLAG = "FETCHING"
#: Records of one partition applied before the next partition's turn (`BatchIntake._deliver`).
ROUND_RECORDS = 256
#: Seconds a fetch waits for records (Faust's own loop uses 1 s).
FETCH_TIMEOUT_S = 1.0


class BatchWorker(Protocol):
    """What the intake needs of the worker (`stream.worker.FlowWorker`)."""

    @property
    def revocations(self) -> int:
        """How many times the worker's partitions changed hands (a batch fetched before is stale)."""

    async def process_batch(self, topic: str, partition: int, records: list[Any], still_current: Any) -> None:
        """Apply `records` (one partition's, in offset order) each exactly once while `still_current()`."""


class BatchIntake:
    """Replaces one Faust consumer's fetch loop (see the module docstring); `install` it on the consumer."""

    def __init__(self, app: Any, events_topic: str, worker: BatchWorker) -> None:
        self.app = app
        self.events_topic = events_topic
        self.worker = worker
        self.batches = 0  # rounds of records handed to the worker

    def install(self, consumer: Any) -> None:
        """Make `consumer`'s fetcher run `drain` instead of Faust's per-message loop."""
        # One instance attribute: Faust's Fetcher calls `consumer._drain_messages(fetcher)` at each start.
        consumer._drain_messages = self.drain
        logger.info("batch intake: %s is taken a fetched batch at a time (FOOTFALL_BATCH_INTAKE)", self.events_topic)

    async def drain(self, fetcher: Any) -> None:  # the Fetcher's background loop, as Faust's own
        consumer = self.app.consumer
        consumer_stopped = consumer._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                consumer.diag.set_flag(FETCHING_FLAG)
                try:
                    # Taken before the fetch: records of a fetch that a rebalance overlapped are dropped.
                    generation, revocations = self.app.consumer_generation_id, self.worker.revocations
                    records, active = await consumer._wait_next_records(FETCH_TIMEOUT_S)
                    await asyncio.sleep(0)  # as Faust's loop: a fetch that returns at once still yields
                    if records is None or consumer.should_stop:
                        continue
                    if not consumer.flow_active:
                        # Fetched around a rebalance: dropped; reading resumes from the committed offsets.
                        try:
                            await consumer.perform_seek()
                        except Exception as exc:  # the assignment changed under the seek: as Faust's own loop
                            logger.warning("seeking to the committed offsets while the flow is stopped failed: %r",
                                           exc)
                        continue
                    await self._deliver(consumer, records, active, generation, revocations)
                finally:
                    consumer.diag.unset_flag(FETCHING_FLAG)
        except consumer.consumer_stopped_errors:
            if self.app.should_stop:
                logger.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.app.should_stop:
                return
            raise
        except Exception as exc:
            logger.exception("the fetch loop raised: %r", exc)
            raise

    async def _deliver(self, consumer: Any, records: Mapping[TP, list[Any]], active: set[TP] | None,
                       generation: int, revocations: int) -> None:
        def still_current() -> bool:
            return (consumer.flow_active and not consumer.should_stop
                    and self.app.consumer_generation_id == generation and self.worker.revocations == revocations)

        buffered = consumer._buffered_partitions
        events: list[tuple[TP, list[Any]]] = []
        for tp, batch in records.items():
            if not batch:
                continue
            if active is not None and tp not in active and tp not in buffered:
                continue  # paused since the fetch (Faust's own loop skips these too)
            if tp.topic == self.events_topic:
                consumer._read_offset[tp] = batch[-1].offset
                events.append((tp, batch))
            elif still_current():
                await self._deliver_one_by_one(consumer, tp, batch)
        # The partitions in turn, `ROUND_RECORDS` at a time: a fetch of many thousand records per partition
        # takes seconds to apply under load, and one partition's whole batch after another's starved the
        # last one for over 15 s (measured at 10,000 stores; Faust's own loop takes partitions in turn too).
        start = 0
        while events:
            for tp, batch in events:
                if not still_current():
                    return
                await self.worker.process_batch(tp.topic, tp.partition, batch[start:start + ROUND_RECORDS],
                                                still_current)
            self.batches += 1
            start += ROUND_RECORDS
            events = [(tp, batch) for tp, batch in events if len(batch) > start]

    async def _deliver_one_by_one(self, consumer: Any, tp: TP, batch: list[Any]) -> None:
        """Faust's own path for a record of another topic (a changelog, during recovery or for standbys)."""
        read_offset = consumer._read_offset
        acks_enabled = self.app.topics.acks_enabled_for(tp.topic)
        commit_every = consumer._commit_every
        for record in batch:
            offset = record.offset
            last = read_offset.get(tp)
            if last is not None and offset < last:
                continue  # as Faust's loop: already read
            if acks_enabled and last and offset - last > 1:
                await consumer._add_gap(tp, last + 1, offset)
            if commit_every is not None and consumer._n_acked >= commit_every:
                consumer._n_acked = 0
                await consumer.commit()
            message = consumer._to_message(tp, record)
            await consumer.wait_first(consumer.callback(message), consumer.suspend_flow.wait())
            read_offset[tp] = offset


class MarkerCommits:
    """Commits, for the group, the offset after each partition's saved marker (the next one to read).

    `saved(markers)` is called after a checkpoint saved its markers (partition -> last applied
    offset); the commit runs in the background, one at a time, the newest markers winning, so
    the checkpoint never waits for it. A failed commit (a rebalance under way, the broker away)
    is harmless: the markers are the truth (a restart reads back from them whatever lies
    between a marker and the committed offset), and the next checkpoint commits again.
    """

    def __init__(self, app: Any, events_topic: str) -> None:
        self.app = app
        self.events_topic = events_topic
        self._waiting: dict[int, int] = {}
        self._task: asyncio.Task | None = None
        self.committed = 0  # commits the broker accepted

    def saved(self, markers: Mapping[int, int]) -> None:
        for partition, offset in markers.items():
            self._waiting[partition] = max(offset, self._waiting.get(partition, -1))
        if self._waiting and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._commit())

    async def _commit(self) -> None:
        while self._waiting:
            markers, self._waiting = self._waiting, {}
            offsets = {TP(self.events_topic, partition): offset + 1 for partition, offset in markers.items()}
            try:
                if await self.app.consumer._commit(offsets):
                    self.committed += 1
            except Exception as exc:  # a rebalance, the broker away: the next checkpoint commits again
                logger.debug("committing the checkpoint's offsets failed (%r); the next checkpoint commits again",
                             exc)
