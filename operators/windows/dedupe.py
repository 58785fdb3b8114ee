"""Which event ids a store has already seen within the last stretch of event time.

`RecentEventIds.seen(event_id, ts_ms)` answers True for a duplicate (do not count it
again) and False for an id it does not remember (count it; it is remembered now).

What is kept is not the id but a 48-bit blake2b digest of it (6 bytes in memory, 8
base64url characters in the saved state), filed under the time slot (`slot_ms`, one
minute by default) of the latest event time it was seen at. The store's watermark is
the highest event time seen; a slot is kept while its end is after `watermark_ms - horizon_ms`::

    (slot + 1) * slot_ms > watermark_ms - horizon_ms

so an id last seen at or after `watermark_ms - horizon_ms` is always remembered, and
one last seen more than `horizon_ms + slot_ms` before the watermark always forgotten.
A duplicate refreshes its id: it is then remembered from its newest event time.

An event older than every kept slot cannot be checked: `seen` says False and does not
remember it. Pick `horizon_ms` at least as long as a counter accepts old events
(`bucket_ms + grace_ms` of `TumblingBuckets`; the largest window of `SlidingCounts` if
no duplicate may reach it either), so such an event is refused there anyway: a re-sent
event carries its original time. The state is 8 characters per remembered id.

Bounded. At most `max_ids` ids are remembered, so that a store's saved state always fits in
one Kafka message (`max_ids_for`: the ids may fill half of `FOOTFALL_MAX_MESSAGE_BYTES`, about
62,400 ids at the default 1,000,000 bytes, which a store reaches at some 50 events a second
sustained over the default 20-minute horizon). Past it, the oldest are forgotten first (the
earliest slot, and within a slot the first filed), each counted in `overflow` (the worker's
`dedupe_overflow` counter). What it means: an id forgotten that way is no longer recognised,
so a repeat of it arriving later is counted again, as if it were older than the horizon. A
store that overflows remembers less than its horizon: raise `FOOTFALL_MAX_MESSAGE_BYTES`
(with the broker's limits) or shorten `FOOTFALL_DEDUPE_HORIZON_S`.

False positives: a new id is taken for a duplicate when its digest equals one of the
`n` remembered digests, with probability about `n / 2**48` (`n = 4_000`: 1.4e-11 per
event, for 4,000 events an hour about one wrongly dropped event per 2,000 store-years).
Digests are stable across processes and versions (unlike Python's `hash`).

Examples
--------
A horizon of 60 s, slots of 10 s; re-sends of `a` and `b`, out of order::

    ts   0s   30s  55s  70s  50s  110s  200s  20s  195s
    id   a    b    a    c    b    a     d     a    b
         new  new  dup  new  dup  dup   new   old  new

>>> ids = RecentEventIds(horizon_ms=60_000, slot_ms=10_000)
>>> for event_id, ts_ms in [("a", 0), ("b", 30_000), ("a", 55_000), ("c", 70_000), ("b", 50_000),
...                         ("a", 110_000), ("d", 200_000), ("a", 20_000), ("b", 195_000)]:
...     print(event_id, ts_ms, ids.seen(event_id, ts_ms), len(ids))
a 0 False 1
b 30000 False 2
a 55000 True 2
c 70000 False 3
b 50000 True 3
a 110000 True 3
d 200000 False 1
a 20000 False 1
b 195000 False 2

At 110 s, `a` was last seen at 55 s, in the slot [50 s, 60 s) whose end is after
110 s - 60 s: a duplicate, now remembered from 110 s. At 200 s only the slots ending
after 140 s are kept, so only `d` is left; `a` at 20 s is too old to check (not
remembered), and `b` at 195 s is new again.

"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from footfall.operators.kpis.durations import to_ms

__all__ = ["RecentEventIds", "digest", "max_ids_for"]

#: Bytes of one digest (48 bits).
DIGEST_BYTES = 6
#: Characters of one saved digest: its 6 bytes in base64url.
DIGEST_CHARS = 8
#: Most bytes one slot adds to the saved state besides its digests: a 20-digit key, quotes, colon and comma.
SLOT_OVERHEAD = 26
#: Share of the largest saveable message the remembered ids may fill; the rest of a store's state has the other half.
STATE_SHARE = 0.5
#: The largest message the worker may send by default (`FOOTFALL_MAX_MESSAGE_BYTES`).
DEFAULT_STATE_BYTES = 1_000_000


def max_ids_for(max_bytes: int, horizon_ms: int, slot_ms: int = 60_000, share: float = STATE_SHARE) -> int:
    """Most ids to remember so that the saved state (`to_state()`, as JSON) takes at most `share * max_bytes`.

    The state is 8 characters per id plus at most `SLOT_OVERHEAD` per non-empty slot, and there are
    at most `horizon_ms // slot_ms + 2` slots, and never more non-empty slots than ids.

    >>> max_ids_for(1_000_000, 1_200_000)
    62416
    >>> max_ids_for(1_000_000, 7 * 86_400_000)  # a week of one-minute slots
    29721

    """
    budget = int(max_bytes * share) - 100  # "wm", "slot_ms", the braces
    slots = horizon_ms // slot_ms + 2
    return max(1, (budget - slots * SLOT_OVERHEAD) // DIGEST_CHARS, budget // (DIGEST_CHARS + SLOT_OVERHEAD))


def digest(event_id: str) -> str:
    """The short stable hash kept for `event_id`: blake2b with a 6-byte (48-bit) digest, in base64url.

    >>> digest("e-1"), len(digest("a much longer event id, a uuid for instance"))
    ('cS4Kn4_E', 8)

    """
    return base64.urlsafe_b64encode(_digest_bytes(event_id)).decode()


def _digest_bytes(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()


class RecentEventIds:
    """One store's event ids seen within `horizon_ms` of its watermark.

    Parameters
    ----------
    horizon_ms
        How long (ms or timedelta, event time) an id is remembered after it was last seen.
    slot_ms
        Ids are forgotten a slot at a time: the resolution of the horizon.
    max_ids
        Most ids remembered (the oldest forgotten first, counted in `overflow`); None: what
        `max_ids_for` gives for the default `FOOTFALL_MAX_MESSAGE_BYTES`.

    """

    __slots__ = ("_by_slot", "_count", "_filter", "_first_slot", "horizon_ms", "max_ids", "overflow", "slot_ms",
                 "watermark_ms")

    def __init__(self, horizon_ms: int | dt.timedelta, slot_ms: int | dt.timedelta = 60_000,
                 max_ids: int | None = None) -> None:
        self.horizon_ms = to_ms(horizon_ms, "horizon_ms")
        self.slot_ms = to_ms(slot_ms, "slot_ms")
        if self.horizon_ms < 0:
            raise ValueError(f"horizon_ms must be >= 0, got {self.horizon_ms}")
        if self.slot_ms <= 0:
            raise ValueError(f"slot_ms must be positive, got {self.slot_ms}")
        if max_ids is None:
            max_ids = max_ids_for(DEFAULT_STATE_BYTES, self.horizon_ms, self.slot_ms)
        if max_ids < 1:
            raise ValueError(f"max_ids must be positive, got {max_ids}")
        self.max_ids = max_ids
        #: Ids forgotten before their time because `max_ids` were remembered (see `take_overflow`).
        self.overflow = 0
        # slot -> the 6-byte digests remembered from that slot on, in filing order, each id in one slot only
        # (a refreshed id moves to its later slot). No empty slot is kept. An id is looked for with
        # `bytearray.find` over the slots, and only when `_filter` says it may be there: a new id, the usual
        # event, is mostly told apart by the filter alone. As a dict of base64 str -> slot with lists per slot,
        # 315 ids (a branch's 20 minutes) took 29 KB of memory; so they take 8.5 KB, the filter's 4 KB included,
        # for about 2 us more per new id and 8 us more per save (4,200 ids: 370 -> 91 KB; measured with
        # tracemalloc and timed on 20 minutes of ids at 15 and 200 a minute).
        self._by_slot: dict[int, bytearray] = {}
        self._count = 0  # ids remembered: the digests in `_by_slot`
        self._filter = _IdFilter()
        self._first_slot = 0  # oldest kept slot, once there is a watermark
        self.watermark_ms: int | None = None

    @classmethod
    def _unit_test_params(cls):
        yield {"horizon_ms": 900_000}
        yield {"horizon_ms": 60_000, "slot_ms": 10_000}
        yield {"horizon_ms": 0, "slot_ms": 1}
        yield {"horizon_ms": 60_000, "slot_ms": 10_000, "max_ids": 3}

    def __len__(self) -> int:
        """How many ids are remembered."""
        return self._count

    def seen(self, event_id: str, ts_ms: int) -> bool:
        """True when `event_id` was seen within the horizon (a duplicate); otherwise remember it, False."""
        if self.watermark_ms is None or ts_ms > self.watermark_ms:
            self._advance(ts_ms)
        h = _digest_bytes(event_id)
        slot = ts_ms // self.slot_ms
        found = self._find(h) if self._filter.may_hold(h) else None
        if found is not None:
            previous, position = found
            if slot > previous:  # refresh: remembered from its newest time on
                self._unfile(previous, position)
                self._file(h, slot)
            return True
        if slot >= self._first_slot:
            self._file(h, slot)
            if self._count > self.max_ids:
                self.evict(self.max_ids)
        return False

    def slot_of(self, event_id: str) -> int | None:
        """The slot `event_id` is remembered from (that of the latest time it was seen), None if forgotten."""
        found = self._find(_digest_bytes(event_id))
        return None if found is None else found[0]

    def bound(self, max_ids: int) -> int:
        """Remember at most `max_ids` from now on, forgetting the oldest beyond it now; returns how many were."""
        if max_ids < 1:
            raise ValueError(f"max_ids must be positive, got {max_ids}")
        self.max_ids = max_ids
        return self.evict(max_ids)

    def evict(self, keep: int) -> int:
        """Forget the oldest ids (earliest slot, first filed first) until at most `keep` are left.

        Each is counted in `overflow`; returns how many were forgotten.
        """
        evicted = 0
        while self._count > keep:
            oldest = min(self._by_slot)
            filed = self._by_slot[oldest]
            taken = min(len(filed) // DIGEST_BYTES, self._count - keep)
            self._filter.remove_all(filed[: taken * DIGEST_BYTES])
            del filed[: taken * DIGEST_BYTES]
            if not filed:
                del self._by_slot[oldest]
            self._count -= taken
            evicted += taken
        self.overflow += evicted
        return evicted

    def take_overflow(self) -> int:
        """Ids forgotten for the bound since the last call (and reset to 0)."""
        n, self.overflow = self.overflow, 0
        return n

    def _find(self, h: bytes) -> tuple[int, int] | None:
        """(slot, byte offset) of digest `h`, or None. Newest slots first: a repeat is most often recent."""
        for slot, filed in reversed(self._by_slot.items()):
            position = filed.find(h)
            while position >= 0:
                if position % DIGEST_BYTES == 0:  # else it straddles two digests
                    return slot, position
                position = filed.find(h, position + 1)
        return None

    def _file(self, h: bytes, slot: int) -> None:
        filed = self._by_slot.get(slot)
        if filed is None:
            filed = self._by_slot[slot] = bytearray()
        filed += h
        self._count += 1
        if not self._filter.add(h):
            self._refilter()

    def _unfile(self, slot: int, position: int) -> None:
        filed = self._by_slot[slot]
        self._filter.remove(bytes(filed[position : position + DIGEST_BYTES]))
        del filed[position : position + DIGEST_BYTES]
        if not filed:
            del self._by_slot[slot]
        self._count -= 1

    def _advance(self, watermark_ms: int) -> None:
        """Move the watermark, dropping the slots that end at or before `watermark_ms - horizon_ms`."""
        # (slot + 1) * slot_ms > wm - horizon  <=>  slot >= floor((wm - horizon) / slot_ms)
        first_slot = (watermark_ms - self.horizon_ms) // self.slot_ms
        fresh = self.watermark_ms is None
        self.watermark_ms = watermark_ms
        if fresh or first_slot > self._first_slot:
            self._first_slot = first_slot
            for slot in [s for s in self._by_slot if s < first_slot]:
                filed = self._by_slot.pop(slot)
                self._count -= len(filed) // DIGEST_BYTES
                self._filter.remove_all(filed)
            if self._filter.oversized():
                self._refilter()

    def _refilter(self) -> None:
        """The filter made again, sized for the ids remembered now (when they doubled, or fell to an eighth)."""
        self._filter = _IdFilter(self._count)
        for filed in self._by_slot.values():
            self._filter.add_all(filed)

    # -- plain-data state, for Faust tables ------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state: the watermark and, per slot number, its digests in base64url, concatenated."""
        # 6 bytes are 8 base64 characters without padding: a slot's bytes encode to its digests' texts joined.
        ids = {str(slot): base64.urlsafe_b64encode(self._by_slot[slot]).decode() for slot in sorted(self._by_slot)}
        return {"wm": self.watermark_ms, "slot_ms": self.slot_ms, "ids": ids}

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any] | None, *, horizon_ms: int | dt.timedelta, slot_ms: int | dt.timedelta = 60_000,
        max_ids: int | None = None,
    ) -> RecentEventIds:
        """Rebuild from `to_state()` output (None gives an empty one).

        A changed `horizon_ms` applies from the next event; a different `slot_ms` raises ValueError.
        A state of more than `max_ids` ids keeps the newest `max_ids` (the others counted in `overflow`).
        """
        ids = cls(horizon_ms, slot_ms, max_ids)
        if not state or state.get("wm") is None:
            return ids
        if state.get("slot_ms") != ids.slot_ms:
            raise ValueError(f"state has slot_ms={state.get('slot_ms')}, this one {ids.slot_ms}")
        ids.watermark_ms = int(state["wm"])
        ids._first_slot = (ids.watermark_ms - ids.horizon_ms) // ids.slot_ms
        for key, joined in state.get("ids", {}).items():
            slot = int(key)
            if slot < ids._first_slot:  # a shorter horizon than the state was kept with
                continue
            filed = base64.urlsafe_b64decode(joined)
            filed = filed[: len(filed) - len(filed) % DIGEST_BYTES]
            if filed:
                ids._by_slot[slot] = bytearray(filed)
                ids._count += len(filed) // DIGEST_BYTES
        ids._refilter()
        ids.evict(ids.max_ids)
        return ids


class _IdFilter:
    """A counting Bloom filter of remembered digests: `may_hold` is False only for a digest not held.

    Two one-byte counters per digest (at its first and last 3 bytes, modulo the size), at least
    4 counters per digest held: a digest not held passes with probability at most about
    `(1 - exp(-2/4))**2`, 15 % (then it is looked for in the slots). `remove` takes back what
    `add` did, so forgetting a slot costs two decrements per id in it, as remembering one cost two
    increments. A counter that reached 255 stays there (it only lets more digests pass).

    >>> f = _IdFilter(2)
    >>> f.add(b"abcdef"), f.may_hold(b"abcdef"), f.may_hold(b"uvwxyz")
    (True, True, False)
    >>> f.remove(b"abcdef"); f.may_hold(b"abcdef")
    False

    """

    __slots__ = ("_counts", "_held", "_mask")

    #: Fewest counters per digest held, and the fewest counters a filter has.
    COUNTERS_PER_ID = 4
    MIN_COUNTERS = 512

    def __init__(self, expected: int = 0) -> None:
        size = self.MIN_COUNTERS
        while size < 2 * self.COUNTERS_PER_ID * expected:  # room to grow to twice as many
            size *= 2
        self._counts = bytearray(size)
        self._mask = size - 1
        self._held = 0

    def _positions(self, h: bytes) -> tuple[int, int]:
        return int.from_bytes(h[:3], "little") & self._mask, int.from_bytes(h[3:], "little") & self._mask

    def may_hold(self, h: bytes) -> bool:
        a, b = self._positions(h)
        return bool(self._counts[a] and self._counts[b])

    def add(self, h: bytes) -> bool:
        """Add `h`; False when the filter now holds more than it is sized for (make a bigger one)."""
        counts = self._counts
        for p in self._positions(h):
            if counts[p] < 255:
                counts[p] += 1
        self._held += 1
        return self._held * self.COUNTERS_PER_ID <= len(counts)

    def remove(self, h: bytes) -> None:
        """Take back one `add(h)`."""
        counts = self._counts
        for p in self._positions(h):
            if 0 < counts[p] < 255:
                counts[p] -= 1
        self._held -= 1

    def oversized(self) -> bool:
        """Whether it is 8 times larger than the digests it holds need (make a smaller one)."""
        return len(self._counts) > self.MIN_COUNTERS and self._held * self.COUNTERS_PER_ID * 8 < len(self._counts)

    def add_all(self, filed: bytes | bytearray) -> None:
        for i in range(0, len(filed), DIGEST_BYTES):
            self.add(bytes(filed[i : i + DIGEST_BYTES]))

    def remove_all(self, filed: bytes | bytearray) -> None:
        for i in range(0, len(filed), DIGEST_BYTES):
            self.remove(bytes(filed[i : i + DIGEST_BYTES]))
