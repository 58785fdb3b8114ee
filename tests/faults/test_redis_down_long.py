"""Redis down for 5 minutes under traffic, with the worker killed -9 halfway through and started again.

Redis (one this test starts itself) is killed; traffic goes on. At 150 s the worker is killed -9 and
started at once, as a supervisor would, while Redis is still away: it must say so, naming
`FOOTFALL_REDIS_URL` and "not consuming", exit (status 2, after `FOOTFALL_STARTUP_TIMEOUT_S`, 30 s), and
consume nothing meanwhile (the group's committed offsets do not move). Redis comes back empty (no
persistence) at 300 s and the worker is started again (the supervisor's next try). Redis is rebuilt from
the topics and the worker's saved state: the row (`footfall faults`) has every bucket exact against a
brute-force count of what was sent, every malformed message on the dead-letter topic with its reason,
the worker alive with `/health` 200; `recovery s` runs from the outage until every event sent before it is
counted (at least the 300 s), `recovered_after_redis_back_s` from Redis's return; the extra fields say what
the worker started inside the outage did.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import redis

from tests.faults.faultkit import Tally, Traffic, health, worker_counts
from tests.faults.test_redis_lost_before_checkpoint import committed
from tests.faults.test_redis_paused import REDIS_COUNTS
from tests.faults.test_worker_crashes import check
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.long_faults]

DOWN_S = 300.0
KILL_AT_S = 150.0


def test_redis_down_5_minutes_with_the_worker_killed_inside_ends_exact(services, worker_factory, unique_prefix,
                                                                       own_redis):
    worker, port = own_redis.start_worker(services, worker_factory, unique_prefix)
    # About 6 minutes of traffic (2,000 door events and 8 malformed messages), through the whole outage.
    traffic = Traffic(services.bootstrap, f"{unique_prefix}.events", unique_prefix, n=2000, chunk=5,
                      pause_s=0.8).start()
    tally = Tally("Redis down 5 min, kill -9 of the worker inside", unique_prefix, own_redis.url,
                  services.bootstrap, traffic)
    wait_until(lambda: sum(tally.counted().values()) > len(traffic.events) // 20, 90, "a twentieth counted")
    tally.fault()
    own_redis.kill()
    assert tally.fault_at is not None
    topic, group = f"{unique_prefix}.events", f"{unique_prefix}-worker"

    time.sleep(max(0.0, tally.fault_at + KILL_AT_S - time.monotonic()))
    killed = worker.stop(signal.SIGKILL)
    offsets_before = committed(services.bootstrap, group, topic)
    started = time.monotonic()
    worker.start()  # the supervisor's restart, Redis still away
    assert worker.proc is not None
    try:
        code: int | None = worker.proc.wait(timeout=tally.fault_at + DOWN_S - time.monotonic())
    except subprocess.TimeoutExpired:  # still waiting for Redis when it comes back: it then starts as usual
        code = None
    log = worker.log_text()
    tally.extra["started_in_outage"] = {
        "exit_code": code, "exited_after_s": None if code is None else round(time.monotonic() - started, 1),
        "said_not_consuming": "FOOTFALL_REDIS_URL" in log and "not consuming" in log,
        "consumed": committed(services.bootstrap, group, topic) != offsets_before}
    tally.extra["kill9_exit_code"] = killed

    time.sleep(max(0.0, tally.fault_at + DOWN_S - time.monotonic()))
    own_redis.start()  # back, empty
    back_at = time.monotonic()
    tally.client = redis.Redis.from_url(own_redis.url)
    if not worker.alive:
        worker.start()  # the supervisor's next try
    recovered = tally.wait_recovered(timeout_s=DOWN_S + 240)
    tally.extra["recovered_after_redis_back_s"] = (None if tally.recovered_at is None
                                                   else round(tally.recovered_at - back_at, 2))
    traffic.join(timeout_s=240)
    wait_until(lambda: health(port) == 200, 120, "the worker healthy")
    counts = worker_counts(port)
    tally.extra["worker_counts"] = {name: int(counts.get(name, 0)) for name in REDIS_COUNTS}
    row = tally.take(settle_timeout_s=180)
    assert row["counted_at_fault"] < row["valid"], "the outage must come mid-stream"
    started_in_outage = row["started_in_outage"]
    assert started_in_outage["exit_code"] == 2 and started_in_outage["said_not_consuming"], row
    assert not started_in_outage["consumed"], row
    assert recovered is not None
    check(row, (worker, port))
