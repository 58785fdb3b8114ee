"""`operators.peers.chain.ChainPeers`: the chain's peer groups from the stores' insights records.

Oracles, all independent of the code under test: the planted shapes (groups, by the adjusted Rand
index), shares and level indices computed by hand in plain Python, and medians of the other members'
totals by sorting.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from typing import Any

import pytest

from footfall.operators.peers.chain import ChainPeers, heatmap_shares, level_index
from footfall.operators.segments.ari import adjusted_rand_index

DAY = "2026-01-07"  # a Wednesday


def heatmap(shape: str, rng: random.Random, scale: float = 1.0, closed: int = 0) -> list[list[float | None]]:
    """7 × 24 means: daytime (9-17h) or evening (18-23h) peaks, a little noise, `closed` first hours null."""
    rows = []
    for _ in range(7):
        row: list[float | None] = []
        for h in range(24):
            if h < closed:
                row.append(None)
                continue
            busy = 9 <= h < 17 if shape == "day" else h >= 18
            row.append(round(scale * ((20.0 if busy else 1.0) + rng.uniform(0, 2.0)), 3))
        rows.append(row)
    return rows


def insights(store_id: str, mean: list[list[float | None]], total: int | None, day: str = DAY) -> dict[str, Any]:
    return {"type": "insights", "store_id": store_id, "region": "north", "vertical": "retail", "tz": "UTC",
            "day": day, "heatmap": {"arrivals": {"mean": mean, "weeks": [[4] * 24 for _ in range(7)]}},
            "today": {"arrivals": {"total": total}}}


def planted(n_day: int = 5, n_evening: int = 4, seed: int = 7) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    rng = random.Random(seed)
    records, shapes = {}, {}
    for i in range(n_day + n_evening):
        shape = "day" if i < n_day else "evening"
        store_id = f"{shape}-{i:02d}"
        # sizes differ by up to 5x: only the shape may group them
        records[store_id] = insights(store_id, heatmap(shape, rng, scale=1 + 4 * rng.random(), closed=i % 3),
                                     rng.randint(100, 900))
        shapes[store_id] = shape
    return records, shapes


def brute_median(values: list[float]) -> float | None:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return None
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


# -- grouping -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [None, 2])
def test_stores_are_grouped_by_shape_not_size(k: int | None) -> None:
    records, shapes = planted()
    out = ChainPeers(k=k).update(records, emitted_at_ms=1)
    assert set(out.records) == set(records)
    stores = sorted(records)
    got = [out.records[s]["group_id"] for s in stores]
    assert adjusted_rand_index([shapes[s] for s in stores], got) == 1.0
    assert out.summary["k"] == 2
    assert out.summary["silhouette"] is not None and out.summary["silhouette"] > 0.5
    for record in out.records.values():
        want_peers = sorted(s for s in stores if shapes[s] == shapes[record["store_id"]] and s != record["store_id"])
        assert sorted(record["peers"]) == want_peers
        assert record["group_size"] == len(want_peers) + 1
    descriptions = {shapes[r["store_id"]]: r["group_description"] for r in out.records.values()}
    assert "evening/night" in descriptions["evening"] and "evening/night" not in descriptions["day"]


def test_group_ids_stay_with_their_members_when_a_store_is_added() -> None:
    records, shapes = planted()
    chain = ChainPeers(k=2)
    first = {s: r["group_id"] for s, r in chain.update(records, emitted_at_ms=1).records.items()}
    # A new evening store whose id sorts first: a fresh k-means would number its group 0.
    rng = random.Random(99)
    later = {s: {**r, "day": "2026-01-08"} for s, r in records.items()}
    later["0-new"] = insights("0-new", heatmap("evening", rng), 300, day="2026-01-08")
    restored = ChainPeers.from_state(json.loads(json.dumps(chain.to_state())), k=2)  # as between two runs
    second = restored.update(later, emitted_at_ms=2)
    assert second.summary["day"] == "2026-01-08"
    assert {s: second.records[s]["group_id"] for s in records} == first
    evening_id = {first[s] for s in records if shapes[s] == "evening"}
    assert evening_id == {second.records["0-new"]["group_id"]}
    assert first[sorted(first)[0]] == 0 and second.records["0-new"]["group_id"] != 0


def test_a_second_run_on_the_same_day_keeps_the_groups() -> None:
    records, _ = planted()
    chain = ChainPeers(k=2)
    first = chain.update(records, emitted_at_ms=1)
    rng = random.Random(5)
    more = {**records, "0-late": insights("0-late", heatmap("day", rng), 10)}
    again = chain.update(more, emitted_at_ms=2)
    assert "0-late" not in again.records and "0-late" in again.summary["left_out"]
    assert {s: r["group_id"] for s, r in again.records.items()} == {s: r["group_id"] for s, r in first.records.items()}
    assert again.summary["silhouette"] == first.summary["silhouette"]


# -- shares, left out ---------------------------------------------------------------------------------


def test_shares_from_a_heatmap_equal_a_hand_computation() -> None:
    rng = random.Random(3)
    mean: list[list[float | None]] = [[None if rng.random() < 0.3 else float(rng.randint(0, 9)) for _ in range(24)]
                                      for _ in range(7)]
    total = 0.0
    for row in mean:
        for v in row:
            if v is not None:
                total += v
    shares = heatmap_shares(insights("s", mean, 1))
    assert shares is not None and len(shares) == 168
    for d in range(7):
        for h in range(24):
            v = mean[d][h]
            if v is None:
                assert math.isnan(shares[d * 24 + h])
            else:
                assert shares[d * 24 + h] == pytest.approx(v / total, abs=1e-12)


def test_stores_with_too_few_cells_or_no_arrivals_are_left_out() -> None:
    records, _ = planted()
    sparse = [[None] * 24 for _ in range(7)]
    for d in range(3):
        for h in range(24):
            sparse[d][h] = 5.0  # 72 cells seen, fewer than 84
    records["sparse"] = insights("sparse", sparse, 100)
    records["zero"] = insights("zero", [[0.0] * 24 for _ in range(7)], 0)
    records["nomap"] = {**insights("nomap", sparse, 100), "heatmap": {}}
    out = ChainPeers(k=2).update(records, emitted_at_ms=1)
    assert set(out.summary["left_out"]) == {"sparse", "zero", "nomap"}
    assert "72 of 168" in out.summary["left_out"]["sparse"]
    assert not {"sparse", "zero", "nomap"} & set(out.records)
    assert not any({"sparse", "zero", "nomap"} & set(r["peers"]) for r in out.records.values())
    assert sum(g["size"] for g in out.summary["groups"]) == len(records) - 3
    assert out.summary["stores_read"] == len(records) and out.summary["stores_grouped"] == len(records) - 3
    # with a lower threshold the sparse store is grouped
    assert "sparse" in ChainPeers(k=2, min_cells=72).update(records, emitted_at_ms=1).records


# -- against the peers ---------------------------------------------------------------------------------


def test_vs_peers_is_against_a_brute_force_median_of_the_other_members_same_day() -> None:
    records, shapes = planted(n_day=6, n_evening=5)
    records["day-01"]["day"] = "2026-01-06"  # an older day: not a peer of the others' day, and vice versa
    records["evening-08"]["today"]["arrivals"]["total"] = None  # no total: no peer, no comparison
    out = ChainPeers(k=2).update(records, emitted_at_ms=1)
    compared = 0
    for store_id, record in out.records.items():
        own = records[store_id]
        peers = [s for s in records if s != store_id and shapes[s] == shapes[store_id] and
                 records[s]["day"] == own["day"] and records[s]["today"]["arrivals"]["total"] is not None]
        median = brute_median([records[s]["today"]["arrivals"]["total"] for s in peers])
        total = own["today"]["arrivals"]["total"]
        assert record["day"] == own["day"]
        assert record["arrivals"] == total
        assert record["peers_compared"] == len(peers)
        assert record["peer_median_arrivals"] == median
        if total is None or median is None:
            assert record["vs_peers_pct"] is None
        else:
            compared += 1
            assert record["vs_peers_pct"] == pytest.approx(100 * (total / median - 1), abs=0.005)
        # the level-adjusted figure: each day's total over its usual weekday total (the heatmap row's sum)
        def index(s: str) -> float | None:
            row = records[s]["heatmap"]["arrivals"]["mean"][dt.date.fromisoformat(records[s]["day"]).weekday()]
            t = records[s]["today"]["arrivals"]["total"]
            return None if t is None else t / sum(v for v in row if v is not None)
        peer_index = brute_median([index(s) for s in peers])
        assert record["level_index"] == (None if total is None else pytest.approx(index(store_id), abs=5e-5))
        assert record["peer_median_level_index"] == (None if peer_index is None
                                                     else pytest.approx(peer_index, abs=5e-5))
        if total is not None and peer_index is not None:
            assert record["vs_peers_level_pct"] == pytest.approx(100 * (index(store_id) / peer_index - 1), abs=0.01)
    assert out.records["day-01"]["peer_median_arrivals"] is None  # alone on its day
    assert out.records["evening-08"]["vs_peers_pct"] is None
    assert compared >= 8


def test_level_index_by_hand() -> None:
    mean: list[list[float | None]] = [[float(d + 1)] * 12 + [None] * 12 for d in range(7)]
    # 2026-01-09 is a Friday: row 4, 12 hours of 5.0 -> 60 usual
    assert level_index(insights("s", mean, 90, day="2026-01-09")) == pytest.approx(1.5)
    assert level_index(insights("s", mean, None, day="2026-01-09")) is None


def test_peers_listed_are_capped_and_exclude_the_store() -> None:
    records, _ = planted(n_day=14, n_evening=3)
    out = ChainPeers(k=2, max_peers=10).update(records, emitted_at_ms=1)
    for store_id, record in out.records.items():
        assert store_id not in record["peers"]
        assert len(record["peers"]) == min(10, record["group_size"] - 1)
        assert len(set(record["peers"])) == len(record["peers"])
