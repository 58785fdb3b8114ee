"""Read a range of offsets of one partition straight from Kafka (to fill a gap Faust left, or catch up)."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from footfall.stream.kafka_access import KafkaAccess

__all__ = ["RangeReader"]

logger = logging.getLogger(__name__)


class RangeReader:
    """A group-less consumer, started on first use, that reads `[start, end)` of a partition."""

    def __init__(self, kafka: KafkaAccess) -> None:
        self.kafka = kafka
        self._consumer: AIOKafkaConsumer | None = None
        self._starting = asyncio.Lock()

    async def _consumer_started(self) -> AIOKafkaConsumer:
        async with self._starting:  # two callers must not both start one, nor use it half started
            if self._consumer is None:
                consumer = AIOKafkaConsumer(
                    **self.kafka.aiokafka(), group_id=None, enable_auto_commit=False,
                    auto_offset_reset="earliest",
                )
                await consumer.start()
                self._consumer = consumer
        return self._consumer

    async def end_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """The next offset to be written, per partition."""
        consumer = await self._consumer_started()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in ends.items()}

    async def beginning_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """The oldest offset still held, per partition (the log start)."""
        consumer = await self._consumer_started()
        begins = await consumer.beginning_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in begins.items()}

    async def read(
        self, topic: str, partition: int, start: int, end: int, timeout_s: float = 30.0
    ) -> list[ConsumerRecord]:
        """Records with `start <= offset < end`, in offset order (fewer where offsets hold no record).

        Raises TimeoutError when the range cannot be read to its end within `timeout_s`.
        """
        consumer = await self._consumer_started()
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[ConsumerRecord] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if await consumer.position(tp) >= end:
                break
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=1000)
            for record in batch.get(tp, []):
                if record.offset < end:
                    records.append(record)
            if records and records[-1].offset >= end - 1:
                break
        else:
            raise TimeoutError(f"could not read {topic}[{partition}] offsets {start}..{end - 1} within "
                               f"{timeout_s:.0f} s (got {len(records)} records)")
        return records

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
