"""Durations at the edge: public calls take int milliseconds or a `timedelta`, code uses ms.

Examples
--------
>>> import datetime as dt
>>> to_ms(dt.timedelta(minutes=15), "window"), to_ms(900_000, "window")
(900000, 900000)

"""

from __future__ import annotations

import datetime as dt

__all__ = ["to_ms"]


def to_ms(value: int | dt.timedelta, name: str) -> int:
    """Milliseconds of an int (ms) or a timedelta; `name` goes into the error for anything else."""
    if isinstance(value, dt.timedelta):
        return value // dt.timedelta(milliseconds=1)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be int milliseconds or a timedelta, got {value!r}")
    return value
