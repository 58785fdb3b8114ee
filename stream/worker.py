"""The flow worker: intake, stores, outbox and checkpoint put together, one message at a time.

`FlowWorker.process` handles one Kafka message exactly once and never raises: the
checkpoint's ledger admits it (skipping what was applied already, reading back
what Faust skipped), the intake applies it. `flush` collects the open buckets and
live states of the stores that changed (their stages' early warnings run here,
before the checkpoint), then runs the checkpoint. One lock orders both, whether
the agent, a timer or the catch-up reader calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import faust
import orjson

from footfall.stream.checkpoint import Checkpoint
from footfall.stream.intake import TICK_HEADER, Intake
from footfall.stream.metrics import WorkerSnapshot
from footfall.stream.outbox import Outbox
from footfall.stream.output_topic import RawTopic
from footfall.stream.settings import Settings
from footfall.stream.sinks import RedisSink
from footfall.stream.stores import StoreRegistry

__all__ = ["FlowWorker"]

logger = logging.getLogger(__name__)

#: Records of a fetched batch applied under one hold of the lock: a flush or a rebalance waits for at most
#: this many (about 25 ms of single-event messages; `process_batch`).
BATCH_SLICE = 256


class FlowWorker:
    """One worker's per-message logic, with its table, topics and sinks (see the module docstring).

    `record_topics` maps record types to their topics (`schemas.records.RecordKind.topic`);
    a type not in it goes to `aggregates_topic`.
    """

    def __init__(self, settings: Settings, table: faust.Table, events_topic: RawTopic,
                 aggregates_topic: RawTopic, dead_letter_topic: RawTopic, redis_sink: RedisSink,
                 record_topics: dict[str, RawTopic] | None = None) -> None:
        self.settings = settings
        self.outbox = Outbox()
        self.stores = StoreRegistry(settings, table)
        self.intake = Intake(settings, self.stores, self.outbox, events_topic, dead_letter_topic, redis_sink)
        self.checkpoint = Checkpoint(table, self.stores, self.outbox, redis_sink, dict(record_topics or {}),
                                     aggregates_topic, settings.kafka, settings.checkpoint_interval_s)
        #: The input partitions this worker owns in Redis' eyes (`stream.ownership`).
        self.owners = redis_sink.owners
        #: Set by `stop`: no message is applied any more.
        self.stopping = False
        self._lock = asyncio.Lock()  # one message at a time, whether the agent or the catch-up reader applies it
        self._last_flush = time.monotonic()
        #: Times partitions were taken from or given to this worker: a batch fetched before is stale (`process_batch`).
        self.revocations = 0
        self.flush_count, self.flush_s_sum, self.last_flush_s = 0, 0.0, None  # for /metrics

    @property
    def stats(self) -> Counter[str]:
        """Counters since start (events, late, duplicates, flush_failed...)."""
        return self.outbox.totals

    async def process(self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int,
                      headers: Any = None) -> None:
        """Handle one message exactly once; never raises. Waits while the checkpoints fail and work piles up."""
        if self.stopping:
            return  # stopping: not applied, not saved; read again from the marker at the next start
        if self.backlogged():
            await self._wait_for_room()
        async with self._lock:
            if self.stopping:
                return
            if partition in self.owners.lost:
                # Another worker owns it now (or a lapsed claim is awaited): its messages are that worker's to
                # apply; read again from the marker if this worker wins the partition back.
                self.outbox.totals["messages_not_owned"] += 1
                return
            if await self.checkpoint.admit(topic, partition, offset, self.intake.apply):
                await self.intake.apply(key, value, topic, partition, offset, headers)
                self.checkpoint.applied(partition, offset)
        if time.monotonic() - self._last_flush >= self.settings.live_interval_s:
            try:
                await self.flush()
            except Exception:  # nothing was saved: the next flush tries again
                logger.exception("flush failed; will retry")

    async def process_batch(self, topic: str, partition: int, records: Sequence[Any],
                            still_current: Callable[[], bool]) -> None:
        """Handle records fetched together from one partition (offset order), each exactly once; never raises.

        As `process` for each, with the lock taken once per `BATCH_SLICE` records rather than per
        message (`stream.batch_intake`). `still_current()` is asked under the lock before each
        slice: once a rebalance began, or the partition was taken, the rest is dropped (the
        consumer seeks back to the committed offsets, and the ledger reads back any range it
        did not see).
        """
        apply, admit, applied = self.intake.apply, self.checkpoint.admit, self.checkpoint.applied
        start = 0
        while start < len(records):
            if self.stopping:
                return
            if self.backlogged():
                await self._wait_for_room()
            async with self._lock:
                if self.stopping or not still_current():
                    return
                if partition in self.owners.lost:
                    self.outbox.totals["messages_not_owned"] += len(records) - start
                    return
                end = min(len(records), start + BATCH_SLICE)
                for record in records[start:end]:
                    offset = record.offset
                    if await admit(topic, partition, offset, apply):
                        await apply(record.key, record.value, topic, partition, offset, record.headers)
                        applied(partition, offset)
                start = end
            if time.monotonic() - self._last_flush >= self.settings.live_interval_s:
                try:
                    await self.flush()
                except Exception:  # nothing was saved: the next flush tries again
                    logger.exception("flush failed; will retry")

    def backlogged(self) -> bool:
        """Checkpoints fail and `max_pending_records` wait: no more input until a flush succeeds."""
        return self.checkpoint.failing and len(self.outbox.records) >= self.settings.max_pending_records

    async def _wait_for_room(self) -> None:
        # Not consuming while the records waiting for Redis (or the broker) pass the bound: memory stays
        # bounded, and the input waits in Kafka. The flush timer keeps trying; heartbeats go on.
        logger.warning("%d records wait for the next checkpoint (limit %d, FOOTFALL_MAX_PENDING_RECORDS): "
                       "consumption paused until a flush succeeds", len(self.outbox.records),
                       self.settings.max_pending_records)
        self.outbox.totals["consumption_paused"] += 1
        while True:
            await asyncio.sleep(0.25)
            async with self._lock:  # not during a flush, which holds the records it tries to publish
                if not self.backlogged():
                    break
        logger.warning("consumption resumed")

    async def flush(self, save: bool = False) -> None:
        """Collect open buckets and live states, then publish, and save if due or asked (`stream.checkpoint`)."""
        async with self._lock:
            self._last_flush = started = time.monotonic()
            try:
                self.intake.collect_live()
                await self.checkpoint.flush(save)
            finally:
                self.last_flush_s = time.monotonic() - started
                self.flush_s_sum += self.last_flush_s
                self.flush_count += 1

    async def stop(self) -> None:
        """Apply nothing more, then publish and save everything (the worker is stopping)."""
        self.stopping = True
        await self.flush(save=True)

    async def refresh_owners(self) -> None:
        """Keep the partition claims alive and take lapsed ones (`Checkpoint.refresh_owners`)."""
        async with self._lock:
            await self.checkpoint.refresh_owners()

    async def send_idle_ticks(self, now_ms: int) -> int:
        """Send a tick through the events topic for each store due one (`StoreRegistry.idle_ticks`).

        A tick counts as sent (`StoreRegistry.ticked`) only once the broker confirms it: one whose
        send raised or whose delivery failed stays due, and is sent again at the next round.
        Returns how many ticks the broker has.
        """
        due = self.stores.idle_ticks(now_ms)
        if not due:
            return 0
        topic = self.intake.events_topic
        handed: list[Awaitable[Any]] = []
        for store_id, advance_to_ms in due:
            body = orjson.dumps({"advance_to_ms": advance_to_ms})
            try:
                handed.append(await topic.send(key=store_id.encode(), value=body, headers=[(TICK_HEADER, body)]))
            except Exception as exc:  # not handed over: its result is the error, so it stays due
                handed.append(asyncio.sleep(0, result=exc))
        results = await asyncio.gather(*handed, return_exceptions=True)
        delivered = 0
        for (store_id, advance_to_ms), result in zip(due, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("idle tick for %s not delivered (%r); sent again at the next round", store_id, result)
                self.outbox.totals["idle_tick_failures"] += 1
            else:
                self.stores.ticked(store_id, advance_to_ms)
                delivered += 1
        return delivered

    async def catch_up(self, topic: str, partitions: list[int], stall_s: float,
                       still_assigned: Callable[[int], bool] = lambda p: True) -> int:
        """Apply what waits in partitions the consumer stopped delivering from (`Checkpoint.catch_up`).

        Not while backlogged: the consumer is held back on purpose then, not stalled.
        """
        if self.backlogged() or self.stopping:
            return 0
        applied = await self.checkpoint.catch_up(topic, partitions, stall_s, self._lock, self.intake.apply,
                                                 still_assigned)
        if applied:
            await self.flush()
        return applied

    def forget_partitions(self, partitions: set[int]) -> None:
        """Drop what memory holds of these partitions (after a rebalance the table is the truth)."""
        self.revocations += 1
        self.checkpoint.forget_partitions(partitions)
        dropped = self.outbox.drop_stores(self.stores.forget(partitions))
        if dropped:  # their new owner publishes them again from its checkpoint
            self.outbox.totals["revoked_records_dropped"] += dropped

    def snapshot(self, end_offsets: Mapping[int, int | None]) -> WorkerSnapshot:
        """The worker now, for `/metrics` and `/health`; `end_offsets`: the input partitions' log ends."""
        saved_at = self.checkpoint.saved_at
        return WorkerSnapshot(
            totals=dict(self.stats), dead_letters=dict(self.intake.dead_letters.counts),
            stores_in_memory=len(self.stores), pending_records=len(self.outbox.records),
            pending_sends=len(self.outbox.sends), next_offsets=self.checkpoint.ledger.snapshot(),
            end_offsets=dict(end_offsets), flush_count=self.flush_count, flush_seconds_sum=self.flush_s_sum,
            last_flush_seconds=self.last_flush_s,
            checkpoint_age_s=None if saved_at is None else time.monotonic() - saved_at)

    def progress_line(self) -> str:
        """Totals since start and the next expected offset per partition, for the worker's log."""
        totals = ", ".join(f"{name}={count}" for name, count in sorted(self.stats.items())) or "nothing yet"
        return (f"progress: {totals}; stores in memory {len(self.stores)}; "
                f"next offsets {self.checkpoint.ledger.snapshot()}")
