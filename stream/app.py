"""The Faust application: built from `Settings`, with footfall's topics, tables and agents.

`create_app(settings)` returns a ready `faust.App`; `footfall worker` runs it.
Input topics carry raw bytes (decoded in `schemas/`, never by Faust), so a bad
payload cannot fail inside Faust after its offset is acknowledged.

Before anything is consumed, `check_state_settings` compares the settings the saved state
was made with (`settings.STATE_SHAPING`, recorded in the compacted topic
`<app id>-state-settings`) with the ones now: when the changelog holds state made with
other values, the worker refuses to start (`StateSettingsRefused`, naming the setting, both
values and what to do) rather than misread that state or dead-letter valid events.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust
import orjson

from footfall.stream.agents import register_agents
from footfall.stream.batch_intake import BatchIntake, MarkerCommits
from footfall.stream.fetch_wait import shorten_fetch_wait
from footfall.stream.output_topic import OutputTopic
from footfall.stream.settings import Settings, state_shape_changes
from footfall.stream.sinks import RedisSink
from footfall.stream.stores import stage_factories
from footfall.stream.topics import record_topic_names
from footfall.stream.worker import FlowWorker

__all__ = ["StateSettingsRefused", "check_state_settings", "create_app", "faust_app_settings",
           "state_settings_topic"]

logger = logging.getLogger(__name__)


def faust_app_settings(settings: Settings, data_dir_prefix: str = "footfall-") -> dict[str, Any]:
    """Keyword arguments of `faust.App` for these settings (the worker's, and the benchmark's passthrough)."""
    return {
        "broker": [f"kafka://{hostport}" for hostport in settings.broker.split(",")],
        "broker_credentials": settings.kafka.faust_credentials(),  # TLS / SASL (FOOTFALL_KAFKA_*), or None
        # Tables live in memory and are rebuilt from their compacted changelog topics on start.
        "store": "memory://",
        "datadir": Path(settings.data_dir or tempfile.mkdtemp(prefix=data_dir_prefix)),
        "autodiscover": False,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": 1,
        "processing_guarantee": settings.processing_guarantee,
        "consumer_auto_offset_reset": "earliest",
        # Fast group joins: the defaults (60 s session) make every restart and test wait.
        "broker_session_timeout": settings.session_timeout_s,
        "broker_rebalance_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": settings.heartbeat_s,
        # Measured on 2 cores: 5 ms linger with 64 KB batches +35% events/s; a deep stream buffer +13%.
        "producer_linger_ms": 5,
        "producer_max_batch_size": 65_536,
        # One limit end to end (FOOTFALL_MAX_MESSAGE_BYTES): what the decoder accepts and what the worker
        # sends (dead letters, re-routes, records, store states) are held under this same number.
        "producer_max_request_size": settings.max_message_bytes,
        "stream_buffer_maxsize": 16_384,
        "web_enabled": settings.web_enabled,
        "web_port": settings.web_port,
        "web_host": settings.web_host,
    }


class FlowApp(faust.App):
    """A Faust app that runs `before_stop` coroutines when it starts to stop, before Faust stops anything,
    and `from_start` tasks from its start, table recovery included.

    Faust's own stop stops the consumer and the tables before its agents, and cancels changelog
    sends still on their way (measured: a worker's last save before a SIGTERM, made from the
    agent's `finally`, lost every state it sent), and the app's `on_partitions_revoked` hooks
    are not called on a stop. So the worker saves here, while everything still runs.
    """

    before_stop: list[Callable[[], Awaitable[None]]]
    from_start: list[Callable[[], Awaitable[None]]]
    batch_intake: BatchIntake | None = None

    def _new_consumer(self) -> Any:
        consumer = super()._new_consumer()
        shorten_fetch_wait(consumer)  # no fetch of idle changelog partitions holding the events back
        if self.batch_intake is not None:  # the events topic's records go to the worker a batch at a time
            self.batch_intake.install(consumer)
        return consumer

    async def on_start(self) -> None:
        # Faust starts timers and tasks only once the first table recovery is over: a watch on that
        # recovery (`stream.recovery_watch`) has to run before.
        await super().on_start()
        for task in getattr(self, "from_start", ()):
            self.add_future(task())

    async def on_stop(self) -> None:
        for hook in getattr(self, "before_stop", ()):
            try:
                await hook()
            except Exception:  # a stop goes on: what was not saved is read again at the next start
                logger.exception("saving before the stop failed")
        await super().on_stop()


def create_app(settings: Settings) -> faust.App:
    """Build the worker's Faust app: topics, the per-store `stores` table, the flow worker and its agent."""
    app = FlowApp(settings.app_id, **faust_app_settings(settings))
    app.before_stop, app.from_start = [], []
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}

    def topic(name: str) -> faust.TopicT:
        return app.topic(settings.topic(name), partitions=settings.partitions, **raw)

    events_topic, dead_letter_topic = topic("events"), topic("dead-letter")
    stage_factories(settings)  # imports the extra stages, which declare their record kinds
    topic_of_kind = record_topic_names()
    outputs = {name: topic(name) for name in set(topic_of_kind.values())}
    stores = app.Table(
        "stores",
        default=None,
        partitions=settings.partitions,
        key_type=str,  # keys travel as JSON
        value_type=bytes,
        help="Per store: its pipeline's state and its stages'; per partition: the last offset applied.",
    )
    # Values are the JSON bytes the checkpoint sends, kept and restored as bytes (a store's state as
    # dicts took 5 to 6 times the memory): `operators.pipeline.persistence.parsed` reads them. Faust
    # gives a table's values the JSON serializer; set before its changelog topic is made (on first use).
    stores.value_serializer = "raw"
    check_state_settings(settings, stores.changelog_topic.get_topic_name(), state_settings_topic(app.conf.id))
    if stores.changelog_topic.value_serializer != "raw":  # a Faust that makes its topic otherwise
        raise RuntimeError("the stores table's changelog would decode its values as JSON: see stream/app.py")
    # The worker's own sends go through the producer directly (`stream.output_topic`); the agent reads `events_topic`.
    sent_to = {name: OutputTopic(t) for name, t in outputs.items()}
    worker = FlowWorker(settings, stores, OutputTopic(events_topic), sent_to["aggregates"],
                        OutputTopic(dead_letter_topic), RedisSink(settings),
                        {kind: sent_to[name] for kind, name in topic_of_kind.items()})
    if settings.batch_intake and settings.processing_guarantee == "at_least_once":
        # Under exactly_once, Faust's transactions commit what the agent acknowledges: its own delivery stays.
        events_name = events_topic.get_topic_name()
        app.batch_intake = BatchIntake(app, events_name, worker)
        if app._consumer is not None:  # made already (not by Faust so far): install on it too
            app.batch_intake.install(app._consumer)
        worker.checkpoint.on_markers_saved = MarkerCommits(app, events_name).saved
    app.footfall_worker = worker  # type: ignore[attr-defined]  # for tools and tests that read stats
    register_agents(app, settings, worker, events_topic)
    return app


#: Key of the one record in the state-settings topic.
_STATE_SETTINGS_KEY = b"state-settings"


class StateSettingsRefused(SystemExit):
    """The saved state was made with other state-shaping settings: the worker exits, non-zero, before consuming."""


def state_settings_topic(app_id: str) -> str:
    """The compacted topic holding the settings the app's saved state is made with (beside its changelog)."""
    return f"{app_id}-state-settings"


def refusal_message(settings: Settings, changes: list[tuple[str, Any, Any]], changelog_topic: str) -> str:
    """What the worker says when it refuses to start: the settings, old and new values, and what to do."""
    lines = [f"footfall worker: refusing to start: the saved state (changelog topic {changelog_topic}) was made "
             "with other values of settings it depends on; nothing was consumed."]
    for name, old, new in changes:
        var = f"FOOTFALL_{name.upper()}"
        why = ("its buckets, baselines and models are of that length" if name == "bucket_s" else
               "a longer grace would re-open buckets already published as final")
        lines.append(f"  {var} is {new} now, but the saved state was made with {var}={old} ({why}).")
    restore = " ".join(f"FOOTFALL_{name.upper()}={old}" for name, old, _ in changes)
    lines.append(f"To continue the saved state, restart with {restore}. To count with the new value instead, "
                 f"start under a new FOOTFALL_APP_ID (now {settings.app_id!r}): it starts from empty state and "
                 "re-reads what the events topic still holds; add a new FOOTFALL_TOPIC_PREFIX to keep its "
                 "records apart from the old ones (new topics and Redis keys; producers must follow). "
                 "Changing FOOTFALL_TOPIC_PREFIX alone does not help: the state belongs to the app id.")
    return "\n".join(lines)


def check_state_settings(settings: Settings, changelog_topic: str, record_topic: str, timeout_s: float = 30.0) -> None:
    """Refuse to start (`StateSettingsRefused`) when the saved state was made with other state-shaping settings.

    The values are recorded in `record_topic` (compacted, one partition, one key). With no
    record, or one of other values while the changelog is empty (no state to misread), the
    values now are recorded. A record written concurrently by another worker of the same app
    with other values is caught by reading the record back.
    """
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from footfall.stream.topics import partition_count

    now = settings.state_shape()
    admin = KafkaAdminClient(**settings.kafka.kafka_python(), request_timeout_ms=15_000)
    try:
        existing = set(admin.list_topics())
        if record_topic not in existing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker created it in between
                admin.create_topics([NewTopic(record_topic, num_partitions=1, replication_factor=1,
                                              topic_configs={"cleanup.policy": "compact"})])
        changelog_partitions = partition_count(admin, changelog_topic) if changelog_topic in existing else 0
    finally:
        admin.close()
    consumer = KafkaConsumer(**settings.kafka.kafka_python(), group_id=None, enable_auto_commit=False,
                             request_timeout_ms=15_000)
    try:
        has_state = False
        if changelog_partitions:
            tps = [TopicPartition(changelog_topic, p) for p in range(changelog_partitions)]
            begins, ends = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
            has_state = any(ends[tp] > begins[tp] for tp in tps)
        saved = _last_record(consumer, TopicPartition(record_topic, 0), timeout_s)
        changes = state_shape_changes(saved or {}, settings)
        if changes and has_state:
            message = refusal_message(settings, changes, changelog_topic)
            logger.error("%s", message)
            raise StateSettingsRefused(message)
        if saved is not None and {k: saved.get(k) for k in now} == now:
            logger.info("saved state made with %s, as now", now)
            return
        if saved is None and has_state:
            logger.warning("the saved state in %s has no record of the settings it was made with (made by an "
                           "earlier version): taken to be %s, recorded now", changelog_topic, now)
        producer = KafkaProducer(**settings.kafka.kafka_python(), acks="all")
        try:
            value = {**now, "app_id": settings.app_id, "recorded_at": dt.datetime.now(dt.UTC).isoformat()}
            producer.send(record_topic, key=_STATE_SETTINGS_KEY, value=orjson.dumps(value)).get(timeout=timeout_s)
        finally:
            producer.close()
        logger.info("state-shaping settings %s recorded in %s", now, record_topic)
        back = _last_record(consumer, TopicPartition(record_topic, 0), timeout_s) or {}
        if {k: back.get(k) for k in now} != now:  # another worker of this app recorded other values meanwhile
            message = refusal_message(settings, [(k, back.get(k), v) for k, v in now.items() if back.get(k) != v],
                                      changelog_topic)
            logger.error("%s", message)
            raise StateSettingsRefused(message)
    finally:
        consumer.close()


def _last_record(consumer: Any, tp: Any, timeout_s: float) -> dict[str, Any] | None:
    """The value of the last record of `tp`, as JSON (None when it holds none)."""
    end = consumer.end_offsets([tp])[tp]
    if end == 0:
        return None
    consumer.assign([tp])
    consumer.seek(tp, end - 1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                if record.offset == end - 1:
                    return dict(orjson.loads(record.value))
    raise TimeoutError(f"could not read {tp.topic}[{tp.partition}]@{end - 1} within {timeout_s:.0f} s")
