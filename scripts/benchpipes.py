"""The two comparison pipelines `footfall bench` runs next to the real worker.

Both consume `<prefix>.events` as raw bytes and do the worker's counting and
coalesced output, nothing more:

1. per message: decode it with orjson (one event or a JSON array of events: no
   validation, no pseudonyms, no tables, no changelog, no offset ledger) and add
   each event to an in-memory count per (store, bucket) (`BucketCounts`);
2. once per flush interval (`--flush-s`: the worker's `FOOTFALL_LIVE_INTERVAL_S`,
   1 s), checked after each message and by a timer, as the worker does (`Flusher`):
   one record per (store, bucket) touched since the last flush, shaped like the
   worker's (`stream.records.bucket_record`), is sent to `<prefix>.aggregates`
   and the broker's acknowledgements awaited; then the same records go to Redis
   in one pipeline: HSET `<p>:store:<id>:latest`, XADD `<p>:store:<id>:history`
   (capped as the worker caps it), PUBLISH on `<p>:live:<id>`, and HINCRBY of
   `<p>:stats` (`events`, `messages`: the bench's progress counter). Key names
   come from `schemas.keys.RedisKeys`, as in the worker's sink (`stream/sinks.py`).

No Redis write per message. What the worker does on top (validation, pseudonyms,
duplicates, the store pipeline's stages, live records, roll-ups, the table and its
changelog, offset markers) is what c/b measures. What differs between the two is
only the framework around that work:

- `raw`: an aiokafka consumer (`getmany`) and producer, in a plain loop;
- `faust`: a Faust agent with the worker's app settings (`stream/app.py`
  `faust_app_settings`: linger 5 ms, 64 KB batches, stream buffer 16k).

So bench ratios read as: c/b = what footfall's own logic costs on top of Faust,
b/a = what Faust costs on top of the bare clients. The counting understands only
the bench's events (door per-person events, integer `ts`); it is not a worker.

Run one (the bench does this as a subprocess)::

    python -m footfall.scripts.benchpipes raw --broker 127.0.0.1:9092 \\
        --redis-url redis://127.0.0.1:6379/0 --prefix bench-x --app-id bench-x-app
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis

from footfall.operators.kpis.flow import COUNTERS
from footfall.stream.records import bucket_record
from footfall.stream.settings import Settings, kafka_security

__all__ = ["PIPES", "BucketCounts", "Flusher", "create_faust_app", "main", "run_raw"]

logger = logging.getLogger(__name__)

#: Pipe name -> one-line description.
PIPES = {
    "raw": "aiokafka getmany -> orjson decode -> counts per (store, bucket) -> every flush: records to Kafka "
           "(acks awaited) + one Redis pipeline",
    "faust": "Faust agent (worker's app settings, no table) -> the same counting and flushes as raw",
}

#: Sends one record (key, value) to the aggregates topic; the awaited result is the delivery future.
Send = Callable[[bytes, bytes], Awaitable[Awaitable[Any]]]


class BucketCounts:
    """Events, arrivals and departures per (store, bucket), and the buckets touched since the last `take`.

    Records have the worker's shape (`stream.records.bucket_record` with every
    `operators.kpis.flow.COUNTERS` field), so Kafka and Redis carry as many bytes per
    record as they do for the worker. Buckets never close here.

    Parameters
    ----------
    bucket_ms
        Bucket length in milliseconds.

    Examples
    --------
    >>> counts = BucketCounts(bucket_ms=900_000)
    >>> counts.count(b'{"event_id": "e1", "store_id": "s", "ts": 1000, "direction": "in"}')
    1
    >>> counts.count(b'[{"event_id": "e2", "store_id": "s", "ts": 2000, "direction": "out"},'
    ...              b' {"event_id": "e3", "store_id": "t", "ts": 900000, "direction": "in"}]')
    2
    >>> [(r["store_id"], r["bucket_start_ms"], r["arrivals"], r["departures"], r["events"], r["last_event_id"])
    ...  for r in counts.take(now_ms=5000)]
    [('s', 0, 1, 1, 2, 'e2'), ('t', 900000, 1, 0, 1, 'e3')]
    >>> counts.take(now_ms=6000)
    []

    """

    def __init__(self, bucket_ms: int) -> None:
        self.bucket_ms = bucket_ms
        self._counts: dict[tuple[str, int], dict[str, Any]] = {}
        self._meta: dict[str, tuple[str | None, str | None]] = {}
        self._touched: dict[tuple[str, int], str] = {}  # (store, bucket start) -> last event id counted

    def count(self, value: bytes) -> int:
        """Count the events of one message; return how many there were."""
        doc = orjson.loads(value)
        events = doc if isinstance(doc, list) else [doc]
        bucket_ms, all_counts, touched = self.bucket_ms, self._counts, self._touched
        for event in events:
            store_id = event["store_id"]
            ts_ms = event["ts"]
            key = (store_id, ts_ms - ts_ms % bucket_ms)
            counts = all_counts.get(key)
            if counts is None:
                counts = all_counts[key] = {**dict.fromkeys(COUNTERS, 0), "sales": 0.0}
                self._meta[store_id] = (event.get("region"), event.get("vertical"))
            counts["events"] += 1
            direction = event.get("direction")
            if direction == "in":
                counts["arrivals"] += 1
                counts["door_in"] += 1
            elif direction == "out":
                counts["departures"] += 1
                counts["door_out"] += 1
            touched[key] = event["event_id"]
        return len(events)

    def take(self, now_ms: int | None = None) -> list[dict[str, Any]]:
        """One record per bucket touched since the last call, with its counts so far."""
        touched, self._touched = self._touched, {}
        out = []
        for (store_id, start_ms), last_event_id in touched.items():
            region, vertical = self._meta[store_id]
            out.append(bucket_record(store_id, {"region": region, "vertical": vertical}, start_ms, self.bucket_ms,
                                     self._counts[(store_id, start_ms)], "open", None, last_event_id,
                                     now_ms=now_ms))
        return out

    def give_back(self, records: list[dict[str, Any]]) -> None:
        """Mark the buckets of records a failed flush could not get out as touched again."""
        for record in records:
            self._touched.setdefault((record["store_id"], record["bucket_start_ms"]), record["last_event_id"])


def _flat(record: dict[str, Any]) -> dict[str, str]:
    """A record as hash fields, as the worker's sink writes them: strings as they are, anything else as JSON."""
    return {name: (v if isinstance(v, str) else orjson.dumps(v).decode()) for name, v in record.items()}


class Flusher:
    """Coalesced output: every `interval_s`, the touched buckets' records to Kafka (acks awaited), then Redis.

    One flush at a time (an `asyncio.Lock`, as the worker's), whether the consuming
    loop or a timer calls. A failed flush keeps its records and counters for the next.
    """

    def __init__(self, settings: Settings, counts: BucketCounts, send: Send, interval_s: float) -> None:
        self.settings = settings
        self.keys = settings.redis_keys
        self.counts = counts
        self.send = send
        self.interval_s = interval_s
        self.redis = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=5)
        self.events = 0  # counted, not yet in `<p>:stats`
        self.messages = 0
        self.failures = 0
        self._last_flush = time.monotonic()
        self._lock = asyncio.Lock()

    def seconds_left(self) -> float:
        """Seconds until the next flush is due (0 when due)."""
        return max(0.0, self._last_flush + self.interval_s - time.monotonic())

    def due(self) -> bool:
        return time.monotonic() - self._last_flush >= self.interval_s

    async def flush(self) -> None:
        """Send and write what was counted since the last flush; never raises (failures are logged and kept)."""
        async with self._lock:
            self._last_flush = time.monotonic()
            records = self.counts.take()
            events, messages = self.events, self.messages
            if not records and not events:
                return
            self.events = self.messages = 0
            try:
                bodies = [orjson.dumps(r) for r in records]
                futures = [await self.send(r["store_id"].encode(), body) for r, body in zip(records, bodies,
                                                                                           strict=True)]
                await asyncio.gather(*futures)
                k, maxlen = self.keys, self.settings.history_maxlen
                pipe = self.redis.pipeline(transaction=False)
                for record, body in zip(records, bodies, strict=True):
                    store_id = record["store_id"]
                    pipe.hset(k.store_latest(store_id), mapping=_flat(record))
                    pipe.xadd(k.store_history(store_id), {"record": body}, maxlen=maxlen, approximate=True)
                    pipe.publish(k.live_channel(store_id), body)
                pipe.hincrby(k.stats, "events", events)
                pipe.hincrby(k.stats, "messages", messages)
                async with asyncio.timeout(10):
                    await pipe.execute()
            except Exception as exc:  # a send or Redis failure: kept for the next flush, never raised
                self.failures += 1
                self.counts.give_back(records)
                self.events += events
                self.messages += messages
                logger.error("flush of %d records failed (failures=%d); trying again at the next flush: %r",
                             len(records), self.failures, exc)

    async def close(self) -> None:
        await self.redis.aclose()


def _count(counts: BucketCounts, flusher: Flusher, value: bytes | None, where: str) -> None:
    """Step 1 of the module docstring for one message; never raises."""
    try:
        flusher.events += counts.count(value or b"")
    except Exception:
        logger.exception("bench pipe cannot read the message at %s; skipped", where)
    flusher.messages += 1


# -- (a) raw aiokafka ------------------------------------------------------------------------


async def run_raw(settings: Settings, flush_s: float) -> None:
    """Consume, count and flush until SIGTERM or SIGINT."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    out_topic = settings.topic("aggregates")
    consumer = AIOKafkaConsumer(
        settings.topic("events"), **settings.kafka.aiokafka(), group_id=settings.app_id,
        auto_offset_reset="earliest", enable_auto_commit=True,
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_s * 1000),
        max_partition_fetch_bytes=1024**2,  # Faust's consumer_max_fetch_size
    )
    # Faust's producer defaults (acks=all) with the worker's linger and batch size.
    producer = AIOKafkaProducer(**settings.kafka.aiokafka(), acks="all", linger_ms=5, max_batch_size=65_536)

    async def send(key: bytes, value: bytes) -> Awaitable[Any]:
        return await producer.send(out_topic, key=key, value=value)

    counts = BucketCounts(settings.bucket_ms)
    flusher = Flusher(settings, counts, send, flush_s)
    await producer.start()
    await consumer.start()
    logger.info("raw pipe running: %s -> %s, flushing every %g s", settings.topic("events"), out_topic, flush_s)
    try:
        while not stop.is_set():
            # Wake up for the next flush even when nothing comes (the worker's timer does the same).
            batches = await consumer.getmany(timeout_ms=max(1, int(flusher.seconds_left() * 1000)))
            for tp, messages in batches.items():
                for message in messages:
                    _count(counts, flusher, message.value, f"{tp.topic}[{tp.partition}]@{message.offset}")
                    if flusher.due():
                        await flusher.flush()
            if flusher.due():
                await flusher.flush()
        await flusher.flush()  # on stop: nothing counted stays unpublished
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await producer.stop()
        await flusher.close()


# -- (b) Faust agent -------------------------------------------------------------------------


def create_faust_app(settings: Settings, flush_s: float) -> Any:
    """A Faust app with the worker's settings, one counting agent (no table) and a flush timer."""
    import faust

    from footfall.stream.app import faust_app_settings

    # Exactly the worker's app settings, so (b) and (c) differ only in what the agent does.
    app = faust.App(settings.app_id, **faust_app_settings(settings, data_dir_prefix="footfall-bench-"))
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    events_topic = app.topic(settings.topic("events"), partitions=settings.partitions, **raw)
    out_topic = app.topic(settings.topic("aggregates"), partitions=settings.partitions, **raw)

    async def send(key: bytes, value: bytes) -> Awaitable[Any]:
        return await out_topic.send(key=key, value=value)

    counts = BucketCounts(settings.bucket_ms)
    flusher = Flusher(settings, counts, send, flush_s)

    @app.agent(events_topic, concurrency=1)
    async def count_events(stream: faust.StreamT[bytes]) -> None:
        try:
            async for event in stream.events():
                message = event.message
                _count(counts, flusher, message.value, f"{message.topic}[{message.partition}]@{message.offset}")
                if flusher.due():
                    await flusher.flush()
        finally:
            await flusher.flush()

    @app.timer(interval=flush_s)
    async def flush_counts() -> None:
        await flusher.flush()  # as the worker's `flush_live`: a quiet pipe still shows its last events

    return app


def run_faust(settings: Settings, flush_s: float) -> None:
    """Run the Faust pipe until SIGTERM or Ctrl-C."""
    import faust

    app = create_faust_app(settings, flush_s)
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), redirect_stdouts=False, override_logging=False)
    worker.execute_from_commandline()


# -- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run one comparison pipe (`raw` or `faust`) until stopped."""
    parser = argparse.ArgumentParser(prog="python -m footfall.scripts.benchpipes", description=__doc__.split("\n")[0])
    parser.add_argument("pipe", choices=sorted(PIPES))
    parser.add_argument("--broker", required=True, help="Kafka bootstrap host:port")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True, help="topic and Redis key prefix")
    parser.add_argument("--app-id", required=True, help="consumer group / Faust app id")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--flush-s", type=float, default=Settings.live_interval_s,
                        help=f"seconds between flushes (default {Settings.live_interval_s:g}, the worker's "
                        "FOOTFALL_LIVE_INTERVAL_S default)")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if args.flush_s <= 0:
        parser.error("--flush-s must be positive: these pipes only write coalesced")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    settings = Settings(broker=args.broker, redis_url=args.redis_url, topic_prefix=args.prefix, app_id=args.app_id,
                        partitions=args.partitions, data_dir=args.data_dir, log_level=args.log_level,
                        **kafka_security(os.environ))  # FOOTFALL_KAFKA_*: TLS, SASL
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # as `footfall worker` does
    except ImportError:
        pass
    if args.pipe == "raw":
        asyncio.run(run_raw(settings, args.flush_s))
    else:
        run_faust(settings, args.flush_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
