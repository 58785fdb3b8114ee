"""Roll-up rows and sums against a brute-force sum over each member's latest record."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.kpis.rollup import LIVE_SUMMED, SUMMED, RollUp, compact, compact_live, rollup_kpis

records = st.fixed_dictionaries({
    "status": st.sampled_from(["open", "closed"]),
    "arrivals": st.integers(0, 500),
    "transactions": st.integers(0, 100),
    "items": st.integers(0, 300),
    "tickets_issued": st.integers(0, 50),
    "visitors": st.integers(0, 500),
    "sales": st.integers(0, 10_000_000).map(lambda cents: cents / 100),
    "dwell_n": st.integers(0, 40),
    "dwell_mean_s": st.one_of(st.none(), st.integers(0, 36_000).map(lambda ds: ds / 10)),
})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["s1", "s2", "s3", "s4"]), records), min_size=1, max_size=40))
def test_totals_are_the_sum_of_each_members_latest_record(updates):
    rollup = RollUp()
    latest = {}
    for member, record in updates:
        totals = rollup.update(member, compact(record))
        latest[member] = record
    # Replaying everything (a worker re-publishing after a crash) changes nothing.
    for member, record in updates[-5:]:
        if latest[member] is record:
            assert rollup.update(member, compact(record)) == totals
    kpis = rollup_kpis(totals)
    assert kpis["stores"] == len(latest)
    assert kpis["closed"] == sum(r["status"] == "closed" for r in latest.values())
    for name in ("arrivals", "transactions", "items", "tickets_issued", "visitors"):
        assert kpis[name] == sum(r[name] for r in latest.values())
    assert round(kpis["sales"] * 100) == sum(round(r["sales"] * 100) for r in latest.values())
    visitors = sum(r["visitors"] for r in latest.values())
    transactions = sum(r["transactions"] for r in latest.values())
    assert kpis["conversion_rate"] == (transactions / visitors if visitors else None)
    dwell_n = sum(r["dwell_n"] for r in latest.values() if r["dwell_mean_s"] is not None)
    if dwell_n:
        dwell_sum = sum(r["dwell_mean_s"] * r["dwell_n"] for r in latest.values() if r["dwell_mean_s"] is not None)
        assert abs(kpis["dwell_mean_s"] - dwell_sum / dwell_n) <= 0.05 + 1e-9


def test_a_region_is_a_member_of_the_chain():
    north, south, chain = RollUp(), RollUp(), RollUp()
    north.update("a", compact({"arrivals": 3, "status": "closed"}))
    north.update("b", compact({"arrivals": 4}))
    south.update("c", compact({"arrivals": 5, "sales": 1.25}))
    chain.update("north", north.row())
    totals = chain.update("south", south.row())
    assert totals["stores"] == 3 and totals["arrivals"] == 12 and totals["closed"] == 1
    assert totals["sales_cents"] == 125
    assert len(north.row()) == len(SUMMED)


def _reference_compact_live(record):
    """The path-by-path definition: each `LIVE_SUMMED` value read from its path, 0 when missing or not a number."""
    from collections.abc import Mapping

    def num(*path):
        value = record
        for part in path:
            if not isinstance(value, Mapping):
                return 0
            value = value.get(part)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else 0

    paths = {"occupancy": ("occupancy", "occupancy"), "waiting_now": ("queue", "total", "waiting_now"),
             "in_service_now": ("queue", "total", "in_service_now"),
             "counters_active": ("queue", "total", "counters_active"),
             "arrivals_5m": ("windows", "5m", "arrivals"), "arrivals_15m": ("windows", "15m", "arrivals"),
             "arrivals_60m": ("windows", "60m", "arrivals"), "transactions_15m": ("windows", "15m", "transactions"),
             "tickets_issued_15m": ("windows", "15m", "tickets_issued"), "today_arrivals": ("today", "arrivals"),
             "today_transactions": ("today", "transactions"), "today_tickets_issued": ("today", "tickets_issued"),
             "last_week_arrivals": ("same_day_last_week", "arrivals"),
             "last_week_transactions": ("same_day_last_week", "transactions"),
             "duplicates": ("duplicates",), "late": ("late",)}
    row = {name: num(*path) for name, path in paths.items()}
    row["stores"] = 1
    row["today_sales_cents"] = round(num("today", "sales") * 100)
    row["last_week_sales_cents"] = round(num("same_day_last_week", "sales") * 100)
    return [int(row[name]) for name in LIVE_SUMMED]


def test_compact_live_equals_the_path_by_path_definition_on_random_records():
    import random
    from types import MappingProxyType

    import numpy as np


    rng = random.Random(11)
    leaves = [None, True, False, 0, 7, -3, 2.5, 12.345, float(np.float64(4.75)), np.float64(1.25), "9", [1], {}]

    def part(depth: int):
        if depth == 0 or rng.random() < 0.2:
            return rng.choice(leaves)
        keys = ["occupancy", "total", "waiting_now", "in_service_now", "counters_active", "5m", "15m", "60m",
                "arrivals", "transactions", "tickets_issued", "sales", "other"]
        made = {k: part(depth - 1) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        return MappingProxyType(made) if rng.random() < 0.1 else made  # a Mapping that is not a dict

    for _ in range(3000):
        record = {k: part(3) for k in rng.sample(["occupancy", "queue", "windows", "today", "same_day_last_week",
                                                  "duplicates", "late", "x"], rng.randint(0, 8))}
        assert compact_live(record) == _reference_compact_live(record), record
