"""Rebuild Redis from the output topics, after it came back empty.

Redis is a view; the output topics (`<p>.aggregates`, `<p>.predictions`, `<p>.alerts`,
`<p>.staffing`, ...) are the log of every record the worker published, in order per
store (a store's records share a partition: they are keyed by its id). When Redis lost
its data (restarted without persistence, flushed), the worker reads those topics from
`FOOTFALL_BUCKET_RETENTION_DAYS` ago up to their ends at that moment and writes every
record again through the same `RedisSink` (roll-ups are recomputed from the bucket
records, as the worker computes them). Records written live meanwhile are newer than
those re-read; the store's latest values are written only forward
(`RedisSink`'s conditional latest), so the live ones win.

What the topics do not hold is not rebuilt: the worker's counters (`<p>:stats`) and the
dead-letter counts restart from zero.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from footfall.stream.kafka_access import KafkaAccess
from footfall.stream.sinks import CHUNK, RedisSink

__all__ = ["rebuild_redis"]

logger = logging.getLogger(__name__)


async def rebuild_redis(kafka: KafkaAccess, topics: Iterable[str], partitions: int, sink: RedisSink,
                        since_ms: int) -> int:
    """Write every record of `topics` (of `partitions` each) from `since_ms` to their ends into Redis; return how many.

    Raises on a broker or Redis failure (the caller tries again later).
    """
    consumer = AIOKafkaConsumer(**kafka.aiokafka(), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    written, started = 0, time.monotonic()
    try:
        tps = [TopicPartition(topic, p) for topic in topics for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        starts = await consumer.offsets_for_times({tp: since_ms for tp in tps})
        todo = {tp for tp in tps if starts.get(tp) is not None and starts[tp].offset < ends[tp]}
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, starts[tp].offset)
        total = sum(ends[tp] - starts[tp].offset for tp in todo)
        logger.warning("rebuilding Redis from %d partitions of %s: about %d records", len(todo),
                       ", ".join(sorted({tp.topic for tp in todo})), total)
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000, max_records=CHUNK)
            records = []
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset < ends[tp]:
                        try:
                            records.append(orjson.loads(message.value))
                        except orjson.JSONDecodeError:
                            logger.error("skipping a record of %s[%d]@%d that is not JSON", tp.topic, tp.partition,
                                         message.offset)
            if records and not await sink.publish(records):
                raise RuntimeError("Redis failed while being rebuilt")
            written += len(records)
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
                    consumer.pause(tp)
        logger.warning("Redis rebuilt: %d records written again in %.1f s", written, time.monotonic() - started)
        return written
    finally:
        await consumer.stop()
