"""A local day's totals against last week and last year, and a week's against the week before.

`day_against_references(totals, day, series)` reads `DailyTotals` for the day and the same
weekday 7 and 364 days back (`daily.compare`). `weekly_summary(totals, week_end, series,
partner)` closes the local week (Monday to Sunday) ending on `week_end`: per series, the
week's total against the week before (count and %), the mean and standard deviation of
each week's daily totals and Welch's t-test of their means (`significance.welch_t_test`):
only days with data count, so a missing day changes `days`, not the mean. `correlation`
is Pearson's r of daily `arrivals` with the `partner` series (transactions in a shop,
tickets in a branch) over the last four weeks' days that have both.

Examples
--------
>>> import datetime as dt
>>> from footfall.operators.insights.daily import DailyTotals
>>> totals = DailyTotals(series=("arrivals", "transactions"))
>>> monday = dt.date(2026, 3, 2)
>>> for d in range(14):
...     arrivals = 100 + 10 * (d % 7) + (40 if d >= 7 else 0)
...     totals.update(monday + dt.timedelta(days=d), {"arrivals": arrivals, "transactions": arrivals // 7})
>>> week = weekly_summary(totals, monday + dt.timedelta(days=13), ("arrivals",), partner="transactions")
>>> w = week["series"]["arrivals"]
>>> w["total"], w["last_total"], round(w["change_pct"], 1), w["days"], round(w["t"], 2), w["significant"]
(1190, 910, 30.8, 7, 3.46, True)
>>> round(week["correlation"]["r"], 3), week["correlation"]["days"]
(0.998, 14)
>>> day_against_references(totals, monday + dt.timedelta(days=13), ("arrivals",))["arrivals"]["last_week_change"]
40

"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from typing import Any

from footfall.operators.insights.daily import LAST_WEEK_DAYS, LAST_YEAR_DAYS, DailyTotals, compare
from footfall.operators.insights.significance import pearson, welch_t_test

__all__ = ["CORRELATION_DAYS", "day_against_references", "weekly_summary"]

#: Days over which daily arrivals are correlated with the partner series.
CORRELATION_DAYS = 28
_DAY = dt.timedelta(days=1)


def day_against_references(totals: DailyTotals, day: dt.date, series: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per series: the day's total, the same weekday last week's and last year's, each change and % change."""
    out = {}
    for name in series:
        today = totals.total(name, day)
        last_week = totals.total(name, day - LAST_WEEK_DAYS * _DAY)
        last_year = totals.total(name, day - LAST_YEAR_DAYS * _DAY)
        week_change, week_pct = compare(today, last_week)
        year_change, year_pct = compare(today, last_year)
        out[name] = {"total": today, "last_week": last_week, "last_week_change": week_change,
                     "last_week_change_pct": week_pct, "last_year": last_year, "last_year_change": year_change,
                     "last_year_change_pct": year_pct}
    return out


def _week(totals: DailyTotals, name: str, last_day: dt.date) -> list[int]:
    days = (totals.total(name, last_day - k * _DAY) for k in range(6, -1, -1))
    return [v for v in days if v is not None]


def _sd(values: list[int]) -> float | None:
    return statistics.stdev(values) if len(values) >= 2 else None


def weekly_summary(totals: DailyTotals, week_end: dt.date, series: Sequence[str],
                   partner: str | None) -> dict[str, Any]:
    """The week ending on `week_end` against the week before (see the module docstring)."""
    per_series = {}
    for name in series:
        this, last = _week(totals, name, week_end), _week(totals, name, week_end - 7 * _DAY)
        total, last_total = (sum(this) if this else None), (sum(last) if last else None)
        change, change_pct = compare(total, last_total)
        test = welch_t_test(this, last)
        per_series[name] = {
            "total": total, "last_total": last_total, "change": change, "change_pct": change_pct,
            "days": len(this), "last_days": len(last),
            "mean": statistics.fmean(this) if this else None, "sd": _sd(this),
            "last_mean": statistics.fmean(last) if last else None, "last_sd": _sd(last),
            "t": None if test is None else test.t, "df": None if test is None else test.df,
            "p": None if test is None else test.p, "significant": None if test is None else test.significant,
        }
    correlation: dict[str, Any] = {"x": "arrivals", "y": partner, "r": None, "days": 0}
    if partner is not None and partner in totals.series and "arrivals" in totals.series:
        pairs = [(x, y) for k in range(CORRELATION_DAYS - 1, -1, -1)
                 if (x := totals.total("arrivals", week_end - k * _DAY)) is not None
                 and (y := totals.total(partner, week_end - k * _DAY)) is not None]
        correlation["days"] = len(pairs)
        correlation["r"] = pearson([p[0] for p in pairs], [p[1] for p in pairs])
    return {"week_start": (week_end - 6 * _DAY).isoformat(), "week_end": week_end.isoformat(),
            "series": per_series, "correlation": correlation}
