"""A table recovery whose consumer delivers nothing from the changelog: the worker restores from Kafka itself.

Measured here before the guard: after a takeover, a faust-streaming 0.15.3 worker
sometimes waited for ever in its table recovery ("No event received for active tp ...
since recovery start"), and the partitions it was given stayed unprocessed. The fault is
made on purpose: the restarted worker runs with `changelog_withheld/` on its PYTHONPATH,
whose `sitecustomize` drops every changelog record Faust's fetcher hands on.

- without the guard (`FOOTFALL_STALL_S=0`) such a worker counts nothing: the fault is real;
- with it, the worker notices the stall, reads the changelog from Kafka, ends its recovery
  with the saved state (it applies only what came after its checkpoints, not the whole log
  again), and every bucket, roll-up, day total and dead letter ends exact against what was
  sent (a row of `footfall faults`).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from footfall.scripts.stack import free_port
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.faults.faultkit import Tally, Traffic, health, worker_counts
from tests.faults.test_worker_crashes import check
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]

WITHHELD = Path(__file__).with_name("changelog_withheld")


def test_a_recovery_given_no_changelog_records_is_fed_from_kafka_and_ends_exact(services, worker_factory,
                                                                               unique_prefix):
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    traffic = Traffic(services.bootstrap, f"{unique_prefix}.events", unique_prefix, n=1500)
    tally = Tally("table recovery given no changelog records", unique_prefix, services.redis_url,
                  services.bootstrap, traffic)

    # A worker counts a third of the traffic, then saves its state to the changelog on SIGTERM.
    port = free_port()
    first = worker_factory(web_enabled="true", web_port=port, checkpoint_interval_s=1).start()
    wait_until(lambda: health(port) == 200, 90, "the first worker up")
    traffic.start()
    wait_until(lambda: sum(tally.counted().values()) > len(traffic.events) // 3, 60, "a third counted")
    traffic.pause()
    wait_until(lambda: worker_counts(port).get("messages") == traffic.sent_n, 60, "all sent so far applied")
    applied_first = traffic.sent_n
    assert first.stop() == 0
    counted_before = tally.counted()

    # Restarted with the fault and without the guard: the recovery never ends, nothing is counted.
    stuck = worker_factory(stall_s=0)
    stuck.env["PYTHONPATH"] = str(WITHHELD)
    stuck.start()
    traffic.resume()
    wait_until(lambda: "Restoring state from changelog topics" in stuck.log_text(), 90, "the recovery started")
    time.sleep(20)  # over six times the guarded worker's stall_s below
    assert "Worker ready" not in stuck.log_text(), "the recovery ended without the changelog"
    assert tally.counted() == counted_before, "a worker stuck in recovery counted something"
    assert stuck.stop() == 0

    # The same fault with the guard: the recovery is fed from Kafka, and the worker goes on from its checkpoints.
    tally.fault()
    port = free_port()
    guarded = worker_factory(web_enabled="true", web_port=port, stall_s=3)
    guarded.env["PYTHONPATH"] = str(WITHHELD)
    guarded.start()
    recovered = tally.wait_recovered()
    traffic.join()
    row = tally.take()
    assert recovered is not None
    check(row, (guarded, port))
    log = guarded.log_text()
    assert "table recovery has restored nothing" in log, log[-3000:]
    assert "changelog records to the table recovery" in log, log[-3000:]
    counts = worker_counts(port)
    assert counts.get("recovery_fed", 0) > 0, counts
    # Restored, not recounted: it applied only the messages after those the first worker saved.
    assert counts.get("messages") == len(traffic.messages) - applied_first, (counts, applied_first)
