"""Roll-ups: a region's and the chain's bucket totals, from the latest record of each store.

A roll-up is a sum over members: a region sums its stores, the chain sums its
regions. Each member contributes one *compact* row, integers in `SUMMED` order,
and a member's newer row replaces its older one, so applying a row twice, or an
old row again, changes nothing it should not: the total is always the sum of
the members' latest rows. Integers keep the sums exact (`sales` in cents, dwell
in tenths of a second); ratios are computed from the sums (`rollup_kpis`), never
averaged across stores. Quantiles (dwell p50/p90) do not sum and are left out.

The worker keeps these sums in Redis, where the stores of every partition meet
(`stream/sinks.py` applies `RollUp`'s rule in one atomic script); `RollUp` is
the same rule in memory, for offline use and as the reference in tests.

Examples
--------
>>> a = {"status": "closed", "arrivals": 10, "transactions": 2, "sales": 30.5, "visitors": 10,
...      "dwell_n": 2, "dwell_mean_s": 300.0}
>>> b = {"status": "open", "arrivals": 5, "transactions": 1, "sales": 9.99, "visitors": 5,
...      "dwell_n": 0, "dwell_mean_s": None}
>>> region = RollUp()
>>> _ = region.update("store-a", compact(a))
>>> totals = region.update("store-b", compact(b))
>>> kpis = rollup_kpis(totals)
>>> kpis["stores"], kpis["closed"], kpis["arrivals"], kpis["sales"], round(kpis["conversion_rate"], 4)
(2, 1, 15, 40.49, 0.2)
>>> kpis["dwell_mean_s"]
300.0
>>> totals == region.update("store-b", compact(b))  # the same row again: no change
True

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from footfall.operators.flow import COUNTERS

__all__ = ["SUMMED", "RollUp", "compact", "rollup_kpis"]

#: What a roll-up sums, in row order.
SUMMED: tuple[str, ...] = ("stores", "closed", *COUNTERS, "visitors", "sales_cents", "dwell_n", "dwell_sum_ds")


def compact(record: Mapping[str, Any]) -> list[int]:
    """One store's bucket record as a roll-up row (integers in `SUMMED` order)."""
    dwell_mean = record.get("dwell_mean_s")
    dwell_n = int(record.get("dwell_n") or 0) if dwell_mean is not None else 0
    row = {
        "stores": 1,
        "closed": int(record.get("status") == "closed"),
        "sales_cents": round(float(record.get("sales") or 0.0) * 100),
        "dwell_n": dwell_n,
        "dwell_sum_ds": round(dwell_mean * dwell_n * 10) if dwell_mean is not None else 0,
    }
    return [row[name] if name in row else int(record.get(name) or 0) for name in SUMMED]


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def rollup_kpis(totals: Mapping[str, int]) -> dict[str, Any]:
    """Sums as published: counts, `sales`, and the ratios computed from the sums."""
    t = {name: int(totals.get(name, 0)) for name in SUMMED}
    sales = t["sales_cents"] / 100
    out: dict[str, Any] = {name: t[name] for name in SUMMED if name not in ("sales_cents", "dwell_sum_ds")}
    out.update({
        "sales": sales,
        "conversion_rate": _ratio(t["transactions"], t["visitors"]),
        "avg_basket": _ratio(sales, t["transactions"]),
        "sales_per_visitor": _ratio(sales, t["visitors"]),
        "items_per_transaction": _ratio(t["items"], t["transactions"]),
        "dwell_mean_s": _ratio(t["dwell_sum_ds"] / 10, t["dwell_n"]),
    })
    return out


class RollUp:
    """Sums of the members' latest rows (see the module docstring)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = {}
        self.totals: dict[str, int] = dict.fromkeys(SUMMED, 0)

    def update(self, member: str, row: Sequence[int]) -> dict[str, int]:
        """Replace `member`'s row; return the totals."""
        old = self.rows.get(member)
        for i, name in enumerate(SUMMED):
            self.totals[name] += row[i] - (old[i] if old else 0)
        self.rows[member] = list(row)
        return dict(self.totals)

    def row(self) -> list[int]:
        """The totals as a row, to be a member of the level above (a region in the chain)."""
        return [self.totals[name] for name in SUMMED]
