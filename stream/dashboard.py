"""The live dashboard: a small aiohttp app that reads Redis, and only Redis.

Pages (plain HTML, CSS and JavaScript from `dashboard_static/`, charts drawn as inline SVG):

- `/`: every store, with the region and chain roll-ups, a sortable and filterable table and the
  open alerts. Query parameters `sort`, `order`, `q`, `region`, `vertical`, `alerts` set the view.
- `/stores/<store_id>`: one store's tiles (those of its vertical: a shop's conversion, a branch's
  queue) under a badge of its latest closed bucket's data quality (ok / partial / missing /
  no_sensors, the coverage, the silent sensors named, at a day's end each sensor's uptime; the
  tiles counted from door sensors marked while it is partial or missing), today's arrivals per
  bucket with the forecast and its interval band, its staffing (the advice line, counters
  recommended against active today, and ahead), its insights (the weekday × hour heatmap of
  arrivals over 4 weeks, the last day against last week and last year, on a Sunday the week
  against the week before), its customer segments with their shares, and its open alerts.

Data (JSON): `/api/overview`, `/api/stores/<store_id>`, `/api/alerts`; `/healthz`.

Live updates: `/api/events` (or `/api/events?store=<store_id>`) is a stream of server-sent
events. One `Hub` per process holds the only Redis pub/sub connection, coalesces what arrives
(the newest record per store, bucket, forecast series, alert and region) and pushes it to every
connected page at most once per `push_interval_s`, serialised once per view. A page fetches its
snapshot whenever its event stream (re)opens, and again when told `resync` (the hub lost Redis
for a while, so messages may have been missed).

Every endpoint only reads. The JSON reads (`/api/overview`, `/api/stores/<id>`, `/api/alerts`) are
kept for `api_cache_s` seconds per view and shared while in flight (`ReadCache`), so however many
pages ask, Redis serves one read per view and second.

Access: a request whose `Host` is not one of `allowed_hosts` gets a plain 421 (a page of another
site reaching the dashboard through DNS rebinding sends that site's name). With a `token`, every
`/api/*` request (the JSON and the event stream) needs `Authorization: Bearer <token>` or the
cookie a browser gets by opening a page once as `/?token=<token>` (answered with a redirect to the
same page without it): HttpOnly, SameSite=Strict, its value an HMAC of the token (not the token),
so it outlives a restart and dies with the token. Otherwise 401 with `WWW-Authenticate: Bearer`.
The pages, static files and `/healthz` hold no data and stay open.

Store ids, sort keys and filters are checked against fixed patterns
before use; a bad one is answered with a short plain-text 4xx that does not echo it. Responses
carry `X-Content-Type-Options: nosniff` and a Content-Security-Policy that allows only the app's
own scripts, styles and connections.

The parts: `dashboard_views` (parameter checks, records shaped into view rows),
`dashboard_data` (the Redis reads) and `dashboard_hub` (the pub/sub subscription fanned out
over server-sent events); this module holds the routes and `create_app`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.resources
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from multidict import MultiDict
from redis.exceptions import RedisError

from footfall.stream.dashboard_data import DashboardData, ReadCache
from footfall.stream.dashboard_hub import Hub, sse
from footfall.stream.dashboard_views import BadInput, StoreQuery, valid_store_id
from footfall.stream.settings import Settings

__all__ = ["LOOPBACK_HOSTS", "create_app", "host_of", "is_loopback", "normalise_host"]

logger = logging.getLogger(__name__)

_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_STATIC_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
_MESSAGES = {400: "bad request", 401: "token required", 403: "forbidden", 404: "not found", 405: "method not allowed",
             413: "request too large", 414: "request too large", 431: "request too large"}
_CALL_TIMEOUT_S = 10.0


#: The names a browser on this machine uses for it: the default allow-list (with a non-wildcard bound host).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: The cookie a browser gets for the token, and how long it keeps it.
COOKIE = "footfall_dashboard"
_COOKIE_MAX_AGE_S = 7 * 86_400
_COOKIE_CONTEXT = b"footfall dashboard cookie v1"

HUB = web.AppKey("hub", Hub)
DATA = web.AppKey("data", DashboardData)
STATIC = web.AppKey("static", dict)
CACHE = web.AppKey("cache", ReadCache)


def normalise_host(name: str) -> str:
    """A host name as compared: lower case, no trailing dot, an IPv6 literal without brackets, compressed."""
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if ":" in name:
        try:
            return str(ipaddress.IPv6Address(name))
        except ValueError:
            pass
    return name


def host_of(header: str) -> str | None:
    """The host of a `Host` header without its port (`[::1]:8765` -> `::1`); None when malformed."""
    header = header.strip()
    if not header or len(header) > 260 or any(c.isspace() or c in "/\\@?#" for c in header):
        return None
    if header.startswith("["):
        end = header.find("]")
        if end < 0:
            return None
        host, rest = header[1:end], header[end + 1:]
        if rest and not (rest[0] == ":" and rest[1:].isdigit()):
            return None
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
    if header.count(":") > 1:  # a bare IPv6 literal (not valid in a Host header, but unambiguous)
        try:
            return str(ipaddress.IPv6Address(header))
        except ValueError:
            return None
    host, _, port = header.partition(":")
    if _ and not port.isdigit():
        return None
    return normalise_host(host) or None


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or address) is this machine only."""
    host = normalise_host(host)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Access:
    """Who may ask: the hosts answered (None: any) and the token's digests (None: no token)."""

    def __init__(self, allowed_hosts: Iterable[str] | None, token: str | None) -> None:
        hosts = {normalise_host(h) for h in (LOOPBACK_HOSTS if allowed_hosts is None else allowed_hosts)}
        self.any_host = "*" in hosts
        self.hosts = frozenset(h for h in hosts if h)
        self.token = token.encode() if token else None
        self.cookie = hmac.new(self.token, _COOKIE_CONTEXT, hashlib.sha256).hexdigest() if self.token else None

    def host_allowed(self, header: str | None) -> bool | None:
        """True/False; None when the header is missing or malformed."""
        host = host_of(header) if header is not None else None
        if host is None:
            return None
        return self.any_host or host in self.hosts

    def token_ok(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode(errors="replace"), self.token)

    def authorised(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and given and self.token_ok(given.strip()):
            return True
        cookie = request.cookies.get(COOKIE)
        return bool(cookie) and hmac.compare_digest(cookie.encode(errors="replace"), self.cookie.encode())


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


ACCESS = web.AppKey("access", _Access)


def _unauthorised() -> web.Response:
    response = _plain(401, "token required")
    response.headers["WWW-Authenticate"] = 'Bearer realm="footfall dashboard"'
    return response


@web.middleware
async def _guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Answer only the allowed Host names; with a token, only authorised `/api/` requests."""
    access = request.app[ACCESS]
    allowed = access.host_allowed(request.headers.get("Host"))
    if allowed is None:
        return _plain(400, "bad host header")
    if not allowed:
        return _plain(421, "misdirected request: unknown host name")
    if request.path.startswith("/api/") and not access.authorised(request):
        return _unauthorised()
    return await handler(request)


def _login(request: web.Request) -> web.Response | None:
    """A page opened as `?token=<token>`: the cookie, and a redirect to the page without the token."""
    given = request.query.get("token")
    access = request.app[ACCESS]
    if given is None or access.token is None:
        return None
    if not access.token_ok(given):
        return _unauthorised()
    kept = MultiDict((k, v) for k, v in request.query.items() if k != "token")
    response = web.Response(status=303, headers={"Location": str(request.rel_url.with_query(kept))})
    response.set_cookie(COOKIE, access.cookie, max_age=_COOKIE_MAX_AGE_S, path="/", httponly=True,
                        samesite="Strict", secure=request.secure or None)
    return response


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
    return _login(request) or _static_response(request, "overview.html")


async def store_page(request: web.Request) -> web.Response:
    valid_store_id(request.match_info["store_id"])
    return _login(request) or _static_response(request, "store.html")


async def _read(request: web.Request, key: Any, read: Callable[[], Awaitable[Any]]) -> Any:
    """`read()`'s answer through the app's cache (kept for a moment, shared while in flight)."""

    async def timed() -> Any:
        async with asyncio.timeout(_CALL_TIMEOUT_S):
            return await read()

    return await request.app[CACHE].get(key, timed)


async def static_file(request: web.Request) -> web.Response:
    return _static_response(request, request.match_info["name"])


async def api_overview(request: web.Request) -> web.Response:
    query = StoreQuery.from_query(request.query)
    snapshot = await _read(request, "overview", request.app[DATA].overview)
    data = {**snapshot, "stores": query.apply(snapshot["stores"]), "redis_subscribed": request.app[HUB].connected}
    response = _json(data)
    response.enable_compression()  # 500 stores are about 300 KB of JSON, a tenth of that compressed
    return response


async def api_store(request: web.Request) -> web.Response:
    store_id = valid_store_id(request.match_info["store_id"])
    snapshot = await _read(request, ("store", store_id), lambda: request.app[DATA].store(store_id))
    if snapshot is None:
        return _json({"error": "no data for this store"}, status=404)
    return _json({**snapshot, "redis_subscribed": request.app[HUB].connected})


async def api_alerts(request: web.Request) -> web.Response:
    return _json({"alerts": await _read(request, "alerts", request.app[DATA].alerts)})


async def healthz(request: web.Request) -> web.Response:
    hub, cache = request.app[HUB], request.app[CACHE]
    return _json({"ok": True, "redis_subscribed": hub.connected, "listeners": len(hub.listeners),
                  "received": hub.received, "server_id": hub.server_id,
                  "api_cache": {"reads": cache.reads, "shared": cache.hits, "kept": len(cache)}})


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


def create_app(settings: Settings, push_interval_s: float = 0.5, max_listeners: int = 500, *,
               allowed_hosts: Iterable[str] | None = None, token: str | None = None, api_cache_s: float = 1.0,
               api_cache_entries: int = 1024) -> web.Application:
    """The dashboard app; its hub starts with the app and stops with it.

    Parameters
    ----------
    settings
        Redis URL, key prefix, bucket length (when records lack it) and the queue's wait target.
    push_interval_s
        Most often a page is sent an update.
    max_listeners
        Most event streams open at once.
    allowed_hosts
        `Host` names answered (port not compared); None: `LOOPBACK_HOSTS`; `*` among them: any (unsafe).
    token
        When given, what `/api/*` requests must show (bearer header or the cookie from `/?token=`).
    api_cache_s
        How long a JSON read is kept per view (0: every request reads Redis).
    api_cache_entries
        Most reads kept (a view per store page, the overview, the alerts).

    """
    app = web.Application(middlewares=[_errors, _guard], client_max_size=64 * 1024)
    app[ACCESS] = _Access(allowed_hosts, token)
    app[CACHE] = ReadCache(api_cache_s, max_entries=api_cache_entries)
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
