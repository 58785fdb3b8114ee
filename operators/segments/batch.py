"""Batch k-means (Lloyd's algorithm, k-means++ seeds): seeds the online model and is its reference.

Hand-written with numpy: footfall does not depend on scikit-learn, and what is needed is
a few lines, deterministic with a seed. `kmeans_plus_plus` picks seeds spread apart
(each next seed drawn with probability proportional to its squared distance to the
nearest one chosen); `kmeans` runs Lloyd's iterations from `restarts` such seedings
and keeps the one of least inertia (sum of squared distances to the centres).

Examples
--------
>>> X = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [5.0, 5.1]])
>>> centres, labels = kmeans(X, 2, restarts=3, seed=1)
>>> sorted(np.round(centres, 3).tolist())
[[0.033, 0.033], [5.033, 5.033]]
>>> len(set(labels[:3].tolist())), bool(labels[0] != labels[3])
(1, True)

References
----------
[^1]: Arthur, D. and Vassilvitskii, S., 2007. k-means++: the advantages of careful seeding. SODA, 1027-1035.

"""

from __future__ import annotations

import numpy as np

__all__ = ["assign", "kmeans", "kmeans_plus_plus"]


def assign(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (Euclidean) of each row of `X`."""
    d = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return d.argmin(axis=1)


def kmeans_plus_plus(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """`k` seeds from the rows of `X` by k-means++ (fewer distinct rows than k: repeats allowed)."""
    centres = [X[rng.integers(len(X))]]
    nearest = ((X - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        i = rng.integers(len(X)) if total <= 0 else rng.choice(len(X), p=nearest / total)
        centres.append(X[i])
        nearest = np.minimum(nearest, ((X - X[i]) ** 2).sum(axis=1))
    return np.array(centres, dtype=float)


def kmeans(X: np.ndarray, k: int, restarts: int = 10, seed: int = 0,
           max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means from `restarts` k-means++ seedings: `(centres, labels)` of least inertia."""
    X = np.asarray(X, dtype=float)
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(restarts):
        centres = kmeans_plus_plus(X, k, rng)
        labels = assign(X, centres)
        for _ in range(max_iter):
            for j in range(k):
                members = X[labels == j]
                if len(members):  # an empty cluster keeps its centre
                    centres[j] = members.mean(axis=0)
            new = assign(X, centres)
            if np.array_equal(new, labels):
                break
            labels = new
        inertia = float(((X - centres[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, centres.copy(), labels.copy())
    assert best is not None
    return best[1], best[2]
