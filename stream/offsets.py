"""Which input offsets the tables already hold, so each message changes state exactly once.

Faust's own offset bookkeeping is not enough for exact counts: measured here with
faust-streaming 0.15.3 on Apache Kafka 3.9, a worker restarted mid-stream resumed
fetching before it sought to the committed offsets and dropped a prefetched batch
(offsets 831-856 of both partitions never reached the agent), and a crash
(kill -9) replays messages whose table updates were already written. So each
store's table value carries the offset of the last message applied to it, and
per partition the worker knows the next offset it must see:

- a message below it was applied already: skip it (a replay);
- a message above it means messages were skipped: read the missing range
  from Kafka and apply it first (a gap);
- otherwise apply it.

Offsets may legitimately be missing from a partition (transaction markers,
compaction); reading such a range simply returns fewer records.

Examples
--------
>>> ledger = OffsetLedger()
>>> ledger.restore(partition=0, applied_offsets=[4, 9, 7])  # from the table after recovery
>>> ledger.classify(0, 10), ledger.classify(0, 8), ledger.classify(0, 12)
('apply', 'replay', 'gap')
>>> ledger.missing_range(0, 12)
(10, 12)
>>> ledger.applied(0, 12)
>>> ledger.classify(0, 13)
'apply'
>>> ledger.classify(1, 500)  # a partition with no history: take what comes
'apply'

"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["OffsetLedger"]


class OffsetLedger:
    """Next expected offset per partition of the input topic."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def known(self, partition: int) -> bool:
        return partition in self._next

    def next_offset(self, partition: int) -> int | None:
        """The offset the partition should see next (None: no history)."""
        return self._next.get(partition)

    def snapshot(self) -> dict[int, int]:
        """Next expected offset of every known partition."""
        return dict(sorted(self._next.items()))

    def start_at(self, partition: int, offset: int) -> None:
        """A partition with no history that must be read from `offset` on (its log start)."""
        self._next[partition] = offset

    def restore(self, partition: int, applied_offsets: Iterable[int]) -> None:
        """Set the partition's next offset from the offsets its table values recorded."""
        last = max(applied_offsets, default=None)
        if last is not None:
            self._next[partition] = last + 1

    def forget(self, partitions: Iterable[int] | None = None) -> None:
        """Drop what is known (after a rebalance, the table is the truth again)."""
        if partitions is None:
            self._next.clear()
        else:
            for p in partitions:
                self._next.pop(p, None)

    def classify(self, partition: int, offset: int) -> str:
        """`apply`, `replay` (already applied) or `gap` (earlier offsets were never seen)."""
        expected = self._next.get(partition)
        if expected is None or offset == expected:
            return "apply"
        return "replay" if offset < expected else "gap"

    def missing_range(self, partition: int, offset: int) -> tuple[int, int]:
        """`[start, end)` of the offsets skipped before `offset`."""
        return self._next[partition], offset

    def applied(self, partition: int, offset: int) -> None:
        """Record that `offset` was applied."""
        self._next[partition] = offset + 1
