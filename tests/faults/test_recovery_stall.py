"""A table recovery whose consumer delivers nothing from the changelog: the worker restores from Kafka itself.

Measured here before the guard: after a takeover, a faust-streaming 0.15.3 worker
sometimes waited for ever in its table recovery ("No event received for active tp ...
since recovery start"), and the partitions it was given stayed unprocessed. The fault is
made on purpose: the restarted worker runs with `changelog_withheld/` on its PYTHONPATH,
whose `sitecustomize` drops every changelog record Faust's fetcher hands on.

- without the guard (`FOOTFALL_STALL_S=0`) such a worker counts nothing: the fault is real;
- with it, the worker notices the stall, reads the changelog from Kafka, ends its recovery
  with the saved state (it applies only what came after its checkpoints, not the whole log
  again), and every bucket ends exact against a brute-force count.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import redis

from footfall.scripts.stack import free_port
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.faults.faultkit import door_events, health, worker_counts
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import redis_buckets, send_all

pytestmark = [pytest.mark.integration, pytest.mark.faults]

MINUTE_MS = 60_000
WITHHELD = Path(__file__).with_name("changelog_withheld")


def test_a_recovery_given_no_changelog_records_is_fed_from_kafka_and_ends_exact(services, worker_factory,
                                                                               unique_prefix):
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    topic = f"{unique_prefix}.events"
    client = redis.Redis.from_url(services.redis_url)
    t0 = (int(time.time() * 1000) - 60 * MINUTE_MS) // MINUTE_MS * MINUTE_MS
    first = door_events(t0, 300, stores=8)
    later = door_events(t0 + 300 * 5_000, 120, stores=8, id_prefix="later")

    def counted() -> Counter:
        return Counter({key: int(record["arrivals"]) for key, record in redis_buckets(client, unique_prefix).items()
                        if record["arrivals"]})

    def brute(events: list[dict]) -> Counter:
        return Counter((e["store_id"], e["ts"] // 900_000 * 900_000) for e in events)

    # A worker counts the first events and saves its state to the changelog on SIGTERM.
    worker = worker_factory(checkpoint_interval_s=1).start()
    send_all(services.bootstrap, topic, [(e["store_id"].encode(), orjson.dumps(e)) for e in first])
    wait_until(lambda: counted() == brute(first), 120, "the first events counted")
    assert worker.stop() == 0

    # Restarted with the fault and without the guard: the recovery never ends, nothing is counted.
    port = free_port()
    stuck = worker_factory(web_enabled="true", web_port=port, stall_s=0)
    stuck.env["PYTHONPATH"] = str(WITHHELD)
    stuck.start()
    send_all(services.bootstrap, topic, [(e["store_id"].encode(), orjson.dumps(e)) for e in later])
    wait_until(lambda: "Restoring state from changelog topics" in stuck.log_text(), 90, "the recovery started")
    time.sleep(20)  # over six times the guarded worker's stall_s below
    assert "Worker ready" not in stuck.log_text(), "the recovery ended without the changelog"
    assert counted() == brute(first), "a worker stuck in recovery counted something"
    assert stuck.stop() == 0

    # The same fault with the guard: the recovery is fed from Kafka, and the worker goes on from its checkpoints.
    port = free_port()
    guarded = worker_factory(web_enabled="true", web_port=port, stall_s=3)
    guarded.env["PYTHONPATH"] = str(WITHHELD)
    guarded.start()
    wait_until(lambda: counted() == brute(first + later), 120, "every event counted after the fed recovery",
               interval_s=1)
    log = guarded.log_text()
    assert "table recovery has restored nothing" in log, log[-3000:]
    assert "changelog records to the table recovery" in log, log[-3000:]
    wait_until(lambda: health(port) == 200, 60, "the guarded worker healthy")
    counts = worker_counts(port)
    assert counts.get("recovery_fed", 0) > 0, counts
    # Restored, not recounted: it applied the later events only, from the offsets its state had saved.
    assert counts.get("messages") == len(later), counts
    time.sleep(3)
    assert counted() == brute(first + later)  # nothing counted twice
