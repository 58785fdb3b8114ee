"""The consumer group re-created under a Redis that kept its keys: the worker is stopped mid-stream, its
consumer group deleted (what `kafka-consumer-groups --delete` does, and what Kafka does itself once a group has
been empty past `offsets.retention.minutes`, 7 days by default), and the worker started again while traffic
continues. Kafka numbers the new group's generations from 1 again, below the generations Redis holds for the
partitions' owners (`stream/ownership.py`); every bucket must still end exact against a brute-force count of
what was sent (a row for `footfall faults`, see faultkit)."""

from __future__ import annotations

import signal

import pytest
import redis
from kafka.admin import KafkaAdminClient

from footfall.scripts.stack import free_port
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.faults.faultkit import Tally, Traffic
from tests.faults.test_redis_lost_before_checkpoint import health
from tests.faults.test_worker_crashes import check
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]

PARTITIONS = 4


def test_a_worker_whose_consumer_group_was_recreated_counts_on(services, worker_factory, unique_prefix):
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=PARTITIONS))
    owners = redis.Redis.from_url(services.redis_url)

    def generations() -> list[int]:
        return [int(owners.get(f"{unique_prefix}:owner:{p}") or 0) for p in range(PARTITIONS)]

    port = free_port()
    worker = worker_factory(web_enabled="true", web_port=port).start()
    wait_until(lambda: health(port) == 200, 90, "the worker up")
    traffic = Traffic(services.bootstrap, f"{unique_prefix}.events", unique_prefix, n=2400).start()
    tally = Tally("consumer group deleted, worker restarted", unique_prefix, services.redis_url,
                  services.bootstrap, traffic)
    wait_until(lambda: sum(tally.counted().values()) > len(traffic.events) // 6, 60, "counting")
    # A restart first: the group's generations climb past those a new group starts with.
    assert worker.stop(signal.SIGTERM) == 0, worker.log_text()[-3000:]
    worker.start()
    wait_until(lambda: min(generations()) >= 3, 90, "the partitions claimed at generation 3 or later")
    held = generations()
    tally.fault()
    assert worker.stop(signal.SIGTERM) == 0, worker.log_text()[-3000:]
    admin = KafkaAdminClient(bootstrap_servers=services.bootstrap)
    try:
        admin.delete_groups([f"{unique_prefix}-worker"])
    finally:
        admin.close()
    worker.start()
    recovered = tally.wait_recovered()
    traffic.join()
    row = tally.take()
    row["owner_generations"] = {"before": held, "after": generations()}
    assert row["counted_at_fault"] < row["valid"], "the fault must come mid-stream"
    assert recovered is not None, row
    check(row, (worker, port))
    # The scenario is the one meant: the new group's generations are below those Redis held, and the worker
    # took the partitions once the old claims lapsed.
    assert max(row["owner_generations"]["after"]) < min(held), row
    assert "after the previous claim lapsed" in worker.log_text(), worker.log_text()[-3000:]
