"""`footfall dashboard`: the live dashboard page, served from Redis (never Kafka).

It reads what the worker writes (live records, today's buckets, roll-ups, forecasts and alerts)
and pushes changes to the open pages from one Redis pub/sub subscription.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING

from footfall.stream.settings import Settings, SettingsError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["DEFAULT_PORT", "register", "run"]

#: Where the dashboard listens unless told otherwise.
DEFAULT_PORT = 8765


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "dashboard",
        help="serve the live dashboard page (reads Redis only)",
        description="Serve the live dashboard: every store with region roll-ups, sorting and filters, and a page per "
        "store with live tiles, today's arrivals against the forecast, and open alerts. It reads Redis only "
        "(FOOTFALL_REDIS_URL, keys under FOOTFALL_TOPIC_PREFIX) and pushes updates to the pages as they arrive.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--redis-url", help="Redis URL (FOOTFALL_REDIS_URL)")
    parser.add_argument("--topic-prefix", help="key prefix (FOOTFALL_TOPIC_PREFIX)")
    parser.add_argument("--push-interval-s", type=float, default=0.5,
                        help="most often a page is sent an update, in seconds (default 0.5)")
    parser.set_defaults(func=run)


def port_is_free(host: str, port: int) -> bool:
    """Whether `host:port` can be listened on now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def serve(app: web.Application, host: str, port: int, url: str) -> None:
    """Listen on `host:port`, say where, and serve until SIGTERM or SIGINT (then close every page's stream)."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, shutdown_timeout=3.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        print(f"footfall dashboard at {url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    from footfall.stream.dashboard import create_app

    overrides = {k: v for k in ("redis_url", "topic_prefix") if (v := getattr(args, k, None))}
    try:
        settings = Settings.from_env(os.environ, **overrides)
    except SettingsError as exc:
        print(f"footfall dashboard: configuration error: {exc}", file=sys.stderr)
        return 2
    if not 0 < args.port < 65_536:
        print(f"footfall dashboard: --port {args.port}: must be a TCP port (1-65535)", file=sys.stderr)
        return 2
    if not 0.05 <= args.push_interval_s <= 60:
        print("footfall dashboard: --push-interval-s must be between 0.05 and 60", file=sys.stderr)
        return 2
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    app = create_app(settings, push_interval_s=args.push_interval_s)
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown_host}:{args.port}/ (Redis keys under {settings.topic_prefix}:)"
    try:
        asyncio.run(serve(app, args.host, args.port, url))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"footfall dashboard: port {args.port} on {args.host} is in use: choose another with --port",
                  file=sys.stderr)
            return 1
        raise
    return 0
