"""The batch intake (`stream.batch_intake`) on real Kafka and Redis: exact counts either way, and the
group's committed offsets never past the checkpoint's saved markers.

Counts are checked against brute force (`flowdata.Traffic.expected_buckets`); the markers are read
from the `stores` table's changelog, the committed offsets from the broker.
"""

from __future__ import annotations

import random
import threading
import time

import orjson
import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from footfall.operators.pipeline.persistence import read_marker_value
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import wait_until
from tests.integration.flowdata import make_valid_traffic
from tests.integration.test_pipeline import (
    HOUR_MS,
    _now_ms,
    assert_totals_match,
    counted_events,
    read_topic,
    redis_buckets,
    run_and_check,
    send_all,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4


def saved_markers(broker: str, changelog: str) -> dict[int, int]:
    """Partition -> offset of the last marker in the changelog."""
    markers: dict[int, int] = {}
    for record in read_topic(broker, changelog, timeout_s=10):
        key = orjson.loads(record.key)
        if isinstance(key, str) and key.startswith("~partition-"):
            offset = read_marker_value(record.value)
            if offset is not None:
                markers[int(key.removeprefix("~partition-"))] = offset
    return markers


class MarkerReader:
    """The changelog's markers as they grow: one consumer that reads on from where it stopped.

    Reading the whole changelog at every sample took seconds once it had grown, on a loaded machine:
    too few samples fell while input still came.
    """

    def __init__(self, broker: str, changelog: str) -> None:
        self.changelog = changelog
        self.consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False, group_id=None)
        self.partitions: list[TopicPartition] = []
        self.markers: dict[int, int] = {}

    def read(self) -> dict[int, int] | None:
        """Partition -> offset of the last marker up to the changelog's end now; None before it exists."""
        if not self.partitions:
            found = self.consumer.partitions_for_topic(self.changelog)
            if not found:
                return None
            self.partitions = [TopicPartition(self.changelog, p) for p in sorted(found)]
            self.consumer.assign(self.partitions)
            self.consumer.seek_to_beginning(*self.partitions)
        end = self.consumer.end_offsets(self.partitions)
        while any(self.consumer.position(tp) < end[tp] for tp in self.partitions):
            for batch in self.consumer.poll(timeout_ms=500).values():
                for record in batch:
                    key = orjson.loads(record.key)
                    if isinstance(key, str) and key.startswith("~partition-"):
                        offset = read_marker_value(record.value)
                        if offset is not None:
                            self.markers[int(key.removeprefix("~partition-"))] = offset
        return dict(self.markers)

    def close(self) -> None:
        self.consumer.close()


def committed_offsets(admin: KafkaAdminClient, group: str, topic: str) -> dict[int, int]:
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    except KafkaError:  # the group not made yet (its coordinator unknown): nothing committed
        return {}
    return {tp.partition: meta.offset for tp, meta in offsets.items()
            if isinstance(tp, TopicPartition) and tp.topic == topic and meta.offset >= 0}


def end_offsets(broker: str, topic: str) -> dict[int, int]:
    reader = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False)
    try:
        ends = reader.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        reader.close()
    return {tp.partition: end for tp, end in ends.items()}


@pytest.mark.parametrize("batch_intake", ["true", "false"])
def test_counts_equal_brute_force_with_and_without_batch_intake(services, worker_factory, unique_prefix,
                                                                  batch_intake):
    rng = random.Random(21)
    traffic = make_valid_traffic(rng, stores=8, events_per_store=600, start_ms=_now_ms() - 5 * HOUR_MS,
                                 span_ms=3 * HOUR_MS, batch_fraction=0.2)
    worker = worker_factory(grace_s=86_400, batch_intake=batch_intake)
    run_and_check(services, unique_prefix, worker, traffic, services.bootstrap)
    assert worker.alive
    said = "batch intake:" in worker.log_text()
    assert said == (batch_intake == "true"), worker.log_text()[-2000:]


def test_committed_offsets_never_pass_the_saved_markers(services, worker_factory, unique_prefix):
    rng = random.Random(22)
    traffic = make_valid_traffic(rng, stores=8, events_per_store=1500, start_ms=_now_ms() - 5 * HOUR_MS,
                                 span_ms=3 * HOUR_MS, batch_fraction=0.1)
    worker = worker_factory(grace_s=86_400, checkpoint_interval_s=2)
    group, events = f"{unique_prefix}-worker", f"{unique_prefix}.events"
    changelog = f"{group}-stores-changelog"
    admin = KafkaAdminClient(bootstrap_servers=services.bootstrap)
    samples: list[tuple[dict[int, int], dict[int, int]]] = []
    stop = threading.Event()
    early: list[dict[int, int]] = []
    errors: list[BaseException] = []

    def sample() -> None:
        # Committed offsets first, markers after: markers only grow, so committed <= marker + 1 must hold.
        reader = MarkerReader(services.bootstrap, changelog)
        try:
            while not stop.is_set():
                committed = committed_offsets(admin, group, events)
                markers = reader.read()
                if markers is None:  # the changelog not made yet: nothing may be committed either
                    early.append(committed)
                else:
                    samples.append((committed, markers))
                time.sleep(0.5)
        except BaseException as error:  # a sampler that died must fail the test, not end it quietly
            errors.append(error)
        finally:
            reader.close()

    client = redis.Redis.from_url(services.redis_url)
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=PARTITIONS))
    worker.start()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        # The first messages, then, once the worker counts, the rest paced over about 12 s: several checkpoints
        # (every 2 s) commit while input still comes. Sent before the worker was up, most of the input was a
        # backlog it took in one go, with one checkpoint or two before the end.
        first = len(traffic.messages) // 20
        send_all(services.bootstrap, events, traffic.messages[:first])
        wait_until(lambda: counted_events(client, unique_prefix) > 0, 120, "the worker counting")
        send_all(services.bootstrap, events, traffic.messages[first:], pause_every=50, pause_s=0.1)
        want = len(traffic.valid_events)
        wait_until(lambda: counted_events(client, unique_prefix) >= want, 120, f"{want} events counted")
        assert_totals_match(redis_buckets(client, unique_prefix), traffic.expected_buckets())
        assert counted_events(client, unique_prefix) == want
        # Once idle, each partition's last message (re-routed events and idle ticks included) is in the last
        # markers, and they are committed: the group resumes right after them.
        def settled() -> bool:
            markers = saved_markers(services.bootstrap, changelog)
            return (markers == {p: end - 1 for p, end in end_offsets(services.bootstrap, events).items()}
                    and committed_offsets(admin, group, events) == {p: o + 1 for p, o in markers.items()})

        wait_until(settled, 30, "the last markers at each partition's end, and committed")
    finally:
        stop.set()
        sampler.join(timeout=10)
        admin.close()
    assert not errors, f"the sampler failed: {errors!r}"
    assert not any(early), f"offsets committed before any marker was saved: {early}"
    with_commits = [(c, m) for c, m in samples if c]
    assert len(with_commits) >= 3, f"too few samples with commits: {len(samples)} samples"
    past = [(p, offset, markers.get(p)) for committed, markers in with_commits for p, offset in committed.items()
            if offset > markers.get(p, -1) + 1]
    assert not past, f"committed offsets past the saved markers: {past[:5]}"
