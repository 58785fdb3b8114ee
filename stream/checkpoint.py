"""Checkpoint: publish what waits, then save the state it came from, then the offset markers.

The order makes counts exact per input offset (`flush`):

1. wait until the broker has every re-routed event and dead letter sent so far
   (resending those that failed);
2. send the waiting records to their topics and wait for them; write them to Redis;
3. write every changed store's stage states, then its state, to the `stores` table's
   changelog (`operators.pipeline.persistence`), and wait for them;
4. only then write each partition's marker: the last input offset applied there.

Steps 3 and 4 run at most every `FOOTFALL_CHECKPOINT_INTERVAL_S` (and when asked: at a stop or
a rebalance); 1 and 2 at every flush.

A marker therefore never says a message was applied while its outputs could still be
lost: a crash re-applies everything after the marker, which republishes the same
values (repeats of re-routed events are recognised by their source partition and offset). When a
send or the Redis write fails, nothing is saved: what failed goes back to the outbox
and is tried again at the next flush, and the markers wait (counted as `flush_failed`).
A record the broker has is not sent again while Redis is away: it waits for Redis
only, so an outage leaves no repeats on the output topics (a crash during it does:
what follows the marker is applied and published again). While Redis is away each flush
only probes it (`PROBE_TIMEOUT_S`), and `FlowWorker.process` stops taking messages once
`FOOTFALL_MAX_PENDING_RECORDS` wait. When Redis answers without the worker's written
marker (restarted empty, flushed, or a first start) it is rebuilt from the output
topics in the background (`stream.rebuild`); meanwhile flushes write nothing to Redis (the
rebuild's older copies of a bucket would land after the newer ones) and their records wait for it,
counted as `redis_rebuild_waits`.

On the way in, the ledger (`stream.offsets`) says whether a message was applied
already (`replay`), comes next, or follows a `gap` that Faust skipped; a gap is read
back from Kafka (`stream.refetch`) and applied first, in chunks. `catch_up` does the
same for a partition whose consumer stopped delivering.

With Faust's per-message delivery, Faust commits consumed offsets every few seconds, whatever
the checkpoints did: a worker that consumed but could not checkpoint (Redis away) and restarts
resumes past what it saved. The batch intake (the default) commits only what a save's markers
cover (`on_markers_saved`, `stream.batch_intake.MarkerCommits`). Either way the markers, not the
committed offsets, are the truth: the first message of a partition is admitted against its
marker, and a partition with no marker at all (nothing was ever checkpointed there) is read from
its log start, so everything consumed before a first checkpoint is read back and applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from footfall.operators.pipeline.persistence import (
    marker_key,
    marker_value,
    read_marker_value,
    stage_key,
    stage_value,
)
from footfall.stream.kafka_access import KafkaAccess
from footfall.stream.offsets import OffsetLedger
from footfall.stream.outbox import Outbox, Send
from footfall.stream.output_topic import RawTopic
from footfall.stream.refetch import RangeReader
from footfall.stream.sinks import PROBE_TIMEOUT_S, RedisSink
from footfall.stream.stores import StoreRegistry

__all__ = ["Checkpoint"]

logger = logging.getLogger(__name__)

#: Applies one message: (key, value, topic, partition, offset, headers).
Apply = Callable[[bytes | None, bytes | None, str, int, int, Any], Awaitable[None]]


#: Offsets read back at once when filling a gap.
GAP_CHUNK = 5_000
#: Records read straight from Kafka applied under one hold of the lock (`Checkpoint.catch_up`).
CATCH_UP_SLICE = 256
#: Seconds between looks for a Redis that lost its data while every write succeeded.
LOST_DATA_CHECK_S = 5.0


class Checkpoint:
    """The flush protocol, the offset ledger and the read-back of skipped offsets (see the module docstring)."""

    def __init__(self, table: faust.Table, stores: StoreRegistry, outbox: Outbox, redis_sink: RedisSink,
                 record_topics: dict[str, RawTopic], default_topic: RawTopic, kafka: KafkaAccess,
                 save_interval_s: float = 0.0) -> None:
        self.table = table
        self.stores = stores
        self.outbox = outbox
        self.redis = redis_sink
        self.record_topics = record_topics  # record type -> topic
        self.default_topic = default_topic
        self.ledger = OffsetLedger()
        self.range_reader = RangeReader(kafka)
        self._applied: dict[int, int] = {}  # partition -> last applied offset, not yet in a marker
        self.saved_at: float | None = None  # when the last checkpoint saved everything (monotonic)
        self.save_interval_s = save_interval_s  # FOOTFALL_CHECKPOINT_INTERVAL_S
        self.failing = False  # the last flush failed: pending work grows (`FlowWorker.process` may pause)
        self.kafka = kafka
        self._in_kafka: dict[tuple[str, int | str], dict[str, Any]] = {}  # sent, waiting for Redis
        self._redis_away = False
        self._check_lost_at = 0.0  # monotonic time of the next look for a Redis that lost its data
        self._fresh_look_done = False  # the first flush's look for a new deployment (`_note_new_deployment`)
        self._rebuild: asyncio.Task | None = None
        self._progress_at: dict[int, float] = {}  # partition -> when its next offset last moved (monotonic)
        #: Told each save's markers (partition -> last applied offset): `stream.batch_intake.MarkerCommits`.
        self.on_markers_saved: Callable[[dict[int, int]], None] | None = None

    # -- on the way in ------------------------------------------------------------------------------

    def saved_offsets(self, partition: int) -> list[int]:
        offset = read_marker_value(self.table.get(marker_key(partition)))
        return [] if offset is None else [offset]

    async def admit(self, topic: str, partition: int, offset: int, apply: Apply) -> bool:
        """Whether the message at `offset` is to be applied now (after any gap before it is read back)."""
        try:
            if not self.ledger.known(partition):
                saved = self.saved_offsets(partition)
                if saved:
                    self.ledger.restore(partition, saved)
                else:  # never checkpointed here: whatever Faust committed, start from the log's start
                    try:
                        begins = await self.range_reader.beginning_offsets(topic, [partition])
                    except Exception:
                        # Not applied: the next message (or the catch-up timer, from offset 0) reads it back.
                        logger.exception("could not read where %s[%d] starts; will retry", topic, partition)
                        self.outbox.totals["gap_retries"] += 1
                        return False
                    self.ledger.start_at(partition, begins[partition])
                self._progress_at[partition] = time.monotonic()
                logger.info("%s[%d]: first message at offset %d; the table has applied offsets below %s",
                            topic, partition, offset, self.ledger.next_offset(partition))
            verdict = self.ledger.classify(partition, offset)
            if verdict == "replay":
                self.outbox.count("replayed")
                # Delivered, so not stalled: after `catch_up` read ahead, the consumer's own replays of that range
                # must not make the partition look stalled again (measured: it read ahead every 15 s, for good).
                self._progress_at[partition] = time.monotonic()
                return False
            if verdict == "gap":
                try:
                    await self._fill_gap(topic, partition, offset, apply)
                except Exception:
                    # Not applied either: the ledger stays before the gap, so the next message (or the
                    # catch-up timer) reads the whole range again, this message included.
                    logger.exception("could not read back the offsets before %s[%d]@%d; will retry",
                                     topic, partition, offset)
                    self.outbox.totals["gap_retries"] += 1
                    return False
        except Exception:
            logger.exception("offset bookkeeping failed at %s[%d]@%d; applying the message as it is",
                             topic, partition, offset)
        return True

    def applied(self, partition: int, offset: int) -> None:
        self.ledger.applied(partition, offset)
        self._applied[partition] = offset
        self._progress_at[partition] = time.monotonic()

    async def _fill_gap(self, topic: str, partition: int, offset: int, apply: Apply) -> None:
        start, end = self.ledger.missing_range(partition, offset)
        logger.warning("offsets %s[%d] %d..%d never reached the agent (or were consumed before any checkpoint); "
                       "reading them back from Kafka", topic, partition, start, end - 1)
        # In chunks: memory stays bounded, and a failure keeps what was applied (the ledger moved on).
        while start < end:
            chunk_end = min(end, start + GAP_CHUNK)
            records = await self.range_reader.read(topic, partition, start, chunk_end)
            for record in records:
                await apply(record.key, record.value, topic, partition, record.offset, record.headers)
                self.applied(partition, record.offset)
            self.outbox.count("gap_records", len(records))
            start = chunk_end

    async def catch_up(self, topic: str, partitions: list[int], stall_s: float, lock: asyncio.Lock, apply: Apply,
                       still_assigned: Callable[[int], bool]) -> int:
        """Apply what waits in `partitions` when the consumer has delivered nothing there for `stall_s`.

        A safety net under Faust's consumer: measured here, a restarted faust-streaming
        0.15.3 worker sometimes stops delivering (its fetcher stays idle after recovery)
        with messages waiting. The waiting range is read straight from Kafka and applied
        as the agent would; what the consumer delivers later is a replay and skipped.
        `still_assigned(partition)` is asked again under the lock: a partition given away
        meanwhile is left to its new owner. Returns the number of records applied.
        """
        now = time.monotonic()
        stalled = [p for p in partitions if now - self._progress_at.setdefault(p, now) >= stall_s]
        if not stalled:
            return 0
        ends = await self.range_reader.end_offsets(topic, stalled)
        applied = 0
        for partition, end in sorted(ends.items()):
            async with lock:
                if not still_assigned(partition) or partition in self.redis.owners.lost:
                    continue
                if not self.ledger.known(partition):
                    self.ledger.restore(partition, self.saved_offsets(partition))
                start = self.ledger.next_offset(partition) or 0
                if start >= end:
                    self._progress_at[partition] = time.monotonic()
                    continue
            records = await self.range_reader.read(topic, partition, start, end)
            logger.warning("%s[%d]: nothing delivered for %.0f s while offsets %d..%d wait; applying %d records "
                           "read straight from Kafka", topic, partition, stall_s, start, end - 1, len(records))
            done = await self._apply_read(topic, partition, records, lock, apply, still_assigned)
            applied += done
            self.outbox.count("caught_up", done)
        return applied

    async def _apply_read(self, topic: str, partition: int, records: list[Any], lock: asyncio.Lock, apply: Apply,
                          still_assigned: Callable[[int], bool]) -> int:
        """Apply records read straight from Kafka, `CATCH_UP_SLICE` under each hold of the lock.

        Thousands may wait under load (11,000-14,000 at 10,000 simulated stores): applied under one
        hold, they held every flush back for seconds. Between slices the consumer may deliver the
        same range: the ledger says, slice by slice, which records are still to apply.
        """
        done = 0
        for first in range(0, len(records), CATCH_UP_SLICE):
            async with lock:
                if (not still_assigned(partition) or partition in self.redis.owners.lost
                        or not self.ledger.known(partition)):
                    return done  # given away, or forgotten at a rebalance: read again from the marker
                for record in records[first:first + CATCH_UP_SLICE]:
                    verdict = self.ledger.classify(partition, record.offset)
                    if verdict == "replay":
                        continue
                    if verdict == "gap":  # not contiguous with what was applied: the next delivery reads it back
                        return done
                    await apply(record.key, record.value, topic, partition, record.offset, record.headers)
                    self.applied(partition, record.offset)
                    done += 1
        return done

    # -- on the way out -----------------------------------------------------------------------------

    async def flush(self, save: bool = False) -> None:
        """Publish what waits, then save the state it came from (see the module docstring). Call under the lock.

        States and markers are saved when `save` is asked (a stop, a rebalance) or when the last
        save is `FOOTFALL_CHECKPOINT_INTERVAL_S` old: each save writes every store changed since,
        whether once or fifty times, so saving every few seconds rather than at every 1 s flush
        cuts the changelog writes (by 40 % at 3,000 simulated stores: README, "Exactly once per
        input offset"). Records go out at every flush all the same; a crash re-applies what came
        after the last save and publishes the same values again.
        """
        if not self._fresh_look_done:
            await self._note_new_deployment()
        records, counts, sends = self.outbox.take()
        partitions = {store_id: self.stores[store_id].partition for store_id, _ in records
                      if store_id in self.stores}
        records = await self._owned(records, partitions)
        # Each record goes to Kafka once: one already there (Redis failed after it) waits for Redis only.
        # Its bytes serve Redis too (serialising a record a second time was about 1 % of the worker).
        bodies = {id(r): orjson.dumps(r) for key, r in records.items() if self._in_kafka.get(key) is not r}
        record_sends = {key: Send(self.record_topics.get(r["type"], self.default_topic), r["store_id"].encode(),
                                  bodies[id(r)])
                        for key, r in records.items() if self._in_kafka.get(key) is not r}
        failed = await self._deliver(sends + list(record_sends.values()))
        failed_ids = {id(item) for item in failed}
        for key, item in record_sends.items():
            if id(item) not in failed_ids:
                self._in_kafka[key] = records[key]
        redis_ok = True
        # While Redis is rebuilt from the topics, its writes of older copies of these buckets would land
        # after this flush's newer ones (measured: a bucket ended 4 arrivals short under load); so the
        # records wait for the rebuild, as for Redis away (they are on Kafka: not sent again).
        rebuilding = self._rebuild is not None and not self._rebuild.done()
        if not failed and (records or counts) and not rebuilding:
            redis_ok = await self._to_redis(list(records.values()), counts, partitions, bodies)
            self._leave_lost()
        elif not failed and (records or counts):
            redis_ok = False
        if failed or not redis_ok:
            # Keep what is not known to be out: re-routes and dead letters to resend, records and
            # counters to write again (unless a newer record of the same bucket came meanwhile).
            record_ids = {id(item) for item in record_sends.values()}
            self.outbox.give_back(records, counts, [s for s in failed if id(s) not in record_ids])
            self.failing = True
            if rebuilding and not failed:
                self.outbox.totals["redis_rebuild_waits"] += 1
                return
            self.outbox.totals["flush_failed"] += 1
            logger.error("flush failed (%d sends, Redis %s): nothing saved; trying again at the next flush",
                         len(failed), "ok" if redis_ok else "away")
            return
        for key, record in records.items():
            if self._in_kafka.get(key) is record:
                del self._in_kafka[key]
        self.failing = False
        if save or self._save_due():
            await self._save_states()

    def _save_due(self) -> bool:
        return self.saved_at is None or time.monotonic() - self.saved_at >= self.save_interval_s

    async def _owned(self, records: dict[tuple[str, int | str], dict[str, Any]],
                     partitions: dict[str, int]) -> dict[tuple[str, int | str], dict[str, Any]]:
        """The records of partitions this worker still owns (`stream.ownership`); those lost are dropped.

        Asked before anything goes to Kafka: a worker that was frozen while another took its
        partitions over must not publish what it held of them. A Redis that does not answer
        cannot say: the records go on, and their Redis write (fenced) waits for it.
        """
        owners = self.redis.owners
        if records and owners.fenced(set(partitions.values())) and not self._redis_away:
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_S * 4):
                    await owners.check(self.redis.client, set(partitions.values()))
            except Exception as exc:
                logger.warning("could not check partition owners in Redis: %r", exc)
        if owners.lost:
            kept = {key: r for key, r in records.items() if partitions.get(key[0]) not in owners.lost}
            self.outbox.totals["fenced_records"] += len(records) - len(kept)
            records = kept
        self._leave_lost()
        return records

    async def refresh_owners(self) -> None:
        """Keep this worker's partition claims alive, and take contested ones whose claim lapsed (`stream.ownership`).

        A partition won that way is read again as after an assignment: its stores from the table,
        its input from its marker (nothing of it was applied or saved while it was contested).
        """
        if self._redis_away:
            return
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S * 4):
                await self.redis.owners.refresh(self.redis.client)
        except Exception as exc:
            logger.warning("could not refresh partition owners in Redis: %r", exc)
        self._leave_lost()
        won = self.redis.owners.drain_newly_won()
        if won:
            self.outbox.totals["partitions_won"] += len(won)
            self._drop_held(won)

    def _leave_lost(self) -> None:
        """Partitions another worker claimed: their stores leave memory, their markers are not written."""
        lost = self.redis.owners.drain_newly_lost()
        if lost:
            logger.warning("partitions %s were claimed by another worker: dropping what this worker held of them",
                           sorted(lost))
            self.outbox.totals["partitions_lost"] += len(lost)
            self._drop_held(lost)

    def _drop_held(self, partitions: set[int]) -> None:
        """Forget what memory holds of these partitions: the table and their markers are read again."""
        self.forget_partitions(partitions)
        self.stores.forget(partitions)
        for key in [k for k in self._in_kafka if k[0] not in self.stores]:
            del self._in_kafka[key]

    async def _to_redis(self, records: list[dict[str, Any]], counts: Any, partitions: dict[str, int],
                        bodies: dict[int, bytes]) -> bool:
        """Write to Redis; while it is known to be away, only a short probe (the lock is held meanwhile)."""
        if self._redis_away:
            if not await self.redis.ping():
                return False
            self._check_lost_at = 0.0  # back: did it come back empty?
        ok = await self.redis.publish(records, counts, partitions, bodies)
        self._redis_away = not ok
        now = time.monotonic()
        # Whether Redis lost its data: at the first write, after a failure, and at most every
        # LOST_DATA_CHECK_S between (a Redis restarted between two flushes shows no failure).
        if ok and self._rebuild is None and now >= self._check_lost_at:
            self._check_lost_at = now + LOST_DATA_CHECK_S
            try:
                lost = await self.redis.lost_data()
            except Exception:  # the check itself failed: look again at the next flush
                logger.exception("could not check whether Redis kept its data")
                self._check_lost_at = 0.0
                lost = False
            if lost:
                self._rebuild = asyncio.create_task(self._rebuild_redis())
        return ok

    def _output_topic_names(self) -> list[str]:
        """The topics the records go to, each once: what Redis is rebuilt from."""
        return sorted({t.get_topic_name() for t in (*self.record_topics.values(), self.default_topic)})

    async def _note_new_deployment(self) -> None:
        """At the first flush, before anything is sent: Redis without its written marker while every output
        topic is still empty is a new deployment, with nothing to rebuild; mark it written.

        Otherwise, or when the look fails, the look after the first write decides, as before. It
        came after the flush's records were on the topics, so every new deployment rebuilt Redis
        from what it had just written (measured at 10,000 stores: 3,670-9,586 records, 4-11 s, the
        flushes' Redis writes waiting meanwhile).
        """
        self._fresh_look_done = True
        try:
            if not await self.redis.lost_data():
                return
            topics = self._output_topic_names()
            partitions = list(range(self.redis.settings.partitions))
            for topic in topics:
                if any((await self.range_reader.end_offsets(topic, partitions)).values()):
                    return
            await self.redis.mark_written()
            logger.info("Redis and the output topics %s are empty: a new deployment, nothing to rebuild",
                        ", ".join(topics))
        except Exception:
            logger.warning("could not look whether Redis and the output topics start empty; the look after the "
                           "first write decides", exc_info=True)

    async def _rebuild_redis(self) -> None:
        """Write the output topics' last `bucket_retention_days` into Redis again (`stream.rebuild`)."""
        from footfall.stream.rebuild import rebuild_redis

        settings = self.redis.settings
        since_ms = int(time.time() * 1000) - settings.bucket_retention_days * 86_400_000
        topics = self._output_topic_names()
        try:
            written = await rebuild_redis(self.kafka, topics, settings.partitions, self.redis, since_ms)
            await self.redis.mark_written()
            self.outbox.totals["redis_rebuilt_records"] += written
        except Exception:  # the marker stays missing: the next flush starts the rebuild again
            logger.exception("rebuilding Redis from the output topics failed; trying again at the next flush")
        finally:
            self._rebuild = None

    async def _deliver(self, sends: list[Send]) -> list[Send]:
        """Hand `sends` to the producer (those not handed over yet) and wait; return those that failed."""
        for item in sends:
            if item.future is None:
                try:
                    await item.send()
                except Exception as exc:  # e.g. no metadata within the timeout: resend later
                    logger.error("send to %s failed: %r", item.topic.get_topic_name(), exc)
        waiting = [item for item in sends if item.future is not None]
        results = await asyncio.gather(*(item.future for item in waiting), return_exceptions=True)
        failed = [item for item in sends if item.future is None]
        for item, result in zip(waiting, results, strict=True):
            if isinstance(result, BaseException):
                logger.error("send to %s failed: %r", item.topic.get_topic_name(), result)
                item.future = None
                failed.append(item)
        return failed

    async def _save_states(self) -> None:
        """Write every changed store's stage states, then the stores, wait for them, then each partition's marker.

        Stage states go first, and the stores only once they are in: a store's saved offset
        must never be ahead of its stages (they would miss the buckets in between), while
        stages ahead of their store learn nothing twice (a bucket at or before the last one
        learned changes nothing).
        """
        lost = self.redis.owners.lost
        dirty = [(store_id, self.stores[store_id]) for store_id in self.stores.dirty
                 if self.stores[store_id].partition not in lost]
        stage_saves, saved_stages = [], []
        for store_id, store in dirty:
            for name, state in store.pipeline.stage_states(changed_only=True).items():
                stage_saves.append(self._save(store.partition, stage_key(name, store_id), stage_value(name, state)))
                saved_stages.append((store, name))
        if stage_saves:
            results = await asyncio.gather(*stage_saves, return_exceptions=True)
            if any(isinstance(result, BaseException) for result in results):
                self.outbox.totals["flush_failed"] += 1
                logger.error("saving stage states failed: store states and offset markers wait")
                return
            for store, name in saved_stages:
                store.pipeline.mark_stages_saved([name])
        written = []
        for store_id, store in dirty:
            value, raw = store.serialise()  # its size noted for `Intake.fits`
            written.append((store_id, self._save(store.partition, store_id, value, raw)))
        results = await asyncio.gather(*(future for _, future in written), return_exceptions=True)
        failed = {store_id for (store_id, _), result in zip(written, results, strict=True)
                  if isinstance(result, BaseException)}
        self.stores.dirty = failed
        if failed:
            self.outbox.totals["flush_failed"] += 1
            logger.error("saving %d store states failed: offset markers wait for the next flush", len(failed))
            return
        markers = {partition: offset for partition, offset in self._applied.items() if partition not in lost}
        for partition, offset in markers.items():
            self._save(partition, marker_key(partition), marker_value(partition, offset))
        self._applied.clear()
        self.saved_at = time.monotonic()
        if markers and self.on_markers_saved is not None:
            self.on_markers_saved(markers)

    def _save(self, partition: int, key: str, value: dict[str, Any], raw: bytes | None = None) -> Any:
        # Set the value without Faust's own changelog send (which needs the current event for its
        # partition, absent in the timer), and send the changelog record to the store's partition.
        # The table keeps the JSON bytes it sends, as recovery gives them back (its values are raw):
        # a store's state as Python dicts took about 210 KB, as bytes 32-39 KB. Copied to bytes of
        # their own size: orjson's buffer is larger (at least 4 KB; `operators.frozen`).
        raw = memoryview(orjson.dumps(value) if raw is None else raw).tobytes()
        self.table.data[key] = raw
        return self.table.send_changelog(partition, key, raw, value_serializer="raw")

    def forget_partitions(self, partitions: set[int]) -> None:
        """Drop what the ledger holds of these partitions (after a rebalance the table is the truth)."""
        self.ledger.forget(partitions)
        for partition in partitions:
            self._progress_at.pop(partition, None)
            self._applied.pop(partition, None)
