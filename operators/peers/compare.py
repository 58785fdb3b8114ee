"""Each store's day against its peer group's median, the store itself left out.

`compare_day(values, groups)` takes one figure per store (a day's arrivals, say) and each
store's group id, and gives each grouped store its peers' median (the other members of its
group that have a value), the ratio of its value to that median and the difference.
`compare_hours` does the same cell by cell for arrays (the day's 24 hours). A missing value
(None or NaN) is not a zero: that store is left out of its peers' medians, and its own
comparison has no value. The median, not the mean, so one peer's outage or event day does
not move the reference.

Examples
--------
>>> groups = {"a": 0, "b": 0, "c": 0, "d": 1}
>>> for store_id, c in compare_day({"a": 100.0, "b": 80.0, "c": 120.0, "d": 50.0}, groups).items():
...     print(store_id, c.peer_median, c.ratio, c.difference, c.peers)
a 100.0 1.0 0.0 2
b 110.0 0.7272727272727273 -30.0 2
c 90.0 1.3333333333333333 30.0 2
d None None None 0

"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["HourlyComparison", "PeerComparison", "compare_day", "compare_hours"]


@dataclass(frozen=True)
class PeerComparison:
    """One store's value against its peers' median (None where there is none, or no value)."""

    store_id: str
    value: float | None
    peer_median: float | None
    ratio: float | None
    difference: float | None
    peers: int


@dataclass(frozen=True)
class HourlyComparison:
    """One store's values against its peers' medians, cell by cell (NaN where undefined)."""

    store_id: str
    value: np.ndarray
    peer_median: np.ndarray
    ratio: np.ndarray
    difference: np.ndarray
    peers: np.ndarray  # peers with a value, per cell


def _missing(value: float | None) -> bool:
    return value is None or value != value


def compare_day(values: Mapping[str, float | None], groups: Mapping[str, int]) -> dict[str, PeerComparison]:
    """Each grouped store's value against the median of its group's other members (see the module docstring)."""
    out = {}
    for store_id in sorted(groups):
        if store_id not in values:
            continue
        own = values[store_id]
        peers = [float(v) for s, v in values.items()  # type: ignore[arg-type]
                 if s != store_id and groups.get(s) == groups[store_id] and not _missing(v)]
        median = float(np.median(peers)) if peers else None
        value = None if _missing(own) else float(own)  # type: ignore[arg-type]
        ratio = value / median if value is not None and median else None
        difference = value - median if value is not None and median is not None else None
        out[store_id] = PeerComparison(store_id, value, median, ratio, difference, len(peers))
    return out


def compare_hours(values: Mapping[str, np.ndarray], groups: Mapping[str, int]) -> dict[str, HourlyComparison]:
    """`compare_day` cell by cell: NaN cells are missing, peers counted per cell.

    >>> out = compare_hours({"a": np.array([1.0, 4.0]), "b": np.array([3.0, np.nan]),
    ...                      "c": np.array([5.0, 8.0])}, {"a": 0, "b": 0, "c": 0})
    >>> out["a"].peer_median.tolist(), out["a"].ratio.tolist(), out["a"].peers.tolist()
    ([4.0, 8.0], [0.25, 0.5], [2, 1])

    """
    out = {}
    for store_id in sorted(groups):
        if store_id not in values:
            continue
        own = np.asarray(values[store_id], dtype=float)
        peers = [np.asarray(v, dtype=float) for s, v in values.items()
                 if s != store_id and groups.get(s) == groups[store_id]]
        if peers:
            stack = np.vstack(peers)
            count = (~np.isnan(stack)).sum(axis=0)
            with np.errstate(all="ignore"):
                median = np.array([np.median(col[~np.isnan(col)]) if n else np.nan
                                   for col, n in zip(stack.T, count, strict=True)])
        else:
            count = np.zeros(own.shape, dtype=int)
            median = np.full(own.shape, np.nan)
        with np.errstate(all="ignore"):
            ratio = np.where(median > 0, own / np.where(median > 0, median, 1.0), np.nan)
        out[store_id] = HourlyComparison(store_id, own, median, ratio, own - median, count)
    return out
