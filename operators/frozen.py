"""State kept in memory as its JSON bytes: for what is read again rarely, and held by every store.

A day of closed buckets kept for restating, and the references they were compared
with, are read again only when a late event restates a bucket, or when the store's
state is saved (as JSON anyway). As Python lists, dicts and floats they took 77 KB
of a bank store's 175 KB in memory; as bytes about a third of that
(`python -m footfall.scripts.statesize`, `live_state_ram`).

`orjson.dumps` returns its bytes in a buffer of at least 4 KB (measured: 100,000
dumps of a 157-byte value held 4,120 bytes of RSS each), so `freeze` copies them
into bytes of their own size.

Examples
--------
>>> frozen = freeze([1, 0.1, None, {"bins": []}])
>>> frozen, thaw(frozen)
(b'[1,0.1,null,{"bins":[]}]', [1, 0.1, None, {'bins': []}])

A state about to be serialised with orjson at once takes the bytes as they are
(`embedded`), not parsed and written again:

>>> orjson.dumps({"kept": embedded(frozen)}) == orjson.dumps({"kept": thaw(frozen)})
True

"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["embedded", "freeze", "thaw"]


def freeze(value: Any) -> bytes:
    """`value` (JSON-able: ints, floats, str, None, lists, str-keyed dicts) as compact JSON bytes of their own size."""
    return memoryview(orjson.dumps(value)).tobytes()


def thaw(frozen: bytes) -> Any:
    """The value `freeze` was given, as new lists and dicts (floats round-trip exactly, ints stay ints)."""
    return orjson.loads(frozen)


def embedded(frozen: bytes) -> orjson.Fragment:
    """`frozen` inside a value `orjson.dumps` writes, as it is: the same bytes as `thaw(frozen)` would give.

    Saving a store parsed its kept buckets, references and past days only for `orjson.dumps` to
    write them again: about 110 of the 230-340 µs a save took (after 3 simulated days).
    """
    return orjson.Fragment(frozen)
