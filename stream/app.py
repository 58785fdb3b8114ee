"""The Faust application: built from `Settings`, with footfall's topics, tables and agents.

`create_app(settings)` returns a ready `faust.App`; `footfall worker` runs it.
Input topics carry raw bytes (decoded in `schemas/`, never by Faust), so a bad
payload cannot fail inside Faust after its offset is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import faust
import orjson

from footfall.stream.agents import TICK_HEADER, FlowCounter
from footfall.stream.settings import Settings
from footfall.stream.sinks import RedisSink

__all__ = ["create_app", "faust_app_settings"]

logger = logging.getLogger(__name__)

PROGRESS_LOG_S = 30.0


def faust_app_settings(settings: Settings, data_dir_prefix: str = "footfall-") -> dict[str, Any]:
    """Keyword arguments of `faust.App` for these settings (the worker's, and the benchmark's passthrough)."""
    return {
        "broker": [f"kafka://{hostport}" for hostport in settings.broker.split(",")],
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
        "stream_buffer_maxsize": 16_384,
        "web_enabled": settings.web_enabled,
        "web_port": settings.web_port,
        "web_host": "127.0.0.1",
    }


def _await_chain(awaitable: object) -> list[str]:
    """Where a coroutine waits: its frame, the frame of what it awaits, and so on down."""
    frames, seen = [], 0
    while awaitable is not None and seen < 40:
        seen += 1
        if isinstance(awaitable, asyncio.Task):
            awaitable = awaitable.get_coro()
            continue
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None) or getattr(
            awaitable, "ag_frame", None)
        if frame is not None:
            frames.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        nxt = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None) or getattr(
            awaitable, "ag_await", None)
        if nxt is None:
            if frame is None:
                frames.append(repr(awaitable)[:200])
            break
        awaitable = nxt
    return frames


def _consumer_state(app: faust.App, topic: str) -> str:
    """Which input partitions Faust's consumer fetches from, and which it holds back (for the progress log)."""
    consumer = app.consumer

    def of_topic(tps: object) -> list[int]:
        return sorted(tp.partition for tp in (tps or ()) if tp.topic == topic)  # type: ignore[attr-defined]

    return (f"flow {'on' if consumer.flow_active else 'off'}, fetching {of_topic(consumer._active_partitions)}, "
            f"paused {of_topic(consumer._paused_partitions)}, buffer-full {of_topic(consumer._buffered_partitions)}")


def _log_task_stacks() -> None:
    for task in asyncio.all_tasks():
        logger.warning("task %s waits at:\n  %s", task.get_name(), "\n  ".join(_await_chain(task)))


def create_app(settings: Settings) -> faust.App:
    """Build the worker's Faust app: topics, the per-store bucket table and the flow agent."""
    app = faust.App(settings.app_id, **faust_app_settings(settings))
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    events_topic = app.topic(settings.topic("events"), partitions=settings.partitions, **raw)
    aggregates_topic = app.topic(settings.topic("aggregates"), partitions=settings.partitions, **raw)
    dead_letter_topic = app.topic(settings.topic("dead-letter"), partitions=settings.partitions, **raw)
    predictions_topic = app.topic(settings.topic("predictions"), partitions=settings.partitions, **raw)
    alerts_topic = app.topic(settings.topic("alerts"), partitions=settings.partitions, **raw)
    stores = app.Table(
        "stores",
        default=None,
        partitions=settings.partitions,
        key_type=str,  # keys travel as JSON; values are sent as orjson bytes and restored as dicts
        help="Per store: buckets, windows, occupancy, queues, days, baselines; per partition: the last offset.",
    )
    redis_sink = RedisSink(settings)
    counter = FlowCounter(settings, stores, events_topic, aggregates_topic, dead_letter_topic, redis_sink,
                          predictions_topic, alerts_topic)
    app.footfall_counter = counter  # type: ignore[attr-defined]  # for tools and tests that read stats

    events_name = settings.topic("events")

    @app.on_partitions_revoked.connect
    async def _save_revoked(app: faust.App, revoked: set, **kwargs: object) -> None:
        # Publish and save what changed before another worker restores these partitions from the changelog.
        await counter.flush()
        await app.producer.flush()
        counter.forget_partitions({tp.partition for tp in revoked if tp.topic == events_name})

    @app.on_partitions_assigned.connect
    async def _forget_assigned(app: faust.App, assigned: set, **kwargs: object) -> None:
        # The table is the truth for a partition after recovery; re-read it on the partition's next message.
        counter.forget_partitions({tp.partition for tp in assigned if tp.topic == events_name})

    def settled() -> bool:
        """No rebalance or table recovery under way: the table and the assignment can be trusted."""
        return not app.rebalancing and not getattr(app, "in_recovery", False)

    def assigned() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == events_name}

    @app.agent(events_topic, concurrency=1)
    async def count_flow(stream: faust.StreamT[bytes]) -> None:
        try:
            async for event in stream.events():
                message = event.message
                await counter.process(message.key, message.value, message.topic, message.partition, message.offset,
                                      message.headers)
        finally:
            await counter.flush()  # on stop: nothing counted stays unpublished

    if settings.live_interval_s > 0:

        @app.timer(interval=settings.live_interval_s)
        async def flush_live() -> None:
            # A store that went quiet still shows its last events within the interval.
            try:
                await counter.flush()
            except Exception:  # a timer that raises stops the worker: log, and flush again next time
                logger.exception("flush failed; will retry")

    if settings.idle_timeout_s > 0:

        @app.timer(interval=1.0)
        async def tick_idle_stores() -> None:
            # A silent store's buckets close on wall-clock time: a tick through the events topic (so the
            # store's own partition applies it, in order, exactly once) moves its event time on.
            if not settled():
                return  # the table may be half restored: never load stores from it now
            try:
                counter.load_saved_stores(assigned())
                for store_id, advance_to_ms in counter.idle_ticks(int(time.time() * 1000)):
                    body = orjson.dumps({"advance_to_ms": advance_to_ms})
                    await events_topic.send(key=store_id.encode(), value=body, headers=[(TICK_HEADER, body)])
            except Exception:
                logger.exception("idle ticks failed; will retry")

    @app.timer(interval=max(1.0, settings.stall_s / 3))
    async def catch_up_stalled() -> None:
        if settings.stall_s <= 0 or not settled():
            return
        try:
            partitions = sorted(assigned())
            if partitions:
                await counter.catch_up(events_name, partitions, settings.stall_s,
                                       still_assigned=lambda p: settled() and p in assigned())
        except Exception:  # the broker may be away for a while: log, and try again at the next tick
            logger.exception("catching up stalled partitions failed; will retry")

    @app.task
    async def _dump_tasks_on_sigusr1() -> None:
        # `kill -USR1 <worker pid>` logs where every asyncio task waits: the way to see a stalled worker.
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _log_task_stacks)

    @app.timer(interval=PROGRESS_LOG_S)
    async def log_progress() -> None:
        # One line per interval: enough to see a stalled or replaying worker in its log.
        logger.info("%s; consumer %s", counter.progress_line(), _consumer_state(app, events_name))

    return app
