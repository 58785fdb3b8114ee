"""The worker's agents: raw event messages in; bucket records, live KPIs, Redis state and dead letters out.

`FlowCounter.process` handles one Kafka message and never raises: every input
ends counted, re-keyed, dropped as a duplicate (and counted), or dead-lettered
with a reason.

0. exactly once per offset (`stream.offsets`): a message already applied is
   skipped, and offsets Faust skipped are read back and applied first;
1. decode (`schemas.decode_message`): bad payloads and bad batch elements become
   dead letters; identifiers are pseudonymised;
2. events whose `store_id` is not the message key go back to the events topic
   under the right key (a store's state lives in one partition only);
3. per store, `operators.store.StoreFlow` takes the events: duplicates are
   dropped and counted, late ones dead-lettered with reason `late`, the rest
   counted into buckets, windows, occupancy, queues and the local day;
4. records (closed buckets, open buckets, one live snapshot per store) wait in
   `_pending`, a newer one replacing the older, and go out at most every
   `FOOTFALL_LIVE_INTERVAL_S` (a busy store does not cost a send and a Redis
   write per event; no change waits longer).

State. Each store's `StoreFlow` stays in memory; its plain-data state is
written to the `stores` table (and so its changelog) at each flush, not per
message, followed by one marker per partition holding the partition's last
applied offset. After a crash the table may lag the committed input offsets by
up to one flush: the marker then shows the gap and the missing messages are
read back from Kafka and applied again, each store skipping what its own saved
offset says it already holds. Re-applied messages may re-send dead letters and
re-routed events (the latter are then dropped as duplicates).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson

from footfall.operators.alerts import Alert
from footfall.operators.localtime import local_day
from footfall.operators.store import StoreFlow, StoreParams
from footfall.operators.store_forecast import PublishedForecast
from footfall.operators.store_models import StoreModels
from footfall.schemas.events import Event, Limits
from footfall.schemas.messages import decode_message, scrub_identifiers
from footfall.schemas.privacy import Pseudonymizer
from footfall.stream.offsets import OffsetLedger
from footfall.stream.refetch import RangeReader
from footfall.stream.settings import Settings
from footfall.stream.sinks import DeadLetterLog, RedisSink, dead_letter_headers

__all__ = ["REROUTED_HEADER", "TICK_HEADER", "FlowCounter", "alert_record", "bucket_record", "forecast_key",
           "forecast_record", "live_record", "marker_key"]

logger = logging.getLogger(__name__)

#: Header of the worker's own idle ticks on the events topic (value: JSON `{"advance_to_ms": ...}`).
TICK_HEADER = "footfall.tick"
#: Header of events the worker re-sent under their store's key (value: `<source partition>:<source offset>`).
REROUTED_HEADER = "footfall.rerouted-from"


def _iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def marker_key(partition: int) -> str:
    """Table key of a partition's marker: the last input offset applied in that partition."""
    return f"~partition-{partition}"


def forecast_key(store_id: str) -> str:
    """Table key of a store's forecasters and watches (its own key: it changes once a bucket, the store per flush)."""
    return f"~fc:{store_id}"


def alert_record(store_id: str, meta: dict[str, Any], tz: str, alert: Alert) -> dict[str, Any]:
    """The published form of an alert change (alerts topic, Redis)."""
    return {
        "type": "alert",
        **alert.to_dict(),
        "region": meta.get("region"),
        "vertical": meta.get("vertical"),
        "tz": tz,
        "started": _iso(alert.started_ms),
        "bucket_start": _iso(alert.bucket_start_ms),
        "emitted_at_ms": int(time.time() * 1000),
    }


def forecast_record(store_id: str, meta: dict[str, Any], tz: str, published: PublishedForecast) -> dict[str, Any]:
    """The published form of one series' forecast (predictions topic, Redis)."""
    f = published.forecast
    return {
        "type": "forecast",
        "store_id": store_id,
        "region": meta.get("region"),
        "vertical": meta.get("vertical"),
        "tz": tz,
        "series": published.series,
        "made_at_ms": f.made_at_ms,
        "made_at": _iso(f.made_at_ms),
        "bucket_ms": f.bucket_ms,
        "model": f.model,
        "cold": published.cold,
        "points": [
            {"target_ms": f.start_ms + i * f.bucket_ms, "h": i + 1, "forecast": round(v, 4),
             "lo80": round(f.lo80[i], 4), "hi80": round(f.hi80[i], 4), "lo95": round(f.lo95[i], 4),
             "hi95": round(f.hi95[i], 4), "model": f.models[i]}
            for i, v in enumerate(f.values)
        ],
        "emitted_at_ms": int(time.time() * 1000),
    }


def bucket_record(
    store_id: str, meta: dict[str, Any], start_ms: int, bucket_ms: int, kpis: dict[str, Any], status: str,
    watermark_ms: int | None, last_event_id: str | None, tz: str = "UTC",
) -> dict[str, Any]:
    """The published form of one bucket (aggregates topic, Redis)."""
    return {
        "type": "bucket",
        "store_id": store_id,
        "region": meta.get("region"),
        "vertical": meta.get("vertical"),
        "tz": tz,
        "day": local_day(start_ms, tz).isoformat(),
        "bucket_start": _iso(start_ms),
        "bucket_start_ms": start_ms,
        "bucket_s": bucket_ms // 1000,
        "status": status,
        **kpis,
        "watermark_ms": watermark_ms,
        "last_event_id": last_event_id,
        "emitted_at_ms": int(time.time() * 1000),
    }


def live_record(store_id: str, meta: dict[str, Any], tz: str, live: dict[str, Any]) -> dict[str, Any]:
    """The published form of a store's live state (aggregates topic, Redis)."""
    return {
        "type": "live",
        "store_id": store_id,
        "region": meta.get("region"),
        "vertical": meta.get("vertical"),
        "tz": tz,
        **live,
        "emitted_at_ms": int(time.time() * 1000),
    }


@dataclass
class _Send:
    """A message handed to the producer whose delivery a marker must wait for (resent if it failed)."""

    topic: faust.TopicT
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None
    future: Any = None  # the producer's FutureMessage; None when not handed over yet

    async def send(self) -> None:
        self.future = await self.topic.send(key=self.key, value=self.value, headers=self.headers)


@dataclass
class _Store:
    """A store held in memory: its operators, metadata, and where its state stands in the input."""

    flow: StoreFlow
    meta: dict[str, Any]
    partition: int
    offset: int  # last input offset applied to it
    wall_ms: int = field(default_factory=lambda: int(time.time() * 1000))  # when it last had an event
    wm_at_wall_ms: int | None = None  # its watermark then
    ticked_to_ms: int = -1  # the newest idle tick sent for it
    # Re-routed messages applied, as source partition -> highest source offset: a re-routed message
    # sent again (its source re-applied after a crash) is recognised whatever its events' age.
    rerouted: dict[str, int] = field(default_factory=dict)
    models: StoreModels | None = None  # forecasts and watches; None until its first closed bucket (or when off)
    models_changed: bool = False  # changed since they were last saved


class FlowCounter:
    """Per-message logic of the flow agent, with its table, topics and sinks."""

    def __init__(
        self,
        settings: Settings,
        table: faust.Table,
        events_topic: faust.TopicT,
        aggregates_topic: faust.TopicT,
        dead_letter_topic: faust.TopicT,
        redis_sink: RedisSink,
        predictions_topic: faust.TopicT | None = None,
        alerts_topic: faust.TopicT | None = None,
    ) -> None:
        if not settings.pseudonym_secret:
            raise ValueError("FOOTFALL_PSEUDONYM_SECRET is required: customer ids are never stored raw")
        self.settings = settings
        self.table = table
        self.events_topic = events_topic
        self.aggregates_topic = aggregates_topic
        self.dead_letter_topic = dead_letter_topic
        self.predictions_topic = predictions_topic
        self.alerts_topic = alerts_topic
        self._capacities = settings.capacity_of_store
        self.redis = redis_sink
        self._holidays = settings.holiday_dates
        self.pseudonymize = Pseudonymizer(settings.pseudonym_secret.encode())
        self.limits = Limits(min_ts_ms=settings.min_event_time_ms, max_future_ms=settings.max_future_s * 1000)
        self.dead_letters = DeadLetterLog(settings.dead_letter_log_every_s)
        self.stats: Counter[str] = Counter()
        self.ledger = OffsetLedger()
        self.range_reader = RangeReader(settings.broker)
        self._timezones = settings.timezone_of_store
        self._stores: dict[str, _Store] = {}
        self._dirty: set[str] = set()
        self._dirty_partitions: dict[int, int] = {}  # partition -> last applied offset, not yet saved
        # Records and counters waiting for the next flush; a newer record of a bucket replaces the older.
        self._pending: dict[tuple[str, int | str], dict[str, Any]] = {}
        self._pending_stats: Counter[str] = Counter()
        self._last_flush = time.monotonic()
        # One message at a time, whether the agent or the catch-up reader applies it.
        self._lock = asyncio.Lock()
        self._progress_at: dict[int, float] = {}  # partition -> when its next offset last moved (monotonic)
        self._in_flight: list[_Send] = []  # re-routes and dead letters not yet confirmed by the broker

    # -- configuration per store ------------------------------------------------------------------

    def params_for(self, store_id: str) -> StoreParams:
        s = self.settings
        return StoreParams(
            bucket_ms=s.bucket_ms, grace_ms=s.grace_ms, tz=self._timezones.get(store_id, s.timezone),
            reset_at=s.reset_at, dedupe_horizon_ms=s.dedupe_horizon_s * 1000, target_wait_s=s.target_wait_s,
        )

    def _store(self, store_id: str, partition: int) -> _Store:
        store = self._stores.get(store_id)
        if store is None:
            saved = self.table.get(store_id) or {}
            flow = StoreFlow.from_state(saved.get("st"), self.params_for(store_id))
            store = _Store(
                flow=flow, meta={"region": saved.get("region"), "vertical": saved.get("vertical")},
                partition=saved.get("p", partition), offset=saved.get("o", -1), wm_at_wall_ms=flow.watermark_ms,
                rerouted=dict(saved.get("rr") or {}),
            )
            store.models = self._load_models(store_id)
            self._stores[store_id] = store
        return store

    def _load_models(self, store_id: str) -> StoreModels | None:
        saved = self.table.get(forecast_key(store_id))
        if not saved or not saved.get("b"):
            return None
        try:
            return StoreModels.from_bytes(base64.b64decode(saved["b"]))
        except Exception:  # a state this version cannot read: start the store's models over, say so
            logger.exception("%s: saved forecasting state unreadable; its forecasts and alerts start over", store_id)
            return None

    def _learn_models(self, store_id: str, store: _Store, start_ms: int, kpis: dict[str, Any]) -> None:
        """Judge a closed bucket against its forecasts, learn it, queue the forecasts and alert changes.

        The logic is `operators.store_models.StoreModels`'; here only what it reads from the
        store at the close (occupancy, the estimated queue wait) and what it gives is published.
        """
        horizon = self.settings.forecast_horizon
        if horizon <= 0:
            return
        flow, tz = store.flow, store.flow.params.tz
        if store.models is None:
            store.models = StoreModels(store_id, self.settings.bucket_ms, horizon, tz, store.meta.get("vertical"),
                                       self._holidays, capacity=self._capacities.get(store_id),
                                       queue_target_s=self.settings.target_wait_s)
        store.models.set_vertical(store.meta.get("vertical"))
        store.models_changed = True
        try:
            queue_wait_s = flow.queues.get()["total"].get("est_wait_s") if flow.queues is not None else None
            outcome = store.models.learn_bucket(start_ms, kpis, occupancy=float(flow.occupancy.get()),
                                                queue_wait_s=queue_wait_s)
        except Exception:
            # The counts stand whatever a model does: a forecaster or detector that fails starts the
            # store's models over (logged and counted as `forecast_errors`) instead of costing the message.
            logger.exception("%s: forecasting the bucket at %s failed; its forecasts and alerts start over",
                             store_id, _iso(start_ms))
            store.models = None
            self.stats["forecast_errors"] += 1
            self._pending_stats["forecast_errors"] += 1
            return
        self._queue_alerts(store_id, store, outcome.alerts)
        for published in outcome.forecasts:
            record = forecast_record(store_id, store.meta, tz, published)
            self._pending[(store_id, f"forecast:{published.series}:{record['made_at_ms']}")] = record

    def _queue_alerts(self, store_id: str, store: _Store, changes: list[Alert]) -> None:
        for alert in changes:
            record = alert_record(store_id, store.meta, store.flow.params.tz, alert)
            self._pending[(store_id, f"alert:{alert.alert_id}:{alert.updated_ms}:{alert.state}")] = record
            self._pending_stats[f"alerts_{alert.state}"] += 1
            self.stats[f"alerts_{alert.state}"] += 1

    # -- flushing -----------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Publish what waits, then save the state it came from.

        In this order, under the lock (no message is applied meanwhile): wait until the
        broker has every re-routed event and dead letter sent so far; send the waiting
        records to the aggregates topic and wait for them; write them to Redis; then
        write every changed store to the table's changelog, wait for those, and only
        then each partition's marker. A marker therefore never says a message was applied
        while its outputs could still be lost: a crash re-applies everything after the
        marker, which republishes the same values (repeats of re-routed events are
        recognised by their source offset). When a send or the Redis write fails, nothing
        is saved: what failed is kept and tried again at the next flush, and the markers
        wait (logged and counted as `flush_failed`).
        """
        async with self._lock:
            self._last_flush = time.monotonic()
            self._queue_open_and_live()
            records, self._pending = dict(self._pending), {}
            stats, self._pending_stats = self._pending_stats, Counter()
            sends, self._in_flight = self._in_flight, []
            sends += [_Send(self._topic_of(r), r["store_id"].encode(), orjson.dumps(r)) for r in records.values()]
            failed = await self._deliver(sends)
            redis_ok = True
            if not failed and (records or stats):
                redis_ok = await self.redis.publish(list(records.values()), stats)
            if failed or not redis_ok:
                # Keep what is not known to be out: re-routes and dead letters to resend, records and
                # counters to write again (unless a newer record of the same bucket came meanwhile).
                self._in_flight = [s for s in failed if s.topic not in self._record_topics] + self._in_flight
                self._pending = {**records, **self._pending}
                self._pending_stats.update(stats)
                self.stats["flush_failed"] += 1
                logger.error("flush failed (%d sends, Redis %s): nothing saved; trying again at the next flush",
                             len(failed), "ok" if redis_ok else "failed")
                return
            await self._save_states()

    def _topic_of(self, record: dict[str, Any]) -> faust.TopicT:
        if record["type"] == "forecast" and self.predictions_topic is not None:
            return self.predictions_topic
        if record["type"] == "alert" and self.alerts_topic is not None:
            return self.alerts_topic
        return self.aggregates_topic

    @property
    def _record_topics(self) -> tuple[faust.TopicT, ...]:
        return tuple(t for t in (self.aggregates_topic, self.predictions_topic, self.alerts_topic) if t is not None)

    async def _deliver(self, sends: list[_Send]) -> list[_Send]:
        """Hand `sends` to the producer (those not handed over yet) and wait; return those that failed."""
        for item in sends:
            if item.future is None:
                try:
                    await item.send()
                except Exception as exc:  # e.g. no metadata within the timeout: resend later
                    logger.error("send to %s failed: %r", item.topic.get_topic_name(), exc)
        waiting = [item for item in sends if item.future is not None]
        results = await asyncio.gather(*(item.future for item in waiting), return_exceptions=True)
        failed = [item for item in sends if item.future is None]
        for item, result in zip(waiting, results, strict=True):
            if isinstance(result, BaseException):
                logger.error("send to %s failed: %r", item.topic.get_topic_name(), result)
                item.future = None
                failed.append(item)
        return failed

    async def _save_states(self) -> None:
        """Write every changed store to the table's changelog, wait for them, then each partition's marker.

        Forecasting states go first, and the stores only once they are in: a store's saved offset
        must never be ahead of its forecasters (they would miss the buckets in between), while
        forecasters ahead of their store learn nothing twice (`StoreForecasts.learn_bucket` skips
        what it has).
        """
        learned = [(store_id, self._stores[store_id]) for store_id in self._dirty
                   if self._stores[store_id].models_changed]
        if learned:
            saves = [self._save(store.partition, forecast_key(store_id), {
                "b": base64.b64encode(store.models.to_bytes()).decode() if store.models else None,
            }) for store_id, store in learned]
            results = await asyncio.gather(*saves, return_exceptions=True)
            if any(isinstance(result, BaseException) for result in results):
                self.stats["flush_failed"] += 1
                logger.error("saving forecasting states failed: store states and offset markers wait")
                return
            for _, store in learned:
                store.models_changed = False
        written = []
        for store_id in list(self._dirty):
            store = self._stores[store_id]
            value = {"st": store.flow.to_state(), **store.meta, "p": store.partition, "o": store.offset,
                     "rr": dict(store.rerouted)}
            written.append((store_id, self._save(store.partition, store_id, value)))
        results = await asyncio.gather(*(future for _, future in written), return_exceptions=True)
        failed = {store_id for (store_id, _), result in zip(written, results, strict=True)
                  if isinstance(result, BaseException)}
        self._dirty = failed
        if failed:
            self.stats["flush_failed"] += 1
            logger.error("saving %d store states failed: offset markers wait for the next flush", len(failed))
            return
        for partition, offset in self._dirty_partitions.items():
            self._save(partition, marker_key(partition), {"p": partition, "o": offset})
        self._dirty_partitions.clear()

    def _save(self, partition: int, key: str, value: dict[str, Any]) -> Any:
        # Set the store without Faust's own changelog send (which needs the current event for its
        # partition, absent in the timer), and send the changelog record to the store's partition.
        self.table.data[key] = value
        return self.table.send_changelog(partition, key, orjson.dumps(value), value_serializer="raw")

    def forget_partitions(self, partitions: set[int]) -> None:
        """Drop what memory holds of these partitions (after a rebalance the table is the truth)."""
        self.ledger.forget(partitions)
        for partition in partitions:
            self._progress_at.pop(partition, None)
        for store_id in [k for k, s in self._stores.items() if s.partition in partitions]:
            del self._stores[store_id]
            self._dirty.discard(store_id)
        for partition in partitions:
            self._dirty_partitions.pop(partition, None)

    def load_saved_stores(self, partitions: set[int]) -> None:
        """Bring the stores the table holds for `partitions` (this worker's) into memory, so silent ones get ticks."""
        for key, saved in list(self.table.data.items()):
            if (key not in self._stores and not key.startswith("~") and isinstance(saved, dict)
                    and saved.get("p") in partitions):
                self._store(key, saved["p"])

    # -- progress -----------------------------------------------------------------------------------

    def progress_line(self) -> str:
        """Totals since start and the next expected offset per partition, for the worker's log."""
        totals = ", ".join(f"{name}={count}" for name, count in sorted(self.stats.items())) or "nothing yet"
        return f"progress: {totals}; stores in memory {len(self._stores)}; next offsets {self.ledger.snapshot()}"

    # -- messages -----------------------------------------------------------------------------------

    def _applied_offset(self, partition: int) -> list[int]:
        marker = self.table.get(marker_key(partition))
        return [marker["o"]] if isinstance(marker, dict) and "o" in marker else []

    async def process(
        self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int,
        headers: Any = None,
    ) -> None:
        """Handle one message exactly once; never raises."""
        async with self._lock:
            await self._process_locked(key, value, topic, partition, offset, headers)
        if time.monotonic() - self._last_flush >= self.settings.live_interval_s:
            try:
                await self.flush()
            except Exception:  # nothing was saved: the next flush tries again
                logger.exception("flush failed; will retry")

    def _restore(self, topic: str, partition: int, offset: int) -> None:
        self.ledger.restore(partition, self._applied_offset(partition))
        self._progress_at[partition] = time.monotonic()
        logger.info("%s[%d]: first message at offset %d; the table has applied offsets below %s",
                    topic, partition, offset, self.ledger.next_offset(partition))

    async def _process_locked(
        self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int, headers: Any,
    ) -> None:
        try:
            if not self.ledger.known(partition):
                self._restore(topic, partition, offset)
            verdict = self.ledger.classify(partition, offset)
            if verdict == "replay":
                self.stats["replayed"] += 1
                self._pending_stats["replayed"] += 1
                return
            if verdict == "gap":
                try:
                    await self._fill_gap(topic, partition, offset)
                except Exception:
                    # Not applied either: the ledger stays before the gap, so the next message (or the
                    # catch-up timer) reads the whole range again, this message included.
                    logger.exception("could not read back the offsets before %s[%d]@%d; will retry",
                                     topic, partition, offset)
                    self.stats["gap_retries"] += 1
                    return
        except Exception:
            logger.exception("offset bookkeeping failed at %s[%d]@%d; applying the message as it is",
                             topic, partition, offset)
        await self._apply(key, value, topic, partition, offset, headers)

    async def catch_up(
        self, topic: str, partitions: list[int], stall_s: float, still_assigned: Callable[[int], bool] = lambda p: True,
    ) -> int:
        """Apply what waits in `partitions` when the consumer has delivered nothing there for `stall_s`.

        A safety net under Faust's consumer: measured here, a restarted faust-streaming
        0.15.3 worker sometimes stops delivering (its fetcher stays idle after recovery)
        with messages waiting. The waiting range is read straight from Kafka and
        applied as the agent would; what the consumer delivers later is a replay and
        skipped. `still_assigned(partition)` is asked again under the lock: a partition
        given away meanwhile is left to its new owner. Returns the number of records applied.
        """
        now = time.monotonic()
        stalled = [p for p in partitions if now - self._progress_at.setdefault(p, now) >= stall_s]
        if not stalled:
            return 0
        ends = await self.range_reader.end_offsets(topic, stalled)
        applied = 0
        for partition, end in sorted(ends.items()):
            async with self._lock:
                if not still_assigned(partition):
                    continue
                if not self.ledger.known(partition):
                    self.ledger.restore(partition, self._applied_offset(partition))
                start = self.ledger.next_offset(partition) or 0
                if start >= end:
                    self._progress_at[partition] = time.monotonic()
                    continue
                records = await self.range_reader.read(topic, partition, start, end)
                logger.warning("%s[%d]: nothing delivered for %.0f s while offsets %d..%d wait; applying %d records "
                               "read straight from Kafka", topic, partition, stall_s, start, end - 1, len(records))
                for record in records:
                    await self._apply(record.key, record.value, topic, partition, record.offset, record.headers)
                applied += len(records)
                self._pending_stats["caught_up"] += len(records)
                self.stats["caught_up"] += len(records)
        if applied:
            await self.flush()
        return applied

    async def _fill_gap(self, topic: str, partition: int, offset: int) -> None:
        start, end = self.ledger.missing_range(partition, offset)
        logger.info("reading back %s[%d] offsets %d..%d", topic, partition, start, end - 1)
        records = await self.range_reader.read(topic, partition, start, end)
        logger.warning("offsets %s[%d] %d..%d never reached the agent; applying %d records read back from Kafka",
                       topic, partition, start, end - 1, len(records))
        for record in records:
            await self._apply(record.key, record.value, topic, partition, record.offset, record.headers)
        self._pending_stats["gap_records"] += len(records)

    async def _apply(
        self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int, headers: Any,
    ) -> None:
        try:
            tick = _tick_of(headers)
            if tick is not None:
                self._tick(key, tick, partition, offset)
            else:
                await self._process(key, value, topic, partition, offset, _rerouted_from(headers))
        except Exception as exc:  # the last line of defence: one bad message must not stop the worker
            logger.exception("unexpected error at %s[%d]@%d; message dead-lettered", topic, partition, offset)
            try:
                await self._dead_letter(value or b"", "internal_error", f"{type(exc).__name__}: {exc}",
                                        topic, partition, offset, None)
            except Exception:
                logger.exception("could not dead-letter %s[%d]@%d", topic, partition, offset)
        self.ledger.applied(partition, offset)
        self._dirty_partitions[partition] = offset
        self._progress_at[partition] = time.monotonic()

    def _tick(self, key: bytes | None, advance_to_ms: int, partition: int, offset: int) -> None:
        """The worker's own idle tick: move a silent store's event time on, closing its buckets."""
        store_id = (key or b"").decode("utf-8", "replace")
        if store_id not in self._stores and self.table.get(store_id) is None:
            return
        store = self._store(store_id, partition)
        if store.offset >= offset:
            return
        store.flow.advance(advance_to_ms)
        store.offset = offset
        self._dirty.add(store_id)
        self._queue_records(store_id, store)
        self._pending_stats["idle_ticks"] += 1

    async def _process(
        self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int,
        rerouted_from: tuple[str, int] | None = None,
    ) -> None:
        now_ms = int(time.time() * 1000)
        decoded = decode_message(value, now_ms=now_ms, limits=self.limits, pseudonymize=self.pseudonymize)
        for reject in decoded.rejects:
            await self._dead_letter(reject.payload, reject.reason, reject.error, topic, partition, offset,
                                    reject.batch_index)
        key_str = key.decode("utf-8", "replace") if key else None
        by_store: dict[str, list[tuple[Event, Any]]] = {}
        for event, original in zip(decoded.events, decoded.originals, strict=True):
            by_store.setdefault(event.store_id, []).append((event, original))
        stats: Counter[str] = Counter(messages=1, rejected=len(decoded.rejects))
        for store_id, items in by_store.items():
            if store_id != key_str:
                # Mis-keyed: its state lives in another partition. Send it back, keyed right;
                # the original (raw) bytes go only to the input topic they came from.
                await self._send(self.events_topic, store_id.encode(), orjson.dumps([o for _, o in items]),
                                 [(REROUTED_HEADER, f"{partition}:{offset}".encode())])
                stats["rerouted"] += len(items)
                continue
            await self._count_store(store_id, items, topic, partition, offset, stats, rerouted_from)
        self.stats.update(stats)
        self._pending_stats.update(stats)

    async def _count_store(
        self, store_id: str, items: list[tuple[Event, Any]], topic: str, partition: int, offset: int,
        stats: Counter[str], rerouted_from: tuple[str, int] | None = None,
    ) -> None:
        store = self._store(store_id, partition)
        if store.partition == partition and store.offset >= offset:
            return  # this store already holds this message (a re-read after a crash)
        if rerouted_from is not None:
            source, source_offset = rerouted_from
            if store.rerouted.get(source, -1) >= source_offset:
                stats["rerouted_repeats"] += len(items)  # sent again when its source was re-applied
                return
            store.rerouted[source] = source_offset
        flow = store.flow
        for event, original in items:
            fate = flow.update(event)
            if fate == "late":
                late_by_ms = flow.buckets.late_by_ms(event.ts_ms)
                await self._dead_letter(
                    orjson.dumps(scrub_identifiers(original, self.pseudonymize)), "late",
                    f"LateEvent: event {event.event_id!r} at {_iso(event.ts_ms)} is {late_by_ms} ms past the close "
                    f"of its bucket (grace {self.settings.grace_s} s, watermark {_iso(flow.watermark_ms or 0)})",
                    topic, partition, offset, None,
                )
                stats["late"] += 1
                continue
            if fate == "duplicate":
                stats["duplicates"] += 1
                continue
            stats["events"] += 1
            if event.region:
                store.meta["region"] = event.region
            if event.vertical:
                store.meta["vertical"] = event.vertical
        store.partition, store.offset = partition, offset
        store.wall_ms, store.wm_at_wall_ms = int(time.time() * 1000), flow.watermark_ms
        self._dirty.add(store_id)
        self._queue_records(store_id, store)

    def _queue_records(self, store_id: str, store: _Store) -> None:
        """A store's closed buckets into `_pending` now; its open buckets and live state at the next flush."""
        flow, s, tz = store.flow, self.settings, store.flow.params.tz
        for start, kpis in flow.pop_closed():
            self._pending[(store_id, start)] = bucket_record(store_id, store.meta, start, s.bucket_ms, kpis,
                                                             "closed", flow.watermark_ms, None, tz)
            self._learn_models(store_id, store, start, kpis)
        # Built once per flush (for the stores `_dirty` names), not per message: only the newest is published.

    def _queue_open_and_live(self) -> None:
        """Records of the open buckets touched and the live state of every store changed since the last save."""
        for store_id in self._dirty:
            store = self._stores[store_id]
            flow, s, tz = store.flow, self.settings, store.flow.params.tz
            for start, kpis, event_id in flow.pop_touched():
                self._pending[(store_id, start)] = bucket_record(store_id, store.meta, start, s.bucket_ms, kpis,
                                                                 "open", flow.watermark_ms, event_id, tz)
                self._early_warnings(store_id, store, start, kpis)
            self._pending[(store_id, "live")] = live_record(store_id, store.meta, tz, flow.live())

    def _early_warnings(self, store_id: str, store: _Store, start_ms: int, kpis: dict[str, Any]) -> None:
        """An open bucket whose count so far already makes it (likely) too high raises its alert now."""
        now_ms = store.flow.watermark_ms
        if store.models is None or now_ms is None:
            return
        try:
            changes = store.models.check_partial(now_ms, start_ms, kpis)
            if changes:
                store.models_changed = True
                self._queue_alerts(store_id, store, changes)
        except Exception:  # an early warning is a courtesy: never worth a message
            logger.exception("%s: early warning at %s failed", store_id, _iso(start_ms))

    # -- idle stores --------------------------------------------------------------------------------

    def idle_ticks(self, now_ms: int) -> list[tuple[str, int]]:
        """`(store_id, advance_to_ms)` for stores silent for `FOOTFALL_IDLE_TIMEOUT_S` with a bucket to close.

        A silent store's event time is taken to run on with the wall clock: its
        watermark at its last event plus the wall time since. A tick is due when
        that reaches the close of its oldest open bucket (end + grace), once per close.
        """
        timeout_ms = int(self.settings.idle_timeout_s * 1000)
        if timeout_ms <= 0:
            return []
        out = []
        for store_id, store in self._stores.items():
            idle_ms = now_ms - store.wall_ms
            if idle_ms < timeout_ms or store.wm_at_wall_ms is None:
                continue
            next_close = store.flow.next_close_ms()
            target = store.wm_at_wall_ms + idle_ms
            if next_close is not None and target >= next_close > store.ticked_to_ms:
                out.append((store_id, target))
                store.ticked_to_ms = target
        return out

    async def _send(self, topic: faust.TopicT, key: bytes | None, value: bytes,
                    headers: list[tuple[str, bytes]] | None) -> None:
        """Hand a message to the producer; the next flush waits for it (and resends it if it failed)."""
        item = _Send(topic, key, value, headers)
        try:
            await item.send()
        except Exception as exc:  # kept: the next flush tries again before it saves anything
            logger.error("send to %s failed: %r", topic.get_topic_name(), exc)
        self._in_flight.append(item)

    async def _dead_letter(
        self, payload: bytes, reason: str, error: str, topic: str, partition: int, offset: int,
        batch_index: int | None,
    ) -> None:
        headers = dead_letter_headers(reason=reason, error=error, topic=topic, partition=partition,
                                      offset=offset, batch_index=batch_index)
        await self._send(self.dead_letter_topic, None, payload, headers)
        self.dead_letters.record(reason, error, f"{topic}[{partition}]@{offset}")
        await self.redis.count_dead_letter(reason)


def _header(headers: Any, name: str) -> bytes | None:
    if not headers:
        return None
    items = headers.items() if isinstance(headers, dict) else headers
    for key, raw in items:
        if key == name:
            return raw
    return None


def _rerouted_from(headers: Any) -> tuple[str, int] | None:
    """`(source partition, source offset)` of a re-routed message, or None."""
    raw = _header(headers, REROUTED_HEADER)
    if raw is None:
        return None
    source, _, offset = raw.decode().partition(":")
    return source, int(offset)


def _tick_of(headers: Any) -> int | None:
    """The target time of an idle tick message, or None for an ordinary message."""
    raw = _header(headers, TICK_HEADER)
    return None if raw is None else int(orjson.loads(raw)["advance_to_ms"])
