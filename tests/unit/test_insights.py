"""The insights stage and its operators against brute force from the buckets fed, and Welch against published values.

Every expected value here is recomputed from the buckets with plain loops (local day and hour of
each bucket from `zoneinfo`), never read from the code under test. The timeline runs in
Europe/London across both 2026 DST changes (29 March: hour 01 never occurs; 25 October: it occurs
twice), with a day cut short at 18:00 and the next one missing altogether.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from footfall.operators.insights.daily import DailyTotals, compare
from footfall.operators.insights.heatmap import HourlyHeatmap
from footfall.operators.insights.significance import pearson, welch_t_test
from footfall.operators.pipeline.insights_stage import Insights, InsightsOutput
from footfall.operators.pipeline.stage import ClosedBucket, StoreContext

HOUR_MS = 3_600_000
TZ = "Europe/London"
ZONE = ZoneInfo(TZ)
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, midnight in London (GMT)
SHORT_DAY = dt.date(2026, 5, 12)  # buckets stop at 18:00 local
MISSING_DAY = dt.date(2026, 5, 13)  # no bucket at all


# -- brute force -------------------------------------------------------------------------------------


def local(start_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(start_ms / 1000, ZONE)


def timeline(days: int, seed: int = 7) -> list[tuple[int, dict[str, int]]]:
    """Hourly buckets for `days` local days from START_MS, but for the short and the missing day."""
    rng = random.Random(seed)
    buckets = []
    for h in range(days * 24 + 3):  # DST: a few hours spare, trimmed by local day below
        start = START_MS + h * HOUR_MS
        when = local(start)
        if (when.date() - dt.date(2026, 1, 1)).days >= days:
            break
        if when.date() == MISSING_DAY or (when.date() == SHORT_DAY and when.hour >= 18):
            continue
        busy = 9 <= when.hour < 20
        arrivals = rng.randint(5, 40) if busy else rng.randint(0, 2)
        transactions = rng.randint(0, arrivals // 3 + 1)
        buckets.append((start, {"arrivals": arrivals, "transactions": transactions, "tickets_issued": 0,
                                "departures": arrivals}))
    return buckets


def brute_hours(buckets: list[tuple[int, dict[str, int]]], series: str) -> dict[tuple[dt.date, int], int]:
    hours: dict[tuple[dt.date, int], int] = defaultdict(int)
    for start, kpis in buckets:
        when = local(start)
        hours[(when.date(), when.hour)] += kpis[series]
    return hours


def brute_heatmap(hours: dict[tuple[dt.date, int], int], day: dt.date) -> tuple[list[list[Any]], list[list[int]]]:
    mean = [[None] * 24 for _ in range(7)]
    weeks = [[0] * 24 for _ in range(7)]
    for w in range(7):
        for h in range(24):
            values = [hours[(d, h)] for k in range(28) if (d := day - dt.timedelta(days=k)).weekday() == w
                      and (d, h) in hours]
            weeks[w][h] = len(values)
            mean[w][h] = sum(values) / len(values) if values else None
    return mean, weeks


def brute_days(buckets: list[tuple[int, dict[str, int]]], series: str) -> dict[dt.date, int]:
    days: dict[dt.date, int] = defaultdict(int)
    for start, kpis in buckets:
        days[local(start).date()] += kpis[series]
    return dict(days)


def brute_welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    def mean_var(xs: list[float]) -> tuple[float, float]:
        m = sum(xs) / len(xs)
        return m, sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    (ma, va), (mb, vb) = mean_var(a), mean_var(b)
    sa, sb = va / len(a), vb / len(b)
    t = (ma - mb) / math.sqrt(sa + sb)
    df = (sa + sb) ** 2 / (sa ** 2 / (len(a) - 1) + sb ** 2 / (len(b) - 1))
    return t, df, two_sided_p(t, df)


def two_sided_p(t: float, df: float, steps: int = 20_000) -> float:
    """1 - 2 ∫_0^|t| of the Student t density, by Simpson's rule (no library CDF)."""
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def density(x: float) -> float:
        return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))
    upper = abs(t)
    h = upper / steps
    area = density(0.0) + density(upper) + sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
    return 1.0 - 2.0 * area * h / 3


def brute_pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


def run_stage(buckets: list[tuple[int, dict[str, int]]], vertical: str = "retail",
              state: Any = None) -> tuple[list[InsightsOutput], Any]:
    context = StoreContext("s1", HOUR_MS, TZ, "north", vertical)
    stage = Insights().build(context, state)
    out = []
    for start, kpis in buckets:
        out += stage.on_bucket_closed(ClosedBucket(start, HOUR_MS, kpis), context)
    return out, stage


# -- the stage against brute force ------------------------------------------------------------------


@pytest.fixture(scope="module")
def year() -> tuple[list[tuple[int, dict[str, int]]], list[InsightsOutput]]:
    buckets = timeline(380)
    outputs, _ = run_stage(buckets)
    return buckets, outputs


def test_one_record_per_local_day_with_data_made_when_the_day_ends(year):
    buckets, outputs = year
    days = sorted({local(s).date() for s, _ in buckets})
    assert [o.day for o in outputs] == [d.isoformat() for d in days]
    assert MISSING_DAY.isoformat() not in {o.day for o in outputs}
    for o in outputs:
        day = dt.date.fromisoformat(o.day)
        start = int(dt.datetime.combine(day, dt.time(0), ZONE).timestamp() * 1000)
        end = int(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), ZONE).timestamp() * 1000)
        assert (o.day_start_ms, o.day_end_ms) == (start, end)
        if day == SHORT_DAY:  # its last buckets never came: given at the next day's first bucket
            first_after = min(s for s, _ in buckets if local(s).date() > SHORT_DAY)
            assert o.made_at_ms == first_after
        else:
            assert o.made_at_ms == end
    lengths = {o.day: (o.day_end_ms - o.day_start_ms) // HOUR_MS for o in outputs}
    assert lengths["2026-03-29"] == 23 and lengths["2026-10-25"] == 25


def test_heatmap_matches_brute_force_across_dst_and_a_missing_day(year):
    buckets, outputs = year
    picked = [o for o in outputs if o.day in ("2026-02-10", "2026-03-29", "2026-04-05", "2026-04-26", "2026-05-14",
                                               "2026-05-20", "2026-10-25", "2026-11-01", "2027-01-15")]
    assert len(picked) == 9
    for name in ("arrivals", "transactions"):
        hours = brute_hours(buckets, name)
        for o in picked:
            mean, weeks = brute_heatmap(hours, dt.date.fromisoformat(o.day))
            assert o.heatmap[name]["weeks"] == weeks, (o.day, name)
            got = o.heatmap[name]["mean"]
            for w in range(7):
                for h in range(24):
                    assert (got[w][h] is None) == (mean[w][h] is None), (o.day, w, h)
                    if mean[w][h] is not None:
                        assert got[w][h] == pytest.approx(mean[w][h], abs=5e-4)
    by_day = {o.day: o for o in outputs}
    # The spring-forward Sunday never has 01:00; its 4-week window holds it once: 3 Sundays of 01:00 count.
    assert by_day["2026-04-05"].heatmap["arrivals"]["weeks"][6][1] == 3
    assert by_day["2026-05-20"].heatmap["arrivals"]["weeks"][2][0] == 3  # Wednesday 13 May is missing
    assert "tickets_issued" not in by_day["2026-04-05"].heatmap  # a shop shows arrivals and transactions


def test_today_against_last_week_and_last_year_matches_brute_force(year):
    buckets, outputs = year
    for name in ("arrivals", "transactions"):
        days = brute_days(buckets, name)
        for o in outputs:
            day = dt.date.fromisoformat(o.day)
            got = o.today[name]
            assert got["total"] == days[day]
            for key, back in (("last_week", 7), ("last_year", 364)):
                ref = days.get(day - dt.timedelta(days=back))  # a missing day is None, never 0
                assert got[key] == ref, (o.day, key)
                if ref is None:
                    assert got[f"{key}_change"] is None and got[f"{key}_change_pct"] is None
                else:
                    assert got[f"{key}_change"] == days[day] - ref
                    if ref:
                        assert got[f"{key}_change_pct"] == pytest.approx(100 * (days[day] - ref) / ref)
    by_day = {o.day: o for o in outputs}
    assert by_day["2026-05-20"].today["arrivals"]["last_week"] is None  # 13 May had no data
    assert by_day["2027-01-14"].today["arrivals"]["last_year"] == brute_days(buckets, "arrivals")[dt.date(2026, 1, 15)]
    assert sum(o.today["arrivals"]["last_year"] is not None for o in outputs) == 380 - 364  # days 364..379


def test_weekly_summary_matches_brute_force(year):
    buckets, outputs = year
    sundays = [o for o in outputs if dt.date.fromisoformat(o.day).weekday() == 6]
    assert sundays and all(o.week is not None for o in sundays)
    assert all(o.week is None for o in outputs if o not in sundays)
    arrivals, transactions = brute_days(buckets, "arrivals"), brute_days(buckets, "transactions")
    tested = 0
    for o in sundays:
        end = dt.date.fromisoformat(o.day)
        for name, days in (("arrivals", arrivals), ("transactions", transactions)):
            this = [days[d] for k in range(7) if (d := end - dt.timedelta(days=k)) in days]
            last = [days[d] for k in range(7, 14) if (d := end - dt.timedelta(days=k)) in days]
            got = o.week["series"][name]
            assert (got["days"], got["last_days"]) == (len(this), len(last))
            assert got["total"] == (sum(this) if this else None)
            assert got["last_total"] == (sum(last) if last else None)
            if len(this) >= 2 and len(last) >= 2:
                t, df, p = brute_welch(this, last)
                assert got["t"] == pytest.approx(t, rel=1e-9)
                assert got["df"] == pytest.approx(df, rel=1e-9)
                assert got["p"] == pytest.approx(p, abs=1e-6)
                assert got["significant"] == (p < 0.05)
                assert got["sd"] == pytest.approx(math.sqrt(sum((x - sum(this) / len(this)) ** 2 for x in this)
                                                            / (len(this) - 1)))
                tested += 1
            else:
                assert got["t"] is None and got["p"] is None
        pairs = [(arrivals[d], transactions[d]) for k in range(28) if (d := end - dt.timedelta(days=k)) in arrivals]
        assert o.week["correlation"]["days"] == len(pairs)
        assert o.week["correlation"]["r"] == pytest.approx(brute_pearson([a for a, _ in pairs], [b for _, b in pairs]))
    assert tested > 90
    by_day = {o.day: o for o in sundays}
    assert by_day["2026-05-17"].week["series"]["arrivals"]["days"] == 6  # Wednesday 13 May missing: 6 days, not 7
    assert by_day["2026-01-04"].week["series"]["arrivals"]["last_total"] is None  # no week before the first


def test_a_bank_correlates_arrivals_with_tickets():
    buckets = [(s, {**k, "tickets_issued": k["arrivals"] // 2 + (s // HOUR_MS) % 3}) for s, k in timeline(21)]
    outputs, _ = run_stage(buckets, vertical="bank")
    arrivals, tickets = brute_days(buckets, "arrivals"), brute_days(buckets, "tickets_issued")
    sunday = next(o for o in outputs if o.day == "2026-01-18")
    assert sunday.series == ["arrivals", "tickets_issued"] and sunday.week["correlation"]["y"] == "tickets_issued"
    days = sorted(d for d in arrivals if d <= dt.date(2026, 1, 18))
    expected = brute_pearson([arrivals[d] for d in days], [tickets[d] for d in days])
    assert sunday.week["correlation"]["r"] == pytest.approx(expected)


def test_state_round_trip_through_json_changes_nothing():
    buckets = timeline(60)
    cut = len(buckets) // 2 + 5
    head, tail = buckets[:cut], buckets[cut:]
    straight, _ = run_stage(buckets)
    _, stage = run_stage(head)
    state = json.loads(json.dumps(stage.to_state(), allow_nan=False))
    resumed, _ = run_stage(tail, state=state)
    assert resumed == straight[len(straight) - len(resumed):]
    assert len(resumed) > 20


# -- the operators ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "t", "df", "p"), [
    # Welch's t-test, Wikipedia examples 1-3 (published to 2-3 significant figures).
    ([27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4],
     [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4],
     -2.46, 25.0, 0.021),
    ([17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8],
     [21.5, 22.8, 21.0, 23.0, 21.6, 23.6, 22.5, 20.7, 23.4, 21.8, 20.7, 21.7, 21.5, 22.5, 23.6, 21.5, 22.5, 23.5,
      21.5, 21.8],
     -1.57, 9.9, 0.149),
    ([19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0],
     [28.2, 26.6, 20.1, 23.3, 25.2, 22.1, 17.7, 27.6, 20.6, 13.7, 23.2, 17.5, 20.6, 18.0, 23.9, 21.6, 24.3, 20.4,
      23.9, 13.3],
     -2.22, 24.5, 0.036),
])
def test_welch_against_published_examples(a, b, t, df, p):
    test = welch_t_test(a, b)
    # To the published rounding (example 3 is printed as -2.22 and 0.036: truncated, t = -2.2255, p = 0.0355).
    assert abs(test.t - t) <= 0.01 and abs(test.df - df) <= 0.05 and abs(test.p - p) <= 0.001
    assert test.p == pytest.approx(two_sided_p(test.t, test.df), abs=1e-7)
    assert test.significant == (p < 0.05)


def test_welch_and_pearson_need_data():
    assert welch_t_test([1.0], [2.0, 3.0]) is None
    assert welch_t_test([5.0, 5.0], [5.0, 5.0]) is None  # no spread on either side
    assert welch_t_test([5.0, 5.0], [1.0, 2.0, 3.0]).p == pytest.approx(two_sided_p(3 / math.sqrt(1 / 3), 2.0))
    assert pearson([1, 2], [3, 4]) is None and pearson([1, 1, 1], [1, 2, 3]) is None


def test_compare_treats_a_missing_reference_as_missing():
    assert compare(10, None) == (None, None)
    assert compare(None, 4) == (None, None)
    assert compare(0, 0) == (0, None)
    assert compare(5, 4) == (1, 25.0)


def test_daily_totals_forget_days_beyond_the_ring():
    totals = DailyTotals(series=("arrivals",), days=10)
    day0 = dt.date(2026, 1, 1)
    for k in (0, 1, 2, 5, 11):
        totals.update(day0 + dt.timedelta(days=k), {"arrivals": k + 1})
    # Brute force: a day is known if it is among the last 10 up to the latest (day 11) and was given.
    for k in range(-2, 14):
        want = k + 1 if k in (2, 5, 11) else None  # days 0 and 1 fell out; the others were never given
        assert totals.total("arrivals", day0 + dt.timedelta(days=k)) == want, k
    totals.update(day0, {"arrivals": 99})  # older than the ring: dropped
    assert totals.total("arrivals", day0) is None


def test_heatmap_ring_reuses_slots_without_leaking_old_days():
    hm = HourlyHeatmap(series=("arrivals",), days=7)
    day0 = dt.date(2026, 1, 5)  # a Monday
    hm.update(day0, 10, {"arrivals": 8})
    hm.update(day0 + dt.timedelta(days=7), 11, {"arrivals": 3})  # same slot, a week later
    cell = hm.get(day0 + dt.timedelta(days=7))["arrivals"]
    assert cell["weeks"][0][10] == 0 and cell["mean"][0][10] is None
    assert cell["weeks"][0][11] == 1 and cell["mean"][0][11] == 3.0
