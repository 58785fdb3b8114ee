"""Peer groups: stores whose hour-of-week shapes are alike, by k-means over their shares.

`group_stores(profiles, k, seed)` is a pure function: the same profiles (in any order) and
seed give the same groups. Stores are sorted by id before anything else, k-means++ seeds each
of `restarts` runs from one `numpy.random.Generator(seed)`, and the run of least inertia wins.
`k=None` picks k in 2..min(6, n - 1) by the mean silhouette (highest; ties to the smaller k).

Why not River: `river.cluster.KMeans` learns online, one point at a time, so its centres depend
on the order stores arrive in and it has no restarts; a daily regrouping of a few hundred
168-cell profiles is a small batch problem, so a batch k-means in numpy (Lloyd's iterations,
k-means++ seeding[^1]) is both deterministic and cheap. scikit-learn would do it too but is not
a dependency; the silhouette[^2] is likewise a few lines of numpy over the distance matrix.

A profile's NaN cells (hours never seen) are filled before clustering with the mean share of
that cell over the stores that saw it, scaled so the store's filled profile still sums to 1:
an unseen hour is neither 0 nor allowed to pull the store away from its peers.

Group labels out of `group_stores` are canonical: numbered 0, 1, ... in the order of each
group's first member (by store id). Stable ids across refreshes are `peer_groups.PeerGroups`'s job.

Examples
--------
Two shapes, a 9-to-5 and an evening one, three stores each with a little noise:

>>> rng = np.random.default_rng(1)
>>> day, evening = np.zeros(168), np.zeros(168)
>>> day[[9, 10, 11, 12, 13, 14, 15, 16]] = 1.0
>>> evening[[19, 20, 21, 22]] = 1.0
>>> profiles = {f"{name}{i}": base + rng.uniform(0, 0.05, 168)
...             for name, base in [("day", day), ("eve", evening)] for i in range(3)}
>>> grouping = group_stores(profiles, k=None, seed=0)
>>> grouping.k, grouping.labels
(2, {'day0': 0, 'day1': 0, 'day2': 0, 'eve0': 1, 'eve1': 1, 'eve2': 1})
>>> round(grouping.silhouette, 2) > 0.8
True

References
----------
[^1]: D. Arthur, S. Vassilvitskii (2007). k-means++: the advantages of careful seeding. SODA '07, 1027-1035.
[^2]: P. J. Rousseeuw (1987). Silhouettes: a graphical aid to the interpretation and validation of cluster
      analysis. Journal of Computational and Applied Mathematics 20, 53-65.

"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Grouping", "KMeansGrouper", "ProfileGrouper", "fill_unseen", "group_stores", "kmeans", "silhouette"]

MAX_K = 6


@dataclass(frozen=True)
class Grouping:
    """Stores' group labels, each group's centre (mean shares) and the fit's quality."""

    labels: dict[str, int]
    centres: dict[int, np.ndarray] = field(repr=False)
    inertia: float = 0.0
    silhouette: float = 0.0

    @property
    def k(self) -> int:
        return len(set(self.labels.values()))

    def members(self) -> dict[int, list[str]]:
        """Group id -> its stores, sorted."""
        out: dict[int, list[str]] = {}
        for store_id in sorted(self.labels):
            out.setdefault(self.labels[store_id], []).append(store_id)
        return dict(sorted(out.items()))


@runtime_checkable
class ProfileGrouper(Protocol):
    """Anything that splits stores into peer groups from their hour-of-week shares.

    `group(profiles)` takes store id -> 168 shares (NaN = unseen) and returns a `Grouping`
    whose labels cover every store given. It must be deterministic: the same profiles, in any
    order, give the same labels. Members: `KMeansGrouper`; a grouping by declared vertical, or
    by hierarchical clustering, would fit the same slot in `PeerGroups`.
    """

    def group(self, profiles: Mapping[str, np.ndarray]) -> Grouping: ...


def fill_unseen(matrix: np.ndarray) -> np.ndarray:
    """Rows of shares with NaN cells filled by the column's mean share, each row rescaled to sum 1.

    >>> m = np.array([[0.5, 0.5, np.nan], [0.25, 0.25, 0.5]])
    >>> fill_unseen(m).round(3).tolist()
    [[0.333, 0.333, 0.333], [0.25, 0.25, 0.5]]

    The first store's seen cells keep their ratio (1:1) and the unseen one takes the column's
    mean share (0.5) before the row is rescaled.
    """
    matrix = np.asarray(matrix, dtype=float)
    seen = ~np.isnan(matrix)
    column_mean = np.where(seen, matrix, 0.0).sum(axis=0) / np.maximum(seen.sum(axis=0), 1)
    filled = np.where(seen, matrix, column_mean)
    totals = filled.sum(axis=1, keepdims=True)
    return filled / np.where(totals > 0, totals, 1.0)


def _sq_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, points x centres."""
    return ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)


def _kmeans_pp(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next centre drawn with probability proportional to its squared distance."""
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d2 = _sq_distances(points, np.array(centres)).min(axis=1)
        total = d2.sum()
        index = rng.choice(len(points), p=d2 / total) if total > 0 else rng.integers(len(points))
        centres.append(points[index])
    return np.array(centres)


def kmeans(points: np.ndarray, k: int, seed: int = 0, restarts: int = 10,
           max_iter: int = 100) -> tuple[np.ndarray, np.ndarray, float]:
    """Batch k-means: `(labels, centres, inertia)` of the best of `restarts` k-means++ runs.

    An empty cluster takes the point farthest from its centre. Labels are renumbered in order
    of first appearance, so equal partitions give equal labels whatever run found them.

    >>> labels, centres, inertia = kmeans(np.array([[0.0], [0.1], [5.0], [5.2]]), k=2)
    >>> labels.tolist(), centres.ravel().round(2).tolist(), round(inertia, 3)
    ([0, 0, 1, 1], [0.05, 5.1], 0.025)

    """
    points = np.asarray(points, dtype=float)
    n = len(points)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n}, got {k}")
    rng = np.random.default_rng(seed)
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for _ in range(restarts):
        centres = _kmeans_pp(points, k, rng)
        labels = np.full(n, -1)
        for _ in range(max_iter):
            d2 = _sq_distances(points, centres)
            new = d2.argmin(axis=1)
            served = d2[np.arange(n), new]
            for j in range(k):
                if not (new == j).any():  # empty: take the point worst served by its centre
                    # ... among points whose cluster keeps another member (identical points are all at
                    # distance 0: without this the same point went round the empty clusters).
                    sizes = np.bincount(new, minlength=k)
                    allowed = np.where(sizes[new] > 1, served, -np.inf)
                    far = int(allowed.argmax())
                    new[far] = j
                    served[far] = -np.inf
            if np.array_equal(new, labels):
                break
            labels = new
            centres = np.array([points[labels == j].mean(axis=0) for j in range(k)])
        inertia = float(((points - centres[labels]) ** 2).sum())
        if best is None or inertia < best[2] - 1e-12:
            best = (labels, centres, inertia)
    labels, centres, inertia = best  # type: ignore[misc]
    order = list(dict.fromkeys(labels.tolist()))  # labels by first appearance
    remap = np.empty(k, dtype=int)
    remap[order] = np.arange(k)
    return remap[labels], centres[order], inertia


def silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Euclidean): per point `(b - a) / max(a, b)`, 0 for a point alone in its group.

    `a` is the mean distance to the other members of its group, `b` the least mean distance to
    another group's members. Needs at least 2 groups.

    >>> round(silhouette(np.array([[0.0], [1.0], [10.0], [11.0]]), np.array([0, 0, 1, 1])), 4)
    0.8997

    """
    points = np.asarray(points, dtype=float)
    labels = np.asarray(labels)
    groups = np.unique(labels)
    if len(groups) < 2:
        raise ValueError("the silhouette needs at least 2 groups")
    dist = np.sqrt(np.maximum(_sq_distances(points, points), 0.0))
    member = labels[None, :] == groups[:, None]  # groups x points
    sizes = member.sum(axis=1)
    sums = dist @ member.T  # points x groups: total distance to each group's members
    own = np.searchsorted(groups, labels)
    own_size = sizes[own]
    a = sums[np.arange(len(points)), own] / np.maximum(own_size - 1, 1)
    mean_to = sums / sizes[None, :]
    mean_to[np.arange(len(points)), own] = np.inf
    b = mean_to.min(axis=1)
    denom = np.maximum(a, b)
    s = np.where((own_size > 1) & (denom > 0), (b - a) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(s.mean())


def group_stores(profiles: Mapping[str, np.ndarray], k: int | None = None, seed: int = 0,
                 restarts: int = 10) -> Grouping:
    """Peer groups of the stores by k-means over their shares (see the module docstring).

    With fewer than 3 stores, or `k=None` and no k scoring, all stores form one group.
    """
    store_ids = sorted(profiles)
    if not store_ids:
        return Grouping(labels={}, centres={})
    matrix = fill_unseen(np.array([np.asarray(profiles[s], dtype=float) for s in store_ids]))
    n = len(store_ids)
    if k is not None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        candidates = [min(k, n)]
    else:
        candidates = list(range(2, min(MAX_K, n - 1) + 1)) or [1]
    best: tuple[float, np.ndarray, np.ndarray, float] | None = None
    for kk in candidates:
        labels, centres, inertia = kmeans(matrix, kk, seed=seed, restarts=restarts)
        score = silhouette(matrix, labels) if len(set(labels.tolist())) > 1 else 0.0
        if best is None or score > best[0] + 1e-12:
            best = (score, labels, centres, inertia)
    score, labels, centres, inertia = best  # type: ignore[misc]
    return Grouping(labels={s: int(g) for s, g in zip(store_ids, labels, strict=True)},
                    centres={j: centres[j] for j in range(len(centres))}, inertia=inertia, silhouette=score)


class KMeansGrouper:
    """`ProfileGrouper` by `group_stores`: k fixed, or chosen by silhouette when None.

    >>> isinstance(KMeansGrouper(k=3), ProfileGrouper)
    True

    """

    def __init__(self, k: int | None = None, seed: int = 0, restarts: int = 10) -> None:
        self.k = k
        self.seed = seed
        self.restarts = restarts

    def group(self, profiles: Mapping[str, np.ndarray]) -> Grouping:
        return group_stores(profiles, k=self.k, seed=self.seed, restarts=self.restarts)
