"""Injected incidents through the real stack: each one alert, in time, explained, and shown by `footfall alerts`.

Three simulated stores (a shop, a bank branch, a telecom shop; three times the
simulator's default traffic) send 17 days of events to Kafka: 15 days of normal
traffic (the watches judge quietly for 14 days while their forecasts learn), then
one incident each on the 16th: a surge (3x arrivals for 2 hours), a drop (a
quarter of the arrivals for 3 hours) and a counter stuck at zero (3 hours). The
worker's alerts are read back from Redis's alert history and from a `footfall
alerts --follow --json` process started before the first event.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import orjson
import pytest
import redis
from kafka import KafkaProducer

from footfall.schemas.keys import RedisKeys
from footfall.scripts.alertsim import DAY_MS, HOUR_MS, WARMUP_DAYS, incidents_for
from footfall.scripts.simulation import generate, make_stores, rostered
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

START_MS = 1_767_571_200_000  # 2026-01-05, a Monday
FAMILY = {"surge": ("_high",), "drop": ("_low", "sensor_silent"), "stuck_zero": ("_low", "sensor_silent")}


def _in_family(kind: str, incident: str) -> bool:
    return any(kind.endswith(suffix) or kind == suffix for suffix in FAMILY[incident])


def test_each_injected_incident_is_one_timely_explained_alert(services, worker_factory, unique_prefix, tmp_path):
    stores = [rostered(dataclasses.replace(p, base_rate_per_h=p.base_rate_per_h * 3), 11)
              for p in make_stores(3, seed=11)]
    judged_from = START_MS + WARMUP_DAYS * DAY_MS
    incidents = incidents_for(stores, judged_from + DAY_MS)
    end_ms = judged_from + 2 * DAY_MS + 12 * HOUR_MS  # the incidents' day, into its afternoon in every zone
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker_factory(idle_timeout_s=0, history_maxlen=100_000).start()
    env = {**os.environ, "FOOTFALL_BROKER": services.bootstrap, "FOOTFALL_REDIS_URL": services.redis_url,
           "FOOTFALL_TOPIC_PREFIX": unique_prefix}
    follow_out = tmp_path / "follow.jsonl"
    with open(follow_out, "wb") as out, open(tmp_path / "follow.err", "wb") as err:
        follower = subprocess.Popen([sys.executable, "-m", "footfall.scripts.cli", "alerts", "--follow", "--json"],
                                    env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    wait_until(lambda: b"following" in (tmp_path / "follow.err").read_bytes(), 30, "the follower ready")

    producer = KafkaProducer(bootstrap_servers=services.bootstrap, linger_ms=20, batch_size=256 * 1024)
    for message in generate(stores, start_ms=START_MS, end_ms=end_ms, seed=11, anomalies=incidents, batch_size=20,
                            chunk_ms=DAY_MS):
        producer.send(f"{unique_prefix}.events", key=message.store_id.encode(), value=message.payload)
    producer.flush()
    producer.close()

    client = redis.Redis.from_url(services.redis_url)
    keys = RedisKeys(unique_prefix)

    def closed_through(store_id: str) -> int:
        latest = client.hget(keys.store_latest(store_id), "bucket_start_ms")
        return int(latest) if latest else 0

    # Every store has closed the buckets of its incident and two hours after it.
    wait_until(lambda: all(closed_through(i.store_id) >= i.end_ms + 2 * HOUR_MS for i in incidents), 300,
               "the incidents' buckets closed")
    time.sleep(2)  # the flush after the last bucket
    changes = [orjson.loads(f[b"record"]) for _, f in client.xrange(keys.alerts_history)]
    opened = [c for c in changes if c["state"] == "opened"]

    for incident in incidents:
        mine = [a for a in opened if a["store_id"] == incident.store_id and a["started_ms"] >= judged_from]
        family = [a for a in mine if _in_family(a["kind"], incident.kind)]
        during = [a for a in family if incident.start_ms <= a["started_ms"] < incident.end_ms + HOUR_MS]
        assert len(during) == 1, (incident, [(a["kind"], a["started_ms"], a["explanation"]) for a in mine])
        alert = during[0]
        # In time: within two hours of the start (the first quarter hour for a surge, by its early warning).
        assert alert["started_ms"] - incident.start_ms <= 2 * HOUR_MS, (incident, alert)
        # Explained in words, with the series and the expected range.
        assert "expected" in alert["explanation"] and alert["kind"].split("_")[0] in alert["explanation"], alert
        # One incident, one alert: no other alert of its family in the three days judged.
        assert len(family) == 1, (incident, [(a["kind"], a["explanation"]) for a in family])

    # `footfall alerts --follow --json` printed the same changes, as they came.
    follower.terminate()
    follower.wait(timeout=30)
    printed = [orjson.loads(line) for line in follow_out.read_bytes().splitlines() if line.strip()]
    printed_ids = {(p["alert_id"], p["state"]) for p in printed}
    for incident in incidents:
        ids = {a["alert_id"] for a in opened if a["store_id"] == incident.store_id
               and _in_family(a["kind"], incident.kind)
               and incident.start_ms <= a["started_ms"] < incident.end_ms + HOUR_MS}
        assert {(i, "opened") for i in ids} <= printed_ids, (incident, printed[:5])
