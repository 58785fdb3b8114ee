"""Intake: one Kafka message in, every input accounted for.

`Intake.apply` never raises. Each message is an idle tick (the worker's own,
header `footfall.tick`) or a message of events:

1. decode (`schemas.decode_message`): bad payloads and bad batch elements become
   dead letters with their reason; identifiers are pseudonymised;
2. events of a store id `FOOTFALL_STORE_IDS` does not let in are dead-lettered with reason
   `unknown_store` (no state, no Redis keys are made for it); events whose `store_id` is not
   the message key go back to the events topic under the right key (a store's state lives in
   one partition only), with a header naming their source partition and offset so that a
   resend of them is recognised, whenever it comes (`stores.ReroutedSeen`);
3. per store, its pipeline (`operators.pipeline.store_pipeline.StorePipeline`) takes the events:
   duplicates are dropped and counted, late ones dead-lettered with reason `late`,
   the rest counted;
4. the pipeline's outputs (closed buckets, then forecasts and alert changes) become
   records in the outbox; open buckets and the live state are collected once per
   flush (`collect_live`), not per message.

Sizes. One limit, `FOOTFALL_MAX_MESSAGE_BYTES`, holds end to end: the decoder accepts messages
up to it, the producer sends up to it (`producer_max_request_size`), and nothing the worker
sends may exceed it, since a send that can never succeed would hold every later checkpoint
back forever. So: a dead letter too large to send whole (an input over the limit, or any
other) carries only an excerpt, its first 4 KiB, with headers `footfall.original.bytes` and
`footfall.original.sha256` (the input as received for `too_large`; otherwise the bytes the dead
letter would have held) and `footfall.excerpt.bytes`; mis-keyed events whose re-encoding no
longer fits are dead-lettered `too_large` rather than re-routed; a record of an extra stage
over the limit is dropped as a stage error (`records_too_large`). A store's state is kept
under the limit by its bounded duplicate memory (`operators.windows.dedupe`, overflow counted
as `dedupe_overflow`); should a state still outgrow it, `collect_live` first forgets the
oldest remembered ids until it fits, and if that is not enough it logs an error, counts
`state_too_large` and leaves that store unsaved at this checkpoint (the others and the offset
markers go on): the store keeps counting in memory and its records are published, but after
a restart it resumes from its last saved state, missing the events applied since.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import Counter
from typing import Any

import orjson

from footfall.operators.pipeline.stage import AlertOutput, BucketOutput, ForecastOutput, LiveOutput, Output, StageError
from footfall.schemas.events import Event, Limits
from footfall.schemas.messages import EXCERPT_BYTES, decode_message, scrub_identifiers
from footfall.schemas.privacy import Pseudonymizer
from footfall.stream.outbox import Outbox
from footfall.stream.output_topic import RawTopic
from footfall.stream.records import iso, record_of
from footfall.stream.sinks import DeadLetterLog, RedisSink, dead_letter_headers
from footfall.stream.stores import HeldStore, StoreRegistry

__all__ = ["REROUTED_HEADER", "TICK_HEADER", "Intake", "rerouted_from", "tick_of"]

logger = logging.getLogger(__name__)

#: Outputs whose records footfall builds itself (always JSON).
BUILT_IN_OUTPUTS = (BucketOutput, LiveOutput, ForecastOutput, AlertOutput)

#: Header of the worker's own idle ticks on the events topic (value: JSON `{"advance_to_ms": ...}`).
TICK_HEADER = "footfall.tick"
#: Header of events the worker re-sent under their store's key (value: `<source partition>:<source offset>`).
REROUTED_HEADER = "footfall.rerouted-from"

#: Bytes a Kafka record takes beyond its key, value and headers, generously (the batch header is 61).
RECORD_OVERHEAD = 256
#: A store whose saved state was measured under a quarter of the limit is measured again after this long.
STATE_SIZE_CHECK_EVERY_S = 10.0


def record_bytes(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> int:
    """An upper bound of the size the producer gives a record (`max_request_size` is checked against it)."""
    return (RECORD_OVERHEAD + len(key or b"") + len(value)
            + sum(len(name.encode()) + len(raw) + 10 for name, raw in headers or ()))


class Intake:
    """Applies messages to the stores in memory (see the module docstring)."""

    def __init__(self, settings: Any, stores: StoreRegistry, outbox: Outbox, events_topic: RawTopic,
                 dead_letter_topic: RawTopic, redis_sink: RedisSink) -> None:
        if not settings.pseudonym_secret:
            raise ValueError("FOOTFALL_PSEUDONYM_SECRET is required: customer ids are never stored raw")
        self.settings = settings
        self.stores = stores
        self.outbox = outbox
        self.events_topic = events_topic
        self.dead_letter_topic = dead_letter_topic
        self.redis = redis_sink
        self.pseudonymize = Pseudonymizer(settings.pseudonym_secret.encode())
        self.max_bytes = settings.max_message_bytes
        self.limits = Limits(min_ts_ms=settings.min_event_time_ms, max_future_ms=settings.max_future_s * 1000,
                             max_message_bytes=self.max_bytes)
        self.dead_letters = DeadLetterLog(settings.dead_letter_log_every_s)

    async def apply(self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int,
                    headers: Any) -> None:
        """Apply one message; never raises (an unexpected error dead-letters it as `internal_error`)."""
        try:
            tick = tick_of(headers)
            if tick is not None:
                self._tick(key, tick, partition, offset)
            else:
                await self._events(key, value, topic, partition, offset, rerouted_from(headers))
        except Exception as exc:  # the last line of defence: one bad message must not stop the worker
            logger.exception("unexpected error at %s[%d]@%d; message dead-lettered", topic, partition, offset)
            try:
                await self.dead_letter(value or b"", "internal_error", f"{type(exc).__name__}: {exc}",
                                       topic, partition, offset, None)
            except Exception:
                logger.exception("could not dead-letter %s[%d]@%d", topic, partition, offset)

    def _tick(self, key: bytes | None, advance_to_ms: int, partition: int, offset: int) -> None:
        """The worker's own idle tick: move a silent store's event time on, closing its buckets."""
        store_id = (key or b"").decode("utf-8", "replace")
        if not self.stores.known(store_id):
            return
        store = self.stores.get(store_id, partition)
        if store.offset >= offset:
            return
        store.pipeline.advance(advance_to_ms)
        store.offset = offset
        self.stores.dirty.add(store_id)
        self.stores.touched.add(store_id)
        self.queue_outputs(store, store.pipeline.pop_outputs())
        self.outbox.count("idle_ticks")

    async def _events(self, key: bytes | None, value: bytes | None, topic: str, partition: int, offset: int,
                      rerouted: tuple[str, int] | None) -> None:
        decoded = decode_message(value, now_ms=int(time.time() * 1000), limits=self.limits,
                                 pseudonymize=self.pseudonymize)
        for reject in decoded.rejects:
            await self.dead_letter(reject.payload, reject.reason, reject.error, topic, partition, offset,
                                   reject.batch_index, original_bytes=reject.original_bytes,
                                   original_sha256=reject.original_sha256)
        key_str = key.decode("utf-8", "replace") if key else None
        by_store: dict[str, list[tuple[Event, Any]]] = {}
        for event, original in zip(decoded.events, decoded.originals, strict=True):
            by_store.setdefault(event.store_id, []).append((event, original))
        stats: Counter[str] = Counter()  # filled key by key: Counter(**counts) goes through its slow update
        stats["messages"], stats["rejected"] = 1, len(decoded.rejects)
        for store_id, items in by_store.items():
            if not self.settings.store_allowed(store_id):
                # Not an id FOOTFALL_STORE_IDS lets in: no state, no re-route, no Redis keys for it.
                for _, original in items:
                    await self.dead_letter(
                        orjson.dumps(scrub_identifiers(original, self.pseudonymize)), "unknown_store",
                        f"UnknownStore: store_id {store_id!r} matches none of FOOTFALL_STORE_IDS",
                        topic, partition, offset, None)
                stats["rejected"] += len(items)
                continue
            if store_id != key_str:
                # Mis-keyed: its state lives in another partition. Send it back, keyed right;
                # the original (raw) bytes go only to the input topic they came from.
                body = orjson.dumps([o for _, o in items])
                headers = [(REROUTED_HEADER, f"{partition}:{offset}".encode())]
                if record_bytes(store_id.encode(), body, headers) > self.max_bytes:
                    # Re-encoded, they no longer fit in one message (it cannot be sent): dead-lettered instead.
                    await self.dead_letter(
                        orjson.dumps(scrub_identifiers([o for _, o in items], self.pseudonymize)), "too_large",
                        f"InvalidEvent: re-routed events of store {store_id!r}: value of {len(body)} bytes "
                        f"violates rule 'at most {self.max_bytes} bytes'", topic, partition, offset, None)
                    stats["rejected"] += len(items)
                    continue
                await self.outbox.send(self.events_topic, store_id.encode(), body, headers)
                stats["rerouted"] += len(items)
                continue
            await self._count(store_id, items, topic, partition, offset, stats, rerouted)
        self.outbox.count_all(stats)

    async def _count(self, store_id: str, items: list[tuple[Event, Any]], topic: str, partition: int, offset: int,
                     stats: Counter[str], rerouted: tuple[str, int] | None) -> None:
        store = self.stores.get(store_id, partition)
        if store.partition == partition and store.offset >= offset:
            return  # this store already holds this message (a re-read after a crash)
        if rerouted is not None and not store.rerouted.first_time(*rerouted):
            stats["rerouted_repeats"] += len(items)  # sent again: its source re-applied, or its send retried
            return
        pipeline = store.pipeline
        for event, original in items:
            fate = pipeline.update(event)
            if fate == "late":
                await self.dead_letter(
                    orjson.dumps(scrub_identifiers(original, self.pseudonymize)), "late",
                    f"LateEvent: event {event.event_id!r} at {iso(event.ts_ms)} is "
                    f"{pipeline.late_by_ms(event.ts_ms)} ms past the close of its bucket (grace "
                    f"{self.settings.grace_s} s, watermark {iso(pipeline.watermark_ms or 0)})",
                    topic, partition, offset, None,
                )
                stats["late"] += 1
            elif fate == "duplicate":
                stats["duplicates"] += 1
            else:
                stats["events"] += 1
        overflow = pipeline.flow.dedupe.take_overflow()
        if overflow:  # ids forgotten before their horizon, for the bound on the store's state
            stats["dedupe_overflow"] += overflow
        store.partition, store.offset = partition, offset
        store.wall_ms, store.wm_at_wall_ms = int(time.time() * 1000), pipeline.watermark_ms
        self.stores.dirty.add(store_id)
        self.stores.touched.add(store_id)
        self.queue_outputs(store, pipeline.pop_outputs())

    def queue_outputs(self, store: HeldStore, outputs: list[Output]) -> None:
        """A store's pipeline outputs into the outbox as records; stage errors logged and counted."""
        meta, bucket_ms, now_ms = store.meta, store.pipeline.params.bucket_ms, int(time.time() * 1000)
        for output in outputs:
            if isinstance(output, StageError):
                self._stage_error(meta.store_id, output)
                continue
            record = record_of(meta, output, bucket_ms, now_ms)
            if type(output) not in BUILT_IN_OUTPUTS:
                try:  # a newer stage's record must be JSON now: at the checkpoint it would hold everything up
                    size = record_bytes(meta.store_id.encode(), orjson.dumps(record))
                except TypeError as exc:
                    self._stage_error(meta.store_id, StageError(output.kind, "record", None,
                                                                f"{type(exc).__name__}: {exc}", False))
                    continue
                if size > self.max_bytes:  # it could never be sent: it would hold every later checkpoint back
                    self._stage_error(meta.store_id, StageError(
                        output.kind, "record", None, f"RecordTooLarge: {size} bytes, over "
                        f"FOOTFALL_MAX_MESSAGE_BYTES={self.max_bytes}: not published", False))
                    self.outbox.count("records_too_large")
                    continue
            self.outbox.put(meta.store_id, output.slot, record)
            if output.kind == "alert":
                self.outbox.count(f"alerts_{output.alert.state}")  # type: ignore[attr-defined]

    def _stage_error(self, store_id: str, error: StageError) -> None:
        at = iso(error.bucket_start_ms) if error.bucket_start_ms is not None else "-"
        if error.restarted:
            # The counts stand whatever a stage does: a failing stage starts the store's stage over.
            logger.error("%s: stage %s failed at %s (bucket %s); it starts over: %s\n%s", store_id, error.stage,
                         error.moment, at, error.error, error.details.get("traceback", ""))
            self.outbox.count(f"{error.stage}_errors")
        else:
            logger.error("%s: stage %s failed at %s (bucket %s): %s\n%s", store_id, error.stage, error.moment, at,
                         error.error, error.details.get("traceback", ""))

    def collect_live(self) -> None:
        """Open buckets touched and the live state of every store changed since the last save, into the outbox.

        Each changed store's state is also checked to fit in one message (`fits`): one that does not
        is left out of this checkpoint rather than hold every store's checkpoint back.
        """
        unsaveable = []
        for store_id in self.stores.dirty:
            store = self.stores[store_id]
            # Only stores changed since the last collection: while checkpoints fail (Redis away), the
            # others' live records are already waiting, and publishing them again would repeat them.
            if store_id in self.stores.touched:
                self.queue_outputs(store, store.pipeline.pop_outputs(live=True))
            if not self.fits(store_id, store):
                unsaveable.append(store_id)
        self.stores.touched.clear()
        self.stores.dirty.difference_update(unsaveable)

    def state_bytes(self, store_id: str, store: HeldStore) -> int:
        """Bytes of the record that saves the store's state (as `stream.checkpoint` writes it)."""
        return record_bytes(orjson.dumps(store_id), store.serialise()[1])

    def fits(self, store_id: str, store: HeldStore) -> bool:
        """Whether the store's saved state fits in one message, forgetting its oldest event ids if that is needed.

        Measured when last seen above a quarter of the limit, else at most every `STATE_SIZE_CHECK_EVERY_S`
        (a state grows by the bounded duplicate memory fast, by anything else slowly). A size the
        checkpoint measured when it saved the store counts as a measure: at 5,000 live stores, measuring
        again here took 4 % of the worker's time (README, "Scale").
        """
        now = time.monotonic()
        if (0 <= store.state_value_bytes < self.max_bytes // 4
                and now - store.state_measured_at < STATE_SIZE_CHECK_EVERY_S):
            return True
        size = self.state_bytes(store_id, store)
        if size > self.max_bytes:
            dedupe = store.pipeline.flow.dedupe
            excess_ids = math.ceil((size - self.max_bytes) / 8)  # each id forgotten takes 8 bytes or more
            forgotten = dedupe.evict(max(0, len(dedupe) - excess_ids))
            self.outbox.count("dedupe_overflow", dedupe.take_overflow())
            size = self.state_bytes(store_id, store)
            logger.warning("%s: saved state over FOOTFALL_MAX_MESSAGE_BYTES=%d: forgot its %d oldest event ids "
                           "(a repeat of them counts again); now %d bytes", store_id, self.max_bytes, forgotten, size)
        if size <= self.max_bytes:
            return True
        logger.error("%s: saved state is %d bytes, over FOOTFALL_MAX_MESSAGE_BYTES=%d even with no event ids "
                     "remembered: not saved at this checkpoint (the other stores and the offset markers are); "
                     "after a restart it resumes from its last saved state", store_id, size, self.max_bytes)
        self.outbox.count("state_too_large")
        return False

    async def dead_letter(self, payload: bytes, reason: str, error: str, topic: str, partition: int, offset: int,
                          batch_index: int | None, *, original_bytes: int | None = None,
                          original_sha256: str | None = None) -> None:
        """Send a dead letter; one too large to send whole carries an excerpt (see the module docstring)."""
        headers = dead_letter_headers(reason=reason, error=error, topic=topic, partition=partition,
                                      offset=offset, batch_index=batch_index)
        if original_bytes is None and record_bytes(None, payload, headers) + 200 > self.max_bytes:
            original_bytes, original_sha256 = len(payload), hashlib.sha256(payload).hexdigest()
            payload = payload[:EXCERPT_BYTES]
        if original_bytes is not None:
            headers += [("footfall.original.bytes", str(original_bytes).encode()),
                        ("footfall.original.sha256", (original_sha256 or "").encode()),
                        ("footfall.excerpt.bytes", str(len(payload)).encode())]
        await self.outbox.send(self.dead_letter_topic, None, payload, headers)
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


def rerouted_from(headers: Any) -> tuple[str, int] | None:
    """`(source partition, source offset)` of a re-routed message, or None."""
    raw = _header(headers, REROUTED_HEADER)
    if raw is None:
        return None
    source, _, offset = raw.decode().partition(":")
    return source, int(offset)


def tick_of(headers: Any) -> int | None:
    """The target time of an idle tick message, or None for an ordinary message."""
    raw = _header(headers, TICK_HEADER)
    return None if raw is None else int(orjson.loads(raw)["advance_to_ms"])
