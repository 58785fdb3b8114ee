"""Counts of the last few minutes of event time, for several window lengths at once.

Time is cut into fixed slots of `slot_ms` (10 s by default); a count at `ts_ms` goes
into slot `floor(ts_ms / slot_ms)`, which starts at `floor(ts_ms / slot_ms) * slot_ms`.
The store's watermark is the highest event time seen. The window "last W" is every
slot whose start is after `watermark_ms - W`::

    slot start > watermark_ms - W

With `W` a whole number of slots that is exactly the `W / slot_ms` slots ending with
the watermark's own slot. Resolution is one slot: a counted event is never older than
`W` (`watermark_ms - ts_ms < W`), and an event less than `W - slot_ms` old always
counts; between the two it depends on where the watermark sits in its slot.

An event whose slot is already outside the largest window is ignored and `update`
returns False (a caller may log `late_by_ms`). Events may arrive out of order: any
event inside the largest window lands in its own slot. Slots that leave the largest
window are dropped as the watermark advances, so the state is one integer per slot
and quantity: `max(windows_ms) / slot_ms` of them (360 for an hour of 10 s slots).

In memory each quantity's slots are one `array` of 2-byte counts (typecode `H`), widened to
8 bytes (`q`) the first time a slot would pass 65,535 and to a list past 2**63: every store
holds four rings of 360 slots, 11.5 KB as lists of Python ints against 2.9 KB so
(tracemalloc, `footfall.scripts.statesize`).

Examples
--------
Slots of 10 s, windows of 30 s and 60 s; the timeline (watermark after each event)::

    slots  [0s)[10s)[20s)[30s)[40s)[50s)[60s)[70s)
    ts       5s  12s  25s             58s       75s   21s   3s
    wm       5s  12s  25s             58s       75s   75s   75s

At 75 s the 30 s window is the slots starting after 45 s (50 s, 60 s, 70 s) and the
60 s window the slots starting after 15 s (20 s ... 70 s): the event at 21 s still
counts in the 60 s window, the one at 3 s is older than it and is ignored.

>>> counts = SlidingCounts(quantities=("arrivals",), windows_ms=(30_000, 60_000), slot_ms=10_000)
>>> for ts_ms in [5_000, 12_000, 25_000, 58_000, 75_000, 21_000, 3_000]:
...     counted = counts.update(ts_ms, {"arrivals": 1})
...     print(ts_ms, counted, counts.get(30_000)["arrivals"], counts.get(60_000)["arrivals"])
5000 True 1 1
12000 True 2 2
25000 True 3 3
58000 True 1 4
75000 True 2 3
21000 True 2 4
3000 False 2 4
>>> counts.watermark_ms, counts.late_by_ms(3_000)
(75000, 15000)

"""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

from footfall.operators.kpis.durations import to_ms

__all__ = ["SlidingCounts"]

#: What a store counts by default, in the names `FlowCounts` uses.
QUANTITIES = ("arrivals", "departures", "transactions")
#: 5, 15 and 60 minutes.
WINDOWS_MS = (300_000, 900_000, 3_600_000)

#: A ring's slots: 2-byte counts first, then 8-byte ones, then Python ints (unbounded).
Ring = array | list  # type: ignore[type-arg]


def _zeros(n: int, typecode: str = "H") -> Ring:
    return array(typecode, bytes(n * array(typecode).itemsize))


def _widened(ring: Ring) -> Ring:
    """The same counts in the next wider kind of ring (`H` -> `q` -> list)."""
    if isinstance(ring, array) and ring.typecode == "H":
        return array("q", ring)
    return list(ring)


def _from_first_count(ordered: Ring) -> list[int]:
    """The slots from the first that holds a count on (none: an empty list).

    An array's leading zeros are found as zero bytes, in C: the element holding the first non-zero
    byte is the first non-zero count, whatever the byte order. Found with `filter` and `index`
    this took 17 µs a save of four rings, a Python loop over the zeros 54 µs.
    """
    if isinstance(ordered, array):
        raw = ordered.tobytes()
        first = (len(raw) - len(raw.lstrip(b"\0"))) // ordered.itemsize
        return ordered[first:].tolist()
    count = next(filter(None, ordered), None)
    return [] if count is None else ordered[ordered.index(count):]


class SlidingCounts:
    """One store's counts over the last `W` of event time, for each `W` in `windows_ms`.

    Parameters
    ----------
    quantities
        Names of what is counted (`arrivals`, `departures`, ...). `update` refuses others.
    windows_ms
        Window lengths (ms or timedelta), each a positive multiple of `slot_ms`.
    slot_ms
        Slot length (ms or timedelta): the resolution of every window.

    """

    __slots__ = ("_ring", "_wm_slot", "n_slots", "quantities", "slot_ms", "watermark_ms", "windows_ms")

    def __init__(
        self,
        quantities: Iterable[str] = QUANTITIES,
        windows_ms: Iterable[int | dt.timedelta] = WINDOWS_MS,
        slot_ms: int | dt.timedelta = 10_000,
    ) -> None:
        self.quantities = tuple(quantities)
        self.slot_ms = to_ms(slot_ms, "slot_ms")
        self.windows_ms = tuple(sorted({to_ms(w, "windows_ms") for w in windows_ms}))
        if not self.quantities or len(set(self.quantities)) != len(self.quantities):
            raise ValueError(f"quantities must be distinct names, at least one, got {self.quantities}")
        if self.slot_ms <= 0:
            raise ValueError(f"slot_ms must be positive, got {self.slot_ms}")
        if not self.windows_ms:
            raise ValueError("windows_ms must name at least one window")
        for window_ms in self.windows_ms:
            if window_ms <= 0 or window_ms % self.slot_ms:
                raise ValueError(f"each window must be a positive multiple of slot_ms={self.slot_ms}, got {window_ms}")
        #: Slots kept: those of the largest window.
        self.n_slots = self.windows_ms[-1] // self.slot_ms
        # Per quantity, a ring of n_slots counts: slot s lives at position s % n_slots. The ring
        # holds the slots (wm_slot - n_slots, wm_slot]; positions of older slots are zeroed
        # as the watermark moves past them.
        self._ring: dict[str, Ring] = {q: _zeros(self.n_slots) for q in self.quantities}
        self.watermark_ms: int | None = None
        self._wm_slot = 0

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"quantities": ("arrivals",), "windows_ms": (60_000,), "slot_ms": 1_000}
        yield {"quantities": ("arrivals", "departures"), "windows_ms": (20, 50), "slot_ms": 10}

    def slot_of(self, ts_ms: int) -> int:
        """Start of the slot that holds `ts_ms`."""
        return ts_ms - ts_ms % self.slot_ms

    def late_by_ms(self, ts_ms: int) -> int:
        """How far `ts_ms`'s slot start is at or past the largest window's edge (>= 0 when ignored)."""
        if self.watermark_ms is None:
            return -1
        return self.watermark_ms - self.windows_ms[-1] - self.slot_of(ts_ms)

    def update(self, ts_ms: int, counts: Mapping[str, int]) -> bool:
        """Add `counts` at event time `ts_ms`; False when it is older than the largest window (ignored).

        `counts` may name any subset of `quantities`; an empty mapping only moves the watermark.
        """
        for name, n in counts.items():
            if name not in self._ring:
                raise ValueError(f"unknown quantity {name!r}; this counter counts {self.quantities}")
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"count of {name!r} must be an int >= 0, got {n!r}")
        slot = ts_ms // self.slot_ms
        if self.watermark_ms is None or ts_ms > self.watermark_ms:
            self._advance(slot)
            self.watermark_ms = ts_ms
        if slot <= self._wm_slot - self.n_slots:
            return False
        position = slot % self.n_slots
        for name, n in counts.items():
            self._add(name, position, n)
        return True

    def _add(self, name: str, position: int, n: int) -> None:
        ring = self._ring[name]
        while True:
            try:
                ring[position] += n
                return
            except OverflowError:  # past what the ring's kind holds: widen it, keep every count
                ring = self._ring[name] = _widened(ring)

    def _advance(self, slot: int) -> None:
        """Move the newest slot to `slot`, zeroing the slots that leave the largest window."""
        if self.watermark_ms is None or slot - self._wm_slot >= self.n_slots:
            for name in self._ring:
                self._ring[name] = _zeros(self.n_slots)
        else:
            for s in range(self._wm_slot + 1, slot + 1):
                position = s % self.n_slots
                for ring in self._ring.values():
                    ring[position] = 0
        self._wm_slot = slot

    def get(self, window_ms: int | dt.timedelta) -> dict[str, int]:
        """Counts in the last `window_ms` (a multiple of `slot_ms`, at most the largest window)."""
        window_ms = to_ms(window_ms, "window_ms")
        if window_ms <= 0 or window_ms % self.slot_ms or window_ms > self.windows_ms[-1]:
            raise ValueError(
                f"window_ms must be a positive multiple of {self.slot_ms} up to {self.windows_ms[-1]}, got {window_ms}"
            )
        if self.watermark_ms is None:
            return dict.fromkeys(self.quantities, 0)
        k = window_ms // self.slot_ms
        first = (self._wm_slot - k + 1) % self.n_slots  # position of the window's oldest slot
        if first + k <= self.n_slots:
            return {q: sum(ring[first : first + k]) for q, ring in self._ring.items()}
        wrap = first + k - self.n_slots
        return {q: sum(ring[first:]) + sum(ring[:wrap]) for q, ring in self._ring.items()}

    def get_all(self) -> dict[int, dict[str, int]]:
        """Counts of every configured window, keyed by window length in ms."""
        return {window_ms: self.get(window_ms) for window_ms in self.windows_ms}

    # -- plain-data state, for Faust tables ------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state.

        `counts[q]` lists the slots oldest first and ends with the watermark's slot;
        leading zero slots are left out, so the list's length says where it starts.
        """
        start = (self._wm_slot + 1) % self.n_slots  # position of the oldest kept slot
        counts: dict[str, list[int]] = {}
        for q, ring in self._ring.items():
            ordered = ring[start:] + ring[:start]
            counts[q] = _from_first_count(ordered)
        return {"wm": self.watermark_ms, "slot_ms": self.slot_ms, "counts": counts}

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any] | None,
        *,
        quantities: Iterable[str] = QUANTITIES,
        windows_ms: Iterable[int | dt.timedelta] = WINDOWS_MS,
        slot_ms: int | dt.timedelta = 10_000,
    ) -> SlidingCounts:
        """Rebuild from `to_state()` output (None gives an empty one).

        The configuration may have changed since: a quantity new to the state starts at
        zero, one no longer configured is dropped, and a shorter largest window keeps only
        its slots. A different `slot_ms` cannot be converted and raises ValueError.
        """
        counter = cls(quantities, windows_ms, slot_ms)
        if not state or state.get("wm") is None:
            return counter
        if state.get("slot_ms") != counter.slot_ms:
            raise ValueError(f"state has slot_ms={state.get('slot_ms')}, this counter {counter.slot_ms}")
        counter.watermark_ms = int(state["wm"])
        counter._wm_slot = counter.watermark_ms // counter.slot_ms
        n = counter.n_slots
        for q, ordered in state.get("counts", {}).items():
            if q not in counter._ring:
                continue
            # ordered[-1] is the watermark's slot; ordered[-1 - j] is slot wm_slot - j
            for j, c in enumerate(reversed(ordered[-n:])):
                if c:
                    counter._add(q, (counter._wm_slot - j) % n, int(c))
        return counter
