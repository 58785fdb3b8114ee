"""A worker that consumed but never checkpointed (Redis lost) and restarts loses nothing.

Here Redis dies right after the worker starts: it consumes every event, cannot publish,
so never writes a marker. With the batch intake (the default) nothing is committed for the
group meanwhile (checked on the broker); with Faust's per-message delivery
(`FOOTFALL_BATCH_INTAKE=false`) Faust commits past all of it anyway. Either way, restarted
with a working Redis, the worker must count every event exactly once: a partition with no
marker is read from its log start, not from the committed offset.
Also: /health turns 503 while the checkpoints cannot complete, and a worker whose Redis
does not answer at start refuses to start and consumes nothing.
"""

from __future__ import annotations

import time
from collections import Counter

import orjson
import pytest
import redis
from kafka import KafkaAdminClient

from footfall.scripts.stack import free_port
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.faults.faultkit import door_events, health
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import redis_buckets, send_all

pytestmark = [pytest.mark.integration, pytest.mark.faults]

MINUTE_MS = 60_000


def committed(bootstrap: str, group: str, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


@pytest.mark.parametrize("batch_intake", ["true", "false"])
def test_events_consumed_before_any_checkpoint_are_counted_after_a_restart(services, worker_factory,
                                                                          unique_prefix, own_redis, batch_intake):
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    own_redis.start()
    port = free_port()
    worker = worker_factory(redis_url=own_redis.url, web_enabled="true", web_port=port,
                            health_max_checkpoint_age_s=5, checkpoint_interval_s=1, batch_intake=batch_intake)
    worker.start()
    wait_until(lambda: health(port) == 200, 90, "the worker up")
    own_redis.kill()

    t0 = (int(time.time() * 1000) - 60 * MINUTE_MS) // MINUTE_MS * MINUTE_MS
    events = door_events(t0, 400, stores=6)
    send_all(services.bootstrap, f"{unique_prefix}.events",
             [(e["store_id"].encode(), orjson.dumps(e)) for e in events])
    topic = f"{unique_prefix}.events"
    group = f"{unique_prefix}-worker"
    # Consumed, not checkpointed: health says so.
    wait_until(lambda: health(port) == 503, 60, "health 503 while Redis is away")
    if batch_intake == "true":
        time.sleep(8)  # more than twice Faust's commit interval (2.8 s): nothing committed past no checkpoint
        assert committed(services.bootstrap, group, topic) == 0
    else:  # Faust commits past it anyway
        wait_until(lambda: committed(services.bootstrap, group, topic) == len(events), 60,
                   "Faust committing the consumed offsets")
    assert worker.stop() is not None

    worker_factory(redis_url=services.redis_url, batch_intake=batch_intake).start()
    # Traffic goes on: the restarted worker's first messages come after what it never checkpointed.
    later = door_events(t0 + 400 * 5_000, 100, stores=6)
    for e in later:
        e["event_id"] = "later-" + e["event_id"]
    send_all(services.bootstrap, topic, [(e["store_id"].encode(), orjson.dumps(e)) for e in later])
    events += later
    client = redis.Redis.from_url(services.redis_url)
    expected = Counter((e["store_id"], e["ts"] // 900_000 * 900_000) for e in events)

    def counted() -> Counter:
        return Counter({key: int(record["arrivals"]) for key, record in redis_buckets(client, unique_prefix).items()
                        if record["arrivals"]})

    wait_until(lambda: counted() == expected, 120, "every event counted once after the restart")
    time.sleep(3)  # nothing more arrives: no event counted twice
    assert counted() == expected


def test_a_worker_whose_redis_does_not_answer_refuses_to_start(services, worker_factory, unique_prefix):
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker = worker_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0", startup_timeout_s=2).start()
    assert worker.proc is not None
    assert worker.proc.wait(timeout=60) == 2
    log = worker.log_text()
    assert "FOOTFALL_REDIS_URL" in log and "not consuming" in log, log
    admin = KafkaAdminClient(bootstrap_servers=services.bootstrap)
    try:
        groups = {g.get("group_id") or g.get("groupId") for g in admin.list_groups()}
    finally:
        admin.close()
    assert f"{unique_prefix}-worker" not in groups  # it never joined, so never consumed
