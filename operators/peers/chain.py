"""Comparable stores for the whole chain, from the insights records the stores publish.

`ChainPeers.update(records, emitted_at_ms)` takes each store's latest `insights` record
(`schemas.records.InsightsRecord`) and:

1. builds the store's 168 hour-of-week shares from its heatmap (`heatmap_shares`): the mean
   arrivals of each weekday × local hour over the record's 28 days, over their sum (null cells
   stay NaN: unseen, not zero). A store with fewer than `min_cells` non-null cells, or no
   arrivals, is left out (with the reason);
2. regroups the stores with `peer_groups.PeerGroups.update(profiles, day)`, `day` the latest
   `day` of the records: once per day, the group ids stable from one day to the next;
3. compares each grouped store's arrivals total of its record's day with the median of its
   peers' totals of the same day (`compare.compare_day`: the store itself left out, a peer
   without that day left out), and likewise its level index (the day's total over the store's
   usual total for that weekday, the heatmap row's sum), so a large and a small store of the
   same shape compare on how their day went rather than on their size.

It returns a `schemas.records.PeersRecord` per grouped store and a `PeerGroupsRecord` for
the chain (each group's members and its centre in words by `describe.describe_shape`, k,
the silhouette of the latest regrouping, the stores left out). No I/O: `footfall peers`
reads the records from Redis and writes what this returns. The state is plain data.

Examples
--------
Two daytime stores and two evening ones (one week of hours per day, all days alike):

>>> def insights(store_id, hours, total, day="2026-01-05"):
...     row = [1.0 if h in hours else 0.0 for h in range(24)]
...     return {"store_id": store_id, "region": None, "vertical": "retail", "tz": "UTC", "day": day,
...             "heatmap": {"arrivals": {"mean": [row] * 7, "weeks": [[4] * 24] * 7}},
...             "today": {"arrivals": {"total": total}}}
>>> chain = ChainPeers(k=2)
>>> out = chain.update({"a": insights("a", range(9, 17), 80), "b": insights("b", range(9, 17), 100),
...                     "c": insights("c", range(18, 23), 40), "d": insights("d", range(18, 23), 60),
...                     "e": insights("e", [], 0)}, emitted_at_ms=0)
>>> r = out.records["a"]
>>> r["group_id"], r["peers"], r["arrivals"], r["peer_median_arrivals"], r["vs_peers_pct"]
(0, ['b'], 80, 100.0, -20.0)
>>> out.records["d"]["group_description"]
'all week, peaks 18h, 19h and 20h; weekend day 1.0x a weekday; evening/night 100% of arrivals after 18h'
>>> out.summary["k"], out.summary["left_out"]
(2, {'e': 'no arrivals'})

"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from footfall.operators.peers.compare import compare_day
from footfall.operators.peers.describe import describe_shape
from footfall.operators.peers.grouping import KMeansGrouper, ProfileGrouper, fill_unseen
from footfall.operators.peers.peer_groups import PeerGroups
from footfall.operators.peers.profile import CELLS

__all__ = ["ChainPeers", "ChainPeersOutput", "heatmap_shares", "level_index", "pct_versus"]

MAX_PEERS = 10


def _heatmap(record: Mapping[str, Any], series: str = "arrivals") -> np.ndarray | None:
    """The record's 7 × 24 means of `series` as 168 floats (NaN for null); None if it has none."""
    try:
        mean = record["heatmap"][series]["mean"]
    except (KeyError, TypeError):
        return None
    if not isinstance(mean, list) or len(mean) != 7 or any(not isinstance(r, list) or len(r) != 24 for r in mean):
        return None
    return np.array([np.nan if v is None else float(v) for row in mean for v in row], dtype=float)


def heatmap_shares(record: Mapping[str, Any], series: str = "arrivals") -> np.ndarray | None:
    """168 hour-of-week shares (Monday 00h first) from an insights record's heatmap: mean / week's sum.

    Null cells stay NaN; None when the record has no such heatmap or its sum is not positive.

    >>> row = [None] * 8 + [1.0, 3.0] + [0.0] * 14
    >>> shares = heatmap_shares({"heatmap": {"arrivals": {"mean": [row] * 7}}})
    >>> shares[[8, 9, 10, 32]].tolist(), int(np.isnan(shares).sum())
    ([0.03571428571428571, 0.10714285714285714, 0.0, 0.03571428571428571], 56)

    """
    cells = _heatmap(record, series)
    if cells is None:
        return None
    total = np.nansum(cells)
    if not total > 0:
        return None
    return cells / total


def level_index(record: Mapping[str, Any], series: str = "arrivals") -> float | None:
    """The day's total over the store's usual total for that weekday (its heatmap row's sum); None if unknown.

    >>> row = [2.0] * 12 + [None] * 12
    >>> level_index({"day": "2026-01-07", "heatmap": {"arrivals": {"mean": [row] * 7}},
    ...              "today": {"arrivals": {"total": 36}}})
    1.5

    """
    total = _total(record, series)
    cells = _heatmap(record, series)
    if total is None or cells is None:
        return None
    try:
        weekday = dt.date.fromisoformat(str(record["day"])).weekday()
    except (KeyError, ValueError):
        return None
    row = cells[weekday * 24:(weekday + 1) * 24]
    usual = float(np.nansum(row))
    return total / usual if usual > 0 else None


def pct_versus(value: float | None, reference: float | None, digits: int = 2) -> float | None:
    """100 × (value / reference - 1), rounded; None without either or when the reference is not positive.

    >>> pct_versus(80, 100.0), pct_versus(5, 0.0), pct_versus(None, 3.0)
    (-20.0, None, None)

    """
    if value is None or reference is None or not reference > 0:
        return None
    return round(100.0 * (value / reference - 1.0), digits)


def _total(record: Mapping[str, Any], series: str = "arrivals") -> float | None:
    try:
        total = record["today"][series]["total"]
    except (KeyError, TypeError):
        return None
    if total is None or isinstance(total, bool) or not isinstance(total, int | float) or math.isnan(total):
        return None
    return total


@dataclass(frozen=True)
class ChainPeersOutput:
    """One refresh: a `PeersRecord` per grouped store (by store id) and the chain's `PeerGroupsRecord`."""

    records: dict[str, dict[str, Any]]
    summary: dict[str, Any]


class ChainPeers:
    """Peer groups of the chain's stores from their insights records (see the module docstring).

    Parameters
    ----------
    k
        Groups wanted (None: chosen by silhouette, 2..6).
    seed
        k-means++ seed.
    min_cells
        A store needs at least this many non-null heatmap cells (of 168) to be grouped.
    max_peers
        Peers listed in a store's record: the group's other stores nearest in shape first.
    grouper
        Any `grouping.ProfileGrouper` instead of `KMeansGrouper(k, seed)`.

    """

    def __init__(self, k: int | None = None, seed: int = 0, min_cells: int = 84, max_peers: int = MAX_PEERS,
                 grouper: ProfileGrouper | None = None) -> None:
        self.k = k
        self.seed = seed
        self.min_cells = min_cells
        self.max_peers = max_peers
        self.groups = PeerGroups(grouper=grouper if grouper is not None else KMeansGrouper(k=k, seed=seed),
                                 min_cells_seen=min_cells)
        self.silhouette: float | None = None  # of the latest regrouping (kept across restarts)

    # -- the refresh ------------------------------------------------------------------------------

    def profiles(self, records: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """`(store id -> 168 shares, store id -> why it is left out)` of the records given."""
        usable: dict[str, np.ndarray] = {}
        left_out: dict[str, str] = {}
        for store_id in sorted(records):
            cells = _heatmap(records[store_id])
            if cells is None:
                left_out[store_id] = "no arrivals heatmap"
                continue
            seen = int((~np.isnan(cells)).sum())
            if seen < self.min_cells:
                left_out[store_id] = f"too few hours seen ({seen} of {CELLS}, {self.min_cells} needed)"
                continue
            shares = heatmap_shares(records[store_id])
            if shares is None:
                left_out[store_id] = "no arrivals"
                continue
            usable[store_id] = shares
        return usable, left_out

    def update(self, records: Mapping[str, Mapping[str, Any]], emitted_at_ms: int) -> ChainPeersOutput:
        """Regroup (once per day) and compare each grouped store's day with its peers'; see the module docstring."""
        profiles, left_out = self.profiles(records)
        days = [str(records[s]["day"]) for s in profiles if records[s].get("day")]
        if days:
            before = self.groups.day
            self.groups.update(profiles, dt.date.fromisoformat(max(days)))
            if self.groups.day != before and self.groups.last is not None:
                grouping = self.groups.last
                self.silhouette = round(float(grouping.silhouette), 4) if grouping.k > 1 else None
        labels = self.groups.get()
        for store_id in profiles:
            if store_id not in labels:
                left_out[store_id] = "not grouped yet: came after today's regrouping"
        members = self.groups.members()
        descriptions = {g: describe_shape(self.groups.centres[g]) if g in self.groups.centres else "unknown"
                        for g in members}
        grouped = {s: labels[s] for s in profiles if s in labels}
        out: dict[str, dict[str, Any]] = {}
        for day in sorted({str(records[s].get("day")) for s in grouped}):
            on_day = [s for s in grouped if str(records[s].get("day")) == day]
            totals = compare_day({s: _total(records[s]) for s in on_day}, grouped)
            indices = compare_day({s: level_index(records[s]) for s in on_day}, grouped)
            for store_id in on_day:
                total, index = totals[store_id], indices[store_id]
                group = grouped[store_id]
                record = records[store_id]
                out[store_id] = {
                    "type": "peers",
                    "store_id": store_id,
                    "region": record.get("region"),
                    "vertical": record.get("vertical"),
                    "tz": record.get("tz") or "UTC",
                    "day": day,
                    "grouped_on": self.groups.day.isoformat() if self.groups.day else day,
                    "group_id": group,
                    "group_size": len(members[group]),
                    "group_description": descriptions[group],
                    "peers": self._nearest(store_id, members[group], profiles),
                    "peers_compared": total.peers,
                    "arrivals": None if total.value is None else int(total.value),
                    "peer_median_arrivals": total.peer_median,
                    "vs_peers_pct": pct_versus(total.value, total.peer_median),
                    "level_index": None if index.value is None else round(index.value, 4),
                    "peer_median_level_index": None if index.peer_median is None else round(index.peer_median, 4),
                    "vs_peers_level_pct": pct_versus(index.value, index.peer_median),
                    "emitted_at_ms": int(emitted_at_ms),
                }
        summary = {
            "type": "peer_groups",
            "day": self.groups.day.isoformat() if self.groups.day else None,
            "k": len(members),
            "silhouette": self.silhouette,
            "stores_read": len(records),
            "stores_grouped": len(out),
            "left_out": dict(sorted(left_out.items())),
            "groups": [{"group_id": g, "size": len(stores), "description": descriptions[g], "stores": stores}
                       for g, stores in members.items()],
            "emitted_at_ms": int(emitted_at_ms),
        }
        return ChainPeersOutput(dict(sorted(out.items())), summary)

    def _nearest(self, store_id: str, group: list[str], profiles: Mapping[str, np.ndarray]) -> list[str]:
        """Up to `max_peers` other members, nearest in shape first (ties, and members without a profile, by id)."""
        others = [s for s in group if s != store_id]
        with_profile = [s for s in others if s in profiles]
        if store_id in profiles and with_profile:
            ids = [store_id, *with_profile]
            filled = fill_unseen(np.array([profiles[s] for s in ids]))
            distance = ((filled[1:] - filled[0]) ** 2).sum(axis=1)
            ranked = [s for _, s in sorted(zip(distance.round(12).tolist(), with_profile, strict=True))]
        else:
            ranked = sorted(with_profile)
        ranked += sorted(s for s in others if s not in profiles)
        return ranked[:self.max_peers]

    # -- reads and state --------------------------------------------------------------------------

    def get(self) -> dict[str, int]:
        """Store id -> group id, as of the latest regrouping."""
        return self.groups.get()

    def to_state(self) -> dict[str, Any]:
        return {"groups": self.groups.to_state(), "silhouette": self.silhouette}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, k: int | None = None, seed: int = 0, min_cells: int = 84,
                   max_peers: int = MAX_PEERS, grouper: ProfileGrouper | None = None) -> ChainPeers:
        chain = cls(k=k, seed=seed, min_cells=min_cells, max_peers=max_peers, grouper=grouper)
        if state:
            chain.groups = PeerGroups.from_state(dict(state["groups"]) if state.get("groups") else None,
                                                 grouper=chain.groups.grouper, min_cells_seen=min_cells)
            silhouette = state.get("silhouette")
            chain.silhouette = None if silhouette is None else float(silhouette)
        return chain

    @classmethod
    def _unit_test_params(cls):
        yield {"k": 2, "min_cells": 24}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        def record(store_id: str, peak: int, total: int, day: str) -> dict[str, Any]:
            row = [0.5] * 24
            row[peak] = row[peak + 1] = 10.0
            return {"store_id": store_id, "region": "north", "vertical": "retail", "tz": "UTC", "day": day,
                    "heatmap": {"arrivals": {"mean": [list(row) for _ in range(7)]}},
                    "today": {"arrivals": {"total": total}}}

        def chain(day: str, extra: bool) -> dict[str, Any]:
            stores = {"a": record("a", 10, 90, day), "b": record("b", 10, 110, day), "c": record("c", 20, 50, day),
                      "d": record("d", 20, 70, day)}
            if extra:  # "0" sorts first: without the earlier day its (evening) group would be numbered 0
                stores["0"] = record("0", 20, 60, day)
            return stores

        steps = [("update", (chain("2026-01-05", False), 1), {}), ("update", (chain("2026-01-05", True), 2), {}),
                 ("update", (chain("2026-01-06", True), 3), {}), ("update", (chain("2026-01-07", True), 4), {})]
        return {"steps": steps, "reads": [("get",)], "empty": [(("get",), {})]}
