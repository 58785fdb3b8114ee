"""Roll-up rows and sums against a brute-force sum over each member's latest record."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.kpis.rollup import SUMMED, RollUp, compact, rollup_kpis

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
