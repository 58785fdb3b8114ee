"""A region's (and the chain's) weekday × hour heatmap: the sum of its stores' heatmaps.

Each store's insights record holds, per series, the mean count per weekday × local hour over
its last four weeks (`insights.heatmap.HourlyHeatmap`). A region's heatmap is, per cell, the sum
of its stores' means: the expected count of the whole region in that local hour of that weekday
(each store in its own local time, as a manager reads "Mondays at 9"). A store without data in a
cell adds nothing there; `stores` says per cell how many did, so a cell summed over fewer stores
than the region has is told apart. Stores without a region roll up under `unassigned`, as the
bucket roll-ups do. Sums are rounded to 3 decimals, as the store means are.

Examples
--------
>>> def store(region, a, b):  # two cells of Monday 9:00 and 10:00, the rest empty
...     mean = [[None] * 24 for _ in range(7)]
...     mean[0][9], mean[0][10] = a, b
...     return {"region": region, "day": "2026-11-30",
...             "heatmap": {"arrivals": {"mean": mean, "weeks": [[0] * 24 for _ in range(7)]}}}
>>> maps = region_heatmaps({"s1": store("north", 10.0, None), "s2": store("north", 2.5, 4.0),
...                          "s3": store(None, 1.0, 1.0)})
>>> north = maps["north"]
>>> north["stores"], north["heatmap"]["arrivals"]["sum"][0][9:11], north["heatmap"]["arrivals"]["stores"][0][9:11]
(2, [12.5, 4.0], [2, 1])
>>> north["heatmap"]["arrivals"]["sum"][0][8], sorted(maps)
(None, ['north', 'unassigned'])
>>> chain_heatmap({"s1": store("north", 10.0, None), "s3": store(None, 1.0, 1.0)})["heatmap"]["arrivals"]["sum"][0][9]
11.0

"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["UNASSIGNED", "chain_heatmap", "region_heatmaps", "sum_heatmaps"]

#: Where stores without a region roll up (as `operators.kpis.rollup` and the sink do).
UNASSIGNED = "unassigned"
DAYS, HOURS = 7, 24


def sum_heatmaps(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of the stores' heatmaps of `records` (insights records): per series, `sum` and `stores` per cell."""
    sums: dict[str, list[list[float | None]]] = {}
    counts: dict[str, list[list[int]]] = {}
    n, day = 0, None
    for record in records:
        n += 1
        if record.get("day") and (day is None or record["day"] > day):
            day = record["day"]
        for series, cells in (record.get("heatmap") or {}).items():
            mean = cells.get("mean") if isinstance(cells, Mapping) else None
            if not isinstance(mean, list):
                continue
            total = sums.setdefault(series, [[None] * HOURS for _ in range(DAYS)])
            count = counts.setdefault(series, [[0] * HOURS for _ in range(DAYS)])
            for d, row in enumerate(mean[:DAYS]):
                for h, value in enumerate(row[:HOURS] if isinstance(row, list) else ()):
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        total[d][h] = (total[d][h] or 0.0) + float(value)
                        count[d][h] += 1
    heatmap = {series: {"sum": [[None if v is None else round(v, 3) for v in row] for row in sums[series]],
                        "stores": counts[series]} for series in sorted(sums)}
    return {"stores": n, "day": day, "heatmap": heatmap}


def region_heatmaps(records: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per region (`unassigned` for stores without one): `sum_heatmaps` of its stores' insights records."""
    by_region: dict[str, list[Mapping[str, Any]]] = {}
    for _, record in sorted(records.items()):
        by_region.setdefault(record.get("region") or UNASSIGNED, []).append(record)
    return {region: sum_heatmaps(members) for region, members in sorted(by_region.items())}


def chain_heatmap(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`sum_heatmaps` of every store's insights record."""
    return sum_heatmaps(record for _, record in sorted(records.items()))
