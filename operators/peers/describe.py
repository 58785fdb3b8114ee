"""A peer group's hour-of-week shape in words: weekday or weekend, its peak hours, its evenings.

`describe_shape(shares)` reads 168 shares (Monday 00:00 first) and says:

- which days carry it: "weekday" when a weekend day has under 0.6 of a weekday's arrivals,
  "weekend" above 1.15, else "all week"; the ratio follows ("weekend day 0.45x a weekday");
- its weekday peaks: the hours of the mean weekday that are the highest within two hours on
  each side and at least 60 % of the day's highest (at most three); "commute peaks 8h and
  17h" when there is one in 6-9h and one in 16-19h;
- "evening/night" with the share of the week's arrivals from 18:00 to 05:59 when that share
  is 35 % or more.

Examples
--------
>>> week = np.zeros(168)
>>> for d in range(5):
...     week[d * 24 + 8], week[d * 24 + 12], week[d * 24 + 17] = 10, 6, 9
>>> week[5 * 24 + 13] = week[6 * 24 + 13] = 5
>>> describe_shape(week / week.sum())
'weekday, commute peaks 8h and 17h (also 12h); weekend day 0.2x a weekday'
>>> night = np.zeros(168)
>>> night[[4 * 24 + 22, 4 * 24 + 23, 5 * 24 + 22, 5 * 24 + 23, 5 * 24 + 14, 6 * 24 + 14]] = 1
>>> describe_shape(night / night.sum())
'weekend, peak 14h; weekend day 5.0x a weekday; evening/night 67% of arrivals after 18h'

"""

from __future__ import annotations

import numpy as np

__all__ = ["describe_shape"]


def describe_shape(shares: np.ndarray) -> str:
    """The shape in words (see the module docstring); NaN cells count as unseen (ignored)."""
    week = np.nan_to_num(np.asarray(shares, dtype=float).reshape(7, 24))
    if not week.sum() > 0:
        return "no arrivals"
    weekday = week[:5].sum(axis=1).mean()
    weekend = week[5:].sum(axis=1).mean()
    ratio = weekend / weekday if weekday > 0 else float("inf")
    kind = "weekday" if ratio < 0.6 else "weekend" if ratio > 1.15 else "all week"
    hours = week[:5].mean(axis=0) if weekday > 0 and kind != "weekend" else week[5:].mean(axis=0)
    top = hours.max()
    peaks = [h for h in range(24) if hours[h] > 0 and hours[h] >= 0.6 * top
             and all(hours[h] >= hours[(h + d) % 24] for d in (-2, -1, 1, 2))]
    peaks = sorted(sorted(peaks, key=lambda h: -hours[h])[:3])
    morning = [h for h in peaks if 6 <= h <= 9]
    afternoon = [h for h in peaks if 16 <= h <= 19]
    if morning and afternoon:
        said = f"commute peaks {morning[0]}h and {afternoon[-1]}h"
        others = [h for h in peaks if h not in (morning[0], afternoon[-1])]
        if others:
            said += " (also " + ", ".join(f"{h}h" for h in others) + ")"
    elif len(peaks) == 1:
        said = f"peak {peaks[0]}h"
    else:
        said = "peaks " + ", ".join(f"{h}h" for h in peaks[:-1]) + f" and {peaks[-1]}h"
    parts = [f"{kind}, {said}", f"weekend day {ratio:.1f}x a weekday" if ratio < 10 else "weekend only"]
    evening = (week[:, 18:].sum() + week[:, :6].sum()) / week.sum()
    if evening >= 0.35:
        parts.append(f"evening/night {evening:.0%} of arrivals after 18h")
    return "; ".join(parts)
