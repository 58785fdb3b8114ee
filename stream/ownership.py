"""Which input partitions this worker still owns, as Redis says: an owner generation per partition.

Faust's group membership decides who consumes a partition, but a worker frozen past its
session timeout (a long GC pause, SIGSTOP, a VM stall) wakes up still holding that
partition's stores, pending records and unsaved states, and nothing in Kafka stops it
from writing them after another worker took the partition over: a closed bucket in Redis
could revert to the older open record it held, and its changelog states land after the
new owner's. So each worker claims the partitions Faust assigns it with the consumer
group's generation (Kafka's, it grows at every rebalance) in `<p>:owner:<partition>`,
set only upwards, and every write of a partition's records carries it:

- before records go to Kafka and states to the changelog, the checkpoint `check`s its
  partitions (one script call each, one round trip): the owner key is raised to this
  worker's generation if lower (a Redis that lost its keys is claimed again), and a
  partition whose key holds a newer generation is **lost**: its stores leave memory, its
  pending records and markers are dropped, and nothing more of it is written until Faust
  assigns it again;
- the records' Redis writes run under `WATCH` of their partitions' owner keys, in one
  `MULTI`/`EXEC` (`stream.sinks.RedisSink`): a newer claim between the check and the
  write aborts the whole transaction, which is checked again.

The Kafka sends and changelog writes are checked, not fenced: a worker frozen between the
check and the send (microseconds) can still get a record out; Kafka transactions (Faust's
`exactly_once`) would fence those. A partition with no generation (no assignment seen, as
in the offline tools) is written unfenced.

Examples
--------
>>> owners = PartitionOwners(RedisKeys("ff"))
>>> owners.key(3)
'ff:owner:3'
>>> owners.assigned({3, 4}, generation=7)
>>> owners.generation(3)
7
>>> owners.judge({3: 7, 4: 9}), owners.lost  # another worker claimed 4 at a later rebalance
({4}, {4})
>>> owners.assigned({4}, generation=9); owners.lost
set()

"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from footfall.schemas.keys import RedisKeys

__all__ = ["PartitionOwners"]

# Raise the owner key to ARGV[1] if it is lower or missing; return what it holds then.
_CLAIM_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
local mine = tonumber(ARGV[1])
if mine > current then
  redis.call('SET', KEYS[1], ARGV[1])
  return mine
end
return current
"""


class PartitionOwners:
    """This worker's generation for each input partition, and the partitions it found taken (`lost`)."""

    def __init__(self, keys: RedisKeys) -> None:
        self.keys = keys
        self._generations: dict[int, int] = {}
        #: Partitions another worker claimed at a later rebalance: nothing more of them is written.
        self.lost: set[int] = set()
        #: Partitions found lost since `drain_newly_lost` was last called.
        self._newly_lost: set[int] = set()
        self._claim: Any = None

    @classmethod
    def _unit_test_params(cls):
        yield {"keys": RedisKeys("ff")}

    def key(self, partition: int) -> str:
        return self.keys.key("owner", partition)

    def generation(self, partition: int) -> int | None:
        """The generation this worker holds `partition` with; None when not assigned (or lost)."""
        return self._generations.get(partition)

    def fenced(self, partitions: Iterable[int]) -> dict[int, int]:
        """The partitions among these that have a generation, with it (those whose writes are fenced)."""
        return {p: self._generations[p] for p in partitions if p in self._generations}

    def assigned(self, partitions: Iterable[int], generation: int | None) -> None:
        """Faust assigned these partitions at the group's `generation` (None: unknown, written unfenced)."""
        for partition in partitions:
            self.lost.discard(partition)
            self._newly_lost.discard(partition)
            if generation is None or generation < 0:
                self._generations.pop(partition, None)
            else:
                self._generations[partition] = generation

    def revoked(self, partitions: Iterable[int]) -> None:
        """Faust took these partitions away: nothing more of them is written."""
        for partition in partitions:
            if self._generations.pop(partition, None) is not None:
                self.lost.add(partition)

    def judge(self, current: Mapping[int, Any]) -> set[int]:
        """Given the owner keys' values now, the partitions claimed at a newer generation: now lost."""
        taken = {p for p, value in current.items()
                 if p in self._generations and value is not None and int(value) > self._generations[p]}
        for partition in taken:
            del self._generations[partition]
        self.lost |= taken
        self._newly_lost |= taken
        return taken

    async def check(self, client: Any, partitions: Iterable[int]) -> set[int]:
        """Claim each partition at this worker's generation; return those lost among `partitions`."""
        partitions = set(partitions)
        mine = sorted(self.fenced(partitions))
        if mine:
            if self._claim is None:
                self._claim = client.register_script(_CLAIM_LUA)
            pipe = client.pipeline(transaction=False)
            for partition in mine:
                await self._claim(keys=[self.key(partition)], args=[self._generations[partition]], client=pipe)
            self.judge(dict(zip(mine, await pipe.execute(), strict=True)))
        return partitions & self.lost

    def drain_newly_lost(self) -> set[int]:
        """The partitions found lost since the last call (their stores must leave memory)."""
        newly, self._newly_lost = self._newly_lost, set()
        return newly
