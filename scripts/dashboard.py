"""`footfall dashboard`: the live dashboard page, served from Redis (never Kafka).

It reads what the worker writes (live records, today's buckets, roll-ups, forecasts and alerts)
and pushes changes to the open pages from one Redis pub/sub subscription.

Access: only requests naming an allowed host are answered (`--allowed-hosts`, default the loopback
names and the `--host` bound when it is not a wildcard); with a token (`--token-file`, or
`FOOTFALL_DASHBOARD_TOKEN`) the data needs it. Bound to anything but loopback, it refuses to start
without a token unless told `--insecure-no-auth`. The token is never printed or logged.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import signal
import socket
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from footfall.stream.settings import Settings, SettingsError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["DEFAULT_PORT", "allowed_hosts_for", "read_token", "register", "run"]

#: Where the dashboard listens unless told otherwise.
DEFAULT_PORT = 8765
#: Environment variables read by the dashboard only (not part of the worker's settings).
ALLOWED_HOSTS_ENV = "FOOTFALL_DASHBOARD_ALLOWED_HOSTS"
TOKEN_ENV = "FOOTFALL_DASHBOARD_TOKEN"
#: Shortest token accepted, and what it may hold (it travels in a header and a query string).
MIN_TOKEN_LENGTH = 16
_WILDCARDS = {"", "0.0.0.0", "::", "*"}


class ConfigError(ValueError):
    """A bad option or variable, named in the message."""


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
    parser.add_argument("--allowed-hosts", metavar="A,B",
                        help=f"Host header names answered, others get 421 (env {ALLOWED_HOSTS_ENV}; default "
                        "localhost,127.0.0.1,::1 and --host unless it is a wildcard; '*' answers any name: unsafe, "
                        "it lets web pages of other sites read the dashboard through DNS rebinding)")
    parser.add_argument("--token-file", metavar="PATH",
                        help=f"file holding the access token (at least {MIN_TOKEN_LENGTH} characters); the JSON API "
                        "and event stream then need 'Authorization: Bearer <token>' or the cookie a browser gets by "
                        f"opening /?token=<token> once (env {TOKEN_ENV} holds the token itself; the file is preferred)")
    parser.add_argument("--insecure-no-auth", action="store_true",
                        help="serve without a token on a non-loopback --host (otherwise refused: anyone who can "
                        "reach the port reads every store)")
    parser.add_argument("--api-cache-s", type=float, default=1.0,
                        help="seconds each JSON read (overview, a store, alerts) is kept and shared by every "
                        "page asking (default 1; 0: every request reads Redis)")
    parser.set_defaults(func=run)


def allowed_hosts_for(bind_host: str, option: str | None, env: str | None) -> list[str]:
    """The Host names answered: the option, else the variable, else loopback names and a non-wildcard bind host."""
    from footfall.stream.dashboard import LOOPBACK_HOSTS, host_of, normalise_host

    given = option if option is not None else env
    if given is None or not given.strip():
        hosts = list(LOOPBACK_HOSTS)
        if normalise_host(bind_host) not in _WILDCARDS and normalise_host(bind_host) not in hosts:
            hosts.append(normalise_host(bind_host))
        return hosts
    name = "--allowed-hosts" if option is not None else ALLOWED_HOSTS_ENV
    hosts = []
    for raw in given.split(","):
        raw = raw.strip()
        if raw == "*":
            hosts.append("*")
            continue
        host = host_of(raw) if raw else None
        with_port = raw.count(":") == 1 or (raw.startswith("[") and not raw.endswith("]"))
        if host is None or with_port:
            raise ConfigError(f"{name}: each entry must be a host name or address without a port, or '*'")
        hosts.append(host)
    return hosts


def read_token(path: str | None, env: str | None) -> str | None:
    """The access token from `--token-file` (preferred) or the variable; None when neither is set."""
    if path is not None:
        name = "--token-file"
        try:
            file = Path(path)
            mode = file.stat().st_mode
            token = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--token-file {path}: cannot be read ({exc.__class__.__name__})") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            print(f"footfall dashboard: warning: --token-file {path} can be read by other users (chmod 600 it)",
                  file=sys.stderr)
    elif env:
        name, token = TOKEN_ENV, env.strip()
    else:
        return None
    if len(token) < MIN_TOKEN_LENGTH or not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigError(f"{name}: the token must be at least {MIN_TOKEN_LENGTH} printable ASCII characters without "
                          "spaces (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
    return token


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
    if not 0 <= args.api_cache_s <= 60:
        print("footfall dashboard: --api-cache-s must be between 0 and 60", file=sys.stderr)
        return 2
    from footfall.stream.dashboard import is_loopback

    try:
        allowed_hosts = allowed_hosts_for(args.host, args.allowed_hosts, os.environ.get(ALLOWED_HOSTS_ENV))
        token = read_token(args.token_file, os.environ.get(TOKEN_ENV))
    except ConfigError as exc:
        print(f"footfall dashboard: configuration error: {exc}", file=sys.stderr)
        return 2
    if token is None and not is_loopback(args.host):
        if not args.insecure_no_auth:
            print(f"footfall dashboard: refusing to serve every store's data without a token on {args.host}, which "
                  "is not loopback: give --token-file PATH (or FOOTFALL_DASHBOARD_TOKEN), bind --host 127.0.0.1, "
                  "or accept the risk with --insecure-no-auth", file=sys.stderr)
            return 2
        print(f"footfall dashboard: WARNING: serving without a token on {args.host} (--insecure-no-auth): anyone "
              "who can reach this port reads every store's data", file=sys.stderr, flush=True)
    if "*" in allowed_hosts:
        print("footfall dashboard: WARNING: --allowed-hosts '*' answers any Host name: web pages of other sites can "
              "read the dashboard through DNS rebinding", file=sys.stderr, flush=True)
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    app = create_app(settings, push_interval_s=args.push_interval_s, allowed_hosts=allowed_hosts, token=token,
                     api_cache_s=args.api_cache_s)
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown_host}:{args.port}/ (Redis keys under {settings.topic_prefix}:)"
    if token is not None:
        url += "; a token is needed: open the page once as /?token=<token>, or send 'Authorization: Bearer <token>'"
    if "*" not in allowed_hosts:
        url += f"; answering Host {','.join(allowed_hosts)}"
    try:
        asyncio.run(serve(app, args.host, args.port, url))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"footfall dashboard: port {args.port} on {args.host} is in use: choose another with --port",
                  file=sys.stderr)
            return 1
        raise
    return 0
