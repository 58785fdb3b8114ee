"""Peer groups kept from one daily refresh to the next, with stable group ids.

`PeerGroups.update(profiles, day)` regroups the stores once per local day (a second call on
the same day, or an earlier one, returns the groups unchanged), from each store's
hour-of-week shares (`profile.HourOfWeekProfile.shares()`), with any `ProfileGrouper`
(`grouping.KMeansGrouper` by default). A store whose profile has too few cells seen (fewer
than `min_cells_seen` of 168) or no arrivals is left out of that day's groups.

Group ids are stable: each new group takes the id of the old group it shares the most
stores with (`match_ids`: pairs taken greedily, largest overlap first, ties by the new
group's first store and the smaller old id), and a group that overlaps no old one unmatched
so far takes a fresh id, never reused. So a store whose peers did not change keeps its id,
whatever k-means numbered its group that day.

The state is plain data: the day, the labels, the next fresh id and each group's centre
(168 shares), so a roll-up stage can keep it in a table and call `update` once a day.

Examples
--------
>>> import datetime as dt
>>> day, evening = np.zeros(168), np.zeros(168)
>>> day[9:17] = 1.0
>>> evening[19:23] = 1.0
>>> peers = PeerGroups(k=2)
>>> peers.update({"a": day, "b": day + 0.01, "c": evening, "d": evening + 0.01}, dt.date(2026, 1, 5))
{'a': 0, 'b': 0, 'c': 1, 'd': 1}

Next day "a" leaves first place in the sort order (a new store "0" with the evening shape
comes first), so k-means numbers the evening group 0; the ids stay with their members:

>>> peers.update({"0": evening, "a": day, "b": day + 0.01, "c": evening, "d": evening}, dt.date(2026, 1, 6))
{'0': 1, 'a': 0, 'b': 0, 'c': 1, 'd': 1}
>>> PeerGroups.from_state(peers.to_state(), k=2).get() == peers.get()
True

"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np

from footfall.operators.peers.grouping import Grouping, KMeansGrouper, ProfileGrouper

__all__ = ["PeerGroups", "match_ids"]


def match_ids(old: Mapping[str, int], new: Mapping[str, int], next_id: int) -> tuple[dict[str, int], int]:
    """Relabel `new`'s groups with `old`'s ids by member overlap; returns `(labels, next_id)`.

    >>> match_ids({"a": 3, "b": 3, "c": 4}, {"a": 1, "b": 1, "c": 0, "d": 2}, next_id=5)
    ({'a': 3, 'b': 3, 'c': 4, 'd': 5}, 6)

    """
    overlap: dict[tuple[int, int], int] = {}
    for store_id, group in new.items():
        if store_id in old:
            key = (group, old[store_id])
            overlap[key] = overlap.get(key, 0) + 1
    first_store = {}
    for store_id in sorted(new):
        first_store.setdefault(new[store_id], store_id)
    mapping: dict[int, int] = {}
    used: set[int] = set()
    for (group, old_id), _ in sorted(overlap.items(), key=lambda kv: (-kv[1], first_store[kv[0][0]], kv[0][1])):
        if group not in mapping and old_id not in used:
            mapping[group] = old_id
            used.add(old_id)
    for group in sorted(set(new.values()), key=lambda g: first_store[g]):
        if group not in mapping:
            mapping[group] = next_id
            next_id += 1
    return {store_id: mapping[group] for store_id, group in sorted(new.items())}, next_id


class PeerGroups:
    """Peer groups refreshed once a day, their ids stable (see the module docstring).

    Parameters
    ----------
    grouper
        How stores are grouped; default `KMeansGrouper(k, seed)`.
    k
        Groups wanted (None: chosen by silhouette); used when `grouper` is None.
    seed
        k-means++ seed; used when `grouper` is None.
    min_cells_seen
        A store's profile needs at least this many of its 168 cells seen to be grouped.

    """

    def __init__(self, grouper: ProfileGrouper | None = None, k: int | None = None, seed: int = 0,
                 min_cells_seen: int = 84) -> None:
        self.grouper = grouper if grouper is not None else KMeansGrouper(k=k, seed=seed)
        self.min_cells_seen = min_cells_seen
        self.day: dt.date | None = None
        self.labels: dict[str, int] = {}
        self.centres: dict[int, np.ndarray] = {}
        self.next_id = 0
        self.last: Grouping | None = None  # the latest refresh's fit (not saved)

    def usable(self, profiles: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The profiles that can be grouped: enough cells seen, some arrivals."""
        out = {}
        for store_id, shares in profiles.items():
            shares = np.asarray(shares, dtype=float)
            seen = ~np.isnan(shares)
            if seen.sum() >= self.min_cells_seen and shares[seen].sum() > 0:
                out[store_id] = shares
        return out

    def update(self, profiles: Mapping[str, np.ndarray], day: dt.date) -> dict[str, int]:
        """Regroup on a new `day` (else change nothing); returns store id -> group id."""
        if self.day is not None and day <= self.day:
            return self.get()
        grouping = self.grouper.group(self.usable(profiles))
        self.labels, self.next_id = match_ids(self.labels, grouping.labels, self.next_id)
        renamed = {grouping.labels[s]: g for s, g in self.labels.items()}
        self.centres = {renamed[j]: centre for j, centre in grouping.centres.items() if j in renamed}
        self.day = day
        self.last = grouping
        return self.get()

    def get(self) -> dict[str, int]:
        """Store id -> group id, as of the last refresh."""
        return dict(self.labels)

    def members(self) -> dict[int, list[str]]:
        """Group id -> its stores, sorted."""
        out: dict[int, list[str]] = {}
        for store_id in sorted(self.labels):
            out.setdefault(self.labels[store_id], []).append(store_id)
        return dict(sorted(out.items()))

    def to_state(self) -> dict[str, Any]:
        return {"day": self.day.isoformat() if self.day else None, "labels": dict(self.labels),
                "next_id": self.next_id, "centres": {str(g): c.tolist() for g, c in self.centres.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, grouper: ProfileGrouper | None = None, k: int | None = None,
                   seed: int = 0, min_cells_seen: int = 84) -> PeerGroups:
        peers = cls(grouper=grouper, k=k, seed=seed, min_cells_seen=min_cells_seen)
        if state:
            peers.day = dt.date.fromisoformat(state["day"]) if state["day"] else None
            peers.labels = {str(s): int(g) for s, g in state["labels"].items()}
            peers.next_id = int(state["next_id"])
            peers.centres = {int(g): np.array(c, dtype=float) for g, c in state["centres"].items()}
        return peers

    @classmethod
    def _unit_test_params(cls):
        yield {"k": 2}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        day, evening = [0.01] * 168, [0.01] * 168
        for d in range(7):
            day[d * 24 + 9] = day[d * 24 + 14] = evening[d * 24 + 21] = 1.0
        first = {"a": day, "b": day, "c": evening, "d": evening}
        # A new store "0" sorts first: without the earlier days, its group would be numbered 0.
        later = {"0": evening, "a": day, "b": day, "c": evening, "d": evening}
        steps = [("update", (first, dt.date(2026, 1, 1)), {}), ("update", (first, dt.date(2026, 1, 2)), {}),
                 ("update", (later, dt.date(2026, 1, 3)), {}), ("update", (later, dt.date(2026, 1, 4)), {})]
        return {"steps": steps, "reads": [("get",), ("members",)], "empty": [(("get",), {}), (("members",), {})]}
