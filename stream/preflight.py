"""Before the worker consumes anything: is Redis there? A worker that could not publish must not consume.

The worker reads back from its own markers whatever the group committed (with the batch
intake it commits only what a checkpoint saved), so nothing is lost, but a worker deployed
with a wrong `FOOTFALL_REDIS_URL` would consume, fail every flush and look alive. So it
checks Redis first, for up to `FOOTFALL_STARTUP_TIMEOUT_S` (Redis may still be starting
beside it), and refuses to start with a message naming the setting when it cannot reach
it. The broker is checked the same way by `topics.ensure_topics`.

Examples
--------
>>> redact("redis://:s3cret@cache.internal:6379/0")
'redis://:***@cache.internal:6379/0'
>>> redact("rediss://worker:pw@10.0.0.5/2")
'rediss://worker:***@10.0.0.5/2'
>>> redact("redis://127.0.0.1:6379/0")
'redis://127.0.0.1:6379/0'
>>> try:
...     check_redis("redis://127.0.0.1:1/0", timeout_s=0.2)
... except PreflightError as exc:
...     print(str(exc)[:97])
Redis at redis://127.0.0.1:1/0 (FOOTFALL_REDIS_URL) did not answer within 0.2 s (ConnectionError)

"""

from __future__ import annotations

import time
import urllib.parse

import redis

__all__ = ["PreflightError", "check_redis", "redact"]


class PreflightError(RuntimeError):
    """A service the worker needs is not reachable: it does not start."""


def redact(url: str) -> str:
    """`url` with its password replaced by `***` (for messages and logs)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def check_redis(url: str, timeout_s: float, interval_s: float = 0.5) -> None:
    """Return once Redis at `url` answers PING; raise `PreflightError` after `timeout_s` without an answer."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while True:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            if client.ping():
                return
        except redis.AuthenticationError as exc:  # no point waiting: the password is wrong
            raise PreflightError(f"Redis at {redact(url)} (FOOTFALL_REDIS_URL) refused the credentials ({exc}): "
                                 "not consuming.") from exc
        except (redis.RedisError, OSError) as exc:
            last = exc
        finally:
            client.close()
        if time.monotonic() + interval_s > deadline:
            break
        time.sleep(interval_s)
    kind = type(last).__name__ if last is not None else "no answer"
    raise PreflightError(f"Redis at {redact(url)} (FOOTFALL_REDIS_URL) did not answer within {timeout_s:g} s "
                         f"({kind}): not consuming. Check the URL, the password and that Redis runs.")
