"""The live dashboard: a small aiohttp app that reads Redis, and only Redis.

Pages (plain HTML, CSS and JavaScript from `dashboard_static/`, charts drawn as inline SVG):

- `/`: every store, with the region and chain roll-ups, a sortable and filterable table and the
  open alerts. Query parameters `sort`, `order`, `q`, `region`, `vertical`, `alerts` set the view.
- `/stores/<store_id>`: one store's tiles (those of its vertical: a shop's conversion, a branch's
  queue), today's arrivals per bucket with the forecast and its interval band, its staffing (the
  advice line, counters recommended against active today, and ahead) and its open alerts.

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

The parts: `dashboard_views` (parameter checks, records shaped into view rows),
`dashboard_data` (the Redis reads) and `dashboard_hub` (the pub/sub subscription fanned out
over server-sent events); this module holds the routes and `create_app`.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from footfall.stream.dashboard_data import DashboardData
from footfall.stream.dashboard_hub import Hub, sse
from footfall.stream.dashboard_views import BadInput, StoreQuery, valid_store_id
from footfall.stream.settings import Settings

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_STATIC_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
_MESSAGES = {400: "bad request", 403: "forbidden", 404: "not found", 405: "method not allowed",
             413: "request too large", 414: "request too large", 431: "request too large"}
_CALL_TIMEOUT_S = 10.0


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
