"""footfall's topics: names, and creating them with the right partition count before anyone writes.

Every topic is `<prefix>.<name>`. The events topic and Faust's changelog
topics must have the same partition count (a store's events and its table
state live in the same partition number), so footfall creates its topics
itself, with `Settings.partitions`, before a producer could auto-create one
with the broker's default of 1.
"""

from __future__ import annotations

import logging
import time

from footfall.stream.settings import Settings

__all__ = ["OUTPUT_TOPICS", "TOPIC_NAMES", "ensure_topics", "partition_count", "record_topic_names"]

logger = logging.getLogger(__name__)

#: Input topic first, then the outputs.
TOPIC_NAMES = ("events", "aggregates", "predictions", "alerts", "dead-letter")
OUTPUT_TOPICS = TOPIC_NAMES[1:]


def record_topic_names() -> dict[str, str]:
    """Record type -> the name (after the prefix) of the topic it is published on (`schemas.records`).

    Kinds with no topic (roll-ups: Redis only) are left out; a kind that a stage named by
    `FOOTFALL_EXTRA_STAGES` declares is here once that stage's module is imported.
    """
    from footfall.schemas.records import RECORD_KINDS

    return {kind.type: kind.topic for kind in RECORD_KINDS.values() if kind.topic}


def topic_names(settings: Settings) -> list[str]:
    """Every topic footfall uses: the input, the built-in outputs and those of extra stages' record kinds."""
    from footfall.stream.stores import stage_factories

    stage_factories(settings)  # imports the extra stages, which declare their record kinds
    return list(dict.fromkeys([*TOPIC_NAMES, *record_topic_names().values()]))


class _ConnectionFailures(logging.Handler):
    """Remembers why kafka-python's bootstrap attempts failed, to name the cause in one line.

    kafka-python retries until its bootstrap timeout and only raises "unable to
    bootstrap"; the reasons are in its log. A broker refusing SASL credentials
    either answers with an authentication error or, as often, closes the TLS
    socket before that answer is read, so both are told apart here.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.refused_credentials = False
        self.disconnects = 0
        self.refused_connections = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "SaslAuthenticationFailed" in text or "Authentication failed" in text:
            self.refused_credentials = True
        elif "socket disconnected" in text:
            self.disconnects += 1
        elif "ECONNREFUSED" in text or "Connection refused" in text:
            self.refused_connections += 1

    def diagnosis(self, settings: Settings) -> str:
        """One sentence naming the likely cause and the settings to check."""
        credentials = "FOOTFALL_KAFKA_SASL_USERNAME / FOOTFALL_KAFKA_SASL_PASSWORD"
        if self.refused_credentials:
            return f"The broker refused the SASL credentials: check {credentials}"
        if self.disconnects and settings.kafka.uses_sasl:
            return (f"The broker closed every connection during the handshake, which is how it refuses wrong "
                    f"SASL credentials or a wrong mechanism: check {credentials} and FOOTFALL_KAFKA_SASL_MECHANISM")
        if self.disconnects:
            return ("The broker closed every connection: check FOOTFALL_KAFKA_SECURITY_PROTOCOL against the "
                    "listener (TLS, SASL) and the lines above")
        if self.refused_connections:
            return "Nothing listens there: check the address and that the broker runs"
        return "Check the address, the FOOTFALL_KAFKA_* settings and the lines above"


def ensure_topics(settings: Settings, timeout_s: float = 60.0) -> dict[str, int]:
    """Create footfall's topics where missing; return each topic's partition count.

    Raises `RuntimeError` when the events topic exists with another partition
    count than `FOOTFALL_PARTITIONS` (the worker's tables would not line up with it),
    and when no broker answers (naming the settings to check).
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = time.monotonic() + timeout_s
    seen = _ConnectionFailures()
    kafka_logger = logging.getLogger("kafka")
    kafka_logger.addHandler(seen)
    try:
        admin = KafkaAdminClient(**settings.kafka.kafka_python(), request_timeout_ms=15_000)
    except KafkaError as exc:
        security = settings.kafka_security_protocol
        if settings.kafka.uses_sasl:
            security += f" {settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username!r}"
        raise RuntimeError(
            f"no Kafka broker answered at {settings.broker} (FOOTFALL_BROKER) over {security} "
            f"(FOOTFALL_KAFKA_SECURITY_PROTOCOL): {exc}. {seen.diagnosis(settings)}: not consuming."
        ) from exc
    finally:
        kafka_logger.removeHandler(seen)
    try:
        names = [settings.topic(n) for n in topic_names(settings)]
        existing = set(admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            try:
                admin.create_topics(
                    [NewTopic(n, num_partitions=settings.partitions, replication_factor=1) for n in missing]
                )
                logger.info("created topics %s with %d partitions", ", ".join(missing), settings.partitions)
            except TopicAlreadyExistsError:
                pass  # another process created them in between: fine
        counts: dict[str, int] = {}
        while True:
            for name in names:
                counts[name] = partition_count(admin, name)
            if all(counts.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        admin.close()
    events = settings.topic("events")
    if counts.get(events) != settings.partitions:
        raise RuntimeError(
            f"topic {events} has {counts.get(events)} partitions but FOOTFALL_PARTITIONS={settings.partitions}; "
            "set FOOTFALL_PARTITIONS to match or use another FOOTFALL_TOPIC_PREFIX"
        )
    return counts


def partition_count(admin: object, topic: str) -> int:
    """Partitions of `topic` as the broker reports them (0 when unknown)."""
    described = admin.describe_topics([topic])  # type: ignore[attr-defined]
    for entry in described:
        if (entry.get("name") or entry.get("topic")) == topic and not entry.get("error_code"):
            return len(entry.get("partitions") or [])
    return 0
