"""How far two groupings of the same stores agree: the adjusted Rand index[^1] and the share that kept its id.

The Rand index counts the pairs of stores that both groupings put together, or both apart;
the adjusted index subtracts what two random groupings with the same group sizes would
agree on by chance, so 1 is identical groupings (up to the names of the groups) and about 0
is chance. From the contingency table `n_ij` (stores in group i of one and j of the other),
with row sums `a_i`, column sums `b_j` and `n` stores, and `C(x) = x (x - 1) / 2`:

    ARI = (sum C(n_ij) - sum C(a_i) sum C(b_j) / C(n)) / ((sum C(a_i) + sum C(b_j)) / 2 - sum C(a_i) sum C(b_j) / C(n))

The index itself is `footfall.operators.segments.ari.adjusted_rand_index`, shared with the
customer segments; this module adds the share of stores that kept their group id.

Examples
--------
>>> adjusted_rand_index([0, 0, 1, 1], [5, 5, 7, 7])
1.0
>>> round(adjusted_rand_index([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]), 4)
0.2424

References
----------
[^1]: L. Hubert, P. Arabie (1985). Comparing partitions. Journal of Classification 2, 193-218.

"""

from __future__ import annotations

from collections.abc import Mapping

from footfall.operators.segments.ari import adjusted_rand_index, contingency

__all__ = ["adjusted_rand_index", "contingency", "share_same_id"]


def share_same_id(before: Mapping[str, int], after: Mapping[str, int]) -> float | None:
    """Share of the stores in both groupings whose group id is the same; None with no store in both.

    >>> share_same_id({"a": 0, "b": 0, "c": 1}, {"a": 0, "b": 1, "c": 1, "d": 2})
    0.6666666666666666

    """
    common = [s for s in before if s in after]
    if not common:
        return None
    return sum(before[s] == after[s] for s in common) / len(common)
