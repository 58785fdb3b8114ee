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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from footfall.schemas.events import STORE_ID_PATTERN, VERTICALS

__all__ = [
    "INSIGHTS",
    "NO_SALES_VERTICALS",
    "QUALITY",
    "QUEUE_VERTICALS",
    "ROW_FIELDS",
    "SEGMENTS",
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
    "parse_heatmap",
    "parse_insights",
    "parse_quality",
    "parse_segments",
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

#: Record kinds of newer stages the store page shows (keys `RedisKeys.store_record(store, kind)`, channel
#: `RedisKeys.record_channel(kind, store)`: the sink's generic placement).
INSIGHTS = "insights"
SEGMENTS = "segments"
QUALITY = "quality"
PEERS = "peers"
#: A series name as a key of an insights record: a bare identifier (it becomes a label and a lookup key).
_SERIES_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
#: Most series of an insights record kept (the stage gives two or three).
_MAX_SERIES = 8
#: The heatmap's shape: 7 weekdays (Monday first) of 24 local hours.
_WEEKDAYS, _HOURS = 7, 24
#: Kinds of segments, in the order the page lists them.
_SEGMENT_KINDS = ("till", "visit")
#: Most segments per kind kept (the stage's k is a handful), and most kinds of a record looked at.
_MAX_SEGMENTS = 50
_MAX_SEGMENT_SETS = 8
#: A bucket's quality, as the quality stage grades it (`schemas.records.QualityRecord`).
_QUALITIES = ("ok", "partial", "missing", "no_sensors")
#: Most sensors of a quality record kept (the stage follows at most 64 per store), and a sensor id's longest.
_MAX_SENSORS = 64
_MAX_SENSOR_ID = 64


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


# -- insights and segments: records of newer stages -----------------------------------------------------

#: Fields of one series' day against last week and last year (`schemas.records.DayVersus`).
_DAY_FIELDS = ("total", "last_week", "last_week_change", "last_week_change_pct", "last_year", "last_year_change",
               "last_year_change_pct")
#: Numeric fields of one series' week against the week before (`schemas.records.WeekVersus`).
_WEEK_FIELDS = ("total", "last_total", "change", "change_pct", "days", "last_days", "mean", "sd", "last_mean",
                "last_sd", "t", "df")
#: Counts of one kind of segments (`schemas.records.SegmentSet`).
_SET_COUNTS = ("k", "events_learned", "bucket_events", "day_events")


#: Largest count kept: a whole number a browser holds exactly (a bigger float made an int would not serialise).
_MAX_COUNT = 2**53


def _count_or_none(value: Any) -> int | None:
    """`value` as an int if it is a whole number in [0, 2**53] (not a bool), else None.

    Examples
    --------
    >>> _count_or_none(4), _count_or_none(4.0), _count_or_none(4.5), _count_or_none(1e30), _count_or_none(True)
    (4, 4, None, None, None)

    """
    n = number_or_none(value)
    return int(n) if n is not None and 0 <= n <= _MAX_COUNT and n == int(n) else None


def _within_or_none(value: Any, lo: float, hi: float) -> float | int | None:
    """`value` if it is a finite number within [lo, hi] (a share, a p-value, a correlation), else None."""
    n = number_or_none(value)
    return n if n is not None and lo <= n <= hi else None


def _series_names(value: Any) -> list[str]:
    """The series names of a list that are bare identifiers, in order, each once, at most `_MAX_SERIES`."""
    if not isinstance(value, list):
        return []
    names: list[str] = []
    for name in value:
        if isinstance(name, str) and _SERIES_NAME.fullmatch(name) and name not in names:
            names.append(name)
    return names[:_MAX_SERIES]


def _grid(value: Any, cell: Callable[[Any], Any]) -> list[list[Any]] | None:
    """A weekday × hour grid (7 rows of 24), each cell checked by `cell`; None when it is not that shape."""
    if not isinstance(value, list) or len(value) != _WEEKDAYS:
        return None
    if not all(isinstance(row, list) and len(row) == _HOURS for row in value):
        return None
    return [[cell(v) for v in row] for row in value]


def parse_heatmap(obj: Any) -> dict[str, Any] | None:
    """One series' weekday × hour heatmap, or None when its `mean` is not 7 rows (Monday first) of 24 hours.

    A cell that is not a finite number reads None (drawn blank); `weeks` (the days each mean is over) is
    all None when it is missing or not that shape, since the means alone are worth showing.

    Examples
    --------
    >>> blank = [None] * 24
    >>> monday = [*blank[:10], 42.0, "x", *blank[12:]]
    >>> cells = parse_heatmap({"mean": [monday] + [blank] * 6, "weeks": "?"})
    >>> cells["mean"][0][10], cells["mean"][0][11], cells["weeks"][0][10]
    (42.0, None, None)
    >>> parse_heatmap({"mean": [blank] * 6}) is None, parse_heatmap(None) is None
    (True, True)

    """
    obj = dict_or_empty(obj)
    mean = _grid(obj.get("mean"), number_or_none)
    if mean is None:
        return None
    weeks = _grid(obj.get("weeks"), _count_or_none) or [[None] * _HOURS for _ in range(_WEEKDAYS)]
    return {"mean": mean, "weeks": weeks}


def _week_versus(obj: Mapping[str, Any]) -> dict[str, Any]:
    """One series' week against the week before: numbers (else None), the p-value and whether it is significant."""
    significant = obj.get("significant")
    return {**{k: number_or_none(obj.get(k)) for k in _WEEK_FIELDS}, "p": _within_or_none(obj.get("p"), 0, 1),
            "significant": significant if isinstance(significant, bool) else None}


def _week_summary(obj: Any, series: list[str]) -> dict[str, Any] | None:
    """A Sunday's week summary: its bounds, each of `series` against the week before, and the correlation.

    None when there is none (any other day) or its bounds are not days.
    """
    if not isinstance(obj, dict) or not is_day(obj.get("week_start")) or not is_day(obj.get("week_end")):
        return None
    per_series, correlation = dict_or_empty(obj.get("series")), dict_or_empty(obj.get("correlation"))
    x, y = correlation.get("x"), correlation.get("y")
    return {
        "week_start": obj["week_start"],
        "week_end": obj["week_end"],
        "series": {name: _week_versus(per_series[name]) for name in series if isinstance(per_series.get(name), dict)},
        "correlation": {"x": x if _series_names([x]) else None, "y": y if _series_names([y]) else None,
                        "r": _within_or_none(correlation.get("r"), -1, 1),
                        "days": _count_or_none(correlation.get("days"))},
    }


def parse_insights(obj: Any) -> dict[str, Any] | None:
    """An insights record reduced to what the store's insights panel shows, or None when it has nothing to show.

    Kept: the local day (required), the series (bare names, in the record's order; its heatmap's and
    totals' keys when it lists none), per series the heatmap (`parse_heatmap`) and the day against last
    week and last year (numbers, else None), and the week's summary on a Sunday (`week`, else None).
    A series with neither a heatmap nor the day's totals is dropped.

    Examples
    --------
    >>> blank = [None] * 24
    >>> record = {"day": "2026-11-29", "series": ["arrivals", "<b>"], "made_at_ms": 1,
    ...           "heatmap": {"arrivals": {"mean": [blank] * 7, "weeks": [[0] * 24] * 7}},
    ...           "today": {"arrivals": {"total": 412, "last_week": 400, "last_week_change_pct": 3.0}}, "week": None}
    >>> view = parse_insights(record)
    >>> view["series"], view["today"]["arrivals"]["last_week_change_pct"], view["today"]["arrivals"]["last_year"]
    (['arrivals'], 3.0, None)
    >>> parse_insights({**record, "day": "yesterday"}) is None, parse_insights({"day": "2026-11-29"}) is None
    (True, True)

    """
    if not isinstance(obj, dict) or not is_day(obj.get("day")):
        return None
    heatmaps, totals = dict_or_empty(obj.get("heatmap")), dict_or_empty(obj.get("today"))
    series = _series_names(obj.get("series")) or _series_names([*heatmaps, *totals])
    heatmap = {name: cells for name in series if (cells := parse_heatmap(heatmaps.get(name))) is not None}
    today = {name: {k: number_or_none(totals[name].get(k)) for k in _DAY_FIELDS}
             for name in series if isinstance(totals.get(name), dict)}
    shown = [name for name in series if name in heatmap or name in today]
    if not shown:
        return None
    return {
        "store_id": text_or_none(obj.get("store_id"), 64),
        "tz": text_or_none(obj.get("tz"), 64),
        "day": obj["day"],
        "heatmap_from": obj["heatmap_from"] if is_day(obj.get("heatmap_from")) else None,
        "made_at_ms": number_or_none(obj.get("made_at_ms")),
        "emitted_at_ms": number_or_none(obj.get("emitted_at_ms")),
        "series": shown,
        "heatmap": heatmap,
        "today": today,
        "week": _week_summary(obj.get("week"), shown),
    }


def _segment(obj: Any) -> dict[str, Any] | None:
    """One segment: its id, description, counts and shares; None without a whole id or a description."""
    if not isinstance(obj, dict):
        return None
    segment_id, description = _count_or_none(obj.get("segment_id")), text_or_none(obj.get("description"), 200)
    if segment_id is None or not description:
        return None
    return {"segment_id": segment_id, "description": description,
            "bucket_count": _count_or_none(obj.get("bucket_count")), "day_count": _count_or_none(obj.get("day_count")),
            "bucket_share": _within_or_none(obj.get("bucket_share"), 0, 1),
            "day_share": _within_or_none(obj.get("day_share"), 0, 1)}


def _segment_set(obj: Any) -> dict[str, Any] | None:
    """One kind's segments (`till` or `visit`), by segment id; None for another kind or without a usable one."""
    if not isinstance(obj, dict) or obj.get("kind") not in _SEGMENT_KINDS or not isinstance(obj.get("segments"), list):
        return None
    segments = [s for s in map(_segment, obj["segments"][:_MAX_SEGMENTS]) if s is not None]
    if not segments:
        return None
    segments.sort(key=lambda s: s["segment_id"])
    return {"kind": obj["kind"], **{k: _count_or_none(obj.get(k)) for k in _SET_COUNTS}, "segments": segments}


def parse_segments(obj: Any) -> dict[str, Any] | None:
    """A segments record reduced to what the store's segments panel shows, or None when it has no usable kind.

    `kinds`: till then visit, each at most once (the first given), with its segments by id; a segment
    needs a whole id and a description, and a share outside [0, 1] reads None.

    Examples
    --------
    >>> def seg(i, text, day, bucket):
    ...     return {"segment_id": i, "description": text, "day_share": day, "bucket_share": bucket}
    >>> view = parse_segments({"day": "2026-12-04", "made_at_ms": 9, "kinds": [
    ...     {"kind": "till", "segments": [seg(1, "basket, evening", 0.25, 2.0), seg(0, "single item", 0.75, 1.0)]},
    ...     {"kind": "other", "segments": [seg(0, "?", 1, 1)]}]})
    >>> [(s["description"], s["day_share"], s["bucket_share"]) for s in view["kinds"][0]["segments"]]
    [('single item', 0.75, 1.0), ('basket, evening', 0.25, None)]
    >>> len(view["kinds"]), parse_segments({"kinds": [{"kind": "till", "segments": [seg(0, "", 1, 1)]}]})
    (1, None)

    """
    if not isinstance(obj, dict) or not isinstance(obj.get("kinds"), list):
        return None
    kinds: dict[str, dict[str, Any]] = {}
    for item in obj["kinds"][:_MAX_SEGMENT_SETS]:
        parsed = _segment_set(item)
        if parsed is not None:
            kinds.setdefault(parsed["kind"], parsed)
    if not kinds:
        return None
    return {
        "store_id": text_or_none(obj.get("store_id"), 64),
        "day": obj["day"] if is_day(obj.get("day")) else None,
        "made_at_ms": number_or_none(obj.get("made_at_ms")),
        "bucket_ms": number_or_none(obj.get("bucket_ms")),
        "emitted_at_ms": number_or_none(obj.get("emitted_at_ms")),
        "kinds": [kinds[k] for k in _SEGMENT_KINDS if k in kinds],
    }


# -- data quality: the quality stage's record per closed bucket -----------------------------------------------


def _sensor_id(value: Any) -> str | None:
    """A sensor id to show: a non-empty string (any text: the page sets it as text), cut to 64 characters."""
    text = text_or_none(value, _MAX_SENSOR_ID)
    return text if text and text.strip() else None


def _whole_or_none(value: Any) -> int | None:
    """`value` as an int if it is a whole number within ±2**53 (not a bool), else None (a door imbalance)."""
    n = number_or_none(value)
    return int(n) if n is not None and -_MAX_COUNT <= n <= _MAX_COUNT and n == int(n) else None


def _quality_sensor(obj: Any) -> dict[str, Any] | None:
    """One known sensor's coverage of the bucket; None without a sensor id."""
    if not isinstance(obj, dict) or (sensor_id := _sensor_id(obj.get("sensor_id"))) is None:
        return None
    reported = obj.get("reported")
    return {"sensor_id": sensor_id, "coverage": _within_or_none(obj.get("coverage"), 0, 1),
            "reported": reported if isinstance(reported, bool) else None,
            "last_seen_ms": _count_or_none(obj.get("last_seen_ms"))}


def _sensor_ids(value: Any) -> list[str]:
    """The sensor ids of a list, in order, each once, at most `_MAX_SENSORS`; what is not one is left out."""
    out: list[str] = []
    for item in value[:_MAX_SENSORS] if isinstance(value, list) else []:
        sensor_id = _sensor_id(item)
        if sensor_id is not None and sensor_id not in out:
            out.append(sensor_id)
    return out


def _uptime(obj: Any) -> dict[str, Any] | None:
    """A local day's uptime per sensor (by id; a share outside [0, 1] reads None); None without a day or sensors."""
    if not isinstance(obj, dict) or not is_day(obj.get("day")) or not isinstance(obj.get("sensors"), dict):
        return None
    shares: dict[str, Any] = {}
    for key, share in list(obj["sensors"].items())[:_MAX_SENSORS]:
        sensor_id = _sensor_id(key)
        if sensor_id is not None:
            shares.setdefault(sensor_id, _within_or_none(share, 0, 1))
    if not shares:
        return None
    hours = _within_or_none(obj.get("hours"), 0, 48)
    return {"day": obj["day"], "hours": hours,
            "sensors": [{"sensor_id": k, "uptime": shares[k]} for k in sorted(shares)]}


def parse_quality(obj: Any) -> dict[str, Any] | None:
    """A quality record reduced to what the store page's data-quality badge shows, or None when it is not one.

    Required: the bucket's start (a whole number of ms) and its quality (`ok`, `partial`, `missing`,
    `no_sensors`). Kept besides: the store's coverage (0-1, else None), the known sensors by id with
    their coverage, the silent ones (ids: non-empty strings, at most 64 of each), the door counts and
    imbalance, and the day's uptime per sensor when the record ends a local day (`uptime`, else None).

    Examples
    --------
    >>> record = {"type": "quality", "store_id": "retail-001", "tz": "UTC", "bucket_start_ms": 900_000,
    ...           "bucket_ms": 900_000, "quality": "partial", "coverage": 0.5, "sensors_known": 2,
    ...           "sensors": [{"sensor_id": "front", "coverage": 1.0, "reported": True, "last_seen_ms": 1},
    ...                       {"sensor_id": "c-side", "coverage": 0.0, "reported": False, "last_seen_ms": 0}],
    ...           "silent_sensors": ["c-side", 7], "door_in": 10, "door_out": 12, "imbalance": -2, "uptime": None}
    >>> view = parse_quality(record)
    >>> view["quality"], view["coverage"], view["silent_sensors"], [s["sensor_id"] for s in view["sensors"]]
    ('partial', 0.5, ['c-side'], ['c-side', 'front'])
    >>> view["imbalance"], view["uptime"]
    (-2, None)
    >>> parse_quality({**record, "quality": "fine"}), parse_quality({**record, "bucket_start_ms": "0"})
    (None, None)

    """
    if not isinstance(obj, dict) or obj.get("quality") not in _QUALITIES:
        return None
    bucket_start_ms = _count_or_none(obj.get("bucket_start_ms"))
    if bucket_start_ms is None:
        return None
    sensors: dict[str, dict[str, Any]] = {}
    for item in obj["sensors"][:_MAX_SENSORS] if isinstance(obj.get("sensors"), list) else []:
        sensor = _quality_sensor(item)
        if sensor is not None:
            sensors.setdefault(sensor["sensor_id"], sensor)
    thresholds = dict_or_empty(obj.get("thresholds"))
    return {
        "store_id": text_or_none(obj.get("store_id"), 64),
        "tz": text_or_none(obj.get("tz"), 64),
        "bucket_start_ms": bucket_start_ms,
        "bucket_ms": _count_or_none(obj.get("bucket_ms")) or None,
        "quality": obj["quality"],
        "coverage": _within_or_none(obj.get("coverage"), 0, 1),
        "sensors_known": _count_or_none(obj.get("sensors_known")),
        "sensors": [sensors[k] for k in sorted(sensors)],
        "silent_sensors": _sensor_ids(obj.get("silent_sensors")),
        "sensors_dropped": _count_or_none(obj.get("sensors_dropped")),
        "door_in": _count_or_none(obj.get("door_in")),
        "door_out": _count_or_none(obj.get("door_out")),
        "imbalance": _whole_or_none(obj.get("imbalance")),
        "imbalance_ratio": number_or_none(obj.get("imbalance_ratio")),
        "uptime": _uptime(obj.get("uptime")),
        "ok_coverage": _within_or_none(thresholds.get("ok_coverage"), 0, 1),
        "emitted_at_ms": _count_or_none(obj.get("emitted_at_ms")),
    }


#: Peers named at most (the record gives up to 10).
_MAX_PEERS = 10


def parse_peers(obj: Any) -> dict[str, Any] | None:
    """A peers record (`footfall peers`) reduced to what the store page's comparable-stores line shows, or None.

    Required: a local day and a whole group id. The group's description is cut to 200 characters, the
    peers are store ids (at most 10), and a count or a percentage that is not one reads None.

    Examples
    --------
    >>> record = {"type": "peers", "store_id": "retail-001", "day": "2026-01-05", "grouped_on": "2026-01-05",
    ...           "group_id": 2, "group_size": 4, "group_description": "busiest 12:00-14:00 weekdays",
    ...           "peers": ["retail-004", "<b>", "retail-007"], "peers_compared": 2, "arrivals": 410,
    ...           "peer_median_arrivals": 380.0, "vs_peers_pct": 7.89, "level_index": 1.02,
    ...           "peer_median_level_index": 0.97, "vs_peers_level_pct": 5.15}
    >>> view = parse_peers(record)
    >>> view["group_id"], view["peers"], view["vs_peers_pct"], view["vs_peers_level_pct"]
    (2, ['retail-004', 'retail-007'], 7.89, 5.15)
    >>> parse_peers({**record, "group_id": "2"}), parse_peers({**record, "day": "Monday"})
    (None, None)

    """
    if not isinstance(obj, dict) or not is_day(obj.get("day")):
        return None
    group_id = _count_or_none(obj.get("group_id"))
    if group_id is None:
        return None
    peers = obj.get("peers") if isinstance(obj.get("peers"), list) else []
    return {
        "store_id": text_or_none(obj.get("store_id"), 64),
        "day": obj["day"],
        "grouped_on": obj["grouped_on"] if is_day(obj.get("grouped_on")) else None,
        "group_id": group_id,
        "group_size": _count_or_none(obj.get("group_size")),
        "group_description": text_or_none(obj.get("group_description"), 200),
        "peers": [p for p in peers if is_store_id(p)][:_MAX_PEERS],
        "peers_compared": _count_or_none(obj.get("peers_compared")),
        "arrivals": _count_or_none(obj.get("arrivals")),
        "peer_median_arrivals": _within_or_none(obj.get("peer_median_arrivals"), 0, _MAX_COUNT),
        "vs_peers_pct": number_or_none(obj.get("vs_peers_pct")),
        "level_index": number_or_none(obj.get("level_index")),
        "peer_median_level_index": number_or_none(obj.get("peer_median_level_index")),
        "vs_peers_level_pct": number_or_none(obj.get("vs_peers_level_pct")),
        "emitted_at_ms": _count_or_none(obj.get("emitted_at_ms")),
    }


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

