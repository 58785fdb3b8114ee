"""The worker's /metrics and /health on the real stack: figures that match what was sent.

(/health turning 503 when checkpoints stop: tests/faults/test_redis_lost_before_checkpoint.py.)
"""

from __future__ import annotations

import time

import orjson
import pytest

from footfall.scripts.stack import free_port
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.faults.faultkit import door_events as kit_door_events
from tests.faults.faultkit import http_get as get
from tests.faults.faultkit import metric_samples as samples
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import send_all

pytestmark = pytest.mark.integration

MINUTE_MS = 60_000


def door_events(t0: int, n: int, stores: int) -> list[tuple[bytes, bytes]]:
    return [(e["store_id"].encode(), orjson.dumps(e)) for e in kit_door_events(t0, n, stores, "metrics", "m")]


def test_metrics_count_what_was_sent_and_health_is_ok(services, worker_factory, unique_prefix):
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    port = free_port()
    worker_factory(web_enabled="true", web_port=port).start()
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: get(f"{base}/health")[0] == 200, 60, "the worker's web server")
    t0 = (int(time.time() * 1000) - 30 * MINUTE_MS) // MINUTE_MS * MINUTE_MS
    events = door_events(t0, 300, stores=5)
    bad = [(b"metrics-0", b"{not json"), (b"metrics-1", b'{"kind": "door"}')]
    send_all(services.bootstrap, f"{unique_prefix}.events", events + bad)

    def figures() -> dict:
        status, text = get(f"{base}/metrics")
        return samples(text) if status == 200 else {}

    wait_until(lambda: figures().get(("footfall_events_total", ())) == len(events), 60, "all events counted")

    def settled() -> bool:
        got = figures()
        lags = [v for (name, _), v in got.items() if name == "footfall_consumer_lag"]
        return len(lags) == 4 and sum(lags) == 0 and got.get(("footfall_pending_records", ())) == 0
    wait_until(settled, 60, "no lag and nothing pending")
    got = figures()
    dead = {dict(labels)["reason"]: v for (name, labels), v in got.items() if name == "footfall_dead_letters_total"}
    assert sum(dead.values()) == len(bad), dead
    assert got[("footfall_stores_in_memory", ())] == 5
    nexts = {dict(labels)["partition"]: v for (name, labels), v in got.items() if name == "footfall_next_offset"}
    assert sum(nexts.values()) == len(events) + len(bad)  # every message applied, on 4 fresh partitions
    assert got[("footfall_flush_seconds_count", ())] >= 1
    assert got[("footfall_checkpoint_age_seconds", ())] < 30
    status, why = get(f"{base}/health")
    assert status == 200 and why.startswith("ok"), why

