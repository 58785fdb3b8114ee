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


# -- a shop's only counter stops while its till goes on ---------------------------------------------

SHOP = "shop-qual-2"
STOP_MINUTE = 52  # inside the fourth bucket: [45, 60) is partial, later ones missing
SHOP_BUCKETS = 14


def shop_events() -> list[dict[str, Any]]:
    """One counter every minute until it stops, a sale every 2 minutes all along, a few minutes past the end."""
    base = {"store_id": SHOP, "schema_version": 1, "region": "west", "vertical": "retail"}
    events = []
    for minute in range(SHOP_BUCKETS * 15 + 5):
        ts = T0 + minute * MIN_MS
        if minute < STOP_MINUTE:
            events.append({**base, "kind": "door", "event_id": f"d-{minute}", "ts": ts, "door_id": "main",
                           "sensor_id": "c-door", "count_in": 3, "count_out": 2, "interval_s": 60})
        if minute % 2 == 0:
            events.append({**base, "kind": "pos", "event_id": f"p-{minute}", "ts": ts + 30_000,
                           "transaction_id": f"t-{minute}", "amount": 12.5, "items": 2, "currency": "EUR"})
    return events


def test_a_stopped_counter_holds_back_conversion_and_raises_one_alert_naming_it(services, worker_factory,
                                                                                 unique_prefix):
    events = shop_events()
    covered = {k: sum(1 for m in range(k * 15, k * 15 + 15) if m < STOP_MINUTE) / 15 for k in range(SHOP_BUCKETS)}
    grade = {k: "ok" if c >= 0.9 else "missing" if c <= 0.1 else "partial" for k, c in covered.items()}
    assert [grade[k] for k in range(5)] == ["ok", "ok", "ok", "partial", "missing"]  # the story the data tells
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker_factory(bucket_s=900, grace_s=0, idle_timeout_s=0, forecast_horizon_h=1, timezone="UTC").start()
    send_all(services.bootstrap, f"{unique_prefix}.events", [(SHOP.encode(), orjson.dumps(e)) for e in events])

    def closed() -> dict[int, dict[str, Any]]:
        return {r["bucket_start_ms"]: r for r in (orjson.loads(m.value) for m in
                                                  read_topic(services.bootstrap, f"{unique_prefix}.aggregates"))
                if r["type"] == "bucket" and r["status"] == "closed"}

    wait_until(lambda: len(closed()) >= SHOP_BUCKETS, 90, "every bucket closed")
    schema = record_schema("bucket")
    buckets = closed()
    for k in range(SHOP_BUCKETS):
        record = buckets[T0 + k * BUCKET_MS]
        jsonschema.validate(record, schema)
        visitors = sum(3 for m in range(k * 15, k * 15 + 15) if m < STOP_MINUTE)
        transactions = sum(1 for m in range(k * 15, k * 15 + 15) if m % 2 == 0)
        assert (record["quality"], record["visitors"], record["transactions"]) == (grade[k], visitors, transactions)
        if grade[k] == "ok":
            assert record["held_back"] == [] and record["conversion_rate"] == pytest.approx(transactions / visitors)
        else:  # counted on part of the bucket, or none: no conversion from it
            assert record["held_back"] == ["conversion_rate", "sales_per_visitor"], k
            assert record["conversion_rate"] is None and record["sales_per_visitor"] is None, k

    alerts = [orjson.loads(m.value) for m in read_topic(services.bootstrap, f"{unique_prefix}.alerts")]
    opened = [a for a in alerts if a["store_id"] == SHOP and a["state"] == "opened"]
    assert [a["kind"] for a in opened] == ["sensor_silent"], [(a["kind"], a["explanation"]) for a in opened]
    # Silent from the fifth bucket (k = 4); the rule waits 2 hours (8 buckets): raised at the close of k = 11.
    assert opened[0]["bucket_start_ms"] == T0 + 11 * BUCKET_MS
    assert "sensor c-door sent nothing for 8 buckets in a row while the store was open" in opened[0]["explanation"]
