"""A bucket's data quality in one word, and its door imbalance.

`grade(coverages, ok_coverage, missing_coverage)` reads the share of the bucket each known
sensor covered (0-1):

- `ok`: every known sensor covered at least `ok_coverage` (0.9) of the bucket;
- `missing`: the store's coverage, the mean over its known sensors, is at most
  `missing_coverage` (0.1): its counts say nothing about the bucket;
- `partial`: anything between, e.g. one sensor of two silent;
- `no_sensors`: no sensor is known (a branch with queue tickets only, or sensors silent for
  longer than they are remembered): nothing can be said of the doors, which is not "ok".

`ok` is tested first; `missing_coverage < ok_coverage` keeps the two apart.

`imbalance(door_in, door_out)`: people in minus out, and that over the people in (at least
1): a door counter that misses one direction shows as a ratio far from 0 over a day.

Examples
--------
>>> grade([1.0, 0.95]), grade([1.0, 0.5]), grade([0.1, 0.05]), grade([0.0]), grade([])
('ok', 'partial', 'missing', 'missing', 'no_sensors')
>>> imbalance(40, 30), imbalance(0, 3)
((10, 0.25), (-3, -3.0))

"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

__all__ = ["INCOMPLETE", "QUALITIES", "Quality", "grade", "imbalance"]

Quality = Literal["ok", "partial", "missing", "no_sensors"]
QUALITIES: tuple[Quality, ...] = ("ok", "partial", "missing", "no_sensors")
#: The grades under which a bucket's door counts are incomplete: what is divided by visitors is held back,
#: arrivals are not judged (`operators.pipeline.store_pipeline`, `alerting.watch`), roll-ups leave them out.
INCOMPLETE: frozenset[Quality] = frozenset({"partial", "missing"})


def grade(coverages: Sequence[float], ok_coverage: float = 0.9, missing_coverage: float = 0.1) -> Quality:
    """The bucket's quality from each known sensor's coverage (see the module docstring)."""
    if not 0.0 <= missing_coverage < ok_coverage <= 1.0:
        raise ValueError(f"need 0 <= missing_coverage < ok_coverage <= 1, got {missing_coverage}, {ok_coverage}")
    if not coverages:
        return "no_sensors"
    if min(coverages) >= ok_coverage:
        return "ok"
    if sum(coverages) / len(coverages) <= missing_coverage:
        return "missing"
    return "partial"


def imbalance(door_in: int, door_out: int) -> tuple[int, float]:
    """`(door_in - door_out, (door_in - door_out) / max(door_in, 1))`."""
    diff = door_in - door_out
    return diff, diff / max(door_in, 1)
