"""The worker's agents: raw event messages in; bucket records, Redis state and dead letters out.

`FlowCounter.process` handles one Kafka message and never raises: every input
ends counted, re-keyed, or dead-lettered with a reason.

0. exactly once per offset (`stream.offsets`): a message already applied to
   the tables is skipped, and offsets Faust skipped are read back and applied first;
1. decode (`schemas.decode_message`): bad payloads and bad batch elements become
   dead letters; identifiers are pseudonymised;
2. events whose `store_id` is not the message key go back to the events topic
   under the right key (a store's state lives in one partition only);
3. per store: the `TumblingBuckets` operator, restored from the table, counts the
   events; late ones are dead-lettered with reason `late`; the new state is
   assigned back to the table (the assignment is what reaches the changelog);
4. one record per touched or closed bucket goes to the aggregates topic and Redis,
   coalesced: at most one per store and bucket every `FOOTFALL_LIVE_INTERVAL_S`
   (a busy store does not cost a send and a Redis write per event; no change waits longer).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from typing import Any

import faust
import orjson

from footfall.operators.buckets import TumblingBuckets
from footfall.schemas.events import Event, Limits
from footfall.schemas.messages import decode_message, scrub_identifiers
from footfall.schemas.privacy import Pseudonymizer
from footfall.stream.offsets import OffsetLedger
from footfall.stream.refetch import RangeReader
from footfall.stream.settings import Settings
from footfall.stream.sinks import DeadLetterLog, RedisSink, dead_letter_headers

__all__ = ["FlowCounter", "bucket_record"]

logger = logging.getLogger(__name__)


def _iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def bucket_record(
    store_id: str, meta: dict[str, Any], start_ms: int, bucket_ms: int, counts: dict[str, Any], status: str,
    watermark_ms: int | None, last_event_id: str | None,
) -> dict[str, Any]:
    """The published form of one bucket (aggregates topic, Redis)."""
    return {
        "type": "bucket",
        "store_id": store_id,
        "region": meta.get("region"),
        "vertical": meta.get("vertical"),
        "bucket_start": _iso(start_ms),
        "bucket_start_ms": start_ms,
        "bucket_s": bucket_ms // 1000,
        "status": status,
        **counts,
        "watermark_ms": watermark_ms,
        "last_event_id": last_event_id,
        "emitted_at_ms": int(time.time() * 1000),
    }


class FlowCounter:
    """Per-message logic of the flow agent, with its table, topics and sinks."""

    def __init__(
        self,
        settings: Settings,
        table: faust.Table,
        events_topic: faust.TopicT,
        aggregates_topic: faust.TopicT,
        dead_letter_topic: faust.TopicT,
        redis_sink: RedisSink,
    ) -> None:
        if not settings.pseudonym_secret:
            raise ValueError("FOOTFALL_PSEUDONYM_SECRET is required: customer ids are never stored raw")
        self.settings = settings
        self.table = table
        self.events_topic = events_topic
        self.aggregates_topic = aggregates_topic
        self.dead_letter_topic = dead_letter_topic
        self.redis = redis_sink
        self.pseudonymize = Pseudonymizer(settings.pseudonym_secret.encode())
        self.limits = Limits(min_ts_ms=settings.min_event_time_ms, max_future_ms=settings.max_future_s * 1000)
        self.dead_letters = DeadLetterLog(settings.dead_letter_log_every_s)
        self.stats: Counter[str] = Counter()
        self.ledger = OffsetLedger()
        self.range_reader = RangeReader(settings.broker)
        # Records and counters waiting for the next flush; a newer record of a bucket replaces the older.
        self._pending: dict[tuple[str, int], dict[str, Any]] = {}
        self._pending_stats: Counter[str] = Counter()
        self._last_flush = time.monotonic()

    async def flush(self) -> None:
        """Send the waiting records to the aggregates topic and Redis (the timer and the agent call it)."""
        self._last_flush = time.monotonic()
        if not self._pending and not self._pending_stats:
            return
        records, self._pending = list(self._pending.values()), {}
        stats, self._pending_stats = self._pending_stats, Counter()
        for record in records:
            await self.aggregates_topic.send(key=record["store_id"].encode(), value=orjson.dumps(record))
        await self.redis.publish(records, stats)

    def _applied_offsets(self, partition: int) -> list[int]:
        """Offsets recorded in this partition's table values (store states and the partition marker)."""
        return [
            value["o"] for value in self.table.values()
            if isinstance(value, dict) and value.get("p") == partition and "o" in value
        ]

    async def process(self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int) -> None:
        """Handle one message exactly once; never raises."""
        try:
            if not self.ledger.known(partition):
                self.ledger.restore(partition, self._applied_offsets(partition))
            verdict = self.ledger.classify(partition, offset)
            if verdict == "replay":
                self.stats["replayed"] += 1
                self._pending_stats["replayed"] += 1
                return
            if verdict == "gap":
                await self._fill_gap(topic, partition, offset)
        except Exception:
            logger.exception("offset bookkeeping failed at %s[%d]@%d; applying the message as it is",
                             topic, partition, offset)
        await self._apply(key, value, topic, partition, offset)

    async def _fill_gap(self, topic: str, partition: int, offset: int) -> None:
        start, end = self.ledger.missing_range(partition, offset)
        records = await self.range_reader.read(topic, partition, start, end)
        logger.warning("offsets %s[%d] %d..%d never reached the agent; applying %d records read back from Kafka",
                       topic, partition, start, end - 1, len(records))
        for record in records:
            await self._apply(record.key, record.value, topic, partition, record.offset)
        self._pending_stats["gap_records"] += len(records)

    async def _apply(self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int) -> None:
        try:
            await self._process(key, value, topic, partition, offset)
        except Exception as exc:  # the last line of defence: one bad message must not stop the worker
            logger.exception("unexpected error at %s[%d]@%d; message dead-lettered", topic, partition, offset)
            try:
                await self._dead_letter(value or b"", "internal_error", f"{type(exc).__name__}: {exc}",
                                        topic, partition, offset, None)
            except Exception:
                logger.exception("could not dead-letter %s[%d]@%d", topic, partition, offset)
        self.ledger.applied(partition, offset)

    async def _process(self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int) -> None:
        now_ms = int(time.time() * 1000)
        decoded = decode_message(value, now_ms=now_ms, limits=self.limits, pseudonymize=self.pseudonymize)
        for reject in decoded.rejects:
            await self._dead_letter(reject.payload, reject.reason, reject.error, topic, partition, offset,
                                    reject.batch_index)
        key_str = key.decode("utf-8", "replace") if key else None
        by_store: dict[str, list[tuple[Event, Any]]] = {}
        for event, original in zip(decoded.events, decoded.originals, strict=True):
            by_store.setdefault(event.store_id, []).append((event, original))
        stats: Counter[str] = Counter(messages=1, rejected=len(decoded.rejects))
        records: list[dict[str, Any]] = []
        wrote_state = False
        for store_id, items in by_store.items():
            if store_id != key_str:
                # Mis-keyed: its state lives in another partition. Send it back, keyed right;
                # the original (raw) bytes go only to the input topic they came from.
                await self.events_topic.send(
                    key=store_id.encode(), value=orjson.dumps([o for _, o in items]),
                )
                stats["rerouted"] += len(items)
                continue
            records.extend(await self._count_store(store_id, items, topic, partition, offset, stats))
            wrote_state = True
        if not wrote_state:
            # Nothing of this message reached a store's state: record its offset on the partition's marker.
            self.table[f"~partition-{partition}"] = {"p": partition, "o": offset}
        self.stats.update(stats)
        self._pending_stats.update(stats)
        for record in records:
            self._pending[(record["store_id"], record["bucket_start_ms"])] = record
        if time.monotonic() - self._last_flush >= self.settings.live_interval_s:
            await self.flush()

    async def _count_store(
        self, store_id: str, items: list[tuple[Event, Any]], topic: str, partition: int, offset: int,
        stats: Counter[str],
    ) -> list[dict[str, Any]]:
        s = self.settings
        state = self.table.get(store_id) or {}
        if state.get("p") == partition and state.get("o", -1) >= offset:
            return []  # this store already holds this message (the ledger should have said so)
        buckets = TumblingBuckets.from_state(state.get("b"), bucket_ms=s.bucket_ms, grace_ms=s.grace_ms)
        meta = {"region": state.get("region"), "vertical": state.get("vertical")}
        touched: dict[int, str] = {}
        for event, original in items:
            start = buckets.update(event)
            if start is None:
                late_by_ms = buckets.late_by_ms(event.ts_ms)
                await self._dead_letter(
                    orjson.dumps(scrub_identifiers(original, self.pseudonymize)), "late",
                    f"LateEvent: event {event.event_id!r} at {_iso(event.ts_ms)} is {late_by_ms} ms past the close "
                    f"of its bucket (grace {s.grace_s} s, watermark {_iso(buckets.watermark_ms or 0)})",
                    topic, partition, offset, None,
                )
                stats["late"] += 1
                continue
            stats["events"] += 1
            touched[start] = event.event_id
            if event.region:
                meta["region"] = event.region
            if event.vertical:
                meta["vertical"] = event.vertical
        closed = buckets.pop_closed()
        # Reassign (never mutate in place): the assignment is what Faust writes to the changelog.
        self.table[store_id] = {"b": buckets.to_state(), **meta, "p": partition, "o": offset}
        records = []
        for start, counts in closed:
            records.append(bucket_record(store_id, meta, start, s.bucket_ms, counts, "closed",
                                         buckets.watermark_ms, touched.pop(start, None)))
        for start, event_id in sorted(touched.items()):
            counts = buckets.get(start)
            if counts is not None:
                records.append(bucket_record(store_id, meta, start, s.bucket_ms, counts, "open",
                                             buckets.watermark_ms, event_id))
        return records

    async def _dead_letter(
        self, payload: bytes, reason: str, error: str, topic: str, partition: int, offset: int,
        batch_index: int | None,
    ) -> None:
        headers = dead_letter_headers(reason=reason, error=error, topic=topic, partition=partition,
                                      offset=offset, batch_index=batch_index)
        await self.dead_letter_topic.send(value=payload, headers=headers)
        self.dead_letters.record(reason, error, f"{topic}[{partition}]@{offset}")
        await self.redis.count_dead_letter(reason)
