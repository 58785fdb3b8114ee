"""The Apache Kafka broker stopped and restarted mid-stream (a broker of this test's own, not the session's).

The worker keeps running through the outage and must end exact against a brute-force count, every
malformed message dead-lettered with its reason, and healthy. The producer holds off while the
broker is down (what it cannot deliver is its own loss, not the worker's) and resumes after.
Starting the broker takes about 10 s and restarting it as long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from footfall.scripts.stack import LocalStack, _terminate_group, free_port, wait_for_kafka
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.faults.faultkit import Tally, Traffic
from tests.faults.test_redis_lost_before_checkpoint import health
from tests.faults.test_worker_crashes import check
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]

logger = logging.getLogger(__name__)

DOWN_S = 5.0


class OwnKafka:
    """An Apache Kafka broker (KRaft, one node) this test starts, stops and starts again on its data."""

    def __init__(self, run_dir: Path) -> None:
        self.stack = LocalStack(run_dir, broker="kafka", redis=False, progress=logger.warning)

    @property
    def bootstrap(self) -> str:
        return self.stack.bootstrap

    def start(self) -> OwnKafka:
        self.stack.start()
        return self

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL after 20 s; the data stays."""
        proc = self.stack._procs["broker"]
        _terminate_group(proc.pid, 20.0, proc)

    def restart(self) -> None:
        """The same command on the same port and data directory."""
        old = self.stack._procs["broker"]
        proc = self.stack._spawn("broker", list(old.args), Path(self.stack.services["broker"].log))
        wait_for_kafka(self.bootstrap, proc=proc)

    def close(self) -> None:
        self.stack.stop()


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[OwnKafka]:
    kafka = OwnKafka(tmp_path / "own-kafka")
    try:
        yield kafka
    finally:
        kafka.close()


def test_the_broker_stopped_and_restarted_mid_stream(services, worker_factory, unique_prefix, own_kafka):
    started = time.monotonic()
    bootstrap = own_kafka.start().bootstrap
    broker_start_s = time.monotonic() - started
    ensure_topics(Settings(broker=bootstrap, topic_prefix=unique_prefix, partitions=4))
    port = free_port()
    worker = worker_factory(broker=bootstrap, web_enabled="true", web_port=port).start()
    wait_until(lambda: health(port) == 200, 90, "the worker up")
    traffic = Traffic(bootstrap, f"{unique_prefix}.events", unique_prefix).start()
    tally = Tally("Kafka broker stopped + restarted", unique_prefix, services.redis_url, bootstrap, traffic)
    wait_until(lambda: sum(tally.counted().values()) > len(traffic.events) // 4, 60, "a quarter counted")
    traffic.pause()
    tally.fault()
    own_kafka.stop()
    time.sleep(DOWN_S)
    restart_at = time.monotonic()
    own_kafka.restart()
    assert tally.fault_at is not None
    now = time.monotonic()
    tally.extra.update(broker_start_s=round(broker_start_s, 1), broker_restart_s=round(now - restart_at, 1),
                       broker_down_s=round(now - tally.fault_at, 1))
    traffic.resume()
    recovered = tally.wait_recovered()
    if recovered is not None and tally.recovered_at is not None:
        # The worker cannot flush while the broker is away: what it applied before reaches Redis after.
        tally.extra["recovered_after_restart_s"] = round(tally.recovered_at - now, 2)
    traffic.join()
    row = tally.take()
    assert row["counted_at_fault"] < row["valid"], "the fault must come mid-stream"
    assert recovered is not None
    check(row, (worker, port))
