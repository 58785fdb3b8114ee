"""What a customer segment is made of: the features of a till transaction and of a visit, and words for a centre.

A till transaction is its size (items, `log1p` of the amount: baskets and spends are
skewed), the hour of day in the store's local time as a point on a circle (sin, cos:
23:00 is next to 01:00) and whether it is a weekend day. An ended visit is its
dwell time (`log1p` of seconds), what was spent in it (`log1p`, 0 when nothing is
known to have been spent), the hour and the weekend flag alike. A centre, the mean of
a segment's features, comes back in the original units (`centre_of`): items, amount,
dwell seconds and spend undo their `log1p` (so they are geometric-like means), the
hour is the circular mean, `weekend` the share of the segment's events on a weekend.
`describe` says it in words.

Examples
--------
>>> x = till_features(items=1, amount=3.5, ts_ms=1_790_150_400_000, tz="Europe/London")  # 09:00 local, a Wed
>>> [round(x[f], 3) for f in TILL_FEATURES]
[1.0, 1.504, 0.707, -0.707, 0.0]
>>> c = centre_of("till", [x[f] for f in TILL_FEATURES])
>>> c["items"], c["amount"], c["hour"], c["weekend"]
(1.0, 3.5, 9.0, 0.0)
>>> describe("till", c)
'single item, spends about 3.50, weekday morning'
>>> describe("visit", {"dwell_s": 2400.0, "spend": 0.0, "hour": 15.2, "weekend": 0.9})
'long visit (40 min), weekend afternoon'

"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Literal, TypedDict
from zoneinfo import ZoneInfo

__all__ = ["KINDS", "TILL_FEATURES", "VISIT_FEATURES", "Centre", "centre_of", "describe", "features_of",
           "till_features", "visit_features"]

Kind = Literal["till", "visit"]
KINDS: tuple[Kind, ...] = ("till", "visit")
TILL_FEATURES = ("items", "log_amount", "hour_sin", "hour_cos", "weekend")
VISIT_FEATURES = ("log_dwell", "log_spend", "hour_sin", "hour_cos", "weekend")


def features_of(kind: str) -> tuple[str, ...]:
    """The feature names of a kind of segment, in the order its vectors hold them."""
    return {"till": TILL_FEATURES, "visit": VISIT_FEATURES}[kind]


class Centre(TypedDict):
    """A segment's centre in the original units (None: not a feature of that kind)."""

    items: float | None
    amount: float | None
    dwell_s: float | None
    spend: float | None
    hour: float
    weekend: float


def _clock(ts_ms: int, tz: str) -> dict[str, float]:
    local = dt.datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(tz))
    angle = 2 * math.pi * (local.hour + local.minute / 60 + local.second / 3600) / 24
    return {"hour_sin": math.sin(angle), "hour_cos": math.cos(angle), "weekend": float(local.weekday() >= 5)}


def till_features(items: int, amount: float, ts_ms: int, tz: str) -> dict[str, float]:
    """A till transaction's features (an amount below 0 counts as 0: a refund is not a basket size)."""
    return {"items": float(items), "log_amount": math.log1p(max(0.0, amount)), **_clock(ts_ms, tz)}


def visit_features(dwell_s: float, ts_ms: int, tz: str, spend: float = 0.0) -> dict[str, float]:
    """An ended visit's features; `ts_ms` is when it ended, the hour is that of its start (`ts_ms - dwell`)."""
    start_ms = ts_ms - int(1000 * max(0.0, dwell_s))
    return {"log_dwell": math.log1p(max(0.0, dwell_s)), "log_spend": math.log1p(max(0.0, spend)),
            **_clock(start_ms, tz)}


def centre_of(kind: str, vector: Sequence[float]) -> Centre:
    """A centre (feature means, in `features_of(kind)` order) in the original units."""
    v = dict(zip(features_of(kind), (float(x) for x in vector), strict=True))
    hour = (math.degrees(math.atan2(v["hour_sin"], v["hour_cos"])) / 15) % 24
    till = kind == "till"
    return Centre(items=round(v["items"], 3) if till else None,
                  amount=round(math.expm1(v["log_amount"]), 2) if till else None,
                  dwell_s=None if till else round(math.expm1(v["log_dwell"]), 1),
                  spend=None if till else round(math.expm1(v["log_spend"]), 2),
                  hour=round(hour, 2), weekend=round(min(1.0, max(0.0, v["weekend"])), 3))


def _when(centre: Centre) -> str:
    hour, weekend = centre["hour"], centre["weekend"]
    # A week has 2 weekend days of 7: a segment blind to the day has about 0.29 of its events on one.
    day = "weekend" if weekend >= 0.6 else "weekday" if weekend <= 0.15 else "any day"
    part = ("morning" if 5 <= hour < 11 else "midday" if hour < 14 else "afternoon" if hour < 17
            else "evening" if hour < 21 else "night") if hour >= 5 else "night"
    return f"{day} {part}"


def describe(kind: str, centre: Centre | dict[str, float | None]) -> str:
    """A segment in words, from its centre: "single item, weekday morning", "long visit (40 min), weekend ..."."""
    words = []
    if kind == "till":
        items = centre["items"] or 0.0
        words.append("single item" if items < 1.25 else f"{items:.1f} items" if items < 3.5
                     else f"large basket ({items:.1f} items)")
        if (centre["amount"] or 0.0) >= 0.01:
            words.append(f"spends about {centre['amount']:.2f}")
        words.append(_when(centre))  # type: ignore[arg-type]
    else:
        minutes = (centre["dwell_s"] or 0.0) / 60
        length = "short visit" if minutes < 5 else "visit" if minutes < 20 else "long visit"
        words += [f"{length} ({minutes:.0f} min)", _when(centre)]  # type: ignore[arg-type]
        if (centre["spend"] or 0.0) >= 1.0:
            words.append(f"spends about {centre['spend']:.2f}")
    return ", ".join(words)
