"""What the dashboard shows: request parameters checked, and the worker's records shaped into view rows.

Everything here is pure: no Redis, no clock. `dashboard_data` reads the records and
`dashboard_hub` receives them; both shape them with these functions, so a page's snapshot and
its live updates agree.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from footfall.schemas.events import STORE_ID_PATTERN, VERTICALS

__all__ = [
    "NO_SALES_VERTICALS",
    "QUEUE_VERTICALS",
    "ROW_FIELDS",
    "SERIES",
    "SORT_KEYS",
    "BadInput",
    "StoreQuery",
    "alert_order",
    "bucket_point",
    "day_bounds_ms",
    "decode_hash",
    "dict_or_empty",
    "is_day",
    "is_store_id",
    "json_or_none",
    "number_or_none",
    "parse_alert",
    "parse_forecast",
    "parse_staffing",
    "staffing_point",
    "staffing_view",
    "store_row",
    "text_or_none",
    "valid_store_id",
    "zone_or",
]

_STORE_ID = re.compile(STORE_ID_PATTERN)
#: Free text of the table filter: what store ids, regions and verticals are commonly made of.
_QUERY_TEXT = re.compile(r"[A-Za-z0-9 _.:-]{1,64}")
#: A region name as a filter: any printable text, short.
_REGION = re.compile(r"[^\x00-\x1f\x7f<>\"'`\\]{1,100}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SEVERITIES = ("critical", "warning", "info")
_ALERT_STATES = ("opened", "updated", "resolved")
#: Forecast series a store's page draws.
SERIES = ("arrivals", "transactions", "tickets_issued")

#: Columns of the overview table the rows can be sorted by.
SORT_KEYS = (
    "store_id", "region", "vertical", "arrivals_15m", "occupancy", "today_visitors", "last_week_visitors",
    "vs_last_week", "conversion_rate", "waiting_now", "est_wait_s", "service_level_pct", "alerts_open", "as_of_ms",
)

#: Live-record fields kept as text in the Redis hash (every other field is JSON).
_TEXT_FIELDS = frozenset({"type", "store_id", "region", "vertical", "tz", "day", "bucket_start", "status",
                          "last_event_id", "level", "key"})
#: Live-record fields an overview row is made from.
ROW_FIELDS = ("store_id", "region", "vertical", "tz", "day", "as_of_ms", "emitted_at_ms", "windows",
              "occupancy", "today", "same_day_last_week", "queue")

#: Most points of a forecast the dashboard shows.
_MAX_POINTS = 1000
#: Verticals with a ticket queue: their stores' tiles are the queue's.
QUEUE_VERTICALS = frozenset({"bank", "telecom"})
#: Verticals without tills: no transactions, so no conversion rate to show (a bank's would read 0 %).
NO_SALES_VERTICALS = frozenset({"bank"})


class BadInput(ValueError):
    """A request parameter that does not pass its pattern; the message is short and never echoes it."""


# -- validation -------------------------------------------------------------------------------------


def is_store_id(value: Any) -> TypeGuard[str]:
    """Whether `value` is a store id (`[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}`).

    Examples
    --------
    >>> is_store_id("retail-001"), is_store_id("<b>"), is_store_id(None)
    (True, False, False)

    """
    return isinstance(value, str) and _STORE_ID.fullmatch(value) is not None


def is_day(value: Any) -> TypeGuard[str]:
    """Whether `value` reads as a day, `YYYY-MM-DD`."""
    return isinstance(value, str) and _DAY.fullmatch(value) is not None


def valid_store_id(raw: str | None) -> str:
    """Return `raw` if it is a store id (`[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}`), else raise `BadInput`.

    Examples
    --------
    >>> valid_store_id("bank-002")
    'bank-002'
    >>> try:
    ...     valid_store_id("<script>")
    ... except BadInput as exc:
    ...     print(exc)
    invalid store id

    """
    if raw is None or not is_store_id(raw):
        raise BadInput("invalid store id")
    return raw


@dataclass(frozen=True)
class StoreQuery:
    """How the overview table is sorted and filtered, as checked from a URL's query.

    Parameters
    ----------
    sort
        One of `SORT_KEYS`.
    order
        `asc` or `desc`.
    q
        Text a row's store id, region or vertical must contain (case-insensitive).
    region
        Exact region.
    vertical
        `retail`, `bank` or `telecom`.
    alerts
        Only stores with open alerts.

    Examples
    --------
    >>> query = StoreQuery.from_query({"sort": "occupancy", "order": "desc", "vertical": "bank"})
    >>> rows = [{"store_id": "bank-1", "vertical": "bank", "occupancy": 3},
    ...         {"store_id": "bank-2", "vertical": "bank", "occupancy": 9},
    ...         {"store_id": "retail-1", "vertical": "retail", "occupancy": 50}]
    >>> [r["store_id"] for r in query.apply(rows)]
    ['bank-2', 'bank-1']
    >>> try:
    ...     StoreQuery.from_query({"sort": "__proto__"})
    ... except BadInput as exc:
    ...     print(exc)
    invalid sort key

    """

    sort: str = "store_id"
    order: str = "asc"
    q: str = ""
    region: str = ""
    vertical: str = ""
    alerts: bool = False

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> StoreQuery:
        """Check each known parameter (unknown ones are ignored); raise `BadInput` naming the parameter."""
        sort = query.get("sort") or "store_id"
        if sort not in SORT_KEYS:
            raise BadInput("invalid sort key")
        order = query.get("order") or "asc"
        if order not in ("asc", "desc"):
            raise BadInput("invalid order: use asc or desc")
        q = query.get("q") or ""
        if q and _QUERY_TEXT.fullmatch(q) is None:
            raise BadInput("invalid filter text: letters, digits, space and _ . : - only, at most 64")
        region = query.get("region") or ""
        if region and _REGION.fullmatch(region) is None:
            raise BadInput("invalid region")
        vertical = query.get("vertical") or ""
        if vertical and vertical not in VERTICALS:
            raise BadInput("invalid vertical")
        alerts = query.get("alerts") or ""
        if alerts not in ("", "0", "1"):
            raise BadInput("invalid alerts flag: use 0 or 1")
        return cls(sort, order, q, region, vertical, alerts == "1")

    def apply(self, rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The rows that pass the filters, sorted (rows without a value come last either way)."""
        needle = self.q.lower()
        kept = [
            r for r in rows
            if (not needle or any(needle in str(r.get(k) or "").lower() for k in ("store_id", "region", "vertical")))
            and (not self.region or r.get("region") == self.region)
            and (not self.vertical or r.get("vertical") == self.vertical)
            and (not self.alerts or (r.get("alerts_open") or 0) > 0)
        ]
        present = [r for r in kept if r.get(self.sort) is not None]
        absent = [r for r in kept if r.get(self.sort) is None]
        present.sort(key=lambda r: r["store_id"])
        present.sort(key=lambda r: _sort_value(r[self.sort]), reverse=self.order == "desc")
        absent.sort(key=lambda r: r["store_id"])
        return present + absent


def _sort_value(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value).lower())


# -- reading what the worker wrote ---------------------------------------------------------------------


def json_or_none(raw: bytes | str | None) -> Any:
    """The value `raw` holds as JSON; None when it is missing or not JSON."""
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def decode_hash(raw: Mapping[bytes | str, bytes | str | None]) -> dict[str, Any]:
    """A record from its Redis hash: text fields as they are, every other field decoded from JSON.

    Examples
    --------
    >>> decode_hash({b"store_id": b"123", b"region": b"null", b"as_of_ms": b"1700", b"windows": b"{}"})
    {'store_id': '123', 'region': 'null', 'as_of_ms': 1700, 'windows': {}}

    """
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else key
        if value is None:
            continue
        if name in _TEXT_FIELDS:
            out[name] = value.decode(errors="replace") if isinstance(value, bytes) else value
        else:
            out[name] = json_or_none(value)
    return out


def number_or_none(value: Any) -> float | int | None:
    """`value` if it is a finite int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def dict_or_empty(value: Any) -> dict[str, Any]:
    """`value` if it is a dict, else an empty one."""
    return value if isinstance(value, dict) else {}


def text_or_none(value: Any, limit: int = 100) -> str | None:
    """`value` cut to `limit` characters if it is a string, else None."""
    return value[:limit] if isinstance(value, str) else None


def store_row(live: Mapping[str, Any]) -> dict[str, Any]:
    """One store now, from its live record: what the overview row and the store's tiles show.

    Examples
    --------
    >>> row = store_row({"store_id": "bank-002", "vertical": "bank", "windows": {"15m": {"arrivals": 19}},
    ...                  "occupancy": {"occupancy": 23}, "today": {"visitors": 412, "conversion_rate": None},
    ...                  "same_day_last_week": {"visitors": 400},
    ...                  "queue": {"total": {"waiting_now": 12, "est_wait_s": 420.0, "service_level_pct": 81.2}}})
    >>> row["arrivals_15m"], row["occupancy"], row["today_visitors"], row["vs_last_week"], row["waiting_now"]
    (19, 23, 412, 1.03, 12)

    """
    windows = dict_or_empty(live.get("windows"))
    occupancy = dict_or_empty(live.get("occupancy"))
    today = dict_or_empty(live.get("today"))
    last_week = dict_or_empty(live.get("same_day_last_week"))
    queue = live.get("queue")
    total = dict_or_empty(dict_or_empty(queue).get("total"))
    today_visitors = number_or_none(today.get("visitors"))
    last_week_visitors = number_or_none(last_week.get("visitors"))
    vertical = text_or_none(live.get("vertical"))
    sells = vertical not in NO_SALES_VERTICALS
    return {
        "store_id": live.get("store_id"),
        "region": text_or_none(live.get("region")),
        "vertical": vertical,
        "tz": text_or_none(live.get("tz")),
        "day": text_or_none(live.get("day"), 10),
        "as_of_ms": number_or_none(live.get("as_of_ms")),
        "emitted_at_ms": number_or_none(live.get("emitted_at_ms")),
        "arrivals_5m": number_or_none(dict_or_empty(windows.get("5m")).get("arrivals")),
        "arrivals_15m": number_or_none(dict_or_empty(windows.get("15m")).get("arrivals")),
        "arrivals_60m": number_or_none(dict_or_empty(windows.get("60m")).get("arrivals")),
        "occupancy": number_or_none(occupancy.get("occupancy")),
        "drift": number_or_none(occupancy.get("drift")),
        "today_visitors": today_visitors,
        "today_transactions": number_or_none(today.get("transactions")) if sells else None,
        "today_sales": number_or_none(today.get("sales")) if sells else None,
        "last_week_visitors": last_week_visitors,
        "vs_last_week": (round(today_visitors / last_week_visitors, 4)
                         if today_visitors is not None and last_week_visitors else None),
        "conversion_rate": number_or_none(today.get("conversion_rate")) if sells else None,
        "has_queue": isinstance(queue, dict) or vertical in QUEUE_VERTICALS,
        "waiting_now": number_or_none(total.get("waiting_now")),
        "in_service_now": number_or_none(total.get("in_service_now")),
        "counters_active": number_or_none(total.get("counters_active")),
        "est_wait_s": number_or_none(total.get("est_wait_s")),
        "service_level_pct": number_or_none(total.get("service_level_pct")),
        "wait_p90_s": number_or_none(total.get("wait_p90_s")),
        "est_wait_checked": number_or_none(total.get("est_wait_checked")),
        "est_wait_mae_s": number_or_none(total.get("est_wait_mae_s")),
    }


def bucket_point(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the chart needs of a bucket record: start, arrivals, status, last week's arrivals."""
    start = number_or_none(record.get("bucket_start_ms"))
    if start is None:
        return None
    compare = dict_or_empty(dict_or_empty(record.get("compare")).get("arrivals"))
    return {
        "start_ms": int(start),
        "day": text_or_none(record.get("day"), 10),
        "arrivals": number_or_none(record.get("arrivals")),
        "status": "closed" if record.get("status") == "closed" else "open",
        "last_week": number_or_none(compare.get("last_week")),
    }


def parse_forecast(obj: Any) -> dict[str, Any] | None:
    """A forecast record reduced to what the chart draws, or None when it has no usable points."""
    if not isinstance(obj, dict) or not isinstance(obj.get("points"), list):
        return None
    points = []
    for p in obj["points"][:_MAX_POINTS]:
        if not isinstance(p, dict):
            continue
        target, value = number_or_none(p.get("target_ms")), number_or_none(p.get("forecast"))
        if target is None or value is None:
            continue
        points.append({"target_ms": int(target), "h": number_or_none(p.get("h")), "forecast": value,
                       **{k: number_or_none(p.get(k)) for k in ("lo80", "hi80", "lo95", "hi95")}})
    if not points:
        return None
    points.sort(key=lambda p: p["target_ms"])
    return {
        "store_id": text_or_none(obj.get("store_id"), 64),
        "series": text_or_none(obj.get("series"), 40) or "arrivals",
        "made_at_ms": number_or_none(obj.get("made_at_ms")),
        "bucket_ms": number_or_none(obj.get("bucket_ms")),
        "model": text_or_none(obj.get("model"), 80),
        "cold": bool(obj.get("cold")),
        "points": points,
    }


def _staffed(point: Mapping[str, Any]) -> int | float | None:
    """The staff a staffing point recommends: associates on a shop floor when given, else counters (agents)."""
    associates = number_or_none(point.get("associates"))
    return associates if associates is not None else number_or_none(point.get("agents"))


def staffing_point(obj: Any) -> dict[str, Any] | None:
    """One staffing record as a point of the day's chart: when it was made, the staff it recommends for the
    next interval (its first point) and the counters active then; None without a time or a recommendation.

    Examples
    --------
    >>> staffing_point({"made_at_ms": 900_000, "counters_active": 3,
    ...                 "points": [{"target_ms": 1_800_000, "h": 1, "agents": 4}, {"h": 2, "agents": 5}]})
    {'made_at_ms': 900000, 'recommended': 4, 'active': 3}

    """
    if not isinstance(obj, dict) or not isinstance(obj.get("points"), list) or not obj["points"]:
        return None
    made_at = number_or_none(obj.get("made_at_ms"))
    first = obj["points"][0]
    recommended = _staffed(first) if isinstance(first, dict) else None
    if made_at is None or recommended is None:
        return None
    return {"made_at_ms": int(made_at), "recommended": recommended,
            "active": number_or_none(obj.get("counters_active"))}


def parse_staffing(obj: Any) -> dict[str, Any] | None:
    """A staffing record reduced to what the store's staffing panel shows, or None when it has no usable points.

    `unit` is `associates` for a shop floor's record (model `ratio`, or points giving `associates`), else
    `counters`; each point's `recommended` is its associates when given, else its agents. `advice` is the
    record's line, None when the counters active meet the target; `now` is the record as a chart point.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("points"), list):
        return None
    points = []
    associates = False
    for p in obj["points"][:_MAX_POINTS]:
        if not isinstance(p, dict):
            continue
        target, recommended = number_or_none(p.get("target_ms")), _staffed(p)
        if target is None or recommended is None:
            continue
        associates = associates or number_or_none(p.get("associates")) is not None
        points.append({"target_ms": int(target), "h": number_or_none(p.get("h")), "recommended": recommended,
                       **{k: number_or_none(p.get(k)) for k in ("arrivals", "scheduled", "service_level", "asa_s",
                                                                "abandon", "sl_at_active", "abandon_at_active")}})
    if not points:
        return None
    points.sort(key=lambda p: p["target_ms"])
    model = text_or_none(obj.get("model"), 40)
    return {
        "store_id": text_or_none(obj.get("store_id"), 64),
        "made_at_ms": number_or_none(obj.get("made_at_ms")),
        "bucket_ms": number_or_none(obj.get("bucket_ms")),
        "model": model,
        "unit": "associates" if associates or model == "ratio" else "counters",
        **{k: number_or_none(obj.get(k)) for k in ("answer_s", "target_sl", "shrinkage", "aht_s", "service_cv",
                                                   "patience_s", "counters_active")},
        "quantile": text_or_none(obj.get("quantile"), 20),
        "advice": text_or_none(obj.get("advice"), 300),
        "now": staffing_point(obj),
        "points": points,
    }


def staffing_view(latest: Any, history: Iterable[Any], day_start_ms: int, day_end_ms: int,
                  ) -> dict[str, Any] | None:
    """A store's staffing panel: its latest record (`parse_staffing`) and the day's chart points.

    `history` are staffing records in the order written (oldest first); `today` holds one point
    (`staffing_point`) per made_at_ms within [day_start_ms, day_end_ms), oldest first (of two records made
    at the same bucket, the later written wins). None when the store has no usable staffing record.

    Examples
    --------
    >>> def record(made, agents, active):
    ...     return {"made_at_ms": made, "counters_active": active, "model": "erlang_c", "advice": None,
    ...             "points": [{"target_ms": made + 900_000, "h": 1, "agents": agents}]}
    >>> view = staffing_view(record(1_800_000, 3, 3), [record(-900_000, 9, 9), record(900_000, 4, 2),
    ...                                               record(1_800_000, 3, 3)], 0, 86_400_000)
    >>> view["today"]
    [{'made_at_ms': 900000, 'recommended': 4, 'active': 2}, {'made_at_ms': 1800000, 'recommended': 3, 'active': 3}]
    >>> view["latest"]["unit"], view["latest"]["advice"]
    ('counters', None)

    """
    parsed = parse_staffing(latest)
    today: dict[int, dict[str, Any]] = {}
    for obj in history:
        point = staffing_point(obj)
        if point is not None and day_start_ms <= point["made_at_ms"] < day_end_ms:
            today[point["made_at_ms"]] = point
    if parsed is None and not today:
        return None
    return {"latest": parsed, "today": [today[k] for k in sorted(today)]}


def parse_alert(obj: Any) -> dict[str, Any] | None:
    """An alert record with its fields checked (unknown severities read as `info`), or None.

    Examples
    --------
    >>> alert = parse_alert({"alert_id": "a1", "store_id": "retail-001", "kind": "surge",
    ...                      "severity": "warning", "state": "opened", "observed": 312,
    ...                      "explanation": "arrivals 312 in 14:00-14:30, expected 120-180"})
    >>> alert["severity"], alert["observed"], alert["explanation"]
    ('warning', 312, 'arrivals 312 in 14:00-14:30, expected 120-180')
    >>> parse_alert({"alert_id": "a2", "store_id": "<b>"}) is None
    True

    """
    if not isinstance(obj, dict):
        return None
    alert_id, store_id = obj.get("alert_id"), obj.get("store_id")
    if not isinstance(alert_id, str) or not 0 < len(alert_id) <= 200:
        return None
    if not is_store_id(store_id):
        return None
    severity = obj.get("severity") if obj.get("severity") in _SEVERITIES else "info"
    state = obj.get("state") if obj.get("state") in _ALERT_STATES else "opened"
    return {
        "alert_id": alert_id,
        "store_id": store_id,
        "kind": text_or_none(obj.get("kind"), 64) or "alert",
        "severity": severity,
        "state": state,
        "explanation": text_or_none(obj.get("explanation"), 500) or "",
        **{k: number_or_none(obj.get(k)) for k in ("started_ms", "updated_ms", "bucket_start_ms", "bucket_end_ms",
                                                   "observed", "expected", "expected_lo", "expected_hi", "score")},
    }


def alert_order(alert: Mapping[str, Any]) -> tuple[int, float]:
    """Sort key of parsed alerts: most severe first, then newest first."""
    return (_SEVERITIES.index(alert["severity"]), -(alert.get("updated_ms") or alert.get("started_ms") or 0))


def day_bounds_ms(day: str, tz: str) -> tuple[int, int]:
    """Start and end (UTC ms) of a local day: 23 or 25 hours long when the clocks change.

    Examples
    --------
    >>> start, end = day_bounds_ms("2026-03-29", "Europe/London")
    >>> (end - start) / 3_600_000
    23.0

    """
    zone = zoneinfo.ZoneInfo(tz)
    first = dt.date.fromisoformat(day)
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(first + dt.timedelta(days=1), dt.time(), zone)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def zone_or(tz: Any, default: str) -> str:
    """`tz` if it names a known time zone, else `default`."""
    if isinstance(tz, str):
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            return default
        return tz
    return default

