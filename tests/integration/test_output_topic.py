"""`OutputTopic` puts on the broker what `faust.Topic.send` would: same partition, key, value and headers.

The worker's records, re-routed events, dead letters and idle ticks go to the producer as
bytes through `stream.output_topic.OutputTopic`. The reference is Faust's own topic send of
the same messages to a second topic of the same partition count, on the session's real broker;
both topics are read back from the start and compared message by message. Keys are many
store ids (so the partitioner is exercised), with None and empty keys, headers and none,
empty and binary values. A consumer of the output topics must not be able to tell.
"""

from __future__ import annotations

import asyncio
import uuid

import faust
import pytest
from kafka import KafkaConsumer, TopicPartition

from footfall.scripts.sendcost import measure_send_cost
from footfall.stream.output_topic import OutputTopic

pytestmark = pytest.mark.integration

PARTITIONS = 4


def messages() -> list[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]]:
    out: list[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]] = []
    for i in range(300):
        key = None if i % 97 == 5 else b"" if i % 89 == 7 else f"store-{i % 61:03d}".encode()
        value = b"" if i % 53 == 3 else bytes(range(256)) if i % 41 == 2 else b'{"n": %d}' % i
        headers = [("footfall-rerouted", f"{i % 4}:{i}".encode()), ("x", b"\x00\xff")] if i % 3 == 0 else None
        out.append((key, value, headers))
    return out


async def send_both(bootstrap: str, reference: str, direct: str) -> None:
    app = faust.App(f"t-output-topic-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}")
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    faust_topic = app.topic(reference, partitions=PARTITIONS, **raw)
    output_topic = OutputTopic(app.topic(direct, partitions=PARTITIONS, **raw))
    await app.producer.start()
    try:
        await faust_topic.maybe_declare()
        await output_topic.topic.maybe_declare()
        futures = []
        for key, value, headers in messages():
            futures.append(await faust_topic.send(key=key, value=value, headers=headers))
            futures.append(await output_topic.send(key=key, value=value, headers=headers))
        await asyncio.gather(*futures)
    finally:
        await app.producer.stop()


def read_all(bootstrap: str, topic: str) -> list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    """(partition, key, value, headers) of every message, per partition in offset order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        rows: dict[int, list] = {p: [] for p in range(PARTITIONS)}
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for tp, records in consumer.poll(timeout_ms=1000).items():
                rows[tp.partition] += [(tp.partition, r.key, r.value, list(r.headers)) for r in records]
        return [row for p in range(PARTITIONS) for row in rows[p]]
    finally:
        consumer.close()


def test_output_topic_writes_what_a_faust_topic_send_writes(services) -> None:
    reference, direct = (f"t{uuid.uuid4().hex[:10]}.{name}" for name in ("faust", "direct"))
    asyncio.run(send_both(services.bootstrap, reference, direct))
    expected, got = read_all(services.bootstrap, reference), read_all(services.bootstrap, direct)
    assert len(expected) == len(messages())
    # Keyed messages: same partition, same order within it. Unkeyed ones may land anywhere (the
    # producer spreads them): compared apart, without their partition.
    keyed = [row for row in expected if row[1] is not None]
    assert [row for row in got if row[1] is not None] == keyed
    assert sorted(row[1:] for row in got if row[1] is None) == sorted(row[1:] for row in expected if row[1] is None)


def test_the_send_cost_measure_runs_both_paths(services) -> None:
    figures = asyncio.run(measure_send_cost(services.bootstrap, messages=300, rounds=2))
    assert set(figures) == {"faust.Topic.send", "OutputTopic.send"}
    assert all(len(values) == 2 and all(v > 0 for v in values) for values in figures.values())
