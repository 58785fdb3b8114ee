"""The adjusted Rand index of two partitions, from their contingency table.

Hubert and Arabie's index: the Rand index corrected for chance, 1 for identical
partitions (whatever the labels), about 0 for independent ones, negative when
they agree less than chance. Hand-written with numpy (sklearn is not a
dependency of footfall, and the formula is a few lines):

    ARI = (sum_ij C(n_ij, 2) - E) / (mean(sum_i C(a_i, 2), sum_j C(b_j, 2)) - E)
    E   = sum_i C(a_i, 2) * sum_j C(b_j, 2) / C(n, 2)

where n_ij is the contingency table and a_i, b_j its row and column sums.

Examples
--------
>>> adjusted_rand_index([0, 0, 1, 1], [5, 5, 9, 9])  # the same partition, other labels
1.0
>>> round(adjusted_rand_index([0, 0, 1, 1], [0, 1, 0, 1]), 3)  # as far apart as two pairs can be
-0.5

References
----------
[^1]: Hubert, L. and Arabie, P., 1985. Comparing partitions. Journal of Classification, 2(1), 193-218.

"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["adjusted_rand_index", "contingency"]


def contingency(a: Sequence[object], b: Sequence[object]) -> np.ndarray:
    """The table of counts n_ij: items labelled i in `a` and j in `b` (labels in sorted order)."""
    if len(a) != len(b):
        raise ValueError(f"partitions of different lengths: {len(a)} and {len(b)}")
    _, ia = np.unique(np.asarray(a), return_inverse=True)
    _, ib = np.unique(np.asarray(b), return_inverse=True)
    table = np.zeros((ia.max(initial=-1) + 1, ib.max(initial=-1) + 1), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)
    return table


def _pairs(n: np.ndarray) -> float:
    return float((n * (n - 1) // 2).sum())


def adjusted_rand_index(a: Sequence[object], b: Sequence[object]) -> float:
    """The adjusted Rand index of partitions `a` and `b` (labels of the same items, in the same order)."""
    table = contingency(a, b)
    n = int(table.sum())
    if n < 2:
        return 1.0
    index = _pairs(table)
    rows, cols = _pairs(table.sum(axis=1)), _pairs(table.sum(axis=0))
    expected = rows * cols / (n * (n - 1) / 2)
    best = (rows + cols) / 2
    if best == expected:  # both partitions trivial (one cluster each, or all singletons): they agree
        return 1.0
    return float((index - expected) / (best - expected))
