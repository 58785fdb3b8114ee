"""Webhooks: forward each record of a footfall topic (alert changes, staffing advice) to an HTTP endpoint.

`footfall alerts --webhook URL` (and `--kind staffing` for `<p>.staffing`) runs a `Forwarder`:
it reads the topic with its own consumer group and POSTs each record, one at a time, in topic
order, to the URL:

- body: the record exactly as published (the Kafka message's bytes, JSON), `Content-Type: application/json`;
- `X-Footfall-Signature: sha256=<hex>`: HMAC-SHA256 of the raw body with the shared secret (`sign`);
- `X-Footfall-Delivery: <topic>-<partition>-<offset>`: one id per change, the same on every retry
  and after a restart, for receivers that dedupe;
- `X-Footfall-Timestamp`: Unix seconds when this attempt was sent; `X-Footfall-Attempt`: 1, 2, ...

A 2xx answer is a delivery. Connection errors, time-outs, 5xx, 408 and 429 are retried with
exponential backoff and jitter (`Backoff`; a `Retry-After` in seconds is honoured up to the
backoff's cap) until `retry_for_s` has passed since the first attempt; any other answer (3xx,
4xx) is final at once. A change not delivered is appended to the dead-letter file (`DeadLetterLog`,
one JSON object per line, with the error) and the forwarder moves on.

The consumer offset of a record is committed only once it is delivered or dead-lettered, so a
forwarder stopped (Ctrl-C, SIGTERM: the request in flight is finished first) and started again
resumes at the next change: each change reaches the receiver exactly once. After a crash (kill -9,
power loss) between a delivery and its commit, that one change is sent again with the same
`X-Footfall-Delivery`: at least once, so receivers that must never see a change twice dedupe on it.
Records are delivered one at a time in topic order, so the changes of a store (one partition:
records are keyed by `store_id`) arrive in the order they were published; while an endpoint is
down, everything behind the change being retried waits.

The partitions are assigned by hand (no group membership, so a long retry never costs a
rebalance); the group id only keeps the offsets. Run one forwarder per group id.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from footfall.stream.kafka_access import KafkaAccess

__all__ = [
    "DEFAULT_RETRY_FOR_S",
    "SECRET_ENV",
    "Backoff",
    "DeadLetterLog",
    "Forwarder",
    "Outcome",
    "WebhookSender",
    "default_group_id",
    "default_state_dir",
    "delivery_id",
    "is_retryable",
    "read_secret",
    "sign",
    "verify",
]

logger = logging.getLogger(__name__)

SECRET_ENV = "FOOTFALL_WEBHOOK_SECRET"
_NOT_JSON = object()
DEFAULT_RETRY_FOR_S = 600.0
SIGNATURE_HEADER = "X-Footfall-Signature"
DELIVERY_HEADER = "X-Footfall-Delivery"
TIMESTAMP_HEADER = "X-Footfall-Timestamp"
ATTEMPT_HEADER = "X-Footfall-Attempt"


# -- signing ------------------------------------------------------------------------------------


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Footfall-Signature` value of `body`: `sha256=` and the hex HMAC-SHA256 of the raw bytes.

    >>> sign(b"secret", b'{"type":"alert"}')
    'sha256=...'
    >>> len(sign(b"secret", b"")) == len("sha256=") + 64
    True
    """
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, signature: str | None) -> bool:
    """Whether `signature` (the header's value) signs `body` with `secret`; constant-time.

    >>> verify(b"s", b"x", sign(b"s", b"x")), verify(b"s", b"y", sign(b"s", b"x")), verify(b"s", b"x", None)
    (True, False, False)
    """
    return signature is not None and hmac.compare_digest(sign(secret, body), signature)


def read_secret(secret_file: str | None, environ: dict[str, str] | os._Environ) -> bytes | None:
    """The secret from `secret_file` (surrounding white space stripped), else `$FOOTFALL_WEBHOOK_SECRET`, else None.

    Raises ValueError for a file that cannot be read or is empty.
    """
    if secret_file:
        try:
            text = Path(secret_file).read_text()
        except OSError as exc:
            raise ValueError(f"cannot read the secret file {secret_file}: {exc.strerror or exc}") from None
        if not text.strip():
            raise ValueError(f"the secret file {secret_file} is empty")
        return text.strip().encode()
    value = environ.get(SECRET_ENV, "")
    return value.encode() if value else None


def delivery_id(topic: str, partition: int, offset: int) -> str:
    """The stable id of one change: where it is in the topic.

    >>> delivery_id("footfall.alerts", 2, 417)
    'footfall.alerts-2-417'
    """
    return f"{topic}-{partition}-{offset}"


# -- retries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: before retry n (0: the first), wait `nominal(n)` less up to `jitter` of it.

    `nominal(n) = min(max_s, base_s * factor ** n)`; the wait drawn is uniform in
    `[(1 - jitter) * nominal(n), nominal(n)]`, so retries of many forwarders spread out and
    a wait never exceeds the cap.

    >>> Backoff(base_s=0.5, factor=2, max_s=4).schedule(6)
    [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    """

    base_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not (self.base_s > 0 and self.factor >= 1 and self.max_s >= self.base_s and 0 <= self.jitter <= 1):
            raise ValueError(f"bad backoff {self}: needs base_s > 0, factor >= 1, max_s >= base_s, 0 <= jitter <= 1")

    def nominal(self, retry: int) -> float:
        # Capped before the power can overflow: factor ** n grows past max_s within a few dozen retries.
        if retry > 64:
            return float(self.max_s)
        return float(min(self.max_s, self.base_s * self.factor ** retry))

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        nominal = self.nominal(retry)
        return nominal * (1.0 - self.jitter * (rng or random).random())

    def schedule(self, retries: int) -> list[float]:
        """The nominal waits (before jitter) of the first `retries` retries."""
        return [self.nominal(n) for n in range(retries)]


def is_retryable(status: int | None) -> bool:
    """Whether an answer is worth another try: no answer (None: connection error, time-out), 5xx, 408 or 429.

    >>> [is_retryable(s) for s in (None, 500, 503, 408, 429, 400, 401, 404, 410, 301)]
    [True, True, True, True, True, False, False, False, False, False]
    """
    return status is None or status >= 500 or status in (408, 429)


@dataclass
class Outcome:
    """How one change's delivery ended."""

    delivered: bool
    attempts: int
    status: int | None = None
    error: str = ""
    first_attempt_ms: int = 0
    last_attempt_ms: int = 0
    stopped: bool = False  # given up because the forwarder is stopping: neither delivered nor dead-lettered


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (final, like a 4xx), not something to follow with the body dropped."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> tuple[int | None, str, float | None]:
    """POST `body`; return (status or None, error text, Retry-After seconds or None). Never raises for HTTP trouble."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            response.read(65536)
            return response.status, "", None
    except urllib.error.HTTPError as exc:
        retry_after = None
        raw = exc.headers.get("Retry-After") if exc.headers else None
        if raw and raw.strip().isdigit():
            retry_after = float(raw.strip())
        try:
            detail = exc.read(300).decode("utf-8", "replace").strip()
        except Exception:  # the body is only for the dead-letter line
            detail = ""
        return exc.code, f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else ""), retry_after
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(reason).__name__}: {reason}", None


@dataclass
class WebhookSender:
    """POSTs one body at a time with the footfall headers, retrying as `Backoff` says for up to `retry_for_s`.

    `secret` None sends no signature (`--unsigned`). `stop` (a threading.Event) cuts waits short: a
    delivery stopped between attempts returns `Outcome(stopped=True)`. `post`, `sleep` and `clock`
    are replaceable for tests.
    """

    url: str
    secret: bytes | None
    backoff: Backoff = field(default_factory=Backoff)
    retry_for_s: float = DEFAULT_RETRY_FOR_S
    timeout_s: float = 10.0
    stop: threading.Event = field(default_factory=threading.Event)
    post: Callable[[str, bytes, dict[str, str], float], tuple[int | None, str, float | None]] = post
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)

    def headers(self, body: bytes, delivery: str, attempt: int) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "footfall-webhooks/1",
            DELIVERY_HEADER: delivery,
            TIMESTAMP_HEADER: str(int(time.time())),
            ATTEMPT_HEADER: str(attempt),
        }
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        return headers

    def deliver(self, body: bytes, delivery: str) -> Outcome:
        started = self.clock()
        outcome = Outcome(delivered=False, attempts=0, first_attempt_ms=_now_ms())
        while True:
            outcome.attempts += 1
            outcome.last_attempt_ms = _now_ms()
            status, error, retry_after = self.post(self.url, body, self.headers(body, delivery, outcome.attempts),
                                                   self.timeout_s)
            outcome.status = status
            if status is not None and 200 <= status < 300:
                outcome.delivered, outcome.error = True, ""
                return outcome
            outcome.error = error or f"HTTP {status}"
            if not is_retryable(status):
                return outcome
            wait = self.backoff.delay(outcome.attempts - 1, self.rng)
            if retry_after is not None:
                wait = max(wait, min(retry_after, self.backoff.max_s))
            left = self.retry_for_s - (self.clock() - started)
            if left <= 0:
                outcome.error = f"gave up after {outcome.attempts} attempts in {self.retry_for_s:g} s: {outcome.error}"
                return outcome
            logger.warning("delivery %s: attempt %d failed (%s); next in %.1f s", delivery, outcome.attempts,
                           outcome.error, min(wait, left))
            if self.stop.wait(min(wait, left)):
                outcome.stopped = True
                return outcome


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- dead letters ---------------------------------------------------------------------------------


@dataclass
class DeadLetterLog:
    """Changes that never got through: one JSON object per line, appended and synced before the offset is committed.

    Each line: `delivery_id`, `url`, `topic`, `partition`, `offset`, `key`, `error`, `status`
    (the last HTTP status, null: no answer), `attempts`, `first_attempt_ms`, `last_attempt_ms`,
    `dead_lettered_ms`, and `record` (the body, parsed; `body` as text instead when it is not JSON).
    """

    path: Path

    def append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as out:
            out.write(orjson.dumps(entry) + b"\n")
            out.flush()
            os.fsync(out.fileno())


def default_state_dir(environ: dict[str, str] | os._Environ) -> Path:
    """`$XDG_STATE_HOME/footfall`, else `~/.local/state/footfall`."""
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "footfall"


def default_group_id(topic: str, url: str) -> str:
    """`<topic>-webhook-<8 hex of the URL's SHA-256>`: one group (one set of offsets) per topic and endpoint.

    >>> default_group_id("footfall.alerts", "http://127.0.0.1:8080/hook")
    'footfall.alerts-webhook-...'
    """
    return f"{topic}-webhook-{hashlib.sha256(url.encode()).hexdigest()[:8]}"


# -- the forwarder ----------------------------------------------------------------------------------


@dataclass
class Forwarder:
    """Reads `topic` from the group's committed offsets and hands each record to `sender`, committing after each.

    `stores`: only these stores' records are sent (the others are skipped and committed).
    `from_beginning`: where a group without offsets starts (else at the end: changes from now on).
    """

    kafka: KafkaAccess
    topic: str
    group_id: str
    sender: WebhookSender
    dead_letters: DeadLetterLog
    stores: frozenset[str] = frozenset()
    from_beginning: bool = False
    on_outcome: Callable[[str, Outcome], None] | None = None
    delivered: int = 0
    dead_lettered: int = 0
    skipped: int = 0

    @property
    def stop(self) -> threading.Event:
        return self.sender.stop

    def run(self, max_changes: int = 0, timeout_s: float = 0.0) -> None:
        """Forward until `stop` is set, `max_changes` were handled (0: no limit) or `timeout_s` passed (0: never)."""
        from kafka import KafkaConsumer, TopicPartition

        from footfall.scripts.producer import quiet_client_logs

        quiet_client_logs()
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            logging.getLogger("kafka").setLevel(logging.CRITICAL)  # connection failures: said once, by this tool
        consumer = KafkaConsumer(**self.kafka.kafka_python(), group_id=self.group_id, enable_auto_commit=False,
                                 auto_offset_reset="earliest" if self.from_beginning else "latest",
                                 request_timeout_ms=30_000, bootstrap_timeout_ms=10_000)
        try:
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                raise RuntimeError(f"no topic {self.topic} on {self.kafka.bootstrap} "
                                   "(has a worker run with this prefix?)")
            assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            self._start_positions(consumer, assigned)
            deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
            handled = 0
            while not self.stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    return
                batches = consumer.poll(timeout_ms=500, max_records=200)
                for tp, records in sorted(batches.items(), key=lambda kv: kv[0].partition):
                    for record in records:
                        if self.stop.is_set():
                            return
                        outcome = self._handle(record)
                        if outcome is not None and outcome.stopped:
                            return  # not delivered, not dead-lettered: left uncommitted for the next start
                        self._commit(consumer, tp, record.offset + 1)
                        if outcome is not None:
                            handled += 1
                            if max_changes and handled >= max_changes:
                                return
        finally:
            consumer.close(autocommit=False)

    def _start_positions(self, consumer: Any, assigned: list[Any]) -> None:
        """Resume at the committed offsets; a partition without one starts at its start or end, committed at once.

        Committing the starting point means "from now" is fixed on the first run: changes published
        while the forwarder is down later are still sent after a restart.
        """
        from kafka.structs import OffsetAndMetadata

        fresh = {}
        for tp in assigned:
            committed = consumer.committed(tp)
            if committed is not None:
                consumer.seek(tp, committed)
            else:
                fresh[tp] = None
        if fresh:
            offsets = (consumer.beginning_offsets if self.from_beginning else consumer.end_offsets)(list(fresh))
            for tp, offset in offsets.items():
                consumer.seek(tp, offset)
            consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()})
        logger.info("forwarding %s from offsets %s (group %s) to %s", self.topic,
                    {tp.partition: consumer.position(tp) for tp in assigned}, self.group_id, self.sender.url)

    def _handle(self, record: Any) -> Outcome | None:
        body: bytes = record.value or b""
        parsed: Any = _NOT_JSON
        with contextlib.suppress(orjson.JSONDecodeError):
            parsed = orjson.loads(body)
        if self.stores and not (isinstance(parsed, dict) and parsed.get("store_id") in self.stores):
            self.skipped += 1
            return None
        delivery = delivery_id(record.topic, record.partition, record.offset)
        if parsed is _NOT_JSON:
            outcome = Outcome(delivered=False, attempts=0, error="the record is not JSON: not sent",
                              first_attempt_ms=_now_ms(), last_attempt_ms=_now_ms())
        else:
            outcome = self.sender.deliver(body, delivery)
        if outcome.stopped:
            return outcome
        if outcome.delivered:
            self.delivered += 1
            logger.info("delivered %s (%s %s) in %d attempt(s)", delivery, _describe(parsed), outcome.status,
                        outcome.attempts)
        else:
            entry = {
                "delivery_id": delivery, "url": self.sender.url, "topic": record.topic, "partition": record.partition,
                "offset": record.offset, "key": record.key.decode("utf-8", "replace") if record.key else None,
                "error": outcome.error, "status": outcome.status, "attempts": outcome.attempts,
                "first_attempt_ms": outcome.first_attempt_ms, "last_attempt_ms": outcome.last_attempt_ms,
                "dead_lettered_ms": _now_ms(),
            }
            entry.update({"record": parsed} if parsed is not _NOT_JSON else {"body": body.decode("utf-8", "replace")})
            self.dead_letters.append(entry)
            self.dead_lettered += 1
            logger.error("dead-lettered %s (%s) to %s: %s", delivery, _describe(parsed), self.dead_letters.path,
                         outcome.error)
        if self.on_outcome is not None:
            self.on_outcome(delivery, outcome)
        return outcome

    def _commit(self, consumer: Any, tp: Any, offset: int) -> None:
        from kafka.structs import OffsetAndMetadata

        for attempt in range(6):
            try:
                consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
                return
            except Exception as exc:  # the broker away for a moment: the change is handled, keep its place
                if attempt == 5:
                    raise RuntimeError(f"cannot commit offset {offset} of {tp.topic}-{tp.partition} for group "
                                       f"{self.group_id}: {exc} (that change may be sent again on restart)") from exc
                logger.warning("commit of %s-%d@%d failed (%s); retrying", tp.topic, tp.partition, offset, exc)
                time.sleep(min(8.0, 0.5 * 2 ** attempt))


def _describe(record: Any) -> str:
    if not isinstance(record, dict):
        return "?"
    parts: Iterable[Any] = (record.get("store_id"), record.get("kind"), record.get("state"))
    return " ".join(str(p) for p in parts if p)


def forwarder_summary(forwarder: Forwarder) -> dict[str, Any]:
    """Counts for the closing line."""
    return {"delivered": forwarder.delivered, "dead_lettered": forwarder.dead_lettered, "skipped": forwarder.skipped,
            "dead_letter_file": str(forwarder.dead_letters.path)}

