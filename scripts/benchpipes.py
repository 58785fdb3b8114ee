"""The two comparison pipelines `footfall bench` runs next to the real worker.

Both consume `<prefix>.events` as raw bytes and, per message, do the same work:

1. send the message's value unchanged, same key, to `<prefix>.aggregates`;
2. decode it with orjson (one event or a JSON array of events: no validation,
   no pseudonyms, no tables, no changelog, no offset ledger);
3. add each event to an in-memory count per (store, bucket) (`BucketCounts`);
4. write one record per touched bucket, shaped like the worker's, with
   `footfall.stream.sinks.RedisSink.publish`: the very pipeline the worker
   writes per message (latest hash, history stream, day hash + EXPIRE,
   PUBLISH on `<p>:live:<store_id>`, HINCRBY of `<p>:stats`), awaited per message.

What differs is only the framework around that work:

- `raw`: an aiokafka consumer (`getmany`) and producer, in a plain loop;
- `faust`: a Faust agent with the worker's app settings (`stream/app.py`).

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
import datetime as dt
import logging
import signal
import sys
import time
from collections import Counter
from typing import Any

import orjson

from footfall.operators.kpis.flow import COUNTERS
from footfall.stream.settings import Settings
from footfall.stream.sinks import RedisSink

__all__ = ["PIPES", "BucketCounts", "create_faust_app", "main", "run_raw"]

logger = logging.getLogger(__name__)

#: Pipe name -> one-line description (also printed by the bench).
PIPES = {
    "raw": "aiokafka consumer -> orjson decode -> aiokafka producer (value passthrough) + worker's Redis pipeline",
    "faust": "Faust agent (worker's app settings, no table) -> topic.send(value) + worker's Redis pipeline",
}

#: Settings the worker's app uses (`stream/app.py`), kept equal by hand: see that file.


def _iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


class BucketCounts:
    """Events, arrivals and departures per (store, bucket): the least work that yields the worker's records.

    Records have the worker's keys (`stream.agents.bucket_record` with every
    `operators.kpis.flow.COUNTERS` field), so Redis stores and publishes as many bytes
    as it does for the worker. Buckets never close here.

    Parameters
    ----------
    bucket_ms
        Bucket length in milliseconds.

    Examples
    --------
    >>> counts = BucketCounts(bucket_ms=900_000)
    >>> records, n = counts.records(b'[{"event_id": "e1", "store_id": "s", "ts": 1000, "direction": "in"},'
    ...                             b' {"event_id": "e2", "store_id": "s", "ts": 2000, "direction": "out"}]')
    >>> n, [(r["bucket_start_ms"], r["arrivals"], r["departures"], r["events"], r["last_event_id"]) for r in records]
    (2, [(0, 1, 1, 2, 'e2')])

    """

    def __init__(self, bucket_ms: int) -> None:
        self.bucket_ms = bucket_ms
        self._counts: dict[tuple[str, int], dict[str, Any]] = {}
        self._meta: dict[str, tuple[str | None, str | None]] = {}

    def records(self, value: bytes) -> tuple[list[dict[str, Any]], int]:
        """Count the events of one message; return one record per touched bucket and the event count."""
        doc = orjson.loads(value)
        events = doc if isinstance(doc, list) else [doc]
        touched: dict[tuple[str, int], str] = {}
        for event in events:
            store_id = event["store_id"]
            ts_ms = event["ts"]
            key = (store_id, ts_ms - ts_ms % self.bucket_ms)
            counts = self._counts.get(key)
            if counts is None:
                counts = self._counts[key] = {**dict.fromkeys(COUNTERS, 0), "sales": 0.0}
            counts["events"] += 1
            direction = event.get("direction")
            if direction == "in":
                counts["arrivals"] += 1
                counts["door_in"] += 1
            elif direction == "out":
                counts["departures"] += 1
                counts["door_out"] += 1
            self._meta[store_id] = (event.get("region"), event.get("vertical"))
            touched[key] = event["event_id"]
        now_ms = int(time.time() * 1000)
        out = []
        for (store_id, start_ms), last_event_id in touched.items():
            region, vertical = self._meta[store_id]
            out.append({
                "type": "bucket", "store_id": store_id, "region": region, "vertical": vertical,
                "bucket_start": _iso(start_ms), "bucket_start_ms": start_ms, "bucket_s": self.bucket_ms // 1000,
                "status": "open", **self._counts[(store_id, start_ms)], "watermark_ms": None,
                "last_event_id": last_event_id, "emitted_at_ms": now_ms,
            })
        return out, len(events)


async def _handle(
    counts: BucketCounts, sink: RedisSink, value: bytes | None, where: str
) -> None:
    """Steps 2-4 of the module docstring for one message; never raises."""
    try:
        records, n = counts.records(value or b"")
    except Exception:
        logger.exception("bench pipe cannot read the message at %s; skipped", where)
        return
    await sink.publish(records, Counter(messages=1, events=n))


# -- (a) raw aiokafka ------------------------------------------------------------------------


async def run_raw(settings: Settings) -> None:
    """Consume, pass through and write Redis until SIGTERM or SIGINT."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    out_topic = settings.topic("aggregates")
    consumer = AIOKafkaConsumer(
        settings.topic("events"), bootstrap_servers=settings.broker, group_id=settings.app_id,
        auto_offset_reset="earliest", enable_auto_commit=True,
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_s * 1000),
        max_partition_fetch_bytes=1024**2,  # Faust's consumer_max_fetch_size
    )
    # Faust's producer defaults (acks=all) with the worker's linger and batch size.
    producer = AIOKafkaProducer(bootstrap_servers=settings.broker, acks="all", linger_ms=5, max_batch_size=65_536)
    sink = RedisSink(settings)
    counts = BucketCounts(settings.bucket_ms)
    await producer.start()
    await consumer.start()
    logger.info("raw pipe running: %s -> %s", settings.topic("events"), out_topic)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for tp, messages in batches.items():
                for message in messages:
                    await producer.send(out_topic, key=message.key, value=message.value)
                    await _handle(counts, sink, message.value, f"{tp.topic}[{tp.partition}]@{message.offset}")
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await producer.stop()
        await sink.close()


# -- (b) Faust passthrough -------------------------------------------------------------------


def create_faust_app(settings: Settings) -> Any:
    """A Faust app with the worker's settings and one passthrough agent (no table)."""
    import faust

    from footfall.stream.app import faust_app_settings

    # Exactly the worker's app settings, so (b) and (c) differ only in what the agent does.
    app = faust.App(settings.app_id, **faust_app_settings(settings, data_dir_prefix="footfall-bench-"))
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    events_topic = app.topic(settings.topic("events"), partitions=settings.partitions, **raw)
    out_topic = app.topic(settings.topic("aggregates"), partitions=settings.partitions, **raw)
    sink = RedisSink(settings)
    counts = BucketCounts(settings.bucket_ms)

    @app.agent(events_topic, concurrency=1)
    async def passthrough(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            where = f"{message.topic}[{message.partition}]@{message.offset}"
            try:
                await out_topic.send(key=message.key, value=message.value)
            except Exception:
                logger.exception("bench pipe could not send %s", where)
            await _handle(counts, sink, message.value, where)

    return app


def run_faust(settings: Settings) -> None:
    """Run the Faust passthrough worker until SIGTERM or Ctrl-C."""
    import faust

    app = create_faust_app(settings)
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
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    settings = Settings(broker=args.broker, redis_url=args.redis_url, topic_prefix=args.prefix, app_id=args.app_id,
                        partitions=args.partitions, data_dir=args.data_dir, log_level=args.log_level)
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # as `footfall worker` does
    except ImportError:
        pass
    if args.pipe == "raw":
        asyncio.run(run_raw(settings))
    else:
        run_faust(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
