"""The dashboard's Redis reads: every store's row, the roll-ups, the open alerts and one store's page.

Only reads, and only the keys `schemas.keys.RedisKeys` names; the records are shaped into view
rows by `dashboard_views`. `ReadCache` keeps each read's answer for a moment and shares a read in
flight, so many open pages cost Redis one read per view and second.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import zoneinfo
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import redis.asyncio as aioredis

from footfall.schemas.keys import CHAIN
from footfall.stream.dashboard_views import (
    INSIGHTS,
    PEERS,
    QUALITY,
    ROW_FIELDS,
    SEGMENTS,
    SERIES,
    alert_order,
    bucket_point,
    day_bounds_ms,
    decode_hash,
    dict_or_empty,
    is_day,
    is_store_id,
    json_or_none,
    number_or_none,
    parse_alert,
    parse_forecast,
    parse_insights,
    parse_peers,
    parse_quality,
    parse_segments,
    staffing_view,
    store_row,
    text_or_none,
    zone_or,
)
from footfall.stream.settings import Settings

__all__ = ["DashboardData", "ReadCache"]

#: Stores read per Redis pipeline when building the overview.
_CHUNK = 500
#: Most alerts of a store the dashboard shows.
_MAX_ALERTS = 200
#: Most staffing records read for a store's day (newest first): a day of 15-minute buckets is 96; with
#: shorter buckets the chart shows the latest ones. Each record holds its whole horizon, so this bounds the read.
_MAX_STAFFING = 200
#: The kind of the staffing stage's records (their keys are `RedisKeys.store_record(store, kind)`...).
STAFFING = "staffing"


class DashboardData:
    """The dashboard's reads: one pipeline per view, never one request per store."""

    def __init__(self, settings: Settings, client: aioredis.Redis) -> None:
        self.settings = settings
        self.client = client
        self.keys = settings.redis_keys

    async def store_ids(self) -> list[str]:
        """Every store with live state: the members of the regions' live roll-ups, else a SCAN of live keys."""
        regions = [r.decode(errors="replace") for r in await self.client.hkeys(
            self.keys.rollup_members("chain", CHAIN, "live"))]
        ids: set[str] = set()
        if regions:
            pipe = self.client.pipeline(transaction=False)
            for region in regions:
                pipe.hkeys(self.keys.rollup_members("region", region, "live"))
            for members in await pipe.execute():
                ids.update(m.decode(errors="replace") for m in members)
        else:
            async for raw in self.client.scan_iter(match=self.keys.store_pattern("live"), count=1000):
                ids.add(self.keys.store_id_of(raw.decode(errors="replace"), suffix="live"))
        return sorted(i for i in ids if is_store_id(i))

    async def rollups(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The regions' live roll-ups and the chain's."""
        regions = [r.decode(errors="replace") for r in await self.client.hkeys(
            self.keys.rollup_members("chain", CHAIN, "live"))]
        pipe = self.client.pipeline(transaction=False)
        for region in regions:
            pipe.hgetall(self.keys.rollup_live("region", region))
        pipe.hgetall(self.keys.rollup_live("chain", CHAIN))
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
                pipe.hmget(self.keys.store_live(store_id), ROW_FIELDS)
                pipe.hvals(self.keys.store_alerts(store_id))
            results = await pipe.execute()
            for store_id, values, raw_alerts in zip(chunk, results[::2], results[1::2], strict=True):
                live = decode_hash(dict(zip(ROW_FIELDS, values, strict=True)))
                if not live:
                    continue
                live["store_id"] = store_id
                row = store_row(live)
                mine = [a for a in (parse_alert(json_or_none(v)) for v in raw_alerts)
                        if a and a["store_id"] == store_id]
                row["alerts_open"] = len(mine)
                row["alert_severity"] = min(mine, key=alert_order)["severity"] if mine else None
                rows.append(row)
                alerts.extend(mine)
        regions, chain = await self.rollups()
        alerts.sort(key=alert_order)
        return {"now_ms": int(time.time() * 1000), "prefix": self.settings.topic_prefix, "stores": rows,
                "regions": regions, "chain": chain, "alerts": alerts}

    async def alerts(self) -> list[dict[str, Any]]:
        """Open alerts of every store, most severe and newest first."""
        ids = await self.store_ids()
        pipe = self.client.pipeline(transaction=False)
        for store_id in ids:
            pipe.hvals(self.keys.store_alerts(store_id))
        out = []
        for store_id, raw_alerts in zip(ids, await pipe.execute(), strict=True):
            out.extend(a for a in (parse_alert(json_or_none(v)) for v in raw_alerts)
                       if a and a["store_id"] == store_id)
        out.sort(key=alert_order)
        return out

    async def store(self, store_id: str) -> dict[str, Any] | None:
        """One store's page: its row (tiles), today's buckets, forecasts, open alerts, staffing, insights,
        segments and data quality; None if unknown.

        `staffing` (None when the store has no staffing record): the latest record (`latest`, see
        `parse_staffing`) and, from the newest `_MAX_STAFFING` of its history, the day's points (`today`).
        `insights` and `segments` (None when the store has no usable such record): the latest record of
        each, see `parse_insights` and `parse_segments`; `quality` likewise, the latest closed bucket's data
        quality (`parse_quality`).
        """
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.store_live(store_id))
        pipe.hgetall(self.keys.store_latest(store_id))
        pipe.hgetall(self.keys.store_forecast(store_id))
        pipe.hvals(self.keys.store_alerts(store_id))
        pipe.get(self.keys.store_record(store_id, STAFFING))
        pipe.get(self.keys.store_record(store_id, INSIGHTS))
        pipe.get(self.keys.store_record(store_id, SEGMENTS))
        pipe.get(self.keys.store_record(store_id, QUALITY))
        pipe.get(self.keys.store_record(store_id, PEERS))
        (raw_live, raw_latest, raw_forecasts, raw_alerts, raw_staffing, raw_insights, raw_segments,
         raw_quality, raw_peers) = await pipe.execute()
        live, latest = decode_hash(raw_live), decode_hash(raw_latest)
        if not live and not latest:
            return None
        tz = zone_or(live.get("tz") or latest.get("tz"), self.settings.timezone)
        day = live.get("day") or latest.get("day")
        if not is_day(day):
            day = dt.datetime.now(zoneinfo.ZoneInfo(tz)).date().isoformat()
        buckets = []
        for raw in await self.client.hvals(self.keys.store_day(store_id, day)):
            point = bucket_point(dict_or_empty(json_or_none(raw)))
            if point is not None:
                buckets.append(point)
        buckets.sort(key=lambda p: p["start_ms"])
        bucket_s = number_or_none(latest.get("bucket_s")) or self.settings.bucket_s
        start_ms, end_ms = day_bounds_ms(day, tz)
        forecasts = {}
        for series, raw in raw_forecasts.items():
            name = series.decode(errors="replace")
            parsed = parse_forecast(json_or_none(raw))
            if name in SERIES and parsed is not None:
                forecasts[name] = parsed
        alerts = [a for a in (parse_alert(json_or_none(v)) for v in raw_alerts) if a and a["store_id"] == store_id]
        alerts.sort(key=alert_order)
        staffing = None
        if raw_staffing is not None:
            day_buckets = max(1, (end_ms - start_ms) // max(1, int(bucket_s * 1000)))
            entries = await self.client.xrevrange(self.keys.store_record_history(store_id, STAFFING),
                                                  count=min(_MAX_STAFFING, day_buckets + 4))
            staffing = staffing_view(json_or_none(raw_staffing),
                                     (json_or_none(fields.get(b"record")) for _, fields in reversed(entries)),
                                     start_ms, end_ms)
        row = store_row({**live, "store_id": store_id}) if live else None
        meta = row or {"region": text_or_none(latest.get("region")), "vertical": text_or_none(latest.get("vertical"))}
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
            "staffing": staffing,
            "insights": parse_insights(json_or_none(raw_insights)),
            "segments": parse_segments(json_or_none(raw_segments)),
            "quality": parse_quality(json_or_none(raw_quality)),
            "peers": parse_peers(json_or_none(raw_peers)),
        }


class ReadCache:
    """Answers of reads kept `ttl_s` seconds per key, and one read in flight per key shared by every caller.

    A key's read starts when a caller finds no fresh answer and none in flight; callers arriving
    while it runs await the same read (single-flight), and its answer then serves every caller for
    `ttl_s` seconds from when it arrived. A failed read is not kept: each of its callers gets the
    error, and the next caller reads again. The read runs in its own task, so a caller that goes
    away does not cancel it for the others. At most `max_entries` answers are kept (the expired,
    then the oldest, make room). `ttl_s` 0: no keeping and no sharing, every call reads.

    Callers must not change what they get: the same object is handed to every caller.
    """

    def __init__(self, ttl_s: float, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s < 0 or max_entries < 1:
            raise ValueError("ttl_s must be >= 0 and max_entries >= 1")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._fresh: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._flights: dict[Hashable, asyncio.Task[Any]] = {}
        #: Reads started and calls answered from a kept or shared read (for /healthz and tests).
        self.reads = 0
        self.hits = 0

    def __len__(self) -> int:
        return len(self._fresh)

    async def get(self, key: Hashable, read: Callable[[], Awaitable[Any]]) -> Any:
        """The answer of `read()` for `key`: kept, in flight, or read now."""
        if self.ttl_s <= 0:
            self.reads += 1
            return await read()
        kept = self._fresh.get(key)
        if kept is not None:
            if kept[0] > self._clock():
                self.hits += 1
                return kept[1]
            del self._fresh[key]
        flight = self._flights.get(key)
        if flight is None:
            self.reads += 1
            flight = asyncio.ensure_future(self._read(key, read))
            flight.add_done_callback(_retrieve)
            self._flights[key] = flight
        else:
            self.hits += 1
        return await asyncio.shield(flight)

    async def _read(self, key: Hashable, read: Callable[[], Awaitable[Any]]) -> Any:
        try:
            value = await read()
        finally:
            self._flights.pop(key, None)
        self._keep(key, value)
        return value

    def _keep(self, key: Hashable, value: Any) -> None:
        now = self._clock()
        if key not in self._fresh and len(self._fresh) >= self.max_entries:
            for stale in [k for k, (until, _) in self._fresh.items() if until <= now]:
                del self._fresh[stale]
            while len(self._fresh) >= self.max_entries:
                self._fresh.popitem(last=False)
        self._fresh[key] = (now + self.ttl_s, value)
        self._fresh.move_to_end(key)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a read's error as seen even when every caller went away (no 'never retrieved' warning)."""
    if not task.cancelled():
        task.exception()
