"""Workers killed mid-stream (kill -9, SIGTERM; one of two during a rebalance) under traffic: every bucket
ends exact against a brute-force count of what was sent, every malformed message is on the dead-letter
topic with its reason, the surviving or restarted worker is healthy, and the recovery time is reported
(a row per scenario for `footfall faults`, see tests/faults/faultkit.py)."""

from __future__ import annotations

import signal
import time

import pytest

from footfall.scripts.stack import free_port
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.faults.faultkit import Tally, Traffic
from tests.faults.test_redis_lost_before_checkpoint import health
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def check(row: dict, *workers_and_ports) -> None:
    assert row["lost"] == 0 and row["double"] == 0, row
    assert row["rollups_off"] == 0 and row["days_off"] == 0, row  # the chain's roll-ups and the day totals too
    assert row["dead_letters"] == row["dead_letters_expected"], row
    assert row["recovery_s"] is not None, row
    for worker, port in workers_and_ports:
        assert worker.alive, worker.log_text()[-3000:]
        assert health(port) == 200  # not wedged: input drained and checkpoints completing


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill9", "sigterm"])
def test_a_worker_stopped_mid_stream_and_restarted_ends_exact(services, worker_factory, unique_prefix, sig):
    name = "kill -9 mid-stream, restart" if sig == signal.SIGKILL else "SIGTERM mid-stream, restart"
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    port = free_port()
    worker = worker_factory(web_enabled="true", web_port=port).start()
    wait_until(lambda: health(port) == 200, 90, "the worker up")
    traffic = Traffic(services.bootstrap, f"{unique_prefix}.events", unique_prefix).start()
    tally = Tally(name, unique_prefix, services.redis_url, services.bootstrap, traffic)
    wait_until(lambda: sum(tally.counted().values()) > len(traffic.events) // 4, 60, "a quarter counted")
    tally.fault()
    code = worker.stop(sig)
    worker.start()
    tally.extra["exit_code"] = code
    recovered = tally.wait_recovered()
    traffic.join()
    row = tally.take()
    assert row["counted_at_fault"] < row["valid"], "the fault must come mid-stream"
    if sig == signal.SIGTERM:
        assert code == 0, worker.log_text()[-3000:]
    assert recovered is not None
    check(row, (worker, port))


def test_two_workers_one_killed_during_a_rebalance_under_traffic(services, worker_factory, unique_prefix):
    """A counts alone; B joins (the group rebalances); A is killed -9 as B joins: B takes all four partitions."""
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    port_a, port_b = free_port(), free_port()
    a = worker_factory(web_enabled="true", web_port=port_a).start()
    wait_until(lambda: health(port_a) == 200, 90, "worker A up")
    traffic = Traffic(services.bootstrap, f"{unique_prefix}.events", unique_prefix, n=3000).start()
    tally = Tally("2 workers, kill -9 of one in a rebalance", unique_prefix, services.redis_url,
                  services.bootstrap, traffic)
    wait_until(lambda: sum(tally.counted().values()) > len(traffic.events) // 6, 60, "A counting")
    b = worker_factory(web_enabled="true", web_port=port_b).start()
    # B asks to join: the coordinator starts a rebalance and waits for A to rejoin. A dies right then, so
    # the group settles only once A's session (6 s) expires, and B gets all four partitions.
    wait_until(lambda: "(Re-)joining group" in b.log_text(), 90, "worker B joining the group")
    tally.fault()
    a.stop(signal.SIGKILL)
    recovered = tally.wait_recovered()
    traffic.join()
    row = tally.take()
    assert row["counted_at_fault"] < row["valid"], "the fault must come mid-stream"
    assert recovered is not None
    check(row, (b, port_b))


def two_workers_counting(services, worker_factory, prefix: str, scenario: str):
    """Two workers sharing the group (4 partitions split between them), both counting under traffic.

    Returns `((a, port_a), (b, port_b), traffic, tally)` once a quarter of the traffic is counted.
    """
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=prefix, partitions=4))
    port_a, port_b = free_port(), free_port()
    a = worker_factory(web_enabled="true", web_port=port_a).start()
    b = worker_factory(web_enabled="true", web_port=port_b).start()
    wait_until(lambda: health(port_a) == 200 and health(port_b) == 200, 90, "both workers up")
    time.sleep(8)  # the group settles: both hold partitions
    traffic = Traffic(services.bootstrap, f"{prefix}.events", prefix, n=3000).start()
    tally = Tally(scenario, prefix, services.redis_url, services.bootstrap, traffic)
    wait_until(lambda: sum(tally.counted().values()) > len(traffic.events) // 4, 60, "both counting")
    return (a, port_a), (b, port_b), traffic, tally


def test_two_workers_sharing_the_group_one_killed_the_other_takes_over(services, worker_factory, unique_prefix):
    """Both count (the partitions split between them) with traffic flowing; one is killed -9, the other takes over."""
    (a, port_a), (b, _), traffic, tally = two_workers_counting(services, worker_factory, unique_prefix,
                                                               "2 workers sharing, kill -9 of one")
    tally.fault()
    b.stop(signal.SIGKILL)
    recovered = tally.wait_recovered()
    traffic.join()
    row = tally.take()
    assert row["counted_at_fault"] < row["valid"], "the fault must come mid-stream"
    assert recovered is not None
    check(row, (a, port_a))
