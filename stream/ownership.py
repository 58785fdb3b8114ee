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
  pending records and markers are dropped, its messages are not applied, and nothing more
  of it is written until Faust assigns it again;
- the records' Redis writes run under `WATCH` of their partitions' owner keys, in one
  `MULTI`/`EXEC` (`stream.sinks.RedisSink`): a newer claim between the check and the
  write aborts the whole transaction, which is checked again.

The Kafka sends and changelog writes are checked, not fenced: a worker frozen between the
check and a record's send can still get the record out, and one frozen after its fenced
Redis write but before its changelog sends (the stage states' broker acknowledgements come
between) still writes those states when it wakes; Kafka transactions (Faust's
`exactly_once`) would fence both. A partition with no generation (no assignment seen, as
in the offline tools) is written unfenced.

**A consumer group created again** numbers its generations from 1 again: deleted by an
operator (`kafka-consumer-groups --delete`), expired by Kafka after it stood empty past
`offsets.retention.minutes` (7 days by default), or a new Kafka cluster under the same
Redis. Its workers' generations are then below those Redis holds, and every partition
would be lost for good: the worker would consume and count nothing (measured, before this
rule: 1,614 of 2,400 events counted, never more). So the holder of a claim also keeps
`<p>:owner_alive:<partition>` alive (`refresh`, every `refresh_s`; it expires after
`alive_ms`, three session timeouts by default), and a partition Kafka has *just assigned*
(its first claim since) may take a key holding a higher generation once that key's holder
has stopped refreshing it. Until then the partition is **contested**: lost for writing, and
claimed again at every `refresh`; once won, its stores are read again from the table and
its input from its marker. A woken frozen worker is never fresh: its claims were made
before it froze, so it cannot take a partition back that way.

Examples
--------
>>> owners = PartitionOwners(RedisKeys("ff"))
>>> owners.key(3), owners.alive_key(3)
('ff:owner:3', 'ff:owner_alive:3')
>>> owners.assigned({3, 4}, generation=7)
>>> owners.generation(3)
7
>>> owners.judge({3: 7, 4: 9}), owners.lost  # 4 was never claimed: contested, not given up
({4}, {4})
>>> owners.contested
{4: 7}
>>> owners.judge({3: 8}), owners.lost, owners.contested  # 3 was claimed at 7: lost for good
({3}, {3, 4}, {4: 7})
>>> owners.assigned({3, 4}, generation=9); owners.lost, owners.contested
(set(), {})

"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from footfall.schemas.keys import RedisKeys

__all__ = ["PartitionOwners"]

logger = logging.getLogger(__name__)

#: How long a holder's claim stays alive without a refresh, when no session timeout is given.
DEFAULT_ALIVE_MS = 30_000

# KEYS: the owner key, its liveness key. ARGV: this worker's generation, 1 when the partition was just
# assigned (its first claim since), the liveness key's lifetime in ms.
# Raise the owner key to the generation if it is lower or missing, or, for a fresh assignment, if the
# holder of a higher one no longer keeps it alive; keep it alive while it is this worker's.
# Returns {the owner key's value now, its value before}.
_CLAIM_LUA = """
local before = tonumber(redis.call('GET', KEYS[1]) or '-1')
local mine = tonumber(ARGV[1])
local now = before
if mine > before or (ARGV[2] == '1' and mine < before and redis.call('EXISTS', KEYS[2]) == 0) then
  redis.call('SET', KEYS[1], ARGV[1])
  now = mine
end
if now == mine then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
end
return {now, before}
"""


class PartitionOwners:
    """This worker's generation for each input partition, and the partitions it found taken (`lost`)."""

    def __init__(self, keys: RedisKeys, alive_ms: int = DEFAULT_ALIVE_MS) -> None:
        self.keys = keys
        self.alive_ms = alive_ms
        self._generations: dict[int, int] = {}
        #: Partitions assigned and not yet claimed in Redis (the first claim may take a lapsed key).
        self._fresh: set[int] = set()
        #: Partitions Faust assigned whose key another holder still keeps alive: partition -> generation.
        self.contested: dict[int, int] = {}
        #: Partitions another worker claimed at a later rebalance: nothing more of them is written.
        self.lost: set[int] = set()
        #: Partitions found lost since `drain_newly_lost` was last called.
        self._newly_lost: set[int] = set()
        #: Contested partitions won since `drain_newly_won` was last called.
        self._newly_won: set[int] = set()
        self._claim: Any = None

    @classmethod
    def _unit_test_params(cls):
        yield {"keys": RedisKeys("ff")}

    @property
    def refresh_s(self) -> float:
        """How often a holder keeps its claims alive: four times within their lifetime."""
        return max(1.0, self.alive_ms / 4000)

    def key(self, partition: int) -> str:
        return self.keys.key("owner", partition)

    def alive_key(self, partition: int) -> str:
        return self.keys.key("owner_alive", partition)

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
            self._newly_won.discard(partition)
            self.contested.pop(partition, None)
            if generation is None or generation < 0:
                self._generations.pop(partition, None)
                self._fresh.discard(partition)
            else:
                self._generations[partition] = generation
                self._fresh.add(partition)

    def revoked(self, partitions: Iterable[int]) -> None:
        """Faust took these partitions away: nothing more of them is written."""
        for partition in partitions:
            self._fresh.discard(partition)
            if self._generations.pop(partition, None) is not None or self.contested.pop(partition, None) is not None:
                self.lost.add(partition)

    def judge(self, current: Mapping[int, Any]) -> set[int]:
        """Given the owner keys' values now, the partitions claimed at a newer generation: now lost.

        A partition not yet claimed since its assignment is contested rather than given up
        (see the module docstring); one this worker held and won back is no longer lost.
        """
        taken = set()
        for partition, value in current.items():
            if value is None:
                continue
            value = int(value)
            if partition in self._generations:
                mine = self._generations[partition]
                if value > mine:
                    taken.add(partition)
                    del self._generations[partition]
                    if partition in self._fresh:
                        self._fresh.discard(partition)
                        self.contested[partition] = mine
                        logger.warning("partition %d: Redis says generation %d owns it, newer than this worker's %d;"
                                       " waiting for that claim to lapse (%.0f s without its holder) before taking"
                                       " it (a consumer group created again numbers its generations from 1)",
                                       partition, value, mine, self.alive_ms / 1000)
                elif value == mine:
                    self._fresh.discard(partition)
            elif partition in self.contested and value == self.contested[partition]:
                self._generations[partition] = self.contested.pop(partition)
                self.lost.discard(partition)
                self._newly_lost.discard(partition)
                self._newly_won.add(partition)
                logger.warning("partition %d: claimed at generation %d after the previous claim lapsed",
                               partition, value)
        self.lost |= taken
        self._newly_lost |= taken
        return taken

    async def _claim_each(self, client: Any, partitions: Iterable[int]) -> None:
        """One claim per partition (held or contested), in one round trip, then `judge` what Redis says."""
        if self._claim is None:
            self._claim = client.register_script(_CLAIM_LUA)
        claims = [(p, self._generations.get(p, self.contested.get(p))) for p in sorted(partitions)]
        claims = [(p, g) for p, g in claims if g is not None]
        if not claims:
            return
        pipe = client.pipeline(transaction=False)
        for partition, generation in claims:
            fresh = partition in self._fresh or partition in self.contested
            await self._claim(keys=[self.key(partition), self.alive_key(partition)],
                              args=[generation, int(fresh), self.alive_ms], client=pipe)
        results = await pipe.execute()
        self.judge({p: int(now) for (p, _), (now, _before) in zip(claims, results, strict=True)})

    async def check(self, client: Any, partitions: Iterable[int]) -> set[int]:
        """Claim each partition at this worker's generation; return those lost among `partitions`."""
        partitions = set(partitions)
        mine = self.fenced(partitions)
        if mine:
            await self._claim_each(client, mine)
        return partitions & self.lost

    async def refresh(self, client: Any) -> None:
        """Claim every partition held or contested again: keeps the claims alive, and wins lapsed ones."""
        await self._claim_each(client, set(self._generations) | set(self.contested))

    def drain_newly_lost(self) -> set[int]:
        """The partitions found lost since the last call (their stores must leave memory)."""
        newly, self._newly_lost = self._newly_lost, set()
        return newly

    def drain_newly_won(self) -> set[int]:
        """The contested partitions won since the last call (read again from the table and their markers)."""
        newly, self._newly_won = self._newly_won, set()
        return newly
