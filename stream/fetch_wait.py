"""A shorter fetch wait for Faust's consumer: no idle spells while input waits.

Faust builds its aiokafka consumer with `fetch_max_wait_ms=1500`, and aiokafka keeps one
fetch in flight per broker. The worker's consumer is also assigned the `stores` table's
changelog partitions, where nothing new comes: a fetch sent for them alone (the events
partitions still held records not taken yet) sits on the broker for the whole 1.5 s, and the
events fetched meanwhile wait behind it. Measured with `footfall bench --only c` on one
broker: the worker idle 0.5-0.8 s at a time, every second or two, while the backlog waited
(the broker's log shows such a fetch answered 1,503 ms after it was sent). So footfall sets
the wait to `FETCH_MAX_WAIT_MS`: an idle consumer asks the broker a few times a second, a busy
one never waits on an empty fetch for long.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FETCH_MAX_WAIT_MS", "shorten_fetch_wait"]

#: Most a fetch waits on the broker for new records (Kafka's Java consumer defaults to 500 ms).
FETCH_MAX_WAIT_MS = 100


def shorten_fetch_wait(consumer: Any, max_wait_ms: int = FETCH_MAX_WAIT_MS) -> None:
    """Make the aiokafka consumer that Faust's `consumer` starts (in its thread) use `max_wait_ms`."""
    thread = consumer._thread  # faust's AIOKafkaConsumerThread: makes the aiokafka consumer on its start
    make = thread._create_consumer

    def make_with_short_wait(loop: Any) -> Any:
        kafka_consumer = make(loop)
        kafka_consumer._fetch_max_wait_ms = max_wait_ms  # read by its Fetcher, made in `start()`
        return kafka_consumer

    thread._create_consumer = make_with_short_wait
