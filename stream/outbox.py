"""What waits for the next checkpoint: records, counters, and messages handed to the producer.

- records, keyed by `(store_id, slot)`: a newer record of the same slot (the same
  bucket, the store's live state) replaces the older one, so a busy store costs one
  send and one Redis write per bucket per flush, not one per event;
- counters, added to `<p>:stats` with the records that carry them;
- sends (re-routed events, dead letters) already handed to the producer: the
  checkpoint waits for the broker to confirm them, and resends those that failed,
  before it saves anything.

`take()` hands everything to a checkpoint; `give_back()` returns what a failed one
could not get out, behind anything newer.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from footfall.stream.output_topic import RawTopic

__all__ = ["Outbox", "Send"]

logger = logging.getLogger(__name__)


@dataclass
class Send:
    """A message handed to the producer whose delivery a marker must wait for (resent if it failed)."""

    topic: RawTopic
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None
    future: Any = None  # the producer's FutureMessage; None when not handed over yet

    async def send(self) -> None:
        self.future = await self.topic.send(key=self.key, value=self.value, headers=self.headers)


class Outbox:
    """Records, counters and sends waiting for the next checkpoint (see the module docstring)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, int | str], dict[str, Any]] = {}
        self.counts: Counter[str] = Counter()  # not yet in Redis
        self.totals: Counter[str] = Counter()  # since start, for the progress log and tests
        self.sends: list[Send] = []

    def put(self, store_id: str, slot: int | str, record: dict[str, Any]) -> None:
        self.records[(store_id, slot)] = record

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n
        self.totals[name] += n

    def count_all(self, counts: Mapping[str, int]) -> None:
        # Key by key: Counter.update checks its argument against the Mapping ABC and loops in Python
        # anyway (two per message, measured at about 1 % of the worker's time on single events).
        own, totals = self.counts, self.totals
        for name, n in counts.items():
            own[name] += n
            totals[name] += n

    async def send(self, topic: RawTopic, key: bytes | None, value: bytes,
                   headers: list[tuple[str, bytes]] | None) -> None:
        """Hand a message to the producer; the next checkpoint waits for it (and resends it if it failed)."""
        item = Send(topic, key, value, headers)
        try:
            await item.send()
        except Exception as exc:  # kept: the next checkpoint tries again before it saves anything
            logger.error("send to %s failed: %r", topic.get_topic_name(), exc)
        self.sends.append(item)

    def drop_stores(self, store_ids: Iterable[str]) -> int:
        """Forget the records of these stores (their partition went to another worker); how many."""
        gone = set(store_ids)
        keys = [key for key in self.records if key[0] in gone]
        for key in keys:
            del self.records[key]
        return len(keys)

    def take(self) -> tuple[dict[tuple[str, int | str], dict[str, Any]], Counter[str], list[Send]]:
        records, counts, sends = self.records, self.counts, self.sends
        self.records, self.counts, self.sends = {}, Counter(), []
        return records, counts, sends

    def give_back(self, records: dict[tuple[str, int | str], dict[str, Any]], counts: Counter[str],
                  sends: list[Send]) -> None:
        """What a failed checkpoint could not get out: kept, unless a newer record of the same slot came."""
        self.records = {**records, **self.records}
        self.counts.update(counts)
        self.sends = sends + self.sends
