"""A frozen worker: one of two workers sharing the group is stopped (SIGSTOP) past the session timeout while
traffic continues, the other takes its partitions over, the frozen one wakes (SIGCONT) holding work of
partitions it no longer owns, then both are restarted. Every bucket ends exact against a brute-force count of
what was sent: the woken worker's records of partitions claimed by a newer generation are refused in Redis
(`stream/ownership.py`), never written over the new owner's (a row for `footfall faults`, see faultkit)."""

from __future__ import annotations

import signal
import time

import pytest
import redis

from tests.faults.faultkit import worker_counts
from tests.faults.test_redis_lost_before_checkpoint import health
from tests.faults.test_worker_crashes import check, two_workers_counting
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]

FROZEN_S = 15.0  # well past the 6 s session timeout the test workers run with
# At most this long frozen, waiting for A to claim every partition. Alone, or beside two busy cores, A claims
# them as soon as B has been frozen 15 s; in the full test command (the main run beside this suite, two brokers
# and their workers on 2 cores) A's recovery of B's partitions once took over 90 s. A longer freeze changes
# nothing in the scenario: B wakes the same way, only later.
TAKEOVER_S = 240.0
PARTITIONS = 4
FENCING_COUNTS = ("fenced_records", "partitions_lost", "revoked_records_dropped")


def test_a_worker_frozen_past_its_session_then_woken_writes_nothing_stale(services, worker_factory, unique_prefix):
    (a, port_a), (b, port_b), traffic, tally = two_workers_counting(
        services, worker_factory, unique_prefix, "2 workers, one frozen (SIGSTOP 15 s), woken, both restarted")
    assert b.proc is not None
    owners = redis.Redis.from_url(services.redis_url)

    def generations() -> list[int]:
        return [int(owners.get(f"{unique_prefix}:owner:{p}") or 0) for p in range(PARTITIONS)]

    tally.fault()
    before = max(generations())
    b.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(FROZEN_S)  # A takes B's partitions over while B sleeps, and counts what B would have
        # The scenario needs the takeover to have happened while B sleeps: every partition claimed anew (by A).
        # On a loaded machine the group may rebalance later than the session timeout: B stays frozen until then.
        frozen_at = time.monotonic() - FROZEN_S
        try:
            wait_until(lambda: min(generations()) > before, TAKEOVER_S - FROZEN_S, "A claiming every partition")
        except AssertionError as timed_out:
            rebalance = [line for line in a.log_text().splitlines()
                         if any(w in line.lower() for w in ("rebalanc", "assign", "revok", "generation", "recover"))]
            raise AssertionError(f"{timed_out}; generations {generations()} (before {before}); A's log on the "
                                 f"group:\n" + "\n".join(rebalance[-40:])) from None
        tally.extra["takeover_s"] = round(time.monotonic() - frozen_at, 1)
    finally:
        b.proc.send_signal(signal.SIGCONT)
    # Awake, B flushes what it held before it hears of the rebalance: each such write must be refused.
    wait_until(lambda: b.alive and health(port_b) in (200, 503), 60, "worker B answering again")
    time.sleep(8)  # B's flushes run, its heartbeat fails, it rejoins
    counts = worker_counts(port_b)
    tally.extra["woken_worker"] = {"log_says_claimed": "were claimed by another worker" in b.log_text(),
                                   **{name: counts.get(name, 0) for name in FENCING_COUNTS}}
    # Then both restart (SIGTERM), on what they saved.
    for worker in (a, b):
        assert worker.stop(signal.SIGTERM) == 0, worker.log_text()[-3000:]
    a.start()
    b.start()
    recovered = tally.wait_recovered()
    traffic.join()
    row = tally.take()
    assert row["counted_at_fault"] < row["valid"], "the fault must come mid-stream"
    assert recovered is not None
    wait_until(lambda: health(port_a) == 200 and health(port_b) == 200, 90, "both workers healthy")
    check(row, (a, port_a), (b, port_b))
    # The end state alone cannot tell: without fencing the new owner's later writes happen to cover the woken
    # worker's stale ones here (measured: exact, but 9 dead letters written again). The woken worker must have
    # found out from Redis that its partitions were claimed, before it wrote anything of them.
    woken = row["woken_worker"]
    assert woken["log_says_claimed"] and woken["partitions_lost"] >= 1, row
