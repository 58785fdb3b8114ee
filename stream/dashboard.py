"""The live dashboard: a small aiohttp app that reads Redis, and only Redis.

Pages (plain HTML, CSS and JavaScript from `dashboard_static/`, charts drawn as inline SVG):

- `/`: every store, with the region and chain roll-ups, a sortable and filterable table and the
  open alerts. Query parameters `sort`, `order`, `q`, `region`, `vertical`, `alerts` set the view.
- `/stores/<store_id>`: one store's tiles, today's arrivals per bucket with the forecast and its
  interval band, and its open alerts.

Data (JSON): `/api/overview`, `/api/stores/<store_id>`, `/api/alerts`; `/healthz`.

Live updates: `/api/events` (or `/api/events?store=<store_id>`) is a stream of server-sent
events. One `Hub` per process holds the only Redis pub/sub connection, coalesces what arrives
(the newest record per store, bucket, forecast series, alert and region) and pushes it to every
connected page at most once per `push_interval_s`, serialised once per view. A page fetches its
snapshot whenever its event stream (re)opens, and again when told `resync` (the hub lost Redis
for a while, so messages may have been missed).

Every endpoint only reads. Store ids, sort keys and filters are checked against fixed patterns
before use; a bad one is answered with a short plain-text 4xx that does not echo it. Responses
carry `X-Content-Type-Options: nosniff` and a Content-Security-Policy that allows only the app's
own scripts, styles and connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.resources
import logging
import math
import re
import time
import uuid
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from footfall.schemas.events import STORE_ID_PATTERN, VERTICALS
from footfall.stream.settings import Settings

__all__ = [
    "SORT_KEYS",
    "BadInput",
    "DashboardData",
    "Hub",
    "Listener",
    "StoreQuery",
    "create_app",
    "day_bounds_ms",
    "decode_hash",
    "parse_alert",
    "parse_forecast",
    "sse",
    "store_row",
    "valid_store_id",
]

logger = logging.getLogger(__name__)

_STORE_ID = re.compile(STORE_ID_PATTERN)
#: Free text of the table filter: what store ids, regions and verticals are commonly made of.
_QUERY_TEXT = re.compile(r"[A-Za-z0-9 _.:-]{1,64}")
#: A region name as a filter: any printable text, short.
_REGION = re.compile(r"[^\x00-\x1f\x7f<>\"'`\\]{1,100}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SEVERITIES = ("critical", "warning", "info")
_ALERT_STATES = ("opened", "updated", "resolved")
_SERIES = ("arrivals", "transactions", "tickets_issued")

#: Columns of the overview table the rows can be sorted by.
SORT_KEYS = (
    "store_id", "region", "vertical", "arrivals_15m", "occupancy", "today_visitors", "last_week_visitors",
    "vs_last_week", "conversion_rate", "waiting_now", "est_wait_s", "service_level_pct", "alerts_open", "as_of_ms",
)

#: Live-record fields kept as text in the Redis hash (every other field is JSON).
_TEXT_FIELDS = frozenset({"type", "store_id", "region", "vertical", "tz", "day", "bucket_start", "status",
                          "last_event_id", "level", "key"})
#: Live-record fields an overview row is made from.
_ROW_FIELDS = ("store_id", "region", "vertical", "tz", "day", "as_of_ms", "emitted_at_ms", "windows",
               "occupancy", "today", "same_day_last_week", "queue")

_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_STATIC_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
_MESSAGES = {400: "bad request", 403: "forbidden", 404: "not found", 405: "method not allowed",
             413: "request too large", 414: "request too large", 431: "request too large"}
_CALL_TIMEOUT_S = 10.0
#: Longest wait for a pub/sub message before the listener looks whether it should stop.
_LISTEN_TIMEOUT_S = 1.0
#: Stores read per Redis pipeline when building the overview.
_CHUNK = 500
#: Most points a forecast, and most alerts a store, the dashboard shows.
_MAX_POINTS = 1000
_MAX_ALERTS = 200


class BadInput(ValueError):
    """A request parameter that does not pass its pattern; the message is short and never echoes it."""


# -- validation -------------------------------------------------------------------------------------


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
    if raw is None or _STORE_ID.fullmatch(raw) is None:
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


def _loads(raw: bytes | str | None) -> Any:
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
            out[name] = _loads(value)
    return out


def _num(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any, limit: int = 100) -> str | None:
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
    windows = _dict(live.get("windows"))
    occupancy = _dict(live.get("occupancy"))
    today = _dict(live.get("today"))
    last_week = _dict(live.get("same_day_last_week"))
    queue = live.get("queue")
    total = _dict(_dict(queue).get("total"))
    today_visitors = _num(today.get("visitors"))
    last_week_visitors = _num(last_week.get("visitors"))
    return {
        "store_id": live.get("store_id"),
        "region": _text(live.get("region")),
        "vertical": _text(live.get("vertical")),
        "tz": _text(live.get("tz")),
        "day": _text(live.get("day"), 10),
        "as_of_ms": _num(live.get("as_of_ms")),
        "emitted_at_ms": _num(live.get("emitted_at_ms")),
        "arrivals_5m": _num(_dict(windows.get("5m")).get("arrivals")),
        "arrivals_15m": _num(_dict(windows.get("15m")).get("arrivals")),
        "arrivals_60m": _num(_dict(windows.get("60m")).get("arrivals")),
        "occupancy": _num(occupancy.get("occupancy")),
        "drift": _num(occupancy.get("drift")),
        "today_visitors": today_visitors,
        "today_transactions": _num(today.get("transactions")),
        "today_sales": _num(today.get("sales")),
        "last_week_visitors": last_week_visitors,
        "vs_last_week": (round(today_visitors / last_week_visitors, 4)
                         if today_visitors is not None and last_week_visitors else None),
        "conversion_rate": _num(today.get("conversion_rate")),
        "has_queue": isinstance(queue, dict),
        "waiting_now": _num(total.get("waiting_now")),
        "in_service_now": _num(total.get("in_service_now")),
        "counters_active": _num(total.get("counters_active")),
        "est_wait_s": _num(total.get("est_wait_s")),
        "service_level_pct": _num(total.get("service_level_pct")),
        "wait_p90_s": _num(total.get("wait_p90_s")),
    }


def bucket_point(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the chart needs of a bucket record: start, arrivals, status, last week's arrivals."""
    start = _num(record.get("bucket_start_ms"))
    if start is None:
        return None
    compare = _dict(_dict(record.get("compare")).get("arrivals"))
    return {
        "start_ms": int(start),
        "day": _text(record.get("day"), 10),
        "arrivals": _num(record.get("arrivals")),
        "status": "closed" if record.get("status") == "closed" else "open",
        "last_week": _num(compare.get("last_week")),
    }


def parse_forecast(obj: Any) -> dict[str, Any] | None:
    """A forecast record reduced to what the chart draws, or None when it has no usable points."""
    if not isinstance(obj, dict) or not isinstance(obj.get("points"), list):
        return None
    points = []
    for p in obj["points"][:_MAX_POINTS]:
        if not isinstance(p, dict):
            continue
        target, value = _num(p.get("target_ms")), _num(p.get("forecast"))
        if target is None or value is None:
            continue
        points.append({"target_ms": int(target), "h": _num(p.get("h")), "forecast": value,
                       **{k: _num(p.get(k)) for k in ("lo80", "hi80", "lo95", "hi95")}})
    if not points:
        return None
    points.sort(key=lambda p: p["target_ms"])
    return {
        "store_id": _text(obj.get("store_id"), 64),
        "series": _text(obj.get("series"), 40) or "arrivals",
        "made_at_ms": _num(obj.get("made_at_ms")),
        "bucket_ms": _num(obj.get("bucket_ms")),
        "model": _text(obj.get("model"), 80),
        "cold": bool(obj.get("cold")),
        "points": points,
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
    if not isinstance(store_id, str) or _STORE_ID.fullmatch(store_id) is None:
        return None
    severity = obj.get("severity") if obj.get("severity") in _SEVERITIES else "info"
    state = obj.get("state") if obj.get("state") in _ALERT_STATES else "opened"
    return {
        "alert_id": alert_id,
        "store_id": store_id,
        "kind": _text(obj.get("kind"), 64) or "alert",
        "severity": severity,
        "state": state,
        "explanation": _text(obj.get("explanation"), 500) or "",
        **{k: _num(obj.get(k)) for k in ("started_ms", "updated_ms", "bucket_start_ms", "bucket_end_ms",
                                         "observed", "expected", "expected_lo", "expected_hi", "score")},
    }


def _alert_order(alert: Mapping[str, Any]) -> tuple[int, float]:
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


def _zone_or(tz: Any, default: str) -> str:
    if isinstance(tz, str):
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            return default
        return tz
    return default


class DashboardData:
    """The dashboard's reads: one pipeline per view, never one request per store."""

    def __init__(self, settings: Settings, client: aioredis.Redis) -> None:
        self.settings = settings
        self.client = client

    def key(self, *parts: str) -> str:
        return self.settings.redis_key(*parts)

    async def store_ids(self) -> list[str]:
        """Every store with live state: the members of the regions' live roll-ups, else a SCAN of live keys."""
        regions = [r.decode(errors="replace") for r in await self.client.hkeys(
            self.key("rollup", "chain", "all", "live", "members"))]
        ids: set[str] = set()
        if regions:
            pipe = self.client.pipeline(transaction=False)
            for region in regions:
                pipe.hkeys(self.key("rollup", "region", region, "live", "members"))
            for members in await pipe.execute():
                ids.update(m.decode(errors="replace") for m in members)
        else:
            pattern = self.key("store", "*", "live")
            head, tail = len(self.key("store", "")), len(":live")
            async for raw in self.client.scan_iter(match=pattern, count=1000):
                ids.add(raw.decode(errors="replace")[head:-tail])
        return sorted(i for i in ids if _STORE_ID.fullmatch(i))

    async def rollups(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The regions' live roll-ups and the chain's."""
        regions = [r.decode(errors="replace") for r in await self.client.hkeys(
            self.key("rollup", "chain", "all", "live", "members"))]
        pipe = self.client.pipeline(transaction=False)
        for region in regions:
            pipe.hgetall(self.key("rollup", "region", region, "live"))
        pipe.hgetall(self.key("rollup", "chain", "all", "live"))
        *found, chain = await pipe.execute()
        out = [decode_hash(raw) for raw in found if raw]
        out.sort(key=lambda r: str(r.get("key")))
        return out, (decode_hash(chain) if chain else None)

    async def overview(self) -> dict[str, Any]:
        """Every store's row, the roll-ups and the open alerts, as of now."""
        ids = await self.store_ids()
        rows: list[dict[str, Any]] = []
        alerts: list[dict[str, Any]] = []
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            pipe = self.client.pipeline(transaction=False)
            for store_id in chunk:
                pipe.hmget(self.key("store", store_id, "live"), _ROW_FIELDS)
                pipe.hvals(self.key("store", store_id, "alerts"))
            results = await pipe.execute()
            for store_id, values, raw_alerts in zip(chunk, results[::2], results[1::2], strict=True):
                live = decode_hash(dict(zip(_ROW_FIELDS, values, strict=True)))
                if not live:
                    continue
                live["store_id"] = store_id
                row = store_row(live)
                mine = [a for a in (parse_alert(_loads(v)) for v in raw_alerts) if a and a["store_id"] == store_id]
                row["alerts_open"] = len(mine)
                row["alert_severity"] = min(mine, key=_alert_order)["severity"] if mine else None
                rows.append(row)
                alerts.extend(mine)
        regions, chain = await self.rollups()
        alerts.sort(key=_alert_order)
        return {"now_ms": int(time.time() * 1000), "prefix": self.settings.topic_prefix, "stores": rows,
                "regions": regions, "chain": chain, "alerts": alerts}

    async def alerts(self) -> list[dict[str, Any]]:
        """Open alerts of every store, most severe and newest first."""
        ids = await self.store_ids()
        pipe = self.client.pipeline(transaction=False)
        for store_id in ids:
            pipe.hvals(self.key("store", store_id, "alerts"))
        out = []
        for store_id, raw_alerts in zip(ids, await pipe.execute(), strict=True):
            out.extend(a for a in (parse_alert(_loads(v)) for v in raw_alerts) if a and a["store_id"] == store_id)
        out.sort(key=_alert_order)
        return out

    async def store(self, store_id: str) -> dict[str, Any] | None:
        """One store's page: its row (tiles), today's buckets, forecasts and open alerts; None if unknown."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.key("store", store_id, "live"))
        pipe.hgetall(self.key("store", store_id, "latest"))
        pipe.hgetall(self.key("store", store_id, "forecast"))
        pipe.hvals(self.key("store", store_id, "alerts"))
        raw_live, raw_latest, raw_forecasts, raw_alerts = await pipe.execute()
        live, latest = decode_hash(raw_live), decode_hash(raw_latest)
        if not live and not latest:
            return None
        tz = _zone_or(live.get("tz") or latest.get("tz"), self.settings.timezone)
        day = live.get("day") or latest.get("day")
        if not isinstance(day, str) or _DAY.fullmatch(day) is None:
            day = dt.datetime.now(zoneinfo.ZoneInfo(tz)).date().isoformat()
        buckets = []
        for raw in await self.client.hvals(self.key("store", store_id, "buckets", day)):
            point = bucket_point(_dict(_loads(raw)))
            if point is not None:
                buckets.append(point)
        buckets.sort(key=lambda p: p["start_ms"])
        bucket_s = _num(latest.get("bucket_s")) or self.settings.bucket_s
        start_ms, end_ms = day_bounds_ms(day, tz)
        forecasts = {}
        for series, raw in raw_forecasts.items():
            name = series.decode(errors="replace")
            parsed = parse_forecast(_loads(raw))
            if name in _SERIES and parsed is not None:
                forecasts[name] = parsed
        alerts = [a for a in (parse_alert(_loads(v)) for v in raw_alerts) if a and a["store_id"] == store_id]
        alerts.sort(key=_alert_order)
        row = store_row({**live, "store_id": store_id}) if live else None
        meta = row or {"region": _text(latest.get("region")), "vertical": _text(latest.get("vertical"))}
        return {
            "now_ms": int(time.time() * 1000),
            "store_id": store_id,
            "region": meta.get("region"),
            "vertical": meta.get("vertical"),
            "tz": tz,
            "row": row,
            "target_wait_s": self.settings.target_wait_s,
            "chart": {"day": day, "day_start_ms": start_ms, "day_end_ms": end_ms, "bucket_ms": int(bucket_s * 1000),
                      "buckets": buckets},
            "forecasts": forecasts,
            "alerts": alerts[:_MAX_ALERTS],
        }


# -- live updates ---------------------------------------------------------------------------------------


def sse(event: str, data: Any) -> bytes:
    """One server-sent event (orjson writes no newline, so the data is one line)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@dataclass(eq=False)
class Listener:
    """One connected page: the store it shows (None: the overview) and what waits to be sent to it."""

    store_id: str | None
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(maxsize=64))
    overflowed: bool = False

    def offer(self, chunk: bytes | None) -> None:
        """Queue `chunk`; a page too slow to keep up is dropped, and reconnects to a fresh snapshot."""
        try:
            self.queue.put_nowait(chunk)
        except asyncio.QueueFull:
            self.overflowed = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)


@dataclass
class _Pending:
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    buckets: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    forecasts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    regions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rows or self.buckets or self.forecasts or self.alerts or self.regions)


class Hub:
    """The process's one Redis pub/sub subscription, fanned out to every connected page.

    Parameters
    ----------
    settings
        Where Redis is and the key prefix.
    client
        The Redis client (its pool gives the pub/sub connection).
    push_interval_s
        How often what arrived is pushed to the pages, coalesced (newest per store, bucket,
        forecast series, alert and region).
    max_listeners
        Most pages connected at once; more are refused with 503.

    """

    def __init__(self, settings: Settings, client: aioredis.Redis, push_interval_s: float = 0.5,
                 max_listeners: int = 500) -> None:
        self.settings = settings
        self.client = client
        self.push_interval_s = push_interval_s
        self.max_listeners = max_listeners
        self.listeners: set[Listener] = set()
        self.connected = False
        self.server_id = uuid.uuid4().hex[:12]
        self.received = 0
        self.pushed = 0
        self._pending = _Pending()
        self._wake = asyncio.Event()
        self._closing = False
        self._listener: asyncio.Task[None] | None = None
        self._pusher: asyncio.Task[None] | None = None
        p = settings.topic_prefix
        self._patterns = (f"{p}:live:*", f"{p}:forecast:*", f"{p}:rollup:*")
        self._alerts_channel = f"{p}:alerts"
        self._live, self._forecast = f"{p}:live:", f"{p}:forecast:"

    async def start(self) -> None:
        self._closing = False
        self._listener = asyncio.create_task(self._listen(), name="dashboard-listen")
        self._pusher = asyncio.create_task(self._push(), name="dashboard-push")

    async def close(self) -> None:
        """End every page's stream (their pages reconnect elsewhere or later) and stop listening."""
        for listener in list(self.listeners):
            listener.offer(None)
        self._closing = True
        tasks = [t for t in (self._pusher, self._listener) if t is not None]
        if self._pusher is not None:
            self._pusher.cancel()
        if self._listener is not None:
            # redis-py's get_message can swallow a cancellation: the loop sees `_closing` within a second.
            done, _ = await asyncio.wait([self._listener], timeout=_LISTEN_TIMEOUT_S * 3)
            if not done:
                self._listener.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(task, timeout=1.0)

    def add(self, store_id: str | None) -> Listener | None:
        if len(self.listeners) >= self.max_listeners:
            return None
        listener = Listener(store_id)
        self.listeners.add(listener)
        return listener

    def remove(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    def _broadcast(self, chunk: bytes) -> None:
        for listener in list(self.listeners):
            listener.offer(chunk)

    def _set_connected(self, connected: bool) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        self._broadcast(sse("status", {"redis": connected}))
        if connected:
            # Messages published while we were away are lost: every page reads its snapshot again.
            self._broadcast(sse("resync", {"server_id": self.server_id}))

    async def _listen(self) -> None:
        backoff_s = 0.5
        while not self._closing:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(*self._patterns)
                await pubsub.subscribe(self._alerts_channel)
                self._set_connected(True)
                logger.info("subscribed to %s and %s", ", ".join(self._patterns), self._alerts_channel)
                backoff_s = 0.5
                while not self._closing:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_LISTEN_TIMEOUT_S)
                    if message is not None and message["type"] in ("message", "pmessage"):
                        self.handle(message["channel"], message["data"])
            except (RedisError, OSError) as exc:
                logger.warning("redis pub/sub lost, retrying in %.1f s: %r", backoff_s, exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            if self._closing:
                return
            self._set_connected(False)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 5.0)

    def handle(self, channel: bytes | str, data: bytes | str) -> None:
        """Fold one pub/sub message into what the next push sends (nothing when no page listens)."""
        self.received += 1
        if not self.listeners:
            return
        name = channel.decode(errors="replace") if isinstance(channel, bytes) else channel
        record = _loads(data)
        if not isinstance(record, dict):
            return
        pending = self._pending
        if name == self._alerts_channel:
            alert = parse_alert(record)
            if alert is not None:
                pending.alerts[alert["alert_id"]] = alert
        elif name.startswith(self._live):
            store_id = record.get("store_id")
            if not isinstance(store_id, str) or _STORE_ID.fullmatch(store_id) is None:
                return
            if record.get("type") == "live":
                pending.rows[store_id] = store_row(record)
            elif record.get("type") == "bucket":
                point = bucket_point(record)
                if point is not None:
                    pending.buckets.setdefault(store_id, {})[point["start_ms"]] = point
        elif name.startswith(self._forecast):
            store_id = name[len(self._forecast):]
            forecast = parse_forecast(record)
            if forecast is not None and _STORE_ID.fullmatch(store_id):
                pending.forecasts.setdefault(store_id, {})[forecast["series"]] = forecast
        elif record.get("type") == "rollup_live" and record.get("level") in ("region", "chain"):
            ident = (str(record["level"]), str(record.get("key")))
            old = pending.regions.get(ident)
            if old is None or (_num(record.get("seq")) or 0) >= (_num(old.get("seq")) or 0):
                pending.regions[ident] = record
        self._wake.set()

    async def _push(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a bad record must not stop the pushes
                logger.exception("dashboard push failed")
            await asyncio.sleep(self.push_interval_s)

    def flush(self) -> None:
        """Send what arrived since the last push: each view's batch serialised once."""
        pending, self._pending = self._pending, _Pending()
        if not pending or not self.listeners:
            return
        overview = b""
        if pending.rows:
            overview += sse("rows", list(pending.rows.values()))
        if pending.regions:
            overview += sse("regions", list(pending.regions.values()))
        alerts = sorted(pending.alerts.values(), key=lambda a: a.get("updated_ms") or 0)
        if alerts:
            overview += sse("alerts", alerts)
        per_store: dict[str, bytes] = {}
        for listener in list(self.listeners):
            if listener.store_id is None:
                chunk = overview
            else:
                store_id = listener.store_id
                if store_id not in per_store:
                    chunk = b""
                    if store_id in pending.rows:
                        chunk += sse("live", pending.rows[store_id])
                    if store_id in pending.buckets:
                        chunk += sse("buckets", sorted(pending.buckets[store_id].values(),
                                                       key=lambda p: p["start_ms"]))
                    if store_id in pending.forecasts:
                        chunk += sse("forecasts", list(pending.forecasts[store_id].values()))
                    mine = [a for a in alerts if a["store_id"] == store_id]
                    if mine:
                        chunk += sse("alerts", mine)
                    per_store[store_id] = chunk
                chunk = per_store[store_id]
            if chunk:
                listener.offer(chunk)
                self.pushed += 1


# -- the web app ------------------------------------------------------------------------------------------


HUB = web.AppKey("hub", Hub)
DATA = web.AppKey("data", DashboardData)
STATIC = web.AppKey("static", dict)


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", content_type="text/plain", charset="utf-8")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json", charset="utf-8")


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Short plain-text errors that never echo the request, and no traceback to the client."""
    try:
        return await handler(request)
    except BadInput as exc:
        return _plain(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _plain(exc.status, _MESSAGES.get(exc.status, "error"))
        if exc.status == 405:
            response.headers["Allow"] = "GET, HEAD"
        return response
    except (RedisError, OSError, TimeoutError) as exc:
        logger.warning("redis read failed for %s: %r", request.path, exc)
        return _plain(503, "redis unavailable")
    except Exception:
        logger.exception("dashboard request failed: %s", request.path)
        return _plain(500, "internal error")


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")


def _load_static() -> dict[str, tuple[bytes, str]]:
    root = importlib.resources.files("footfall.stream") / "dashboard_static"
    files = {}
    for entry in root.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return files


def _static_response(request: web.Request, name: str) -> web.Response:
    found = request.app[STATIC].get(name)
    if found is None:
        raise web.HTTPNotFound()
    body, content_type = found
    response = web.Response(body=body, content_type=content_type, charset="utf-8")
    response.headers["Cache-Control"] = "no-cache"
    return response


async def overview_page(request: web.Request) -> web.Response:
    StoreQuery.from_query(request.query)  # the page reads them too: refuse bad ones here
    return _static_response(request, "overview.html")


async def store_page(request: web.Request) -> web.Response:
    valid_store_id(request.match_info["store_id"])
    return _static_response(request, "store.html")


async def static_file(request: web.Request) -> web.Response:
    return _static_response(request, request.match_info["name"])


async def api_overview(request: web.Request) -> web.Response:
    query = StoreQuery.from_query(request.query)
    async with asyncio.timeout(_CALL_TIMEOUT_S):
        data = await request.app[DATA].overview()
    data["stores"] = query.apply(data["stores"])
    data["redis_subscribed"] = request.app[HUB].connected
    response = _json(data)
    response.enable_compression()  # 500 stores are about 300 KB of JSON, a tenth of that compressed
    return response


async def api_store(request: web.Request) -> web.Response:
    store_id = valid_store_id(request.match_info["store_id"])
    async with asyncio.timeout(_CALL_TIMEOUT_S):
        data = await request.app[DATA].store(store_id)
    if data is None:
        return _json({"error": "no data for this store"}, status=404)
    data["redis_subscribed"] = request.app[HUB].connected
    return _json(data)


async def api_alerts(request: web.Request) -> web.Response:
    async with asyncio.timeout(_CALL_TIMEOUT_S):
        return _json({"alerts": await request.app[DATA].alerts()})


async def healthz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return _json({"ok": True, "redis_subscribed": hub.connected, "listeners": len(hub.listeners),
                  "received": hub.received, "server_id": hub.server_id})


async def api_events(request: web.Request) -> web.StreamResponse:
    store = request.query.get("store")
    store_id = valid_store_id(store) if store is not None else None
    hub = request.app[HUB]
    listener = hub.add(store_id)
    if listener is None:
        return _plain(503, "too many listeners")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                           "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    try:
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n" + sse("hello", {
            "server_id": hub.server_id, "redis": hub.connected, "push_interval_ms": int(hub.push_interval_s * 1000)}))
        while not listener.overflowed:
            try:
                chunk = await asyncio.wait_for(listener.queue.get(), timeout=15.0)
            except TimeoutError:
                chunk = b": ping\n\n"  # finds pages that went away, keeps proxies from closing the stream
            if chunk is None:
                break
            await response.write(chunk)
    except (ConnectionError, RuntimeError):  # the page went away mid-write
        pass
    finally:
        hub.remove(listener)
    return response


def create_app(settings: Settings, push_interval_s: float = 0.5, max_listeners: int = 500) -> web.Application:
    """The dashboard app; its hub starts with the app and stops with it.

    Parameters
    ----------
    settings
        Redis URL, key prefix, bucket length (when records lack it) and the queue's wait target.
    push_interval_s
        Most often a page is sent an update.
    max_listeners
        Most event streams open at once.

    """
    app = web.Application(middlewares=[_errors], client_max_size=64 * 1024)
    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, health_check_interval=10)
    app[DATA] = DashboardData(settings, client)
    app[HUB] = Hub(settings, client, push_interval_s=push_interval_s, max_listeners=max_listeners)
    app[STATIC] = _load_static()

    async def lifecycle(app: web.Application) -> Any:
        await app[HUB].start()
        yield
        await app[HUB].close()
        await client.aclose()

    async def end_streams(app: web.Application) -> None:
        for listener in list(app[HUB].listeners):
            listener.offer(None)

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(end_streams)
    app.on_response_prepare.append(_headers)
    app.router.add_get("/", overview_page)
    app.router.add_get("/stores/{store_id}", store_page)
    app.router.add_get("/static/{name}", static_file)
    app.router.add_get("/api/overview", api_overview)
    app.router.add_get("/api/stores/{store_id}", api_store)
    app.router.add_get("/api/alerts", api_alerts)
    app.router.add_get("/api/events", api_events)
    app.router.add_get("/healthz", healthz)
    return app
