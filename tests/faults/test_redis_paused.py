"""Redis paused for 60 s (`CLIENT PAUSE 60000 ALL`, on a Redis this test starts itself) while traffic goes on.

A paused Redis does not refuse anything: every command of every client blocks until the pause ends,
then runs. The worker's calls give up after their own timeout (10 s) and are retried by its checkpoints;
the pause ends by itself. The row (`footfall faults`): every bucket exact against a brute-force count of
what was sent (nothing lost, nothing counted twice by commands that ran late), every malformed message on
the dead-letter topic with its reason, the worker alive and answering `/health` throughout (sampled every
second during the pause) and 200 at the end; `recovery s` runs from the pause until every event sent before
it is counted (at least the 60 s: Redis answers nobody before), `recovered_after_resume_s` from its end.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis

from tests.faults.faultkit import Tally, Traffic, health, worker_counts
from tests.faults.test_worker_crashes import check
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.long_faults]

PAUSE_S = 60
#: The worker's own counts worth reporting after a Redis outage or pause.
REDIS_COUNTS = ("flush_failed", "consumption_paused", "redis_rebuilt_records", "redis_rebuild_waits")


def test_redis_paused_60_s_under_traffic_blocks_nothing_for_good(services, worker_factory, unique_prefix, own_redis):
    worker, port = own_redis.start_worker(services, worker_factory, unique_prefix)
    # About 110 s of traffic: a quarter before the pause, the rest during and after it.
    traffic = Traffic(services.bootstrap, f"{unique_prefix}.events", unique_prefix, n=2400, chunk=10,
                      pause_s=0.4).start()
    tally = Tally(f"Redis paused {PAUSE_S} s (CLIENT PAUSE ALL)", unique_prefix, own_redis.url, services.bootstrap,
                  traffic)
    wait_until(lambda: sum(tally.counted().values()) > len(traffic.events) // 5, 90, "a fifth counted")
    tally.fault()
    redis.Redis.from_url(own_redis.url).execute_command("CLIENT", "PAUSE", PAUSE_S * 1000, "ALL")
    assert tally.fault_at is not None
    resumes_at = tally.fault_at + PAUSE_S
    seen: Counter[int] = Counter()
    alive = True
    while time.monotonic() < resumes_at:
        seen[health(port)] += 1  # the web page needs no Redis: it must answer, 200 or 503
        alive = alive and worker.alive
        time.sleep(1.0)
    recovered = tally.wait_recovered(timeout_s=PAUSE_S + 180)
    counts = worker_counts(port)
    tally.extra.update(
        health_during_pause=dict(sorted(seen.items())), alive_during_pause=alive,
        sent_during_pause=len(traffic.sent_events()) - sum(tally.before_fault.values()),
        recovered_after_resume_s=None if tally.recovered_at is None else round(tally.recovered_at - resumes_at, 2),
        worker_counts={name: int(counts.get(name, 0)) for name in REDIS_COUNTS})
    traffic.join(timeout_s=180)
    row = tally.take()
    assert row["counted_at_fault"] < row["valid"], "the pause must come mid-stream"
    assert alive and 0 not in seen, row  # never gone, never wedged: its web page answered every second
    assert recovered is not None
    check(row, (worker, port))
