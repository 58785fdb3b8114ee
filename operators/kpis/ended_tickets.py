"""The last queue tickets that ended, remembered so that a repeated or late step of one is recognised.

`EndedTickets` keeps at most `max_tickets` (oldest forgotten first) and, per ticket, the
steps it went through (a bit set, see `operators.kpis.queues`) and when it ended. What
is kept is not the ticket id but a 64-bit blake2b digest of it, in two `array`s beside
the ends: as a dict of ticket id -> packed int, a branch's 128 remembered tickets took
15 KB of its memory, so they take 2 KB (tracemalloc after 28 simulated days,
`footfall.scripts.statesize`). Two ticket ids share a digest with probability about
`128**2 / 2**65` (4e-16) per day of tickets. A ticket is found by `array.index`, in C.

Examples
--------
>>> ended = EndedTickets(max_tickets=2)
>>> ended.remember("T1", steps=0b110, ended_ms=1_000)
>>> ended.remember("T2", steps=0b100, ended_ms=2_000)
>>> ended.steps_of("T1"), ended.steps_of("T9")
(6, None)
>>> ended.add_steps("T2", 0b001); ended.steps_of("T2")
5
>>> ended.remember("T3", steps=0b100, ended_ms=3_000)  # the oldest, T1, is forgotten
>>> [ended.steps_of(t) for t in ("T1", "T2", "T3")], len(ended)
([None, 5, 4], 2)
>>> ended.forget_ended_at_or_before(2_000); [ended.steps_of(t) for t in ("T2", "T3")]
[None, 4]
>>> EndedTickets.from_state(ended.to_state(), max_tickets=2).steps_of("T3")
4

"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Mapping
from typing import Any

__all__ = ["EndedTickets", "ticket_digest"]


def ticket_digest(ticket: str) -> int:
    """A ticket id's 64-bit blake2b digest, as a signed int (stable across processes and versions).

    >>> ticket_digest("T1") == ticket_digest("T1") != ticket_digest("T2")
    True
    """
    return int.from_bytes(hashlib.blake2b(ticket.encode(), digest_size=8).digest(), "little", signed=True)


class EndedTickets:
    """At most `max_tickets` ended tickets, oldest first: digest -> (steps, end time)."""

    __slots__ = ("_ended", "_ids", "_oldest_ms", "_steps", "max_tickets")

    def __init__(self, max_tickets: int = 128) -> None:
        if max_tickets <= 0:
            raise ValueError(f"max_tickets must be positive, got {max_tickets}")
        self.max_tickets = max_tickets
        self._ids = array("q")
        self._steps = array("B")
        self._ended = array("q")
        self._oldest_ms: int | None = None  # the earliest end kept (None: none kept)

    def __len__(self) -> int:
        return len(self._ids)

    def _index(self, ticket: str) -> int:
        digest = ticket_digest(ticket)
        return self._ids.index(digest) if digest in self._ids else -1

    def steps_of(self, ticket: str) -> int | None:
        """The steps of `ticket` if it is remembered, else None."""
        i = self._index(ticket)
        return None if i < 0 else self._steps[i]

    def add_steps(self, ticket: str, steps: int) -> None:
        """Add `steps` (bits) to a remembered ticket (nothing if it is not)."""
        i = self._index(ticket)
        if i >= 0:
            self._steps[i] |= steps

    def remember(self, ticket: str, steps: int, ended_ms: int) -> None:
        """Remember `ticket` as ended at `ended_ms` (the newest; a ticket remembered before moves here)."""
        i = self._index(ticket)
        if i >= 0:
            self._drop(i)
        self._ids.append(ticket_digest(ticket))
        self._steps.append(steps)
        self._ended.append(ended_ms)
        self._oldest_ms = ended_ms if self._oldest_ms is None else min(self._oldest_ms, ended_ms)
        while len(self._ids) > self.max_tickets:
            self._drop(0)

    def _drop(self, i: int) -> None:
        del self._ids[i], self._steps[i], self._ended[i]
        if not self._ids:
            self._oldest_ms = None

    def forget_ended_at_or_before(self, ts_ms: int) -> None:
        """Forget every ticket that ended at or before `ts_ms`."""
        if self._oldest_ms is None or self._oldest_ms > ts_ms:
            return  # the usual call: nothing that old (no scan)
        keep = [i for i, ended in enumerate(self._ended) if ended > ts_ms]
        self._ids = array("q", [self._ids[i] for i in keep])
        self._steps = array("B", [self._steps[i] for i in keep])
        self._ended = array("q", [self._ended[i] for i in keep])
        self._oldest_ms = min(self._ended) if keep else None

    def clear(self) -> None:
        self.__init__(self.max_tickets)  # type: ignore[misc]

    # -- plain-data state ------------------------------------------------------------------------

    def to_state(self) -> list[list[int]]:
        """`[digest, steps, ended_ms]` per ticket, oldest first."""
        return [[d, s, e] for d, s, e in zip(self._ids, self._steps, self._ended, strict=True)]

    @classmethod
    def from_state(cls, state: list[list[int]] | None, max_tickets: int = 128) -> EndedTickets:
        """Rebuild from `to_state()` output (None gives an empty one); keeps the newest `max_tickets`."""
        ended = cls(max_tickets)
        for digest, steps, ended_ms in (state or [])[-max_tickets:]:
            ended._ids.append(int(digest))
            ended._steps.append(int(steps))
            ended._ended.append(int(ended_ms))
        ended._oldest_ms = min(ended._ended) if ended._ended else None
        return ended

    @classmethod
    def from_tickets(cls, tickets: Mapping[str, Any], max_tickets: int = 128) -> EndedTickets:
        """From a state that kept ticket ids: `{ticket: [steps, ended_ms]}`, oldest first."""
        ended = cls(max_tickets)
        for ticket, (steps, ended_ms) in tickets.items():
            ended.remember(ticket, int(steps), int(ended_ms))
        return ended
