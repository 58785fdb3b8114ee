"""The worker's agent and timers: they wire Faust to the `FlowWorker`, and do none of its work.

- `count_flow` (the agent) hands each message of the events topic to the worker when Faust
  delivers them one by one (`FOOTFALL_BATCH_INTAKE=false`, or exactly_once); by default
  `stream.batch_intake` gives the worker each partition's fetched records at once, and the
  agent only keeps the topic subscribed;
- `flush_live` publishes and checkpoints every `FOOTFALL_LIVE_INTERVAL_S`, so a store
  that went quiet still shows its last events within the interval;
- `tick_idle_stores` sends a tick through the events topic for each store silent past
  `FOOTFALL_IDLE_TIMEOUT_S` with a bucket due to close (the store's own partition
  applies it, in order, exactly once);
- `catch_up_stalled` reads straight from Kafka what a stalled consumer does not deliver;
- `watch_recovery` does the same for a table recovery its consumer gives nothing (`stream.recovery_watch`);
- on a rebalance, revoked partitions are flushed before another worker restores them,
  and memory forgets them (the table is the truth after recovery);
- with `FOOTFALL_WEB_ENABLED`, `/metrics` (Prometheus) and `/health` on the web port.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import TYPE_CHECKING, Any

import faust

from footfall.stream.diagnostics import consumer_state, log_task_stacks
from footfall.stream.metrics import WorkerSnapshot, health, prometheus_text
from footfall.stream.recovery_watch import RecoveryWatch
from footfall.stream.refetch import RangeReader
from footfall.stream.settings import Settings
from footfall.stream.worker import FlowWorker

if TYPE_CHECKING:  # app.py imports this module
    from footfall.stream.app import FlowApp

__all__ = ["PROGRESS_LOG_S", "register_agents", "register_metrics_pages"]

logger = logging.getLogger(__name__)

PROGRESS_LOG_S = 30.0


def register_agents(app: FlowApp, settings: Settings, worker: FlowWorker, events_topic: faust.TopicT) -> None:
    """Attach the agent, the timers and the rebalance hooks to `app`."""
    events_name = events_topic.get_topic_name()

    def settled() -> bool:
        """No rebalance or table recovery under way: the table and the assignment can be trusted."""
        return not app.rebalancing and not getattr(app, "in_recovery", False)

    def assigned() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == events_name}

    @app.on_partitions_revoked.connect
    async def _save_revoked(app: faust.App, revoked: set, **kwargs: object) -> None:
        # Publish and save what changed before another worker restores these partitions from the changelog.
        await worker.flush(save=True)
        await app.producer.flush()
        partitions = {tp.partition for tp in revoked if tp.topic == events_name}
        worker.forget_partitions(partitions)  # and what failed to get out: the new owner publishes it again
        worker.owners.revoked(partitions)

    async def _save_before_stop() -> None:
        # Nothing more is applied, then everything is published and saved, markers included.
        await worker.stop()
        await app.producer.flush()

    app.before_stop.append(_save_before_stop)

    @app.on_partitions_assigned.connect
    async def _forget_assigned(app: faust.App, assigned: set, **kwargs: object) -> None:
        # The table is the truth for a partition after recovery; re-read it on the partition's next message.
        partitions = {tp.partition for tp in assigned if tp.topic == events_name}
        worker.forget_partitions(partitions)
        # Claimed at the group's generation: a worker frozen past its session timeout that still holds
        # them has an older one, and its writes are refused (`stream.ownership`).
        worker.owners.assigned(partitions, getattr(app, "consumer_generation_id", None))

    @app.agent(events_topic, concurrency=1)
    async def count_flow(stream: faust.StreamT[bytes]) -> None:
        try:
            async for event in stream.events():
                m = event.message
                await worker.process(m.key, m.value, m.topic, m.partition, m.offset, m.headers)
        finally:
            await worker.flush(save=True)  # on stop: nothing counted stays unpublished or unsaved

    if settings.live_interval_s > 0:

        @app.timer(interval=settings.live_interval_s)
        async def flush_live() -> None:
            try:
                await worker.flush()
            except Exception:  # a timer that raises stops the worker: log, and flush again next time
                logger.exception("flush failed; will retry")

    if settings.idle_timeout_s > 0:

        @app.timer(interval=1.0)
        async def tick_idle_stores() -> None:
            if not settled():
                return  # the table may be half restored: never load stores from it now
            try:
                worker.stores.load_saved(assigned() - worker.owners.lost)
                await worker.send_idle_ticks(int(time.time() * 1000))  # a tick not delivered is due again
            except Exception:
                logger.exception("idle ticks failed; will retry")

    @app.timer(interval=worker.owners.refresh_s)
    async def refresh_owners() -> None:
        # Claims stay alive while held; a partition contested after the group was created again is won
        # once the old claim lapses (`stream.ownership`).
        if not settled():
            return
        try:
            await worker.refresh_owners()
        except Exception:
            logger.exception("refreshing partition owners failed; will retry")

    @app.timer(interval=max(1.0, settings.stall_s / 3))
    async def catch_up_stalled() -> None:
        if settings.stall_s <= 0 or not settled():
            return
        try:
            partitions = sorted(assigned())
            if partitions:
                await worker.catch_up(events_name, partitions, settings.stall_s,
                                      still_assigned=lambda p: settled() and p in assigned())
        except Exception:  # the broker may be away for a while: log, and try again at the next tick
            logger.exception("catching up stalled partitions failed; will retry")

    if settings.stall_s > 0:
        # Its own reader: the catch-up's may be reading events meanwhile. `recovery_fed` counts what it hands over.
        recovery_watch = RecoveryWatch(app, RangeReader(settings.kafka), settings.stall_s, count=worker.outbox.count)

        async def watch_recovery() -> None:
            while not app.should_stop:
                await asyncio.sleep(max(1.0, settings.stall_s / 3))
                try:
                    await recovery_watch.check()
                except Exception:  # the broker may be away for a while: log, and look again next time
                    logger.exception("feeding the stalled table recovery failed; will retry")

        app.from_start.append(watch_recovery)  # from the start: the first recovery can stall too
        app.before_stop.append(recovery_watch.reader.close)

    @app.task
    async def _dump_tasks_on_sigusr1() -> None:
        # `kill -USR1 <worker pid>` logs where every asyncio task waits: the way to see a stalled worker.
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, log_task_stacks)

    if settings.web_enabled:
        register_metrics_pages(app, settings, worker, events_name)

    @app.timer(interval=PROGRESS_LOG_S)
    async def log_progress() -> None:
        # One line per interval: enough to see a stalled or replaying worker in its log.
        logger.info("%s; consumer %s", worker.progress_line(), consumer_state(app, events_name))


def register_metrics_pages(app: faust.App, settings: Settings, worker: FlowWorker, events_name: str) -> None:
    """`/metrics` (Prometheus text) and `/health` (200 or 503) on the worker's web port (`stream.metrics`)."""

    def snapshot() -> WorkerSnapshot:
        ends: dict[int, int | None] = {}
        for tp in app.consumer.assignment():
            if tp.topic == events_name:
                try:
                    ends[tp.partition] = app.consumer.highwater(tp)
                except Exception:  # not fetched yet: its lag is unknown
                    ends[tp.partition] = None
        return worker.snapshot(ends)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.text(prometheus_text(snapshot()), content_type="text/plain; version=0.0.4")

    @app.page("/health")
    async def health_page(web: Any, request: Any) -> Any:
        ok, why = health(snapshot(), settings.health_max_checkpoint_age_s)
        return web.text(why + "\n", content_type="text/plain", status=200 if ok else 503)
