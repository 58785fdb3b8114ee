"""Live updates: the process's one Redis pub/sub subscription, fanned out to the pages as server-sent events.

One `Hub` per process subscribes to every store's live, forecast, staffing, insights, segments and
quality channels, the roll-ups' and the alerts' channel, coalesces what arrives (the newest record per
store, bucket, forecast series, alert and region; a store's newest staffing record and each one's chart
point; a store's newest insights and segments record, and its latest bucket's quality) and pushes
it to every connected page (a `Listener`) at most once per `push_interval_s`, serialised once per
view. When it gets Redis back after losing it, it tells every page to `resync` (messages may have
been missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from footfall.stream.dashboard_views import (
    INSIGHTS,
    PEERS,
    QUALITY,
    SEGMENTS,
    bucket_point,
    is_store_id,
    json_or_none,
    number_or_none,
    parse_alert,
    parse_forecast,
    parse_insights,
    parse_peers,
    parse_quality,
    parse_segments,
    parse_staffing,
    store_row,
)
from footfall.stream.settings import Settings

__all__ = ["Hub", "Listener", "sse"]

logger = logging.getLogger(__name__)

#: Longest wait for a pub/sub message before the listener looks whether it should stop.
_LISTEN_TIMEOUT_S = 1.0


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
    #: store -> the newest staffing record parsed, and every record's chart point by made_at_ms.
    staffing: dict[str, tuple[dict[str, Any], dict[int, dict[str, Any]]]] = field(default_factory=dict)
    #: store -> its newest insights record parsed; the same for segments.
    insights: dict[str, dict[str, Any]] = field(default_factory=dict)
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: store -> the quality record of its latest bucket parsed.
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: store -> its newest peers record parsed (`footfall peers`).
    peers: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    regions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rows or self.buckets or self.forecasts or self.staffing or self.insights or self.segments
                    or self.quality or self.peers or self.alerts or self.regions)


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
        keys = settings.redis_keys
        self._patterns = (keys.live_channel("*"), keys.forecast_channel("*"), keys.record_channel("staffing", "*"),
                          keys.record_channel(INSIGHTS, "*"), keys.record_channel(SEGMENTS, "*"),
                          keys.record_channel(QUALITY, "*"), keys.record_channel(PEERS, "*"),
                          keys.rollup_channel_pattern)
        self._alerts_channel = keys.alerts_channel
        # A store's channel is this head and its id.
        self._live, self._forecast = keys.live_channel(""), keys.forecast_channel("")
        self._staffing = keys.record_channel("staffing", "")
        self._insights, self._segments = keys.record_channel(INSIGHTS, ""), keys.record_channel(SEGMENTS, "")
        self._quality, self._peers = keys.record_channel(QUALITY, ""), keys.record_channel(PEERS, "")

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
        record = json_or_none(data)
        if not isinstance(record, dict):
            return
        pending = self._pending
        if name == self._alerts_channel:
            alert = parse_alert(record)
            if alert is not None:
                pending.alerts[alert["alert_id"]] = alert
        elif name.startswith(self._live):
            store_id = record.get("store_id")
            if not is_store_id(store_id):
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
            if forecast is not None and is_store_id(store_id):
                pending.forecasts.setdefault(store_id, {})[forecast["series"]] = forecast
        elif name.startswith(self._staffing):
            store_id = name[len(self._staffing):]
            staffing = parse_staffing(record)
            if staffing is not None and is_store_id(store_id):
                newest, points = pending.staffing.get(store_id, (staffing, {}))
                if (staffing["made_at_ms"] or 0) >= (newest["made_at_ms"] or 0):
                    newest = staffing
                if staffing["now"] is not None:
                    points[staffing["now"]["made_at_ms"]] = staffing["now"]
                pending.staffing[store_id] = (newest, points)
        elif name.startswith(self._insights):
            _keep_newest(pending.insights, name[len(self._insights):], parse_insights(record))
        elif name.startswith(self._segments):
            _keep_newest(pending.segments, name[len(self._segments):], parse_segments(record))
        elif name.startswith(self._quality):
            _keep_newest(pending.quality, name[len(self._quality):], parse_quality(record), "bucket_start_ms")
        elif name.startswith(self._peers):
            _keep_newest(pending.peers, name[len(self._peers):], parse_peers(record), "emitted_at_ms")
        elif record.get("type") == "rollup_live" and record.get("level") in ("region", "chain"):
            ident = (str(record["level"]), str(record.get("key")))
            old = pending.regions.get(ident)
            if old is None or (number_or_none(record.get("seq")) or 0) >= (number_or_none(old.get("seq")) or 0):
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
                    if store_id in pending.staffing:
                        newest, points = pending.staffing[store_id]
                        chunk += sse("staffing", {"latest": newest, "points": [points[k] for k in sorted(points)]})
                    if store_id in pending.insights:
                        chunk += sse("insights", pending.insights[store_id])
                    if store_id in pending.segments:
                        chunk += sse("segments", pending.segments[store_id])
                    if store_id in pending.quality:
                        chunk += sse("quality", pending.quality[store_id])
                    if store_id in pending.peers:
                        chunk += sse("peers", pending.peers[store_id])
                    mine = [a for a in alerts if a["store_id"] == store_id]
                    if mine:
                        chunk += sse("alerts", mine)
                    per_store[store_id] = chunk
                chunk = per_store[store_id]
            if chunk:
                listener.offer(chunk)
                self.pushed += 1


def _keep_newest(pending: dict[str, dict[str, Any]], store_id: str, parsed: dict[str, Any] | None,
                 made: str = "made_at_ms") -> None:
    """Keep `parsed` as the store's pending record unless one made later (by its field `made`) is there already
    (of two made at the same time, the later received wins). Nothing for an unusable record or a channel that
    names no store."""
    if parsed is None or not is_store_id(store_id):
        return
    kept = pending.get(store_id)
    if kept is None or (parsed[made] or 0) >= (kept[made] or 0):
        pending[store_id] = parsed
