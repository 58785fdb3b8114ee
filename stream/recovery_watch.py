"""A guard under Faust's table recovery: changelog partitions it waits for but is not given are read from Kafka.

After a takeover, faust-streaming 0.15.3 sometimes restores nothing: its recovery has
resumed the changelog partitions, but no record of them reaches it ("No event received
for active tp ... since recovery start", every five seconds, for ever), so the worker
never takes the partitions it was given, and they stay unprocessed. Measured here: two of
six runs of the fault suite ended that way on one worker.

`RecoveryWatch.check` (a timer) notices an active changelog partition that has records
left and whose restored offset has not moved for `stall_s`. It logs what Faust's consumer
holds for those partitions (the clue to the cause), reads the missing range straight from
Kafka, and hands each record to the changelog channel, exactly as Faust's consumer would
deliver it. Faust's recovery applies them as its own and ends as usual, and what its
consumer delivers later is older than what was restored and skipped by the recovery.

>>> class Recovery:  # what the watch reads of Faust's recovery service
...     in_recovery = True
...     active_highwaters = {"tp": 9}
...     active_offsets = {"tp": 4}
>>> stalled_partitions(Recovery())
{'tp': (5, 10)}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import faust
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from footfall.stream.diagnostics import log_task_stacks, recovery_state
from footfall.stream.refetch import RangeReader

__all__ = ["RecoveryWatch", "stalled_partitions"]

logger = logging.getLogger(__name__)

#: Changelog offsets read and handed over at once.
FEED_CHUNK = 5_000


class RecoveryProgress(Protocol):
    """What the watch reads of Faust's `Recovery` service."""

    in_recovery: bool
    active_highwaters: Mapping[Any, int]  # the offset of the last record to restore, -1 for none
    active_offsets: Mapping[Any, int]  # the offset of the last record restored, -1 for none


def stalled_partitions(recovery: RecoveryProgress) -> dict[Any, tuple[int, int]]:
    """Active changelog partitions with records left to restore, as `tp -> (first offset left, end)`."""
    if not recovery.in_recovery:
        return {}
    left = {}
    for tp, highwater in recovery.active_highwaters.items():
        restored = recovery.active_offsets.get(tp)
        if highwater is None or highwater < 0:
            continue
        restored = -1 if restored is None else restored
        if restored < highwater:
            left[tp] = (restored + 1, highwater + 1)
    return left


class RecoveryWatch:
    """Notice a recovery that restores nothing for `stall_s`, and feed it its records from Kafka."""

    def __init__(self, app: faust.App, reader: RangeReader, stall_s: float,
                 count: Callable[[str, int], None] = lambda name, n: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.reader = reader
        self.stall_s = stall_s
        self.clock = clock
        self._seen: dict[Any, int] = {}  # tp -> restored offset at the last check
        self._moved_at: dict[Any, float] = {}  # tp -> when its restored offset last moved (or was first seen)
        self.count = count  # `count("recovery_fed", n)`: the worker's counters

    async def check(self) -> int:
        """Feed the partitions stalled for `stall_s`; returns the number of records handed over."""
        recovery = self.app.tables.recovery
        left = stalled_partitions(recovery)
        now = self.clock()
        for tp in list(self._seen):
            if tp not in left:
                del self._seen[tp], self._moved_at[tp]
        stalled = {}
        for tp, (start, end) in left.items():
            if self._seen.get(tp) != start:
                self._seen[tp], self._moved_at[tp] = start, now
            elif now - self._moved_at[tp] >= self.stall_s:
                stalled[tp] = (start, end)
        if not stalled:
            return 0
        logger.warning("table recovery has restored nothing for %.0f s from %s; Faust's consumer: %s. "
                       "Reading them straight from Kafka", self.stall_s,
                       ", ".join(f"{tp.topic}[{tp.partition}] (offsets {s}..{e - 1})"
                                 for tp, (s, e) in sorted(stalled.items())),
                       recovery_state(self.app, list(stalled)))
        log_task_stacks()
        return await self._feed(recovery, stalled)

    async def _feed(self, recovery: Any, stalled: dict[Any, tuple[int, int]]) -> int:
        fed = 0
        generation_id = self.app.consumer_generation_id
        try:
            for tp, (start, end) in sorted(stalled.items()):
                channel = self._changelog_channel(tp.topic)
                # In chunks: memory stays bounded, and a read that fails keeps what was handed over.
                for first in range(start, end, FEED_CHUNK):
                    for record in await self.reader.read(tp.topic, tp.partition, first, min(end, first + FEED_CHUNK)):
                        if self.app.consumer_generation_id != generation_id or tp not in recovery.active_tps:
                            return fed  # a rebalance came meanwhile: the next recovery starts afresh
                        await channel.deliver(as_faust_message(record, generation_id))
                        fed += 1
                self._moved_at[tp] = self.clock()  # give the recovery time to apply them before judging again
            return fed
        finally:
            self.count("recovery_fed", fed)
            logger.warning("handed %d changelog records to the table recovery", fed)

    def _changelog_channel(self, topic: str) -> faust.ChannelT:
        # The channel Faust's table manager made for the changelog: it decodes as the table does and
        # puts the event on the queue the recovery reads.
        for table, channel in self.app.tables._channels.items():
            if table.changelog_topic.get_topic_name() == topic:
                return channel
        raise LookupError(f"no table has the changelog topic {topic}")


def as_faust_message(record: Any, generation_id: int | None) -> ConsumerMessage:
    """An aiokafka `ConsumerRecord` as the message Faust's consumer would make of it (`_to_message`)."""
    return ConsumerMessage(
        record.topic, record.partition, record.offset,
        record.timestamp / 1000.0 if record.timestamp is not None else None,  # type: ignore[arg-type]
        record.timestamp_type, record.headers, record.key, record.value, record.checksum,
        record.serialized_key_size, record.serialized_value_size, TP(record.topic, record.partition),
        generation_id=generation_id,
    )
