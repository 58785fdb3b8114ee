"""Stable segment ids: new centres take the ids of the published centres they are nearest to.

A segment drifts (its centre moves a little at each update) and a model may be started
again (its centres come back in another order); a dashboard following "segment 2"
should keep following the same customers. So each time centres are published, they
are matched one to one with the previously published ones by the assignment of least
total distance (the Hungarian method, `scipy.optimize.linear_sum_assignment`), and
each takes its match's id.

Examples
--------
>>> previous = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]
>>> new = [[0.5, 9.0], [0.2, -0.3], [9.0, 1.0]]  # drifted, and in another order
>>> match_ids(previous, [7, 3, 5], new)
[5, 7, 3]

"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["match_ids"]


def match_ids(previous: Sequence[Sequence[float]], ids: Sequence[int],
              new: Sequence[Sequence[float]]) -> list[int]:
    """The id of each of the `new` centres: that of the `previous` centre matched to it (same count)."""
    old, now = np.asarray(previous, dtype=float), np.asarray(new, dtype=float)
    if old.shape != now.shape or len(ids) != len(old):
        raise ValueError(f"cannot match {now.shape} centres to {old.shape} with {len(ids)} ids")
    cost = np.sqrt(((now[:, None, :] - old[None, :, :]) ** 2).sum(axis=2))
    rows, cols = linear_sum_assignment(cost)
    out = [0] * len(now)
    for r, c in zip(rows, cols, strict=True):
        out[r] = int(ids[c])
    return out
