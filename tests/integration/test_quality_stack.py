"""Data quality through the real stack: a shop's two door counters, one falls silent, the records say so.

One store with two door counters, each sending an interval report (`interval_s` 60) every minute
for two hours of 15-minute buckets; the side door's stops after the first hour. Its quality
records, on `<p>.quality` and in Redis (the latest key and the history stream the worker writes
for a record kind without a place of its own), must equal what plain loops over the events sent
give: per bucket each sensor's covered seconds, `ok` for the first hour, then `partial` with the
side door's counter named silent, and the door counts' imbalance.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import jsonschema
import orjson
import pytest
import redis

from footfall.schemas.keys import RedisKeys
from footfall.schemas.records import record_schema
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import read_topic, send_all

pytestmark = pytest.mark.integration

MIN_MS = 60_000
BUCKET_MS = 15 * MIN_MS
T0 = 1_795_600_800_000  # 2026-11-24T10:00:00Z, a bucket boundary
STORE = "shop-qual-1"
BUCKETS = 8  # two hours: checked; the events after them close the last one


def sent_events() -> list[dict[str, Any]]:
    """Both counters every minute for an hour, then the front one alone; a few more minutes past the end."""
    base = {"store_id": STORE, "schema_version": 1, "region": "west", "vertical": "retail", "kind": "door",
            "interval_s": 60}
    events = []
    for minute in range(BUCKETS * 15 + 5):
        ts = T0 + minute * MIN_MS
        for sensor, door in (("c-front", "front"), ("c-side", "side")):
            if sensor == "c-side" and minute >= 60:
                continue
            events.append({**base, "event_id": f"{sensor}-{minute}", "ts": ts, "door_id": door, "sensor_id": sensor,
                           "count_in": 1 + minute % 4, "count_out": minute % 3})
    return events


def expected_records(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per bucket start: each sensor's covered share (seconds of [ts, ts + interval_s)), the quality, the counts."""
    covered: dict[str, set[int]] = defaultdict(set)
    first: dict[str, int] = {}
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for e in events:
        s = e["ts"] // 1000
        covered[e["sensor_id"]].update(range(s, s + e["interval_s"]))
        first.setdefault(e["sensor_id"], e["ts"])
        start = e["ts"] - e["ts"] % BUCKET_MS
        counts[start][0] += e["count_in"]
        counts[start][1] += e["count_out"]
    out = {}
    for k in range(BUCKETS):
        start = T0 + k * BUCKET_MS
        lo, hi = start // 1000, (start + BUCKET_MS) // 1000
        cov = {s: sum(1 for x in secs if lo <= x < hi) / (hi - lo) for s, secs in sorted(covered.items())
               if first[s] < start + BUCKET_MS}
        quality = "ok" if min(cov.values()) >= 0.9 else "missing" if sum(cov.values()) / len(cov) <= 0.1 else "partial"
        door_in, door_out = counts[start]
        out[start] = {"quality": quality, "coverage": sum(cov.values()) / len(cov),
                      "sensors": {s: round(v, 4) for s, v in cov.items()},
                      "silent_sensors": [s for s, v in cov.items() if v == 0], "door_in": door_in,
                      "door_out": door_out, "imbalance": door_in - door_out,
                      "imbalance_ratio": (door_in - door_out) / max(door_in, 1)}
    return out


def test_quality_records_go_from_ok_to_partial_naming_the_silent_sensor(services, worker_factory, unique_prefix):
    events = sent_events()
    want = expected_records(events)
    assert [w["quality"] for w in want.values()] == ["ok"] * 4 + ["partial"] * 4  # the story the data tells
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker_factory(bucket_s=900, grace_s=0, idle_timeout_s=0, forecast_horizon_h=1, timezone="UTC").start()
    send_all(services.bootstrap, f"{unique_prefix}.events", [(STORE.encode(), orjson.dumps(e)) for e in events])
    client = redis.Redis.from_url(services.redis_url)
    keys = RedisKeys(unique_prefix)

    def history() -> dict[int, dict[str, Any]]:
        return {r["bucket_start_ms"]: r for r in (orjson.loads(f[b"record"]) for _, f in
                                                  client.xrange(keys.store_record_history(STORE, "quality")))}

    wait_until(lambda: set(want) <= set(history()), 90, "a quality record per closed bucket")
    schema = record_schema("quality")
    in_redis = history()
    on_topic = {r["bucket_start_ms"]: r for r in (orjson.loads(m.value) for m in
                                                  read_topic(services.bootstrap, f"{unique_prefix}.quality"))}
    for start, w in want.items():
        for record in (in_redis[start], on_topic[start]):
            jsonschema.validate(record, schema)
            assert (record["type"], record["store_id"], record["tz"], record["bucket_ms"]) == (
                "quality", STORE, "UTC", BUCKET_MS)
            assert record["quality"] == w["quality"], start
            assert record["coverage"] == pytest.approx(w["coverage"]), start
            assert {s["sensor_id"]: s["coverage"] for s in record["sensors"]} == w["sensors"], start
            assert record["silent_sensors"] == w["silent_sensors"], start
            assert {k: record[k] for k in ("door_in", "door_out", "imbalance")} == {
                k: w[k] for k in ("door_in", "door_out", "imbalance")}, start
            assert record["imbalance_ratio"] == pytest.approx(w["imbalance_ratio"]), start
    assert [in_redis[s]["silent_sensors"] for s in sorted(want)][3:5] == [[], ["c-side"]]
    latest = orjson.loads(client.get(keys.store_record(STORE, "quality")))
    assert latest["bucket_start_ms"] >= T0 + (BUCKETS - 1) * BUCKET_MS
