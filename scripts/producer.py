"""A small Kafka producer for the tools that feed footfall (`simulate`, `replay`).

Messages are keyed by store id, so the default partitioner (murmur2, the same
as Java clients, aiokafka and Faust) puts every event of a store in one
partition, next to that store's table state in the worker. Delivery is
acknowledged by all in-sync replicas, retried a bounded number of times and
counted; a failed delivery is logged and counted, never silent.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

__all__ = [
    "EventProducer",
    "ProducerError",
    "StdoutSink",
    "events_producer",
    "quiet_client_logs",
    "sigterm_as_interrupt",
]

logger = logging.getLogger(__name__)


class ProducerError(RuntimeError):
    """Messages could not be delivered to Kafka."""


class EventProducer:
    """Send keyed byte messages to one topic and count what was sent.

    Parameters
    ----------
    bootstrap
        Kafka bootstrap servers, `host:port[,host:port]`.
    topic
        Topic every message goes to.
    linger_ms, batch_size
        Client batching: wait up to `linger_ms` to fill batches of `batch_size` bytes.
    retries, delivery_timeout_ms
        Bounds on resending one message before its delivery counts as failed.
    config
        Further `kafka.KafkaProducer` settings.

    Attributes
    ----------
    messages_sent, events_sent, bytes_sent
        Handed to the client by `send`.
    messages_acked, messages_failed
        Delivery outcomes reported by the broker so far (complete after `flush`).

    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        linger_ms: int = 5,
        batch_size: int = 64 * 1024,
        retries: int = 5,
        delivery_timeout_ms: int = 60_000,
        client_id: str = "footfall-producer",
        **config: Any,
    ) -> None:
        from kafka import KafkaProducer

        self.topic = topic
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap.split(","),
            client_id=client_id,
            acks="all",
            linger_ms=linger_ms,
            batch_size=batch_size,
            retries=retries,
            retry_backoff_ms=200,
            delivery_timeout_ms=delivery_timeout_ms,
            request_timeout_ms=min(30_000, delivery_timeout_ms - linger_ms - 1),
            max_block_ms=30_000,
            **config,
        )
        self.messages_sent = 0
        self.events_sent = 0
        self.bytes_sent = 0
        self.messages_acked = 0
        self.messages_failed = 0
        self._lock = threading.Lock()  # delivery callbacks run on the client's I/O thread
        self._closed = False
        self._first_error: BaseException | None = None

    def send(self, key: str, value: bytes, *, events: int = 1) -> None:
        """Queue one message (key = store id); `events` is how many events it holds, for the counts."""
        if self._closed:
            raise ProducerError("send() on a closed EventProducer")
        future = self._producer.send(self.topic, key=key.encode("utf-8"), value=value)
        future.add_callback(self._on_ack)
        future.add_errback(self._on_error, key)
        self.messages_sent += 1
        self.events_sent += events
        self.bytes_sent += len(value)

    def _on_ack(self, _metadata: Any) -> None:
        with self._lock:
            self.messages_acked += 1

    def _on_error(self, key: str, exc: BaseException) -> None:
        with self._lock:
            self.messages_failed += 1
            first = self._first_error is None
            if first:
                self._first_error = exc
        if first:
            logger.error("delivery failed topic=%s key=%s: %s: %s", self.topic, key, type(exc).__name__, exc)

    def flush(self, timeout_s: float | None = 60.0) -> None:
        """Wait until every queued message is delivered or failed.

        Raises
        ------
        ProducerError
            When some messages failed (the count and the first error are given).
        """
        self._producer.flush(timeout=timeout_s)
        if self.messages_failed:
            raise ProducerError(
                f"{self.messages_failed} of {self.messages_sent} messages to {self.topic} failed; "
                f"first error: {type(self._first_error).__name__}: {self._first_error}"
            )

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush what is queued and close the client; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._producer.flush(timeout=timeout_s)
        finally:
            self._producer.close(timeout=timeout_s)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"EventProducer(topic={self.topic!r}, messages_sent={self.messages_sent}, "
            f"events_sent={self.events_sent}, failed={self.messages_failed})"
        )


class StdoutSink:
    """The `--dry-run` stand-in for `EventProducer`: one line per message, `key<TAB>payload`.

    The payload bytes are written as they are (malformed ones included).

    Examples
    --------
    >>> import io
    >>> sink = StdoutSink(io.BytesIO())
    >>> sink.send("retail-001", b'{"kind":"door"}')
    >>> sink.out.getvalue(), sink.messages_sent, sink.events_sent
    (b'retail-001\\t{"kind":"door"}\\n', 1, 1)

    """

    messages_failed = 0

    def __init__(self, out: Any = None) -> None:
        self.out = out if out is not None else sys.stdout.buffer
        self.messages_sent = 0
        self.events_sent = 0

    def send(self, key: str, value: bytes, *, events: int = 1) -> None:
        self.out.write(key.encode("utf-8") + b"\t" + value + b"\n")
        self.messages_sent += 1
        self.events_sent += events

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        self.out.flush()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside, SIGTERM raises KeyboardInterrupt, so a feeding tool stops as on Ctrl-C (flush, summary).

    Only in the main thread (signal handlers live there); elsewhere it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def quiet_client_logs() -> None:
    """Keep kafka-python's connection chatter (INFO) out of a tool's output unless debugging."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.WARNING)


def events_producer(environ: Mapping[str, str], *, broker: str | None = None,
                    topic_prefix: str | None = None) -> EventProducer:
    """A producer on the events topic of `Settings.from_env(environ)`, after `ensure_topics`.

    `broker` and `topic_prefix`, when given, win over `FOOTFALL_BROKER` and `FOOTFALL_TOPIC_PREFIX`.

    Raises
    ------
    footfall.stream.settings.SettingsError
        A bad setting.
    ProducerError
        Kafka unreachable, or the events topic exists with another partition count.
    """
    from footfall.stream.settings import Settings
    from footfall.stream.topics import ensure_topics

    quiet_client_logs()
    overrides = {k: v for k, v in (("broker", broker), ("topic_prefix", topic_prefix)) if v}
    settings = Settings.from_env(environ, **overrides)
    try:
        ensure_topics(settings)
    except Exception as exc:  # kafka-python raises many error classes; all mean "cannot start"
        raise ProducerError(f"cannot prepare the topics on {settings.broker}: {type(exc).__name__}: {exc}") from exc
    return EventProducer(settings.broker, settings.topic("events"), **settings.kafka.security())
