"""CPU per message the worker sends: `faust.Topic.send` beside `stream.output_topic.OutputTopic.send`.

Both hand the same bytes (a bucket record of about 500 bytes, keyed by one of 5,000
store ids) to the same running Faust producer on a real broker, and the broker's
acknowledgements are awaited, as a checkpoint awaits them. Each round sends `--messages`
through one path, then the same through the other (the order alternating between
rounds); the CPU time of the process (`time.process_time`: the event loop and the
producer) is reported per message, as the least and the median over the rounds.

Start a broker first (`footfall stack up` prints its address), then
``python -m footfall.scripts.sendcost --broker 127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from footfall.stream.output_topic import OutputTopic

__all__ = ["measure_send_cost"]

Sender = Callable[..., Awaitable[Any]]


async def _round(send: Sender, messages: int, value: bytes) -> float:
    """CPU µs per message for `messages` sends through `send`, acknowledgements included."""
    futures = []
    started = time.process_time()
    for i in range(messages):
        futures.append(await send(key=b"s-%06d" % (i % 5000), value=value, headers=None))
    await asyncio.gather(*futures)
    return (time.process_time() - started) / messages * 1e6


async def measure_send_cost(broker: str, messages: int = 20_000, rounds: int = 6) -> dict[str, list[float]]:
    """CPU µs per message of each path, one figure a round: `{"faust.Topic.send": [...], "OutputTopic.send": [...]}`."""
    name = f"sendcost-{uuid.uuid4().hex[:8]}"
    app = faust.App(name, broker=f"kafka://{broker}", producer_linger_ms=5, producer_max_batch_size=65536)
    topic = app.topic(name, partitions=4, key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw")
    value = orjson.dumps({"type": "bucket", "store_id": "s-000123", "bucket_start_ms": 1_796_305_800_000,
                          "kpis": {f"kpi_{i}": 1.5 * i for i in range(24)}, "emitted_at_ms": 1_796_305_801_000})
    paths: dict[str, Sender] = {"faust.Topic.send": topic.send, "OutputTopic.send": OutputTopic(topic).send}
    await app.producer.start()
    try:
        await topic.maybe_declare()
        for send in paths.values():  # warm up: metadata, connections, batches
            await _round(send, min(messages, 2_000), value)
        figures: dict[str, list[float]] = {label: [] for label in paths}
        for r in range(rounds):
            for label in list(paths) if r % 2 == 0 else list(paths)[::-1]:
                figures[label].append(await _round(paths[label], messages, value))
        return figures
    finally:
        await app.producer.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m footfall.scripts.sendcost", description=__doc__.split("\n")[0])
    parser.add_argument("--broker", default=os.environ.get("FOOTFALL_BROKER"),
                        help="host:port of a running Kafka (default: FOOTFALL_BROKER)")
    parser.add_argument("--messages", type=int, default=20_000, help="messages per path per round (default 20000)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per path (default 6)")
    args = parser.parse_args(argv)
    if not args.broker:
        parser.error("no broker: pass --broker HOST:PORT or set FOOTFALL_BROKER (`footfall stack up` starts one)")
    figures = asyncio.run(measure_send_cost(args.broker, args.messages, args.rounds))
    print(f"CPU per message sent, acknowledgements awaited ({args.messages:,} messages x {args.rounds} rounds a path):")
    for label, values in figures.items():
        print(f"  {label:<18} least {min(values):6.1f} µs   median {statistics.median(values):6.1f} µs")
    faust_us, direct_us = (statistics.median(v) for v in figures.values())
    print(f"  saved per message: {faust_us - direct_us:.1f} µs ({1 - direct_us / faust_us:.0%})")


if __name__ == "__main__":
    main()
